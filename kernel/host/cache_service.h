// cache_service.h -- "opk.cache/1": the kernel's in-process cache for plugins
// (docs/cache.md, docs/abi.md "The cache service"). Each plugin reaches only
// its own namespace, named by its id, which the kernel takes from the host
// table the call came through, never from the call; an admin feature reads
// every namespace's counters and purges another plugin's entries only for a
// principal the kernel issued whose role holds cache.read or cache.purge.
// The counters are exported through opk.metrics/1. Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_CACHE_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_CACHE_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <functional>
#include <string>

#include "cache/cache.h"

namespace opk::host {

class PluginHost;
class Principals;

class CacheService {
 public:
  // `allowed(role, permission)` says whether a role holds a permission.
  CacheService(cache::Options options, const Principals& principals,
               std::function<bool(const std::string&, const std::string&)> allowed);
  ~CacheService();
  CacheService(const CacheService&) = delete;
  CacheService& operator=(const CacheService&) = delete;

  // Calls through `host`'s table reach this service (until it is destroyed).
  void serve(const PluginHost* host);

  // The cache itself (tests, the metrics collector).
  cache::Cache& cache() { return cache_; }

  // Every namespace's counters as the JSON of opk_cache_v1.stats.
  std::string stats_json() const;

  // PERMISSION unless `actor` was issued by the kernel and its role holds
  // `permission`.
  Status check_actor(const opk_principal* actor, const std::string& permission) const;

  // The C table served as "opk.cache/1".
  const opk_cache_v1* extension() const { return &ext_; }

 private:
  static opk_status cb_get(const opk_host* host, const char* key, char** value, size_t* size);
  static opk_status cb_put(const opk_host* host, const char* key, const void* value, size_t size, int64_t ttl_ms);
  static opk_status cb_remove(const opk_host* host, const char* key);
  static opk_status cb_purge(const opk_host* host, const char* pattern, int32_t dry_run, uint64_t* count);
  static opk_status cb_stats(const opk_host* host, const opk_principal* actor, char** stats_json);
  static opk_status cb_purge_plugin(const opk_host* host, const opk_principal* actor, const char* plugin_id,
                                    const char* pattern, int32_t dry_run, uint64_t* count);

  cache::Cache cache_;
  const Principals& principals_;
  std::function<bool(const std::string&, const std::string&)> allowed_;
  opk_cache_v1 ext_{};
};

}  // namespace opk::host

#endif  // OPSKERNEL_KERNEL_HOST_CACHE_SERVICE_H
