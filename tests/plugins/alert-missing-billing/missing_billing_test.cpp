// missing-billing against platform-records' records on the test host: a
// tenant with an active subscription and no billing record fires, its
// message follows the subscriptions, and a billing record clears it.
#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

Json billing(const std::string& tenant) {
  return {{"tenant", "tenant:" + tenant}, {"contact", "Accounts"}, {"email", "billing@" + tenant + ".example"}};
}

class MissingBilling : public AlertSourceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(load("alert-missing-billing"));
    for (const char* t : {"acme", "beta", "gamma"}) tenant(t);
    ASSERT_TRUE(import("subscriptions",
                       Json::array({subscription("a-1", "acme", "active"), subscription("b-1", "beta", "active"),
                                    subscription("g-1", "gamma", "cancelled")})));
    ASSERT_TRUE(import("billing", Json::array({billing("acme")})));
    at("2026-12-03");
  }
};

OPK_ALERT_SOURCE_STORES(MissingBilling);

TEST_P(MissingBilling, FiresForATenantWithAnActiveSubscriptionAndNoBillingRecord) {
  auto e = evaluate("missing-billing");
  // acme has a record; gamma has nothing active to bill.
  ASSERT_EQ(e.raised.size(), 1u);
  const auto& a = e.raised[0];
  EXPECT_EQ(a.related_type, "tenant");
  EXPECT_EQ(a.related_id, "beta");
  EXPECT_EQ(a.scope, "tenant:beta");
  EXPECT_EQ(a.severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(a.title, "Tenant beta has no billing record");
  EXPECT_EQ(a.message, "Tenant beta has 1 active subscription (b-1) and no billing record: no contact to invoice");
  EXPECT_EQ(Json::parse(a.details_json)["active_subscriptions"], 1);
  EXPECT_TRUE(logged(e, "checked 2 tenants with an active subscription, 1 without a billing record"));
}

TEST_P(MissingBilling, UpdatesWithTheSubscriptionsAndClearsWithABillingRecord) {
  ASSERT_TRUE(import("subscriptions", Json::array({subscription("b-2", "beta", "active")})));
  auto e = evaluate("missing-billing");
  ASSERT_EQ(e.raised.size(), 1u);
  EXPECT_EQ(e.raised[0].message,
            "Tenant beta has 2 active subscriptions (b-1, ...) and no billing record: no contact to invoice");
  ASSERT_TRUE(import("billing", Json::array({billing("beta")})));
  e = evaluate("missing-billing");
  EXPECT_TRUE(e.raised.empty());
  EXPECT_TRUE(logged(e, "0 without a billing record"));
}

}  // namespace
}  // namespace opk::test
