// usage-collection in a real kernel with platform-records and the admin API,
// against the usage server on 127.0.0.1: the tenant's partner and
// distributor come from the kernel's hierarchy (opk.identity/1 node_path),
// the run's steps and their log lines are recorded for the drill-in, the
// billing lines and commissions are listed through the records API, a
// failing provider fails only its region's step, and a rerun changes
// nothing it wrote.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <fstream>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/servers.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class UsageCollectionKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    const Json data = {{"eu",
                        {{"page_size", 1},
                         {"items",
                          {{{"subscription", "s1"}, {"quantity", 3}, {"cost", 12.5}, {"currency", "EUR"}},
                           {{"subscription", "s2"}, {"quantity", 1}, {"cost", 4}, {"currency", "EUR"}}}}}}};
    std::ofstream(scratch_.file("data.json")) << data.dump();
    ASSERT_EQ(server_.start({OPK_PYTHON3, std::string(OPK_SOURCE_DIR) + "/tests/support/usage-server/usage_server.py",
                             "--data", scratch_.file("data.json")},
                            scratch_.file("server.err")),
              "");
    port_ = test::free_port();
    auto cfg = test::quiet_config(
        dir_, test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("platform-records"),
                                       test::bundled("job-usage-collection")}));
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    cfg.plugins["job-usage-collection"] = {
        {"partner_percent", "10"}, {"distributor_percent", "5"}, {"retries", "1"}, {"retry_backoff", "10ms"}};
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    ASSERT_TRUE(kernel_->identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
    ASSERT_TRUE(kernel_->identity()->issue_token("pat", 0, "test", &admin_));
    auto* id = kernel_->identity();
    ASSERT_TRUE(id->add_node("distributor:d1", "platform", "D1"));
    ASSERT_TRUE(id->add_node("partner:p1", "distributor:d1", "P1"));
    ASSERT_TRUE(id->add_node("tenant:t1", "partner:p1", "T1"));
    for (const char* s : {"subscription:s1", "subscription:s2", "subscription:s3"})
      ASSERT_TRUE(id->add_node(s, "tenant:t1", s));
    regions("/eu", "/fail/us");
    Json subs = Json::array();
    for (auto [sub, region] :
         std::vector<std::pair<const char*, const char*>>{{"s1", "eu"}, {"s2", "eu"}, {"s3", "us"}})
      subs.push_back({{"id", sub},
                      {"tenant", "tenant:t1"},
                      {"product", "mail"},
                      {"status", "active"},
                      {"period_start", "2025-01-01"},
                      {"region", region}});
    auto r = http("POST", "/api/v1/records/subscriptions/import", subs.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }

  test::Reply http(const std::string& method, const std::string& target, const std::string& body = "") {
    return test::http_request(port_, method, target, admin_, body);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(server_.port()) + path; }
  void regions(const std::string& eu, const std::string& us) {
    const Json rows = Json::array({{{"id", "eu"},
                                    {"name", "Europe"},
                                    {"api_url", "https://api.eu.example"},
                                    {"identity_url", "https://id.eu.example"},
                                    {"usage_url", url(eu)}},
                                   {{"id", "us"},
                                    {"name", "America"},
                                    {"api_url", "https://api.us.example"},
                                    {"identity_url", "https://id.us.example"},
                                    {"usage_url", url(us)}}});
    auto r = http("POST", "/api/v1/records/regions/import", rows.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  Json rows(const std::string& kind) {
    auto r = http("GET", "/api/v1/records/" + kind + "?limit=100");
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false).value("rows", Json::array());
  }

  test::ScratchDir scratch_;
  test::ServerProcess server_;
  test::TempDir dir_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_;
};

TEST_F(UsageCollectionKernel, CollectsBillsAndPaysTheTenantsPartnerAndDistributor) {
  jobs::RunView v = test::run_and_wait(*kernel_, test::manual("usage-collection", R"({"month": "2025-11"})"));
  EXPECT_EQ(v.row.outcome, "ERROR") << v.row.summary;  // us fails
  std::vector<std::string> steps;
  for (const auto& s : v.steps) steps.push_back(s.step_id);
  EXPECT_EQ(steps, (std::vector<std::string>{"read-records", "collect-usage: eu", "collect-usage: us",
                                             "generate-billing", "generate-commissions"}));
  EXPECT_EQ(v.steps[1].outcome, "NORMAL") << v.steps[1].summary;
  EXPECT_EQ(v.steps[2].outcome, "ERROR");
  EXPECT_NE(v.steps[2].summary.find("/fail/us: HTTP 500 Internal Server Error"), std::string::npos)
      << v.steps[2].summary;
  // The drill-in's log lines, each in its step.
  bool eu_page = false, us_retry = false;
  for (const auto& l : v.logs) {
    eu_page |= l.step == "collect-usage: eu" && l.message.find("region eu, page 2: 1 item of 1 stored") == 0;
    us_retry |= l.step == "collect-usage: us" && l.message.find("retrying in 10 ms") != std::string::npos;
  }
  EXPECT_TRUE(eu_page);
  EXPECT_TRUE(us_retry);

  const Json lines = rows("billing_lines");
  ASSERT_EQ(lines.size(), 2u) << lines.dump();
  EXPECT_EQ(lines[0]["subscription"], "s1");
  EXPECT_EQ(lines[0]["month"], "2025-11");
  EXPECT_EQ(lines[0]["amount"], 12.5);
  EXPECT_EQ(lines[0]["currency"], "EUR");
  const Json commissions = rows("commissions");
  ASSERT_EQ(commissions.size(), 4u) << commissions.dump();
  EXPECT_EQ(commissions[0]["role"], "distributor");  // key order: (s1, 2025-11, distributor)
  EXPECT_EQ(commissions[0]["party"], "distributor:d1");
  EXPECT_EQ(commissions[0]["amount"], 0.63);
  EXPECT_EQ(commissions[1]["party"], "partner:p1");
  EXPECT_EQ(commissions[1]["amount"], 1.25);

  // The rerun, with the us provider back: no doubles, the same lines.
  regions("/eu", "/us");
  v = test::run_and_wait(*kernel_, test::manual("usage-collection", R"({"month": "2025-11"})"));
  EXPECT_EQ(v.row.outcome, "NORMAL") << v.row.summary;
  EXPECT_EQ(rows("usage").size(), 2u);  // the us provider has nothing for s3
  EXPECT_EQ(rows("billing_lines").size(), 2u);
  EXPECT_EQ(rows("commissions").size(), 4u);
}

}  // namespace
}  // namespace opk
