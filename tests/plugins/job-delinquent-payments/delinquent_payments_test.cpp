// delinquent-payment-notifications (plugin job-delinquent-payments) on the
// SDK's test host with platform-records' invoices, its reminders seen
// through the host's capture of opk.events/1: open invoices past their due
// date marked overdue oldest first, one reminder per overdue invoice with
// its key, payload and billing contact; a rerun (and a rerun that lost the
// plugin's record of what it sent) sends none again; reminders off, then
// invoices left overdue reminded once; a dry run that changes and emits
// nothing; a cancel between batches that leaves every batch whole; bad
// records and parameters named.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace opk::test {
namespace {

using opk::testing::RunResult;

const std::string kPlugins = OPK_BUNDLED_PLUGIN_DIR;
constexpr int64_t kDec15 = 1797336000000;  // 2026-12-15T12:00:00Z
constexpr int64_t kMinute = 60'000;
constexpr const char* kType = "delinquent-payment-notifications";
constexpr const char* kKind = "plugin.job-delinquent-payments.invoice.overdue";

// On both stores: platform-records' and the job's tables and statements in
// SQLite, and in a schema of the Host's own on the tests' PostgreSQL server
// (OPK_TEST_PG).
class DelinquentPayments : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  // Loads platform-records and the job type with `settings`; imports t1's
  // billing contact and invoices: i1 (t1, due 12-01), i2 (t1, 12-14) and i4
  // (t2, 11-01) are open and past due on 2026-12-15; i3 (t2, due today)
  // and i6 (t2, 12-20) are not; i5 is paid; i7 (t1, 09-01) is overdue
  // already and was never reminded.
  void start(const std::vector<std::pair<std::string, std::string>>& settings = {}) {
    host_.clock().set(kDec15);
    ASSERT_TRUE(host_.load(kPlugins + "/platform-records.so").is_ok());
    for (const auto& [k, v] : settings) host_.set_setting(k, v);
    const Status s = host_.load(kPlugins + "/job-delinquent-payments.so");
    ASSERT_TRUE(s.is_ok()) << s.message();
    host_.add_node("tenant:t1", "platform");
    host_.add_node("tenant:t2", "platform");
    import("billing", Json::array(
                          {{ {"tenant", "tenant:t1"},
                             {"contact", "Ann Payer"},
                             { "email",
                               "ann@t1.example" } }}));
    Json invoices = Json::array();
    auto invoice = [&](const char* id, const char* tenant, const char* due, const char* status) {
      invoices.push_back({{"id", id},
                          {"tenant", tenant},
                          {"amount", 120.5},
                          {"currency", "EUR"},
                          {"due_date", due},
                          {"status", status}});
    };
    invoice("i1", "tenant:t1", "2026-12-01", "open");
    invoice("i2", "tenant:t1", "2026-12-14", "open");
    invoice("i3", "tenant:t2", "2026-12-15", "open");
    invoice("i4", "tenant:t2", "2026-11-01", "open");
    invoice("i5", "tenant:t1", "2026-10-01", "paid");
    invoice("i6", "tenant:t2", "2026-12-20", "open");
    invoice("i7", "tenant:t1", "2026-09-01", "overdue");
    import("invoices", invoices);
  }
  void import(const std::string& kind, const Json& rows) {
    const auto r = host_.request("POST", "/api/v1/records/" + kind + "/import", rows.dump(),
                                 opk::testing::Principal::administrator(), {{"content-type", "application/json"}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // Invoice `id`'s status as stored.
  std::string status(const std::string& id) {
    auto rows = host_.store_rows("SELECT status FROM p_platform_records_invoices WHERE id = '" + id + "'");
    return rows.empty() ? "" : rows[0][0].value_or("");
  }
  // The invoices of the reminders emitted, sorted (a run emits several at
  // once, so their order in the log is not the invoices' order).
  std::vector<std::string> reminded() {
    std::vector<std::string> out;
    for (const auto& e : host_.events()) {
      EXPECT_EQ(e.kind, kKind);
      out.push_back(e.subject);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // The reminder of invoice `id`; fails the test if there is not one.
  opk::testing::Event reminder(const std::string& id) {
    std::vector<opk::testing::Event> found;
    for (const auto& e : host_.events())
      if (e.subject == "invoice:" + id) found.push_back(e);
    EXPECT_EQ(found.size(), 1u) << id;
    return found.empty() ? opk::testing::Event{} : found[0];
  }
  int64_t recorded() {
    return std::stoll(*host_.store_rows("SELECT COUNT(*) FROM p_job_delinquent_payments_reminders")[0][0]);
  }

  opk::testing::Host host_;
};

using Ids = std::vector<std::string>;

INSTANTIATE_TEST_SUITE_P(Stores, DelinquentPayments, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// The settings' checks, before the store is used: on SQLite only.
class DelinquentPaymentsSettings : public DelinquentPayments {};
INSTANTIATE_TEST_SUITE_P(Stores, DelinquentPaymentsSettings, ::testing::Values("sqlite"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(DelinquentPayments, MarksPastDueInvoicesAndRemindsEachOnceWithItsContact) {
  start({{"send_reminders", "true"}});
  const RunResult r = host_.run(kType);
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(r.summary, "marked 3 invoices overdue, reminded 4");
  EXPECT_TRUE(r.logged("batch 1: marked 3 invoices overdue: i4, i1, i2")) << "oldest due first";
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[0].id, "mark");
  EXPECT_EQ(r.steps[1].id, "remind");
  EXPECT_EQ(r.steps[1].summary, "reminded 4 invoices");
  for (const char* id : {"i1", "i2", "i4", "i7"}) EXPECT_EQ(status(id), "overdue") << id;
  EXPECT_EQ(status("i3"), "open") << "due today is not past due";
  EXPECT_EQ(status("i5"), "paid");
  EXPECT_EQ(status("i6"), "open");

  // One event per overdue invoice.
  EXPECT_EQ(reminded(), (Ids{"invoice:i1", "invoice:i2", "invoice:i4", "invoice:i7"}));
  const opk::testing::Event i1 = reminder("i1"), i4 = reminder("i4");
  EXPECT_EQ(i1.key, "invoice-overdue:i1");
  EXPECT_EQ(i1.scope, "tenant:t1");
  EXPECT_EQ(i4.scope, "tenant:t2");
  const Json p = Json::parse(i1.payload_json);
  EXPECT_EQ(p["invoice"]["id"], "i1");
  EXPECT_EQ(p["invoice"]["status"], "overdue");
  EXPECT_EQ(p["invoice"]["amount"], 120.5);
  EXPECT_EQ(p["invoice"]["due_date"], "2026-12-01");
  EXPECT_EQ(p["billing"]["email"], "ann@t1.example");
  EXPECT_EQ(p["days_overdue"], 14);
  EXPECT_EQ(p["as_of"], "2026-12-15");
  EXPECT_EQ(p["run_id"], r.run_id);
  EXPECT_TRUE(Json::parse(i4.payload_json)["billing"].is_null()) << "t2 has no billing contact";

  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["marked"], 3);
  EXPECT_EQ(out["marked_ids"], Json::parse(R"(["i4", "i1", "i2"])"));
  EXPECT_EQ(out["reminded"], 4);
  EXPECT_EQ(out["reminded_ids"], Json::parse(R"(["i1", "i2", "i4", "i7"])"));
  EXPECT_EQ(out["already_reminded"], 0);
  EXPECT_EQ(out["send_reminders"], true);
  EXPECT_EQ(recorded(), 4);
}

TEST_P(DelinquentPayments, ARerunSendsNoSecondReminderEvenWithoutItsOwnRecord) {
  start({{"send_reminders", "true"}});
  ASSERT_EQ(host_.run(kType).outcome, OPK_OUTCOME_NORMAL);
  ASSERT_EQ(host_.events().size(), 4u);
  RunResult again = host_.run(kType);
  EXPECT_EQ(again.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(again.summary, "marked 0 invoices overdue, reminded 0");
  EXPECT_EQ(host_.events().size(), 4u);
  // A run that stopped after its emits and before recording them: the
  // plugin's own record is gone, the keys still hold.
  host_.store_rows("DELETE FROM p_job_delinquent_payments_reminders");
  again = host_.run(kType);
  EXPECT_EQ(again.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(again.summary, "marked 0 invoices overdue, reminded 0");
  EXPECT_EQ(again.steps[1].summary, "reminded 0 invoices (4 more had been reminded already)");
  EXPECT_EQ(Json::parse(again.output_json)["already_reminded"], 4);
  EXPECT_EQ(host_.events().size(), 4u);
  EXPECT_EQ(recorded(), 4);
  // A later due date passing reminds that invoice alone.
  host_.clock().set(kDec15 + 6 * 24 * 60 * kMinute);  // 2026-12-21
  const RunResult later = host_.run(kType);
  EXPECT_EQ(later.summary, "marked 2 invoices overdue, reminded 2");
  EXPECT_EQ(reminded(), (Ids{"invoice:i1", "invoice:i2", "invoice:i3", "invoice:i4", "invoice:i6", "invoice:i7"}));
}

TEST_P(DelinquentPayments, OffByDefaultItMarksAndSaysWhyNoReminderWent) {
  start();
  const RunResult r = host_.run(kType);
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.summary, "marked 3 invoices overdue, reminders off");
  EXPECT_TRUE(
      r.logged("reminders are off ([plugin.job-delinquent-payments] send_reminders = false): overdue invoices get "
               "their one reminder from the first run after they are turned on"));
  EXPECT_TRUE(host_.events().empty());
  EXPECT_EQ(status("i1"), "overdue");
  EXPECT_EQ(Json::parse(r.output_json)["send_reminders"], false);
}

TEST_P(DelinquentPayments, InvoicesLeftOverdueWhileRemindersWereOffAreRemindedOnceWhenOn) {
  // As a run with reminders off leaves them: i1, i2 and i4 overdue, none
  // reminded (the setting is read at load, so the state is set up here).
  start({{"send_reminders", "true"}});
  host_.store_rows("UPDATE p_platform_records_invoices SET status = 'overdue' WHERE id IN ('i1', 'i2', 'i4')");
  const RunResult r = host_.run(kType);
  EXPECT_EQ(r.summary, "marked 0 invoices overdue, reminded 4");
  EXPECT_EQ(reminded(), (Ids{"invoice:i1", "invoice:i2", "invoice:i4", "invoice:i7"}));
  EXPECT_EQ(host_.run(kType).summary, "marked 0 invoices overdue, reminded 0");
  EXPECT_EQ(host_.events().size(), 4u);
}

TEST_P(DelinquentPayments, DryRunReportsWhatItWouldDoAndChangesNothing) {
  start({{"send_reminders", "true"}});
  const RunResult r = host_.run(kType, "{}", {.dry_run = true});
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.summary, "dry run: would mark 3 invoices overdue, would remind 4");
  EXPECT_TRUE(r.logged("dry run: would mark 3 invoices due before 2026-12-15: i4, i1, i2"));
  EXPECT_EQ(r.steps[0].summary, "would mark 3 invoices due before 2026-12-15; nothing changed");
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["dry_run"], true);
  EXPECT_EQ(out["reminded_ids"], Json::parse(R"(["i4", "i1", "i2", "i7"])"));
  EXPECT_TRUE(host_.events().empty());
  EXPECT_EQ(recorded(), 0);
  for (const char* id : {"i1", "i2", "i4"}) EXPECT_EQ(status(id), "open") << id;
}

TEST_P(DelinquentPayments, ACancelStopsBetweenBatchesEachWhole) {
  start({{"send_reminders", "true"}, {"batch_size", "1"}, {"batch_pause", "1m"}});
  // Batches at 0 and 1 minute; the cancel comes during the second pause.
  const RunResult r = host_.run(kType, "{}", {.cancel_at_ms = kDec15 + kMinute + 30'000});
  EXPECT_EQ(r.status, OPK_ERR_CANCELLED);
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(
      r.logged("cancelled between batches: marked 2 invoices overdue, reminded 0; every batch is whole, the rest is "
               "for the next run"))
      << (r.log.empty() ? "" : r.log.back().text);
  EXPECT_EQ(status("i4"), "overdue");
  EXPECT_EQ(status("i1"), "overdue");
  EXPECT_EQ(status("i2"), "open");
  EXPECT_TRUE(host_.events().empty()) << "no reminder step after a cancel";
  // The next run marks the rest and reminds every overdue invoice once.
  const RunResult rest = host_.run(kType);
  EXPECT_EQ(rest.summary, "marked 1 invoice overdue, reminded 4");
  EXPECT_EQ(host_.events().size(), 4u);
}

TEST_P(DelinquentPayments, BadRecordsAreNamedAndLeftAsTheyAre) {
  start({{"send_reminders", "true"}});
  // Rows that slipped past the import's checks (written behind its back).
  host_.store_rows(
      "INSERT INTO p_platform_records_invoices (id, tenant, subscription, amount, currency, due_date, status) VALUES "
      "('i8', 'tenant:t1', NULL, 10, 'EUR', '2026/12/01', 'open'), "
      "('i9', 'tenant:ghost', NULL, 10, 'EUR', '2026-12-01', 'open'), "
      "('i0', 'acme', NULL, 10, 'EUR', '2026-12-01', 'overdue')");
  const RunResult r = host_.run(kType);
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(r.outcome, OPK_OUTCOME_WARNING);
  EXPECT_EQ(r.summary, "marked 4 invoices overdue, reminded 4, 1 skipped (bad records), 2 reminders refused");
  EXPECT_TRUE(r.logged("invoice i0: no reminder sent: tenant: 'acme' is not a tenant (tenant:<name>)")) << r.summary;
  EXPECT_TRUE(r.logged("invoice i8: due_date: '2026/12/01' is not a date YYYY-MM-DD; the invoice stays open"));
  EXPECT_TRUE(r.logged("invoice i9: no reminder sent: scope:")) << r.summary;
  EXPECT_EQ(status("i8"), "open");
  EXPECT_EQ(status("i9"), "overdue");
  const Json out = Json::parse(r.output_json);
  EXPECT_EQ(out["skipped"][0]["id"], "i8");
  EXPECT_EQ(out["skipped"][0]["field"], "due_date");
  EXPECT_EQ(out["not_reminded"][0]["id"], "i0");
  EXPECT_EQ(out["not_reminded"][1]["id"], "i9");
  EXPECT_EQ(host_.events().size(), 4u);
  EXPECT_EQ(recorded(), 4) << "i9 is not recorded as reminded: the next run tries again";
  // Once its tenant exists, the next run reminds it.
  host_.add_node("tenant:ghost", "platform");
  const RunResult again = host_.run(kType);
  EXPECT_EQ(again.summary, "marked 0 invoices overdue, reminded 1, 1 skipped (bad records), 1 reminders refused");
  EXPECT_EQ(host_.events().back().subject, "invoice:i9");
}

TEST_P(DelinquentPayments, ParametersNarrowTheRunAndBadOnesAreNamed) {
  start({{"send_reminders", "true"}});
  RunResult r = host_.run(kType, R"({"tenant": "tenant:t2"})");
  EXPECT_EQ(r.summary, "marked 1 invoice overdue, reminded 1");
  EXPECT_EQ(reminded(), (Ids{"invoice:i4"}));
  r = host_.run(kType, R"({"as_of": "2026-12-02", "max": 1})");
  EXPECT_EQ(r.summary, "marked 1 invoice overdue, reminded 1");
  EXPECT_EQ(status("i1"), "overdue");
  EXPECT_EQ(status("i2"), "open");
  r = host_.run(kType, R"({"as_of": "2026-12-16"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(r.logged("parameter as_of: 2026-12-16 is after today (2026-12-15, UTC)")) << r.summary;
  r = host_.run(kType, R"({"as_of": "2026-02-30"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(r.logged("parameter as_of: expected a date YYYY-MM-DD, got '2026-02-30'")) << r.summary;
  r = host_.run(kType, R"({"tenant": "tenant:nobody"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(r.logged("parameter tenant: no tenant 'tenant:nobody' in the hierarchy")) << r.summary;
  r = host_.run(kType, R"({"as_of": "12/01/2026"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.error.find("as_of"), std::string::npos) << r.error;
  r = host_.run(kType, R"({"max": 0})");
  EXPECT_NE(r.error.find("max"), std::string::npos) << r.error;
  EXPECT_EQ(host_.events().size(), 2u) << "refused runs emit nothing";
}

TEST_P(DelinquentPaymentsSettings, BadSettingsRefuseThePluginNamingTheKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{{"send_reminders", "maybe"},
                                                                                   {"batch_size", "0"},
                                                                                   {"batch_size", "20000"},
                                                                                   {"batch_pause", "2h"},
                                                                                   {"emit_concurrency", "0"}}) {
    opk::testing::Host host;
    ASSERT_TRUE(host.load(kPlugins + "/platform-records.so").is_ok());
    host.set_setting(key, value);
    const Status s = host.load(kPlugins + "/job-delinquent-payments.so");
    EXPECT_FALSE(s.is_ok()) << key;
    EXPECT_NE(s.message().find(key), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace opk::test
