// region-health-refresh in a real kernel with platform-records, the two
// health alert sources and the admin API: a run probes the region server,
// then has the kernel evaluate alerts.region-health and
// alerts.identity-health at once (opk.jobs/1 run_now as its system
// identity); their alerts open on the failing endpoints and close as
// cleared after the next run finds them healthy.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/servers.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class RegionHealthKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(
        server_.start({OPK_PYTHON3, std::string(OPK_SOURCE_DIR) + "/tests/support/region-server/region_server.py"},
                      scratch_.file("server.err")),
        "");
    port_ = test::free_port();
    auto cfg = test::quiet_config(
        dir_, test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("platform-records"),
                                       test::bundled("alert-region-health"), test::bundled("alert-identity-health"),
                                       test::bundled("job-region-health")}));
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    ASSERT_TRUE(kernel_->identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
    ASSERT_TRUE(kernel_->identity()->issue_token("pat", 0, "test", &admin_));
  }

  test::Reply http(const std::string& method, const std::string& target, const std::string& body = "") {
    return test::http_request(port_, method, target, admin_, body);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(server_.port()) + path; }
  void regions(const std::string& eu_api, const std::string& eu_identity) {
    const Json rows =
        Json::array({{{"id", "eu"}, {"name", "Europe"}, {"api_url", url(eu_api)}, {"identity_url", url(eu_identity)}},
                     {{"id", "us"}, {"name", "America"}, {"api_url", url("/ok")}, {"identity_url", url("/ok")}}});
    auto r = http("POST", "/api/v1/records/regions/import", rows.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // Runs the job, then waits for the two evaluations it started.
  jobs::RunView refresh() {
    jobs::RunView v = test::run_and_wait(*kernel_, test::manual("region-health-refresh"));
    const Json out = Json::parse(v.row.output_json, nullptr, false);
    for (const char* job : {"alerts.region-health", "alerts.identity-health"}) {
      const Json id = out.is_object() ? out["alert_evaluations"].value(job, Json()) : Json();
      EXPECT_TRUE(id.is_number_integer()) << job << " not started: " << v.row.output_json;
      if (id.is_number_integer()) {
        EXPECT_TRUE(kernel_->engine()->wait(id.get<int64_t>(), 20000)) << job;
      }
    }
    return v;
  }
  Json alerts(const std::string& query) {
    auto r = http("GET", "/api/v1/alerts?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false).value("alerts", Json::array());
  }

  test::ScratchDir scratch_;
  test::ServerProcess server_;
  test::TempDir dir_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_;
};

TEST_F(RegionHealthKernel, ARunOpensAndTheNextClearsTheHealthAlerts) {
  regions("/fail", "/malformed");
  jobs::RunView v = refresh();
  EXPECT_EQ(v.row.outcome, "WARNING") << v.row.summary;
  EXPECT_EQ(v.row.summary, "probed 2 regions: 1 healthy, 1 failing (1 malformed answers)");
  std::vector<std::string> steps;
  for (const auto& s : v.steps) steps.push_back(s.step_id);
  EXPECT_EQ(steps, (std::vector<std::string>{"regions", "probe", "region eu", "region us", "record", "alerts"}));

  Json api = alerts("source=region-health");
  ASSERT_EQ(api.size(), 1u) << api.dump();
  EXPECT_EQ(api[0]["related_id"], "eu");
  EXPECT_EQ(api[0]["severity"], "critical");
  EXPECT_NE(api[0]["message"].get<std::string>().find("HTTP 503"), std::string::npos) << api[0];
  Json idp = alerts("source=identity-health");
  ASSERT_EQ(idp.size(), 1u) << idp.dump();
  EXPECT_EQ(idp[0]["related_id"], "eu");
  EXPECT_NE(idp[0]["message"].get<std::string>().find("not JSON"), std::string::npos) << idp[0];

  regions("/ok", "/ok");
  v = refresh();
  EXPECT_EQ(v.row.outcome, "NORMAL") << v.row.summary;
  EXPECT_TRUE(alerts("source=region-health").empty());
  EXPECT_TRUE(alerts("source=identity-health").empty());
  Json closed = alerts("source=region-health&status=closed");
  ASSERT_EQ(closed.size(), 1u) << closed.dump();
  EXPECT_EQ(closed[0]["close_kind"], "cleared");
}

}  // namespace
}  // namespace opk
