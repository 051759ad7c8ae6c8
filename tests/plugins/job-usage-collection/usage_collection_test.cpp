// usage-collection (plugin job-usage-collection) on the SDK's test host with
// platform-records, against real usage providers on 127.0.0.1
// (tests/support/usage-server): usage rows, billing lines and commissions
// written right; a rerun that updates and never doubles; a provider that
// fails (500 after its retries, a refused connection, malformed answers)
// failing only its region's step; retries that pass; bad items (unknown
// subscriptions, negative quantities, currencies that do not match) named
// by region, page, item and field while the good ones are stored; a dry run
// that writes nothing; a cancel between pages that leaves every page whole
// and bills nothing; the tenant and region filters; the concurrency limit.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/servers.h"

namespace opk::test {
namespace {

using opk::testing::RunResult;

const std::string kPlugins = OPK_BUNDLED_PLUGIN_DIR;

Json item(const std::string& sub, double quantity, double cost, const std::string& currency = "EUR") {
  return {{"subscription", sub}, {"quantity", quantity}, {"cost", cost}, {"currency", currency}};
}

// On both stores: platform-records' tables in SQLite, and in a schema of
// the Host's own on the tests' PostgreSQL server (OPK_TEST_PG).
class UsageCollection : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << s.message();
    write_data(default_data());
    ASSERT_EQ(server_.start({OPK_PYTHON3, std::string(OPK_SOURCE_DIR) + "/tests/support/usage-server/usage_server.py",
                             "--data", dir_.file("data.json")},
                            dir_.file("server.err")),
              "");
  }

  // eu (EUR, 2 items a page): s1, s2 of tenant:t1 and s3 of tenant:t2;
  // us (USD): s4 of tenant:t3. s5 is suspended, s6 reports nothing.
  static Json default_data() {
    return {{"eu", {{"page_size", 2}, {"items", {item("s1", 3, 12.5), item("s2", 1, 4), item("s3", 2, 8.25)}}}},
            {"us", {{"items", {item("s4", 5, 20, "USD")}}}}};
  }
  void write_data(const Json& data) { std::ofstream(dir_.file("data.json")) << data.dump(); }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(server_.port()) + path; }

  // The hierarchy, platform-records and the job with `settings` (over the
  // defaults: commissions 10% and 5%, fast retries), the regions and
  // subscriptions.
  void start(const std::vector<std::pair<std::string, std::string>>& settings = {}) {
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"tenant:t2", "partner:p1"},
                                                                        {"distributor:d2", "platform"},
                                                                        {"partner:p2", "distributor:d2"},
                                                                        {"tenant:t3", "partner:p2"}})
      host_.add_node(n, p);
    ASSERT_TRUE(host_.load(kPlugins + "/platform-records.so").is_ok());
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{{"partner_percent", "10"},
                                                                               {"distributor_percent", "5"},
                                                                               {"retries", "2"},
                                                                               {"retry_backoff", "10ms"},
                                                                               {"timeout", "5s"}})
      host_.set_setting(k, v);
    for (const auto& [k, v] : settings) host_.set_setting(k, v);
    const Status s = host_.load(kPlugins + "/job-usage-collection.so");
    ASSERT_TRUE(s.is_ok()) << s.message();
    regions(url("/eu"), url("/us"));
    Json subs = Json::array();
    for (auto [id, tenant, status, region] :
         std::vector<std::tuple<const char*, const char*, const char*, const char*>>{
             {"s1", "tenant:t1", "active", "eu"},
             {"s2", "tenant:t1", "active", "eu"},
             {"s3", "tenant:t2", "active", "eu"},
             {"s4", "tenant:t3", "active", "us"},
             {"s5", "tenant:t1", "suspended", "eu"},
             {"s6", "tenant:t2", "active", "eu"}}) {
      host_.add_node(std::string("subscription:") + id, tenant);
      subs.push_back({{"id", id},
                      {"tenant", tenant},
                      {"product", "mail"},
                      {"status", status},
                      {"period_start", "2025-01-01"},
                      {"region", region}});
    }
    import("subscriptions", subs);
  }
  void regions(const std::string& eu, const std::string& us) {
    import("regions", Json::array({{{"id", "eu"},
                                    {"name", "Europe"},
                                    {"api_url", "https://api.eu.example"},
                                    {"identity_url", "https://id.eu.example"},
                                    { "usage_url",
                                      eu }},
                                   { {"id", "us"},
                                     {"name", "America"},
                                     {"api_url", "https://api.us.example"},
                                     {"identity_url", "https://id.us.example"},
                                     {"usage_url", us},
                                     { "currency",
                                       "USD" } }}));
  }
  void import(const std::string& kind, const Json& rows) {
    const auto r = host_.request("POST", "/api/v1/records/" + kind + "/import", rows.dump(),
                                 opk::testing::Principal::administrator(), {{"content-type", "application/json"}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  int64_t count(const std::string& kind, const std::string& where = "1 = 1") {
    return std::stoll(*host_.store_rows("SELECT COUNT(*) FROM p_platform_records_" + kind + " WHERE " + where)[0][0]);
  }
  std::string value(const std::string& sql) {
    const auto rows = host_.store_rows(sql);
    return rows.empty() || !rows[0][0] ? "NULL" : *rows[0][0];
  }
  double number(const std::string& sql) { return std::stod(value(sql)); }
  static const opk::testing::Step* step(const RunResult& r, const std::string& id) {
    for (const auto& s : r.steps)
      if (s.id == id) return &s;
    return nullptr;
  }
  static std::vector<std::string> step_ids(const RunResult& r) {
    std::vector<std::string> ids;
    for (const auto& s : r.steps) ids.push_back(s.id);
    return ids;
  }
  // True when a line logged in step `step_id` contains every one of `parts`.
  static bool logged_in(const RunResult& r, const std::string& step_id, const std::vector<std::string>& parts) {
    for (const auto& l : r.log) {
      if (l.step != step_id) continue;
      bool all = true;
      for (const auto& p : parts) all = all && l.text.find(p) != std::string::npos;
      if (all) return true;
    }
    return false;
  }
  Json server_stats() {
    const std::string out = dir_.file("stats.json");
    const std::string cmd = std::string(OPK_PYTHON3) +
                            " -c \"import urllib.request,sys;sys.stdout.write(urllib.request.urlopen('" +
                            url("/stats") + "').read().decode())\" > '" + out + "'";
    if (std::system(cmd.c_str()) != 0) return Json();
    return Json::parse(slurp(out), nullptr, false);
  }

  ScratchDir dir_;
  ServerProcess server_;
  opk::testing::Host host_;
};

INSTANTIATE_TEST_SUITE_P(Stores, UsageCollection, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// The settings' checks, before the store is used, and the provider's
// timeouts, retries and concurrency, which do not depend on the store: on
// SQLite only, to spare the suite's time.
class UsageCollectionSettings : public UsageCollection {};
INSTANTIATE_TEST_SUITE_P(Stores, UsageCollectionSettings, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(UsageCollection, CollectsEachRegionThenBillsAndPaysCommissions) {
  start();
  const RunResult r = host_.run("usage-collection");  // the host's clock: January 2026
  ASSERT_EQ(r.status, OPK_OK) << r.error << r.summary;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  EXPECT_EQ(r.summary, "2026-01: 4 usage rows from 2 regions; 4 billing lines, 8 commissions");
  EXPECT_EQ(step_ids(r), (std::vector<std::string>{"read-records", "collect-usage: eu", "collect-usage: us",
                                                   "generate-billing", "generate-commissions"}));
  for (const auto& s : r.steps) EXPECT_EQ(s.outcome, OPK_OUTCOME_NORMAL) << s.id << ": " << s.summary;
  EXPECT_NE(step(r, "collect-usage: eu")->summary.find("3 subscriptions stored from 2 pages"), std::string::npos)
      << step(r, "collect-usage: eu")->summary;
  EXPECT_TRUE(logged_in(r, "collect-usage: eu", {"region eu, page 2: 1 item of 1 stored (1 new"}));
  EXPECT_TRUE(logged_in(r, "collect-usage: eu", {"region eu: 1 active subscription reported no usage"}));  // s6

  // Usage, per subscription and month.
  EXPECT_EQ(count("usage", "month = '2026-01'"), 4);
  EXPECT_EQ(number("SELECT cost FROM p_platform_records_usage WHERE subscription = 's1'"), 12.5);
  EXPECT_EQ(number("SELECT quantity FROM p_platform_records_usage WHERE subscription = 's4'"), 5);
  // Billing lines, in the region's currency.
  EXPECT_EQ(count("billing_lines"), 4);
  EXPECT_EQ(value("SELECT tenant || ' ' || region || ' ' || currency FROM p_platform_records_billing_lines WHERE "
                  "subscription = 's4'"),
            "tenant:t3 us USD");
  EXPECT_EQ(number("SELECT amount FROM p_platform_records_billing_lines WHERE subscription = 's3'"), 8.25);
  EXPECT_EQ(value("SELECT run_id FROM p_platform_records_billing_lines WHERE subscription = 's1'"),
            std::to_string(r.run_id));
  // Commissions: the tenant's partner 10%, its distributor 5%, in cents.
  EXPECT_EQ(count("commissions"), 8);
  EXPECT_EQ(value("SELECT party FROM p_platform_records_commissions WHERE subscription = 's1' AND role = 'partner'"),
            "partner:p1");
  EXPECT_EQ(number("SELECT amount FROM p_platform_records_commissions WHERE subscription = 's1' AND role = "
                   "'partner'"),
            1.25);
  EXPECT_EQ(number("SELECT amount FROM p_platform_records_commissions WHERE subscription = 's1' AND role = "
                   "'distributor'"),
            0.63);  // 0.625 rounded
  EXPECT_EQ(value("SELECT party || ' ' || currency FROM p_platform_records_commissions WHERE "
                  "subscription = 's4' AND role = 'distributor'"),
            "distributor:d2 USD");
  // Read as a number: a whole DOUBLE PRECISION's text is 1.0 on SQLite, 1
  // on PostgreSQL.
  EXPECT_EQ(number("SELECT amount FROM p_platform_records_commissions WHERE subscription = 's4' AND role = "
                   "'distributor'"),
            1.0);

  // The output, for templates.
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["month"], "2026-01");
  ASSERT_EQ(out["regions"].size(), 2u);
  EXPECT_EQ(out["regions"][0]["region"], "eu");
  EXPECT_EQ(out["regions"][0]["stored"], 3);
  EXPECT_EQ(out["regions"][0]["pages"], 2);
  EXPECT_EQ(out["regions"][0]["unreported"], 1);
  EXPECT_EQ(out["regions"][0]["cost"], 24.75);
  EXPECT_EQ(out["totals"]["cost"], Json::parse(R"({"EUR": 24.75, "USD": 20.0})"));
  EXPECT_EQ(out["totals"]["billed"], Json::parse(R"({"EUR": 24.75, "USD": 20.0})"));
  EXPECT_EQ(out["totals"]["commission_amount"], Json::parse(R"({"EUR": 3.72, "USD": 3.0})"));
  EXPECT_EQ(out["warning_count"], 0);
  // The provider was asked for the month, page by page.
  const Json stats = server_stats();
  EXPECT_EQ(stats["months"]["2026-01"], 3) << stats;
}

TEST_P(UsageCollection, ARerunUpdatesAndNeverDoubles) {
  start();
  ASSERT_EQ(host_.run("usage-collection", R"({"month": "2025-12"})").outcome, OPK_OUTCOME_NORMAL);
  Json data = default_data();
  data["eu"]["items"][0]["cost"] = 15;
  write_data(data);
  const RunResult r = host_.run("usage-collection", R"({"month": "2025-12"})");
  ASSERT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  EXPECT_TRUE(
      logged_in(r, "collect-usage: eu", {"region eu, page 1: 2 items of 2 stored (0 new, 1 updated, 1 unchanged)"}));
  EXPECT_EQ(count("usage"), 4);
  EXPECT_EQ(count("billing_lines"), 4);
  EXPECT_EQ(count("commissions"), 8);
  EXPECT_EQ(number("SELECT cost FROM p_platform_records_usage WHERE subscription = 's1'"), 15);
  EXPECT_EQ(number("SELECT amount FROM p_platform_records_billing_lines WHERE subscription = 's1'"), 15);
  EXPECT_EQ(number("SELECT amount FROM p_platform_records_commissions WHERE subscription = 's1' AND role = "
                   "'partner'"),
            1.5);
  EXPECT_EQ(value("SELECT run_id FROM p_platform_records_billing_lines WHERE subscription = 's2'"),
            std::to_string(r.run_id));
  // Another month is rows of its own.
  ASSERT_EQ(host_.run("usage-collection", R"({"month": "2026-01"})").outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(count("usage"), 8);
  EXPECT_EQ(count("billing_lines"), 8);
}

TEST_P(UsageCollection, AFailingProviderFailsOnlyItsRegionsStep) {
  start();
  regions(url("/eu"), url("/fail/us"));
  RunResult r = host_.run("usage-collection");
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(step(r, "collect-usage: eu")->outcome, OPK_OUTCOME_NORMAL);
  const auto* us = step(r, "collect-usage: us");
  ASSERT_NE(us, nullptr);
  EXPECT_EQ(us->outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(us->summary.find("page 1: GET http://127.0.0.1:" + std::to_string(server_.port()) +
                             "/fail/us: HTTP 500 Internal Server Error"),
            std::string::npos)
      << us->summary;
  EXPECT_NE(us->summary.find("(after 3 attempts)"), std::string::npos) << us->summary;
  EXPECT_TRUE(logged_in(r, "collect-usage: us", {"region us, page 1: ", "HTTP 500", "retrying in 10 ms"}));
  EXPECT_TRUE(logged_in(r, "collect-usage: us", {"region us, page 1: ", "retrying in 20 ms"}));  // back-off doubles
  EXPECT_EQ(step(r, "generate-billing")->outcome, OPK_OUTCOME_WARNING);
  EXPECT_TRUE(r.logged("region us: no billing lines: its usage was not collected whole this run"));
  EXPECT_EQ(count("usage"), 3);
  EXPECT_EQ(count("billing_lines"), 3);
  EXPECT_EQ(count("billing_lines", "region = 'us'"), 0);
  EXPECT_EQ(Json::parse(r.output_json)["regions"][1]["status"], "failed");
  // The stored usage of the failed region stays; an unreachable provider
  // fails the same way.
  import("usage", Json::array({{ {"subscription", "s4"}, {"month", "2026-01"}, {"quantity", 9}, { "cost", 99 } }}));
  regions(url("/eu"), "http://127.0.0.1:1/usage");
  r = host_.run("usage-collection");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(step(r, "collect-usage: us")->summary.find("page 1: connect 127.0.0.1:1: connection refused"),
            std::string::npos)
      << step(r, "collect-usage: us")->summary;
  EXPECT_EQ(number("SELECT cost FROM p_platform_records_usage WHERE subscription = 's4'"), 99);
}

TEST_P(UsageCollectionSettings, AProviderSlowerThanTheTimeoutFailsItsRegionAfterItsRetries) {
  start({{"timeout", "300ms"}, {"retries", "1"}});
  regions(url("/eu"), url("/slow/2000/us"));
  const RunResult r = host_.run("usage-collection");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(step(r, "collect-usage: eu")->outcome, OPK_OUTCOME_NORMAL);
  const auto* us = step(r, "collect-usage: us");
  ASSERT_NE(us, nullptr);
  EXPECT_EQ(us->outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(us->summary.find("/slow/2000/us: no answer within 300 ms (after 2 attempts)"), std::string::npos)
      << us->summary;
  EXPECT_EQ(count("usage"), 3);
}

TEST_P(UsageCollectionSettings, RetriesPassAfterPassingFailures) {
  start();
  regions(url("/flaky/2/eu"), url("/us"));
  const RunResult r = host_.run("usage-collection");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  EXPECT_TRUE(logged_in(r, "collect-usage: eu", {"region eu, page 1: ", "HTTP 503", "retrying in 10 ms"}));
  EXPECT_TRUE(logged_in(r, "collect-usage: eu", {"region eu, page 1: 2 items of 2 stored", "after 3 attempts"}));
  EXPECT_EQ(count("usage"), 4);
}

TEST_P(UsageCollection, MalformedAnswersFailTheRegionNamingWhatIsWrong) {
  start({{"retries", "0"}});
  struct Case {
    std::string path, expected;
  };
  for (const Case& c : std::vector<Case>{
           {"/malformed/eu", "page 1: answer body: not JSON ('{\"items\": [{\"subscription\":')"},
           {"/notobject/eu", "page 1: answer body: expected a JSON object"},
           {"/badnext/eu", "page 1: answer body: next: expected a cursor (a string) or null, got number"}}) {
    SCOPED_TRACE(c.path);
    regions(url(c.path), url("/us"));
    const RunResult r = host_.run("usage-collection");
    EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
    const auto* eu = step(r, "collect-usage: eu");
    ASSERT_NE(eu, nullptr);
    EXPECT_EQ(eu->outcome, OPK_OUTCOME_ERROR);
    EXPECT_NE(eu->summary.find(c.expected), std::string::npos) << eu->summary;
    EXPECT_TRUE(logged_in(r, "collect-usage: eu", {"region eu, page 1: answer body", "(a malformed answer)"}));
    EXPECT_EQ(step(r, "collect-usage: us")->outcome, OPK_OUTCOME_NORMAL);
    EXPECT_EQ(count("usage", "subscription <> 's4'"), 0);
  }
}

TEST_P(UsageCollection, BadItemsAreNamedAndTheGoodOnesStored) {
  start();
  Json data = default_data();
  data["eu"]["page_size"] = 100;
  data["eu"]["items"] = Json::array({item("s1", 3, 12.5),
                                     item("s99", 1, 1),
                                     item("s2", -2, 4),
                                     item("s3", 2, 8.25, "USD"),
                                     item("s5", 1, 1),
                                     item("s4", 1, 1),
                                     "not an item",
                                     {{"subscription", "s6"}, {"quantity", "7"}, {"cost", 1}},
                                     item("s1", 1, 1)});
  write_data(data);
  import("usage", Json::array({{ {"subscription", "s2"}, {"month", "2026-01"}, {"quantity", 4}, { "cost", 40 } }}));
  const RunResult r = host_.run("usage-collection");
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING) << r.summary;
  EXPECT_EQ(step(r, "collect-usage: eu")->outcome, OPK_OUTCOME_WARNING);
  const std::string at = "region eu, page 1, items[";
  for (const auto& line : std::vector<std::string>{
           at + "1] (subscription s99).subscription: unknown subscription: platform-records has no subscription 's99'",
           at + "2] (subscription s2).quantity: must be 0 or more, got -2.0",
           at + "3] (subscription s3).currency: 'USD' does not match the region's currency EUR",
           at + "4] (subscription s5).subscription: the subscription is suspended, not active",
           at + "5] (subscription s4).subscription: belongs to region us, not eu",
           at + "6]: expected an object, got string",
           at + "7] (subscription s6).quantity: expected a number, got \"7\"",
           at + "8] (subscription s1).subscription: reported again (first on page 1); the first report is kept"})
    EXPECT_TRUE(logged_in(r, "collect-usage: eu", {line + "; not stored"})) << line;
  EXPECT_NE(step(r, "collect-usage: eu")->summary.find("1 subscription stored from 1 page"), std::string::npos)
      << step(r, "collect-usage: eu")->summary;
  EXPECT_NE(step(r, "collect-usage: eu")->summary.find("8 items refused"), std::string::npos);
  // The good item stored; what was stored before for a refused one stays.
  EXPECT_EQ(number("SELECT cost FROM p_platform_records_usage WHERE subscription = 's1'"), 12.5);
  EXPECT_EQ(number("SELECT cost FROM p_platform_records_usage WHERE subscription = 's2'"), 40);
  EXPECT_EQ(count("billing_lines", "region = 'eu'"), 1);
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["warning_count"], 8);
  EXPECT_EQ(out["regions"][0]["refused"], 8);
}

TEST_P(UsageCollection, ADryRunCollectsAndReportsAndWritesNothing) {
  start();
  opk::testing::RunOptions dry;
  dry.dry_run = true;
  const RunResult r = host_.run("usage-collection", "{}", dry);
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  EXPECT_EQ(r.summary,
            "dry run: 2026-01: 4 usage rows from 2 regions; 4 billing lines, 8 commissions; nothing written");
  EXPECT_TRUE(
      logged_in(r, "generate-billing", {"dry run: would write 4 billing lines for 2026-01 (24.75 EUR, 20 USD)"}));
  EXPECT_EQ(count("usage"), 0);
  EXPECT_EQ(count("billing_lines"), 0);
  EXPECT_EQ(count("commissions"), 0);
  EXPECT_EQ(Json::parse(r.output_json)["dry_run"], true);
}

TEST_P(UsageCollection, ACancelStopsBetweenPagesAndBillsNothing) {
  start();
  Json data = default_data();
  data["eu"]["page_size"] = 1;
  write_data(data);
  regions(url("/slow/400/eu"), url("/us"));
  opk::testing::RunOptions options;
  options.cancel_after_ms = 1000;
  const RunResult r = host_.run("usage-collection", "{}", options);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(step(r, "collect-usage: eu")->outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(step(r, "generate-billing"), nullptr);
  // Every page stored is whole: what the output counts is what the store has.
  const Json out = Json::parse(r.output_json);
  const int64_t stored = out["regions"][0]["stored"].get<int64_t>();
  EXPECT_LT(stored, 3);
  EXPECT_EQ(count("usage"), stored);
  EXPECT_EQ(count("billing_lines"), 0);
  EXPECT_EQ(count("commissions"), 0);
  EXPECT_TRUE(r.logged("cancelled: every page and batch written before the cancel is whole"));
}

TEST_P(UsageCollection, TenantAndRegionNarrowTheRun) {
  start();
  RunResult r = host_.run("usage-collection", R"({"tenant": "tenant:t1"})");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  EXPECT_EQ(step_ids(r), (std::vector<std::string>{"read-records", "collect-usage: eu", "generate-billing",
                                                   "generate-commissions"}));
  EXPECT_EQ(count("usage"), 2);  // s1, s2; s3 is tenant:t2's
  EXPECT_EQ(Json::parse(r.output_json)["regions"][0]["ignored"], 1);
  r = host_.run("usage-collection", R"({"region": "us"})");
  EXPECT_EQ(step_ids(r), (std::vector<std::string>{"read-records", "collect-usage: us", "generate-billing",
                                                   "generate-commissions"}));
  EXPECT_EQ(count("usage"), 3);
  r = host_.run("usage-collection", R"({"region": "mars"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(r.logged("parameter region: no region 'mars' is stored in platform-records")) << r.summary;
  r = host_.run("usage-collection", R"({"month": "2026-02"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(r.logged("parameter month: 2026-02 is after the current month 2026-01")) << r.summary;
  EXPECT_EQ(host_.run("usage-collection", R"({"month": "2026-13"})").status, OPK_ERR_INVALID_ARGUMENT);
}

TEST_P(UsageCollectionSettings, FetchesAtMostConcurrencyRegionsAtOnce) {
  start({{"concurrency", "2"}});
  Json data = default_data();
  Json rows = Json::array();
  for (const char* id : {"r1", "r2", "r3", "r4"})
    rows.push_back({{"id", id},
                    {"name", id},
                    {"api_url", "https://api.example"},
                    {"identity_url", "https://id.example"},
                    {"usage_url", url(std::string("/slow/300/") + id)}});
  import("regions", rows);
  const RunResult r = host_.run("usage-collection");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  const Json stats = server_stats();
  EXPECT_EQ(stats["max_in_flight"], 2) << stats;
}

TEST_P(UsageCollectionSettings, BadSettingsRefuseThePluginNamingTheKey) {
  host_.set_setting("partner_percent", "150");
  ASSERT_TRUE(host_.load(kPlugins + "/platform-records.so").is_ok());
  Status s = host_.load(kPlugins + "/job-usage-collection.so");
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("partner_percent"), std::string::npos) << s.message();
  opk::testing::Host other;
  other.set_setting("currency", "euro");
  ASSERT_TRUE(other.load(kPlugins + "/platform-records.so").is_ok());
  s = other.load(kPlugins + "/job-usage-collection.so");
  EXPECT_NE(s.message().find("currency = \"euro\""), std::string::npos) << s.message();
}

}  // namespace
}  // namespace opk::test
