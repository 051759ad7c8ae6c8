// The PostgreSQL store's audit trail: append rows (alone, or with the runs
// they are about) in multi-row statements. Reading and pruning are
// PortableStore's (portable_store.cpp).
#include <algorithm>

#include "store/pg_internal.h"

namespace opk::store::internal {

namespace {

// Audit rows per INSERT statement (9 parameters each).
constexpr size_t kPgAuditPerInsert = 500;

}  // namespace

Status PgStore::audit(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  return in_transaction("audit", [&](PGconn* c) { return insert_audit(c, rows); });
}

Status PgStore::insert_audit(PGconn* conn, const std::vector<AuditRow>& rows) {
  // Several rows per statement, in order (their ids follow it).
  for (size_t k = 0; k < rows.size();) {
    const size_t n = std::min(rows.size() - k, kPgAuditPerInsert);
    std::string sql =
        "INSERT INTO audit (time_ms, actor, role, action, target, reason, params_json, outcome, source) VALUES ";
    PgParams params;
    params.reserve(n * 9);
    for (size_t i = 0; i < n; ++i, ++k) {
      const AuditRow& a = rows[k];
      sql += i ? ", (" : "(";
      for (int c = 1; c <= 9; ++c) sql += (c > 1 ? ", $" : "$") + std::to_string(i * 9 + c);
      sql += ")";
      for (const std::string& v : {std::to_string(a.time_ms ? a.time_ms : now_ms()), a.actor, a.role, a.action,
                                   a.target, a.reason, a.params_json, a.outcome, a.source})
        params.emplace_back(v);
    }
    if (Status s = pg_exec(conn, "audit", sql, params); !s) return s;
  }
  return Status::ok();
}

}  // namespace opk::store::internal
