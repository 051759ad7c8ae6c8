#include "host/routes.h"

#include "host/principals.h"

#include <Poco/JSONString.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <set>

#include "host/host.h"

namespace opk::host {
namespace {
bool valid_method(const std::string& m) {
  static const std::set<std::string> ok = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  return ok.count(m) > 0;
}

bool is_param(const std::string& seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}

bool valid_segment(const std::string& seg) {
  if (is_param(seg)) {
    for (char c : seg.substr(1, seg.size() - 2))
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
  }
  for (char c : seg)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~')) return false;
  return !seg.empty() && seg != "." && seg != "..";
}
}  // namespace

struct RouteTable::Route {
  RouteInfo info;
  std::vector<std::string> segments;
  PluginHost* plugin = nullptr;
  opk_http_route c{};
};

std::string HttpResponse::header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

RouteTable::RouteTable() {
  ext_.struct_size = sizeof ext_;
  ext_.add_route = &cb_add_route;
  ext_.dispatch = &cb_dispatch;
  ext_.list = &cb_list;
}
RouteTable::~RouteTable() = default;

Status RouteTable::add(PluginHost& plugin, const opk_http_route& in) {
  opk_http_route r{};
  std::memcpy(&r, &in, std::min<size_t>(in.struct_size, sizeof r));
  auto str = [](const char* p) { return p ? std::string(p) : std::string(); };
  auto route = std::make_shared<Route>();
  route->info = {plugin.plugin_id(), str(r.feature_id), str(r.method), str(r.path), str(r.summary), r.flags};
  if (OPK_HAS_MEMBER(opk_http_route, in.struct_size, permission)) route->info.permission = str(r.permission);
  r.permission = nullptr;  // the copy in info is the one used
  const auto& info = route->info;
  const std::string what = "route " + info.method + " " + info.path;
  if (!valid_method(info.method)) return Status::invalid(what + ": method must be GET, POST, PUT, PATCH or DELETE");
  if (info.path.empty() || info.path.front() != '/') return Status::invalid(what + ": path must start with '/'");
  route->segments = split_path(info.path);
  std::set<std::string> names;
  for (auto& seg : route->segments) {
    if (!valid_segment(seg)) return Status::invalid(what + ": bad path segment '" + seg + "'");
    if (is_param(seg) && !names.insert(seg).second) return Status::invalid(what + ": parameter " + seg + " repeats");
  }
  if (r.handle == nullptr) return Status::invalid(what + ": handle is NULL");
  if (plugin.instance() == nullptr) return Status::invalid(what + ": routes are added from start, not from init");
  if (!plugin.has_feature(info.feature_id))
    return Status::invalid(what + ": feature '" + info.feature_id + "' is not an admin feature of plugin '" +
                           plugin.plugin_id() + "'");
  if (!info.permission.empty() && known_ && !known_(info.permission)) {
    const std::string undeclared = what + ": permission '" + info.permission +
                                   "' is not declared (the kernel's, or one in an admin feature's permissions)";
    if (plugin.abi_minor() >= 2) return Status::invalid(undeclared);
    plugin.logger().warn("{}; plugins built against ABI 1.2 are refused for this", undeclared);
  }
  route->plugin = &plugin;
  route->c = r;
  std::unique_lock lock(mu_);
  for (auto& other : routes_) {
    if (other->info.method != info.method || other->segments.size() != route->segments.size()) continue;
    bool same = true;
    for (size_t i = 0; i < route->segments.size() && same; ++i) {
      const auto &a = other->segments[i], &b = route->segments[i];
      same = (is_param(a) && is_param(b)) || a == b;
    }
    if (same)
      return Status::conflict(what + ": already served by plugin '" + other->info.plugin_id + "' (" + other->info.path +
                              ")");
  }
  routes_.push_back(std::move(route));
  return Status::ok();
}

void RouteTable::remove_plugin(const std::string& plugin_id) {
  std::unique_lock lock(mu_);
  std::erase_if(routes_, [&](const auto& r) { return r->info.plugin_id == plugin_id; });
}

std::vector<RouteInfo> RouteTable::list() const {
  std::shared_lock lock(mu_);
  std::vector<RouteInfo> out;
  for (auto& r : routes_) out.push_back(r->info);
  return out;
}

opk_status RouteTable::cb_add_route(const opk_host* host, const opk_http_route* route) {
  auto* ph = PluginHost::from(host);
  if (ph == nullptr || route == nullptr || ph->routes() == nullptr) return OPK_ERR_INVALID_ARGUMENT;
  Status s = ph->routes()->add(*ph, *route);
  if (!s) {
    ph->logger().error("{}", s.message());
    report_host_error(s.message());
    return s.code();
  }
  return OPK_OK;
}

namespace {
// A response the kernel writes itself (the C++ dispatch, used in tests and
// tools): collects status, headers and body.
struct ResponseState {
  opk_http_response c{};
  HttpResponse r;
};
ResponseState* state(const opk_http_response* r) {
  return reinterpret_cast<ResponseState*>(r->host_data);
}
void resp_status(const opk_http_response* self, int32_t status) {
  state(self)->r.status = status;
}
void resp_header(const opk_http_response* self, const char* name, const char* value) {
  state(self)->r.headers.emplace_back(name, value);
}
void resp_body(const opk_http_response* self, const void* data, size_t size) {
  state(self)->r.body.append(static_cast<const char*>(data), size);
}

// The response a handler gets: forwards to the server's response, checks
// what the handler writes, and notes whether it wrote anything.
struct Guard {
  opk_http_response c{};
  const opk_http_response* inner = nullptr;
  bool touched = false;
  bool flushed = false;
};
Guard* guard(const opk_http_response* r) {
  return reinterpret_cast<Guard*>(r->host_data);
}
void guard_status(const opk_http_response* self, int32_t status) {
  auto* g = guard(self);
  g->inner->set_status(g->inner, (status >= 100 && status <= 599) ? status : 500);
  g->touched = true;
}
void guard_header(const opk_http_response* self, const char* name, const char* value) {
  if (!name || !value) return;
  auto* g = guard(self);
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  // Header injection guard: no CR/LF in names or values.
  if (n.empty() || n.find_first_of("\r\n: ") != std::string::npos || std::strpbrk(value, "\r\n")) return;
  g->inner->add_header(g->inner, n.c_str(), value);
  g->touched = true;
}
void guard_body(const opk_http_response* self, const void* data, size_t size) {
  auto* g = guard(self);
  if (data && size) g->inner->append_body(g->inner, data, size);
  g->touched = true;
}
opk_status guard_flush(const opk_http_response* self) {
  auto* g = guard(self);
  g->touched = g->flushed = true;
  if (!OPK_HAS_MEMBER(opk_http_response, g->inner->struct_size, flush) || !g->inner->flush) return OPK_OK;
  return g->inner->flush(g->inner);
}

// Writes an RFC 9457 problem into `r`.
void problem(const opk_http_response* r, int status, const std::string& title, const std::string& detail,
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  r->set_status(r, status);
  r->add_header(r, "content-type", "application/problem+json");
  for (auto& [k, v] : headers) r->add_header(r, k.c_str(), v.c_str());
  const std::string body = "{\"type\":\"about:blank\",\"title\":" + Poco::toJSON(title, Poco::JSON_WRAP_STRINGS) +
                           ",\"status\":" + std::to_string(status) +
                           ",\"detail\":" + Poco::toJSON(detail, Poco::JSON_WRAP_STRINGS) + "}";
  r->append_body(r, body.data(), body.size());
}

std::string str_of(const char* p) {
  return p ? std::string(p) : std::string();
}
}  // namespace

opk_status RouteTable::serve(const opk_http_request& req, const opk_http_response* resp) const {
  // A principal the kernel did not issue (made up by the HTTP server, or
  // kept past its request) is refused before anything reads its fields,
  // not even the audit of the refusal.
  if (req.principal && principals_ && !principals_->issued(req.principal)) {
    opk_http_request anonymous_copy{};
    std::memcpy(&anonymous_copy, &req, std::min<size_t>(req.struct_size, sizeof anonymous_copy));
    anonymous_copy.principal = nullptr;
    refuse(anonymous_copy, resp, 401, "Unauthorized", "the request's principal was not issued by the kernel",
           {{"www-authenticate", "Bearer"}});
    return OPK_OK;
  }
  const std::string method = str_of(req.method), path = str_of(req.path);
  const auto segs = split_path(path);
  std::shared_ptr<Route> match;
  std::vector<std::pair<std::string, std::string>> params;
  std::set<std::string> allowed;
  {
    std::shared_lock lock(mu_);
    for (auto& r : routes_) {
      if (r->segments.size() != segs.size()) continue;
      std::vector<std::pair<std::string, std::string>> p;
      bool ok = true;
      for (size_t i = 0; i < segs.size() && ok; ++i) {
        const auto& pat = r->segments[i];
        if (is_param(pat))
          p.emplace_back(pat.substr(1, pat.size() - 2), segs[i]);
        else
          ok = pat == segs[i];
      }
      if (!ok) continue;
      if (r->info.method != method) {
        allowed.insert(r->info.method);
        continue;
      }
      // A literal segment beats a parameter: prefer the route with fewer params.
      if (!match || p.size() < params.size()) {
        match = r;
        params = std::move(p);
      }
    }
  }
  if (!match) {
    if (!allowed.empty()) {
      std::string allow;
      for (auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
      refuse(req, resp, 405, "Method Not Allowed", method + " is not allowed on " + path + "; use " + allow,
             {{"allow", allow}});
      return OPK_OK;
    }
    refuse(req, resp, 404, "Not Found", "no route serves " + path);
    return OPK_OK;
  }
  const bool anonymous = match->info.flags & OPK_ROUTE_ANONYMOUS;
  if (!anonymous && (!req.principal || !req.principal->role)) {
    refuse(req, resp, 401, "Unauthorized", "send an API token: Authorization: Bearer <token>",
           {{"www-authenticate", "Bearer"}});
    return OPK_OK;
  }
  if (!anonymous && !match->info.permission.empty() && authorize_ &&
      !authorize_(req.principal->role, match->info.permission)) {
    refuse(req, resp, 403, "Forbidden",
           "the role " + std::string(req.principal->role) + " lacks the permission '" + match->info.permission +
               "' that " + method + " " + match->info.path + " needs");
    return OPK_OK;
  }
  std::vector<opk_kv> pp;
  for (auto& [k, v] : params) pp.push_back({k.c_str(), v.c_str()});
  opk_http_request c{};
  std::memcpy(&c, &req, std::min<size_t>(req.struct_size, sizeof c));
  c.struct_size = sizeof c;
  c.path_params = pp.data();
  c.path_param_count = static_cast<uint32_t>(pp.size());
  Guard g;
  g.c.struct_size = sizeof g.c;
  g.c.host_data = reinterpret_cast<opk_host_data*>(&g);
  g.c.set_status = &guard_status;
  g.c.add_header = &guard_header;
  g.c.append_body = &guard_body;
  g.c.flush = &guard_flush;
  g.inner = resp;
  clear_error();
  opk_status st = OPK_ERR_FAILED;
  try {
    st = match->c.handle(match->plugin->instance(), match->c.route_data, &c, &g.c);
  } catch (...) {  // a last guard: exceptions must not cross the ABI
    set_error_text("the handler threw an exception across the ABI");
  }
  const std::string err = take_error();
  if (st != OPK_OK && !g.touched) {
    match->plugin->logger().error("route {} {} failed (status {}): {}", method, match->info.path, st, err);
    problem(resp, 500, "Internal Server Error", "the handler of " + match->info.path + " failed");
  }
  return OPK_OK;
}

void RouteTable::refuse(const opk_http_request& req, const opk_http_response* resp, int status,
                        const std::string& title, const std::string& detail,
                        const std::vector<std::pair<std::string, std::string>>& headers) const {
  problem(resp, status, title, detail, headers);
  if (audit_refusal_ && req.method && std::string(req.method) != "GET") audit_refusal_(req, status, detail);
}

HttpResponse RouteTable::dispatch(const HttpRequest& req) const {
  std::vector<opk_kv> q, h;
  for (auto& [k, v] : req.query) q.push_back({k.c_str(), v.c_str()});
  for (auto& [k, v] : req.headers) h.push_back({k.c_str(), v.c_str()});
  opk_http_request c{};
  c.struct_size = sizeof c;
  c.method = req.method.c_str();
  c.path = req.path.c_str();
  c.query = q.data();
  c.query_count = static_cast<uint32_t>(q.size());
  c.headers = h.data();
  c.header_count = static_cast<uint32_t>(h.size());
  c.body = {reinterpret_cast<const uint8_t*>(req.body.data()), req.body.size()};
  c.principal = req.principal;
  c.remote_addr = req.remote_addr.c_str();
  ResponseState rs;
  rs.c.struct_size = sizeof rs.c;
  rs.c.host_data = reinterpret_cast<opk_host_data*>(&rs);
  rs.c.set_status = &resp_status;
  rs.c.add_header = &resp_header;
  rs.c.append_body = &resp_body;
  serve(c, &rs.c);
  // One content-type: the last one written wins.
  std::string type;
  for (auto& [k, v] : rs.r.headers)
    if (k == "content-type") type = v;
  std::erase_if(rs.r.headers, [](auto& kv) { return kv.first == "content-type"; });
  if (!type.empty()) rs.r.headers.emplace_back("content-type", type);
  return std::move(rs.r);
}

opk_status RouteTable::cb_dispatch(const opk_host* host, const opk_http_request* request,
                                   const opk_http_response* response) {
  auto* ph = PluginHost::from(host);
  if (!ph || !ph->routes() || !request || !response || !response->set_status || !response->add_header ||
      !response->append_body)
    return OPK_ERR_INVALID_ARGUMENT;
  return ph->routes()->serve(*request, response);
}

std::string RouteTable::list_json() const {
  std::string out = "[";
  for (const auto& r : list()) {
    if (out.size() > 1) out += ",";
    out += "{\"plugin\":" + Poco::toJSON(r.plugin_id, Poco::JSON_WRAP_STRINGS) +
           ",\"feature\":" + Poco::toJSON(r.feature_id, Poco::JSON_WRAP_STRINGS) +
           ",\"method\":" + Poco::toJSON(r.method, Poco::JSON_WRAP_STRINGS) +
           ",\"path\":" + Poco::toJSON(r.path, Poco::JSON_WRAP_STRINGS) +
           ",\"summary\":" + Poco::toJSON(r.summary, Poco::JSON_WRAP_STRINGS) +
           ",\"anonymous\":" + ((r.flags & OPK_ROUTE_ANONYMOUS) ? "true" : "false") + ",\"permission\":" +
           (r.permission.empty() ? std::string("null") : Poco::toJSON(r.permission, Poco::JSON_WRAP_STRINGS)) + "}";
  }
  return out + "]";
}

opk_status RouteTable::cb_list(const opk_host* host, char** routes_json) {
  auto* ph = PluginHost::from(host);
  if (!ph || !ph->routes() || !routes_json) return OPK_ERR_INVALID_ARGUMENT;
  *routes_json = strdup(ph->routes()->list_json().c_str());
  return *routes_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

}  // namespace opk::host
