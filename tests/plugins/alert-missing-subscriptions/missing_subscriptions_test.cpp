// missing-subscriptions against platform-records' records on the test host:
// a tenant with subscription or billing records and none active fires, its
// message follows the records, and an active subscription clears it.
#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

class MissingSubscriptions : public AlertSourceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(load("alert-missing-subscriptions"));
    for (const char* t : {"acme", "beta", "gamma", "delta"}) tenant(t);
    ASSERT_TRUE(
        import("subscriptions",
               Json::array({subscription("a-1", "acme", "active"), subscription("a-2", "acme", "cancelled"),
                            subscription("b-1", "beta", "cancelled"), subscription("b-2", "beta", "suspended")})));
    ASSERT_TRUE(import(
        "billing",
        Json::array({{{"tenant", "tenant:gamma"}, {"contact", "Gamma Billing"}, {"email", "billing@gamma.example"}}})));
    at("2026-12-03");
  }
};

OPK_ALERT_SOURCE_STORES(MissingSubscriptions);

TEST_P(MissingSubscriptions, FiresForTenantsWithRecordsAndNoActiveSubscription) {
  auto e = evaluate("missing-subscriptions");
  // acme has an active one; delta has no records at all.
  ASSERT_EQ(e.raised.size(), 2u);
  const auto* beta = raised(e, "tenant", "beta");
  ASSERT_NE(beta, nullptr);
  EXPECT_EQ(beta->scope, "tenant:beta");
  EXPECT_EQ(beta->severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(beta->title, "Tenant beta has no active subscription");
  EXPECT_EQ(beta->message, "Tenant beta has 2 subscriptions, none active (1 cancelled, 1 suspended)");
  const auto* gamma = raised(e, "tenant", "gamma");
  ASSERT_NE(gamma, nullptr);
  EXPECT_EQ(gamma->message, "Tenant gamma has a billing record but no subscription");
  EXPECT_EQ(Json::parse(gamma->details_json)["billing_record"], true);
  EXPECT_TRUE(logged(e, "checked 3 tenants, 2 without an active subscription"));
}

TEST_P(MissingSubscriptions, UpdatesWithTheRecordsAndClearsWhenOneIsActive) {
  ASSERT_EQ(evaluate("missing-subscriptions").raised.size(), 2u);
  ASSERT_TRUE(import("subscriptions",
                     Json::array({subscription("b-2", "beta", "active"), subscription("g-1", "gamma", "suspended")})));
  auto e = evaluate("missing-subscriptions");
  ASSERT_EQ(e.raised.size(), 1u);
  EXPECT_EQ(e.raised[0].related_id, "gamma");
  EXPECT_EQ(e.raised[0].message, "Tenant gamma has 1 subscription, none active (1 suspended)");
  ASSERT_TRUE(import("subscriptions", Json::array({subscription("g-1", "gamma", "active")})));
  e = evaluate("missing-subscriptions");
  EXPECT_TRUE(e.raised.empty());
  EXPECT_TRUE(logged(e, "checked 3 tenants, 0 without an active subscription"));
}

}  // namespace
}  // namespace opk::test
