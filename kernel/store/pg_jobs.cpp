// The PostgreSQL store's part of scheduled jobs: their next runs (one
// statement over arrays), and the inventory (each job with its latest run)
// and failure counts the engine's views are built from. Creating, updating,
// reading and listing them are PortableStore's (portable_store.cpp).
#include "store/pg_internal.h"

namespace opk::store::internal {

Status PgStore::set_next_run(const std::string& id, int64_t next_run_ms) {
  return set_next_runs({{id, next_run_ms}});
}

Status PgStore::set_next_runs(const std::vector<std::pair<std::string, int64_t>>& next_runs) {
  if (next_runs.empty()) return Status::ok();
  // One statement for them all: the ids and times as two arrays.
  std::string ids = "{", times = "{";
  for (size_t i = 0; i < next_runs.size(); ++i) {
    ids += (i ? "," : "") + pg_array_text(next_runs[i].first);
    times += (i ? "," : "") + std::to_string(next_runs[i].second);
  }
  Status s = write_rows("next runs",
                        "UPDATE scheduled_jobs j SET next_run_ms = n.ms FROM unnest($1::text[], $2::bigint[]) AS "
                        "n(id, ms) WHERE j.id = n.id",
                        {ids + "}", times + "}"}, nullptr);
  if (s) generation_.fetch_add(1, std::memory_order_release);
  return s;
}

StatusOr<std::vector<InventoryRow>> PgStore::inventory() {
  std::vector<std::pair<ScheduledJob, std::vector<std::string>>> jobs;
  Status s = scheduled(
      " j LEFT JOIN runs r ON r.id = (SELECT MAX(id) FROM runs WHERE scheduled_job_id = j.id AND scheduled_job_id <> "
      "'') LEFT JOIN run_state s ON s.id = r.id ORDER BY j.id",
      ", COALESCE(r.id, 0), COALESCE(s.phase, ''), COALESCE(s.outcome, ''), COALESCE(r.created_ms, 0), "
      "COALESCE(s.finished_ms, 0), COALESCE(s.cancelled_by, ''), COALESCE(s.end_cause, '')",
      {}, &jobs);
  if (!s) return s;
  std::vector<InventoryRow> out;
  for (auto& [job, extra] : jobs)
    out.push_back({job, std::stoll(extra[0]), extra[1], extra[2], std::stoll(extra[3]), std::stoll(extra[4]), extra[5],
                   extra[6]});
  return out;
}

StatusOr<std::map<int64_t, int64_t>> PgStore::failures_per_day(const std::string& id, int64_t since_ms,
                                                               bool terminated) {
  std::vector<std::vector<std::string>> rows;
  Status s =
      text_rows("failures",
                "SELECT s.finished_ms / 86400000, COUNT(*) FROM runs r JOIN run_state s ON s.id = r.id WHERE "
                "r.scheduled_job_id = $1 AND r.scheduled_job_id <> '' AND s.phase = 'COMPLETED' AND " +
                    std::string(terminated ? "(s.end_cause <> '' OR s.cancelled_by <> '')"
                                           : "s.outcome = 'ERROR' AND s.cancelled_by = '' AND s.end_cause = ''") +
                    " AND s.finished_ms >= $2 GROUP BY 1",
                {id, std::to_string(since_ms)}, &rows);
  if (!s) return s;
  std::map<int64_t, int64_t> out;
  for (auto& r : rows) out[std::stoll(r[0])] = std::stoll(r[1]);
  return out;
}

}  // namespace opk::store::internal
