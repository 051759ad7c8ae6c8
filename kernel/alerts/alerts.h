// alerts.h -- the alert engine: alerts raised by alert sources (through the
// job engine's runs) and by plugins, custom alerts created by operators, and
// the operators' actions on them (acknowledge, close, silence, escalate).
// Every alert and its history live in the kernel's store; the visibility rule
// (who sees which alert) is applied inside every read, so it holds for every
// caller: the admin API, the console, other plugins, the CLI. Actions are
// audited in the kernel's audit trail. Thread-safe.
#ifndef OPSKERNEL_KERNEL_ALERTS_ALERTS_H
#define OPSKERNEL_KERNEL_ALERTS_ALERTS_H

#include <opskernel/status.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "identity/identity.h"
#include "store/store.h"

namespace opk::alerts {

// An alert source as the engine needs it (from a plugin's manifest).
struct SourceInfo {
  std::string id;      // the source id: the job type id and the alerts' source
  std::string plugin;  // the plugin that declares it
  std::string area;    // default area of its alerts
  bool platform_only = false;
  bool full_sweep = false;
  uint32_t clean_sweeps = 1;  // full sweeps without an alert before it closes as cleared
};

// The fields of one raise (opk_alert, or an opk.alerts/1 "raise" or
// "create" request). Empty strings are "not given".
struct Raise {
  std::string severity;  // info | warning | critical
  std::string area, title, message, related_type, related_id, scope, type;
  std::string details_json;  // a JSON object, or empty for {}
};

// [alert_escalation.<name>]: escalates an alert once, by one level, when it
// has been in the `when` state `after_ms` since it was first seen.
struct EscalationRule {
  std::string name;
  std::string source = "*";  // a source id, or "*"
  std::string severity;      // empty: any
  int64_t after_ms = 0;
  std::string when = "open";  // open (not closed) | unacknowledged
};

struct Options {
  // An alert that closed and reopened this many times within flap_window_ms
  // opens flapping.
  int flap_threshold = 3;
  int64_t flap_window_ms = 3600 * 1000;
  std::vector<EscalationRule> rules;
  // An alert not raised again for this long closes as expired (its source
  // was removed, or its object no longer exists to be cleared); 0: never.
  int64_t expire_after_ms = 30LL * 24 * 3600 * 1000;
};

// Who acts, for visibility, actions and the audit.
struct Actor {
  std::string user_id, role, scope;
  std::string source;  // where the request came from (a client address); may be empty
};

// One page of a listing.
struct Page {
  std::vector<store::AlertRow> alerts;
  std::string next_cursor;  // empty at the end
};

// A listing request; see docs/abi.md ("The alert service") for the fields.
struct ListRequest {
  std::string status, severity, area, source, related_type, related_id, scope, q;
  int64_t from_ms = 0, to_ms = 0;
  std::string sort = "-last_seen";
  size_t limit = 50;
  std::string cursor;
};

// An alert with its history and the earlier alerts of its chain.
struct Detail {
  store::AlertRow alert;
  std::vector<store::AlertEvent> history;  // oldest first
  std::vector<int64_t> previous;           // earlier alerts of the same (source, related object), newest first
};

// Counts over the alerts an actor sees.
struct Counts {
  std::map<std::string, int64_t> by_status, by_severity, by_source;
  int64_t open_critical = 0, escalated = 0;
  // Every (status, severity, source) with its count, closed ones included
  // (for gauges such as /metrics' opk_alerts).
  std::vector<store::AlertCount> groups;
};

// The severities in rank order, and the rank of one (-1: unknown).
int severity_rank(const std::string& severity);

// OK, or INVALID_ARGUMENT naming `field` when `text` holds a control
// character (tab and line breaks allowed when `line_breaks`).
Status check_text(const char* field, const std::string& text, bool line_breaks);

// The alert as JSON (docs/abi.md, "An alert").
std::string to_json(const store::AlertRow& alert);
// Appends the alert as JSON (as to_json) to *out.
void append_json(const store::AlertRow& alert, std::string* out);

class Engine {
 public:
  Engine(store::Store& store, identity::Identity& identity, Options options);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Options& options() const { return options_; }
  // A count that grows with every write of alerts through this engine:
  // equal counts mean the alerts this kernel wrote are unchanged (caches of
  // answers compare it).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // --- for alert sources and plugins (the source's own alerts only)
  // Opens the alert of (source, related object), or updates the open one:
  // severity, title, message, area, details and type take the new values,
  // occurrences and last_seen grow, and an "updated" event is written only
  // when the severity, title or message changed. After a closed one it
  // opens a new alert naming it as previous_id. INVALID_ARGUMENT names the
  // field (title, severity, scope, details, related_type, related_id).
  // `actor`: "system:<plugin>" for the history. *out (may be null) gets it.
  Status raise(const SourceInfo& source, const Raise& r, const std::string& actor, store::AlertRow* out);
  // Closes the open alert of (source, related object) as cleared, if any;
  // *closed (may be null) says whether one was open.
  Status clear(const SourceInfo& source, const std::string& related_type, const std::string& related_id,
               const std::string& actor, const std::string& reason, store::AlertRow* closed);
  // Raises the open alert's escalation level by one (status escalated);
  // NOT_FOUND when none is open; a reason is required. Audited.
  Status escalate(const SourceInfo& source, const std::string& related_type, const std::string& related_id,
                  const std::string& reason, const Actor& actor, store::AlertRow* out);
  // A full sweep of `source` completed successfully: every open alert of it
  // whose id is not in `raised` counts one clean sweep and closes as cleared
  // once it has source.clean_sweeps of them. *closed (may be null) gets how
  // many closed.
  Status sweep(const SourceInfo& source, const std::set<int64_t>& raised, int64_t* closed);

  // --- for operators: every call sees only what `actor` sees; an alert
  // outside the actor's view is NOT_FOUND, as one that does not exist.
  Status list(const Actor& actor, const ListRequest& request, Page* out);
  Status get(const Actor& actor, int64_t id, Detail* out);
  Status counts(const Actor& actor, Counts* out);
  // The actions: each is audited (alerts.<action>, with the actor, reason
  // and outcome), and CONFLICT on a closed alert.
  Status acknowledge(const Actor& actor, int64_t id, const std::string& reason, store::AlertRow* out);
  // REQUIRES a non-empty reason (INVALID_ARGUMENT otherwise).
  Status close(const Actor& actor, int64_t id, const std::string& reason, store::AlertRow* out);
  // `until_ms` must be in the future.
  Status silence(const Actor& actor, int64_t id, int64_t until_ms, const std::string& reason, store::AlertRow* out);
  Status unsilence(const Actor& actor, int64_t id, store::AlertRow* out);
  // A custom alert (source "custom"), scoped to a node the actor sees.
  Status create(const Actor& actor, const Raise& r, store::AlertRow* out);
  // Escalation by id, for an operator. Audited as alerts.escalate.
  Status escalate_by_id(const Actor& actor, int64_t id, const std::string& reason, store::AlertRow* out);

  // Applies the escalation rules to the stored alerts at `now_ms`; each rule
  // escalates an alert at most once, across restarts. *escalated (may be
  // null) gets how many alerts it escalated.
  Status check_escalations(int64_t now_ms, int64_t* escalated);
  // Closes as expired the alerts not closed whose last raise is
  // expire_after_ms or more before `now_ms` (options; none when 0).
  // *expired (may be null) gets how many. Audited as alerts.expire.
  Status expire(int64_t now_ms, int64_t* expired);

  // What `actor` sees, as a store filter.
  store::AlertView view_of(const Actor& actor);
  // Writes an audit row for an action refused before it reached the engine
  // (a permission, a malformed request).
  void audit_refusal(const Actor& actor, const std::string& action, const std::string& target,
                     const std::string& reason, const Status& why);

 private:
  // Checks a raise's fields and fills the alert's scope columns.
  Status check_raise(const Raise& r, store::AlertRow* row);
  // An action on a visible alert: reads it, refuses a closed one, lets
  // `change` edit it and name its event, stores both, audits the outcome.
  Status act(const Actor& actor, const std::string& action, int64_t id, const std::string& reason,
             const std::function<Status(store::AlertRow*, store::AlertEvent*)>& change, store::AlertRow* out);
  void audit(const Actor& actor, const std::string& action, const std::string& target, const std::string& reason,
             const std::string& params, const Status& outcome);

  // Stores `saves` and counts a change (generation()), stored or not.
  Status save_counted(std::vector<store::AlertSave>* saves);

  store::Store& store_;
  identity::Identity& identity_;
  const Options options_;
  std::atomic<uint64_t> generation_{0};
  // Serialises read-modify-write of alerts (one kernel writes the store).
  std::mutex write_mu_;
};

}  // namespace opk::alerts

#endif
