// maintenance.h -- maintenance-mode: puts a tenant into maintenance for a
// window, read-only (its writes refused, its reads served) or offline
// (every request scoped to it refused, PlatformAdministrators excepted),
// with a banner text for its users, a start and an optional end. An admin
// feature of its own (/api/v1/maintenance, permissions maintenance.read and
// maintenance.manage, the console's Maintenance page and banner), enforced
// by admin-http through opskernel.maintenance/1 (maintenance.h in the SDK)
// and by the job engine's scheduler through a run gate (opk.run-gates/1): a
// scheduled run of a tenant in maintenance is recorded as skipped.
//
// A window begins at its start and ends at its end by itself: a lookup
// compares the clock, so no job and no restart is needed. An operator may
// end one early (or call off one not begun) with a reason. Windows stay
// listed for keep_history after they ended, then the poller prunes them.
// Every change is audited with its actor, reason, before and after.
//
// The windows live in the plugin's tables (p_maintenance_mode_windows, and
// p_maintenance_mode_changes, a counter every change moves). Lookups read
// an in-memory snapshot of the windows not ended, swapped whole; a poller
// reads the counter every poll_interval and reloads only when it moved, so
// every kernel sharing the store sees a change within that interval.
// docs/maintenance-mode.md describes it.
//
// Settings ([plugin.maintenance-mode]):
//   poll_interval   how often the change counter is read (default 2s;
//                   100ms..5m)
//   keep_history    how long an ended window stays listed (default 90d;
//                   1d..3650d)
//   max_banner      the longest banner text in bytes (default 500; 1..1000)
// Thread-safety: routes, extension calls, the run gate and the poller run
// at once; the snapshot is swapped atomically, writes go through the store.
#ifndef OPSKERNEL_PLUGINS_MAINTENANCE_MODE_MAINTENANCE_H
#define OPSKERNEL_PLUGINS_MAINTENANCE_MODE_MAINTENANCE_H

#include <opskernel/maintenance.h>
#include <opskernel/opk.hpp>
#include <opskernel/polled_snapshot.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace opk::mnt {

// A maintenance window as stored.
struct Window {
  std::string id;
  std::string tenant;  // "tenant:acme"
  std::string mode;    // "read-only" or "offline"
  std::string banner;
  std::string reason;
  std::string created_by;
  int64_t created_ms = 0;
  int64_t starts_ms = 0;
  int64_t ends_ms = 0;                 // 0: no end set
  std::string ended_by, ended_reason;  // set when ended early
  int64_t ended_ms = 0;                // 0: not ended early

  // When it ends or ended: the earlier of ends_ms and ended_ms (0 when
  // neither is set).
  int64_t end_at() const;
  // "scheduled", "active", "completed" (its end came) or "ended" (ended
  // early, or called off before it began) at `now_ms`.
  std::string state(int64_t now_ms) const;
  // The window as the API shows it at `now_ms`.
  Json to_json(int64_t now_ms) const;
};

// OPK_MAINTENANCE_READ_ONLY or _OFFLINE for a mode's text; NONE otherwise.
int32_t mode_code(const std::string& mode);

// Applies the plugin's migrations (store.cpp).
Status migrate_windows(const Host& host);
// Reads the change counter (store.cpp).
Status read_window_counter(const Host& host, int64_t* counter);

// One window as lookups see it.
struct Slot {
  int32_t mode = OPK_MAINTENANCE_NONE;
  int64_t starts_ms = 0, end_ms = 0;  // end_ms 0: open-ended
  std::string id, banner;
};

// The windows not ended when read, by tenant, swapped whole.
struct Snapshot {
  std::unordered_map<std::string, std::vector<Slot>> by_tenant;
  size_t count = 0;  // windows in it

  // The window in force at `now_ms` for any of `nodes` (a node and its
  // ancestors): offline before read-only, then the latest end; nullptr
  // when none. *tenant gets the node it was found on.
  const Slot* in_force(const std::vector<std::string>& nodes, int64_t now_ms, std::string* tenant) const;
};

class MaintenancePlugin : public Plugin {
 public:
  explicit MaintenancePlugin(Host host) : Plugin(host), ancestry_(this->host()) {}
  ~MaintenancePlugin() override;

  // Reads the settings and migrates the tables.
  Status init() override;
  // Adds the routes, starts the poller, adds the run gate.
  Status start() override;
  // Removes the run gate, stops the poller.
  void stop() override;
  const void* extension(std::string_view id) override;

  // The windows now (never null once started).
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.current(); }
  // The windows now as the calling thread last took them, taken again only
  // when a snapshot was swapped since (by any instance): a lookup then
  // costs no lock and no reference count. Valid until the thread's next
  // call.
  const Snapshot& thread_snapshot() const { return snapshot_.thread_view(); }
  // Reads the counter and, when it moved (or `force`), the windows not
  // ended, and swaps the snapshot.
  Status refresh(bool force) { return snapshot_.refresh(force); }
  // `scope` and the nodes above it, root first, kept by the calling thread
  // for a minute. Valid until the thread's next call.
  const std::vector<std::string>& ancestry(std::string_view scope) const { return ancestry_.of(scope); }
  // The lookup behind opskernel.maintenance/1 and the run gate: fills
  // `out` (may be null) and returns the mode in force for `scope` now.
  int32_t lookup(const char* scope, opk_maintenance_state* out) const;

  // The longest banner text, in bytes.
  size_t max_banner() const { return max_banner_; }

  // Store access (store.cpp). Reads windows, newest start first: all of
  // them (`live_only` false) or those not ended early whose end is after
  // `now_ms` or not set.
  Status read_all(bool live_only, int64_t now_ms, std::vector<Window>* out) const;
  // Reads window `id`; NOT_FOUND naming it.
  Status read(const std::string& id, Window* out) const;
  // Inserts `w`.
  Status insert(const Window& w) const;
  // Marks `w` ended early (its ended_* fields) if it was not yet; CONFLICT
  // when it was.
  Status mark_ended(const Window& w) const;
  // Deletes windows that ended before `before_ms`; *pruned gets how many.
  Status prune(int64_t before_ms, int64_t* pruned) const;

  // Audits `action` on window `id` by `actor`.
  void audit(const opk_principal* actor, const std::string& action, const std::string& id, const std::string& reason,
             const Json& before, const Json& after, const std::string& source) const;

 private:
  Status add_routes();  // routes.cpp
  // Reads the windows not ended into `out`, for the snapshot.
  Status load(Snapshot* out) const;
  // The poller's housekeeping: prunes ended windows once a minute.
  void prune_if_due();

  int64_t poll_ms_ = 2000;
  int64_t keep_history_ms_ = 90 * 86'400'000LL;
  size_t max_banner_ = 500;
  int64_t pruned_at_ms_ = 0;  // the poller's last prune
  bool gate_added_ = false;   // the run gate is the kernel's
  PolledSnapshot<Snapshot> snapshot_;
  NodeAncestry<Snapshot> ancestry_;
};

}  // namespace opk::mnt

#endif  // OPSKERNEL_PLUGINS_MAINTENANCE_MODE_MAINTENANCE_H
