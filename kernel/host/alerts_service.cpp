// The alert service and its C table: a call's JSON in and out, the actor and
// permission checks, each operation's request fields, and the audit row of an
// action refused before the engine.
#include "host/alerts_service.h"

#include <opskernel/json.hpp>

#include <map>
#include <mutex>

#include "host/error_answer.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "host/principals.h"
#include "host/served.h"
#include "jobs/run.h"

namespace opk::host {
namespace {

using Json = nlohmann::json;

// Which service serves the calls coming through a plugin's host table.
ServedBy<AlertsService> g_alerts_served;

// A request's fields, read with errors that name the field.
class Request {
 public:
  Status parse(const std::string& text) {
    if (text.empty()) {
      j_ = Json::object();
      return Status::ok();
    }
    j_ = Json::parse(text, nullptr, false);
    if (j_.is_discarded() || !j_.is_object()) return Status::invalid("request: is not a JSON object");
    return Status::ok();
  }
  bool has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }
  Status text(const char* k, std::string* out, bool required = false) const {
    if (!has(k)) return required ? Status::invalid(std::string(k) + ": is required") : Status::ok();
    if (!j_[k].is_string()) return Status::invalid(std::string(k) + ": must be a string");
    *out = j_[k].get<std::string>();
    if (Status s = alerts::check_text(k, *out, true); !s) return s;
    if (required && out->empty()) return Status::invalid(std::string(k) + ": is required");
    return Status::ok();
  }
  // An integer, given as a JSON number or as decimal text (query strings).
  Status integer(const char* k, int64_t* out, bool required = false) const {
    if (!has(k)) return required ? Status::invalid(std::string(k) + ": is required") : Status::ok();
    const Json& v = j_[k];
    if (v.is_number_integer()) {
      *out = v.get<int64_t>();
      return Status::ok();
    }
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
      bool ok = s.size() > i && s.size() <= 19;
      for (size_t c = i; ok && c < s.size(); ++c) ok = s[c] >= '0' && s[c] <= '9';
      if (ok) {
        *out = std::stoll(s);
        return Status::ok();
      }
    }
    return Status::invalid(std::string(k) + ": must be an integer");
  }
  // A JSON object field as its text (empty when not given).
  Status object(const char* k, std::string* out) const {
    if (!has(k)) return Status::ok();
    if (!j_[k].is_object()) return Status::invalid(std::string(k) + ": must be a JSON object");
    *out = j_[k].dump(-1, ' ', false, Json::error_handler_t::replace);
    return Status::ok();
  }

 private:
  Json j_;
};

struct AlertOperation {
  const char* name;
  const char* permission;
  const char* audit_action;  // for refusals before the engine; nullptr for reads
};

const std::vector<AlertOperation>& alert_operations() {
  static const std::vector<AlertOperation> ops = {
      {"list", "alerts.read", nullptr},
      {"get", "alerts.read", nullptr},
      {"counts", "alerts.read", nullptr},
      {"acknowledge", "alerts.manage", "alerts.acknowledge"},
      {"close", "alerts.manage", "alerts.close"},
      {"silence", "alerts.manage", "alerts.silence"},
      {"unsilence", "alerts.manage", "alerts.unsilence"},
      {"create", "alerts.create", "alerts.create"},
      {"raise", "alerts.raise", nullptr},
      {"clear", "alerts.raise", nullptr},
      {"escalate", "alerts.raise", "alerts.escalate"},
  };
  return ops;
}

std::string alert_answer(const store::AlertRow& a) {
  return "{\"alert\":" + alerts::to_json(a) + "}";
}

// The fields of a raise or create.
Status read_raise(const Request& r, alerts::Raise* out, bool numeric_severity_ok) {
  Status s;
  if (numeric_severity_ok) {
    int64_t n = -1;
    if (r.integer("severity", &n)) {
      if (r.has("severity")) {
        if (n < OPK_SEVERITY_INFO || n > OPK_SEVERITY_CRITICAL)
          return Status::invalid("severity: " + std::to_string(n) + " is not 0 (info), 1 (warning) or 2 (critical)");
        static const char* names[] = {"info", "warning", "critical"};
        out->severity = names[n];
      }
    } else if (!(s = r.text("severity", &out->severity))) {
      return Status::invalid("severity: must be info, warning or critical");
    }
  } else if (!(s = r.text("severity", &out->severity))) {
    return s;
  }
  if (r.has("severity") && out->severity.empty()) return Status::invalid("severity: must be info, warning or critical");
  if (!r.has("severity")) return Status::invalid("severity: is required (info, warning or critical)");
  if (!(s = r.text("title", &out->title))) return s;
  if (!(s = r.text("message", &out->message))) return s;
  if (!(s = r.text("area", &out->area))) return s;
  if (!(s = r.text("related_type", &out->related_type))) return s;
  if (!(s = r.text("related_id", &out->related_id))) return s;
  if (!(s = r.text("scope", &out->scope))) return s;
  if (!(s = r.text("type", &out->type))) return s;
  if (r.has("details_json") && !r.has("details")) {
    if (!(s = r.text("details_json", &out->details_json))) return s;
  } else if (!(s = r.object("details", &out->details_json))) {
    return s;
  }
  return Status::ok();
}

}  // namespace

AlertsService::AlertsService(alerts::Engine& engine, identity::Identity& identity, const Principals& principals,
                             SourceLookup sources)
    : engine_(engine), identity_(identity), principals_(principals), sources_(std::move(sources)) {
  ext_.struct_size = sizeof ext_;
  ext_.call = &cb_call;
}

AlertsService::~AlertsService() {
  g_alerts_served.forget(this);
}

void AlertsService::serve(const PluginHost* host) {
  g_alerts_served.serve(host, this);
}

std::vector<std::string> AlertsService::operations() {
  std::vector<std::string> out;
  for (const auto& op : alert_operations()) out.push_back(op.name);
  return out;
}

Status AlertsService::call(const identity::Principal& principal, const std::string& plugin_id,
                           const std::string& op_name, const std::string& request_json, const std::string& source,
                           std::string* answer) {
  const alerts::Actor actor{principal.user_id, principal.role, principal.scope, source};
  const AlertOperation* op = nullptr;
  for (const auto& o : alert_operations())
    if (op_name == o.name) op = &o;
  Request req;
  Status s = req.parse(request_json);
  if (s && !op) s = Status(OPK_ERR_UNSUPPORTED, "no operation '" + op_name + "'");
  if (s && principal.role.empty()) s = Status::permission("an actor with a role is required");
  if (s) {
    // alerts.raise is the System role's unless a role is given it by name:
    // "*" (everything an operator may do) does not include acting as a source.
    bool may = identity_.allowed(principal.role, op->permission);
    if (may && std::string(op->permission) == "alerts.raise" && principal.role != identity::kSystemRole) {
      auto it = identity_.permissions().find(principal.role);
      may = it != identity_.permissions().end() && it->second.count("alerts.raise") > 0;
    }
    if (!may) s = Status::permission("role " + principal.role + " lacks permission " + op->permission);
  }
  if (!s) {
    if (op && op->audit_action) {
      int64_t id = 0;
      req.integer("id", &id);
      std::string reason;
      req.text("reason", &reason);
      engine_.audit_refusal(actor, op->audit_action, id ? "alert:" + std::to_string(id) : "alert:?", reason, s);
    }
    *answer = error_answer(s);
    return s;
  }
  const std::string name = op->name;
  // Reads of the same page by the same role and scope are answered from the
  // cache while no alert was written (generation read before the data).
  const bool cached = name == "list" || name == "counts";
  const uint64_t generation = engine_.generation();
  const int64_t now = jobs::now_ms();
  std::string key;
  if (cached) {
    key = principal.role + '\x1f' + principal.scope + '\x1f' + name + '\x1f' + request_json;
    if (answers_.find(key, generation, now, answer)) return Status::ok();
  }
  std::string out;
  auto id_of = [&](int64_t* id) { return req.integer("id", id, true); };
  store::AlertRow row;
  if (name == "list") {
    alerts::ListRequest r;
    int64_t limit = 50;
    if ((s = req.text("status", &r.status)) && (s = req.text("severity", &r.severity)) &&
        (s = req.text("area", &r.area)) && (s = req.text("source", &r.source)) &&
        (s = req.text("related_type", &r.related_type)) && (s = req.text("related_id", &r.related_id)) &&
        (s = req.text("scope", &r.scope)) && (s = req.text("q", &r.q)) && (s = req.integer("from_ms", &r.from_ms)) &&
        (s = req.integer("to_ms", &r.to_ms)) && (s = req.text("sort", &r.sort)) && (s = req.integer("limit", &limit)) &&
        (s = req.text("cursor", &r.cursor))) {
      if (limit < 1 || limit > 500) {
        s = Status::invalid("limit: " + std::to_string(limit) + " is out of range 1..500");
      } else {
        r.limit = static_cast<size_t>(limit);
        alerts::Page page;
        if ((s = engine_.list(actor, r, &page))) {
          // next_cursor first: admin-http reads it for the Link header
          // without parsing the page.
          out.reserve(64 + page.alerts.size() * 768);
          out = "{\"next_cursor\":" + (page.next_cursor.empty() ? std::string("null") : Json(page.next_cursor).dump()) +
                ",\"alerts\":[";
          for (size_t i = 0; i < page.alerts.size(); ++i) {
            if (i) out.push_back(',');
            alerts::append_json(page.alerts[i], &out);
          }
          out += "]}";
        }
      }
    }
  } else if (name == "get") {
    int64_t id = 0;
    alerts::Detail d;
    if ((s = id_of(&id)) && (s = engine_.get(actor, id, &d))) {
      Json history = Json::array();
      for (const auto& e : d.history) {
        Json details = Json::parse(e.details_json, nullptr, false);
        history.push_back({{"time_ms", e.time_ms},
                           {"kind", e.kind},
                           {"actor", e.actor},
                           {"reason", e.reason.empty() ? Json(nullptr) : Json(e.reason)},
                           {"details", details.is_discarded() ? Json::object() : details}});
      }
      out = "{\"alert\":" + alerts::to_json(d.alert) +
            ",\"history\":" + history.dump(-1, ' ', false, Json::error_handler_t::replace) +
            ",\"previous\":" + Json(d.previous).dump() + "}";
    }
  } else if (name == "counts") {
    alerts::Counts c;
    if ((s = engine_.counts(actor, &c))) {
      Json groups = Json::array();
      for (const auto& g : c.groups)
        groups.push_back({{"status", g.status}, {"severity", g.severity}, {"source", g.source}, {"count", g.count}});
      out = Json({{"by_status", c.by_status},
                  {"groups", groups},
                  {"by_severity", c.by_severity},
                  {"by_source", c.by_source},
                  {"open_critical", c.open_critical},
                  {"escalated", c.escalated}})
                .dump(-1, ' ', false, Json::error_handler_t::replace);
    }
  } else if (name == "acknowledge" || name == "close" || name == "silence" || name == "unsilence") {
    int64_t id = 0, until = 0;
    std::string reason;
    if ((s = id_of(&id)) && (s = req.text("reason", &reason))) {
      if (name == "acknowledge") {
        s = engine_.acknowledge(actor, id, reason, &row);
      } else if (name == "close") {
        s = engine_.close(actor, id, reason, &row);
      } else if (name == "silence") {
        if ((s = req.integer("until_ms", &until, true))) s = engine_.silence(actor, id, until, reason, &row);
      } else {
        s = engine_.unsilence(actor, id, &row);
      }
    }
    if (!s && (s.code() == OPK_ERR_INVALID_ARGUMENT) && s.message().rfind("id:", 0) == 0)
      engine_.audit_refusal(actor, "alerts." + name, "alert:?", reason, s);
    if (s) out = alert_answer(row);
  } else if (name == "create") {
    alerts::Raise r;
    s = read_raise(req, &r, false);
    if (!s) {
      engine_.audit_refusal(actor, "alerts.create", "alert:new", "", s);
    } else if ((s = engine_.create(actor, r, &row))) {
      out = alert_answer(row);
    }
  } else {
    // raise, clear, escalate: the calling plugin's own sources only.
    std::string source_id;
    std::optional<alerts::SourceInfo> src;
    if ((s = req.text("source", &source_id, true))) {
      src = sources_ ? sources_(plugin_id, source_id) : std::nullopt;
      if (!src) s = Status::invalid("source: '" + source_id + "' is not an alert source of plugin '" + plugin_id + "'");
    }
    const std::string system = "system:" + plugin_id;
    if (s && name == "raise") {
      alerts::Raise r;
      if ((s = read_raise(req, &r, true)) && (s = engine_.raise(*src, r, system, &row))) out = alert_answer(row);
    } else if (s) {
      std::string rt, rid, reason;
      if ((s = req.text("related_type", &rt, true)) && (s = req.text("related_id", &rid, true)) &&
          (s = req.text("reason", &reason, name == "escalate"))) {
        if (name == "clear") {
          row = {};
          if ((s = engine_.clear(*src, rt, rid, system, reason, &row)))
            out = row.id ? alert_answer(row) : std::string("{\"alert\":null}");
        } else if ((s = engine_.escalate(*src, rt, rid, reason, actor, &row))) {
          out = alert_answer(row);
        }
      }
    }
  }
  if (s && cached) answers_.put(key, generation, now, out);
  *answer = s ? out : error_answer(s);
  return s;
}

opk_status AlertsService::cb_call(const opk_host* host, const opk_principal* actor, const char* operation,
                                  const char* request_json, const char* source, char** answer_json) {
  auto* ph = PluginHost::from(host);
  if (!ph || !operation || !answer_json) return OPK_ERR_INVALID_ARGUMENT;
  AlertsService* self = g_alerts_served.find(ph);
  std::string answer;
  Status s;
  if (!self) {
    s = Status::unavailable("opk.alerts/1: the alert engine is not running");
    answer = error_answer(s);
  } else if (!actor || !self->principals_.issued(actor)) {
    s = Status::permission(
        "actor: not a principal the kernel issued (pass the request's principal, or system_principal)");
    answer = error_answer(s);
  } else {
    identity::Principal p{actor->user_id ? actor->user_id : "", actor->role ? actor->role : "",
                          actor->scope ? actor->scope : ""};
    try {
      s = self->call(p, ph->plugin_id(), operation, request_json ? request_json : "", source ? source : "", &answer);
    } catch (const std::exception& e) {  // a bug here must not take the caller down
      s = Status(OPK_ERR_INTERNAL, std::string("opk.alerts/1: ") + e.what());
      answer = error_answer(s);
    }
  }
  if (!s) report_host_error(s.message());
  *answer_json = plugin_string(answer);
  if (!*answer_json) return OPK_ERR_NO_MEMORY;
  return s ? OPK_OK : s.code();
}

}  // namespace opk::host
