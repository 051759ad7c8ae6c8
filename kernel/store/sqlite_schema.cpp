// The embedded store's schema: the kernel's migrations, version by version,
// and how any owner's migrations (the kernel's, a plugin's) are applied and
// recorded in schema_migrations.
#include "store/sqlite_internal.h"

namespace opk::store::internal {

using namespace Poco::Data::Keywords;

// The kernel's own schema, version by version. Append only.
const std::vector<Migration> kKernelMigrations = {
    {1, "runs, scheduled jobs, logs, steps, audit", R"SQL(
CREATE TABLE scheduled_jobs (
  id TEXT PRIMARY KEY,
  job_type TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  owner TEXT NOT NULL DEFAULT '',
  planning TEXT NOT NULL CHECK (planning IN ('automatic', 'scheduled', 'disabled')),
  cron TEXT NOT NULL DEFAULT '',
  time_zone TEXT NOT NULL DEFAULT 'UTC',
  jitter_minutes INTEGER NOT NULL DEFAULT 0,
  params_json TEXT NOT NULL DEFAULT '{}',
  enabled INTEGER NOT NULL DEFAULT 1,
  scope TEXT NOT NULL DEFAULT 'platform',
  region TEXT NOT NULL DEFAULT '',
  report_recipients TEXT NOT NULL DEFAULT '',
  next_run_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_type TEXT NOT NULL,
  scheduled_job_id TEXT NOT NULL DEFAULT '',
  slot_ms INTEGER NOT NULL DEFAULT 0,
  phase TEXT NOT NULL,
  outcome TEXT NOT NULL,
  trigger TEXT NOT NULL,
  params_json TEXT NOT NULL,
  target_tenant TEXT NOT NULL DEFAULT '',
  dry_run INTEGER NOT NULL DEFAULT 0,
  range_start_ms INTEGER NOT NULL DEFAULT 0,
  range_end_ms INTEGER NOT NULL DEFAULT 0,
  user_id TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL DEFAULT '',
  scope TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  parent_run_id INTEGER NOT NULL DEFAULT 0,
  hold INTEGER NOT NULL DEFAULT 0,
  terminated INTEGER NOT NULL DEFAULT 0,
  stale INTEGER NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL DEFAULT 0,
  pool TEXT NOT NULL DEFAULT 'default',
  scheduled_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  exit_code INTEGER NOT NULL DEFAULT 0,
  summary TEXT NOT NULL DEFAULT '',
  progress REAL NOT NULL DEFAULT 0,
  progress_message TEXT NOT NULL DEFAULT '',
  output_json TEXT NOT NULL DEFAULT '',
  node TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX runs_slot ON runs (scheduled_job_id, slot_ms) WHERE slot_ms <> 0;
CREATE INDEX runs_phase ON runs (phase, priority DESC, scheduled_ms, id);
CREATE INDEX runs_job ON runs (scheduled_job_id, id DESC);
CREATE INDEX runs_finished ON runs (finished_ms) WHERE phase = 'COMPLETED';
CREATE TABLE run_logs (
  run_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  level INTEGER NOT NULL,
  step TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL,
  PRIMARY KEY (run_id, seq));
CREATE TABLE run_steps (
  run_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  summary TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, seq));
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT '',
  action TEXT NOT NULL,
  target TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '')
)SQL"},
    // Cheaper writes on the hot path: run and audit ids from the rowid instead
    // of AUTOINCREMENT (prune() never deletes the newest run, so job numbers
    // are not reused); partial indexes so a run leaves the queue indexes when
    // it completes; ad-hoc runs stay out of the per-job index; log and step
    // rows clustered by their key.
    {2, "lighter run indexes and ids", R"SQL(
CREATE TABLE runs_v2 (
  id INTEGER PRIMARY KEY,
  job_type TEXT NOT NULL,
  scheduled_job_id TEXT NOT NULL DEFAULT '',
  slot_ms INTEGER NOT NULL DEFAULT 0,
  phase TEXT NOT NULL,
  outcome TEXT NOT NULL,
  trigger TEXT NOT NULL,
  params_json TEXT NOT NULL,
  target_tenant TEXT NOT NULL DEFAULT '',
  dry_run INTEGER NOT NULL DEFAULT 0,
  range_start_ms INTEGER NOT NULL DEFAULT 0,
  range_end_ms INTEGER NOT NULL DEFAULT 0,
  user_id TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL DEFAULT '',
  scope TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  parent_run_id INTEGER NOT NULL DEFAULT 0,
  hold INTEGER NOT NULL DEFAULT 0,
  terminated INTEGER NOT NULL DEFAULT 0,
  stale INTEGER NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL DEFAULT 0,
  pool TEXT NOT NULL DEFAULT 'default',
  scheduled_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  exit_code INTEGER NOT NULL DEFAULT 0,
  summary TEXT NOT NULL DEFAULT '',
  progress REAL NOT NULL DEFAULT 0,
  progress_message TEXT NOT NULL DEFAULT '',
  output_json TEXT NOT NULL DEFAULT '',
  node TEXT NOT NULL DEFAULT '');
INSERT INTO runs_v2 SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v2 RENAME TO runs;
CREATE UNIQUE INDEX runs_slot ON runs (scheduled_job_id, slot_ms) WHERE slot_ms <> 0;
CREATE INDEX runs_pending ON runs (priority DESC, scheduled_ms, id) WHERE phase = 'PENDING';
CREATE INDEX runs_running ON runs (started_ms) WHERE phase = 'RUNNING';
CREATE INDEX runs_job ON runs (scheduled_job_id, id DESC) WHERE scheduled_job_id <> '';
CREATE INDEX runs_finished ON runs (finished_ms) WHERE phase = 'COMPLETED';
CREATE TABLE run_logs_v2 (
  run_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  level INTEGER NOT NULL,
  step TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
INSERT INTO run_logs_v2 SELECT * FROM run_logs;
DROP TABLE run_logs;
ALTER TABLE run_logs_v2 RENAME TO run_logs;
CREATE TABLE run_steps_v2 (
  run_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  step_id TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  summary TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
INSERT INTO run_steps_v2 SELECT * FROM run_steps;
DROP TABLE run_steps;
ALTER TABLE run_steps_v2 RENAME TO run_steps;
CREATE TABLE audit_v2 (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT '',
  action TEXT NOT NULL,
  target TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '');
INSERT INTO audit_v2 SELECT * FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v2 RENAME TO audit
)SQL"},
    {3, "tenancy hierarchy, users, API tokens", R"SQL(
CREATE TABLE nodes (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('distributor', 'partner', 'tenant', 'subscription')),
  name TEXT NOT NULL DEFAULT '',
  parent TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  scope TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL);
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  label TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL DEFAULT 0,
  revoked_ms INTEGER NOT NULL DEFAULT 0);
CREATE INDEX tokens_user ON tokens (user_id)
)SQL"},
    // A run's state apart from what never changes after it is created: the
    // RUNNING and COMPLETED writes rewrite a narrow row of run_state instead
    // of the wide row of runs (parameters, reason, who asked), which measured
    // 3 to 4 times cheaper. Open runs are found through an index on
    // finished_ms = 0, which the RUNNING write does not touch; completed runs
    // always have finished_ms > 0. There is no index of finish times (it
    // measured a fifth of a completion's cost): pruning walks the oldest runs
    // by id instead. run_rows joins both for reading. A run that logged only
    // a few lines, all at its completion (most short runs), keeps them in
    // run_state.logs (a JSON array of [seq, time_ms, level, step, message])
    // instead of rows of run_logs: one write less per run; run_log_rows reads
    // both.
    {4, "run state apart from the run request", R"SQL(
CREATE TABLE run_state (
  id INTEGER PRIMARY KEY,
  phase TEXT NOT NULL,
  outcome TEXT NOT NULL DEFAULT 'NORMAL',
  hold INTEGER NOT NULL DEFAULT 0,
  terminated INTEGER NOT NULL DEFAULT 0,
  stale INTEGER NOT NULL DEFAULT 0,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  exit_code INTEGER NOT NULL DEFAULT 0,
  node TEXT NOT NULL DEFAULT '',
  summary TEXT NOT NULL DEFAULT '',
  progress REAL NOT NULL DEFAULT 0,
  progress_message TEXT NOT NULL DEFAULT '',
  output_json TEXT NOT NULL DEFAULT '',
  logs TEXT NOT NULL DEFAULT '');
INSERT INTO run_state (id, phase, outcome, hold, terminated, stale, started_ms, finished_ms, exit_code, node,
  summary, progress, progress_message, output_json) SELECT id, phase, outcome, hold, terminated, stale, started_ms,
  CASE WHEN phase = 'COMPLETED' AND finished_ms <= 0 THEN MAX(created_ms, 1) ELSE finished_ms END,
  exit_code, node, summary, progress, progress_message, output_json FROM runs;
CREATE TABLE runs_v4 (
  id INTEGER PRIMARY KEY,
  job_type TEXT NOT NULL,
  scheduled_job_id TEXT NOT NULL DEFAULT '',
  slot_ms INTEGER NOT NULL DEFAULT 0,
  trigger TEXT NOT NULL,
  params_json TEXT NOT NULL,
  target_tenant TEXT NOT NULL DEFAULT '',
  dry_run INTEGER NOT NULL DEFAULT 0,
  range_start_ms INTEGER NOT NULL DEFAULT 0,
  range_end_ms INTEGER NOT NULL DEFAULT 0,
  user_id TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL DEFAULT '',
  scope TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  parent_run_id INTEGER NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL DEFAULT 0,
  pool TEXT NOT NULL DEFAULT 'default',
  scheduled_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL);
INSERT INTO runs_v4 SELECT id, job_type, scheduled_job_id, slot_ms, trigger, params_json, target_tenant, dry_run,
  range_start_ms, range_end_ms, user_id, role, scope, reason, parent_run_id, priority, pool, scheduled_ms, created_ms
  FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v4 RENAME TO runs;
CREATE UNIQUE INDEX runs_slot ON runs (scheduled_job_id, slot_ms) WHERE slot_ms <> 0;
CREATE INDEX runs_job ON runs (scheduled_job_id, id DESC) WHERE scheduled_job_id <> '';
CREATE INDEX run_state_open ON run_state (id) WHERE finished_ms = 0;
CREATE VIEW run_rows AS SELECT r.id AS id, r.job_type AS job_type, r.scheduled_job_id AS scheduled_job_id,
  r.slot_ms AS slot_ms, s.phase AS phase, s.outcome AS outcome, r.trigger AS trigger, r.params_json AS params_json,
  r.target_tenant AS target_tenant, r.dry_run AS dry_run, r.range_start_ms AS range_start_ms,
  r.range_end_ms AS range_end_ms, r.user_id AS user_id, r.role AS role, r.scope AS scope, r.reason AS reason,
  r.parent_run_id AS parent_run_id, s.hold AS hold, s.terminated AS terminated, s.stale AS stale,
  r.priority AS priority, r.pool AS pool, r.scheduled_ms AS scheduled_ms, r.created_ms AS created_ms,
  s.started_ms AS started_ms, s.finished_ms AS finished_ms, s.exit_code AS exit_code, s.summary AS summary,
  s.progress AS progress, s.progress_message AS progress_message, s.output_json AS output_json, s.node AS node
  FROM runs r JOIN run_state s ON s.id = r.id;
CREATE VIEW run_log_rows AS
  SELECT run_id, seq, time_ms, level, step, message FROM run_logs
  UNION ALL
  SELECT s.id, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4
  FROM run_state s, json_each(s.logs) j WHERE s.logs <> ''
)SQL"},
    // Open runs (not COMPLETED) without an index: the index of
    // finished_ms = 0 cost an entry at every run's creation and its removal
    // at completion, a tenth of the store's work per run. Instead the store
    // keeps a mark, open_from: every run below it is completed, except the
    // few listed in lingering_runs (open runs that fell far behind the
    // newest, such as a held run or a long one). Open runs are read from
    // the mark onwards plus the lingering ones; the store moves the mark as
    // runs complete, each run passing under it once (advance_open_mark).
    {5, "open runs from a low-water mark instead of an index", R"SQL(
CREATE TABLE store_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE lingering_runs (id INTEGER PRIMARY KEY);
INSERT INTO store_marks VALUES ('open_from', COALESCE((SELECT MIN(id) FROM run_state WHERE finished_ms = 0),
  (SELECT COALESCE(MAX(id), 0) + 1 FROM run_state)));
DROP INDEX run_state_open;
CREATE VIEW open_runs AS
  SELECT id FROM run_state
  WHERE id >= (SELECT value FROM store_marks WHERE name = 'open_from') AND finished_ms = 0
  UNION ALL
  SELECT s.id FROM lingering_runs l JOIN run_state s ON s.id = l.id
  WHERE s.finished_ms = 0 AND l.id < (SELECT value FROM store_marks WHERE name = 'open_from')
)SQL"},
    // Who cancelled a run: the user id of the operator who cancelled it, or
    // "kernel" when the kernel stopped it; empty for a run nobody cancelled
    // (one that failed, timed out, or was recovered). A cancelled run is
    // shown as cancelled, not as failed. run_rows is redefined to carry it.
    {6, "who cancelled a run", R"SQL(
ALTER TABLE run_state ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';
DROP VIEW run_rows;
CREATE VIEW run_rows AS SELECT r.id AS id, r.job_type AS job_type, r.scheduled_job_id AS scheduled_job_id,
  r.slot_ms AS slot_ms, s.phase AS phase, s.outcome AS outcome, r.trigger AS trigger, r.params_json AS params_json,
  r.target_tenant AS target_tenant, r.dry_run AS dry_run, r.range_start_ms AS range_start_ms,
  r.range_end_ms AS range_end_ms, r.user_id AS user_id, r.role AS role, r.scope AS scope, r.reason AS reason,
  r.parent_run_id AS parent_run_id, s.hold AS hold, s.terminated AS terminated, s.stale AS stale,
  r.priority AS priority, r.pool AS pool, r.scheduled_ms AS scheduled_ms, r.created_ms AS created_ms,
  s.started_ms AS started_ms, s.finished_ms AS finished_ms, s.exit_code AS exit_code, s.summary AS summary,
  s.progress AS progress, s.progress_message AS progress_message, s.output_json AS output_json, s.node AS node,
  s.cancelled_by AS cancelled_by
  FROM runs r JOIN run_state s ON s.id = r.id
)SQL"},
    // Alerts and their history (kernel/alerts). Portable as written: ids
    // are assigned by the store, at most one alert is open per (source,
    // related object) through a partial unique index, and every list
    // filter and order has an index whose last column is the id (keyset
    // paging). scope_path ("/platform/distributor:d1/.../<scope>/") lets
    // a reader's subtree be part of the query.
    {7, "alerts and their history", R"SQL(
CREATE TABLE alerts (
  id BIGINT PRIMARY KEY,
  source TEXT NOT NULL,
  plugin TEXT NOT NULL DEFAULT '',
  type TEXT NOT NULL,
  severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  severity_rank BIGINT NOT NULL,
  area TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  related_type TEXT NOT NULL,
  related_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  scope_level TEXT NOT NULL,
  scope_path TEXT NOT NULL,
  platform_only BIGINT NOT NULL DEFAULT 0,
  custom BIGINT NOT NULL DEFAULT 0,
  details_json TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'escalated', 'closed')),
  escalation_level BIGINT NOT NULL DEFAULT 0,
  escalated_rules TEXT NOT NULL DEFAULT '',
  first_seen_ms BIGINT NOT NULL,
  last_seen_ms BIGINT NOT NULL,
  occurrences BIGINT NOT NULL DEFAULT 1,
  acknowledged_by TEXT,
  acknowledged_ms BIGINT,
  closed_by TEXT,
  closed_ms BIGINT,
  close_kind TEXT,
  close_reason TEXT,
  silenced_until_ms BIGINT,
  previous_id BIGINT,
  flapping BIGINT NOT NULL DEFAULT 0,
  clean_sweeps BIGINT NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX alerts_open_key ON alerts (source, related_type, related_id) WHERE closed_ms IS NULL;
CREATE INDEX alerts_chain ON alerts (source, related_type, related_id, id);
CREATE INDEX alerts_last_seen ON alerts (last_seen_ms, id);
CREATE INDEX alerts_first_seen ON alerts (first_seen_ms, id);
CREATE INDEX alerts_severity ON alerts (severity_rank, id);
CREATE INDEX alerts_status ON alerts (status, last_seen_ms, id);
CREATE INDEX alerts_scope ON alerts (scope_path);
CREATE INDEX alerts_counts ON alerts (status, severity, source);
CREATE TABLE alert_events (
  alert_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  time_ms BIGINT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  details_json TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (alert_id, seq))
)SQL"},
    // The event log (kernel/events): run and alert events written in the
    // same transaction as the change they report, and plugins' events. seq
    // is assigned by the store in commit order (portable: no AUTOINCREMENT
    // or sequence; on SQLite, INTEGER PRIMARY KEY makes it the rowid, so an
    // event costs one b-tree insert; PostgreSQL's store declares it BIGINT).
    // No other index: readers go by seq, and pruning walks the oldest seqs.
    // event_consumers holds each consumer's acknowledged seq, which
    // retention keeps (docs/events.md).
    {8, "the event log", R"SQL(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  time_ms BIGINT NOT NULL,
  kind TEXT NOT NULL,
  scope TEXT NOT NULL,
  scope_path TEXT NOT NULL,
  subject TEXT NOT NULL DEFAULT '',
  payload_json TEXT NOT NULL);
CREATE TABLE event_consumers (
  consumer TEXT PRIMARY KEY,
  seq BIGINT NOT NULL,
  acked_ms BIGINT NOT NULL)
)SQL"},
    // Idempotency keys of plugins' events (emit's "key"): at most one event
    // per (plugin, key), enforced by the primary key, so a second emit
    // under a key (a rerun, a retry, another kernel on this store) finds
    // the first and writes nothing. A key keeps its first event's seq; it is
    // not deleted when the event is pruned, or the key would stop holding.
    {9, "idempotency keys of plugins' events", R"SQL(
CREATE TABLE event_keys (
  owner TEXT NOT NULL,
  event_key TEXT NOT NULL,
  seq BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (owner, event_key))
)SQL"},
    // Every attempt to apply a migration (the kernel's or a plugin's):
    // applied ones with the time their script took, written in the
    // migration's transaction; failed ones, rolled back, with the
    // database's message, written after the rollback (migration status,
    // opk.migrations/1). Portable.
    {10, "migration attempts", R"SQL(
CREATE TABLE migration_attempts (
  owner TEXT NOT NULL,
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  started_ms BIGINT NOT NULL,
  duration_us BIGINT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'failed')),
  error TEXT NOT NULL DEFAULT '');
CREATE INDEX migration_attempts_owner ON migration_attempts (owner, version)
)SQL"},
    // Why a run was terminated rather than finished (store.h, kEndOperator
    // ...): an operator's cancel (end_by, end_reason), its timeout
    // (end_limit_ms), the kernel's shutdown, a crash recovered at the next
    // start, or an operator's recovery of a stale run; empty for a run that
    // ended on its own. Such runs are shown apart and are not failures. Runs
    // stored before get their cause from who cancelled them and from the
    // summaries the kernel wrote. run_rows is redefined to carry the
    // columns. Portable.
    {11, "why a run was terminated", R"SQL(
ALTER TABLE run_state ADD COLUMN end_cause TEXT NOT NULL DEFAULT '';
ALTER TABLE run_state ADD COLUMN end_by TEXT NOT NULL DEFAULT '';
ALTER TABLE run_state ADD COLUMN end_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE run_state ADD COLUMN end_limit_ms BIGINT NOT NULL DEFAULT 0;
UPDATE run_state SET end_cause = CASE WHEN cancelled_by = 'kernel' THEN 'shutdown' ELSE 'operator' END,
  end_by = cancelled_by WHERE phase = 'COMPLETED' AND cancelled_by <> '';
UPDATE run_state SET end_cause = 'crash' WHERE phase = 'COMPLETED' AND terminated = 1 AND end_cause = '' AND
  summary = 'the kernel stopped while the run was in flight; recovered at start';
UPDATE run_state SET end_cause = 'timeout' WHERE phase = 'COMPLETED' AND terminated = 1 AND end_cause = '' AND
  summary LIKE 'timed out and did not stop within %';
UPDATE run_state SET end_cause = 'stale' WHERE phase = 'COMPLETED' AND terminated = 1 AND end_cause = '' AND
  summary LIKE 'recovered by % after running too long: %';
DROP VIEW run_rows;
CREATE VIEW run_rows AS SELECT r.id AS id, r.job_type AS job_type, r.scheduled_job_id AS scheduled_job_id,
  r.slot_ms AS slot_ms, s.phase AS phase, s.outcome AS outcome, r.trigger AS trigger, r.params_json AS params_json,
  r.target_tenant AS target_tenant, r.dry_run AS dry_run, r.range_start_ms AS range_start_ms,
  r.range_end_ms AS range_end_ms, r.user_id AS user_id, r.role AS role, r.scope AS scope, r.reason AS reason,
  r.parent_run_id AS parent_run_id, s.hold AS hold, s.terminated AS terminated, s.stale AS stale,
  r.priority AS priority, r.pool AS pool, r.scheduled_ms AS scheduled_ms, r.created_ms AS created_ms,
  s.started_ms AS started_ms, s.finished_ms AS finished_ms, s.exit_code AS exit_code, s.summary AS summary,
  s.progress AS progress, s.progress_message AS progress_message, s.output_json AS output_json, s.node AS node,
  s.cancelled_by AS cancelled_by, s.end_cause AS end_cause, s.end_by AS end_by, s.end_reason AS end_reason,
  s.end_limit_ms AS end_limit_ms
  FROM runs r JOIN run_state s ON s.id = r.id
)SQL"},
    // Several kernels on one store (the PostgreSQL store; the embedded one
    // serves one kernel and leaves them empty): each kernel as a node with
    // its lease, status and epoch; on each run state, the epoch of the claim
    // that holds it (a result is stored only while its node holds the run at
    // that epoch) and a cancel asked through another kernel for the node
    // that runs it. Portable.
    {12, "nodes of a cluster, claims' epochs, cancel requests", R"SQL(
CREATE TABLE cluster_nodes (
  id TEXT PRIMARY KEY,
  version TEXT NOT NULL DEFAULT '',
  pools TEXT NOT NULL DEFAULT '',
  plugins TEXT NOT NULL DEFAULT '',
  job_types TEXT NOT NULL DEFAULT '',
  started_ms BIGINT NOT NULL DEFAULT 0,
  heartbeat_ms BIGINT NOT NULL DEFAULT 0,
  lease_until_ms BIGINT NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'idle',
  drain_reason TEXT NOT NULL DEFAULT '',
  epoch BIGINT NOT NULL DEFAULT 0);
ALTER TABLE run_state ADD COLUMN claim_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE run_state ADD COLUMN cancel_request_by TEXT NOT NULL DEFAULT '';
ALTER TABLE run_state ADD COLUMN cancel_request_reason TEXT NOT NULL DEFAULT ''
)SQL"},
};

Status SqliteStore::migrate(const std::string& owner, const std::vector<Migration>& migrations) {
  std::lock_guard lock(write_mu_);
  try {
    int current = 0;
    std::string o = owner;
    *writer_ << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE owner = $1", use(o), into(current), now;
    int last = current;
    // The kernel's attempts made before migration_attempts exists, written
    // with the migration that makes it.
    std::string unrecorded;
    for (const auto& m : migrations) {
      if (m.version <= last && m.version <= current) continue;
      if (m.version != last + 1)
        return Status::invalid("migrations of '" + owner + "': version " + std::to_string(m.version) + " follows " +
                               std::to_string(last) + " (versions must be 1, 2, 3 ...)");
      std::string msg;
      auto exec = [&](const std::string& sql) {
        char* err = nullptr;
        if (sqlite3_exec(db(), sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK) return true;
        msg = err ? err : "unknown error";
        sqlite3_free(err);
        return false;
      };
      const int64_t started = now_ms();
      const auto t0 = std::chrono::steady_clock::now();
      const auto attempt = [&](bool applied, const std::string& error) {
        const int64_t us =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        return "INSERT INTO migration_attempts VALUES ('" + escape(owner) + "', " + std::to_string(m.version) + ", '" +
               escape(m.name) + "', " + std::to_string(started) + ", " + std::to_string(us) + ", '" +
               (applied ? "applied" : "failed") + "', '" + escape(error) + "');\n";
      };
      const bool recorded = owner != "kernel" || m.version >= kMigrationAttemptsVersion;
      // A plugin's script runs fenced to its own tables; the kernel's own
      // bookkeeping around it does not.
      bool applied =
          exec("BEGIN IMMEDIATE") && (owner == "kernel" ? exec(m.sql) : exec_plugin_script(db(), owner, m.sql, &msg));
      if (applied) {
        std::string record = "INSERT INTO schema_migrations VALUES ('" + escape(owner) + "', " +
                             std::to_string(m.version) + ", '" + escape(m.name) + "', " + std::to_string(now_ms()) +
                             ");\n";
        if (recorded)
          record += unrecorded + attempt(true, "");
        else
          unrecorded += attempt(true, "");
        applied = exec(record + "COMMIT;");
        if (applied && recorded) unrecorded.clear();  // written once, with the first recorded version
      }
      if (!applied) {
        sqlite3_exec(db(), "ROLLBACK", nullptr, nullptr, nullptr);
        std::string unsaved;
        if (owner != "kernel" || m.version > kMigrationAttemptsVersion) {  // its table exists
          char* err = nullptr;
          if (sqlite3_exec(db(), attempt(false, msg).c_str(), nullptr, nullptr, &err) != SQLITE_OK)
            unsaved = std::string(" (the failed attempt was not recorded: ") + (err ? err : "unknown error") + ")";
          sqlite3_free(err);
        }
        return Status::invalid("migration " + owner + " #" + std::to_string(m.version) + " (" + m.name +
                               ") failed and was rolled back: " + msg + unsaved);
      }
      last = m.version;
    }
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
  return Status::ok();
}

StatusOr<std::vector<AppliedMigration>> SqliteStore::applied_migrations() {
  std::vector<std::vector<std::string>> rs;
  if (Status s = read_rows(
          "migrations", "SELECT owner, version, name, applied_ms FROM schema_migrations ORDER BY owner, version", &rs);
      !s)
    return s;
  std::vector<AppliedMigration> out;
  for (size_t r = 0; r < rs.size(); ++r) out.push_back({rs[r][0], std::stoi(rs[r][1]), rs[r][2], std::stoll(rs[r][3])});
  return out;
}

StatusOr<std::vector<MigrationAttempt>> SqliteStore::migration_attempts() {
  std::vector<std::vector<std::string>> rs;
  if (Status s = read_rows("migration attempts",
                           "SELECT owner, version, name, started_ms, duration_us, outcome, error FROM "
                           "migration_attempts ORDER BY started_ms, owner, version, outcome DESC",
                           &rs);
      !s)
    return s;
  std::vector<MigrationAttempt> out;
  for (const auto& r : rs)
    out.push_back({r[0], std::stoi(r[1]), r[2], std::stoll(r[3]), std::stoll(r[4]), r[5] == "applied", r[6]});
  return out;
}

}  // namespace opk::store::internal

namespace opk::store {

const std::vector<Migration>& sqlite_kernel_migrations() {
  return internal::kKernelMigrations;
}

}  // namespace opk::store
