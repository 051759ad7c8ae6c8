// admin-http -- the HTTP admin API. Serves the kernel's route table on the
// configured address (http_server.*) and adds the API's own routes: jobs,
// runs and their logs (with a Server-Sent Events stream), audit, plugins,
// health, Prometheus metrics and the OpenAPI document. The job routes are
// thin: they turn the request into an opk.jobs/1 operation, and the kernel
// checks permission and scope and audits.
// Needs the route dispatch, streaming and the job service of ABI 1.1.
#define OPK_REQUIRED_HOST_MINOR 1
#include <opskernel/opk.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSONString.h>
#include <Poco/String.h>

#include <map>
#include <sstream>

#include "http_server.h"

namespace opk::admin {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// One route of this API: what it does and how a request becomes an
// operation of opk.jobs/1. Also the source of its OpenAPI description.
struct ApiRoute {
  const char* method;
  const char* path;
  const char* summary;
  const char* permission;  // nullptr: any authenticated caller
  const char* op;          // opk.jobs/1 operation; nullptr: a handler of its own
  std::vector<const char*> query_strings;
  std::vector<const char*> query_ints;
  bool body = false;               // takes a JSON object body
  const char* path_key = nullptr;  // the {id} segment's field in the request
  bool path_is_int = false;
  int success = 200;
  uint64_t flags = 0;
  std::vector<const char*> query_bools;  // true | false
};

const std::vector<ApiRoute>& api_routes() {
  static const std::vector<ApiRoute> routes = {
      {"GET",
       "/api/v1/jobs",
       "Scheduled jobs with their last run (filter, sort, page)",
       "jobs.read",
       "inventory",
       {"status", "text", "type", "tenant", "region", "sort", "order"},
       {"offset", "limit"}},
      {"POST", "/api/v1/jobs", "Create a scheduled job", "jobs.write", "define", {}, {}, true, nullptr, false, 201},
      {"GET",
       "/api/v1/jobs/{id}",
       "A scheduled job: last runs, failures per day (30 days), next fire times",
       "jobs.read",
       "job",
       {},
       {"last_n"},
       false,
       "id"},
      {"PATCH",
       "/api/v1/jobs/{id}",
       "Change a scheduled job's schedule, parameters, enabled, recipients ...",
       "jobs.write",
       "update",
       {},
       {},
       true,
       "id"},
      {"POST",
       "/api/v1/jobs/{id}/run",
       "Run a scheduled job now (parameters, reason)",
       "runs.start",
       "run_now",
       {},
       {},
       true,
       "job_id",
       false,
       202},
      {"GET", "/api/v1/job-types", "Job types with capabilities and parameter schemas", "jobs.read", "types"},
      {.method = "GET",
       .path = "/api/v1/runs",
       .summary = "Runs, newest first (filter by job, type, status, over target, stale)",
       .permission = "jobs.read",
       .op = "runs",
       .query_strings = {"job_id", "job_type", "status"},
       .query_ints = {"limit", "since_ms"},
       .query_bools = {"over_target", "stale"}},
      {"POST",
       "/api/v1/runs",
       "Start an ad-hoc run of a job type, or a batch ({\"requests\": [...]})",
       "runs.start",
       "run_now",
       {},
       {},
       true,
       nullptr,
       false,
       202},
      {"GET", "/api/v1/runs/{id}", "A run with its steps", "jobs.read", "run", {}, {}, false, "run_id", true},
      {"GET",
       "/api/v1/runs/{id}/log",
       "A run's log lines after a cursor (since = last seq seen)",
       "jobs.read",
       "log",
       {},
       {"since", "limit"},
       false,
       "run_id",
       true},
      {"GET",
       "/api/v1/runs/{id}/events",
       "A run's log as Server-Sent Events until the run completes",
       "jobs.read",
       nullptr,
       {},
       {"since"},
       false,
       "run_id",
       true},
      {"POST",
       "/api/v1/runs/{id}/cancel",
       "Cancel a run (its type must have a cancel hook once running)",
       "runs.cancel",
       "cancel",
       {},
       {},
       true,
       "run_id",
       true},
      {"POST",
       "/api/v1/runs/{id}/retry",
       "Run a failed run again, with the same or new parameters",
       "runs.retry",
       "retry",
       {},
       {},
       true,
       "run_id",
       true,
       202},
      {"POST", "/api/v1/runs/{id}/hold", "Hold a pending run", "runs.hold", "hold", {}, {}, true, "run_id", true},
      {"POST", "/api/v1/runs/{id}/release", "Release a held run", "runs.hold", "release", {}, {}, true, "run_id", true},
      {"POST",
       "/api/v1/runs/{id}/recover",
       "Close a stale running run as failed",
       "runs.recover",
       "recover",
       {},
       {},
       true,
       "run_id",
       true},
      {"GET", "/api/v1/queues", "Queued runs per worker pool", "jobs.read", "queues"},
      {"GET",
       "/api/v1/cron/next",
       "The next fire times of a cron expression in a time zone",
       "jobs.read",
       "cron_next",
       {"cron", "time_zone"},
       {"n", "after_ms"}},
      {"GET",
       "/api/v1/audit",
       "The audit log, newest first (filter by actor, action)",
       "audit.read",
       "audit",
       {"actor", "action"},
       {"limit"}},
      {"GET", "/api/v1/plugins", "Loaded plugins with their manifests, and refused ones with reasons", "plugins.read",
       "plugins"},
      {"GET", "/api/v1/me", "The caller: user, role, scope and the kernel permissions the role holds", nullptr,
       nullptr},
      {.method = "GET",
       .path = "/api/v1/openapi.json",
       .summary = "This API as an OpenAPI 3 document",
       .permission = nullptr,
       .op = nullptr,
       .flags = OPK_ROUTE_ANONYMOUS},
      {.method = "GET",
       .path = "/healthz",
       .summary = "Liveness: the server answers",
       .permission = nullptr,
       .op = nullptr,
       .flags = OPK_ROUTE_ANONYMOUS},
      {.method = "GET",
       .path = "/readyz",
       .summary = "Readiness: the job engine runs",
       .permission = nullptr,
       .op = nullptr,
       .flags = OPK_ROUTE_ANONYMOUS},
      {"GET", "/metrics", "Prometheus metrics: runs, queues, dispatch lag, HTTP requests", "metrics.read", nullptr},
  };
  return routes;
}

void problem(Response& rs, int status, const std::string& title, const std::string& detail) {
  rs.status(status).header("content-type", "application/problem+json").body(problem_json(status, title, detail));
}

// The HTTP status for an opk.jobs/1 failure.
int http_status(opk_status st, const std::string& message) {
  switch (st) {
    case OPK_ERR_INVALID_ARGUMENT:
      return message.rfind("request: ", 0) == 0 ? 400 : 422;
    case OPK_ERR_NOT_FOUND:
      return 404;
    case OPK_ERR_CONFLICT:
      return 409;
    case OPK_ERR_PERMISSION:
      return 403;
    case OPK_ERR_UNAVAILABLE:
      return 503;
    case OPK_ERR_UNSUPPORTED:
      return 501;
    default:
      return 500;
  }
}

const char* title_of(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

class AdminHttp : public Plugin {
 public:
  explicit AdminHttp(Host host) : Plugin(host) {}

  Status start() override {
    jobs_ = host().extension<opk_jobs_v1>(OPK_EXT_JOBS);
    if (!jobs_) return {OPK_ERR_UNAVAILABLE, "the kernel offers no job service (opk.jobs/1): it runs without a store"};
    ServerSettings settings;
    if (Status s = read_settings(host(), &settings); !s) return s;
    for (const auto& r : api_routes()) {
      Status s = add_route(
          "admin-api", r.method, r.path, r.summary,
          [this, &r](const Request& rq, Response& rs) { return handle(r, rq, rs); }, r.flags,
          r.permission ? r.permission : "");
      if (!s) return s;
    }
    server_ = std::make_unique<Server>(host(), settings);
    return server_->start();
  }

  void stop() override { server_.reset(); }

 private:
  // Calls an opk.jobs/1 operation for the request's caller.
  opk_status call(const Request& rq, const std::string& op, const std::string& request, std::string* answer) const {
    const std::string user(rq.user_id()), role(rq.role()), scope(rq.scope()), source(rq.remote_addr());
    opk_principal actor{sizeof(opk_principal), user.c_str(), role.c_str(), scope.c_str()};
    char* out = nullptr;
    const opk_status st = jobs_->call(host().raw(), &actor, op.c_str(), request.c_str(), source.c_str(), &out);
    *answer = out ? out : "{}";
    host().free(out);
    return st;
  }

  static std::string error_of(const std::string& answer) {
    try {
      Poco::JSON::Parser parser;
      auto o = parser.parse(answer).extract<Object::Ptr>();
      return o->optValue<std::string>("error", "failed");
    } catch (const Poco::Exception&) {
      return "failed";
    }
  }

  // The operation's request: the body object, the path's id and the query.
  static Status build_request(const ApiRoute& r, const Request& rq, Object::Ptr* out, int* http) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    *http = 400;
    if (r.path_key && std::string(r.path_key) == "job_id" && rq.body().find("\"requests\"") != std::string_view::npos) {
      *http = 422;
      return Status::invalid("requests: a batch goes to POST /api/v1/runs, not to one job's run");
    }
    if (r.body && !rq.body().empty()) {
      const auto type = rq.header("content-type").value_or("");
      if (Poco::icompare(std::string(type.substr(0, 16)), std::string("application/json")) != 0) {
        *http = 415;
        return Status::invalid("send the body as application/json");
      }
      try {
        Poco::JSON::Parser parser;
        auto v = parser.parse(std::string(rq.body()));
        if (v.type() != typeid(Object::Ptr)) return Status::invalid("the body must be a JSON object");
        o = v.extract<Object::Ptr>();
      } catch (const Poco::Exception& e) {
        return Status::invalid("the body is not valid JSON: " + e.message());
      }
    }
    // Query parameters: known names only, so a typo is an error.
    for (uint32_t i = 0; i < rq.raw()->query_count; ++i) {
      const std::string k = rq.raw()->query[i].key, v = rq.raw()->query[i].value;
      auto is = [&](const std::vector<const char*>& names) {
        return std::any_of(names.begin(), names.end(), [&](const char* n) { return k == n; });
      };
      if (is(r.query_strings)) {
        o->set(k, v);
      } else if (is(r.query_bools)) {
        if (v != "true" && v != "false")
          return Status::invalid("query parameter " + k + ": '" + v + "' is not true or false");
        o->set(k, v == "true");
      } else if (is(r.query_ints)) {
        if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
          return Status::invalid("query parameter " + k + ": '" + v + "' is not a whole number");
        o->set(k == "since" ? "after_seq" : k, static_cast<Poco::Int64>(std::stoll(v)));
      } else {
        return Status::invalid("unknown query parameter '" + k + "'");
      }
    }
    if (r.path_key) {
      const std::string id(rq.path_param("id").value_or(""));
      if (r.path_is_int) {
        if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
          *http = 404;
          return Status::not_found("no run '" + id + "'");
        }
        o->set(r.path_key, static_cast<Poco::Int64>(std::stoll(id)));
      } else {
        o->set(r.path_key, id);
      }
    }
    *out = o;
    return Status::ok();
  }

  Status handle(const ApiRoute& r, const Request& rq, Response& rs) {
    const std::string path = r.path;
    if (path == "/healthz") {
      rs.status(200).json("{\"status\":\"ok\"}");
      return Status::ok();
    }
    if (path == "/readyz") return readyz(rs);
    if (path == "/api/v1/openapi.json") return openapi(rs);
    if (path == "/api/v1/me") return me(rq, rs);
    Object::Ptr request;
    int http = 400;
    if (Status s = build_request(r, rq, &request, &http); !s) {
      problem(rs, http,
              http == 415   ? "Unsupported Media Type"
              : http == 404 ? "Not Found"
                            : "Bad Request",
              s.message());
      return Status::ok();
    }
    std::ostringstream os;
    request->stringify(os);
    if (path == "/metrics") return metrics(rq, rs);
    if (path == "/api/v1/runs/{id}/events") return events(rq, rs, request);
    std::string answer;
    const opk_status st = call(rq, r.op, os.str(), &answer);
    if (st != OPK_OK) {
      const std::string msg = error_of(answer);
      const int code = http_status(st, msg);
      problem(rs, code, title_of(code), code == 500 ? "the request could not be completed" : msg);
      if (code == 500) host().error("opk.jobs/1 " + std::string(r.op) + " failed: " + msg);
      return Status::ok();
    }
    rs.status(r.success).json(answer);
    return Status::ok();
  }

  // The caller, with the kernel's permissions its role holds, so a client
  // (the console) can offer only what the caller may do.
  Status me(const Request& rq, Response& rs) {
    static const char* const kKernelPermissions[] = {"jobs.read",  "jobs.write",  "runs.start",   "runs.cancel",
                                                     "runs.retry", "runs.hold",   "runs.recover", "audit.read",
                                                     "users.read", "users.write", "plugins.read", "metrics.read"};
    const std::string role(rq.role());
    const auto* identity = host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    std::string permissions;
    for (const char* p : kKernelPermissions) {
      if (!identity || !identity->allowed(host().raw(), role.c_str(), p)) continue;
      permissions += std::string(permissions.empty() ? "" : ",") + "\"" + p + "\"";
    }
    rs.status(200).json("{\"user_id\":" + Poco::toJSON(std::string(rq.user_id()), Poco::JSON_WRAP_STRINGS) +
                        ",\"role\":" + Poco::toJSON(role, Poco::JSON_WRAP_STRINGS) +
                        ",\"scope\":" + Poco::toJSON(std::string(rq.scope()), Poco::JSON_WRAP_STRINGS) +
                        ",\"permissions\":[" + permissions + "]}");
    return Status::ok();
  }

  Status readyz(Response& rs) {
    // The engine answers a trivial operation once it runs.
    const opk_principal probe{sizeof(opk_principal), "admin-http", "PlatformAdministrator", "platform"};
    char* out = nullptr;
    const opk_status st = jobs_->call(host().raw(), &probe, "queues", "{}", "readyz", &out);
    host().free(out);
    // Only UNAVAILABLE means the engine is not there; a permission refusal
    // (a narrowed matrix) still proves it answers.
    if (st != OPK_ERR_UNAVAILABLE)
      rs.status(200).json("{\"status\":\"ready\"}");
    else
      problem(rs, 503, "Service Unavailable", "the job engine is not running yet");
    return Status::ok();
  }

  // Server-Sent Events: one "log" event per line (id = its seq, so a
  // reconnecting client resumes with Last-Event-ID), then "end" with the run.
  Status events(const Request& rq, Response& rs, Object::Ptr request) {
    int64_t after = request->optValue<Poco::Int64>("after_seq", 0);
    if (auto last = rq.header("last-event-id");
        last && !last->empty() && last->find_first_not_of("0123456789") == std::string::npos && last->size() < 18)
      after = std::stoll(std::string(*last));
    const int64_t run_id = request->getValue<Poco::Int64>("run_id");
    bool started = false;
    while (true) {
      const std::string req = "{\"run_id\":" + std::to_string(run_id) + ",\"after_seq\":" + std::to_string(after) +
                              ",\"limit\":500,\"wait_ms\":" + (started ? "5000" : "0") + "}";
      std::string answer;
      const opk_status st = call(rq, "log", req, &answer);
      if (st != OPK_OK) {
        if (!started) {
          const std::string msg = error_of(answer);
          const int code = http_status(st, msg);
          problem(rs, code, title_of(code), msg);
        }
        return Status::ok();
      }
      Poco::JSON::Parser parser;
      auto o = parser.parse(answer).extract<Object::Ptr>();
      auto lines = o->getArray("lines");
      std::string chunk;
      if (!started) {
        rs.status(200)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-store")
            .header("x-accel-buffering", "no");
        chunk = "retry: 2000\n\n";
        started = true;
      }
      for (size_t i = 0; i < lines->size(); ++i) {
        auto line = lines->getObject(static_cast<unsigned>(i));
        std::ostringstream data;
        line->stringify(data);
        after = line->getValue<Poco::Int64>("seq");
        chunk += "id: " + std::to_string(after) + "\nevent: log\ndata: " + data.str() + "\n\n";
      }
      const bool finished = o->getValue<bool>("finished");
      if (finished) {
        std::string run;
        call(rq, "run", "{\"run_id\":" + std::to_string(run_id) + "}", &run);
        chunk += "event: end\ndata: " + run + "\n\n";
      } else if (lines->size() == 0) {
        chunk += ": waiting\n\n";  // keeps proxies and clients from timing out
      }
      rs.body(chunk);
      if (finished) return Status::ok();     // the rest is sent when the handler returns
      if (!rs.flush()) return Status::ok();  // the client has gone
    }
  }

  Status metrics(const Request& rq, Response& rs) {
    std::string answer;
    const opk_status st = call(rq, "stats", "{}", &answer);
    if (st != OPK_OK) {
      const std::string msg = error_of(answer);
      problem(rs, http_status(st, msg), title_of(http_status(st, msg)), msg);
      return Status::ok();
    }
    Poco::JSON::Parser parser;
    auto o = parser.parse(answer).extract<Object::Ptr>();
    auto label = [](const std::string& v) {
      std::string out;
      for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
          out += "\\n";
          continue;
        }
        out += c;
      }
      return out;
    };
    std::string text =
        "# HELP opskernel_runs Runs in the store, by job type and status.\n# TYPE opskernel_runs gauge\n";
    auto runs = o->getArray("runs");
    for (size_t i = 0; i < runs->size(); ++i) {
      auto r = runs->getObject(static_cast<unsigned>(i));
      text += "opskernel_runs{job_type=\"" + label(r->getValue<std::string>("job_type")) + "\",status=\"" +
              label(r->getValue<std::string>("status")) + "\"} " + std::to_string(r->getValue<Poco::Int64>("count")) +
              "\n";
    }
    text += "# HELP opskernel_queue_depth Runs queued per worker pool.\n# TYPE opskernel_queue_depth gauge\n";
    auto queues = o->getObject("queues");
    for (const auto& [name, v] : *queues)
      text += "opskernel_queue_depth{pool=\"" + label(name) + "\"} " + v.toString() + "\n";
    auto lag = o->getObject("dispatch_lag");
    auto bounds = lag->getArray("bounds_ms");
    auto counts = lag->getArray("counts");
    text +=
        "# HELP opskernel_dispatch_lag_seconds Scheduled start to plugin entry.\n"
        "# TYPE opskernel_dispatch_lag_seconds histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < counts->size(); ++i) {
      cumulative += counts->getElement<Poco::Int64>(static_cast<unsigned>(i));
      const std::string le = i < bounds->size()
                                 ? std::to_string(bounds->getElement<Poco::Int64>(static_cast<unsigned>(i)) / 1000.0)
                                 : "+Inf";
      text += "opskernel_dispatch_lag_seconds_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    text += "opskernel_dispatch_lag_seconds_sum " + std::to_string(lag->getValue<Poco::Int64>("sum_ms") / 1000.0) +
            "\nopskernel_dispatch_lag_seconds_count " + std::to_string(lag->getValue<Poco::Int64>("count")) + "\n";
    if (server_) text += server_->metrics().prometheus();
    rs.status(200).header("content-type", "text/plain; version=0.0.4").body(text);
    return Status::ok();
  }

  // The OpenAPI 3 document: every route the kernel serves, this API's with
  // their parameters, other features' with their summary and permission.
  Status openapi(Response& rs) {
    const auto* routes = host().extension<opk_http_routes_v1>(OPK_EXT_HTTP_ROUTES);
    char* json = nullptr;
    if (!routes || !routes->list || routes->list(host().raw(), &json) != OPK_OK) {
      problem(rs, 503, "Service Unavailable", "the route table cannot be listed");
      return Status::ok();
    }
    Poco::JSON::Parser parser;
    auto list = parser.parse(json).extract<Array::Ptr>();
    host().free(json);
    std::map<std::string, const ApiRoute*> own;
    for (const auto& r : api_routes()) own[std::string(r.method) + " " + r.path] = &r;

    Object::Ptr doc = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    doc->set("openapi", "3.0.3");
    Object::Ptr info = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    info->set("title", "Opskernel admin API");
    info->set("version", "1");
    info->set("description",
              "Errors are RFC 9457 problem+json. Authenticate with 'Authorization: Bearer <token>'. Every list is "
              "filtered to the caller's scope; x-permission names what the caller's role needs.");
    doc->set("info", info);
    Object::Ptr paths = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (size_t i = 0; i < list->size(); ++i) {
      auto r = list->getObject(static_cast<unsigned>(i));
      const std::string method = r->getValue<std::string>("method"), path = r->getValue<std::string>("path");
      std::string lower = method;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      Object::Ptr item =
          paths->has(path) ? paths->getObject(path) : Object::Ptr(new Object(Poco::JSON_PRESERVE_KEY_ORDER));
      Object::Ptr op = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      op->set("summary", r->getValue<std::string>("summary"));
      op->set("operationId", lower + path);
      Array::Ptr tags = new Array;
      tags->add(r->getValue<std::string>("plugin") + "/" + r->getValue<std::string>("feature"));
      op->set("tags", tags);
      const bool anonymous = r->getValue<bool>("anonymous");
      if (anonymous) op->set("security", Array::Ptr(new Array));
      if (!r->isNull("permission")) op->set("x-permission", r->getValue<std::string>("permission"));
      Array::Ptr params = new Array;
      std::stringstream ss(path);
      std::string seg;
      while (std::getline(ss, seg, '/'))
        if (seg.size() > 2 && seg.front() == '{')
          params->add(param(seg.substr(1, seg.size() - 2), "path", "string", true));
      const ApiRoute* mine = own.count(method + " " + path) ? own[method + " " + path] : nullptr;
      if (mine) {
        for (auto q : mine->query_strings) params->add(param(q, "query", "string", false));
        for (auto q : mine->query_ints) params->add(param(q, "query", "integer", false));
        for (auto q : mine->query_bools) params->add(param(q, "query", "boolean", false));
        if (mine->body) {
          Object::Ptr body = new Object, content = new Object, media = new Object, schema = new Object;
          schema->set("type", "object");
          media->set("schema", schema);
          content->set("application/json", media);
          body->set("content", content);
          op->set("requestBody", body);
        }
      }
      op->set("parameters", params);
      Object::Ptr responses = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      Object::Ptr ok = new Object;
      ok->set("description", "success");
      responses->set(std::to_string(mine ? mine->success : 200), ok);
      for (const char* code : {"400", "401", "403", "404", "409", "413", "422", "429"}) {
        if (anonymous && (std::string(code) == "401" || std::string(code) == "403")) continue;
        Object::Ptr p = new Object, content = new Object, media = new Object, ref = new Object;
        p->set("description", "problem");
        ref->set("$ref", "#/components/schemas/Problem");
        media->set("schema", ref);
        content->set("application/problem+json", media);
        p->set("content", content);
        responses->set(code, p);
      }
      op->set("responses", responses);
      item->set(lower, op);
      paths->set(path, item);
    }
    doc->set("paths", paths);
    doc->set("components", parser.parse(R"({
      "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
      "schemas": {"Problem": {"type": "object", "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"}}}}})"));
    Array::Ptr security = new Array;
    Object::Ptr bearer = new Object;
    bearer->set("bearer", Array::Ptr(new Array));
    security->add(bearer);
    doc->set("security", security);
    std::ostringstream os;
    doc->stringify(os);
    rs.status(200).json(os.str());
    return Status::ok();
  }

  static Object::Ptr param(const std::string& name, const char* in, const char* type, bool required) {
    Object::Ptr p = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    p->set("name", name);
    p->set("in", in);
    p->set("required", required);
    Object::Ptr schema = new Object;
    schema->set("type", type);
    p->set("schema", schema);
    return p;
  }

  const opk_jobs_v1* jobs_ = nullptr;
  std::unique_ptr<Server> server_;
};

Manifest describe() {
  Manifest m("admin-http", "Admin HTTP API", "1.0.0", "Opskernel",
             "Serves the admin API and every admin feature's routes over HTTP");
  m.admin_feature({.id = "admin-api",
                   .title = "Admin API",
                   .description = "Jobs, runs, live logs, audit, plugins, health and metrics over HTTP.",
                   .translations = {}});
  return m;
}

}  // namespace
}  // namespace opk::admin

OPK_PLUGIN(opk::admin::AdminHttp, opk::admin::describe);
