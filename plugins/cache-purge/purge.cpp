// The cache-purge plugin (docs/cache.md): purge of the platform's Redis
// caches by key or glob pattern (redis.h: SCAN MATCH + UNLINK, throttled by
// a token bucket, never KEYS) and of the kernel's cache (opk.cache/1), with
// a dry run that only counts. Its admin API:
//   GET  /api/v1/cache                          the Redis servers and the kernel cache's counters
//   POST /api/v1/cache/redis/{server}/purge     {pattern, reason, dry_run?, confirm?}
//   POST /api/v1/cache/kernel/purge             {plugin, pattern, reason, dry_run?, confirm?}
// A pattern that matches every key ("*", "**") is refused unless confirm is
// true. Those calls run inside the request, for small purges; a large one
// runs as a run of the job type cache-purge (docs/job-types/cache-purge.md):
// its progress in the run, cancelled between batches, a dry run counting.
// Every purge and dry run is audited (cache.purge, cache.count) with the
// actor, the reason, the pattern and the counts, also when it fails. A
// Redis server that is down or answers an error fails that purge with the
// reason (503, 502); nothing else is affected.
#include <opskernel/json.hpp>
#include <opskernel/opk.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "redis.h"

namespace opk::cachepurge {
namespace {

bool purge_name_ok(const std::string& n) {
  return !n.empty() && n.size() <= 32 && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// True when glob `pattern` matches every key: nothing but '*'.
bool matches_everything(const std::string& pattern) {
  return !pattern.empty() && pattern.find_first_not_of('*') == std::string::npos;
}

Status purge_fail(Response& rs, const Status& s) {
  rs.problem(s.code() == OPK_ERR_FAILED ? 502 : problem_status(s), s.message());
  return Status::ok();
}

// The fields of a purge request, checked; INVALID_ARGUMENT naming the field.
struct PurgeRequest {
  std::string pattern, reason, plugin;
  bool dry_run = false, confirm = false;
};

Status purge_request_of(const Request& rq, bool with_plugin, PurgeRequest* out) {
  if (rq.body().empty()) return Status::invalid("request: a JSON body is required");
  Json b = Json::parse(rq.body(), nullptr, false);
  if (b.is_discarded()) return Status::invalid("request: the body is not valid JSON");
  if (!b.is_object()) return Status::invalid("request: the body must be a JSON object");
  for (const auto& [key, value] : b.items())
    if (key != "pattern" && key != "reason" && key != "dry_run" && key != "confirm" &&
        !(with_plugin && key == "plugin"))
      return Status::invalid(key + ": is not a field of this request");
  if (with_plugin) {
    if (!b.contains("plugin") || !b["plugin"].is_string() || b["plugin"].get<std::string>().empty() ||
        b["plugin"].get<std::string>().size() > 64)
      return Status::invalid("plugin: required, the id of the plugin whose cache entries to purge");
    out->plugin = b["plugin"].get<std::string>();
  }
  if (!b.contains("pattern") || !b["pattern"].is_string() || b["pattern"].get<std::string>().empty())
    return Status::invalid("pattern: required, a key or a glob such as 'session:*'");
  out->pattern = b["pattern"].get<std::string>();
  if (out->pattern.size() > 1024) return Status::invalid("pattern: longer than 1,024 bytes");
  if (std::any_of(out->pattern.begin(), out->pattern.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    return Status::invalid("pattern: holds a control character");
  for (const char* flag : {"dry_run", "confirm"})
    if (b.contains(flag) && !b[flag].is_boolean())
      return Status::invalid(std::string(flag) + ": must be true or false");
  out->dry_run = b.value("dry_run", false);
  out->confirm = b.value("confirm", false);
  const Json reason = b.value("reason", Json());
  if (!reason.is_string() ||
      std::all_of(reason.get_ref<const std::string&>().begin(), reason.get_ref<const std::string&>().end(),
                  [](unsigned char c) { return std::isspace(c); }))
    return Status::invalid("reason: is required (say why the cache is purged)");
  out->reason = reason.get<std::string>();
  if (out->reason.size() > 2000) return Status::invalid("reason: longer than 2,000 bytes");
  if (!out->dry_run && matches_everything(out->pattern) && !out->confirm)
    return Status::invalid("pattern: '" + out->pattern +
                           "' matches every key; send confirm: true to purge them all, or a dry run to count them");
  return Status::ok();
}

class PurgePlugin : public Plugin {
 public:
  explicit PurgePlugin(Host host) : Plugin(host) {}

  Status init() override {
    Settings in = host().settings();
    keys_per_second_ = in.number("keys_per_second", keys_per_second_, 1, 10'000'000);
    batch_ = static_cast<uint32_t>(in.integer("batch", batch_, 1, 100'000));
    const int64_t timeout = in.duration_ms("timeout", 5000, 100, 600'000);
    const std::string list = in.text("servers", "");
    if (Status s = in.status(); !s) return s;
    size_t at = 0;
    while (at <= list.size()) {
      size_t end = list.find(',', at);
      if (end == std::string::npos) end = list.size();
      std::string name = list.substr(at, end - at);
      name.erase(0, name.find_first_not_of(" \t"));
      name.erase(name.find_last_not_of(" \t") + 1);
      at = end + 1;
      if (name.empty()) continue;
      if (!purge_name_ok(name))
        return Status::invalid("[plugin.cache-purge] servers: '" + name + "' is not a name of 1..32 of [a-z0-9-]");
      if (servers_.count(name)) return Status::invalid("[plugin.cache-purge] servers: '" + name + "' is listed twice");
      RedisServer r;
      r.name = name;
      r.address = in.text(name + "_address", r.address, true);
      r.port = static_cast<int>(in.integer(name + "_port", r.port, 1, 65535));
      r.db = static_cast<int>(in.integer(name + "_db", r.db, 0, 1'000'000));
      r.password_file = in.text(name + "_password_file", "");
      r.timeout_ms = timeout;
      if (Status s = in.status(); !s) return s;
      servers_[name] = r;
    }
    return Status::ok();
  }

  Status start() override {
    auto self = std::shared_ptr<const PurgePlugin>(this, [](const PurgePlugin*) {});
    return add_api_routes<PurgePlugin>(
        "cache-purge", "/api/v1/cache", self,
        {
            {"GET", "", "The Redis servers that can be purged and the kernel cache's counters per plugin", "cache.read",
             &PurgePlugin::list},
            {"POST", "/redis/{server}/purge",
             "Purge (or with dry_run count) a Redis server's keys matching pattern (reason; confirm for '*')",
             "cache.purge", &PurgePlugin::purge_server},
            {"POST", "/kernel/purge",
             "Purge (or with dry_run count) a plugin's kernel cache entries matching pattern (plugin, reason; "
             "confirm for '*')",
             "cache.purge", &PurgePlugin::purge_kernel},
        });
  }

  Status list(const Request& rq, Response& rs) const {
    Json redis = Json::array();
    for (const auto& [name, r] : servers_)
      redis.push_back({{"name", name}, {"address", r.address}, {"port", r.port}, {"db", r.db}});
    Json kernel = nullptr;
    std::string stats;
    if (Cache c(host()); c.available() && c.stats(rq.principal(), &stats)) kernel = Json::parse(stats, nullptr, false);
    rs.status(200).json(
        Json{{"redis", redis}, {"kernel", kernel}, {"keys_per_second", keys_per_second_}, {"batch", batch_}});
    return Status::ok();
  }

  Status purge_server(const Request& rq, Response& rs) const {
    const std::string name(rq.path_param("server").value_or(""));
    auto it = servers_.find(name);
    if (it == servers_.end())
      return purge_fail(rs,
                        Status::not_found("server: no Redis server '" + name + "' in [plugin.cache-purge] servers"));
    PurgeRequest p;
    if (Status s = purge_request_of(rq, false, &p); !s) return purge_fail(rs, s);
    PurgeOptions o;
    o.pattern = p.pattern;
    o.dry_run = p.dry_run;
    o.keys_per_second = keys_per_second_;
    o.batch = batch_;
    PurgeCounts counts;
    const Status s = purge_redis(it->second, o, &counts);
    Json result{{"server", name},
                {"pattern", p.pattern},
                {"dry_run", p.dry_run},
                {"matched", counts.matched},
                {"removed", counts.removed},
                {"batches", counts.batches},
                {"duration_ms", counts.duration_ms}};
    audit(rq, p, "redis:" + name, result, s);
    if (!s)
      return purge_fail(rs,
                        Status(s.code(), s.message() + " (after " + std::to_string(counts.removed) + " keys removed)"));
    rs.status(200).json(result);
    return Status::ok();
  }

  // Server `name` of [plugin.cache-purge] servers, or nullptr.
  const RedisServer* server(const std::string& name) const {
    auto it = servers_.find(name);
    return it == servers_.end() ? nullptr : &it->second;
  }
  double keys_per_second() const { return keys_per_second_; }
  uint32_t batch() const { return batch_; }

  Status purge_kernel(const Request& rq, Response& rs) const {
    PurgeRequest p;
    if (Status s = purge_request_of(rq, true, &p); !s) return purge_fail(rs, s);
    Cache c(host());
    uint64_t n = 0;
    const Status s = c.purge_plugin(rq.principal(), p.plugin, p.pattern, p.dry_run, &n);
    Json result{{"plugin", p.plugin},
                {"pattern", p.pattern},
                {"dry_run", p.dry_run},
                {"matched", n},
                {"removed", p.dry_run ? 0 : n}};
    audit(rq, p, "cache:" + p.plugin, result, s);
    if (!s) return purge_fail(rs, s);
    rs.status(200).json(result);
    return Status::ok();
  }

 private:
  void audit(const Request& rq, const PurgeRequest& p, const std::string& target, const Json& result,
             const Status& s) const {
    Json after = result;
    if (!s) after["error"] = s.message();
    Audit a(host());
    const Status w = a.record(rq.principal(), {.action = p.dry_run ? "cache.count" : "cache.purge",
                                               .target = target,
                                               .reason = p.reason,
                                               .before = nullptr,
                                               .after = after,
                                               .outcome = s ? "success" : "failed",
                                               .source = std::string(rq.remote_addr())});
    if (!w) host().error("cache-purge: audit row for " + target + " not written: " + w.message());
  }

  std::map<std::string, RedisServer> servers_;
  double keys_per_second_ = 10000;
  uint32_t batch_ = 500;
};

// Job type cache-purge: a Redis purge as a run (docs/job-types/cache-purge.md).
// Parameters server, pattern and confirm as the API's; the run's dry run
// only counts, its reason is the audit row's. Progress is the share of the
// server's keys (DBSIZE at the start) SCAN has walked; a cancel stops it
// between batches, keeping what was removed.
class PurgeJob : public Job {
 public:
  explicit PurgeJob(Plugin& p) : p_(static_cast<PurgePlugin&>(p)) {}

  Status run(RunContext& run) override {
    const std::string name = run.param<std::string>("server", "");
    const std::string pattern = run.param<std::string>("pattern", "");
    const bool confirm = run.param<bool>("confirm", false);
    const RedisServer* server = p_.server(name);
    Status bad;
    if (server == nullptr)
      bad = Status::invalid("server: no Redis server '" + name + "' in [plugin.cache-purge] servers");
    else if (pattern.empty())
      bad = Status::invalid("pattern: required, a key or a glob such as 'session:*'");
    else if (!run.dry_run() && matches_everything(pattern) && !confirm)
      bad = Status::invalid("pattern: '" + pattern +
                            "' matches every key; run with confirm: true to purge them all, or as a dry run to count");
    if (!bad) {
      run.error(bad.message());
      run.set_result(Outcome::error, bad.message());
      return bad;
    }
    uint64_t total = 0;
    if (Status s = count_redis_keys(*server, &total); !s) {
      run.error(s.message());
      return s;
    }
    run.info(std::string(run.dry_run() ? "counting" : "purging") + " keys of Redis server " + name + " matching " +
             pattern + " (" + std::to_string(total) + " keys in its database, at most " +
             std::to_string(static_cast<int64_t>(p_.keys_per_second())) + " removed a second)");
    PurgeOptions o;
    o.pattern = pattern;
    o.dry_run = run.dry_run();
    o.keys_per_second = p_.keys_per_second();
    o.batch = p_.batch();
    o.cancelled = [&run] { return run.cancelled(); };
    o.progress = [&](const PurgeCounts& c) {
      const double walked = static_cast<double>(c.batches) * o.batch;
      const double pct = total ? std::min(99.0, 100.0 * walked / static_cast<double>(total)) : 99.0;
      run.progress(pct, std::to_string(c.matched) + " matched, " + std::to_string(c.removed) + " removed");
    };
    PurgeCounts counts;
    const Status s = purge_redis(*server, o, &counts);
    const Json result{{"server", name},
                      {"pattern", pattern},
                      {"dry_run", o.dry_run},
                      {"matched", counts.matched},
                      {"removed", counts.removed},
                      {"batches", counts.batches},
                      {"duration_ms", counts.duration_ms},
                      {"run_id", run.run_id()},
                      {"by", std::string(run.triggered_by())}};
    run.set_output(result);
    audit(run, name, result, s);
    const std::string done = std::to_string(counts.matched) + " keys matched, " + std::to_string(counts.removed) +
                             " removed in " + std::to_string(counts.batches) + " batches";
    if (s.code() == OPK_ERR_CANCELLED) {
      run.warn("cancelled: " + done + "; the rest stays");
      return s;
    }
    if (!s) {
      run.error(s.message() + " (" + done + ")");
      return Status(s.code(), s.message() + " (after " + std::to_string(counts.removed) + " keys removed)");
    }
    run.info(done);
    run.set_result(Outcome::normal, (o.dry_run ? "dry run: " : "") + done);
    return Status::ok();
  }

 private:
  void audit(const RunContext& run, const std::string& name, const Json& result, const Status& s) const {
    Json after = result;
    if (!s) after["error"] = s.message();
    Audit a(p_.host());
    const Status w = a.record(p_.host().system_principal(),
                              {.action = result["dry_run"].get<bool>() ? "cache.count" : "cache.purge",
                               .target = "redis:" + name,
                               .reason = std::string(run.reason()),
                               .before = nullptr,
                               .after = after,
                               .outcome = s ? "success" : (s.code() == OPK_ERR_CANCELLED ? "refused" : "failed"),
                               .source = "run:" + std::to_string(run.run_id())});
    if (!w) p_.host().error("cache-purge: audit row for redis:" + name + " not written: " + w.message());
  }

  PurgePlugin& p_;
};

}  // namespace
}  // namespace opk::cachepurge

namespace {

opk::Manifest describe() {
  opk::Manifest m("cache-purge", "Cache purge", "1.0.0", "Opskernel",
                  "Purge of the platform's Redis caches and of the kernel's cache by key or glob pattern, "
                  "throttled, with a dry run, audited");
  m.admin_feature(
      {.id = "cache-purge",
       .title = "Caches",
       .description = "The Redis caches and the kernel cache: counters, purge by key or pattern, dry run",
       .translations = {},
       .permissions = {{"cache.read", "See the caches (Redis servers, the kernel cache's counters per plugin)"},
                       {"cache.purge",
                        "Purge keys of the platform's Redis caches and of the kernel cache (every tenant's "
                        "entries), or count them with a dry run"}}});
  m.job<opk::cachepurge::PurgeJob>(
      {.id = "cache-purge",
       .title = "Redis cache purge",
       .description = "Purge (or with a dry run count) a Redis server's keys matching a pattern, throttled, as a run "
                      "with progress that can be cancelled between batches",
       .owner = "cache-purge",
       .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun,
       .params_schema_json = R"json({"type":"object","additionalProperties":false,"required":["server","pattern"],
          "properties":{
            "server":{"type":"string","minLength":1,"maxLength":32,"description":"A server of [plugin.cache-purge] servers"},
            "pattern":{"type":"string","minLength":1,"maxLength":1024,"description":"A key or a Redis glob such as session:*"},
            "confirm":{"type":"boolean","description":"Required to purge a pattern that matches every key"}}})json",
       .target_duration_ms = 60000,
       .timeout_ms = 6 * 3600000,
       .priority = 0,
       .worker_pool = "default",
       .actions = {}});
  return m;
}

}  // namespace

OPK_PLUGIN(opk::cachepurge::PurgePlugin, describe);
