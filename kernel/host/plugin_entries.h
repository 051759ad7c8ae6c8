// plugin_entries.h -- removing a plugin's entries from a service's table
// (its metrics collectors, its channels) before the plugin stops: the
// entries leave the table under its lock, then each is marked gone once the
// calls already inside it have returned. Thread-safe as the table's lock is.
#ifndef OPSKERNEL_KERNEL_HOST_PLUGIN_ENTRIES_H
#define OPSKERNEL_KERNEL_HOST_PLUGIN_ENTRIES_H

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace opk::host {

// Takes every entry of `plugin_id` out of `entries` (a map to
// std::shared_ptr<Entry>, guarded by `mu`), then waits for the calls inside
// each (which hold its `mu` shared) and sets its `gone`: no call into the
// plugin runs after this returns. REQUIRES: `mu` not held by the caller.
template <typename Map>
void remove_plugin_entries(std::shared_mutex& mu, Map& entries, const std::string& plugin_id) {
  std::vector<typename Map::mapped_type> gone;
  {
    std::unique_lock lock(mu);
    for (auto it = entries.begin(); it != entries.end();) {
      if (it->second->plugin == plugin_id) {
        gone.push_back(it->second);
        it = entries.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& e : gone) {
    std::unique_lock wait(e->mu);
    e->gone = true;
  }
}

}  // namespace opk::host

#endif  // OPSKERNEL_KERNEL_HOST_PLUGIN_ENTRIES_H
