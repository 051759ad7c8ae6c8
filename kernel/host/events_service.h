// events_service.h -- "opk.events/1": the kernel's event log for plugins, by
// operation name with JSON in and out (docs/abi.md, "The event service"):
// emit (permission events.emit, which a plugin's system principal has),
// read (waiting for new events), ack and get (a System principal only: events
// are not filtered by scope; a reader that serves users applies the scope).
// Emitted events are not audited one by one: the log is their record.
// Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_EVENTS_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_EVENTS_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <string>
#include <vector>

#include "events/log.h"
#include "identity/identity.h"

namespace opk::host {

class PluginHost;
class Principals;

class EventsService {
 public:
  // `principals` is what actors are checked against. All must outlive this.
  EventsService(events::Log& log, identity::Identity& identity, const Principals& principals);
  ~EventsService();
  EventsService(const EventsService&) = delete;
  EventsService& operator=(const EventsService&) = delete;

  // Calls through `host`'s table reach this service (until it is destroyed).
  void serve(const PluginHost* host);

  // Runs one operation for `actor` on behalf of plugin `plugin_id`; *answer
  // gets the JSON answer, or {"error": ...} with the failing status:
  // INVALID_ARGUMENT (the message starts with the field), NOT_FOUND,
  // PERMISSION, UNSUPPORTED (no such operation), UNAVAILABLE.
  Status call(const identity::Principal& actor, const std::string& plugin_id, const std::string& operation,
              const std::string& request_json, std::string* answer);
  // The operation names.
  static std::vector<std::string> operations();

  // The C table served as "opk.events/1".
  const opk_events_v1* extension() const { return &ext_; }

 private:
  static opk_status cb_call(const opk_host* host, const opk_principal* actor, const char* operation,
                            const char* request_json, const char* source, char** answer_json);

  events::Log& log_;
  identity::Identity& identity_;
  const Principals& principals_;
  opk_events_v1 ext_{};
};

}  // namespace opk::host

#endif
