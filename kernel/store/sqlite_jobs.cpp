// The embedded store's part of scheduled jobs: their next runs (prepared
// statements in a group commit), and the inventory (each job with its latest
// run) and failure counts the engine's views are built from. Creating,
// updating, reading and listing them are PortableStore's
// (portable_store.cpp).
#include "store/sqlite_internal.h"

namespace opk::store::internal {

using namespace Poco::Data::Keywords;

Status SqliteStore::set_next_run(const std::string& id, int64_t next_run_ms) {
  const Changed changed_after(generation_);
  std::lock_guard lock(write_mu_);
  std::string i = id;
  try {
    *writer_ << "UPDATE scheduled_jobs SET next_run_ms = $1 WHERE id = $2", use(next_run_ms), use(i), now;
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
  return Status::ok();
}

Status SqliteStore::set_next_runs(const std::vector<std::pair<std::string, int64_t>>& next_runs) {
  const Changed changed_after(generation_);
  if (next_runs.empty()) return Status::ok();

  return grouped(
      [&] {
        auto& st = stmts_->set_next_run;
        for (const auto& [id, ms] : next_runs) {
          st.bind_all(ms, id);
          int rc = st.step();
          st.reset();
          if (rc != SQLITE_DONE) return sql_error("next run");
        }
        return Status::ok();
      },
      next_runs.size());
}

StatusOr<std::vector<InventoryRow>> SqliteStore::inventory() {
  std::vector<std::pair<ScheduledJob, std::vector<std::string>>> jobs;
  Status s = scheduled(
      " j LEFT JOIN runs r ON r.id = (SELECT MAX(id) FROM runs WHERE scheduled_job_id = j.id AND scheduled_job_id <> "
      "'') LEFT JOIN run_state s ON s.id = r.id ORDER BY j.id",
      ", COALESCE(r.id, 0), COALESCE(s.phase, ''), COALESCE(s.outcome, ''), COALESCE(r.created_ms, 0), "
      "COALESCE(s.finished_ms, 0), COALESCE(s.cancelled_by, ''), COALESCE(s.end_cause, '')",
      &jobs);
  if (!s) return s;
  std::vector<InventoryRow> out;
  for (auto& [job, extra] : jobs)
    out.push_back({job, std::stoll(extra[0]), extra[1], extra[2], std::stoll(extra[3]), std::stoll(extra[4]), extra[5],
                   extra[6]});
  return out;
}

StatusOr<std::map<int64_t, int64_t>> SqliteStore::failures_per_day(const std::string& id, int64_t since_ms,
                                                                   bool terminated) {
  std::vector<std::vector<std::string>> rows;
  Status s = read_rows("failures",
                       "SELECT s.finished_ms / 86400000, COUNT(*) FROM runs r JOIN run_state s ON s.id = r.id WHERE "
                       "r.scheduled_job_id = '" +
                           escape(id) + "' AND r.scheduled_job_id <> '' AND s.phase = 'COMPLETED' AND " +
                           (terminated ? "(s.end_cause <> '' OR s.cancelled_by <> '')"
                                       : "s.outcome = 'ERROR' AND s.cancelled_by = '' AND s.end_cause = ''") +
                           " AND s.finished_ms >= " + std::to_string(since_ms) + " GROUP BY 1",
                       &rows);
  if (!s) return s;
  std::map<int64_t, int64_t> out;
  for (auto& r : rows) out[std::stoll(r[0])] = std::stoll(r[1]);
  return out;
}

}  // namespace opk::store::internal
