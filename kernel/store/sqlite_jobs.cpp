// The embedded store's scheduled jobs: create, update, read and list them,
// their next runs, and the inventory (each job with its latest run) and
// failure counts the engine's views are built from.
#include "store/sqlite_internal.h"

namespace opk::store::internal {

using namespace Poco::Data::Keywords;

Status SqliteStore::create_scheduled_job(ScheduledJob j) {
  const Changed changed_after(generation_);
  std::lock_guard lock(write_mu_);
  const int64_t t = now_ms();
  j.created_ms = j.updated_ms = t;
  int enabled = j.enabled ? 1 : 0;
  try {
    *writer_ << "INSERT INTO scheduled_jobs (id, job_type, description, owner, planning, cron, time_zone, "
                "jitter_minutes, params_json, enabled, scope, region, report_recipients, next_run_ms, created_ms, "
                "updated_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
        use(j.id), use(j.job_type), use(j.description), use(j.owner), use(j.planning), use(j.cron), use(j.time_zone),
        use(j.jitter_minutes), use(j.params_json), use(enabled), use(j.scope), use(j.region), use(j.report_recipients),
        use(j.next_run_ms), use(j.created_ms), use(j.updated_ms), now;
  } catch (const Poco::Exception& e) {
    if (e.displayText().find("UNIQUE") != std::string::npos)
      return Status::conflict("scheduled job '" + j.id + "' already exists");
    return Status::unavailable("store: " + e.displayText());
  }
  return Status::ok();
}

Status SqliteStore::update_scheduled_job(const ScheduledJob& in) {
  const Changed changed_after(generation_);
  std::lock_guard lock(write_mu_);
  ScheduledJob j = in;
  j.updated_ms = now_ms();
  int enabled = j.enabled ? 1 : 0;
  size_t n = 0;
  try {
    Poco::Data::Statement st(*writer_);
    st << "UPDATE scheduled_jobs SET owner=$1, planning=$2, cron=$3, time_zone=$4, jitter_minutes=$5, "
          "params_json=$6, enabled=$7, scope=$8, region=$9, report_recipients=$10, next_run_ms=$11, "
          "updated_ms=$12 WHERE id=$13",
        use(j.owner), use(j.planning), use(j.cron), use(j.time_zone), use(j.jitter_minutes), use(j.params_json),
        use(enabled), use(j.scope), use(j.region), use(j.report_recipients), use(j.next_run_ms), use(j.updated_ms),
        use(j.id);
    n = st.execute();
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
  return n ? Status::ok() : Status::not_found("no scheduled job '" + in.id + "'");
}

Status SqliteStore::get_scheduled_job(const std::string& id, ScheduledJob* out) {
  std::vector<ScheduledJob> all;
  if (Status s = scheduled(" WHERE j.id = '" + escape(id) + "'", &all); !s) return s;
  if (all.empty()) return Status::not_found("no scheduled job '" + id + "'");
  *out = all.front();
  return Status::ok();
}

StatusOr<std::vector<ScheduledJob>> SqliteStore::list_scheduled_jobs() {
  std::vector<ScheduledJob> out;
  if (Status s = scheduled(" ORDER BY j.id", &out); !s) return s;
  return out;
}

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
      "COALESCE(s.finished_ms, 0), COALESCE(s.cancelled_by, '')",
      &jobs);
  if (!s) return s;
  std::vector<InventoryRow> out;
  for (auto& [job, extra] : jobs)
    out.push_back(
        {job, std::stoll(extra[0]), extra[1], extra[2], std::stoll(extra[3]), std::stoll(extra[4]), extra[5]});
  return out;
}

StatusOr<std::map<int64_t, int64_t>> SqliteStore::failures_per_day(const std::string& id, int64_t since_ms) {
  std::vector<std::vector<std::string>> rows;
  Status s = read_rows("failures",
                       "SELECT s.finished_ms / 86400000, COUNT(*) FROM runs r JOIN run_state s ON s.id = r.id WHERE "
                       "r.scheduled_job_id = '" +
                           escape(id) +
                           "' AND r.scheduled_job_id <> '' AND s.phase = 'COMPLETED' AND s.outcome = 'ERROR' AND "
                           "s.cancelled_by = '' AND "
                           "s.finished_ms >= " +
                           std::to_string(since_ms) + " GROUP BY 1",
                       &rows);
  if (!s) return s;
  std::map<int64_t, int64_t> out;
  for (auto& r : rows) out[std::stoll(r[0])] = std::stoll(r[1]);
  return out;
}

Status SqliteStore::scheduled(const std::string& tail, const std::string& extra,
                              std::vector<std::pair<ScheduledJob, std::vector<std::string>>>* out) {
  std::vector<std::vector<std::string>> rs;
  Status s =
      read_rows("scheduled jobs",
                "SELECT j.id, j.job_type, j.description, j.owner, j.planning, j.cron, j.time_zone, j.jitter_minutes, "
                "j.params_json, j.enabled, j.scope, j.region, j.report_recipients, j.next_run_ms, j.created_ms, "
                "j.updated_ms" +
                    extra + " FROM scheduled_jobs" + tail,
                &rs);
  if (!s) return s;
  for (auto& r : rs) try {
      ScheduledJob j;
      j.id = r[0];
      j.job_type = r[1];
      j.description = r[2];
      j.owner = r[3];
      j.planning = r[4];
      j.cron = r[5];
      j.time_zone = r[6];
      j.jitter_minutes = std::stoi(r[7]);
      j.params_json = r[8];
      j.enabled = r[9] == "1";
      j.scope = r[10];
      j.region = r[11];
      j.report_recipients = r[12];
      j.next_run_ms = std::stoll(r[13]);
      j.created_ms = std::stoll(r[14]);
      j.updated_ms = std::stoll(r[15]);
      out->emplace_back(std::move(j), std::vector<std::string>(r.begin() + 16, r.end()));
    } catch (const std::exception&) {
      // An unparsable row is skipped (see runs_where).
    }
  return Status::ok();
}

Status SqliteStore::scheduled(const std::string& tail, std::vector<ScheduledJob>* out) {
  std::vector<std::pair<ScheduledJob, std::vector<std::string>>> jobs;
  if (Status s = scheduled(" j" + tail, "", &jobs); !s) return s;
  for (auto& [j, extra] : jobs) out->push_back(std::move(j));
  return Status::ok();
}

}  // namespace opk::store::internal
