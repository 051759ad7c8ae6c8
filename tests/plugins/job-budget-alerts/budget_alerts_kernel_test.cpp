// budget-alerts in a real kernel with platform-records, the cost alert
// source and the admin API: a run emits one notice per budget and
// threshold into the kernel's event log, a second run emits none (the
// log's idempotency key), and each run has the kernel evaluate
// alerts.cost, whose alert on the last closed month opens, then closes as
// cleared once that month's cost is back within the budget.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

// "YYYY-MM" of the current month (UTC) `back` months earlier.
std::string month(int back) {
  using namespace std::chrono;
  const year_month_day d{floor<days>(system_clock::now())};
  const year_month ym = year_month(d.year(), d.month()) - months(back);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(ym.year()), static_cast<unsigned>(ym.month()));
  return buf;
}

class BudgetAlertsKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = test::free_port();
    auto cfg = test::quiet_config(
        dir_, test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("platform-records"),
                                       test::bundled("alert-cost"), test::bundled("job-budget-alerts")}));
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    auto* id = kernel_->identity();
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"subscription:s1", "tenant:t1"}})
      ASSERT_TRUE(id->add_node(n, p, ""));
    ASSERT_TRUE(id->add_user({"pat", "", "PlatformAdministrator", "platform"}));
    ASSERT_TRUE(id->issue_token("pat", 0, "test", &admin_));
    import("subscriptions", Json::array(
                                {{ {"id", "s1"},
                                   {"tenant", "tenant:t1"},
                                   {"product", "mail"},
                                   {"status", "active"},
                                   { "period_start",
                                     "2020-01-01" } }}));
    import("budgets", Json::array(
                          {{ {"id", "b1"},
                             {"tenant", "tenant:t1"},
                             {"subscription", "s1"},
                             {"amount", 1000},
                             { "warning_percent",
                               80 } }}));
  }
  void TearDown() override { kernel_->stop(); }

  test::Reply http(const std::string& method, const std::string& target, const std::string& body = "") {
    return test::http_request(port_, method, target, admin_, body);
  }
  void import(const std::string& kind, const Json& rows) {
    auto r = http("POST", "/api/v1/records/" + kind + "/import", rows.dump());
    ASSERT_EQ(r.status, 200) << kind << ": " << r.body;
  }
  void usage(const std::string& m, double cost) {
    import("usage", Json::array({{ {"subscription", "s1"}, {"month", m}, {"quantity", 1}, { "cost", cost } }}));
  }
  // Runs budget-alerts, then waits for the cost evaluation it started.
  Json run() {
    jobs::RunView v = test::run_and_wait(*kernel_, test::manual("budget-alerts"));
    EXPECT_EQ(v.row.outcome, "NORMAL") << v.row.summary;
    const Json out = Json::parse(v.row.output_json, nullptr, false);
    const Json id = out.is_object() ? out.value("alert_evaluation", Json()) : Json();
    EXPECT_TRUE(id.is_number_integer()) << "alerts.cost not started: " << v.row.output_json;
    if (id.is_number_integer()) {
      EXPECT_TRUE(kernel_->engine()->wait(id.get<int64_t>(), 20000));
    }
    return out;
  }
  // The plugin's events in the kernel's log.
  std::vector<store::EventRow> notices() {
    std::vector<store::EventRow> out;
    for (const auto& e : kernel_->store()->events_after(0, 100000).value())
      if (e.kind.rfind("plugin.job-budget-alerts.", 0) == 0) out.push_back(e);
    return out;
  }
  Json alerts(const std::string& query) {
    auto r = http("GET", "/api/v1/alerts?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false).value("alerts", Json::array());
  }

  test::TempDir dir_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_;
};

TEST_F(BudgetAlertsKernel, OneNoticePerThresholdAndTheCostAlertFollowsEachRun) {
  usage(month(0), 850);   // this month: a warning notice
  usage(month(1), 1200);  // the last closed month: a critical cost alert
  Json out = run();
  EXPECT_EQ(out["notices"]["sent"], 1) << out.dump();
  auto sent = notices();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].kind, "plugin.job-budget-alerts.budget.warning");
  EXPECT_EQ(sent[0].scope, "tenant:t1");
  EXPECT_EQ(sent[0].subject, "budget:b1");
  const Json payload = Json::parse(sent[0].payload_json);
  EXPECT_EQ(payload["spent"], 850.0);
  EXPECT_EQ(payload["period"], month(0));
  Json cost = alerts("source=cost");
  ASSERT_EQ(cost.size(), 1u) << cost.dump();
  EXPECT_EQ(cost[0]["related_id"], "b1");
  EXPECT_EQ(cost[0]["severity"], "critical");

  // The rerun: the key keeps the notice to one; the alert stays.
  out = run();
  EXPECT_EQ(out["notices"]["sent"], 0) << out.dump();
  EXPECT_EQ(out["notices"]["already_sent"], 1) << out.dump();
  EXPECT_EQ(notices().size(), 1u);
  EXPECT_EQ(alerts("source=cost").size(), 1u);

  // The closed month's cost corrected down: the alert closes as cleared.
  usage(month(1), 500);
  run();
  EXPECT_TRUE(alerts("source=cost").empty());
  Json closed = alerts("source=cost&status=closed");
  ASSERT_EQ(closed.size(), 1u) << closed.dump();
  EXPECT_EQ(closed[0]["close_kind"], "cleared");
  EXPECT_EQ(notices().size(), 1u);
}

}  // namespace
}  // namespace opk
