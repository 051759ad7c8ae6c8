// The PostgreSQL store's part of scheduled jobs: their next runs, one
// statement over arrays; the delete, serialized with the creation of their
// runs by a row lock. Creating, updating, reading and listing them, the
// inventory and the failure counts are PortableStore's
// (portable_store.cpp).
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

Status PgStore::delete_scheduled_job(const std::string& id) {
  // Two statements: the job's row locked FOR UPDATE first waits for every
  // transaction creating runs of it (they hold it FOR KEY SHARE,
  // create_runs_in), and the DELETE after it, a statement of its own with a
  // snapshot taken after they committed (READ COMMITTED), sees their runs.
  int64_t n = 0;
  Status s = in_transaction("delete scheduled job '" + id + "'", [&](PGconn* c) {
    if (Status w = pg_exec(c, "delete scheduled job '" + id + "'",
                           "SELECT id FROM scheduled_jobs WHERE id = $1 FOR UPDATE", {id});
        !w)
      return w;
    PgResult r;
    if (Status w = pg_exec(c, "delete scheduled job '" + id + "'", kDeleteJobSql, {id}, &r); !w) return w;
    n = std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
    return Status::ok();
  });
  generation_.fetch_add(1, std::memory_order_release);
  if (!s && s.code() != OPK_ERR_UNAVAILABLE) return Status::unavailable("store (postgresql): " + s.message());
  if (!s) return s;
  return n ? Status::ok() : job_not_deleted(id);
}

}  // namespace opk::store::internal
