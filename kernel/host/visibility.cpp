#include "host/visibility.h"

namespace opk::host {

void Visibility::add_job_scopes(const std::vector<store::InventoryRow>& jobs) {
  for (const auto& r : jobs) job_scope_[r.job.id] = r.job.scope;
}

bool Visibility::job(const store::ScheduledJob& job) const {
  return sees(job.scope);
}

bool Visibility::run(const store::RunRow& r) const {
  return run(r.scheduled_job_id, r.target_tenant, r.scope);
}

bool Visibility::run(const std::string& scheduled_job_id, const std::string& target_tenant,
                     const std::string& scope) const {
  if (!scheduled_job_id.empty()) {
    auto it = job_scope_.find(scheduled_job_id);
    if (it != job_scope_.end()) return sees(it->second);
  }
  if (!target_tenant.empty()) return sees("tenant:" + target_tenant);
  return sees(scope.empty() ? kPlatformNode : scope);
}

bool Visibility::audit(const store::AuditRow& row, const std::map<std::string, std::string>& user_scopes) const {
  auto it = user_scopes.find(row.actor);
  return sees(it == user_scopes.end() ? kPlatformNode : it->second);
}

Status Visibility::node(const char* field, const std::string& node) const {
  if (id_.exists(node) && sees(node)) return Status::ok();
  return Status::invalid(std::string(field) + ": no node '" + node + "' within your scope " + actor_.scope);
}

Status Visibility::find_job(store::Store& store, const std::string& id, store::ScheduledJob* job) const {
  Status s = store.get_scheduled_job(id, job);
  if (!s || !this->job(*job)) return Status::not_found("no scheduled job '" + id + "'");
  return Status::ok();
}

Status Visibility::find_run(store::Store& store, int64_t id, store::RunRow* run) const {
  Status s = store.get_run(id, run);
  if (!s || !this->run(*run)) return Status::not_found("no run " + std::to_string(id));
  return Status::ok();
}

}  // namespace opk::host
