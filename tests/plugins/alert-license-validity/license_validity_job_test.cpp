// license-validity-refresh, the LicenseValidity job type, against
// platform-records' licenses on the test host, whose opk.alerts/1 keeps the
// source's alerts: the source's rules through the job (window, expiry,
// renewal) with the run's counts and steps, an escalation shared with the
// source, a dry run that changes nothing, its parameters, a date that
// cannot be read and a cancel between licenses.
#include <map>
#include <utility>

#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

// An open alert's severity and escalation level.
using Held = std::pair<int, int>;

Json job_license(const std::string& id, const std::string& expires, const std::string& renewed = "") {
  Json l = {{"id", id}, {"product", "Opskernel " + id}, {"expires_on", expires}};
  if (!renewed.empty()) l["renewed_on"] = renewed;
  return l;
}

class LicenseValidityJob : public AlertSourceTest {
 protected:
  void SetUp() override { ASSERT_TRUE(load("alert-license-validity")); }
  void seed() {
    ASSERT_TRUE(import("licenses", Json::array({
                                       job_license("l1", "2027-01-15"),                // 43 days left
                                       job_license("l2", "2027-06-01"),                // beyond the window
                                       job_license("l3", "2026-11-30"),                // expired
                                       job_license("l4", "2027-01-10", "2026-11-20"),  // renewed in the window
                                       job_license("l5", "2027-02-01", "2025-11-01"),  // renewed for an older expiry
                                   })));
    at("2026-12-03");
  }
  testing::RunResult refresh(const std::string& params = "{}", const testing::RunOptions& options = {}) {
    return host_.run("license-validity-refresh", params, options);
  }
  static Json output(const testing::RunResult& r) { return Json::parse(r.output_json, nullptr, false); }
  // "opened escalated closed unchanged" of a run's output.
  static std::string counts(const testing::RunResult& r) {
    const Json o = output(r);
    if (!o.is_object()) return "no output: " + r.summary;
    return std::to_string(o.value("opened", -1)) + " " + std::to_string(o.value("escalated", -1)) + " " +
           std::to_string(o.value("closed", -1)) + " " + std::to_string(o.value("unchanged", -1));
  }
  // license id -> (severity, escalation level) of the open alerts.
  std::map<std::string, Held> open() const {
    std::map<std::string, Held> out;
    for (const auto& a : host_.open_alerts()) out[a.related_id] = {a.severity, a.escalation_level};
    return out;
  }
  size_t escalation_rows() const {
    return host_.store_rows("SELECT * FROM p_alert_license_validity_escalations").size();
  }
};

OPK_ALERT_SOURCE_STORES(LicenseValidityJob);

TEST_P(LicenseValidityJob, OpensInTheWindowEscalatesTheExpiredOnceAndSaysSo) {
  seed();
  auto r = refresh();
  ASSERT_EQ(r.status, OPK_OK) << r.error << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(counts(r), "3 1 0 0");
  EXPECT_EQ(r.summary, "5 licenses checked on 2026-12-03: 3 opened, 1 escalated, 0 closed, 0 unchanged");
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[0].id, "licenses");
  EXPECT_EQ(r.steps[0].summary, "5 licenses on 2026-12-03, 3 within 90 days, expired or unreadable");
  EXPECT_EQ(r.steps[1].id, "alerts");
  EXPECT_EQ(r.steps[1].outcome, OPK_OUTCOME_NORMAL);
  EXPECT_TRUE(r.logged("open license l1: warning: License l1 expires on 2027-01-15"));
  EXPECT_TRUE(r.logged("escalate license l3: license l3 expired on 2026-11-30 and is not renewed"));
  auto alerts = open();
  ASSERT_EQ(alerts.size(), 3u);
  EXPECT_EQ(alerts["l1"], Held(OPK_SEVERITY_WARNING, 0));
  EXPECT_EQ(alerts["l3"], Held(OPK_SEVERITY_CRITICAL, 1));
  EXPECT_EQ(alerts.count("l5"), 1u);
  const auto held = host_.open_alerts();
  const auto l1 = std::find_if(held.begin(), held.end(), [](const auto& a) { return a.related_id == "l1"; });
  EXPECT_EQ(l1->scope, "platform");
  EXPECT_EQ(l1->type, "license-validity");
  EXPECT_EQ(l1->message, "License l1 (Opskernel l1) expires on 2027-01-15 and is not renewed");
  EXPECT_EQ(Json::parse(l1->details_json)["days_left"], 43);

  // Evaluating again is harmless: nothing opens or escalates twice.
  r = refresh();
  EXPECT_EQ(counts(r), "0 0 0 3");
  EXPECT_EQ(open()["l3"], Held(OPK_SEVERITY_CRITICAL, 1));
  EXPECT_EQ(escalation_rows(), 1u);
}

TEST_P(LicenseValidityJob, ExpiryTurnsTheAlertCriticalAndARenewalClosesIt) {
  seed();
  ASSERT_EQ(counts(refresh()), "3 1 0 0");
  at("2027-01-20");
  auto r = refresh();
  EXPECT_EQ(counts(r), "0 1 0 3");
  EXPECT_TRUE(r.logged("update license l1: warning to critical: License l1 expired on 2027-01-15"));
  EXPECT_EQ(open()["l1"], Held(OPK_SEVERITY_CRITICAL, 1));
  // l1 renewed, l3's expiry moved a year on, l5 renewed.
  ASSERT_TRUE(
      import("licenses", Json::array({job_license("l1", "2027-01-15", "2027-01-20"), job_license("l3", "2027-11-30"),
                                      job_license("l5", "2027-02-01", "2027-01-19")})));
  r = refresh();
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(counts(r), "0 0 3 0");
  EXPECT_TRUE(r.logged("close license l1: license l1 is renewed, expires beyond 90 days of 2027-01-20"));
  EXPECT_TRUE(open().empty());
}

TEST_P(LicenseValidityJob, TheJobAndTheSourceEscalateAnExpiryOnceBetweenThem) {
  seed();
  auto e = evaluate("license-validity");
  ASSERT_EQ(e.escalated.size(), 1u);
  auto r = refresh();
  EXPECT_EQ(counts(r), "0 0 0 3");
  EXPECT_EQ(open()["l3"], Held(OPK_SEVERITY_CRITICAL, 1));
}

TEST_P(LicenseValidityJob, ADryRunSaysWhatItWouldDoAndChangesNothing) {
  seed();
  auto r = refresh("{}", {.dry_run = true});
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(counts(r), "3 1 0 0");
  EXPECT_EQ(
      r.summary,
      "dry run: 5 licenses checked on 2026-12-03: would be 3 opened, 1 escalated, 0 closed, 0 unchanged; no alert "
      "was changed");
  EXPECT_TRUE(r.logged("would escalate license l3"));
  EXPECT_TRUE(output(r)["dry_run"].get<bool>());
  EXPECT_TRUE(open().empty());
  EXPECT_EQ(escalation_rows(), 0u);
  // A dry run after a real one: what a renewal would close.
  ASSERT_EQ(counts(refresh()), "3 1 0 0");
  ASSERT_TRUE(import("licenses", Json::array({job_license("l1", "2027-01-15", "2026-12-01")})));
  r = refresh("{}", {.dry_run = true});
  EXPECT_EQ(counts(r), "0 0 1 2");
  EXPECT_EQ(open().size(), 3u);
}

TEST_P(LicenseValidityJob, WindowAndDayAreParameters) {
  seed();
  at("2026-06-01");
  auto r = refresh(R"({"as_of": "2026-12-03", "window_days": 30})");
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(counts(r), "1 1 0 0");  // l3 only: l1 has 43 days left
  EXPECT_EQ(output(r)["as_of"], "2026-12-03");
  EXPECT_EQ(output(r)["window_days"], 30);
  EXPECT_EQ(open().count("l1"), 0u);

  r = refresh(R"({"as_of": "2026-02-30"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_TRUE(r.logged("parameter as_of: '2026-02-30' is not a YYYY-MM-DD date")) << r.summary;
  r = refresh(R"({"window_days": 0})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.error.find("window_days"), std::string::npos) << r.error;
}

TEST_P(LicenseValidityJob, ADateThatCannotBeReadWarnsAndKeepsItsAlert) {
  seed();
  host_.store_rows("UPDATE p_platform_records_licenses SET expires_on = '2027-14-01' WHERE id = 'l2'");
  auto r = refresh();
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  EXPECT_TRUE(r.logged("license l2: expires_on \"2027-14-01\" is not a YYYY-MM-DD date")) << r.summary;
  EXPECT_EQ(r.steps[0].outcome, OPK_OUTCOME_WARNING);
  EXPECT_EQ(output(r)["unreadable"], 1);
  EXPECT_EQ(counts(r), "4 1 0 0");
  EXPECT_EQ(open()["l2"], Held(OPK_SEVERITY_WARNING, 0));
  EXPECT_EQ(host_.store_rows("SELECT COUNT(*) FROM p_platform_records_licenses")[0][0], "5");
}

TEST_P(LicenseValidityJob, ACancelStopsBetweenLicensesAndTheNextRunDoesTheRest) {
  Json many = Json::array();
  for (int i = 0; i < 3000; ++i) many.push_back(job_license("m" + std::to_string(i), "2027-01-15"));
  ASSERT_TRUE(import("licenses", many));
  at("2026-12-03");
  auto r = refresh("{}", {.cancel_after_ms = 1});
  EXPECT_TRUE(r.cancelled) << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  const size_t first = open().size();
  EXPECT_LT(first, 3000u);
  r = refresh();
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(output(r)["opened"].get<size_t>() + output(r)["unchanged"].get<size_t>(), 3000u);
  EXPECT_EQ(output(r)["unchanged"].get<size_t>(), first);
  EXPECT_EQ(open().size(), 3000u);
}

}  // namespace
}  // namespace opk::test
