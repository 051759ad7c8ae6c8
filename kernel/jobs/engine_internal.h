// engine_internal.h -- what the job engine's own files share, and nothing
// else includes: the queued run, the worker pool, the run in flight, a parsed
// schedule, the engine's timing constants and small helpers. The Engine's
// work is split by job: engine.cpp (construction, start and stop with the
// recovery of a previous kernel's runs), engine_scheduler.cpp (schedule slots
// falling due), engine_dispatch.cpp (queues, claims and workers; the choice
// of what to claim is claim_policy.h), engine_actions.cpp (define, run now,
// cancel, retry, hold, recover; audited), engine_intake.cpp (the runs of
// concurrent run-now callers stored by one store call), engine_watchdog.cpp
// (timeouts, log flushes, stale runs, pruning) and engine_views.cpp (what is
// read).
#ifndef OPSKERNEL_KERNEL_JOBS_ENGINE_INTERNAL_H
#define OPSKERNEL_KERNEL_JOBS_ENGINE_INTERNAL_H

#include <condition_variable>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "jobs/claim_policy.h"
#include "jobs/cron.h"
#include "jobs/engine.h"

namespace opk::jobs {

// Due slots whose runs could not be stored, and claims the store refused,
// are tried again after this.
inline constexpr int64_t kFireRetryMs = 1000;
// Times a worker tries to store its completions before it gives up on them
// (the first retry at once, then one each kFireRetryMs).
inline constexpr int kCompleteAttempts = 5;
// Scheduled runs stored (and queued) per transaction when many fire at once.
inline constexpr size_t kFireChunk = 1000;
// Completions of short runs wait at most this long, or until this many, while
// claims go first (Engine::worker).
inline constexpr int64_t kCompletionHoldMs = 200;
inline constexpr size_t kMaxHeldCompletions = 4096;
// The head of the run-now intake waits at most this long for the callers
// the last write carried (Engine::store_runs).
inline constexpr int64_t kIntakeGatherUs = 200;
// Stale flagging and pruning happen this often (Engine::housekeeping).
inline constexpr int64_t kHousekeepingMs = 60000;
// Run ids looked at per call for open runs the store lost (at the start and
// each housekeeping, until every id was looked at once; a range of the
// primary key).
inline constexpr int64_t kRepairIds = 1000000;

// How long before its start a run with a later start (run now with
// start_at_ms) is claimed and recorded RUNNING, so that the commit's fsync
// (0.5 to 2.5 ms on a typical disk) is not part of its dispatch lag. Its
// worker then waits for the start before calling the plugin; the stored start
// time is the due time. Quartz acquires triggers ahead of their fire time in
// the same way. A crash inside this window leaves a RUNNING run, recovered at
// the next start like any run in flight.
inline constexpr int64_t kFireAheadMs = 5;

// Cluster: runs claimed from the store in one claim of short runs at most.
inline constexpr size_t kStoreClaimShort = 128;
// Cluster: runs taken over from dead nodes per pass.
inline constexpr size_t kTakeOverBatch = 1000;

// Every log line of a run, from a given one on.
inline constexpr size_t kAllLines = static_cast<size_t>(-1);

// A step's or run's outcome as stored text.
inline const char* outcome_text(opk_outcome o) {
  return o == OPK_OUTCOME_WARNING ? store::kWarning : o == OPK_OUTCOME_ERROR ? store::kError : store::kNormal;
}

// Appends a run's log `lines`, the first of which has seq `after + 1`, as store rows.
inline void append_log_rows(int64_t run_id, const std::vector<LogLine>& lines, int64_t after,
                            std::vector<store::LogRow>* out) {
  for (const auto& l : lines) out->push_back({run_id, ++after, l.time_ms, l.level, l.step, l.message});
}

// Min-heap order on the scheduled start.
inline bool later_start(const store::RunRow& a, const store::RunRow& b) {
  return a.scheduled_ms > b.scheduled_ms;
}

// The completion of a run that is closed without finishing: ERROR + terminated.
store::Completion terminated(int64_t run_id, std::string summary, int32_t exit_code = 0);

// The non-blank parts of `s` between `sep`s, trimmed of blanks and tabs.
std::vector<std::string> split(const std::string& s, char sep);

// A queued run. The row is shared so heap moves stay cheap.
struct Engine::Item {
  std::shared_ptr<store::RunRow> row;
  TypeRef ref;
  bool short_run = false;
  bool due = false;  // moved from the delayed queue: never delayed again
  // The run as the claim policy sees it.
  claim::Queued queued() const {
    return {row->id, row->priority, row->scheduled_ms, static_cast<int64_t>(ref.type->target_duration_ms)};
  }
  // Heap order: the claim policy's (higher priority first, then earlier
  // scheduled time, then job number); the heap's top is claimed first.
  bool operator<(const Item& o) const {
    return claim::before({o.row->id, o.row->priority, o.row->scheduled_ms, 0},
                         {row->id, row->priority, row->scheduled_ms, 0});
  }
};

struct Engine::Pool {
  std::string name;
  int concurrency = 1;
  std::vector<Item> heap;
  std::condition_variable cv;
  std::vector<std::thread> threads;
  // Cluster: the job types this pool claims from the store (short ones are
  // claimed in groups, others one at a time), and when it last did.
  std::vector<std::string> short_types, long_types;
  int64_t last_store_claim_ms = 0;
  // Cluster: the scheduled start of the next run this pool may claim from
  // the store, as last read there (Engine::read_next_due) or hinted by a
  // kernel that created or released runs; 0: none known. An idle worker
  // wakes kFireAheadMs before it (the first to wake takes it: sets it to 0)
  // and claims the runs due by then; claimed_due_ms is the last claim's bound.
  int64_t next_due_ms = 0;
  int64_t claimed_due_ms = 0;
};

struct Engine::Flight {
  std::shared_ptr<Run> run;
  std::shared_ptr<store::RunRow> row;  // as queued: what its events say of the request
  TypeRef ref;
  bool in_plugin = false;
  int64_t deadline_ms = 0;       // timeout: cancel then
  int64_t hard_deadline_ms = 0;  // after the grace: mark ERROR
  int64_t flushed_seq = 0;       // log lines already in the store
  bool abandoned = false;        // marked ERROR while the plugin still runs
  int64_t epoch = 0;             // cluster: the node's epoch when claimed (fences its result)
  // The store recorded this flight's claim. Until then it is a claim being
  // tried (of a run another worker of this node may have claimed from the
  // store, and even finished): readers and the watchdog leave it alone.
  bool claimed = false;
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

}  // namespace opk::jobs

#endif
