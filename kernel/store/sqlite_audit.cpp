// The embedded store's audit trail: append rows (alone, or with the runs
// they are about) through prepared multi-row statements. Reading and
// pruning are PortableStore's (portable_store.cpp).
#include <algorithm>

#include "store/sqlite_internal.h"

namespace opk::store::internal {

Status SqliteStore::audit(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();

  return grouped([&] { return insert_audit_locked(rows); }, rows.size());
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
