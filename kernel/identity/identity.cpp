#include "identity/identity.h"

#include "clock/clock.h"
#include "config/config.h"

#include <Poco/JSON/Parser.h>
#include <Poco/SHA2Engine.h>
#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <fstream>

namespace opk::identity {
namespace {

int64_t now_ms() {
  return clock::now_ms();
}

// The level of each kind; a node's parent is one level up.
const std::vector<std::string> kKinds = {"platform", "distributor", "partner", "tenant", "subscription"};

int level_of(const std::string& node) {
  if (node == "platform") return 0;
  const auto colon = node.find(':');
  if (colon == std::string::npos) return -1;
  auto it = std::find(kKinds.begin() + 1, kKinds.end(), node.substr(0, colon));
  return it == kKinds.end() ? -1 : static_cast<int>(it - kKinds.begin());
}

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 128) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// "<kind>:<name>" with a known kind below the platform and a plain name.
Status check_node_id(const std::string& id) {
  const int level = level_of(id);
  if (level <= 0)
    return Status::invalid("node '" + id +
                           "': ids are <kind>:<name> with kind distributor, partner, tenant or subscription");
  if (!valid_name(id.substr(id.find(':') + 1)))
    return Status::invalid("node '" + id + "': the name may hold letters, digits, '-', '_' and '.' (1-128)");
  return Status::ok();
}

// Random bytes from the kernel's generator, URL-safe base64 without padding.
// (getrandom(2) directly: one call, no library state to seed.)
std::string random_text(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    const ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      out += kAlphabet[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

}  // namespace

Permissions default_permissions() {
  Permissions p;
  p["PlatformAdministrator"] = {"*"};
  // Administrators below the platform also keep their own notification rules
  // and webhook failures inbox (the bundled admin features' permissions,
  // names only: without those plugins they grant nothing).
  for (const char* r : {"DistributorAdministrator", "PartnerAdministrator", "TenantAdministrator"})
    p[r] = {"jobs.read",
            "audit.read",
            "users.read",
            "alerts.read",
            "alerts.manage",
            "alerts.create",
            "notifications.read",
            "notifications.manage",
            "webhook_failures.read",
            "webhook_failures.manage"};
  p["TenantUser"] = {"jobs.read", "alerts.read"};
  return p;
}

std::string token_hash(const std::string& token) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(token);
  return Poco::DigestEngine::digestToHex(sha.digest());
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

Identity::Identity(store::Store& store, Permissions permissions) : store_(store), permissions_(std::move(permissions)) {
  static const std::map<std::string, std::string> kDescriptions = {
      {"jobs.read", "See job types, scheduled jobs, runs and their logs"},
      {"jobs.write", "Create, change and delete scheduled jobs"},
      {"runs.start", "Start a run by hand (run now)"},
      {"runs.cancel", "Cancel a pending or running run"},
      {"runs.retry", "Retry a finished run"},
      {"runs.hold", "Hold and release pending runs"},
      {"runs.recover", "Recover runs a kernel left behind"},
      {"audit.read", "Read the audit trail"},
      {"plugins.read", "See the loaded and refused plugins"},
      {"metrics.read", "Read the kernel's metrics"},
      {"users.read", "See users and their tokens"},
      {"users.write", "Add and disable users, issue and revoke tokens"},
      {"alerts.read", "See the alerts within your view, their history and counts"},
      {"alerts.manage", "Acknowledge, close, silence and unsilence alerts within your view"},
      {"alerts.create", "Create custom alerts within your view"},
      {"alerts.raise", "Raise, clear and escalate the alerts of the calling plugin's own alert sources"},
      {"events.emit", "Write events of the calling plugin to the kernel's event log (opk.events/1 emit)"},
  };
  for (const auto& name : kPermissions) {
    auto d = kDescriptions.find(name);
    catalog_[name] = {name, d == kDescriptions.end() ? std::string() : d->second, "kernel"};
  }
}

Status Identity::declare_permission(const std::string& name, const std::string& description, const std::string& owner) {
  if (!config::valid_permission(name))
    return Status::invalid("permission '" + name + "' is not <area>.<verb> (a-z, 0-9, '_', '-', at most 64 bytes)");
  std::lock_guard lock(catalog_mu_);
  auto it = catalog_.find(name);
  if (it != catalog_.end())
    return Status::conflict("permission '" + name + "' is already declared by " +
                            (it->second.owner == "kernel" ? std::string("the kernel") : "plugin " + it->second.owner));
  catalog_[name] = {name, description, owner};
  return Status::ok();
}

void Identity::forget_permissions(const std::string& owner) {
  if (owner == "kernel") return;
  std::lock_guard lock(catalog_mu_);
  std::erase_if(catalog_, [&](const auto& kv) { return kv.second.owner == owner; });
}

bool Identity::known_permission(const std::string& name) const {
  std::lock_guard lock(catalog_mu_);
  return catalog_.count(name) > 0;
}

std::vector<PermissionInfo> Identity::permission_catalog() const {
  std::lock_guard lock(catalog_mu_);
  std::vector<PermissionInfo> out;
  for (const auto& [name, info] : catalog_)
    if (info.owner == "kernel") out.push_back(info);
  for (const auto& [name, info] : catalog_)
    if (info.owner != "kernel") out.push_back(info);
  return out;
}

void Identity::reload_locked() {
  parent_.clear();
  for (const auto& n : store_.list_nodes().value()) parent_[n.id] = n.parent;
  last_reload_ms_ = now_ms();
}

std::string Identity::parent_locked(const std::string& node) {
  auto it = parent_.find(node);
  if (it == parent_.end() && now_ms() - last_reload_ms_ > 1000) {
    // Another process (the CLI) may have added it: look again, at most once a second.
    reload_locked();
    it = parent_.find(node);
  }
  return it == parent_.end() ? std::string() : it->second;
}

bool Identity::exists(const std::string& node) {
  if (node == "platform") return true;
  std::lock_guard lock(mu_);
  return !parent_locked(node).empty();
}

std::string Identity::path(const std::string& node) {
  if (node == "platform") return "/platform/";
  std::lock_guard lock(mu_);
  std::vector<std::string> chain = {node};
  for (int depth = 0; depth < 8; ++depth) {
    const std::string parent = parent_locked(chain.back());
    if (parent.empty()) return {};
    if (parent == "platform") {
      std::string out = "/platform/";
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) out += *it + "/";
      return out;
    }
    chain.push_back(parent);
  }
  return {};
}

bool Identity::contains(const std::string& scope, const std::string& node) {
  if (scope == "platform" || scope == node) return true;
  std::lock_guard lock(mu_);
  std::string n = node;
  for (int depth = 0; depth < 8 && !n.empty() && n != "platform"; ++depth) {
    n = parent_locked(n);
    if (n == scope) return true;
  }
  return false;
}

std::vector<std::string> Identity::nodes_within(const std::string& scope) {
  std::vector<std::string> out = {scope};
  std::lock_guard lock(mu_);
  if (now_ms() - last_reload_ms_ > 1000) reload_locked();  // nodes another process added
  for (const auto& [node, parent] : parent_) {
    std::string n = parent;
    for (int depth = 0; depth < 8 && n != scope && !n.empty() && n != "platform"; ++depth) {
      auto it = parent_.find(n);
      n = it == parent_.end() ? std::string() : it->second;
    }
    if (node != scope && (n == scope || scope == "platform")) out.push_back(node);
  }
  return out;
}

Status Identity::add_node(const std::string& id, const std::string& parent, const std::string& name) {
  if (Status s = check_node_id(id); !s) return s;
  const int level = level_of(id);
  const int parent_level = level_of(parent);
  if (parent_level != level - 1)
    return Status::invalid("node '" + id + "': a " + kKinds[level] + " belongs under a " + kKinds[level - 1] +
                           (parent.empty() ? std::string(", give --parent") : ", not under '" + parent + "'"));
  if (!exists(parent)) return Status::not_found("node '" + id + "': parent '" + parent + "' does not exist");
  Status s = store_.add_node({id, kKinds[level], name.empty() ? id.substr(id.find(':') + 1) : name, parent, now_ms()});
  if (s) {
    std::lock_guard lock(mu_);
    parent_[id] = parent;
  }
  return s;
}

Status Identity::import_hierarchy(const std::string& json, int* added) {
  struct Entry {
    std::string id, parent, name;
  };
  std::vector<Entry> entries;
  try {
    Poco::JSON::Parser parser;
    auto root = parser.parse(json);
    Poco::JSON::Array::Ptr arr;
    if (root.type() == typeid(Poco::JSON::Object::Ptr)) {
      auto obj = root.extract<Poco::JSON::Object::Ptr>();
      arr = obj->getArray("nodes");
      if (!arr) return Status::invalid("hierarchy: expected {\"nodes\": [...]} or an array of nodes");
    } else if (root.type() == typeid(Poco::JSON::Array::Ptr)) {
      arr = root.extract<Poco::JSON::Array::Ptr>();
    } else {
      return Status::invalid("hierarchy: expected {\"nodes\": [...]} or an array of nodes");
    }
    for (size_t i = 0; i < arr->size(); ++i) {
      auto o = arr->getObject(static_cast<unsigned>(i));
      const std::string where = "hierarchy: nodes[" + std::to_string(i) + "]";
      if (!o) return Status::invalid(where + ": expected an object with id and parent");
      for (const char* key : {"id", "parent"})
        if (!o->has(key) || !o->get(key).isString())
          return Status::invalid(where + ": '" + key + "' is missing or not a string");
      Entry e{o->getValue<std::string>("id"), o->getValue<std::string>("parent"),
              o->has("name") ? o->get("name").toString() : std::string()};
      if (Status s = check_node_id(e.id); !s) return Status::invalid(where + ": " + s.message());
      if (level_of(e.parent) != level_of(e.id) - 1)
        return Status::invalid(where + ": '" + e.id + "' cannot be placed under '" + e.parent + "'");
      entries.push_back(std::move(e));
    }
  } catch (const Poco::Exception& e) {
    return Status::invalid("hierarchy: not valid JSON: " + e.displayText());
  }
  // Parents first, whatever the file's order; every parent must exist or be
  // in the file; nodes already there must not move.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return level_of(a.id) < level_of(b.id); });
  std::map<std::string, std::string> known;
  for (const auto& n : store_.list_nodes().value()) known[n.id] = n.parent;
  std::vector<Entry> fresh;
  for (const auto& e : entries) {
    if (auto it = known.find(e.id); it != known.end()) {
      if (it->second != e.parent)
        return Status::conflict("hierarchy: '" + e.id + "' exists under '" + it->second + "', not '" + e.parent + "'");
      continue;
    }
    if (e.parent != "platform" && !known.count(e.parent))
      return Status::not_found("hierarchy: the parent of '" + e.id + "', '" + e.parent +
                               "', is neither stored nor in the file");
    known[e.id] = e.parent;
    fresh.push_back(e);
  }
  *added = 0;
  for (const auto& e : fresh) {
    Status s = add_node(e.id, e.parent, e.name);
    if (!s) return Status(s.code(), "hierarchy: " + s.message() + " (" + std::to_string(*added) + " added before)");
    ++*added;
  }
  return Status::ok();
}

std::vector<store::Node> Identity::nodes() {
  return store_.list_nodes().value();
}

Status Identity::add_user(store::User u) {
  if (!valid_name(u.id)) return Status::invalid("user '" + u.id + "': ids hold letters, digits, '-', '_' and '.'");
  if (std::find(kRoles.begin(), kRoles.end(), u.role) == kRoles.end())
    return Status::invalid("user '" + u.id + "': role '" + u.role +
                           "' is not one of PlatformAdministrator, DistributorAdministrator, PartnerAdministrator, "
                           "TenantAdministrator, TenantUser");
  if (!exists(u.scope)) return Status::not_found("user '" + u.id + "': scope node '" + u.scope + "' does not exist");
  const int level = level_of(u.scope);
  const int role_level = static_cast<int>(std::find(kRoles.begin(), kRoles.end(), u.role) - kRoles.begin());
  // A role acts at its own level of the hierarchy (a tenant user at a tenant).
  const int want = std::min(role_level, 3);
  if (level != want)
    return Status::invalid("user '" + u.id + "': a " + u.role + " is scoped to a " + kKinds[want] + " node, not '" +
                           u.scope + "'");
  u.created_ms = now_ms();
  return store_.add_user(u);
}

Status Identity::issue_token(const std::string& user_id, int64_t ttl_ms, const std::string& label, std::string* token) {
  store::User u;
  if (Status s = store_.get_user(user_id, &u); !s) return s;
  if (u.disabled) return Status::conflict("user '" + user_id + "' is disabled");
  const std::string text = "opk_" + random_text(32);
  store::TokenRow t;
  t.id = "tok_" + random_text(9);
  t.user_id = user_id;
  t.hash = token_hash(text);
  t.label = label;
  t.created_ms = now_ms();
  t.expires_ms = ttl_ms > 0 ? t.created_ms + ttl_ms : 0;
  if (Status s = store_.add_token(t); !s) return s;
  *token = text;
  return Status::ok();
}

Status Identity::revoke_user(const std::string& user_id, int64_t* tokens_revoked) {
  Status s = store_.disable_user(user_id, now_ms(), tokens_revoked);
  std::lock_guard lock(tokens_mu_);
  checked_.clear();
  return s;
}

Status Identity::authenticate(const std::string& token, Principal* out) {
  if (token.empty()) return Status::permission("no token given");
  const std::string hash = token_hash(token);
  const int64_t now = now_ms();
  {
    std::lock_guard lock(tokens_mu_);
    auto it = checked_.find(hash);
    if (it != checked_.end() && now - it->second.at_ms < kTokenRecheckMs &&
        (!it->second.expires_ms || now < it->second.expires_ms)) {
      *out = it->second.who;
      return Status::ok();
    }
  }
  store::TokenRow t;
  // A store that cannot be read is UNAVAILABLE, not a bad token.
  Status found = store_.find_token(hash, &t);
  if (found.code() == OPK_ERR_UNAVAILABLE) return found;
  if (!found || !constant_time_equal(t.hash, hash)) return Status::permission("the token is not known");
  if (t.revoked_ms) return Status::permission("the token was revoked");
  if (t.expires_ms && now_ms() >= t.expires_ms) return Status::permission("the token has expired");
  store::User u;
  Status user = store_.get_user(t.user_id, &u);
  if (user.code() == OPK_ERR_UNAVAILABLE) return user;
  if (!user) return Status::permission("the token's user no longer exists");
  if (u.disabled) return Status::permission("the token's user is disabled");
  *out = {u.id, u.role, u.scope};
  std::lock_guard lock(tokens_mu_);
  if (checked_.size() > 10000) checked_.clear();
  checked_[hash] = {*out, now, t.expires_ms};
  return Status::ok();
}

bool Identity::allowed(const std::string& role, const std::string& permission) const {
  if (role == kSystemRole) return true;
  auto it = permissions_.find(role);
  if (it == permissions_.end()) return false;
  return it->second.count("*") || it->second.count(permission);
}

Status Identity::bootstrap(const std::string& token_file, std::string* new_token) {
  new_token->clear();
  // Users added before the first start (provisioning scripts run `users add`
  // first) do not stand in for the platform administrator; one that exists,
  // even disabled, does. The id "admin" taken by another role: none is made.
  const auto users = store_.list_users().value();
  for (const auto& u : users)
    if (u.role == "PlatformAdministrator" || u.id == "admin") return Status::ok();
  std::string text;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) return Status::invalid("identity.bootstrap_token_file: cannot read " + token_file);
    std::getline(in, text);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
    if (text.size() < 24)
      return Status::invalid("identity.bootstrap_token_file: the token in " + token_file +
                             " is shorter than 24 characters");
  }
  store::User admin{"admin", "Platform administrator", "PlatformAdministrator", "platform", false, now_ms()};
  if (Status s = store_.add_user(admin); !s && s.code() != OPK_ERR_CONFLICT) return s;
  if (text.empty()) return issue_token("admin", 0, "bootstrap", new_token);
  store::TokenRow t{"tok_bootstrap", "admin", token_hash(text), "bootstrap (from file)", now_ms(), 0, 0};
  return store_.add_token(t);
}

}  // namespace opk::identity
