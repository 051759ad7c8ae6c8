#include "host/host.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>

#include "clock/clock.h"
#include "log/logging.h"
#include "version.h"

namespace opk::host {
namespace {
thread_local std::string t_error;
thread_local std::string t_host_error;  // opk_host.last_error
thread_local bool t_host_failed = false;
}  // namespace

void clear_error() {
  t_error.clear();
}
std::string take_error() {
  return std::exchange(t_error, std::string());
}
void set_error_text(const std::string& text) {
  t_error = text;
}
void report_host_error(const std::string& text) {
  t_host_error = text;
  t_host_failed = true;
}

const char* PluginHost::cb_last_error(const opk_host*) {
  return t_host_failed ? t_host_error.c_str() : nullptr;
}

PluginHost::PluginHost(std::string plugin_id, std::map<std::string, std::string> settings,
                       std::map<std::string, std::string> kernel_settings, ExtensionLookup lookup)
    : plugin_id_(std::move(plugin_id)),
      settings_(std::move(settings)),
      lookup_(std::move(lookup)),
      logger_(log::get("plugin." + plugin_id_)) {
  for (auto& [k, v] : kernel_settings) settings_[k] = v;
  table_.struct_size = sizeof table_;
  table_.abi_major = OPK_ABI_MAJOR;
  table_.abi_minor = OPK_ABI_MINOR;
  table_.kernel_version = kOpskernelVersion;
  table_.host_data = reinterpret_cast<opk_host_data*>(this);
  table_.log = &cb_log;
  table_.set_error = &cb_set_error;
  table_.now_ms = &cb_now_ms;
  table_.config_value = &cb_config_value;
  table_.get_extension = &cb_get_extension;
  table_.free = &cb_free;
  table_.last_error = &cb_last_error;
}

PluginHost::~PluginHost() = default;

PluginHost* PluginHost::from(const opk_host* h) {
  return h ? reinterpret_cast<PluginHost*>(h->host_data) : nullptr;
}

void PluginHost::cb_log(const opk_host* self, opk_log_level level, const char* message) {
  if (auto* h = from(self); h && message)
    h->logger_->log(static_cast<spdlog::level::level_enum>(log::to_spdlog_level(level)), "{}", message);
}

void PluginHost::cb_set_error(const opk_host*, const char* message) {
  t_error = message ? message : "";
}

int64_t PluginHost::cb_now_ms(const opk_host*) {
  return clock::now_ms();
}

const char* PluginHost::cb_config_value(const opk_host* self, const char* key) {
  auto* h = from(self);
  if (!h || !key) return nullptr;
  // Settings are fixed after construction, so the pointer stays valid until deinit.
  auto it = h->settings_.find(key);
  return it == h->settings_.end() ? nullptr : it->second.c_str();
}

const void* PluginHost::cb_get_extension(const opk_host* self, const char* id) {
  auto* h = from(self);
  if (!h || !id || !h->lookup_) return nullptr;
  return h->lookup_(h->plugin_id_, id);
}

void PluginHost::cb_free(const opk_host*, void* ptr) {
  std::free(ptr);
}

}  // namespace opk::host
