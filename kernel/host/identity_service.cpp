#include "host/identity_service.h"

#include <Poco/JSONString.h>

#include <cstdlib>
#include <cstring>

#include "host/host.h"
#include "identity/identity.h"

namespace opk::host {

char* plugin_string(const std::string& text) {
  // Freed by the plugin through opk_host.free (std::free).
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

IdentityService::IdentityService(identity::Identity& identity) : identity_(identity) {
  ext_.struct_size = sizeof ext_;
  ext_.authenticate = &cb_authenticate;
  ext_.allowed = &cb_allowed;
  ext_.contains = &cb_contains;
  ext_.principal_for_token = &cb_principal_for_token;
  ext_.release_principal = &cb_release_principal;
  ext_.system_principal = &cb_system_principal;
  ext_.permissions = &cb_permissions;
  // (1.3) Defined here: the node cache answers it, nothing else is needed.
  ext_.node_exists = [](const opk_host* host, const char* node) -> int32_t {
    auto* s = self_of(host);
    return s && node && s->identity_.exists(node) ? 1 : 0;
  };
  // (1.6) From the node cache's path "/platform/distributor:d1/.../<node>/".
  ext_.node_path = [](const opk_host* host, const char* node, char** path_json) -> opk_status {
    auto* s = self_of(host);
    if (!s || !node || !path_json) return OPK_ERR_INVALID_ARGUMENT;
    *path_json = nullptr;
    const std::string path = s->identity_.path(node);
    if (path.empty()) return OPK_ERR_NOT_FOUND;
    std::string json = "[";
    size_t from = 1;
    while (from < path.size()) {
      const size_t slash = path.find('/', from);
      if (slash == std::string::npos) break;
      json += (json.size() > 1 ? "," : "") + Poco::toJSON(path.substr(from, slash - from), Poco::JSON_WRAP_STRINGS);
      from = slash + 1;
    }
    *path_json = plugin_string(json + "]");
    return *path_json ? OPK_OK : OPK_ERR_NO_MEMORY;
  };
}

IdentityService* IdentityService::self_of(const opk_host* host) {
  auto* ph = PluginHost::from(host);
  return ph ? ph->identity_service() : nullptr;
}

opk_status IdentityService::cb_authenticate(const opk_host* host, const char* token, char** principal_json) {
  auto* s = self_of(host);
  if (!s || !principal_json) return OPK_ERR_INVALID_ARGUMENT;
  identity::Principal p;
  Status st = s->identity_.authenticate(token ? token : "", &p);
  const std::string json = st ? "{\"user_id\":" + Poco::toJSON(p.user_id, Poco::JSON_WRAP_STRINGS) +
                                    ",\"role\":" + Poco::toJSON(p.role, Poco::JSON_WRAP_STRINGS) +
                                    ",\"scope\":" + Poco::toJSON(p.scope, Poco::JSON_WRAP_STRINGS) + "}"
                              : "{\"error\":" + Poco::toJSON(st.message(), Poco::JSON_WRAP_STRINGS) + "}";
  *principal_json = plugin_string(json);
  if (!*principal_json) return OPK_ERR_NO_MEMORY;
  return st ? OPK_OK : st.code();
}

int32_t IdentityService::cb_allowed(const opk_host* host, const char* role, const char* permission) {
  auto* s = self_of(host);
  return s && role && permission && s->identity_.allowed(role, permission) ? 1 : 0;
}

int32_t IdentityService::cb_contains(const opk_host* host, const char* scope, const char* node) {
  auto* s = self_of(host);
  return s && scope && node && s->identity_.contains(scope, node) ? 1 : 0;
}

opk_status IdentityService::cb_principal_for_token(const opk_host* host, const char* token, const opk_principal** out) {
  auto* s = self_of(host);
  if (!s || !out) return OPK_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  identity::Principal p;
  Status st = s->identity_.authenticate(token ? token : "", &p);
  if (!st) {
    report_host_error(st.message());
    return st.code();
  }
  *out = s->principals_.issue(p.user_id, p.role, p.scope);
  return OPK_OK;
}

void IdentityService::cb_release_principal(const opk_host* host, const opk_principal* principal) {
  if (auto* s = self_of(host)) s->principals_.release(principal);
}

const opk_principal* IdentityService::cb_system_principal(const opk_host* host) {
  auto* ph = PluginHost::from(host);
  auto* s = ph ? ph->identity_service() : nullptr;
  return s ? s->principals_.system(ph->plugin_id()) : nullptr;
}

opk_status IdentityService::cb_permissions(const opk_host* host, char** permissions_json) {
  auto* s = self_of(host);
  if (!s || !permissions_json) return OPK_ERR_INVALID_ARGUMENT;
  std::string json = "[";
  for (const auto& p : s->identity_.permission_catalog()) {
    std::string roles;
    for (const auto& [role, granted] : s->identity_.permissions())
      if (granted.count("*") || granted.count(p.name))
        roles += (roles.empty() ? "" : ",") + Poco::toJSON(role, Poco::JSON_WRAP_STRINGS);
    json += (json.size() > 1 ? "," : "") + std::string("{\"name\":") + Poco::toJSON(p.name, Poco::JSON_WRAP_STRINGS) +
            ",\"description\":" + Poco::toJSON(p.description, Poco::JSON_WRAP_STRINGS) +
            ",\"owner\":" + Poco::toJSON(p.owner, Poco::JSON_WRAP_STRINGS) + ",\"roles\":[" + roles + "]}";
  }
  json += "]";
  *permissions_json = plugin_string(json);
  return *permissions_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

}  // namespace opk::host
