// engine.cpp -- the job engine's frame: its construction, start (the
// recovery of what a previous kernel left in flight, then the queues,
// schedules and threads) and stop. The rest of the engine is split by job;
// engine_internal.h lists the files.
#include "jobs/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "jobs/engine_internal.h"
#include "log/logging.h"

namespace opk::jobs {

store::Completion terminated(int64_t run_id, std::string summary, int32_t exit_code) {
  store::Completion c;
  c.run_id = run_id;
  c.outcome = store::kError;
  c.terminated = true;
  c.finished_ms = now_ms();
  c.exit_code = exit_code;
  c.summary = std::move(summary);
  return c;
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

Status Engine::start() {
  // Open runs a store lost from its list of open runs are listed again
  // first, so those left RUNNING are recovered or taken over below and the
  // pending ones queued (the rest of a large store at the next housekeeping).
  repair_open_runs();
  // Cluster: registered first; the runs of this node's earlier epochs and
  // of dead nodes are taken over (engine_cluster.cpp), so what follows
  // finds none of this node's left RUNNING.
  if (opts_.cluster)
    if (Status s = join_cluster(); !s) return s;
  const int64_t now = now_ms();
  // Runs a dead kernel left RUNNING: close them, re-queue where allowed.
  std::vector<store::Completion> closed;
  std::vector<store::RunRow> requeue;
  std::map<std::string, std::string> job_scopes;  // for their events; read once, and only if needed
  bool scopes_read = false;
  for (const auto& r : store_.runs_in_phase(store::kRunning, 100000).value()) {
    if (!r.node.empty() && r.node != opts_.node) continue;  // another node's run
    store::Completion c =
        terminated(r.id, "the kernel stopped while the run was in flight; recovered at start", OPK_ERR_UNAVAILABLE);
    c.logs = {{r.id, 1000000000, now, OPK_LOG_ERROR, "", c.summary}};
    c.end_cause = store::kEndCrash;
    TypeRef ref = resolve_(r.job_type);
    const bool again_too = ref.type && (ref.type->capabilities & OPK_JOB_CAP_REQUEUE);
    if (opts_.events && !scopes_read) {
      for (const auto& j : store_.list_scheduled_jobs().value()) job_scopes[j.id] = j.scope;
      scopes_read = true;
    }
    add_end_events(r, &c, r.started_ms, events::RunEnd::recovered,
                   job_scopes.count(r.scheduled_job_id) ? job_scopes[r.scheduled_job_id] : std::string(), 0, again_too);
    closed.push_back(std::move(c));
    if (again_too) {
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
  for (const auto& r : store_.runs_in_phase(store::kPending, 1000000).value()) {
    TypeRef ref = resolve_(r.job_type);
    if (ref.type) enqueue_locked(r, ref);
  }
  load_schedules();
  for (auto& [name, pool] : pools_)
    for (int i = 0; i < pool->concurrency; ++i) pool->threads.emplace_back([this, p = pool.get()] { worker(p); });
  scheduler_ = std::thread([this] { scheduler(); });
  watchdog_ = std::thread([this] { watchdog(); });
  if (opts_.cluster) {
    cluster_ = std::thread([this] { cluster_loop(); });
    hints_thread_ = std::thread([this] { hint_loop(); });
  }
  return Status::ok();
}

void Engine::stop(int64_t grace_ms) {
  {
    std::unique_lock lock(mu_);
    if (!running_) return;
    running_ = false;
    // Cancelled by the kernel: shown as cancelled, not failed, since no
    // fault ended them (a run the kernel left in flight by dying is
    // recovered at the next start as a failure).
    for (auto& [id, f] : flights_)
      if (f->run->request_cancel(store::kCancelledByKernel, "the kernel is stopping") && f->in_plugin &&
          f->ref.type->c.cancel)
        f->ref.type->c.cancel(f->ref.instance, f->ref.type->self, f->run->context());
    for (auto& [name, pool] : pools_) pool->cv.notify_all();
    sched_cv_.notify_all();
    cluster_cv_.notify_all();
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
  if (cluster_.joinable()) cluster_.join();
  if (hints_thread_.joinable()) hints_thread_.join();
}

}  // namespace opk::jobs
