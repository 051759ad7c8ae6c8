// sqlite_internal.h -- the embedded store's class, SqliteStore, shared by the
// files that implement it; internal to kernel/store (store.h is the public
// interface). Each file has one job:
//   sqlite_store.cpp       the connections: open, check, health, reads, close
//   sqlite_schema.cpp      the kernel's schema and the migrations
//   sqlite_stmt.h/.cpp     statements prepared once on the writer connection
//   sqlite_writer.cpp      the group-commit writer and the log's flusher
//   sqlite_jobs.cpp        scheduled jobs, next runs, the inventory
//   sqlite_runs.cpp        runs: create, claim, complete, recover, read, prune
//   sqlite_identities.cpp  tenancy nodes, users, API tokens
//   sqlite_audit.cpp       the audit trail
//   sqlite_alerts.cpp      alerts and their history
//   sqlite_events.cpp      the event log: events written with runs and
//                          alerts, plugins' events, reads, acks, pruning
//   sqlite_plugin_sql.cpp  plugins' own SQL (opk.store/1)
//
// Reads, migrations and rare writes go through Poco Data. The hot-path writes
// (create / mark running / complete runs, log lines) use SQLite statements
// prepared once on the writer connection (reached through Poco's dbHandle).
// Every hot-path call takes a vector and writes it in one transaction:
// callers group commits.
//
// SQL in these files is the SQLite dialect; no other file of the kernel has it.
#ifndef OPSKERNEL_KERNEL_STORE_SQLITE_INTERNAL_H
#define OPSKERNEL_KERNEL_STORE_SQLITE_INTERNAL_H

#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "clock/clock.h"
#include "store/plugin_fence.h"
#include "store/portable_store.h"
#include "store/sqlite_stmt.h"
#include "store/store.h"

namespace opk::store::internal {

// Wall-clock time in milliseconds since the epoch, on the kernel's clock.
inline int64_t now_ms() {
  return clock::now_ms();
}

// A text column's integer value; 0 for NULL or empty.
inline int64_t column_int(const std::optional<std::string>& v) {
  return v && !v->empty() ? std::stoll(*v) : 0;
}

// `s` with its single quotes doubled, for a SQL string literal.
inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out;
}

// Installs the authorizer that holds plugins' statements to their own
// tables on a connection, once, when it is opened (setting an authorizer
// expires every statement prepared on the connection). It allows every
// statement but those run inside a plugin's call (sqlite_plugin_sql.cpp).
void install_plugin_fence(sqlite3* conn);

// The kernel's own schema, version by version (sqlite_schema.cpp).
extern const std::vector<Migration> kKernelMigrations;
// The kernel migration that makes migration_attempts: attempts are
// recorded from it on (those of the kernel's earlier versions applied in
// the same pass are recorded with it).
inline constexpr int kMigrationAttemptsVersion = 10;

// Counts a change to runs or scheduled jobs when the writing call returns,
// after its commit: a reader that saw the old count re-reads.
class Changed {
 public:
  explicit Changed(std::atomic<uint64_t>& g) : g_(g) {}
  ~Changed() { g_.fetch_add(1, std::memory_order_release); }
  Changed(const Changed&) = delete;
  Changed& operator=(const Changed&) = delete;

 private:
  std::atomic<uint64_t>& g_;
};

// The embedded store: SQLite through Poco Data, in WAL mode. What it does as
// the PostgreSQL store does is PortableStore's (portable_store.h); this class
// has what differs.
class SqliteStore final : public PortableStore {
 public:
  SqliteStore(std::string path, bool full, FlushFile flush, OpenCheck check);
  ~SqliteStore() override;

  // Opens the connections, checks the file (check_), applies the kernel's
  // migrations and prepares the hot path's statements.
  Status open();

  // --- schema (sqlite_schema.cpp)
  Status migrate(const std::string& owner, const std::vector<Migration>& migrations) override;
  StatusOr<std::vector<AppliedMigration>> applied_migrations() override;
  StatusOr<std::vector<MigrationAttempt>> migration_attempts() override;

  // --- scheduled jobs (sqlite_jobs.cpp)
  Status set_next_run(const std::string& id, int64_t next_run_ms) override;
  Status set_next_runs(const std::vector<std::pair<std::string, int64_t>>& next_runs) override;

  // --- runs (sqlite_runs.cpp)
  Status create_runs(std::vector<RunRow>* runs, std::vector<AuditRow>* audit, std::vector<std::string>* gone) override;
  Status mark_running(const std::vector<int64_t>& ids, int64_t now, const std::string& node,
                      std::vector<int64_t>* skipped, const std::vector<Completion>* completed_first) override;
  Status complete_runs(const std::vector<Completion>& cs) override;
  Status recover_runs(const std::vector<Completion>& closed, std::vector<RunRow>* requeued) override;
  Status complete_pending(const Completion& c, bool* changed) override;
  Status append_logs(const std::vector<LogRow>& logs) override;
  Status set_hold(int64_t run_id, bool hold) override;
  Status get_run(int64_t id, RunRow* out) override;
  StatusOr<std::vector<RunRow>> list_runs(const RunFilter& f) override;
  StatusOr<std::vector<RunRow>> runs_in_phase(const std::string& phase, size_t limit) override;
  StatusOr<std::vector<LogRow>> logs(int64_t run_id, int64_t after_seq, size_t limit) override;
  StatusOr<std::vector<LogRow>> last_logs(int64_t run_id, size_t n) override;
  StatusOr<std::vector<StepRow>> steps(int64_t run_id) override;
  Status flag_stale(int64_t before_ms, int64_t* count, const RunEventsOf& events) override;
  Status prune(int64_t before_ms, size_t batch, int64_t* deleted) override;

  // --- health and housekeeping (sqlite_store.cpp)
  Status writable() override;
  void checkpoint() override;
  const char* dialect() const override;
  uint64_t generation() const override;

  // --- plugins' own tables (sqlite_plugin_sql.cpp)
  Status execute(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                 int64_t* changed) override;
  Status query(const std::string& sql, const std::vector<std::optional<std::string>>& params,
               std::vector<std::vector<std::optional<std::string>>>* rows) override;
  Status plugin_execute(const std::string& owner, const std::string& sql,
                        const std::vector<std::optional<std::string>>& params, int64_t* changed) override;
  Status plugin_query(const std::string& owner, const std::string& sql,
                      const std::vector<std::optional<std::string>>& params,
                      std::vector<std::vector<std::optional<std::string>>>* rows) override;
  Status plugin_query_typed(const std::string& owner, const std::string& sql,
                            const std::vector<std::optional<std::string>>& params,
                            std::vector<TypedRow>* rows) override;
  Status plugin_transaction(const std::string& owner, const std::vector<PluginStatement>& statements,
                            std::vector<PluginResult>* results, size_t* failed) override;

  // --- identities (sqlite_identities.cpp)
  Status disable_user(const std::string& id, int64_t now, int64_t* revoked) override;

  // --- audit (sqlite_audit.cpp)
  Status audit(const std::vector<AuditRow>& rows) override;

  // --- alerts (sqlite_alerts.cpp)
  Status save_alerts(std::vector<AlertSave>* saves) override;

  // --- the event log (sqlite_events.cpp)
  Status append_events(std::vector<EventRow>* events) override;
  Status append_keyed_event(const std::string& owner, const std::string& key, EventRow* event,
                            bool* duplicate) override;
  StatusOr<std::vector<EventRow>> events_after(int64_t after_seq, size_t limit) override;
  Status get_event(int64_t seq, EventRow* out) override;
  int64_t last_event_seq() override;
  Status ack_events(const std::string& consumer, int64_t seq, int64_t now_ms) override;
  StatusOr<std::vector<EventConsumer>> event_consumers() override;
  Status prune_events(int64_t before_ms, int64_t max_seq, size_t batch, int64_t* deleted) override;
  void set_event_listener(std::function<void(int64_t last_seq)> fn) override;
  void set_alert_events(AlertEventsOf fn) override;

  // --- plugins' SQL (sqlite_plugin_sql.cpp)
  // How many times SQLite prepared again the statements now prepared on
  // the writer connection (each after a schema change or anything else
  // that expired it), summed: the kernel's own and the plugins' kept ones.
  int64_t writer_reprepares();
  // How many statements (plugins' and the kernel's reads through query)
  // have been prepared on the reader connections (each kept for its next
  // use on that connection: run again there, it is not prepared again).
  int64_t reader_prepares() const { return reader_prepares_.load(std::memory_order_relaxed); }

 private:
  // A write waiting in the group-commit queue (grouped, sqlite_writer.cpp).
  struct Writer {
    const std::function<Status()>* write;
    bool urgent = false;
    size_t rows = 1;
    Status status;
    bool written = false;  // committed, waiting for the flush
    bool done = false;
    std::condition_variable cv;
  };

  // --- the connections (sqlite_store.cpp)
  // Checks the file as check_ says: OK, or the problems SQLite found (at
  // most kCheckProblems) naming the file as corrupted.
  Status check_file();
  // UNAVAILABLE if the file system that holds the store has less than
  // kMinFreeBytes free (for this process: root may use the reserved blocks).
  Status disk_room() const;
  // The test write of writable(): fails if less than kMinFreeBytes are left
  // within the file's size limit (free pages included), as writes then fail
  // for lack of room; otherwise rewrites one row. REQUIRES: write_mu_ held,
  // inside a transaction.
  Status probe_locked();
  // The writer's handle, looked up once (Poco's dbHandle costs about as much
  // as binding a few parameters, and the hot path needs it per run).
  sqlite3* db() { return db_; }
  // "store: <what>: <the writer's last SQLite error>", as UNAVAILABLE. An
  // error of the disk or the file (full, I/O, damaged) also names its SQLite
  // code and the file, and is the group's disk error (write_group).
  // REQUIRES: write_mu_ held.
  Status sql_error(const char* what);
  // Runs a read query on a pooled connection; every column as text (NULL
  // as empty) into *rows. UNAVAILABLE naming `what`, the file and the cause
  // if the store cannot be read.
  Status read_rows(const char* what, const std::string& sql, std::vector<std::vector<std::string>>* rows);

  // --- the writer (sqlite_writer.cpp)
  // Queues `write` for the next group commit and returns its outcome once
  // it is committed (and flushed, in durable mode). `rows`: about how many
  // rows the write changes (its share of the group's work). `urgent`: a
  // caller waits for it (claims).
  Status grouped(const std::function<Status()>& write, size_t rows, bool urgent = false);
  // Marks a writer done and wakes it, unless it is the caller.
  // REQUIRES: group_mu_ held.
  static void wake(Writer* g, Writer* self);
  // The flusher thread: flushes the log after commits and wakes the writers
  // of every group committed before the flush began. A flush that fails
  // fails those groups and every later write: their rows are committed but
  // may not be on disk, and a retried fsync can report success without
  // writing them (the kernel drops the failed pages), so the store stops
  // taking writes until it is reopened.
  void flush_loop();
  // fdatasync of the write-ahead log; "" or what failed. The descriptor is
  // opened on first use and again if SQLite replaced the file.
  std::string flush_log();
  // Writes a group's writes in one transaction, each in a savepoint of its
  // own; a failed begin or commit fails them all. True if it committed.
  // In durable mode the commit itself does not fsync (the flusher does).
  bool write_group(const std::vector<Writer*>& group);

  // Runs `fn` in a transaction: commits if it succeeds, else rolls back.
  // Returns the first error: a failed write or commit may have ended the
  // transaction itself (disk full, I/O error), and the ROLLBACK that then
  // finds none must not replace it. REQUIRES: write_mu_ held.
  template <typename Fn>
  Status in_transaction(Fn&& fn) {
    if (stmts_->begin.step() != SQLITE_DONE) {
      Status e = sql_error("begin");
      stmts_->begin.reset();
      return e;
    }
    stmts_->begin.reset();
    Status s = fn();
    if (s) {
      const int rc = stmts_->commit.step();
      if (rc != SQLITE_DONE) s = sql_error("commit");
      stmts_->commit.reset();
    }
    if (!s && !sqlite3_get_autocommit(db())) {
      stmts_->rollback.step();
      stmts_->rollback.reset();
    }
    return s;
  }

  // --- runs (sqlite_runs.cpp)
  // Inserts runs and their audit rows (create_runs); the caller holds
  // write_mu_ inside a transaction. NOT_FOUND, storing nothing, if a run
  // needs a scheduled job that does not exist (*gone, if given, gets them).
  Status create_runs_locked(std::vector<RunRow>* runs, std::vector<AuditRow>* audit,
                            std::vector<std::string>* gone = nullptr);
  // The scheduled jobs that `runs` need (needs_its_job) and that do not
  // exist, each once, into *missing. REQUIRES: write_mu_ held.
  Status missing_jobs_locked(const std::vector<RunRow>& runs, std::vector<std::string>* missing);
  // Stores completions; the caller holds write_mu_ inside a transaction.
  // `inline_logs`: each completion's lines for its state row, or empty
  // (inline_logs_of, made by the caller before it waits for the writer).
  // The events of the completions that complete their run are written too.
  Status complete_locked(const std::vector<Completion>& cs, const std::vector<std::string>& inline_logs);
  // Each completion's lines as run_state.logs, or empty where they go to
  // run_logs: kept in the state row are 1 to kInlineLines lines numbered
  // 1, 2, 3 ... (the watchdog has stored none of them), of at most
  // kInlineBytes text in all. Built outside the writer's lock.
  static std::vector<std::string> inline_logs_of(const std::vector<Completion>& cs);
  // One run's lines as run_state.logs into *out, or *out untouched if they
  // go to run_logs (see above).
  static void inline_logs_of(const std::vector<LogRow>& logs, std::string* out);
  // Appends `text` as a JSON string. SQLite's JSON functions (which read it
  // back) take the bytes as they are; only quotes, backslashes and control
  // characters need escaping.
  static void append_json_string(const std::string& text, std::string* out);
  // Stores log lines in run_logs (a line already stored is kept).
  // REQUIRES: write_mu_ held, inside a transaction.
  Status insert_logs_locked(const std::vector<LogRow>& logs);
  // Moves the open-runs mark (migration 5) up to the oldest open run, past
  // the completed ones; an open run more than kLingerIds behind the newest
  // is listed in lingering_runs and passed too. Each run is passed once, so
  // the cost per run is constant. Lingering runs that completed leave the
  // list. REQUIRES: write_mu_ held.
  Status advance_open_mark();
  // A run as created by run now, the scheduler or recovery: PENDING, NORMAL,
  // not held (create_runs keeps no other state for a run not completed).
  static bool is_new_pending(const RunRow& r);
  // The largest run id created before `before_ms`, assuming creation times
  // grow with ids (they do up to clock steps); 0 if none. REQUIRES: write_mu_.
  int64_t last_created_before(int64_t before_ms);
  // Runs matching the SQL condition `where`, in `order`, at most `limit`,
  // appended to *out (a row that cannot be parsed is skipped).
  Status runs_where(const std::string& where, const std::string& order, size_t limit, std::vector<RunRow>* out);
  // A run's log lines (stored or kept in its state row) in the order `rest`
  // of the query gives, appended to *out.
  Status log_rows(int64_t run_id, const std::string& rest, std::vector<LogRow>* out);

  // --- PortableStore's primitives (sqlite_store.cpp)
  // A read on a pooled connection with $1..$n text parameters; UNAVAILABLE
  // naming `what`, the file and the cause if the store cannot be read.
  Status read_text(const std::string& what, const std::string& sql, const SqlParams& params,
                   std::vector<TextRow>* out) override;
  // A write on the writer connection, under write_mu_, in autocommit
  // (synchronous as the store's mode says); errors other than CONFLICT as
  // UNAVAILABLE.
  Status write_one(const std::string& what, const std::string& sql, const SqlParams& params, int64_t* changed) override;

  // --- audit (sqlite_audit.cpp)
  // Appends audit rows. REQUIRES: write_mu_ held, inside a transaction.
  Status insert_audit_locked(const std::vector<AuditRow>& rows);

  // --- alerts (sqlite_alerts.cpp)
  // save_alerts under the writer's lock, in one transaction.
  Status save_alerts_locked(std::vector<AlertSave>* saves);

  // --- the event log (sqlite_events.cpp)
  // Reads the last seq written (at open). REQUIRES: write_mu_ held or no
  // writer yet.
  Status load_event_seq();
  // Inserts `events` with the next seqs, consecutive from *first_seq (may
  // be null), a multi-row statement per up to kRunsPerInsert rows.
  // REQUIRES: write_mu_ held, inside a transaction.
  Status insert_events_locked(const std::vector<const EventRow*>& events, int64_t* first_seq = nullptr);
  // Calls the event listener if events were written since the last seq
  // was `before` (read before the write began).
  void events_committed(int64_t before);

  // --- plugins' SQL (sqlite_plugin_sql.cpp)
  // Plugins' statements kept prepared on one connection, by plugin and
  // text (defined below the class); the kernel's reads on a reader too.
  struct PluginStmtCache;
  // Prepares, binds, steps one statement; rows (if wanted) as text. A read
  // is kept prepared in `cache` when given (`prepares` counts the misses).
  static Status run_one(sqlite3* conn, const std::string& sql, const std::vector<std::optional<std::string>>& params,
                        std::vector<std::vector<std::optional<std::string>>>* rows, int64_t* changed,
                        PluginStmtCache* cache = nullptr, std::atomic<int64_t>* prepares = nullptr);
  // What one statement of a plugin may do: `owner` empty runs unfenced;
  // `read_only` refuses writes; rows as text, typed, or not wanted.
  struct PluginCall {
    std::string owner;
    bool read_only = false;
    std::vector<std::vector<std::optional<std::string>>>* text_rows = nullptr;
    std::vector<TypedRow>* typed_rows = nullptr;
    int64_t* changed = nullptr;
    // Where the statement is kept prepared for the next call of the same
    // plugin with the same text (the writer's; null: prepared each time).
    PluginStmtCache* cache = nullptr;
    // Counts the statements prepared (not found in `cache`); may be null.
    std::atomic<int64_t>* prepares = nullptr;
  };
  static Status run_plugin_sql(sqlite3* conn, const std::string& sql,
                               const std::vector<std::optional<std::string>>& params, const PluginCall& call);
  // The writer connection's cache of plugins' statements, made on first
  // use. REQUIRES: write_mu_ held.
  PluginStmtCache* writer_cache();
  // Reader connection `conn`'s cache of plugins' statements, or of the
  // kernel's own reads when `kernel` (apart, so the kernel's texts, which
  // may carry values, do not fill the plugins' and drop them), made on
  // first use. REQUIRES: the caller holds `conn`'s session from readers_.
  PluginStmtCache* reader_cache(sqlite3* conn, bool kernel);
  // Runs a plugin's migration script (statements separated by ';') fenced
  // to `owner`'s tables, inside the caller's transaction; *error gets
  // the database's message or what the fence refused.
  static bool exec_plugin_script(sqlite3* conn, const std::string& owner, const std::string& sql, std::string* error);

  const std::string path_;
  const bool full_;
  const FlushFile flush_;
  const OpenCheck check_;
  std::mutex write_mu_;
  std::mutex group_mu_;  // guards writers_, unflushed_, flush_failed_, stopping_
  std::deque<Writer*> writers_;
  std::vector<Writer*> unflushed_;  // committed, waiting for the flush of the log
  std::string flush_failed_;        // sticky: why writes are refused
  std::mutex health_mu_;            // guards fault_, probed_ms_
  std::string fault_;               // the last group's disk error, until a group commits without one
  int64_t probed_ms_ = 0;           // when writable() last found the store healthy
  std::string disk_error_;          // the first disk error of the group being written; write_mu_
  bool stopping_ = false;
  std::condition_variable flush_cv_;
  std::thread flusher_;
  int wal_fd_ = -1;  // the flusher's descriptor of the log
  std::unique_ptr<Poco::Data::Session> writer_;
  sqlite3* db_ = nullptr;     // writer_'s connection
  int64_t next_mark_at_ = 0;  // create_runs moves the mark once ids reach this; write_mu_
  // The event log: the last seq handed out (write_mu_ to change; read
  // anywhere) and who is told about new events.
  std::atomic<int64_t> last_event_seq_{0};
  std::function<void(int64_t)> event_listener_;
  AlertEventsOf alert_events_;
  std::unique_ptr<Poco::Data::SessionPool> readers_;
  std::unique_ptr<Statements> stmts_;
  // Plugins' writes prepared on the writer connection, kept for their next
  // use (write_mu_): a plugin's statements repeat (the outbox writes the
  // same few per delivery), so each is parsed once, not on every call.
  std::unique_ptr<PluginStmtCache> plugin_stmts_;
  // The same for each reader connection, by its handle; finalized before
  // readers_ closes them (the pool never closes a reader before: see
  // ReaderPool).
  std::mutex reader_stmts_mu_;
  std::map<std::pair<sqlite3*, bool>, std::unique_ptr<PluginStmtCache>> reader_stmts_;  // guarded by reader_stmts_mu_
  std::atomic<int64_t> reader_prepares_{0};
};

// Plugins' statements kept prepared on one connection for their next use,
// by plugin and text: each plugin's own, so a statement is only ever run by
// the plugin whose fence checked it (the fence also checks it again if a
// schema change makes SQLite prepare it anew). At most kMaxStatements; the
// lot is dropped when full (plugins that build statements from their input
// would otherwise fill it without end). Not thread-safe: used under the
// lock of its connection.
struct SqliteStore::PluginStmtCache {
  static constexpr size_t kMaxStatements = 256;
  PluginStmtCache() = default;
  ~PluginStmtCache() { clear(); }
  PluginStmtCache(const PluginStmtCache&) = delete;
  PluginStmtCache& operator=(const PluginStmtCache&) = delete;
  // Finalizes every statement kept.
  void clear() {
    for (auto& kept : statements) sqlite3_finalize(kept.second);
    statements.clear();
  }
  // Key: the plugin's id, a NUL, the statement as prepared.
  std::unordered_map<std::string, sqlite3_stmt*> statements;
};

}  // namespace opk::store::internal

#endif
