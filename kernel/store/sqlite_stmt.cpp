// The hot path's statements (sqlite_stmt.h): their SQL, prepared once on the
// writer connection.
#include "store/sqlite_stmt.h"

namespace opk::store::internal {

Statements::Statements(sqlite3* db)
    : insert_run(db, insert_runs_sql(1).c_str()),
      insert_runs(db, insert_runs_sql(kRunsPerInsert).c_str()),
      insert_states(db, "INSERT INTO run_state (id, phase) SELECT id, 'PENDING' FROM runs WHERE id BETWEEN ? AND ?"),
      insert_state(db,
                   "INSERT INTO run_state (id, phase, outcome, hold, terminated, started_ms, finished_ms, "
                   "exit_code, summary, progress, progress_message, output_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"),
      mark_running(db,
                   "UPDATE run_state SET phase = 'RUNNING', started_ms = ?, node = ? WHERE id = ? AND phase = "
                   "'PENDING' AND hold = 0"),
      mark_running_all(db,
                       "UPDATE run_state SET phase = 'RUNNING', started_ms = ?, node = ? WHERE id IN (SELECT "
                       "value FROM json_each(?)) AND phase = 'PENDING' AND hold = 0"),
      complete(db,
               "UPDATE run_state SET phase = 'COMPLETED', outcome = ?, terminated = ?, finished_ms = MAX(?, 1), "
               "exit_code = ?, summary = ?, progress = ?, progress_message = ?, output_json = ?, logs = ? WHERE "
               "id = ? AND phase <> 'COMPLETED'"),
      inline_max_seq(db,
                     "SELECT COALESCE(MAX(j.value ->> 0), 0) FROM run_state s, json_each(s.logs) j WHERE s.id = "
                     "? AND s.logs <> ''"),
      insert_log(db,
                 "INSERT OR IGNORE INTO run_logs (run_id, seq, time_ms, level, step, message) VALUES "
                 "(?,?,?,?,?,?)"),
      insert_step(db,
                  "INSERT OR REPLACE INTO run_steps (run_id, seq, step_id, start_ms, end_ms, outcome, "
                  "summary) VALUES (?,?,?,?,?,?,?)"),
      insert_audit(db,
                   "INSERT INTO audit (time_ms, actor, role, action, target, reason, params_json, outcome, "
                   "source) VALUES (?,?,?,?,?,?,?,?,?)"),
      insert_audit_range(db,
                         "INSERT INTO audit (time_ms, actor, role, action, target, reason, params_json, outcome, "
                         "source) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'ok: run ' || id, ?8 FROM runs WHERE id "
                         "BETWEEN ?9 AND ?10 ORDER BY id"),
      set_next_run(db, "UPDATE scheduled_jobs SET next_run_ms = ? WHERE id = ?"),
      job_exists(db, "SELECT 1 FROM scheduled_jobs WHERE id = ?"),
      begin(db, "BEGIN IMMEDIATE"),
      commit(db, "COMMIT"),
      rollback(db, "ROLLBACK"),
      savepoint(db, "SAVEPOINT w"),
      release(db, "RELEASE w"),
      rollback_to(db, "ROLLBACK TO w"),
      claim_savepoint(db, "SAVEPOINT c"),
      claim_release(db, "RELEASE c"),
      claim_rollback(db, "ROLLBACK TO c"),
      write_probe(db,
                  "INSERT INTO store_marks (name, value) VALUES ('write_probe', ?) ON CONFLICT (name) DO UPDATE "
                  "SET value = excluded.value"),
      page_count(db, "PRAGMA page_count"),
      max_page_count(db, "PRAGMA max_page_count"),
      freelist_count(db, "PRAGMA freelist_count"),
      page_size(db, "PRAGMA page_size") {
  for (size_t i = 0; i < kInsertKinds; ++i) {
    runs_by_size_[i] = std::make_unique<Stmt>(db, insert_runs_sql(kInsertSizes[i]).c_str());
    audits_by_size_[i] = std::make_unique<Stmt>(db, insert_audits_sql(kInsertSizes[i]).c_str());
    events_by_size_[i] = std::make_unique<Stmt>(db, insert_events_sql(kInsertSizes[i]).c_str());
  }
}

namespace {

size_t size_index(size_t rows) {
  for (size_t i = 0; i < kInsertKinds; ++i)
    if (kInsertSizes[i] == rows) return i;
  throw std::logic_error("no insert statement for " + std::to_string(rows) + " rows");
}

}  // namespace

Stmt& Statements::insert_runs_of(size_t rows) {
  return *runs_by_size_[size_index(rows)];
}

Stmt& Statements::insert_audits_of(size_t rows) {
  return *audits_by_size_[size_index(rows)];
}

Stmt& Statements::insert_events_of(size_t rows) {
  return *events_by_size_[size_index(rows)];
}

std::string Statements::insert_events_sql(size_t rows) {
  // Portable: $n parameters, one multi-row VALUES.
  std::string sql = "INSERT INTO events (seq, time_ms, kind, scope, scope_path, subject, payload_json) VALUES ";
  for (size_t i = 0; i < rows; ++i) {
    sql += i ? ",(" : "(";
    for (size_t c = 1; c <= kEventColumns; ++c) sql += (c > 1 ? ",$" : "$") + std::to_string(i * kEventColumns + c);
    sql += ")";
  }
  return sql;
}

std::string Statements::insert_audits_sql(size_t rows) {
  std::string sql =
      "INSERT INTO audit (time_ms, actor, role, action, target, reason, params_json, outcome, source) VALUES ";
  for (size_t i = 0; i < rows; ++i) sql += i ? ",(?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?)";
  return sql;
}

std::string Statements::insert_runs_sql(size_t rows) {
  std::string sql =
      "INSERT INTO runs (job_type, scheduled_job_id, slot_ms, trigger, params_json, target_tenant, dry_run, "
      "range_start_ms, range_end_ms, user_id, role, scope, reason, parent_run_id, priority, pool, scheduled_ms, "
      "created_ms) VALUES ";
  for (size_t i = 0; i < rows; ++i)
    sql += i ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  return sql + " ON CONFLICT DO NOTHING";
}

}  // namespace opk::store::internal
