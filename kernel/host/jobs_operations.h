// jobs_operations.h -- the operations of "opk.jobs/1", each declared once in
// one table: its name, the permission it needs, its handler and the audit
// action it records (none for reads). JobsService looks an operation up here
// by name, checks the permission, runs the handler, and audits an action it
// refuses before the engine. docs/abi.md documents the same table.
#ifndef OPSKERNEL_KERNEL_HOST_JOBS_OPERATIONS_H
#define OPSKERNEL_KERNEL_HOST_JOBS_OPERATIONS_H

#include <Poco/JSON/Object.h>
#include <opskernel/status.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/jobs_request.h"
#include "host/jobs_service.h"
#include "host/visibility.h"
#include "identity/identity.h"
#include "jobs/engine.h"
#include "store/store.h"

namespace opk::host {

struct JobsOperation;

// What one operation works with, for the length of one call.
class JobsCall {
 public:
  // Every reference must outlive the call. `inventory` is the engine's
  // inventory copy when the caller already took it (may be null).
  JobsCall(store::Store& store, identity::Identity& id, jobs::Engine& engine, const identity::Principal& actor,
           const std::string& source, const std::vector<TypeInfo>& types, const std::function<std::string()>& plugins,
           std::shared_ptr<const std::vector<store::InventoryRow>> inventory)
      : store(store),
        id(id),
        engine(engine),
        actor(actor),
        source(source),
        types(types),
        plugins(plugins),
        inventory(std::move(inventory)),
        vis(id, actor) {}

  // OK if the actor's role holds `permission`; PERMISSION naming both otherwise.
  Status need(const char* permission) const;
  // The actor as the engine records it.
  jobs::Actor engine_actor() const { return {actor.user_id, actor.role, actor.scope, source}; }
  // The job type `id` of a started plugin, or null.
  const loader::JobType* type(const std::string& id) const;
  // What the actor sees, with the scheduled jobs' scopes from the engine's
  // inventory copy (not a store read), as runs are seen through them.
  Visibility runs_visibility() const;

  store::Store& store;
  identity::Identity& id;
  jobs::Engine& engine;
  const identity::Principal& actor;
  const std::string& source;
  const std::vector<TypeInfo>& types;
  const std::function<std::string()>& plugins;  // the "plugins" answer; may be empty
  const std::shared_ptr<const std::vector<store::InventoryRow>> inventory;
  const Visibility vis;               // what the actor sees (no job scopes: see runs_visibility)
  const JobsOperation* op = nullptr;  // the operation being run
  JobsRequest req;                    // the parsed request
  bool reached_engine = false;        // the engine audits what reaches it
  std::string raw_answer;             // set by operations that write their JSON by hand
};

// One operation of "opk.jobs/1".
struct JobsOperation {
  const char* name;
  // The permission the actor's role must hold; checked before the handler.
  const char* permission;
  // Reads call.req and writes the answer into `out` (or call.raw_answer).
  Status (*handler)(JobsCall& call, Poco::JSON::Object::Ptr out);
  // The audit trail's action name for this operation, or null for a read,
  // which is not audited.
  const char* audit_action;
};

// Every operation, in the order docs/abi.md lists them.
const std::vector<JobsOperation>& jobs_operations();

// The operation named `name`, or null.
const JobsOperation* find_jobs_operation(const std::string& name);

}  // namespace opk::host

#endif
