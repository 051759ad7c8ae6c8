// engine_cluster.cpp -- several kernels on one store (EngineOptions::cluster,
// the PostgreSQL store): the node's registration with a new epoch, its
// heartbeat renewing its lease, the takeover of the runs of nodes whose lease
// lapsed (and of this node's earlier epochs: the start-up recovery of a
// crashed kernel is the same path), the fence (a node declared dead drops
// what it holds and registers again), cancels asked through another kernel,
// scheduled jobs defined through another kernel, the drain, and the hints of
// other kernels that wake idle workers or set the time they wake at (the
// pools' next due run). What a worker claims from the store is in
// engine_dispatch.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "jobs/engine_internal.h"
#include "log/logging.h"

namespace opk::jobs {
namespace {

// Leases are wall-clock times shared by every kernel (never a test's clock).
int64_t cluster_wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string cluster_joined(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ",") + i;
  return s;
}

}  // namespace

Status Engine::join_cluster() {
  store::ClusterNode n;
  n.id = opts_.node;
  n.version = opts_.version;
  n.plugins = opts_.plugins;
  std::vector<std::string> pools, types;
  for (const auto& [name, pool] : pools_) pools.push_back(name + ":" + std::to_string(pool->concurrency));
  n.pools = cluster_joined(pools);
  if (opts_.job_types)
    for (const auto& t : opts_.job_types())
      if (resolve_(t).type) types.push_back(t);
  n.job_types = cluster_joined(types);
  n.started_ms = cluster_wall_ms();
  n.lease_until_ms = n.started_ms + opts_.lease_ms;
  // A node fenced while it drained registers again drained: it finishes
  // what it holds, and takes no new work the operator drained it of.
  bool keep_draining = false;
  {
    std::lock_guard lock(mu_);
    keep_draining = draining_;
  }
  std::string drain_reason = "drained before the node was fenced";
  if (keep_draining)
    if (auto nodes = store_.cluster_nodes())
      for (const auto& was : nodes.value())
        if (was.id == opts_.node && !was.drain_reason.empty()) drain_reason = was.drain_reason;
  if (Status s = store_.register_node(&n); !s)
    return Status(s.code(), "cannot register node '" + opts_.node + "' in the store: " + s.message());
  epoch_.store(n.epoch, std::memory_order_release);
  log::kernel()->info("node '{}' registered at epoch {} (lease {} ms)", opts_.node, n.epoch, opts_.lease_ms);
  if (keep_draining) {
    if (Status s = store_.drain_node(opts_.node, drain_reason); !s)
      log::kernel()->error("node '{}' registered again but not as draining: {}", opts_.node, s.message());
    else
      log::kernel()->warn("node '{}' still drains ({})", opts_.node, drain_reason);
  }
  {
    std::lock_guard lock(mu_);
    claiming_ = !draining_;
    refresh_pool_types_locked();
    // Each pool looks in the store at once, and so learns its next due run.
    for (auto& [name, pool] : pools_) {
      pool->next_due_ms = 1;
      pool->cv.notify_all();
    }
  }
  // The runs this node held before (a crash, a fence) and those of nodes
  // found dead: taken over before any claim.
  std::vector<store::ClusterNode> died;
  if (Status s = store_.expire_nodes(n.started_ms, &died); !s) return s;
  for (const auto& d : died)
    log::kernel()->warn("node '{}' (epoch {}) missed its lease: declared dead, its runs are taken over", d.id, d.epoch);
  for (;;) {
    auto orphans = store_.orphaned_runs(loaded_types(), kTakeOverBatch);
    if (!orphans) return orphans.status();
    if (orphans.value().empty()) break;
    if (Status s = take_over(orphans.value(), "recovered at start by node '" + opts_.node + "'"); !s) return s;
    if (orphans.value().size() < kTakeOverBatch) break;
  }
  return Status::ok();
}

Status Engine::take_over(const std::vector<store::RunRow>& runs, const std::string& why) {
  const int64_t now = now_ms();
  std::vector<store::Completion> closed;
  std::vector<store::RunRow> requeue;
  std::map<std::string, std::string> job_scopes;
  if (opts_.events)
    for (const auto& j : store_.list_scheduled_jobs().value()) job_scopes[j.id] = j.scope;
  for (const auto& r : runs) {
    store::Completion c = terminated(
        r.id, "its kernel (node '" + r.node + "') stopped or lost its lease while the run was in flight; " + why,
        OPK_ERR_UNAVAILABLE);
    c.logs = {{r.id, 1000000000, now, OPK_LOG_ERROR, "", c.summary}};
    c.end_cause = store::kEndCrash;  // shown as recovered, not as a failure of its own
    TypeRef ref = resolve_(r.job_type);
    const bool again_too = ref.type && (ref.type->capabilities & OPK_JOB_CAP_REQUEUE);
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
  // Closed and re-queued together; runs another kernel took over first are
  // left alone by the store (neither closed again nor repeated).
  if (Status s = store_.recover_runs(closed, &requeue); !s)
    return Status(s.code(), "cannot store the takeover of " + std::to_string(closed.size()) +
                                " run(s) of dead nodes (tried again at the next heartbeat): " + s.message());
  std::map<int64_t, int64_t> repeated;
  for (const auto& r : requeue)
    if (r.id) repeated[r.parent_run_id] = r.id;
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    if (auto it = repeated.find(r.id); it != repeated.end()) {
      log::kernel()->warn("run {} of node '{}' taken over: marked ERROR (terminated), re-queued as run {}", r.id,
                          r.node, it->second);
      continue;
    }
    // Said only by the kernel whose takeover closed it (its summary names
    // this kernel); another may have closed it first.
    store::RunRow now_row;
    if (store_.get_run(r.id, &now_row) && now_row.phase == store::kCompleted && now_row.summary == closed[i].summary)
      log::kernel()->warn("run {} of node '{}' taken over: marked ERROR (terminated)", r.id, r.node);
  }
  {
    std::lock_guard lock(mu_);
    for (auto& r : requeue) {
      if (!r.id) continue;
      TypeRef ref = resolve_(r.job_type);
      if (ref.type) enqueue_locked(r, ref);
    }
  }
  done_cv_.notify_all();
  return Status::ok();
}

void Engine::on_fenced(const Status& why) {
  size_t dropped = 0;
  {
    std::lock_guard lock(mu_);
    claiming_ = false;
    // What it holds was taken over (or is about to be): its results are
    // refused by the store; the runs are asked to stop.
    for (auto& [id, f] : flights_) {
      ++dropped;
      f->abandoned = true;
      if (f->run->request_cancel(store::kCancelledByKernel, "the node was fenced") && f->in_plugin &&
          f->ref.type->c.cancel)
        f->ref.type->c.cancel(f->ref.instance, f->ref.type->self, f->run->context());
    }
  }
  log::kernel()->error(
      "node '{}' was fenced at epoch {}: {}; {} run(s) in flight dropped, their results will not be "
      "stored; registering again",
      opts_.node, epoch(), why.message(), dropped);
  if (Status s = join_cluster(); !s)
    log::kernel()->error("node '{}' cannot register again (tried again at the next heartbeat): {}", opts_.node,
                         s.message());
}

std::vector<std::string> Engine::loaded_types() {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [name, pool] : pools_) {
    out.insert(out.end(), pool->short_types.begin(), pool->short_types.end());
    out.insert(out.end(), pool->long_types.begin(), pool->long_types.end());
  }
  return out;
}

void Engine::refresh_pool_types_locked() {
  for (auto& [name, pool] : pools_) {
    pool->short_types.clear();
    pool->long_types.clear();
  }
  if (!opts_.job_types) return;
  for (const auto& t : opts_.job_types()) {
    TypeRef ref = resolve_(t);
    if (!ref.type) continue;
    auto it = pools_.find(ref.type->worker_pool);
    Pool& pool = *(it == pools_.end() ? pools_.at("default") : it->second);
    (claim::is_short(static_cast<int64_t>(ref.type->target_duration_ms)) ? pool.short_types : pool.long_types)
        .push_back(t);
  }
}

Status Engine::claim_from_store(Pool* pool, std::vector<store::RunRow>* rows, std::vector<store::Completion>* done,
                                int64_t due_by) {
  store::ClaimRequest q;
  q.node = opts_.node;
  q.epoch = epoch();
  const int64_t now = now_ms();
  q.now_ms = std::max(now, due_by);
  std::vector<std::string> shorts, longs;
  {
    std::lock_guard lock(mu_);
    shorts = pool->short_types;
    longs = pool->long_types;
    pool->last_store_claim_ms = now;
    pool->claimed_due_ms = q.now_ms;
  }
  if (shorts.empty() && longs.empty()) return done ? store_.complete_runs(*done) : Status::ok();
  if (longs.empty() || shorts.empty()) {
    // One kind of type: short runs in a group, others one at a time.
    q.job_types = longs.empty() ? shorts : longs;
    q.limit = longs.empty() ? kStoreClaimShort : 1;
    return store_.claim_runs(q, rows, done);
  }
  // Both kinds: the head in claim order first; if it is short, the short
  // runs after it join it.
  q.job_types = shorts;
  q.job_types.insert(q.job_types.end(), longs.begin(), longs.end());
  q.limit = 1;
  const size_t before = rows->size();
  if (Status s = store_.claim_runs(q, rows, done); !s) return s;
  if (rows->size() == before || std::find(shorts.begin(), shorts.end(), rows->back().job_type) == shorts.end())
    return Status::ok();
  q.job_types = shorts;
  q.limit = kStoreClaimShort - 1;
  return store_.claim_runs(q, rows, nullptr);
}

void Engine::refresh_schedules() {
  auto jobs = store_.list_scheduled_jobs();
  if (!jobs) return;
  const int64_t now = now_ms();
  std::unique_lock lock(mu_);
  bool changed = false;
  for (const auto& j : jobs.value()) {
    auto it = schedules_.find(j.id);
    if (it != schedules_.end() && it->second.job.updated_ms == j.updated_ms && it->second.job.enabled == j.enabled)
      continue;
    // Defined or changed through another kernel: any node fires its slots
    // (the unique slot key keeps each slot to one run).
    int64_t next = j.next_run_ms;
    if (next == 0) next = next_slot(j, now, nullptr).value_or(0);
    if (!j.enabled || j.planning == "disabled") next = 0;
    schedules_[j.id] = {j, next};
    changed = true;
  }
  // Deleted through another kernel: gone from the list, and still gone when
  // read again (a job defined here after the list was read is kept).
  std::vector<std::string> missing;
  for (const auto& [id, sc] : schedules_)
    if (!std::any_of(jobs.value().begin(), jobs.value().end(),
                     [&id = id](const store::ScheduledJob& j) { return j.id == id; }))
      missing.push_back(id);
  for (const auto& id : missing) {
    store::ScheduledJob gone;
    lock.unlock();
    const bool deleted = store_.get_scheduled_job(id, &gone).code() == OPK_ERR_NOT_FOUND;
    lock.lock();
    if (deleted && schedules_.erase(id)) changed = true;
  }
  if (changed) sched_cv_.notify_all();
}

void Engine::cluster_loop() {
  const int64_t beat_ms = std::max<int64_t>(opts_.lease_ms / 3, 1);
  int64_t next_beat = cluster_wall_ms() + beat_ms;
  std::unique_lock lock(mu_);
  while (running_) {
    cluster_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, next_beat - cluster_wall_ms())),
                         [&] { return !running_ || cancel_hint_ || cluster_wall_ms() >= next_beat; });
    if (!running_) break;
    const int64_t now = cluster_wall_ms();
    const bool beat = now >= next_beat;
    const bool cancels = beat || cancel_hint_;
    cancel_hint_ = false;
    const std::string status = draining_ && flights_.empty() ? "drained" : flights_.empty() ? "idle" : "busy";
    lock.unlock();
    if (beat) {
      next_beat = now + beat_ms;
      store::ClusterNode me;
      Status s = store_.heartbeat_node(opts_.node, epoch(), status, now, now + opts_.lease_ms, &me);
      if (s.code() == OPK_ERR_CONFLICT) {
        on_fenced(s);
      } else if (!s) {
        log::kernel()->error("node '{}': heartbeat not stored (its lease ends in {} ms): {}", opts_.node,
                             opts_.lease_ms - beat_ms, s.message());
      } else if (me.status == "draining" || me.status == "drained") {
        std::lock_guard relock(mu_);
        if (!draining_) {
          log::kernel()->warn("node '{}' drains: it claims no new run ({})", opts_.node, me.drain_reason);
          // Its queued runs stay PENDING in the store: other nodes claim them.
          for (auto& [name, pool] : pools_) pool->heap.clear();
          delayed_.clear();
        }
        draining_ = true;
        claiming_ = false;
      }
      std::vector<store::ClusterNode> died;
      if (Status e = store_.expire_nodes(now, &died); !e)
        log::kernel()->error("cannot look for dead nodes: {}", e.message());
      for (const auto& d : died)
        log::kernel()->warn("node '{}' (epoch {}) missed its lease: declared dead, its runs are taken over", d.id,
                            d.epoch);
      for (;;) {
        auto orphans = store_.orphaned_runs(loaded_types(), kTakeOverBatch);
        if (!orphans || orphans.value().empty()) break;
        if (Status t = take_over(orphans.value(), "taken over by node '" + opts_.node + "'"); !t) {
          log::kernel()->error("{}", t.message());
          break;
        }
        if (orphans.value().size() < kTakeOverBatch) break;
      }
      refresh_schedules();
      std::lock_guard relock(mu_);
      refresh_pool_types_locked();
    }
    if (cancels) {
      // Cancels asked through other kernels for runs running here.
      auto asked = store_.cancel_requests(opts_.node, epoch());
      if (asked)
        for (const auto& [id, who] : asked.value()) {
          std::lock_guard relock(mu_);
          auto it = flights_.find(id);
          if (it == flights_.end() || it->second->run->cancel_requested()) continue;
          Flight& f = *it->second;
          if (f.in_plugin && !f.ref.type->cancellable()) continue;  // refused where it was asked
          f.run->context()->log(f.run->context(), OPK_LOG_WARN,
                                ("cancel requested by " + who.first + ": " + who.second).c_str());
          if (f.run->request_cancel(who.first, who.second) && f.in_plugin)
            f.ref.type->c.cancel(f.ref.instance, f.ref.type->self, f.run->context());
        }
    }
    lock.lock();
  }
}

void Engine::hint_loop() {
  std::string unheard;  // why hints cannot be heard, as last logged
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (!running_) return;
    }
    store::Hint hint;
    // Short waits: stop() joins this thread.
    const bool heard = store_.wait_hint(std::min<int64_t>(opts_.poll_ms, 100), &hint);
    if (hint.unheard != unheard) {
      if (!hint.unheard.empty())
        log::kernel()->warn(
            "node '{}' cannot hear other kernels' hints ({}); its idle workers look for new runs in the store every "
            "{} ms (jobs.claim_poll_ms) until it can",
            opts_.node, hint.unheard, opts_.poll_ms);
      else
        log::kernel()->info("node '{}' hears other kernels' hints again", opts_.node);
      unheard = hint.unheard;
    }
    if (!heard) continue;
    std::lock_guard lock(mu_);
    if (hint.due_ms <= now_ms()) {
      // Runs due now: idle workers claim at once.
      ++hints_;
      for (auto& [name, pool] : pools_) pool->cv.notify_all();
    } else if (hint.due_ms != store::kNoHintDue) {
      // Runs due later: a worker of each pool wakes at that start and claims
      // (nothing if none is of its types), then reads its next due run.
      for (auto& [name, pool] : pools_)
        if (pool->next_due_ms == 0 || hint.due_ms < pool->next_due_ms) {
          pool->next_due_ms = hint.due_ms;
          pool->cv.notify_all();
        }
    }
    if (hint.cancels) {
      cancel_hint_ = true;
      cluster_cv_.notify_all();
    }
  }
}

void Engine::read_next_due(Pool* pool) {
  std::vector<std::string> types;
  int64_t after = 0;
  {
    std::lock_guard lock(mu_);
    types = pool->short_types;
    types.insert(types.end(), pool->long_types.begin(), pool->long_types.end());
    after = pool->claimed_due_ms;
  }
  // A failed read leaves the pool to hints and the poll (a failing store
  // fails its claims too, which are logged).
  auto due = store_.next_due(types, after);
  if (!due || due.value() == 0) return;
  std::lock_guard lock(mu_);
  if (pool->next_due_ms == 0 || due.value() < pool->next_due_ms) {
    pool->next_due_ms = due.value();
    pool->cv.notify_all();
  }
}

Status Engine::workers(std::vector<Worker>* out) {
  out->clear();
  size_t here = 0;
  {
    std::lock_guard lock(mu_);
    here = flights_.size();
  }
  if (!opts_.cluster) {
    Worker w;
    w.self = true;
    w.in_flight = here;
    w.node.id = opts_.node;
    w.node.version = opts_.version;
    w.node.plugins = opts_.plugins;
    w.node.status = here ? "busy" : "idle";
    out->push_back(std::move(w));
    return Status::ok();
  }
  auto nodes = store_.cluster_nodes();
  if (!nodes) return nodes.status();
  for (const auto& n : nodes.value()) {
    Worker w;
    w.node = n;
    w.self = n.id == opts_.node && n.epoch == epoch();
    if (w.self) w.in_flight = here;
    out->push_back(std::move(w));
  }
  return Status::ok();
}

Status Engine::drain(const std::string& node, const Actor& actor, const std::string& reason) {
  Status s;
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
    s = Status::invalid("reason: a reason is required to drain a worker");
  else if (!opts_.cluster)
    s = Status(OPK_ERR_UNSUPPORTED, "drain: this kernel's store serves one kernel; stop the kernel instead");
  else
    s = store_.drain_node(node, reason);
  if (s && node == opts_.node) {
    // This node: at once (another learns it at its next heartbeat).
    std::lock_guard lock(mu_);
    for (auto& [name, pool] : pools_) pool->heap.clear();
    delayed_.clear();
    draining_ = true;
    claiming_ = false;
    log::kernel()->warn("node '{}' drains: it claims no new run ({})", opts_.node, reason);
  }
  audit(actor, "worker.drain", "node " + node, reason, "", s);
  return s;
}

}  // namespace opk::jobs
