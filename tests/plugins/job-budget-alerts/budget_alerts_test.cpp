// budget-alerts, the BudgetAlerts job type, against platform-records'
// budgets and usage on the test host, whose opk.events/1 keeps what the
// job emits: budgets under, at warning and at breach; one notice per
// budget, threshold and month across reruns (the key); a new notice when
// the cost rises past the next threshold or the month changes, none when it
// falls; the same verdicts as the cost alert source; a dry run that sends
// nothing; bad usage and budgets named; a cancel between budgets.
#include <map>
#include <set>

#include "plugins/alert-sources/alert_fixture.h"

namespace opk::test {
namespace {

Json month_usage(const std::string& subscription, const std::string& month, double cost) {
  return {{"subscription", subscription}, {"month", month}, {"quantity", 1}, {"cost", cost}};
}

class BudgetAlerts : public AlertSourceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(load("job-budget-alerts"));
    for (const char* t : {"acme", "beta", "gamma"}) tenant(t);
    ASSERT_TRUE(
        import("subscriptions", Json::array({subscription("s1", "acme", "active"), subscription("s2", "acme", "active"),
                                             subscription("s3", "beta", "active")})));
    ASSERT_TRUE(import("usage", Json::array({month_usage("s1", "2026-12", 500), month_usage("s2", "2026-12", 300),
                                             month_usage("s3", "2026-12", 950), month_usage("s1", "2026-11", 5000)})));
    ASSERT_TRUE(
        import("budgets", Json::array({
                              // 500 of 1,000: under 80 %.
                              {{"id", "b-s1"},
                               {"tenant", "tenant:acme"},
                               {"subscription", "s1"},
                               {"amount", 1000},
                               {"warning_percent", 80}},
                              // 300 of 350: 86 %, over 80 %.
                              {{"id", "b-s2"},
                               {"tenant", "tenant:acme"},
                               {"subscription", "s2"},
                               {"amount", 350},
                               {"warning_percent", 80}},
                              // acme's 800 of 800: breach at 100 %.
                              {{"id", "b-acme"}, {"tenant", "tenant:acme"}, {"amount", 800}},
                              // 950 of 1,000: over 90 %.
                              {{"id", "b-beta"}, {"tenant", "tenant:beta"}, {"amount", 1000}, {"warning_percent", 90}},
                              // No usage at all.
                              {{"id", "b-gamma"}, {"tenant", "tenant:gamma"}, {"amount", 100}},
                          })));
    at("2026-12-15");
  }
  testing::RunResult alerts(const std::string& params = "{}", const testing::RunOptions& options = {}) {
    return host_.run("budget-alerts", params, options);
  }
  static Json output(const testing::RunResult& r) { return Json::parse(r.output_json, nullptr, false); }
  // budget id -> level of a run's output.
  static std::map<std::string, std::string> levels(const testing::RunResult& r) {
    std::map<std::string, std::string> out;
    const Json o = output(r);
    if (o.is_object())
      for (const auto& b : o["results"]) out[b["budget"]] = b["level"];
    return out;
  }
  // The keys of the events emitted so far.
  std::set<std::string> keys() const {
    std::set<std::string> out;
    for (const auto& e : host_.events()) out.insert(e.key);
    return out;
  }
  // The event emitted about `subject`; fails the test when there is none.
  testing::Event event(const std::string& subject) const {
    for (const auto& e : host_.events())
      if (e.subject == subject) return e;
    ADD_FAILURE() << "no event about " << subject;
    return {};
  }
};

OPK_ALERT_SOURCE_STORES(BudgetAlerts);

TEST_P(BudgetAlerts, WarnsAtTheThresholdAndBreachesAtTheAmountOnce) {
  auto r = alerts();
  ASSERT_EQ(r.status, OPK_OK) << r.error << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(r.summary, "5 budgets in 2026-12: 1 breach, 2 warning; 3 notices sent, 0 sent before");
  EXPECT_EQ(
      levels(r),
      (std::map<std::string, std::string>{
          {"b-acme", "breach"}, {"b-beta", "warning"}, {"b-gamma", "under"}, {"b-s1", "under"}, {"b-s2", "warning"}}));
  std::vector<std::string> steps;
  for (const auto& s : r.steps) steps.push_back(s.id);
  EXPECT_EQ(steps, (std::vector<std::string>{"evaluate", "notify", "alerts"}));
  EXPECT_EQ(r.steps[1].summary, "3 notices sent, 0 sent before");
  EXPECT_TRUE(r.logged("budget b-gamma: tenant:gamma has no usage in 2026-12; spent 0.00"));
  EXPECT_TRUE(r.logged("budget b-s2 (subscription s2): 300.00 of 350.00 (86%) in 2026-12: warning"));
  EXPECT_TRUE(r.logged("the cost alerts follow at the source's next evaluation"));

  const auto events = host_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(keys(), (std::set<std::string>{"budget:b-s2:warning:2026-12", "budget:b-acme:breach:2026-12",
                                           "budget:b-beta:warning:2026-12"}));
  const auto acme = event("budget:b-acme");
  EXPECT_EQ(acme.kind, "plugin.job-budget-alerts.budget.breach");
  EXPECT_EQ(acme.scope, "tenant:acme");
  EXPECT_EQ(acme.subject, "budget:b-acme");
  const Json payload = Json::parse(acme.payload_json);
  EXPECT_EQ(payload["spent"], 800.0);
  EXPECT_EQ(payload["percent"], 100.0);
  EXPECT_EQ(payload["period"], "2026-12");
  EXPECT_EQ(payload["threshold"], "breach");
  EXPECT_EQ(payload["budget"]["amount"], 800.0);
  EXPECT_TRUE(payload["budget"]["subscription"].is_null());
  EXPECT_EQ(event("budget:b-s2").scope, "tenant:acme");
  EXPECT_EQ(Json::parse(event("budget:b-s2").payload_json)["budget"]["subscription"], "s2");
  EXPECT_EQ(event("budget:b-beta").scope, "tenant:beta");
  const Json o = output(r);
  EXPECT_EQ(o["notices"]["sent"], 3);
  EXPECT_EQ(o["without_usage"], 1);
  EXPECT_TRUE(o["alert_evaluation"].is_null());

  // The rerun in the same month sends nothing again: the key holds.
  r = alerts();
  EXPECT_EQ(r.summary, "5 budgets in 2026-12: 1 breach, 2 warning; 0 notices sent, 3 sent before");
  EXPECT_EQ(host_.events().size(), 3u);
  EXPECT_EQ(output(r)["notices"]["already_sent"], 3);
  EXPECT_TRUE(r.logged("budget b-acme (tenant:acme) breach notice for 2026-12 was sent before (event " +
                       std::to_string(acme.seq) + ")"));
}

TEST_P(BudgetAlerts, RisingCostSendsTheNextThresholdFallingCostNothingAndANewMonthAnew) {
  ASSERT_EQ(alerts().status, OPK_OK);
  // s1 rises past its warning, s2 past its amount; beta falls under.
  ASSERT_TRUE(import("usage", Json::array({month_usage("s1", "2026-12", 850), month_usage("s2", "2026-12", 360),
                                           month_usage("s3", "2026-12", 100)})));
  auto r = alerts();
  EXPECT_EQ(levels(r)["b-s1"], "warning");
  EXPECT_EQ(levels(r)["b-s2"], "breach");
  EXPECT_EQ(levels(r)["b-beta"], "under");
  EXPECT_EQ(keys(), (std::set<std::string>{"budget:b-s2:warning:2026-12", "budget:b-acme:breach:2026-12",
                                           "budget:b-beta:warning:2026-12", "budget:b-s1:warning:2026-12",
                                           "budget:b-s2:breach:2026-12"}));
  // A new month starts under: nothing is sent; its first crossing is.
  at("2027-01-05");
  r = alerts();
  EXPECT_EQ(r.summary, "5 budgets in 2027-01: 0 breach, 0 warning; 0 notices sent, 0 sent before");
  EXPECT_EQ(host_.events().size(), 5u);
  ASSERT_TRUE(import("usage", Json::array({month_usage("s2", "2027-01", 300)})));
  r = alerts();
  EXPECT_EQ(levels(r)["b-s2"], "warning");
  ASSERT_EQ(host_.events().size(), 6u);
  EXPECT_EQ(host_.events().back().key, "budget:b-s2:warning:2027-01");
  // An earlier month by parameter: its notices were all sent.
  r = alerts(R"({"month": "2026-12"})");
  EXPECT_EQ(output(r)["notices"]["already_sent"], 3);
  EXPECT_EQ(host_.events().size(), 6u);
}

TEST_P(BudgetAlerts, TheCostSourceJudgesAClosedMonthByTheSameRules) {
  ASSERT_TRUE(host_.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/alert-cost.so").is_ok());
  at("2027-01-05");
  auto r = alerts(R"({"month": "2026-12"})");
  auto e = evaluate("cost");  // judges 2026-12, the last closed month
  std::map<std::string, std::string> raised;
  for (const auto& a : e.raised) raised[a.related_id] = a.severity == OPK_SEVERITY_CRITICAL ? "breach" : "warning";
  std::map<std::string, std::string> judged;
  for (const auto& [id, level] : levels(r))
    if (level != "under") judged[id] = level;
  EXPECT_EQ(raised, judged);
  EXPECT_EQ(raised.size(), 3u);
}

TEST_P(BudgetAlerts, ADryRunSendsNothing) {
  auto r = alerts("{}", {.dry_run = true});
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(r.summary, "dry run: 5 budgets in 2026-12: 1 breach, 2 warning; 3 notices would be sent, none sent");
  EXPECT_TRUE(
      r.logged("would send the budget b-acme (tenant:acme) breach notice for 2026-12 (key "
               "budget:b-acme:breach:2026-12)"));
  EXPECT_TRUE(host_.events().empty());
  EXPECT_EQ(r.steps.size(), 2u);  // no alert evaluation
  EXPECT_EQ(output(r)["notices"]["would_send"], 3);
  r = alerts();
  EXPECT_EQ(output(r)["notices"]["sent"], 3);
}

// A cost that is not a number can be stored behind platform-records' back
// only in SQLite (PostgreSQL's DOUBLE PRECISION column refuses it).
class BudgetAlertsSqlite : public BudgetAlerts {};
INSTANTIATE_TEST_SUITE_P(Stores, BudgetAlertsSqlite, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(BudgetAlertsSqlite, BadUsageAndBudgetsAreNamedAndTheRestJudged) {
  host_.store_rows("UPDATE p_platform_records_usage SET cost = 'lots' WHERE subscription = 's3'");
  host_.store_rows("DELETE FROM p_platform_records_subscriptions WHERE id = 's2'");
  auto r = alerts();
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  EXPECT_TRUE(r.logged("usage of subscription s3 in 2026-12: cost \"lots\" is not a number; left out of the sums"))
      << r.summary;
  EXPECT_TRUE(r.logged("budget b-s2 of tenant:acme: subscription 's2' is not in the records; not judged"));
  EXPECT_EQ(r.steps[0].outcome, OPK_OUTCOME_WARNING);
  EXPECT_EQ(r.summary,
            "4 budgets in 2026-12: 0 breach, 0 warning; 0 notices sent, 0 sent before; 1 budgets not judged; 1 usage "
            "rows left out");
  // acme's cost without s2 is 500 of 800; beta's usage was left out.
  EXPECT_EQ(levels(r)["b-acme"], "under");
  EXPECT_EQ(levels(r)["b-beta"], "under");
  EXPECT_TRUE(host_.events().empty());
  EXPECT_EQ(host_.store_rows("SELECT COUNT(*) FROM p_platform_records_budgets")[0][0], "5");
  EXPECT_EQ(host_.store_rows("SELECT COUNT(*) FROM p_platform_records_usage")[0][0], "4");
}

TEST_P(BudgetAlerts, ANoticeTheEventLogRefusesIsNamedAndTheOthersAreSent) {
  host_.store_rows("UPDATE p_platform_records_budgets SET tenant = 'tenant:ghost' WHERE id = 'b-s2'");
  auto r = alerts();
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  EXPECT_TRUE(
      r.logged("budget b-s2 (subscription s2) warning notice for 2026-12 refused by the event log: "
               "\"scope: 'tenant:ghost' is not a hierarchy node\""))
      << r.summary;
  EXPECT_EQ(r.steps[1].outcome, OPK_OUTCOME_WARNING);
  EXPECT_EQ(output(r)["notices"]["refused"], 1);
  EXPECT_EQ(keys(), (std::set<std::string>{"budget:b-acme:breach:2026-12", "budget:b-beta:warning:2026-12"}));
  // Once the record is right, the next run sends it.
  host_.store_rows("UPDATE p_platform_records_budgets SET tenant = 'tenant:acme' WHERE id = 'b-s2'");
  r = alerts();
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(keys().count("budget:b-s2:warning:2026-12"), 1u);
}

TEST_P(BudgetAlerts, ParametersNarrowAndAreChecked) {
  auto r = alerts(R"({"tenant": "tenant:beta"})");
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(levels(r), (std::map<std::string, std::string>{{"b-beta", "warning"}}));
  EXPECT_EQ(keys(), (std::set<std::string>{"budget:b-beta:warning:2026-12"}));
  r = alerts(R"({"month": "2026-13"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.error.find("month"), std::string::npos) << r.error;
  r = alerts(R"({"tenant": "acme"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
}

TEST_P(BudgetAlerts, ACancelStopsBetweenBudgetsAndTheNextRunSendsTheRestOnce) {
  Json many = Json::array();
  for (int i = 0; i < 2000; ++i)
    many.push_back({{"id", "m" + std::to_string(i)}, {"tenant", "tenant:beta"}, {"amount", 1000}});
  ASSERT_TRUE(import("budgets", many));
  auto r = alerts("{}", {.cancel_after_ms = 1});
  EXPECT_TRUE(r.cancelled) << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  const size_t first = host_.events().size();
  EXPECT_LT(first, 2003u);
  r = alerts();
  ASSERT_EQ(r.status, OPK_OK) << r.summary;
  EXPECT_EQ(output(r)["notices"]["already_sent"].get<size_t>(), first);
  EXPECT_EQ(host_.events().size(), 2003u);
  EXPECT_EQ(keys().size(), 2003u);
}

}  // namespace
}  // namespace opk::test
