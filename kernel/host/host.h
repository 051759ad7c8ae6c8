// host.h -- the opk_host table the kernel gives each plugin: its logger, its
// settings, the clock, extension lookup and error reporting. One PluginHost
// per plugin instance; its callbacks are thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_HOST_H
#define OPSKERNEL_KERNEL_HOST_HOST_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace spdlog {
class logger;
}

namespace opk::host {

class RouteTable;
class StoreService;
class IdentityService;
class JobsService;
class AuditService;

// Finds an extension table by id for the plugin `requester`; nullptr if none.
using ExtensionLookup = std::function<const void*(const std::string& requester, const std::string& id)>;

// Error detail reported by a plugin through opk_host.set_error on this thread.
// The kernel clears it before a call into a plugin and takes it after.
void clear_error();
std::string take_error();
void set_error_text(const std::string& text);

// Records why a kernel service refused the call it is returning from, for
// the plugin that called it on this thread (opk_host.last_error).
void report_host_error(const std::string& text);

// Calls a plugin lifecycle entry (`what` is "init" or "start") and turns its
// status and set_error detail into a Status worded
// "<what> failed with status N: detail". An exception escaping the plugin is
// caught as a last guard (it must not cross the ABI).
template <typename Fn>
Status call_plugin(const char* what, Fn&& fn) {
  clear_error();
  opk_status st = OPK_ERR_FAILED;
  try {
    st = fn();
  } catch (...) {
    set_error_text(std::string(what) + " threw an exception across the ABI");
  }
  const std::string err = take_error();
  if (st == OPK_OK) return Status::ok();
  return Status(st, std::string(what) + " failed with status " + std::to_string(st) + (err.empty() ? "" : ": " + err));
}

class PluginHost {
 public:
  // `settings` are the plugin's own keys; `kernel_settings` the public
  // "kernel.*" ones.
  PluginHost(std::string plugin_id, std::map<std::string, std::string> settings,
             std::map<std::string, std::string> kernel_settings, ExtensionLookup lookup);
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  const opk_host* table() const { return &table_; }
  const std::string& plugin_id() const { return plugin_id_; }
  spdlog::logger& logger() const { return *logger_; }

  // The plugin instance, once init returned it.
  void set_instance(opk_plugin* p) { instance_ = p; }
  opk_plugin* instance() const { return instance_; }

  // The ABI minor the plugin was built against (its entry's abi_minor).
  void set_abi_minor(uint32_t minor) { abi_minor_ = minor; }
  uint32_t abi_minor() const { return abi_minor_; }

  // Admin features the plugin declared; its routes must name one of them.
  void add_feature(const std::string& id) { features_.insert(id); }
  bool has_feature(const std::string& id) const { return features_.count(id) > 0; }

  // The route table this plugin's add_route calls go to.
  void set_routes(RouteTable* routes) { routes_ = routes; }
  RouteTable* routes() const { return routes_; }

  // The store service this plugin's opk.store/1 calls go to (null without a store).
  void set_store_service(StoreService* s) { store_service_ = s; }
  StoreService* store_service() const { return store_service_; }

  // The identity and job services (null without a store).
  void set_identity_service(IdentityService* s) { identity_service_ = s; }
  IdentityService* identity_service() const { return identity_service_; }
  void set_jobs_service(JobsService* s) { jobs_service_ = s; }
  JobsService* jobs_service() const { return jobs_service_; }
  void set_audit_service(AuditService* s) { audit_service_ = s; }
  AuditService* audit_service() const { return audit_service_; }

  // The PluginHost behind a table handed out by this kernel.
  static PluginHost* from(const opk_host* h);

 private:
  static void cb_log(const opk_host* self, opk_log_level level, const char* message);
  static void cb_set_error(const opk_host* self, const char* message);
  static int64_t cb_now_ms(const opk_host* self);
  static const char* cb_config_value(const opk_host* self, const char* key);
  static const void* cb_get_extension(const opk_host* self, const char* id);
  static void cb_free(const opk_host* self, void* ptr);
  static const char* cb_last_error(const opk_host* self);

  std::string plugin_id_;
  std::map<std::string, std::string> settings_;
  ExtensionLookup lookup_;
  std::shared_ptr<spdlog::logger> logger_;
  opk_plugin* instance_ = nullptr;
  RouteTable* routes_ = nullptr;
  StoreService* store_service_ = nullptr;
  IdentityService* identity_service_ = nullptr;
  JobsService* jobs_service_ = nullptr;
  AuditService* audit_service_ = nullptr;
  std::set<std::string> features_;
  uint32_t abi_minor_ = OPK_ABI_MINOR;
  opk_host table_{};
};

}  // namespace opk::host

#endif
