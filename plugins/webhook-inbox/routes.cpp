// The admin API of the webhook failures inbox (docs/notifications.md):
//   GET    /api/v1/webhook-failures                    the failures, filtered and paged
//   GET    /api/v1/webhook-failures/counts             open, handled, suppressed endpoints
//   GET    /api/v1/webhook-failures/{id}               one, with its attempts
//   POST   /api/v1/webhook-failures/replay             {"ids"}: send again, same ids
//   POST   /api/v1/webhook-failures/handle             {"ids", "note"?}: mark handled
//   GET    /api/v1/webhook-failures/suppressions       the active suppressions
//   POST   /api/v1/webhook-failures/suppressions       suppress an endpoint (201)
//   DELETE /api/v1/webhook-failures/suppressions/{id}  lift one (204)
// Each call goes to opskernel.notifications/1 as the caller, which applies
// the caller's scope (anything outside answers 404) and permission. Errors
// are problem+json: 400 naming the field or query parameter, 403, 404, 409.
// Every write is audited with the actor (webhook_failures.replay, .handle,
// .suppress, .lift); the outbox adds its own row per delivery changed.
#include <opskernel/route_input.hpp>

#include <charconv>

#include "inbox.h"

namespace opk::inbox {
namespace {

// The outbox names a delivery's endpoint "recipient"; this API calls it
// "endpoint".
Status renamed(const Status& s) {
  if (s.message().rfind("recipient:", 0) == 0) return Status(s.code(), "endpoint:" + s.message().substr(10));
  return s;
}

Status int_query(const Request& rq, std::string_view name, int64_t min, int64_t max, Json* request, const char* field) {
  auto v = rq.query(name);
  if (!v) return Status::ok();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < min || n > max)
    return Status::invalid(std::string(name) + ": must be a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", not '" + std::string(*v) + "'");
  (*request)[field] = n;
  return Status::ok();
}

// A delivery as this API shows it: the outbox's, with "endpoint" beside
// "recipient".
Json failure_of(Json d) {
  if (d.is_object() && d.contains("recipient")) d["endpoint"] = d["recipient"];
  return d;
}

// A suppression as this API shows it: "endpoint" is the URL or address,
// "endpoint_id" the outbox's key.
Json suppression_of(Json s) {
  if (!s.is_object()) return s;
  s["endpoint_id"] = s.value("endpoint", "");
  s["endpoint"] = s.value("recipient", "");
  s.erase("recipient");
  return s;
}

class Api {
 public:
  explicit Api(InboxPlugin& p) : p_(p) {}

  Status list(const Request& rq, Response& rs) const {
    Json request = Json::object();
    const std::string handled(rq.query("handled").value_or("false"));
    if (handled == "false")
      request["handled"] = false;
    else if (handled == "true")
      request["handled"] = true;
    else if (handled == "all")
      request["handled"] = nullptr;
    else
      return input::refuse(rs, Status::invalid("handled: must be false, true or all, not '" + handled + "'"));
    for (const auto& [query, field] : {std::pair{"scope", "scope"},
                                       {"channel", "channel"},
                                       {"endpoint", "recipient"},
                                       {"event", "event"},
                                       {"cursor", "cursor"}})
      if (auto v = rq.query(query)) request[field] = std::string(*v);
    Status s = int_query(rq, "since_ms", 0, INT64_MAX, &request, "since_ms");
    if (s) s = int_query(rq, "until_ms", 0, INT64_MAX, &request, "until_ms");
    if (s) s = int_query(rq, "limit", 1, 500, &request, "limit");
    Json answer;
    if (s) s = p_.call(rq.principal(), "list_failed", request, source(rq), &answer);
    if (!s) return input::refuse(rs, renamed(s));
    Json failures = Json::array();
    for (const auto& d : answer.value("deliveries", Json::array())) failures.push_back(failure_of(d));
    rs.status(200).json(Json{{"next_cursor", answer.value("next_cursor", Json())}, {"failures", failures}});
    return Status::ok();
  }

  Status counts(const Request& rq, Response& rs) const {
    Json answer;
    if (Status s = p_.call(rq.principal(), "counts", Json::object(), source(rq), &answer); !s)
      return input::refuse(rs, s);
    rs.status(200).json(answer);
    return Status::ok();
  }

  Status get(const Request& rq, Response& rs) const {
    Json answer;
    const std::string id(rq.path_param("id").value_or(""));
    if (Status s = p_.call(rq.principal(), "get", {{"id", id}}, source(rq), &answer); !s) return input::refuse(rs, s);
    rs.status(200).json(Json{{"failure", failure_of(answer.value("delivery", Json::object()))}});
    return Status::ok();
  }

  Status replay(const Request& rq, Response& rs) const {
    Json body, answer;
    Status s = input::json_object(rq, {"ids"}, &body);
    if (s) s = p_.call(rq.principal(), "replay", body, source(rq), &answer);
    if (!s) return input::refuse(rs, s);
    audit(rq, "webhook_failures.replay", "webhook-failures", {{"replayed", answer["replayed"]}},
          std::string(rq.header("x-reason").value_or("")));
    rs.status(200).json(Json{{"replayed", answer["replayed"]}});
    return Status::ok();
  }

  Status handle(const Request& rq, Response& rs) const {
    Json body, answer;
    Status s = input::json_object(rq, {"ids", "note"}, &body);
    if (s) s = p_.call(rq.principal(), "handle", body, source(rq), &answer);
    if (!s) return input::refuse(rs, s);
    audit(rq, "webhook_failures.handle", "webhook-failures",
          {{"handled", answer["handled"]}, {"note", body.value("note", Json())}},
          body.contains("note") && body["note"].is_string() ? body["note"].get<std::string>() : "");
    rs.status(200).json(Json{{"handled", answer["handled"]}});
    return Status::ok();
  }

  Status suppressions(const Request& rq, Response& rs) const {
    Json answer;
    if (Status s = p_.call(rq.principal(), "suppressions", Json::object(), source(rq), &answer); !s)
      return input::refuse(rs, s);
    Json out = Json::array();
    for (const auto& x : answer.value("suppressions", Json::array())) out.push_back(suppression_of(x));
    rs.status(200).json(Json{{"suppressions", out}});
    return Status::ok();
  }

  Status suppress(const Request& rq, Response& rs) const {
    Json body, answer;
    Status s = input::json_object(rq, {"channel", "endpoint", "reason", "until_ms", "scope"}, &body);
    if (s) {
      if (body.contains("endpoint")) {
        body["recipient"] = body["endpoint"];
        body.erase("endpoint");
      }
      s = renamed(p_.call(rq.principal(), "suppress", body, source(rq), &answer));
    }
    if (!s) return input::refuse(rs, s);
    const Json x = suppression_of(answer["suppression"]);
    audit(rq, "webhook_failures.suppress", "suppression:" + x.value("id", ""), x,
          x.value("reason", Json()).is_string() ? x["reason"].get<std::string>() : "");
    rs.status(201)
        .header("location", "/api/v1/webhook-failures/suppressions/" + x.value("id", ""))
        .json(Json{{"suppression", x}});
    return Status::ok();
  }

  Status lift(const Request& rq, Response& rs) const {
    Json answer;
    const std::string id(rq.path_param("id").value_or(""));
    if (Status s = p_.call(rq.principal(), "lift", {{"id", id}}, source(rq), &answer); !s) return input::refuse(rs, s);
    audit(rq, "webhook_failures.lift", "suppression:" + id, suppression_of(answer["suppression"]),
          std::string(rq.header("x-reason").value_or("")));
    rs.status(204);
    return Status::ok();
  }

 private:
  static std::string source(const Request& rq) { return std::string(rq.remote_addr()); }

  void audit(const Request& rq, const std::string& action, const std::string& target, const Json& after,
             const std::string& reason) const {
    Audit a(p_.host());
    Status s = a.record(rq.principal(), {.action = action,
                                         .target = target,
                                         .reason = reason,
                                         .before = nullptr,
                                         .after = after,
                                         .outcome = "success",
                                         .source = source(rq)});
    if (!s) p_.host().error("audit row for " + action + " on " + target + " not written: " + s.message());
  }

  InboxPlugin& p_;
};

}  // namespace

Status InboxPlugin::add_routes() {
  return add_api_routes<Api>(
      "webhook-inbox", "/api/v1/webhook-failures", std::make_shared<const Api>(*this),
      {
          {"GET", "",
           "Failed deliveries, newest first: filters scope, channel, endpoint, event, since_ms, until_ms, handled "
           "(false, true, all); limit and cursor",
           "webhook_failures.read", &Api::list},
          {"GET", "/counts", "Open and handled failures and suppressed endpoints in the caller's scope",
           "webhook_failures.read", &Api::counts},
          {"GET", "/suppressions", "The active suppressions in the caller's scope", "webhook_failures.read",
           &Api::suppressions},
          {"POST", "/suppressions", "Suppress an endpoint for the caller's scope (channel, endpoint, reason, until_ms)",
           "webhook_failures.manage", &Api::suppress},
          {"DELETE", "/suppressions/{id}", "Lift a suppression: its held deliveries go again",
           "webhook_failures.manage", &Api::lift},
          {"POST", "/replay", "Send failed deliveries again with the same ids (ids: 1..500)", "webhook_failures.manage",
           &Api::replay},
          {"POST", "/handle", "Mark failed deliveries handled (ids: 1..500, note)", "webhook_failures.manage",
           &Api::handle},
          {"GET", "/{id}", "A failed delivery with its message and every attempt", "webhook_failures.read", &Api::get},
      });
}

}  // namespace opk::inbox
