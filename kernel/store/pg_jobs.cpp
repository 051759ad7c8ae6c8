// The PostgreSQL store's part of scheduled jobs: their next runs, one
// statement over arrays. Creating, updating, reading and listing them, the
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

}  // namespace opk::store::internal
