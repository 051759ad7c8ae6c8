// The tenants' maintenance windows in a real kernel (admin-http and
// maintenance-mode): a read-only tenant's writes refused with 503, the
// banner in the problem and Retry-After, its reads served; an offline
// tenant's every request refused; PlatformAdministrators, the
// administrators above the tenant and other tenants unaffected; the
// refusals gone once the window is ended early; the role x action matrix of
// every route under the kernel's default permissions and [permissions]
// grants, audit rows through the kernel's audit API; the OpenAPI document
// through Redocly's linter; and the scheduler on the kernel's test clock: a
// tenant's scheduled runs skipped and recorded as skipped while its window
// lasts, run before and after it, another tenant's run throughout.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "clock/clock.h"
#include "plugins/admin-http/http_client.h"
#include "support/admin_feature.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class MaintenanceKernel : public test::FeatureKernelTest<> {
 protected:
  void SetUp() override { configure({test::bundled("maintenance-mode")}); }

  // The shared users, and uma, administrator of tenant:u beside tenant:t.
  void start() {
    ASSERT_NO_FATAL_FAILURE(FeatureKernelTest::start());
    auto* id = kernel_->identity();
    ASSERT_TRUE(id->add_node("tenant:u", "partner:p", "u"));
    ASSERT_TRUE(id->add_user({"uma", "", "TenantAdministrator", "tenant:u"}));
    ASSERT_TRUE(id->issue_token("uma", 0, "test", &tokens_["uma"]));
  }

  // Puts tenant:t into `mode` maintenance for an hour; the window's id.
  std::string put_in_maintenance(const std::string& mode, const std::string& banner) {
    auto r =
        http("POST", "/api/v1/maintenance",
             {{"tenant", "tenant:t"}, {"mode", mode}, {"banner", banner}, {"reason", "CHG-7"}, {"duration", "1h"}});
    EXPECT_EQ(r.status, 201) << r.body;
    return json(r)["window"].value("id", "");
  }

  // A write every administrator may attempt: a custom alert (refused with
  // 422 for its empty body when nothing else refuses it first).
  test::Reply write_as(const std::string& user) { return http("POST", "/api/v1/alerts", Json::object(), user); }
};

TEST_F(MaintenanceKernel, ReadOnlyRefusesTheTenantsWritesAndServesItsReads) {
  ASSERT_NO_FATAL_FAILURE(start());
  for (const char* user : {"tess", "uma", "pat"}) EXPECT_EQ(write_as(user).status, 422) << user << " before";
  const std::string id = put_in_maintenance("read-only", "Upgrade until 15:00 UTC");

  auto r = write_as("tess");
  ASSERT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.head.getContentType(), "application/problem+json");
  const Json problem = json(r);
  EXPECT_EQ(problem["status"], 503);
  EXPECT_EQ(problem["detail"], "tenant:t is read-only for maintenance: Upgrade until 15:00 UTC");
  EXPECT_EQ(problem["maintenance"]["banner"], "Upgrade until 15:00 UTC");
  EXPECT_EQ(problem["maintenance"]["mode"], "read-only");
  EXPECT_EQ(problem["maintenance"]["tenant"], "tenant:t");
  EXPECT_EQ(problem["maintenance"]["window_id"], id);
  const int retry = std::stoi(r.head.get("Retry-After", "0"));
  EXPECT_GE(retry, 3500);
  EXPECT_LE(retry, 3600);
  EXPECT_EQ(http("PATCH", "/api/v1/jobs/x", Json{{"enabled", false}}, "ursula").status, 503);
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/x", nullptr, "ursula").status, 503);

  // The tenant's reads are served, its banner among them.
  EXPECT_EQ(http("GET", "/api/v1/jobs", nullptr, "tess").status, 200);
  EXPECT_EQ(http("GET", "/api/v1/runs", nullptr, "ursula").status, 200);
  // A read that takes a body (the marks do not fit in an address).
  EXPECT_EQ(http("POST", "/api/v1/failure-groups", Json{{"since_ms", 0}}, "ursula").status, 200);
  r = http("GET", "/api/v1/maintenance/current", nullptr, "ursula");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["maintenance"]["banner"], "Upgrade until 15:00 UTC");

  // Others write as before: another tenant, the administrators above it,
  // the platform's.
  for (const char* user : {"uma", "paul", "dora", "pat"}) EXPECT_EQ(write_as(user).status, 422) << user << " during";
  EXPECT_EQ(json(http("GET", "/api/v1/maintenance/current", nullptr, "uma"))["maintenance"], nullptr);

  // Ended early: the tenant writes again, at once.
  ASSERT_EQ(http("DELETE", "/api/v1/maintenance/" + id + "?reason=done").status, 204);
  EXPECT_EQ(write_as("tess").status, 422);
}

TEST_F(MaintenanceKernel, OfflineRefusesEveryRequestOfTheTenantButNotThePlatformAdministrators) {
  ASSERT_NO_FATAL_FAILURE(start());
  put_in_maintenance("offline", "We are moving data centres");
  for (const auto& [method, target] : {std::pair{"GET", "/api/v1/jobs"},
                                       {"GET", "/api/v1/maintenance/current"},
                                       {"GET", "/api/v1/no-such-route"},
                                       {"POST", "/api/v1/alerts"}}) {
    for (const char* user : {"tess", "ursula"}) {
      auto r = http(method, target, std::string(method) == "POST" ? Json::object() : Json(), user);
      ASSERT_EQ(r.status, 503) << user << " " << method << " " << target << " " << r.body;
      EXPECT_EQ(json(r)["maintenance"]["banner"], "We are moving data centres");
      EXPECT_EQ(json(r)["maintenance"]["mode"], "offline");
      EXPECT_EQ(json(r)["detail"], "tenant:t is offline for maintenance: We are moving data centres");
    }
  }
  // Unaffected: the platform's administrator, those above the tenant,
  // another tenant; and a request without a token is judged as before.
  for (const char* user : {"pat", "dora", "paul", "uma"})
    EXPECT_EQ(http("GET", "/api/v1/jobs", nullptr, user).status, 200) << user;
  EXPECT_EQ(http("GET", "/api/v1/jobs", nullptr, "nobody").status, 401);
  EXPECT_EQ(http("GET", "/healthz", nullptr, "nobody").status, 200);
}

TEST_F(MaintenanceKernel, RoleByActionMatrixOfEveryRoute) {
  // The defaults give the windows to platform administrators only (*); the
  // file may grant them: a partner administrator reads, a distributor
  // administrator manages. Everyone reads their own banner.
  cfg_.permissions["DistributorAdministrator"] = {"jobs.read", "maintenance.read", "maintenance.manage"};
  cfg_.permissions["PartnerAdministrator"] = {"jobs.read", "maintenance.read"};
  ASSERT_NO_FATAL_FAILURE(start());
  const std::map<std::string, std::pair<bool, bool>> may = {// user -> (read, manage)
                                                            {"pat", {true, true}},
                                                            {"dora", {true, true}},
                                                            {"paul", {true, false}},
                                                            {"uma", {false, false}},
                                                            {"ursula", {false, false}}};
  for (const auto& [user, rights] : may) {
    const auto [read, manage] = rights;
    // Windows on tenant:u (uma's), ended at once, so none refuses the
    // requests that follow.
    const Json body = {
        {"tenant", "tenant:u"}, {"mode", "read-only"}, {"banner", "b"}, {"reason", "r"}, {"starts_ms", 4102444800000}};
    auto made = http("POST", "/api/v1/maintenance", body);
    ASSERT_EQ(made.status, 201) << made.body;
    const std::string id = json(made)["window"]["id"];
    struct Step {
      std::string method, target;
      Json body;
      int right;  // 0: any caller, 1: read, 2: manage
      int ok;
    };
    for (const Step& s : {
             Step{"GET", "/api/v1/maintenance", nullptr, 1, 200},
             Step{"GET", "/api/v1/maintenance/" + id, nullptr, 1, 200},
             Step{"GET", "/api/v1/maintenance/current", nullptr, 0, 200},
             Step{"POST", "/api/v1/maintenance", body, 2, 201},
             Step{"DELETE", "/api/v1/maintenance/" + id + "?reason=r", nullptr, 2, 204},
         }) {
      const bool allowed = s.right == 0 || (s.right == 1 ? read : manage);
      auto r = http(s.method, s.target, s.body, user);
      EXPECT_EQ(r.status, allowed ? s.ok : 403) << user << " " << s.method << " " << s.target << " " << r.body;
    }
    EXPECT_EQ(http("GET", "/api/v1/maintenance", nullptr, "nobody").status, 401) << "no token";
    EXPECT_EQ(http("GET", "/api/v1/maintenance/current", nullptr, "nobody").status, 401) << "no token";
  }
  auto r = http("GET", "/api/v1/audit?action=maintenance.create&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> actors;
  const Json creates = json(r);
  for (const auto& row : creates["items"]) actors.insert(row.value("actor", ""));
  EXPECT_EQ(actors, (std::set<std::string>{"pat", "dora"})) << r.body;
  r = http("GET", "/api/v1/audit?action=maintenance.end&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["items"].size(), 2u) << r.body;
  r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  const Json doc = json(r);
  EXPECT_EQ(doc["paths"]["/api/v1/maintenance/{id}"]["delete"]["x-permission"], "maintenance.manage");
  EXPECT_EQ(doc["paths"]["/api/v1/maintenance"]["get"]["x-permission"], "maintenance.read");
  EXPECT_EQ(doc["paths"]["/api/v1/maintenance"]["post"]["x-permission"], "maintenance.manage");
}

// The document with the windows' routes passes Redocly's linter
// (tests/plugins/admin-http/openapi-lint, as admin_http_test.cpp runs it)
// without an error or a warning.
TEST_F(MaintenanceKernel, TheOpenApiDocumentWithTheWindowsPassesTheLinter) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  ASSERT_NE(r.body.find("/api/v1/maintenance/current"), std::string::npos);
  test::expect_openapi_lints_clean(r.body, dir_.path());
}

constexpr int64_t kMntStart = 1'767'225'601'000;  // 2026-01-01T00:00:01Z

TEST(MaintenanceScheduler, ATenantsScheduledRunsAreSkippedAndRecordedWhileItsWindowLasts) {
  clock::ScopedManualClock manual(kMntStart);
  test::TempDir dir;
  const std::string plugins = test::plugins_dir(
      dir, {test::bundled("admin-http"), test::bundled("maintenance-mode"), test::fixture("engine_jobs")});
  config::Config cfg = test::quiet_config(dir, plugins);
  const int port = test::free_port();
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  cfg.log.console = false;
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  ASSERT_TRUE(k.identity()->add_node("distributor:d", "platform", "d"));
  ASSERT_TRUE(k.identity()->add_node("partner:p", "distributor:d", "p"));
  ASSERT_TRUE(k.identity()->add_node("tenant:t", "partner:p", "t"));
  ASSERT_TRUE(k.identity()->add_node("tenant:u", "partner:p", "u"));
  ASSERT_TRUE(k.identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
  std::string token;
  ASSERT_TRUE(k.identity()->issue_token("pat", 0, "test", &token));
  // Every minute, one job for each tenant.
  for (const char* tenant : {"t", "u"}) {
    store::ScheduledJob j;
    j.id = std::string("minutely-") + tenant;
    j.job_type = "scheduled-only";
    j.planning = "scheduled";
    j.cron = "* * * * *";
    j.scope = std::string("tenant:") + tenant;
    ASSERT_TRUE(k.engine()->define_job(j, test::operator_actor()));
  }
  // tenant:t is read-only from 00:01:30 to 00:03:30: the slots of 00:02 and
  // 00:03 fall in it; those of 00:01 and 00:04 do not.
  const int64_t minute = 60'000, t0 = kMntStart - 1000;
  auto r = test::http_request(port, "POST", "/api/v1/maintenance", token,
                              Json{{"tenant", "tenant:t"},
                                   {"mode", "read-only"},
                                   {"banner", "Ledger migration"},
                                   {"reason", "CHG-9"},
                                   {"starts_ms", t0 + 90'000},
                                   {"ends_ms", t0 + 210'000}}
                                  .dump());
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string window = Json::parse(r.body)["window"]["id"];

  const auto runs_of = [&](const std::string& job) {
    store::RunFilter f;
    f.scheduled_job_id = job;
    f.limit = 100;
    auto rows = k.store()->list_runs(f).value();
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.slot_ms < b.slot_ms; });
    return rows;
  };
  const auto all_done = [&](const std::string& job, size_t n) {
    const auto rows = runs_of(job);
    return rows.size() == n &&
           std::all_of(rows.begin(), rows.end(), [](const store::RunRow& x) { return x.phase == store::kCompleted; });
  };
  for (int m = 1; m <= 4; ++m) {
    manual->set(t0 + m * minute + 1000);
    ASSERT_TRUE(test::within([&] { return all_done("minutely-t", m) && all_done("minutely-u", m); }, 20000))
        << "minute " << m << ": " << runs_of("minutely-t").size() << " and " << runs_of("minutely-u").size() << " runs";
  }
  const auto t = runs_of("minutely-t"), u = runs_of("minutely-u");
  for (int m = 1; m <= 4; ++m) {
    const store::RunRow& x = t[static_cast<size_t>(m - 1)];
    EXPECT_EQ(x.slot_ms, t0 + m * minute);
    EXPECT_EQ(x.trigger, "schedule");
    EXPECT_EQ(u[static_cast<size_t>(m - 1)].outcome, store::kNormal) << "another tenant's run, minute " << m;
    if (m == 2 || m == 3) {
      EXPECT_EQ(x.outcome, "SKIPPED") << "minute " << m;
      EXPECT_EQ(store::run_status(x.phase, x.outcome, x.cancelled_by), "skipped");
      EXPECT_EQ(x.started_ms, 0) << "never started";
      EXPECT_EQ(x.summary, "maintenance-mode: tenant:t is in read-only maintenance until " +
                               std::to_string(t0 + 210'000) + " ms (window " + window + "): Ledger migration");
    } else {
      EXPECT_EQ(x.outcome, store::kNormal) << "minute " << m;
      EXPECT_GT(x.started_ms, 0);
    }
  }
  // The operator sees the skipped slots and why, through the admin API.
  r = test::http_request(port, "GET", "/api/v1/runs?job_id=minutely-t", token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"skipped\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("Ledger migration"), std::string::npos) << r.body;
  r = test::http_request(port, "GET", "/api/v1/runs?job_id=minutely-t&status=skipped", token);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json skipped = Json::parse(r.body)["items"];
  ASSERT_EQ(skipped.size(), 2u) << r.body;
  for (const auto& run : skipped) EXPECT_EQ(run["status"], "skipped");
  r = test::http_request(port, "GET", "/api/v1/runs?job_id=minutely-t&status=error", token);
  EXPECT_EQ(Json::parse(r.body)["items"].size(), 0u) << "a skipped slot is no failure: " << r.body;
  k.stop();
}

}  // namespace
}  // namespace opk
