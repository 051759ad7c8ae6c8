// The admin API of the rate-limit overrides (docs/rate-limit-overrides.md):
//   GET    /api/v1/rate-limit-overrides               the overrides, filtered
//   POST   /api/v1/rate-limit-overrides               create one (201)
//   GET    /api/v1/rate-limit-overrides/{id}          one override
//   DELETE /api/v1/rate-limit-overrides/{id}?reason=  end one early (204)
// The API reads the store (the truth), lookups the snapshot. Errors are
// problem+json naming the field (400), 403, 404, 409. Every change is
// audited with the actor, the reason and the override before and after
// (rate_limits.create, rate_limits.delete).
#include <opskernel/route_input.hpp>

#include "overrides.h"

namespace opk::rlo {
namespace {

// "7d" for a bound in ms (whole days, hours or minutes where they fit).
std::string rlo_span(int64_t ms) {
  if (ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  return std::to_string(ms) + "ms";
}

// The required end: expires_ms (ms since the epoch) or duration (from
// now), exactly one, after now and at most `most_ms` ahead.
Status rlo_expiry(const Json& body, int64_t now, int64_t most_ms, int64_t* out) {
  const bool has_at = body.contains("expires_ms") && !body["expires_ms"].is_null();
  const bool has_for = body.contains("duration") && !body["duration"].is_null();
  const std::string bound = "at most " + rlo_span(most_ms) + " ahead (max_duration)";
  if (!has_at && !has_for)
    return Status::invalid("expires_ms: is required (or duration): an override must end, " + bound);
  if (has_at && has_for) return Status::invalid("duration: give expires_ms or duration, not both");
  int64_t at = 0;
  if (has_at) {
    const Json& v = body["expires_ms"];
    if (!v.is_number_integer()) return Status::invalid("expires_ms: must be a whole number of ms since the epoch");
    at = v.get<int64_t>();
    if (at <= now) return Status::invalid("expires_ms: must be in the future (now is " + std::to_string(now) + ")");
    if (at - now > most_ms)
      return Status::invalid("expires_ms: is " + rlo_span(((at - now) / 60'000) * 60'000) + " ahead; " + bound);
  } else {
    const Json& v = body["duration"];
    const int64_t ms = v.is_string() ? input::duration_ms(v.get<std::string>()) : -1;
    if (ms <= 0) return Status::invalid("duration: must be a duration such as 90m, 2h or 3d");
    if (ms > most_ms) return Status::invalid("duration: " + v.get<std::string>() + " is too long; " + bound);
    at = now + ms;
  }
  *out = at;
  return Status::ok();
}

// The limit: "unlimited" or requests per minute, 1..1,000,000,000.
Status rlo_limit(const Json& body, int64_t* out) {
  if (!body.contains("limit") || body["limit"].is_null())
    return Status::invalid("limit: is required: \"unlimited\" or requests per minute");
  const Json& v = body["limit"];
  if (v == "unlimited") {
    *out = OPK_RATE_UNLIMITED;
    return Status::ok();
  }
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1'000'000'000)
    return Status::invalid("limit: must be \"unlimited\" or a whole number of requests per minute, 1 to 1000000000");
  *out = v.get<int64_t>();
  return Status::ok();
}

class OverridesApi {
 public:
  explicit OverridesApi(OverridesPlugin& p) : p_(p) {}

  Status list(const Request& rq, Response& rs) const {
    const auto q = [&](const char* name) { return std::string(rq.query(name).value_or("")); };
    const std::string state = q("state"), kind = q("kind"), target = q("target");
    if (!state.empty() && state != "active" && state != "expired" && state != "removed" && state != "ended")
      return input::refuse(rs,
                           Status::invalid("state: must be active, expired, removed or ended, not '" + state + "'"));
    if (!kind.empty() && kind != "address" && kind != "tenant")
      return input::refuse(rs, Status::invalid("kind: must be address or tenant, not '" + kind + "'"));
    std::string wanted = target;
    if (!target.empty() && kind != "tenant") {
      Network n;
      if (parse_network("target", target, &n)) wanted = n.text();
    }
    std::vector<Override> all;
    if (Status s = p_.read_all(false, 0, &all); !s) return input::refuse(rs, s);
    const int64_t now = p_.host().now_ms();
    Json out = Json::array();
    for (const auto& o : all) {
      const std::string st = o.state(now);
      if (!state.empty() && (state == "ended" ? st == "active" : st != state)) continue;
      if (!kind.empty() && o.kind != kind) continue;
      if (!wanted.empty() && o.target != wanted) continue;
      out.push_back(o.to_json(now));
    }
    rs.status(200).json(Json{{"overrides", out}, {"now_ms", now}, {"max_duration_ms", p_.max_duration_ms()}});
    return Status::ok();
  }

  Status get(const Request& rq, Response& rs) const {
    Override o;
    if (Status s = p_.read(id(rq), &o); !s) return input::refuse(rs, s);
    rs.status(200).json(Json{{"override", o.to_json(p_.host().now_ms())}});
    return Status::ok();
  }

  Status create(const Request& rq, Response& rs) const {
    Json body;
    Status s = input::json_object(rq, {"address", "tenant", "limit", "reason", "expires_ms", "duration"}, &body);
    const int64_t now = p_.host().now_ms();
    Override o;
    const bool has_address = s && body.contains("address") && !body["address"].is_null();
    const bool has_tenant = s && body.contains("tenant") && !body["tenant"].is_null();
    if (s && !has_address && !has_tenant)
      s = Status::invalid("address: is required (or tenant): an IP address or CIDR block, or a hierarchy node");
    if (s && has_address && has_tenant) s = Status::invalid("tenant: give address or tenant, not both");
    if (s && has_address) {
      Network n;
      if (!body["address"].is_string())
        s = Status::invalid("address: must be a string: an IP address or CIDR block");
      else
        s = parse_network("address", body["address"].get<std::string>(), &n);
      o.kind = "address";
      o.target = n.text();
    }
    if (s && has_tenant) {
      o.kind = "tenant";
      if (!body["tenant"].is_string() || body["tenant"].get<std::string>().empty() ||
          body["tenant"].get<std::string>().size() > 200)
        s = Status::invalid("tenant: must be a hierarchy node id (\"tenant:acme\")");
      else
        o.target = body["tenant"].get<std::string>();
      if (s && !node_exists(o.target)) s = Status::invalid("tenant: no hierarchy node '" + o.target + "'");
    }
    if (s) s = rlo_limit(body, &o.per_minute);
    if (s) s = input::reason(body.value("reason", Json()), "the limit changes", &o.reason);
    if (s) s = rlo_expiry(body, now, p_.max_duration_ms(), &o.expires_ms);
    if (!s) return input::refuse(rs, s);
    o.id = input::new_id("rlo_");
    o.created_by = std::string(rq.user_id());
    o.created_ms = now;
    if (Status w = p_.insert(o); !w) return input::refuse(rs, w);
    reload();
    p_.audit(rq.principal(), "rate_limits.create", o.id, o.reason, nullptr, o.to_json(now), source(rq));
    rs.status(201).header("location", "/api/v1/rate-limit-overrides/" + o.id).json(Json{{"override", o.to_json(now)}});
    return Status::ok();
  }

  Status remove(const Request& rq, Response& rs) const {
    Override before;
    Status s = p_.read(id(rq), &before);
    std::string reason;
    const int64_t now = p_.host().now_ms();
    if (s)
      s = input::reason(rq.query("reason") ? Json(std::string(*rq.query("reason"))) : Json(), "the limit changes",
                        &reason);
    if (s && before.state(now) != "active")
      s = Status::conflict("id: override '" + before.id + "' has ended already (" + before.state(now) + ")");
    Override after = before;
    after.removed_by = std::string(rq.user_id());
    after.removed_ms = now;
    after.removed_reason = reason;
    if (s) s = p_.mark_removed(after);
    if (!s) return input::refuse(rs, s);
    reload();
    p_.audit(rq.principal(), "rate_limits.delete", before.id, reason, before.to_json(now), after.to_json(now),
             source(rq));
    rs.status(204);
    return Status::ok();
  }

 private:
  static std::string id(const Request& rq) { return std::string(rq.path_param("id").value_or("")); }
  static std::string source(const Request& rq) { return std::string(rq.remote_addr()); }

  bool node_exists(const std::string& node) const {
    const auto* ident = p_.host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    if (!ident || !OPK_HAS_MEMBER(opk_identity_v1, ident->struct_size, node_exists) || !ident->node_exists)
      return false;
    return ident->node_exists(p_.host().raw(), node.c_str()) == 1;
  }

  void reload() const {
    if (Status s = p_.refresh(true); !s) p_.host().warn("rate-limit-overrides: not reloaded: " + s.message());
  }

  OverridesPlugin& p_;
};

}  // namespace

Status OverridesPlugin::add_routes() {
  auto api = std::make_shared<const OverridesApi>(*this);
  return add_api_routes<OverridesApi>(
      "rate-limit-overrides", "/api/v1/rate-limit-overrides", api,
      {
          {"GET", "",
           "The admin API's rate-limit overrides, newest first, ended ones included: filters state (active, expired, "
           "removed, ended), kind (address, tenant), target",
           "rate_limits.read", &OverridesApi::list},
          {"POST", "",
           "Lift or raise the admin API's rate limits for an address or CIDR block or a tenant's users (address or "
           "tenant, limit, reason, expires_ms or duration)",
           "rate_limits.manage", &OverridesApi::create},
          {"GET", "/{id}", "A rate-limit override: its target, limit, state, who set it, when, and when it ends",
           "rate_limits.read", &OverridesApi::get},
          {"DELETE", "/{id}", "End a rate-limit override early (query reason required); the row stays listed",
           "rate_limits.manage", &OverridesApi::remove},
      });
}

}  // namespace opk::rlo
