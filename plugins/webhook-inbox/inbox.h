// inbox.h -- webhook-inbox: the webhook failures inbox. Every notification
// delivery that failed for good or failed every attempt, across tenants,
// with replay, mark handled and suppress, as an admin feature of its own
// (/api/v1/webhook-failures, permissions webhook_failures.read and
// webhook_failures.manage, the console's page); its gauges in /metrics
// (opk.metrics/1) and an alert source, webhook-failures, warning while the
// open inbox holds more than `alert_threshold` failures. It keeps no table:
// the notifications plugin owns the deliveries, and this plugin asks it
// through opskernel.notifications/1 as the caller (scope and permission
// apply there) or, for the gauges and the alert, as its system principal.
// docs/notifications.md ("The webhook failures inbox") describes it.
//
// Settings ([plugin.webhook-inbox]):
//   alert_threshold   open failures above which the alert opens (default
//                     10; 0: never)
// Thread-safety: routes, the collector and the alert source run at once;
// the settings are immutable after init.
#ifndef OPSKERNEL_PLUGINS_WEBHOOK_INBOX_INBOX_H
#define OPSKERNEL_PLUGINS_WEBHOOK_INBOX_INBOX_H

#include <opskernel/notifications.h>
#include <opskernel/opk.hpp>

#include <string>

namespace opk::inbox {

class InboxPlugin : public Plugin {
 public:
  explicit InboxPlugin(Host host) : Plugin(host) {}

  // Reads the settings.
  Status init() override;
  // Adds the routes and the metrics collector.
  Status start() override;

  int64_t alert_threshold() const { return alert_threshold_; }

  // Calls operation `op` of opskernel.notifications/1 as `actor` with
  // `request`; *answer gets the answer, or on failure the status carries
  // the outbox's message (INVALID_ARGUMENT starting with the field).
  Status call(const opk_principal* actor, const char* op, const Json& request, const std::string& source,
              Json* answer) const;

 private:
  Status add_routes();  // routes.cpp
  // The gauges' lines (open and handled failures, suppressed endpoints).
  Status collect(std::string* text) const;

  int64_t alert_threshold_ = 10;
  Metrics metrics_{host()};
};

}  // namespace opk::inbox

#endif  // OPSKERNEL_PLUGINS_WEBHOOK_INBOX_INBOX_H
