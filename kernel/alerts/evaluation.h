// evaluation.h -- an alert source run as a job type of the job engine. The
// kernel adapts each source into a job type whose id is the source id; its
// run calls the source's evaluate with an opk_alert_context bound to the run
// (log -> the run's log, is_cancelled -> the run's cancel, raise / clear /
// escalate -> the alert engine) and, for a full-sweep source whose run
// completed OK and was not cancelled or timed out, sweeps the alerts it did
// not raise. Timeouts, pools, cancel, audit and drill-in are the job
// engine's. Thread-safe: runs of one source may overlap.
#ifndef OPSKERNEL_KERNEL_ALERTS_EVALUATION_H
#define OPSKERNEL_KERNEL_ALERTS_EVALUATION_H

#include <opskernel/opk_abi.h>

#include <cstdint>

#include "alerts/alerts.h"
#include "loader/manifest.h"

namespace opk::alerts {

// Longest evaluation when the source gives no timeout_ms.
inline constexpr int64_t kDefaultEvaluationTimeoutMs = 5 * 60 * 1000;
// The worker pool evaluations run in when jobs.pools has it (else "default").
inline constexpr const char* kEvaluationPool = "alerts";
// The schedule of a source without a default_schedule: every ten minutes.
inline constexpr const char* kDefaultSchedule = "*/10 * * * *";

// The job type made of one alert source. Non-copyable; keep it at a stable
// address while the job engine may call it.
class SourceJob {
 public:
  // `source` is the plugin's alert source (its evaluate is called with
  // `source->self` and the plugin's instance). `engine` must outlive this.
  SourceJob(Engine& engine, SourceInfo info, const loader::AlertSource& source, int64_t timeout_ms);
  SourceJob(const SourceJob&) = delete;
  SourceJob& operator=(const SourceJob&) = delete;

  // The job type to give the job engine (id = the source id).
  const loader::JobType* type() const { return &type_; }
  const SourceInfo& info() const { return info_; }

 private:
  // The opk_job_type the engine calls, with its way back to this object.
  struct Adapter {
    opk_job_type c;
    SourceJob* owner;
  };
  static opk_status run(opk_plugin* plugin, const opk_job_type* self, const opk_run_context* run);
  static void cancel(opk_plugin* plugin, const opk_job_type* self, const opk_run_context* run);
  opk_status evaluate(opk_plugin* plugin, const opk_run_context* run);

  Engine& engine_;
  const SourceInfo info_;
  const opk_alert_source* source_self_;
  opk_alert_source source_c_;
  Adapter adapter_{};
  loader::JobType type_;
};

}  // namespace opk::alerts

#endif
