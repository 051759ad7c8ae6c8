// claim_policy.cpp -- how many queued runs one claim takes (claim_policy.h).
#include "jobs/claim_policy.h"

#include <algorithm>

namespace opk::jobs::claim {

Taken add(Taken taken, const Queued& run, const Limits& limits) {
  if (taken.runs == 0) taken.short_head = is_short(run.target_ms, limits);
  ++taken.runs;
  taken.work_ms += std::max<int64_t>(1, run.target_ms);
  return taken;
}

bool takes(const Taken& taken, const Queued& next, size_t queued, int workers, const Limits& limits) {
  if (!taken.short_head || !is_short(next.target_ms, limits)) return false;
  if (taken.runs >= limits.max_runs || taken.work_ms >= limits.budget_ms) return false;
  if (taken.runs < limits.min_runs && taken.work_ms < limits.min_work_ms) return true;
  return taken.runs < queued / static_cast<size_t>(std::max(1, workers)) + 1;
}

size_t claim_size(const std::vector<Queued>& queue, int workers, const Limits& limits) {
  if (queue.empty()) return 0;
  Taken taken = add({}, queue.front(), limits);
  while (taken.runs < queue.size() && takes(taken, queue[taken.runs], queue.size() - taken.runs, workers, limits))
    taken = add(taken, queue[taken.runs], limits);
  return taken.runs;
}

}  // namespace opk::jobs::claim
