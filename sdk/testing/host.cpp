// opk::testing::Host: loads plugins and lends them what the kernel lends
// (kernel/host, kernel/jobs/run.cpp), in the test's process.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <tuple>

#include <opskernel/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "cache/cache.h"
#include "internal.h"
#include "store/plugin_fence.h"

#ifndef OPK_TESTING_VERSION
#define OPK_TESTING_VERSION "0.0.0"
#endif

namespace opk::testing {
namespace {

thread_local std::string t_error;
// Why the test host's last service call on this thread was refused
// (opk_host.last_error); set by the cache service (opk.cache/1).
thread_local std::string t_host_error;
thread_local bool t_host_failed = false;
// True on a thread inside a cancel hook: it must not start another cancel.
thread_local bool t_in_hook = false;

// The kernel's own permissions (kernel/identity/identity.h).
const char* const kKernelPermissions[] = {"jobs.read",    "jobs.write",   "runs.start",   "runs.cancel",
                                          "runs.retry",   "runs.hold",    "runs.recover", "audit.read",
                                          "plugins.read", "metrics.read", "users.read",   "users.write"};

std::string str(const char* p) {
  return p ? std::string(p) : std::string();
}

const char* cstr_or_null(const std::string& s) {
  return s.empty() ? nullptr : s.c_str();
}

// Copies a plugin-written struct by the struct_size rule.
template <typename T>
T copy_of(const T* in) {
  T out{};
  std::memcpy(&out, in, std::min<size_t>(in->struct_size, sizeof out));
  return out;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && (c == '.' || c == '_' || c == '-'));
  };
  for (size_t i = 0; i < id.size(); ++i)
    if (!ok(id[i], i == 0)) return false;
  return true;
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

std::string percent_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// A job type's parameter schema, compiled as the kernel compiles it
// (valijson, JSON Schema draft 7). Throws when it is not a usable schema.
std::shared_ptr<const valijson::Schema> compile_schema(const std::string& schema_json) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const valijson::Schema>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(schema_json); it != cache.end()) return it->second;
  const nlohmann::json doc = nlohmann::json::parse(schema_json);
  auto schema = std::make_shared<valijson::Schema>();
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter adapter(doc);
  parser.populateSchema(adapter, *schema);
  return cache[schema_json] = std::move(schema);
}

// Checks a job type's schema at load, as the kernel's loader does.
Status check_schema(const std::string& schema_json) {
  try {
    compile_schema(schema_json);
    return Status::ok();
  } catch (const std::exception& e) {
    return Status::invalid(std::string("not a usable JSON Schema: ") + e.what());
  }
}

// Checks a run's parameters against the type's schema, with the kernel's
// messages ("parameters: steps: Expected number less than or equal to 1000.000000").
Status validate_params(const std::string& schema_json, const std::string& params_json) {
  const nlohmann::json params = nlohmann::json::parse(params_json, nullptr, false);
  if (params.is_discarded()) return Status::invalid("parameters: not valid JSON");
  if (!params.is_object()) return Status::invalid("parameters: must be a JSON object");
  if (schema_json.empty()) return Status::ok();
  try {
    auto schema = compile_schema(schema_json);
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(params);
    if (validator.validate(*schema, target, &results)) return Status::ok();
    // The most specific error: the first one with a field path.
    valijson::ValidationResults::Error e, chosen;
    bool have = false;
    while (results.popError(e)) {
      if (!have || (chosen.context.size() <= 1 && e.context.size() > 1)) {
        chosen = e;
        have = true;
      }
    }
    std::string field;
    for (size_t i = 1; i < chosen.context.size(); ++i) {
      std::string c = chosen.context[i];
      if (c.size() >= 2 && c.front() == '[' && c.back() == ']') c = c.substr(1, c.size() - 2);
      if (c.size() >= 2 && c.front() == '"' && c.back() == '"') c = c.substr(1, c.size() - 2);
      field += (field.empty() ? "" : ".") + c;
    }
    return Status::invalid("parameters: " + (field.empty() ? std::string() : field + ": ") + chosen.description);
  } catch (const std::exception& e) {
    return Status::invalid(std::string("parameters: the job type's schema cannot be used: ") + e.what());
  }
}

}  // namespace

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

char* plugin_string(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

void set_error_text(const std::string& text) {
  t_error = text;
}

std::string take_error() {
  return std::exchange(t_error, std::string());
}

bool RunResult::logged(std::string_view text) const {
  return std::any_of(log.begin(), log.end(), [&](const LogLine& l) { return l.text.find(text) != std::string::npos; });
}

std::string Response::header(std::string_view name) const {
  for (auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

// A route a plugin added.
struct Route {
  PluginSlot* plugin = nullptr;
  std::string feature, method, path, summary, permission;
  uint64_t flags = 0;
  std::vector<std::string> segments;
  void* data = nullptr;
  opk_status (*handle)(opk_plugin*, void*, const opk_http_request*, const opk_http_response*) = nullptr;
};

// A principal the host issued: request principals, tokens' principals,
// system principals. Services accept only these (compared by pointer).
struct IssuedPrincipal {
  opk_principal c{};
  std::string user_id, role, scope;
  IssuedPrincipal(std::string u, std::string r, std::string s)
      : user_id(std::move(u)), role(std::move(r)), scope(std::move(s)) {
    c.struct_size = sizeof c;
    c.user_id = user_id.c_str();
    c.role = role.c_str();
    c.scope = scope.c_str();
  }
};

// One run in progress: the context lent to the plugin and what it did.
struct RunState {
  Host::Impl* host = nullptr;
  PluginSlot* slot = nullptr;
  const opk_job_type* type = nullptr;  // the plugin's own pointer
  opk_job_type info{};
  RunOptions options;
  std::string job_type, params;
  opk_principal principal{};
  opk_run_context ctx{};
  std::thread::id run_thread;
  std::mutex mu;  // guards result
  RunResult result;
  std::atomic<bool> cancelled{false};
  // Held while the cancel hook runs; `done` once run returned.
  std::mutex hook_mu;
  bool done = false;
  int64_t deadline_ms = 0;  // the type's timeout on the host clock; 0: none
  bool timed_out = false;

  static RunState* from(const opk_run_context* c) { return c ? reinterpret_cast<RunState*>(c->host_data) : nullptr; }
  // Sets the flag and calls the hook on this thread while run executes.
  // `operator_cancel`: refused for types without the cancel capability.
  bool request_cancel(bool operator_cancel) {
    if (operator_cancel && !(info.capabilities & OPK_JOB_CAP_CANCEL)) return false;
    std::lock_guard lock(hook_mu);
    if (done || cancelled.exchange(true)) return false;
    if (info.cancel) {
      t_in_hook = true;
      try {
        info.cancel(slot->instance, type, &ctx);
      } catch (...) {  // a last guard: exceptions must not cross the ABI
      }
      t_in_hook = false;
    }
    return true;
  }
  // Cancels from another thread, as the kernel's canceller does, and
  // waits until the hook has returned.
  void cancel_from_other_thread(bool operator_cancel) {
    if (t_in_hook) {
      cancelled = true;
      return;
    }
    std::thread t([&] { request_cancel(operator_cancel); });
    t.join();
  }
  // Cancels when the host clock has reached the test's cancel point or
  // the type's timeout.
  void check_clock(int64_t now);
  void end_step_locked(int64_t now, opk_outcome outcome, const char* summary) {
    if (result.steps.empty() || result.steps.back().end_ms != 0) return;
    auto& s = result.steps.back();
    s.end_ms = std::max<int64_t>(now, 1);
    s.outcome = outcome;
    if (summary) s.summary = summary;
  }
};

// An evaluation in progress.
struct AlertState {
  Host::Impl* host = nullptr;
  PluginSlot* slot = nullptr;
  opk_alert_source info{};
  opk_alert_context ctx{};
  std::mutex mu;
  Evaluation result;
  static AlertState* from(const opk_alert_context* c) {
    return c ? reinterpret_cast<AlertState*>(c->host_data) : nullptr;
  }
};

class Host::Impl {
 public:
  Impl();
  ~Impl();

  ManualClock clock;
  MemoryStore store;
  // Set by use_store("postgresql"): plugins' tables go there instead.
  std::unique_ptr<PgTestStore> pg;
  std::map<std::string, std::string> settings;
  std::vector<std::unique_ptr<PluginSlot>> plugins;
  std::vector<Route> routes;
  int64_t next_run_id = 1;

  mutable std::mutex mu;  // guards what follows
  std::map<std::string, std::set<std::string>> grants;
  struct Token {
    std::string user_id, role, scope;
  };
  std::map<std::string, Token> tokens;
  std::map<std::string, std::string> parents;
  std::map<const opk_principal*, std::unique_ptr<IssuedPrincipal>> issued;
  std::vector<AuditRow> audit;
  std::vector<LogLine> log;
  std::map<std::tuple<std::string, std::string, std::string>, Alert> open_alerts;
  std::vector<Event> events;
  std::map<std::pair<std::string, std::string>, int64_t> event_keys;  // (plugin, key) -> seq

  std::mutex run_mu;  // guards current
  RunState* current = nullptr;

  opk_http_routes_v1 routes_ext{};
  opk_identity_v1 identity_ext{};
  opk_audit_v1 audit_ext{};
  opk_channels_v1 channels_ext{};
  opk_alerts_v1 alerts_ext{};
  opk_events_v1 events_ext{};
  opk_cache_v1 cache_ext{};
  std::unique_ptr<cache::Cache> cache;  // opk.cache/1; replaced by set_cache_bounds
  Host* owner = nullptr;                // the Host this is the Impl of

  const opk_principal* issue(const std::string& user, const std::string& role, const std::string& scope) {
    auto p = std::make_unique<IssuedPrincipal>(user, role, scope);
    const opk_principal* c = &p->c;
    std::lock_guard lock(mu);
    issued[c] = std::move(p);
    return c;
  }
  void release(const opk_principal* p) {
    std::lock_guard lock(mu);
    issued.erase(p);
  }
  bool is_issued(const opk_principal* p) const {
    std::lock_guard lock(mu);
    return p && issued.count(p) > 0;
  }
  bool allowed(const std::string& role, const std::string& permission) const {
    if (role == "PlatformAdministrator" || role == "System") return true;
    std::lock_guard lock(mu);
    auto it = grants.find(role);
    return it != grants.end() && (it->second.count(permission) || it->second.count("*"));
  }
  bool node_exists(const std::string& node) const {
    if (node == "platform") return true;
    std::lock_guard lock(mu);
    return parents.count(node) > 0;
  }
  // The node, then its parents up to "platform", into *chain; false when
  // the node was not added. A parent that was not added itself is taken to
  // lie under "platform".
  bool node_path(std::string node, std::vector<std::string>* chain) const {
    std::lock_guard lock(mu);
    if (node != "platform" && parents.count(node) == 0) return false;
    for (int depth = 0; depth < 16; ++depth) {
      chain->push_back(node);
      if (node == "platform") return true;
      auto it = parents.find(node);
      node = it == parents.end() ? std::string("platform") : it->second;
    }
    return false;
  }
  bool contains(const std::string& scope, std::string node) const {
    if (scope == "platform") return true;
    std::lock_guard lock(mu);
    for (int depth = 0; depth < 16; ++depth) {
      if (node == scope) return true;
      auto it = parents.find(node);
      if (it == parents.end()) return false;
      node = it->second;
    }
    return false;
  }
  PluginSlot* find_job(const std::string& id, const opk_job_type** type) {
    for (auto& p : plugins)
      for (auto* t : p->job_types)
        if (str(t->id) == id) {
          *type = t;
          return p.get();
        }
    return nullptr;
  }

  Status add_route(PluginSlot& slot, const opk_http_route& in);
  void serve(const opk_http_request& req, const opk_http_response* resp);
  std::string routes_json() const;
  void unload(PluginSlot& slot);

  static Impl* of(const opk_host* host) {
    auto* slot = PluginSlot::from(host);
    return slot ? slot->host : nullptr;
  }

  // The host table's callbacks.
  static void cb_log(const opk_host* self, opk_log_level level, const char* message) {
    if (auto* slot = PluginSlot::from(self); slot && message) plugin_log(*slot, level, message);
  }
  static void cb_set_error(const opk_host*, const char* message) { t_error = message ? message : ""; }
  static int64_t cb_now_ms(const opk_host* self) {
    auto* h = of(self);
    return h ? h->clock.now_ms() : 0;
  }
  static const char* cb_config_value(const opk_host* self, const char* key) {
    auto* slot = PluginSlot::from(self);
    if (!slot || !key) return nullptr;
    auto it = slot->settings.find(key);
    return it == slot->settings.end() ? nullptr : it->second.c_str();
  }
  static const void* cb_get_extension(const opk_host* self, const char* id);
  static void cb_free(const opk_host*, void* ptr) { std::free(ptr); }

  // opk.http-routes/1
  static opk_status cb_add_route(const opk_host* host, const opk_http_route* route);
  static opk_status cb_dispatch(const opk_host* host, const opk_http_request* request,
                                const opk_http_response* response);
  static opk_status cb_list(const opk_host* host, char** routes_json);
  // opk.identity/1
  static opk_status cb_authenticate(const opk_host* host, const char* token, char** principal_json);
  static int32_t cb_allowed(const opk_host* host, const char* role, const char* permission);
  static int32_t cb_contains(const opk_host* host, const char* scope, const char* node);
  static int32_t cb_node_exists(const opk_host* host, const char* node);
  static opk_status cb_node_path(const opk_host* host, const char* node, char** path_json);
  static opk_status cb_principal_for_token(const opk_host* host, const char* token, const opk_principal** out);
  static void cb_release_principal(const opk_host* host, const opk_principal* principal);
  static const opk_principal* cb_system_principal(const opk_host* host);
  static opk_status cb_permissions(const opk_host* host, char** permissions_json);
  // opk.audit/1
  static opk_status cb_record(const opk_host* host, const opk_audit_entry* entry);
  // opk.channels/1: the loaded plugins' channels, through Host::deliver and
  // Host::check_recipient.
  static opk_status cb_channels_list(const opk_host* host, char** answer_json);
  static opk_status cb_channels_deliver(const opk_host* host, const char* channel_id, const opk_notification* message,
                                        opk_delivery_result* result);
  static opk_status cb_channels_check(const opk_host* host, const char* channel_id, const char* recipient,
                                      const char* options_json, opk_delivery_result* result);
  // opk.alerts/1: raise, clear, escalate and list for a plugin's own
  // sources, on the alerts evaluate() keeps.
  static opk_status cb_alerts_call(const opk_host* host, const opk_principal* actor, const char* operation,
                                   const char* request_json, const char* source, char** answer_json);
  // opk.cache/1: the kernel's cache code, on the host clock.
  static opk_status cb_cache_get(const opk_host* host, const char* key, char** value, size_t* size);
  static opk_status cb_cache_put(const opk_host* host, const char* key, const void* value, size_t size, int64_t ttl_ms);
  static opk_status cb_cache_remove(const opk_host* host, const char* key);
  static opk_status cb_cache_purge(const opk_host* host, const char* pattern, int32_t dry_run, uint64_t* count);
  static opk_status cb_cache_stats(const opk_host* host, const opk_principal* actor, char** stats_json);
  static opk_status cb_cache_purge_plugin(const opk_host* host, const opk_principal* actor, const char* plugin_id,
                                          const char* pattern, int32_t dry_run, uint64_t* count);
  // opk.events/1: emit, kept for Host::events().
  static opk_status cb_events_call(const opk_host* host, const opk_principal* actor, const char* operation,
                                   const char* request_json, const char* source, char** answer_json);
};

opk_status service_failure(const opk_host* host, const Status& s) {
  // As the kernel's store service: the plugin reads it with last_error.
  t_host_error = s.message();
  t_host_failed = true;
  if (auto* slot = PluginSlot::from(host)) plugin_log(*slot, OPK_LOG_WARN, "store: " + s.message());
  return s.code();
}

MemoryStore* store_of(const opk_host* host) {
  auto* h = Host::Impl::of(host);
  return h ? &h->store : nullptr;
}

PgTestStore* host_pg_store(Host::Impl* host) {
  return host ? host->pg.get() : nullptr;
}

void plugin_log(const PluginSlot& slot, opk_log_level level, const std::string& text) {
  std::lock_guard lock(slot.host->mu);
  slot.host->log.push_back({std::clamp<opk_log_level>(level, OPK_LOG_TRACE, OPK_LOG_CRITICAL), text, "", slot.id});
}

Host::Impl::Impl() {
  routes_ext.struct_size = sizeof routes_ext;
  routes_ext.add_route = &cb_add_route;
  routes_ext.dispatch = &cb_dispatch;
  routes_ext.list = &cb_list;
  identity_ext.struct_size = sizeof identity_ext;
  identity_ext.authenticate = &cb_authenticate;
  identity_ext.allowed = &cb_allowed;
  identity_ext.contains = &cb_contains;
  identity_ext.principal_for_token = &cb_principal_for_token;
  identity_ext.release_principal = &cb_release_principal;
  identity_ext.system_principal = &cb_system_principal;
  identity_ext.permissions = &cb_permissions;
  identity_ext.node_exists = &cb_node_exists;
  identity_ext.node_path = &cb_node_path;
  audit_ext.struct_size = sizeof audit_ext;
  audit_ext.record = &cb_record;
  channels_ext.struct_size = sizeof channels_ext;
  channels_ext.list = &cb_channels_list;
  channels_ext.deliver = &cb_channels_deliver;
  channels_ext.check_recipient = &cb_channels_check;
  alerts_ext.struct_size = sizeof alerts_ext;
  alerts_ext.call = &cb_alerts_call;
  events_ext.struct_size = sizeof events_ext;
  events_ext.call = &cb_events_call;
  cache_ext.struct_size = sizeof cache_ext;
  cache_ext.get = &cb_cache_get;
  cache_ext.put = &cb_cache_put;
  cache_ext.remove = &cb_cache_remove;
  cache_ext.purge = &cb_cache_purge;
  cache_ext.stats = &cb_cache_stats;
  cache_ext.purge_plugin = &cb_cache_purge_plugin;
  cache = std::make_unique<cache::Cache>(cache::Options{}, [this] { return clock.now_ms(); });
}

Host::Impl::~Impl() {
  while (!plugins.empty()) {
    unload(*plugins.back());
    plugins.pop_back();
  }
}

void Host::Impl::unload(PluginSlot& slot) {
  std::erase_if(routes, [&](const Route& r) { return r.plugin == &slot; });
  if (slot.started && slot.entry.stop) slot.entry.stop(slot.instance);
  if (slot.instance) slot.entry.deinit(slot.instance);
  slot.instance = nullptr;
  if (slot.system) release(slot.system);
  if (slot.library) dlclose(slot.library);
  slot.library = nullptr;
}

const void* Host::Impl::cb_get_extension(const opk_host* self, const char* id) {
  auto* slot = PluginSlot::from(self);
  if (!slot || !id) return nullptr;
  const std::string want(id);
  if (want == OPK_EXT_STORE) return slot->host->pg ? slot->host->pg->table() : slot->host->store.table();
  if (want == OPK_EXT_HTTP_ROUTES) return &slot->host->routes_ext;
  if (want == OPK_EXT_IDENTITY) return &slot->host->identity_ext;
  if (want == OPK_EXT_AUDIT) return &slot->host->audit_ext;
  if (want == OPK_EXT_CHANNELS) return &slot->host->channels_ext;
  if (want == OPK_EXT_ALERTS) return &slot->host->alerts_ext;
  if (want == OPK_EXT_EVENTS) return &slot->host->events_ext;
  if (want == OPK_EXT_CACHE) return &slot->host->cache_ext;
  // Another plugin's extension: only one this plugin lists as required.
  if (!slot->requirements.count(want)) return nullptr;
  for (auto& p : slot->host->plugins)
    if (p.get() != slot && p->instance && p->entry.get_extension &&
        std::find(p->provides.begin(), p->provides.end(), want) != p->provides.end())
      return p->entry.get_extension(p->instance, id);
  return nullptr;
}

// ---------------------------------------------------------------- routes

Status Host::Impl::add_route(PluginSlot& slot, const opk_http_route& in) {
  const opk_http_route r = copy_of(&in);
  Route route;
  route.plugin = &slot;
  route.feature = str(r.feature_id);
  route.method = str(r.method);
  route.path = str(r.path);
  route.summary = str(r.summary);
  route.flags = r.flags;
  route.data = r.route_data;
  route.handle = r.handle;
  if (OPK_HAS_MEMBER(opk_http_route, in.struct_size, permission)) route.permission = str(r.permission);
  const std::string what = "route " + route.method + " " + route.path;
  static const std::set<std::string> methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  if (!methods.count(route.method)) return Status::invalid(what + ": method must be GET, POST, PUT, PATCH or DELETE");
  if (route.path.empty() || route.path.front() != '/') return Status::invalid(what + ": path must start with '/'");
  route.segments = split_path(route.path);
  std::set<std::string> names;
  for (auto& seg : route.segments) {
    if (!valid_segment(seg)) return Status::invalid(what + ": bad path segment '" + seg + "'");
    if (is_param(seg) && !names.insert(seg).second) return Status::invalid(what + ": parameter " + seg + " repeats");
  }
  if (route.handle == nullptr) return Status::invalid(what + ": handle is NULL");
  if (slot.instance == nullptr) return Status::invalid(what + ": routes are added from start, not from init");
  if (std::find(slot.features.begin(), slot.features.end(), route.feature) == slot.features.end())
    return Status::invalid(what + ": feature '" + route.feature + "' is not an admin feature of plugin '" + slot.id +
                           "'");
  for (auto& other : routes) {
    if (other.method != route.method || other.segments.size() != route.segments.size()) continue;
    bool same = true;
    for (size_t i = 0; i < route.segments.size() && same; ++i) {
      const auto &a = other.segments[i], &b = route.segments[i];
      same = (is_param(a) && is_param(b)) || a == b;
    }
    if (same)
      return Status::conflict(what + ": already served by plugin '" + other.plugin->id + "' (" + other.path + ")");
  }
  routes.push_back(std::move(route));
  return Status::ok();
}

opk_status Host::Impl::cb_add_route(const opk_host* host, const opk_http_route* route) {
  auto* slot = PluginSlot::from(host);
  if (!slot || !route) return OPK_ERR_INVALID_ARGUMENT;
  Status s = slot->host->add_route(*slot, *route);
  if (!s) {
    plugin_log(*slot, OPK_LOG_ERROR, s.message());
    t_error = s.message();
    return s.code();
  }
  return OPK_OK;
}

namespace {
// The response a handler gets: checks what it writes, as the kernel's.
struct Guard {
  opk_http_response c{};
  const opk_http_response* inner = nullptr;
  bool touched = false;
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
  g->touched = true;
  if (!OPK_HAS_MEMBER(opk_http_response, g->inner->struct_size, flush) || !g->inner->flush) return OPK_OK;
  return g->inner->flush(g->inner);
}

// An RFC 9457 problem, as the kernel writes it.
void problem(const opk_http_response* r, int status, const std::string& title, const std::string& detail,
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  r->set_status(r, status);
  r->add_header(r, "content-type", "application/problem+json");
  for (auto& [k, v] : headers) r->add_header(r, k.c_str(), v.c_str());
  const std::string body = "{\"type\":\"about:blank\",\"title\":" + json_string(title) +
                           ",\"status\":" + std::to_string(status) + ",\"detail\":" + json_string(detail) + "}";
  r->append_body(r, body.data(), body.size());
}

// The response Host::request collects.
struct Collected {
  opk_http_response c{};
  Response r;
};
Collected* collected(const opk_http_response* r) {
  return reinterpret_cast<Collected*>(r->host_data);
}
void collect_status(const opk_http_response* self, int32_t status) {
  collected(self)->r.status = status;
}
void collect_header(const opk_http_response* self, const char* name, const char* value) {
  collected(self)->r.headers.emplace_back(name, value);
}
void collect_body(const opk_http_response* self, const void* data, size_t size) {
  collected(self)->r.body.append(static_cast<const char*>(data), size);
}
opk_status collect_flush(const opk_http_response*) {
  return OPK_OK;
}
}  // namespace

void Host::Impl::serve(const opk_http_request& req, const opk_http_response* resp) {
  const std::string method = str(req.method), path = str(req.path);
  const auto segs = split_path(path);
  const Route* match = nullptr;
  std::vector<std::pair<std::string, std::string>> params;
  std::set<std::string> allowed_methods;
  for (auto& r : routes) {
    if (r.segments.size() != segs.size()) continue;
    std::vector<std::pair<std::string, std::string>> p;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      if (is_param(r.segments[i]))
        p.emplace_back(r.segments[i].substr(1, r.segments[i].size() - 2), segs[i]);
      else
        ok = r.segments[i] == segs[i];
    }
    if (!ok) continue;
    if (r.method != method) {
      allowed_methods.insert(r.method);
      continue;
    }
    // A literal segment beats a parameter: prefer the route with fewer params.
    if (!match || p.size() < params.size()) {
      match = &r;
      params = std::move(p);
    }
  }
  if (!match) {
    if (!allowed_methods.empty()) {
      std::string allow;
      for (auto& m : allowed_methods) allow += (allow.empty() ? "" : ", ") + m;
      problem(resp, 405, "Method Not Allowed", method + " is not allowed on " + path + "; use " + allow,
              {{"allow", allow}});
      return;
    }
    problem(resp, 404, "Not Found", "no route serves " + path);
    return;
  }
  const bool anonymous = match->flags & OPK_ROUTE_ANONYMOUS;
  if (!anonymous && (!req.principal || !req.principal->role)) {
    problem(resp, 401, "Unauthorized", "send an API token: Authorization: Bearer <token>",
            {{"www-authenticate", "Bearer"}});
    return;
  }
  if (!anonymous && !match->permission.empty() && !allowed(req.principal->role, match->permission)) {
    problem(resp, 403, "Forbidden",
            "the role " + std::string(req.principal->role) + " lacks the permission '" + match->permission + "' that " +
                method + " " + match->path + " needs");
    return;
  }
  std::vector<opk_kv> pp;
  for (auto& [k, v] : params) pp.push_back({k.c_str(), v.c_str()});
  opk_http_request c = copy_of(&req);
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
  t_error.clear();
  opk_status st = OPK_ERR_FAILED;
  try {
    st = match->handle(match->plugin->instance, match->data, &c, &g.c);
  } catch (...) {  // a last guard: exceptions must not cross the ABI
    t_error = "the handler threw an exception across the ABI";
  }
  const std::string err = take_error();
  if (st != OPK_OK && !g.touched) {
    plugin_log(*match->plugin, OPK_LOG_ERROR,
               "route " + method + " " + match->path + " failed (status " + std::to_string(st) + "): " + err);
    problem(resp, 500, "Internal Server Error", "the handler of " + match->path + " failed");
  }
}

opk_status Host::Impl::cb_dispatch(const opk_host* host, const opk_http_request* request,
                                   const opk_http_response* response) {
  auto* h = of(host);
  if (!h || !request || !response || !response->set_status || !response->add_header || !response->append_body)
    return OPK_ERR_INVALID_ARGUMENT;
  if (request->principal && !h->is_issued(request->principal)) return OPK_ERR_PERMISSION;
  h->serve(*request, response);
  return OPK_OK;
}

std::string Host::Impl::routes_json() const {
  std::string out = "[";
  for (const auto& r : routes) {
    if (out.size() > 1) out += ",";
    out += "{\"plugin\":" + json_string(r.plugin->id) + ",\"feature\":" + json_string(r.feature) +
           ",\"method\":" + json_string(r.method) + ",\"path\":" + json_string(r.path) +
           ",\"summary\":" + json_string(r.summary) +
           ",\"anonymous\":" + ((r.flags & OPK_ROUTE_ANONYMOUS) ? "true" : "false") +
           ",\"permission\":" + (r.permission.empty() ? std::string("null") : json_string(r.permission)) + "}";
  }
  return out + "]";
}

opk_status Host::Impl::cb_list(const opk_host* host, char** routes_json) {
  auto* h = of(host);
  if (!h || !routes_json) return OPK_ERR_INVALID_ARGUMENT;
  *routes_json = plugin_string(h->routes_json());
  return *routes_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

// -------------------------------------------------------------- identity

opk_status Host::Impl::cb_authenticate(const opk_host* host, const char* token, char** principal_json) {
  auto* h = of(host);
  if (!h || !principal_json) return OPK_ERR_INVALID_ARGUMENT;
  std::string json;
  opk_status st = OPK_OK;
  {
    std::lock_guard lock(h->mu);
    auto it = h->tokens.find(str(token));
    if (it == h->tokens.end()) {
      json = "{\"error\":\"unknown API token\"}";
      st = OPK_ERR_PERMISSION;
    } else {
      json = "{\"user_id\":" + json_string(it->second.user_id) + ",\"role\":" + json_string(it->second.role) +
             ",\"scope\":" + json_string(it->second.scope) + "}";
    }
  }
  *principal_json = plugin_string(json);
  if (!*principal_json) return OPK_ERR_NO_MEMORY;
  return st;
}

int32_t Host::Impl::cb_allowed(const opk_host* host, const char* role, const char* permission) {
  auto* h = of(host);
  return h && role && permission && h->allowed(role, permission) ? 1 : 0;
}

int32_t Host::Impl::cb_contains(const opk_host* host, const char* scope, const char* node) {
  auto* h = of(host);
  return h && scope && node && h->contains(scope, node) ? 1 : 0;
}

int32_t Host::Impl::cb_node_exists(const opk_host* host, const char* node) {
  auto* h = of(host);
  return h && node && h->node_exists(node) ? 1 : 0;
}

opk_status Host::Impl::cb_node_path(const opk_host* host, const char* node, char** path_json) {
  auto* h = of(host);
  if (!h || !node || !path_json) return OPK_ERR_INVALID_ARGUMENT;
  *path_json = nullptr;
  std::vector<std::string> chain;
  if (!h->node_path(node, &chain)) return OPK_ERR_NOT_FOUND;
  nlohmann::json path = nlohmann::json::array();
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) path.push_back(*it);
  *path_json = plugin_string(path.dump());
  return *path_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

opk_status Host::Impl::cb_principal_for_token(const opk_host* host, const char* token, const opk_principal** out) {
  auto* h = of(host);
  if (!h || !out) return OPK_ERR_INVALID_ARGUMENT;
  Token t;
  {
    std::lock_guard lock(h->mu);
    auto it = h->tokens.find(str(token));
    if (it == h->tokens.end()) {
      t_error = "unknown API token";
      return OPK_ERR_PERMISSION;
    }
    t = it->second;
  }
  *out = h->issue(t.user_id, t.role, t.scope);
  return OPK_OK;
}

void Host::Impl::cb_release_principal(const opk_host* host, const opk_principal* principal) {
  auto* slot = PluginSlot::from(host);
  if (!slot || !principal || principal == slot->system) return;
  slot->host->release(principal);
}

const opk_principal* Host::Impl::cb_system_principal(const opk_host* host) {
  auto* slot = PluginSlot::from(host);
  return slot ? slot->system : nullptr;
}

opk_status Host::Impl::cb_permissions(const opk_host* host, char** permissions_json) {
  auto* h = of(host);
  if (!h || !permissions_json) return OPK_ERR_INVALID_ARGUMENT;
  auto roles_of = [&](const std::string& permission) {
    std::string roles = "[\"PlatformAdministrator\"";
    std::lock_guard lock(h->mu);
    for (auto& [role, perms] : h->grants)
      if (role != "PlatformAdministrator" && (perms.count(permission) || perms.count("*")))
        roles += "," + json_string(role);
    return roles + "]";
  };
  std::string out = "[";
  auto add = [&](const std::string& name, const std::string& description, const std::string& owner) {
    if (out.size() > 1) out += ",";
    out += "{\"name\":" + json_string(name) + ",\"description\":" + json_string(description) +
           ",\"owner\":" + json_string(owner) + ",\"roles\":" + roles_of(name) + "}";
  };
  for (const char* p : kKernelPermissions) add(p, "", "kernel");
  for (auto& slot : h->plugins)
    for (auto& [name, description] : slot->permissions) add(name, description, slot->id);
  *permissions_json = plugin_string(out + "]");
  return *permissions_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

// ----------------------------------------------------------------- audit

opk_status Host::Impl::cb_record(const opk_host* host, const opk_audit_entry* in) {
  auto* slot = PluginSlot::from(host);
  if (!slot || !in) return OPK_ERR_INVALID_ARGUMENT;
  Impl* h = slot->host;
  const opk_audit_entry e = copy_of(in);
  auto invalid = [&](const std::string& why) {
    t_error = "audit: " + why;
    return OPK_ERR_INVALID_ARGUMENT;
  };
  if (!h->is_issued(e.actor)) {
    t_error = "audit: the actor is not a principal the kernel issued";
    return OPK_ERR_PERMISSION;
  }
  const std::string action = str(e.action);
  const auto dot = action.find('.');
  if (action.empty() || dot == std::string::npos || dot == 0 || dot + 1 == action.size() || action[0] < 'a' ||
      action[0] > 'z')
    return invalid("action '" + action + "' is not <area>.<verb>");
  if (str(e.target).empty()) return invalid("target is missing");
  for (auto [name, json] : {std::pair{"before_json", e.before_json}, std::pair{"after_json", e.after_json}})
    if (json && h->store.json_type(json).empty()) return invalid(std::string(name) + " is not valid JSON");
  const std::string outcome = e.outcome ? e.outcome : "success";
  if (outcome != "success" && outcome != "refused" && outcome != "failed")
    return invalid("outcome '" + outcome + "' is not success, refused or failed");
  AuditRow row;
  row.plugin = slot->id;
  row.user_id = str(e.actor->user_id);
  row.role = str(e.actor->role);
  row.scope = str(e.actor->scope);
  row.action = action;
  row.target = str(e.target);
  row.reason = str(e.reason);
  row.before_json = str(e.before_json);
  row.after_json = str(e.after_json);
  row.outcome = outcome;
  row.source = str(e.source);
  row.time_ms = h->clock.now_ms();
  std::lock_guard lock(h->mu);
  h->audit.push_back(std::move(row));
  return OPK_OK;
}

// ------------------------------------------------------------------ runs

void RunState::check_clock(int64_t now) {
  if (cancelled || t_in_hook) return;
  if (deadline_ms && now >= deadline_ms && !timed_out) {
    timed_out = true;
    const std::string msg = "timed out after " + std::to_string(info.timeout_ms) + " ms; cancelling";
    ctx.log(&ctx, OPK_LOG_ERROR, msg.c_str());
    cancel_from_other_thread(false);
  } else if (options.cancel_at_ms >= 0 && now >= options.cancel_at_ms && (info.capabilities & OPK_JOB_CAP_CANCEL)) {
    cancel_from_other_thread(true);
  }
}

namespace {

void run_log(const opk_run_context* self, opk_log_level level, const char* message) {
  RunState* r = RunState::from(self);
  if (!r || !message) return;
  std::lock_guard lock(r->mu);
  std::string step;
  if (!r->result.steps.empty() && r->result.steps.back().end_ms == 0) step = r->result.steps.back().id;
  r->result.log.push_back({std::clamp<opk_log_level>(level, OPK_LOG_TRACE, OPK_LOG_CRITICAL), message, step, ""});
}

void run_progress(const opk_run_context* self, double percent, const char* message) {
  RunState* r = RunState::from(self);
  if (!r) return;
  std::lock_guard lock(r->mu);
  r->result.progress = std::clamp(percent != percent ? 0.0 : percent, 0.0, 100.0);  // NaN -> 0
  if (message) r->result.progress_message = message;
}

void run_set_result(const opk_run_context* self, opk_outcome outcome, int32_t exit_code, const char* summary) {
  RunState* r = RunState::from(self);
  if (!r) return;
  std::lock_guard lock(r->mu);
  r->result.outcome = std::clamp<opk_outcome>(outcome, OPK_OUTCOME_NORMAL, OPK_OUTCOME_ERROR);
  r->result.exit_code = exit_code;
  r->result.summary = summary ? summary : "";
}

uint32_t run_is_cancelled(const opk_run_context* self) {
  RunState* r = RunState::from(self);
  if (!r) return 0;
  if (std::this_thread::get_id() == r->run_thread) r->check_clock(r->host->clock.now_ms());
  return r->cancelled ? 1 : 0;
}

opk_status run_step_begin(const opk_run_context* self, const char* step_id) {
  RunState* r = RunState::from(self);
  if (!r || !step_id || !*step_id) return OPK_ERR_INVALID_ARGUMENT;
  const int64_t now = r->host->clock.now_ms();
  std::lock_guard lock(r->mu);
  r->end_step_locked(now, OPK_OUTCOME_NORMAL, nullptr);
  r->result.steps.push_back({step_id, OPK_OUTCOME_NORMAL, {}, now, 0});
  return OPK_OK;
}

opk_status run_step_end(const opk_run_context* self, opk_outcome outcome, const char* summary) {
  RunState* r = RunState::from(self);
  if (!r) return OPK_ERR_INVALID_ARGUMENT;
  const int64_t now = r->host->clock.now_ms();
  std::lock_guard lock(r->mu);
  if (r->result.steps.empty() || r->result.steps.back().end_ms != 0) return OPK_ERR_CONFLICT;
  r->end_step_locked(now, std::clamp<opk_outcome>(outcome, OPK_OUTCOME_NORMAL, OPK_OUTCOME_ERROR), summary);
  return OPK_OK;
}

opk_status run_set_output_json(const opk_run_context* self, const char* json) {
  RunState* r = RunState::from(self);
  if (!r || !json) return OPK_ERR_INVALID_ARGUMENT;
  std::lock_guard lock(r->mu);
  r->result.output_json = json;
  return OPK_OK;
}

opk_status run_wait(const opk_run_context* self, int64_t timeout_ms) {
  RunState* r = RunState::from(self);
  if (!r) return OPK_ERR_INVALID_ARGUMENT;
  if (r->cancelled) return OPK_ERR_CANCELLED;
  Clock& clock = r->host->clock;
  const int64_t target = clock.now_ms() + std::max<int64_t>(timeout_ms, 0);
  // The wait ends early at the first cancel point it would pass.
  int64_t stop = target;
  if (r->deadline_ms && !r->timed_out) stop = std::min(stop, r->deadline_ms);
  if (r->options.cancel_at_ms >= 0 && (r->info.capabilities & OPK_JOB_CAP_CANCEL))
    stop = std::min(stop, std::max(r->options.cancel_at_ms, clock.now_ms()));
  if (stop > clock.now_ms()) clock.set(stop);
  r->check_clock(clock.now_ms());
  if (r->cancelled) return OPK_ERR_CANCELLED;
  if (clock.now_ms() < target) clock.set(target);
  return OPK_OK;
}

}  // namespace

// ------------------------------------------------------------------ Host

Host::Host() : impl_(std::make_unique<Impl>()) {
  impl_->owner = this;
}
Host::~Host() = default;

void Host::set_setting(const std::string& key, const std::string& value) {
  impl_->settings[key] = value;
}

Clock& Host::clock() {
  return impl_->clock;
}

void Host::set_cache_bounds(uint64_t max_bytes, uint64_t max_entry_bytes) {
  impl_->cache = std::make_unique<cache::Cache>(cache::Options{max_bytes, max_entry_bytes},
                                                [h = impl_.get()] { return h->clock.now_ms(); });
}

std::string Host::cache_metrics() const {
  return impl_->cache->metrics();
}

// ---------------------------------------------------------------- cache

namespace {

opk_status cache_failure(const Status& s) {
  if (!s) {
    t_host_error = s.message();
    t_host_failed = true;
  }
  return s.code();
}

}  // namespace

opk_status Host::Impl::cb_cache_get(const opk_host* host, const char* key, char** value, size_t* size) {
  if (value) *value = nullptr;
  if (size) *size = 0;
  auto* slot = PluginSlot::from(host);
  if (!slot) return OPK_ERR_UNAVAILABLE;
  if (!key || !value) return cache_failure(Status::invalid(!key ? "key: is NULL" : "value: is NULL"));
  std::string out;
  const Status s = slot->host->cache->get(slot->id, key, &out);
  if (!s) return s.code();
  *value = plugin_string(out);
  if (!*value) return OPK_ERR_NO_MEMORY;
  if (size) *size = out.size();
  return OPK_OK;
}

opk_status Host::Impl::cb_cache_put(const opk_host* host, const char* key, const void* value, size_t size,
                                    int64_t ttl_ms) {
  auto* slot = PluginSlot::from(host);
  if (!slot) return OPK_ERR_UNAVAILABLE;
  if (!key) return cache_failure(Status::invalid("key: is NULL"));
  if (!value && size > 0) return cache_failure(Status::invalid("value: is NULL with a size"));
  return cache_failure(slot->host->cache->put(
      slot->id, key, std::string_view(value ? static_cast<const char*>(value) : "", size), ttl_ms));
}

opk_status Host::Impl::cb_cache_remove(const opk_host* host, const char* key) {
  auto* slot = PluginSlot::from(host);
  if (!slot) return OPK_ERR_UNAVAILABLE;
  if (!key) return cache_failure(Status::invalid("key: is NULL"));
  return slot->host->cache->erase(slot->id, key).code();
}

opk_status Host::Impl::cb_cache_purge(const opk_host* host, const char* pattern, int32_t dry_run, uint64_t* count) {
  auto* slot = PluginSlot::from(host);
  if (!slot) return OPK_ERR_UNAVAILABLE;
  return cache_failure(slot->host->cache->purge(slot->id, pattern ? pattern : "", dry_run != 0, count));
}

namespace {

Status cache_actor_check(const Host::Impl& h, const opk_principal* actor, const std::string& permission) {
  if (!h.is_issued(actor))
    return Status::permission("actor: not a principal the kernel issued (use the request's, or system_principal)");
  const std::string role = actor->role ? actor->role : "System";
  if (!h.allowed(role, permission)) return Status::permission("actor: role '" + role + "' does not hold " + permission);
  return Status::ok();
}

}  // namespace

opk_status Host::Impl::cb_cache_stats(const opk_host* host, const opk_principal* actor, char** stats_json) {
  auto* slot = PluginSlot::from(host);
  if (!slot) return OPK_ERR_UNAVAILABLE;
  if (!stats_json) return cache_failure(Status::invalid("stats_json: is NULL"));
  *stats_json = nullptr;
  if (Status s = cache_actor_check(*slot->host, actor, "cache.read"); !s) return cache_failure(s);
  const cache::Cache& c = *slot->host->cache;
  nlohmann::json spaces = nlohmann::json::array();
  for (const auto& [ns, st] : c.stats())
    spaces.push_back({{"plugin", ns},
                      {"entries", st.entries},
                      {"bytes", st.bytes},
                      {"hits", st.hits},
                      {"misses", st.misses},
                      {"puts", st.puts},
                      {"evictions", st.evictions},
                      {"expirations", st.expirations},
                      {"purged", st.purged},
                      {"refused", st.refused}});
  *stats_json = plugin_string(nlohmann::json{
      {"max_bytes", c.options().max_bytes},
      {"max_entry_bytes", c.options().max_entry_bytes},
      {"bytes", c.bytes()},
      {"namespaces",
       std::move(spaces)}}.dump());
  return *stats_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

opk_status Host::Impl::cb_cache_purge_plugin(const opk_host* host, const opk_principal* actor, const char* plugin_id,
                                             const char* pattern, int32_t dry_run, uint64_t* count) {
  auto* slot = PluginSlot::from(host);
  if (!slot) return OPK_ERR_UNAVAILABLE;
  if (Status s = cache_actor_check(*slot->host, actor, "cache.purge"); !s) return cache_failure(s);
  if (!plugin_id || !*plugin_id) return cache_failure(Status::invalid("plugin_id: required"));
  return cache_failure(slot->host->cache->purge(plugin_id, pattern ? pattern : "", dry_run != 0, count));
}

Status Host::load(const std::string& path) {
  Impl& h = *impl_;
  auto slot = std::make_unique<PluginSlot>();
  slot->host = &h;
  slot->path = path;
  const std::string what = "cannot load " + path + ": ";
  dlerror();
  slot->library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!slot->library) return Status::error(what + str(dlerror()));
  auto fail = [&](Status s) {
    dlclose(slot->library);
    slot->library = nullptr;
    return Status(s.code(), what + s.message());
  };
  const auto* raw = static_cast<const opk_plugin_entry*>(dlsym(slot->library, OPK_PLUGIN_ENTRY_SYMBOL));
  if (!raw) {
    for (int major = 2; major <= 9; ++major)
      if (dlsym(slot->library, ("opk_plugin_entry_v" + std::to_string(major)).c_str()))
        return fail(Status::incompatible("built for plugin ABI major " + std::to_string(major) +
                                         " (exports opk_plugin_entry_v" + std::to_string(major) +
                                         "); this host speaks ABI " + std::to_string(OPK_ABI_MAJOR)));
    return fail(Status::not_found(std::string("no entry symbol ") + OPK_PLUGIN_ENTRY_SYMBOL +
                                  " (not an Opskernel plugin, or not built with OPK_PLUGIN / opk_add_plugin)"));
  }
  const std::string built = std::to_string(raw->abi_major) + "." + std::to_string(raw->abi_minor);
  const std::string speaks = std::to_string(OPK_ABI_MAJOR) + "." + std::to_string(OPK_ABI_MINOR);
  if (raw->abi_major != OPK_ABI_MAJOR)
    return fail(Status::incompatible("built for plugin ABI " + built + "; this host speaks ABI " + speaks +
                                     " (a different major version is never compatible)"));
  constexpr size_t kEntry10 = offsetof(opk_plugin_entry, get_extension) + sizeof(void*);
  if (raw->struct_size < kEntry10)
    return fail(Status::incompatible("entry struct_size " + std::to_string(raw->struct_size) +
                                     " is smaller than the ABI 1.0 size " + std::to_string(kEntry10)));
  std::memcpy(&slot->entry, raw, std::min<size_t>(raw->struct_size, sizeof slot->entry));
  if (raw->abi_minor > OPK_ABI_MINOR && slot->entry.min_host_minor > OPK_ABI_MINOR)
    return fail(Status::incompatible("built for plugin ABI " + built + " and needs a host of at least ABI " +
                                     std::to_string(OPK_ABI_MAJOR) + "." + std::to_string(slot->entry.min_host_minor) +
                                     "; this host speaks ABI " + speaks));
  if (!slot->entry.get_manifest || !slot->entry.init || !slot->entry.deinit)
    return fail(Status::invalid("entry lacks get_manifest, init or deinit"));
  const opk_manifest* m = slot->entry.get_manifest();
  if (m == nullptr) return fail(Status::invalid("get_manifest returned NULL"));
  slot->manifest = copy_of(m);
  const opk_manifest& mf = slot->manifest;
  slot->id = str(mf.id);
  if (!valid_id(slot->id))
    return fail(
        Status::invalid("plugin id '" + slot->id + "' is invalid (want [a-z0-9][a-z0-9._-]*, at most 64 bytes)"));
  for (auto& p : h.plugins)
    if (p->id == slot->id) return fail(Status::conflict("plugin '" + slot->id + "' is loaded already"));
  slot->table_prefix = store::plugin_table_prefix(slot->id);
  for (uint32_t i = 0; i < mf.job_type_count; ++i) {
    const opk_job_type* t = mf.job_types ? mf.job_types[i] : nullptr;
    if (!t || !t->id || !t->run) return fail(Status::invalid("job type " + std::to_string(i) + ": id or run is NULL"));
    const opk_job_type* other = nullptr;
    if (h.find_job(t->id, &other)) return fail(Status::conflict("job type '" + str(t->id) + "' is taken"));
    const opk_job_type info = copy_of(t);
    if (info.params_schema_json && *info.params_schema_json)
      if (Status v = check_schema(info.params_schema_json); !v)
        return fail(Status::invalid("job type '" + str(t->id) + "': params_schema_json: " + v.message()));
    // Action ids as the kernel's loader checks them: a step id the kernel
    // would refuse must not pass here.
    for (uint32_t k = 0; k < info.action_count && info.actions; ++k)
      if (!valid_id(str(info.actions[k].id)))
        return fail(Status::invalid("job type '" + str(t->id) + "': action " + std::to_string(k) + ": id '" +
                                    str(info.actions[k].id) +
                                    "' is invalid (want [a-z0-9][a-z0-9._-]*, at most 64 bytes)"));
    slot->job_types.push_back(t);
  }
  for (uint32_t i = 0; i < mf.alert_source_count; ++i) {
    const opk_alert_source* a = mf.alert_sources ? mf.alert_sources[i] : nullptr;
    if (!a || !a->id || !a->evaluate)
      return fail(Status::invalid("alert source " + std::to_string(i) + ": id or evaluate is NULL"));
    slot->alert_sources.push_back(a);
  }
  for (uint32_t i = 0; i < mf.notification_channel_count; ++i) {
    const opk_notification_channel* c = mf.notification_channels ? mf.notification_channels[i] : nullptr;
    // Since 1.4 a channel may have deliver instead of send.
    if (!c || !c->id || (!c->send && !copy_of(c).deliver))
      return fail(Status::invalid("notification channel " + std::to_string(i) + ": id or send is NULL"));
    slot->channels.push_back(c);
  }
  for (uint32_t i = 0; i < mf.admin_feature_count; ++i) {
    const opk_admin_feature* f = mf.admin_features ? mf.admin_features[i] : nullptr;
    if (!f || !f->id) return fail(Status::invalid("admin feature " + std::to_string(i) + ": id is NULL"));
    const opk_admin_feature fc = copy_of(f);
    slot->features.push_back(fc.id);
    for (uint32_t k = 0; k < fc.permission_count && fc.permissions; ++k)
      slot->permissions.emplace_back(str(fc.permissions[k].name), str(fc.permissions[k].description));
  }
  for (uint32_t i = 0; i < mf.provides_count && mf.provides; ++i) slot->provides.push_back(str(mf.provides[i]));
  static const std::set<std::string> services = {OPK_EXT_STORE, OPK_EXT_HTTP_ROUTES, OPK_EXT_IDENTITY,
                                                 OPK_EXT_AUDIT, OPK_EXT_CHANNELS,    OPK_EXT_CACHE};
  for (uint32_t i = 0; i < mf.requirement_count && mf.requirements; ++i) {
    const std::string id = str(mf.requirements[i].extension_id);
    slot->requirements.insert(id);
    if (mf.requirements[i].optional || services.count(id)) continue;
    bool provided = false;
    for (auto& p : h.plugins) provided |= std::find(p->provides.begin(), p->provides.end(), id) != p->provides.end();
    if (!provided)
      return fail(Status::not_found("requires extension '" + id +
                                    "', which neither the test host nor a plugin loaded before provides"));
  }
  slot->settings = h.settings;
  slot->system = h.issue("system:" + slot->id, "System", "platform");
  opk_host& t = slot->table;
  t.struct_size = sizeof t;
  t.abi_major = OPK_ABI_MAJOR;
  t.abi_minor = OPK_ABI_MINOR;
  t.kernel_version = OPK_TESTING_VERSION;
  t.host_data = reinterpret_cast<opk_host_data*>(slot.get());
  t.log = &Impl::cb_log;
  t.set_error = &Impl::cb_set_error;
  t.now_ms = &Impl::cb_now_ms;
  t.config_value = &Impl::cb_config_value;
  t.get_extension = &Impl::cb_get_extension;
  t.free = &Impl::cb_free;
  t.last_error = [](const opk_host*) -> const char* { return t_host_failed ? t_host_error.c_str() : nullptr; };

  t_error.clear();
  opk_plugin* instance = nullptr;
  opk_status st = OPK_ERR_FAILED;
  try {
    st = slot->entry.init(&slot->table, &instance);
  } catch (...) {  // a last guard: exceptions must not cross the ABI
    t_error = "init threw an exception across the ABI";
  }
  if (st != OPK_OK || !instance) {
    h.release(slot->system);
    const std::string err = take_error();
    return fail(Status(st == OPK_OK ? OPK_ERR_INTERNAL : st, "init of plugin '" + slot->id + "' failed (status " +
                                                                 std::to_string(st) + ")" +
                                                                 (err.empty() ? std::string() : ": " + err)));
  }
  slot->instance = instance;
  PluginSlot& s = *slot;
  h.plugins.push_back(std::move(slot));
  if (s.entry.start) {
    t_error.clear();
    st = OPK_ERR_FAILED;
    try {
      st = s.entry.start(s.instance);
    } catch (...) {
      t_error = "start threw an exception across the ABI";
    }
    if (st != OPK_OK) {
      const std::string err = take_error();
      const std::string id = s.id;
      h.unload(s);
      h.plugins.pop_back();
      return Status(st, what + "start of plugin '" + id + "' failed (status " + std::to_string(st) + ")" +
                            (err.empty() ? std::string() : ": " + err));
    }
  }
  s.started = true;
  return Status::ok();
}

RunResult Host::run(const std::string& job_type, const std::string& params_json, const RunOptions& options) {
  Impl& h = *impl_;
  RunResult refused;
  refused.outcome = OPK_OUTCOME_ERROR;
  const opk_job_type* type = nullptr;
  PluginSlot* slot = h.find_job(job_type, &type);
  if (!slot) {
    refused.status = OPK_ERR_NOT_FOUND;
    refused.error = "no loaded plugin has job type '" + job_type + "'";
    return refused;
  }
  auto r = std::make_unique<RunState>();
  r->host = &h;
  r->slot = slot;
  r->type = type;
  r->info = copy_of(type);
  const std::string params = params_json.empty() ? "{}" : params_json;
  if (Status v = validate_params(str(r->info.params_schema_json), params); !v) {
    refused.status = v.code();
    refused.error = v.message();
    return refused;
  }
  if (options.dry_run && !(r->info.capabilities & OPK_JOB_CAP_DRY_RUN)) {
    refused.status = OPK_ERR_INVALID_ARGUMENT;
    refused.error = "job type '" + job_type + "' does not support dry runs";
    return refused;
  }
  r->options = options;
  r->job_type = job_type;
  r->params = params;
  const RunOptions& o = r->options;
  r->principal.struct_size = sizeof r->principal;
  if (!o.triggered_by.role.empty()) {
    r->principal.user_id = cstr_or_null(o.triggered_by.user_id);
    r->principal.role = cstr_or_null(o.triggered_by.role);
    r->principal.scope = cstr_or_null(o.triggered_by.scope);
  }
  opk_run_context& c = r->ctx;
  c.struct_size = sizeof c;
  c.run_id = h.next_run_id++;
  c.parent_run_id = o.parent_run_id;
  c.job_type_id = r->job_type.c_str();
  c.scheduled_job_id = cstr_or_null(o.scheduled_job_id);
  c.params_json = r->params.c_str();
  c.target_tenant = cstr_or_null(o.target_tenant);
  c.dry_run = o.dry_run ? 1 : 0;
  c.trigger = o.trigger;
  c.range_start_ms = o.range_start_ms;
  c.range_end_ms = o.range_end_ms;
  c.triggered_by = &r->principal;
  c.reason = cstr_or_null(o.reason);
  c.host_data = reinterpret_cast<opk_host_data*>(r.get());
  c.log = &run_log;
  c.progress = &run_progress;
  c.set_result = &run_set_result;
  c.is_cancelled = &run_is_cancelled;
  c.step_begin = &run_step_begin;
  c.step_end = &run_step_end;
  c.set_output_json = &run_set_output_json;
  c.wait = &run_wait;
  r->run_thread = std::this_thread::get_id();
  r->result.run_id = c.run_id;
  r->result.started_ms = h.clock.now_ms();
  if (r->info.timeout_ms) r->deadline_ms = r->result.started_ms + static_cast<int64_t>(r->info.timeout_ms);
  {
    std::lock_guard lock(h.run_mu);
    h.current = r.get();
  }
  // The operator's cancel after a real delay, from its own thread.
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool finished = false;
  std::thread watcher;
  if (o.cancel_after_ms >= 0) {
    watcher = std::thread([&] {
      std::unique_lock lock(watch_mu);
      if (!watch_cv.wait_for(lock, std::chrono::milliseconds(o.cancel_after_ms), [&] { return finished; })) {
        lock.unlock();
        r->request_cancel(true);
      }
    });
  }
  t_error.clear();
  opk_status st = OPK_ERR_FAILED;
  try {
    st = r->info.run(slot->instance, type, &r->ctx);
  } catch (...) {  // a last guard: exceptions must not cross the ABI
    t_error = "run threw an exception across the ABI";
  }
  {
    std::lock_guard lock(r->hook_mu);
    r->done = true;
  }
  {
    std::lock_guard lock(watch_mu);
    finished = true;
  }
  watch_cv.notify_all();
  if (watcher.joinable()) watcher.join();
  {
    std::lock_guard lock(h.run_mu);
    h.current = nullptr;
  }
  RunResult& res = r->result;
  res.status = st;
  res.error = take_error();
  const int64_t now = h.clock.now_ms();
  if (st != OPK_OK) {
    res.outcome = OPK_OUTCOME_ERROR;
    if (res.exit_code == 0) res.exit_code = st;
  }
  if (st == OPK_ERR_CANCELLED || (st != OPK_OK && r->cancelled)) {
    res.cancelled = true;
    if (res.summary.empty()) res.summary = "cancelled";
  }
  if (st != OPK_OK && res.summary.empty()) {
    for (auto it = res.log.rbegin(); it != res.log.rend(); ++it) {
      if (it->level != OPK_LOG_ERROR) continue;
      res.summary = it->text.substr(0, 500);
      break;
    }
  }
  r->end_step_locked(now, st == OPK_OK ? res.outcome : OPK_OUTCOME_ERROR, nullptr);
  res.finished_ms = now;
  if (st == OPK_OK) res.progress = 100;
  return std::move(res);
}

bool Host::cancel_run() {
  std::lock_guard lock(impl_->run_mu);
  return impl_->current && impl_->current->request_cancel(true);
}

namespace {
opk_status alert_raise(const opk_alert_context* self, const opk_alert* in) {
  AlertState* s = AlertState::from(self);
  if (!s || !in) return OPK_ERR_INVALID_ARGUMENT;
  const opk_alert a = copy_of(in);
  auto invalid = [&](const std::string& why) {
    set_error_text("raise: " + why);
    return OPK_ERR_INVALID_ARGUMENT;
  };
  if (!a.title || !*a.title) return invalid("title is missing");
  if (a.severity < OPK_SEVERITY_INFO || a.severity > OPK_SEVERITY_CRITICAL)
    return invalid("severity " + std::to_string(a.severity) + " is not INFO, WARNING or CRITICAL");
  if (a.details_json && s->host->store.json_type(a.details_json) != "object")
    return invalid("details_json is not a JSON object");
  Alert out{a.severity,
            a.area ? str(a.area) : str(s->info.area),
            str(a.title),
            str(a.message),
            str(a.related_type),
            str(a.related_id),
            str(a.scope),
            str(a.details_json),
            a.type && *a.type ? str(a.type) : str(s->info.id)};
  {
    std::lock_guard lock(s->host->mu);
    Alert& held = s->host->open_alerts[{str(s->info.id), out.related_type, out.related_id}];
    const int level = held.escalation_level;
    held = out;
    held.escalation_level = level;
  }
  std::lock_guard lock(s->mu);
  s->result.raised.push_back(std::move(out));
  return OPK_OK;
}

opk_status alert_clear(const opk_alert_context* self, const char* related_type, const char* related_id) {
  AlertState* s = AlertState::from(self);
  if (!s) return OPK_ERR_INVALID_ARGUMENT;
  {
    std::lock_guard lock(s->host->mu);
    s->host->open_alerts.erase({str(s->info.id), str(related_type), str(related_id)});
  }
  std::lock_guard lock(s->mu);
  s->result.cleared.emplace_back(str(related_type), str(related_id));
  return OPK_OK;
}

void alert_log(const opk_alert_context* self, opk_log_level level, const char* message) {
  AlertState* s = AlertState::from(self);
  if (!s || !message) return;
  std::lock_guard lock(s->mu);
  s->result.log.push_back({std::clamp<opk_log_level>(level, OPK_LOG_TRACE, OPK_LOG_CRITICAL), message, "", ""});
}

uint32_t alert_is_cancelled(const opk_alert_context*) {
  return 0;
}

opk_status alert_escalate(const opk_alert_context* self, const char* related_type, const char* related_id,
                          const char* reason) {
  AlertState* s = AlertState::from(self);
  if (!s) return OPK_ERR_INVALID_ARGUMENT;
  if (!reason || !*reason) {
    set_error_text("escalate: reason is missing");
    return OPK_ERR_INVALID_ARGUMENT;
  }
  {
    std::lock_guard lock(s->host->mu);
    auto it = s->host->open_alerts.find({str(s->info.id), str(related_type), str(related_id)});
    if (it == s->host->open_alerts.end()) {
      set_error_text("escalate: no open alert for " + str(related_type) + " '" + str(related_id) + "'");
      return OPK_ERR_NOT_FOUND;
    }
    ++it->second.escalation_level;
  }
  std::lock_guard lock(s->mu);
  s->result.escalated.push_back({str(related_type), str(related_id), str(reason)});
  return OPK_OK;
}
}  // namespace

Evaluation Host::evaluate(const std::string& source_id) {
  Impl& h = *impl_;
  AlertState s;
  s.host = &h;
  const opk_alert_source* source = nullptr;
  for (auto& p : h.plugins)
    for (auto* a : p->alert_sources)
      if (str(a->id) == source_id) {
        source = a;
        s.slot = p.get();
      }
  if (!source) {
    s.result.status = OPK_ERR_NOT_FOUND;
    s.result.error = "no loaded plugin has alert source '" + source_id + "'";
    return std::move(s.result);
  }
  s.info = copy_of(source);
  s.ctx.struct_size = sizeof s.ctx;
  s.ctx.now_ms = h.clock.now_ms();
  s.ctx.host_data = reinterpret_cast<opk_host_data*>(&s);
  s.ctx.raise = &alert_raise;
  s.ctx.clear = &alert_clear;
  s.ctx.log = &alert_log;
  s.ctx.is_cancelled = &alert_is_cancelled;
  s.ctx.escalate = &alert_escalate;
  t_error.clear();
  opk_status st = OPK_ERR_FAILED;
  try {
    st = s.info.evaluate(s.slot->instance, source, &s.ctx);
  } catch (...) {
    t_error = "evaluate threw an exception across the ABI";
  }
  s.result.status = st;
  s.result.error = take_error();
  return std::move(s.result);
}

std::vector<Alert> Host::open_alerts() const {
  std::lock_guard lock(impl_->mu);
  std::vector<Alert> out;
  for (auto& [key, a] : impl_->open_alerts) out.push_back(a);
  return out;
}

namespace {
// The C view of `message`; `to` holds the recipients' pointers.
opk_notification c_notification(const Notification& message, std::vector<const char*>& to) {
  for (auto& r : message.recipients) to.push_back(r.c_str());
  opk_notification n{};
  n.struct_size = sizeof n;
  n.recipients = to.empty() ? nullptr : to.data();
  n.recipient_count = static_cast<uint32_t>(to.size());
  n.subject = message.subject.c_str();
  n.body = message.body.c_str();
  n.content_type = message.content_type.c_str();
  n.event_json = cstr_or_null(message.event_json);
  n.id = cstr_or_null(message.id);
  n.attempt = message.attempt;
  n.html_body = cstr_or_null(message.html_body);
  n.options_json = cstr_or_null(message.options_json);
  n.timeout_ms = message.timeout_ms;
  return n;
}

// The result as the kernel passes it on: detail terminated, a failure
// without detail given one naming the status.
DeliveryResult delivery_result(opk_status st, const opk_delivery_result& r, std::string error) {
  DeliveryResult out;
  out.status = st;
  out.code = r.code;
  out.latency_ms = r.latency_ms;
  out.retry_after_ms = r.retry_after_ms;
  out.flags = r.flags;
  out.detail.assign(r.detail, strnlen(r.detail, sizeof r.detail));
  if (st != OPK_OK && out.detail.empty())
    out.detail = error.empty() ? "failed with status " + std::to_string(st) : error;
  out.error = std::move(error);
  return out;
}
}  // namespace

DeliveryResult Host::deliver(const std::string& channel_id, const Notification& message) {
  Impl& h = *impl_;
  for (auto& p : h.plugins)
    for (auto* ch : p->channels) {
      if (str(ch->id) != channel_id) continue;
      const opk_notification_channel c = copy_of(ch);
      if (!c.deliver) {
        // As the kernel does for a channel with only send: the status
        // decides the flags.
        Status s = send(channel_id, message);
        opk_delivery_result r{};
        r.struct_size = sizeof r;
        if (s.code() == OPK_ERR_INVALID_ARGUMENT || s.code() == OPK_ERR_PERMISSION) r.flags = OPK_DELIVERY_PERMANENT;
        return delivery_result(s.code(), r, s.message());
      }
      std::vector<const char*> to;
      const opk_notification n = c_notification(message, to);
      opk_delivery_result r{};
      r.struct_size = sizeof r;
      t_error.clear();
      opk_status st = OPK_ERR_FAILED;
      try {
        st = c.deliver(p->instance, ch, &n, &r);
      } catch (...) {
        t_error = "deliver threw an exception across the ABI";
      }
      return delivery_result(st, r, take_error());
    }
  DeliveryResult out;
  out.status = OPK_ERR_NOT_FOUND;
  out.detail = "unknown channel '" + channel_id + "'";
  return out;
}

DeliveryResult Host::check_recipient(const std::string& channel_id, const std::string& recipient,
                                     const std::string& options_json) {
  Impl& h = *impl_;
  for (auto& p : h.plugins)
    for (auto* ch : p->channels) {
      if (str(ch->id) != channel_id) continue;
      const opk_notification_channel c = copy_of(ch);
      opk_delivery_result r{};
      r.struct_size = sizeof r;
      if (!c.check_recipient) return delivery_result(OPK_OK, r, "");
      t_error.clear();
      opk_status st = OPK_ERR_FAILED;
      try {
        st = c.check_recipient(p->instance, ch, recipient.c_str(), cstr_or_null(options_json), &r);
      } catch (...) {
        t_error = "check_recipient threw an exception across the ABI";
      }
      return delivery_result(st, r, take_error());
    }
  DeliveryResult out;
  out.status = OPK_ERR_NOT_FOUND;
  out.detail = "unknown channel '" + channel_id + "'";
  return out;
}

namespace {
// A DeliveryResult back into the caller's opk_delivery_result.
opk_status fill_result(const DeliveryResult& d, opk_delivery_result* result) {
  if (result == nullptr) return d.status;
  result->code = d.code;
  result->latency_ms = d.latency_ms;
  result->retry_after_ms = d.retry_after_ms;
  result->flags = d.flags;
  const size_t n = std::min(d.detail.size(), sizeof result->detail - 1);
  d.detail.copy(result->detail, n);
  result->detail[n] = '\0';
  return d.status;
}
}  // namespace

// ------------------------------------------------- alerts and events services

namespace {
// Answers a service call: `answer` (or {"error": message} on failure) into
// *answer_json, the message as the thread's last error.
opk_status service_answer(const Status& s, const nlohmann::json& answer, char** answer_json) {
  if (!s) t_error = s.message();
  *answer_json = plugin_string(s ? answer.dump() : nlohmann::json{{"error", s.message()}}.dump());
  if (!*answer_json) return OPK_ERR_NO_MEMORY;
  return s ? OPK_OK : s.code();
}

const char* const kSeverityNames[] = {"info", "warning", "critical"};

nlohmann::json alert_json(const std::string& source, const Alert& a) {
  const nlohmann::json details = nlohmann::json::parse(a.details_json.empty() ? "{}" : a.details_json, nullptr, false);
  return {{"source", source},
          {"type", a.type},
          {"severity", kSeverityNames[std::clamp<int>(a.severity, OPK_SEVERITY_INFO, OPK_SEVERITY_CRITICAL)]},
          {"area", a.area},
          {"title", a.title},
          {"message", a.message},
          {"related_type", a.related_type},
          {"related_id", a.related_id},
          {"scope", a.scope},
          {"details", details.is_object() ? details : nlohmann::json::object()},
          {"status", a.escalation_level > 0 ? "escalated" : "open"},
          {"escalation_level", a.escalation_level}};
}

// A text member of `req`, or "" when absent; INVALID_ARGUMENT naming it
// when it is not a string or is required and missing.
Status text_member(const nlohmann::json& req, const char* name, std::string* out, bool required = false) {
  auto it = req.find(name);
  if (it == req.end() || it->is_null()) {
    out->clear();
    return required ? Status::invalid(std::string(name) + ": is required") : Status::ok();
  }
  if (!it->is_string()) return Status::invalid(std::string(name) + ": must be a string");
  *out = it->get<std::string>();
  if (required && out->empty()) return Status::invalid(std::string(name) + ": is required");
  return Status::ok();
}
}  // namespace

opk_status Host::Impl::cb_alerts_call(const opk_host* host, const opk_principal* actor, const char* operation,
                                      const char* request_json, const char* /*source*/, char** answer_json) {
  auto* slot = PluginSlot::from(host);
  if (!slot || !operation || !answer_json) return OPK_ERR_INVALID_ARGUMENT;
  Impl* h = slot->host;
  const std::string op = operation;
  nlohmann::json answer;
  auto reply = [&](const Status& s) { return service_answer(s, answer, answer_json); };
  if (!h->is_issued(actor))
    return reply(Status::permission(
        "actor: not a principal the kernel issued (pass the request's principal, or system_principal)"));
  const nlohmann::json req = nlohmann::json::parse(request_json ? request_json : "{}", nullptr, false);
  if (!req.is_object()) return reply(Status::invalid("request: not a JSON object"));
  const std::string role = str(actor->role);
  if (op == "list") {
    if (!h->allowed(role, "alerts.read")) return reply(Status::permission("role " + role + " lacks alerts.read"));
    std::string source, related_type, related_id;
    Status s;
    if (!(s = text_member(req, "source", &source)) || !(s = text_member(req, "related_type", &related_type)) ||
        !(s = text_member(req, "related_id", &related_id)))
      return reply(s);
    answer = {{"alerts", nlohmann::json::array()}, {"next_cursor", nullptr}};
    std::lock_guard lock(h->mu);
    for (auto& [key, a] : h->open_alerts) {
      if ((!source.empty() && std::get<0>(key) != source) ||
          (!related_type.empty() && a.related_type != related_type) ||
          (!related_id.empty() && a.related_id != related_id))
        continue;
      answer["alerts"].push_back(alert_json(std::get<0>(key), a));
    }
    return reply(Status::ok());
  }
  if (op != "raise" && op != "clear" && op != "escalate")
    return reply(Status(OPK_ERR_UNSUPPORTED, "operation '" + op +
                                                 "': the test host's alert service has raise, clear, escalate and "
                                                 "list"));
  if (role != "System" && !h->allowed(role, "alerts.raise"))
    return reply(Status::permission("role " + role + " lacks alerts.raise"));
  std::string source_id;
  Status s = text_member(req, "source", &source_id, true);
  if (!s) return reply(s);
  const opk_alert_source* src = nullptr;
  for (auto* a : slot->alert_sources)
    if (str(a->id) == source_id) src = a;
  if (!src)
    return reply(Status::invalid("source: '" + source_id + "' is not an alert source of plugin '" + slot->id + "'"));
  const opk_alert_source info = copy_of(src);
  std::string related_type, related_id, reason;
  if (!(s = text_member(req, "related_type", &related_type, op != "raise")) ||
      !(s = text_member(req, "related_id", &related_id, op != "raise")))
    return reply(s);
  const auto key = std::make_tuple(source_id, related_type, related_id);
  if (op == "raise") {
    Alert a;
    const auto sev = req.find("severity");
    if (sev == req.end()) return reply(Status::invalid("severity: is required (info, warning or critical)"));
    if (sev->is_number_integer() && sev->get<int64_t>() >= OPK_SEVERITY_INFO &&
        sev->get<int64_t>() <= OPK_SEVERITY_CRITICAL) {
      a.severity = static_cast<opk_severity>(sev->get<int64_t>());
    } else {
      const std::string name = sev->is_string() ? sev->get<std::string>() : "";
      auto it = std::find(std::begin(kSeverityNames), std::end(kSeverityNames), name);
      if (it == std::end(kSeverityNames)) return reply(Status::invalid("severity: must be info, warning or critical"));
      a.severity = static_cast<opk_severity>(it - std::begin(kSeverityNames));
    }
    std::string type;
    if (!(s = text_member(req, "title", &a.title, true)) || !(s = text_member(req, "message", &a.message)) ||
        !(s = text_member(req, "area", &a.area)) || !(s = text_member(req, "scope", &a.scope)) ||
        !(s = text_member(req, "type", &type)))
      return reply(s);
    if (related_type.empty() || related_id.empty())
      return reply(Status::invalid(related_type.empty() ? "related_type: is required" : "related_id: is required"));
    if (!a.scope.empty() && !h->node_exists(a.scope))
      return reply(Status::invalid("scope: '" + a.scope + "' is not a hierarchy node"));
    if (auto d = req.find("details"); d != req.end() && !d->is_null()) {
      if (!d->is_object()) return reply(Status::invalid("details: must be a JSON object"));
      a.details_json = d->dump();
    }
    if (a.area.empty()) a.area = str(info.area);
    a.related_type = related_type;
    a.related_id = related_id;
    a.type = type.empty() ? source_id : type;
    std::lock_guard lock(h->mu);
    Alert& held = h->open_alerts[key];
    const int level = held.escalation_level;
    held = a;
    held.escalation_level = level;
    answer = {{"alert", alert_json(source_id, held)}};
    return reply(Status::ok());
  }
  if (!(s = text_member(req, "reason", &reason, op == "escalate"))) return reply(s);
  std::lock_guard lock(h->mu);
  auto it = h->open_alerts.find(key);
  if (op == "clear") {
    answer = {{"alert", it == h->open_alerts.end() ? nlohmann::json() : alert_json(source_id, it->second)}};
    if (it != h->open_alerts.end()) {
      answer["alert"]["status"] = "closed";
      answer["alert"]["close_kind"] = "cleared";
      h->open_alerts.erase(it);
    }
    return reply(Status::ok());
  }
  if (it == h->open_alerts.end())
    return reply(
        Status::not_found("no open alert of source " + source_id + " for " + related_type + " '" + related_id + "'"));
  ++it->second.escalation_level;
  answer = {{"alert", alert_json(source_id, it->second)}};
  return reply(Status::ok());
}

opk_status Host::Impl::cb_events_call(const opk_host* host, const opk_principal* actor, const char* operation,
                                      const char* request_json, const char* /*source*/, char** answer_json) {
  auto* slot = PluginSlot::from(host);
  if (!slot || !operation || !answer_json) return OPK_ERR_INVALID_ARGUMENT;
  Impl* h = slot->host;
  const std::string op = operation;
  nlohmann::json answer;
  auto reply = [&](const Status& s) { return service_answer(s, answer, answer_json); };
  if (!h->is_issued(actor))
    return reply(Status::permission(
        "actor: not a principal the kernel issued (pass the request's principal, or system_principal)"));
  if (op != "emit")
    return reply(Status(OPK_ERR_UNSUPPORTED, "operation '" + op + "': the test host's event log has emit only"));
  const std::string role = str(actor->role);
  if (role != "System" && !h->allowed(role, "events.emit"))
    return reply(Status::permission("role " + role + " lacks permission events.emit"));
  const nlohmann::json req = nlohmann::json::parse(request_json ? request_json : "{}", nullptr, false);
  if (!req.is_object()) return reply(Status::invalid("request: not a JSON object"));
  Event e;
  std::string name;
  Status s;
  if (!(s = text_member(req, "name", &name, true)) || !(s = text_member(req, "scope", &e.scope)) ||
      !(s = text_member(req, "subject", &e.subject)) || !(s = text_member(req, "key", &e.key)))
    return reply(s);
  bool name_ok = name.size() <= 64 && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'));
  for (char c : name)
    name_ok = name_ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
  if (!name_ok) return reply(Status::invalid("name: '" + name + "' is not [a-z0-9][a-z0-9._-]*, at most 64 bytes"));
  if (e.scope.empty()) e.scope = "platform";
  if (!h->node_exists(e.scope)) return reply(Status::invalid("scope: '" + e.scope + "' is not a hierarchy node"));
  if (e.subject.size() > 200) return reply(Status::invalid("subject: longer than 200 bytes"));
  if (req.contains("key")) {
    bool printable = !e.key.empty() && e.key.size() <= 200;
    for (unsigned char c : e.key) printable = printable && c >= 0x20 && c != 0x7f;
    if (!printable) return reply(Status::invalid("key: must be 1 to 200 bytes of printable text"));
  }
  auto payload = req.find("payload");
  if (payload != req.end() && !payload->is_null() && !payload->is_object())
    return reply(Status::invalid("payload: must be a JSON object"));
  e.payload_json = payload == req.end() || payload->is_null() ? "{}" : payload->dump();
  if (e.payload_json.size() > 256 * 1024) return reply(Status::invalid("payload: larger than 256 KiB"));
  e.plugin = slot->id;
  e.kind = "plugin." + slot->id + "." + name;
  e.time_ms = h->clock.now_ms();
  std::lock_guard lock(h->mu);
  if (!e.key.empty()) {
    if (auto it = h->event_keys.find({slot->id, e.key}); it != h->event_keys.end()) {
      answer = {{"seq", it->second}, {"kind", e.kind}, {"duplicate", true}};
      return reply(Status::ok());
    }
  }
  e.seq = static_cast<int64_t>(h->events.size()) + 1;
  if (!e.key.empty()) h->event_keys[{slot->id, e.key}] = e.seq;
  answer = {{"seq", e.seq}, {"kind", e.kind}, {"duplicate", false}};
  h->events.push_back(std::move(e));
  return reply(Status::ok());
}

opk_status Host::Impl::cb_channels_list(const opk_host* host, char** answer_json) {
  Impl* h = of(host);
  if (!h || !answer_json) return OPK_ERR_INVALID_ARGUMENT;
  nlohmann::json out = nlohmann::json::array();
  for (auto& p : h->plugins)
    for (auto* ch : p->channels) {
      const opk_notification_channel c = copy_of(ch);
      out.push_back({{"id", str(c.id)},
                     {"title", str(c.title)},
                     {"description", str(c.description)},
                     {"plugin", p->id},
                     {"deliver", c.deliver != nullptr},
                     {"check_recipient", c.check_recipient != nullptr}});
    }
  *answer_json = plugin_string(out.dump());
  return *answer_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

opk_status Host::Impl::cb_channels_deliver(const opk_host* host, const char* channel_id,
                                           const opk_notification* message, opk_delivery_result* result) {
  Impl* h = of(host);
  if (!h || !channel_id || !message) return OPK_ERR_INVALID_ARGUMENT;
  const opk_notification n = copy_of(message);
  Notification m;
  for (uint32_t i = 0; i < n.recipient_count && n.recipients; ++i) m.recipients.push_back(str(n.recipients[i]));
  m.subject = str(n.subject);
  m.body = str(n.body);
  m.content_type = str(n.content_type);
  m.event_json = str(n.event_json);
  m.id = str(n.id);
  m.attempt = n.attempt;
  m.html_body = str(n.html_body);
  m.options_json = str(n.options_json);
  m.timeout_ms = n.timeout_ms;
  return fill_result(h->owner->deliver(channel_id, m), result);
}

opk_status Host::Impl::cb_channels_check(const opk_host* host, const char* channel_id, const char* recipient,
                                         const char* options_json, opk_delivery_result* result) {
  Impl* h = of(host);
  if (!h || !channel_id) return OPK_ERR_INVALID_ARGUMENT;
  return fill_result(h->owner->check_recipient(channel_id, str(recipient), str(options_json)), result);
}

Status Host::send(const std::string& channel_id, const Notification& message) {
  Impl& h = *impl_;
  for (auto& p : h.plugins)
    for (auto* ch : p->channels) {
      if (str(ch->id) != channel_id) continue;
      std::vector<const char*> to;
      const opk_notification n = c_notification(message, to);
      const opk_notification_channel c = copy_of(ch);
      if (!c.send) return Status(OPK_ERR_UNSUPPORTED, "channel '" + channel_id + "' has no send (use deliver)");
      t_error.clear();
      opk_status st = OPK_ERR_FAILED;
      try {
        st = c.send(p->instance, ch, &n);
      } catch (...) {
        t_error = "send threw an exception across the ABI";
      }
      const std::string err = take_error();
      if (st == OPK_OK) return Status::ok();
      return Status(st, "channel '" + channel_id + "' failed (status " + std::to_string(st) + ")" +
                            (err.empty() ? std::string() : ": " + err));
    }
  return Status::not_found("no loaded plugin has notification channel '" + channel_id + "'");
}

Response Host::request(const std::string& method, const std::string& target, const std::string& body,
                       const Principal& principal, const std::vector<std::pair<std::string, std::string>>& headers) {
  Impl& h = *impl_;
  const size_t q = target.find('?');
  const std::string path = percent_decode(target.substr(0, q), false);
  std::vector<std::pair<std::string, std::string>> query, head;
  if (q != std::string::npos) {
    std::string rest = target.substr(q + 1);
    size_t i = 0;
    while (i <= rest.size()) {
      size_t j = rest.find('&', i);
      if (j == std::string::npos) j = rest.size();
      const std::string kv = rest.substr(i, j - i);
      if (!kv.empty()) {
        const size_t eq = kv.find('=');
        query.emplace_back(percent_decode(kv.substr(0, eq), true),
                           eq == std::string::npos ? std::string() : percent_decode(kv.substr(eq + 1), true));
      }
      i = j + 1;
    }
  }
  for (auto& [k, v] : headers) {
    std::string n = k;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    head.emplace_back(n, v);
  }
  std::vector<opk_kv> qk, hk;
  for (auto& [k, v] : query) qk.push_back({k.c_str(), v.c_str()});
  for (auto& [k, v] : head) hk.push_back({k.c_str(), v.c_str()});
  const opk_principal* p =
      principal.role.empty() ? nullptr : h.issue(principal.user_id, principal.role, principal.scope);
  opk_http_request c{};
  c.struct_size = sizeof c;
  c.method = method.c_str();
  c.path = path.c_str();
  c.query = qk.data();
  c.query_count = static_cast<uint32_t>(qk.size());
  c.headers = hk.data();
  c.header_count = static_cast<uint32_t>(hk.size());
  c.body = {reinterpret_cast<const uint8_t*>(body.data()), body.size()};
  c.principal = p;
  c.remote_addr = "127.0.0.1:40000";
  Collected rs;
  rs.c.struct_size = sizeof rs.c;
  rs.c.host_data = reinterpret_cast<opk_host_data*>(&rs);
  rs.c.set_status = &collect_status;
  rs.c.add_header = &collect_header;
  rs.c.append_body = &collect_body;
  rs.c.flush = &collect_flush;
  h.serve(c, &rs.c);
  if (p) h.release(p);
  // One content-type: the last one written wins.
  std::string type;
  for (auto& [k, v] : rs.r.headers)
    if (k == "content-type") type = v;
  std::erase_if(rs.r.headers, [](auto& kv) { return kv.first == "content-type"; });
  if (!type.empty()) rs.r.headers.emplace_back("content-type", type);
  return std::move(rs.r);
}

void Host::grant(const std::string& role, const std::string& permission) {
  std::lock_guard lock(impl_->mu);
  impl_->grants[role].insert(permission);
}

void Host::add_token(const std::string& token, const std::string& user_id, const std::string& role,
                     const std::string& scope) {
  std::lock_guard lock(impl_->mu);
  impl_->tokens[token] = {user_id, role, scope};
}

void Host::add_node(const std::string& node, const std::string& parent) {
  std::lock_guard lock(impl_->mu);
  impl_->parents[node] = parent;
}

Status Host::use_store(const std::string& backend, const std::string& conninfo) {
  if (backend != "sqlite" && backend != "postgresql")
    return Status::invalid("store: backend '" + backend + "' is not sqlite or postgresql");
  if (!impl_->plugins.empty())
    return Status::invalid("store: use_store must come before the first load (" + impl_->plugins.front()->path +
                           " is loaded)");
  if (backend == "sqlite") {
    impl_->pg.reset();
    return Status::ok();
  }
  std::string server = conninfo;
  if (server.empty()) {
    const char* env = std::getenv("OPK_TEST_PG");
    server = env ? env : "";
  }
  if (server.empty())
    return Status::invalid(
        "store: no PostgreSQL server: give use_store a connection string or set OPK_TEST_PG (\"host=127.0.0.1 "
        "port=5432 user=postgres dbname=postgres\")");
  std::unique_ptr<PgTestStore> pg;
  if (Status s = PgTestStore::open(server, &pg); !s) return s;
  impl_->pg = std::move(pg);
  return Status::ok();
}

std::string Host::store_dialect() const {
  return impl_->pg ? "postgresql" : "sqlite";
}

Rows Host::store_rows(const std::string& sql) const {
  Rows rows;
  Status s = impl_->pg ? impl_->pg->rows(sql, &rows) : impl_->store.rows(sql, &rows);
  if (!s) throw std::invalid_argument(s.message());
  return rows;
}

std::vector<AuditRow> Host::audit_rows() const {
  std::lock_guard lock(impl_->mu);
  return impl_->audit;
}

std::vector<LogLine> Host::log_lines() const {
  std::lock_guard lock(impl_->mu);
  return impl_->log;
}

std::vector<Event> Host::events() const {
  std::lock_guard lock(impl_->mu);
  return impl_->events;
}

}  // namespace opk::testing
