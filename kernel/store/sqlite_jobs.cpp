// The embedded store's part of scheduled jobs: their next runs, prepared
// statements in a group commit. Creating, updating, reading and listing
// them, the inventory and the failure counts are PortableStore's
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

}  // namespace opk::store::internal
