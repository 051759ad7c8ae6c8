// engine_views.cpp -- what the engine serves to readers: waiting for a run,
// a run with its log and steps (in-flight lines included), live log tails,
// the inventory (a shared copy, read again after any change), a scheduled
// job's drill-in and next fire times, queue depths and the dispatch lag.
#include <algorithm>
#include <chrono>

#include "jobs/engine_internal.h"

namespace opk::jobs {

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

bool Engine::wait(int64_t run_id, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(mu_);
  while (true) {
    lock.unlock();
    store::RunRow row;
    const bool complete = store_.get_run(run_id, &row) && row.phase == store::kCompleted;
    lock.lock();
    auto it = flights_.find(run_id);
    if (complete && (it == flights_.end() || !it->second->claimed || it->second->abandoned)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    done_cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

Status Engine::get(int64_t run_id, RunView* out) {
  Status s = store_.get_run(run_id, &out->row);
  if (!s) return s;
  out->logs = log_tail(run_id, 0, 1000000);
  auto steps = store_.steps(run_id);
  if (!steps) return steps.status();  // a run read without its steps would mislead
  out->steps = std::move(steps).value();
  std::shared_ptr<Flight> f = claimed_flight(run_id);
  out->started = f && f->run->phase() != Phase::pending;
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

std::shared_ptr<Engine::Flight> Engine::claimed_flight(int64_t run_id) {
  std::lock_guard lock(mu_);
  auto it = flights_.find(run_id);
  return it != flights_.end() && it->second->claimed ? it->second : nullptr;
}

std::vector<store::LogRow> Engine::log_tail(int64_t run_id, int64_t after_seq, size_t limit) {
  // A claim still being tried is no copy of the run's log: the store has it.
  std::shared_ptr<Flight> f = claimed_flight(run_id);
  if (!f) return store_.logs(run_id, after_seq, limit).value();
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
    const bool in_flight = claimed_flight(run_id) != nullptr;
    bool running;
    {
      std::lock_guard lock(mu_);
      running = running_;
    }
    auto lines = log_tail(run_id, after_seq, limit);
    if (!lines.empty()) return lines;
    if (!in_flight) {
      store::RunRow row;
      if (!store_.get_run(run_id, &row) || row.phase == store::kCompleted) {
        // Its last lines were stored with its completion, which may have
        // committed after the read above (another node's run, or one this
        // kernel settled meanwhile): read again before saying it is over.
        lines = log_tail(run_id, after_seq, limit);
        *finished = lines.size() < limit;  // nothing more will come
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
  auto all = std::make_shared<const std::vector<store::InventoryRow>>(store_.inventory().value());
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
    const std::string st = !r.last_run_id
                               ? "never"
                               : store::run_status(r.last_phase, r.last_outcome, r.last_cancelled_by, r.last_end_cause);
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
  auto runs = store_.list_runs(f);
  if (!runs) return runs.status();
  out->runs = std::move(runs).value();
  const int64_t today = now_ms() / 86400000;
  auto read = store_.failures_per_day(id, (today - 29) * 86400000);
  if (!read) return read.status();
  auto failures = std::move(read).value();
  auto read_terminated = store_.failures_per_day(id, (today - 29) * 86400000, true);
  if (!read_terminated) return read_terminated.status();
  auto stopped = std::move(read_terminated).value();
  out->failures_30d.clear();
  out->terminated_30d.clear();
  for (int64_t day = today - 29; day <= today; ++day) {
    out->failures_30d.emplace_back(day * 86400000, failures.count(day) ? failures[day] : 0);
    out->terminated_30d.emplace_back(day * 86400000, stopped.count(day) ? stopped[day] : 0);
  }
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
