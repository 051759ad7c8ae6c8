// engine.h -- the job engine: scheduled jobs, the scheduler that wakes when
// the next slot is due, worker pools that run job types, and the operator
// actions (run now, cancel, retry, hold, recover). Every state change goes to
// the store first; a run is recorded RUNNING before its plugin is called.
// Thread-safe; start()/stop() from the control thread. The implementation is
// split by job; engine_internal.h lists its files.
#ifndef OPSKERNEL_KERNEL_JOBS_ENGINE_H
#define OPSKERNEL_KERNEL_JOBS_ENGINE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "events/log.h"
#include "jobs/run.h"
#include "loader/manifest.h"
#include "store/store.h"

namespace opk::jobs {

// Who asks for an action (captured with the run and in the audit row).
struct Actor {
  std::string user_id, role, scope, source;
};

// A manual run request.
struct RunNow {
  std::string scheduled_job_id;            // run this scheduled job now, or
  std::string job_type;                    // an ad-hoc run of a job type
  std::optional<std::string> params_json;  // default: the scheduled job's parameters, else "{}"
  std::string target_tenant;
  bool dry_run = false;
  int64_t range_start_ms = 0, range_end_ms = 0;
  std::string reason;  // required
  Actor actor;
  int64_t start_at_ms = 0;  // scheduled start (ms since the epoch); 0: now
};

// The outcome of a scheduled slot a run gate skipped (EngineOptions::skip_slot).
inline constexpr const char* kSkipped = "SKIPPED";

// A worker pool and its concurrency limit.
struct PoolSpec {
  std::string name;
  int concurrency = 1;
};

struct EngineOptions {
  std::string node = "node";
  std::vector<PoolSpec> pools = {{"default", 4}};
  int64_t stale_after_ms = 24LL * 3600 * 1000;
  bool misfire_catch_up = true;             // after downtime: one catch-up run (true) or skip (false)
  int64_t safety_tick_ms = 10 * 60 * 1000;  // the scheduler re-checks at least this often
  int retention_days = 90;                  // 0: keep forever
  int audit_retention_days = 365;           // audit rows; 0: keep forever
  size_t prune_batch = 1000;
  // Asked before the run of a scheduled slot falling due is created (the
  // kernel's run gates, opk.run-gates/1): true to skip the slot, with
  // *reason; it is then stored as a COMPLETED run with outcome kSkipped
  // whose summary is the reason, and never queued. Null: every slot runs.
  std::function<bool(const store::RunRow& run, std::string* reason)> skip_slot;
  int64_t timeout_grace_ms = 30000;  // after a timeout's cancel, before the run is marked ERROR
  int64_t log_flush_ms = 1000;       // in-flight log lines reach the store at least this often
  // The event log: each run's end is written with its event(s) in the same
  // transaction, and the minute's housekeeping prunes it. Null: no events
  // (tests of the engine alone). REQUIRES: outlives the engine.
  events::Log* events = nullptr;

  // Several kernels on one store (the PostgreSQL store): the node registers
  // with a lease it renews every lease_ms / 3; idle workers claim due runs
  // of the types loaded here from the store (FOR UPDATE SKIP LOCKED) at the
  // start of the next one (read from the store, moved sooner by another
  // kernel's hint) and at least every poll_ms; results are
  // fenced by the node's epoch; the runs of nodes whose lease lapsed are
  // taken over; cancels reach the node that runs the run. false: one kernel
  // (the embedded store), runs kept in memory as before.
  bool cluster = false;
  int64_t lease_ms = 15000;
  int64_t poll_ms = 1000;
  std::string version;  // the kernel's, and the plugins it loaded (comma-separated), as registered
  std::string plugins;
  // The job types loaded here (a node claims only these). Empty: none.
  std::function<std::vector<std::string>()> job_types;
};

// A kernel of the cluster as the admin API lists it (Engine::workers).
struct Worker {
  store::ClusterNode node;
  bool self = false;     // this kernel
  size_t in_flight = 0;  // runs running here (self only)
};

// What the engine needs to call a job type: resolved by the kernel.
struct TypeRef {
  const loader::JobType* type = nullptr;
  opk_plugin* instance = nullptr;
};
using TypeResolver = std::function<TypeRef(const std::string& job_type)>;

// A run with its log and steps.
struct RunView {
  store::RunRow row;
  std::vector<store::LogRow> logs;
  std::vector<store::StepRow> steps;
  // Its plugin has been called on this kernel. A run is recorded RUNNING
  // before that (and readers may see the record before its flush returns);
  // cancelled in between, it is not started at all, whatever its type.
  bool started = false;
};

// A scheduled job's dashboard.
struct DrillIn {
  store::ScheduledJob job;
  std::vector<store::RunRow> runs;                        // newest first
  std::vector<std::pair<int64_t, int64_t>> failures_30d;  // (UTC day start ms, failed runs), oldest first
  // (UTC day start ms, runs terminated for a cause: cancelled, timed out,
  // stopped, recovered), the same days; not failures.
  std::vector<std::pair<int64_t, int64_t>> terminated_30d;
  std::vector<int64_t> next_fire_ms;  // the next five
};

// Dispatch lag (scheduled start -> plugin entry) of the runs this engine
// started: counts per bucket, the last bucket above every bound.
struct LagHistogram {
  std::vector<int64_t> bounds_ms;
  std::vector<uint64_t> counts;  // bounds_ms.size() + 1
  int64_t sum_ms = 0;
  uint64_t count = 0;
};

class Engine {
 public:
  Engine(store::Store& store, TypeResolver resolve, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Recovers what a previous kernel left (RUNNING runs become ERROR +
  // terminated and are re-queued where the type allows; PENDING runs are
  // queued again), loads the scheduled jobs and starts the threads.
  Status start();
  // Stops taking runs, asks runs in flight to cancel, waits up to `grace_ms`
  // (then on, for runs that do not stop), and joins the threads.
  void stop(int64_t grace_ms);

  // Creates a scheduled job (CONFLICT if the id exists). Checks the job
  // type, planning, schedule, time zone and parameters.
  Status define_job(store::ScheduledJob job, const Actor& actor);
  // Changes a scheduled job's schedule, parameters, enabled flag, owner,
  // scope, region or report recipients; id, type and description stay.
  Status update_job(const store::ScheduledJob& job, const Actor& actor);
  // Deletes a scheduled job with a required reason; `before` (the job as
  // JSON) goes into the audit row. Refused (CONFLICT, naming the runs) while
  // a run of the job is pending or running: cancel it or let it finish
  // first. Its completed runs stay and keep its id. Audited either way.
  Status delete_job(const std::string& id, const Actor& actor, const std::string& reason, const std::string& before);

  // Starts a run by hand: refused (CONFLICT) for manual_run=false types,
  // INVALID_ARGUMENT for a missing reason, unsupported dry-run or parameters
  // that do not match the schema. Audited either way.
  Status run_now(const RunNow& request, int64_t* run_id);
  // The same for many requests, in one store transaction; all or nothing.
  Status run_now_batch(const std::vector<RunNow>& requests, std::vector<int64_t>* run_ids);
  // Cancels a run: a PENDING one at once, a RUNNING one only through its
  // type's cancel hook (CONFLICT otherwise). Audited.
  Status cancel(int64_t run_id, const Actor& actor, const std::string& reason);
  // Runs a completed ERROR run again, with the same or new parameters, linked
  // to the original. Audited.
  Status retry(int64_t run_id, const Actor& actor, const std::string& reason,
               const std::optional<std::string>& params_json, int64_t* new_run_id);
  // Holds or releases a PENDING run. Audited.
  Status hold(int64_t run_id, bool hold, const Actor& actor, const std::string& reason);
  // Closes a stale RUNNING run as ERROR + terminated (its plugin is asked to
  // cancel if it is still running here). Audited.
  Status recover(int64_t run_id, const Actor& actor, const std::string& reason);

  // Waits until the run is COMPLETED or `timeout_ms` passes.
  bool wait(int64_t run_id, int64_t timeout_ms);
  // The run, its log and steps (in-flight runs include lines not yet stored).
  Status get(int64_t run_id, RunView* out);
  // Log lines after `after_seq` (a cursor), oldest first.
  std::vector<store::LogRow> log_tail(int64_t run_id, int64_t after_seq, size_t limit);
  // The next `n` fire times of a scheduled job (ms since the epoch).
  Status next_fire_times(const std::string& scheduled_job_id, size_t n, std::vector<int64_t>* out);
  // Blocks until run `run_id` has log lines after `after_seq`, completes, or
  // `timeout_ms` passes; returns the new lines (oldest first). *finished is
  // true once the run is COMPLETED and every line has been returned. For live
  // log streams.
  std::vector<store::LogRow> wait_log(int64_t run_id, int64_t after_seq, size_t limit, int64_t timeout_ms,
                                      bool* finished);
  // Scheduled jobs with their latest run, filtered, ordered by id. Served
  // from a copy that is read again after any change to runs or jobs (and at
  // least every ten seconds).
  std::vector<store::InventoryRow> inventory(const store::InventoryFilter& filter);
  // The whole inventory as that shared copy, ordered by id (read-only).
  std::shared_ptr<const std::vector<store::InventoryRow>> inventory_snapshot();
  // True if `row` passes `filter` (as the store's inventory filters).
  // `lower_text` is filter.text in lower case.
  static bool matches(const store::InventoryRow& row, const store::InventoryFilter& filter,
                      const std::string& lower_text);
  // One scheduled job: its last `last_n` runs, failures per day over 30 days
  // and its next five fire times.
  Status drill_in(const std::string& scheduled_job_id, size_t last_n, DrillIn* out);
  // Number of queued runs per pool.
  std::map<std::string, size_t> queue_depths();
  LagHistogram lag_histogram() const;

  // --- several kernels on one store (engine_cluster.cpp)
  // The kernels registered on the store (this one alone, from memory, when
  // the engine is not clustered).
  Status workers(std::vector<Worker>* out);
  // Drains kernel `node` (this one or another): it claims nothing new,
  // finishes its runs, then reports drained. Audited. NOT_FOUND for an
  // unknown node; UNSUPPORTED when the engine is not clustered.
  Status drain(const std::string& node, const Actor& actor, const std::string& reason);
  // This node's epoch (0 when not clustered).
  int64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

 private:
  struct Item;
  struct Pool;
  struct Flight;
  struct Scheduled;
  struct Compiled;
  struct Intake;

  Status check_request(const RunNow& r, store::RunRow* row, TypeRef* ref);
  // Stores new runs with their audit rows (store::Store::create_runs), in
  // one store call with those of concurrent callers, then queues them and
  // appends their run numbers to `run_ids` (if given).
  Status store_and_queue(std::vector<store::RunRow>* rows, const std::vector<TypeRef>& refs,
                         std::vector<store::AuditRow>* audit, std::vector<int64_t>* run_ids);
  Status check_job(const store::ScheduledJob& job);
  Status cancel_in_flight(int64_t run_id, const store::RunRow& row, const Actor& actor, const std::string& reason);
  void enqueue_locked(store::RunRow row, const TypeRef& ref);
  void enqueue_item_locked(Item item);
  void worker(Pool* pool);
  // Cluster: reads the store's next due run of `pool`'s types after its
  // last claim, and wakes the pool for it if it is earlier than the one
  // known (engine_cluster.cpp).
  void read_next_due(Pool* pool);
  std::shared_ptr<Flight> make_flight(const Item& item);
  void execute(const Item& item, const std::shared_ptr<Flight>& flight, std::vector<store::Completion>* done);
  void scheduler();
  void watchdog();
  // --- several kernels (engine_cluster.cpp)
  // Registers this node (a new epoch) and takes over the runs of dead
  // nodes and of this node's earlier epochs.
  Status join_cluster();
  // Heartbeats, takeovers, cancels asked through other kernels, schedules
  // defined through them, the drain; and the hints of other kernels.
  void cluster_loop();
  void hint_loop();
  // Closes `runs` (RUNNING, their claims void) as ERROR + terminated and
  // re-queues those whose type may be repeated, as start() does for a
  // crashed kernel's runs; `why` ends their summary.
  Status take_over(const std::vector<store::RunRow>& runs, const std::string& why);
  // Fenced: drops what this node holds and registers again.
  void on_fenced(const Status& why);
  // Recomputes the job types each pool claims from the store. REQUIRES: mu_.
  void refresh_pool_types_locked();
  // The job types this node runs (those of every pool), as last computed.
  std::vector<std::string> loaded_types();
  // The run's flight once its claim is recorded; null if none is (views).
  std::shared_ptr<Flight> claimed_flight(int64_t run_id);
  // Claims due runs of `pool`'s types from the store into *rows (cluster);
  // with `due_by`, those due by then too (a wake up to kFireAheadMs before
  // the pool's next due run), stored as started then.
  Status claim_from_store(Pool* pool, std::vector<store::RunRow>* rows, std::vector<store::Completion>* done,
                          int64_t due_by = 0);
  // Reads scheduled jobs defined, changed or deleted through other kernels.
  void refresh_schedules();
  // Flags runs RUNNING too long as stale and prunes old runs and audit rows.
  void housekeeping(int64_t now);
  // Lists again the open runs the store lost from its list of open runs
  // (Store::repair_open_runs), up to kRepairIds ids a call, logging how many.
  void repair_open_runs();
  void load_schedules();
  // The job's next fire time after `after_ms`; with `cache`, the parsed
  // schedule is kept there and reused while it is current.
  std::optional<int64_t> next_slot(const store::ScheduledJob& job, int64_t after_ms, std::string* error,
                                   Compiled* cache = nullptr);
  void audit(const Actor& actor, const std::string& action, const std::string& target, const std::string& reason,
             const std::string& params, const Status& outcome);
  static store::AuditRow audit_row(const Actor& actor, const std::string& action, const std::string& target,
                                   const std::string& reason, const std::string& params, const Status& outcome);
  static store::Completion completion_of(const Run& run, const RunSnapshot& s, int64_t flushed_seq);
  // The scope of scheduled job `id` (empty for none or an unknown one).
  // REQUIRES: mu_.
  std::string job_scope_locked(const std::string& id) const;
  // Adds the event-log rows of a run's end to `c` (nothing without an event
  // log). `row` is the run as created; `job_scope` its scheduled job's scope.
  void add_end_events(const store::RunRow& row, store::Completion* c, int64_t started_ms, events::RunEnd how,
                      const std::string& job_scope, uint64_t target_duration_ms, bool requeued = false) const;

  store::Store& store_;
  TypeResolver resolve_;
  EngineOptions opts_;

  std::mutex mu_;
  std::condition_variable done_cv_;   // a run completed
  std::condition_variable sched_cv_;  // schedules changed or stop
  std::condition_variable log_cv_;    // a log line was written by some run
  bool running_ = false;
  std::map<std::string, std::unique_ptr<Pool>> pools_;
  std::map<int64_t, std::shared_ptr<Flight>> flights_;  // runs inside a worker
  std::map<std::string, Scheduled> schedules_;
  // Held by the scheduler from reading a chunk of due slots until their runs
  // are stored, and by delete_job from taking the job out of the schedule
  // until it is deleted: a slot firing as its job is deleted either stores its
  // run before the delete looks (refused: a run pending) or none. Taken before mu_.
  std::mutex fire_mu_;
  std::vector<Item> delayed_;  // runs with a later scheduled start; min-heap by start
  // Run-now callers waiting to store their runs; the head writes for all.
  std::mutex intake_mu_;
  std::deque<Intake*> intake_;
  size_t intake_want_ = 0;  // callers the head is waiting for; 0: it is not waiting
  size_t intake_last_ = 0;  // callers the last write carried
  // Moves on each time a head answers its group or names the next head;
  // waiting callers wait on it (engine_intake.cpp).
  std::atomic<int> intake_gen_{0};
  // The inventory cache.
  static constexpr int64_t kInventoryTtlMs = 10000;  // re-read at least this often (other writers)
  std::mutex inventory_mu_;
  std::mutex inventory_refresh_mu_;  // one store read at a time
  std::shared_ptr<const std::vector<store::InventoryRow>> inventory_;
  uint64_t inventory_generation_ = 0;
  int64_t inventory_read_ms_ = 0;
  std::thread scheduler_, watchdog_;
  // Several kernels (engine_cluster.cpp): the epoch of this node's
  // registration; claiming is off while it drains or is fenced.
  std::atomic<int64_t> epoch_{0};
  bool claiming_ = true;      // mu_
  bool draining_ = false;     // mu_
  uint64_t hints_ = 0;        // mu_: moves on at each hint; idle workers claim
  bool cancel_hint_ = false;  // mu_: a cancel was hinted; the cluster loop looks
  std::condition_variable cluster_cv_;
  std::thread cluster_, hints_thread_;
  static constexpr std::array<int64_t, 11> kLagBounds = {1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000, 30000};
  std::array<std::atomic<uint64_t>, kLagBounds.size() + 1> lag_counts_{};
  std::atomic<int64_t> lag_sum_ms_{0};
};

}  // namespace opk::jobs

#endif
