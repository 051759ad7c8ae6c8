// The PostgreSQL store's audit trail: append rows (alone, or with the runs
// they are about) in one statement, the rows as arrays. Reading and pruning are
// PortableStore's (portable_store.cpp).
#include "store/pg_internal.h"

namespace opk::store::internal {

Status PgStore::audit(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  return in_transaction("audit", [&](PGconn* c) { return insert_audit(c, rows); });
}

Status PgStore::insert_audit(PGconn* conn, const std::vector<AuditRow>& rows) {
  // One statement, the rows as arrays (PgColumns), inserted in their order
  // (their ids follow it).
  if (rows.empty()) return Status::ok();
  PgColumns col(9);
  for (const AuditRow& a : rows) {
    col.number(0, a.time_ms ? a.time_ms : now_ms());
    col.text(1, a.actor);
    col.text(2, a.role);
    col.text(3, a.action);
    col.text(4, a.target);
    col.text(5, a.reason);
    col.text(6, a.params_json);
    col.text(7, a.outcome);
    col.text(8, a.source);
  }
  return pg_exec_hot(conn, "opk_insert_audit", "audit",
                     "INSERT INTO audit (time_ms, actor, role, action, target, reason, params_json, outcome, source) "
                     "SELECT time_ms, actor, role, action, target, reason, params_json, outcome, source FROM "
                     "unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
                     "$8::text[], $9::text[]) WITH ORDINALITY AS a(time_ms, actor, role, action, target, reason, "
                     "params_json, outcome, source, n) ORDER BY n",
                     col.params());
}

}  // namespace opk::store::internal
