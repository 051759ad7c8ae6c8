// The embedded store's SQL for plugins (opk.store/1): statements on plugins'
// own tables with $1..$n text parameters, fenced to the calling plugin's
// tables by SQLite's authorizer; writes on the writer connection (one
// statement, or several in one transaction), reads on a pooled one.
#include <Poco/Data/SQLite/Utility.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "store/sqlite_internal.h"

namespace opk::store::internal {

namespace {

// The authorizer's state for one plugin statement: whose it is, and the
// first thing it was refused.
struct Fence {
  std::string owner;
  std::string prefix;
  std::string refused;
  bool ddl = false;  // a CREATE, DROP or ALTER of its own was allowed
};

bool starts_with(const char* name, const std::string& prefix) {
  return name != nullptr && std::strncmp(name, prefix.c_str(), prefix.size()) == 0;
}

bool schema_table(const char* name) {
  return name != nullptr &&
         (std::strcmp(name, "sqlite_master") == 0 || std::strcmp(name, "sqlite_schema") == 0 ||
          std::strcmp(name, "sqlite_temp_master") == 0 || std::strcmp(name, "sqlite_temp_schema") == 0);
}

// SQLite's authorizer, called while a statement is prepared (and for the
// programs of triggers and views it uses): a plugin's statement may name
// only its own tables, indexes, views and triggers. SQLite's own
// bookkeeping (the schema rows a CREATE writes, AUTOINCREMENT counters) is
// allowed as the consequence of an allowed statement; reading the schema is
// not (it would list the kernel's and other plugins' tables).
int check(Fence* f, int action, const char* a1, const char* a2);

// The fence of the plugin statement this thread is preparing or stepping;
// null while it runs the kernel's own. A thread, not a connection: SQLite
// calls the authorizer on the thread that prepares (or re-prepares, inside
// a step) on the connection, and a connection is used by one thread at a
// time (the writer under write_mu_, a reader while its session is held), so
// the slot of that thread is the fence of the statement being checked. The
// readers are Poco's pooled sessions, with nothing of ours to hang a slot on.
thread_local Fence* opk_sqlite_current_fence = nullptr;

int fence(void* /*ctx*/, int action, const char* a1, const char* a2, const char* /*db*/, const char* /*inner*/) {
  Fence* f = opk_sqlite_current_fence;
  if (f == nullptr) return SQLITE_OK;  // the kernel's own statement
  const int verdict = check(f, action, a1, a2);
  // SQLITE_CREATE_INDEX (1) .. SQLITE_DROP_VIEW (17) are the CREATEs and
  // DROPs, but for SQLITE_DELETE (9).
  const bool ddl = (action >= SQLITE_CREATE_INDEX && action <= SQLITE_DROP_VIEW && action != SQLITE_DELETE) ||
                   action == SQLITE_ALTER_TABLE;
  if (ddl && verdict == SQLITE_OK) f->ddl = true;
  return verdict;
}

int check(Fence* f, int action, const char* a1, const char* a2) {
  auto own = [&](const char* name, const char* what) {
    // SQLite names the index behind a UNIQUE or PRIMARY KEY constraint
    // "sqlite_autoindex_<table>_<n>".
    if (starts_with(name, f->prefix) || starts_with(name, "sqlite_autoindex_" + f->prefix)) return SQLITE_OK;
    if (f->refused.empty())
      f->refused = std::string(what) + " '" + (name ? name : "") + "' is not one of plugin " + f->owner +
                   "'s own (named " + f->prefix + "...)";
    return SQLITE_DENY;
  };
  auto deny = [&](const std::string& what) {
    if (f->refused.empty()) f->refused = what + " is not allowed to plugins";
    return SQLITE_DENY;
  };
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_READ:
      // A CREATE or ALTER reads the schema itself; a plugin's SELECT may not.
      if (schema_table(a1)) return f->ddl ? SQLITE_OK : deny("reading the schema (" + std::string(a1) + ")");
      return own(a1, "table");
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      // The schema rows of an allowed CREATE/DROP, and AUTOINCREMENT's.
      if (schema_table(a1) || (a1 && std::strcmp(a1, "sqlite_sequence") == 0)) return SQLITE_OK;
      return own(a1, "table");
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_ANALYZE:
      return own(a1, "table");
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
      // Their bodies are checked only when used, and neither ports between
      // SQLite and PostgreSQL as written: tables and indexes only.
      return deny(std::string(action == SQLITE_CREATE_VIEW || action == SQLITE_CREATE_TEMP_VIEW ? "CREATE VIEW"
                                                                                                : "CREATE TRIGGER") +
                  " (plugins keep tables and indexes)");
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
      return own(a1, "view");
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
      return own(a2, "table");
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
      // Both the index and the table it is on.
      if (own(a1, "index") != SQLITE_OK) return SQLITE_DENY;
      return own(a2, "table");
    case SQLITE_ALTER_TABLE:
      return own(a2, "table");
    case SQLITE_REINDEX:
      return own(a1, "index");
    case SQLITE_PRAGMA:
      return deny("PRAGMA " + std::string(a1 ? a1 : ""));
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return deny("ATTACH and DETACH");
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return deny("transaction control (one call is one transaction; use transaction for several statements)");
    default:
      return deny("this statement (authorizer action " + std::to_string(action) + ")");
  }
}

Value value_of(sqlite3_stmt* st, int c) {
  Value v;
  switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER:
      v.kind = Value::Kind::integer;
      v.integer = sqlite3_column_int64(st, c);
      break;
    case SQLITE_FLOAT:
      v.kind = Value::Kind::real;
      v.real = sqlite3_column_double(st, c);
      break;
    case SQLITE_TEXT:
      v.kind = Value::Kind::text;
      v.text.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, c)),
                    static_cast<size_t>(sqlite3_column_bytes(st, c)));
      break;
    case SQLITE_BLOB: {
      v.kind = Value::Kind::blob;
      const void* b = sqlite3_column_blob(st, c);
      if (b) v.text.assign(static_cast<const char*>(b), static_cast<size_t>(sqlite3_column_bytes(st, c)));
      break;
    }
    default:
      break;
  }
  return v;
}

// Holds a plugin's fence for one statement's life (prepare and steps: a
// schema change re-prepares it), then lifts it. The authorizer stays
// installed (install_plugin_fence): setting it expires every prepared
// statement of the connection, the kernel's too.
class Fenced {
 public:
  explicit Fenced(Fence* fence) : saved_(opk_sqlite_current_fence) { opk_sqlite_current_fence = fence; }
  ~Fenced() { opk_sqlite_current_fence = saved_; }
  Fenced(const Fenced&) = delete;
  Fenced& operator=(const Fenced&) = delete;

 private:
  Fence* saved_;
};

}  // namespace

void install_plugin_fence(sqlite3* conn) {
  sqlite3_set_authorizer(conn, &fence, nullptr);
}

Status SqliteStore::run_plugin_sql(sqlite3* conn, const std::string& sql,
                                   const std::vector<std::optional<std::string>>& params, const PluginCall& call) {
  // SQLite finds a named parameter ("$3") by a linear search of the
  // statement's names, so binding n of them costs n squared (27% of a
  // plugin's CPU at 500 parameters); "?3" is parameter 3 itself.
  std::string text;
  if (Status s = numbered_parameters(sql, params.size(), &text); !s) return s;
  Fence f{call.owner, plugin_table_prefix(call.owner), {}};
  // The fence stays on for the statement's steps too: a cached statement
  // that a schema change makes SQLite prepare again is checked again.
  Fenced fenced(call.owner.empty() ? nullptr : &f);
  PluginStmtCache* cache = call.cache;
  std::string key;
  sqlite3_stmt* st = nullptr;
  if (cache) {
    key.reserve(call.owner.size() + 1 + text.size());
    key.append(call.owner).push_back('\0');
    key.append(text);
    if (auto it = cache->statements.find(key); it != cache->statements.end()) st = it->second;
  }
  // A kept statement is reset for its next use (its text parameters let
  // go); any other is finalized.
  bool keep = st != nullptr;
  auto done = [&](sqlite3_stmt* s) {
    if (!keep) {
      sqlite3_finalize(s);
      return;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  };
  if (st == nullptr) {
    if (call.prepares) call.prepares->fetch_add(1, std::memory_order_relaxed);
    const char* tail = nullptr;
    if (sqlite3_prepare_v3(conn, text.c_str(), static_cast<int>(text.size()), cache ? SQLITE_PREPARE_PERSISTENT : 0,
                           &st, &tail) != SQLITE_OK) {
      if (!f.refused.empty()) return Status::permission("SQL: " + f.refused);
      return Status::invalid(std::string("SQL: ") + sqlite3_errmsg(conn));
    }
    if (st == nullptr) return Status::invalid("SQL: no statement");
    if (tail && std::string(tail).find_first_not_of(" \t\r\n;") != std::string::npos) {
      sqlite3_finalize(st);
      return Status::invalid("SQL: one statement per call");
    }
    // Kept unless it changes the schema (run once, as migrations are); the
    // kernel's own (unfenced) only when it only reads.
    if (cache && !f.ddl && (!call.owner.empty() || sqlite3_stmt_readonly(st))) {
      if (cache->statements.size() >= PluginStmtCache::kMaxStatements) cache->clear();
      cache->statements.emplace(key, st);
      keep = true;
    }
  }
  std::unique_ptr<sqlite3_stmt, decltype(done)> owned(st, done);
  if (sqlite3_bind_parameter_count(st) != static_cast<int>(params.size())) {
    const int want = sqlite3_bind_parameter_count(st);
    return Status::invalid("SQL: the statement has " + std::to_string(want) + " parameter(s), " +
                           std::to_string(params.size()) + " given");
  }
  if (call.read_only && !sqlite3_stmt_readonly(st))
    return Status::invalid("SQL: query takes read-only statements; use execute");
  // "?n" is parameter n, so $1..$n mean what they mean in PostgreSQL.
  for (size_t i = 0; i < params.size(); ++i) {
    const int idx = static_cast<int>(i + 1);
    if (params[i])
      sqlite3_bind_text(st, idx, params[i]->data(), static_cast<int>(params[i]->size()), SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(st, idx);
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const int n = sqlite3_column_count(st);
    if (call.text_rows) {
      std::vector<std::optional<std::string>> row;
      row.reserve(static_cast<size_t>(n));
      for (int c = 0; c < n; ++c) {
        const unsigned char* t = sqlite3_column_text(st, c);
        if (t)
          row.emplace_back(std::in_place, reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(st, c)));
        else
          row.emplace_back(std::nullopt);
      }
      call.text_rows->push_back(std::move(row));
    }
    if (call.typed_rows) {
      TypedRow row;
      row.reserve(static_cast<size_t>(n));
      for (int c = 0; c < n; ++c) row.push_back(value_of(st, c));
      call.typed_rows->push_back(std::move(row));
    }
  }
  if (rc != SQLITE_DONE) {
    if (!f.refused.empty()) return Status::permission("SQL: " + f.refused);
    const std::string msg = std::string("SQL: ") + sqlite3_errmsg(conn);
    return (rc & 0xff) == SQLITE_CONSTRAINT ? Status::conflict(msg) : Status::invalid(msg);
  }
  if (call.changed) *call.changed = sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes(conn);
  return Status::ok();
}

int64_t SqliteStore::writer_reprepares() {
  std::lock_guard lock(write_mu_);
  int64_t n = 0;
  for (sqlite3_stmt* st = sqlite3_next_stmt(db(), nullptr); st != nullptr; st = sqlite3_next_stmt(db(), st))
    n += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_REPREPARE, 0);
  return n;
}

SqliteStore::PluginStmtCache* SqliteStore::writer_cache() {
  if (!plugin_stmts_) plugin_stmts_ = std::make_unique<PluginStmtCache>();
  return plugin_stmts_.get();
}

SqliteStore::PluginStmtCache* SqliteStore::reader_cache(sqlite3* conn, bool kernel) {
  std::lock_guard lock(reader_stmts_mu_);
  auto& cache = reader_stmts_[{conn, kernel}];
  if (!cache) cache = std::make_unique<PluginStmtCache>();
  return cache.get();
}

bool SqliteStore::exec_plugin_script(sqlite3* conn, const std::string& owner, const std::string& sql,
                                     std::string* error) {
  Fence f{owner, plugin_table_prefix(owner), {}};
  char* err = nullptr;
  int rc;
  {
    Fenced fenced(&f);
    rc = sqlite3_exec(conn, sql.c_str(), nullptr, nullptr, &err);
  }
  if (rc == SQLITE_OK) return true;
  *error = !f.refused.empty() ? f.refused : (err ? err : "unknown error");
  sqlite3_free(err);
  return false;
}

Status SqliteStore::run_one(sqlite3* conn, const std::string& sql,
                            const std::vector<std::optional<std::string>>& params,
                            std::vector<std::vector<std::optional<std::string>>>* rows, int64_t* changed,
                            PluginStmtCache* cache, std::atomic<int64_t>* prepares) {
  Status s = run_plugin_sql(conn, sql, params, {{}, rows != nullptr, rows, nullptr, changed, cache, prepares});
  if (!sqlite3_get_autocommit(conn)) {
    // A plugin may not hold a transaction open on the shared connection.
    sqlite3_exec(conn, "ROLLBACK", nullptr, nullptr, nullptr);
    return Status::invalid("SQL: transactions are not allowed through opk.store/1; one statement is one transaction");
  }
  return s;
}

Status SqliteStore::execute(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                            int64_t* changed) {
  std::lock_guard lock(write_mu_);
  return run_one(db(), sql, params, nullptr, changed);
}

Status SqliteStore::query(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                          std::vector<std::vector<std::optional<std::string>>>* rows) {
  try {
    Poco::Data::Session s = readers_->get();
    sqlite3* conn = Poco::Data::SQLite::Utility::dbHandle(s);
    return run_one(conn, sql, params, rows, nullptr, reader_cache(conn, true), &reader_prepares_);
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
}

// A plugin's writes join the writers' group commit (sqlite_writer.cpp) as
// the engine's do: each is a savepoint of its own in the group's
// transaction and shares its commit and its flush, instead of committing
// and waiting for an fsync of its own while holding every other writer
// (the notifications outbox writes a few rows per delivery: alone, each
// delivery cost the engine a flush). Transaction control stays refused
// (the fence), so a plugin's statement cannot end the group's transaction.
Status SqliteStore::plugin_execute(const std::string& owner, const std::string& sql,
                                   const std::vector<std::optional<std::string>>& params, int64_t* changed) {
  int64_t n = 0;
  Status s = grouped(
      [&] {
        return run_plugin_sql(db(), sql, params, {owner, false, nullptr, nullptr, &n, writer_cache()});
      },
      1);
  if (s && changed) *changed = n;
  return s;
}

Status SqliteStore::plugin_query(const std::string& owner, const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params,
                                 std::vector<std::vector<std::optional<std::string>>>* rows) {
  try {
    Poco::Data::Session s = readers_->get();
    sqlite3* conn = Poco::Data::SQLite::Utility::dbHandle(s);
    return run_plugin_sql(conn, sql, params,
                          {owner, true, rows, nullptr, nullptr, reader_cache(conn, false), &reader_prepares_});
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
}

Status SqliteStore::plugin_query_typed(const std::string& owner, const std::string& sql,
                                       const std::vector<std::optional<std::string>>& params,
                                       std::vector<TypedRow>* rows) {
  try {
    Poco::Data::Session s = readers_->get();
    sqlite3* conn = Poco::Data::SQLite::Utility::dbHandle(s);
    return run_plugin_sql(conn, sql, params,
                          {owner, true, nullptr, rows, nullptr, reader_cache(conn, false), &reader_prepares_});
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
}

Status SqliteStore::plugin_transaction(const std::string& owner, const std::vector<PluginStatement>& statements,
                                       std::vector<PluginResult>* results, size_t* failed) {
  std::vector<PluginResult> out(statements.size());
  size_t failed_at = statements.size();  // a failed begin or commit: none of them
  Status s = grouped(
      [&] {
        for (size_t i = 0; i < statements.size(); ++i) {
          Status st = run_plugin_sql(db(), statements[i].sql, statements[i].params,
                                     {owner, false, nullptr, &out[i].rows, &out[i].changed, writer_cache()});
          if (!st) {
            failed_at = i;
            return Status(st.code(), "statement " + std::to_string(i) + ": " + st.message());
          }
        }
        return Status::ok();
      },
      std::max<size_t>(statements.size(), 1));
  if (!s) {
    if (failed) *failed = failed_at;
    return s;
  }
  if (results) *results = std::move(out);
  return Status::ok();
}

}  // namespace opk::store::internal
