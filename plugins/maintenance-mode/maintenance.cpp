// maintenance-mode: the windows' rules, the plugin, its snapshot and poller,
// the extension opskernel.maintenance/1, the run gate and the manifest
// (maintenance.h). Store transactions, plugin permissions and the audit
// service need ABI 1.2; a node's ancestors (opk.identity/1 node_path) need
// 1.6, and without it a tenant's window applies to what is scoped at the
// tenant itself alone; the run gate needs opk.run-gates/1 (1.8), and
// without it scheduled runs are not held.
#define OPK_REQUIRED_HOST_MINOR 2
#include "maintenance.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace opk::mnt {

// ------------------------------------------------------------- the windows

int32_t mode_code(const std::string& mode) {
  if (mode == "read-only") return OPK_MAINTENANCE_READ_ONLY;
  if (mode == "offline") return OPK_MAINTENANCE_OFFLINE;
  return OPK_MAINTENANCE_NONE;
}

int64_t Window::end_at() const {
  if (ended_ms != 0 && (ends_ms == 0 || ended_ms < ends_ms)) return ended_ms;
  return ends_ms;
}

std::string Window::state(int64_t now_ms) const {
  if (ended_ms != 0 && (ends_ms == 0 || ended_ms < ends_ms)) return now_ms < ended_ms ? "active" : "ended";
  if (ends_ms != 0 && now_ms >= ends_ms) return "completed";
  return now_ms < starts_ms ? "scheduled" : "active";
}

Json Window::to_json(int64_t now_ms) const {
  const std::string st = state(now_ms);
  return Json{{"id", id},
              {"tenant", tenant},
              {"mode", mode},
              {"banner", banner},
              {"reason", reason},
              {"created_by", created_by},
              {"created_ms", created_ms},
              {"starts_ms", starts_ms},
              {"ends_ms", ends_ms != 0 ? Json(ends_ms) : Json()},
              {"state", st},
              {"ended_by", ended_ms != 0 ? Json(ended_by) : Json()},
              {"ended_ms", ended_ms != 0 ? Json(ended_ms) : Json()},
              {"ended_reason", ended_ms != 0 ? Json(ended_reason) : Json()}};
}

const Slot* Snapshot::in_force(const std::vector<std::string>& nodes, int64_t now_ms, std::string* tenant) const {
  const Slot* best = nullptr;
  for (const auto& node : nodes) {
    auto it = by_tenant.find(node);
    if (it == by_tenant.end()) continue;
    for (const Slot& s : it->second) {
      if (now_ms < s.starts_ms || (s.end_ms != 0 && now_ms >= s.end_ms)) continue;
      const auto later = [](int64_t a, int64_t b) { return b != 0 && (a == 0 || a > b); };
      if (!best || s.mode > best->mode || (s.mode == best->mode && later(s.end_ms, best->end_ms))) {
        best = &s;
        if (tenant) *tenant = node;
      }
    }
  }
  return best;
}

// -------------------------------------------------------------- the plugin

namespace {

// The started plugin, for the extension's calls. A consumer's calls end
// before the plugin stops: the kernel stops a provider after its users.
std::atomic<MaintenancePlugin*> g_mnt_plugin{nullptr};

// Copies `text` into `out` of `size` bytes, cut on a UTF-8 boundary.
void mnt_copy(const std::string& text, char* out, size_t size) {
  size_t n = std::min(text.size(), size - 1);
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

int32_t mnt_ext_for_scope(const opk_host* /*host*/, const char* scope, opk_maintenance_state* out) noexcept {
  MaintenancePlugin* p = g_mnt_plugin.load(std::memory_order_acquire);
  if (p == nullptr) {
    if (out && out->struct_size >= sizeof(opk_maintenance_state)) out->mode = OPK_MAINTENANCE_NONE;
    return OPK_MAINTENANCE_NONE;
  }
  try {
    return p->lookup(scope, out);
  } catch (...) {
    return OPK_MAINTENANCE_NONE;
  }
}

const opk_maintenance_v1 kMaintenanceExtension = {sizeof(opk_maintenance_v1), &mnt_ext_for_scope};

// The run gate (opk.run-gates/1): a scheduled job's slot whose scope is a
// tenant in maintenance, read-only or offline, is skipped with the window.
int32_t mnt_run_gate(void* user_data, const opk_run_slot* slot, char* reason, size_t reason_size) noexcept {
  try {
    const auto* p = static_cast<const MaintenancePlugin*>(user_data);
    opk_maintenance_state st{};
    st.struct_size = sizeof st;
    if (slot == nullptr || p->lookup(slot->scope, &st) == OPK_MAINTENANCE_NONE) return OPK_GATE_RUN;
    const std::string why = std::string(st.tenant) + " is in " +
                            (st.mode == OPK_MAINTENANCE_OFFLINE ? "offline" : "read-only") + " maintenance" +
                            (st.until_ms != 0 ? " until " + std::to_string(st.until_ms) + " ms" : std::string()) +
                            " (window " + st.window_id + "): " + st.banner;
    if (reason != nullptr && reason_size > 0) mnt_copy(why, reason, reason_size);
    return OPK_GATE_SKIP;
  } catch (...) {
    return OPK_GATE_RUN;
  }
}

}  // namespace

MaintenancePlugin::~MaintenancePlugin() {
  stop();
}

Status MaintenancePlugin::init() {
  Settings in = host().settings();
  poll_ms_ = in.duration_ms("poll_interval", poll_ms_, 100, 300'000);
  keep_history_ms_ = in.duration_ms("keep_history", keep_history_ms_, 86'400'000LL, 3650 * 86'400'000LL);
  max_banner_ = static_cast<size_t>(in.integer("max_banner", static_cast<int64_t>(max_banner_), 1, 1000));
  if (Status s = in.status(); !s) return s;
  // Without a store (plugins list, plugins check) there is nothing to serve.
  if (!Store(host()).available()) return Status::ok();
  if (Status s = migrate_windows(host()); !s) return s;
  snapshot_.set_source({.read_counter = [this](int64_t* counter) { return read_window_counter(host(), counter); },
                        .load = [this](Snapshot* out) { return load(out); }});
  if (Status s = refresh(true); !s) return s;
  g_mnt_plugin.store(this, std::memory_order_release);
  return Status::ok();
}

Status MaintenancePlugin::start() {
  if (Status s = add_routes(); !s) return s;
  snapshot_.start(
      poll_ms_, [this](const Status& s) { host().warn("maintenance-mode: windows not reloaded: " + s.message()); },
      [this] { prune_if_due(); });
  // The scheduler asks the gate before each scheduled run (kernels of ABI
  // 1.8 on); without it a tenant's scheduled runs are not held.
  const auto* gates = host().extension<opk_run_gates_v1>(OPK_EXT_RUN_GATES);
  if (gates && gates->add_gate && Store(host()).available()) {
    if (gates->add_gate(host().raw(), "maintenance", &mnt_run_gate, this) == OPK_OK)
      gate_added_ = true;
    else
      host().warn("maintenance-mode: the run gate was not added: " + host().last_error() +
                  "; scheduled runs of tenants in maintenance will run");
  }
  return Status::ok();
}

void MaintenancePlugin::stop() {
  if (gate_added_) {
    const auto* gates = host().extension<opk_run_gates_v1>(OPK_EXT_RUN_GATES);
    if (gates && gates->remove_gate) gates->remove_gate(host().raw(), "maintenance");
    gate_added_ = false;
  }
  snapshot_.stop();
  MaintenancePlugin* self = this;
  g_mnt_plugin.compare_exchange_strong(self, nullptr);
}

const void* MaintenancePlugin::extension(std::string_view id) {
  return id == OPK_EXT_MAINTENANCE ? &kMaintenanceExtension : nullptr;
}

void MaintenancePlugin::prune_if_due() {
  // Ended windows past keep_history go, checked once a minute.
  const int64_t now = host().now_ms();
  if (now - pruned_at_ms_ < 60'000) return;
  pruned_at_ms_ = now;
  int64_t pruned = 0;
  if (Status s = prune(now - keep_history_ms_, &pruned); !s)
    host().warn("maintenance-mode: ended windows not pruned: " + s.message());
  else if (pruned > 0)
    host().info("maintenance-mode: pruned " + std::to_string(pruned) + " windows ended before keep_history");
}

Status MaintenancePlugin::load(Snapshot* out) const {
  std::vector<Window> live;
  if (Status s = read_all(true, host().now_ms(), &live); !s) return s;
  out->count = live.size();
  for (const auto& w : live)
    out->by_tenant[w.tenant].push_back(Slot{mode_code(w.mode), w.starts_ms, w.end_at(), w.id, w.banner});
  return Status::ok();
}

int32_t MaintenancePlugin::lookup(const char* scope, opk_maintenance_state* out) const {
  const bool fill = out && out->struct_size >= sizeof(opk_maintenance_state);
  if (fill) {
    out->mode = OPK_MAINTENANCE_NONE;
    out->tenant[0] = out->banner[0] = out->window_id[0] = '\0';
    out->until_ms = 0;
  }
  if (scope == nullptr || *scope == '\0') return OPK_MAINTENANCE_NONE;
  const Snapshot& snap = thread_snapshot();
  if (snap.by_tenant.empty()) return OPK_MAINTENANCE_NONE;
  // Nodes above every tenant are never in a tenant's maintenance.
  const std::string_view sv(scope);
  if (sv == "platform" || sv.rfind("distributor:", 0) == 0 || sv.rfind("partner:", 0) == 0) return OPK_MAINTENANCE_NONE;
  std::string tenant;
  const Slot* s = snap.in_force(ancestry(sv), host().now_ms(), &tenant);
  if (!s) return OPK_MAINTENANCE_NONE;
  if (fill) {
    out->mode = s->mode;
    out->until_ms = s->end_ms;
    mnt_copy(tenant, out->tenant, sizeof out->tenant);
    mnt_copy(s->banner, out->banner, sizeof out->banner);
    mnt_copy(s->id, out->window_id, sizeof out->window_id);
  }
  return s->mode;
}

void MaintenancePlugin::audit(const opk_principal* actor, const std::string& action, const std::string& id,
                              const std::string& reason, const Json& before, const Json& after,
                              const std::string& source) const {
  Audit a(host());
  Status s = a.record(actor, {.action = action,
                              .target = "maintenance:" + id,
                              .reason = reason,
                              .before = before,
                              .after = after,
                              .outcome = "success",
                              .source = source});
  if (!s)
    host().error("maintenance-mode: audit row for " + action + " on maintenance:" + id +
                 " not written: " + s.message());
}

}  // namespace opk::mnt

namespace {

opk::Manifest describe() {
  static const opk_translation sv[] = {
      {"sv", "Underhållsläge",
       "Sätt en kund i skrivskyddat eller frånkopplat underhåll nu eller under ett schemalagt fönster, med en "
       "banderoll för dess användare; avsluta ett fönster i förtid"}};
  opk::Manifest m("maintenance-mode", "Maintenance mode", "1.0.0", "Opskernel",
                  "Puts a tenant into read-only or offline maintenance for a window with a banner for its users, "
                  "enforced by admin-http and the job scheduler");
  m.admin_feature(
      {.id = "maintenance-mode",
       .title = "Maintenance mode",
       .description = "Put a tenant into read-only or offline maintenance now or for a scheduled window, with a "
                      "banner for its users; end a window early",
       .translations = {sv[0]},
       .permissions = {{"maintenance.read", "List and read the tenants' maintenance windows, ended ones included"},
                       {"maintenance.manage",
                        "Put tenants into maintenance and end their windows (it refuses their users' requests)"}}});
  m.provides(OPK_EXT_MAINTENANCE);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::mnt::MaintenancePlugin, describe);
