// visibility.h -- what an actor may see of scheduled jobs, runs, audit rows
// and hierarchy nodes: only what lies at or under its scope node. Something
// outside the scope answers like something that does not exist, so a caller
// cannot probe beyond its scope. One Visibility serves one request; it is not
// thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_VISIBILITY_H
#define OPSKERNEL_KERNEL_HOST_VISIBILITY_H

#include <opskernel/status.hpp>

#include <map>
#include <string>
#include <vector>

#include "identity/identity.h"
#include "store/store.h"

namespace opk::host {

// The scope node of everything that has none of its own: configuration
// jobs, runs started from the command line, actors that are not users.
inline constexpr const char* kPlatformNode = "platform";

class Visibility {
 public:
  // `identity` and `actor` must outlive this object.
  Visibility(identity::Identity& identity, const identity::Principal& actor) : id_(identity), actor_(actor) {}

  // Records the scope nodes of scheduled jobs (job id -> scope), through
  // which their runs are seen. A run of a job not recorded here is seen as
  // an ad-hoc run.
  void add_job_scopes(const std::vector<store::InventoryRow>& jobs);
  void set_job_scope(const std::string& job_id, const std::string& scope) { job_scope_[job_id] = scope; }

  // True when the actor's scope is the platform itself: it sees everything,
  // and reads need not be filtered.
  bool whole_platform() const { return actor_.scope == kPlatformNode; }

  // True if a scheduled job is seen: through its scope node.
  bool job(const store::ScheduledJob& job) const;
  // True if a run is seen: through its scheduled job's scope; else its target
  // tenant ("tenant:<target_tenant>"); else the scope of the user who started
  // it ("platform" when none).
  bool run(const store::RunRow& run) const;
  // The same from the three fields of a run that decide it (what a store's
  // counts carry per group: store::RunSummaryRow).
  bool run(const std::string& scheduled_job_id, const std::string& target_tenant, const std::string& scope) const;
  // True if an audit row is seen: through the scope of the user who acted
  // (`user_scopes`: user id -> scope); actors that are not users count as
  // "platform".
  bool audit(const store::AuditRow& row, const std::map<std::string, std::string>& user_scopes) const;

  // OK when `node` exists at or under the actor's scope; otherwise
  // INVALID_ARGUMENT naming `field`, the same whether the node lies outside
  // the scope or does not exist.
  Status node(const char* field, const std::string& node) const;

  // The scheduled job `id` into *job if the actor sees it; NOT_FOUND
  // otherwise, the same whether it lies outside the scope or does not exist.
  Status find_job(store::Store& store, const std::string& id, store::ScheduledJob* job) const;
  // The run `id` into *run if the actor sees it; NOT_FOUND otherwise, as
  // for find_job.
  Status find_run(store::Store& store, int64_t id, store::RunRow* run) const;

 private:
  bool sees(const std::string& node) const { return id_.contains(actor_.scope, node); }

  identity::Identity& id_;
  const identity::Principal& actor_;
  std::map<std::string, std::string> job_scope_;  // scheduled job -> scope node
};

}  // namespace opk::host

#endif
