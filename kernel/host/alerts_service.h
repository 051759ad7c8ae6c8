// alerts_service.h -- "opk.alerts/1": the alert engine's operations for
// plugins, by name, with JSON in and out (docs/abi.md, "The alert service").
// Every operation checks that the actor is a principal the kernel issued and
// that its role has the operation's permission; the engine applies the
// visibility rule underneath. Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_ALERTS_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_ALERTS_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "alerts/alerts.h"
#include "host/answer_cache.h"
#include "identity/identity.h"

namespace opk::host {

class PluginHost;
class Principals;

// The alert source `source_id` if plugin `plugin_id` declares it.
using SourceLookup =
    std::function<std::optional<alerts::SourceInfo>(const std::string& plugin_id, const std::string& source_id)>;

class AlertsService {
 public:
  // `principals` is what actors are checked against. All must outlive this.
  AlertsService(alerts::Engine& engine, identity::Identity& identity, const Principals& principals,
                SourceLookup sources);
  ~AlertsService();
  AlertsService(const AlertsService&) = delete;
  AlertsService& operator=(const AlertsService&) = delete;

  // Calls through `host`'s table reach this service (until it is destroyed).
  void serve(const PluginHost* host);

  // Runs one operation for `actor` on behalf of plugin `plugin_id`; *answer
  // gets the JSON answer, or {"error": ...} with the failing status.
  Status call(const identity::Principal& actor, const std::string& plugin_id, const std::string& operation,
              const std::string& request_json, const std::string& source, std::string* answer);
  // The operation names.
  static std::vector<std::string> operations();

  // The C table served as "opk.alerts/1".
  const opk_alerts_v1* extension() const { return &ext_; }

 private:
  static opk_status cb_call(const opk_host* host, const opk_principal* actor, const char* operation,
                            const char* request_json, const char* source, char** answer_json);

  alerts::Engine& engine_;
  identity::Identity& identity_;
  const Principals& principals_;
  SourceLookup sources_;
  // "list" and "counts" answers by role, scope and request: the console's
  // pages poll the same ones. Kept while no alert was written through the
  // engine, and for at most a second (another kernel's writes).
  AnswerCache answers_{1000, 1024, 64u << 20};
  opk_alerts_v1 ext_{};
};

}  // namespace opk::host

#endif
