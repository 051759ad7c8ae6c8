// opk.store/1 on an in-memory SQLite database, fenced to each plugin's own
// tables as the kernel's store is.
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "internal.h"

namespace opk::testing {
namespace {

// The kernel's own tables with their columns (not its constraints or
// indexes): present and empty, so that a plugin reaching for one is refused
// by the fence, as in the kernel, not told it is missing.
const char* const kKernelSchema =
    "CREATE TABLE audit (id INTEGER PRIMARY KEY, time_ms INTEGER, actor TEXT, role TEXT, action TEXT, target TEXT, "
    "reason TEXT, params_json TEXT, outcome TEXT, source TEXT);"
    "CREATE TABLE lingering_runs (id INTEGER PRIMARY KEY);"
    "CREATE TABLE nodes (id TEXT PRIMARY KEY, kind TEXT, name TEXT, parent TEXT, created_ms INTEGER);"
    "CREATE TABLE run_logs (run_id INTEGER, seq INTEGER, time_ms INTEGER, level INTEGER, step TEXT, message TEXT);"
    "CREATE TABLE run_state (id INTEGER PRIMARY KEY, phase TEXT, outcome TEXT, hold INTEGER, terminated INTEGER, "
    "stale INTEGER, started_ms INTEGER, finished_ms INTEGER, exit_code INTEGER, node TEXT, summary TEXT, progress "
    "REAL, progress_message TEXT, output_json TEXT, logs TEXT);"
    "CREATE TABLE run_steps (run_id INTEGER, seq INTEGER, step_id TEXT, start_ms INTEGER, end_ms INTEGER, outcome "
    "TEXT, summary TEXT);"
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, job_type TEXT, scheduled_job_id TEXT, slot_ms INTEGER, trigger TEXT, "
    "params_json TEXT, target_tenant TEXT, dry_run INTEGER, range_start_ms INTEGER, range_end_ms INTEGER, user_id "
    "TEXT, role TEXT, scope TEXT, reason TEXT, parent_run_id INTEGER, priority INTEGER, pool TEXT, scheduled_ms "
    "INTEGER, created_ms INTEGER);"
    "CREATE TABLE scheduled_jobs (id TEXT PRIMARY KEY, job_type TEXT, description TEXT, owner TEXT, planning TEXT, "
    "cron TEXT, time_zone TEXT, jitter_minutes INTEGER, params_json TEXT, enabled INTEGER, scope TEXT, region TEXT, "
    "report_recipients TEXT, next_run_ms INTEGER, created_ms INTEGER, updated_ms INTEGER);"
    "CREATE TABLE schema_migrations (owner TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_ms "
    "INTEGER NOT NULL, PRIMARY KEY (owner, version));"
    "CREATE TABLE store_marks (name TEXT PRIMARY KEY, value INTEGER);"
    "CREATE TABLE tokens (id TEXT PRIMARY KEY, user_id TEXT, hash TEXT, label TEXT, created_ms INTEGER, expires_ms "
    "INTEGER, revoked_ms INTEGER);"
    "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, role TEXT, scope TEXT, disabled INTEGER, created_ms "
    "INTEGER);";

bool starts_with(const char* name, const std::string& prefix) {
  return name != nullptr && std::strncmp(name, prefix.c_str(), prefix.size()) == 0;
}

bool schema_table(const char* name) {
  return name != nullptr &&
         (std::strcmp(name, "sqlite_master") == 0 || std::strcmp(name, "sqlite_schema") == 0 ||
          std::strcmp(name, "sqlite_temp_master") == 0 || std::strcmp(name, "sqlite_temp_schema") == 0);
}

// One column of the current row as JSON: text only, or typed.
std::string column_json(sqlite3_stmt* st, int c, bool typed) {
  switch (sqlite3_column_type(st, c)) {
    case SQLITE_NULL:
      return "null";
    case SQLITE_INTEGER:
      if (typed) return std::to_string(sqlite3_column_int64(st, c));
      break;
    case SQLITE_FLOAT:
      if (typed) {
        const double d = sqlite3_column_double(st, c);
        if (!std::isfinite(d)) return "null";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", d);
        return buf;
      }
      break;
    case SQLITE_BLOB:
      if (typed)
        return json_string(blob_base64(sqlite3_column_blob(st, c), static_cast<size_t>(sqlite3_column_bytes(st, c))));
      break;
    default:
      break;
  }
  const unsigned char* t = sqlite3_column_text(st, c);
  return t ? json_string(std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(st, c))) : "null";
}

}  // namespace

std::string blob_base64(const void* data, size_t size) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t b =
        (uint32_t(p[i]) << 16) | (i + 1 < size ? uint32_t(p[i + 1]) << 8 : 0) | (i + 2 < size ? uint32_t(p[i + 2]) : 0);
    out += k[(b >> 18) & 63];
    out += k[(b >> 12) & 63];
    out += i + 1 < size ? k[(b >> 6) & 63] : '=';
    out += i + 2 < size ? k[b & 63] : '=';
  }
  return out;
}

MemoryStore::MemoryStore() {
  sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  sqlite3_exec(db_, kKernelSchema, nullptr, nullptr, nullptr);
  sqlite3_set_authorizer(db_, &MemoryStore::authorize, this);
  StoreCallbacks<MemoryStore>::fill(&table_);
}

MemoryStore::~MemoryStore() {
  sqlite3_close_v2(db_);
}

// The kernel's fence (kernel/store/sqlite_plugin_sql.cpp): a plugin's
// statement may name only its own tables and indexes. SQLite's bookkeeping
// (the schema rows a CREATE writes, AUTOINCREMENT counters) is allowed as
// the consequence of an allowed statement; reading the schema is not.
int MemoryStore::authorize(void* data, int action, const char* a1, const char* a2, const char*, const char*) {
  auto* self = static_cast<MemoryStore*>(data);
  const PluginSlot* slot = self->fenced_;
  if (slot == nullptr) return SQLITE_OK;
  const std::string& prefix = slot->table_prefix;
  auto own = [&](const char* name, const char* what) {
    // SQLite names the index behind a UNIQUE or PRIMARY KEY constraint
    // "sqlite_autoindex_<table>_<n>".
    if (starts_with(name, prefix) || starts_with(name, "sqlite_autoindex_" + prefix)) return SQLITE_OK;
    if (self->refused_.empty())
      self->refused_ = std::string(what) + " '" + (name ? name : "") + "' is not one of plugin " + slot->id +
                       "'s own (named " + prefix + "...)";
    return SQLITE_DENY;
  };
  auto deny = [&](const std::string& what) {
    if (self->refused_.empty()) self->refused_ = what + " is not allowed to plugins";
    return SQLITE_DENY;
  };
  // SQLITE_CREATE_INDEX (1) .. SQLITE_DROP_VIEW (17) are the CREATEs and
  // DROPs, but for SQLITE_DELETE (9).
  const bool ddl = (action >= SQLITE_CREATE_INDEX && action <= SQLITE_DROP_VIEW && action != SQLITE_DELETE) ||
                   action == SQLITE_ALTER_TABLE;
  int verdict;
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      verdict = SQLITE_OK;
      break;
    case SQLITE_READ:
      // A CREATE or ALTER reads the schema itself; a plugin's SELECT may not.
      if (schema_table(a1))
        verdict = self->ddl_ ? SQLITE_OK : deny("reading the schema (" + std::string(a1) + ")");
      else
        verdict = own(a1, "table");
      break;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      if (schema_table(a1) || (a1 && std::strcmp(a1, "sqlite_sequence") == 0))
        verdict = SQLITE_OK;
      else
        verdict = own(a1, "table");
      break;
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_ANALYZE:
      verdict = own(a1, "table");
      break;
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
      verdict = deny("CREATE VIEW (plugins keep tables and indexes)");
      break;
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
      verdict = deny("CREATE TRIGGER (plugins keep tables and indexes)");
      break;
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
      verdict = own(a1, "view");
      break;
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
      verdict = own(a2, "table");
      break;
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
      // Both the index and the table it is on.
      verdict = own(a1, "index") == SQLITE_OK ? own(a2, "table") : SQLITE_DENY;
      break;
    case SQLITE_ALTER_TABLE:
      verdict = own(a2, "table");
      break;
    case SQLITE_REINDEX:
      verdict = own(a1, "index");
      break;
    case SQLITE_PRAGMA:
      verdict = deny("PRAGMA " + std::string(a1 ? a1 : ""));
      break;
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      verdict = deny("ATTACH and DETACH");
      break;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      verdict = deny("transaction control (one call is one transaction; use transaction for several statements)");
      break;
    default:
      verdict = deny("this statement (authorizer action " + std::to_string(action) + ")");
  }
  if (ddl && verdict == SQLITE_OK) self->ddl_ = true;
  return verdict;
}

Status MemoryStore::fence_error(const std::string& sql_error) const {
  if (!refused_.empty()) return Status::permission("SQL: " + refused_);
  return Status::invalid("SQL: " + sql_error);
}

void MemoryStore::raise_fence(const PluginSlot* slot) {
  fenced_ = slot;
  refused_.clear();
  ddl_ = false;
}

Status MemoryStore::run_one(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool query,
                            bool typed, std::string* rows_json, int64_t* changed) {
  sqlite3_stmt* st = nullptr;
  const char* tail = nullptr;
  // The fence holds for the statement's life: a schema change re-prepares it.
  raise_fence(&slot);
  std::unique_ptr<MemoryStore, void (*)(MemoryStore*)> lift(this, [](MemoryStore* m) { m->raise_fence(nullptr); });
  if (sqlite3_prepare_v2(db_, sql, -1, &st, &tail) != SQLITE_OK) return fence_error(sqlite3_errmsg(db_));
  if (st == nullptr) return Status::invalid("SQL: no statement");
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(st, &sqlite3_finalize);
  if (tail && std::string(tail).find_first_not_of(" \t\r\n;") != std::string::npos)
    return Status::invalid("SQL: one statement per call");
  if (sqlite3_bind_parameter_count(st) != static_cast<int>(n))
    return Status::invalid("SQL: the statement has " + std::to_string(sqlite3_bind_parameter_count(st)) +
                           " parameter(s), " + std::to_string(n) + " given");
  if (query && !sqlite3_stmt_readonly(st)) return Status::invalid("SQL: query takes read-only statements; use execute");
  // SQLite numbers "$n" parameters by first appearance; bind by name so
  // $1..$n mean what they mean in PostgreSQL.
  for (uint32_t i = 0; i < n; ++i) {
    const int idx = sqlite3_bind_parameter_index(st, ("$" + std::to_string(i + 1)).c_str());
    if (idx == 0) return Status::invalid("SQL: parameters must be $1..$" + std::to_string(n));
    if (params && params[i])
      sqlite3_bind_text(st, idx, params[i], -1, SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(st, idx);
  }
  std::string json = "[";
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!rows_json) continue;
    json += json.size() > 1 ? ",[" : "[";
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      if (c) json += ',';
      json += column_json(st, c, typed);
    }
    json += ']';
  }
  if (rc != SQLITE_DONE) {
    if (!refused_.empty()) return Status::permission("SQL: " + refused_);
    const std::string msg = std::string("SQL: ") + sqlite3_errmsg(db_);
    return (rc & 0xff) == SQLITE_CONSTRAINT ? Status::conflict(msg) : Status::invalid(msg);
  }
  if (changed) *changed = sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes(db_);
  if (rows_json) *rows_json = json + "]";
  return Status::ok();
}

Status MemoryStore::migrate(PluginSlot& slot, const opk_store_migration* m, uint32_t count) {
  std::lock_guard lock(mu_);
  int current = 0;
  {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE owner = $1", -1, &st,
                       nullptr);
    sqlite3_bind_text(st, 1, slot.id.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  int last = current;
  for (uint32_t i = 0; i < count; ++i) {
    if (!m[i].sql || !m[i].name) return Status::invalid("migration " + std::to_string(i) + ": name or sql is NULL");
    if (m[i].version <= last && m[i].version <= current) continue;
    if (m[i].version != last + 1)
      return Status::invalid("migrations of '" + slot.id + "': version " + std::to_string(m[i].version) + " follows " +
                             std::to_string(last) + " (versions must be 1, 2, 3 ...)");
    const std::string what = "migration " + slot.id + " #" + std::to_string(m[i].version) + " (" + m[i].name +
                             ") failed and was rolled back: ";
    sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    raise_fence(&slot);
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, m[i].sql, nullptr, nullptr, &err);
    const std::string refused = refused_;
    raise_fence(nullptr);
    if (rc != SQLITE_OK) {
      const std::string msg = !refused.empty() ? refused : err ? err : "unknown error";
      sqlite3_free(err);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return Status::invalid(what + msg);
    }
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "INSERT INTO schema_migrations VALUES ($1, $2, $3, $4)", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, slot.id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, m[i].version);
    sqlite3_bind_text(st, 3, m[i].name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, slot.table.now_ms(&slot.table));
    sqlite3_step(st);
    sqlite3_finalize(st);
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    last = m[i].version;
  }
  return Status::ok();
}

Status MemoryStore::transaction(const PluginSlot& slot, const opk_store_statement* st, uint32_t count,
                                std::string* results, uint32_t* failed_at) {
  std::lock_guard lock(mu_);
  sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  std::string out = "[";
  for (uint32_t i = 0; i < count; ++i) {
    std::string rows;
    int64_t changed = 0;
    Status s = st[i].sql ? run_one(slot, st[i].sql, st[i].params, st[i].param_count, false, true, &rows, &changed)
                         : Status::invalid("sql is NULL");
    if (!s) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      *failed_at = i;
      return Status(s.code(), "statement " + std::to_string(i) + ": " + s.message());
    }
    out += (i ? ",{\"changed\":" : "{\"changed\":") + std::to_string(changed) + ",\"rows\":" + rows + "}";
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    const std::string msg = std::string("SQL: ") + sqlite3_errmsg(db_);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    *failed_at = count ? count - 1 : 0;
    return Status::unavailable(msg);
  }
  *results = out + "]";
  return Status::ok();
}

Status MemoryStore::rows(const std::string& sql, Rows* out) const {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK || st == nullptr)
    return Status::invalid("SQL: " + std::string(sqlite3_errmsg(db_)) + " in: " + sql);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const unsigned char* t = sqlite3_column_text(st, c);
      row.push_back(t ? std::optional<std::string>(reinterpret_cast<const char*>(t)) : std::nullopt);
    }
    out->push_back(std::move(row));
  }
  Status s = rc == SQLITE_DONE ? Status::ok() : Status::invalid("SQL: " + std::string(sqlite3_errmsg(db_)));
  sqlite3_finalize(st);
  return s;
}

std::string MemoryStore::json_type(const std::string& text) const {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT CASE WHEN json_valid($1) THEN json_type($1) END", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  std::string type;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    type = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return type;
}

// ---- the service's calls ----

MemoryStore* MemoryStore::of(const opk_host* host) {
  return store_of(host);
}

Status MemoryStore::execute(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n,
                            int64_t* changed) {
  std::lock_guard lock(mu_);
  return run_one(slot, sql, params, n, false, false, nullptr, changed);
}

Status MemoryStore::read(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool typed,
                         std::string* rows_json) {
  std::lock_guard lock(mu_);
  return run_one(slot, sql, params, n, true, typed, rows_json, nullptr);
}

}  // namespace opk::testing
