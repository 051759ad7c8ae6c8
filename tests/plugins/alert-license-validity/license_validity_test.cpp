// license-validity against platform-records' licenses on the test host:
// within the window and not renewed opens a warning; expired turns critical
// and escalates once per expiry; a renewal or a later expiry clears it.
#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

Json license(const std::string& id, const std::string& expires, const std::string& renewed = "") {
  Json l = {{"id", id}, {"product", "Opskernel " + id}, {"expires_on", expires}};
  if (!renewed.empty()) l["renewed_on"] = renewed;
  return l;
}

class LicenseValidity : public AlertSourceTest {
 protected:
  void seed() {
    ASSERT_TRUE(import("licenses", Json::array({
                                       license("l1", "2027-01-15"),                // 43 days left
                                       license("l2", "2027-06-01"),                // beyond the window
                                       license("l3", "2026-11-30"),                // expired
                                       license("l4", "2027-01-10", "2026-11-20"),  // renewed in the window
                                       license("l5", "2027-02-01", "2025-11-01"),  // renewed for an older expiry
                                   })));
    at("2026-12-03");
  }
};

OPK_ALERT_SOURCE_STORES(LicenseValidity);

TEST_P(LicenseValidity, WarnsInTheWindowAndEscalatesAnExpiredLicenseOnce) {
  ASSERT_TRUE(load("alert-license-validity"));
  seed();
  auto e = evaluate("license-validity");
  ASSERT_EQ(e.raised.size(), 3u);
  const auto* l1 = raised(e, "license", "l1");
  ASSERT_NE(l1, nullptr);
  EXPECT_EQ(l1->severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(l1->scope, "platform");
  EXPECT_EQ(l1->area, "licensing");
  EXPECT_EQ(l1->title, "License l1 expires on 2027-01-15");
  EXPECT_EQ(l1->message, "License l1 (Opskernel l1) expires on 2027-01-15 and is not renewed");
  EXPECT_EQ(Json::parse(l1->details_json)["days_left"], 43);
  EXPECT_NE(raised(e, "license", "l5"), nullptr);
  const auto* l3 = raised(e, "license", "l3");
  ASSERT_NE(l3, nullptr);
  EXPECT_EQ(l3->severity, OPK_SEVERITY_CRITICAL);
  EXPECT_EQ(l3->title, "License l3 expired on 2026-11-30");
  ASSERT_EQ(e.escalated.size(), 1u);
  EXPECT_EQ(e.escalated[0].related_id, "l3");
  EXPECT_EQ(e.escalated[0].reason, "license l3 expired on 2026-11-30 and is not renewed");
  EXPECT_TRUE(logged(e, "checked 5 licenses, 2 expiring within 90 days, 1 expired (1 escalated now)"));
  // The next sweep raises it again, critical, without escalating it again.
  e = evaluate("license-validity");
  EXPECT_EQ(raised(e, "license", "l3")->severity, OPK_SEVERITY_CRITICAL);
  EXPECT_TRUE(e.escalated.empty());
  int level = -1;
  for (const auto& a : host_.open_alerts())
    if (a.related_id == "l3") level = a.escalation_level;
  EXPECT_EQ(level, 1);
}

TEST_P(LicenseValidity, ExpiryTurnsTheWarningCriticalAndARenewalClears) {
  ASSERT_TRUE(load("alert-license-validity"));
  seed();
  ASSERT_EQ(evaluate("license-validity").raised.size(), 3u);
  at("2027-01-20");
  auto e = evaluate("license-validity");
  const auto* l1 = raised(e, "license", "l1");
  ASSERT_NE(l1, nullptr);
  EXPECT_EQ(l1->severity, OPK_SEVERITY_CRITICAL);
  EXPECT_EQ(l1->title, "License l1 expired on 2027-01-15");
  ASSERT_EQ(e.escalated.size(), 1u);
  EXPECT_EQ(e.escalated[0].related_id, "l1");
  // l1 renewed, l3's expiry moved a year on, l5 renewed.
  ASSERT_TRUE(import("licenses", Json::array({license("l1", "2027-01-15", "2027-01-20"), license("l3", "2027-11-30"),
                                              license("l5", "2027-02-01", "2027-01-19")})));
  e = evaluate("license-validity");
  EXPECT_TRUE(e.raised.empty());
  EXPECT_TRUE(logged(e, "checked 5 licenses, 0 expiring within 90 days, 0 expired (0 escalated now)"));
}

TEST_P(LicenseValidity, WindowDaysIsASetting) {
  setting("window_days", "30");
  ASSERT_TRUE(load("alert-license-validity"));
  seed();
  auto e = evaluate("license-validity");
  EXPECT_EQ(raised(e, "license", "l1"), nullptr);  // 43 days left
  EXPECT_NE(raised(e, "license", "l3"), nullptr);
}

}  // namespace
}  // namespace opk::test
