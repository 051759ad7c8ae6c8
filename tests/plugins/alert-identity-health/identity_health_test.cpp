// identity-health against platform-records' regions and probes on the test
// host: the rules are region-health's, for the identity probes alone.
#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

OPK_ALERT_SOURCE_STORES(AlertSourceTest);

TEST_P(AlertSourceTest, IdentityHealthJudgesTheIdentityProbesOnly) {
  ASSERT_TRUE(load("alert-identity-health"));
  at("2026-12-03");
  const int64_t now = host_.clock().now_ms();
  Json regions = Json::array();
  for (const char* id : {"eu", "us"})
    regions.push_back({{"id", id},
                       {"name", id},
                       {"api_url", std::string("https://api.") + id + ".example"},
                       {"identity_url", std::string("https://id.") + id + ".example"}});
  ASSERT_TRUE(import("regions", regions));
  ASSERT_TRUE(import("probes", Json::array({
                                   {{"region", "eu"},
                                    {"kind", "identity"},
                                    {"time_ms", now - 60'000},
                                    {"ok", false},
                                    {"detail", "token endpoint 500"}},
                                   {{"region", "eu"}, {"kind", "api"}, {"time_ms", now - 60'000}, {"ok", true}},
                                   {{"region", "us"}, {"kind", "identity"}, {"time_ms", now - 60'000}, {"ok", true}},
                                   {{"region", "us"}, {"kind", "api"}, {"time_ms", now - 60'000}, {"ok", false}},
                               })));
  auto e = evaluate("identity-health");
  ASSERT_EQ(e.raised.size(), 1u);
  EXPECT_EQ(e.raised[0].related_id, "eu");
  EXPECT_EQ(e.raised[0].severity, OPK_SEVERITY_CRITICAL);
  EXPECT_EQ(e.raised[0].area, "identity");
  EXPECT_EQ(e.raised[0].type, "identity-health");
  EXPECT_EQ(e.raised[0].title, "Identity service of region eu is failing");
  EXPECT_TRUE(logged(e, "checked 2 regions, 1 with a failed identity probe, 0 without a recent one"));
  // Recovered: the sweep raises nothing.
  ASSERT_TRUE(
      import("probes", Json::array({{{"region", "eu"}, {"kind", "identity"}, {"time_ms", now}, {"ok", true}}})));
  EXPECT_TRUE(evaluate("identity-health").raised.empty());
}

}  // namespace
}  // namespace opk::test
