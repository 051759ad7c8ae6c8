#include "alerts_routes.h"

#include <Poco/String.h>
#include <Poco/URI.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "api_errors.h"
#include "http_server.h"

namespace opk::admin {
namespace {

// A query parameter of GET /api/v1/alerts: the "list" request's field of
// the same name.
struct ListParam {
  const char* name;
  bool integer;  // a whole number >= 0; otherwise a string
  const char* description;
  std::vector<const char*> values;  // the values it takes; empty: any
};

const std::vector<ListParam>& list_params() {
  static const std::vector<ListParam> params = {
      {"status",
       false,
       "open, acknowledged, escalated or closed; several separated by commas, or the parameter repeated. Default: "
       "every status but closed",
       {}},
      {"severity", false, "Only alerts of this severity", {"info", "warning", "critical"}},
      {"area", false, "Only alerts of this area (billing, health ...)", {}},
      {"source", false, "Only alerts of this alert source; custom for the alerts operators created", {}},
      {"related_type", false, "Only alerts about objects of this type (subscription, tenant, region ...)", {}},
      {"related_id", false, "Only alerts about the object with this id", {}},
      {"scope", false, "A node (tenant:acme): only the alerts at or under it", {}},
      {"q", false, "Only alerts with this text in their title or message", {}},
      {"from_ms", true, "Only alerts last seen at or after this time", {}},
      {"to_ms", true, "Only alerts last seen at or before this time", {}},
      {"sort",
       false,
       "The order: by last or first seen, or by severity; a leading - for descending. Default: -last_seen",
       {"-last_seen", "last_seen", "-first_seen", "first_seen", "-severity", "severity"}},
      {"limit", true, "Alerts per page, 1 to 500 (default 50)", {}},
      {"cursor", false, "The next_cursor of the previous page, for the page after it", {}},
  };
  return params;
}

const ListParam* list_param(const std::string& name) {
  for (const auto& p : list_params())
    if (name == p.name) return &p;
  return nullptr;
}

bool whole_number(const std::string& v) {
  return !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
}

// `v` percent-encoded for a query string.
std::string query_encoded(const std::string& v) {
  std::string out;
  Poco::URI::encode(v, "!#$&'()*+,/:;=?@[]%", out);
  return out;
}

// The list request from the query: each parameter once, except status,
// whose values are joined with commas.
Status list_request(const Request& rq, Json* request) {
  std::vector<std::string> statuses;
  for (uint32_t i = 0; i < rq.raw()->query_count; ++i) {
    const std::string k = rq.raw()->query[i].key, v = rq.raw()->query[i].value;
    const ListParam* p = list_param(k);
    if (!p) return Status::invalid("unknown query parameter '" + k + "'");
    if (k == "status") {
      statuses.push_back(v);
      continue;
    }
    if (request->contains(k)) return Status::invalid("query parameter " + k + ": given more than once");
    if (p->integer) {
      if (!whole_number(v)) return Status::invalid("query parameter " + k + ": '" + v + "' is not a whole number");
      (*request)[k] = static_cast<int64_t>(std::stoll(v));
    } else {
      (*request)[k] = v;
    }
  }
  if (!statuses.empty()) {
    std::string joined;
    for (const auto& s : statuses) joined += (joined.empty() ? "" : ",") + s;
    (*request)["status"] = joined;
  }
  return Status::ok();
}

// The request of an alert's own route: the JSON body with the path's id.
// *http gets the status of a refusal.
Status alert_request(const AlertRoute& r, const Request& rq, Json* request, int* http) {
  *http = 400;
  if (rq.raw()->query_count > 0)
    return Status::invalid("unknown query parameter '" + std::string(rq.raw()->query[0].key) + "'");
  if (r.body_schema && !rq.body().empty()) {
    const std::string type(rq.header("content-type").value_or("").substr(0, 16));
    if (Poco::icompare(type, std::string("application/json")) != 0) {
      *http = 415;
      return Status::invalid("send the body as application/json");
    }
    Json body = Json::parse(rq.body(), nullptr, false);
    if (body.is_discarded()) return Status::invalid("the body is not valid JSON");
    if (!body.is_object()) return Status::invalid("the body must be a JSON object");
    *request = std::move(body);
  }
  if (std::string_view(r.path).find("{id}") != std::string_view::npos) {
    const std::string id(rq.path_param("id").value_or(""));
    if (!whole_number(id)) {
      *http = 404;
      return Status::not_found("no alert '" + id + "'");
    }
    (*request)["id"] = static_cast<int64_t>(std::stoll(id));
  }
  return Status::ok();
}

// The Link header of the page after this one: the same query with the
// answer's cursor.
std::string next_link(const Request& rq, const std::string& cursor) {
  std::string query;
  for (uint32_t i = 0; i < rq.raw()->query_count; ++i) {
    const std::string k = rq.raw()->query[i].key;
    if (k == "cursor") continue;
    query += (query.empty() ? "" : "&") + k + "=" + query_encoded(rq.raw()->query[i].value);
  }
  query += (query.empty() ? "" : "&") + std::string("cursor=") + query_encoded(cursor);
  return "</api/v1/alerts?" + query + ">; rel=\"next\"";
}

// The shared problem answer (components/responses) for `status`.
Json problem_ref(int status) {
  static const std::map<int, const char*> names = {{400, "BadRequest"},
                                                   {401, "Unauthorized"},
                                                   {403, "Forbidden"},
                                                   {404, "NotFound"},
                                                   {409, "Conflict"},
                                                   {413, "ContentTooLarge"},
                                                   {415, "UnsupportedMediaType"},
                                                   {422, "UnprocessableContent"},
                                                   {429, "TooManyRequests"},
                                                   {500, "InternalServerError"},
                                                   {503, "ServiceUnavailable"}};
  return {{"$ref", std::string("#/components/responses/") + names.at(status)}};
}

Json schema_ref(const char* name) {
  return {{"$ref", std::string("#/components/schemas/") + name}};
}

}  // namespace

const std::vector<AlertRoute>& alert_routes() {
  static const std::vector<AlertRoute> routes = {
      {"GET", "/api/v1/alerts", "Alerts the caller may see, last seen first (filter, sort, page with a cursor)",
       "alerts.read", "list", 200, nullptr, "AlertPage"},
      {"GET", "/api/v1/alerts/counts",
       "How many alerts the caller may see, by status, severity and source; open critical and escalated ones",
       "alerts.read", "counts", 200, nullptr, "AlertCounts"},
      {"GET", "/api/v1/alerts/{id}", "An alert with its history and the earlier alerts it recurs", "alerts.read", "get",
       200, nullptr, "AlertDetail"},
      {"POST", "/api/v1/alerts", "Create a custom alert at a node in the caller's scope", "alerts.create", "create",
       201, "AlertCreate", "AlertAnswer"},
      {"POST", "/api/v1/alerts/{id}/acknowledge", "Acknowledge an alert: someone is on it", "alerts.manage",
       "acknowledge", 200, "AlertAcknowledge", "AlertAnswer"},
      {"POST", "/api/v1/alerts/{id}/close", "Close an alert by hand, with a reason", "alerts.manage", "close", 200,
       "AlertClose", "AlertAnswer"},
      {"POST", "/api/v1/alerts/{id}/silence", "Silence an alert's notifications until a time", "alerts.manage",
       "silence", 200, "AlertSilence", "AlertAnswer"},
      {"POST", "/api/v1/alerts/{id}/unsilence", "End an alert's silence", "alerts.manage", "unsilence", 200,
       "AlertUnsilence", "AlertAnswer"},
  };
  return routes;
}

Status AlertRoutes::add_to(Plugin& plugin, std::string_view feature) const {
  for (const auto& r : alert_routes()) {
    Status s = plugin.add_route(
        feature, r.method, r.path, r.summary, [this, &r](const Request& rq, Response& rs) { return serve(r, rq, rs); },
        0, r.permission);
    if (!s) return s;
  }
  return Status::ok();
}

opk_status AlertRoutes::call(const opk_principal* actor, const char* op, const std::string& request,
                             const std::string& source, std::string* answer) const {
  char* out = nullptr;
  const opk_status st = alerts_->call(host_.raw(), actor, op, request.c_str(), source.c_str(), &out);
  *answer = out ? out : "{}";
  host_.free(out);
  return st;
}

namespace {

// The page's next_cursor ("" at the end). The kernel writes it as the
// answer's first member, a string of plain characters, so it is read
// without parsing a page of alerts; any other answer is parsed.
std::string next_cursor_of(const std::string& answer) {
  static constexpr std::string_view kHead = "{\"next_cursor\":\"";
  if (answer.compare(0, kHead.size(), kHead) == 0) {
    const size_t end = answer.find('"', kHead.size());
    const std::string_view c = std::string_view(answer).substr(kHead.size(), end - kHead.size());
    if (end != std::string::npos && c.find('\\') == std::string_view::npos) return std::string(c);
  }
  if (answer.compare(0, 20, "{\"next_cursor\":null,") == 0) return {};
  const Json page = Json::parse(answer, nullptr, false);
  if (page.is_object() && page.contains("next_cursor") && page["next_cursor"].is_string())
    return page["next_cursor"].get<std::string>();
  return {};
}

}  // namespace

Status AlertRoutes::serve(const AlertRoute& r, const Request& rq, Response& rs) const {
  Json request = Json::object();
  int http = 400;
  const bool list = std::string_view(r.op) == "list";
  const Status built = list ? list_request(rq, &request) : alert_request(r, rq, &request, &http);
  if (!built) {
    problem(rs, http, title_of(http), built.message());
    return Status::ok();
  }
  std::string answer;
  const opk_status st = call(rq.principal(), r.op, request.dump(-1, ' ', false, Json::error_handler_t::replace),
                             std::string(rq.remote_addr()), &answer);
  if (st != OPK_OK) {
    const std::string msg = error_of(answer);
    const int code = http_status(st, msg);
    problem(rs, code, title_of(code), code == 500 ? "the request could not be completed" : msg);
    if (code == 500) host_.error("opk.alerts/1 " + std::string(r.op) + " failed: " + msg);
    return Status::ok();
  }
  if (list) {
    const std::string cursor = next_cursor_of(answer);
    if (!cursor.empty()) rs.header("link", next_link(rq, cursor));
  }
  rs.status(r.success).json(answer);
  return Status::ok();
}

std::string AlertRoutes::prometheus() const {
  std::string text =
      "# HELP opk_alerts Alerts in the store, by source, severity and status (every alert, whoever may see it).\n"
      "# TYPE opk_alerts gauge\n";
  std::string answer;
  const opk_status st = call(host_.system_principal(), "counts", "{}", "metrics", &answer);
  const Json counts = Json::parse(answer, nullptr, false);
  if (st != OPK_OK || !counts.is_object() || !counts.contains("groups") || !counts["groups"].is_array()) {
    host_.warn("/metrics: the alerts cannot be counted: " + error_of(answer));
    return text;
  }
  auto text_of = [](const Json& g, const char* key) {
    return g.contains(key) && g[key].is_string() ? g[key].get<std::string>() : std::string();
  };
  // Sorted by labels, so a scrape reads the same lines in the same order.
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> lines;
  for (const auto& g : counts["groups"])
    if (g.is_object() && g.contains("count") && g["count"].is_number_integer() && g["count"].get<int64_t>() > 0)
      lines[{text_of(g, "source"), text_of(g, "severity"), text_of(g, "status")}] += g["count"].get<int64_t>();
  for (const auto& [key, n] : lines) {
    const auto& [source, severity, status] = key;
    text += "opk_alerts{source=\"" + prometheus_label(source) + "\",severity=\"" + prometheus_label(severity) +
            "\",status=\"" + prometheus_label(status) + "\"} " + std::to_string(n) + "\n";
  }
  return text;
}

Json alert_openapi_operation(std::string_view method, std::string_view path) {
  const AlertRoute* route = nullptr;
  for (const auto& r : alert_routes())
    if (method == r.method && path == r.path) route = &r;
  if (!route) return nullptr;
  Json op = Json::object();
  Json params = Json::array();
  const bool by_id = path.find("{id}") != std::string_view::npos;
  if (by_id)
    params.push_back({{"name", "id"},
                      {"in", "path"},
                      {"required", true},
                      {"description", "The alert's id"},
                      {"schema", {{"type", "integer"}, {"format", "int64"}, {"minimum", 1}}}});
  if (std::string_view(route->op) == "list") {
    for (const auto& p : list_params()) {
      Json schema =
          p.integer ? Json{{"type", "integer"}, {"format", "int64"}, {"minimum", 0}} : Json{{"type", "string"}};
      if (!p.values.empty()) schema["enum"] = p.values;
      if (std::string_view(p.name) == "limit") {
        schema["minimum"] = 1;
        schema["maximum"] = 500;
        schema["default"] = 50;
      }
      params.push_back(
          {{"name", p.name}, {"in", "query"}, {"required", false}, {"description", p.description}, {"schema", schema}});
    }
  }
  if (!params.empty()) op["parameters"] = params;
  if (route->body_schema) {
    const bool required = std::string_view(route->op) == "create" || std::string_view(route->op) == "close" ||
                          std::string_view(route->op) == "silence";
    op["requestBody"] = {{"required", required},
                         {"content", {{"application/json", {{"schema", schema_ref(route->body_schema)}}}}}};
  }
  Json responses = Json::object();
  Json ok = {{"description", "Success"},
             {"content", {{"application/json", {{"schema", schema_ref(route->answer_schema)}}}}}};
  if (std::string_view(route->op) == "list")
    ok["headers"] = {
        {"Link",
         {{"description", "The next page, when there is one: <the same request with cursor set>; rel=\"next\""},
          {"schema", {{"type", "string"}}}}}};
  responses[std::to_string(route->success)] = ok;
  std::vector<int> problems = {400, 401, 403, 429, 500, 503};
  if (by_id) problems.push_back(404);
  if (route->body_schema) problems.insert(problems.end(), {413, 415});
  if (std::string_view(route->op) != "counts" && std::string_view(route->op) != "get") problems.push_back(422);
  if (by_id && std::string_view(route->op) != "get") problems.push_back(409);
  std::sort(problems.begin(), problems.end());
  for (int code : problems) responses[std::to_string(code)] = problem_ref(code);
  op["responses"] = responses;
  return op;
}

Json alert_openapi_schemas() {
  return Json::parse(R"json({
    "Alert": {"type": "object", "description": "An alert: one open alert at most per source and related object",
      "properties": {"id": {"type": "integer", "format": "int64"},
        "source": {"type": "string", "description": "The alert source's id; custom for an operator's alert"},
        "type": {"type": "string"},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "area": {"type": "string"}, "title": {"type": "string"}, "message": {"type": "string"},
        "related_type": {"type": "string"}, "related_id": {"type": "string"},
        "scope": {"type": "string", "description": "The node the alert belongs to (subscription:sub-42)"},
        "platform_only": {"type": "boolean", "description": "Only platform administrators see it"},
        "custom": {"type": "boolean", "description": "An operator created it"},
        "details": {"type": "object", "description": "What the source adds"},
        "status": {"type": "string", "enum": ["open", "acknowledged", "escalated", "closed"],
          "description": "escalated stays escalated once acknowledged (acknowledged_by is set); closed is final"},
        "escalation_level": {"type": "integer", "minimum": 0},
        "first_seen_ms": {"type": "integer", "format": "int64"}, "last_seen_ms": {"type": "integer", "format": "int64"},
        "occurrences": {"type": "integer", "format": "int64", "minimum": 1},
        "acknowledged_by": {"type": "string", "nullable": true},
        "acknowledged_ms": {"type": "integer", "format": "int64", "nullable": true},
        "closed_by": {"type": "string", "nullable": true, "description": "A user, or system:<plugin> for a source"},
        "closed_ms": {"type": "integer", "format": "int64", "nullable": true},
        "close_kind": {"type": "string", "nullable": true, "description": "cleared (the source saw the condition go), expired or manual"},
        "close_reason": {"type": "string", "nullable": true},
        "silenced_until_ms": {"type": "integer", "format": "int64", "nullable": true},
        "previous_id": {"type": "integer", "format": "int64", "nullable": true,
          "description": "The closed alert this one recurs"},
        "flapping": {"type": "boolean", "description": "It closed and opened again often lately"}}},
    "AlertEvent": {"type": "object", "description": "One entry of an alert's history",
      "properties": {"time_ms": {"type": "integer", "format": "int64"},
        "kind": {"type": "string",
          "enum": ["raised", "updated", "escalated", "acknowledged", "silenced", "closed", "reopened_as"]},
        "actor": {"type": "string", "nullable": true}, "reason": {"type": "string", "nullable": true},
        "details": {"type": "object", "nullable": true}}},
    "AlertPage": {"type": "object", "description": "A page of alerts",
      "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
        "next_cursor": {"type": "string", "nullable": true,
          "description": "The cursor of the next page; null on the last one"}}},
    "AlertCounts": {"type": "object", "description": "Counts over the alerts the caller may see; by_status and groups include closed ones, the others count alerts not closed",
      "properties": {"by_status": {"type": "object", "additionalProperties": {"type": "integer", "format": "int64"}},
        "by_severity": {"type": "object", "additionalProperties": {"type": "integer", "format": "int64"}},
        "by_source": {"type": "object", "additionalProperties": {"type": "integer", "format": "int64"}},
        "open_critical": {"type": "integer", "format": "int64"},
        "escalated": {"type": "integer", "format": "int64"},
        "groups": {"type": "array", "description": "Every (status, severity, source) with at least one alert, closed ones included",
          "items": {"type": "object", "properties": {"status": {"type": "string"}, "severity": {"type": "string"},
            "source": {"type": "string"}, "count": {"type": "integer", "format": "int64"}}}}}},
    "AlertDetail": {"type": "object",
      "properties": {"alert": {"$ref": "#/components/schemas/Alert"},
        "history": {"type": "array", "description": "Oldest first", "items": {"$ref": "#/components/schemas/AlertEvent"}},
        "previous": {"type": "array", "description": "The ids of the earlier alerts of the same source and object, newest first",
          "items": {"type": "integer", "format": "int64"}}}},
    "AlertAnswer": {"type": "object", "properties": {"alert": {"$ref": "#/components/schemas/Alert"}}},
    "AlertCreate": {"type": "object", "description": "A custom alert (source custom)",
      "required": ["severity", "title", "message", "scope"],
      "properties": {"severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "title": {"type": "string", "minLength": 1}, "message": {"type": "string", "minLength": 1},
        "scope": {"type": "string", "minLength": 1, "description": "A node in the caller's scope (tenant:acme)"},
        "area": {"type": "string"},
        "related_type": {"type": "string", "description": "Default: custom"},
        "related_id": {"type": "string", "description": "Default: a new id"},
        "details": {"type": "object"}}},
    "AlertAcknowledge": {"type": "object", "properties": {"reason": {"type": "string"}}},
    "AlertClose": {"type": "object", "required": ["reason"],
      "properties": {"reason": {"type": "string", "minLength": 1}}},
    "AlertSilence": {"type": "object", "required": ["until_ms"],
      "properties": {"until_ms": {"type": "integer", "format": "int64", "description": "A time in the future"},
        "reason": {"type": "string"}}},
    "AlertUnsilence": {"type": "object", "description": "No fields: the body may be empty", "properties": {}}
  })json");
}

}  // namespace opk::admin
