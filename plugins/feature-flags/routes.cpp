// The admin API of the global feature flags (docs/feature-flags.md):
//   GET    /api/v1/feature-flags               the flags, filtered
//   POST   /api/v1/feature-flags               create an operator's flag (201)
//   GET    /api/v1/feature-flags/{id}          one flag
//   PATCH  /api/v1/feature-flags/{id}          override: value, reason, expires_ms
//   POST   /api/v1/feature-flags/{id}/reset    back to the default (reason)
//   DELETE /api/v1/feature-flags/{id}?reason=  delete an operator's flag (204)
// and the OpenFeature Remote Evaluation Protocol for applications:
//   POST   /ofrep/v1/evaluate/flags/{key}      one flag
//   POST   /ofrep/v1/evaluate/flags            every flag (ETag, If-None-Match)
// The admin API reads the store (the truth); OFREP reads the snapshot, as
// plugins do. Errors are problem+json naming the field (400), 403, 404,
// 409; OFREP answers its own error shape ({"key", "errorCode",
// "errorDetails"}). Every change is audited with the actor, the reason and
// the flag before and after (feature_flags.create, .update, .reset, .delete).
#include <opskernel/route_input.hpp>

#include <algorithm>
#include <cctype>

#include "flags.h"

namespace opk::flags {
namespace {

// An optional expiry: null/absent (none) or a time in ms after `now`.
Status expiry_of(const Json& body, int64_t now, int64_t* out) {
  *out = 0;
  if (!body.contains("expires_ms") || body["expires_ms"].is_null()) return Status::ok();
  const Json& v = body["expires_ms"];
  if (!v.is_number_integer()) return Status::invalid("expires_ms: must be a whole number of ms since the epoch");
  const int64_t ms = v.get<int64_t>();
  if (ms <= now) return Status::invalid("expires_ms: must be in the future (now is " + std::to_string(now) + ")");
  *out = ms;
  return Status::ok();
}

std::string lower_text(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class Api {
 public:
  explicit Api(FlagsPlugin& p) : p_(p) {}

  Status list(const Request& rq, Response& rs) const {
    const auto q = [&](const char* name) { return std::string(rq.query(name).value_or("")); };
    const std::string type = q("type"), origin = q("origin"), state = q("state"), text = lower_text(q("text"));
    if (!type.empty() && type != "boolean" && type != "string" && type != "number")
      return input::refuse(rs, Status::invalid("type: must be boolean, string or number, not '" + type + "'"));
    if (!origin.empty() && origin != "plugin" && origin != "operator")
      return input::refuse(rs, Status::invalid("origin: must be plugin or operator, not '" + origin + "'"));
    if (!state.empty() && state != "overridden" && state != "default")
      return input::refuse(rs, Status::invalid("state: must be overridden or default, not '" + state + "'"));
    std::vector<Flag> all;
    if (Status s = p_.read_all(&all); !s) return input::refuse(rs, s);
    const int64_t now = p_.host().now_ms();
    Json out = Json::array();
    for (const auto& f : all) {
      if (!type.empty() && f.type != type) continue;
      if (!origin.empty() && (origin == "plugin") == f.plugin.empty()) continue;
      if (rq.query("plugin") && f.plugin != *rq.query("plugin")) continue;
      if (rq.query("owner") && f.owner != *rq.query("owner")) continue;
      if (!state.empty() && (state == "overridden") != f.overridden(now)) continue;
      if (!text.empty() && lower_text(f.id).find(text) == std::string::npos &&
          lower_text(f.description).find(text) == std::string::npos)
        continue;
      out.push_back(f.to_json(now));
    }
    rs.status(200).json(Json{{"flags", out}});
    return Status::ok();
  }

  Status get(const Request& rq, Response& rs) const {
    Flag f;
    if (Status s = p_.read(id(rq), &f); !s) return input::refuse(rs, s);
    rs.status(200).json(Json{{"flag", f.to_json(p_.host().now_ms())}});
    return Status::ok();
  }

  Status create(const Request& rq, Response& rs) const {
    Json body;
    Status s = input::json_object(
        rq, {"id", "type", "default", "description", "owner", "reason", "value", "expires_ms"}, &body);
    const int64_t now = p_.host().now_ms();
    Flag f;
    if (s && !body.contains("id")) s = Status::invalid("id: is required");
    if (s) s = check_id("id", body["id"]);
    if (s && (!body.contains("type") || !body["type"].is_string() ||
              (body["type"] != "boolean" && body["type"] != "string" && body["type"] != "number")))
      s = Status::invalid("type: must be boolean, string or number");
    if (s) {
      f.id = body["id"].get<std::string>();
      f.type = body["type"].get<std::string>();
      if (!body.contains("default")) s = Status::invalid("default: is required");
    }
    if (s) s = check_value("default", f.type, body["default"]);
    if (s && (!body.contains("description") || !body["description"].is_string() ||
              body["description"].get<std::string>().empty() || body["description"].get<std::string>().size() > 1000))
      s = Status::invalid("description: must be a string of 1 to 1,000 bytes");
    if (s && body.contains("owner") &&
        (!body["owner"].is_string() || body["owner"].get<std::string>().empty() ||
         body["owner"].get<std::string>().size() > 200))
      s = Status::invalid("owner: must be a string of 1 to 200 bytes");
    if (s) s = input::reason(body.value("reason", Json()), "the flag changes", &f.reason);
    if (s && body.contains("value") && !body["value"].is_null()) {
      s = check_value("value", f.type, body["value"]);
      if (s) f.value = body["value"];
    }
    if (s) s = expiry_of(body, now, &f.expires_ms);
    if (s && f.expires_ms != 0 && f.value.is_null()) s = Status::invalid("expires_ms: needs a value to expire");
    if (!s) return input::refuse(rs, s);
    f.default_value = body["default"];
    f.description = body["description"].get<std::string>();
    f.owner = body.contains("owner") ? body["owner"].get<std::string>() : std::string(rq.user_id());
    f.created_by = f.updated_by = std::string(rq.user_id());
    f.created_ms = f.updated_ms = now;
    f.revision = 1;
    if (Status w = p_.insert(f); !w) return input::refuse(rs, w);
    reload();
    p_.audit(rq.principal(), "feature_flags.create", f.id, f.reason, nullptr, f.to_json(now), source(rq));
    rs.status(201).header("location", "/api/v1/feature-flags/" + f.id).json(Json{{"flag", f.to_json(now)}});
    return Status::ok();
  }

  Status update(const Request& rq, Response& rs) const {
    Json body;
    Status s = input::json_object(rq, {"value", "reason", "expires_ms", "description", "owner", "default"}, &body);
    Flag before;
    if (s) s = p_.read(id(rq), &before);
    if (!s) return input::refuse(rs, s);
    const int64_t now = p_.host().now_ms();
    Flag f = before;
    s = input::reason(body.value("reason", Json()), "the flag changes", &f.reason);
    if (s && !body.contains("value") && !body.contains("expires_ms") && !body.contains("description") &&
        !body.contains("owner") && !body.contains("default"))
      s = Status::invalid("request: nothing to change (value, expires_ms, description, owner or default)");
    if (s && !before.plugin.empty())
      for (const char* field : {"description", "owner", "default"})
        if (s && body.contains(field))
          s = Status::invalid(std::string(field) + ": flag '" + before.id + "' is declared by plugin '" +
                              before.plugin + "', which sets its " + field + "; override its value instead");
    if (s && body.contains("value")) {
      if (body["value"].is_null())
        s = Status::invalid("value: must be a " + f.type + " (to go back to the default, reset the flag)");
      else
        s = check_value("value", f.type, body["value"]);
      if (s) f.value = body["value"];
    }
    if (s && body.contains("default")) {
      s = check_value("default", f.type, body["default"]);
      if (s) f.default_value = body["default"];
    }
    if (s && body.contains("description")) {
      if (!body["description"].is_string() || body["description"].get<std::string>().empty() ||
          body["description"].get<std::string>().size() > 1000)
        s = Status::invalid("description: must be a string of 1 to 1,000 bytes");
      else
        f.description = body["description"].get<std::string>();
    }
    if (s && body.contains("owner")) {
      if (!body["owner"].is_string() || body["owner"].get<std::string>().empty() ||
          body["owner"].get<std::string>().size() > 200)
        s = Status::invalid("owner: must be a string of 1 to 200 bytes");
      else
        f.owner = body["owner"].get<std::string>();
    }
    if (s && body.contains("expires_ms")) {
      s = expiry_of(body, now, &f.expires_ms);
      if (s && !body.contains("value") && !before.overridden(now))
        s = Status::invalid("expires_ms: flag '" + before.id + "' has no override to expire; give a value");
    } else if (s && body.contains("value")) {
      f.expires_ms = 0;  // a new override without an expiry holds until reset
    }
    if (!s) return input::refuse(rs, s);
    f.updated_by = std::string(rq.user_id());
    f.updated_ms = now;
    f.revision = before.revision + 1;
    if (Status w = p_.replace(before, f); !w) return input::refuse(rs, w);
    reload();
    p_.audit(rq.principal(), "feature_flags.update", f.id, f.reason, before.to_json(now), f.to_json(now), source(rq));
    rs.status(200).json(Json{{"flag", f.to_json(now)}});
    return Status::ok();
  }

  Status reset(const Request& rq, Response& rs) const {
    Json body;
    Status s = input::json_object(rq, {"reason"}, &body);
    Flag before;
    if (s) s = p_.read(id(rq), &before);
    Flag f = before;
    if (s) s = input::reason(body.value("reason", Json()), "the flag changes", &f.reason);
    if (!s) return input::refuse(rs, s);
    const int64_t now = p_.host().now_ms();
    f.value = Json();
    f.expires_ms = 0;
    f.updated_by = std::string(rq.user_id());
    f.updated_ms = now;
    f.revision = before.revision + 1;
    if (Status w = p_.replace(before, f); !w) return input::refuse(rs, w);
    reload();
    p_.audit(rq.principal(), "feature_flags.reset", f.id, f.reason, before.to_json(now), f.to_json(now), source(rq));
    rs.status(200).json(Json{{"flag", f.to_json(now)}});
    return Status::ok();
  }

  Status remove(const Request& rq, Response& rs) const {
    Flag before;
    Status s = p_.read(id(rq), &before);
    std::string reason;
    if (s)
      s = input::reason(rq.query("reason") ? Json(std::string(*rq.query("reason"))) : Json(), "the flag changes",
                        &reason);
    if (s && !before.plugin.empty())
      s = Status::conflict("id: flag '" + before.id + "' is declared by plugin '" + before.plugin +
                           "' and cannot be deleted; override it or reset it");
    if (s) s = p_.remove(before);
    if (!s) return input::refuse(rs, s);
    reload();
    p_.audit(rq.principal(), "feature_flags.delete", before.id, reason, before.to_json(p_.host().now_ms()), nullptr,
             source(rq));
    rs.status(204);
    return Status::ok();
  }

  // ------------------------------------------------------------------ OFREP

  Status ofrep_one(const Request& rq, Response& rs) const {
    const std::string key = std::string(rq.path_param("key").value_or(""));
    if (Status s = ofrep_context(rq); !s) {
      rs.status(400).json(Json{{"key", key},
                               {"errorCode", s.message().rfind("context", 0) == 0 ? "INVALID_CONTEXT" : "PARSE_ERROR"},
                               {"errorDetails", s.message()}});
      return Status::ok();
    }
    const auto snap = p_.snapshot();
    auto it = snap->flags.find(key);
    if (it == snap->flags.end()) {
      rs.status(404).json(
          Json{{"key", key}, {"errorCode", "FLAG_NOT_FOUND"}, {"errorDetails", "no flag '" + key + "'"}});
      return Status::ok();
    }
    rs.status(200).json(ofrep_of(it->second, p_.host().now_ms()));
    return Status::ok();
  }

  Status ofrep_bulk(const Request& rq, Response& rs) const {
    if (Status s = ofrep_context(rq); !s) {
      rs.status(400).json(Json{{"errorCode", s.message().rfind("context", 0) == 0 ? "INVALID_CONTEXT" : "PARSE_ERROR"},
                               {"errorDetails", s.message()}});
      return Status::ok();
    }
    const auto snap = p_.snapshot();
    const int64_t now = p_.host().now_ms();
    Json flags = Json::array();
    std::vector<const Flag*> sorted;
    for (const auto& [key, f] : snap->flags) sorted.push_back(&f);
    std::sort(sorted.begin(), sorted.end(), [](const Flag* a, const Flag* b) { return a->id < b->id; });
    for (const Flag* f : sorted) flags.push_back(ofrep_of(*f, now));
    const std::string body = Json{{"flags", flags}}.dump();
    char tag[40];
    std::snprintf(tag, sizeof tag, "\"%016zx\"", std::hash<std::string>()(body));
    const auto match = rq.header("if-none-match");
    if (match && *match == tag) {
      rs.status(304).header("etag", tag);
      return Status::ok();
    }
    rs.status(200).header("etag", tag).json(std::string_view(body));
    return Status::ok();
  }

 private:
  static std::string id(const Request& rq) { return std::string(rq.path_param("id").value_or("")); }
  static std::string source(const Request& rq) { return std::string(rq.remote_addr()); }

  // The request's evaluation context: an optional JSON body whose
  // "context", when given, is an object. These flags are global: the
  // context does not change a value.
  static Status ofrep_context(const Request& rq) {
    if (rq.body().empty()) return Status::ok();
    Json b = Json::parse(rq.body(), nullptr, false);
    if (b.is_discarded() || !b.is_object()) return Status::invalid("request: the body is not a JSON object");
    if (b.contains("context") && !b["context"].is_object() && !b["context"].is_null())
      return Status::invalid("context: must be an object");
    return Status::ok();
  }

  static Json ofrep_of(const Flag& f, int64_t now) {
    const bool on = f.overridden(now);
    Json metadata = {{"type", f.type}, {"owner", f.owner}};
    if (on && f.expires_ms) metadata["expiresMs"] = f.expires_ms;
    return Json{{"key", f.id},
                {"value", f.current(now)},
                {"reason", on ? "STATIC" : "DEFAULT"},
                {"variant", on ? "override" : "default"},
                {"metadata", metadata}};
  }

  void reload() const {
    if (Status s = p_.refresh(true); !s) p_.host().warn("feature-flags: flags not reloaded: " + s.message());
  }

  FlagsPlugin& p_;
};

}  // namespace

Status FlagsPlugin::add_routes() {
  auto api = std::make_shared<const Api>(*this);
  Status s = add_api_routes<Api>(
      "feature-flags", "/api/v1/feature-flags", api,
      {
          {"GET", "",
           "The global feature flags, by id: filters type (boolean, string, number), origin (plugin, operator), "
           "plugin, owner, state (overridden, default), text (in the id or description)",
           "feature_flags.read", &Api::list},
          {"POST", "",
           "Create an operator's flag (id, type, default, description, owner?, reason, value?, expires_ms?)",
           "feature_flags.manage", &Api::create},
          {"GET", "/{id}", "A flag: its value now, default, override and expiry, origin and last change",
           "feature_flags.read", &Api::get},
          {"PATCH", "/{id}",
           "Override a flag (value, reason, expires_ms?); an operator's flag also takes description, owner, default",
           "feature_flags.manage", &Api::update},
          {"POST", "/{id}/reset", "Drop a flag's override: back to its default (reason)", "feature_flags.manage",
           &Api::reset},
          {"DELETE", "/{id}", "Delete an operator's flag (query reason required); a plugin's flag cannot be deleted",
           "feature_flags.manage", &Api::remove},
      });
  if (!s) return s;
  return add_api_routes<Api>(
      "feature-flags", "/ofrep/v1/evaluate/flags", api,
      {
          {"POST", "", "OFREP bulk evaluation: every flag's value now (ETag; If-None-Match answers 304)",
           "feature_flags.read", &Api::ofrep_bulk},
          {"POST", "/{key}", "OFREP evaluation of one flag: {key, value, reason, variant, metadata}",
           "feature_flags.read", &Api::ofrep_one},
      });
}

}  // namespace opk::flags
