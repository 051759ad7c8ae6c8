// alerts_routes.h -- the admin API's alert routes: the list with filters,
// sort and cursor paging, counts, one alert with its history, custom alerts
// and the operator's actions (acknowledge, close, silence, unsilence). Each
// turns the HTTP request into an operation of the kernel's alert service
// (opk.alerts/1), which checks permission and visibility and audits; an
// alert outside the caller's view is answered 404, like one that does not
// exist. Also their part of the OpenAPI document and the opk_alerts gauges
// of /metrics.
// Thread-safety: an AlertRoutes does not change after construction; its
// handlers run on any of the server's threads at once.
#ifndef OPSKERNEL_PLUGINS_ADMIN_HTTP_ALERTS_ROUTES_H
#define OPSKERNEL_PLUGINS_ADMIN_HTTP_ALERTS_ROUTES_H

#include <opskernel/opk.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace opk::admin {

// One alert route: what it serves, the operation it calls and what it takes
// and answers (names in the OpenAPI document's components/schemas).
struct AlertRoute {
  const char* method;
  const char* path;
  const char* summary;
  const char* permission;
  const char* op;             // the opk.alerts/1 operation
  int success;                // the HTTP status of a success
  const char* body_schema;    // the JSON body's schema; nullptr: takes no body
  const char* answer_schema;  // the success answer's schema
};

// Every alert route, in the order they are added to the route table.
const std::vector<AlertRoute>& alert_routes();

// Serves the alert routes over the kernel's alert service.
class AlertRoutes {
 public:
  // REQUIRES: `alerts` is the kernel's opk.alerts/1 table; it outlives this.
  AlertRoutes(Host host, const opk_alerts_v1* alerts) : host_(host), alerts_(alerts) {}

  // Adds every alert route to the kernel's route table through `plugin`,
  // for its admin feature `feature`. REQUIRES: `plugin` is starting, and
  // this object outlives its routes.
  Status add_to(Plugin& plugin, std::string_view feature) const;

  // Serves `route` for the request's caller: problem+json naming the field
  // or parameter on bad input, the service's answer otherwise. A page of
  // the list with more after it carries a `Link: <...>; rel="next"` header.
  Status serve(const AlertRoute& route, const Request& rq, Response& rs) const;

  // The /metrics text of the gauge opk_alerts{source,severity,status}: its
  // HELP and TYPE lines and one line per non-zero combination, counted over
  // every alert as this plugin's system identity. Only the HELP and TYPE
  // lines, and a warning in the kernel log, if the count fails.
  std::string prometheus() const;

 private:
  opk_status call(const opk_principal* actor, const char* op, const std::string& request, const std::string& source,
                  std::string* answer) const;

  Host host_;
  const opk_alerts_v1* alerts_;
};

// The OpenAPI description of the alert route `method` `path`: an object
// with its "parameters", "requestBody" (if it takes a body) and
// "responses"; null if that is not an alert route.
Json alert_openapi_operation(std::string_view method, std::string_view path);

// The schemas the alert routes refer to, for components/schemas.
Json alert_openapi_schemas();

}  // namespace opk::admin

#endif
