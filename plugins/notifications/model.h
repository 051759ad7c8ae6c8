// model.h -- the notifications plugin's groups and rules: what they hold,
// how they are read from a request body (each error names its field), and
// which events a rule matches. Pure functions over values: nothing here
// reaches the store or the kernel, so the matching is tested table by table.
// Thread-safety: values and const functions, safe from any thread.
#ifndef OPSKERNEL_PLUGINS_NOTIFICATIONS_MODEL_H
#define OPSKERNEL_PLUGINS_NOTIFICATIONS_MODEL_H

#include <opskernel/opk.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace opk::notify {

// A group of rules, owned by a node of the hierarchy: only callers whose
// scope contains `scope` see or change it.
struct Group {
  std::string id;           // [a-z0-9][a-z0-9._-]*, at most 64 bytes
  std::string name;         // one line, for operators
  std::string scope;        // a hierarchy node ("platform", "tenant:acme")
  std::string description;  // may be empty
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// What narrows a rule beyond its event kinds. An empty list or text does
// not narrow; a set one matches only events that carry the field.
struct Filter {
  std::vector<std::string> job_types;       // run events: run.job_type
  std::vector<std::string> scheduled_jobs;  // run events: run.scheduled_job_id
  std::vector<std::string> alert_sources;   // alert events: alert.source
  std::string min_severity;                 // alert events: "info", "warning" or "critical"
  std::string scope;                        // the event's scope lies at or under it; "" = the group's
};

// One addressee in the channel's own form, with its channel options (a
// webhook's signing secrets); `options` is an object or null.
struct Recipient {
  std::string to;
  Json options;
};

// A rule's own template; an empty text means the default of the event kind.
struct Templates {
  std::string subject;
  std::string body;
  std::string html_body;
  bool empty() const { return subject.empty() && body.empty() && html_body.empty(); }
};

// A rule: which events (kinds and filter) go where (channel, recipients),
// written how (template, locale).
struct Rule {
  std::string id;
  std::string group_id;
  std::string name;                // may be empty
  std::vector<std::string> kinds;  // "run.failed", "run.*", "*"
  Filter filter;
  std::string channel;  // a channel id of opk.channels/1 ("email", "webhook")
  std::vector<Recipient> recipients;
  Templates templates;
  std::string locale = "en";  // "en" or "sv"
  bool enabled = true;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// One event of the kernel's event log (opk.events/1 "read").
struct Event {
  int64_t seq = 0;
  int64_t time_ms = 0;
  std::string kind;     // "run.failed", "alert.opened", "plugin.<id>.<name>"
  std::string scope;    // the node it concerns
  std::string subject;  // "run:12", "alert:4"
  Json payload;         // the event's document (docs/events.md)
};

// The locales templates exist in; a rule's other locale falls back to "en".
inline const std::vector<std::string>& locales() {
  static const std::vector<std::string> l = {"en", "sv"};
  return l;
}

// True for an id of the form [a-z0-9][a-z0-9._-]*, at most 64 bytes.
bool valid_id(const std::string& id);

// True for an event kind pattern: "*", a kind ("run.failed"), or a prefix
// ending in ".*" ("run.*", "plugin.backup.*").
bool valid_kind_pattern(const std::string& pattern);

// True when `kind` matches `pattern` (see valid_kind_pattern).
bool kind_matches(const std::string& pattern, const std::string& kind);

// The rank of a severity name: info 0, warning 1, critical 2; -1 for any other.
int severity_rank(const std::string& severity);

// Reads a group from `body` into *out, over the values *out holds (a PATCH
// gives only what changes; `create` requires id, name and scope). The
// error is INVALID_ARGUMENT starting with the field ("name: must not be
// empty").
Status parse_group(const Json& body, bool create, Group* out);

// Reads a rule (every field but id, group_id and the times) from `body`.
// INVALID_ARGUMENT starting with the field ("recipients[1].to: ...").
Status parse_rule(const Json& body, Rule* out);

// The API's documents. A rule's recipients' options have their secrets
// masked ("whsec_…" plus the last four characters), never given back.
Json to_json(const Group& g);
Json to_json(const Rule& r);
// The stored form of a rule (every field, secrets included).
Json stored_json(const Rule& r);
// Reads a rule back from stored_json.
Status from_stored(const Json& doc, Rule* out);

// Whether node `node` lies at or under `scope` (opk.identity/1 contains).
using Contains = std::function<bool(const std::string& scope, const std::string& node)>;

// True when `rule` (of a group owned by `group_scope`) is enabled and
// matches `event`: a kind pattern matches, every set filter matches, and
// the event's scope lies inside the rule's scope (its filter's, else the
// group's).
bool matches(const Rule& rule, const std::string& group_scope, const Event& event, const Contains& contains);

// Which groups apply to a run event, by the rule of docs/notifications.md:
// the scheduled job's own group if it has one, else its job type's group,
// else the default group ("" for none). Groups bound to jobs or job types
// apply to run events of those only; other groups apply by their filters.
struct Bindings {
  std::string default_group;
  std::map<std::string, std::string> job_type_groups;       // job type -> group
  std::map<std::string, std::string> scheduled_job_groups;  // scheduled job -> group
  // The group chosen for a run of `job_type` / `scheduled_job` ("" none).
  std::string group_for_run(const std::string& job_type, const std::string& scheduled_job) const;
  // True when some job or job type (or the default) names `group`.
  bool bound(const std::string& group) const;
};

// True when rules of group `group` may apply to `event` under `bindings`
// (a bound group only to run events of the runs it is chosen for).
bool group_applies(const Bindings& bindings, const std::string& group, const Event& event);

// The rule implied by a scheduled job's stored report recipients (the
// console's "send report"): e-mail to `addresses` (comma-separated) on
// every end of the job's runs, default templates, id "report:<job>".
// nullopt when `addresses` holds none.
std::optional<Rule> report_rule(const std::string& scheduled_job, const std::string& addresses,
                                const std::string& locale);

// The delivery's idempotency key: "msg_" + 32 hex digits of SHA-256 over
// rule, event sequence, channel and recipient. The same on every attempt,
// after a restart too; sent as webhook-id and in the e-mail Message-ID.
std::string delivery_id(const std::string& rule_id, int64_t event_seq, const std::string& channel,
                        const std::string& recipient);

// An endpoint's id: "ep_" + 24 hex digits of SHA-256 over channel and
// recipient. Disabling (410 Gone) and the circuit key on it.
std::string endpoint_id(const std::string& channel, const std::string& recipient);

// The delay before attempt `attempt` + 1 after attempt `attempt` (1-based)
// failed. `schedule` holds the delay of each attempt, the first's (after the
// event) included: entry `attempt`, scaled by 1 - jitter + 2 * jitter * unit
// (`jitter` 0..0.5, `unit` in [0, 1)), at least `retry_after_ms`. -1 when
// the schedule has no more attempts.
int64_t retry_delay_ms(const std::vector<int64_t>& schedule, int64_t attempt, double jitter, double unit,
                       int64_t retry_after_ms);

}  // namespace opk::notify

#endif  // OPSKERNEL_PLUGINS_NOTIFICATIONS_MODEL_H
