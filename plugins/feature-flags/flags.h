// flags.h -- feature-flags: the installation's global feature flags, an
// admin feature of its own (/api/v1/feature-flags, permissions
// feature_flags.read and feature_flags.manage, the console's page), served
// to applications over OFREP (/ofrep/v1/evaluate/flags) and to plugins
// through opskernel.feature-flags/1 (feature_flags.h).
//
// A flag is a boolean, a string or a number, its type fixed when made;
// plugins declare theirs through the extension, operators create others.
// An operator overrides a flag's default with a value, a required reason
// and an optional expiry; once the expiry passes the flag is at its
// default again, decided when it is read (the clock is compared), so no job
// and no restart is needed. Every change is audited with its actor, reason,
// before and after.
//
// The flags live in the plugin's tables (p_feature_flags_flags, and
// p_feature_flags_changes, a counter every change moves). Reads by plugins
// and OFREP go to an in-memory snapshot swapped whole; a poller reads the
// counter every poll_interval and reloads the flags only when it moved, so
// every kernel sharing the store sees a change within that interval.
// docs/feature-flags.md describes it.
//
// An alert source, feature-flags-stale, warns of overrides held without an
// expiry longer than `stale_after` (a flag left switched by hand is a
// flag someone forgot), one alert per flag at the platform.
//
// Settings ([plugin.feature-flags]):
//   poll_interval   how often the change counter is read (default 2s;
//                   100ms..5m)
//   stale_after     an override without expiry older than this raises
//                   feature-flags-stale (default 30d; 0: never)
// Thread-safety: routes, extension calls, the collector and the poller run
// at once; the snapshot is swapped atomically, writes go through the store.
#ifndef OPSKERNEL_PLUGINS_FEATURE_FLAGS_FLAGS_H
#define OPSKERNEL_PLUGINS_FEATURE_FLAGS_FLAGS_H

#include <opskernel/feature_flags.h>
#include <opskernel/opk.hpp>
#include <opskernel/polled_snapshot.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace opk::flags {

// A flag as stored.
struct Flag {
  std::string id;
  std::string type;        // "boolean", "string", "number"
  Json default_value;      // of `type`
  Json value;              // the operator's override; null: none
  int64_t expires_ms = 0;  // the override's end; 0: none
  std::string description, owner;
  std::string plugin;  // the declaring plugin; empty: an operator's flag
  std::string created_by, updated_by, reason;
  int64_t created_ms = 0, updated_ms = 0;
  int64_t revision = 0;  // moved by every change

  // True while the override holds at `now_ms`.
  bool overridden(int64_t now_ms) const { return !value.is_null() && (expires_ms == 0 || now_ms < expires_ms); }
  // The value at `now_ms`: the override while it holds, else the default.
  const Json& current(int64_t now_ms) const { return overridden(now_ms) ? value : default_value; }
  // The value now, asking `clock` for the time only for an override that
  // expires (the hot path of a check).
  template <typename Clock>
  const Json& current_by(const Clock& clock) const {
    if (value.is_null()) return default_value;
    if (expires_ms == 0) return value;
    return clock() < expires_ms ? value : default_value;
  }
  // The flag as the API shows it at `now_ms`.
  Json to_json(int64_t now_ms) const;
};

// Checks a flag id ([a-z0-9][a-z0-9._-]{0,127}); INVALID_ARGUMENT naming
// `field`.
Status check_id(const std::string& field, const Json& id);
// Checks that `value` is of flag type `type`; INVALID_ARGUMENT naming
// `field` and both types.
Status check_value(const std::string& field, const std::string& type, const Json& value);
// The flag type of a JSON value ("boolean", "string", "number"), or "".
std::string type_of(const Json& value);

// Applies the plugin's migrations (store.cpp).
Status migrate_flags(const Host& host);
// Reads the change counter (store.cpp).
Status read_counter(const Host& host, int64_t* counter);

// The flags every reader sees, swapped whole.
struct Snapshot {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, Flag, Hash, std::equal_to<>> flags;
};

class FlagsPlugin : public Plugin {
 public:
  explicit FlagsPlugin(Host host) : Plugin(host) {}
  ~FlagsPlugin() override;

  // Reads the settings and migrates the tables.
  Status init() override;
  // Loads the snapshot, adds the routes and the collector, starts the poller.
  Status start() override;
  // Stops the poller.
  void stop() override;
  const void* extension(std::string_view id) override;

  // The flags now (never null once started).
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.current(); }
  // The flags now as the calling thread last took them, taken again only
  // when a snapshot was swapped since (by any instance): a check then
  // costs no reference count. Valid until the thread's next call.
  const Snapshot& thread_snapshot() const { return snapshot_.thread_view(); }
  // Reads the counter and, when it moved (or `force`), the flags, and
  // swaps the snapshot.
  Status refresh(bool force) { return snapshot_.refresh(force); }

  // Store access (store.cpp). Reads every flag, ordered by id.
  Status read_all(std::vector<Flag>* out) const;
  // Reads flag `id`; NOT_FOUND naming it.
  Status read(const std::string& id, Flag* out) const;
  // Inserts `f`; CONFLICT when its id exists.
  Status insert(const Flag& f) const;
  // Writes `f` (revision: before's + 1) over the stored flag of its id at
  // `before`'s revision (CONFLICT when another change came between).
  Status replace(const Flag& before, const Flag& f) const;
  // Deletes flag `id` as read in `before`; CONFLICT as replace.
  Status remove(const Flag& before) const;

  // Declares `plugin`'s flags (the extension's declare; feature_flags.h),
  // audited as `actor` (the plugin's system principal).
  Status declare(const opk_principal* actor, const std::string& plugin, const Json& flags, Json* answer);

  // How long an override without expiry holds before it is stale; 0: never.
  int64_t stale_ms() const { return stale_ms_; }

  // Audits `action` on flag `id` by `actor`.
  void audit(const opk_principal* actor, const std::string& action, const std::string& id, const std::string& reason,
             const Json& before, const Json& after, const std::string& source) const;

 private:
  Status add_routes();  // routes.cpp
  Status collect(std::string* text) const;
  // Reads every flag into `out`, for the snapshot.
  Status load(Snapshot* out);

  int64_t poll_ms_ = 2000;
  int64_t stale_ms_ = 30LL * 86'400'000;
  std::atomic<int64_t> reloads_{0};
  PolledSnapshot<Snapshot> snapshot_;
  Metrics metrics_{host()};
};

}  // namespace opk::flags

#endif  // OPSKERNEL_PLUGINS_FEATURE_FLAGS_FLAGS_H
