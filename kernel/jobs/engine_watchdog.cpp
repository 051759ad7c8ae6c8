// engine_watchdog.cpp -- the watchdog: runs past their timeout (cancelled,
// then marked ERROR after the grace), in-flight log lines flushed to the
// store, the store's checkpoints; and the minute's housekeeping: runs RUNNING
// too long flagged stale, old runs and audit rows pruned.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "jobs/engine_internal.h"
#include "log/logging.h"

namespace opk::jobs {

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
      if (!f->claimed) continue;  // a claim being tried: nothing of its own yet
      if (!f->in_plugin) {
        // Waiting in a claimed batch or finished: no timeout applies.
      } else if (f->deadline_ms && now >= f->deadline_ms && !f->hard_deadline_ms) {
        f->hard_deadline_ms = now + opts_.timeout_grace_ms;
        const std::string msg = "timed out after " + std::to_string(f->ref.type->timeout_ms) + " ms; cancelling";
        f->run->context()->log(f->run->context(), OPK_LOG_ERROR, msg.c_str());
        const auto limit = static_cast<int64_t>(f->ref.type->timeout_ms);
        if (f->run->request_cancel({}, {}, store::kEndTimeout, limit) && f->in_plugin && f->ref.type->c.cancel)
          f->ref.type->c.cancel(f->ref.instance, f->ref.type->self, f->run->context());
      } else if (f->hard_deadline_ms && now >= f->hard_deadline_ms && !f->abandoned) {
        f->abandoned = true;
        abandoned.push_back(
            terminated(id, "timed out and did not stop within " + std::to_string(opts_.timeout_grace_ms) + " ms",
                       OPK_ERR_TIMEOUT));
        abandoned.back().end_cause = store::kEndTimeout;
        abandoned.back().end_limit_ms = static_cast<int64_t>(f->ref.type->timeout_ms);
        if (opts_.cluster) {  // fenced as the run's own result would be
          abandoned.back().node = opts_.node;
          abandoned.back().epoch = f->epoch;
        }
        if (f->row)
          add_end_events(*f->row, &abandoned.back(), f->run->snapshot().started_ms, events::RunEnd::timed_out,
                         opts_.events ? job_scope_locked(f->row->scheduled_job_id) : std::string(),
                         f->ref.type->target_duration_ms);
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

void Engine::repair_open_runs() {
  int64_t repaired = 0;
  if (Status s = store_.repair_open_runs(kRepairIds, &repaired); !s)
    log::kernel()->error("cannot look for open runs the store lost (tried again at the next housekeeping): {}",
                         s.message());
  else if (repaired > 0)
    log::kernel()->warn(
        "{} open run(s) the store had lost from its list of open runs (a run committed after a "
        "later one) are listed again: they are claimed, taken over and cancelled as any other",
        repaired);
}

void Engine::housekeeping(int64_t now) {
  int64_t n = 0;
  store::RunEventsOf stale_events;
  if (opts_.events) {
    // Each run flagged stale gets its run.stale event, in the same transaction.
    std::map<std::string, std::string> scopes;  // scheduled job -> scope
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, sc] : schedules_) scopes[id] = sc.job.scope;
    }
    stale_events = [this, scopes = std::move(scopes)](const store::RunRow& r, std::vector<store::EventRow>* out) {
      auto it = scopes.find(r.scheduled_job_id);
      opts_.events->documents().run_stale(r, events::run_scope(r, it == scopes.end() ? "" : it->second), out);
    };
  }
  repair_open_runs();
  if (store_.flag_stale(now - opts_.stale_after_ms, &n, stale_events) && n > 0)
    log::kernel()->warn("{} run(s) RUNNING for longer than {} h flagged stale", n, opts_.stale_after_ms / 3600000);
  if (opts_.events) {
    int64_t pruned = 0;
    if (Status s = opts_.events->prune(now, &pruned); !s)
      log::kernel()->error("pruning the event log failed: {}", s.message());
  }
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
}

}  // namespace opk::jobs
