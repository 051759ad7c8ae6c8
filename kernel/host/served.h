// served.h -- which service answers the calls coming through each plugin's
// host table: the registry behind a C extension's static callbacks, which get
// only the opk_host* and find their service here. One registry per service
// type. Thread-safe: lookups share a lock, changes take it alone.
#ifndef OPSKERNEL_KERNEL_HOST_SERVED_H
#define OPSKERNEL_KERNEL_HOST_SERVED_H

#include <iterator>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace opk::host {

class PluginHost;

// A map from a plugin's host to the Service that answers its calls.
template <typename Service>
class ServedBy {
 public:
  // Records that `service` answers the calls through `host`'s table,
  // replacing any earlier one. REQUIRES: `service` calls forget() before it
  // is destroyed.
  void serve(const PluginHost* host, Service* service) {
    std::unique_lock lock(mu_);
    served_[host] = service;
  }

  // Forgets every host that `service` answers for.
  void forget(const Service* service) {
    std::unique_lock lock(mu_);
    for (auto it = served_.begin(); it != served_.end();)
      it = it->second == service ? served_.erase(it) : std::next(it);
  }

  // The service answering through `host`, or nullptr when none does.
  Service* find(const PluginHost* host) const {
    std::shared_lock lock(mu_);
    auto it = served_.find(host);
    return it == served_.end() ? nullptr : it->second;
  }

 private:
  mutable std::shared_mutex mu_;  // guards served_
  std::unordered_map<const PluginHost*, Service*> served_;
};

}  // namespace opk::host

#endif  // OPSKERNEL_KERNEL_HOST_SERVED_H
