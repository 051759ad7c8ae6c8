// The embedded store: SQLite through Poco Data, in WAL mode.
//
// Reads, migrations and rare writes go through Poco Data. The hot-path writes
// (create / mark running / complete runs, log lines) use SQLite statements
// prepared once on the writer connection (reached through Poco's dbHandle):
// Poco 1.11 re-prepares a statement on every execute(), which measured 2-3x
// slower for batches on this machine. Every hot-path call
// takes a vector and writes it in one transaction: callers group commits.
//
// SQL here is the SQLite dialect; it is the only file that has it.
#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "store/store.h"

namespace opk::store {
namespace {

using namespace Poco::Data::Keywords;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

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
};

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

constexpr int kWriterCacheKiB = 8192;  // the writer's page cache
constexpr int kReaderCacheKiB = 1024;  // each reader's page cache
constexpr size_t kMaxReaders = 64;
// A run's lines are kept in its state row when it logged at most this many,
// of at most this much text, all at its completion.
constexpr size_t kInlineLines = 8;
constexpr size_t kInlineBytes = 2048;
// Urgent writes get a commit of their own when the rest of their group
// changes at least this many rows (an fsync costs about as much as writing
// a few hundred rows here).
constexpr size_t kSplitRows = 256;
// The open-runs mark moves every this many new runs; a run still open this
// many ids behind the newest is listed as lingering (migration 5). Reading
// the open runs then reads at most about the sum of both.
constexpr int64_t kMarkEvery = 4096;
// New runs without a schedule slot are inserted this many per statement.
constexpr size_t kRunsPerInsert = 32;
constexpr size_t kRunColumns = 18;  // parameters per run in insert_runs
constexpr int64_t kLingerIds = 10000;
// writable() writes a test row at most this often while the store is healthy.
constexpr int64_t kProbeEveryMs = 1000;
// With less room than this left on its file system, or within the size
// limit SQLite was given, the store counts as full (writable()).
constexpr uint64_t kMinFreeBytes = 1 << 20;
// Problems a check at open reports at most.
constexpr int kCheckProblems = 5;

// The name of a SQLite error of the disk or the file (full, I/O, damaged,
// read-only), or nullptr for other errors (constraints, SQL, busy).
const char* disk_error_name(int extended_code) {
  switch (extended_code & 0xff) {
    case SQLITE_FULL:
      return "SQLITE_FULL";
    case SQLITE_IOERR:
      return "SQLITE_IOERR";
    case SQLITE_CORRUPT:
      return "SQLITE_CORRUPT";
    case SQLITE_NOTADB:
      return "SQLITE_NOTADB";
    case SQLITE_READONLY:
      return "SQLITE_READONLY";
    case SQLITE_CANTOPEN:
      return "SQLITE_CANTOPEN";
    case SQLITE_NOMEM:
      return "SQLITE_NOMEM";
    default:
      return nullptr;
  }
}

// The pool of read connections; each new one gets a bounded page cache.
class ReaderPool final : public Poco::Data::SessionPool {
 public:
  explicit ReaderPool(const std::string& path) : SessionPool("SQLite", path, 1, kMaxReaders, 60) {}

 protected:
  void customizeSession(Poco::Data::Session& session) override {
    session << "PRAGMA cache_size=-" + std::to_string(kReaderCacheKiB), Poco::Data::Keywords::now;
  }
};

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

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, bool full, FlushFile flush, OpenCheck check)
      : path_(std::move(path)),
        full_(full),
        flush_(flush ? std::move(flush) : [](int fd) { return ::fdatasync(fd) == 0 ? 0 : errno; }),
        check_(check) {}
  ~SqliteStore() override {
    if (flusher_.joinable()) {
      {
        std::lock_guard lock(group_mu_);
        stopping_ = true;
      }
      flush_cv_.notify_one();
      flusher_.join();
    }
    if (wal_fd_ >= 0) ::close(wal_fd_);
    std::lock_guard lock(write_mu_);
    stmts_.reset();
  }

  Status open() {
    try {
      configure_sqlite();
      Poco::Data::SQLite::Connector::registerConnector();
      // Poco retries a failing open until its login timeout (60 s by default):
      // check the folder first so a wrong path fails at once, and keep the
      // timeout short.
      const auto dir = std::filesystem::path(path_).parent_path();
      if (!dir.empty() && !std::filesystem::is_directory(dir))
        return Status::unavailable("store " + path_ + ": folder " + dir.string() + " does not exist");
      writer_ = std::make_unique<Poco::Data::Session>("SQLite", path_, 5);
      db_ = Poco::Data::SQLite::Utility::dbHandle(*writer_);
      *writer_ << "PRAGMA journal_mode=WAL", now;
      *writer_ << (full_ ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"), now;
      *writer_ << "PRAGMA busy_timeout=5000", now;
      if (Status c = check_file(); !c) return c;
      // The writer's pages stay valid between its transactions: a larger
      // cache keeps the hot pages of a group commit in memory.
      *writer_ << "PRAGMA cache_size=-" + std::to_string(kWriterCacheKiB), now;
      // Checkpoints run from checkpoint(), off the commit path.
      *writer_ << "PRAGMA wal_autocheckpoint=0", now;
      *writer_ << "PRAGMA foreign_keys=ON", now;
      *writer_ << "CREATE TABLE IF NOT EXISTS schema_migrations (owner TEXT NOT NULL, version INTEGER NOT NULL, "
                  "name TEXT NOT NULL, applied_ms INTEGER NOT NULL, PRIMARY KEY (owner, version))",
          now;
      readers_ = std::make_unique<ReaderPool>(path_);
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store " + path_ + ": " + e.displayText());
    }
    Status s = migrate("kernel", kKernelMigrations);
    if (!s) return s;
    try {
      stmts_ = std::make_unique<Statements>(db());
    } catch (const std::exception& e) {
      return Status(OPK_ERR_INTERNAL, e.what());
    }
    if (full_) flusher_ = std::thread([this] { flush_loop(); });
    return Status::ok();
  }

  // Checks the file as check_ says: OK, or the problems SQLite found (at
  // most kCheckProblems) naming the file as corrupted.
  Status check_file() {
    if (check_ == OpenCheck::none) return Status::ok();
    const char* what = check_ == OpenCheck::full ? "integrity_check" : "quick_check";
    const std::string sql = std::string("PRAGMA ") + what + "(" + std::to_string(kCheckProblems) + ")";
    static constexpr const char* kHeading = "*** in database main ***\n";
    sqlite3_stmt* st = nullptr;
    std::string problems;
    int rc = sqlite3_prepare_v2(db(), sql.c_str(), -1, &st, nullptr);
    if (rc == SQLITE_OK)
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        std::string line = text ? text : "";
        if (line == "ok") continue;
        // One line per problem, without the heading of the (only) database.
        if (line.rfind(kHeading, 0) == 0) line.erase(0, std::strlen(kHeading));
        std::replace(line.begin(), line.end(), '\n', ' ');
        problems += (problems.empty() ? "" : "; ") + line;
      }
    const int code = sqlite3_extended_errcode(db());
    const std::string error = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db());
    sqlite3_finalize(st);
    if (problems.empty() && error.empty()) return Status::ok();
    if (problems.empty() && (code & 0xff) != SQLITE_CORRUPT && (code & 0xff) != SQLITE_NOTADB)
      return Status::unavailable("store " + path_ + ": cannot check the file (" + what + "): " + error);
    return Status::unavailable("store " + path_ + " is corrupted: " + what +
                               " found: " + (problems.empty() ? error : problems) + "; restore it from a backup copy");
  }

  Status migrate(const std::string& owner, const std::vector<Migration>& migrations) override {
    std::lock_guard lock(write_mu_);
    try {
      int current = 0;
      std::string o = owner;
      *writer_ << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE owner = $1", use(o), into(current),
          now;
      int last = current;
      for (const auto& m : migrations) {
        if (m.version <= last && m.version <= current) continue;
        if (m.version != last + 1)
          return Status::invalid("migrations of '" + owner + "': version " + std::to_string(m.version) + " follows " +
                                 std::to_string(last) + " (versions must be 1, 2, 3 ...)");
        char* err = nullptr;
        std::string sql = "BEGIN IMMEDIATE;\n" + m.sql + ";\nINSERT INTO schema_migrations VALUES ('" + escape(owner) +
                          "', " + std::to_string(m.version) + ", '" + escape(m.name) + "', " +
                          std::to_string(now_ms()) + ");\nCOMMIT;";
        if (sqlite3_exec(db(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
          std::string msg = err ? err : "unknown error";
          sqlite3_free(err);
          sqlite3_exec(db(), "ROLLBACK", nullptr, nullptr, nullptr);
          return Status::invalid("migration " + owner + " #" + std::to_string(m.version) + " (" + m.name +
                                 ") failed and was rolled back: " + msg);
        }
        last = m.version;
      }
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: " + e.displayText());
    }
    return Status::ok();
  }

  std::vector<AppliedMigration> applied_migrations() override {
    std::vector<AppliedMigration> out;
    auto rs = query("SELECT owner, version, name, applied_ms FROM schema_migrations ORDER BY owner, version");
    for (size_t r = 0; r < rs.size(); ++r)
      out.push_back({rs[r][0], std::stoi(rs[r][1]), rs[r][2], std::stoll(rs[r][3])});
    return out;
  }

  Status create_scheduled_job(ScheduledJob j) override {
    const Changed changed_after(generation_);
    std::lock_guard lock(write_mu_);
    const int64_t t = now_ms();
    j.created_ms = j.updated_ms = t;
    int enabled = j.enabled ? 1 : 0;
    try {
      *writer_ << "INSERT INTO scheduled_jobs (id, job_type, description, owner, planning, cron, time_zone, "
                  "jitter_minutes, params_json, enabled, scope, region, report_recipients, next_run_ms, created_ms, "
                  "updated_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
          use(j.id), use(j.job_type), use(j.description), use(j.owner), use(j.planning), use(j.cron), use(j.time_zone),
          use(j.jitter_minutes), use(j.params_json), use(enabled), use(j.scope), use(j.region),
          use(j.report_recipients), use(j.next_run_ms), use(j.created_ms), use(j.updated_ms), now;
    } catch (const Poco::Exception& e) {
      if (e.displayText().find("UNIQUE") != std::string::npos)
        return Status::conflict("scheduled job '" + j.id + "' already exists");
      return Status::unavailable("store: " + e.displayText());
    }
    return Status::ok();
  }

  Status update_scheduled_job(const ScheduledJob& in) override {
    const Changed changed_after(generation_);
    std::lock_guard lock(write_mu_);
    ScheduledJob j = in;
    j.updated_ms = now_ms();
    int enabled = j.enabled ? 1 : 0;
    size_t n = 0;
    try {
      Poco::Data::Statement st(*writer_);
      st << "UPDATE scheduled_jobs SET owner=$1, planning=$2, cron=$3, time_zone=$4, jitter_minutes=$5, "
            "params_json=$6, enabled=$7, scope=$8, region=$9, report_recipients=$10, next_run_ms=$11, "
            "updated_ms=$12 WHERE id=$13",
          use(j.owner), use(j.planning), use(j.cron), use(j.time_zone), use(j.jitter_minutes), use(j.params_json),
          use(enabled), use(j.scope), use(j.region), use(j.report_recipients), use(j.next_run_ms), use(j.updated_ms),
          use(j.id);
      n = st.execute();
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: " + e.displayText());
    }
    return n ? Status::ok() : Status::not_found("no scheduled job '" + in.id + "'");
  }

  Status get_scheduled_job(const std::string& id, ScheduledJob* out) override {
    auto all = scheduled(" WHERE j.id = '" + escape(id) + "'");
    if (all.empty()) return Status::not_found("no scheduled job '" + id + "'");
    *out = all.front();
    return Status::ok();
  }

  std::vector<ScheduledJob> list_scheduled_jobs() override { return scheduled(" ORDER BY j.id"); }

  Status set_next_run(const std::string& id, int64_t next_run_ms) override {
    const Changed changed_after(generation_);
    std::lock_guard lock(write_mu_);
    std::string i = id;
    try {
      *writer_ << "UPDATE scheduled_jobs SET next_run_ms = $1 WHERE id = $2", use(next_run_ms), use(i), now;
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: " + e.displayText());
    }
    return Status::ok();
  }

  Status set_next_runs(const std::vector<std::pair<std::string, int64_t>>& next_runs) override {
    const Changed changed_after(generation_);
    if (next_runs.empty()) return Status::ok();

    return grouped(
        [&] {
          auto& st = stmts_->set_next_run;
          for (const auto& [id, ms] : next_runs) {
            st.bind_all(ms, id);
            int rc = st.step();
            st.reset();
            if (rc != SQLITE_DONE) return sql_error("next run");
          }
          return Status::ok();
        },
        next_runs.size());
  }

  const char* dialect() const override { return "sqlite"; }
  uint64_t generation() const override { return generation_.load(std::memory_order_acquire); }

  Status execute(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                 int64_t* changed) override {
    std::lock_guard lock(write_mu_);
    return run_one(db(), sql, params, nullptr, changed);
  }

  Status query(const std::string& sql, const std::vector<std::optional<std::string>>& params,
               std::vector<std::vector<std::optional<std::string>>>* rows) override {
    try {
      Poco::Data::Session s = readers_->get();
      return run_one(Poco::Data::SQLite::Utility::dbHandle(s), sql, params, rows, nullptr);
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: " + e.displayText());
    }
  }

  void checkpoint() override {
    try {
      Poco::Data::Session s = readers_->get();
      sqlite3_wal_checkpoint_v2(Poco::Data::SQLite::Utility::dbHandle(s), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                nullptr);
    } catch (const Poco::Exception&) {
      // The next call tries again; the log only grows meanwhile.
    }
  }

  Status create_runs(std::vector<RunRow>* runs, std::vector<AuditRow>* audit) override {
    const Changed changed_after(generation_);
    if (runs->empty()) return Status::ok();
    if (audit && audit->size() != runs->size()) return Status(OPK_ERR_INTERNAL, "create_runs: one audit row per run");

    return grouped([&] { return create_runs_locked(runs, audit); }, runs->size() * (audit ? 2 : 1));
  }

  // Inserts runs and their audit rows (create_runs); the caller holds
  // write_mu_ inside a transaction.
  Status create_runs_locked(std::vector<RunRow>* runs, std::vector<AuditRow>* audit) {
    if (runs->empty()) return Status::ok();
    auto& ss = stmts_->insert_state;
    auto bind_run = [](Stmt& st, int first, const RunRow& r) {
      st.bind_at(first, r.job_type, r.scheduled_job_id, r.slot_ms, r.trigger, r.params_json, r.target_tenant, r.dry_run,
                 r.range_start_ms, r.range_end_ms, r.user_id, r.role, r.scope, r.reason, r.parent_run_id, r.priority,
                 r.pool, r.scheduled_ms, r.created_ms);
    };
    bool fresh = true;
    for (size_t k = 0; k < runs->size();) {
      RunRow* r = &(*runs)[k];
      // Runs that fire no schedule slot cannot conflict: kRunsPerInsert
      // of them go in one statement (their ids are consecutive), which
      // measured a fifth cheaper per run than one statement each.
      size_t n = 0;
      while (n < kRunsPerInsert && k + n < runs->size() && r[n].slot_ms == 0) ++n;
      if (n < kRunsPerInsert) n = 1;
      for (size_t i = 0; i < n; ++i) {
        if (r[i].created_ms == 0) r[i].created_ms = now_ms();
        // A completed run always has a finish time.
        if (r[i].phase == kCompleted && r[i].finished_ms <= 0) r[i].finished_ms = std::max<int64_t>(r[i].created_ms, 1);
      }
      Stmt& st = n == 1 ? stmts_->insert_run : stmts_->insert_runs;
      for (size_t i = 0; i < n; ++i) bind_run(st, static_cast<int>(i * kRunColumns) + 1, r[i]);
      int rc = st.step();
      st.reset();
      if (rc != SQLITE_DONE) return sql_error("insert run");
      // No RETURNING: it measured 2 to 3 times the cost of the insert itself.
      // No change means the slot was taken (ON CONFLICT DO NOTHING).
      const int64_t last = sqlite3_changes(db()) ? sqlite3_last_insert_rowid(db()) : 0;
      if (n > 1 && sqlite3_changes(db()) != static_cast<int>(n))
        return Status(OPK_ERR_INTERNAL, "store: insert runs: fewer rows than runs");
      for (size_t i = 0; i < n; ++i, ++k) {
        RunRow& x = (*runs)[k];
        x.id = last ? last - static_cast<int64_t>(n - 1 - i) : 0;
        fresh = fresh && x.id != 0 && (k == 0 || x.id == (*runs)[k - 1].id + 1) && is_new_pending(x);
        if (audit) (*audit)[k].outcome = "ok: run " + std::to_string(x.id);
      }
    }
    // New PENDING runs with ids in one unbroken range (every run now,
    // and scheduled runs whose slots were all free) get their state
    // rows from one statement.
    if (fresh) {
      if (!stmts_->insert_states.bind_all(runs->front().id, runs->back().id).exec())
        return sql_error("insert run state");
    } else {
      for (const RunRow& r : *runs) {
        if (!r.id) continue;
        // A new run starts with its phase, outcome and hold; the rest of
        // its state is kept only for a completed run (an import).
        const bool done = r.phase == kCompleted;
        static const std::string kNone;
        ss.bind_all(r.id, r.phase, r.outcome, r.hold, done && r.terminated, done ? r.started_ms : 0,
                    done ? r.finished_ms : 0, done ? r.exit_code : 0, done ? r.summary : kNone, done ? r.progress : 0.0,
                    done ? r.progress_message : kNone, done ? r.output_json : kNone);
        const int rc = ss.step();
        ss.reset();
        if (rc != SQLITE_DONE) return sql_error("insert run state");
      }
    }
    if (audit) {
      // The audit rows of one request repeated for many runs (a batch
      // of the same job) differ only in their run: one statement
      // writes them all, as the state rows above.
      const bool alike = fresh && std::all_of(audit->begin(), audit->end(), [&](const AuditRow& a) {
                           const AuditRow& f = audit->front();
                           return a.time_ms == f.time_ms && a.actor == f.actor && a.role == f.role &&
                                  a.action == f.action && a.target == f.target && a.reason == f.reason &&
                                  a.params_json == f.params_json && a.source == f.source;
                         });
      if (alike && audit->size() > 1) {
        const AuditRow& f = audit->front();
        if (!stmts_->insert_audit_range
                 .bind_all(f.time_ms ? f.time_ms : now_ms(), f.actor, f.role, f.action, f.target, f.reason,
                           f.params_json, f.source, runs->front().id, runs->back().id)
                 .exec())
          return sql_error("audit");
      } else if (Status a = insert_audit_locked(*audit); !a) {
        return a;
      }
    }
    // Every kMarkEvery new runs, the open-runs mark moves up (in this
    // transaction: it moves back with it if this write is undone).
    const int64_t last = runs->back().id;
    if (last >= next_mark_at_) {
      if (Status a = advance_open_mark(); !a) return a;
      next_mark_at_ = last + kMarkEvery;
    }
    return Status::ok();
  }

  Status mark_running(const std::vector<int64_t>& ids, int64_t now, const std::string& node,
                      std::vector<int64_t>* skipped, const std::vector<Completion>* completed_first) override {
    const Changed changed_after(generation_);
    if (ids.empty()) return completed_first ? complete_runs(*completed_first) : Status::ok();

    // One statement for the whole claim (measured 40% cheaper than one per
    // run); if any run could not be claimed, it is undone and the runs are
    // claimed one by one to learn which.
    std::string id_list = "[";
    for (int64_t id : ids) id_list += std::to_string(id) + ",";
    id_list.back() = ']';
    const auto first_inline = completed_first ? inline_logs_of(*completed_first) : std::vector<std::string>();
    return grouped(
        [&] {
          if (completed_first)
            if (Status s = complete_locked(*completed_first, first_inline); !s) return s;

          if (!stmts_->claim_savepoint.exec()) return sql_error("mark running");
          // A failure that ends the transaction (disk full, I/O) is reported
          // as itself, not as the savepoint it leaves undefined.
          const bool claimed = stmts_->mark_running_all.bind_all(now, node, id_list).exec();
          if (!claimed && sqlite3_get_autocommit(db())) return sql_error("mark running");
          const bool every = claimed && sqlite3_changes(db()) == static_cast<int>(ids.size());
          if (!every) stmts_->claim_rollback.exec();
          stmts_->claim_release.exec();
          if (sqlite3_get_autocommit(db())) return sql_error("mark running");  // the transaction was lost
          if (every) return Status::ok();
          for (int64_t id : ids) {
            if (!stmts_->mark_running.bind_all(now, node, id).exec()) return sql_error("mark running");
            if (sqlite3_changes(db()) == 0 && skipped) skipped->push_back(id);
          }
          return Status::ok();
        },
        ids.size() + (completed_first ? completed_first->size() : 0), /*urgent=*/true);
  }

  Status complete_runs(const std::vector<Completion>& cs) override {
    const Changed changed_after(generation_);
    if (cs.empty()) return Status::ok();

    const auto inline_logs = inline_logs_of(cs);
    return grouped([&] { return complete_locked(cs, inline_logs); }, cs.size());
  }

  Status recover_runs(const std::vector<Completion>& closed, std::vector<RunRow>* requeued) override {
    const Changed changed_after(generation_);
    if (closed.empty() && requeued->empty()) return Status::ok();

    const auto inline_logs = inline_logs_of(closed);
    return grouped(
        [&] {
          if (Status s = complete_locked(closed, inline_logs); !s) return s;
          return create_runs_locked(requeued, nullptr);
        },
        closed.size() + requeued->size());
  }

  Status writable() override {
    {
      std::lock_guard lock(group_mu_);
      if (!flush_failed_.empty()) return Status::unavailable(flush_failed_);
    }
    const int64_t now = now_ms();
    {
      std::lock_guard lock(health_mu_);
      if (fault_.empty() && now - probed_ms_ < kProbeEveryMs) return Status::ok();
    }
    if (Status room = disk_room(); !room) return room;
    // The test write goes through the writer's queue like any other, and
    // its commit clears a fault once the store takes writes again.
    Status s = grouped([&] { return probe_locked(); }, 1);
    std::lock_guard lock(health_mu_);
    if (!s) return s;
    if (!fault_.empty()) return Status::unavailable(fault_);
    probed_ms_ = now;
    return Status::ok();
  }

  Status complete_pending(const Completion& c, bool* changed) override {
    const Changed changed_after(generation_);
    std::lock_guard lock(write_mu_);
    Completion v = c;
    int terminated = v.terminated ? 1 : 0;
    try {
      Poco::Data::Statement st(*writer_);
      st << "UPDATE run_state SET phase = 'COMPLETED', outcome = $1, terminated = $2, finished_ms = MAX($3, 1), "
            "exit_code = $4, summary = $5 WHERE id = $6 AND phase = 'PENDING'",
          use(v.outcome), use(terminated), use(v.finished_ms), use(v.exit_code), use(v.summary), use(v.run_id);
      *changed = st.execute() > 0;
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: " + e.displayText());
    }
    return Status::ok();
  }

  Status append_logs(const std::vector<LogRow>& logs) override {
    if (logs.empty()) return Status::ok();

    return grouped([&] { return insert_logs_locked(logs); }, logs.size());
  }

  Status set_hold(int64_t run_id, bool hold) override {
    const Changed changed_after(generation_);
    std::lock_guard lock(write_mu_);
    int h = hold ? 1 : 0;
    size_t n = 0;
    try {
      Poco::Data::Statement st(*writer_);
      st << "UPDATE run_state SET hold = $1 WHERE id = $2 AND phase = 'PENDING'", use(h), use(run_id);
      n = st.execute();
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: " + e.displayText());
    }
    return n ? Status::ok() : Status::conflict("run " + std::to_string(run_id) + " is not pending");
  }

  Status get_run(int64_t id, RunRow* out) override {
    auto rows = runs_where("id = " + std::to_string(id), "", 1);
    if (rows.empty()) return Status::not_found("no run " + std::to_string(id));
    *out = rows.front();
    return Status::ok();
  }

  std::vector<RunRow> list_runs(const RunFilter& f) override {
    std::string where = "1=1";
    if (!f.job_type.empty()) where += " AND job_type = '" + escape(f.job_type) + "'";
    if (!f.scheduled_job_id.empty())
      where += " AND scheduled_job_id = '" + escape(f.scheduled_job_id) + "' AND scheduled_job_id <> ''";
    if (!f.phase.empty()) where += " AND phase = '" + escape(f.phase) + "'";
    if (!f.outcome.empty()) where += " AND outcome = '" + escape(f.outcome) + "' AND phase = 'COMPLETED'";
    if (f.since_ms) where += " AND created_ms >= " + std::to_string(f.since_ms);
    return runs_where(where, " ORDER BY id DESC", f.limit);
  }

  std::vector<InventoryRow> inventory() override {
    auto jobs = scheduled(
        " j LEFT JOIN runs r ON r.id = (SELECT MAX(id) FROM runs WHERE scheduled_job_id = j.id AND scheduled_job_id <> "
        "'') LEFT JOIN run_state s ON s.id = r.id ORDER BY j.id",
        ", COALESCE(r.id, 0), COALESCE(s.phase, ''), COALESCE(s.outcome, ''), COALESCE(r.created_ms, 0), "
        "COALESCE(s.finished_ms, 0)");
    std::vector<InventoryRow> out;
    for (auto& [job, extra] : jobs)
      out.push_back({job, std::stoll(extra[0]), extra[1], extra[2], std::stoll(extra[3]), std::stoll(extra[4])});
    return out;
  }

  std::map<int64_t, int64_t> failures_per_day(const std::string& id, int64_t since_ms) override {
    std::map<int64_t, int64_t> out;
    for (auto& r : query("SELECT s.finished_ms / 86400000, COUNT(*) FROM runs r JOIN run_state s ON s.id = r.id WHERE "
                         "r.scheduled_job_id = '" +
                         escape(id) +
                         "' AND r.scheduled_job_id <> '' AND s.phase = 'COMPLETED' AND s.outcome = 'ERROR' AND "
                         "s.finished_ms >= " +
                         std::to_string(since_ms) + " GROUP BY 1"))
      out[std::stoll(r[0])] = std::stoll(r[1]);
    return out;
  }

  std::vector<RunRow> runs_in_phase(const std::string& phase, size_t limit) override {
    const std::string open = phase == kCompleted ? "finished_ms <> 0" : "id IN (SELECT id FROM open_runs)";
    return runs_where(open + " AND phase = '" + escape(phase) + "'", " ORDER BY priority DESC, scheduled_ms, id",
                      limit);
  }

  std::vector<LogRow> logs(int64_t run_id, int64_t after_seq, size_t limit) override {
    return log_rows(run_id, " AND seq > " + std::to_string(after_seq) + " ORDER BY seq LIMIT " + std::to_string(limit));
  }

  std::vector<LogRow> last_logs(int64_t run_id, size_t n) override {
    auto out = log_rows(run_id, " ORDER BY seq DESC LIMIT " + std::to_string(n));
    std::reverse(out.begin(), out.end());
    return out;
  }

  // A run's log lines (stored or kept in its state row) in the order `rest`
  // of the query gives.
  std::vector<LogRow> log_rows(int64_t run_id, const std::string& rest) {
    std::vector<LogRow> out;
    for (auto& r : query("SELECT run_id, seq, time_ms, level, step, message FROM run_log_rows WHERE run_id = " +
                         std::to_string(run_id) + rest))
      out.push_back({std::stoll(r[0]), std::stoll(r[1]), std::stoll(r[2]), std::stoi(r[3]), r[4], r[5]});
    return out;
  }

  std::vector<StepRow> steps(int64_t run_id) override {
    std::vector<StepRow> out;
    auto rs = query("SELECT run_id, seq, step_id, start_ms, end_ms, outcome, summary FROM run_steps WHERE run_id = " +
                    std::to_string(run_id) + " ORDER BY seq");
    for (auto& r : rs)
      out.push_back({std::stoll(r[0]), std::stoi(r[1]), r[2], std::stoll(r[3]), std::stoll(r[4]), r[5], r[6]});
    return out;
  }

  Status flag_stale(int64_t before_ms, int64_t* count) override {
    const Changed changed_after(generation_);
    std::lock_guard lock(write_mu_);
    try {
      Poco::Data::Statement st(*writer_);
      st << "UPDATE run_state SET stale = 1 WHERE id IN (SELECT id FROM open_runs) AND phase = 'RUNNING' AND "
            "stale = 0 AND started_ms < $1",
          use(before_ms);
      *count = static_cast<int64_t>(st.execute());
      // Housekeeping moves the mark too, so the open runs stay few to read
      // whether or not runs are being created.
      if (Status a = in_transaction([&] { return advance_open_mark(); }); !a) return a;
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: " + e.displayText());
    }
    return Status::ok();
  }

  Status prune(int64_t before_ms, size_t batch, int64_t* deleted) override {
    const Changed changed_after(generation_);
    std::lock_guard lock(write_mu_);
    // Only runs created before `before_ms` can have finished before it. Run
    // ids grow with creation time, so the last of them is found by a binary
    // search on ids (a few primary-key lookups), and the candidates are read
    // from the oldest id up: no index of finish times is kept up to date on
    // the hot path for this. The newest run is kept: run ids come from the
    // rowid, and keeping the largest one stops job numbers from being handed
    // out again.
    const int64_t bound = last_created_before(before_ms);
    const std::string ids = "SELECT id FROM run_state WHERE id <= " + std::to_string(bound) +
                            " AND finished_ms <> 0 AND finished_ms < " + std::to_string(before_ms) +
                            " AND id < (SELECT MAX(id) FROM runs) ORDER BY id LIMIT " + std::to_string(batch);
    const std::string sql =
        "BEGIN IMMEDIATE; CREATE TEMP TABLE IF NOT EXISTS prune_ids (id INTEGER PRIMARY KEY); "
        "DELETE FROM prune_ids; INSERT INTO prune_ids " +
        ids +
        "; DELETE FROM run_logs WHERE run_id IN (SELECT id FROM prune_ids); "
        "DELETE FROM run_steps WHERE run_id IN (SELECT id FROM prune_ids); "
        "DELETE FROM run_state WHERE id IN (SELECT id FROM prune_ids); "
        "DELETE FROM runs WHERE id IN (SELECT id FROM prune_ids); COMMIT;";
    char* err = nullptr;
    if (sqlite3_exec(db(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      sqlite3_exec(db(), "ROLLBACK", nullptr, nullptr, nullptr);
      return Status::unavailable("store: prune: " + msg);
    }
    int64_t n = 0;
    try {
      *writer_ << "SELECT COUNT(*) FROM prune_ids", into(n), now;
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: prune: " + e.displayText());
    }
    *deleted = n;
    return Status::ok();
  }

  Status prune_audit(int64_t before_ms, size_t batch, int64_t* deleted) override {
    std::lock_guard lock(write_mu_);
    // Audit rows are written in time order (up to clock steps): only the
    // oldest `batch` rows are looked at, so nothing scans the whole trail
    // when nothing is due.
    try {
      Poco::Int64 before = before_ms, limit = static_cast<Poco::Int64>(batch);
      *writer_ << "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT $1) AND time_ms < $2",
          use(limit), use(before), now;
      *deleted = static_cast<int64_t>(sqlite3_changes(db()));
    } catch (const Poco::Exception& e) {
      return Status::unavailable("store: prune audit: " + e.displayText());
    }
    return Status::ok();
  }

  // The largest run id created before `before_ms`, assuming creation times
  // grow with ids (they do up to clock steps); 0 if none. REQUIRES: write_mu_.
  int64_t last_created_before(int64_t before_ms) {
    try {
      Stmt max_id(db(), "SELECT COALESCE(MAX(id), 0) FROM runs");
      Stmt first_from(db(), "SELECT id, created_ms FROM runs WHERE id >= ? ORDER BY id LIMIT 1");
      // Invariant: ids <= lo were created before; ids >= hi were not (or do not exist).
      int64_t lo = 0, hi = (max_id.step() == SQLITE_ROW ? max_id.column_int(0) : 0) + 1;
      while (hi - lo > 1) {
        const int64_t mid = lo + (hi - lo) / 2;
        // The first run at or after `mid`.
        const bool found = first_from.bind(1, mid).step() == SQLITE_ROW;
        const int64_t id = found ? first_from.column_int(0) : 0, created = found ? first_from.column_int(1) : 0;
        first_from.reset();
        if (found && id < hi && created < before_ms)
          lo = id;
        else
          hi = mid;
      }
      return lo;
    } catch (const std::exception&) {
      return 0;  // nothing is pruned this time
    }
  }

  Status add_node(const Node& n) override {
    return insert_unique("node '" + n.id + "'",
                         "INSERT INTO nodes (id, kind, name, parent, created_ms) VALUES ($1, $2, $3, $4, $5)",
                         {n.id, n.kind, n.name, n.parent, std::to_string(n.created_ms)});
  }

  std::vector<Node> list_nodes() override {
    std::vector<Node> out;
    for (auto& r : text_rows("SELECT id, kind, name, parent, created_ms FROM nodes ORDER BY id", {}))
      out.push_back({r[0], r[1], r[2], r[3], std::stoll(r[4])});
    return out;
  }

  Status add_user(const User& u) override {
    return insert_unique("user '" + u.id + "'",
                         "INSERT INTO users (id, name, role, scope, disabled, created_ms) VALUES ($1, $2, $3, $4, $5, "
                         "$6)",
                         {u.id, u.name, u.role, u.scope, u.disabled ? "1" : "0", std::to_string(u.created_ms)});
  }

  Status get_user(const std::string& id, User* out) override {
    auto rows = users_where("WHERE id = $1", {id});
    if (rows.empty()) return Status::not_found("no user '" + id + "'");
    *out = rows.front();
    return Status::ok();
  }

  std::vector<User> list_users() override { return users_where("ORDER BY id", {}); }

  Status disable_user(const std::string& id, int64_t now, int64_t* revoked) override {
    User u;
    if (Status s = get_user(id, &u); !s) return s;
    // Tokens first: if the second statement fails, the user has no valid
    // token left anyway.
    Status s = execute("UPDATE tokens SET revoked_ms = $1 WHERE user_id = $2 AND revoked_ms = 0",
                       {std::to_string(now), id}, revoked);
    if (!s) return s;
    int64_t n = 0;
    return execute("UPDATE users SET disabled = 1 WHERE id = $1", {id}, &n);
  }

  Status add_token(const TokenRow& t) override {
    return insert_unique("token '" + t.id + "'",
                         "INSERT INTO tokens (id, user_id, hash, label, created_ms, expires_ms, revoked_ms) VALUES "
                         "($1, $2, $3, $4, $5, $6, $7)",
                         {t.id, t.user_id, t.hash, t.label, std::to_string(t.created_ms), std::to_string(t.expires_ms),
                          std::to_string(t.revoked_ms)});
  }

  Status find_token(const std::string& hash, TokenRow* out) override {
    auto rows = tokens_where("WHERE hash = $1", {hash});
    if (rows.empty()) return Status::not_found("no such token");
    *out = rows.front();
    return Status::ok();
  }

  std::vector<TokenRow> list_tokens(const std::string& user_id) override {
    return tokens_where("WHERE user_id = $1 ORDER BY created_ms, id", {user_id});
  }

  Status audit(const std::vector<AuditRow>& rows) override {
    if (rows.empty()) return Status::ok();

    return grouped([&] { return insert_audit_locked(rows); }, rows.size());
  }

  std::vector<AuditRow> audit_rows(size_t limit) override {
    std::vector<AuditRow> out;
    auto rs = query(
        "SELECT id, time_ms, actor, role, action, target, reason, params_json, outcome, source FROM audit ORDER BY "
        "id DESC LIMIT " +
        std::to_string(limit));
    for (auto& r : rs)
      out.push_back({std::stoll(r[0]), std::stoll(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]});
    return out;
  }

 private:
  // UNAVAILABLE if the file system that holds the store has less than
  // kMinFreeBytes free (for this process: root may use the reserved blocks).
  Status disk_room() const {
    const auto dir = std::filesystem::path(path_).parent_path();
    struct statvfs fs {};
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) != 0) return Status::ok();  // the test write decides
    const uint64_t blocks = ::geteuid() == 0 ? fs.f_bfree : fs.f_bavail;
    const uint64_t free_bytes = blocks * fs.f_frsize;
    if (free_bytes >= kMinFreeBytes) return Status::ok();
    return Status::unavailable("store: the disk of " + path_ + " is full (" + std::to_string(free_bytes) +
                               " bytes free)");
  }

  // The test write of writable(): fails if less than kMinFreeBytes are left
  // within the file's size limit (free pages included), as writes then fail
  // for lack of room; otherwise rewrites one row. REQUIRES: write_mu_ held,
  // inside a transaction.
  Status probe_locked() {
    auto count = [&](Stmt& st) {
      const int64_t n = st.step() == SQLITE_ROW ? st.column_int(0) : 0;
      st.reset();
      return n;
    };
    const int64_t pages = count(stmts_->page_count), limit = count(stmts_->max_page_count),
                  free_pages = count(stmts_->freelist_count), page_size = count(stmts_->page_size);
    const int64_t room = (std::max<int64_t>(limit - pages, 0) + free_pages) * page_size;
    if (room < static_cast<int64_t>(kMinFreeBytes)) {
      std::string msg = "store: database or disk is full (SQLITE_FULL, " + path_ + "): " + std::to_string(room) +
                        " bytes left within its size limit of " + std::to_string(limit) + " pages";
      if (disk_error_.empty()) disk_error_ = msg;
      return Status::unavailable(std::move(msg));
    }
    if (!stmts_->write_probe.bind_all(now_ms()).exec()) return sql_error("test write");
    return Status::ok();
  }

  // Rows of a read as text (NULL as empty). Errors are logged by the caller's
  // empty result; the identity tables have no NULL columns.
  std::vector<std::vector<std::string>> text_rows(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<std::optional<std::string>> p(params.begin(), params.end());
    std::vector<std::vector<std::optional<std::string>>> rows;
    std::vector<std::vector<std::string>> out;
    if (!query(sql, p, &rows)) return out;
    for (auto& r : rows) {
      std::vector<std::string> row;
      for (auto& v : r) row.push_back(v.value_or(""));
      out.push_back(std::move(row));
    }
    return out;
  }

  Status insert_unique(const std::string& what, const std::string& sql, const std::vector<std::string>& params) {
    std::vector<std::optional<std::string>> p(params.begin(), params.end());
    int64_t n = 0;
    Status s = execute(sql, p, &n);
    if (s.code() == OPK_ERR_CONFLICT) return Status::conflict(what + " already exists");
    return s;
  }

  std::vector<User> users_where(const std::string& tail, const std::vector<std::string>& params) {
    std::vector<User> out;
    for (auto& r : text_rows("SELECT id, name, role, scope, disabled, created_ms FROM users " + tail, params))
      out.push_back({r[0], r[1], r[2], r[3], r[4] == "1", std::stoll(r[5])});
    return out;
  }

  std::vector<TokenRow> tokens_where(const std::string& tail, const std::vector<std::string>& params) {
    std::vector<TokenRow> out;
    for (auto& r :
         text_rows("SELECT id, user_id, hash, label, created_ms, expires_ms, revoked_ms FROM tokens " + tail, params))
      out.push_back({r[0], r[1], r[2], r[3], std::stoll(r[4]), std::stoll(r[5]), std::stoll(r[6])});
    return out;
  }

  // Stores completions; the caller holds write_mu_ inside a transaction.
  // `inline_logs`: each completion's lines for its state row, or empty
  // (inline_logs_of, made by the caller before it waits for the writer).
  Status complete_locked(const std::vector<Completion>& cs, const std::vector<std::string>& inline_logs) {
    for (size_t k = 0; k < cs.size(); ++k) {
      const Completion& c = cs[k];
      const bool keep_inline = !inline_logs[k].empty();
      auto& st = stmts_->complete;
      st.bind_all(c.outcome, c.terminated, c.finished_ms, c.exit_code, c.summary, c.progress, c.progress_message,
                  c.output_json, inline_logs[k], c.run_id);
      int rc = st.step();
      st.reset();
      if (rc != SQLITE_DONE) return sql_error("complete run");
      if (!keep_inline) {
        if (Status s = insert_logs_locked(c.logs); !s) return s;
      } else if (sqlite3_changes(db()) == 0) {
        // Already completed (the watchdog gave up on it): its lines go to the
        // log table, but not again those its first completion kept inline.
        auto& mx = stmts_->inline_max_seq;
        mx.bind_all(c.run_id);
        const int64_t kept = mx.step() == SQLITE_ROW ? mx.column_int(0) : 0;
        mx.reset();
        std::vector<LogRow> rest;
        for (const auto& l : c.logs)
          if (l.seq > kept) rest.push_back(l);
        if (Status s = insert_logs_locked(rest); !s) return s;
      }
      for (const auto& step : c.steps) {
        auto& ss = stmts_->insert_step;
        ss.bind_all(step.run_id, step.seq, step.step_id, step.start_ms, step.end_ms, step.outcome, step.summary);
        rc = ss.step();
        ss.reset();
        if (rc != SQLITE_DONE) return sql_error("insert step");
      }
    }
    return Status::ok();
  }

  // Each completion's lines as run_state.logs, or empty where they go to
  // run_logs: kept in the state row are 1 to kInlineLines lines numbered
  // 1, 2, 3 ... (the watchdog has stored none of them), of at most
  // kInlineBytes text in all. Built outside the writer's lock.
  static std::vector<std::string> inline_logs_of(const std::vector<Completion>& cs) {
    std::vector<std::string> out(cs.size());
    for (size_t k = 0; k < cs.size(); ++k) inline_logs_of(cs[k].logs, &out[k]);
    return out;
  }

  static void inline_logs_of(const std::vector<LogRow>& logs, std::string* out) {
    if (logs.empty() || logs.size() > kInlineLines) return;
    size_t bytes = 0;
    for (size_t i = 0; i < logs.size(); ++i) {
      if (logs[i].seq != static_cast<int64_t>(i) + 1) return;
      bytes += logs[i].message.size() + logs[i].step.size();
    }
    if (bytes > kInlineBytes) return;
    out->assign("[");
    for (const auto& l : logs) {
      if (out->size() > 1) out->push_back(',');
      *out += "[" + std::to_string(l.seq) + "," + std::to_string(l.time_ms) + "," + std::to_string(l.level) + ",";
      append_json_string(l.step, out);
      out->push_back(',');
      append_json_string(l.message, out);
      out->push_back(']');
    }
    out->push_back(']');
  }

  // Appends `text` as a JSON string. SQLite's JSON functions (which read it
  // back) take the bytes as they are; only quotes, backslashes and control
  // characters need escaping.
  static void append_json_string(const std::string& text, std::string* out) {
    out->push_back('"');
    for (unsigned char ch : text) {
      if (ch == '"' || ch == '\\') {
        out->push_back('\\');
        out->push_back(static_cast<char>(ch));
      } else if (ch < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", ch);
        *out += buf;
      } else {
        out->push_back(static_cast<char>(ch));
      }
    }
    out->push_back('"');
  }

  struct Statements {
    explicit Statements(sqlite3* db)
        : insert_run(db, insert_runs_sql(1).c_str()),
          insert_runs(db, insert_runs_sql(kRunsPerInsert).c_str()),
          insert_states(db,
                        "INSERT INTO run_state (id, phase) SELECT id, 'PENDING' FROM runs WHERE id BETWEEN ? AND ?"),
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
          page_size(db, "PRAGMA page_size") {}
    // `rows` runs, kRunColumns parameters each.
    static std::string insert_runs_sql(size_t rows) {
      std::string sql =
          "INSERT INTO runs (job_type, scheduled_job_id, slot_ms, trigger, params_json, target_tenant, dry_run, "
          "range_start_ms, range_end_ms, user_id, role, scope, reason, parent_run_id, priority, pool, scheduled_ms, "
          "created_ms) VALUES ";
      for (size_t i = 0; i < rows; ++i)
        sql += i ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
      return sql + " ON CONFLICT DO NOTHING";
    }
    Stmt insert_run, insert_runs, insert_states, insert_state, mark_running, mark_running_all, complete, inline_max_seq,
        insert_log, insert_step, insert_audit, insert_audit_range, set_next_run, begin, commit, rollback, savepoint,
        release, rollback_to, claim_savepoint, claim_release, claim_rollback, write_probe, page_count, max_page_count,
        freelist_count, page_size;
  };

  // The writer's handle, looked up once (Poco's dbHandle costs about as much
  // as binding a few parameters, and the hot path needs it per run).
  sqlite3* db() { return db_; }

  // "store: <what>: <the writer's last SQLite error>", as UNAVAILABLE. An
  // error of the disk or the file (full, I/O, damaged) also names its SQLite
  // code and the file, and is the group's disk error (write_group).
  // REQUIRES: write_mu_ held.
  Status sql_error(const char* what) {
    std::string msg = std::string("store: ") + what + ": " + sqlite3_errmsg(db());
    if (const char* name = disk_error_name(sqlite3_extended_errcode(db()))) {
      msg += std::string(" (") + name + ", " + path_ + ")";
      if (disk_error_.empty()) disk_error_ = msg;
    }
    return Status::unavailable(std::move(msg));
  }

  static std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
      out += c;
      if (c == '\'') out += '\'';
    }
    return out;
  }

  // Prepares, binds, steps one statement; rows (if wanted) as text.
  static Status run_one(sqlite3* conn, const std::string& sql, const std::vector<std::optional<std::string>>& params,
                        std::vector<std::vector<std::optional<std::string>>>* rows, int64_t* changed) {
    sqlite3_stmt* st = nullptr;
    const char* tail = nullptr;
    if (sqlite3_prepare_v2(conn, sql.c_str(), static_cast<int>(sql.size()), &st, &tail) != SQLITE_OK)
      return Status::invalid(std::string("SQL: ") + sqlite3_errmsg(conn));
    if (tail && std::string(tail).find_first_not_of(" \t\r\n;") != std::string::npos) {
      sqlite3_finalize(st);
      return Status::invalid("SQL: one statement per call");
    }
    if (sqlite3_bind_parameter_count(st) != static_cast<int>(params.size())) {
      const int want = sqlite3_bind_parameter_count(st);
      sqlite3_finalize(st);
      return Status::invalid("SQL: the statement has " + std::to_string(want) + " parameter(s), " +
                             std::to_string(params.size()) + " given");
    }
    if (rows && !sqlite3_stmt_readonly(st)) {
      sqlite3_finalize(st);
      return Status::invalid("SQL: query takes read-only statements; use execute");
    }
    // SQLite numbers "$n" parameters by first appearance; bind by name so
    // $1..$n mean what they mean in PostgreSQL.
    for (size_t i = 0; i < params.size(); ++i) {
      const int idx = sqlite3_bind_parameter_index(st, ("$" + std::to_string(i + 1)).c_str());
      if (idx == 0) {
        sqlite3_finalize(st);
        return Status::invalid("SQL: parameters must be $1..$" + std::to_string(params.size()));
      }
      if (params[i])
        sqlite3_bind_text(st, idx, params[i]->data(), static_cast<int>(params[i]->size()), SQLITE_TRANSIENT);
      else
        sqlite3_bind_null(st, idx);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (!rows) continue;
      std::vector<std::optional<std::string>> row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        const unsigned char* t = sqlite3_column_text(st, c);
        row.push_back(t ? std::optional<std::string>(reinterpret_cast<const char*>(t)) : std::nullopt);
      }
      rows->push_back(std::move(row));
    }
    Status s;
    if (rc != SQLITE_DONE) {
      const std::string msg = std::string("SQL: ") + sqlite3_errmsg(conn);
      s = (rc & 0xff) == SQLITE_CONSTRAINT ? Status::conflict(msg) : Status::invalid(msg);
    } else if (changed) {
      *changed = sqlite3_changes(conn);
    }
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(conn)) {
      // A plugin may not hold a transaction open on the shared connection.
      sqlite3_exec(conn, "ROLLBACK", nullptr, nullptr, nullptr);
      return Status::invalid("SQL: transactions are not allowed through opk.store/1; one statement is one transaction");
    }
    return s;
  }

  // Moves the open-runs mark (migration 5) up to the oldest open run, past
  // the completed ones; an open run more than kLingerIds behind the newest
  // is listed in lingering_runs and passed too. Each run is passed once, so
  // the cost per run is constant. Lingering runs that completed leave the
  // list. REQUIRES: write_mu_ held.
  Status advance_open_mark() {
    try {
      Stmt get(db(), "SELECT value FROM store_marks WHERE name = 'open_from'");
      Stmt newest(db(), "SELECT COALESCE(MAX(id), 0) FROM run_state");
      Stmt first_open(db(), "SELECT id FROM run_state WHERE id >= ? AND finished_ms = 0 ORDER BY id LIMIT 1");
      Stmt linger(db(), "INSERT OR IGNORE INTO lingering_runs (id) VALUES (?)");
      Stmt set(db(), "UPDATE store_marks SET value = ? WHERE name = 'open_from'");
      Stmt forget(db(),
                  "DELETE FROM lingering_runs WHERE NOT EXISTS (SELECT 1 FROM run_state s WHERE s.id = "
                  "lingering_runs.id AND s.finished_ms = 0)");
      if (get.step() != SQLITE_ROW || newest.step() != SQLITE_ROW) return sql_error("open-runs mark");
      const int64_t from = get.column_int(0), max_id = newest.column_int(0);
      int64_t mark = from;
      for (;;) {
        first_open.reset();
        if (first_open.bind(1, mark).step() != SQLITE_ROW) {
          mark = std::max(mark, max_id + 1);
          break;
        }
        const int64_t id = first_open.column_int(0);
        if (id >= max_id - kLingerIds) {
          mark = id;
          break;
        }
        if (!linger.bind(1, id).exec()) return sql_error("lingering run");
        mark = id + 1;
      }
      if (mark != from && !set.bind(1, mark).exec()) return sql_error("open-runs mark");
      if (!forget.exec()) return sql_error("lingering runs");
    } catch (const std::exception& e) {
      return Status::unavailable(std::string("store: open-runs mark: ") + e.what());
    }
    return Status::ok();
  }

  // A run as created by run now, the scheduler or recovery: PENDING, NORMAL,
  // not held (create_runs keeps no other state for a run not completed).
  static bool is_new_pending(const RunRow& r) { return r.phase == kPending && r.outcome == kNormal && !r.hold; }

  // Group commit, as LevelDB's DBImpl::Write groups writers: a caller
  // queues its write; the first in the queue writes every write queued at
  // that moment in one transaction (each in a savepoint of its own, so one
  // failing write does not undo the others), commits once, and hands the
  // queue to the next writer. One commit then carries the claims,
  // completions and new runs of every thread, and the same hot pages are
  // written once per group, not once per caller.
  //
  // With store.synchronous = full, a group's commit does not wait for its
  // fsync: the flusher thread flushes the write-ahead log while the next
  // group is written, and only then wakes the group's writers (as
  // PostgreSQL's WAL writer and group commit overlap). The writer
  // connection is thereby busy with SQL, not with waiting for the disk.
  // Readers may see a group up to one flush (1 to 3 ms) before it is
  // durable; nobody it was written for has been answered by then.
  struct Writer {
    const std::function<Status()>* write;
    bool urgent = false;
    size_t rows = 1;
    Status status;
    bool written = false;  // committed, waiting for the flush
    bool done = false;
    std::condition_variable cv;
  };

  // `rows`: about how many rows the write changes (its share of the group's
  // work).
  Status grouped(const std::function<Status()>& write, size_t rows, bool urgent = false) {
    Writer w{&write, urgent, rows};
    std::unique_lock queue_lock(group_mu_);
    writers_.push_back(&w);
    for (;;) {
      while (!w.done && (w.written || &w != writers_.front())) w.cv.wait(queue_lock);
      if (w.done) return w.status;
      // The leader: everything queued now is one group. Urgent writes
      // (claims: a plugin waits for them) mixed with much other work get a
      // commit of their own first; the rest is the next group, led by its
      // first writer (this one again, if it is not urgent). Mixed with
      // little, one commit is quicker for both.
      std::vector<Writer*> group, rest;
      size_t rest_rows = 0;
      for (Writer* g : writers_) {
        (g->urgent ? group : rest).push_back(g);
        if (!g->urgent) rest_rows += g->rows;
      }
      if (group.empty() || rest.empty() || rest_rows < kSplitRows) {
        group.insert(group.end(), rest.begin(), rest.end());
        rest.clear();
      }
      const std::string failed = flush_failed_;
      queue_lock.unlock();
      const bool committed = failed.empty() && write_group(group);
      queue_lock.lock();
      for (Writer* g : group) {
        writers_.erase(std::find(writers_.begin(), writers_.end(), g));
        if (!failed.empty()) g->status = Status::unavailable(failed);
        g->written = true;
      }
      if (committed && full_) {
        unflushed_.insert(unflushed_.end(), group.begin(), group.end());
        flush_cv_.notify_one();
      } else {
        // Nothing to flush: not durable mode, or the transaction was
        // rolled back.
        for (Writer* g : group) wake(g, &w);
      }
      if (!writers_.empty() && writers_.front() != &w) writers_.front()->cv.notify_one();
    }
  }

  // Marks a writer done and wakes it, unless it is the caller.
  // REQUIRES: group_mu_ held.
  static void wake(Writer* g, Writer* self) {
    g->done = true;
    if (g != self) g->cv.notify_one();
  }

  // The flusher thread: flushes the log after commits and wakes the writers
  // of every group committed before the flush began. A flush that fails
  // fails those groups and every later write: their rows are committed but
  // may not be on disk, and a retried fsync can report success without
  // writing them (the kernel drops the failed pages), so the store stops
  // taking writes until it is reopened.
  void flush_loop() {
    std::unique_lock lock(group_mu_);
    for (;;) {
      flush_cv_.wait(lock, [&] { return stopping_ || !unflushed_.empty(); });
      if (unflushed_.empty()) return;  // stopping, nothing left
      std::vector<Writer*> batch;
      batch.swap(unflushed_);
      lock.unlock();
      const std::string error = flush_log();
      lock.lock();
      if (!error.empty() && flush_failed_.empty()) flush_failed_ = error;
      for (Writer* g : batch) {
        if (!error.empty() && g->status) g->status = Status::unavailable(error);
        wake(g, nullptr);
      }
    }
  }

  // fdatasync of the write-ahead log; "" or what failed. The descriptor is
  // opened on first use and again if SQLite replaced the file.
  std::string flush_log() {
    const std::string wal = path_ + "-wal";
    struct stat named {};
    struct stat open_file {};
    if (wal_fd_ >= 0 && (::stat(wal.c_str(), &named) != 0 || ::fstat(wal_fd_, &open_file) != 0 ||
                         named.st_ino != open_file.st_ino || named.st_dev != open_file.st_dev)) {
      ::close(wal_fd_);
      wal_fd_ = -1;
    }
    if (wal_fd_ < 0) {
      wal_fd_ = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
      if (wal_fd_ < 0) return "store: cannot open " + wal + " to flush it: " + std::strerror(errno);
      // The log's directory entry is made durable once.
      const auto dir = std::filesystem::path(path_).parent_path();
      const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        flush_(dfd);
        ::close(dfd);
      }
    }
    if (const int err = flush_(wal_fd_))
      return "store: flushing " + wal + " failed (" + std::strerror(err) +
             "); writes are refused until the kernel restarts";
    return "";
  }

  // Writes a group's writes in one transaction, each in a savepoint of its
  // own; a failed begin or commit fails them all. True if it committed.
  // In durable mode the commit itself does not fsync (the flusher does).
  bool write_group(const std::vector<Writer*>& group) {
    std::lock_guard lock(write_mu_);
    // A write that throws fails alone; it must not leave the queue stuck.
    auto run = [](Writer* g) {
      try {
        g->status = (*g->write)();
      } catch (const std::exception& e) {
        g->status = Status(OPK_ERR_INTERNAL, std::string("store: ") + e.what());
      }
    };
    if (full_) sqlite3_exec(db(), "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
    disk_error_.clear();
    Status s = in_transaction([&] {
      if (group.size() == 1) {
        run(group.front());
        return group.front()->status;
      }
      for (Writer* g : group) {
        if (!stmts_->savepoint.exec()) return sql_error("savepoint");
        run(g);
        // Some errors (disk full, I/O) end the whole transaction: then
        // nothing of the group is written, the rest must not run outside
        // it, and the whole group fails with that error.
        if (sqlite3_get_autocommit(db())) return g->status ? sql_error("the transaction was lost") : g->status;
        if (!g->status && !stmts_->rollback_to.exec()) return sql_error("rollback to savepoint");
        if (!stmts_->release.exec()) return sql_error("release savepoint");
      }
      return Status::ok();
    });
    {
      // The store's health (writable()): a disk error stays its fault until
      // a group commits without one.
      std::lock_guard health(health_mu_);
      if (!disk_error_.empty())
        fault_ = disk_error_;
      else if (s)
        fault_.clear();
    }
    // Every other write commits with its own fsync, as before.
    if (full_ && sqlite3_exec(db(), "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::lock_guard queue_lock(group_mu_);
      if (flush_failed_.empty())
        flush_failed_ = std::string("store: cannot restore synchronous=FULL: ") + sqlite3_errmsg(db());
    }
    if (!s)
      for (Writer* g : group)
        if (g->status) g->status = s;
    // A single write that failed rolled the transaction back too.
    return s.code() == OPK_OK;
  }

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

  Status insert_audit_locked(const std::vector<AuditRow>& rows) {
    auto& st = stmts_->insert_audit;
    for (const auto& a : rows) {
      st.bind_all(a.time_ms ? a.time_ms : now_ms(), a.actor, a.role, a.action, a.target, a.reason, a.params_json,
                  a.outcome, a.source);
      int rc = st.step();
      st.reset();
      if (rc != SQLITE_DONE) return sql_error("audit");
    }
    return Status::ok();
  }

  Status insert_logs_locked(const std::vector<LogRow>& logs) {
    auto& st = stmts_->insert_log;
    for (const auto& l : logs) {
      st.bind_all(l.run_id, l.seq, l.time_ms, l.level, l.step, l.message);
      int rc = st.step();
      st.reset();
      if (rc != SQLITE_DONE) return sql_error("insert log");
    }
    return Status::ok();
  }

  // Runs a read query on a pooled connection; every column as text.
  std::vector<std::vector<std::string>> query(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    try {
      Poco::Data::Session s = readers_->get();
      Poco::Data::Statement st(s);
      st << sql;
      st.execute();
      Poco::Data::RecordSet rs(st);
      for (size_t r = 0; r < rs.rowCount(); ++r) {
        std::vector<std::string> row;
        for (size_t c = 0; c < rs.columnCount(); ++c) {
          const auto& v = rs.value(c, r);
          row.push_back(v.isEmpty() ? std::string() : v.convert<std::string>());
        }
        out.push_back(std::move(row));
      }
    } catch (const Poco::Exception&) {
      // Reads report nothing on failure; writes report their errors.
    }
    return out;
  }

  // Scheduled jobs read with `tail` appended to the SELECT (alias j), and
  // `extra` columns after the job's own, returned as text beside each job.
  std::vector<std::pair<ScheduledJob, std::vector<std::string>>> scheduled(const std::string& tail,
                                                                           const std::string& extra) {
    std::vector<std::pair<ScheduledJob, std::vector<std::string>>> out;
    auto rs = query(
        "SELECT j.id, j.job_type, j.description, j.owner, j.planning, j.cron, j.time_zone, j.jitter_minutes, "
        "j.params_json, j.enabled, j.scope, j.region, j.report_recipients, j.next_run_ms, j.created_ms, "
        "j.updated_ms" +
        extra + " FROM scheduled_jobs" + tail);
    for (auto& r : rs) try {
        ScheduledJob j;
        j.id = r[0];
        j.job_type = r[1];
        j.description = r[2];
        j.owner = r[3];
        j.planning = r[4];
        j.cron = r[5];
        j.time_zone = r[6];
        j.jitter_minutes = std::stoi(r[7]);
        j.params_json = r[8];
        j.enabled = r[9] == "1";
        j.scope = r[10];
        j.region = r[11];
        j.report_recipients = r[12];
        j.next_run_ms = std::stoll(r[13]);
        j.created_ms = std::stoll(r[14]);
        j.updated_ms = std::stoll(r[15]);
        out.emplace_back(std::move(j), std::vector<std::string>(r.begin() + 16, r.end()));
      } catch (const std::exception&) {
        // An unparsable row is skipped (see runs_where).
      }
    return out;
  }

  std::vector<ScheduledJob> scheduled(const std::string& tail) {
    std::vector<ScheduledJob> out;
    for (auto& [j, extra] : scheduled(" j" + tail, "")) out.push_back(std::move(j));
    return out;
  }

  std::vector<RunRow> runs_where(const std::string& where, const std::string& order, size_t limit) {
    std::vector<RunRow> out;
    auto rs = query(
        "SELECT id, job_type, scheduled_job_id, slot_ms, phase, outcome, trigger, params_json, target_tenant, "
        "dry_run, range_start_ms, range_end_ms, user_id, role, scope, reason, parent_run_id, hold, terminated, "
        "stale, priority, pool, scheduled_ms, created_ms, started_ms, finished_ms, exit_code, summary, progress, "
        "progress_message, output_json, node FROM run_rows WHERE " +
        where + order + " LIMIT " + std::to_string(limit));
    for (auto& c : rs) try {
        RunRow r;
        int i = 0;
        r.id = std::stoll(c[i++]);
        r.job_type = c[i++];
        r.scheduled_job_id = c[i++];
        r.slot_ms = std::stoll(c[i++]);
        r.phase = c[i++];
        r.outcome = c[i++];
        r.trigger = c[i++];
        r.params_json = c[i++];
        r.target_tenant = c[i++];
        r.dry_run = c[i++] == "1";
        r.range_start_ms = std::stoll(c[i++]);
        r.range_end_ms = std::stoll(c[i++]);
        r.user_id = c[i++];
        r.role = c[i++];
        r.scope = c[i++];
        r.reason = c[i++];
        r.parent_run_id = std::stoll(c[i++]);
        r.hold = c[i++] == "1";
        r.terminated = c[i++] == "1";
        r.stale = c[i++] == "1";
        r.priority = std::stoi(c[i++]);
        r.pool = c[i++];
        r.scheduled_ms = std::stoll(c[i++]);
        r.created_ms = std::stoll(c[i++]);
        r.started_ms = std::stoll(c[i++]);
        r.finished_ms = std::stoll(c[i++]);
        r.exit_code = std::stoi(c[i++]);
        r.summary = c[i++];
        r.progress = std::stod(c[i++]);
        r.progress_message = c[i++];
        r.output_json = c[i++];
        r.node = c[i++];
        out.push_back(std::move(r));
      } catch (const std::exception&) {
        // A row another writer left unparsable (e.g. text in a number column) is skipped.
      }
    return out;
  }

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
  std::atomic<uint64_t> generation_{0};
  std::unique_ptr<Poco::Data::Session> writer_;
  sqlite3* db_ = nullptr;     // writer_'s connection
  int64_t next_mark_at_ = 0;  // create_runs moves the mark once ids reach this; write_mu_
  std::unique_ptr<Poco::Data::SessionPool> readers_;
  std::unique_ptr<Statements> stmts_;
};

}  // namespace

// Process-wide SQLite settings, made once before the first connection opens
// (sqlite3_config refuses them afterwards, harmlessly: then the defaults
// stay). Multi-thread mode: no connection is used by two threads at once
// here (the writer is guarded by a mutex, each pooled reader belongs to one
// caller at a time), so the per-call connection mutexes are pure cost. No
// memory statistics: their global mutex is taken on every allocation. The
// two measured 25-35% of the store's hot-path CPU on this machine
// (bench/store_bench.cpp). Reader caches are bounded per connection instead
// (ReaderPool), since the soft heap limit needs the statistics.
void configure_sqlite() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

const std::vector<Migration>& sqlite_kernel_migrations() {
  return kKernelMigrations;
}

Status open_sqlite(const std::string& path, bool durable_full, std::unique_ptr<Store>* out, FlushFile flush,
                   OpenCheck check) {
  auto s = std::make_unique<SqliteStore>(path, durable_full, std::move(flush), check);
  Status st = s->open();
  if (!st) return st;
  *out = std::move(s);
  return Status::ok();
}

}  // namespace opk::store
