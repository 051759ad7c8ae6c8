// The run gates service and its C table: the plugins' gates by plugin and
// name, each call guarded (a reason buffer of its own, exceptions caught).
#include "host/run_gates_service.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "host/host.h"
#include "host/plugin_entries.h"
#include "host/served.h"
#include "log/logging.h"

namespace opk::host {
namespace {

ServedBy<RunGatesService> g_run_gates_served;

RunGatesService* served_gates(const opk_host* host, std::string* plugin_id) {
  auto* ph = PluginHost::from(host);
  if (!ph) return nullptr;
  RunGatesService* self = g_run_gates_served.find(ph);
  if (self && plugin_id) *plugin_id = ph->plugin_id();
  return self;
}

bool valid_gate_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

}  // namespace

RunGatesService::RunGatesService() {
  ext_.struct_size = sizeof ext_;
  ext_.add_gate = &cb_add;
  ext_.remove_gate = &cb_remove;
}

RunGatesService::~RunGatesService() {
  g_run_gates_served.forget(this);
}

void RunGatesService::serve(const PluginHost* host) {
  g_run_gates_served.serve(host, this);
}

Status RunGatesService::add(const std::string& plugin_id, const std::string& name, opk_run_gate_fn gate,
                            void* user_data) {
  if (!valid_gate_name(name)) return Status::invalid("name: '" + name + "' is not 1..64 of [a-z0-9_-]");
  if (gate == nullptr) return Status::invalid("gate: is NULL");
  std::unique_lock lock(mu_);
  auto& slot = entries_[{plugin_id, name}];
  if (slot) return Status::conflict("name: plugin '" + plugin_id + "' has a run gate '" + name + "' already");
  slot = std::make_shared<Entry>();
  slot->plugin = plugin_id;
  slot->name = name;
  slot->gate = gate;
  slot->user_data = user_data;
  return Status::ok();
}

Status RunGatesService::remove(const std::string& plugin_id, const std::string& name) {
  std::shared_ptr<Entry> e;
  {
    std::unique_lock lock(mu_);
    auto it = entries_.find({plugin_id, name});
    if (it == entries_.end()) return Status::not_found("plugin '" + plugin_id + "' has no run gate '" + name + "'");
    e = it->second;
    entries_.erase(it);
  }
  std::unique_lock wait(e->mu);
  e->gone = true;
  return Status::ok();
}

void RunGatesService::remove_plugin(const std::string& plugin_id) {
  remove_plugin_entries(mu_, entries_, plugin_id);
}

size_t RunGatesService::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

bool RunGatesService::skip(const std::string& job_id, const std::string& job_type, const std::string& scope,
                           int64_t slot_ms, std::string* reason) {
  std::vector<std::shared_ptr<Entry>> all;
  {
    std::shared_lock lock(mu_);
    if (entries_.empty()) return false;
    for (const auto& [key, e] : entries_) all.push_back(e);
  }
  opk_run_slot slot{};
  slot.struct_size = sizeof slot;
  slot.scheduled_job_id = job_id.c_str();
  slot.job_type_id = job_type.c_str();
  slot.scope = scope.c_str();
  slot.slot_ms = slot_ms;
  for (const auto& e : all) {
    std::shared_lock hold(e->mu);
    if (e->gone) continue;
    char why[512] = {};
    int32_t answer = OPK_GATE_RUN;
    try {
      answer = e->gate(e->user_data, &slot, why, sizeof why);
    } catch (...) {  // a last guard only: exceptions must not cross the ABI
      log::kernel()->warn("run gate {} of plugin {} threw an exception across the ABI; slot {} of {} runs", e->name,
                          e->plugin, slot_ms, job_id);
      continue;
    }
    if (answer != OPK_GATE_SKIP) continue;
    why[sizeof why - 1] = '\0';
    *reason = e->plugin + ": " + (why[0] ? std::string(why) : std::string("skipped by run gate ") + e->name);
    return true;
  }
  return false;
}

opk_status RunGatesService::cb_add(const opk_host* host, const char* name, opk_run_gate_fn gate, void* user_data) {
  std::string plugin;
  RunGatesService* self = served_gates(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  const Status s = self->add(plugin, name ? name : "", gate, user_data);
  if (!s) report_host_error(s.message());
  return s.code();
}

opk_status RunGatesService::cb_remove(const opk_host* host, const char* name) {
  std::string plugin;
  RunGatesService* self = served_gates(host, &plugin);
  if (!self) return OPK_ERR_UNAVAILABLE;
  const Status s = self->remove(plugin, name ? name : "");
  if (!s) report_host_error(s.message());
  return s.code();
}

}  // namespace opk::host
