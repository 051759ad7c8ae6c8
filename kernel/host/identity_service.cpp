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

}  // namespace opk::host
