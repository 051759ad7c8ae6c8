// run_gates_service.h -- "opk.run-gates/1": the job engine scheduler's run
// gates (docs/abi.md, "The run gates"). Plugins add gates; before the
// scheduler creates the run of a scheduled job's slot it asks every gate,
// and a gate that answers OPK_GATE_SKIP has the slot recorded as skipped
// with its reason instead of run. A gate that throws, or answers anything
// else, lets the slot run. A plugin's gates are removed before it stops,
// after the calls into them have returned. Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_RUN_GATES_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_RUN_GATES_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>

namespace opk::host {

class PluginHost;

class RunGatesService {
 public:
  RunGatesService();
  ~RunGatesService();
  RunGatesService(const RunGatesService&) = delete;
  RunGatesService& operator=(const RunGatesService&) = delete;

  // Calls through `host`'s table reach this service (until it is destroyed).
  void serve(const PluginHost* host);

  // Adds gate `name` of plugin `plugin_id`. INVALID_ARGUMENT for a bad name
  // or a null `gate`, CONFLICT when the plugin has that name.
  Status add(const std::string& plugin_id, const std::string& name, opk_run_gate_fn gate, void* user_data);
  // Removes one gate, waiting for calls into it; NOT_FOUND if missing.
  Status remove(const std::string& plugin_id, const std::string& name);
  // Removes every gate of `plugin_id`, waiting for the calls into them.
  // Call before the plugin stops.
  void remove_plugin(const std::string& plugin_id);

  // Asks every gate about scheduled job `job_id`'s slot at `slot_ms`: true
  // when one says to skip it, with *reason "<plugin id>: <its reason>".
  bool skip(const std::string& job_id, const std::string& job_type, const std::string& scope, int64_t slot_ms,
            std::string* reason);

  // How many gates there are.
  size_t size() const;

  // The C table served as "opk.run-gates/1".
  const opk_run_gates_v1* extension() const { return &ext_; }

 private:
  // One gate; `mu` is held shared by each call into it, exclusively to
  // remove it.
  struct Entry {
    std::string plugin, name;
    opk_run_gate_fn gate = nullptr;
    void* user_data = nullptr;
    std::shared_mutex mu;
    bool gone = false;
  };

  static opk_status cb_add(const opk_host* host, const char* name, opk_run_gate_fn gate, void* user_data);
  static opk_status cb_remove(const opk_host* host, const char* name);

  mutable std::shared_mutex mu_;                                                   // guards entries_
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Entry>> entries_;  // (plugin, name)
  opk_run_gates_v1 ext_{};
};

}  // namespace opk::host

#endif  // OPSKERNEL_KERNEL_HOST_RUN_GATES_SERVICE_H
