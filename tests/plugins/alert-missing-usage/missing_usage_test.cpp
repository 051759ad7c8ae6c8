// missing-usage against platform-records' records on the test host: an
// active subscription without usage for the last closed month fires, the
// alert follows the month, and usage clears it (the sweep raises nothing).
#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

class MissingUsage : public AlertSourceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(load("alert-missing-usage"));
    tenant("acme");
    ASSERT_TRUE(import("subscriptions", Json::array({
                                            {{"id", "sub-1"},
                                             {"tenant", "tenant:acme"},
                                             {"product", "mail"},
                                             {"status", "active"},
                                             {"period_start", "2026-01-01"}},
                                            {{"id", "sub-2"},
                                             {"tenant", "tenant:acme"},
                                             {"product", "backup"},
                                             {"status", "active"},
                                             {"period_start", "2026-03-15"}},
                                            {{"id", "sub-3"},
                                             {"tenant", "tenant:acme"},
                                             {"product", "mail"},
                                             {"status", "cancelled"},
                                             {"period_start", "2026-01-01"}},
                                            {{"id", "sub-4"},
                                             {"tenant", "tenant:acme"},
                                             {"product", "mail"},
                                             {"status", "active"},
                                             {"period_start", "2026-12-01"}},
                                            {{"id", "sub-5"},
                                             {"tenant", "tenant:acme"},
                                             {"product", "mail"},
                                             {"status", "active"},
                                             {"period_start", "2026-01-01"},
                                             {"period_end", "2026-10-31"}},
                                        })));
    ASSERT_TRUE(import(
        "usage", Json::array({{{"subscription", "sub-1"}, {"month", "2026-11"}, {"quantity", 10}, {"cost", 100}}})));
    at("2026-12-03");
  }
};

OPK_ALERT_SOURCE_STORES(MissingUsage);

TEST_P(MissingUsage, FiresForAnActiveSubscriptionWithoutUsageForTheClosedMonth) {
  auto e = evaluate("missing-usage");
  ASSERT_EQ(e.raised.size(), 1u);
  const auto& a = e.raised[0];
  EXPECT_EQ(a.related_type, "subscription");
  EXPECT_EQ(a.related_id, "sub-2");
  EXPECT_EQ(a.scope, "subscription:sub-2");
  EXPECT_EQ(a.severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(a.area, "billing");
  EXPECT_EQ(a.type, "missing-usage");
  EXPECT_EQ(a.title, "No usage for 2026-11");
  EXPECT_EQ(a.message, "Subscription sub-2 (backup, tenant:acme) is active but has no usage recorded for 2026-11");
  const Json d = Json::parse(a.details_json);
  EXPECT_EQ(d["month"], "2026-11");
  EXPECT_EQ(d["tenant"], "tenant:acme");
  // sub-3 is cancelled, sub-4 starts after November, sub-5 ended before it.
  EXPECT_TRUE(logged(e, "checked 4 subscriptions, 1 without usage for 2026-11, 2 outside their period"))
      << e.log[0].text;
}

TEST_P(MissingUsage, FollowsTheMonthAndClearsOnceUsageArrives) {
  ASSERT_EQ(evaluate("missing-usage").raised.size(), 1u);
  // January: December is the closed month; sub-2 still has none, sub-4
  // (started in December) has none either.
  at("2027-01-05");
  ASSERT_TRUE(
      import("usage", Json::array({{{"subscription", "sub-1"}, {"month", "2026-12"}, {"quantity", 1}, {"cost", 10}}})));
  auto e = evaluate("missing-usage");
  ASSERT_EQ(e.raised.size(), 2u);
  EXPECT_EQ(raised(e, "subscription", "sub-2")->title, "No usage for 2026-12");
  EXPECT_NE(raised(e, "subscription", "sub-4"), nullptr);
  // Usage for both: a good sweep that raises nothing (the engine closes
  // both as cleared).
  ASSERT_TRUE(import("usage", Json::array({
                                  {{"subscription", "sub-2"}, {"month", "2026-12"}, {"quantity", 0}, {"cost", 0}},
                                  {{"subscription", "sub-4"}, {"month", "2026-12"}, {"quantity", 3}, {"cost", 9}},
                              })));
  e = evaluate("missing-usage");
  EXPECT_TRUE(e.raised.empty());
  EXPECT_TRUE(logged(e, "checked 4 subscriptions, 0 without usage for 2026-12"));
}

TEST_P(MissingUsage, PagesThroughManySubscriptions) {
  Json subs = Json::array(), usage = Json::array();
  for (int i = 0; i < 2500; ++i) {
    const std::string id = "bulk-" + std::to_string(i);
    subs.push_back({{"id", id},
                    {"tenant", "tenant:acme"},
                    {"product", "mail"},
                    {"status", "active"},
                    {"period_start", "2026-01-01"}});
    if (i % 1000 != 7) usage.push_back({{"subscription", id}, {"month", "2026-11"}, {"quantity", 1}, {"cost", 1}});
  }
  ASSERT_TRUE(import("subscriptions", subs));
  ASSERT_TRUE(import("usage", usage));
  auto e = evaluate("missing-usage");
  // bulk-7, bulk-1007, bulk-2007 and sub-2, across three pages of 1,000.
  EXPECT_EQ(e.raised.size(), 4u);
  EXPECT_NE(raised(e, "subscription", "bulk-2007"), nullptr);
  EXPECT_TRUE(logged(e, "checked 2504 subscriptions, 4 without usage for 2026-11"));
}

}  // namespace
}  // namespace opk::test
