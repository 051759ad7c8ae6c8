// identity_service.h -- "opk.identity/1": token checks, the permission matrix
// and scope containment for plugins (the HTTP server authenticates with it).
// Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_IDENTITY_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_IDENTITY_SERVICE_H

#include <opskernel/opk_abi.h>

#include <string>

#include "host/principals.h"

namespace opk::identity {
class Identity;
}

namespace opk::host {

// Copies `text` into memory a plugin frees with opk_host.free.
char* plugin_string(const std::string& text);

class IdentityService {
 public:
  explicit IdentityService(identity::Identity& identity);
  // The C table served as "opk.identity/1".
  const opk_identity_v1* extension() const { return &ext_; }
  // The principals issued through it: what kernel services check actors against.
  Principals& principals() { return principals_; }
  identity::Identity& identity() { return identity_; }

 private:
  static IdentityService* self_of(const opk_host* host);
  static opk_status cb_authenticate(const opk_host* host, const char* token, char** principal_json);
  static int32_t cb_allowed(const opk_host* host, const char* role, const char* permission);
  static int32_t cb_contains(const opk_host* host, const char* scope, const char* node);
  static opk_status cb_principal_for_token(const opk_host* host, const char* token, const opk_principal** out);
  static void cb_release_principal(const opk_host* host, const opk_principal* principal);
  static const opk_principal* cb_system_principal(const opk_host* host);
  static opk_status cb_permissions(const opk_host* host, char** permissions_json);
  identity::Identity& identity_;
  Principals principals_;
  opk_identity_v1 ext_{};
};

}  // namespace opk::host

#endif
