// The embedded store's SQL for plugins (opk.store/1): one statement per call
// on plugins' own tables, with $1..$n text parameters; execute writes on the
// writer connection, query reads on a pooled one.
#include <Poco/Data/SQLite/Utility.h>

#include "store/sqlite_internal.h"

namespace opk::store::internal {

Status SqliteStore::execute(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                            int64_t* changed) {
  std::lock_guard lock(write_mu_);
  return run_one(db(), sql, params, nullptr, changed);
}

Status SqliteStore::query(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                          std::vector<std::vector<std::optional<std::string>>>* rows) {
  try {
    Poco::Data::Session s = readers_->get();
    return run_one(Poco::Data::SQLite::Utility::dbHandle(s), sql, params, rows, nullptr);
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
}

Status SqliteStore::run_one(sqlite3* conn, const std::string& sql,
                            const std::vector<std::optional<std::string>>& params,
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
}  // namespace opk::store::internal
