// The cache service's C table: each call finds the service and the calling
// plugin's id from its host table, then calls the cache with that namespace.
#include "host/cache_service.h"

#include <opskernel/json.hpp>

#include <cstdlib>
#include <cstring>

#include "clock/clock.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "host/principals.h"
#include "host/served.h"

namespace opk::host {
namespace {

ServedBy<CacheService> g_cache_served;

CacheService* cache_served(const opk_host* host, std::string* plugin_id) {
  auto* ph = PluginHost::from(host);
  if (!ph) return nullptr;
  CacheService* self = g_cache_served.find(ph);
  if (self && plugin_id) *plugin_id = ph->plugin_id();
  return self;
}

opk_status cache_answer(const Status& s) {
  if (!s) report_host_error(s.message());
  return s.code();
}

}  // namespace

CacheService::CacheService(cache::Options options, const Principals& principals,
                           std::function<bool(const std::string&, const std::string&)> allowed)
    : cache_(options, [] { return clock::now_ms(); }), principals_(principals), allowed_(std::move(allowed)) {
  ext_.struct_size = sizeof ext_;
  ext_.get = &cb_get;
  ext_.put = &cb_put;
  ext_.remove = &cb_remove;
  ext_.purge = &cb_purge;
  ext_.stats = &cb_stats;
  ext_.purge_plugin = &cb_purge_plugin;
}

CacheService::~CacheService() {
  g_cache_served.forget(this);
}

void CacheService::serve(const PluginHost* host) {
  g_cache_served.serve(host, this);
}

std::string CacheService::stats_json() const {
  nlohmann::json spaces = nlohmann::json::array();
  for (const auto& [ns, s] : cache_.stats())
    spaces.push_back({{"plugin", ns},
                      {"entries", s.entries},
                      {"bytes", s.bytes},
                      {"hits", s.hits},
                      {"misses", s.misses},
                      {"puts", s.puts},
                      {"evictions", s.evictions},
                      {"expirations", s.expirations},
                      {"purged", s.purged},
                      {"refused", s.refused}});
  return nlohmann::json{{"max_bytes", cache_.options().max_bytes},
                        {"max_entry_bytes", cache_.options().max_entry_bytes},
                        {"bytes", cache_.bytes()},
                        {"namespaces", std::move(spaces)}}
      .dump();
}

Status CacheService::check_actor(const opk_principal* actor, const std::string& permission) const {
  if (actor == nullptr || !principals_.issued(actor))
    return Status::permission("actor: not a principal the kernel issued (use the request's, or system_principal)");
  const std::string role = actor->role ? actor->role : kSystemRole;
  if (!allowed_ || !allowed_(role, permission))
    return Status::permission("actor: role '" + role + "' does not hold " + permission);
  return Status::ok();
}

opk_status CacheService::cb_get(const opk_host* host, const char* key, char** value, size_t* size) {
  if (value) *value = nullptr;
  if (size) *size = 0;
  if (!key || !value) return cache_answer(Status::invalid(!key ? "key: is NULL" : "value: is NULL"));
  std::string plugin;
  CacheService* self = cache_served(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  std::string out;
  const Status s = self->cache_.get(plugin, key, &out);
  if (!s) return s.code();  // a miss is no error worth a detail
  *value = plugin_string(out);
  if (!*value) return OPK_ERR_NO_MEMORY;
  if (size) *size = out.size();
  return OPK_OK;
}

opk_status CacheService::cb_put(const opk_host* host, const char* key, const void* value, size_t size, int64_t ttl_ms) {
  if (!key) return cache_answer(Status::invalid("key: is NULL"));
  if (!value && size > 0) return cache_answer(Status::invalid("value: is NULL with a size"));
  std::string plugin;
  CacheService* self = cache_served(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  return cache_answer(
      self->cache_.put(plugin, key, std::string_view(value ? static_cast<const char*>(value) : "", size), ttl_ms));
}

opk_status CacheService::cb_remove(const opk_host* host, const char* key) {
  if (!key) return cache_answer(Status::invalid("key: is NULL"));
  std::string plugin;
  CacheService* self = cache_served(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  return self->cache_.erase(plugin, key).code();
}

opk_status CacheService::cb_purge(const opk_host* host, const char* pattern, int32_t dry_run, uint64_t* count) {
  std::string plugin;
  CacheService* self = cache_served(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  return cache_answer(self->cache_.purge(plugin, pattern ? pattern : "", dry_run != 0, count));
}

opk_status CacheService::cb_stats(const opk_host* host, const opk_principal* actor, char** stats_json) {
  if (!stats_json) return cache_answer(Status::invalid("stats_json: is NULL"));
  *stats_json = nullptr;
  CacheService* self = cache_served(host, nullptr);
  if (!self) return OPK_ERR_UNAVAILABLE;
  if (Status s = self->check_actor(actor, "cache.read"); !s) return cache_answer(s);
  *stats_json = plugin_string(self->stats_json());
  return *stats_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

opk_status CacheService::cb_purge_plugin(const opk_host* host, const opk_principal* actor, const char* plugin_id,
                                         const char* pattern, int32_t dry_run, uint64_t* count) {
  CacheService* self = cache_served(host, nullptr);
  if (!self) return OPK_ERR_UNAVAILABLE;
  if (Status s = self->check_actor(actor, "cache.purge"); !s) return cache_answer(s);
  if (!plugin_id || !*plugin_id) return cache_answer(Status::invalid("plugin_id: required"));
  return cache_answer(self->cache_.purge(plugin_id, pattern ? pattern : "", dry_run != 0, count));
}

}  // namespace opk::host
