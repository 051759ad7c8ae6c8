// feature-flags: the flags' rules, the plugin, its snapshot and poller, the
// extension opskernel.feature-flags/1, its gauges and its manifest (flags.h).
// Store transactions, plugin permissions and the audit service need ABI
// 1.2; the gauges (ABI 1.5) are left out on an older kernel.
#define OPK_REQUIRED_HOST_MINOR 2
#include "flags.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

namespace opk::flags {

// ------------------------------------------------------------ the flags

Json Flag::to_json(int64_t now_ms) const {
  const bool on = overridden(now_ms);
  return Json{{"id", id},
              {"type", type},
              {"value", current(now_ms)},
              {"default", default_value},
              {"overridden", on},
              {"override",
               value.is_null()
                   ? Json()
                   : Json{{"value", value}, {"expires_ms", expires_ms ? Json(expires_ms) : Json()}, {"expired", !on}}},
              {"expires_ms", on && expires_ms ? Json(expires_ms) : Json()},
              {"description", description},
              {"owner", owner},
              {"origin", plugin.empty() ? "operator" : "plugin"},
              {"plugin", plugin.empty() ? Json() : Json(plugin)},
              {"created_by", created_by},
              {"created_ms", created_ms},
              {"updated_by", updated_by},
              {"updated_ms", updated_ms},
              {"reason", reason},
              {"revision", revision}};
}

Status check_id(const std::string& field, const Json& id) {
  if (!id.is_string()) return Status::invalid(field + ": must be a string");
  const std::string s = id.get<std::string>();
  bool ok = !s.empty() && s.size() <= 128 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'));
  for (char c : s) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
  if (!ok)
    return Status::invalid(field + ": '" + s.substr(0, 140) +
                           "' is not a flag id (a lower-case letter or digit, then up to 127 of a-z 0-9 . _ -)");
  return Status::ok();
}

std::string type_of(const Json& value) {
  if (value.is_boolean()) return "boolean";
  if (value.is_string()) return "string";
  if (value.is_number()) return "number";
  return "";
}

Status check_value(const std::string& field, const std::string& type, const Json& value) {
  const std::string got = type_of(value);
  const std::string shown = got.empty() ? std::string(value.type_name()) : got;
  if (got != type) return Status::invalid(field + ": the flag is a " + type + ", not a " + shown);
  if (value.is_string() && value.get_ref<const std::string&>().size() > 4096)
    return Status::invalid(field + ": longer than 4,096 bytes");
  if (value.is_number_float() && !std::isfinite(value.get<double>()))
    return Status::invalid(field + ": must be a finite number");
  return Status::ok();
}

// -------------------------------------------------------------- the plugin

namespace {

// The started plugin, for the extension's calls. A consumer's calls end
// before the plugin stops: the kernel stops a provider after its users.
std::atomic<FlagsPlugin*> g_flags_plugin{nullptr};

char* flags_copy(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// Flag `id` of `snap`, or nullptr.
const Flag* flag_in(const Snapshot& snap, const char* id) {
  if (id == nullptr) return nullptr;
  auto it = snap.flags.find(std::string_view(id));
  return it == snap.flags.end() ? nullptr : &it->second;
}

std::string owner_plugin(const opk_principal* p) {
  const std::string user = p && p->user_id ? p->user_id : "";
  return user.rfind("system:", 0) == 0 ? user.substr(7) : std::string();
}

opk_status ext_declare(const opk_host* host, const char* flags_json, char** answer_json) noexcept {
  Json answer;
  Status s;
  try {
    FlagsPlugin* p = g_flags_plugin.load(std::memory_order_acquire);
    const opk_principal* actor = Host(host).system_principal();
    const std::string plugin = owner_plugin(actor);
    Json flags = flags_json ? Json::parse(flags_json, nullptr, false) : Json();
    if (p == nullptr)
      s = Status::unavailable("the feature-flags plugin is not running");
    else if (plugin.empty())
      s = Status::invalid("host: the caller is not a plugin with a system principal (a kernel with ABI 1.2)");
    else if (flags.is_discarded())
      s = Status::invalid("flags: not valid JSON");
    else
      s = p->declare(actor, plugin, flags, &answer);
  } catch (const std::exception& e) {
    s = Status(OPK_ERR_INTERNAL, std::string("declare: ") + e.what());
  }
  if (!s) answer = Json{{"error", s.message()}};
  if (answer_json) *answer_json = flags_copy(answer.dump());
  return s.code();
}

int ext_enabled(const opk_host* /*host*/, const char* id, int fallback) noexcept {
  FlagsPlugin* p = g_flags_plugin.load(std::memory_order_acquire);
  if (p == nullptr) return fallback;
  const Flag* f = flag_in(p->thread_snapshot(), id);
  if (f == nullptr || f->type != "boolean") return fallback;
  return f->current_by([p] { return p->host().now_ms(); }).get<bool>() ? 1 : 0;
}

double ext_number(const opk_host* /*host*/, const char* id, double fallback) noexcept {
  FlagsPlugin* p = g_flags_plugin.load(std::memory_order_acquire);
  if (p == nullptr) return fallback;
  const Flag* f = flag_in(p->thread_snapshot(), id);
  if (f == nullptr || f->type != "number") return fallback;
  return f->current_by([p] { return p->host().now_ms(); }).get<double>();
}

opk_status ext_string(const opk_host* /*host*/, const char* id, char* buf, size_t size, size_t* length) noexcept {
  FlagsPlugin* p = g_flags_plugin.load(std::memory_order_acquire);
  if (p == nullptr) return OPK_ERR_UNAVAILABLE;
  const Flag* f = flag_in(p->thread_snapshot(), id);
  if (f == nullptr) return OPK_ERR_NOT_FOUND;
  if (f->type != "string") return OPK_ERR_INVALID_ARGUMENT;
  const std::string& v = f->current_by([p] { return p->host().now_ms(); }).get_ref<const std::string&>();
  if (length) *length = v.size();
  if (buf && size > 0) {
    const size_t n = std::min(v.size(), size - 1);
    std::memcpy(buf, v.data(), n);
    buf[n] = '\0';
  }
  return OPK_OK;
}

opk_status ext_evaluate(const opk_host* /*host*/, const char* id, char** answer_json) noexcept {
  try {
    FlagsPlugin* p = g_flags_plugin.load(std::memory_order_acquire);
    Json answer;
    opk_status st = OPK_OK;
    if (p == nullptr) {
      st = OPK_ERR_UNAVAILABLE;
      answer = {{"error", "the feature-flags plugin is not running"}};
    } else {
      const auto snap = p->snapshot();
      const Flag* f = flag_in(*snap, id);
      const int64_t now = p->host().now_ms();
      if (f == nullptr) {
        st = OPK_ERR_NOT_FOUND;
        answer = {{"error", std::string("id: no flag '") + (id ? id : "") + "'"}};
      } else {
        const bool on = f->overridden(now);
        answer = {{"id", f->id},
                  {"type", f->type},
                  {"value", f->current(now)},
                  {"reason", on ? "STATIC" : "DEFAULT"},
                  {"expires_ms", on && f->expires_ms ? Json(f->expires_ms) : Json()}};
      }
    }
    if (answer_json) *answer_json = flags_copy(answer.dump());
    return st;
  } catch (...) {
    return OPK_ERR_INTERNAL;
  }
}

void ext_free(char* answer_json) noexcept {
  std::free(answer_json);
}

const opk_feature_flags_v1 kFlagsExtension = {
    sizeof(opk_feature_flags_v1), &ext_declare, &ext_enabled, &ext_number, &ext_string, &ext_evaluate, &ext_free};

// The fields a plugin's declaration may hold.
const std::set<std::string> kDeclared = {"id", "type", "default", "description", "owner"};

}  // namespace

FlagsPlugin::~FlagsPlugin() {
  stop();
}

Status FlagsPlugin::init() {
  Settings in = host().settings();
  poll_ms_ = in.duration_ms("poll_interval", poll_ms_, 100, 300'000);
  stale_ms_ = in.duration_ms("stale_after", stale_ms_, 0, 3650LL * 86'400'000);
  if (Status s = in.status(); !s) return s;
  // Without a store (plugins list, plugins check) there is nothing to serve.
  if (!Store(host()).available()) return Status::ok();
  if (Status s = migrate_flags(host()); !s) return s;
  snapshot_.set_source({.read_counter = [this](int64_t* counter) { return read_counter(host(), counter); },
                        .load = [this](Snapshot* out) { return load(out); }});
  if (Status s = refresh(true); !s) return s;
  g_flags_plugin.store(this, std::memory_order_release);
  return Status::ok();
}

Status FlagsPlugin::start() {
  if (Status s = add_routes(); !s) return s;
  if (Status s = metrics_.add("feature-flags", [this](std::string* text) { return collect(text); }); !s)
    host().warn("feature-flags: no gauges in /metrics: " + s.message());
  snapshot_.start(poll_ms_,
                  [this](const Status& s) { host().warn("feature-flags: flags not reloaded: " + s.message()); });
  return Status::ok();
}

void FlagsPlugin::stop() {
  snapshot_.stop();
  FlagsPlugin* self = this;
  g_flags_plugin.compare_exchange_strong(self, nullptr);
}

const void* FlagsPlugin::extension(std::string_view id) {
  return id == OPK_EXT_FEATURE_FLAGS ? &kFlagsExtension : nullptr;
}

Status FlagsPlugin::load(Snapshot* out) {
  std::vector<Flag> all;
  if (Status s = read_all(&all); !s) return s;
  for (auto& f : all) {
    std::string id = f.id;
    out->flags.emplace(std::move(id), std::move(f));
  }
  reloads_.fetch_add(1, std::memory_order_relaxed);
  return Status::ok();
}

Status FlagsPlugin::declare(const opk_principal* actor, const std::string& plugin, const Json& flags, Json* answer) {
  if (!flags.is_array()) return Status::invalid("flags: must be an array of flags");
  if (flags.size() > 500) return Status::invalid("flags: more than 500 flags");
  // Every declaration is checked before anything is written.
  std::vector<Flag> wanted;
  std::set<std::string> seen;
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string at = "flags[" + std::to_string(i) + "]";
    const Json& d = flags[i];
    if (!d.is_object()) return Status::invalid(at + ": must be an object");
    for (const auto& [key, v] : d.items())
      if (!kDeclared.count(key)) return Status::invalid(at + "." + key + ": is not a field of a declared flag");
    if (!d.contains("id")) return Status::invalid(at + ".id: is required");
    if (Status s = check_id(at + ".id", d["id"]); !s) return s;
    Flag f;
    f.id = d["id"].get<std::string>();
    if (!seen.insert(f.id).second) return Status::invalid(at + ".id: '" + f.id + "' is declared twice");
    if (!d.contains("default")) return Status::invalid(at + ".default: is required");
    f.type = type_of(d["default"]);
    if (d.contains("type")) {
      if (!d["type"].is_string() || (d["type"] != "boolean" && d["type"] != "string" && d["type"] != "number"))
        return Status::invalid(at + ".type: must be boolean, string or number");
      f.type = d["type"].get<std::string>();
    }
    if (f.type.empty()) return Status::invalid(at + ".default: must be a boolean, a string or a number");
    if (Status s = check_value(at + ".default", f.type, d["default"]); !s) return s;
    f.default_value = d["default"];
    if (!d.contains("description") || !d["description"].is_string() || d["description"].get<std::string>().empty() ||
        d["description"].get<std::string>().size() > 1000)
      return Status::invalid(at + ".description: must be a string of 1 to 1,000 bytes");
    f.description = d["description"].get<std::string>();
    f.owner = plugin;
    if (d.contains("owner")) {
      if (!d["owner"].is_string() || d["owner"].get<std::string>().empty() ||
          d["owner"].get<std::string>().size() > 200)
        return Status::invalid(at + ".owner: must be a string of 1 to 200 bytes");
      f.owner = d["owner"].get<std::string>();
    }
    f.plugin = plugin;
    wanted.push_back(std::move(f));
  }
  std::vector<Flag> stored;
  if (Status s = read_all(&stored); !s) return s;
  std::map<std::string, const Flag*> by_id;
  for (const auto& f : stored) by_id[f.id] = &f;
  for (size_t i = 0; i < wanted.size(); ++i) {
    auto it = by_id.find(wanted[i].id);
    if (it == by_id.end()) continue;
    const Flag& old = *it->second;
    const std::string at = "flags[" + std::to_string(i) + "]";
    if (old.plugin != plugin)
      return Status::conflict(at + ".id: flag '" + old.id + "' is " +
                              (old.plugin.empty() ? "an operator's" : "declared by plugin '" + old.plugin + "'"));
    if (old.type != wanted[i].type)
      return Status::conflict(at + ".type: flag '" + old.id + "' is a " + old.type + " already, not a " +
                              wanted[i].type);
  }
  const int64_t now = host().now_ms();
  const std::string by = "system:" + plugin;
  int changed = 0;
  for (auto& f : wanted) {
    auto it = by_id.find(f.id);
    if (it == by_id.end()) {
      f.created_by = f.updated_by = by;
      f.created_ms = f.updated_ms = now;
      f.reason = "declared by plugin " + plugin;
      if (Status s = insert(f); !s) return s;
      audit(actor, "feature_flags.declare", f.id, f.reason, nullptr, f.to_json(now), "plugin:" + plugin);
      ++changed;
      continue;
    }
    const Flag& old = *it->second;
    if (old.default_value == f.default_value && old.description == f.description && old.owner == f.owner) continue;
    Flag next = old;
    next.default_value = f.default_value;
    next.description = f.description;
    next.owner = f.owner;
    next.updated_by = by;
    next.updated_ms = now;
    next.reason = "declared again by plugin " + plugin;
    if (Status s = replace(old, next); !s) return s;
    audit(actor, "feature_flags.declare", f.id, next.reason, old.to_json(now), next.to_json(now), "plugin:" + plugin);
    ++changed;
  }
  if (changed > 0)
    if (Status s = refresh(true); !s) host().warn("feature-flags: flags not reloaded: " + s.message());
  *answer = {{"declared", wanted.size()}, {"changed", changed}};
  return Status::ok();
}

void FlagsPlugin::audit(const opk_principal* actor, const std::string& action, const std::string& id,
                        const std::string& reason, const Json& before, const Json& after,
                        const std::string& source) const {
  Audit a(host());
  Status s = a.record(actor, {.action = action,
                              .target = "flag:" + id,
                              .reason = reason,
                              .before = before,
                              .after = after,
                              .outcome = "success",
                              .source = source});
  if (!s) host().error("feature-flags: audit row for " + action + " on flag:" + id + " not written: " + s.message());
}

Status FlagsPlugin::collect(std::string* text) const {
  const auto snap = snapshot();
  const int64_t now = host().now_ms();
  std::map<std::pair<std::string, std::string>, int64_t> counts;
  for (const char* type : {"boolean", "string", "number"})
    for (const char* state : {"default", "overridden"}) counts[{type, state}] = 0;
  for (const auto& [id, f] : snap->flags) ++counts[{f.type, f.overridden(now) ? "overridden" : "default"}];
  *text =
      "# HELP opskernel_feature_flags Global feature flags by type, at their default or overridden by an operator.\n"
      "# TYPE opskernel_feature_flags gauge\n";
  for (const auto& [key, n] : counts)
    *text += Metrics::sample("opskernel_feature_flags", {{"type", key.first}, {"state", key.second}},
                             static_cast<double>(n));
  *text +=
      "# HELP opskernel_feature_flags_reloads_total Times this kernel read the flags again after a change.\n"
      "# TYPE opskernel_feature_flags_reloads_total counter\n" +
      Metrics::sample("opskernel_feature_flags_reloads_total", {},
                      static_cast<double>(reloads_.load(std::memory_order_relaxed)));
  return Status::ok();
}

namespace {

// Alert source feature-flags-stale: one warning per flag whose override
// has held without an expiry for longer than stale_after. A full sweep: a
// flag reset, given an expiry or deleted has its alert closed by the
// evaluations that no longer raise it.
class StaleOverrides : public AlertSource {
 public:
  explicit StaleOverrides(Plugin& plugin) : p_(static_cast<FlagsPlugin&>(plugin)) {}

  Status evaluate(AlertContext& ctx) override {
    const int64_t stale = p_.stale_ms();
    if (stale == 0) {
      ctx.log(Level::info, "stale_after is 0: the alert is off");
      return Status::ok();
    }
    if (Status s = p_.refresh(false); !s) return s;
    const auto snap = p_.snapshot();
    const int64_t now = ctx.now_ms();
    int raised = 0;
    for (const auto& [id, f] : snap->flags) {
      if (!f.overridden(now) || f.expires_ms != 0 || now - f.updated_ms < stale) continue;
      const int64_t days = (now - f.updated_ms) / 86'400'000;
      AlertContext::Alert a;
      a.severity = OPK_SEVERITY_WARNING;
      a.area = "feature-flags";
      a.title = "Feature flag " + f.id + " overridden for " + std::to_string(days) + " days";
      a.message = "Flag " + f.id + " has been " + f.current(now).dump() + " (default " + f.default_value.dump() +
                  ") since " + f.updated_by + " set it without an expiry (\"" + f.reason +
                  "\"): make it the default, give the override an expiry or reset it";
      a.related_type = "feature-flag";
      a.related_id = f.id;
      a.scope = "platform";
      a.details_json = Json{
          {"flag", f.id},
          {"value", f.current(now)},
          {"default", f.default_value},
          {"updated_by", f.updated_by},
          {"updated_ms", f.updated_ms},
          {"owner",
           f.owner}}.dump();
      if (Status s = ctx.raise(a); !s) return s;
      ++raised;
    }
    ctx.log(Level::info, std::to_string(raised) + " overrides held without an expiry for longer than " +
                             std::to_string(stale / 86'400'000) + " days");
    return Status::ok();
  }

 private:
  FlagsPlugin& p_;
};

}  // namespace
}  // namespace opk::flags

namespace {

opk::Manifest describe() {
  static const opk_translation sv_feature[] = {
      {"sv", "Funktionsflaggor",
       "Globala flaggor: åsidosätt med ett skäl och ett valfritt slut, skapa och ta bort operatörers flaggor"}};
  static const opk_translation sv_stale[] = {
      {"sv", "Funktionsflagga länge åsidosatt utan slut",
       "En global funktionsflagga har haft en operatörs åsidosättning utan slut längre än "
       "[plugin.feature-flags] stale_after (30 dagar om inget annat anges)."}};
  opk::Manifest m("feature-flags", "Feature flags", "1.0.0", "Opskernel",
                  "Global feature flags declared by plugins or created by operators, with overrides that expire, "
                  "read by plugins without a store read and by applications over OFREP");
  m.admin_feature(
      {.id = "feature-flags",
       .title = "Feature flags",
       .description = "Global flags: override with a reason and an optional expiry, create and delete "
                      "operators' flags",
       .translations = {sv_feature[0]},
       .permissions = {{"feature_flags.read", "List and read the global feature flags, and evaluate them over OFREP"},
                       {"feature_flags.manage",
                        "Override and reset global feature flags, create and delete operators' flags "
                        "(they apply to every tenant)"}}});
  m.alert_source<opk::flags::StaleOverrides>(
      {.id = "feature-flags-stale",
       .title = "Feature flag overridden for long without an expiry",
       .description = "A global feature flag has held an operator's override without an expiry for longer than "
                      "[plugin.feature-flags] stale_after (default 30 days).",
       .area = "feature-flags",
       .flags = OPK_ALERT_FULL_SWEEP | OPK_ALERT_PLATFORM_ONLY,
       .default_schedule = "17 * * * *",
       .translations = {sv_stale[0]}});
  m.provides(OPK_EXT_FEATURE_FLAGS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::flags::FlagsPlugin, describe);
