// run.h -- one run of a job type: the opk_run_context the plugin sees and the
// state it records in memory while it runs (log lines, progress, steps,
// result); the job engine stores them. Callbacks are thread-safe.
#ifndef OPSKERNEL_KERNEL_JOBS_RUN_H
#define OPSKERNEL_KERNEL_JOBS_RUN_H

#include <opskernel/opk_abi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace opk::jobs {

// What the caller asks for; copied into the run.
struct RunRequest {
  std::string params_json = "{}";
  std::string target_tenant;
  bool dry_run = false;
  opk_trigger trigger = OPK_TRIGGER_MANUAL;
  int64_t range_start_ms = 0, range_end_ms = 0;
  std::string user_id, role, scope;  // the triggering user, empty for the system
  std::string reason;
  std::string scheduled_job_id;
  int64_t parent_run_id = 0;
};

struct LogLine {
  int64_t time_ms;
  opk_log_level level;
  std::string message;
  std::string step;  // the step running when it was written, if any
};

struct StepRecord {
  std::string id;
  int64_t start_ms = 0, end_ms = 0;  // end 0 while running
  opk_outcome outcome = OPK_OUTCOME_NORMAL;
  std::string summary;
};

enum class Phase { pending, running, completed };

// A consistent copy of a run's state.
struct RunSnapshot {
  int64_t id = 0;
  std::string job_type;
  Phase phase = Phase::pending;
  opk_outcome outcome = OPK_OUTCOME_NORMAL;
  bool terminated = false;
  int32_t exit_code = 0;
  std::string summary, output_json;
  double progress = 0;
  std::string progress_message;
  int64_t started_ms = 0, finished_ms = 0;
  std::string cancelled_by;  // who cancelled it, once it ended cancelled
  // Why it was terminated, once it was (store::RunRow::end_cause and the rest).
  std::string end_cause, end_by, end_reason;
  int64_t end_limit_ms = 0;
  std::vector<LogLine> log;
  std::vector<StepRecord> steps;
};

class Run {
 public:
  Run(int64_t id, std::string job_type, RunRequest request);
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // The context lent to the plugin; valid while this Run lives.
  const opk_run_context* context() const { return &ctx_; }
  int64_t id() const { return id_; }
  const RunRequest& request() const { return request_; }

  // Flags the run as cancelled (is_cancelled() turns true). Idempotent.
  // Returns false if it was already flagged. `by` names who asked (a user
  // id, or "kernel" when the kernel stops) and `reason` why; without `by`
  // (a timeout, a recovery) the run, if it ends cancelled, is a failure.
  // The first request's `by` and `reason` are kept. `cause` says why
  // (store::kEndTimeout with the timeout as `limit_ms`, store::kEndStale
  // with who recovered it as `by`); without it, with `by` the cause is the
  // kernel's shutdown or an operator's cancel.
  bool request_cancel(const std::string& by = {}, const std::string& reason = {}, const std::string& cause = {},
                      int64_t limit_ms = 0);
  bool cancel_requested() const { return cancelled_.load(std::memory_order_acquire); }

  // Called (without locks held) after each log line is appended; set before
  // the run starts.
  void set_log_listener(std::function<void()> fn) { listener_ = std::move(fn); }

  void mark_running(int64_t now_ms);
  // Records the end: `status` is what the plugin's run() returned.
  void mark_completed(int64_t now_ms, opk_status status);
  RunSnapshot snapshot() const;
  // The phase alone, without copying the state.
  Phase phase() const;
  // Log lines [from, from + limit), copying only those.
  std::vector<LogLine> log_lines(size_t from, size_t limit) const;

 private:
  static Run* from(const opk_run_context* c);
  static void cb_log(const opk_run_context* self, opk_log_level level, const char* message);
  static void cb_progress(const opk_run_context* self, double percent, const char* message);
  static void cb_set_result(const opk_run_context* self, opk_outcome outcome, int32_t exit_code, const char* summary);
  static uint32_t cb_is_cancelled(const opk_run_context* self);
  static opk_status cb_step_begin(const opk_run_context* self, const char* step_id);
  static opk_status cb_step_end(const opk_run_context* self, opk_outcome outcome, const char* summary);
  static opk_status cb_set_output_json(const opk_run_context* self, const char* json);
  static opk_status cb_wait(const opk_run_context* self, int64_t timeout_ms);
  void end_step_locked(int64_t now, opk_outcome outcome, const char* summary);

  const int64_t id_;
  const std::string job_type_;
  const RunRequest request_;
  opk_principal principal_{};
  opk_run_context ctx_{};
  std::atomic<bool> cancelled_{false};
  // Who asked for the cancel and why; written once, before cancelled_ is set.
  std::string cancel_by_, cancel_reason_, cancel_cause_;
  int64_t cancel_limit_ms_ = 0;
  // Wakes cb_wait's sleepers when the run is cancelled.
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  mutable std::mutex mu_;
  RunSnapshot state_;
  std::function<void()> listener_;
};

// Milliseconds since the epoch, UTC, on the kernel's clock (clock::now_ms).
int64_t now_ms();

}  // namespace opk::jobs

#endif
