#include "registry/registry.h"

namespace opk::registry {
namespace {
template <typename Map, typename Vec>
Status clash(const Map& map, const Vec& items, const std::string& kind) {
  for (const auto& item : items)
    if (auto it = map.find(item.id); it != map.end())
      return Status::conflict(kind + " '" + item.id + "' is already provided by plugin '" + it->second.plugin_id + "'");
  return Status::ok();
}
template <typename Map, typename Vec>
void insert(Map& map, const Vec& items, const std::string& plugin) {
  for (const auto& item : items) map[item.id] = {plugin, &item};
}
template <typename Map>
void erase(Map& map, const std::string& plugin) {
  std::erase_if(map, [&](const auto& kv) { return kv.second.plugin_id == plugin; });
}
}  // namespace

Status Registry::check(const loader::Manifest& m) const {
  Status s;
  if (!(s = clash(job_types_, m.job_types, "job type"))) return s;
  if (!(s = clash(alert_sources_, m.alert_sources, "alert source"))) return s;
  if (!(s = clash(features_, m.admin_features, "admin feature"))) return s;
  if (!(s = clash(channels_, m.channels, "notification channel"))) return s;
  for (const auto& id : m.provides)
    if (auto it = extensions_.find(id); it != extensions_.end())
      return Status::conflict("extension '" + id + "' is already provided by plugin '" + it->second + "'");
  return Status::ok();
}

void Registry::add(const loader::Manifest& m) {
  insert(job_types_, m.job_types, m.id);
  insert(alert_sources_, m.alert_sources, m.id);
  insert(features_, m.admin_features, m.id);
  insert(channels_, m.channels, m.id);
  for (const auto& id : m.provides) extensions_[id] = m.id;
}

void Registry::remove(const std::string& plugin) {
  erase(job_types_, plugin);
  erase(alert_sources_, plugin);
  erase(features_, plugin);
  erase(channels_, plugin);
  std::erase_if(extensions_, [&](const auto& kv) { return kv.second == plugin; });
}

const Entry<loader::JobType>* Registry::job_type(const std::string& id) const {
  auto it = job_types_.find(id);
  return it == job_types_.end() ? nullptr : &it->second;
}

std::string Registry::provider_of(const std::string& extension_id) const {
  auto it = extensions_.find(extension_id);
  return it == extensions_.end() ? std::string() : it->second;
}

}  // namespace opk::registry
