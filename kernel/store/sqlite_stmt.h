// sqlite_stmt.h -- SQLite statements prepared once on the embedded store's
// writer connection: the helper that binds and steps one (Stmt), and the set
// the hot path uses (Statements). Internal to kernel/store.
//
// Poco 1.11 re-prepares a statement on every execute(), which measured 2-3x
// slower for batches on this machine: hot-path writes use these instead.
#ifndef OPSKERNEL_KERNEL_STORE_SQLITE_STMT_H
#define OPSKERNEL_KERNEL_STORE_SQLITE_STMT_H

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace opk::store::internal {

// New runs without a schedule slot, and audit rows, are inserted up to this
// many per statement; any count is a sum of the sizes kInsertSizes lists.
inline constexpr size_t kRunsPerInsert = 32;
inline constexpr size_t kInsertSizes[] = {32, 16, 8, 4, 2, 1};
inline constexpr size_t kInsertKinds = sizeof(kInsertSizes) / sizeof(kInsertSizes[0]);
inline constexpr size_t kRunColumns = 18;   // parameters per run in insert_runs
inline constexpr size_t kAuditColumns = 9;  // parameters per row in insert_audits
inline constexpr size_t kEventColumns = 7;  // parameters per row in insert_events

// The largest of kInsertSizes that is at most n (n >= 1).
inline size_t insert_size_for(size_t n) {
  for (size_t size : kInsertSizes)
    if (size <= n) return size;
  return 1;
}

// A statement prepared once on the writer connection.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("prepare failed: ") + sqlite3_errmsg(db) + " in: " + sql);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  // Binds the arguments to parameters 1, 2, 3 ... in order.
  template <typename... Args>
  Stmt& bind_all(const Args&... args) {
    return bind_at(1, args...);
  }
  // Binds the arguments to parameters first, first + 1, ... in order.
  template <typename... Args>
  Stmt& bind_at(int first, const Args&... args) {
    int i = first - 1;
    (bind(++i, args), ...);
    return *this;
  }
  Stmt& bind(int i, bool v) { return bind(i, int64_t{v}); }
  Stmt& bind(int i, int32_t v) { return bind(i, int64_t{v}); }
  // Steps once; returns the sqlite result code (SQLITE_DONE / SQLITE_ROW / error).
  int step() { return sqlite3_step(s_); }
  int64_t column_int(int i) { return sqlite3_column_int64(s_, i); }
  // Every use binds every parameter, so the bindings are not cleared (that
  // cost as much as two bindings per statement).
  void reset() { sqlite3_reset(s_); }
  // Steps once and resets; true if the statement ran to completion (changes
  // are then in sqlite3_changes).
  bool exec() {
    const int rc = step();
    reset();
    return rc == SQLITE_DONE;
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// The statements of the hot path, prepared once on the writer connection.
// Throws std::runtime_error naming the statement if one does not prepare.
struct Statements {
  explicit Statements(sqlite3* db);
  Statements(const Statements&) = delete;
  Statements& operator=(const Statements&) = delete;

  // The insert of `rows` runs, kRunColumns parameters each.
  static std::string insert_runs_sql(size_t rows);
  // The insert of `rows` audit rows, kAuditColumns parameters each.
  static std::string insert_audits_sql(size_t rows);
  // The insert of `rows` events, kEventColumns parameters each.
  static std::string insert_events_sql(size_t rows);
  // The insert of `rows` runs (audit rows, events); `rows` is one of
  // kInsertSizes.
  Stmt& insert_runs_of(size_t rows);
  Stmt& insert_audits_of(size_t rows);
  Stmt& insert_events_of(size_t rows);

  Stmt insert_run, insert_runs, insert_states, insert_state, mark_running, mark_running_all, complete, inline_max_seq,
      insert_log, insert_step, insert_audit, insert_audit_range, set_next_run, job_exists, begin, commit, rollback,
      savepoint, release, rollback_to, claim_savepoint, claim_release, claim_rollback, write_probe, page_count,
      max_page_count, freelist_count, page_size;

 private:
  // Index: the position of the size in kInsertSizes.
  std::unique_ptr<Stmt> runs_by_size_[kInsertKinds], audits_by_size_[kInsertKinds], events_by_size_[kInsertKinds];
};

}  // namespace opk::store::internal

#endif
