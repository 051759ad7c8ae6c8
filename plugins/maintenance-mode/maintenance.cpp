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
#include <chrono>
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

// Moved after every snapshot swap of any instance, so a thread's cached
// snapshot is never taken for a newer one (nor for another instance's).
std::atomic<uint64_t> g_mnt_generation{1};

struct MntHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// A node's ancestry as a thread last read it.
struct MntAncestry {
  std::vector<std::string> nodes;
  int64_t read_ms = 0;
};

// A thread's last snapshot and the ancestries it read. glibc keeps this
// library loaded while a thread that holds one lives, so its release never
// runs unloaded code.
struct MntThreadCache {
  const MaintenancePlugin* plugin = nullptr;
  uint64_t generation = 0;
  std::shared_ptr<const Snapshot> snap;
  std::unordered_map<std::string, MntAncestry, MntHash, std::equal_to<>> ancestry;
};
thread_local MntThreadCache t_mnt_cache;

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

int64_t mnt_steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
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
  if (Status s = refresh(true); !s) return s;
  g_mnt_plugin.store(this, std::memory_order_release);
  return Status::ok();
}

Status MaintenancePlugin::start() {
  if (Status s = add_routes(); !s) return s;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  poller_ = std::thread([this] { poll(); });
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
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  MaintenancePlugin* self = this;
  g_mnt_plugin.compare_exchange_strong(self, nullptr);
}

const void* MaintenancePlugin::extension(std::string_view id) {
  return id == OPK_EXT_MAINTENANCE ? &kMaintenanceExtension : nullptr;
}

void MaintenancePlugin::poll() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    if (Status s = refresh(false); !s) host().warn("maintenance-mode: windows not reloaded: " + s.message());
    // Ended windows past keep_history go, checked once a minute.
    const int64_t now = host().now_ms();
    if (now - pruned_at_ms_ >= 60'000) {
      pruned_at_ms_ = now;
      int64_t pruned = 0;
      if (Status s = prune(now - keep_history_ms_, &pruned); !s)
        host().warn("maintenance-mode: ended windows not pruned: " + s.message());
      else if (pruned > 0)
        host().info("maintenance-mode: pruned " + std::to_string(pruned) + " windows ended before keep_history");
    }
    lock.lock();
  }
}

Status MaintenancePlugin::refresh(bool force) {
  std::lock_guard lock(refresh_mu_);
  int64_t counter = 0;
  if (Status s = read_window_counter(host(), &counter); !s) return s;
  if (!force && counter == snapshot()->counter) return Status::ok();
  std::vector<Window> live;
  if (Status s = read_all(true, host().now_ms(), &live); !s) return s;
  auto next = std::make_shared<Snapshot>();
  next->counter = counter;
  next->count = live.size();
  for (const auto& w : live)
    next->by_tenant[w.tenant].push_back(Slot{mode_code(w.mode), w.starts_ms, w.end_at(), w.id, w.banner});
  snapshot_.store(std::move(next), std::memory_order_release);
  g_mnt_generation.fetch_add(1, std::memory_order_acq_rel);
  return Status::ok();
}

const Snapshot& MaintenancePlugin::thread_snapshot() const {
  MntThreadCache& t = t_mnt_cache;
  const uint64_t generation = g_mnt_generation.load(std::memory_order_acquire);
  if (t.plugin != this || t.generation != generation) {
    if (t.plugin != this) t.ancestry.clear();
    t.snap = snapshot();
    t.plugin = this;
    t.generation = generation;
  }
  return *t.snap;
}

const std::vector<std::string>& MaintenancePlugin::ancestry(std::string_view scope) const {
  MntThreadCache& t = t_mnt_cache;  // thread_snapshot() tied it to this plugin
  const int64_t now = mnt_steady_ms();
  auto it = t.ancestry.find(scope);
  if (it != t.ancestry.end() && now - it->second.read_ms < 60'000) return it->second.nodes;
  std::vector<std::string> nodes = {std::string(scope)};
  const auto* id = host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
  if (id && OPK_HAS_MEMBER(opk_identity_v1, id->struct_size, node_path) && id->node_path) {
    char* path = nullptr;
    if (id->node_path(host().raw(), std::string(scope).c_str(), &path) == OPK_OK && path) {
      const Json doc = Json::parse(path, nullptr, false);
      if (doc.is_array()) {
        nodes.clear();
        for (const auto& n : doc)
          if (n.is_string()) nodes.push_back(n.get<std::string>());
      }
    }
    if (path) host().free(path);
  }
  if (it == t.ancestry.end()) {
    if (t.ancestry.size() >= 10'000) t.ancestry.clear();  // bounded: scopes are few
    it = t.ancestry.emplace(std::string(scope), MntAncestry{}).first;
  }
  it->second = {std::move(nodes), now};
  return it->second.nodes;
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
  opk::Manifest m("maintenance-mode", "Maintenance mode", "1.0.0", "Opskernel",
                  "Puts a tenant into read-only or offline maintenance for a window with a banner for its users, "
                  "enforced by admin-http and the job scheduler");
  m.admin_feature(
      {.id = "maintenance-mode",
       .title = "Maintenance mode",
       .description = "Put a tenant into read-only or offline maintenance now or for a scheduled window, with a "
                      "banner for its users; end a window early",
       .translations = {},
       .permissions = {{"maintenance.read", "List and read the tenants' maintenance windows, ended ones included"},
                       {"maintenance.manage",
                        "Put tenants into maintenance and end their windows (it refuses their users' requests)"}}});
  m.provides(OPK_EXT_MAINTENANCE);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::mnt::MaintenancePlugin, describe);
