// claim_policy.h -- which queued runs a worker claims next: the order of a
// pool's queue (priority, then scheduled start, then run number), which runs
// are short, and how many runs one claim takes (short runs in a group, within
// a fair share of the queue and a budget of declared work; any other run
// alone). Pure functions of what they are given; the dispatcher
// (engine_dispatch.cpp) applies them to its pools' queues, one worker per
// pool slot, so a pool's concurrency is its number of workers.
#ifndef OPSKERNEL_KERNEL_JOBS_CLAIM_POLICY_H
#define OPSKERNEL_KERNEL_JOBS_CLAIM_POLICY_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace opk::jobs::claim {

// A queued run, as the policy sees it.
struct Queued {
  int64_t run_id = 0;
  int32_t priority = 0;      // higher first
  int64_t scheduled_ms = 0;  // earlier first
  int64_t target_ms = 0;     // its type's declared target duration; 0: none
};

// The bounds of one claim. The defaults are the engine's.
struct Limits {
  // Runs recorded RUNNING in one store transaction at most.
  size_t max_runs = 1024;
  // A claim of short runs takes at least this many, if queued, while they
  // hold less than min_work_ms of declared work: each claim is a commit, and
  // halving shares would end a burst in a long tail of tiny ones, while runs
  // of some length are better spread over the workers.
  size_t min_runs = 128;
  int64_t min_work_ms = 100;
  // A claim holds at most this much declared work (runs x target duration):
  // runs later in a claim are recorded RUNNING while they wait for the ones
  // before them.
  int64_t budget_ms = 1000;
  // Types declaring a target of at most this are short: claimed in groups.
  int64_t short_ms = 100;
};

// True if `a` is claimed before `b`: higher priority first, then the earlier
// scheduled start, then the lower run number.
inline bool before(const Queued& a, const Queued& b) {
  if (a.priority != b.priority) return a.priority > b.priority;
  if (a.scheduled_ms != b.scheduled_ms) return a.scheduled_ms < b.scheduled_ms;
  return a.run_id < b.run_id;
}

// True if a run whose type declares `target_ms` is short.
inline bool is_short(int64_t target_ms, const Limits& limits = {}) {
  return target_ms > 0 && target_ms <= limits.short_ms;
}

// What a claim holds so far.
struct Taken {
  size_t runs = 0;
  int64_t work_ms = 0;      // declared work: each run's target, at least 1 ms
  bool short_head = false;  // its first run is short
};

// `taken` with `run` added.
Taken add(Taken taken, const Queued& run, const Limits& limits = {});

// True if a claim holding `taken` (at least one run) also takes `next`, the
// head of a pool's queue that holds `queued` runs (`next` included) for
// `workers` workers. Only short runs after a short first run are grouped; the
// group stops at max_runs, at the work budget, and at a fair share of the
// queue (runs left / workers + 1) once it has min_runs or min_work_ms.
bool takes(const Taken& taken, const Queued& next, size_t queued, int workers, const Limits& limits = {});

// How many runs from the head of `queue` (in claim order, see before()) one
// claim takes for a pool of `workers` workers: at least one if any is queued.
size_t claim_size(const std::vector<Queued>& queue, int workers, const Limits& limits = {});

}  // namespace opk::jobs::claim

#endif
