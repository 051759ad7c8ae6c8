// engine_scheduler.cpp -- the scheduler: the scheduled jobs' next slots
// (parsed schedules, time zones, jitter, catch-up after downtime), the
// scheduler thread that stores and queues the runs of slots falling due and
// moves runs with a later start into their pool when due, and the call of the
// minute's housekeeping (engine_watchdog.cpp).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "clock/clock.h"
#include "jobs/engine_internal.h"
#include "log/logging.h"

#include <date/tz.h>

namespace opk::jobs {

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

void Engine::load_schedules() {
  const int64_t now = now_ms();
  for (auto& j : store_.list_scheduled_jobs().value()) {
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
        // Until the chunk's runs are stored and queued, no job of it is deleted.
        std::lock_guard firing(fire_mu_);
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
        // A slot a run gate holds (a tenant in maintenance) is stored as a
        // skipped run, not queued: an operator sees the slot and why.
        if (opts_.skip_slot)
          for (auto& r : rows)
            if (std::string why; opts_.skip_slot(r, &why)) {
              r.phase = store::kCompleted;
              r.outcome = kSkipped;
              r.summary = why;
              r.finished_ms = now;
            }
        std::vector<std::string> gone;
        Status stored = store_.create_runs(&rows, nullptr, &gone);
        if (!stored && !gone.empty()) {
          // Deleted through another kernel since this one read its
          // schedules: the job is dropped here too, its slot without a run
          // (the store refuses it), and the chunk's other runs stored.
          std::lock_guard relock(mu_);
          for (const auto& id : gone) {
            schedules_.erase(id);
            log::kernel()->info(
                "scheduled job '{}' was deleted (through another kernel): its slot is dropped and it "
                "fires no more here",
                id);
          }
          size_t kept = 0;
          for (size_t i = 0; i < rows.size(); ++i)
            if (std::find(gone.begin(), gone.end(), rows[i].scheduled_job_id) == gone.end()) {
              rows[kept] = std::move(rows[i]);
              refs[kept++] = refs[i];
            }
          rows.resize(kept);
          refs.resize(kept);
        }
        if (!stored && !gone.empty()) stored = store_.create_runs(&rows);
        if (Status s = stored; !s) {
          log::kernel()->error("cannot create {} scheduled run(s), their slots are tried again in {} ms: {}",
                               rows.size(), kFireRetryMs, s.message());
          std::fill(unstored.begin() + static_cast<std::ptrdiff_t>(from),
                    unstored.begin() + static_cast<std::ptrdiff_t>(to), true);
          fire_again_at = now + kFireRetryMs;
          continue;
        }
        std::lock_guard relock(mu_);
        for (size_t i = 0; i < rows.size(); ++i)
          if (rows[i].id != 0 && rows[i].phase == store::kPending && running_)  // id 0: slot already fired
            enqueue_locked(std::move(rows[i]), refs[i]);
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
        housekeeping(now);
        next_housekeeping = now + kHousekeepingMs;
      }
      lock.lock();
      continue;
    }
    wake = std::min(wake, next_housekeeping);
    if (!delayed_.empty()) wake = std::min(wake, delayed_.front().row->scheduled_ms - kFireAheadMs);
    clock::wait_once(lock, sched_cv_, wake);  // the kernel's clock: a test's advances wake it
  }
}

}  // namespace opk::jobs
