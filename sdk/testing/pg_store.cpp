// opk.store/1 on PostgreSQL for the test host (Host::use_store): a schema
// of its own per Host on the test's server, and the kernel's fence
// (kernel/store/pg_plugin_sql.cpp): each plugin has a NOLOGIN role owning
// its tables, its statements run after SET LOCAL ROLE to it, only the
// statements the fence lets through are sent (store/plugin_fence.h, the
// kernel's own code), and after DDL every relation the role owns must carry
// the plugin's prefix.
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <thread>

#include "internal.h"
#include "store/plugin_fence.h"

namespace opk::testing {
namespace {

using store::internal::pg_error;
using store::internal::pg_ident;
using store::internal::PgStatementKind;

// Type OIDs of pg_type (catalog/pg_type_d.h) the typed reads map, as the
// kernel's store does.
constexpr Oid kPgtBool = 16, kPgtBytea = 17, kPgtInt8 = 20, kPgtInt2 = 21, kPgtInt4 = 23, kPgtOid = 26,
              kPgtFloat4 = 700, kPgtFloat8 = 701, kPgtNumeric = 1700;

// The schema every Host of a server shares for the kernel's own tables
// (made once, never dropped: empty, and granted to no plugin's role).
constexpr const char* kPgKernelTablesSchema = "opk_test_kernel";

// The kernel's own tables with their columns, as MemoryStore makes them:
// present and empty, so a plugin reaching for one is refused by the fence
// (no grant to its role), not told it is missing. Made once per server in
// kPgKernelTablesSchema, which follows each Host's schema on its search
// path; schema_migrations, which the host writes, is each Host's own.
const char* const kPgMigrationsTable =
    "CREATE TABLE schema_migrations (owner TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_ms "
    "BIGINT NOT NULL, PRIMARY KEY (owner, version))";
const char* const kPgKernelSchema =
    "CREATE TABLE audit (id BIGINT PRIMARY KEY, time_ms BIGINT, actor TEXT, role TEXT, action TEXT, target TEXT, "
    "reason TEXT, params_json TEXT, outcome TEXT, source TEXT);"
    "CREATE TABLE nodes (id TEXT PRIMARY KEY, kind TEXT, name TEXT, parent TEXT, created_ms BIGINT);"
    "CREATE TABLE run_logs (run_id BIGINT, seq BIGINT, time_ms BIGINT, level INTEGER, step TEXT, message TEXT);"
    "CREATE TABLE run_state (id BIGINT PRIMARY KEY, phase TEXT, outcome TEXT, hold INTEGER, terminated INTEGER, "
    "stale INTEGER, started_ms BIGINT, finished_ms BIGINT, exit_code INTEGER, node TEXT, summary TEXT, progress "
    "DOUBLE PRECISION, progress_message TEXT, output_json TEXT, logs TEXT);"
    "CREATE TABLE runs (id BIGINT PRIMARY KEY, job_type TEXT, scheduled_job_id TEXT, slot_ms BIGINT, trigger TEXT, "
    "params_json TEXT, target_tenant TEXT, dry_run INTEGER, range_start_ms BIGINT, range_end_ms BIGINT, user_id "
    "TEXT, role TEXT, scope TEXT, reason TEXT, parent_run_id BIGINT, priority INTEGER, pool TEXT, scheduled_ms "
    "BIGINT, created_ms BIGINT);"
    "CREATE TABLE scheduled_jobs (id TEXT PRIMARY KEY, job_type TEXT, description TEXT, owner TEXT, planning TEXT, "
    "cron TEXT, time_zone TEXT, jitter_minutes INTEGER, params_json TEXT, enabled INTEGER, scope TEXT, region TEXT, "
    "report_recipients TEXT, next_run_ms BIGINT, created_ms BIGINT, updated_ms BIGINT);"
    "CREATE TABLE tokens (id TEXT PRIMARY KEY, user_id TEXT, hash TEXT, label TEXT, created_ms BIGINT, expires_ms "
    "BIGINT, revoked_ms BIGINT);"
    "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, role TEXT, scope TEXT, disabled INTEGER, created_ms "
    "BIGINT);";

std::string pgt_hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// FNV-1a of `s`: a short, stable tag for names too long for PostgreSQL.
uint32_t pgt_hash(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// One column of a row as JSON: text only, or typed as the kernel types it
// (integers, booleans as 1/0, floats, numeric, bytea as base64).
std::string pgt_column_json(const PGresult* r, int row, int col, bool typed) {
  if (PQgetisnull(r, row, col)) return "null";
  const char* t = PQgetvalue(r, row, col);
  const size_t len = static_cast<size_t>(PQgetlength(r, row, col));
  if (!typed) return json_string(std::string_view(t, len));
  switch (PQftype(r, col)) {
    case kPgtInt2:
    case kPgtInt4:
    case kPgtInt8:
    case kPgtOid:
      return std::to_string(std::strtoll(t, nullptr, 10));
    case kPgtBool:
      return t[0] == 't' ? "1" : "0";
    case kPgtNumeric:
      if (std::strpbrk(t, ".eEN") == nullptr) return std::to_string(std::strtoll(t, nullptr, 10));
      [[fallthrough]];
    case kPgtFloat4:
    case kPgtFloat8: {
      const double d = std::strtod(t, nullptr);
      if (!std::isfinite(d)) return "null";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      return buf;
    }
    case kPgtBytea: {
      std::string bytes;
      auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
      for (size_t i = 2; i + 1 < len; i += 2) bytes.push_back(static_cast<char>(nibble(t[i]) << 4 | nibble(t[i + 1])));
      return json_string(blob_base64(bytes.data(), bytes.size()));
    }
    default:
      return json_string(std::string_view(t, len));
  }
}

}  // namespace

// ---- opening and dropping the schema ----

namespace {

// Drops the schemas and roles of Hosts gone in the background, each with
// the Host's connection, so the next test need not wait for the server's
// disk (a DROP's commit is flushed whatever synchronous_commit says). At
// most kReaperSlots drops are queued or running, each holding its Host's
// connection: a Host gone while they are waits for room, so a binary of
// many Hosts does not pile up connections to the server. The workers (as
// many as the slots at most) are joined when the process ends, after the
// last drop; a drop that fails is said on stderr.
class PgReaper {
 public:
  static constexpr size_t kReaperSlots = 4;

  static PgReaper& instance() {
    static PgReaper reaper;
    return reaper;
  }
  ~PgReaper() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    work_.notify_all();
    for (auto& t : workers_) t.join();
  }
  void drop(PGconn* conn, const std::string& schema, const std::vector<std::string>& roles) {
    std::string sql = "BEGIN; ";
    if (!schema.empty()) sql += "DROP SCHEMA IF EXISTS " + pg_ident(schema) + " CASCADE; ";
    for (const auto& role : roles)
      sql += "DROP OWNED BY " + pg_ident(role) + "; DROP ROLE IF EXISTS " + pg_ident(role) + "; ";
    sql += "COMMIT";
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return queue_.size() + busy_ < kReaperSlots; });
    queue_.push_back({conn, schema, std::move(sql)});
    // A worker for each drop no waiting worker will take.
    if (queue_.size() > idle_ && workers_.size() < kReaperSlots) workers_.emplace_back([this] { work(); });
    work_.notify_one();
  }

 private:
  struct Drop {
    PGconn* conn;
    std::string schema, sql;
  };
  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // stopping, nothing left
      Drop d = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
      lock.unlock();
      PGresult* r = PQexec(d.conn, d.sql.c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const Status s = pg_error("dropping schema " + d.schema, d.conn, r);
        std::fprintf(stderr, "opk::testing: %s (left on the server)\n", s.message().c_str());
      }
      PQclear(r);
      PQfinish(d.conn);
      lock.lock();
      --busy_;
      room_.notify_one();
    }
  }

  std::mutex mu_;
  std::condition_variable work_, room_;
  std::deque<Drop> queue_;
  size_t busy_ = 0, idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

void PgResultFree::operator()(pg_result* r) const {
  PQclear(r);
}

Status PgTestStore::open(const std::string& conninfo, std::unique_ptr<PgTestStore>* out) {
  // Made before any store is complete, so it outlives every one, even a
  // static Host's (statics go in the reverse order of their making).
  PgReaper::instance();
  std::unique_ptr<PgTestStore> s(new PgTestStore());
  if (Status st = store::internal::pg_connect(conninfo, conninfo, &s->conn_); !st) return st;
  static std::atomic<int> counter{0};
  s->schema_ = "opk_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
               pgt_hex8(static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  // A test's rows need not survive the server's crash: commits do not wait
  // for the disk.
  if (Status st = s->exec("session", "SET synchronous_commit TO off"); !st) return st;
  // The kernel's tables, once per server (Hosts of several processes may
  // get here at once: the lock orders them), and set_config revoked:
  // set_config('role', ...) would let a statement leave its plugin's role
  // (the kernel's store revokes it likewise; it needs the function's owner).
  const std::string kernel = pg_ident(kPgKernelTablesSchema);
  if (Status st = s->exec("the kernel's tables", "SELECT pg_advisory_lock(hashtext('opk_test_kernel'))"); !st)
    return st;
  PgtResult have;
  Status made =
      s->exec("the kernel's tables", "SELECT 1 FROM pg_namespace WHERE nspname = $1", {kPgKernelTablesSchema}, &have);
  if (made && PQntuples(have.get()) == 0)
    made = s->exec("the kernel's tables", "BEGIN; CREATE SCHEMA " + kernel + "; GRANT USAGE ON SCHEMA " + kernel +
                                              " TO PUBLIC; SET LOCAL search_path TO " + kernel + "; " +
                                              kPgKernelSchema + " COMMIT");
  if (!made) s->exec("rollback", "ROLLBACK");
  s->exec("the kernel's tables", "SELECT pg_advisory_unlock(hashtext('opk_test_kernel'))");
  if (!made) return made;
  s->exec("set_config", "REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC");
  // The Host's own schema, first on the search path.
  if (Status st = s->exec("schema", "CREATE SCHEMA " + pg_ident(s->schema_) + "; SET search_path TO " +
                                        pg_ident(s->schema_) + ", " + kernel + "; " + kPgMigrationsTable);
      !st) {
    s->exec("schema", "DROP SCHEMA IF EXISTS " + pg_ident(s->schema_) + " CASCADE");
    s->schema_.clear();
    return st;
  }
  StoreCallbacks<PgTestStore>::fill(&s->table_);
  *out = std::move(s);
  return Status::ok();
}

PgTestStore::~PgTestStore() {
  if (!conn_) return;
  if (PQstatus(conn_) != CONNECTION_OK) {
    PQfinish(conn_);
    return;
  }
  std::vector<std::string> roles;
  for (const auto& [id, role] : roles_) roles.push_back(role);
  PgReaper::instance().drop(conn_, schema_, std::move(roles));
}

Status PgTestStore::exec(const std::string& what, const std::string& sql, const std::vector<const char*>& params,
                         PgtResult* out) {
  if (!pending_.empty()) {
    // The transaction's opening (and, for a call of one statement, its
    // COMMIT) go with the statement, in one round trip.
    std::vector<PgCommand> cmds;
    for (const auto& p : pending_) cmds.push_back({"begin", p, {}});
    const size_t at = cmds.size();
    cmds.push_back({what, sql, params});
    const bool commit = commit_next_;
    if (commit) cmds.push_back({"commit", "COMMIT", {}});
    pending_.clear();
    commit_next_ = false;
    size_t failed = cmds.size();
    Status s = pipeline(cmds, at, out, &failed);
    begun_ = failed > 0;
    if (s && commit) committed_ = true;
    return s;
  }
  PgtResult r(
      PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr, nullptr, 0));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) return pg_error(what, conn_, r.get());
  if (out) *out = std::move(r);
  return Status::ok();
}

Status PgTestStore::pipeline(const std::vector<PgCommand>& cmds, size_t want, PgtResult* out, size_t* failed) {
  if (PQenterPipelineMode(conn_) != 1) return pg_error("pipeline", conn_, nullptr);
  Status first = Status::ok();
  size_t sent = 0;
  for (const auto& c : cmds) {
    if (!PQsendQueryParams(conn_, c.sql.c_str(), static_cast<int>(c.params.size()), nullptr, c.params.data(), nullptr,
                           nullptr, 0)) {
      first = pg_error(c.what, conn_, nullptr);
      *failed = sent;
      break;
    }
    ++sent;
  }
  PQpipelineSync(conn_);
  for (size_t i = 0; i < sent; ++i) {
    PgtResult r(PQgetResult(conn_));
    if (!r) {
      if (first) {
        first = pg_error(cmds[i].what, conn_, nullptr);
        *failed = i;
      }
      break;
    }
    while (PGresult* end = PQgetResult(conn_)) PQclear(end);  // the command's NULL
    const ExecStatusType st = PQresultStatus(r.get());
    if (st == PGRES_PIPELINE_ABORTED) continue;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
      if (first) {
        first = pg_error(cmds[i].what, conn_, r.get());
        *failed = i;
      }
      continue;
    }
    if (i == want && out) *out = std::move(r);
  }
  // The sync's result, then out of pipeline mode.
  while (PGresult* r = PQgetResult(conn_)) {
    const bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (sync) break;
  }
  PQexitPipelineMode(conn_);
  return first;
}

Status PgTestStore::exec(const std::string& what, const std::string& sql) {
  std::string text = sql;
  if (!pending_.empty()) {
    std::string opening;
    for (const auto& p : pending_) opening += p + "; ";
    text = opening + sql;
    pending_.clear();
    begun_ = true;  // or failed to: a ROLLBACK is then harmless
  }
  PgtResult r(PQexec(conn_, text.c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) return pg_error(what, conn_, r.get());
  return Status::ok();
}

// ---- the fence ----

Status PgTestStore::ensure_role(const PluginSlot& slot) {
  if (roles_.count(slot.id)) return Status::ok();
  std::string name = schema_ + "_" + slot.table_prefix.substr(2);
  name.pop_back();  // the prefix's trailing '_'
  if (name.size() > 63) name = name.substr(0, 54) + "_" + pgt_hex8(pgt_hash(slot.id));
  const std::string id = pg_ident(name), what = "the role of plugin " + slot.id;
  // Made in a transaction of its own, before the plugin's statement: a
  // statement that fails does not undo its role.
  for (const std::string& sql : {"CREATE ROLE " + id + " NOLOGIN", "GRANT " + id + " TO CURRENT_USER",
                                 "GRANT USAGE, CREATE ON SCHEMA " + pg_ident(schema_) + " TO " + id})
    if (Status s = exec(what, sql); !s) return s;
  roles_[slot.id] = name;
  PgtResult r;
  if (Status s =
          exec(what, "SELECT has_function_privilege($1, 'pg_catalog.set_config(text, text, boolean)', 'EXECUTE')",
               {name.c_str()}, &r);
      !s)
    return s;
  if (PQgetvalue(r.get(), 0, 0)[0] == 't')
    return Status::permission("store (postgresql): plugin " + slot.id + "'s role " + name +
                              " may call set_config, which would let it leave its role: as the database's superuser, "
                              "run REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC");
  return Status::ok();
}

Status PgTestStore::check_relations(const PluginSlot& slot, const std::string& role) {
  PgtResult r;
  const std::string& prefix = slot.table_prefix;
  if (Status s = exec("the tables of plugin " + slot.id, store::internal::kPgForeignRelationSql,
                      {role.c_str(), prefix.c_str()}, &r);
      !s)
    return s;
  if (PQntuples(r.get()) == 0) return Status::ok();
  return store::internal::pg_foreign_relation(slot.id, PQgetvalue(r.get(), 0, 0), PQgetvalue(r.get(), 0, 1)[0]);
}

Status PgTestStore::run_one(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool query,
                            bool typed, std::string* rows_json, int64_t* changed) {
  std::string numbered;
  if (Status s = store::internal::numbered_parameters(sql, n, &numbered); !s) return s;
  std::string refusal;
  const PgStatementKind kind = store::internal::pg_classify(sql, &refusal);
  if (kind == PgStatementKind::bad) return Status::invalid("SQL: " + refusal);
  if (kind == PgStatementKind::refused) return Status::permission("SQL: " + refusal);
  if (query && kind == PgStatementKind::ddl)
    return Status::invalid("SQL: query takes read-only statements; use execute");
  const auto known = roles_.find(slot.id);
  if (known == roles_.end()) return Status::error("store (postgresql): plugin " + slot.id + " has no role");
  const std::string& role = known->second;
  if (txn_role_ != role) {
    if (Status s = exec("set role", "SET LOCAL ROLE " + pg_ident(role)); !s) return s;
    txn_role_ = role;
  }
  std::vector<const char*> values(n, nullptr);
  for (uint32_t i = 0; params && i < n; ++i) values[i] = params[i];
  PgtResult r;
  commit_next_ = commit_with_statement_ && kind != PgStatementKind::ddl;
  if (Status s = exec("plugin " + slot.id, sql, values, &r); !s) return store::internal::pg_plugin_error(slot.id, s);
  if (kind == PgStatementKind::ddl)
    if (Status s = check_relations(slot, role); !s) return s;
  if (rows_json) {
    std::string json = "[";
    const int rows = PQntuples(r.get()), cols = PQnfields(r.get());
    for (int i = 0; i < rows; ++i) {
      json += i ? ",[" : "[";
      for (int c = 0; c < cols; ++c) {
        if (c) json += ',';
        json += pgt_column_json(r.get(), i, c, typed);
      }
      json += ']';
    }
    *rows_json = json + "]";
  }
  if (changed)
    *changed = (query || kind != PgStatementKind::dml || std::strncmp(PQcmdStatus(r.get()), "SELECT", 6) == 0)
                   ? 0
                   : std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
  return Status::ok();
}

Status PgTestStore::in_transaction(bool read_only, const PluginSlot* slot, bool single,
                                   const std::function<Status()>& body) {
  // The opening is sent with the first statement (exec), in one round trip.
  const std::string role = slot ? roles_.at(slot->id) : "";
  pending_ = {read_only ? "BEGIN READ ONLY" : "BEGIN"};
  if (!role.empty()) pending_.push_back("SET LOCAL ROLE " + pg_ident(role));
  begun_ = committed_ = false;
  commit_with_statement_ = single;
  txn_role_ = role;
  Status s = body();
  txn_role_.clear();
  commit_with_statement_ = commit_next_ = false;
  if (!pending_.empty()) {  // nothing was sent: no transaction to end
    pending_.clear();
    return s;
  }
  if (!s) {
    if (begun_ && !committed_) exec("rollback", "ROLLBACK");
    return s;
  }
  if (committed_) return Status::ok();
  if (Status c = exec("commit", "COMMIT"); !c) {
    exec("rollback", "ROLLBACK");
    return c;
  }
  return Status::ok();
}

Status PgTestStore::migrate(PluginSlot& slot, const opk_store_migration* m, uint32_t count) {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < count; ++i)
    if (!m[i].sql || !m[i].name) return Status::invalid("migration " + std::to_string(i) + ": name or sql is NULL");
  if (Status r = ensure_role(slot); !r) return r;
  for (uint32_t i = 0; i < count; ++i) {
    Status s = in_transaction(false, nullptr, false, [&]() -> Status {
      PgtResult r;
      if (Status q = exec("migrations", "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE owner = $1",
                          {slot.id.c_str()}, &r);
          !q)
        return q;
      const int current = std::atoi(PQgetvalue(r.get(), 0, 0));
      if (m[i].version <= current) return Status::ok();
      if (m[i].version != current + 1)
        return Status::invalid("migrations of '" + slot.id + "': version " + std::to_string(m[i].version) +
                               " follows " + std::to_string(current) + " (versions must be 1, 2, 3 ...)");
      for (const auto& statement : store::internal::pg_split_script(m[i].sql)) {
        if (Status st = run_one(slot, statement.c_str(), nullptr, 0, false, false, nullptr, nullptr); !st)
          return Status::invalid("migration " + slot.id + " #" + std::to_string(m[i].version) + " (" + m[i].name +
                                 ") failed and was rolled back: " + st.message());
      }
      // Recorded by the host, as itself.
      if (Status st = exec("reset role", "RESET ROLE"); !st) return st;
      txn_role_.clear();
      const std::string version = std::to_string(m[i].version), at = std::to_string(slot.table.now_ms(&slot.table));
      return exec("migrations", "INSERT INTO schema_migrations VALUES ($1, $2, $3, $4)",
                  {slot.id.c_str(), version.c_str(), m[i].name, at.c_str()});
    });
    if (!s) return s;
  }
  return Status::ok();
}

Status PgTestStore::rows(const std::string& sql, Rows* out) {
  std::lock_guard lock(mu_);
  PgtResult r;
  if (Status s = exec("the test's read", sql, {}, &r); !s) return Status::invalid(s.message() + " in: " + sql);
  const int n = PQntuples(r.get()), cols = PQnfields(r.get());
  for (int i = 0; i < n; ++i) {
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < cols; ++c)
      row.push_back(PQgetisnull(r.get(), i, c)
                        ? std::nullopt
                        : std::optional<std::string>(
                              std::string(PQgetvalue(r.get(), i, c), static_cast<size_t>(PQgetlength(r.get(), i, c)))));
    out->push_back(std::move(row));
  }
  return Status::ok();
}

// ---- the service's calls ----

PgTestStore* PgTestStore::of(const opk_host* host) {
  auto* slot = PluginSlot::from(host);
  return slot ? host_pg_store(slot->host) : nullptr;
}

Status PgTestStore::execute(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n,
                            int64_t* changed) {
  std::lock_guard lock(mu_);
  if (Status s = ensure_role(slot); !s) return s;
  return in_transaction(false, &slot, true,
                        [&] { return run_one(slot, sql, params, n, false, false, nullptr, changed); });
}

Status PgTestStore::read(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool typed,
                         std::string* rows_json) {
  std::lock_guard lock(mu_);
  if (Status s = ensure_role(slot); !s) return s;
  return in_transaction(true, &slot, true,
                        [&] { return run_one(slot, sql, params, n, true, typed, rows_json, nullptr); });
}

Status PgTestStore::transaction(const PluginSlot& slot, const opk_store_statement* statements, uint32_t count,
                                std::string* results, uint32_t* failed_at) {
  std::lock_guard lock(mu_);
  *failed_at = count ? count - 1 : 0;  // a failed begin or commit: the last
  if (Status s = ensure_role(slot); !s) return s;
  std::string json = "[";
  Status st = in_transaction(false, &slot, false, [&]() -> Status {
    for (uint32_t i = 0; i < count; ++i) {
      std::string rows;
      int64_t changed = 0;
      Status one = statements[i].sql ? run_one(slot, statements[i].sql, statements[i].params, statements[i].param_count,
                                               false, true, &rows, &changed)
                                     : Status::invalid("sql is NULL");
      if (!one) {
        *failed_at = i;
        return Status(one.code(), "statement " + std::to_string(i) + ": " + one.message());
      }
      json += (i ? ",{\"changed\":" : "{\"changed\":") + std::to_string(changed) + ",\"rows\":" + rows + "}";
    }
    return Status::ok();
  });
  if (st) *results = json + "]";
  return st;
}

}  // namespace opk::testing
