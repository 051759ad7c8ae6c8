// usage-data-cleanup (plugin job-usage-data-cleanup) on the SDK's test host
// with platform-records' usage rows: off by default and saying so, a dry
// run that counts per month and deletes nothing, deletion in bounded
// batches (oldest months first, never a month the retention keeps), a
// rerun with nothing left, a cancel between batches that leaves every batch
// whole, max_batches, the audit row, and bad parameters and settings named.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace opk::test {
namespace {

using opk::testing::RunResult;

const std::string kPlugins = OPK_BUNDLED_PLUGIN_DIR;
constexpr int64_t kDec15 = 1797336000000;  // 2026-12-15T12:00:00Z
constexpr int64_t kMinute = 60'000;

// On both stores: platform-records' usage rows in SQLite, and in a schema
// of the Host's own on the tests' PostgreSQL server (OPK_TEST_PG).
class UsageCleanup : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  // Loads platform-records and the cleanup with `settings`, and imports 3
  // subscriptions with usage in 2024-09 .. 2024-12 and 2026-11 (the
  // retention's cutoff at 24 months is 2024-12: 9 rows are past it).
  void start(const std::vector<std::pair<std::string, std::string>>& settings = {}) {
    host_.clock().set(kDec15);
    ASSERT_TRUE(host_.load(kPlugins + "/platform-records.so").is_ok());
    for (const auto& [k, v] : settings) host_.set_setting(k, v);
    const Status s = host_.load(kPlugins + "/job-usage-data-cleanup.so");
    ASSERT_TRUE(s.is_ok()) << s.message();
    host_.add_node("tenant:t1", "platform");
    Json subs = Json::array(), usage = Json::array();
    for (const char* id : {"s1", "s2", "s3"}) {
      host_.add_node(std::string("subscription:") + id, "tenant:t1");
      subs.push_back({{"id", id},
                      {"tenant", "tenant:t1"},
                      {"product", "mail"},
                      {"status", "active"},
                      {"period_start", "2024-01-01"}});
      for (const char* month : {"2024-09", "2024-10", "2024-11", "2024-12", "2026-11"})
        usage.push_back({{"subscription", id}, {"month", month}, {"quantity", 1}, {"cost", 2.5}});
    }
    import("subscriptions", subs);
    import("usage", usage);
  }
  void import(const std::string& kind, const Json& rows) {
    const auto r = host_.request("POST", "/api/v1/records/" + kind + "/import", rows.dump(),
                                 opk::testing::Principal::administrator(), {{"content-type", "application/json"}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  int64_t rows(const std::string& where = "1 = 1") {
    return std::stoll(*host_.store_rows("SELECT COUNT(*) FROM p_platform_records_usage WHERE " + where)[0][0]);
  }

  // The audit rows of deletions (imports write their own).
  std::vector<opk::testing::AuditRow> deletions() {
    std::vector<opk::testing::AuditRow> out;
    for (auto& a : host_.audit_rows())
      if (a.action == "records.delete") out.push_back(a);
    return out;
  }

  opk::testing::Host host_;
};

INSTANTIATE_TEST_SUITE_P(Stores, UsageCleanup, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// The settings' checks, before the store is used: on SQLite only.
class UsageCleanupSettings : public UsageCleanup {};
INSTANTIATE_TEST_SUITE_P(Stores, UsageCleanupSettings, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(UsageCleanup, OffByDefaultItSaysWhyAndDeletesNothing) {
  start();
  const RunResult r = host_.run("usage-data-cleanup");
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(r.summary,
            "nothing deleted: deletion is off ([plugin.job-usage-data-cleanup] allow_delete = false); 9 rows of 3 "
            "months before 2024-12 are past the retention");
  EXPECT_TRUE(r.logged("usage of 2024-09: 3 rows past the retention"));
  EXPECT_EQ(rows(), 15);
  EXPECT_TRUE(deletions().empty());
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["allowed"], false);
  EXPECT_EQ(out["expired"], 9);
  EXPECT_EQ(out["deleted"], 0);
}

TEST_P(UsageCleanup, DryRunCountsPerMonthAndChangesNothing) {
  start({{"allow_delete", "true"}});
  const RunResult r = host_.run("usage-data-cleanup", "{}", {.dry_run = true});
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.summary, "dry run: would delete 9 rows of 3 months before 2024-12; nothing deleted");
  EXPECT_TRUE(r.logged("dry run: would delete 9 rows of 3 months before 2024-12 (2024-09: 3, 2024-10: 3, 2024-11: 3)"));
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["months"], Json::parse(R"([{"month": "2024-09", "rows": 3}, {"month": "2024-10", "rows": 3},
                                          {"month": "2024-11", "rows": 3}])"));
  EXPECT_EQ(out["dry_run"], true);
  EXPECT_EQ(rows(), 15);
  EXPECT_TRUE(deletions().empty());
}

TEST_P(UsageCleanup, DeletesInBoundedBatchesOldestFirstThenFindsNothingOnARerun) {
  start({{"allow_delete", "true"}, {"batch_size", "2"}});
  const RunResult r = host_.run("usage-data-cleanup");
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(r.summary, "deleted 9 rows of months before 2024-12 in 5 batches");
  EXPECT_TRUE(r.logged("batch 1: deleted 2 rows (2024-09: 2)"));
  EXPECT_TRUE(r.logged("batch 2: deleted 2 rows (2024-09: 1, 2024-10: 1)"));
  EXPECT_TRUE(r.logged("batch 5: deleted 1 row (2024-11: 1)"));
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[0].id, "count");
  EXPECT_EQ(r.steps[1].id, "delete");
  EXPECT_EQ(rows(), 6);
  EXPECT_EQ(rows("month < '2024-12'"), 0);
  EXPECT_EQ(rows("month = '2024-12'"), 3);  // the retention keeps the cutoff month
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["deleted"], 9);
  EXPECT_EQ(out["batches"], 5);
  // One audit row, as the plugin's system identity.
  const auto audit = deletions();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "records.delete");
  EXPECT_EQ(audit[0].target, "records:usage");
  EXPECT_EQ(audit[0].user_id, "system:job-usage-data-cleanup");
  EXPECT_EQ(Json::parse(audit[0].after_json)["deleted"], 9);
  EXPECT_NE(audit[0].reason.find("run " + std::to_string(r.run_id)), std::string::npos) << audit[0].reason;

  const RunResult again = host_.run("usage-data-cleanup");
  EXPECT_EQ(again.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(again.summary, "no usage before 2024-12: nothing to delete");
  EXPECT_EQ(rows(), 6);
  EXPECT_EQ(deletions().size(), 1u);
}

TEST_P(UsageCleanup, ACancelStopsBetweenBatchesEachWhole) {
  start({{"allow_delete", "true"}, {"batch_size", "2"}, {"batch_pause", "1m"}});
  // Batches at 0, 1 and 2 minutes; the cancel comes during the third pause.
  const RunResult r = host_.run("usage-data-cleanup", "{}", {.cancel_at_ms = kDec15 + 2 * kMinute + 30'000});
  EXPECT_EQ(r.status, OPK_ERR_CANCELLED);
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(
      r.logged("cancelled between batches: deleted 6 rows of months before 2024-12 in 3 batches; every batch "
               "is whole, the rest stays for the next run"))
      << (r.log.empty() ? "" : r.log.back().text);
  EXPECT_EQ(rows(), 9);
  EXPECT_EQ(rows("month = '2024-09'"), 0);
  EXPECT_EQ(rows("month = '2024-10'"), 0);
  EXPECT_EQ(rows("month = '2024-11'"), 3);
  ASSERT_EQ(deletions().size(), 1u);
  EXPECT_EQ(Json::parse(deletions()[0].after_json)["stopped"], "cancelled");
  // The next run deletes the rest.
  const RunResult rest = host_.run("usage-data-cleanup");
  EXPECT_EQ(rest.summary, "deleted 3 rows of months before 2024-12 in 2 batches");
  EXPECT_EQ(rows(), 6);
}

TEST_P(UsageCleanup, AFailedBatchDeletesNothingOfItsOwnAndEndsTheRunError) {
  start({{"allow_delete", "true"}, {"batch_size", "2"}});
  // The store refuses to delete 2024-10's rows (a trigger the test adds
  // behind the plugins' backs): the second batch (the last of 2024-09 and
  // the first of 2024-10) fails whole.
  if (GetParam() == "postgresql") {
    host_.store_rows(
        "CREATE FUNCTION keep_october() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF OLD.month = '2024-10' THEN "
        "RAISE EXCEPTION 'disk full'; END IF; RETURN OLD; END $$");
    host_.store_rows(
        "CREATE TRIGGER keep_october BEFORE DELETE ON p_platform_records_usage FOR EACH ROW EXECUTE FUNCTION "
        "keep_october()");
  } else {
    host_.store_rows(
        "CREATE TRIGGER keep_october BEFORE DELETE ON p_platform_records_usage WHEN old.month = '2024-10' BEGIN "
        "SELECT RAISE(ABORT, 'disk full'); END");
  }
  const RunResult r = host_.run("usage-data-cleanup");
  EXPECT_NE(r.status, OPK_OK);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_TRUE(r.logged("batch 2 failed and deleted nothing: records delete_usage: ")) << r.summary;
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[1].outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(r.steps[1].summary, "deleted 2 rows of months before 2024-12 in 1 batch, then a batch failed");
  EXPECT_EQ(rows("month = '2024-09'"), 1);
  EXPECT_EQ(rows("month = '2024-10'"), 3);
  ASSERT_EQ(deletions().size(), 1u);
  EXPECT_EQ(Json::parse(deletions()[0].after_json)["stopped"], "failed");
}

TEST_P(UsageCleanup, ParametersNarrowTheRunNeverWidenIt) {
  start({{"allow_delete", "true"}, {"batch_size", "2"}});
  RunResult r = host_.run("usage-data-cleanup", R"({"before": "2024-10"})");
  EXPECT_EQ(r.summary, "deleted 3 rows of months before 2024-10 in 2 batches");
  EXPECT_EQ(rows(), 12);
  r = host_.run("usage-data-cleanup", R"({"max_batches": 1})");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(r.summary,
            "stopped at max_batches = 1: deleted 2 rows of months before 2024-12 in 1 batch; the rest stays for the "
            "next run");
  EXPECT_EQ(rows(), 10);
  // Later than the retention allows: refused, named, nothing deleted.
  r = host_.run("usage-data-cleanup", R"({"before": "2026-11"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_TRUE(
      r.logged("parameter before: 2026-11 is later than the retention's cutoff 2024-12 "
               "([plugin.job-usage-data-cleanup] retention_months = 24): a run never deletes usage the "
               "retention keeps"))
      << r.summary;
  EXPECT_EQ(rows(), 10);
  r = host_.run("usage-data-cleanup", R"({"before": "2024-13"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.error.find("before"), std::string::npos) << r.error;
  r = host_.run("usage-data-cleanup", R"({"max_batches": 0})");
  EXPECT_NE(r.error.find("max_batches"), std::string::npos) << r.error;
}

TEST_P(UsageCleanup, RetentionMonthsMovesTheCutoff) {
  start({{"allow_delete", "true"}, {"retention_months", "1"}});
  const RunResult r = host_.run("usage-data-cleanup");
  EXPECT_EQ(r.summary, "deleted 12 rows of months before 2026-11 in 1 batch");
  EXPECT_EQ(rows(), 3);
}

TEST_P(UsageCleanupSettings, BadSettingsRefuseThePluginNamingTheKey) {
  ASSERT_TRUE(host_.load(kPlugins + "/platform-records.so").is_ok());
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"allow_delete", "maybe"}, {"retention_months", "0"}, {"batch_size", "20000"}, {"batch_pause", "2h"}}) {
    opk::testing::Host host;
    ASSERT_TRUE(host.load(kPlugins + "/platform-records.so").is_ok());
    host.set_setting(key, value);
    const Status s = host.load(kPlugins + "/job-usage-data-cleanup.so");
    EXPECT_FALSE(s.is_ok()) << key;
    EXPECT_NE(s.message().find(key), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace opk::test
