// engine_dispatch.cpp -- the dispatcher: the pools' queues of pending runs,
// the workers that claim them (what a claim takes is claim_policy.h), record
// them RUNNING, call their plugins and store their completions.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "jobs/engine_internal.h"
#include "log/logging.h"

namespace opk::jobs {
namespace {

opk_trigger trigger_of(const std::string& t) {
  if (t == "schedule") return OPK_TRIGGER_SCHEDULE;
  if (t == "retry") return OPK_TRIGGER_RETRY;
  if (t == "chain") return OPK_TRIGGER_CHAIN;
  if (t == "recovery") return OPK_TRIGGER_RECOVERY;
  return OPK_TRIGGER_MANUAL;
}

}  // namespace

void Engine::enqueue_locked(store::RunRow row, const TypeRef& ref) {
  const bool short_run = claim::is_short(static_cast<int64_t>(ref.type->target_duration_ms));
  enqueue_item_locked({std::make_shared<store::RunRow>(std::move(row)), ref, short_run});
}

void Engine::enqueue_item_locked(Item item) {
  if (!running_) return;  // stays PENDING in the store: queued at the next start
  if (draining_) return;  // cluster: stays PENDING in the store for other nodes
  if (!item.due && item.row->scheduled_ms > now_ms()) {
    // Not due yet: the scheduler moves it to its pool when it is.
    const auto row = item.row;
    delayed_.push_back(std::move(item));
    std::push_heap(delayed_.begin(), delayed_.end(),
                   [](const Item& a, const Item& b) { return later_start(*a.row, *b.row); });
    // The scheduler wakes for the earliest start: only a new earliest moves it.
    if (delayed_.front().row == row) sched_cv_.notify_all();
    return;
  }
  auto it = pools_.find(item.row->pool);
  Pool& pool = *(it == pools_.end() ? pools_.at("default") : it->second);
  pool.heap.push_back(std::move(item));
  std::push_heap(pool.heap.begin(), pool.heap.end());
  pool.cv.notify_one();
}

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
  c.cancelled_by = s.cancelled_by;
  c.end_cause = s.end_cause;
  c.end_by = s.end_by;
  c.end_reason = s.end_reason;
  c.end_limit_ms = s.end_limit_ms;
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
  flight->row = item.row;
  return flight;
}

std::string Engine::job_scope_locked(const std::string& id) const {
  if (id.empty()) return {};
  auto it = schedules_.find(id);
  return it == schedules_.end() ? std::string() : it->second.job.scope;
}

void Engine::add_end_events(const store::RunRow& row, store::Completion* c, int64_t started_ms, events::RunEnd how,
                            const std::string& job_scope, uint64_t target_duration_ms, bool requeued) const {
  if (!opts_.events) return;
  events::RunFacts f;
  f.run = &row;
  f.end = c;
  f.started_ms = started_ms;
  f.scope = events::run_scope(row, job_scope);
  f.node = opts_.node;
  f.target_duration_ms = target_duration_ms;
  f.how = how;
  f.requeued = requeued;
  try {
    opts_.events->documents().run_ended(f, &c->events);
  } catch (const std::exception& e) {  // the run's end is stored without its event
    log::kernel()->error("run {}: its event could not be built: {}", row.id, e.what());
  }
}

void Engine::execute(const Item& item, const std::shared_ptr<Flight>& flight, std::vector<store::Completion>* done) {
  // Claimed ahead of its start (kFireAheadMs): recorded RUNNING, it waits
  // here, never longer than that window (the clock may have been set back).
  if (item.due) {
    const int64_t now = now_ms(), until = std::min(item.row->scheduled_ms, now + kFireAheadMs);
    // A pause of at most kFireAheadMs, not an instant of the wall clock: the
    // kernel's clock may be a test's.
    if (until > now) std::this_thread::sleep_for(std::chrono::milliseconds(until - now));
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
  std::string job_scope;
  {
    std::lock_guard lock(mu_);
    // Cancelled while it waited in a claimed batch, or the engine is stopping:
    // the plugin is not called at all.
    if (!running_) flight->run->request_cancel(store::kCancelledByKernel, "the kernel is stopping");
    skip = flight->run->cancel_requested();
    if (item.ref.type->timeout_ms) flight->deadline_ms = start + static_cast<int64_t>(item.ref.type->timeout_ms);
    flight->in_plugin = !skip;
    if (opts_.events) job_scope = job_scope_locked(item.row->scheduled_job_id);
  }
  const uint64_t target = item.ref.type->target_duration_ms;
  if (skip) {
    flight->run->mark_completed(now_ms(), OPK_ERR_CANCELLED);
    done->push_back(completion_of(*flight->run, flight->run->snapshot(), 0));
    add_end_events(*item.row, &done->back(), 0, events::RunEnd::finished, job_scope, target);
    return;
  }
  opk_status st = OPK_ERR_FAILED;
  try {
    st = item.ref.type->c.run(item.ref.instance, item.ref.type->self, flight->run->context());
  } catch (...) {  // a last guard only: exceptions must not cross the ABI
    flight->run->context()->log(flight->run->context(), OPK_LOG_ERROR, "run threw an exception across the ABI");
  }
  int64_t flushed = 0;
  bool timed_out = false;
  {
    std::lock_guard lock(mu_);
    // Completed inside the lock: a cancel cannot land between the plugin's
    // return and the outcome being fixed.
    flight->in_plugin = false;
    flight->run->mark_completed(now_ms(), st);
    flushed = flight->flushed_seq;
    timed_out = flight->hard_deadline_ms != 0;  // its timeout cancelled it
  }
  done->push_back(completion_of(*flight->run, flight->run->snapshot(), flushed));
  add_end_events(*item.row, &done->back(), start,
                 timed_out && st != OPK_OK ? events::RunEnd::timed_out : events::RunEnd::finished, job_scope, target);
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
  // A completion the store refused is tried again (a connection the server
  // closed, a failover): storing one twice changes nothing, and one dropped
  // would leave its run RUNNING on a live node, taken over by no kernel.
  auto flush = [&] {
    if (done.empty()) return;
    Status s = store_.complete_runs(done);
    for (int attempt = 1; !s && attempt < kCompleteAttempts; ++attempt) {
      log::kernel()->error("storing {} completed run(s) failed, trying again: {}", done.size(), s.message());
      if (attempt > 1) {
        std::unique_lock lock(mu_);
        pool->cv.wait_for(lock, std::chrono::milliseconds(kFireRetryMs), [&] { return !running_; });
      }
      s = store_.complete_runs(done);
    }
    if (!s)
      log::kernel()->error("storing {} completed run(s) failed; they stay RUNNING until recovered: {}", done.size(),
                           s.message());
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
  uint64_t hints_seen = 0;
  bool claim_again = false;  // cluster: the last claim from the store found runs; more may be due
  while (true) {
    batch.clear();
    // Cluster: due runs are claimed from the store (other kernels' runs, or
    // this one's after a restart) when the queue is empty, and at least
    // every poll_ms while it is not, so they do not wait behind it; an idle
    // pool also at the start of its next due run.
    bool from_store = false;
    int64_t due_by = 0;  // woken for the pool's next due run: its start
    {
      std::unique_lock lock(mu_);
      if (!done.empty() && (pool->heap.empty() || !running_ || (opts_.cluster && !claiming_))) {
        // Nothing to claim with them: store the completions on their own.
        lock.unlock();
        flush();
        lock.lock();
      }
      if (opts_.cluster && !claim_again) {
        // Until a run is queued here, a hint of runs due now, the pool's
        // next due run (the first worker to see it due takes it, claimed up
        // to kFireAheadMs before its start as this node's own runs are) or
        // the poll.
        const auto poll_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.poll_ms);
        while (running_ && !(claiming_ && (!pool->heap.empty() || hints_ != hints_seen))) {
          auto until = poll_until;
          if (claiming_ && pool->next_due_ms != 0) {
            const int64_t in_ms = pool->next_due_ms - kFireAheadMs - now_ms();
            if (in_ms <= 0) {
              due_by = pool->next_due_ms;
              pool->next_due_ms = 0;
              break;
            }
            until = std::min(until, std::chrono::steady_clock::now() + std::chrono::milliseconds(in_ms));
          }
          if (pool->cv.wait_until(lock, until) == std::cv_status::timeout &&
              std::chrono::steady_clock::now() >= poll_until)
            break;
        }
      }
      if (opts_.cluster) {
        claim_again = false;
        hints_seen = hints_;
        if (!running_) break;
        if (!claiming_) continue;  // draining or fenced
        from_store = pool->heap.empty() || due_by != 0 || now_ms() - pool->last_store_claim_ms >= opts_.poll_ms ||
                     now_ms() < pool->last_store_claim_ms;
      } else {
        pool->cv.wait(lock, [&] { return !running_ || !pool->heap.empty(); });
      }
      if (!running_) break;
    }
    std::vector<int64_t> ids, skipped;
    std::vector<std::shared_ptr<Flight>> claimed;
    if (from_store) {
      std::vector<store::RunRow> rows;
      const bool carry = !done.empty() && completions_due();
      Status s = claim_from_store(pool, &rows, carry ? &done : nullptr, due_by);
      if (!s) {
        log::kernel()->error("cannot claim runs from the store, trying again in {} ms: {}", kFireRetryMs, s.message());
        flush();
        std::unique_lock lock(mu_);
        pool->cv.wait_for(lock, std::chrono::milliseconds(kFireRetryMs), [&] { return !running_; });
        continue;
      }
      if (carry) settle();
      claim_again = !rows.empty();
      if (rows.empty()) {
        // Nothing due: wait for the next due run, a hint or the next poll.
        read_next_due(pool);
        std::lock_guard lock(mu_);
        if (pool->heap.empty()) continue;
      }
      {
        std::lock_guard lock(mu_);
        for (auto& r : rows) {
          TypeRef ref = resolve_(r.job_type);
          if (!ref.type) {
            // Unloaded since the claim's list was made: closed, not lost.
            store::Completion c =
                terminated(r.id, "job type '" + r.job_type + "' is no longer loaded on node '" + opts_.node + "'");
            c.node = opts_.node;
            c.epoch = epoch();
            done.push_back(std::move(c));
            if (done_since_ms == 0) done_since_ms = now_ms();
            continue;
          }
          // Claimed as due: one claimed ahead of its start waits for it (execute).
          Item item{std::make_shared<store::RunRow>(std::move(r)), ref,
                    claim::is_short(static_cast<int64_t>(ref.type->target_duration_ms)), true};
          // A flight of another worker of this node may be here: one that
          // is claiming the run by id, and will find it taken (this claim
          // holds it). It is taken over as it is, with a cancel asked of it
          // meanwhile, and that worker leaves it alone (unclaim below).
          auto& slot = flights_[item.row->id];
          auto flight = slot && !slot->claimed ? slot : make_flight(item);
          flight->row = item.row;
          flight->epoch = epoch();
          flight->claimed = true;
          slot = flight;
          claimed.push_back(std::move(flight));
          batch.push_back(std::move(item));
        }
        // A full claim: more may be due; another worker looks too.
        if (rows.size() >= kStoreClaimShort) pool->cv.notify_one();
      }
      if (batch.empty()) continue;
    } else {
      std::unique_lock lock(mu_);
      if (pool->heap.empty()) continue;
      // Claim the head; runs of types declared short are claimed in a group so
      // one transaction records many of them RUNNING (group commit), as the
      // claim policy bounds it (claim::takes).
      claim::Taken taken;
      do {
        std::pop_heap(pool->heap.begin(), pool->heap.end());
        batch.push_back(std::move(pool->heap.back()));
        pool->heap.pop_back();
        taken = claim::add(taken, batch.back().queued());
      } while (!pool->heap.empty() &&
               claim::takes(taken, pool->heap.front().queued(), pool->heap.size(), pool->concurrency));
    }
    if (!from_store) {
      // A run released from hold can be queued twice: keep one copy.
      std::sort(batch.begin(), batch.end(), [](const Item& a, const Item& b) { return b < a; });
      batch.erase(
          std::unique(batch.begin(), batch.end(), [](const Item& a, const Item& b) { return a.row->id == b.row->id; }),
          batch.end());
      // The stored start: now, or the start of a run claimed ahead of it.
      const int64_t claimed_ms = now_ms();
      int64_t start_ms = claimed_ms;
      // Every run being claimed is in flight from before its claim is written:
      // readers may see it RUNNING before the claim's flush returns, and a
      // cancel then finds it here (it is not started at all). A run another
      // worker holds already (a released run queued twice) is not claimed.
      claimed.assign(batch.size(), nullptr);
      const int64_t claim_epoch = epoch();
      {
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < batch.size(); ++i) {
          auto [slot, fresh] = flights_.try_emplace(batch[i].row->id);
          if (!fresh) continue;
          slot->second = claimed[i] = make_flight(batch[i]);
          claimed[i]->epoch = claim_epoch;
          ids.push_back(batch[i].row->id);
          if (batch[i].due)
            start_ms = std::max(start_ms, std::min(batch[i].row->scheduled_ms, claimed_ms + kFireAheadMs));
        }
      }
      // Drops the flights of runs this worker did not claim after all.
      // Not one another worker put in its place (cluster: claim_from_store).
      auto unclaim = [&](const std::function<bool(int64_t)>& which) {
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < batch.size(); ++i)
          if (claimed[i] && which(batch[i].row->id)) {
            if (auto it = flights_.find(batch[i].row->id);
                it != flights_.end() && it->second == claimed[i] && !claimed[i]->claimed)
              flights_.erase(it);
            claimed[i].reset();
          }
      };
      // The previous batch's completions share this claim's commit when they
      // are due, or before a long run (it would keep them for its whole length).
      const bool carry = !done.empty() && (completions_due() || !batch.front().short_run);
      Status s;
      if (opts_.cluster) {
        // The runs this node queued itself, claimed with the same guarantee
        // as any claim from the store (its node live at its epoch, rows
        // another kernel holds skipped).
        store::ClaimRequest q;
        q.node = opts_.node;
        q.epoch = claim_epoch;
        q.ids = ids;
        q.now_ms = claimed_ms;
        q.started_ms = start_ms;
        std::vector<store::RunRow> got;
        s = store_.claim_runs(q, &got, carry ? &done : nullptr);
        if (s) {
          std::vector<int64_t> won;
          for (const auto& r : got) won.push_back(r.id);
          std::sort(won.begin(), won.end());
          for (int64_t id : ids)
            if (!std::binary_search(won.begin(), won.end(), id)) skipped.push_back(id);
        }
      } else {
        s = store_.mark_running(ids, start_ms, opts_.node, &skipped, carry ? &done : nullptr);
      }
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
      // Held or cancelled meanwhile, or claimed by another worker: not claimed.
      if (!skipped.empty())
        unclaim([&](int64_t id) { return std::find(skipped.begin(), skipped.end(), id) != skipped.end(); });
      std::lock_guard lock(mu_);
      for (auto& f : claimed)
        if (f) f->claimed = true;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!claimed[i]) continue;
      execute(batch[i], claimed[i], &done);
      if (opts_.cluster) {
        // Fenced: stored only while this node still holds the run.
        done.back().node = opts_.node;
        done.back().epoch = claimed[i]->epoch;
      }
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

}  // namespace opk::jobs
