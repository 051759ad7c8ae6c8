// The admin API of the maintenance windows (docs/maintenance-mode.md):
//   GET    /api/v1/maintenance               the windows, filtered
//   POST   /api/v1/maintenance               put a tenant into maintenance (201)
//   GET    /api/v1/maintenance/current       the caller's own maintenance now
//   GET    /api/v1/maintenance/{id}          one window
//   DELETE /api/v1/maintenance/{id}?reason=  end a window early (204)
// The API reads the store (the truth), lookups the snapshot. Errors are
// problem+json naming the field (400), 403, 404, 409. Every change is
// audited with the actor, the reason and the window before and after
// (maintenance.create, maintenance.end).
#include <opskernel/route_input.hpp>

#include <algorithm>

#include "maintenance.h"

namespace opk::mnt {
namespace {

// The window's start (starts_ms, default now; at most a minute in the
// past) and its optional end (ends_ms, or duration from the start; after
// the start).
Status mnt_window(const Json& body, int64_t now, Window* w) {
  w->starts_ms = now;
  if (body.contains("starts_ms") && !body["starts_ms"].is_null()) {
    const Json& v = body["starts_ms"];
    if (!v.is_number_integer()) return Status::invalid("starts_ms: must be a whole number of ms since the epoch");
    if (v.get<int64_t>() < now - 60'000)
      return Status::invalid("starts_ms: is in the past (now is " + std::to_string(now) + "); omit it to start now");
    w->starts_ms = std::max(v.get<int64_t>(), now);
  }
  const bool has_at = body.contains("ends_ms") && !body["ends_ms"].is_null();
  const bool has_for = body.contains("duration") && !body["duration"].is_null();
  if (has_at && has_for) return Status::invalid("duration: give ends_ms or duration, not both");
  w->ends_ms = 0;
  if (has_at) {
    const Json& v = body["ends_ms"];
    if (!v.is_number_integer()) return Status::invalid("ends_ms: must be a whole number of ms since the epoch");
    if (v.get<int64_t>() <= w->starts_ms)
      return Status::invalid("ends_ms: the window ends before it starts (starts_ms is " + std::to_string(w->starts_ms) +
                             ")");
    w->ends_ms = v.get<int64_t>();
  } else if (has_for) {
    const Json& v = body["duration"];
    const int64_t ms = v.is_string() ? input::duration_ms(v.get<std::string>()) : -1;
    if (ms <= 0) return Status::invalid("duration: must be a duration such as 90m, 2h or 3d");
    w->ends_ms = w->starts_ms + ms;
  }
  return Status::ok();
}

const char* const kMntStates[] = {"scheduled", "active", "completed", "ended", "live"};

class MaintenanceApi {
 public:
  explicit MaintenanceApi(MaintenancePlugin& p) : p_(p) {}

  Status list(const Request& rq, Response& rs) const {
    const std::string state(rq.query("state").value_or("")), tenant(rq.query("tenant").value_or(""));
    if (!state.empty() &&
        std::none_of(std::begin(kMntStates), std::end(kMntStates), [&](const char* k) { return state == k; }))
      return input::refuse(rs, Status::invalid("state: must be scheduled, active, completed, ended or live, not '" +
                                               state.substr(0, 100) + "'"));
    std::vector<Window> all;
    if (Status s = p_.read_all(false, 0, &all); !s) return input::refuse(rs, s);
    const int64_t now = p_.host().now_ms();
    Json out = Json::array();
    for (const auto& w : all) {
      const std::string st = w.state(now);
      if (!state.empty() && (state == "live" ? st != "scheduled" && st != "active" : st != state)) continue;
      if (!tenant.empty() && w.tenant != tenant) continue;
      out.push_back(w.to_json(now));
    }
    rs.status(200).json(Json{{"windows", out}, {"now_ms", now}, {"max_banner", p_.max_banner()}});
    return Status::ok();
  }

  Status get(const Request& rq, Response& rs) const {
    Window w;
    if (Status s = p_.read(id(rq), &w); !s) return input::refuse(rs, s);
    rs.status(200).json(Json{{"window", w.to_json(p_.host().now_ms())}});
    return Status::ok();
  }

  // The maintenance in force for the caller's own scope, for the banner.
  Status current(const Request& rq, Response& rs) const {
    opk_maintenance_state st{};
    st.struct_size = sizeof st;
    const std::string scope(rq.scope());
    Json m = nullptr;
    if (p_.lookup(scope.c_str(), &st) != OPK_MAINTENANCE_NONE)
      m = Json{{"tenant", st.tenant},
               {"mode", st.mode == OPK_MAINTENANCE_OFFLINE ? "offline" : "read-only"},
               {"banner", st.banner},
               {"until_ms", st.until_ms != 0 ? Json(st.until_ms) : Json()},
               {"window_id", st.window_id}};
    rs.status(200).json(Json{{"maintenance", m}, {"scope", scope}, {"now_ms", p_.host().now_ms()}});
    return Status::ok();
  }

  Status create(const Request& rq, Response& rs) const {
    Json body;
    Status s =
        input::json_object(rq, {"tenant", "mode", "banner", "reason", "starts_ms", "ends_ms", "duration"}, &body);
    const int64_t now = p_.host().now_ms();
    Window w;
    if (s) s = tenant_of(body.value("tenant", Json()), &w.tenant);
    if (s) {
      const Json& v = body.value("mode", Json());
      if (v.is_null())
        s = Status::invalid("mode: is required: read-only or offline");
      else if (!v.is_string() || mode_code(v.get<std::string>()) == OPK_MAINTENANCE_NONE)
        s = Status::invalid("mode: must be read-only or offline, not " + v.dump().substr(0, 100));
      else
        w.mode = v.get<std::string>();
    }
    if (s) {
      const Json& v = body.value("banner", Json());
      if (v.is_null() || (v.is_string() && input::blank(v.get<std::string>())))
        s = Status::invalid("banner: is required: the text the tenant's users see");
      else if (!v.is_string())
        s = Status::invalid("banner: must be a string");
      else if (v.get<std::string>().size() > p_.max_banner())
        s = Status::invalid("banner: longer than " + std::to_string(p_.max_banner()) + " bytes (max_banner)");
      else
        w.banner = v.get<std::string>();
    }
    if (s) s = input::reason(body.value("reason", Json()), "the tenant's maintenance changes", &w.reason);
    if (s) s = mnt_window(body, now, &w);
    if (!s) return input::refuse(rs, s);
    w.id = input::new_id("mnt_");
    w.created_by = std::string(rq.user_id());
    w.created_ms = now;
    if (Status e = p_.insert(w); !e) return input::refuse(rs, e);
    reload();
    p_.audit(rq.principal(), "maintenance.create", w.id, w.reason, nullptr, w.to_json(now), source(rq));
    rs.status(201).header("location", "/api/v1/maintenance/" + w.id).json(Json{{"window", w.to_json(now)}});
    return Status::ok();
  }

  Status end(const Request& rq, Response& rs) const {
    Window before;
    Status s = p_.read(id(rq), &before);
    std::string reason;
    const int64_t now = p_.host().now_ms();
    if (s)
      s = input::reason(rq.query("reason") ? Json(std::string(*rq.query("reason"))) : Json(),
                        "the tenant's maintenance changes", &reason);
    if (s && before.state(now) != "active" && before.state(now) != "scheduled")
      s = Status::conflict("id: window '" + before.id + "' has ended already (" + before.state(now) + ")");
    Window after = before;
    after.ended_by = std::string(rq.user_id());
    after.ended_ms = now;
    after.ended_reason = reason;
    if (s) s = p_.mark_ended(after);
    if (!s) return input::refuse(rs, s);
    reload();
    p_.audit(rq.principal(), "maintenance.end", before.id, reason, before.to_json(now), after.to_json(now), source(rq));
    rs.status(204);
    return Status::ok();
  }

 private:
  static std::string id(const Request& rq) { return std::string(rq.path_param("id").value_or("")); }
  static std::string source(const Request& rq) { return std::string(rq.remote_addr()); }

  // The required tenant: an existing hierarchy node "tenant:<id>".
  Status tenant_of(const Json& v, std::string* out) const {
    if (v.is_null()) return Status::invalid("tenant: is required: a tenant's node id (\"tenant:acme\")");
    if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 120)
      return Status::invalid("tenant: must be a tenant's node id (\"tenant:acme\")");
    const std::string t = v.get<std::string>();
    if (t.rfind("tenant:", 0) != 0)
      return Status::invalid("tenant: '" + t + "' is not a tenant's node id (\"tenant:acme\")");
    const auto* ident = p_.host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    if (!ident || !OPK_HAS_MEMBER(opk_identity_v1, ident->struct_size, node_exists) || !ident->node_exists ||
        ident->node_exists(p_.host().raw(), t.c_str()) != 1)
      return Status::invalid("tenant: no tenant '" + t + "'");
    *out = t;
    return Status::ok();
  }

  void reload() const {
    if (Status s = p_.refresh(true); !s) p_.host().warn("maintenance-mode: not reloaded: " + s.message());
  }

  MaintenancePlugin& p_;
};

}  // namespace

Status MaintenancePlugin::add_routes() {
  auto api = std::make_shared<const MaintenanceApi>(*this);
  return add_api_routes<MaintenanceApi>(
      "maintenance-mode", "/api/v1/maintenance", api,
      {
          {"GET", "",
           "The tenants' maintenance windows, latest start first, ended ones included: filters state (scheduled, "
           "active, completed, ended, live), tenant",
           "maintenance.read", &MaintenanceApi::list},
          {"POST", "",
           "Put a tenant into read-only or offline maintenance (tenant, mode, banner, reason, starts_ms, ends_ms or "
           "duration)",
           "maintenance.manage", &MaintenanceApi::create},
          {"GET", "/current",
           "The maintenance in force now for the caller's own scope (mode, banner, until_ms), or null: what the "
           "console's banner shows",
           "", &MaintenanceApi::current},
          {"GET", "/{id}", "A maintenance window: its tenant, mode, banner, start, end, state and who set it",
           "maintenance.read", &MaintenanceApi::get},
          {"DELETE", "/{id}", "End a maintenance window early or call off one not begun (query reason required)",
           "maintenance.manage", &MaintenanceApi::end},
      });
}

}  // namespace opk::mnt
