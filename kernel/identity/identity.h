// identity.h -- tenancy and identities: the hierarchy Platform > Distributor >
// Partner > Tenant > Subscription, users with a role at a scope node, API
// tokens stored only as hashes, and the permission matrix per role. Every
// authorization decision (HTTP API, engine actions) asks this module.
// Thread-safe.
#ifndef OPSKERNEL_KERNEL_IDENTITY_IDENTITY_H
#define OPSKERNEL_KERNEL_IDENTITY_IDENTITY_H

#include <opskernel/status.hpp>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "store/store.h"

namespace opk::identity {

// The roles, from the widest to the narrowest.
inline const std::vector<std::string> kRoles = {"PlatformAdministrator", "DistributorAdministrator",
                                                "PartnerAdministrator", "TenantAdministrator", "TenantUser"};

// The permissions the kernel's own API uses. Plugins may name their own
// (for example "flags.write"); a role's list may hold any name, and "*" grants
// everything.
inline const std::vector<std::string> kPermissions = {
    "jobs.read",    "jobs.write",    "runs.start",    "runs.cancel",  "runs.retry",  "runs.hold",
    "runs.recover", "audit.read",    "plugins.read",  "metrics.read", "users.read",  "users.write",
    "alerts.read",  "alerts.manage", "alerts.create", "alerts.raise", "events.emit",
};

// A permission the kernel knows: its own, or one an admin feature declared.
struct PermissionInfo {
  std::string name, description;
  std::string owner;  // "kernel" or the declaring plugin's id
};

// The role of a plugin's system identity (opk.identity/1 system_principal):
// every permission. No user can be given it.
inline const std::string kSystemRole = "System";

// Role -> permissions. The defaults: PlatformAdministrator "*"; the other
// administrators jobs.read, audit.read, users.read, alerts.read,
// alerts.manage, alerts.create; TenantUser jobs.read, alerts.read.
// alerts.raise and events.emit are the System role's (plugins' system
// principals) only: "*" does not grant them.
using Permissions = std::map<std::string, std::set<std::string>>;
Permissions default_permissions();

// The authenticated caller.
struct Principal {
  std::string user_id, role, scope;
};

// Checks a token's text and gives back its hash, as stored.
std::string token_hash(const std::string& token);

// Compares two strings in time that depends only on their lengths.
bool constant_time_equal(const std::string& a, const std::string& b);

// How long a checked token is taken on trust: the bound on how late a
// revocation by another process applies.
constexpr int64_t kTokenRecheckMs = 100;

class Identity {
 public:
  Identity(store::Store& store, Permissions permissions);

  // --- the hierarchy
  // Adds a node "<kind>:<name>" under `parent`. The parent must exist and be
  // one level up (a partner under a distributor ...). Refusals name the problem.
  Status add_node(const std::string& id, const std::string& parent, const std::string& name);
  // Adds the nodes of a JSON document: {"nodes": [{"id": "distributor:d1",
  // "parent": "platform", "name": "D1"}, ...]} (or the bare array), in any
  // order. Nodes that exist with the same parent are skipped; nothing is
  // added if any entry is wrong. *added gets the number added.
  Status import_hierarchy(const std::string& json, int* added);
  std::vector<store::Node> nodes();
  // True if `node` is `scope` or lies under it. Unknown nodes lie only under
  // "platform".
  bool contains(const std::string& scope, const std::string& node);
  // `scope` and every known node under it (`scope` first, even when it does
  // not exist; the others by id): the nodes a query of what a caller of
  // that scope sees keeps to.
  std::vector<std::string> nodes_within(const std::string& scope);
  // True if the node exists ("platform" always does).
  bool exists(const std::string& node);
  // The node and its ancestors as "/platform/distributor:d1/.../<node>/"
  // ("/platform/" for the root); empty when the node does not exist. A
  // node lies under another when its path starts with the other's.
  std::string path(const std::string& node);

  // --- users and tokens
  // Adds a user; the role must be known and the scope must exist.
  Status add_user(store::User user);
  // Creates a token for an enabled user; *token gets its text (shown once).
  // `ttl_ms` 0: it never expires.
  Status issue_token(const std::string& user_id, int64_t ttl_ms, const std::string& label, std::string* token);
  // Disables the user and revokes every token of theirs.
  Status revoke_user(const std::string& user_id, int64_t* tokens_revoked);
  // Who the token belongs to: UNAUTHENTICATED-like PERMISSION errors say
  // whether it is unknown, expired, revoked or its user disabled;
  // UNAVAILABLE when the store cannot be read. A token is
  // read from the store again kTokenRecheckMs after it was last read.
  Status authenticate(const std::string& token, Principal* out);

  // --- authorization
  // True when `role` has `permission` in the matrix; kSystemRole has every one.
  bool allowed(const std::string& role, const std::string& permission) const;
  const Permissions& permissions() const { return permissions_; }
  // Adds a permission to the catalogue (an admin feature's, at load).
  // CONFLICT when the kernel or another plugin has the name;
  // INVALID_ARGUMENT when it is not "<area>.<verb>" (lower case, at most 64
  // bytes).
  Status declare_permission(const std::string& name, const std::string& description, const std::string& owner);
  // Removes `owner`'s permissions (its plugin was refused or unloaded).
  void forget_permissions(const std::string& owner);
  // True when the catalogue has `name`.
  bool known_permission(const std::string& name) const;
  // The catalogue: the kernel's permissions, then the plugins', by name.
  std::vector<PermissionInfo> permission_catalog() const;

  // First start: when no platform administrator exists (and the id "admin"
  // is free), creates the platform administrator "admin" with the token read
  // from `token_file` (if given) or a new one, returned in *new_token (empty
  // when it came from the file or nothing was created).
  Status bootstrap(const std::string& token_file, std::string* new_token);

 private:
  // Reloads the node cache from the store. REQUIRES: mu_ held.
  void reload_locked();
  std::string parent_locked(const std::string& node);

  store::Store& store_;
  Permissions permissions_;
  mutable std::mutex catalog_mu_;
  std::map<std::string, PermissionInfo> catalog_;  // name -> permission
  std::mutex mu_;
  std::map<std::string, std::string> parent_;  // node -> parent
  int64_t last_reload_ms_ = 0;
  // Tokens checked in the last kTokenRecheckMs (hash -> who, when, expiry),
  // so a busy client does not cost two store reads per request (they halved
  // the admin API's throughput). Revocations made here clear it; those made
  // by another process (`users revoke` beside the kernel) apply within
  // kTokenRecheckMs.
  struct Checked {
    Principal who;
    int64_t at_ms = 0, expires_ms = 0;
  };
  std::mutex tokens_mu_;
  std::map<std::string, Checked> checked_;
};

}  // namespace opk::identity

#endif
