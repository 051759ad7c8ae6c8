// The PostgreSQL store's audit trail: append rows (alone, or with the runs
// they are about), read the newest, prune the oldest.
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

StatusOr<std::vector<AuditRow>> PgStore::audit_rows(size_t limit) {
  std::vector<std::vector<std::string>> rs;
  if (Status s = text_rows("audit rows",
                           "SELECT id, time_ms, actor, role, action, target, reason, params_json, outcome, source FROM "
                           "audit ORDER BY id DESC LIMIT $1",
                           {std::to_string(limit)}, &rs);
      !s)
    return s;
  std::vector<AuditRow> out;
  for (auto& r : rs)
    out.push_back({std::stoll(r[0]), std::stoll(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]});
  return out;
}

Status PgStore::prune_audit(int64_t before_ms, size_t batch, int64_t* deleted) {
  // Audit rows are written in time order (up to clock steps): only the
  // oldest `batch` rows are looked at.
  return write_rows("prune audit",
                    "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT $1) AND time_ms < $2",
                    {std::to_string(batch), std::to_string(before_ms)}, deleted);
}

}  // namespace opk::store::internal
