// routes.h -- the kernel's HTTP route table (the "opk.http-routes/1" service).
// Admin features add routes; the HTTP server plugin (or a test) dispatches
// requests through it without knowing the features by name. Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_ROUTES_H
#define OPSKERNEL_KERNEL_HOST_ROUTES_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace opk::host {

class Principals;

class PluginHost;

// A route as listed for the API document.
struct RouteInfo {
  std::string plugin_id, feature_id, method, path, summary;
  uint64_t flags = 0;
  std::string permission;  // empty: any authenticated caller
};

// A request to dispatch; strings owned by the caller.
struct HttpRequest {
  std::string method, path, remote_addr;
  std::vector<std::pair<std::string, std::string>> query, headers;  // header names lower case
  std::string body;
  const opk_principal* principal = nullptr;
};

// The answer.
struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(const std::string& name) const;
};

class RouteTable {
 public:
  RouteTable();
  ~RouteTable();

  // Adds `route` for `plugin` (which must have an instance). Copies everything.
  Status add(PluginHost& plugin, const opk_http_route& route);
  // Removes every route of the plugin.
  void remove_plugin(const std::string& plugin_id);
  std::vector<RouteInfo> list() const;
  // The routes as the JSON array opk_http_routes_v1.list returns.
  std::string list_json() const;

  // Decides whether a role has a permission (the kernel's permission
  // matrix). Unset: every role has every permission.
  void set_authorizer(std::function<bool(const std::string& role, const std::string& permission)> fn) {
    authorize_ = std::move(fn);
  }

  // Principals the kernel issued: when set, a request on a non-anonymous
  // route must carry one of them (401 otherwise: the HTTP server plugin
  // made its own).
  void set_principals(const Principals* principals) { principals_ = principals; }

  // Whether a permission is declared (the kernel's or an admin feature's).
  // When set, add() refuses a route naming an undeclared permission from a
  // plugin built against ABI 1.2 or later, and warns for older ones (they
  // could not declare theirs).
  void set_permission_catalog(std::function<bool(const std::string& permission)> fn) { known_ = std::move(fn); }

  // Called for a state-changing request (not GET) refused before any
  // handler (401, 403, 404, 405), so the attempt reaches the audit trail.
  using RefusalAuditor = std::function<void(const opk_http_request& request, int status, const std::string& detail)>;
  void set_refusal_auditor(RefusalAuditor fn) { audit_refusal_ = std::move(fn); }

  // Finds the route and calls its handler with `response`: 404 when no
  // pattern matches the path, 405 (with an Allow header) when only the method
  // differs, 401 without a principal on a non-anonymous route, 403 when the
  // role lacks the route's permission, 500 when the handler fails without
  // writing a response. Errors are problem+json.
  opk_status serve(const opk_http_request& request, const opk_http_response* response) const;
  // The same for a request given as C++ values, collecting the response.
  HttpResponse dispatch(const HttpRequest& request) const;

  // The C table served as "opk.http-routes/1".
  const opk_http_routes_v1* extension() const { return &ext_; }

 private:
  struct Route;
  static opk_status cb_add_route(const opk_host* host, const opk_http_route* route);
  static opk_status cb_dispatch(const opk_host* host, const opk_http_request* request,
                                const opk_http_response* response);
  static opk_status cb_list(const opk_host* host, char** routes_json);
  std::function<bool(const std::string&, const std::string&)> authorize_;
  std::function<bool(const std::string&)> known_;
  const Principals* principals_ = nullptr;
  RefusalAuditor audit_refusal_;
  // Writes the problem and tells the auditor.
  void refuse(const opk_http_request& req, const opk_http_response* resp, int status, const std::string& title,
              const std::string& detail, const std::vector<std::pair<std::string, std::string>>& headers = {}) const;
  mutable std::shared_mutex mu_;
  std::vector<std::shared_ptr<Route>> routes_;
  opk_http_routes_v1 ext_{};
};

// Splits "/a/b/" into {"a","b"}.
std::vector<std::string> split_path(const std::string& path);

}  // namespace opk::host

#endif
