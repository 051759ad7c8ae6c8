// What an actor sees of jobs, runs, audit rows and nodes: each rule of
// host/visibility.h on its own, against a store and a small hierarchy
// (platform > distributor:d1 > partner:p1 > tenant:t1, tenant:t2;
// distributor:d1 > partner:p2 > tenant:t3); on both stores (a fresh
// PostgreSQL database per test, tests/support/pg_util.h).
#include "host/visibility.h"

#include <gtest/gtest.h>

#include <memory>

#include "support/pg_util.h"
#include "support/test_util.h"

namespace opk::host {
namespace {

class VisibilityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      const std::string e = db_.create();
      ASSERT_TRUE(e.empty()) << e;
      ASSERT_TRUE(store::open_postgresql(db_.conninfo(), {}, &store_));
    } else {
      ASSERT_TRUE(store::open_sqlite((dir_.path() / "s.db").string(), true, &store_));
    }
    id_ = std::make_unique<identity::Identity>(*store_, identity::default_permissions());
    ASSERT_TRUE(id_->add_node("distributor:d1", "platform", ""));
    ASSERT_TRUE(id_->add_node("partner:p1", "distributor:d1", ""));
    ASSERT_TRUE(id_->add_node("partner:p2", "distributor:d1", ""));
    ASSERT_TRUE(id_->add_node("tenant:t1", "partner:p1", ""));
    ASSERT_TRUE(id_->add_node("tenant:t2", "partner:p1", ""));
    ASSERT_TRUE(id_->add_node("tenant:t3", "partner:p2", ""));
  }
  static store::ScheduledJob job_at(const std::string& scope) {
    store::ScheduledJob j;
    j.scope = scope;
    return j;
  }
  static store::RunRow run(const std::string& job, const std::string& tenant, const std::string& scope) {
    store::RunRow r;
    r.job_type = "hello";
    r.scheduled_job_id = job;
    r.target_tenant = tenant;
    r.scope = scope;
    return r;
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<identity::Identity> id_;
  identity::Principal platform_{"pat", "PlatformAdministrator", "platform"};
  identity::Principal p1_{"paul", "PartnerAdministrator", "partner:p1"};
  identity::Principal t1_{"ted", "TenantAdministrator", "tenant:t1"};
  identity::Principal t2_{"tom", "TenantAdministrator", "tenant:t2"};
};

INSTANTIATE_TEST_SUITE_P(Backends, VisibilityTest, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(VisibilityTest, AJobIsSeenAtOrUnderTheActorsScopeOnly) {
  Visibility p1(*id_, p1_), platform(*id_, platform_);
  EXPECT_TRUE(p1.job(job_at("partner:p1")));
  EXPECT_TRUE(p1.job(job_at("tenant:t1")));
  EXPECT_FALSE(p1.job(job_at("distributor:d1"))) << "above the scope";
  EXPECT_FALSE(p1.job(job_at("platform"))) << "the root";
  EXPECT_FALSE(p1.job(job_at("tenant:t3"))) << "under a sibling";
  EXPECT_FALSE(p1.job(job_at("tenant:ghost"))) << "an unknown node lies only under platform";
  for (const char* scope : {"platform", "distributor:d1", "tenant:t3", "tenant:ghost"})
    EXPECT_TRUE(platform.job(job_at(scope))) << scope;
}

TEST_P(VisibilityTest, ARunIsSeenThroughItsJobThenItsTenantThenItsStarter) {
  Visibility t1(*id_, t1_), t2(*id_, t2_), p1(*id_, p1_), platform(*id_, platform_);
  for (auto* v : {&t1, &t2, &p1, &platform}) v->set_job_scope("t2-job", "tenant:t2");
  // The scheduled job's scope wins over the target tenant.
  const auto of_job = run("t2-job", "t1", "tenant:t1");
  EXPECT_FALSE(t1.run(of_job));
  EXPECT_TRUE(t2.run(of_job));
  EXPECT_TRUE(p1.run(of_job));
  // A job this Visibility does not know: the run counts as ad hoc.
  const auto unknown_job = run("gone", "t1", "");
  EXPECT_TRUE(t1.run(unknown_job));
  EXPECT_FALSE(t2.run(unknown_job));
  // No job: the target tenant.
  const auto for_t1 = run("", "t1", "platform");
  EXPECT_TRUE(t1.run(for_t1));
  EXPECT_FALSE(t2.run(for_t1));
  // No job, no tenant: the scope of the user who started it.
  const auto by_t1 = run("", "", "tenant:t1");
  EXPECT_TRUE(t1.run(by_t1));
  EXPECT_FALSE(t2.run(by_t1));
  EXPECT_TRUE(p1.run(by_t1));
  // No scope at all (the command line, the configuration): the platform's.
  const auto nobody = run("", "", "");
  EXPECT_FALSE(t1.run(nobody));
  EXPECT_FALSE(p1.run(nobody));
  EXPECT_TRUE(platform.run(nobody));
}

TEST_P(VisibilityTest, JobScopesComeFromTheInventory) {
  store::InventoryRow row;
  row.job.id = "nightly";
  row.job.scope = "tenant:t2";
  Visibility t1(*id_, t1_), t2(*id_, t2_);
  t1.add_job_scopes({row});
  t2.add_job_scopes({row});
  const auto r = run("nightly", "t1", "tenant:t1");
  EXPECT_FALSE(t1.run(r));
  EXPECT_TRUE(t2.run(r));
}

TEST_P(VisibilityTest, AnAuditRowIsSeenThroughTheScopeOfTheUserWhoActed) {
  const std::map<std::string, std::string> users = {{"ted", "tenant:t1"}, {"tom", "tenant:t2"}};
  Visibility t1(*id_, t1_), p1(*id_, p1_), platform(*id_, platform_);
  store::AuditRow by_ted, by_tom, by_config;
  by_ted.actor = "ted";
  by_tom.actor = "tom";
  by_config.actor = "config";  // not a user: the platform's
  EXPECT_TRUE(t1.audit(by_ted, users));
  EXPECT_FALSE(t1.audit(by_tom, users));
  EXPECT_TRUE(p1.audit(by_tom, users));
  EXPECT_FALSE(t1.audit(by_config, users));
  EXPECT_FALSE(p1.audit(by_config, users));
  EXPECT_TRUE(platform.audit(by_config, users));
}

TEST_P(VisibilityTest, ANodeOutsideTheScopeIsRefusedLikeANodeThatDoesNotExist) {
  Visibility p1(*id_, p1_), platform(*id_, platform_);
  EXPECT_TRUE(p1.node("tenant", "tenant:t1"));
  EXPECT_TRUE(p1.node("scope", "partner:p1"));
  const Status outside = p1.node("tenant", "tenant:t3");
  const Status missing = p1.node("tenant", "tenant:t9");
  EXPECT_EQ(outside.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(missing.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(outside.message(), "tenant: no node 'tenant:t3' within your scope partner:p1");
  EXPECT_EQ(missing.message(), "tenant: no node 'tenant:t9' within your scope partner:p1");
  EXPECT_FALSE(p1.node("scope", "platform")) << "above the scope";
  EXPECT_TRUE(platform.node("scope", "platform"));
  EXPECT_TRUE(platform.node("scope", "tenant:t3"));
  // The platform sees unknown nodes, but they still do not exist.
  EXPECT_EQ(platform.node("scope", "tenant:t9").code(), OPK_ERR_INVALID_ARGUMENT);
}

TEST_P(VisibilityTest, OnlyThePlatformScopeSeesTheWholePlatform) {
  EXPECT_TRUE(Visibility(*id_, platform_).whole_platform());
  EXPECT_FALSE(Visibility(*id_, p1_).whole_platform());
  // A platform role at a lower scope is still held to that scope.
  const identity::Principal scoped{"pat", "PlatformAdministrator", "distributor:d1"};
  EXPECT_FALSE(Visibility(*id_, scoped).whole_platform());
}

TEST_P(VisibilityTest, JobsAndRunsOutsideTheScopeAreNotFoundLikeMissingOnes) {
  store::ScheduledJob j;
  j.id = "t2-job";
  j.job_type = "hello";
  j.scope = "tenant:t2";
  ASSERT_TRUE(store_->create_scheduled_job(j));
  std::vector<store::RunRow> runs = {run("", "t2", "tenant:t2")};
  ASSERT_TRUE(store_->create_runs(&runs));
  const int64_t run_id = runs[0].id;
  ASSERT_GT(run_id, 0);

  Visibility t1(*id_, t1_), t2(*id_, t2_);
  store::ScheduledJob got;
  EXPECT_TRUE(t2.find_job(*store_, "t2-job", &got));
  EXPECT_EQ(got.scope, "tenant:t2");
  Status outside = t1.find_job(*store_, "t2-job", &got);
  EXPECT_EQ(outside.code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(outside.message(), "no scheduled job 't2-job'");
  Status missing = t1.find_job(*store_, "nope", &got);
  EXPECT_EQ(missing.code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(missing.message(), "no scheduled job 'nope'");

  store::RunRow r;
  EXPECT_TRUE(t2.find_run(*store_, run_id, &r));
  EXPECT_EQ(r.target_tenant, "t2");
  outside = t1.find_run(*store_, run_id, &r);
  EXPECT_EQ(outside.code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(outside.message(), "no run " + std::to_string(run_id));
  missing = t1.find_run(*store_, run_id + 100, &r);
  EXPECT_EQ(missing.code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(missing.message(), "no run " + std::to_string(run_id + 100));
}

}  // namespace
}  // namespace opk::host
