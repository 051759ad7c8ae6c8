// budget-alerts' notices through the notification rules in a real kernel:
// a rule on plugin.job-budget-alerts.* delivers the warning to the Standard
// Webhooks receiver (tests/support/webhook-receiver) once, with the
// budget's payload; a rerun and a run after a restart of the kernel on the
// same store emit nothing more, so nothing more is delivered.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "support/webhook_kernel.h"

namespace opk {
namespace {

using Json = nlohmann::json;

// "YYYY-MM" of the current month (UTC).
std::string this_month() {
  using namespace std::chrono;
  const year_month_day d{floor<days>(system_clock::now())};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()));
  return buf;
}

class BudgetNotices : public test::WebhookKernelTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        set_up({test::bundled("admin-http"), test::bundled("platform-records"), test::bundled("alert-cost"),
                test::bundled("job-budget-alerts"), test::bundled("channel-webhook"), test::bundled("notifications")}));
    cfg_.plugins["job-budget-alerts"] = {{"evaluate_alerts", "false"}};
    ASSERT_NO_FATAL_FAILURE(start());
    auto* id = kernel_->identity();
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"subscription:s1", "tenant:t1"}})
      ASSERT_TRUE(id->add_node(n, p, ""));
    import("subscriptions", Json::array(
                                {{ {"id", "s1"},
                                   {"tenant", "tenant:t1"},
                                   {"product", "mail"},
                                   {"status", "active"},
                                   { "period_start",
                                     "2020-01-01" } }}));
    import("budgets", Json::array({{ {"id", "b1"}, {"tenant", "tenant:t1"}, { "amount", 1000 } }}));
    import("usage", Json::array(
                        {{ {"subscription", "s1"},
                           {"month", this_month()},
                           {"quantity", 1},
                           { "cost",
                             900 } }}));
    auto r =
        http("POST", "/api/v1/notifications/groups", {{"id", "finance"}, {"name", "Finance"}, {"scope", "platform"}});
    ASSERT_EQ(r.status, 201) << r.body;
    r = http("POST", "/api/v1/notifications/groups/finance/rules",
             {{"events", {"plugin.job-budget-alerts.*"}},
              {"channel", "webhook"},
              {"recipients", {{{"to", url("/budgets")}, {"options", {{"secrets", {kSecret}}}}}}}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  test::Reply http(const std::string& method, const std::string& target, const Json& body = nullptr) {
    return test::http_request(port_, method, target, admin_, body.is_null() ? "" : body.dump());
  }
  void import(const std::string& kind, const Json& rows) {
    auto r = http("POST", "/api/v1/records/" + kind + "/import", rows);
    ASSERT_EQ(r.status, 200) << kind << ": " << r.body;
  }
  Json run() {
    jobs::RunView v = test::run_and_wait(*kernel_, test::manual("budget-alerts"));
    EXPECT_EQ(v.row.outcome, "NORMAL") << v.row.summary;
    return Json::parse(v.row.output_json, nullptr, false);
  }
  size_t notices() {
    size_t n = 0;
    for (const auto& e : kernel_->store()->events_after(0, 100000).value())
      n += e.kind.rfind("plugin.job-budget-alerts.", 0) == 0 ? 1 : 0;
    return n;
  }
  Json deliveries() {
    auto r = http("GET", "/api/v1/notifications/deliveries");
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false).value("deliveries", Json::array());
  }
};

TEST_F(BudgetNotices, TheWarningIsDeliveredOnceAcrossRerunsAndARestart) {
  EXPECT_EQ(run()["notices"]["sent"], 1);
  ASSERT_TRUE(eventually([&] { return received(requests_).size() >= 1; })) << receiver_.errors();
  const auto got = received(requests_);
  ASSERT_EQ(got.size(), 1u);
  const Json body = Json::parse(got[0]["body"].get<std::string>());
  EXPECT_EQ(body["type"], "plugin.job-budget-alerts.budget.warning");
  EXPECT_EQ(body["data"]["budget"]["id"], "b1");
  EXPECT_EQ(body["data"]["spent"], 900.0);
  EXPECT_EQ(body["data"]["percent"], 90.0);
  EXPECT_EQ(body["data"]["period"], this_month());

  EXPECT_EQ(run()["notices"]["already_sent"], 1);
  kernel_->stop();
  kernel_.reset();
  ASSERT_NO_FATAL_FAILURE(start());
  EXPECT_EQ(run()["notices"]["already_sent"], 1);
  // One event in the log, so one delivery: nothing is left to deliver.
  EXPECT_EQ(notices(), 1u);
  ASSERT_TRUE(eventually([&] {
    const Json d = deliveries();
    return d.size() == 1 && d[0].value("state", "") == "delivered";
  })) << deliveries().dump();
  EXPECT_EQ(received(requests_).size(), 1u);
}

}  // namespace
}  // namespace opk
