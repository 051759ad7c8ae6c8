// store.h -- the kernel's durable store: schema migrations, scheduled jobs,
// runs with their log lines and steps, and the audit trail. An interface, so
// the PostgreSQL backend can replace the embedded SQLite one without touching
// the job engine. Implementations are thread-safe; concurrent writes on the
// hot path (runs, claims, completions, log lines, audit rows, next runs) are
// group-committed, so callers on many threads share transactions.
#ifndef OPSKERNEL_KERNEL_STORE_STORE_H
#define OPSKERNEL_KERNEL_STORE_STORE_H

#include <opskernel/status.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace opk::store {

// The outcome of a read: the value read, or why the store could not be read
// (UNAVAILABLE, naming the cause). A failed read says nothing about what is
// stored: "nothing matched" is an OK read of an empty value.
template <typename T>
class StatusOr {
 public:
  // A read that succeeded with `value`.
  StatusOr(T value) : value_(std::move(value)) {}
  // A read that failed; REQUIRES: !status.is_ok().
  StatusOr(Status status) : status_(std::move(status)) {}

  bool is_ok() const { return status_.is_ok(); }
  explicit operator bool() const { return is_ok(); }
  // OK, or why the read failed.
  const Status& status() const { return status_; }
  // The value read; empty (a default T) if the read failed.
  const T& value() const& { return value_; }
  T value() && { return std::move(value_); }

 private:
  Status status_;
  T value_{};
};

// A schema change, applied once per owner ("kernel" or a plugin id), in order.
struct Migration {
  int version = 0;
  std::string name;
  std::string sql;  // portable SQL: one or more statements separated by ';'
};

// A migration as recorded when it was applied.
struct AppliedMigration {
  std::string owner;
  int version = 0;
  std::string name;
  int64_t applied_ms = 0;
};

// One attempt to apply a migration, as recorded from kernel migration 10
// on: applied, with how long its script took, or failed and rolled back,
// with the database's message. Migrations found applied already (by this
// store earlier or by another kernel on the database) make no attempt.
struct MigrationAttempt {
  std::string owner;
  int version = 0;
  std::string name;
  int64_t started_ms = 0;   // the kernel's clock when the script started
  int64_t duration_us = 0;  // the script and its record, in microseconds
  bool applied = false;     // false: failed, nothing of it kept
  std::string error;        // why it failed; empty when applied
};

// Run phases and outcomes, stored as text.
inline constexpr const char* kPending = "PENDING";
inline constexpr const char* kRunning = "RUNNING";
inline constexpr const char* kCompleted = "COMPLETED";
inline constexpr const char* kNormal = "NORMAL";
inline constexpr const char* kWarning = "WARNING";
inline constexpr const char* kError = "ERROR";

// Who cancelled a run the kernel stopped, as RunRow::cancelled_by.
inline constexpr const char* kCancelledByKernel = "kernel";

// Why a run was terminated rather than finished (RunRow::end_cause); empty
// for a run that ended on its own, failed or not.
// An operator cancelled it (end_by, end_reason).
inline constexpr const char* kEndOperator = "operator";
// Its job type's timeout stopped it (end_limit_ms: the timeout).
inline constexpr const char* kEndTimeout = "timeout";
// The kernel stopped it while stopping (end_by "kernel").
inline constexpr const char* kEndShutdown = "shutdown";
// A kernel died with it in flight; closed when a kernel started again.
inline constexpr const char* kEndCrash = "crash";
// An operator closed it after it ran too long and was flagged stale (end_by,
// end_reason).
inline constexpr const char* kEndStale = "stale";

// The status a run is shown with: pending | running | normal | warning |
// error | cancelled | timed_out | stopped | recovered. Only "error" is a
// failure: a run an operator cancelled is "cancelled", one its timeout
// stopped "timed_out", one stopped at the kernel's shutdown "stopped", one
// closed after a crash or after it was flagged stale "recovered" (the cause
// is `end_cause`). A row stored before causes were (cancelled_by set, no
// cause) is "cancelled".
inline std::string run_status(const std::string& phase, const std::string& outcome, const std::string& cancelled_by,
                              const std::string& end_cause = {}) {
  if (phase == kPending) return "pending";
  if (phase == kRunning) return "running";
  if (end_cause == kEndOperator) return "cancelled";
  if (end_cause == kEndTimeout) return "timed_out";
  if (end_cause == kEndShutdown) return "stopped";
  if (end_cause == kEndCrash || end_cause == kEndStale) return "recovered";
  if (!cancelled_by.empty()) return "cancelled";
  if (outcome == kNormal) return "normal";
  if (outcome == kWarning) return "warning";
  if (outcome == kError) return "error";
  std::string s;
  for (char c : outcome) s.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  return s;
}

// One run (the seed's "job").
struct RunRow {
  int64_t id = 0;  // job number, assigned by the store
  std::string job_type;
  std::string scheduled_job_id;  // empty for ad-hoc runs
  int64_t slot_ms = 0;           // schedule slot; 0 for non-scheduled runs
  std::string phase = kPending;
  std::string outcome = kNormal;
  std::string trigger = "manual";  // schedule | manual | retry | chain | recovery
  std::string params_json = "{}";
  std::string target_tenant;
  bool dry_run = false;
  int64_t range_start_ms = 0, range_end_ms = 0;
  std::string user_id, role, scope, reason;  // the triggering user, captured at creation
  int64_t parent_run_id = 0;
  bool hold = false, terminated = false, stale = false;
  int32_t priority = 0;
  std::string pool = "default";
  int64_t scheduled_ms = 0;  // when it should start
  int64_t created_ms = 0, started_ms = 0, finished_ms = 0;
  int32_t exit_code = 0;
  std::string summary;
  double progress = 0;
  std::string progress_message;
  std::string output_json;
  std::string node;  // the kernel that ran it
  // Who cancelled it (a user id, or kCancelledByKernel when the kernel
  // stopped); empty for a run nobody cancelled.
  std::string cancelled_by;
  // Why it was terminated (kEndOperator ... kEndStale; empty: it was not),
  // by whom (a user id, "kernel"), the operator's reason, and the timeout
  // that stopped it (ms; 0 unless end_cause is kEndTimeout).
  std::string end_cause, end_by, end_reason;
  int64_t end_limit_ms = 0;
};

// One line of a run's log.
struct LogRow {
  int64_t run_id = 0;
  int64_t seq = 0;  // 1, 2, ... within the run
  int64_t time_ms = 0;
  int32_t level = 2;
  std::string step;
  std::string message;
};

// One step (action) of a run.
struct StepRow {
  int64_t run_id = 0;
  int32_t seq = 0;
  std::string step_id;
  int64_t start_ms = 0, end_ms = 0;
  std::string outcome = kNormal;
  std::string summary;
};

// One event of the kernel's event log (kernel/events): what happened, in the
// order it was committed. kernel/events builds the document (payload_json);
// the store keeps it as it is.
struct EventRow {
  int64_t seq = 0;  // its place in the log, assigned by the store when written
  int64_t time_ms = 0;
  std::string kind;          // "run.completed", "alert.opened", "plugin.<plugin id>.<name>"
  std::string scope;         // the hierarchy node it concerns ("platform" when none)
  std::string scope_path;    // that node and its ancestors: "/platform/.../<scope>/"
  std::string subject;       // what it is about: "run:123", "alert:45"; may be empty
  std::string payload_json;  // the event document, a JSON object
};

// A reader of the event log and the last event it acknowledged.
struct EventConsumer {
  std::string id;
  int64_t seq = 0;       // every event up to this one is handled
  int64_t acked_ms = 0;  // when it last acknowledged
};

// The end of a run, with what it wrote.
struct Completion {
  int64_t run_id = 0;
  std::string outcome = kNormal;
  bool terminated = false;
  int64_t finished_ms = 0;
  int32_t exit_code = 0;
  std::string summary;
  double progress = 0;
  std::string progress_message;
  std::string output_json;
  std::string cancelled_by;  // as RunRow::cancelled_by
  // As RunRow's: why it was terminated, stored only by the completion that
  // completes the run.
  std::string end_cause, end_by, end_reason;
  int64_t end_limit_ms = 0;
  std::vector<LogRow> logs;  // lines not yet stored
  std::vector<StepRow> steps;
  // Event-log rows written with it, in the same transaction, only when this
  // completion is the one that completes the run (not for a run completed
  // already): each run's events are written once.
  std::vector<EventRow> events;
  // Fencing (several kernels on one store): with an epoch, the result is
  // stored only while the run is still claimed by `node` at `epoch`; a run
  // another kernel took over (its node's lease lapsed) keeps the takeover's
  // result and this one is dropped with its lines and steps. 0: unfenced
  // (an operator's recovery, a single kernel).
  std::string node;
  int64_t epoch = 0;
};

// A kernel sharing the store with others: a node of the cluster, which the
// admin API lists as a worker. A node holds a lease it renews with its
// heartbeat; a node whose lease lapsed is dead, and its runs are taken over.
struct ClusterNode {
  std::string id;         // the kernel's node name (kernel.node_name)
  std::string version;    // the kernel's version
  std::string pools;      // "default:4,reports:1"
  std::string plugins;    // the plugins loaded, comma-separated
  std::string job_types;  // the job types it runs, comma-separated
  int64_t started_ms = 0, heartbeat_ms = 0, lease_until_ms = 0;
  // idle | busy | draining (claims nothing new) | drained | dead
  std::string status = "idle";
  std::string drain_reason;
  // Moves on at each registration: claims and results carry it, so a node
  // that was declared dead and comes back cannot store what it held.
  int64_t epoch = 0;
};

// Hint::due_ms when no hint named runs (only cancels came).
inline constexpr int64_t kNoHintDue = INT64_MAX;

// What the hints of other kernels said (Store::wait_hint).
struct Hint {
  bool cancels = false;  // a cancel was requested
  // The earliest scheduled start of the runs created or released (at most
  // now for runs due now); kNoHintDue if no hint named runs.
  int64_t due_ms = kNoHintDue;
  // Why hints cannot be heard now (the listening connection failed); empty
  // while they can.
  std::string unheard;
};

// A claim of runs for one node (Store::claim_runs): the runs `ids` (ones
// this node created and queued itself), or else up to `limit` due PENDING
// runs of `job_types`, in claim order (priority, scheduled start, id). Runs
// locked by another node's claim are skipped, not waited for. Nothing is
// claimed unless the node is registered at `epoch` and not dead.
struct ClaimRequest {
  std::string node;
  int64_t epoch = 0;
  std::vector<int64_t> ids;
  std::vector<std::string> job_types;
  size_t limit = 1;
  int64_t now_ms = 0;      // due: scheduled_ms <= now_ms
  int64_t started_ms = 0;  // the start stored (0: now_ms)
};

// Builds the event-log rows of a run (flag_stale), inside the store's
// transaction.
using RunEventsOf = std::function<void(const RunRow& run, std::vector<EventRow>* out)>;

// One row of the audit trail.
struct AuditRow {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::string actor, role, action, target, reason, params_json, outcome, source;
};

// A recurring job: a job type with a schedule and parameters.
struct ScheduledJob {
  std::string id;
  std::string job_type;
  std::string description;
  std::string owner;
  std::string planning = "automatic";  // automatic | scheduled | disabled
  std::string cron;                    // for planning=scheduled
  std::string time_zone = "UTC";
  int32_t jitter_minutes = 0;
  std::string params_json = "{}";
  bool enabled = true;
  std::string scope = "platform";  // "platform", "distributor:x", "partner:y", "tenant:z"
  std::string region;
  std::string report_recipients;  // comma-separated e-mail addresses
  int64_t next_run_ms = 0;        // 0: none
  int64_t created_ms = 0, updated_ms = 0;
};

// Filters for listing runs; empty fields do not filter.
struct RunFilter {
  std::string job_type, scheduled_job_id, phase, outcome;
  // Set: only completed runs someone cancelled (true), or only runs nobody
  // cancelled (false).
  std::optional<bool> cancelled;
  // Set: only runs terminated for one of these causes (RunRow::end_cause),
  // or with {""} only runs not terminated for any cause.
  std::optional<std::vector<std::string>> end_causes;
  std::string trigger;  // schedule | manual | retry | chain | recovery
  // Only runs created at or after since_ms, and before until_ms (0: no bound).
  int64_t since_ms = 0, until_ms = 0;
  // Keyset paging on the id, the list's order (ids only grow, so a page
  // stays put while runs are added): only runs older than before_id; or,
  // when after_id is set, only runs newer than it, the oldest first (the
  // page before, read backwards). 0: no bound.
  int64_t before_id = 0, after_id = 0;
  // Set: only the runs seen from a scope whose nodes these are (the scope
  // and every node under it), as the jobs service sees a run: through its
  // scheduled job's scope when the job exists; else through its target
  // tenant's node ("tenant:<target_tenant>"); else through its scope
  // ("platform" when empty). The database filters, so a page holds `limit`
  // such runs when there are that many.
  std::optional<std::vector<std::string>> seen_from;
  // Set: only the runs with these ids.
  std::optional<std::vector<int64_t>> ids;
  size_t limit = 50;
};

// One scheduled job with its latest run, for the inventory.
struct InventoryRow {
  ScheduledJob job;
  int64_t last_run_id = 0;  // 0: never ran
  std::string last_phase, last_outcome;
  int64_t last_created_ms = 0, last_finished_ms = 0;
  std::string last_cancelled_by;  // as RunRow::cancelled_by
  std::string last_end_cause;     // as RunRow::end_cause
  int64_t last_started_ms = 0;    // 0: it has not started
};

// How many runs of one job type are in one state (Store::run_counts).
struct RunCount {
  std::string job_type;
  std::string phase, outcome;  // as RunRow
  bool cancelled = false;      // RunRow::cancelled_by is set
  std::string end_cause;       // as RunRow::end_cause
  int64_t count = 0;
};

// Runs counted together for the overview (Store::run_summary): those of one
// group alike in what decides who sees them (Visibility::run) and in state.
struct RunSummaryRow {
  std::string scheduled_job_id, job_type, target_tenant, scope;  // as RunRow
  std::string phase;
  // Completed runs: as RunRow, and the hour they finished in (ms /
  // 3,600,000). Open runs: empty and 0.
  std::string outcome, end_cause;
  bool cancelled = false;  // RunRow::cancelled_by is set
  int64_t hour = 0;
  // Open runs: their pool, whether held and whether due (scheduled at or
  // before the time asked about), and the earliest scheduled time.
  std::string pool;
  bool hold = false, due = false;
  int64_t oldest_scheduled_ms = 0;
  int64_t count = 0;
  int64_t last_id = 0;  // the newest run of the group
};

// Which failed runs Store::failure_groups counts.
struct FailureQuery {
  int64_t since_ms = 0;     // runs created at or after this time
  bool terminated = false;  // also runs terminated for a cause (cancelled, timed out, stopped, recovered)
  // As RunFilter::seen_from.
  std::optional<std::vector<std::string>> seen_from;
  // Per job key (the scheduled job's id, else "type:<job type>"): only the
  // runs newer than this run id.
  std::map<std::string, int64_t> after;
  std::vector<int64_t> except;  // runs left out, whatever their job
};

// The failed runs of one job (or of one job type, for runs of no job).
struct FailureGroup {
  std::string scheduled_job_id, job_type;  // as RunRow
  int64_t count = 0;
  int64_t last_id = 0;  // the newest of them
};

// Filters for the engine's inventory; empty fields do not filter.
struct InventoryFilter {
  std::string status;  // running | pending | normal | warning | error | cancelled | never; or several, comma-separated
  std::string text;    // case-insensitive part of id, type or description
  std::string job_type;
  std::string scope;  // exact node, or everything under it ("tenant:acme" under "partner:p" is not known here)
  std::string region;
};

// A node of the tenancy hierarchy: Platform > Distributor > Partner > Tenant
// > Subscription. Ids are "<kind>:<name>" ("tenant:acme"); the root is
// "platform".
struct Node {
  std::string id;
  std::string kind;  // distributor | partner | tenant | subscription
  std::string name;  // display name
  std::string parent;
  int64_t created_ms = 0;
};

// A user of the admin API: one role at one scope node.
struct User {
  std::string id;
  std::string name;
  std::string role;   // PlatformAdministrator ... TenantUser
  std::string scope;  // a node id
  bool disabled = false;
  int64_t created_ms = 0;
};

// An API token, stored only as the SHA-256 of its text.
struct TokenRow {
  std::string id;  // public handle, for listing and revoking
  std::string user_id;
  std::string hash;  // lower-case hex SHA-256 of the token text
  std::string label;
  int64_t created_ms = 0, expires_ms = 0, revoked_ms = 0;  // 0: never / not revoked
};

// One alert (kernel/alerts). Times are ms since the epoch; 0 and empty
// strings mean "not set" (stored as NULL where the alert JSON shows null).
struct AlertRow {
  int64_t id = 0;      // assigned by the store
  std::string source;  // the alert source's id, or "custom"
  std::string plugin;  // the plugin that raised it ("" for custom alerts)
  std::string type;
  std::string severity = "warning";  // info | warning | critical
  std::string area, title, message, related_type, related_id;
  std::string scope;        // a hierarchy node
  std::string scope_level;  // the node's kind: platform | distributor | partner | tenant | subscription
  std::string scope_path;   // "/platform/distributor:d1/.../<scope>/": the node and its ancestors
  bool platform_only = false, custom = false;
  std::string details_json = "{}";
  std::string status = "open";  // open | acknowledged | escalated | closed
  int32_t escalation_level = 0;
  std::string escalated_rules;  // names of the escalation rules that fired for it, ',' around each
  int64_t first_seen_ms = 0, last_seen_ms = 0;
  int64_t occurrences = 1;
  std::string acknowledged_by;
  int64_t acknowledged_ms = 0;
  std::string closed_by;
  int64_t closed_ms = 0;
  std::string close_kind, close_reason;  // cleared | expired | manual
  int64_t silenced_until_ms = 0;
  int64_t previous_id = 0;
  bool flapping = false;
  int32_t clean_sweeps = 0;  // successful full sweeps in a row without it

  bool closed() const { return closed_ms != 0; }
};

// One entry of an alert's history.
struct AlertEvent {
  int64_t alert_id = 0;  // 0 in save_alerts: the alert saved with it
  int64_t seq = 0;       // 1, 2, ... within the alert; assigned by the store
  int64_t time_ms = 0;
  std::string kind;  // raised | updated | escalated | acknowledged | silenced | closed | reopened_as
  std::string actor, reason;
  std::string details_json = "{}";
};

// An alert to write with its new history entries (store::Store::save_alerts).
struct AlertSave {
  AlertRow row;  // id 0: inserted (the store assigns the id); else updated
  std::vector<AlertEvent> events;
};

// Builds the event-log rows of a saved alert once its id is known
// (Store::set_alert_events).
using AlertEventsOf = std::function<void(const AlertSave& saved, std::vector<EventRow>* out)>;

// Which alerts a reader may see, applied inside the query. `all`: every
// alert. Otherwise platform-only alerts are left out, and an alert is seen
// when its scope_path starts with `path` (the reader's subtree; empty: no
// limit), its level is one of `levels`, and, with `exact_scope`, its scope
// is that node.
struct AlertView {
  bool all = false;
  std::string path;
  std::vector<std::string> levels;
  std::string exact_scope;
};

// Filters, order and page of an alert listing. Empty fields do not filter.
struct AlertQuery {
  AlertView view;
  std::vector<std::string> statuses;  // any of these
  std::string severity, area, source, related_type, related_id;
  std::string scope_path;          // alerts at or under the node with this path
  std::string text;                // in the title or message
  int64_t from_ms = 0, to_ms = 0;  // last_seen_ms range, inclusive; 0: open-ended
  // Extra filters for the kernel's own checks.
  int64_t first_seen_before_ms = 0;  // first_seen_ms <= this; 0: any
  std::optional<bool> acknowledged;
  // Order: "last_seen", "first_seen" or "severity" (the rank), then id, in
  // the same direction.
  std::string sort = "last_seen";
  bool descending = true;
  // Keyset paging: only alerts after (sort key, id) in that order.
  std::optional<std::pair<int64_t, int64_t>> after;
  size_t limit = 50;  // 0: no limit
};

// Alerts counted by status, severity and source.
struct AlertCount {
  std::string status, severity, source;
  int64_t count = 0;
};

// Reads return UNAVAILABLE naming the cause when the store cannot be read
// (an I/O error, a damaged file, a connection that cannot be opened), never
// an empty result or NOT_FOUND in its place: NOT_FOUND means the read
// succeeded and nothing matched.
// A column value of a plugin's row, typed as the database returned it.
struct Value {
  enum class Kind { null, integer, real, text, blob };
  Kind kind = Kind::null;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // the text, or the blob's bytes
};
using TypedRow = std::vector<Value>;

// One statement of a plugin's transaction ($1..$n text parameters), and
// what it gave: rows changed, rows returned (a SELECT, or RETURNING).
struct PluginStatement {
  std::string sql;
  std::vector<std::optional<std::string>> params;
};
struct PluginResult {
  int64_t changed = 0;
  std::vector<TypedRow> rows;
};

// The prefix of the tables plugin `plugin_id` may use: "p_", the id with
// '-' and '.' as '_', "_" ("flag-store" -> "p_flag_store_").
std::string plugin_table_prefix(const std::string& plugin_id);

class Store {
 public:
  virtual ~Store() = default;

  // --- schema
  // Applies the migrations of `owner` not yet applied, each in its own
  // transaction, recording version, name and time. A failing migration is
  // rolled back and reported with its version and the database's message.
  virtual Status migrate(const std::string& owner, const std::vector<Migration>& migrations) = 0;
  // Every migration applied, by owner and version.
  virtual StatusOr<std::vector<AppliedMigration>> applied_migrations() = 0;
  // Every recorded attempt to apply a migration, oldest first.
  virtual StatusOr<std::vector<MigrationAttempt>> migration_attempts() = 0;

  // --- scheduled jobs
  // Creates a scheduled job; CONFLICT if the id exists.
  virtual Status create_scheduled_job(ScheduledJob job) = 0;
  // Replaces the mutable fields (not id, job type or description).
  virtual Status update_scheduled_job(const ScheduledJob& job) = 0;
  // The scheduled job with this id; NOT_FOUND if there is none.
  virtual Status get_scheduled_job(const std::string& id, ScheduledJob* out) = 0;
  // Deletes the scheduled job `id` unless a run of it is PENDING or RUNNING,
  // in one step that run creation (create_runs) serializes with, so no run
  // of it is stored once it is deleted: CONFLICT naming the open runs
  // ("scheduled job 'x' has run 5 pending or running"), NOT_FOUND if there
  // is no such job. Its runs stay, keeping its id (RunRow::scheduled_job_id)
  // for the history.
  virtual Status delete_scheduled_job(const std::string& id) = 0;
  // Every scheduled job, ordered by id.
  virtual StatusOr<std::vector<ScheduledJob>> list_scheduled_jobs() = 0;
  virtual Status set_next_run(const std::string& id, int64_t next_run_ms) = 0;
  // The same for many jobs, in one transaction.
  virtual Status set_next_runs(const std::vector<std::pair<std::string, int64_t>>& next_runs) = 0;

  // --- runs (durable once the call returns)
  // Inserts runs, assigning ids. A scheduled run whose (scheduled job, slot)
  // already exists is not inserted and gets id 0: each slot fires once. A
  // run that is not COMPLETED starts with its phase, outcome and hold only
  // (no start, node, stale flag or result copied from elsewhere); a
  // COMPLETED one (an import) keeps its result, and gets its creation time
  // as finish time if it has none.
  // With `audit` (one row per run, same order), the audit rows are written in
  // the same transaction, each outcome set to "ok: run <id>".
  // A run of a scheduled job that does not exist (deleted, by this kernel or
  // another) is refused, unless it is a COMPLETED run of no slot (a record,
  // which starts nothing): then nothing is stored (ids 0), the answer is
  // NOT_FOUND "scheduled job 'x' was deleted" and *gone (if given) gets the
  // ids of the jobs missing. The check is in the creating transaction, which
  // a delete of the job (delete_scheduled_job) waits for or is waited for by.
  virtual Status create_runs(std::vector<RunRow>* runs, std::vector<AuditRow>* audit = nullptr,
                             std::vector<std::string>* gone = nullptr) = 0;
  // PENDING -> RUNNING for each id, with start time and node. Ids that are
  // not PENDING (or are held) are left alone and returned in *skipped.
  // With `completed_first`, those completions are stored first in the same
  // transaction (a worker's previous batch and its next claim share one
  // commit).
  virtual Status mark_running(const std::vector<int64_t>& ids, int64_t now_ms, const std::string& node,
                              std::vector<int64_t>* skipped,
                              const std::vector<Completion>* completed_first = nullptr) = 0;
  // RUNNING/PENDING -> COMPLETED, storing logs, steps and the result.
  virtual Status complete_runs(const std::vector<Completion>& completions) = 0;
  // Closes runs a stopped kernel left in flight (as complete_runs) and
  // creates the runs that repeat them (as create_runs, assigning ids), in one
  // transaction: either both are stored or neither is. A repeat of a run of
  // a scheduled job that does not exist is not created (id 0).
  virtual Status recover_runs(const std::vector<Completion>& closed, std::vector<RunRow>* requeued) = 0;
  // Completes a run only if it is still PENDING; *changed says whether it was.
  virtual Status complete_pending(const Completion& completion, bool* changed) = 0;
  // Appends log lines of runs in flight (for live views and crash safety).
  virtual Status append_logs(const std::vector<LogRow>& logs) = 0;
  virtual Status set_hold(int64_t run_id, bool hold) = 0;
  // The run with this id; NOT_FOUND if there is none.
  virtual Status get_run(int64_t id, RunRow* out) = 0;
  // Runs matching `filter`, newest first.
  virtual StatusOr<std::vector<RunRow>> list_runs(const RunFilter& filter) = 0;
  // Every scheduled job with its latest run, ordered by id (the engine
  // filters its cached copy: InventoryFilter).
  virtual StatusOr<std::vector<InventoryRow>> inventory() = 0;
  // Failed runs of a scheduled job (not those cancelled) per UTC day since `since_ms`: day number
  // (ms / 86,400,000) -> count. Only real failures (no end_cause); with
  // `terminated`, instead the runs terminated for a cause (cancelled, timed
  // out, stopped, recovered).
  virtual StatusOr<std::map<int64_t, int64_t>> failures_per_day(const std::string& scheduled_job_id, int64_t since_ms,
                                                                bool terminated = false) = 0;
  // Every run counted by job type, phase, outcome, whether it was
  // cancelled and its end cause (the jobs service's stats and /metrics).
  virtual StatusOr<std::vector<RunCount>> run_counts() = 0;
  // The open runs (PENDING, RUNNING), and the runs completed at or after
  // `since_ms`, counted in groups (RunSummaryRow; due: scheduled at or
  // before `now_ms`), by the database (GROUP BY), for the overview.
  virtual StatusOr<std::vector<RunSummaryRow>> run_summary(int64_t since_ms, int64_t now_ms) = 0;
  // The completed runs that failed (and those terminated, if asked) that
  // `query` keeps, counted per job by the database (GROUP BY), newest
  // group first.
  virtual StatusOr<std::vector<FailureGroup>> failure_groups(const FailureQuery& query) = 0;
  // Runs in a phase (PENDING runs ordered by priority desc, scheduled time, id).
  virtual StatusOr<std::vector<RunRow>> runs_in_phase(const std::string& phase, size_t limit) = 0;
  // Finds open (PENDING or RUNNING) runs the store's list of open runs lost
  // and lists them again; *repaired gets how many. Looks at up to `max_ids`
  // run ids not looked at before (it remembers how far it got), so calling
  // it at every start and housekeeping checks each run once. Only the
  // PostgreSQL store has had such runs (a run committed after a later one,
  // before that was fixed); the embedded store finds none.
  virtual Status repair_open_runs(int64_t max_ids, int64_t* repaired);

  // --- several kernels on one store (the PostgreSQL store; the embedded
  // store serves one kernel and answers UNSUPPORTED).
  // Registers (or registers again) node->id with a new epoch (*node gets
  // it), status idle, its lease until node->lease_until_ms.
  virtual Status register_node(ClusterNode* node);
  // Renews the lease of `id` at `epoch` and stores its status (busy or
  // idle; a node being drained stays draining or drained); *stored gets the
  // row as stored. CONFLICT if the node is not registered at that epoch or
  // was declared dead: it is fenced and must register again.
  virtual Status heartbeat_node(const std::string& id, int64_t epoch, const std::string& status, int64_t now_ms,
                                int64_t lease_until_ms, ClusterNode* stored);
  // Declares dead every node whose lease ended before `now_ms` (each by one
  // caller only); *died gets them.
  virtual Status expire_nodes(int64_t now_ms, std::vector<ClusterNode>* died);
  // Every node registered, ordered by id.
  virtual StatusOr<std::vector<ClusterNode>> cluster_nodes();
  // Asks node `id` to drain (stop claiming, finish its runs): NOT_FOUND for
  // an unknown node, CONFLICT for a dead one.
  virtual Status drain_node(const std::string& id, const std::string& reason);
  // Claims runs for a node as `request` says, atomically across kernels
  // (PENDING -> RUNNING with the node and epoch); *claimed gets the runs
  // claimed, as stored. `completed_first` as in mark_running.
  virtual Status claim_runs(const ClaimRequest& request, std::vector<RunRow>* claimed,
                            const std::vector<Completion>* completed_first = nullptr);
  // RUNNING runs of `job_types` whose claim is void: their node was
  // declared dead, or has registered again since (a newer epoch).
  virtual StatusOr<std::vector<RunRow>> orphaned_runs(const std::vector<std::string>& job_types, size_t limit);
  // Records a cancel of RUNNING run `run_id` for the node that runs it;
  // CONFLICT if it is not running.
  virtual Status request_cancel(int64_t run_id, const std::string& by, const std::string& reason);
  // The cancels recorded for the runs `node` runs at `epoch`: run -> (by, reason).
  virtual StatusOr<std::map<int64_t, std::pair<std::string, std::string>>> cancel_requests(const std::string& node,
                                                                                           int64_t epoch);
  // Waits up to `timeout_ms` for hints that runs were created or released
  // or a cancel was requested (kernels' NOTIFYs); true if any came, with
  // what they said in *hint (every hint queued is taken at once). Only a
  // hint: a caller that misses one finds the work at its next poll. One
  // caller at a time.
  virtual bool wait_hint(int64_t timeout_ms, Hint* hint);
  // The earliest scheduled start later than `after_ms` among the PENDING
  // runs of `job_types` not held; 0 if there is none. What an idle kernel
  // waits for before it claims again (hints only wake it to look).
  virtual StatusOr<int64_t> next_due(const std::vector<std::string>& job_types, int64_t after_ms);
  // Log lines of a run with seq > after_seq, oldest first.
  virtual StatusOr<std::vector<LogRow>> logs(int64_t run_id, int64_t after_seq, size_t limit) = 0;
  // The last `n` log lines of a run, oldest first.
  virtual StatusOr<std::vector<LogRow>> last_logs(int64_t run_id, size_t n) = 0;
  // The steps of a run, in order.
  virtual StatusOr<std::vector<StepRow>> steps(int64_t run_id) = 0;
  // Flags RUNNING runs started before `before_ms` as stale; returns how many.
  // With `events`, the event-log rows it builds for each run flagged are
  // written in the same transaction.
  virtual Status flag_stale(int64_t before_ms, int64_t* count, const RunEventsOf& events = {}) = 0;
  // Deletes at most `batch` completed runs finished before `before_ms`, with
  // their logs and steps; returns how many runs were deleted.
  virtual Status prune(int64_t before_ms, size_t batch, int64_t* deleted) = 0;
  // Deletes at most `batch` of the oldest audit rows written before
  // `before_ms`; returns how many were deleted.
  virtual Status prune_audit(int64_t before_ms, size_t batch, int64_t* deleted) = 0;

  // OK if the store takes writes now; otherwise UNAVAILABLE with the cause:
  // writes are refused after a failed flush, less than 1 MiB is left on its
  // disk or within its size limit, the last write failed for lack of space
  // or an I/O error and none has succeeded since, or a small test write
  // fails. Cheap enough to be asked on every readiness check (a test write
  // at most about once a second while the store is healthy).
  virtual Status writable() = 0;

  // Moves committed pages from the write-ahead log into the database file
  // without blocking writers; called periodically so commits on the hot path
  // never pay for a checkpoint.
  virtual void checkpoint() = 0;

  // --- plugins' own tables (opk.store/1), fenced: every call names the
  // plugin (`owner`), and its SQL may reach only tables, indexes, views and
  // triggers named plugin_table_prefix(owner)...; anything else (the
  // kernel's tables, another plugin's, the schema, PRAGMA, ATTACH,
  // transaction control) is refused with PERMISSION, naming what.
  // One statement, in its own transaction. CONFLICT for a constraint
  // violation, INVALID_ARGUMENT for bad SQL or parameters.
  virtual Status plugin_execute(const std::string& owner, const std::string& sql,
                                const std::vector<std::optional<std::string>>& params, int64_t* changed) = 0;
  // One read-only query; every column as text (nullopt for NULL).
  virtual Status plugin_query(const std::string& owner, const std::string& sql,
                              const std::vector<std::optional<std::string>>& params,
                              std::vector<std::vector<std::optional<std::string>>>* rows) = 0;
  // One read-only query; values typed.
  virtual Status plugin_query_typed(const std::string& owner, const std::string& sql,
                                    const std::vector<std::optional<std::string>>& params,
                                    std::vector<TypedRow>* rows) = 0;
  // `statements` in one transaction: all or nothing. Each may return rows
  // (typed). On failure nothing is changed and *failed (may be null) gets
  // the index of the statement that failed.
  virtual Status plugin_transaction(const std::string& owner, const std::vector<PluginStatement>& statements,
                                    std::vector<PluginResult>* results, size_t* failed) = 0;
  // Unfenced forms of plugin_execute and plugin_query, for the kernel's
  // own tools and tests.
  // Runs one statement with text parameters ($1..$n; nullopt binds NULL).
  // CONFLICT for a constraint violation, INVALID_ARGUMENT for bad SQL.
  virtual Status execute(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                         int64_t* changed) = 0;
  // Runs one query; every column as text (nullopt for NULL).
  virtual Status query(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                       std::vector<std::vector<std::optional<std::string>>>* rows) = 0;
  virtual const char* dialect() const = 0;
  // A count that moves after every committed change to runs or scheduled
  // jobs: equal counts mean nothing changed (caches of derived views compare
  // it). Changes made through this object move it at once; on PostgreSQL,
  // changes made through another store on the same database (another
  // kernel's) move it too, a few milliseconds after they commit (each store
  // publishes its changes to its store_changes row).
  // The embedded store serves one process, so its count is this object's.
  virtual uint64_t generation() const = 0;

  // --- tenancy and identities
  // Adds a node; CONFLICT if the id exists.
  virtual Status add_node(const Node& node) = 0;
  // Every node, ordered by id.
  virtual StatusOr<std::vector<Node>> list_nodes() = 0;
  // Adds a user; CONFLICT if the id exists.
  virtual Status add_user(const User& user) = 0;
  // The user with this id; NOT_FOUND if there is none.
  virtual Status get_user(const std::string& id, User* out) = 0;
  // Every user, ordered by id.
  virtual StatusOr<std::vector<User>> list_users() = 0;
  // Disables a user and revokes their tokens in one transaction; NOT_FOUND
  // for an unknown user. *revoked gets the number of tokens revoked.
  virtual Status disable_user(const std::string& id, int64_t now_ms, int64_t* revoked) = 0;
  virtual Status add_token(const TokenRow& token) = 0;
  // The token with this hash, revoked or not; NOT_FOUND if none.
  virtual Status find_token(const std::string& hash, TokenRow* out) = 0;
  // The tokens of a user, oldest first.
  virtual StatusOr<std::vector<TokenRow>> list_tokens(const std::string& user_id) = 0;

  // --- audit
  // Appends audit rows in one transaction.
  virtual Status audit(const std::vector<AuditRow>& rows) = 0;
  // The newest `limit` audit rows, newest first.
  virtual StatusOr<std::vector<AuditRow>> audit_rows(size_t limit) = 0;

  // --- alerts (kernel/alerts)
  // Inserts or updates the alerts, and appends their events, in one
  // transaction: all or nothing. Inserted rows get their ids (in *saves).
  // CONFLICT naming the (source, related object) when an insert would open a
  // second alert for it; NOT_FOUND when an updated id does not exist.
  virtual Status save_alerts(std::vector<AlertSave>* saves) = 0;
  // The alert with this id; NOT_FOUND if there is none or `view` does not
  // see it.
  virtual Status get_alert(int64_t id, const AlertView& view, AlertRow* out) = 0;
  // The open alert of (source, related_type, related_id); NOT_FOUND if none.
  virtual Status find_open_alert(const std::string& source, const std::string& related_type,
                                 const std::string& related_id, AlertRow* out) = 0;
  // Alerts matching `query`, in its order, at most its limit.
  virtual StatusOr<std::vector<AlertRow>> list_alerts(const AlertQuery& query) = 0;
  // Every alert of (source, related_type, related_id), newest first, at most
  // `limit`.
  virtual StatusOr<std::vector<AlertRow>> alert_chain(const std::string& source, const std::string& related_type,
                                                      const std::string& related_id, size_t limit) = 0;
  // The history of an alert, oldest first.
  virtual StatusOr<std::vector<AlertEvent>> alert_events(int64_t alert_id) = 0;
  // Alerts `view` sees, counted per (status, severity, source).
  virtual StatusOr<std::vector<AlertCount>> alert_counts(const AlertView& view) = 0;

  // --- the event log (kernel/events). Run and alert events are written by
  // the calls above (Completion::events, flag_stale's `events`, the
  // set_alert_events builder) in their own transactions. A seq is assigned
  // when an event is written and grows with the order of commits, so a
  // reader that has read up to seq N never finds a later commit below N;
  // seqs of writes that were undone are skipped.
  // Appends events (a plugin's), assigning each its seq in *events, in one
  // transaction.
  virtual Status append_events(std::vector<EventRow>* events) = 0;
  // Appends a plugin's event under its idempotency key: the store keeps at
  // most one event per (`owner`, `key`), by a unique key of its schema, so
  // this holds across restarts and for every kernel sharing the store. The
  // first call writes the event and records the key with its seq
  // (*duplicate false); a later call with the same owner and key writes
  // nothing and gives the first event's seq (*duplicate true). event->seq
  // gets the seq either way. Keys are kept when their event is pruned.
  virtual Status append_keyed_event(const std::string& owner, const std::string& key, EventRow* event,
                                    bool* duplicate) = 0;
  // Events with seq > `after_seq`, oldest first, at most `limit`.
  virtual StatusOr<std::vector<EventRow>> events_after(int64_t after_seq, size_t limit) = 0;
  // The event with this seq; NOT_FOUND if there is none (pruned, or never
  // written).
  virtual Status get_event(int64_t seq, EventRow* out) = 0;
  // The seq of the last event written; 0 if none ever was.
  virtual int64_t last_event_seq() = 0;
  // Records that `consumer` has handled every event up to `seq`, at `now_ms`
  // (it may move back, to read again).
  virtual Status ack_events(const std::string& consumer, int64_t seq, int64_t now_ms) = 0;
  // Every consumer that acknowledged, ordered by id.
  virtual StatusOr<std::vector<EventConsumer>> event_consumers() = 0;
  // Deletes at most `batch` of the oldest events, in seq order, as long as
  // they were written before `before_ms` and their seq is at most
  // `max_seq`; the last event is kept (seqs are never handed out again).
  // *deleted gets how many.
  virtual Status prune_events(int64_t before_ms, int64_t max_seq, size_t batch, int64_t* deleted) = 0;
  // Calls `fn` with the last seq after each write that added events has
  // committed (and is durable, in durable mode), on the writing thread: it
  // wakes readers waiting for new events. Set before writes begin; `fn`
  // must not call the store.
  virtual void set_event_listener(std::function<void(int64_t last_seq)> fn) = 0;
  // Makes save_alerts write, in its transaction, the event-log rows `fn`
  // builds for each saved alert (called after the alert is written, so its
  // id is known). Set before writes begin; empty: none.
  virtual void set_alert_events(AlertEventsOf fn) = 0;
};

// Makes the process-wide SQLite settings the embedded store relies on
// (multi-thread mode, no memory statistics). SQLite takes them only before
// its first use in the process: a program that uses SQLite before it opens a
// store calls this first. open_sqlite calls it too; later calls do nothing.
void configure_sqlite();

// The embedded store's own schema migrations, in order (for upgrade tests).
const std::vector<Migration>& sqlite_kernel_migrations();

// Flushes a file to stable storage: returns 0, or the errno of the failure.
// The embedded store flushes its write-ahead log through it; tests pass one
// that delays or fails.
using FlushFile = std::function<int(int fd)>;

// How much of an existing store file is checked for damage when it is opened.
enum class OpenCheck {
  none,   // nothing: a damaged page is found when it is read
  quick,  // SQLite's quick_check: every page and b-tree, not the indexes' contents
  full,   // SQLite's integrity_check: quick_check and every index against its table
};

// Opens (creating if needed) the embedded SQLite store at `path`, in WAL
// mode. With `durable_full`, a write returns only once the log that holds it
// is flushed to disk (it survives a power loss); group-committed writes are
// flushed by a thread of the store's while the next group is written, every
// other write by its own commit. Without, writes survive a process crash
// only. `flush` defaults to fdatasync(2). `check` says how the file is
// checked first: a damaged one is refused with an error that names the path
// and says it is corrupted.
Status open_sqlite(const std::string& path, bool durable_full, std::unique_ptr<Store>* out, FlushFile flush = {},
                   OpenCheck check = OpenCheck::none);

// How the PostgreSQL store connects beyond its connection string (TLS, the
// host, the user and the password are all in the string: sslmode=require
// passes through to libpq).
struct PostgresOptions {
  size_t pool_size = 8;  // connections open at most
  // The connection string of the connection that LISTENs for other
  // kernels' hints (Store::wait_hint); empty: `conninfo`.
  std::string listen_conninfo;
  // The hot path's statements (creating, claiming and completing runs, their
  // rows and events) are prepared once per connection and executed by name;
  // false sends each unprepared, as PgBouncer before 1.21 needs in
  // transaction pooling (a prepared statement lives in one server session).
  bool prepared_statements = true;
};

// Opens the PostgreSQL store of `conninfo` (libpq's "key=value ..." form, not
// a URI), creating the kernel's tables if needed (each migration in one
// transaction, serialised across processes by an advisory lock). A server
// that cannot be reached is UNAVAILABLE naming libpq's message.
Status open_postgresql(const std::string& conninfo, const PostgresOptions& options, std::unique_ptr<Store>* out);

// The PostgreSQL store's own schema migrations, in order: the same versions
// as sqlite_kernel_migrations(), in PostgreSQL's dialect.
const std::vector<Migration>& postgresql_kernel_migrations();

}  // namespace opk::store

#endif
