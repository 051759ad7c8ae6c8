// The PostgreSQL store's scheduled jobs: create, update, read and list them,
// their next runs, and the inventory (each job with its latest run) and
// failure counts the engine's views are built from.
#include "store/pg_internal.h"

namespace opk::store::internal {

namespace {

constexpr const char* kPgJobColumns =
    "j.id, j.job_type, j.description, j.owner, j.planning, j.cron, j.time_zone, j.jitter_minutes, j.params_json, "
    "j.enabled, j.scope, j.region, j.report_recipients, j.next_run_ms, j.created_ms, j.updated_ms";
constexpr size_t kPgJobColumnCount = 16;

}  // namespace

Status PgStore::create_scheduled_job(ScheduledJob j) {
  const int64_t t = now_ms();
  j.created_ms = j.updated_ms = t;
  Status s = write_rows(
      "scheduled job '" + j.id + "'",
      "INSERT INTO scheduled_jobs (id, job_type, description, owner, planning, cron, time_zone, "
      "jitter_minutes, params_json, enabled, scope, region, report_recipients, next_run_ms, "
      "created_ms, updated_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
      {j.id, j.job_type, j.description, j.owner, j.planning, j.cron, j.time_zone, std::to_string(j.jitter_minutes),
       j.params_json, j.enabled ? "1" : "0", j.scope, j.region, j.report_recipients, std::to_string(j.next_run_ms),
       std::to_string(j.created_ms), std::to_string(j.updated_ms)},
      nullptr);
  if (s.code() == OPK_ERR_CONFLICT && s.message().find("scheduled_jobs_pkey") != std::string::npos)
    return Status::conflict("scheduled job '" + j.id + "' already exists");
  if (s) generation_.fetch_add(1, std::memory_order_release);
  return s;
}

Status PgStore::update_scheduled_job(const ScheduledJob& j) {
  int64_t n = 0;
  Status s = write_rows(
      "scheduled job '" + j.id + "'",
      "UPDATE scheduled_jobs SET owner=$1, planning=$2, cron=$3, time_zone=$4, jitter_minutes=$5, "
      "params_json=$6, enabled=$7, scope=$8, region=$9, report_recipients=$10, next_run_ms=$11, "
      "updated_ms=$12 WHERE id=$13",
      {j.owner, j.planning, j.cron, j.time_zone, std::to_string(j.jitter_minutes), j.params_json, j.enabled ? "1" : "0",
       j.scope, j.region, j.report_recipients, std::to_string(j.next_run_ms), std::to_string(now_ms()), j.id},
      &n);
  if (!s) return s;
  generation_.fetch_add(1, std::memory_order_release);
  return n ? Status::ok() : Status::not_found("no scheduled job '" + j.id + "'");
}

Status PgStore::get_scheduled_job(const std::string& id, ScheduledJob* out) {
  std::vector<std::pair<ScheduledJob, std::vector<std::string>>> all;
  if (Status s = scheduled(" j WHERE j.id = $1", "", {id}, &all); !s) return s;
  if (all.empty()) return Status::not_found("no scheduled job '" + id + "'");
  *out = all.front().first;
  return Status::ok();
}

StatusOr<std::vector<ScheduledJob>> PgStore::list_scheduled_jobs() {
  std::vector<std::pair<ScheduledJob, std::vector<std::string>>> all;
  if (Status s = scheduled(" j ORDER BY j.id", "", {}, &all); !s) return s;
  std::vector<ScheduledJob> out;
  out.reserve(all.size());
  for (auto& [j, extra] : all) out.push_back(std::move(j));
  return out;
}

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
      "COALESCE(s.finished_ms, 0), COALESCE(s.cancelled_by, '')",
      {}, &jobs);
  if (!s) return s;
  std::vector<InventoryRow> out;
  for (auto& [job, extra] : jobs)
    out.push_back(
        {job, std::stoll(extra[0]), extra[1], extra[2], std::stoll(extra[3]), std::stoll(extra[4]), extra[5]});
  return out;
}

StatusOr<std::map<int64_t, int64_t>> PgStore::failures_per_day(const std::string& id, int64_t since_ms) {
  std::vector<std::vector<std::string>> rows;
  Status s = text_rows("failures",
                       "SELECT s.finished_ms / 86400000, COUNT(*) FROM runs r JOIN run_state s ON s.id = r.id WHERE "
                       "r.scheduled_job_id = $1 AND r.scheduled_job_id <> '' AND s.phase = 'COMPLETED' AND "
                       "s.outcome = 'ERROR' AND s.cancelled_by = '' AND s.finished_ms >= $2 GROUP BY 1",
                       {id, std::to_string(since_ms)}, &rows);
  if (!s) return s;
  std::map<int64_t, int64_t> out;
  for (auto& r : rows) out[std::stoll(r[0])] = std::stoll(r[1]);
  return out;
}

Status PgStore::scheduled(const std::string& tail, const std::string& extra, const PgParams& params,
                          std::vector<std::pair<ScheduledJob, std::vector<std::string>>>* out) {
  std::vector<std::vector<std::string>> rs;
  if (Status s = text_rows("scheduled jobs",
                           std::string("SELECT ") + kPgJobColumns + extra + " FROM scheduled_jobs" + tail, params, &rs);
      !s)
    return s;
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
      out->emplace_back(std::move(j), std::vector<std::string>(r.begin() + kPgJobColumnCount, r.end()));
    } catch (const std::exception&) {
      // An unparsable row is skipped, as the SQLite store does.
    }
  return Status::ok();
}

}  // namespace opk::store::internal
