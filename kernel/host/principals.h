// principals.h -- the principals the kernel issued, and the only ones its
// services accept. A plugin cannot forge an identity: opk.jobs/1,
// opk.audit/1 and route dispatch compare the actor's pointer with this
// registry, not its fields. Issued by opk.identity/1 (a checked token, for
// one request) or as a plugin's system identity (its own background work,
// audited as "system:<plugin id>"). Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_PRINCIPALS_H
#define OPSKERNEL_KERNEL_HOST_PRINCIPALS_H

#include <opskernel/opk_abi.h>

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace opk::host {

// The role of a system principal: every permission, at "platform".
inline constexpr const char* kSystemRole = "System";

class Principals {
 public:
  Principals() = default;
  Principals(const Principals&) = delete;
  Principals& operator=(const Principals&) = delete;

  // Issues a principal for a checked user; valid until release().
  const opk_principal* issue(const std::string& user_id, const std::string& role, const std::string& scope);
  // Ends a principal from issue(); others (and nullptr) are ignored.
  void release(const opk_principal* p);
  // The system principal of `plugin_id`, issued once, valid as long as
  // this registry.
  const opk_principal* system(const std::string& plugin_id);
  // True when `p` is live and was issued here.
  bool issued(const opk_principal* p) const;
  // Principals issued and not yet released (system ones included).
  size_t live() const;

 private:
  struct Entry {
    std::string user_id, role, scope;
    opk_principal c{};
  };
  static std::unique_ptr<Entry> make(const std::string& user_id, const std::string& role, const std::string& scope);

  mutable std::shared_mutex mu_;
  std::unordered_map<const opk_principal*, std::unique_ptr<Entry>> live_;
  std::map<std::string, const opk_principal*> system_;  // plugin id -> its principal (in live_)
};

}  // namespace opk::host

#endif
