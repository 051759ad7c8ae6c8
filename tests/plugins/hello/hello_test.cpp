// The hello job type in a real kernel: parameters, steps, progress, dry-run,
// warning and error outcomes, and cooperative cancel.
#include <gtest/gtest.h>

#include "app/kernel.h"
#include "support/test_util.h"

namespace opk {
namespace {

class Hello : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = test::quiet_config(d_, test::plugins_dir(d_, {test::bundled("hello")}));
    k_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(k_->start());
  }
  jobs::RunSnapshot run(jobs::RunRequest req) {
    std::shared_ptr<jobs::Run> r;
    Status s = k_->start_run("hello", std::move(req), &r);
    EXPECT_TRUE(s) << s.message();
    if (!s) return {};
    EXPECT_TRUE(k_->wait_run(r->id(), 20000));
    return r->snapshot();
  }
  test::TempDir d_;
  std::unique_ptr<Kernel> k_;
};

TEST_F(Hello, DeclaresItsCapabilities) {
  const auto* t = k_->registry().job_type("hello");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->item->manual_run());
  EXPECT_TRUE(t->item->cancellable());
  EXPECT_TRUE(t->item->dry_run());
  EXPECT_EQ(t->item->actions.size(), 2u);
  ASSERT_EQ(t->item->translations.size(), 1u);
  EXPECT_EQ(t->item->translations[0].lang, "sv");
}

TEST_F(Hello, RunsItsStepsAndRecordsThem) {
  auto s =
      run({.params_json = R"({"steps":3,"step_ms":1,"greeting":"hej"})", .target_tenant = "acme", .user_id = "ops"});
  EXPECT_EQ(s.phase, jobs::Phase::completed);
  EXPECT_EQ(s.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_FALSE(s.terminated);
  EXPECT_EQ(s.progress, 100);
  EXPECT_EQ(s.summary, "greeted acme and counted to 3");
  ASSERT_EQ(s.steps.size(), 2u);
  EXPECT_EQ(s.steps[0].id, "greet");
  EXPECT_EQ(s.steps[1].id, "count");
  EXPECT_GT(s.steps[1].end_ms, 0);
  ASSERT_GE(s.log.size(), 4u);
  EXPECT_EQ(s.log[0].message, "hej, acme!");
  EXPECT_EQ(s.log[0].step, "greet");
  EXPECT_EQ(s.log[1].step, "count");
}

TEST_F(Hello, DryRunChangesNothingAndSaysSo) {
  auto s = run({.params_json = R"({"steps":500,"step_ms":100})", .dry_run = true});
  EXPECT_EQ(s.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(s.summary, "dry run: nothing done");
  ASSERT_EQ(s.log.size(), 1u);
  EXPECT_NE(s.log[0].message.find("dry run: would say"), std::string::npos);
}

TEST_F(Hello, WarningAndErrorOutcomes) {
  auto w = run({.params_json = R"({"steps":1,"step_ms":0,"warn":true})"});
  EXPECT_EQ(w.outcome, OPK_OUTCOME_WARNING);
  auto e = run({.params_json = R"({"steps":1,"step_ms":0,"fail":true})"});
  EXPECT_EQ(e.outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(e.exit_code, 0);
  EXPECT_NE(e.log.back().message.find("failed on purpose"), std::string::npos);
  auto bad = run({.params_json = R"({"steps":-4})"});
  EXPECT_EQ(bad.outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(bad.log.back().message.find("steps must be 0..1000"), std::string::npos);
}

TEST_F(Hello, CancelStopsTheRunCooperatively) {
  std::shared_ptr<jobs::Run> r;
  ASSERT_TRUE(k_->start_run("hello", {.params_json = R"({"steps":1000,"step_ms":10})"}, &r));
  while (r->snapshot().progress <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_TRUE(k_->cancel_run(r->id()));
  ASSERT_TRUE(k_->wait_run(r->id(), 10000));
  auto s = r->snapshot();
  EXPECT_TRUE(s.terminated);
  EXPECT_EQ(s.outcome, OPK_OUTCOME_ERROR);
  EXPECT_LT(s.progress, 100);
  bool hook_logged = false;
  for (const auto& l : s.log) hook_logged |= l.message.find("cancel requested") != std::string::npos;
  EXPECT_TRUE(hook_logged);
  EXPECT_EQ(k_->cancel_run(r->id()).code(), OPK_ERR_NOT_FOUND);
}

}  // namespace
}  // namespace opk
