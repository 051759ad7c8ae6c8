// The embedded store's audit trail: append rows (alone, or with the runs
// they are about), read the newest, prune the oldest.
#include <algorithm>

#include "store/sqlite_internal.h"

namespace opk::store::internal {

using namespace Poco::Data::Keywords;

Status SqliteStore::prune_audit(int64_t before_ms, size_t batch, int64_t* deleted) {
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

Status SqliteStore::audit(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();

  return grouped([&] { return insert_audit_locked(rows); }, rows.size());
}

StatusOr<std::vector<AuditRow>> SqliteStore::audit_rows(size_t limit) {
  std::vector<std::vector<std::string>> rs;
  Status s = read_rows(
      "audit rows",
      "SELECT id, time_ms, actor, role, action, target, reason, params_json, outcome, source FROM audit ORDER BY "
      "id DESC LIMIT " +
          std::to_string(limit),
      &rs);
  if (!s) return s;
  std::vector<AuditRow> out;
  for (auto& r : rs)
    out.push_back({std::stoll(r[0]), std::stoll(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]});
  return out;
}

Status SqliteStore::insert_audit_locked(const std::vector<AuditRow>& rows) {
  // Up to kRunsPerInsert rows per statement, in order (their ids follow it).
  for (size_t k = 0; k < rows.size();) {
    const size_t n = insert_size_for(std::min(rows.size() - k, kRunsPerInsert));
    Stmt& st = stmts_->insert_audits_of(n);
    for (size_t i = 0; i < n; ++i, ++k) {
      const AuditRow& a = rows[k];
      st.bind_at(static_cast<int>(i * kAuditColumns) + 1, a.time_ms ? a.time_ms : now_ms(), a.actor, a.role, a.action,
                 a.target, a.reason, a.params_json, a.outcome, a.source);
    }
    if (!st.exec()) return sql_error("audit");
  }
  return Status::ok();
}

}  // namespace opk::store::internal
