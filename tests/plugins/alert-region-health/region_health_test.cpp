// region-health against platform-records' regions and probes on the test
// host: a failed latest api probe is critical, a stale or missing one a
// warning, a probe dated in the future a warning with a log line; a new
// probe changes or clears the alert; stale_after is a checked setting.
#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

constexpr int64_t kMinute = 60'000;

class RegionHealth : public AlertSourceTest {
 protected:
  void SetUp() override {
    at("2026-12-03");
    now_ = host_.clock().now_ms();
  }
  void seed() {
    Json regions = Json::array();
    for (const char* id : {"eu", "us", "ap", "sa"})
      regions.push_back({{"id", id},
                         {"name", std::string(id) + "-1"},
                         {"api_url", std::string("https://api.") + id + ".example"},
                         {"identity_url", std::string("https://id.") + id + ".example"}});
    ASSERT_TRUE(import("regions", regions));
    ASSERT_TRUE(import("probes", Json::array({
                                     probe("eu", "api", now_ - 1 * kMinute, true),
                                     probe("us", "api", now_ - 30 * kMinute, true),
                                     probe("us", "api", now_ - 2 * kMinute, false, "HTTP 503"),
                                     probe("ap", "api", now_ - 30 * kMinute, true),
                                     probe("eu", "identity", now_ - 1 * kMinute, false, "timeout"),
                                 })));
  }
  static Json probe(const std::string& region, const std::string& kind, int64_t at, bool ok,
                    const std::string& detail = "") {
    Json p = {{"region", region}, {"kind", kind}, {"time_ms", at}, {"ok", ok}, {"latency_ms", 40}};
    if (!detail.empty()) p["detail"] = detail;
    return p;
  }
  int64_t now_ = 0;
};

OPK_ALERT_SOURCE_STORES(RegionHealth);

TEST_P(RegionHealth, FailedIsCriticalStaleAndMissingAreWarnings) {
  ASSERT_TRUE(load("alert-region-health"));
  seed();
  auto e = evaluate("region-health");
  // eu's api probe is fresh and good (its failed identity probe is not this
  // source's).
  ASSERT_EQ(e.raised.size(), 3u);
  const auto* us = raised(e, "region", "us");
  ASSERT_NE(us, nullptr);
  EXPECT_EQ(us->severity, OPK_SEVERITY_CRITICAL);
  EXPECT_EQ(us->scope, "platform");
  EXPECT_EQ(us->area, "regions");
  EXPECT_EQ(us->title, "API of region us-1 is failing");
  EXPECT_EQ(us->message, "The latest api probe of region us-1, at 2026-12-03T11:58:00Z, failed: HTTP 503");
  const auto* ap = raised(e, "region", "ap");
  ASSERT_NE(ap, nullptr);
  EXPECT_EQ(ap->severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(ap->title, "API of region ap-1 not probed recently");
  EXPECT_EQ(ap->message, "No api probe of region ap-1 since 2026-12-03T11:30:00Z (stale after 15 min)");
  EXPECT_EQ(Json::parse(ap->details_json)["age_ms"], 30 * kMinute);
  const auto* sa = raised(e, "region", "sa");
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(sa->severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(sa->title, "API of region sa-1 never probed");
  EXPECT_TRUE(logged(e, "checked 4 regions, 1 with a failed api probe, 2 without a recent one"));
}

TEST_P(RegionHealth, ANewProbeChangesTheSeverityOrClearsTheAlert) {
  ASSERT_TRUE(load("alert-region-health"));
  seed();
  ASSERT_EQ(evaluate("region-health").raised.size(), 3u);
  host_.clock().advance(5 * kMinute);
  now_ = host_.clock().now_ms();
  ASSERT_TRUE(import("probes", Json::array({probe("us", "api", now_ - kMinute, true),
                                            probe("ap", "api", now_ - kMinute, false, "TLS handshake failed"),
                                            probe("sa", "api", now_ - kMinute, true)})));
  auto e = evaluate("region-health");
  // us and sa are healthy now: not raised by a good sweep, so cleared.
  ASSERT_EQ(e.raised.size(), 1u);
  EXPECT_EQ(e.raised[0].related_id, "ap");
  EXPECT_EQ(e.raised[0].severity, OPK_SEVERITY_CRITICAL);
  // eu's last good probe was six minutes ago; fifteen more and it is stale.
  host_.clock().advance(15 * kMinute);
  e = evaluate("region-health");
  EXPECT_NE(raised(e, "region", "eu"), nullptr);
}

TEST_P(RegionHealth, AProbeDatedInTheFutureLeavesTheHealthUnknown) {
  ASSERT_TRUE(load("alert-region-health"));
  seed();
  ASSERT_TRUE(import("probes", Json::array({probe("eu", "api", now_ + 120 * kMinute, true)})));
  auto e = evaluate("region-health");
  const auto* eu = raised(e, "region", "eu");
  ASSERT_NE(eu, nullptr);
  EXPECT_EQ(eu->severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(eu->title, "API health of region eu-1 unknown");
  EXPECT_EQ(eu->message,
            "The latest api probe of region eu-1 is dated 2026-12-03T14:00:00Z, in the future: its health is unknown");
  EXPECT_TRUE(logged(e, "region eu: latest api probe time_ms " + std::to_string(now_ + 120 * kMinute) +
                            " (2026-12-03T14:00:00Z) is ahead of the evaluation time 2026-12-03T12:00:00Z"));
  // Clock skew of under a minute is not a bad record.
  ASSERT_TRUE(import("probes", Json::array({probe("us", "api", now_ + 30'000, true)})));
  EXPECT_EQ(raised(evaluate("region-health"), "region", "us"), nullptr);
}

TEST_P(RegionHealth, StaleAfterIsASetting) {
  setting("stale_after", "1h");
  ASSERT_TRUE(load("alert-region-health"));
  seed();
  auto e = evaluate("region-health");
  EXPECT_EQ(raised(e, "region", "ap"), nullptr);
  EXPECT_NE(raised(e, "region", "us"), nullptr);
}

TEST_P(RegionHealth, ABadStaleAfterRefusesThePluginNamingTheKey) {
  setting("stale_after", "soon");
  const Status s = host_.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/platform-records.so");
  ASSERT_TRUE(s) << s.message();
  const Status bad = host_.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/alert-region-health.so");
  EXPECT_FALSE(bad);
  EXPECT_NE(bad.message().find("[plugin.alert-region-health] stale_after = \"soon\""), std::string::npos)
      << bad.message();
}

}  // namespace
}  // namespace opk::test
