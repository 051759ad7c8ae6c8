// The migration-status plugin (docs/migration-status.md): the schema
// migrations of the kernel's store, the kernel's own and each plugin's, read
// through the kernel's opk.migrations/1 (the kernel keeps the records; no
// plugin reads schema_migrations). Its admin API, read-only:
//   GET /api/v1/migrations           every owner: its version, what is
//                                    pending, a failure with its error, and
//                                    the last migration run; filter state
//   GET /api/v1/migrations/{owner}   one owner: every applied migration
//                                    with when and how long, pending ones,
//                                    every attempt
// An owner is "current" (everything it declared is applied), "pending" (it
// declared versions not applied yet), "failed" (its latest attempt at a
// version not applied failed: rolled back, its tables as before) or
// "unknown" (it declared nothing in this kernel: a plugin disabled or not
// installed here). Errors are problem+json naming the field.
#define OPK_REQUIRED_HOST_MINOR 8
#include <opskernel/json.hpp>
#include <opskernel/opk.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace opk::migrations {
namespace {

// One owner's migrations, put together from the kernel's answer.
struct OwnerView {
  std::string owner;
  bool declared = false;  // declared in this kernel
  int64_t declared_ms = 0;
  std::map<int, std::string> wanted;  // declared: version -> name
  std::map<int, Json> applied;        // version -> {version, name, applied_ms, duration_ms}
  std::vector<Json> attempts;         // oldest first
  int version() const { return applied.empty() ? 0 : applied.rbegin()->first; }
};

// The duration of an attempt in ms (3 decimals), from microseconds.
double status_ms(int64_t us) {
  return static_cast<double>(us) / 1000.0;
}

Json attempt_json(const Json& a) {
  return Json{{"version", a.value("version", 0)},
              {"name", a.value("name", "")},
              {"started_ms", a.value("started_ms", int64_t{0})},
              {"duration_ms", status_ms(a.value("duration_us", int64_t{0}))},
              {"outcome", a.value("outcome", "")},
              {"error", a.value("error", "").empty() ? Json() : Json(a.value("error", ""))}};
}

class StatusPlugin : public Plugin {
 public:
  explicit StatusPlugin(Host host) : Plugin(host) {}

  Status start() override {
    auto self = std::shared_ptr<const StatusPlugin>(this, [](const StatusPlugin*) {});
    return add_api_routes<StatusPlugin>(
        "migration-status", "/api/v1/migrations", self,
        {
            {"GET", "",
             "The store's schema migrations by owner (the kernel, each plugin): version, pending, a failure with "
             "its error, and the last migration run; filter state (current, pending, failed, unknown)",
             "migrations.read", &StatusPlugin::list},
            {"GET", "/{owner}",
             "One owner's migrations: each applied one with when and how long, pending ones, every attempt",
             "migrations.read", &StatusPlugin::get},
        });
  }

  Status list(const Request& rq, Response& rs) const {
    const std::string state(rq.query("state").value_or(""));
    if (!state.empty() && state != "current" && state != "pending" && state != "failed" && state != "unknown") {
      rs.problem(Status::invalid("state: must be current, pending, failed or unknown, not '" + state + "'"));
      return Status::ok();
    }
    Json raw;
    std::map<std::string, OwnerView> owners;
    if (Status s = read(rq, &raw, &owners); !s) {
      rs.problem(s);
      return Status::ok();
    }
    Json out = Json::array();
    Json counts = {{"current", 0}, {"pending", 0}, {"failed", 0}, {"unknown", 0}};
    for (const auto& [id, o] : order(owners)) {
      Json summary = summarize(*o);
      counts[summary["state"].get<std::string>()] = counts[summary["state"].get<std::string>()].get<int>() + 1;
      if (!state.empty() && summary["state"] != state) continue;
      out.push_back(std::move(summary));
    }
    Json last = nullptr;
    const Json& attempts = raw["attempts"];
    if (attempts.is_array() && !attempts.empty()) {
      last = attempt_json(attempts.back());
      last["owner"] = attempts.back().value("owner", "");
    }
    Json recent = Json::array();
    if (attempts.is_array())
      for (size_t i = attempts.size() > 20 ? attempts.size() - 20 : 0; i < attempts.size(); ++i) {
        Json a = attempt_json(attempts[i]);
        a["owner"] = attempts[i].value("owner", "");
        recent.push_back(std::move(a));
      }
    std::reverse(recent.begin(), recent.end());
    rs.status(200).json(Json{{"dialect", raw.value("dialect", "")},
                             {"now_ms", raw.value("now_ms", int64_t{0})},
                             {"counts", counts},
                             {"owners", out},
                             {"last_run", last},
                             {"recent", recent}});
    return Status::ok();
  }

  Status get(const Request& rq, Response& rs) const {
    const std::string owner(rq.path_param("owner").value_or(""));
    Json raw;
    std::map<std::string, OwnerView> owners;
    if (Status s = read(rq, &raw, &owners); !s) {
      rs.problem(s);
      return Status::ok();
    }
    auto it = owners.find(owner);
    if (it == owners.end()) {
      rs.problem(Status::not_found("owner: no migrations of '" + owner.substr(0, 128) +
                                   "' are applied, recorded or declared (the kernel or a plugin id)"));
      return Status::ok();
    }
    const OwnerView& o = it->second;
    Json out = summarize(o);
    Json applied = Json::array();
    for (const auto& [v, a] : o.applied) applied.push_back(a);
    Json attempts = Json::array();
    for (const auto& a : o.attempts) attempts.push_back(attempt_json(a));
    std::reverse(attempts.begin(), attempts.end());
    Json declared = Json::array();
    for (const auto& [v, name] : o.wanted) declared.push_back({{"version", v}, {"name", name}});
    out["applied"] = applied;
    out["attempts"] = attempts;
    out["declared"] = o.declared ? declared : Json();
    rs.status(200).json(Json{{"migrations", out}});
    return Status::ok();
  }

 private:
  // The kernel's answer for the request's principal, and each owner's view.
  Status read(const Request& rq, Json* raw, std::map<std::string, OwnerView>* owners) const {
    const auto* ext = host().extension<opk_migrations_v1>(OPK_EXT_MIGRATIONS);
    if (ext == nullptr || !ext->status)
      return Status::unavailable("migrations: this kernel does not serve opk.migrations/1 (ABI 1.8)");
    char* text = nullptr;
    const opk_status st = ext->status(host().raw(), rq.principal(), &text);
    if (st != OPK_OK) {
      std::string why = host().last_error();
      host().free(text);
      return Status(st, why.empty() ? "migrations: the kernel refused (" + std::to_string(st) + ")" : why);
    }
    *raw = Json::parse(text ? text : "", nullptr, false);
    host().free(text);
    if (!raw->is_object()) return Status(OPK_ERR_INTERNAL, "migrations: the kernel's answer is not a JSON object");
    std::map<std::pair<std::string, int>, int64_t> durations;  // the latest applied attempt's
    for (const auto& a : (*raw)["attempts"]) {
      OwnerView& o = view(owners, a.value("owner", ""));
      o.attempts.push_back(a);
      if (a.value("outcome", "") == "applied")
        durations[{o.owner, a.value("version", 0)}] = a.value("duration_us", int64_t{0});
    }
    for (const auto& a : (*raw)["applied"]) {
      OwnerView& o = view(owners, a.value("owner", ""));
      const int v = a.value("version", 0);
      auto d = durations.find({o.owner, v});
      o.applied[v] = Json{{"version", v},
                          {"name", a.value("name", "")},
                          {"applied_ms", a.value("applied_ms", int64_t{0})},
                          {"duration_ms", d == durations.end() ? Json() : Json(status_ms(d->second))}};
    }
    for (const auto& d : (*raw)["declared"]) {
      OwnerView& o = view(owners, d.value("owner", ""));
      o.declared = true;
      o.declared_ms = d.value("declared_ms", int64_t{0});
      for (const auto& m : d["migrations"]) o.wanted[m.value("version", 0)] = m.value("name", "");
    }
    return Status::ok();
  }

  static OwnerView& view(std::map<std::string, OwnerView>* owners, const std::string& owner) {
    OwnerView& o = (*owners)[owner];
    o.owner = owner;
    return o;
  }

  // The kernel first, then the plugins by id.
  static std::vector<std::pair<std::string, const OwnerView*>> order(const std::map<std::string, OwnerView>& owners) {
    std::vector<std::pair<std::string, const OwnerView*>> out;
    if (auto k = owners.find("kernel"); k != owners.end()) out.emplace_back(k->first, &k->second);
    for (const auto& [id, o] : owners)
      if (id != "kernel") out.emplace_back(id, &o);
    return out;
  }

  // An owner's state, version, pending migrations, failure and last run.
  static Json summarize(const OwnerView& o) {
    const int version = o.version();
    Json pending = Json::array();
    for (const auto& [v, name] : o.wanted)
      if (v > version) pending.push_back({{"version", v}, {"name", name}});
    // The latest failed attempt at a version still not applied.
    Json failure = nullptr;
    for (auto it = o.attempts.rbegin(); it != o.attempts.rend(); ++it)
      if (it->value("outcome", "") == "failed" && it->value("version", 0) > version) {
        failure = attempt_json(*it);
        break;
      }
    std::string state = "unknown";
    if (!failure.is_null())
      state = "failed";
    else if (!pending.empty())
      state = "pending";
    else if (o.declared)
      state = "current";
    Json last = nullptr;
    if (!o.attempts.empty()) last = attempt_json(o.attempts.back());
    int64_t last_applied = 0;
    for (const auto& [v, a] : o.applied) last_applied = std::max(last_applied, a.value("applied_ms", int64_t{0}));
    return Json{{"owner", o.owner},
                {"kind", o.owner == "kernel" ? "kernel" : "plugin"},
                {"state", state},
                {"version", version},
                {"latest", o.declared && !o.wanted.empty() ? Json(o.wanted.rbegin()->first) : Json()},
                {"applied_count", o.applied.size()},
                {"last_applied_ms", last_applied ? Json(last_applied) : Json()},
                {"pending", pending},
                {"failure", failure},
                {"last_attempt", last},
                {"declared_ms", o.declared ? Json(o.declared_ms) : Json()}};
  }
};

}  // namespace
}  // namespace opk::migrations

namespace {

opk::Manifest describe() {
  opk::Manifest m("migration-status", "Migration status", "1.0.0", "Opskernel",
                  "The store's schema migrations, the kernel's and each plugin's: versions, applied migrations with "
                  "their durations, pending ones, failures with their error, the last migration run");
  m.admin_feature({.id = "migration-status",
                   .title = "Migrations",
                   .description = "The schema migrations of the kernel and every plugin: applied, pending, failed",
                   .translations = {},
                   .permissions = {{"migrations.read",
                                    "See the store's schema migrations (the kernel's and every plugin's: versions, "
                                    "pending ones, failures and their database errors)"}}});
  return m;
}

}  // namespace

OPK_PLUGIN(opk::migrations::StatusPlugin, describe);
