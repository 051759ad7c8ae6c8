// The PostgreSQL store's SQL for plugins (opk.store/1): statements on
// plugins' own tables with $1..$n text parameters, fenced by roles. Each
// plugin has a role of its own (NOLOGIN, pg_plugin_role) that owns its
// tables and is granted nothing of the kernel's; a plugin's statement runs
// in a transaction after SET LOCAL ROLE to it, so PostgreSQL itself refuses
// the kernel's tables and other plugins'. Around that: only the statements
// a portable plugin needs are let through (DML, CREATE/DROP TABLE and
// INDEX, ALTER TABLE), and after DDL every relation the role owns must be
// named with the plugin's prefix, or the transaction is rolled back. The
// statements' kinds, the scripts' splitting and the errors' wording are
// plugin_fence.cpp's, shared with opk::testing's PostgreSQL store.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <iterator>

#include "store/pg_internal.h"
#include "store/sqlite_internal.h"

namespace opk::store::internal {

namespace {

// Type OIDs of pg_type (catalog/pg_type_d.h) the typed reads map.
constexpr Oid kPgBool = 16, kPgBytea = 17, kPgInt8 = 20, kPgInt2 = 21, kPgInt4 = 23, kPgOid = 26, kPgFloat4 = 700,
              kPgFloat8 = 701, kPgNumeric = 1700;

// bytea's text form ("\x00ff") as its bytes.
std::string pg_unhex(const char* text, size_t len) {
  std::string out;
  if (len < 2 || text[0] != '\\' || text[1] != 'x') return std::string(text, len);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (size_t i = 2; i + 1 < len; i += 2) out.push_back(static_cast<char>(nibble(text[i]) << 4 | nibble(text[i + 1])));
  return out;
}

Value pg_value(const PGresult* r, int row, int col) {
  Value v;
  if (PQgetisnull(r, row, col)) return v;
  const char* t = PQgetvalue(r, row, col);
  const size_t len = static_cast<size_t>(PQgetlength(r, row, col));
  switch (PQftype(r, col)) {
    case kPgInt2:
    case kPgInt4:
    case kPgInt8:
    case kPgOid:
      v.kind = Value::Kind::integer;
      v.integer = std::strtoll(t, nullptr, 10);
      break;
    case kPgBool:
      v.kind = Value::Kind::integer;
      v.integer = t[0] == 't' ? 1 : 0;
      break;
    case kPgFloat4:
    case kPgFloat8:
      v.kind = Value::Kind::real;
      v.real = std::strtod(t, nullptr);
      break;
    case kPgNumeric:
      // SUM and AVG of integers are numeric: whole numbers stay integers.
      if (std::strpbrk(t, ".eEN") == nullptr) {
        v.kind = Value::Kind::integer;
        v.integer = std::strtoll(t, nullptr, 10);
      } else {
        v.kind = Value::Kind::real;
        v.real = std::strtod(t, nullptr);
      }
      break;
    case kPgBytea:
      v.kind = Value::Kind::blob;
      v.text = pg_unhex(t, len);
      break;
    default:
      v.kind = Value::Kind::text;
      v.text.assign(t, len);
      break;
  }
  return v;
}

}  // namespace

Status PgStore::plugin_role(const std::string& owner) {
  {
    std::lock_guard lock(roles_mu_);
    for (const auto& o : roles_made_)
      if (o == owner) return Status::ok();
  }
  Status s = in_transaction("the role of plugin " + owner, [&](PGconn* c) { return ensure_plugin_role(c, owner); });
  if (!s) return s;
  std::lock_guard lock(roles_mu_);
  roles_made_.push_back(owner);
  return Status::ok();
}

Status PgStore::ensure_plugin_role(PGconn* conn, const std::string& owner) {
  const std::string role = pg_plugin_role(database_, owner);
  const std::string what = "the role of plugin " + owner;
  // Stores of one database (several kernels) make a role once.
  if (Status s = pg_exec(conn, what, "SELECT pg_advisory_xact_lock(hashtext($1))", {role}); !s) return s;
  PgResult r;
  if (Status s = pg_exec(conn, what, "SELECT 1 FROM pg_roles WHERE rolname = $1", {role}, &r); !s) return s;
  if (PQntuples(r.get()) == 0) {
    const std::string id = pg_ident(role);
    const std::string comment = "opskernel plugin " + owner + " in database " + database_;
    for (const std::string& sql :
         {"CREATE ROLE " + id + " NOLOGIN", "GRANT " + id + " TO " + pg_ident(kernel_role_),
          "GRANT USAGE, CREATE ON SCHEMA public TO " + id, "COMMENT ON ROLE " + id + " IS '" + escape(comment) + "'"})
      if (Status s = pg_exec(conn, what, sql, {}); !s) return s;
  }
  // set_config('role', ...) could return a statement to the kernel's role
  // halfway (then query_to_xml reads any table): plugins may not call it.
  // Revoking it from PUBLIC needs the function's owner (a superuser); a
  // database set up otherwise is refused rather than left open.
  pg_exec(conn, what, "SAVEPOINT opk_revoke", {});
  if (!pg_exec(conn, what, "REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC", {}))
    pg_exec(conn, what, "ROLLBACK TO SAVEPOINT opk_revoke", {});
  else
    pg_exec(conn, what, "RELEASE SAVEPOINT opk_revoke", {});
  if (Status s = pg_exec(conn, what,
                         "SELECT has_function_privilege($1, 'pg_catalog.set_config(text, text, boolean)', 'EXECUTE')",
                         {role}, &r);
      !s)
    return s;
  if (PQgetvalue(r.get(), 0, 0)[0] == 't')
    return Status::permission("store (postgresql): plugin " + owner + "'s role " + role +
                              " may call set_config, which would let it leave its role: as the database's superuser, "
                              "run REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC");
  return Status::ok();
}

Status PgStore::check_plugin_relations(PGconn* conn, const std::string& owner) {
  const std::string prefix = plugin_table_prefix(owner);
  PgResult r;
  if (Status s = pg_exec(conn, "the tables of plugin " + owner, kPgForeignRelationSql,
                         {pg_plugin_role(database_, owner), prefix}, &r);
      !s)
    return s;
  if (PQntuples(r.get()) == 0) return Status::ok();
  return pg_foreign_relation(owner, PQgetvalue(r.get(), 0, 0), PQgetvalue(r.get(), 0, 1)[0]);
}

Status PgStore::run_plugin_sql(PGconn* conn, const std::string& sql, const PgParams& params, const PluginCall& call) {
  // The same parameter rule as the SQLite store: $1..$n, no gaps.
  std::string numbered;
  if (Status s = numbered_parameters(sql, params.size(), &numbered); !s) return s;
  std::string refusal;
  const PgStatementKind kind = pg_classify(sql, &refusal);
  // Not a command: bad SQL, as the database would say (the kernel's own
  // statement goes to it and gets its message).
  if (kind == PgStatementKind::bad && !call.owner.empty()) return Status::invalid("SQL: " + refusal);
  if (kind == PgStatementKind::refused) {
    if (call.owner.empty() && refusal.rfind("transaction control", 0) != 0) {
      // The kernel's own statements are not fenced.
    } else if (call.owner.empty()) {
      return Status::invalid("SQL: transactions are not allowed through opk.store/1; one statement is one transaction");
    } else {
      return Status::permission("SQL: " + refusal);
    }
  }
  if (call.read_only && kind == PgStatementKind::ddl)
    return Status::invalid("SQL: query takes read-only statements; use execute");
  if (!call.owner.empty()) {
    if (Status s = pg_exec(conn, "set role", "SET LOCAL ROLE " + pg_ident(pg_plugin_role(database_, call.owner)), {});
        !s)
      return s;
  }
  PgResult r;
  // The role lasts to the end of the transaction; the next plugin statement
  // sets it again (a statement cannot leave it: pg_classify), and none of
  // the kernel's runs in a plugin's transaction.
  Status s = pg_exec(conn, "plugin " + (call.owner.empty() ? std::string("statement") : call.owner), sql, params, &r);
  if (!s) return pg_plugin_error(call.owner, s);
  if (!call.owner.empty() && kind == PgStatementKind::ddl) {
    if (Status c = check_plugin_relations(conn, call.owner); !c) return c;
  }
  const int rows = PQntuples(r.get()), cols = PQnfields(r.get());
  for (int i = 0; i < rows; ++i) {
    if (call.text_rows) {
      std::vector<std::optional<std::string>> row;
      row.reserve(static_cast<size_t>(cols));
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(r.get(), i, c))
          row.emplace_back(std::nullopt);
        else
          row.emplace_back(std::in_place, PQgetvalue(r.get(), i, c), static_cast<size_t>(PQgetlength(r.get(), i, c)));
      }
      call.text_rows->push_back(std::move(row));
    }
    if (call.typed_rows) {
      TypedRow row;
      row.reserve(static_cast<size_t>(cols));
      for (int c = 0; c < cols; ++c) row.push_back(pg_value(r.get(), i, c));
      call.typed_rows->push_back(std::move(row));
    }
  }
  if (call.changed) {
    const char* n = PQcmdTuples(r.get());
    *call.changed =
        (call.read_only || kind != PgStatementKind::dml || std::strncmp(PQcmdStatus(r.get()), "SELECT", 6) == 0)
            ? 0
            : std::strtoll(n, nullptr, 10);
  }
  return Status::ok();
}

Status PgStore::execute(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                        int64_t* changed) {
  int64_t n = 0;
  Status s = in_transaction("execute", [&](PGconn* c) {
    return run_plugin_sql(c, sql, params, {{}, false, nullptr, nullptr, &n});
  });
  if (s) {
    generation_.fetch_add(1, std::memory_order_release);
    if (changed) *changed = n;
  }
  return s;
}

Status PgStore::query(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                      std::vector<std::vector<std::optional<std::string>>>* rows) {
  return in_transaction("query", [&](PGconn* c) {
    if (Status s = pg_exec(c, "query", "SET TRANSACTION READ ONLY", {}); !s) return s;
    return run_plugin_sql(c, sql, params, {{}, true, rows, nullptr, nullptr});
  });
}

Status PgStore::plugin_execute(const std::string& owner, const std::string& sql,
                               const std::vector<std::optional<std::string>>& params, int64_t* changed) {
  if (Status r = plugin_role(owner); !r) return r;
  int64_t n = 0;
  Status s = in_transaction("plugin " + owner, [&](PGconn* c) {
    return run_plugin_sql(c, sql, params, {owner, false, nullptr, nullptr, &n});
  });
  if (s && changed) *changed = n;
  return s;
}

Status PgStore::plugin_query(const std::string& owner, const std::string& sql,
                             const std::vector<std::optional<std::string>>& params,
                             std::vector<std::vector<std::optional<std::string>>>* rows) {
  if (Status r = plugin_role(owner); !r) return r;
  return in_transaction("plugin " + owner, [&](PGconn* c) {
    if (Status s = pg_exec(c, "query", "SET TRANSACTION READ ONLY", {}); !s) return s;
    return run_plugin_sql(c, sql, params, {owner, true, rows, nullptr, nullptr});
  });
}

Status PgStore::plugin_query_typed(const std::string& owner, const std::string& sql,
                                   const std::vector<std::optional<std::string>>& params, std::vector<TypedRow>* rows) {
  if (Status r = plugin_role(owner); !r) return r;
  return in_transaction("plugin " + owner, [&](PGconn* c) {
    if (Status s = pg_exec(c, "query", "SET TRANSACTION READ ONLY", {}); !s) return s;
    return run_plugin_sql(c, sql, params, {owner, true, nullptr, rows, nullptr});
  });
}

Status PgStore::plugin_transaction(const std::string& owner, const std::vector<PluginStatement>& statements,
                                   std::vector<PluginResult>* results, size_t* failed) {
  if (Status r = plugin_role(owner); !r) return r;
  std::vector<PluginResult> out(statements.size());
  size_t failed_at = statements.size();  // a failed begin or commit: none of them
  Status s = in_transaction("plugin " + owner, [&](PGconn* c) {
    for (size_t i = 0; i < statements.size(); ++i) {
      Status st = run_plugin_sql(c, statements[i].sql, statements[i].params,
                                 {owner, false, nullptr, &out[i].rows, &out[i].changed});
      if (!st) {
        failed_at = i;
        return Status(st.code(), "statement " + std::to_string(i) + ": " + st.message());
      }
    }
    return Status::ok();
  });
  if (!s) {
    if (failed) *failed = failed_at;
    return s;
  }
  if (results) *results = std::move(out);
  return Status::ok();
}

Status PgStore::exec_plugin_script(PGconn* conn, const std::string& owner, const std::string& sql) {
  for (const auto& statement : pg_split_script(sql))
    if (Status s = run_plugin_sql(conn, statement, {}, {owner, false, nullptr, nullptr, nullptr}); !s) return s;
  // The kernel records the migration, as itself.
  return pg_exec(conn, "reset role", "RESET ROLE", {});
}

}  // namespace opk::store::internal
