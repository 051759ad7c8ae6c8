#include "jobs/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "config/config.h"
#include "jobs/cron.h"
#include "jobs/params.h"
#include "log/logging.h"

#include <date/tz.h>

namespace opk::jobs {
namespace {

constexpr size_t kMaxClaim = 1024;  // runs claimed in one store transaction
// A claim takes a fair share of the queue, but at least this many short runs
// if queued, as long as they hold less than kMinClaimMs of declared work: each
// claim is a commit, and halving shares would end a burst in a long tail of
// tiny ones, while runs of some length are better spread over the workers.
constexpr size_t kMinClaim = 128;
constexpr int64_t kMinClaimMs = 100;
// A claimed batch holds at most this much declared work (runs x target
// duration): runs later in a batch are recorded RUNNING while they wait for
// the ones before them.
constexpr int64_t kClaimBudgetMs = 1000;
// Due slots whose runs could not be stored, and claims the store refused,
// are tried again after this.
constexpr int64_t kFireRetryMs = 1000;
constexpr size_t kFireChunk = 1000;  // scheduled runs stored (and queued) per transaction when many fire at once
// Completions of short runs wait at most this long, or until this many, while
// claims go first (Engine::worker).
constexpr int64_t kCompletionHoldMs = 200;
constexpr size_t kMaxHeldCompletions = 4096;
constexpr int64_t kShortRunMs = 100;        // types declaring at most this target are batched
constexpr int64_t kHousekeepingMs = 60000;  // stale flagging and pruning

const char* outcome_text(opk_outcome o) {
  return o == OPK_OUTCOME_WARNING ? store::kWarning : o == OPK_OUTCOME_ERROR ? store::kError : store::kNormal;
}

opk_trigger trigger_of(const std::string& t) {
  if (t == "schedule") return OPK_TRIGGER_SCHEDULE;
  if (t == "retry") return OPK_TRIGGER_RETRY;
  if (t == "chain") return OPK_TRIGGER_CHAIN;
  if (t == "recovery") return OPK_TRIGGER_RECOVERY;
  return OPK_TRIGGER_MANUAL;
}

bool valid_scope(const std::string& s) {
  if (s == "platform") return true;
  for (const char* kind : {"distributor:", "partner:", "tenant:"})
    if (s.rfind(kind, 0) == 0 && s.size() > std::string(kind).size()) return true;
  return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, sep)) {
    auto b = part.find_first_not_of(" \t"), e = part.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(part.substr(b, e - b + 1));
  }
  return out;
}

// Appends a run's log `lines`, the first of which has seq `after + 1`, as store rows.
void append_log_rows(int64_t run_id, const std::vector<LogLine>& lines, int64_t after,
                     std::vector<store::LogRow>* out) {
  for (const auto& l : lines) out->push_back({run_id, ++after, l.time_ms, l.level, l.step, l.message});
}

constexpr size_t kAllLines = static_cast<size_t>(-1);

// The completion of a run that is closed without finishing: ERROR + terminated.
store::Completion terminated(int64_t run_id, std::string summary, int32_t exit_code = 0) {
  store::Completion c;
  c.run_id = run_id;
  c.outcome = store::kError;
  c.terminated = true;
  c.finished_ms = now_ms();
  c.exit_code = exit_code;
  c.summary = std::move(summary);
  return c;
}

}  // namespace

// How long before its start a run with a later start (run now with
// start_at_ms) is claimed and recorded RUNNING, so that the commit's fsync
// (0.5 to 2.5 ms on a typical disk) is not part of its dispatch lag. Its
// worker then waits for the start before calling the plugin; the stored start
// time is the due time. Quartz acquires triggers ahead of their fire time in
// the same way. A crash inside this window leaves a RUNNING run, recovered at
// the next start like any run in flight.
constexpr int64_t kFireAheadMs = 5;

// A queued run. The row is shared so heap moves stay cheap.
struct Engine::Item {
  std::shared_ptr<store::RunRow> row;
  TypeRef ref;
  bool short_run = false;
  bool due = false;  // moved from the delayed queue: never delayed again
  // Heap order: higher priority first, then earlier scheduled time, then job number.
  bool operator<(const Item& o) const {
    if (row->priority != o.row->priority) return row->priority < o.row->priority;
    if (row->scheduled_ms != o.row->scheduled_ms) return row->scheduled_ms > o.row->scheduled_ms;
    return row->id > o.row->id;
  }
};

struct Engine::Pool {
  std::string name;
  int concurrency = 1;
  std::vector<Item> heap;
  std::condition_variable cv;
  std::vector<std::thread> threads;
};

struct Engine::Flight {
  std::shared_ptr<Run> run;
  TypeRef ref;
  bool in_plugin = false;
  int64_t deadline_ms = 0;       // timeout: cancel then
  int64_t hard_deadline_ms = 0;  // after the grace: mark ERROR
  int64_t flushed_seq = 0;       // log lines already in the store
  bool abandoned = false;        // marked ERROR while the plugin still runs
};

// A scheduled job's schedule, parsed: reused while the job's schedule text,
// zone and jitter stay the same, so a slot costs no parsing or zone lookup.
struct Engine::Compiled {
  std::string key;  // what it was made from
  const date::time_zone* tz = nullptr;
  std::vector<cron::Expression> exprs;
  std::string error;  // why it cannot fire, if so
};

struct Engine::Scheduled {
  store::ScheduledJob job;
  int64_t next_ms = 0;
  Compiled compiled;
};

Engine::Engine(store::Store& store, TypeResolver resolve, EngineOptions options)
    : store_(store), resolve_(std::move(resolve)), opts_(std::move(options)) {
  for (const auto& p : opts_.pools) {
    auto pool = std::make_unique<Pool>();
    pool->name = p.name;
    pool->concurrency = std::max(1, p.concurrency);
    pools_[p.name] = std::move(pool);
  }
  if (!pools_.count("default")) {
    auto pool = std::make_unique<Pool>();
    pool->name = "default";
    pool->concurrency = 4;
    pools_["default"] = std::move(pool);
  }
}

Engine::~Engine() {
  stop(0);
}

// ------------------------------------------------------------------ start/stop

Status Engine::start() {
  const int64_t now = now_ms();
  // Runs a dead kernel left RUNNING: close them, re-queue where allowed.
  std::vector<store::Completion> closed;
  std::vector<store::RunRow> requeue;
  for (const auto& r : store_.runs_in_phase(store::kRunning, 100000)) {
    if (!r.node.empty() && r.node != opts_.node) continue;  // another node's run
    store::Completion c =
        terminated(r.id, "the kernel stopped while the run was in flight; recovered at start", OPK_ERR_UNAVAILABLE);
    c.logs = {{r.id, 1000000000, now, OPK_LOG_ERROR, "", c.summary}};
    closed.push_back(c);
    TypeRef ref = resolve_(r.job_type);
    if (ref.type && (ref.type->capabilities & OPK_JOB_CAP_REQUEUE)) {
      store::RunRow again = r;
      again.id = 0;
      again.slot_ms = 0;
      again.phase = store::kPending;
      again.trigger = "recovery";
      again.parent_run_id = r.id;
      again.created_ms = now;
      again.scheduled_ms = now;
      requeue.push_back(again);
    }
  }
  // Closed and re-queued together: a stop between the two must not close a
  // run without its repeat.
  if (Status s = store_.recover_runs(closed, &requeue); !s)
    return Status(s.code(), "cannot store the recovery of " + std::to_string(closed.size()) +
                                " run(s) left in flight (they are recovered at the next start): " + s.message());
  std::map<int64_t, int64_t> repeated;  // closed run -> its re-queued copy
  for (const auto& r : requeue) repeated[r.parent_run_id] = r.id;
  for (const auto& c : closed) {
    if (auto it = repeated.find(c.run_id); it != repeated.end())
      log::kernel()->warn(
          "run {} was in flight when the kernel stopped: marked ERROR (terminated), re-queued as run {}", c.run_id,
          it->second);
    else
      log::kernel()->warn("run {} was in flight when the kernel stopped: marked ERROR (terminated)", c.run_id);
  }

  std::lock_guard lock(mu_);
  running_ = true;
  for (const auto& r : store_.runs_in_phase(store::kPending, 1000000)) {
    TypeRef ref = resolve_(r.job_type);
    if (ref.type) enqueue_locked(r, ref);
  }
  load_schedules();
  for (auto& [name, pool] : pools_)
    for (int i = 0; i < pool->concurrency; ++i) pool->threads.emplace_back([this, p = pool.get()] { worker(p); });
  scheduler_ = std::thread([this] { scheduler(); });
  watchdog_ = std::thread([this] { watchdog(); });
  return Status::ok();
}

void Engine::stop(int64_t grace_ms) {
  {
    std::unique_lock lock(mu_);
    if (!running_) return;
    running_ = false;
    for (auto& [id, f] : flights_)
      if (f->run->request_cancel() && f->in_plugin && f->ref.type->c.cancel)
        f->ref.type->c.cancel(f->ref.instance, f->ref.type->self, f->run->context());
    for (auto& [name, pool] : pools_) pool->cv.notify_all();
    sched_cv_.notify_all();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    if (!done_cv_.wait_until(lock, deadline, [&] { return flights_.empty(); })) {
      log::kernel()->warn("{} run(s) still in flight after {} ms; waiting for them to end", flights_.size(), grace_ms);
      done_cv_.wait(lock, [&] { return flights_.empty(); });
    }
  }
  for (auto& [name, pool] : pools_) {
    for (auto& t : pool->threads) t.join();
    pool->threads.clear();
  }
  {
    std::lock_guard lock(mu_);  // still PENDING in the store: queued again at the next start
    for (auto& [name, pool] : pools_) pool->heap.clear();
    delayed_.clear();
  }
  if (scheduler_.joinable()) scheduler_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

// ------------------------------------------------------------- scheduled jobs

std::optional<int64_t> Engine::next_slot(const store::ScheduledJob& job, int64_t after_ms, std::string* error,
                                         Compiled* cache) {
  if (job.planning == "disabled" || !job.enabled) return std::nullopt;
  std::string exprs = job.cron;
  if (job.planning == "automatic") {
    TypeRef ref = resolve_(job.job_type);
    if (!ref.type) {
      if (error) *error = "job type '" + job.job_type + "' is not registered";
      return std::nullopt;
    }
    exprs = ref.type->default_schedule;
  }
  if (exprs.empty()) return std::nullopt;  // on demand only
  const std::string key = exprs + '\x1f' + job.time_zone + '\x1f' + std::to_string(job.jitter_minutes);
  Compiled local;
  Compiled& c = cache ? *cache : local;
  if (!cache || c.key != key) {
    c = Compiled{key, nullptr, {}, {}};
    try {
      c.tz = date::locate_zone(job.time_zone.empty() ? "UTC" : job.time_zone);
    } catch (const std::exception&) {
      c.error = "unknown time zone '" + job.time_zone + "'";
    }
    // Several expressions separated by ';' fire at the union of their times
    // (weekly days and times that one expression cannot say).
    for (const auto& e : split(exprs, ';')) {
      if (!c.error.empty()) break;
      cron::Expression expr;
      Status s = cron::Expression::parse(e, &expr);
      if (!s) {
        c.error = "schedule '" + e + "': " + s.message();
        break;
      }
      expr.set_jitter_minutes(cron::jitter_for(job.id, job.jitter_minutes));
      c.exprs.push_back(std::move(expr));
    }
  }
  if (!c.error.empty()) {
    if (error) *error = c.error;
    return std::nullopt;
  }
  const cron::Instant after{std::chrono::seconds(after_ms / 1000)};
  std::optional<int64_t> best;
  for (const auto& expr : c.exprs) {
    auto t = expr.next(after, c.tz, 1);
    if (t.empty()) continue;
    const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t[0].time_since_epoch()).count();
    if (!best || ms < *best) best = ms;
  }
  return best;
}

Status Engine::check_job(const store::ScheduledJob& j) {
  if (!config::valid_id(j.id)) return Status::invalid("id: '" + j.id + "' is not a valid id ([a-z0-9][a-z0-9._-]*)");
  TypeRef ref = resolve_(j.job_type);
  if (!ref.type) return Status::invalid("job_type: no job type '" + j.job_type + "' is registered");
  if (j.planning != "automatic" && j.planning != "scheduled" && j.planning != "disabled")
    return Status::invalid("planning: '" + j.planning + "' is not automatic, scheduled or disabled");
  if (j.planning == "scheduled" && split(j.cron, ';').empty())
    return Status::invalid("cron: a scheduled job needs a cron expression");
  if (j.jitter_minutes < 0 || j.jitter_minutes > 59) return Status::invalid("jitter_minutes: must be 0..59");
  if (!valid_scope(j.scope))
    return Status::invalid("scope: '" + j.scope + "' is not platform, distributor:ID, partner:ID or tenant:ID");
  std::string error;
  store::ScheduledJob probe = j;
  probe.enabled = true;
  if (probe.planning != "disabled") {
    next_slot(probe, now_ms(), &error);
    if (!error.empty()) return Status::invalid((j.planning == "scheduled" ? "cron: " : "schedule: ") + error);
  }
  Status s = validate_params(ref.type->params_schema_json, j.params_json);
  if (!s) return s;
  return Status::ok();
}

Status Engine::define_job(store::ScheduledJob job, const Actor& actor) {
  if (job.params_json.empty()) job.params_json = "{}";
  if (job.time_zone.empty()) job.time_zone = "UTC";
  Status s = check_job(job);
  if (s) {
    auto next = next_slot(job, now_ms(), nullptr);
    job.next_run_ms = next.value_or(0);
    s = store_.create_scheduled_job(job);
  }
  audit(actor, "job.create", job.id, "", job.params_json, s);
  if (!s) return s;
  std::lock_guard lock(mu_);
  schedules_[job.id] = {job, job.next_run_ms};
  sched_cv_.notify_all();
  return Status::ok();
}

Status Engine::update_job(const store::ScheduledJob& in, const Actor& actor) {
  store::ScheduledJob cur;
  Status s = store_.get_scheduled_job(in.id, &cur);
  if (s) {
    store::ScheduledJob j = cur;  // id, type and description stay
    j.owner = in.owner;
    j.planning = in.planning;
    j.cron = in.cron;
    j.time_zone = in.time_zone.empty() ? "UTC" : in.time_zone;
    j.jitter_minutes = in.jitter_minutes;
    j.params_json = in.params_json.empty() ? "{}" : in.params_json;
    j.enabled = in.enabled;
    j.scope = in.scope;
    j.region = in.region;
    j.report_recipients = in.report_recipients;
    if ((s = check_job(j))) {
      j.next_run_ms = next_slot(j, now_ms(), nullptr).value_or(0);
      s = store_.update_scheduled_job(j);
      if (s) {
        std::lock_guard lock(mu_);
        schedules_[j.id] = {j, j.next_run_ms};
        sched_cv_.notify_all();
      }
    }
  }
  audit(actor, "job.update", in.id, "", in.params_json, s);
  return s;
}

Status Engine::next_fire_times(const std::string& id, size_t n, std::vector<int64_t>* out) {
  store::ScheduledJob j;
  Status s = store_.get_scheduled_job(id, &j);
  if (!s) return s;
  int64_t after = now_ms();
  for (size_t i = 0; i < n; ++i) {
    std::string error;
    auto t = next_slot(j, after, &error);
    if (!error.empty()) return Status::invalid(error);
    if (!t) break;
    out->push_back(*t);
    after = *t;
  }
  return Status::ok();
}

void Engine::load_schedules() {
  const int64_t now = now_ms();
  for (auto& j : store_.list_scheduled_jobs()) {
    std::string error;
    int64_t next = j.next_run_ms;
    // Missed slots after downtime: one catch-up run (the stored slot, which
    // the unique slot key keeps from firing twice), or none.
    if (next == 0 || (next < now && !opts_.misfire_catch_up)) next = next_slot(j, now, &error).value_or(0);
    if (!error.empty()) log::kernel()->error("scheduled job {}: {}", j.id, error);
    if (!j.enabled || j.planning == "disabled") next = 0;
    if (next != j.next_run_ms) store_.set_next_run(j.id, next);
    schedules_[j.id] = {j, next};
  }
}

// ----------------------------------------------------------------- run now

Status Engine::check_request(const RunNow& r, store::RunRow* row, TypeRef* ref) {
  std::string type = r.job_type;
  std::string params = r.params_json.value_or("");
  store::ScheduledJob job;
  if (!r.scheduled_job_id.empty()) {
    Status s = store_.get_scheduled_job(r.scheduled_job_id, &job);
    if (!s) return s;
    if (!type.empty() && type != job.job_type)
      return Status::invalid("job_type: '" + type + "' is not the type of scheduled job '" + job.id + "'");
    type = job.job_type;
    if (!r.params_json) params = job.params_json;
  }
  if (type.empty()) return Status::invalid("job_type: give a job type or a scheduled job");
  *ref = resolve_(type);
  if (!ref->type) return Status::not_found("no job type '" + type + "' is registered");
  const auto& t = *ref->type;
  // The contract is enforced here, for every caller (API, CLI, plugins).
  if (!t.manual_run()) return Status::conflict("job type '" + type + "' does not allow manual runs (manual_run=false)");
  if (r.reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return Status::invalid("reason: a reason is required for a manual run");
  if (r.dry_run && !t.dry_run()) return Status::invalid("dry_run: job type '" + type + "' does not support dry-run");
  if (r.range_start_ms && r.range_end_ms && r.range_end_ms < r.range_start_ms)
    return Status::invalid("range: the end is before the start");
  if (params.empty()) params = "{}";
  Status s = validate_params(t.params_schema_json, params);
  if (!s) return s;
  const int64_t now = now_ms();
  if (r.start_at_ms > now + 366LL * 86400000)
    return Status::invalid("start_at: more than a year ahead; use a scheduled job");
  row->job_type = type;
  row->scheduled_job_id = r.scheduled_job_id;
  row->trigger = "manual";
  row->params_json = params;
  row->target_tenant = r.target_tenant;
  row->dry_run = r.dry_run;
  row->range_start_ms = r.range_start_ms;
  row->range_end_ms = r.range_end_ms;
  row->user_id = r.actor.user_id;
  row->role = r.actor.role;
  row->scope = r.actor.scope;
  row->reason = r.reason;
  row->priority = t.priority;
  row->pool = pools_.count(t.worker_pool) ? t.worker_pool : "default";
  row->scheduled_ms = std::max(now, r.start_at_ms);
  row->created_ms = now;
  return Status::ok();
}

Status Engine::run_now(const RunNow& request, int64_t* run_id) {
  std::vector<int64_t> ids;
  Status s = run_now_batch({request}, &ids);
  if (s && run_id) *run_id = ids.front();
  return s;
}

Status Engine::run_now_batch(const std::vector<RunNow>& requests, std::vector<int64_t>* run_ids) {
  std::vector<store::RunRow> rows(requests.size());
  std::vector<TypeRef> refs(requests.size());
  Status s;
  for (size_t i = 0; i < requests.size() && s; ++i) {
    s = check_request(requests[i], &rows[i], &refs[i]);
    if (!s && requests.size() > 1) s = Status(s.code(), "request " + std::to_string(i + 1) + ": " + s.message());
  }
  {
    std::lock_guard lock(mu_);
    if (s && !running_) s = Status::unavailable("the job engine is not running");
  }
  // The runs and their audit rows are written in one transaction; a refused
  // batch is audited as refused.
  // One batch is one request: its rows share one time.
  std::vector<store::AuditRow> audit_rows;
  for (const auto& r : requests) {
    audit_rows.push_back(audit_row(r.actor, "run-now", r.scheduled_job_id.empty() ? r.job_type : r.scheduled_job_id,
                                   r.reason, r.params_json.value_or(""), s));
    audit_rows.back().time_ms = audit_rows.front().time_ms;
  }
  if (s) s = store_.create_runs(&rows, &audit_rows);
  if (!s) {
    for (auto& a : audit_rows) a.outcome = "refused: " + s.message();
    if (Status a = store_.audit(audit_rows); !a) log::kernel()->error("audit rows lost: {}", a.message());
  }
  if (!s) return s;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (run_ids) run_ids->push_back(rows[i].id);
    enqueue_locked(std::move(rows[i]), refs[i]);
  }
  return Status::ok();
}

namespace {
// Min-heap order on the scheduled start.
bool later_start(const store::RunRow& a, const store::RunRow& b) {
  return a.scheduled_ms > b.scheduled_ms;
}
}  // namespace

void Engine::enqueue_locked(store::RunRow row, const TypeRef& ref) {
  const bool short_run = ref.type->target_duration_ms > 0 && ref.type->target_duration_ms <= kShortRunMs;
  enqueue_item_locked({std::make_shared<store::RunRow>(std::move(row)), ref, short_run});
}

void Engine::enqueue_item_locked(Item item) {
  if (!running_) return;  // stays PENDING in the store: queued at the next start
  if (!item.due && item.row->scheduled_ms > now_ms()) {
    // Not due yet: the scheduler moves it to its pool when it is.
    delayed_.push_back(std::move(item));
    std::push_heap(delayed_.begin(), delayed_.end(),
                   [](const Item& a, const Item& b) { return later_start(*a.row, *b.row); });
    sched_cv_.notify_all();
    return;
  }
  auto it = pools_.find(item.row->pool);
  Pool& pool = *(it == pools_.end() ? pools_.at("default") : it->second);
  pool.heap.push_back(std::move(item));
  std::push_heap(pool.heap.begin(), pool.heap.end());
  pool.cv.notify_one();
}

// ------------------------------------------------------------ operator actions

Status Engine::cancel(int64_t run_id, const Actor& actor, const std::string& reason) {
  Status s;
  store::RunRow row;
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    s = Status::invalid("reason: a reason is required to cancel a run");
  } else if ((s = store_.get_run(run_id, &row))) {
    if (row.phase == store::kCompleted) {
      s = Status::conflict("run " + std::to_string(run_id) + " has already completed");
    } else if (row.phase == store::kPending) {
      // Conditional on PENDING: a worker may claim it meanwhile, and then it
      // is cancelled as a running run below.
      bool changed = false;
      s = store_.complete_pending(terminated(run_id, "cancelled before it started by " + actor.user_id + ": " + reason),
                                  &changed);
      if (s && !changed) {
        row.phase = store::kRunning;
        s = cancel_in_flight(run_id, row, actor, reason);
      }
      done_cv_.notify_all();
    } else {
      s = cancel_in_flight(run_id, row, actor, reason);
    }
  }
  audit(actor, "cancel", "run " + std::to_string(run_id), reason, "", s);
  return s;
}

Status Engine::cancel_in_flight(int64_t run_id, const store::RunRow& row, const Actor& actor,
                                const std::string& reason) {
  Status s;
  {
    std::lock_guard lock(mu_);
    {
      auto it = flights_.find(run_id);
      if (it == flights_.end()) {
        s = Status::conflict("run " + std::to_string(run_id) +
                             " is not running on this kernel; if it is stale, recover it instead");
      } else if (it->second->run->phase() == Phase::pending) {
        // Claimed but not started: it will not be started at all.
        it->second->run->request_cancel();
      } else if (it->second->run->phase() == Phase::completed) {
        s = Status::conflict("run " + std::to_string(run_id) + " has already completed");
      } else if (!it->second->ref.type->cancellable()) {
        s = Status::conflict("job type '" + row.job_type + "' has no cancel hook; its runs cannot be cancelled safely");
      } else {
        Flight& f = *it->second;
        f.run->context()->log(f.run->context(), OPK_LOG_WARN,
                              ("cancel requested by " + actor.user_id + ": " + reason).c_str());
        // Under mu_ while the plugin is inside run(): never before or after it.
        if (f.run->request_cancel() && f.in_plugin)
          f.ref.type->c.cancel(f.ref.instance, f.ref.type->self, f.run->context());
      }
    }
  }
  return s;
}

Status Engine::retry(int64_t run_id, const Actor& actor, const std::string& reason,
                     const std::optional<std::string>& params_json, int64_t* new_run_id) {
  store::RunRow old;
  Status s = store_.get_run(run_id, &old);
  int64_t id = 0;
  if (s && (old.phase != store::kCompleted || old.outcome != store::kError))
    s = Status::conflict("run " + std::to_string(run_id) + " did not fail; only failed runs are retried");
  if (s) {
    std::lock_guard lock(mu_);
    if (flights_.count(run_id))
      s = Status::conflict("run " + std::to_string(run_id) + " was given up but its plugin is still running");
  }
  if (s) {
    RunNow r;
    r.job_type = old.job_type;
    r.params_json = params_json.value_or(old.params_json);
    r.target_tenant = old.target_tenant;
    r.dry_run = old.dry_run;
    r.range_start_ms = old.range_start_ms;
    r.range_end_ms = old.range_end_ms;
    r.reason = reason;
    r.actor = actor;
    store::RunRow row;
    TypeRef ref;
    s = check_request(r, &row, &ref);
    if (s) {
      row.trigger = "retry";
      row.parent_run_id = run_id;
      row.scheduled_job_id = old.scheduled_job_id;
      std::vector<store::RunRow> rows = {row};
      s = store_.create_runs(&rows);
      if (s) {
        id = rows[0].id;
        std::lock_guard lock(mu_);
        enqueue_locked(rows[0], ref);
      }
    }
  }
  audit(actor, "retry", "run " + std::to_string(run_id), reason, params_json.value_or(""),
        s ? Status(OPK_OK, "run " + std::to_string(id)) : s);
  if (s && new_run_id) *new_run_id = id;
  return s;
}

Status Engine::hold(int64_t run_id, bool hold, const Actor& actor, const std::string& reason) {
  Status s = store_.set_hold(run_id, hold);
  if (s && !hold) {
    // A released run goes back into its pool's queue.
    store::RunRow row;
    if ((s = store_.get_run(run_id, &row))) {
      TypeRef ref = resolve_(row.job_type);
      std::lock_guard lock(mu_);
      if (ref.type) enqueue_locked(row, ref);
    }
  }
  audit(actor, hold ? "hold" : "release", "run " + std::to_string(run_id), reason, "", s);
  return s;
}

Status Engine::recover(int64_t run_id, const Actor& actor, const std::string& reason) {
  store::RunRow row;
  Status s = store_.get_run(run_id, &row);
  if (s && row.phase != store::kRunning) s = Status::conflict("run " + std::to_string(run_id) + " is not running");
  if (s && !row.stale) s = Status::conflict("run " + std::to_string(run_id) + " is not stale");
  if (s) {
    {
      std::lock_guard lock(mu_);
      if (auto it = flights_.find(run_id); it != flights_.end()) {
        Flight& f = *it->second;
        f.abandoned = true;
        if (f.run->request_cancel() && f.in_plugin && f.ref.type->c.cancel)
          f.ref.type->c.cancel(f.ref.instance, f.ref.type->self, f.run->context());
      }
    }
    s = store_.complete_runs(
        {terminated(run_id, "recovered by " + actor.user_id + " after running too long: " + reason)});
    done_cv_.notify_all();
  }
  audit(actor, "recover", "run " + std::to_string(run_id), reason, "", s);
  return s;
}

store::AuditRow Engine::audit_row(const Actor& actor, const std::string& action, const std::string& target,
                                  const std::string& reason, const std::string& params, const Status& outcome) {
  store::AuditRow a;
  a.time_ms = now_ms();
  a.actor = actor.user_id.empty() ? "system" : actor.user_id;
  a.role = actor.role;
  a.action = action;
  a.target = target;
  a.reason = reason;
  a.params_json = params;
  a.outcome =
      outcome ? (outcome.message().empty() ? "ok" : "ok: " + outcome.message()) : "refused: " + outcome.message();
  a.source = actor.source;
  return a;
}

void Engine::audit(const Actor& actor, const std::string& action, const std::string& target, const std::string& reason,
                   const std::string& params, const Status& outcome) {
  Status s = store_.audit({audit_row(actor, action, target, reason, params, outcome)});
  if (!s) log::kernel()->error("audit row lost: {}", s.message());
}

// --------------------------------------------------------------------- workers

store::Completion Engine::completion_of(const Run& run, const RunSnapshot& s, int64_t flushed_seq) {
  store::Completion c;
  c.run_id = run.id();
  c.outcome = outcome_text(s.outcome);
  c.terminated = s.terminated;
  c.finished_ms = s.finished_ms;
  c.exit_code = s.exit_code;
  c.summary = s.summary;
  c.progress = s.progress;
  c.progress_message = s.progress_message;
  c.output_json = s.output_json;
  append_log_rows(run.id(), run.log_lines(static_cast<size_t>(flushed_seq), kAllLines), flushed_seq, &c.logs);
  int32_t seq = 0;
  for (const auto& st : s.steps)
    c.steps.push_back({run.id(), ++seq, st.id, st.start_ms, st.end_ms, outcome_text(st.outcome), st.summary});
  return c;
}

std::shared_ptr<Engine::Flight> Engine::make_flight(const Item& item) {
  const auto& row = *item.row;
  RunRequest req;
  req.params_json = row.params_json;
  req.target_tenant = row.target_tenant;
  req.dry_run = row.dry_run;
  req.trigger = trigger_of(row.trigger);
  req.range_start_ms = row.range_start_ms;
  req.range_end_ms = row.range_end_ms;
  req.user_id = row.user_id;
  req.role = row.role;
  req.scope = row.scope;
  req.reason = row.reason;
  req.scheduled_job_id = row.scheduled_job_id;
  req.parent_run_id = row.parent_run_id;
  auto flight = std::make_shared<Flight>();
  flight->run = std::make_shared<Run>(row.id, row.job_type, std::move(req));
  flight->run->set_log_listener([this] { log_cv_.notify_all(); });
  flight->ref = item.ref;
  return flight;
}

void Engine::execute(const Item& item, const std::shared_ptr<Flight>& flight, std::vector<store::Completion>* done) {
  // Claimed ahead of its start (kFireAheadMs): recorded RUNNING, it waits
  // here, never longer than that window (the clock may have been set back).
  if (item.due) {
    const int64_t now = now_ms(), until = std::min(item.row->scheduled_ms, now + kFireAheadMs);
    if (until > now)
      std::this_thread::sleep_until(std::chrono::system_clock::time_point(std::chrono::milliseconds(until)));
  }
  const int64_t start = now_ms();
  flight->run->mark_running(start);
  if (item.row->scheduled_ms > 0) {
    const int64_t lag = std::max<int64_t>(0, start - item.row->scheduled_ms);
    size_t b = 0;
    while (b < kLagBounds.size() && lag > kLagBounds[b]) ++b;
    lag_counts_[b].fetch_add(1, std::memory_order_relaxed);
    lag_sum_ms_.fetch_add(lag, std::memory_order_relaxed);
  }
  bool skip = false;
  {
    std::lock_guard lock(mu_);
    // Cancelled while it waited in a claimed batch, or the engine is stopping:
    // the plugin is not called at all.
    if (!running_) flight->run->request_cancel();
    skip = flight->run->cancel_requested();
    if (item.ref.type->timeout_ms) flight->deadline_ms = start + static_cast<int64_t>(item.ref.type->timeout_ms);
    flight->in_plugin = !skip;
  }
  if (skip) {
    flight->run->mark_completed(now_ms(), OPK_ERR_CANCELLED);
    done->push_back(completion_of(*flight->run, flight->run->snapshot(), 0));
    return;
  }
  opk_status st = OPK_ERR_FAILED;
  try {
    st = item.ref.type->c.run(item.ref.instance, item.ref.type->self, flight->run->context());
  } catch (...) {  // a last guard only: exceptions must not cross the ABI
    flight->run->context()->log(flight->run->context(), OPK_LOG_ERROR, "run threw an exception across the ABI");
  }
  int64_t flushed = 0;
  {
    std::lock_guard lock(mu_);
    // Completed inside the lock: a cancel cannot land between the plugin's
    // return and the outcome being fixed.
    flight->in_plugin = false;
    flight->run->mark_completed(now_ms(), st);
    flushed = flight->flushed_seq;
  }
  done->push_back(completion_of(*flight->run, flight->run->snapshot(), flushed));
}

void Engine::worker(Pool* pool) {
  std::vector<Item> batch;
  std::vector<store::Completion> done;  // completed runs not yet stored
  int64_t done_since_ms = 0;            // when the oldest of them completed
  // After `done` is stored: the runs leave the flight table, waiters wake.
  auto settle = [&] {
    std::lock_guard lock(mu_);
    for (const auto& c : done) flights_.erase(c.run_id);
    done.clear();
    done_since_ms = 0;
    done_cv_.notify_all();
    log_cv_.notify_all();
  };
  auto flush = [&] {
    if (done.empty()) return;
    Status s = store_.complete_runs(done);
    if (!s) log::kernel()->error("storing {} completed run(s) failed: {}", done.size(), s.message());
    settle();
  };
  // Claims go first: while short runs are queued, a worker keeps its
  // completions of short runs (at most kCompletionHoldMs or
  // kMaxHeldCompletions) instead of writing them ahead of the next claim, so
  // a burst of due runs is started before what already finished is recorded.
  // The store's single writer is the bottleneck; starting work is the urgent
  // part of it. A crash in that window closes those runs as it closes any run
  // in flight (docs/operations.md).
  auto completions_due = [&] {
    return !done.empty() && (done.size() >= kMaxHeldCompletions || now_ms() - done_since_ms >= kCompletionHoldMs);
  };
  while (true) {
    batch.clear();
    {
      std::unique_lock lock(mu_);
      if (!done.empty() && (pool->heap.empty() || !running_)) {
        // Nothing to claim with them: store the completions on their own.
        lock.unlock();
        flush();
        lock.lock();
      }
      pool->cv.wait(lock, [&] { return !running_ || !pool->heap.empty(); });
      if (!running_) break;
      // Claim the head; runs of types declared short are claimed in a group so
      // one transaction records many of them RUNNING (group commit), within
      // a fair share of the queue and kClaimBudgetMs of declared work.
      int64_t budget_ms = kClaimBudgetMs;
      do {
        std::pop_heap(pool->heap.begin(), pool->heap.end());
        batch.push_back(std::move(pool->heap.back()));
        pool->heap.pop_back();
        budget_ms -= std::max<int64_t>(1, batch.back().ref.type->target_duration_ms);
      } while (batch.front().short_run && batch.size() < kMaxClaim && budget_ms > 0 && !pool->heap.empty() &&
               pool->heap.front().short_run &&
               ((batch.size() < kMinClaim && kClaimBudgetMs - budget_ms < kMinClaimMs) ||
                batch.size() < pool->heap.size() / static_cast<size_t>(pool->concurrency) + 1));
    }
    // A run released from hold can be queued twice: keep one copy.
    std::sort(batch.begin(), batch.end(), [](const Item& a, const Item& b) { return b < a; });
    batch.erase(
        std::unique(batch.begin(), batch.end(), [](const Item& a, const Item& b) { return a.row->id == b.row->id; }),
        batch.end());
    std::vector<int64_t> ids, skipped;
    // The stored start: now, or the start of a run claimed ahead of it.
    const int64_t claimed_ms = now_ms();
    int64_t start_ms = claimed_ms;
    // Every run being claimed is in flight from before its claim is written:
    // readers may see it RUNNING before the claim's flush returns, and a
    // cancel then finds it here (it is not started at all). A run another
    // worker holds already (a released run queued twice) is not claimed.
    std::vector<std::shared_ptr<Flight>> claimed(batch.size());
    {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < batch.size(); ++i) {
        auto [slot, fresh] = flights_.try_emplace(batch[i].row->id);
        if (!fresh) continue;
        slot->second = claimed[i] = make_flight(batch[i]);
        ids.push_back(batch[i].row->id);
        if (batch[i].due)
          start_ms = std::max(start_ms, std::min(batch[i].row->scheduled_ms, claimed_ms + kFireAheadMs));
      }
    }
    // Drops the flights of runs this worker did not claim after all.
    auto unclaim = [&](const std::function<bool(int64_t)>& which) {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < batch.size(); ++i)
        if (claimed[i] && which(batch[i].row->id)) {
          flights_.erase(batch[i].row->id);
          claimed[i].reset();
        }
    };
    // The previous batch's completions share this claim's commit when they
    // are due, or before a long run (it would keep them for its whole length).
    const bool carry = !done.empty() && (completions_due() || !batch.front().short_run);
    Status s = store_.mark_running(ids, start_ms, opts_.node, &skipped, carry ? &done : nullptr);
    if (!s) {
      // They stay PENDING in the store: back into the queue for another try.
      log::kernel()->error("cannot record {} run(s) RUNNING, queued again: {}", ids.size(), s.message());
      unclaim([](int64_t) { return true; });
      {
        std::lock_guard lock(mu_);
        for (const auto& it : batch) enqueue_item_locked(it);
      }
      flush();
      // The store may refuse for a while (disk full, a failed flush): the
      // next try comes after a pause, not in a tight loop.
      std::unique_lock lock(mu_);
      pool->cv.wait_for(lock, std::chrono::milliseconds(kFireRetryMs), [&] { return !running_; });
      continue;
    }
    if (carry) settle();
    // Held or cancelled meanwhile: not claimed.
    if (!skipped.empty())
      unclaim([&](int64_t id) { return std::find(skipped.begin(), skipped.end(), id) != skipped.end(); });
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!claimed[i]) continue;
      execute(batch[i], claimed[i], &done);
      if (done_since_ms == 0 && !done.empty()) done_since_ms = now_ms();
      if (!batch[i].short_run || completions_due()) flush();
    }
    // Short runs with more short runs queued behind them: their completions
    // are stored with a later claim once due (completions_due), or on their
    // own once the queue is empty.
    bool defer = false;
    if (!done.empty() && batch.back().short_run) {
      std::lock_guard lock(mu_);
      defer = running_ && !pool->heap.empty() && pool->heap.front().short_run;
    }
    if (!defer) flush();
  }
  flush();
}

// ------------------------------------------------------------------ scheduler

void Engine::scheduler() {
  int64_t next_housekeeping = 0;
  // When the runs of due slots could not be stored, those slots stay due and
  // are tried again from this time on (not in a tight loop).
  int64_t fire_again_at = 0;
  std::unique_lock lock(mu_);
  while (running_) {
    const int64_t now = now_ms();
    // Runs with a scheduled start that has come.
    auto cmp = [](const Item& a, const Item& b) { return later_start(*a.row, *b.row); };
    // Runs with a later start, claimed up to kFireAheadMs before it.
    while (!delayed_.empty() && delayed_.front().row->scheduled_ms <= now + kFireAheadMs) {
      std::pop_heap(delayed_.begin(), delayed_.end(), cmp);
      Item item = std::move(delayed_.back());
      delayed_.pop_back();
      item.due = true;
      enqueue_item_locked(std::move(item));
    }
    std::vector<std::pair<std::string, int64_t>> fired;  // (scheduled job, slot)
    int64_t wake = now + opts_.safety_tick_ms;
    for (auto& [id, sc] : schedules_) {
      if (sc.next_ms == 0) continue;
      if (sc.next_ms > now) {
        wake = std::min(wake, sc.next_ms);
        continue;
      }
      if (now < fire_again_at) {
        wake = std::min(wake, fire_again_at);
        continue;
      }
      fired.emplace_back(id, sc.next_ms);
    }
    if (!fired.empty() || now >= next_housekeeping) {
      lock.unlock();
      // A chunk at a time: its runs are built, stored and queued, so workers
      // start on the first chunk while the next is written (the store
      // commits their claims ahead of it), and the lock is never held long.
      // Then the next slots, again a chunk at a time. A crash in between is
      // safe: a slot fires once (the store's unique key), and a stored next
      // run that already fired is skipped.
      // The scheduled job of a fired slot while that slot is still its next
      // (the lock is released between chunks). REQUIRES: mu_.
      auto still_due = [this](const std::pair<std::string, int64_t>& f) -> Scheduled* {
        auto it = schedules_.find(f.first);
        return it == schedules_.end() || it->second.next_ms != f.second ? nullptr : &it->second;
      };
      std::vector<bool> unstored(fired.size());  // their runs were not stored: the slot stays due
      for (size_t from = 0; from < fired.size(); from += kFireChunk) {
        const size_t to = std::min(fired.size(), from + kFireChunk);
        std::vector<store::RunRow> rows;
        std::vector<TypeRef> refs;
        {
          std::lock_guard relock(mu_);
          for (size_t i = from; i < to; ++i) {
            const Scheduled* due = still_due(fired[i]);
            if (!due) continue;  // changed meanwhile
            const Scheduled& sc = *due;
            TypeRef ref = resolve_(sc.job.job_type);
            if (!ref.type) continue;  // its plugin is gone: the slot passes without a run
            store::RunRow r;
            r.job_type = sc.job.job_type;
            r.scheduled_job_id = sc.job.id;
            r.slot_ms = sc.next_ms;
            r.trigger = "schedule";
            r.params_json = sc.job.params_json;
            r.scope = sc.job.scope;
            r.priority = ref.type->priority;
            r.pool = pools_.count(ref.type->worker_pool) ? ref.type->worker_pool : "default";
            r.scheduled_ms = sc.next_ms;
            r.created_ms = now;
            rows.push_back(std::move(r));
            refs.push_back(ref);
          }
        }
        if (Status s = store_.create_runs(&rows); !s) {
          log::kernel()->error("cannot create {} scheduled run(s), their slots are tried again in {} ms: {}",
                               rows.size(), kFireRetryMs, s.message());
          std::fill(unstored.begin() + static_cast<std::ptrdiff_t>(from),
                    unstored.begin() + static_cast<std::ptrdiff_t>(to), true);
          fire_again_at = now + kFireRetryMs;
          continue;
        }
        std::lock_guard relock(mu_);
        for (size_t i = 0; i < rows.size(); ++i)
          if (rows[i].id != 0 && running_) enqueue_locked(std::move(rows[i]), refs[i]);  // id 0: slot already fired
      }
      for (size_t from = 0; from < fired.size(); from += kFireChunk) {
        const size_t to = std::min(fired.size(), from + kFireChunk);
        std::vector<std::pair<std::string, int64_t>> moved;
        {
          std::lock_guard relock(mu_);
          for (size_t i = from; i < to; ++i) {
            if (unstored[i]) continue;  // stays due
            Scheduled* due = still_due(fired[i]);
            if (!due) continue;  // changed meanwhile: already recomputed
            Scheduled& sc = *due;
            std::string error;
            sc.next_ms = next_slot(sc.job, std::max(now, fired[i].second), &error, &sc.compiled).value_or(0);
            if (!error.empty()) log::kernel()->error("scheduled job {}: {}", sc.job.id, error);
            moved.emplace_back(sc.job.id, sc.next_ms);
          }
        }
        if (Status n = store_.set_next_runs(moved); !n) log::kernel()->error("cannot store next runs: {}", n.message());
      }
      if (now >= next_housekeeping) {
        int64_t n = 0;
        if (store_.flag_stale(now - opts_.stale_after_ms, &n) && n > 0)
          log::kernel()->warn("{} run(s) RUNNING for longer than {} h flagged stale", n,
                              opts_.stale_after_ms / 3600000);
        if (opts_.retention_days > 0) {
          const int64_t before = now - int64_t{opts_.retention_days} * 86400000;
          for (int i = 0; i < 10 && store_.prune(before, opts_.prune_batch, &n) && n > 0; ++i) {
          }
        }
        if (opts_.audit_retention_days > 0) {
          const int64_t before = now - int64_t{opts_.audit_retention_days} * 86400000;
          for (int i = 0; i < 10 && store_.prune_audit(before, opts_.prune_batch, &n) && n > 0; ++i) {
          }
        }
        next_housekeeping = now + kHousekeepingMs;
      }
      lock.lock();
      continue;
    }
    wake = std::min(wake, next_housekeeping);
    if (!delayed_.empty()) wake = std::min(wake, delayed_.front().row->scheduled_ms - kFireAheadMs);
    sched_cv_.wait_until(lock, std::chrono::system_clock::time_point(std::chrono::milliseconds(wake)));
  }
}

void Engine::watchdog() {
  std::unique_lock lock(mu_);
  int64_t next_checkpoint = 0;
  while (running_) {
    sched_cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(opts_.log_flush_ms, 200)));
    const int64_t now = now_ms();
    if (now >= next_checkpoint) {
      lock.unlock();
      store_.checkpoint();
      lock.lock();
      next_checkpoint = now + 1000;
    }
    std::vector<store::LogRow> logs;
    std::vector<store::Completion> abandoned;
    std::vector<std::pair<std::shared_ptr<Flight>, int64_t>> flushed_to;
    for (auto& [id, f] : flights_) {
      if (!f->in_plugin) {
        // Waiting in a claimed batch or finished: no timeout applies.
      } else if (f->deadline_ms && now >= f->deadline_ms && !f->hard_deadline_ms) {
        f->hard_deadline_ms = now + opts_.timeout_grace_ms;
        const std::string msg = "timed out after " + std::to_string(f->ref.type->timeout_ms) + " ms; cancelling";
        f->run->context()->log(f->run->context(), OPK_LOG_ERROR, msg.c_str());
        if (f->run->request_cancel() && f->in_plugin && f->ref.type->c.cancel)
          f->ref.type->c.cancel(f->ref.instance, f->ref.type->self, f->run->context());
      } else if (f->hard_deadline_ms && now >= f->hard_deadline_ms && !f->abandoned) {
        f->abandoned = true;
        abandoned.push_back(
            terminated(id, "timed out and did not stop within " + std::to_string(opts_.timeout_grace_ms) + " ms",
                       OPK_ERR_TIMEOUT));
      }
      // In-flight log lines reach the store within log_flush_ms.
      const auto lines = f->run->log_lines(static_cast<size_t>(f->flushed_seq), kAllLines);
      append_log_rows(id, lines, f->flushed_seq, &logs);
      flushed_to.emplace_back(f, f->flushed_seq + static_cast<int64_t>(lines.size()));
    }
    if (logs.empty() && abandoned.empty()) continue;
    lock.unlock();
    Status appended = store_.append_logs(logs);
    if (!appended) log::kernel()->error("storing run logs failed, will retry: {}", appended.message());
    if (Status s = store_.complete_runs(abandoned); !s) log::kernel()->error("{}", s.message());
    lock.lock();
    if (appended)
      for (auto& [f, seq] : flushed_to) f->flushed_seq = std::max(f->flushed_seq, seq);
    if (!abandoned.empty()) done_cv_.notify_all();
  }
}

// ----------------------------------------------------------------------- views

bool Engine::wait(int64_t run_id, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(mu_);
  while (true) {
    lock.unlock();
    store::RunRow row;
    const bool complete = store_.get_run(run_id, &row) && row.phase == store::kCompleted;
    lock.lock();
    if (complete && !flights_.count(run_id)) return true;
    if (complete && flights_.at(run_id)->abandoned) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    done_cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

Status Engine::get(int64_t run_id, RunView* out) {
  Status s = store_.get_run(run_id, &out->row);
  if (!s) return s;
  out->logs = log_tail(run_id, 0, 1000000);
  out->steps = store_.steps(run_id);
  std::shared_ptr<Flight> f;
  {
    std::lock_guard lock(mu_);
    if (auto it = flights_.find(run_id); it != flights_.end()) f = it->second;
    out->started = f && f->run->phase() != Phase::pending;
  }
  if (f && out->steps.empty()) {
    auto snap = f->run->snapshot();
    int32_t seq = 0;
    for (const auto& st : snap.steps)
      out->steps.push_back({run_id, ++seq, st.id, st.start_ms, st.end_ms, outcome_text(st.outcome), st.summary});
    out->row.progress = snap.progress;
    out->row.progress_message = snap.progress_message;
  }
  return Status::ok();
}

std::vector<store::LogRow> Engine::log_tail(int64_t run_id, int64_t after_seq, size_t limit) {
  std::shared_ptr<Flight> f;
  {
    std::lock_guard lock(mu_);
    if (auto it = flights_.find(run_id); it != flights_.end()) f = it->second;
  }
  if (!f) return store_.logs(run_id, after_seq, limit);
  // In flight: the run's own copy has every line, stored or not.
  std::vector<store::LogRow> out;
  after_seq = std::max<int64_t>(after_seq, 0);
  append_log_rows(run_id, f->run->log_lines(static_cast<size_t>(after_seq), limit), after_seq, &out);
  return out;
}

std::vector<store::LogRow> Engine::wait_log(int64_t run_id, int64_t after_seq, size_t limit, int64_t timeout_ms,
                                            bool* finished) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  *finished = false;
  while (true) {
    bool in_flight, running;
    {
      std::lock_guard lock(mu_);
      in_flight = flights_.count(run_id) > 0;
      running = running_;
    }
    auto lines = log_tail(run_id, after_seq, limit);
    if (!lines.empty()) return lines;
    if (!in_flight) {
      store::RunRow row;
      if (!store_.get_run(run_id, &row) || row.phase == store::kCompleted) {
        *finished = true;  // nothing more will come
        return lines;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline || !running) return lines;  // stopping: do not hold callers
    // Woken by any run's log line or completion; re-check at least every 100 ms.
    std::unique_lock lock(mu_);
    log_cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

std::shared_ptr<const std::vector<store::InventoryRow>> Engine::inventory_snapshot() {
  const uint64_t generation = store_.generation();  // before reading: a change meanwhile re-reads next time
  const int64_t now = now_ms();
  std::shared_ptr<const std::vector<store::InventoryRow>> stale;
  {
    std::lock_guard lock(inventory_mu_);
    if (inventory_ && inventory_generation_ == generation) {
      if (now - inventory_read_ms_ < kInventoryTtlMs) return inventory_;
      stale = inventory_;  // only old by time: serve it while one caller re-reads
    }
  }
  // One caller reads the store; the others wait for its copy (after a
  // change) or take the old one (when only time has passed).
  std::unique_lock refresh(inventory_refresh_mu_, std::defer_lock);
  if (stale) {
    if (!refresh.try_lock()) return stale;
  } else {
    refresh.lock();
    std::lock_guard lock(inventory_mu_);
    if (inventory_ && inventory_generation_ == store_.generation()) return inventory_;  // read meanwhile
  }
  const uint64_t reading = store_.generation();
  auto all = std::make_shared<const std::vector<store::InventoryRow>>(store_.inventory());
  std::lock_guard lock(inventory_mu_);
  inventory_ = all;
  inventory_generation_ = reading;
  inventory_read_ms_ = now_ms();
  return all;
}

namespace {
std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
bool contains_lower(const std::string& haystack, const std::string& lower_needle) {
  auto it = std::search(haystack.begin(), haystack.end(), lower_needle.begin(), lower_needle.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  return it != haystack.end();
}
}  // namespace

bool Engine::matches(const store::InventoryRow& r, const store::InventoryFilter& f, const std::string& text) {
  if (!f.job_type.empty() && r.job.job_type != f.job_type) return false;
  if (!f.region.empty() && r.job.region != f.region) return false;
  if (!f.scope.empty() && r.job.scope != f.scope) return false;
  if (!text.empty() && !contains_lower(r.job.id, text) && !contains_lower(r.job.job_type, text) &&
      !contains_lower(r.job.description, text))
    return false;
  if (!f.status.empty()) {
    const std::string st = !r.last_run_id                    ? "never"
                           : r.last_phase == store::kPending ? "pending"
                           : r.last_phase == store::kRunning ? "running"
                                                             : lowered(r.last_outcome);
    if (st != f.status && ("," + f.status + ",").find("," + st + ",") == std::string::npos) return false;
  }
  return true;
}

std::vector<store::InventoryRow> Engine::inventory(const store::InventoryFilter& f) {
  const auto all = inventory_snapshot();
  const std::string text = lowered(f.text);
  std::vector<store::InventoryRow> out;
  for (const auto& r : *all)
    if (matches(r, f, text)) out.push_back(r);
  return out;
}

Status Engine::drill_in(const std::string& id, size_t last_n, DrillIn* out) {
  Status s = store_.get_scheduled_job(id, &out->job);
  if (!s) return s;
  store::RunFilter f;
  f.scheduled_job_id = id;
  f.limit = last_n;
  out->runs = store_.list_runs(f);
  const int64_t today = now_ms() / 86400000;
  auto failures = store_.failures_per_day(id, (today - 29) * 86400000);
  out->failures_30d.clear();
  for (int64_t day = today - 29; day <= today; ++day)
    out->failures_30d.emplace_back(day * 86400000, failures.count(day) ? failures[day] : 0);
  out->next_fire_ms.clear();
  return next_fire_times(id, 5, &out->next_fire_ms);
}

LagHistogram Engine::lag_histogram() const {
  LagHistogram h;
  h.bounds_ms.assign(kLagBounds.begin(), kLagBounds.end());
  for (const auto& c : lag_counts_) {
    h.counts.push_back(c.load(std::memory_order_relaxed));
    h.count += h.counts.back();
  }
  h.sum_ms = lag_sum_ms_.load(std::memory_order_relaxed);
  return h;
}

std::map<std::string, size_t> Engine::queue_depths() {
  std::lock_guard lock(mu_);
  std::map<std::string, size_t> out;
  for (auto& [name, pool] : pools_) out[name] = pool->heap.size();
  out["(delayed)"] = delayed_.size();
  return out;
}

}  // namespace opk::jobs
