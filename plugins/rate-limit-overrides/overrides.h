// overrides.h -- rate-limit-overrides: lifts (no limit) or raises the admin
// API's request rate limits for a while, for a client address or CIDR block
// (IPv4 or IPv6) or for the users of a hierarchy node (a tenant), an admin
// feature of its own (/api/v1/rate-limit-overrides, permissions
// rate_limits.read and rate_limits.manage, the console's page), enforced by
// admin-http's limiter through opskernel.rate-limits/1 (rate_limits.h).
//
// An override has a required reason and a required expiry no further than
// max_duration ahead. It ends at its expiry by itself: a lookup compares the
// clock, so no job and no restart is needed. An operator may end it early
// (removed, with a reason). Ended overrides stay listed (state expired or
// removed) for keep_history after they ended, then the poller prunes them.
// Every change is audited with its actor, reason, before and after.
//
// The overrides live in the plugin's tables (p_rate_limit_overrides_rows,
// and p_rate_limit_overrides_changes, a counter every change moves).
// Lookups read an in-memory snapshot of the overrides not ended, swapped
// whole; a poller reads the counter every poll_interval and reloads only
// when it moved, so every kernel sharing the store sees a change within that
// interval. docs/rate-limit-overrides.md describes it.
//
// Settings ([plugin.rate-limit-overrides]):
//   max_duration    the furthest an expiry may be from its creation
//                   (default 7d; 1m..365d)
//   poll_interval   how often the change counter is read (default 2s;
//                   100ms..5m)
//   keep_history    how long an ended override stays listed (default 90d;
//                   1d..3650d)
// Thread-safety: routes, extension calls and the poller run at once; the
// snapshot is swapped atomically, writes go through the store.
#ifndef OPSKERNEL_PLUGINS_RATE_LIMIT_OVERRIDES_OVERRIDES_H
#define OPSKERNEL_PLUGINS_RATE_LIMIT_OVERRIDES_OVERRIDES_H

#include <opskernel/rate_limits.h>
#include <opskernel/opk.hpp>
#include <opskernel/polled_snapshot.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace opk::rlo {

// A client address or CIDR block.
struct Network {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4
  int prefix = 0;                   // bits that must match

  // The canonical text: "192.0.2.0/24", "2001:db8::/32".
  std::string text() const;
};

// Parses `text`, an address ("192.0.2.7", "2001:db8::7", a host of its own)
// or a CIDR block ("10.0.0.0/8"); an IPv4-mapped IPv6 address or block
// becomes its IPv4 form. INVALID_ARGUMENT naming `field` when it is neither
// or has bits set past its prefix.
Status parse_network(const std::string& field, const std::string& text, Network* out);

// An address as the server saw it, parsed; false when it is none.
bool parse_address(const char* text, Network* out);

// An override as stored.
struct Override {
  std::string id;
  std::string kind;        // "address" or "tenant"
  std::string target;      // the canonical CIDR block, or the hierarchy node
  int64_t per_minute = 0;  // OPK_RATE_UNLIMITED: no limit
  std::string reason;
  std::string created_by;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::string removed_by, removed_reason;  // set when ended early
  int64_t removed_ms = 0;                  // 0: not removed

  // "active", "expired" or "removed" at `now_ms`.
  std::string state(int64_t now_ms) const;
  // The override as the API shows it at `now_ms`.
  Json to_json(int64_t now_ms) const;
};

// Applies the plugin's migrations (store.cpp).
Status migrate_overrides(const Host& host);
// Reads the change counter (store.cpp).
Status read_override_counter(const Host& host, int64_t* counter);

// One override's grant as lookups see it.
struct Grant {
  int64_t per_minute = 0;  // OPK_RATE_UNLIMITED: no limit
  int64_t expires_ms = 0;
};

// The overrides not ended when read, indexed for lookups, swapped whole.
struct Snapshot {
  // Address blocks by prefix length, then by the masked address's bytes.
  struct Blocks {
    bool v6 = false;
    int prefix = 0;
    std::unordered_map<std::string, std::vector<Grant>> by_network;
  };
  std::vector<Blocks> blocks;  // longest prefix first
  std::unordered_map<std::string, std::vector<Grant>> by_node;
  size_t count = 0;  // overrides in it

  // The most generous grant in force at `now_ms` for `address` / `nodes`.
  int64_t for_network(const Network& address, int64_t now_ms, int64_t* until_ms) const;
  int64_t for_nodes(const std::vector<std::string>& nodes, int64_t now_ms, int64_t* until_ms) const;
};

class OverridesPlugin : public Plugin {
 public:
  explicit OverridesPlugin(Host host) : Plugin(host), ancestry_(this->host()) {}
  ~OverridesPlugin() override;

  // Reads the settings and migrates the tables.
  Status init() override;
  // Loads the snapshot, adds the routes, starts the poller.
  Status start() override;
  // Stops the poller.
  void stop() override;
  const void* extension(std::string_view id) override;

  // The overrides now (never null once started).
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.current(); }
  // The overrides now as the calling thread last took them, taken again
  // only when a snapshot was swapped since (by any instance): a lookup
  // then costs no lock and no reference count. Valid until the thread's
  // next call.
  const Snapshot& thread_snapshot() const { return snapshot_.thread_view(); }
  // Reads the counter and, when it moved (or `force`), the overrides not
  // ended, and swaps the snapshot.
  Status refresh(bool force) { return snapshot_.refresh(force); }
  // `scope` and the nodes above it, root first, kept by the calling thread
  // for a minute. Valid until the thread's next call.
  const std::vector<std::string>& ancestry(std::string_view scope) const { return ancestry_.of(scope); }

  // The furthest an expiry may be from now, in ms.
  int64_t max_duration_ms() const { return max_duration_ms_; }

  // Store access (store.cpp). Reads overrides, newest first: all of them
  // (`live_only` false) or those not removed whose expiry is after `now_ms`.
  Status read_all(bool live_only, int64_t now_ms, std::vector<Override>* out) const;
  // Reads override `id`; NOT_FOUND naming it.
  Status read(const std::string& id, Override* out) const;
  // Inserts `o`.
  Status insert(const Override& o) const;
  // Marks `o` removed (its removed_* fields) if it was not yet; CONFLICT
  // when it was.
  Status mark_removed(const Override& o) const;
  // Deletes overrides that ended before `before_ms`; *pruned gets how many.
  Status prune(int64_t before_ms, int64_t* pruned) const;

  // Audits `action` on override `id` by `actor`.
  void audit(const opk_principal* actor, const std::string& action, const std::string& id, const std::string& reason,
             const Json& before, const Json& after, const std::string& source) const;

 private:
  Status add_routes();  // routes.cpp
  // Reads the overrides not ended into `out`, for the snapshot.
  Status load(Snapshot* out) const;
  // The poller's housekeeping: prunes ended overrides once a minute.
  void prune_if_due();

  int64_t max_duration_ms_ = 7 * 86'400'000LL;
  int64_t poll_ms_ = 2000;
  int64_t keep_history_ms_ = 90 * 86'400'000LL;
  int64_t pruned_at_ms_ = 0;  // the poller's last prune
  PolledSnapshot<Snapshot> snapshot_;
  NodeAncestry<Snapshot> ancestry_;
};

}  // namespace opk::rlo

#endif  // OPSKERNEL_PLUGINS_RATE_LIMIT_OVERRIDES_OVERRIDES_H
