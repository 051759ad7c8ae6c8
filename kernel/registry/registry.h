// registry.h -- the catalogue of what active plugins provide, by kind and id:
// job types, alert sources, admin features, notification channels, and the
// extensions plugins offer each other. Ids are unique across the kernel; a
// second plugin claiming one is refused as a whole. Control-thread writes;
// reads are safe once start() has returned.
#ifndef OPSKERNEL_KERNEL_REGISTRY_REGISTRY_H
#define OPSKERNEL_KERNEL_REGISTRY_REGISTRY_H

#include <opskernel/status.hpp>

#include <map>
#include <string>

#include "loader/manifest.h"

namespace opk::registry {

// Where an item came from.
template <typename T>
struct Entry {
  std::string plugin_id;
  const T* item = nullptr;
};

class Registry {
 public:
  // Checks that none of `m`'s ids is taken; CONFLICT names the first clash
  // and the plugin that holds it.
  Status check(const loader::Manifest& m) const;
  // Adds everything `m` declares. REQUIRES: check(m) passed. `m` must outlive
  // its registration.
  void add(const loader::Manifest& m);
  // Removes everything plugin `plugin_id` declared.
  void remove(const std::string& plugin_id);

  const Entry<loader::JobType>* job_type(const std::string& id) const;
  const std::map<std::string, Entry<loader::JobType>>& job_types() const { return job_types_; }
  const std::map<std::string, Entry<loader::AlertSource>>& alert_sources() const { return alert_sources_; }
  const std::map<std::string, Entry<loader::AdminFeature>>& admin_features() const { return features_; }
  const std::map<std::string, Entry<loader::Channel>>& channels() const { return channels_; }
  // Plugin id providing extension `id`, or empty.
  std::string provider_of(const std::string& extension_id) const;

 private:
  std::map<std::string, Entry<loader::JobType>> job_types_;
  std::map<std::string, Entry<loader::AlertSource>> alert_sources_;
  std::map<std::string, Entry<loader::AdminFeature>> features_;
  std::map<std::string, Entry<loader::Channel>> channels_;
  std::map<std::string, std::string> extensions_;  // extension id -> plugin id
};

}  // namespace opk::registry

#endif
