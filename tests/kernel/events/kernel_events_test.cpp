// The event log in a real kernel: every way a run ends writes its event
// (with its scheduled job's scope and links), alerts' changes write theirs,
// a plugin built for ABI 1.4 emits and reads through opk.events/1 while a
// 1.3 plugin's runs are logged like any other, only a plugin's system
// principal may emit or read, and an emit's idempotency key holds across a
// restart of the kernel; on both stores (a fresh PostgreSQL database per
// test, tests/support/pg_util.h).
#include <opskernel/json.hpp>

#include <map>

#include "events/documents.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class KernelEventsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    plugins_ = test::plugins_dir(dir_, {test::fixture("events_probe"), test::fixture("legacy_channel")});
    kernel_ = std::make_unique<Kernel>(config());
    ASSERT_TRUE(kernel_->start());
    ASSERT_TRUE(kernel_->events());
  }
  void TearDown() override {
    if (kernel_) kernel_->stop();
  }
  // The kernel's configuration on the test's store.
  config::Config config() {
    auto cfg = test::quiet_config(dir_, plugins_);
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    EXPECT_TRUE(e.empty()) << e;
    return cfg;
  }

  // The events about run `id`, oldest first.
  std::vector<store::EventRow> of_run(int64_t id) {
    std::vector<store::EventRow> out;
    for (const auto& e : kernel_->store()->events_after(0, 100000).value())
      if (e.subject == "run:" + std::to_string(id)) out.push_back(e);
    return out;
  }
  std::vector<std::string> kinds_of_run(int64_t id) {
    std::vector<std::string> out;
    for (const auto& e : of_run(id)) out.push_back(e.kind);
    return out;
  }
  int64_t run(const std::string& type, const std::string& params) {
    return test::run_and_wait(*kernel_, test::manual(type, params)).row.id;
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  std::string plugins_;
  std::unique_ptr<Kernel> kernel_;
};

INSTANTIATE_TEST_SUITE_P(Backends, KernelEventsTest, ::testing::Values("sqlite", "postgresql"),
                         test::store_backend_name);

TEST_P(KernelEventsTest, EveryWayARunEndsWritesItsEvent) {
  using V = std::vector<std::string>;
  EXPECT_EQ(kinds_of_run(run("ev-job", R"({"outcome":"normal","output":{"rows":2}})")), V{events::kRunCompleted});
  EXPECT_EQ(kinds_of_run(run("ev-job", R"({"outcome":"warning"})")), V{events::kRunWarning});
  EXPECT_EQ(kinds_of_run(run("ev-job", R"({"outcome":"error"})")), V{events::kRunFailed});
  EXPECT_EQ(kinds_of_run(run("ev-job", R"({"fail":true})")), V{events::kRunFailed});
  EXPECT_EQ(kinds_of_run(run("ev-target", R"({"ms":300})")), (V{events::kRunCompleted, events::kRunOverTarget}));
  EXPECT_EQ(kinds_of_run(run("ev-target", R"({"ms":0})")), V{events::kRunCompleted});
  EXPECT_EQ(kinds_of_run(run("ev-timeout", R"({"ms":5000})")), V{events::kRunTimedOut});
  // The 1.3 plugin's runs are logged as well.
  EXPECT_EQ(kinds_of_run(run("legacy-job", "{}")), V{events::kRunCompleted});

  // Cancelled while running, and while pending (held).
  int64_t id = 0;
  ASSERT_TRUE(kernel_->engine()->run_now(test::manual("ev-slow", R"({"ms":10000})"), &id));
  ASSERT_TRUE(test::wait_running(*kernel_, id));
  ASSERT_TRUE(kernel_->engine()->cancel(id, test::operator_actor(), "enough"));
  ASSERT_TRUE(kernel_->engine()->wait(id, 10000));
  EXPECT_EQ(kinds_of_run(id), V{events::kRunCancelled});
  jobs::RunNow later = test::manual("ev-job");
  later.start_at_ms = jobs::now_ms() + 60000;
  ASSERT_TRUE(kernel_->engine()->run_now(later, &id));
  ASSERT_TRUE(kernel_->engine()->cancel(id, test::operator_actor(), "not needed"));
  EXPECT_EQ(kinds_of_run(id), V{events::kRunCancelled});
  Json doc = Json::parse(of_run(id)[0].payload_json);
  EXPECT_EQ(doc["run"]["cancelled_by"], "alice");
  EXPECT_FALSE(doc["run"].contains("started_ms")) << "never started";

  // The payload of a completed run.
  const int64_t done = run("ev-job", R"({"outcome":"normal","output":{"rows":2}})");
  doc = Json::parse(of_run(done)[0].payload_json);
  EXPECT_EQ(doc["run"]["job_type"], "ev-job");
  EXPECT_EQ(doc["run"]["output"]["rows"], 2);
  EXPECT_EQ(doc["run"]["summary"], "ended normal");
  EXPECT_EQ(doc["run"]["trigger"], "manual");
  EXPECT_EQ(doc["run"]["reason"], "test");
  EXPECT_EQ(doc["links"]["run"], "/administration/runs/" + std::to_string(done));
}

TEST_P(KernelEventsTest, AScheduledJobsRunConcernsItsScope) {
  auto& id = *kernel_->identity();
  ASSERT_TRUE(id.add_node("distributor:d", "platform", "D"));
  ASSERT_TRUE(id.add_node("partner:p", "distributor:d", "P"));
  ASSERT_TRUE(id.add_node("tenant:acme", "partner:p", "Acme"));
  store::ScheduledJob j;
  j.id = "acme-nightly";
  j.job_type = "ev-job";
  j.planning = "disabled";
  j.scope = "tenant:acme";
  ASSERT_TRUE(kernel_->engine()->define_job(j, test::operator_actor()));
  jobs::RunNow r = test::manual("");
  r.job_type.clear();
  r.scheduled_job_id = "acme-nightly";
  const int64_t rid = test::run_and_wait(*kernel_, r).row.id;
  auto events = of_run(rid);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].scope, "tenant:acme");
  EXPECT_EQ(events[0].scope_path, "/platform/distributor:d/partner:p/tenant:acme/");
  Json doc = Json::parse(events[0].payload_json);
  EXPECT_EQ(doc["tenant"], "tenant:acme");
  EXPECT_EQ(doc["run"]["scheduled_job_id"], "acme-nightly");
  EXPECT_EQ(doc["links"]["job"], "/administration/jobs/acme-nightly");
}

TEST_P(KernelEventsTest, AlertChangesAreLogged) {
  alerts::Actor admin{"alice", "PlatformAdministrator", "platform", "test"};
  alerts::Raise custom;
  custom.severity = "critical";
  custom.title = "Disk full";
  custom.scope = "platform";
  store::AlertRow a;
  ASSERT_TRUE(kernel_->alerts()->create(admin, custom, &a));
  ASSERT_TRUE(kernel_->alerts()->acknowledge(admin, a.id, "looking", &a));
  ASSERT_TRUE(kernel_->alerts()->close(admin, a.id, "fixed", &a));
  std::vector<std::string> kinds;
  for (const auto& e : kernel_->store()->events_after(0, 1000).value())
    if (e.subject == "alert:" + std::to_string(a.id)) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{events::kAlertOpened, events::kAlertAcknowledged, events::kAlertClosed}));
}

TEST_P(KernelEventsTest, OnlyAPluginsSystemPrincipalEmitsAndReads) {
  store::User admin{"root2", "Root", "PlatformAdministrator", "platform"};
  ASSERT_TRUE(kernel_->identity()->add_user(admin));
  std::string token;
  ASSERT_TRUE(kernel_->identity()->issue_token("root2", 0, "test", &token));
  auto v = test::run_and_wait(*kernel_, test::manual("ev-emit", Json({{"token", token}}).dump()));
  ASSERT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
  Json out = Json::parse(v.row.output_json);
  EXPECT_EQ(out["emit"]["status"], OPK_OK) << out.dump();
  const int64_t seq = out["emit"]["answer"]["seq"];
  EXPECT_EQ(out["emit"]["answer"]["kind"], "plugin.events-probe.widget.created");
  EXPECT_EQ(out["bad_name"]["status"], OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(out["bad_name"]["answer"]["error"].get<std::string>().rfind("name:", 0), 0u);
  EXPECT_EQ(out["read"]["status"], OPK_OK);
  bool found = false;
  for (const auto& e : out["read"]["answer"]["events"])
    if (e["seq"] == seq) found = e["payload"]["widget"] == 7 && e["subject"] == "widget:7";
  EXPECT_TRUE(found) << out["read"].dump();
  EXPECT_EQ(out["forged"]["status"], OPK_ERR_PERMISSION);
  // A platform administrator's principal ("*") may neither emit nor read.
  EXPECT_EQ(out["user_emit"]["status"], OPK_ERR_PERMISSION) << out.dump();
  EXPECT_EQ(out["user_read"]["status"], OPK_ERR_PERMISSION);
  EXPECT_NE(out["user_read"]["answer"]["error"].get<std::string>().find("system principal"), std::string::npos);

  // The service called directly, as a System actor: ack, get, an unknown operation.
  host::EventsService& svc = *kernel_->events_service();
  const identity::Principal system{"system:events-probe", identity::kSystemRole, "platform"};
  std::string answer;
  ASSERT_TRUE(svc.call(system, "events-probe", "ack", R"({"consumer":"events-probe","seq":1})", &answer));
  EXPECT_EQ(Json::parse(answer)["seq"], 1);
  ASSERT_TRUE(svc.call(system, "events-probe", "get", Json({{"seq", seq}}).dump(), &answer));
  EXPECT_EQ(Json::parse(answer)["event"]["kind"], "plugin.events-probe.widget.created");
  EXPECT_EQ(svc.call(system, "events-probe", "get", R"({"seq":999999})", &answer).code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(svc.call(system, "events-probe", "read", R"({"limit":0})", &answer).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Json::parse(answer)["error"].get<std::string>().rfind("limit:", 0), 0u);
  EXPECT_EQ(svc.call(system, "events-probe", "read", R"({"wait_ms":10001})", &answer).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(svc.call(system, "events-probe", "tail", "{}", &answer).code(), OPK_ERR_UNSUPPORTED);
  auto consumers = kernel_->store()->event_consumers().value();
  ASSERT_EQ(consumers.size(), 1u);
  EXPECT_EQ(consumers[0].id, "events-probe");
}

TEST_P(KernelEventsTest, AKeyedEmitIsWrittenOnceAcrossARestart) {
  const identity::Principal system{"system:events-probe", identity::kSystemRole, "platform"};
  const std::string request =
      R"({"name":"invoice.overdue","subject":"invoice:9","payload":{"n":1},"key":"invoice-overdue:9"})";
  std::string answer;
  ASSERT_TRUE(kernel_->events_service()->call(system, "events-probe", "emit", request, &answer)) << answer;
  Json first = Json::parse(answer);
  EXPECT_EQ(first["duplicate"], false);
  EXPECT_EQ(first["kind"], "plugin.events-probe.invoice.overdue");
  const int64_t seq = first["seq"];
  ASSERT_TRUE(kernel_->events_service()->call(system, "events-probe", "emit", request, &answer));
  EXPECT_EQ(Json::parse(answer)["duplicate"], true);
  EXPECT_EQ(Json::parse(answer)["seq"], seq);
  // Without a key: written, and answered "duplicate": false.
  ASSERT_TRUE(kernel_->events_service()->call(system, "events-probe", "emit", R"({"name":"x"})", &answer));
  EXPECT_EQ(Json::parse(answer)["duplicate"], false);
  EXPECT_GT(Json::parse(answer)["seq"].get<int64_t>(), seq);
  // A key that is empty, not text, or too long is refused naming it.
  for (const std::string& bad : {std::string(R"({"name":"x","key":""})"), std::string(R"({"name":"x","key":7})"),
                                 R"({"name":"x","key":")" + std::string(201, 'k') + R"("})"}) {
    EXPECT_EQ(kernel_->events_service()->call(system, "events-probe", "emit", bad, &answer).code(),
              OPK_ERR_INVALID_ARGUMENT)
        << bad;
    EXPECT_EQ(Json::parse(answer)["error"].get<std::string>().rfind("key:", 0), 0u) << answer;
  }

  // The kernel restarts on the same store: the key still holds.
  kernel_->stop();
  kernel_ = std::make_unique<Kernel>(config());
  ASSERT_TRUE(kernel_->start());
  ASSERT_TRUE(kernel_->events_service()->call(system, "events-probe", "emit", request, &answer)) << answer;
  EXPECT_EQ(Json::parse(answer)["duplicate"], true);
  EXPECT_EQ(Json::parse(answer)["seq"], seq);
  int n = 0;
  for (const auto& e : kernel_->store()->events_after(0, 100000).value()) n += e.subject == "invoice:9";
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace opk
