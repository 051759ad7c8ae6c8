// job-region-health -- the RegionHealth job type (region-health-refresh):
// probes the API and identity-provider endpoints of every region stored in
// platform-records over HTTP(S), a few at a time, each within a timeout;
// keeps each probe (HTTP status, latency, error) in its own history table
// and records it as the region's probe in platform-records, where the alert
// sources region-health and identity-health read it (the whole sweep at
// once, after the probes, so a cancel leaves nothing half-recorded); then asks the kernel
// to evaluate those two sources at once, so their alerts open and clear
// with this run rather than at their next slot. The alert rules stay in one
// place (alert-region-health/probe_health.h): this job feeds them.
//
// Settings ([plugin.job-region-health]):
//   timeout            time for one probe, connect to last byte (default 5s)
//   concurrency        probes in flight at once (default 8)
//   history_retention  how long the history keeps a region's probes (default 30d)
//   evaluate_alerts    evaluate the two alert sources after a run (default true)
//   ca_file            PEM CAs to trust for https instead of the system's
//   verify_tls         check certificates and host names (default true)
// Parameters: {"region": "eu-west", "timeout_ms": 2000}.
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "probe.h"

namespace region_health {
namespace {

constexpr const char* kKinds[] = {"api", "identity"};
// The alert sources fed by the probes, as scheduled jobs of the kernel.
constexpr const char* kSourceJobs[] = {"alerts.region-health", "alerts.identity-health"};

const char* const kSchemaV1 =
    "CREATE TABLE p_job_region_health_history (run_id BIGINT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, "
    "url TEXT NOT NULL, time_ms BIGINT NOT NULL, ok BIGINT NOT NULL, http_status BIGINT, latency_ms BIGINT NOT NULL, "
    "error TEXT, PRIMARY KEY (run_id, region, kind));"
    "CREATE INDEX p_job_region_health_history_region ON p_job_region_health_history (region, kind, time_ms)";

struct Settings {
  int64_t timeout_ms = 5000;
  int concurrency = 8;
  int64_t history_retention_ms = 30LL * 86'400'000;
  bool evaluate_alerts = true;
  ProberSettings prober;
};

opk::Status load_settings(const opk::Host& h, Settings* s) {
  opk::Settings in = h.settings();
  s->timeout_ms = in.duration_ms("timeout", s->timeout_ms, 100, 60'000);
  s->concurrency = static_cast<int>(in.integer("concurrency", s->concurrency, 1, 64));
  s->history_retention_ms =
      in.duration_ms("history_retention", s->history_retention_ms, 3'600'000, 3650LL * 86'400'000);
  s->evaluate_alerts = in.boolean("evaluate_alerts", s->evaluate_alerts);
  s->prober.ca_file = in.text("ca_file", "");
  s->prober.verify_tls = in.boolean("verify_tls", true);
  return in.status();
}

struct Region {
  std::string id, name;
  std::string url[2];  // api, identity
};

// One probe to make and what it found.
struct Task {
  size_t region = 0;
  int kind = 0;  // index into kKinds
  int64_t time_ms = 0;
  ProbeResult result;
  bool done = false;
};

std::string describe(const ProbeResult& r) {
  if (r.ok) return "HTTP " + std::to_string(r.http_status) + " in " + std::to_string(r.latency_ms) + " ms";
  return "failing after " + std::to_string(r.latency_ms) + " ms: " + r.error;
}

opk::Json result_json(const Task& t) {
  return {{"ok", t.result.ok},
          {"http_status", t.result.http_status ? opk::Json(t.result.http_status) : opk::Json()},
          {"latency_ms", t.result.latency_ms},
          {"error", t.result.ok ? opk::Json() : opk::Json(t.result.error)},
          {"time_ms", t.time_ms}};
}

class RegionHealthPlugin : public opk::Plugin {
 public:
  explicit RegionHealthPlugin(opk::Host host) : Plugin(host) {}

  // Bad settings refuse the plugin, naming the key; the history table is
  // created where the kernel has a store.
  opk::Status init() override {
    if (opk::Status s = load_settings(host(), &settings_); !s) return s;
    if (opk::Status s = Prober::create(settings_.prober, &prober_); !s) return s;
    const opk::Store store(host());
    if (!store.available()) return opk::Status::ok();
    return store.migrate({{1, "probe history", kSchemaV1}});
  }
  const Settings& settings() const { return settings_; }
  const Prober& prober() const { return prober_; }

 private:
  Settings settings_;
  Prober prober_;
};

class RegionHealthJob : public opk::Job {
 public:
  explicit RegionHealthJob(opk::Plugin& p) : plugin_(static_cast<RegionHealthPlugin&>(p)) {}

  opk::Status run(opk::RunContext& run) override {
    const Settings& s = plugin_.settings();
    const std::string only = run.param<std::string>("region", "");
    const int64_t timeout_ms = run.param<int64_t>("timeout_ms", s.timeout_ms);
    const opk::Host& host = plugin_.host();
    const opk::Records records(host);

    // Regions, from platform-records.
    std::vector<Region> regions;
    int bad_regions = 0;
    {
      auto step = run.step("regions");
      opk::Status st =
          records.list("regions", only.empty() ? opk::Json() : opk::Json{{"id", only}}, [&](const opk::Json& rows) {
            for (const auto& row : rows) {
              Region r;
              r.id = row.value("id", "");
              r.name = row.value("name", r.id);
              bool usable = true;
              for (int k = 0; k < 2; ++k) {
                const std::string field = std::string(kKinds[k]) + "_url";
                r.url[k] = row.contains(field) && row[field].is_string() ? row[field].get<std::string>() : "";
                if (std::string bad = check_url(r.url[k]); !bad.empty()) {
                  run.warn("region " + r.id + ", " + field + ": '" + clean(r.url[k], 200) + "' " + bad +
                           "; the region is not probed");
                  usable = false;
                }
              }
              if (usable)
                regions.push_back(std::move(r));
              else
                ++bad_regions;
            }
            return opk::Status::ok();
          });
      if (!st) {
        step.end(opk::Outcome::error, st.message());
        return st;
      }
      if (!only.empty() && regions.empty() && bad_regions == 0) {
        const std::string msg = "parameter region: no region '" + only + "' is stored in platform-records";
        step.end(opk::Outcome::error, msg);
        return opk::Status::invalid(msg);
      }
      step.end(bad_regions ? opk::Outcome::warning : opk::Outcome::normal,
               std::to_string(regions.size()) + " regions to probe" +
                   (bad_regions ? ", " + std::to_string(bad_regions) + " with a bad URL left out" : ""));
    }

    // Probes, `concurrency` at a time; a cancel stops new ones.
    std::vector<Task> tasks;
    for (size_t i = 0; i < regions.size(); ++i)
      for (int k = 0; k < 2; ++k) tasks.push_back({i, k, 0, {}, false});
    {
      auto step = run.step("probe");
      run.info("probing " + std::to_string(regions.size()) + " regions (" + std::to_string(tasks.size()) +
               " endpoints), " + std::to_string(s.concurrency) + " at a time, " + std::to_string(timeout_ms) +
               " ms each");
      std::atomic<size_t> next{0};
      std::atomic<size_t> finished{0};
      auto worker = [&] {
        for (;;) {
          if (run.cancelled()) return;
          const size_t i = next.fetch_add(1);
          if (i >= tasks.size()) return;
          Task& t = tasks[i];
          t.time_ms = host.now_ms();
          t.result = plugin_.prober().probe(regions[t.region].url[t.kind], timeout_ms);
          t.done = true;
          finished.fetch_add(1);
        }
      };
      const size_t n = std::min<size_t>(static_cast<size_t>(s.concurrency), tasks.size());
      std::vector<std::thread> threads;
      for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
      if (n > 0) worker();
      for (auto& t : threads) t.join();
      if (run.cancelled()) {
        const std::string msg = "cancelled after " + std::to_string(finished.load()) + " of " +
                                std::to_string(tasks.size()) + " probes; nothing was recorded";
        run.warn(msg);
        step.end(opk::Outcome::error, msg);
        return opk::Status::cancelled();
      }
      int failing = 0;
      for (const Task& t : tasks) failing += t.result.ok ? 0 : 1;
      step.end(failing ? opk::Outcome::warning : opk::Outcome::normal,
               std::to_string(tasks.size()) + " probes, " + std::to_string(failing) + " failing");
    }

    run.progress(80, "probed " + std::to_string(tasks.size()) + " endpoints");
    // One step per region: its two probes, their outcome and latency.
    opk::Json out_regions = opk::Json::array();
    int healthy = 0, failing = 0, malformed = 0;
    for (size_t i = 0; i < regions.size(); ++i) {
      const Region& r = regions[i];
      auto step = run.step("region " + r.id);
      const Task& api = tasks[2 * i];
      const Task& id = tasks[2 * i + 1];
      bool region_ok = true;
      for (const Task* t : {&api, &id}) {
        const std::string what = "region " + r.id + ", " + kKinds[t->kind] + " " + clean(r.url[t->kind], 200) + ": ";
        if (t->result.ok) {
          run.info(what + describe(t->result));
        } else {
          region_ok = false;
          run.warn(what + describe(t->result));
          if (t->result.malformed) ++malformed;
        }
      }
      out_regions.push_back({{"region", r.id},
                             {"name", r.name},
                             {"api", result_json(api)},
                             {"identity", result_json(id)},
                             {"recorded", false}});
      region_ok ? ++healthy : ++failing;
      step.end(region_ok ? opk::Outcome::normal : opk::Outcome::warning,
               std::string("api ") + (api.result.ok ? "ok" : "failing") + " (" + std::to_string(api.result.latency_ms) +
                   " ms), identity " + (id.result.ok ? "ok" : "failing") + " (" + std::to_string(id.result.latency_ms) +
                   " ms)");
    }

    // The sweep recorded as a whole, unless a dry run: the history in one
    // transaction, then the platform's probes in one call.
    std::string not_recorded;
    bool recorded = false;
    if (!run.dry_run() && !regions.empty()) {
      if (run.cancelled()) {
        run.warn("cancelled before recording: nothing was recorded");
        return opk::Status::cancelled();
      }
      auto step = run.step("record");
      not_recorded = record(run, regions, tasks);
      if (!not_recorded.empty()) {
        run.error("not recorded: " + not_recorded);
        step.end(opk::Outcome::error, not_recorded);
      } else {
        recorded = true;
        for (auto& e : out_regions) e["recorded"] = true;
        step.end(opk::Outcome::normal, std::to_string(tasks.size()) + " probes of " + std::to_string(regions.size()) +
                                           " regions in the history and platform-records");
      }
    }

    opk::Json alerts = opk::Json::object();
    if (recorded && s.evaluate_alerts) alerts = evaluate_sources(run);

    opk::Json output = {{"dry_run", run.dry_run()},   {"regions", out_regions}, {"probed", regions.size()},
                        {"healthy", healthy},         {"failing", failing},     {"left_out", bad_regions},
                        {"alert_evaluations", alerts}};
    run.set_output(output);
    std::string summary = (run.dry_run() ? "dry run: probed " : "probed ") + std::to_string(regions.size()) +
                          " regions: " + std::to_string(healthy) + " healthy, " + std::to_string(failing) + " failing";
    if (malformed) summary += " (" + std::to_string(malformed) + " malformed answers)";
    if (bad_regions) summary += ", " + std::to_string(bad_regions) + " left out for a bad URL";
    if (!not_recorded.empty()) summary += "; not recorded: " + not_recorded;
    if (run.dry_run()) summary += "; nothing recorded, no alerts evaluated";
    const opk::Outcome outcome = !not_recorded.empty()      ? opk::Outcome::error
                                 : (failing || bad_regions) ? opk::Outcome::warning
                                                            : opk::Outcome::normal;
    run.set_result(outcome, summary);
    return opk::Status::ok();
  }

  void cancel(opk::RunContext& run) override {
    run.info("cancel requested: no new probe starts; probes under way finish within their timeout");
  }

 private:
  // Writes every probe to the history (one transaction, with each region's
  // history past retention removed), then to platform-records (one call
  // per 1,000 probes, each all or nothing). Empty on success, else why not.
  std::string record(const opk::RunContext& run, const std::vector<Region>& regions,
                     const std::vector<Task>& tasks) const {
    const Settings& s = plugin_.settings();
    const opk::Host& host = plugin_.host();
    std::vector<opk::Store::Statement> statements;
    opk::Json probes = opk::Json::array();
    for (const Task& t : tasks) {
      const Region& r = regions[t.region];
      statements.push_back(
          {"INSERT INTO p_job_region_health_history (run_id, region, kind, url, time_ms, ok, http_status, latency_ms, "
           "error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
           {std::to_string(run.run_id()), r.id, kKinds[t.kind], r.url[t.kind], std::to_string(t.time_ms),
            t.result.ok ? "1" : "0",
            t.result.http_status ? opk::Store::Param(std::to_string(t.result.http_status)) : std::nullopt,
            std::to_string(t.result.latency_ms), t.result.ok ? std::nullopt : opk::Store::Param(t.result.error)}});
      opk::Json probe = {{"region", r.id},
                         {"kind", kKinds[t.kind]},
                         {"ok", t.result.ok},
                         {"time_ms", t.time_ms},
                         {"latency_ms", t.result.latency_ms}};
      if (!t.result.ok) probe["detail"] = t.result.error.substr(0, 500);
      probes.push_back(std::move(probe));
      if (t.kind == 1)
        statements.push_back({"DELETE FROM p_job_region_health_history WHERE region = $1 AND time_ms < $2",
                              {r.id, std::to_string(t.time_ms - s.history_retention_ms)}});
    }
    opk::Json results;
    if (opk::Status st = opk::Store(host).transaction(statements, &results); !st)
      return "history: " + st.message() + " (nothing recorded)";
    const opk::Records records(host);
    for (size_t start = 0; start < probes.size(); start += 1000) {
      const opk::Json chunk(probes.begin() + static_cast<std::ptrdiff_t>(start),
                            probes.begin() + static_cast<std::ptrdiff_t>(std::min(probes.size(), start + 1000)));
      if (opk::Status st = records.record_probes(chunk); !st)
        return "platform-records: " + st.message() + " (the history has the run's probes; platform-records has " +
               std::to_string(start) + " of " + std::to_string(probes.size()) + ")";
    }
    return {};
  }

  // Asks the kernel to evaluate the alert sources now (opk.jobs/1
  // run_now as the plugin's system identity); {"alerts.region-health":
  // run id | null, ...}. Where the kernel has no job service (the SDK's
  // test host), the sources evaluate on their own schedule.
  opk::Json evaluate_sources(const opk::RunContext& run) const {
    auto step = run.step("alerts");
    const opk::Host& host = plugin_.host();
    opk::Json out = opk::Json::object();
    const auto* jobs = host.extension<opk_jobs_v1>(OPK_EXT_JOBS);
    const opk_principal* self = host.system_principal();
    if (jobs == nullptr || jobs->call == nullptr || self == nullptr) {
      run.info(
          "the kernel's job service is not available here: region-health and identity-health evaluate the "
          "recorded probes on their own schedule");
      step.end(opk::Outcome::normal, "sources evaluate on their schedule");
      return out;
    }
    int started = 0;
    for (const char* job : kSourceJobs) {
      const opk::Json request = {
          {"job_id", job},
          {"reason", "probes recorded by run " + std::to_string(run.run_id()) + " of " + std::string(run.job_type())}};
      char* answer = nullptr;
      const opk_status st = jobs->call(host.raw(), self, "run_now", request.dump().c_str(), nullptr, &answer);
      opk::Json doc = answer ? opk::Json::parse(answer, nullptr, false) : opk::Json();
      if (answer) host.free(answer);
      if (st == OPK_OK && doc.is_object() && doc.contains("run_ids") && doc["run_ids"].is_array() &&
          !doc["run_ids"].empty()) {
        out[job] = doc["run_ids"][0];
        run.info(std::string("alert evaluation ") + job + " started as run " + doc["run_ids"][0].dump());
        ++started;
      } else {
        out[job] = nullptr;
        const std::string why =
            doc.is_object() && doc.contains("error") ? doc["error"].dump() : "status " + std::to_string(st);
        run.warn(std::string("could not start the alert evaluation ") + job + " (" + why +
                 "): its alerts follow at its next scheduled evaluation");
      }
    }
    step.end(started == 2 ? opk::Outcome::normal : opk::Outcome::warning,
             std::to_string(started) + " of 2 alert evaluations started");
    return out;
  }

  RegionHealthPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("job-region-health", "Region health", "1.0.0", "Opskernel",
                  "Probes every region's API and identity endpoints and feeds the region and identity health alerts");
  m.job<RegionHealthJob>({.id = "region-health-refresh",
                          .title = "Region health",
                          .description = "Refreshes region and identity health for the configured regions.",
                          .owner = "platform-team",
                          .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun | opk::kRequeue,
                          .params_schema_json = R"json({"type":"object","additionalProperties":false,
          "properties":{
            "region":{"type":"string","pattern":"^[A-Za-z0-9._-]{1,128}$",
                      "description":"Probe only this region (its id in platform-records)"},
            "timeout_ms":{"type":"integer","minimum":100,"maximum":60000,
                          "description":"Time for one probe, instead of [plugin.job-region-health] timeout"}}})json",
                          .default_schedule = "*/5 * * * *",
                          .target_duration_ms = 30000,
                          .timeout_ms = 600000,
                          .priority = 5,
                          .worker_pool = "default",
                          .actions = {{"regions", "Read the regions"},
                                      {"probe", "Probe the endpoints"},
                                      {"region", "One region's probes (one step per region)"},
                                      {"record", "Record the probes"},
                                      {"alerts", "Evaluate region and identity health alerts"}}});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace
}  // namespace region_health

OPK_PLUGIN(region_health::RegionHealthPlugin, region_health::describe);
