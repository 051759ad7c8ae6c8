// kernel.h -- the kernel: finds, loads, initialises, starts and stops plugins
// in dependency order, keeps the registry and route table, and runs job types
// on request. Lifecycle calls (start/stop) on the control thread; the run
// calls are thread-safe.
#ifndef OPSKERNEL_KERNEL_APP_KERNEL_H
#define OPSKERNEL_KERNEL_APP_KERNEL_H

#include <opskernel/status.hpp>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "host/host.h"
#include "host/routes.h"
#include "jobs/run.h"
#include "loader/library.h"
#include "registry/registry.h"

namespace opk {

// The state of one plugin library the kernel found.
enum class PluginState { active, refused, disabled, stopped };
const char* to_string(PluginState s);

struct PluginRecord {
  std::filesystem::path path;
  PluginState state = PluginState::refused;
  std::string reason;                        // why refused / disabled
  std::unique_ptr<loader::Library> library;  // null once unloaded or when refused at load
  std::unique_ptr<host::PluginHost> host;
  opk_plugin* instance = nullptr;
  bool started = false;
  // Copy of the manifest summary, kept after unloading.
  std::string id, name, version, vendor;
};

class Kernel {
 public:
  explicit Kernel(config::Config config);
  ~Kernel();  // stops if running
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // Loads and initialises every plugin in the plugins folder; with
  // `start_plugins`, starts them too. Plugin faults never fail this call:
  // they refuse the plugin. Fails only for kernel-level problems (data folder
  // not writable, plugins folder missing) and, with CONFLICT, when called a
  // second time: a Kernel starts once.
  Status start(bool start_plugins = true);
  // Cancels runs, waits up to the grace period, stops plugins in reverse
  // order, deinitialises and unloads them. Idempotent.
  void stop();
  // start(), then wait for SIGINT/SIGTERM, then stop(). Returns the exit code.
  int run_until_signal();

  const config::Config& config() const { return config_; }
  const std::vector<std::unique_ptr<PluginRecord>>& plugins() const { return plugins_; }
  const registry::Registry& registry() const { return registry_; }
  host::RouteTable& routes() { return routes_; }
  // Milliseconds start() took.
  int64_t start_ms() const { return start_ms_; }

  // Starts a run of `job_type` on its own thread. Enforced here, for every
  // caller: manual/retry triggers need the manual_run capability, dry-run
  // needs the dry-run capability, parameters must be a JSON object.
  Status start_run(const std::string& job_type, jobs::RunRequest request, std::shared_ptr<jobs::Run>* out);
  // Asks a running run to stop; refused (CONFLICT) for types without a
  // cancel hook, NOT_FOUND for an unknown or finished run.
  Status cancel_run(int64_t run_id);
  // Waits until the run completes or `timeout_ms` passes; true if completed.
  bool wait_run(int64_t run_id, int64_t timeout_ms);

 private:
  struct ActiveRun {
    std::shared_ptr<jobs::Run> run;
    const loader::JobType* type = nullptr;
    PluginRecord* plugin = nullptr;
    std::thread thread;
    bool in_plugin = false;  // inside the plugin's run(); guarded by runs_mu_
    bool done = false;
  };
  void scan();
  void init_in_dependency_order();
  void start_active();
  void refuse(PluginRecord& p, const std::string& phase, const std::string& why);
  PluginRecord* find_active(const std::string& plugin_id);
  const void* lookup_extension(const std::string& requester, const std::string& id);
  void reap_finished_locked();

  config::Config config_;
  std::vector<std::unique_ptr<PluginRecord>> plugins_;
  std::vector<PluginRecord*> order_;  // init order of active plugins
  registry::Registry registry_;
  host::RouteTable routes_;
  bool running_ = false;
  bool started_once_ = false;
  int64_t start_ms_ = 0;

  std::mutex runs_mu_;
  std::condition_variable runs_cv_;
  std::map<int64_t, std::unique_ptr<ActiveRun>> runs_;
  bool accepting_runs_ = false;
  int64_t next_run_id_ = 1;
};

}  // namespace opk

#endif
