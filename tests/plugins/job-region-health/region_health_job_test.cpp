// region-health-refresh (plugin job-region-health) on the SDK's test host
// with platform-records and the alert sources region-health and
// identity-health, against real HTTP(S) servers on 127.0.0.1
// (tests/support/region-server): healthy, slow, failing, malformed and
// non-HTTP answers, a refused connection, a redirect; the history and the
// platform's probes written per region, the alerts the sources raise on
// them and clear after a good run, reruns, dry runs that write nothing, a
// cancel that records nothing half-done, the concurrency limit, https with
// a private CA, and bad input named in the run's log.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/servers.h"

namespace opk::test {
namespace {

using opk::testing::RunResult;

const std::string kPlugins = OPK_BUNDLED_PLUGIN_DIR;

// On both stores: the plugins' tables and statements in SQLite, and in a
// schema of the Host's own on the tests' PostgreSQL server (OPK_TEST_PG).
class RegionHealthJob : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << s.message();
    ASSERT_EQ(start_server(server_), "") << "region server";
  }
  bool pg() const { return GetParam() == "postgresql"; }
  // Makes the store refuse inserts into `table` of the region 'us' (a
  // trigger the test adds behind the plugins' backs, in each store's SQL).
  void refuse_us(const std::string& table) {
    const std::string name = "refuse_" + table;
    if (!pg()) {
      host_.store_rows("CREATE TRIGGER " + name + " BEFORE INSERT ON " + table +
                       " WHEN new.region = 'us' BEGIN SELECT RAISE(ABORT, 'disk full'); END");
      return;
    }
    host_.store_rows("CREATE FUNCTION " + name +
                     "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.region = 'us' THEN RAISE EXCEPTION "
                     "'disk full'; END IF; RETURN NEW; END $$");
    host_.store_rows("CREATE TRIGGER " + name + " BEFORE INSERT ON " + table + " FOR EACH ROW EXECUTE FUNCTION " +
                     name + "()");
  }

  std::string start_server(ServerProcess& server, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {OPK_PYTHON3,
                                     std::string(OPK_SOURCE_DIR) + "/tests/support/region-server/region_server.py"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return server.start(argv, dir_.file("server-" + std::to_string(++servers_) + ".err"));
  }

  // Loads platform-records, the two alert sources and the job's plugin.
  ::testing::AssertionResult load() {
    for (const char* name : {"platform-records", "alert-region-health", "alert-identity-health", "job-region-health"}) {
      const Status s = host_.load(kPlugins + "/" + name + ".so");
      if (!s) return ::testing::AssertionFailure() << name << ": " << s.message();
    }
    return ::testing::AssertionSuccess();
  }

  std::string url(const std::string& path, int port = 0) const {
    return "http://127.0.0.1:" + std::to_string(port ? port : server_.port()) + path;
  }
  static Json region(const std::string& id, const std::string& api, const std::string& identity) {
    return {{"id", id}, {"name", id + "-1"}, {"api_url", api}, {"identity_url", identity}};
  }
  // Imports (upserts) regions through platform-records' route.
  ::testing::AssertionResult regions(const Json& rows) {
    const auto r = host_.request("POST", "/api/v1/records/regions/import", rows.dump(),
                                 opk::testing::Principal::administrator(), {{"content-type", "application/json"}});
    if (r.status == 200) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << r.status << " " << r.body;
  }
  int64_t count(const std::string& table, const std::string& where = "1 = 1") {
    return std::stoll(*host_.store_rows("SELECT COUNT(*) FROM " + table + " WHERE " + where)[0][0]);
  }
  static const opk::testing::Step* step(const RunResult& r, const std::string& id) {
    for (const auto& s : r.steps)
      if (s.id == id) return &s;
    return nullptr;
  }
  Json server_stats() {
    // The server's own count of what it served, asked outside the job.
    const std::string out = dir_.file("stats.json");
    const std::string cmd = std::string(OPK_PYTHON3) +
                            " -c \"import urllib.request,sys;sys.stdout.write(urllib.request.urlopen('" +
                            url("/stats") + "').read().decode())\" > '" + out + "'";
    if (std::system(cmd.c_str()) != 0) return Json();
    return Json::parse(slurp(out), nullptr, false);
  }

  ScratchDir dir_;
  ServerProcess server_;
  int servers_ = 0;
  opk::testing::Host host_;
};

INSTANTIATE_TEST_SUITE_P(Stores, RegionHealthJob, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// What does not depend on the store (the probes' concurrency, TLS, the
// settings): on SQLite only, to spare the suite's time.
class RegionHealthJobProbes : public RegionHealthJob {};
INSTANTIATE_TEST_SUITE_P(Stores, RegionHealthJobProbes, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(RegionHealthJob, ProbesRecordsEachRegionAndFeedsTheAlertSources) {
  ASSERT_TRUE(load());
  ASSERT_TRUE(regions(Json::array({region("ap", url("/slow/50"), url("/malformed")),
                                   region("eu", url("/ok"), url("/plain")), region("us", url("/fail"), url("/ok"))})));
  const RunResult r = host_.run("region-health-refresh");
  ASSERT_EQ(r.status, OPK_OK) << r.error << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  EXPECT_EQ(r.summary, "probed 3 regions: 1 healthy, 2 failing (1 malformed answers)");

  // Steps: the regions, the probes, one per region (key order), the alerts.
  std::vector<std::string> ids;
  for (const auto& s : r.steps) ids.push_back(s.id);
  EXPECT_EQ(ids,
            (std::vector<std::string>{"regions", "probe", "region ap", "region eu", "region us", "record", "alerts"}));
  EXPECT_EQ(step(r, "region eu")->outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(step(r, "region us")->outcome, OPK_OUTCOME_WARNING);
  EXPECT_NE(step(r, "region us")->summary.find("api failing"), std::string::npos) << step(r, "region us")->summary;
  EXPECT_EQ(step(r, "region ap")->outcome, OPK_OUTCOME_WARNING);
  // Each region's lines are logged in its step, naming the region and the probe.
  bool us_line = false, ap_line = false;
  for (const auto& l : r.log) {
    if (l.step == "region us" && l.text.find("region us, api " + url("/fail") + ": failing after") == 0 &&
        l.text.find("HTTP 503 Service Unavailable") != std::string::npos)
      us_line = true;
    if (l.step == "region ap" && l.text.find("region ap, identity") == 0 &&
        l.text.find("answer body: not JSON") != std::string::npos)
      ap_line = true;
  }
  EXPECT_TRUE(us_line);
  EXPECT_TRUE(ap_line);
  EXPECT_TRUE(r.logged("the kernel's job service is not available here"));

  // The output: per region, status and latency.
  const Json out = Json::parse(r.output_json);
  ASSERT_EQ(out["regions"].size(), 3u);
  EXPECT_EQ(out["healthy"], 1);
  EXPECT_EQ(out["failing"], 2);
  const Json& us = out["regions"][2];
  EXPECT_EQ(us["region"], "us");
  EXPECT_EQ(us["api"]["ok"], false);
  EXPECT_EQ(us["api"]["http_status"], 503);
  EXPECT_EQ(us["identity"]["ok"], true);
  EXPECT_EQ(us["identity"]["http_status"], 200);
  EXPECT_GE(out["regions"][0]["api"]["latency_ms"].get<int64_t>(), 40);  // /slow/50
  EXPECT_EQ(us["recorded"], true);

  // History: both probes of each region, with status, latency and error.
  EXPECT_EQ(count("p_job_region_health_history"), 6);
  const auto row = host_.store_rows(
      "SELECT ok, http_status, error, url FROM p_job_region_health_history WHERE region = 'us' AND kind = 'api'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(*row[0][0], "0");
  EXPECT_EQ(*row[0][1], "503");
  EXPECT_NE(row[0][2]->find("HTTP 503"), std::string::npos);
  EXPECT_EQ(*row[0][3], url("/fail"));
  // And the platform's probes, which the alert sources read.
  EXPECT_EQ(count("p_platform_records_probes"), 6);
  EXPECT_EQ(count("p_platform_records_probes", "ok = 0"), 2);

  // The sources raise on what the run recorded: us's API, ap's identity service.
  auto api = host_.evaluate("region-health");
  ASSERT_EQ(api.status, OPK_OK) << api.error;
  ASSERT_EQ(api.raised.size(), 1u);
  EXPECT_EQ(api.raised[0].related_id, "us");
  EXPECT_EQ(api.raised[0].severity, OPK_SEVERITY_CRITICAL);
  EXPECT_NE(api.raised[0].message.find("HTTP 503"), std::string::npos) << api.raised[0].message;
  auto idp = host_.evaluate("identity-health");
  ASSERT_EQ(idp.raised.size(), 1u);
  EXPECT_EQ(idp.raised[0].related_id, "ap");
  EXPECT_NE(idp.raised[0].message.find("not JSON"), std::string::npos) << idp.raised[0].message;

  // The regions recover; the next run's probes clear both alerts.
  ASSERT_TRUE(regions(Json::array({region("ap", url("/ok"), url("/ok")), region("us", url("/ok"), url("/ok"))})));
  host_.clock().advance(60'000);
  const RunResult again = host_.run("region-health-refresh");
  EXPECT_EQ(again.outcome, OPK_OUTCOME_NORMAL) << again.summary;
  EXPECT_EQ(again.summary, "probed 3 regions: 3 healthy, 0 failing");
  // The rerun adds its own history rows; nothing is overwritten.
  EXPECT_EQ(count("p_job_region_health_history"), 12);
  EXPECT_EQ(count("p_job_region_health_history", "run_id = " + std::to_string(r.run_id)), 6);
  api = host_.evaluate("region-health");
  idp = host_.evaluate("identity-health");
  // A full sweep that does not raise them again: the alert engine closes
  // both as cleared (the test host keeps no such engine; the kernel test
  // does it for real).
  EXPECT_EQ(api.status, OPK_OK);
  EXPECT_TRUE(api.raised.empty());
  EXPECT_TRUE(idp.raised.empty());
  EXPECT_TRUE(api.log.size() > 0 &&
              api.log.back().text == "checked 3 regions, 0 with a failed api probe, 0 without a recent one")
      << (api.log.empty() ? "" : api.log.back().text);
}

TEST_P(RegionHealthJob, DryRunProbesButRecordsAndRaisesNothing) {
  ASSERT_TRUE(load());
  ASSERT_TRUE(regions(Json::array({region("eu", url("/ok"), url("/fail"))})));
  const RunResult r = host_.run("region-health-refresh", "{}", {.dry_run = true});
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  EXPECT_EQ(r.summary, "dry run: probed 1 regions: 0 healthy, 1 failing; nothing recorded, no alerts evaluated");
  EXPECT_EQ(step(r, "alerts"), nullptr);
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["dry_run"], true);
  EXPECT_EQ(out["regions"][0]["identity"]["http_status"], 503);
  EXPECT_EQ(out["regions"][0]["recorded"], false);
  EXPECT_EQ(count("p_job_region_health_history"), 0);
  EXPECT_EQ(count("p_platform_records_probes"), 0);
  // The source finds no probe at all (a warning of its own), not the failure.
  const auto e = host_.evaluate("identity-health");
  ASSERT_EQ(e.raised.size(), 1u);
  EXPECT_EQ(e.raised[0].severity, OPK_SEVERITY_WARNING);
  EXPECT_NE(e.raised[0].title.find("never probed"), std::string::npos);
}

TEST_P(RegionHealthJob, TimeoutsRefusalsRedirectsAndNonHttpAnswersFailTheProbeNamingWhy) {
  ASSERT_TRUE(load());
  const int closed = closed_port();
  ASSERT_TRUE(
      regions(Json::array({region("a", url("/slow/3000"), url("/garbage")),
                           region("b", url("/ok", closed), url("/redirect")), region("c", url("/down"), url("/ok"))})));
  const RunResult r = host_.run("region-health-refresh", R"({"timeout_ms": 400})");
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  const Json out = Json::parse(r.output_json);
  const Json& a = out["regions"][0];
  EXPECT_EQ(a["api"]["ok"], false);
  EXPECT_EQ(a["api"]["error"], "GET http://127.0.0.1:" + std::to_string(server_.port()) + ": no answer within 400 ms");
  EXPECT_LT(a["api"]["latency_ms"].get<int64_t>(), 2000);
  EXPECT_EQ(a["api"]["http_status"], nullptr);
  EXPECT_NE(a["identity"]["error"].get<std::string>().find("not an HTTP answer"), std::string::npos) << a;
  const Json& b = out["regions"][1];
  EXPECT_EQ(b["api"]["error"], "connect 127.0.0.1:" + std::to_string(closed) + ": connection refused");
  EXPECT_NE(b["identity"]["error"].get<std::string>().find("redirects are not followed (Location: /ok)"),
            std::string::npos)
      << b;
  EXPECT_EQ(b["identity"]["http_status"], 302);
  const Json& c = out["regions"][2];
  EXPECT_EQ(c["api"]["error"], "answer body: status 'fail'");
  EXPECT_EQ(c["identity"]["ok"], true);
  EXPECT_EQ(out["failing"], 3);
}

TEST_P(RegionHealthJobProbes, ProbesNoMoreThanTheConcurrencyLimitAtOnce) {
  host_.set_setting("concurrency", "3");
  ASSERT_TRUE(load());
  Json rows = Json::array();
  for (int i = 0; i < 6; ++i) rows.push_back(region("r" + std::to_string(i), url("/slow/200"), url("/slow/200")));
  ASSERT_TRUE(regions(rows));
  const RunResult r = host_.run("region-health-refresh");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  EXPECT_TRUE(r.logged("probing 6 regions (12 endpoints), 3 at a time"));
  const Json stats = server_stats();
  ASSERT_TRUE(stats.is_object());
  EXPECT_EQ(stats["requests"], 12);
  EXPECT_LE(stats["max_in_flight"].get<int>(), 3);
  EXPECT_GE(stats["max_in_flight"].get<int>(), 2);  // and in parallel
}

TEST_P(RegionHealthJob, ACancelWhileProbingRecordsNothing) {
  host_.set_setting("concurrency", "2");
  ASSERT_TRUE(load());
  Json rows = Json::array();
  for (int i = 0; i < 6; ++i) rows.push_back(region("r" + std::to_string(i), url("/slow/300"), url("/slow/300")));
  ASSERT_TRUE(regions(rows));
  const RunResult r = host_.run("region-health-refresh", "{}", {.cancel_after_ms = 450});
  EXPECT_EQ(r.status, OPK_ERR_CANCELLED) << r.summary;
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(r.logged("cancel requested: no new probe starts"));
  EXPECT_TRUE(r.logged("of 12 probes; nothing was recorded"));
  EXPECT_EQ(count("p_job_region_health_history"), 0);
  EXPECT_EQ(count("p_platform_records_probes"), 0);
  const Json stats = server_stats();
  EXPECT_LT(stats["requests"].get<int>(), 12);  // stopped between probes
}

TEST_P(RegionHealthJobProbes, HttpsWithAPrivateCaAndWithout) {
  ASSERT_EQ(make_certificate(dir_.path(), "region"), "");
  ServerProcess tls;
  ASSERT_EQ(start_server(tls, {"--tls", "--cert", dir_.file("region.pem"), "--key", dir_.file("region.key")}), "");
  const std::string ok = "https://localhost:" + std::to_string(tls.port()) + "/ok";
  {
    opk::testing::Host plain;  // the system's CAs: the private one is not among them
    for (const char* name : {"platform-records", "job-region-health"})
      ASSERT_TRUE(plain.load(kPlugins + "/" + name + ".so").is_ok()) << name;
    const auto imp =
        plain.request("POST", "/api/v1/records/regions/import", Json::array({region("tls", ok, ok)}).dump(),
                      opk::testing::Principal::administrator(), {{"content-type", "application/json"}});
    ASSERT_EQ(imp.status, 200) << imp.body;
    const RunResult r = plain.run("region-health-refresh");
    const Json out = Json::parse(r.output_json);
    EXPECT_EQ(out["regions"][0]["api"]["ok"], false);
    EXPECT_EQ(out["regions"][0]["api"]["error"].get<std::string>().rfind(
                  "connect localhost:" + std::to_string(tls.port()) + ": TLS: ", 0),
              0u)
        << out["regions"][0]["api"];
  }
  host_.set_setting("ca_file", dir_.file("region.pem"));
  ASSERT_TRUE(load());
  ASSERT_TRUE(regions(Json::array({region("tls", ok, ok)})));
  const RunResult r = host_.run("region-health-refresh");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary << " " << r.output_json;
}

TEST_P(RegionHealthJob, BadInputIsNamed) {
  ASSERT_TRUE(load());
  ASSERT_TRUE(regions(Json::array({region("eu", url("/ok"), url("/ok")), region("us", url("/ok"), url("/ok"))})));
  // An unknown region.
  RunResult r = host_.run("region-health-refresh", R"({"region": "mars"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_TRUE(r.logged("parameter region: no region 'mars' is stored in platform-records")) << r.summary;
  // Parameters the schema refuses, naming the field.
  r = host_.run("region-health-refresh", R"({"timeout_ms": 5})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.error.find("timeout_ms"), std::string::npos) << r.error;
  // A stored region whose URL the job cannot use (written past the import's
  // checks): left out, named with its field, the run a WARNING.
  host_.store_rows("UPDATE p_platform_records_regions SET identity_url = 'ftp://files.example' WHERE id = 'us'");
  r = host_.run("region-health-refresh");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  EXPECT_TRUE(
      r.logged("region us, identity_url: 'ftp://files.example' has the scheme 'ftp' (http or https only); "
               "the region is not probed"));
  EXPECT_EQ(r.summary, "probed 1 regions: 1 healthy, 0 failing, 1 left out for a bad URL");
  // One region only, by parameter.
  r = host_.run("region-health-refresh", R"({"region": "eu"})");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(Json::parse(r.output_json)["regions"].size(), 1u);
}

TEST_P(RegionHealthJob, ARecordingThatFailsEndsTheRunErrorAndSaysWhatWasKept) {
  ASSERT_TRUE(load());
  ASSERT_TRUE(regions(Json::array({region("eu", url("/ok"), url("/ok")), region("us", url("/ok"), url("/ok"))})));
  // platform-records' store refuses the probes (a trigger the test adds
  // behind the plugins' backs): the call is all or nothing.
  refuse_us("p_platform_records_probes");
  const RunResult r = host_.run("region-health-refresh");
  EXPECT_EQ(r.status, OPK_OK);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  const auto* record = step(r, "record");
  ASSERT_NE(record, nullptr);
  EXPECT_EQ(record->outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(r.summary.find("; not recorded: platform-records: "), std::string::npos) << r.summary;
  EXPECT_NE(r.summary.find("(the history has the run's probes; platform-records has 0 of 4)"), std::string::npos)
      << r.summary;
  EXPECT_EQ(count("p_platform_records_probes"), 0);  // not eu's either
  EXPECT_EQ(count("p_job_region_health_history"), 4);
  EXPECT_EQ(step(r, "alerts"), nullptr);  // nothing new to evaluate
  // The history refusing too: nothing at all is recorded.
  refuse_us("p_job_region_health_history");
  host_.clock().advance(60'000);
  const RunResult again = host_.run("region-health-refresh");
  EXPECT_EQ(again.outcome, OPK_OUTCOME_ERROR);
  EXPECT_TRUE(again.logged("(nothing recorded)")) << again.summary;
  EXPECT_EQ(count("p_job_region_health_history"), 4);
}

TEST_P(RegionHealthJobProbes, BadSettingsRefuseThePluginNamingTheKey) {
  ASSERT_TRUE(host_.load(kPlugins + "/platform-records.so").is_ok());
  host_.set_setting("concurrency", "0");
  const Status s = host_.load(kPlugins + "/job-region-health.so");
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("concurrency"), std::string::npos) << s.message();
  opk::testing::Host other;
  ASSERT_TRUE(other.load(kPlugins + "/platform-records.so").is_ok());
  other.set_setting("ca_file", "/nonexistent/ca.pem");
  const Status t = other.load(kPlugins + "/job-region-health.so");
  EXPECT_NE(t.message().find("ca_file = \"/nonexistent/ca.pem\": no such file"), std::string::npos) << t.message();
}

}  // namespace
}  // namespace opk::test
