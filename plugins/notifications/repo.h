// repo.h -- the notifications plugin's tables in the kernel's store
// (opk.store/1), in SQL that SQLite and PostgreSQL both run: groups, rules,
// the scheduled jobs' groups, the event cursor, the outbox of deliveries
// with their attempts, and the endpoints' state (disabled, circuit).
// Everything that must happen once is decided by the store (a delivery's id
// is its primary key; a claim is a compare-and-set), never in memory, so
// several kernels may share the tables.
// Thread-safety: a Repo may be used from any thread at once.
#ifndef OPSKERNEL_PLUGINS_NOTIFICATIONS_REPO_H
#define OPSKERNEL_PLUGINS_NOTIFICATIONS_REPO_H

#include <opskernel/opk.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model.h"

namespace opk::notify {

// Delivery states.
inline constexpr const char* kPending = "pending";      // waiting for its next attempt
inline constexpr const char* kSending = "sending";      // claimed by a worker (leased)
inline constexpr const char* kDelivered = "delivered";  // the receiver accepted it
inline constexpr const char* kFailed = "failed";        // a permanent failure (4xx, bad address, 410)
inline constexpr const char* kDead = "dead";            // every attempt of the schedule failed
inline constexpr const char* kSkipped = "skipped";      // its endpoint was disabled
// Held while its endpoint is suppressed for its scope (not attempted, no
// attempt counted); pending again when the suppression is lifted or ends.
inline constexpr const char* kSuppressed = "suppressed";

// One message in the outbox, for one recipient of one rule and one event.
struct Delivery {
  std::string id;  // the idempotency key (delivery_id)
  std::string rule_id;
  std::string group_id;  // "" for a scheduled job's report rule
  std::string scope;     // who may see it: the rule's group's node (or the event's)
  int64_t event_seq = 0;
  std::string event_kind;
  std::string event_subject;
  std::string channel;
  std::string recipient;
  std::string endpoint;  // endpoint_id(channel, recipient): what the circuit and disabling key on
  // {"subject", "body", "html_body", "content_type", "event_json", "options"}.
  Json message;
  // The message as the outbox's consumer wrote it (stored_message), which
  // enqueue stores instead of message's text when set.
  std::string message_text;
  std::string state = kPending;
  int64_t attempts = 0;
  int64_t next_attempt_ms = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  std::optional<int64_t> last_code;
  std::string last_detail;
  std::string render_error;
  // Marked handled in the failures inbox (dead or failed only); cleared by
  // a replay. handled_ms 0: not handled.
  std::string handled_by;
  int64_t handled_ms = 0;
  std::string handled_note;
};

// One attempt of a delivery.
struct Attempt {
  int64_t attempt = 0;  // 1-based
  int64_t time_ms = 0;
  std::string outcome;  // "delivered", "retry", "failed", "gone"
  int64_t code = 0;     // HTTP status or SMTP reply; 0 none
  int64_t latency_ms = 0;
  std::string detail;
};

// An endpoint's state.
struct Endpoint {
  std::string endpoint, channel, recipient;
  bool disabled = false;
  std::string disabled_reason;
  int64_t failures = 0;       // consecutive failed attempts
  int64_t open_until_ms = 0;  // the circuit is open (no attempt) until then
  int64_t updated_ms = 0;
};

// A suppression of an endpoint for the deliveries at or under `scope` (the
// failures inbox): while active (not lifted, until_ms 0 or later than now)
// those deliveries are held (kSuppressed) instead of attempted.
struct Suppression {
  std::string id;  // "sup_" + 12 hex digits
  std::string endpoint, channel, recipient, scope, reason;
  int64_t until_ms = 0;  // 0: until lifted
  std::string created_by;
  int64_t created_ms = 0;
  std::string lifted_by;  // "" while not lifted; "system:expired" when until_ms passed
  int64_t lifted_ms = 0;
};

// Failed deliveries (dead or failed) of one scope, handled or not.
struct FailureCount {
  std::string scope;
  bool handled = false;
  int64_t count = 0;
};

// What a deliveries list asks for.
struct DeliveryQuery {
  std::string state, channel, rule, event_kind;
  std::string recipient;        // "": any
  std::optional<bool> handled;  // failed(): unset any, false open, true handled
  int64_t since_ms = 0;         // created at or after; 0: any
  int64_t until_ms = 0;         // created before; 0: any
  std::string cursor;           // the previous page's next_cursor
  int limit = 50;
};

class Repo {
 public:
  explicit Repo(const Host& host);

  // Creates or updates the tables.
  Status migrate() const;

  // The change counter of groups, rules and scheduled jobs' groups: every
  // change of them moves it, in the change's own transaction.
  Status changes(int64_t* counter) const;

  // Groups.
  Status groups(std::vector<Group>* out) const;
  // NOT_FOUND naming the id.
  Status group(const std::string& id, Group* out) const;
  // CONFLICT when the id is taken.
  Status insert_group(const Group& g) const;
  Status update_group(const Group& g) const;
  // CONFLICT when rules or scheduled jobs still use it.
  Status delete_group(const std::string& id) const;

  // Rules; `group_id` "" lists every rule.
  Status rules(const std::string& group_id, std::vector<Rule>* out) const;
  Status rule(const std::string& id, Rule* out) const;
  Status insert_rule(const Rule& r) const;
  Status update_rule(const Rule& r) const;
  Status delete_rule(const std::string& id) const;

  // The groups scheduled jobs chose: scheduled job -> {group, scope}.
  struct JobGroup {
    std::string scheduled_job_id, group_id, scope;
    int64_t updated_ms = 0;
  };
  Status job_groups(std::vector<JobGroup>* out) const;
  Status job_group(const std::string& scheduled_job_id, JobGroup* out) const;
  Status put_job_group(const JobGroup& j) const;
  Status delete_job_group(const std::string& scheduled_job_id) const;

  // The event cursor of consumer `consumer`: the last sequence handled and
  // the time of the consumer's first start (events before it are not
  // notified). Created at `now_ms` with sequence 0 when missing.
  Status cursor(const std::string& consumer, int64_t now_ms, int64_t* seq, int64_t* since_ms) const;
  // The same cursor, read only: NOT_FOUND when it is missing (cursor()
  // makes it).
  Status read_cursor(const std::string& consumer, int64_t* seq, int64_t* since_ms) const;
  // Inserts `deliveries` (those already there are left as they are) and
  // moves the cursor to `seq` (never back: another kernel's consumer may
  // have moved it further), in one transaction: after a crash at any point
  // either both happened or neither did.
  Status enqueue(const std::string& consumer, const std::vector<Delivery>& deliveries, int64_t seq) const;

  // A page of deliveries, newest first; *next gets the next page's cursor
  // ("" at the end). INVALID_ARGUMENT naming "cursor" for a bad one.
  Status deliveries(const DeliveryQuery& q, std::vector<Delivery>* out, std::string* next) const;
  Status delivery(const std::string& id, Delivery* out, std::vector<Attempt>* attempts) const;

  // Deliveries due at `now_ms` (pending and due, or sending with an
  // expired lease), whose endpoint's circuit is not open; at most `limit` ids.
  Status due(int64_t now_ms, int limit, std::vector<std::string>* ids) const;
  // Claims each of `ids` that is still due (pending and due, or sending
  // with an expired lease), in one transaction: sending, one more attempt,
  // leased to `owner` (the kernel's node) until `lease_until_ms`. *out gets
  // those claimed; another worker may have taken the others first.
  Status claim_many(const std::vector<std::string>& ids, int64_t now_ms, int64_t lease_until_ms,
                    const std::string& owner, std::vector<Delivery>* out) const;
  // At start: the deliveries `owner` was sending when it stopped go back to
  // pending now, their attempt recorded as interrupted (the receiver may
  // have it). *recovered (may be NULL) gets how many.
  Status recover(const std::string& owner, int64_t now_ms, int64_t* recovered) const;
  // Gives a claimed delivery back unattempted (its endpoint's circuit is
  // being probed by another worker): pending at `next_ms`.
  Status release(const std::string& id, int64_t next_ms) const;
  // The earliest next attempt of a pending delivery; 0 when none.
  Status next_due(int64_t* ms) const;

  // The outcome of one attempt, in one transaction: the attempt row, the
  // delivery's new state (`state`, next attempt at `next_ms`), and the
  // endpoint: on success its failures reset and circuit closed; on a
  // failure counted one more, the circuit opened until `open_until_ms`
  // when they reach `circuit_failures`; `disable` disables it with `reason`.
  struct Outcome {
    Attempt attempt;
    std::string state;
    int64_t next_ms = 0;
    bool success = false;
    // With success: the endpoint's row was read with no failures and no
    // open circuit, so it is left as it is.
    bool endpoint_clean = false;
    bool count_failure = false;
    int64_t circuit_failures = 5;
    int64_t open_until_ms = 0;
    bool disable = false;
    std::string reason;
  };
  Status record(const Delivery& d, const Outcome& o) const;
  // Marks a delivery skipped (its endpoint is disabled), with `detail`.
  Status skip(const std::string& id, const std::string& detail, int64_t now_ms) const;

  // Endpoints.
  Status endpoint(const std::string& endpoint, Endpoint* out) const;
  Status endpoints(bool disabled_only, std::vector<Endpoint>* out) const;
  // Enables a disabled endpoint: failures reset, circuit closed.
  Status enable(const std::string& endpoint, int64_t now_ms) const;
  // Takes the probe of an endpoint whose circuit has opened: the circuit
  // stays closed to others until `until_ms`. *won is false when another
  // worker probes it now.
  Status take_probe(const std::string& endpoint, int64_t now_ms, int64_t until_ms, bool* won) const;
  // After a successful probe: the endpoint's pending deliveries go now.
  Status wake_endpoint(const std::string& endpoint, int64_t now_ms) const;

  // Dead and failed deliveries (the failures inbox), newest first.
  Status failed(const DeliveryQuery& q, std::vector<Delivery>* out, std::string* next) const;
  // Puts a dead, failed or skipped delivery back to pending now, keeping
  // its id (receivers drop what they already have) and clearing its
  // handled mark. NOT_FOUND, or CONFLICT when it is pending, sending or
  // delivered.
  Status replay(const std::string& id, int64_t now_ms) const;
  // Marks a dead or failed delivery handled by `by` at `now_ms` with `note`
  // (again: the mark is replaced). CONFLICT when it is in another state.
  Status handle(const std::string& id, const std::string& by, const std::string& note, int64_t now_ms) const;
  // Failed deliveries counted per scope and handled mark.
  Status failure_counts(std::vector<FailureCount>* out) const;

  // Suppressions. CONFLICT when `s`'s id is taken.
  Status insert_suppression(const Suppression& s) const;
  // NOT_FOUND naming the id.
  Status suppression(const std::string& id, Suppression* out) const;
  // The suppressions active at `now_ms`, of `endpoint` ("" every endpoint),
  // oldest first.
  Status active_suppressions(const std::string& endpoint, int64_t now_ms, std::vector<Suppression>* out) const;
  // The active suppressions whose until_ms has passed at `now_ms`.
  Status expired_suppressions(int64_t now_ms, std::vector<Suppression>* out) const;
  // Lifts suppression `id` (by `by` at `now_ms`); CONFLICT when it was
  // lifted already.
  Status lift(const std::string& id, const std::string& by, int64_t now_ms) const;
  // Holds claimed delivery `id` (its endpoint is suppressed), unattempted.
  Status hold(const std::string& id, const std::string& detail, int64_t now_ms) const;
  // The held deliveries of `endpoint`: id -> scope.
  Status held(const std::string& endpoint, std::vector<std::pair<std::string, std::string>>* out) const;
  // Puts held deliveries `ids` back to pending now, in one transaction.
  Status resume(const std::vector<std::string>& ids, int64_t now_ms) const;

 private:
  // Runs `sql` and moves the change counter, in one transaction; *changed
  // (may be null) gets the rows `sql` changed.
  Status change(const std::string& sql, const std::vector<Store::Param>& params, int64_t* changed = nullptr) const;
  Status rows(const std::string& sql, const std::vector<Store::Param>& params, Json* out) const;
  // A page of the deliveries `q` asks for whose state is one of `states`
  // (any when empty), newest first; *next gets the next page's cursor ("" on
  // the last page).
  Status page(const DeliveryQuery& q, const std::vector<std::string>& states, std::vector<Delivery>* out,
              std::string* next) const;
  Host host_;
  Store store_;
};

// A delivery as the API shows it (no options, no secrets).
Json to_json(const Delivery& d, bool with_message);
Json to_json(const Attempt& a);
Json to_json(const Endpoint& e);
Json to_json(const Suppression& s);

}  // namespace opk::notify

#endif  // OPSKERNEL_PLUGINS_NOTIFICATIONS_REPO_H
