// metrics_service.h -- "opk.metrics/1": the kernel's one list of metrics
// collectors (docs/abi.md, "The metrics service"). Every plugin adds its own
// collectors; whichever plugin serves HTTP collects them all for /metrics.
// A collection runs each collector on a buffer of its own and keeps its text
// only when the collector returned OK, threw nothing and wrote whole lines of
// the Prometheus text format whose names start with "opskernel_"; anything
// else is left out and logged, so one broken collector never breaks the
// scrape. A plugin's collectors are removed before it stops, after the calls
// into them have returned. Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_METRICS_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_METRICS_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>

namespace opk::host {

class PluginHost;

// Why `text` is not whole lines of the Prometheus text exposition format
// with every metric name starting "opskernel_" ("" when it is): names the
// line and what is wrong with it.
std::string check_exposition(const std::string& text);

class MetricsService {
 public:
  MetricsService();
  ~MetricsService();
  MetricsService(const MetricsService&) = delete;
  MetricsService& operator=(const MetricsService&) = delete;

  // Calls through `host`'s table reach this service (until it is destroyed).
  void serve(const PluginHost* host);

  // Adds collector `name` of plugin `plugin_id`. INVALID_ARGUMENT for a bad
  // name or a null `collect`, CONFLICT when the plugin has that name.
  Status add(const std::string& plugin_id, const std::string& name, opk_metrics_collect_fn collect, void* user_data);
  // Removes one collector, waiting for calls into it; NOT_FOUND if missing.
  Status remove(const std::string& plugin_id, const std::string& name);
  // Removes every collector of `plugin_id`, waiting for the calls into
  // them. Call before the plugin stops.
  void remove_plugin(const std::string& plugin_id);

  // Every collector's text, in the order they were added; a collector that
  // fails or writes something else is left out and logged.
  std::string collect();

  // How many collectors there are.
  size_t size() const;

  // The C table served as "opk.metrics/1".
  const opk_metrics_v1* extension() const { return &ext_; }

 private:
  // One collector; `mu` is held shared by each call into it, exclusively to
  // remove it.
  struct Entry {
    std::string plugin, name;
    uint64_t order = 0;
    opk_metrics_collect_fn collect = nullptr;
    void* user_data = nullptr;
    std::shared_mutex mu;
    bool gone = false;
  };

  static opk_status cb_add(const opk_host* host, const char* name, opk_metrics_collect_fn collect, void* user_data);
  static opk_status cb_remove(const opk_host* host, const char* name);
  static opk_status cb_collect(const opk_host* host, char** text);

  mutable std::shared_mutex mu_;                                                   // guards entries_ and next_
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Entry>> entries_;  // (plugin, name)
  uint64_t next_ = 0;
  opk_metrics_v1 ext_{};
};

}  // namespace opk::host

#endif
