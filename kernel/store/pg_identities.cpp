// The PostgreSQL store's tenancy and identities: nodes of the hierarchy,
// users of the admin API and their API tokens (stored as hashes).
#include "store/pg_internal.h"

namespace opk::store::internal {

Status PgStore::add_node(const Node& n) {
  return insert_unique("node '" + n.id + "'",
                       "INSERT INTO nodes (id, kind, name, parent, created_ms) VALUES ($1, $2, $3, $4, $5)",
                       {n.id, n.kind, n.name, n.parent, std::to_string(n.created_ms)});
}

StatusOr<std::vector<Node>> PgStore::list_nodes() {
  std::vector<std::vector<std::string>> rows;
  if (Status s = text_rows("nodes", "SELECT id, kind, name, parent, created_ms FROM nodes ORDER BY id", {}, &rows); !s)
    return s;
  std::vector<Node> out;
  for (auto& r : rows) out.push_back({r[0], r[1], r[2], r[3], std::stoll(r[4])});
  return out;
}

Status PgStore::add_user(const User& u) {
  return insert_unique("user '" + u.id + "'",
                       "INSERT INTO users (id, name, role, scope, disabled, created_ms) VALUES ($1, $2, $3, $4, $5, "
                       "$6)",
                       {u.id, u.name, u.role, u.scope, u.disabled ? "1" : "0", std::to_string(u.created_ms)});
}

Status PgStore::get_user(const std::string& id, User* out) {
  std::vector<User> rows;
  if (Status s = users_where("WHERE id = $1", {id}, &rows); !s) return s;
  if (rows.empty()) return Status::not_found("no user '" + id + "'");
  *out = rows.front();
  return Status::ok();
}

StatusOr<std::vector<User>> PgStore::list_users() {
  std::vector<User> out;
  if (Status s = users_where("ORDER BY id", {}, &out); !s) return s;
  return out;
}

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

Status PgStore::add_token(const TokenRow& t) {
  return insert_unique("token '" + t.id + "'",
                       "INSERT INTO tokens (id, user_id, hash, label, created_ms, expires_ms, revoked_ms) VALUES "
                       "($1, $2, $3, $4, $5, $6, $7)",
                       {t.id, t.user_id, t.hash, t.label, std::to_string(t.created_ms), std::to_string(t.expires_ms),
                        std::to_string(t.revoked_ms)});
}

Status PgStore::find_token(const std::string& hash, TokenRow* out) {
  std::vector<TokenRow> rows;
  if (Status s = tokens_where("WHERE hash = $1", {hash}, &rows); !s) return s;
  if (rows.empty()) return Status::not_found("no such token");
  *out = rows.front();
  return Status::ok();
}

StatusOr<std::vector<TokenRow>> PgStore::list_tokens(const std::string& user_id) {
  std::vector<TokenRow> out;
  if (Status s = tokens_where("WHERE user_id = $1 ORDER BY created_ms, id", {user_id}, &out); !s) return s;
  return out;
}

Status PgStore::users_where(const std::string& tail, const PgParams& params, std::vector<User>* out) {
  std::vector<std::vector<std::string>> rows;
  if (Status s =
          text_rows("users", "SELECT id, name, role, scope, disabled, created_ms FROM users " + tail, params, &rows);
      !s)
    return s;
  for (auto& r : rows) out->push_back({r[0], r[1], r[2], r[3], r[4] == "1", std::stoll(r[5])});
  return Status::ok();
}

Status PgStore::tokens_where(const std::string& tail, const PgParams& params, std::vector<TokenRow>* out) {
  std::vector<std::vector<std::string>> rows;
  if (Status s =
          text_rows("tokens", "SELECT id, user_id, hash, label, created_ms, expires_ms, revoked_ms FROM tokens " + tail,
                    params, &rows);
      !s)
    return s;
  for (auto& r : rows) out->push_back({r[0], r[1], r[2], r[3], std::stoll(r[4]), std::stoll(r[5]), std::stoll(r[6])});
  return Status::ok();
}

}  // namespace opk::store::internal
