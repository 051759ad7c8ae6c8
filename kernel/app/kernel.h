// kernel.h -- the kernel: finds, loads, initialises, starts and stops plugins
// in dependency order, keeps the registry and route table, and owns the store
// and the job engine. Lifecycle calls (start/stop) on the control thread.
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

#include "alerts/alerts.h"
#include "alerts/evaluation.h"
#include "config/config.h"
#include "events/log.h"
#include "host/alerts_service.h"
#include "host/audit_service.h"
#include "host/cache_service.h"
#include "host/channels_service.h"
#include "host/events_service.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "host/jobs_service.h"
#include "host/metrics_service.h"
#include "host/migrations_service.h"
#include "host/refusal_audit.h"
#include "host/routes.h"
#include "host/run_gates_service.h"
#include "host/store_service.h"
#include "identity/identity.h"
#include "jobs/engine.h"
#include "loader/library.h"
#include "registry/registry.h"
#include "store/store.h"

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

  // The job engine; null until start() with plugins started.
  jobs::Engine* engine() { return engine_.get(); }
  store::Store* store() { return store_.get(); }
  // Tenancy, users, tokens and permissions; null until the store is open.
  identity::Identity* identity() { return identity_.get(); }
  // The "opk.jobs/1" service (null without a store).
  host::JobsService* jobs_service() { return jobs_service_.get(); }
  // The "opk.identity/1" service and the principals it issued (null
  // without a store).
  host::IdentityService* identity_service() { return identity_service_.get(); }
  // The alert engine and the "opk.alerts/1" service (null without a store).
  alerts::Engine* alerts() { return alerts_.get(); }
  host::AlertsService* alerts_service() { return alerts_service_.get(); }
  // The event log and the "opk.events/1" service (null without a store).
  events::Log* events() { return events_.get(); }
  host::EventsService* events_service() { return events_service_.get(); }
  // The "opk.channels/1" service: the started plugins' channels.
  host::ChannelsService& channels() { return channels_; }
  // The plugins' metrics collectors (opk.metrics/1).
  host::MetricsService& metrics() { return metrics_; }
  // The scheduler's run gates (opk.run-gates/1).
  host::RunGatesService& run_gates() { return run_gates_; }
  // The plugins' in-process cache (opk.cache/1; null without a store).
  host::CacheService* cache_service() { return cache_service_.get(); }
  // The first platform administrator's token when this start created it
  // (shown once); empty otherwise.
  const std::string& bootstrap_token() const { return bootstrap_token_; }

 private:
  void scan();
  void init_in_dependency_order();
  void start_active();
  void refuse(PluginRecord& p, const std::string& phase, const std::string& why);
  PluginRecord* find_active(const std::string& plugin_id);
  const void* lookup_extension(const std::string& requester, const std::string& id);
  Status open_store();
  // Takes the lock beside the SQLite store's file (lock_fd_): CONFLICT
  // naming the file (and the pid holding it) if another kernel has it.
  Status lock_store_file();
  // True for the "opk.*" services this kernel serves (the store only when open).
  bool kernel_provides(const std::string& id) const;
  Status start_engine();
  jobs::TypeRef resolve_type(const std::string& job_type);
  // Makes a job type of every alert source of the initialised plugins, before
  // any plugin starts (and may call in); only a started plugin's are run.
  void adapt_alert_sources();
  // Defines the scheduled job "alerts.<source id>" of each alert source
  // that has none yet.
  void define_alert_jobs();
  // Checks the escalation rules now and then every minute until stop.
  void start_escalation_checks();
  void stop_escalation_checks();

  config::Config config_;
  std::vector<std::unique_ptr<PluginRecord>> plugins_;
  std::vector<PluginRecord*> order_;  // init order of active plugins
  registry::Registry registry_;
  host::RouteTable routes_;
  host::ChannelsService channels_;
  host::MetricsService metrics_;
  host::RunGatesService run_gates_;  // the scheduler's run gates (opk.run-gates/1)
  host::RefusalAudit refusals_;      // rows for requests refused before a handler
  bool running_ = false;
  bool started_once_ = false;
  int64_t start_ms_ = 0;

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<host::StoreService> store_service_;
  std::unique_ptr<identity::Identity> identity_;
  std::unique_ptr<host::IdentityService> identity_service_;
  std::unique_ptr<host::JobsService> jobs_service_;
  std::unique_ptr<host::AuditService> audit_service_;
  std::string bootstrap_token_;
  std::unique_ptr<events::Log> events_;
  std::unique_ptr<host::EventsService> events_service_;
  std::unique_ptr<jobs::Engine> engine_;
  std::unique_ptr<alerts::Engine> alerts_;
  std::unique_ptr<host::AlertsService> alerts_service_;
  std::unique_ptr<host::CacheService> cache_service_;
  std::unique_ptr<host::MigrationsService> migrations_service_;
  // Alert sources adapted as job types, by source id, with their plugin's instance.
  struct AdaptedSource {
    std::unique_ptr<alerts::SourceJob> job;
    PluginRecord* plugin = nullptr;
    bool started() const { return plugin->state == PluginState::active && plugin->started; }
  };
  std::map<std::string, AdaptedSource> alert_jobs_;
  std::thread escalation_thread_;
  std::mutex escalation_mu_;
  std::condition_variable escalation_cv_;
  bool escalation_stop_ = false;
  int lock_fd_ = -1;  // flock beside an SQLite store's file while the kernel runs (none for PostgreSQL)
};

}  // namespace opk

#endif
