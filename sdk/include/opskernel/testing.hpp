// testing.hpp -- opk::testing, a test host for plugin authors.
//
// Loads a plugin library in the test's own process, without a kernel, and
// plays the kernel's part: the host table, an in-memory store, identities,
// routes, audit, a clock the test drives. A test then runs the plugin's job
// types, alert sources, notification channels and HTTP routes and reads
// what they did:
//
//   opk::testing::Host host;
//   ASSERT_TRUE(host.load("/path/to/my_plugin.so").is_ok());
//   auto r = host.run("my-job", R"({"name":"x"})");
//   EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
//   EXPECT_TRUE(r.logged("x done"));
//
// Link Opskernel::testing (find_package(Opskernel)). docs/testing.md
// describes what the host does like the kernel and where it differs.
#ifndef OPSKERNEL_TESTING_HPP
#define OPSKERNEL_TESTING_HPP

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace opk::testing {

// The instant a Host's clock starts at: 2026-01-01T00:00:00Z, in ms since
// the Unix epoch.
inline constexpr int64_t kClockStartMs = 1767225600000;

// The time a Host's plugins see (opk_host.now_ms, the alert context's
// now_ms, step and log times). It moves only when the test moves it or a
// run waits (opk_run_context.wait). Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch, UTC.
  virtual int64_t now_ms() const = 0;
  // Moves the clock forward by `ms` (a negative `ms` moves it back).
  virtual void advance(int64_t ms) = 0;
  // Sets the clock to `ms` since the epoch.
  virtual void set(int64_t ms) = 0;
};

// One line a plugin logged: to its plugin logger (Host::log_lines) or to a
// run's or an evaluation's log.
struct LogLine {
  opk_log_level level = OPK_LOG_INFO;
  std::string text;
  // Step open when a run logged the line; empty otherwise.
  std::string step;
  // Plugin whose logger got the line (Host::log_lines only).
  std::string plugin;
};

// One step of a run, as the kernel records it.
struct Step {
  std::string id;
  opk_outcome outcome = OPK_OUTCOME_NORMAL;
  std::string summary;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// A caller: who triggered a run or sends a request. An empty role means
// nobody (an anonymous request, a schedule-triggered run).
struct Principal {
  std::string user_id;
  std::string role;
  std::string scope;
  // A PlatformAdministrator "admin" at "platform": every permission.
  static Principal administrator() { return {"admin", "PlatformAdministrator", "platform"}; }
  // Nobody: anonymous requests, schedule-triggered runs.
  static Principal none() { return {}; }
};

// How Host::run starts a run (the fields of opk_run_context).
struct RunOptions {
  bool dry_run = false;
  // Tenant the run is aimed at; empty: the whole installation.
  std::string target_tenant;
  opk_trigger trigger = OPK_TRIGGER_MANUAL;
  std::string reason;
  int64_t range_start_ms = 0;
  int64_t range_end_ms = 0;
  std::string scheduled_job_id;
  int64_t parent_run_id = 0;
  // Who started it; Principal::none() passes a principal with NULL fields,
  // as for a schedule.
  Principal triggered_by = Principal::administrator();
  // Cancels the run after this many real milliseconds, from another
  // thread, as an operator's cancel does (flag first, then the type's
  // cancel hook on that thread). Negative: never.
  int64_t cancel_after_ms = -1;
  // Cancels the run once the host's clock reaches this instant (ms since
  // the epoch), which a run's wait() gets to without sleeping: the wait
  // ends there, the hook is called from another thread and wait returns
  // OPK_ERR_CANCELLED. Negative: never.
  int64_t cancel_at_ms = -1;
};

// What a run did.
struct RunResult {
  // What the type's run returned; without calling it, OPK_ERR_NOT_FOUND
  // when no loaded plugin has the type and OPK_ERR_INVALID_ARGUMENT for
  // parameters the type's schema refuses (`error` then says why, as the
  // kernel does: "parameters: steps: Expected number ...").
  opk_status status = OPK_OK;
  // The kernel's rule: non-OK status means ERROR whatever set_result said.
  opk_outcome outcome = OPK_OUTCOME_NORMAL;
  // set_result's code; the status when the run failed with code 0.
  int32_t exit_code = 0;
  // set_result's summary; for a failure without one, its last error line;
  // "cancelled" for a cancelled run without one.
  std::string summary;
  // True when the run stopped on a cancel (the kernel's "terminated").
  bool cancelled = false;
  // Detail the plugin gave with opk_host.set_error during the run, or the
  // test host's reason for not running it.
  std::string error;
  std::vector<LogLine> log;
  std::vector<Step> steps;
  // 0..100; 100 when the run returned OK.
  double progress = 0;
  std::string progress_message;
  // The set_output_json document; empty when none.
  std::string output_json;
  int64_t run_id = 0;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;

  // True when some log line contains `text`.
  bool logged(std::string_view text) const;
};

// One alert an alert source raised, with every field it gave (NULL as empty).
struct Alert {
  opk_severity severity = OPK_SEVERITY_WARNING;
  std::string area, title, message, related_type, related_id, scope, details_json;
  // (ABI 1.3) The alert's type: the source id when the source gave none.
  std::string type;
  // (ABI 1.3) How many times escalate was called for it while open.
  int escalation_level = 0;
};

// One escalate call of an alert source (ABI 1.3).
struct Escalation {
  std::string related_type, related_id, reason;
};

// What one evaluation did.
struct Evaluation {
  opk_status status = OPK_OK;
  // set_error's detail, or the test host's reason for not evaluating.
  std::string error;
  std::vector<Alert> raised;
  // (related_type, related_id) of every clear call, in order.
  std::vector<std::pair<std::string, std::string>> cleared;
  // Every escalate call that found an open alert, in order.
  std::vector<Escalation> escalated;
  std::vector<LogLine> log;
};

// A message for Host::send and Host::deliver (the fields of
// opk_notification). Empty strings are passed as NULL.
struct Notification {
  std::vector<std::string> recipients;
  std::string subject;
  std::string body;
  std::string content_type = "text/plain";
  std::string event_json;
  // (ABI 1.4) The idempotency key, the attempt (from 1), an HTML
  // alternative to `body`, the recipient's options (JSON) and the attempt's
  // time limit (0: the channel's default).
  std::string id;
  uint32_t attempt = 1;
  std::string html_body;
  std::string options_json;
  int64_t timeout_ms = 0;
};

// (ABI 1.4) What a channel's deliver or check_recipient reported: its
// status and the fields of opk_delivery_result.
struct DeliveryResult {
  opk_status status = OPK_OK;
  int32_t code = 0;
  int64_t latency_ms = 0;
  int64_t retry_after_ms = 0;
  uint32_t flags = 0;
  // result->detail; for a failure that gave none, the set_error text or a
  // line naming the status (as the kernel's opk.channels/1 does).
  std::string detail;
  // What the plugin gave with opk_host.set_error during the call.
  std::string error;
  bool permanent() const { return (flags & OPK_DELIVERY_PERMANENT) != 0; }
  bool gone() const { return (flags & OPK_DELIVERY_GONE) != 0; }
};

// The answer to Host::request.
struct Response {
  int status = 200;
  // Lower-case names, in the order written; one content-type, last.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The value of header `name` (lower case); empty when absent.
  std::string header(std::string_view name) const;
};

// One row a plugin wrote through opk.audit/1.
struct AuditRow {
  std::string plugin;
  std::string user_id, role, scope;
  std::string action, target, reason, before_json, after_json, outcome, source;
  int64_t time_ms = 0;
};

// (ABI 1.4) One event a plugin emitted through opk.events/1 "emit".
struct Event {
  int64_t seq = 0;
  int64_t time_ms = 0;
  // The emitting plugin, and the kind: "plugin.<plugin id>.<name>".
  std::string plugin, kind;
  std::string scope, subject;
  // The payload, a JSON object ("{}" when none was given).
  std::string payload_json;
  // The idempotency key given with it; empty when none.
  std::string key;
};

// Rows of a query, values as text (SQL NULL as nullopt).
using Rows = std::vector<std::vector<std::optional<std::string>>>;

// The test host: loads plugins and calls into them as the kernel does, on
// the calling thread. Not thread-safe itself (call it from one thread);
// what it lends plugins is, as the ABI says.
class Host {
 public:
  Host();
  // Stops and unloads every loaded plugin, the last loaded first.
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Sets a plugin setting (opk_host.config_value), or a kernel one when
  // `key` starts with "kernel.". Applies to plugins loaded after the call.
  void set_setting(const std::string& key, const std::string& value);

  // Loads a plugin library: checks its entry and ABI version, reads the
  // manifest, calls init and start. The status names what failed, with
  // the plugin's set_error text.
  Status load(const std::string& path);

  // The clock every loaded plugin sees.
  Clock& clock();

  // Bounds of the cache served as opk.cache/1 (as [cache] max_bytes and
  // max_entry_bytes); the entries held so far are dropped.
  void set_cache_bounds(uint64_t max_bytes, uint64_t max_entry_bytes);
  // The cache's counters as the kernel exports them on /metrics.
  std::string cache_metrics() const;

  // Runs job type `job_type` with `params_json` on the calling thread and
  // returns what it did. The parameters ("" means {}) are first checked
  // against the type's params_schema_json, as the kernel checks them.
  RunResult run(const std::string& job_type, const std::string& params_json = "{}", const RunOptions& options = {});

  // Cancels the run in progress, as an operator's cancel: sets the flag,
  // then calls the type's cancel hook on the calling thread. Call it from
  // another thread than the one in run(). False when no run is in
  // progress or it was cancelled already.
  bool cancel_run();

  // Evaluates alert source `source_id` once at the clock's time.
  Evaluation evaluate(const std::string& source_id);
  // Alerts open after the evaluations so far, and after the raise, clear
  // and escalate calls plugins made through opk.alerts/1 for their own
  // sources: raised and not cleared, one per (source, related_type,
  // related_id).
  std::vector<Alert> open_alerts() const;

  // Delivers `message` through notification channel `channel_id`'s send.
  Status send(const std::string& channel_id, const Notification& message);
  // (ABI 1.4) Delivers `message` through channel `channel_id` on the
  // calling thread as opk.channels/1 does: its deliver, or for a channel
  // with only send, send with the flags taken from the status
  // (INVALID_ARGUMENT and PERMISSION are permanent). NOT_FOUND with detail
  // "unknown channel 'x'" when no loaded plugin has it.
  DeliveryResult deliver(const std::string& channel_id, const Notification& message);
  // (ABI 1.4) Checks `recipient` with `options_json` ("" for none) through
  // the channel's check_recipient; OK when the channel has none.
  DeliveryResult check_recipient(const std::string& channel_id, const std::string& recipient,
                                 const std::string& options_json = "");

  // Serves one request through the routes plugins added
  // (opk.http-routes/1), as the kernel does: 404, 405, 401 for a route
  // that is not anonymous without a principal, 403 when the principal's
  // role lacks the route's permission (see grant). `target` is the path
  // with an optional query ("/api/v1/x?a=1"), percent-decoded.
  Response request(const std::string& method, const std::string& target, const std::string& body = "",
                   const Principal& principal = Principal::administrator(),
                   const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Grants `permission` to `role`. PlatformAdministrator and System have
  // every permission without grants.
  void grant(const std::string& role, const std::string& permission);
  // Registers an API token for opk.identity/1.
  void add_token(const std::string& token, const std::string& user_id, const std::string& role,
                 const std::string& scope);
  // Places hierarchy node `node` ("tenant:acme") under `parent`
  // ("partner:p1") for opk.identity/1's contains, node_exists and (ABI
  // 1.6) node_path. "platform" contains every node.
  void add_node(const std::string& node, const std::string& parent);

  // Where the plugins loaded after the call keep their tables
  // (opk.store/1): "sqlite", the default, an in-memory SQLite database; or
  // "postgresql", a schema made for this Host alone on the server
  // `conninfo` names (a libpq connection string; "" reads OPK_TEST_PG),
  // dropped with the roles made for its plugins once the Host goes (in the
  // background: the process waits for the drops before it ends). The
  // kernel's fence holds on both, as in the kernel on that store: each
  // plugin reaches only its own tables (p_<id>_...), through portable SQL
  // with $1..$n parameters. Call it before the first load; the status
  // names what failed (no server given, the server refusing, a plugin
  // loaded already).
  Status use_store(const std::string& backend, const std::string& conninfo = "");
  // The dialect plugins are told (opk_store_v1.dialect): "sqlite" or
  // "postgresql".
  std::string store_dialect() const;

  // Runs `sql` on the store with no fence, for the test to read what
  // plugins wrote (SQLite's or PostgreSQL's SQL, as the store is; on
  // PostgreSQL every value is read as its text). Throws
  // std::invalid_argument naming the SQL error.
  Rows store_rows(const std::string& sql) const;
  // Rows written through opk.audit/1, oldest first.
  std::vector<AuditRow> audit_rows() const;
  // Lines plugins wrote to their loggers (opk_host.log), oldest first.
  std::vector<LogLine> log_lines() const;
  // (ABI 1.4) Events plugins emitted through opk.events/1, oldest first.
  // An emit whose key the plugin had used already wrote none, as in the
  // kernel.
  std::vector<Event> events() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace opk::testing

#endif  // OPSKERNEL_TESTING_HPP
