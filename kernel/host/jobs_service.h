// jobs_service.h -- "opk.jobs/1": the job engine's operations for admin
// features, by name, with JSON in and out. Every operation checks the actor's
// permission and filters to the actor's scope; the engine's own guards
// (manual_run, reason, schema) apply underneath. Thread-safe.
//
// The operations themselves are declared in host/jobs_operations.h, what an
// actor may see in host/visibility.h, and request fields are read by
// host/jobs_request.h.
#ifndef OPSKERNEL_KERNEL_HOST_JOBS_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_JOBS_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "identity/identity.h"
#include "jobs/engine.h"
#include "loader/manifest.h"
#include "store/store.h"

namespace opk::host {

// A job type with the plugin that provides it.
struct TypeInfo {
  const loader::JobType* type = nullptr;
  std::string plugin_id;
};

// The service behind "opk.jobs/1": dispatches a call to its operation and
// serves the C table.
class JobsService {
 public:
  JobsService(store::Store& store, identity::Identity& identity, std::function<std::vector<TypeInfo>()> types);
  // The engine, once it runs; until then operations answer UNAVAILABLE.
  // Setting null waits for the calls using the engine to return.
  void set_engine(jobs::Engine* engine) {
    std::unique_lock lock(engine_mu_);
    engine_ = engine;
  }
  // The "plugins" operation's answer: loaded and refused plugins as JSON.
  void set_plugins_source(std::function<std::string()> fn) { plugins_ = std::move(fn); }

  // Runs one operation; *answer gets the JSON answer, or {"error": ...} with
  // the failing status.
  Status call(const identity::Principal& actor, const std::string& operation, const std::string& request_json,
              const std::string& source, std::string* answer);
  // The operation names, in the operation table's order.
  static std::vector<std::string> operations();

  // The C table served as "opk.jobs/1".
  const opk_jobs_v1* extension() const { return &ext_; }

 private:
  static opk_status cb_call(const opk_host* host, const opk_principal* actor, const char* operation,
                            const char* request_json, const char* source, char** answer_json);

  store::Store& store_;
  identity::Identity& identity_;
  std::function<std::vector<TypeInfo>()> types_;
  std::function<std::string()> plugins_;
  // Inventory pages already written, by caller scope and request, each with
  // the engine's inventory copy it was made from: valid while that copy is.
  struct Page {
    std::shared_ptr<const std::vector<store::InventoryRow>> source;
    std::string json;
  };
  std::mutex pages_mu_;
  std::map<std::string, Page> pages_;
  std::shared_mutex engine_mu_;  // held shared by every call that uses engine_
  jobs::Engine* engine_ = nullptr;
  opk_jobs_v1 ext_{};
};

}  // namespace opk::host

#endif
