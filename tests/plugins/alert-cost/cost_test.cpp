// cost against platform-records' records on the test host: a subscription
// or tenant budget over its amount is critical, over its warning percent
// or up more than the jump percent on the month before a warning; rising
// usage raises the severity, falling usage clears the alert.
#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

Json usage(const std::string& subscription, const std::string& month, double cost) {
  return {{"subscription", subscription}, {"month", month}, {"quantity", 1}, {"cost", cost}};
}

class Cost : public AlertSourceTest {
 protected:
  void SetUp() override { start(true); }
  void start(bool jump_setting) {
    if (jump_setting) setting("jump_percent", "100");
    ASSERT_TRUE(load("alert-cost"));
    tenant("acme");
    tenant("beta");
    ASSERT_TRUE(
        import("subscriptions", Json::array({subscription("s1", "acme", "active"), subscription("s2", "acme", "active"),
                                             subscription("s3", "beta", "active")})));
    ASSERT_TRUE(import(
        "usage", Json::array({usage("s1", "2026-11", 900), usage("s1", "2026-10", 800), usage("s2", "2026-11", 300),
                              usage("s2", "2026-10", 100), usage("s3", "2026-11", 50), usage("s3", "2026-10", 10)})));
    ASSERT_TRUE(import("budgets", Json::array({
                                      // 900 of 1,000: over 80 %.
                                      {{"id", "b-s1"},
                                       {"tenant", "tenant:acme"},
                                       {"subscription", "s1"},
                                       {"amount", 1000},
                                       {"warning_percent", 80}},
                                      // acme's 1,200 of 1,000.
                                      {{"id", "b-acme"}, {"tenant", "tenant:acme"}, {"amount", 1000}},
                                      // 100 -> 300, +200 %, over the budget's own 50 %.
                                      {{"id", "b-s2"},
                                       {"tenant", "tenant:acme"},
                                       {"subscription", "s2"},
                                       {"amount", 10000},
                                       {"month_on_month_jump_percent", 50}},
                                      // 10 -> 50, +400 %, over the setting's 100 %.
                                      {{"id", "b-beta"}, {"tenant", "tenant:beta"}, {"amount", 1000}},
                                      // An amount of 0 is no budget: skipped with a log line.
                                      {{"id", "b-zero"}, {"tenant", "tenant:beta"}, {"amount", 0}},
                                  })));
    at("2026-12-03");
  }
};

OPK_ALERT_SOURCE_STORES(Cost);

TEST_P(Cost, JudgesEveryBudgetOnTheLastClosedMonth) {
  auto e = evaluate("cost");
  ASSERT_EQ(e.raised.size(), 4u);
  const auto* s1 = raised(e, "budget", "b-s1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(s1->scope, "subscription:s1");
  EXPECT_EQ(s1->title, "Budget nearly used by subscription s1 in 2026-11");
  EXPECT_EQ(s1->message, "subscription s1 cost 900.00 in 2026-11, 90% of its budget b-s1 (1000.00, warning at 80%)");
  const auto* acme = raised(e, "budget", "b-acme");
  ASSERT_NE(acme, nullptr);
  EXPECT_EQ(acme->severity, OPK_SEVERITY_CRITICAL);
  EXPECT_EQ(acme->scope, "tenant:acme");
  EXPECT_EQ(acme->title, "Budget exceeded by tenant:acme in 2026-11");
  const Json d = Json::parse(acme->details_json);
  EXPECT_EQ(d["cost"], 1200.0);
  EXPECT_EQ(d["condition"], "over_budget");
  const auto* s2 = raised(e, "budget", "b-s2");
  ASSERT_NE(s2, nullptr);
  EXPECT_EQ(s2->severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(s2->title, "Cost jump for subscription s2 in 2026-11");
  EXPECT_EQ(s2->message, "subscription s2 rose from 100.00 in 2026-10 to 300.00 in 2026-11 (+200%, more than 50%)");
  const auto* beta = raised(e, "budget", "b-beta");
  ASSERT_NE(beta, nullptr);
  EXPECT_EQ(Json::parse(beta->details_json)["jump_percent"], 100.0);
  EXPECT_TRUE(logged(e, "budget b-zero: amount 0 is not above 0; skipped"));
  EXPECT_TRUE(logged(e, "checked 5 budgets for 2026-11, 1 over budget, 3 warned, 1 bad budgets skipped"));
}

TEST_P(Cost, RisingUsageRaisesTheSeverityAndFallingUsageClears) {
  ASSERT_EQ(evaluate("cost").raised.size(), 4u);
  ASSERT_TRUE(import("usage", Json::array({usage("s1", "2026-11", 1100), usage("s2", "2026-11", 120)})));
  auto e = evaluate("cost");
  const auto* s1 = raised(e, "budget", "b-s1");
  ASSERT_NE(s1, nullptr);
  EXPECT_EQ(s1->severity, OPK_SEVERITY_CRITICAL);
  EXPECT_EQ(s1->title, "Budget exceeded by subscription s1 in 2026-11");
  // s2: 100 -> 120 is +20 %, within its 50 %: not raised, so cleared.
  EXPECT_EQ(raised(e, "budget", "b-s2"), nullptr);
  EXPECT_NE(raised(e, "budget", "b-acme"), nullptr);
}

class CostWithoutJumpSetting : public Cost {
 protected:
  void SetUp() override { start(false); }
};

OPK_ALERT_SOURCE_STORES(CostWithoutJumpSetting);

TEST_P(CostWithoutJumpSetting, OnlyABudgetsOwnJumpPercentCounts) {
  auto e = evaluate("cost");
  // beta's +400 % has no jump percent to pass; s2's own 50 % still counts.
  EXPECT_EQ(raised(e, "budget", "b-beta"), nullptr);
  EXPECT_NE(raised(e, "budget", "b-s2"), nullptr);
  EXPECT_EQ(e.raised.size(), 3u);
}

}  // namespace
}  // namespace opk::test
