// The PostgreSQL store's part of tenancy and identities: disabling a user
// with their tokens, in one transaction. Nodes, users and tokens are
// PortableStore's (portable_store.cpp).
#include "store/pg_internal.h"

namespace opk::store::internal {

Status PgStore::disable_user(const std::string& id, int64_t now, int64_t* revoked) {
  User u;
  if (Status s = get_user(id, &u); !s) return s;
  return in_transaction("disable user '" + id + "'", [&](PGconn* c) {
    PgResult r;
    if (Status s =
            pg_exec(c, "revoke tokens", "UPDATE tokens SET revoked_ms = $1 WHERE user_id = $2 AND revoked_ms = 0",
                    {std::to_string(now), id}, &r);
        !s)
      return s;
    if (revoked) *revoked = std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
    return pg_exec(c, "disable user", "UPDATE users SET disabled = 1 WHERE id = $1", {id});
  });
}

}  // namespace opk::store::internal
