#include "jobs/run.h"

#include <algorithm>

#include "clock/clock.h"
#include "store/store.h"

namespace opk::jobs {
namespace {
const char* cstr_or_null(const std::string& s) {
  return s.empty() ? nullptr : s.c_str();
}
// Bounds a run's memory if a plugin logs without end (lines past it are dropped).
constexpr size_t kMaxLogLines = 100000;
}  // namespace

int64_t now_ms() {
  return clock::now_ms();
}

Run::Run(int64_t id, std::string job_type, RunRequest request)
    : id_(id), job_type_(std::move(job_type)), request_(std::move(request)) {
  state_.id = id_;
  state_.job_type = job_type_;
  principal_.struct_size = sizeof principal_;
  principal_.user_id = cstr_or_null(request_.user_id);
  principal_.role = cstr_or_null(request_.role);
  principal_.scope = cstr_or_null(request_.scope);
  ctx_.struct_size = sizeof ctx_;
  ctx_.run_id = id_;
  ctx_.parent_run_id = request_.parent_run_id;
  ctx_.job_type_id = job_type_.c_str();
  ctx_.scheduled_job_id = cstr_or_null(request_.scheduled_job_id);
  ctx_.params_json = request_.params_json.c_str();
  ctx_.target_tenant = cstr_or_null(request_.target_tenant);
  ctx_.dry_run = request_.dry_run ? 1 : 0;
  ctx_.trigger = request_.trigger;
  ctx_.range_start_ms = request_.range_start_ms;
  ctx_.range_end_ms = request_.range_end_ms;
  ctx_.triggered_by = &principal_;
  ctx_.reason = cstr_or_null(request_.reason);
  ctx_.host_data = reinterpret_cast<opk_host_data*>(this);
  ctx_.log = &cb_log;
  ctx_.progress = &cb_progress;
  ctx_.set_result = &cb_set_result;
  ctx_.is_cancelled = &cb_is_cancelled;
  ctx_.step_begin = &cb_step_begin;
  ctx_.step_end = &cb_step_end;
  ctx_.set_output_json = &cb_set_output_json;
  ctx_.wait = &cb_wait;
}

Run* Run::from(const opk_run_context* c) {
  return c ? reinterpret_cast<Run*>(c->host_data) : nullptr;
}

bool Run::request_cancel(const std::string& by, const std::string& reason, const std::string& cause, int64_t limit_ms) {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    first = !cancelled_.load(std::memory_order_acquire);
    if (first) {
      cancel_by_ = by;
      cancel_reason_ = reason;
      cancel_cause_ = !cause.empty()                    ? cause
                      : by == store::kCancelledByKernel ? store::kEndShutdown
                      : !by.empty()                     ? store::kEndOperator
                                                        : std::string();
      cancel_limit_ms_ = limit_ms;
      cancelled_.store(true, std::memory_order_release);
    }
  }
  {
    // Taken so a sleeper between its check and its wait cannot miss this.
    std::lock_guard lock(wait_mu_);
  }
  wait_cv_.notify_all();
  return first;
}

void Run::mark_running(int64_t now) {
  std::lock_guard lock(mu_);
  state_.phase = Phase::running;
  state_.started_ms = now;
}

void Run::mark_completed(int64_t now, opk_status status) {
  std::lock_guard lock(mu_);
  if (status != OPK_OK) {
    state_.outcome = OPK_OUTCOME_ERROR;
    if (state_.exit_code == 0) state_.exit_code = status;
  }
  if (status == OPK_ERR_CANCELLED || (status != OPK_OK && cancel_requested())) {
    state_.terminated = true;
    if (cancel_requested() && !cancel_by_.empty() &&
        (cancel_cause_ == store::kEndOperator || cancel_cause_ == store::kEndShutdown)) {
      // Cancelled on someone's request: said so, whatever the plugin wrote.
      state_.cancelled_by = cancel_by_;
      state_.summary = cancel_by_ == "kernel" ? "cancelled: the kernel is stopping"
                                              : "cancelled by " + cancel_by_ + ": " + cancel_reason_;
    } else if (state_.summary.empty()) {
      state_.summary = "cancelled";
    }
    if (cancel_requested() && !cancel_cause_.empty()) {
      state_.end_cause = cancel_cause_;
      state_.end_by = cancel_by_;
      state_.end_reason = cancel_reason_;
      state_.end_limit_ms = cancel_limit_ms_;
    }
  }
  // A failure without a summary is summed up by its last error line (the
  // SDK logs a returned Status's message as one), so lists show why.
  if (status != OPK_OK && state_.summary.empty()) {
    for (auto it = state_.log.rbegin(); it != state_.log.rend(); ++it) {
      if (it->level != OPK_LOG_ERROR) continue;
      state_.summary = it->message.substr(0, 500);
      break;
    }
  }
  // A step still open ends with the run: its outcome, ERROR if it failed.
  end_step_locked(now, status == OPK_OK ? state_.outcome : OPK_OUTCOME_ERROR, nullptr);
  state_.phase = Phase::completed;
  state_.finished_ms = now;
  if (status == OPK_OK) state_.progress = 100;
}

RunSnapshot Run::snapshot() const {
  std::lock_guard lock(mu_);
  return state_;
}

Phase Run::phase() const {
  std::lock_guard lock(mu_);
  return state_.phase;
}

std::vector<LogLine> Run::log_lines(size_t from, size_t limit) const {
  std::lock_guard lock(mu_);
  if (from >= state_.log.size()) return {};
  const size_t n = std::min(limit, state_.log.size() - from);
  return {state_.log.begin() + static_cast<std::ptrdiff_t>(from),
          state_.log.begin() + static_cast<std::ptrdiff_t>(from + n)};
}

void Run::cb_log(const opk_run_context* self, opk_log_level level, const char* message) {
  Run* r = from(self);
  if (!r || !message) return;
  {
    std::lock_guard lock(r->mu_);
    if (r->state_.log.size() >= kMaxLogLines) return;
    std::string step;
    if (!r->state_.steps.empty() && r->state_.steps.back().end_ms == 0) step = r->state_.steps.back().id;
    r->state_.log.push_back(
        {now_ms(), std::clamp<opk_log_level>(level, OPK_LOG_TRACE, OPK_LOG_CRITICAL), message, step});
  }
  if (r->listener_) r->listener_();
}

void Run::cb_progress(const opk_run_context* self, double percent, const char* message) {
  Run* r = from(self);
  if (!r) return;
  std::lock_guard lock(r->mu_);
  r->state_.progress = std::clamp(percent != percent ? 0.0 : percent, 0.0, 100.0);  // NaN -> 0
  if (message) r->state_.progress_message = message;
}

void Run::cb_set_result(const opk_run_context* self, opk_outcome outcome, int32_t exit_code, const char* summary) {
  Run* r = from(self);
  if (!r) return;
  std::lock_guard lock(r->mu_);
  r->state_.outcome = std::clamp<opk_outcome>(outcome, OPK_OUTCOME_NORMAL, OPK_OUTCOME_ERROR);
  r->state_.exit_code = exit_code;
  r->state_.summary = summary ? summary : "";
}

uint32_t Run::cb_is_cancelled(const opk_run_context* self) {
  Run* r = from(self);
  return r && r->cancel_requested() ? 1 : 0;
}

void Run::end_step_locked(int64_t now, opk_outcome outcome, const char* summary) {
  if (state_.steps.empty() || state_.steps.back().end_ms != 0) return;
  auto& s = state_.steps.back();
  s.end_ms = std::max<int64_t>(now, 1);  // 0 means "still running"
  s.outcome = outcome;
  if (summary) s.summary = summary;
}

opk_status Run::cb_step_begin(const opk_run_context* self, const char* step_id) {
  Run* r = from(self);
  if (!r || !step_id || !*step_id) return OPK_ERR_INVALID_ARGUMENT;
  std::lock_guard lock(r->mu_);
  const int64_t now = now_ms();
  r->end_step_locked(now, OPK_OUTCOME_NORMAL, nullptr);
  r->state_.steps.push_back({step_id, now, 0, OPK_OUTCOME_NORMAL, {}});
  return OPK_OK;
}

opk_status Run::cb_step_end(const opk_run_context* self, opk_outcome outcome, const char* summary) {
  Run* r = from(self);
  if (!r) return OPK_ERR_INVALID_ARGUMENT;
  std::lock_guard lock(r->mu_);
  if (r->state_.steps.empty() || r->state_.steps.back().end_ms != 0) return OPK_ERR_CONFLICT;
  r->end_step_locked(now_ms(), std::clamp<opk_outcome>(outcome, OPK_OUTCOME_NORMAL, OPK_OUTCOME_ERROR), summary);
  return OPK_OK;
}

opk_status Run::cb_set_output_json(const opk_run_context* self, const char* json) {
  Run* r = from(self);
  if (!r || !json) return OPK_ERR_INVALID_ARGUMENT;
  std::lock_guard lock(r->mu_);
  r->state_.output_json = json;
  return OPK_OK;
}

opk_status Run::cb_wait(const opk_run_context* self, int64_t timeout_ms) {
  Run* r = from(self);
  if (!r) return OPK_ERR_INVALID_ARGUMENT;
  if (r->cancel_requested()) return OPK_ERR_CANCELLED;
  if (timeout_ms <= 0) return OPK_OK;
  const int64_t now = clock::now_ms();
  const int64_t deadline = timeout_ms > INT64_MAX - now ? INT64_MAX : now + timeout_ms;
  std::unique_lock lock(r->wait_mu_);
  const bool cancelled = clock::wait_until(lock, r->wait_cv_, deadline, [r] { return r->cancel_requested(); });
  return cancelled ? OPK_ERR_CANCELLED : OPK_OK;
}

}  // namespace opk::jobs
