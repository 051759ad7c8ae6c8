// Two alert sources in a real kernel with platform-records behind the admin
// API, over HTTP: records imported, the sources' scheduled jobs
// alerts.<source> run now, the alerts seen through GET /api/v1/alerts; a
// fixed record closes its alert as cleared on the next run; the expired
// license's alert is critical, escalated once and platform-only.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

// "YYYY-MM-DD" of today (UTC) plus `days`.
std::string day(int days) {
  using namespace std::chrono;
  const year_month_day d{floor<std::chrono::days>(system_clock::now()) + std::chrono::days(days)};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return buf;
}

class AlertSourcesKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = test::free_port();
    auto cfg = test::quiet_config(
        dir_,
        test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("platform-records"),
                                 test::bundled("alert-missing-billing"), test::bundled("alert-license-validity")}));
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    auto* id = kernel_->identity();
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"tenant:t2", "partner:p1"},
                                                                        {"subscription:s1", "tenant:t1"},
                                                                        {"subscription:s2", "tenant:t2"}})
      ASSERT_TRUE(id->add_node(n, p, ""));
    ASSERT_TRUE(id->add_user({"pat", "", "PlatformAdministrator", "platform"}));
    ASSERT_TRUE(id->issue_token("pat", 0, "test", &admin_));
    ASSERT_TRUE(id->add_user({"ted", "", "TenantAdministrator", "tenant:t2"}));
    ASSERT_TRUE(id->issue_token("ted", 0, "test", &tenant_admin_));
  }

  test::Reply http(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::string& token = "") {
    return test::http_request(port_, method, target, token.empty() ? admin_ : token, body);
  }

  void import(const std::string& kind, const Json& rows) {
    auto r = http("POST", "/api/v1/records/" + kind + "/import", rows.dump());
    ASSERT_EQ(r.status, 200) << kind << ": " << r.body;
  }

  // Runs the scheduled job alerts.<source> now and waits for its run.
  void run(const std::string& source) {
    auto r = http("POST", "/api/v1/jobs/alerts." + source + "/run", R"({"reason":"check the records"})");
    ASSERT_EQ(r.status, 202) << r.body;
    const Json ids = Json::parse(r.body).value("run_ids", Json::array());
    const int64_t run_id = ids.size() == 1 && ids[0].is_number_integer() ? ids[0].get<int64_t>() : 0;
    ASSERT_GT(run_id, 0) << r.body;
    ASSERT_TRUE(kernel_->engine()->wait(run_id, 20000)) << "run " << run_id << " of alerts." << source;
    auto v = http("GET", "/api/v1/runs/" + std::to_string(run_id));
    ASSERT_EQ(v.status, 200) << v.body;
    EXPECT_EQ(Json::parse(v.body)["run"].value("status", ""), "normal") << v.body;
    log_ = http("GET", "/api/v1/runs/" + std::to_string(run_id) + "/log").body;
  }

  Json alerts(const std::string& query, const std::string& token = "") {
    auto r = http("GET", "/api/v1/alerts?" + query, "", token);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false).value("alerts", Json::array());
  }

  test::TempDir dir_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_, tenant_admin_;
  std::string log_;  // the last run's log, as the API answers it
};

TEST_F(AlertSourcesKernel, MissingBillingOpensThenClearsThroughTheJob) {
  import("subscriptions", Json::array({{{"id", "s1"},
                                        {"tenant", "tenant:t1"},
                                        {"product", "mail"},
                                        {"status", "active"},
                                        { "period_start",
                                          "2026-01-01" }},
                                       { {"id", "s2"},
                                         {"tenant", "tenant:t2"},
                                         {"product", "mail"},
                                         {"status", "active"},
                                         { "period_start",
                                           "2026-01-01" } }}));
  import("billing", Json::array({{ {"tenant", "tenant:t1"}, {"contact", "Accounts"}, { "email", "ap@t1.example" } }}));
  run("missing-billing");
  EXPECT_NE(log_.find("checked 2 tenants with an active subscription, 1 without a billing record"), std::string::npos)
      << log_;
  Json open = alerts("source=missing-billing");
  ASSERT_EQ(open.size(), 1u) << open.dump();
  EXPECT_EQ(open[0]["related_type"], "tenant");
  EXPECT_EQ(open[0]["related_id"], "t2");
  EXPECT_EQ(open[0]["scope"], "tenant:t2");
  EXPECT_EQ(open[0]["severity"], "warning");
  EXPECT_EQ(open[0]["status"], "open");
  EXPECT_EQ(open[0]["title"], "Tenant t2 has no billing record");
  // t2's administrator sees it (a tenant alert within their tenant).
  EXPECT_EQ(alerts("source=missing-billing", tenant_admin_).size(), 1u);

  import("billing", Json::array({{ {"tenant", "tenant:t2"}, {"contact", "Accounts"}, { "email", "ap@t2.example" } }}));
  run("missing-billing");
  EXPECT_TRUE(alerts("source=missing-billing").empty());
  Json closed = alerts("source=missing-billing&status=closed");
  ASSERT_EQ(closed.size(), 1u) << closed.dump();
  EXPECT_EQ(closed[0]["close_kind"], "cleared");
  EXPECT_EQ(closed[0]["closed_by"], "system:alert-missing-billing");
}

TEST_F(AlertSourcesKernel, AnExpiredLicenseIsCriticalEscalatedOnceAndPlatformOnly) {
  import("licenses", Json::array({{{"id", "core"},
                                   {"product", "Opskernel"},
                                   { "expires_on",
                                     day(10) }},
                                  {{"id", "edge"},
                                   {"product", "Edge"},
                                   { "expires_on",
                                     day(-5) }},
                                  { {"id", "far"},
                                    {"product", "Far"},
                                    { "expires_on",
                                      day(200) } }}));
  run("license-validity");
  run("license-validity");
  Json open = alerts("source=license-validity&sort=severity");
  ASSERT_EQ(open.size(), 2u) << open.dump();
  const Json& edge = open[0]["related_id"] == "edge" ? open[0] : open[1];
  const Json& core = open[0]["related_id"] == "core" ? open[0] : open[1];
  EXPECT_EQ(edge["severity"], "critical");
  EXPECT_EQ(edge["status"], "escalated");
  EXPECT_EQ(edge["escalation_level"], 1);
  EXPECT_EQ(edge["platform_only"], true);
  EXPECT_EQ(edge["scope"], "platform");
  EXPECT_EQ(core["severity"], "warning");
  EXPECT_EQ(core["status"], "open");
  EXPECT_EQ(core["occurrences"], 2);
  // Platform-only: a tenant administrator does not see them.
  EXPECT_TRUE(alerts("source=license-validity", tenant_admin_).empty());
}

}  // namespace
}  // namespace opk
