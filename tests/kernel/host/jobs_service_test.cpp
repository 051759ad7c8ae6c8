// opk.jobs/1 as a plugin reaches it, without HTTP: unknown operations, the
// engine not yet running, scope filtering of runs by target tenant, and the
// audit row of an action refused before it reaches the engine; on both
// stores (a fresh PostgreSQL database per test, tests/support/pg_util.h).
#include "host/jobs_service.h"

#include <gtest/gtest.h>

#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk::host {
namespace {

class JobsServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto cfg = test::quiet_config(dir_, plugins_);
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    ASSERT_TRUE(e.empty()) << e;
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    auto* id = kernel_->identity();
    ASSERT_TRUE(id->add_node("distributor:d1", "platform", ""));
    ASSERT_TRUE(id->add_node("partner:p1", "distributor:d1", ""));
    ASSERT_TRUE(id->add_node("tenant:t1", "partner:p1", ""));
    ASSERT_TRUE(id->add_node("tenant:t2", "partner:p1", ""));
  }
  Status call(const identity::Principal& who, const std::string& op, const std::string& req, std::string* out) {
    return kernel_->jobs_service()->call(who, op, req, "test", out);
  }
  test::TempDir dir_;
  test::PgDatabase db_;
  std::string plugins_ = test::plugins_dir(dir_, {test::bundled("hello")});
  std::unique_ptr<Kernel> kernel_;
  identity::Principal admin_{"pat", "PlatformAdministrator", "platform"};
  identity::Principal t1_{"ted", "TenantAdministrator", "tenant:t1"};
};

INSTANTIATE_TEST_SUITE_P(Backends, JobsServiceTest, ::testing::Values("sqlite", "postgresql"),
                         test::store_backend_name);

TEST_P(JobsServiceTest, UnknownOperationsAndMalformedRequestsAreRefused) {
  std::string out;
  Status s = call(admin_, "explode", "{}", &out);
  EXPECT_EQ(s.code(), OPK_ERR_UNSUPPORTED);
  EXPECT_NE(out.find("no operation 'explode'"), std::string::npos) << out;
  EXPECT_EQ(call(admin_, "runs", "[1]", &out).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(admin_, "runs", "{\"limit\": \"ten\"}", &out).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(out.find("limit: expected a whole number"), std::string::npos) << out;
  EXPECT_EQ(call({}, "runs", "{}", &out).code(), OPK_ERR_PERMISSION);
}

TEST_P(JobsServiceTest, ARunIsSeenThroughItsTargetTenant) {
  std::string out;
  ASSERT_TRUE(call(admin_, "run_now", R"({"job_type": "hello", "reason": "for t1", "tenant": "t1"})", &out)) << out;
  ASSERT_TRUE(call(admin_, "run_now", R"({"job_type": "hello", "reason": "for t2", "tenant": "t2"})", &out)) << out;
  ASSERT_TRUE(call(admin_, "run_now", R"({"job_type": "hello", "reason": "platform"})", &out)) << out;
  ASSERT_TRUE(kernel_->engine()->wait(3, 10000));
  ASSERT_TRUE(call(t1_, "runs", "{}", &out)) << out;
  EXPECT_NE(out.find("\"target_tenant\":\"t1\""), std::string::npos) << out;
  EXPECT_EQ(out.find("\"target_tenant\":\"t2\""), std::string::npos) << out;
  EXPECT_EQ(out.find("\"reason\":\"platform\""), std::string::npos) << out;
  EXPECT_EQ(call(t1_, "run", "{\"run_id\": 2}", &out).code(), OPK_ERR_NOT_FOUND);
  EXPECT_TRUE(call(t1_, "run", "{\"run_id\": 1}", &out)) << out;
  // An unknown tenant is named.
  Status s = call(admin_, "run_now", R"({"job_type": "hello", "reason": "x", "tenant": "nope"})", &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(out.find("tenant: no node 'tenant:nope'"), std::string::npos) << out;
}

TEST_P(JobsServiceTest, NodesOutsideTheCallersScopeAnswerLikeNodesThatDoNotExist) {
  // A caller scoped to t1 names t2 (exists, outside its scope) and t9 (does
  // not exist): the answers differ only by the name they repeat. The role
  // holds every permission, so only the scope rule answers.
  const identity::Principal scoped{"pat", "PlatformAdministrator", "tenant:t1"};
  auto answer = [&](const std::string& op, const std::string& body) {
    std::string out;
    Status s = call(op == "inventory" ? t1_ : scoped, op, body, &out);
    return std::make_pair(s.code(), out);
  };
  struct Probe {
    const char *op, *body;
  } probes[] = {
      {"run_now", R"({"job_type": "hello", "reason": "x", "tenant": "%s"})"},
      {"inventory", R"({"tenant": "tenant:%s"})"},
      {"define", R"({"id": "probe-job", "job_type": "hello", "planning": "disabled", "scope": "tenant:%s"})"},
  };
  for (const auto& p : probes) {
    auto fill = [&](const char* name) {
      std::string b = p.body;
      b.replace(b.find("%s"), 2, name);
      return b;
    };
    auto [code_t2, out_t2] = answer(p.op, fill("t2"));
    auto [code_t9, out_t9] = answer(p.op, fill("t9"));
    EXPECT_EQ(code_t2, OPK_ERR_INVALID_ARGUMENT) << p.op << ": " << out_t2;
    EXPECT_EQ(code_t2, code_t9) << p.op << ": " << out_t2 << " vs " << out_t9;
    auto t9_as_t2 = out_t9;
    for (size_t at; (at = t9_as_t2.find("t9")) != std::string::npos;) t9_as_t2.replace(at, 2, "t2");
    EXPECT_EQ(out_t2, t9_as_t2) << p.op;
  }
}

TEST_P(JobsServiceTest, AnActionRefusedBeforeTheEngineIsAuditedOnce) {
  std::string out;
  EXPECT_EQ(call(t1_, "run_now", R"({"job_type": "hello", "reason": "may I"})", &out).code(), OPK_ERR_PERMISSION);
  auto rows = kernel_->store()->audit_rows(10).value();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].actor, "ted");
  EXPECT_EQ(rows[0].action, "run-now");
  EXPECT_EQ(rows[0].target, "hello");
  EXPECT_EQ(rows[0].outcome.rfind("refused: ", 0), 0u) << rows[0].outcome;
  EXPECT_EQ(rows[0].source, "test");
  // Refused by the engine (no reason): the engine's row only.
  EXPECT_EQ(call(admin_, "run_now", R"({"job_type": "hello"})", &out).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(kernel_->store()->audit_rows(10).value().size(), 2u);
}

TEST_P(JobsServiceTest, AServedInventoryPageFollowsEveryChange) {
  std::string before, after, run;
  ASSERT_TRUE(call(admin_, "inventory", "{}", &before)) << before;
  EXPECT_NE(before.find("\"total\":0"), std::string::npos) << before;
  store::ScheduledJob j;
  j.id = "nightly";
  j.job_type = "hello";
  j.planning = "disabled";
  ASSERT_TRUE(kernel_->engine()->define_job(j, test::operator_actor()));
  ASSERT_TRUE(call(admin_, "inventory", "{}", &after)) << after;
  EXPECT_NE(after.find("\"id\":\"nightly\""), std::string::npos) << after;
  EXPECT_NE(after.find("\"last_run\":null"), std::string::npos) << after;
  ASSERT_TRUE(call(admin_, "run_now", R"({"job_id": "nightly", "reason": "now"})", &run)) << run;
  ASSERT_TRUE(kernel_->engine()->wait(1, 10000));
  ASSERT_TRUE(call(admin_, "inventory", "{}", &after)) << after;
  EXPECT_NE(after.find("\"status\":\"normal\""), std::string::npos) << after;
  // Another scope gets its own page.
  ASSERT_TRUE(call(t1_, "inventory", "{}", &after)) << after;
  EXPECT_NE(after.find("\"total\":0"), std::string::npos) << after;
}

TEST_P(JobsServiceTest, TheInventoryFiltersBySeveralStatusesAndNamesABadOne) {
  std::string out;
  for (const char* id : {"ran", "idle"}) {
    store::ScheduledJob j;
    j.id = id;
    j.job_type = "hello";
    j.planning = "disabled";
    ASSERT_TRUE(kernel_->engine()->define_job(j, test::operator_actor()));
  }
  ASSERT_TRUE(call(admin_, "run_now", R"({"job_id": "ran", "reason": "now", "params": {"steps": 0}})", &out)) << out;
  ASSERT_TRUE(kernel_->engine()->wait(1, 10000));
  ASSERT_TRUE(call(admin_, "inventory", R"({"status": "normal"})", &out)) << out;
  EXPECT_NE(out.find("\"total\":1"), std::string::npos) << out;
  EXPECT_NE(out.find("\"id\":\"ran\""), std::string::npos) << out;
  ASSERT_TRUE(call(admin_, "inventory", R"({"status": "error, never"})", &out)) << out;
  EXPECT_NE(out.find("\"total\":1"), std::string::npos) << out;
  EXPECT_NE(out.find("\"id\":\"idle\""), std::string::npos) << out;
  ASSERT_TRUE(call(admin_, "inventory", R"({"status": "never,normal"})", &out)) << out;
  EXPECT_NE(out.find("\"total\":2"), std::string::npos) << out;
  // The regions and scopes a client can offer as filters: of the jobs the actor sees.
  store::ScheduledJob t2;
  t2.id = "t2-job";
  t2.job_type = "hello";
  t2.planning = "disabled";
  t2.scope = "tenant:t2";
  t2.region = "eu-north";
  ASSERT_TRUE(kernel_->engine()->define_job(t2, test::operator_actor()));
  ASSERT_TRUE(call(admin_, "inventory", R"({"status": "normal"})", &out)) << out;
  EXPECT_NE(out.find(R"("regions":["eu-north"],"scopes":["platform","tenant:t2"]})"), std::string::npos) << out;
  ASSERT_TRUE(call(admin_, "inventory", R"({"region": "eu-north"})", &out)) << out;
  EXPECT_NE(out.find("\"total\":1"), std::string::npos) << out;
  ASSERT_TRUE(call(t1_, "inventory", "{}", &out)) << out;
  EXPECT_NE(out.find(R"("regions":[],"scopes":[]})"), std::string::npos) << out;
  Status s = call(admin_, "inventory", R"({"status": "never,bogus"})", &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(out.find("status: 'bogus' is not running, pending"), std::string::npos) << out;
  EXPECT_EQ(call(admin_, "inventory", R"({"status": "never,"})", &out).code(), OPK_ERR_INVALID_ARGUMENT);
}

TEST_P(JobsServiceTest, RunsFilterByOverTargetAndStale) {
  std::string out;
  // hello's target duration is 5 s: the first run goes over it, the second does not.
  ASSERT_TRUE(call(admin_, "run_now",
                   R"({"job_type": "hello", "reason": "slow", "params": {"steps": 26, "step_ms": 200}})", &out))
      << out;
  ASSERT_TRUE(call(admin_, "run_now", R"({"job_type": "hello", "reason": "quick", "params": {"steps": 0}})", &out))
      << out;
  ASSERT_TRUE(kernel_->engine()->wait(1, 20000));
  ASSERT_TRUE(kernel_->engine()->wait(2, 20000));
  ASSERT_TRUE(call(admin_, "runs", R"({"over_target": true})", &out)) << out;
  EXPECT_NE(out.find("\"reason\":\"slow\""), std::string::npos) << out;
  EXPECT_EQ(out.find("\"reason\":\"quick\""), std::string::npos) << out;
  ASSERT_TRUE(call(admin_, "runs", R"({"over_target": false})", &out)) << out;
  EXPECT_NE(out.find("\"reason\":\"quick\""), std::string::npos) << out;
  ASSERT_TRUE(call(admin_, "runs", R"({"stale": true})", &out)) << out;
  EXPECT_EQ(out, R"({"items":[]})");
  Status s = call(admin_, "runs", R"({"over_target": "yes"})", &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(out.find("over_target: expected true or false"), std::string::npos) << out;
}

TEST_P(JobsServiceTest, ACancelledRunIsListedAsCancelledNotAsFailed) {
  std::string out;
  // Run 1 fails; run 2 runs until an operator cancels it.
  ASSERT_TRUE(call(admin_, "run_now", R"({"job_type": "hello", "reason": "broken", "params": {"fail": true}})", &out))
      << out;
  ASSERT_TRUE(kernel_->engine()->wait(1, 20000));
  ASSERT_TRUE(call(admin_, "run_now",
                   R"({"job_type": "hello", "reason": "long", "params": {"steps": 1000, "step_ms": 5}})", &out))
      << out;
  ASSERT_TRUE(test::wait_running(*kernel_, 2));
  ASSERT_TRUE(call(admin_, "cancel", R"({"run_id": 2, "reason": "not needed"})", &out)) << out;
  ASSERT_TRUE(kernel_->engine()->wait(2, 20000));
  ASSERT_TRUE(call(admin_, "run", R"({"run_id": 2})", &out)) << out;
  EXPECT_NE(out.find(R"("status":"cancelled")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("cancelled_by":"pat")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("summary":"cancelled by pat: not needed")"), std::string::npos) << out;
  ASSERT_TRUE(call(admin_, "runs", R"({"status": "cancelled"})", &out)) << out;
  EXPECT_NE(out.find(R"("reason":"long")"), std::string::npos) << out;
  EXPECT_EQ(out.find(R"("reason":"broken")"), std::string::npos) << out;
  ASSERT_TRUE(call(admin_, "runs", R"({"status": "error"})", &out)) << out;
  EXPECT_NE(out.find(R"("reason":"broken")"), std::string::npos) << out;
  EXPECT_EQ(out.find(R"("reason":"long")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("status":"error")"), std::string::npos) << out;
  Status s = call(admin_, "runs", R"({"status": "failed"})", &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(out.find("cancelled"), std::string::npos) << out;
}

TEST(JobsServiceStopped, OperationsAnswerUnavailableWithoutAnEngine) {
  test::TempDir dir;
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open_sqlite((dir.path() / "s.db").string(), true, &st));
  identity::Identity id(*st, identity::default_permissions());
  JobsService svc(*st, id, [] { return std::vector<TypeInfo>{}; });
  std::string out;
  Status s = svc.call({"pat", "PlatformAdministrator", "platform"}, "runs", "{}", "", &out);
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_NE(out.find("starting"), std::string::npos) << out;
}

}  // namespace
}  // namespace opk::host
