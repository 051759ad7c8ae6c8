// The embedded store's part of tenancy and identities: disabling a user with
// their tokens. Nodes, users and tokens are PortableStore's
// (portable_store.cpp).
#include "store/sqlite_internal.h"

namespace opk::store::internal {

Status SqliteStore::disable_user(const std::string& id, int64_t now, int64_t* revoked) {
  User u;
  if (Status s = get_user(id, &u); !s) return s;
  // Tokens first: if the second statement fails, the user has no valid
  // token left anyway.
  Status s = execute("UPDATE tokens SET revoked_ms = $1 WHERE user_id = $2 AND revoked_ms = 0",
                     {std::to_string(now), id}, revoked);
  if (!s) return s;
  int64_t n = 0;
  return execute("UPDATE users SET disabled = 1 WHERE id = $1", {id}, &n);
}

}  // namespace opk::store::internal
