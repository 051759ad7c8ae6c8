// The hello job type: its behaviour on opk::testing's host (parameters,
// steps, progress, dry-run, outcomes, cancel), and in a real kernel that
// registers it, stores its runs and cancels one through the engine.
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include "app/kernel.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

// --- Unit tests: the plugin alone, on the test host -------------------------

class HelloUnit : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(host_.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/hello.so").is_ok()); }
  opk::testing::Host host_;
};

TEST_F(HelloUnit, GreetsCountsAndReportsProgress) {
  auto r = host_.run("hello", R"({"steps":3,"step_ms":1,"greeting":"hej"})", {.target_tenant = "acme"});
  EXPECT_EQ(r.status, OPK_OK);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_FALSE(r.cancelled);
  EXPECT_EQ(r.progress, 100);
  EXPECT_EQ(r.progress_message, "step 3");
  EXPECT_EQ(r.summary, "greeted acme and counted to 3");
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[0].id, "greet");
  EXPECT_EQ(r.steps[1].id, "count");
  EXPECT_EQ(r.steps[1].outcome, OPK_OUTCOME_NORMAL);
  ASSERT_EQ(r.log.size(), 4u);
  EXPECT_EQ(r.log[0].text, "hej, acme!");
  EXPECT_EQ(r.log[0].step, "greet");
  EXPECT_EQ(r.log[1].text, "step 1 of 3");
  EXPECT_EQ(r.log[1].step, "count");
}

TEST_F(HelloUnit, GreetsTheWorldWithoutATenant) {
  EXPECT_TRUE(host_.run("hello", R"({"steps":0})").logged("hello, world!"));
}

TEST_F(HelloUnit, DryRunChangesNothingAndSaysSo) {
  auto r = host_.run("hello", R"({"steps":500,"step_ms":100})", {.dry_run = true});
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(r.summary, "dry run: nothing done");
  ASSERT_EQ(r.log.size(), 1u);
  EXPECT_NE(r.log[0].text.find("dry run: would say 'hello, world' and count to 500"), std::string::npos);
}

TEST_F(HelloUnit, WarningAndErrorOutcomes) {
  auto w = host_.run("hello", R"({"steps":1,"step_ms":0,"warn":true})");
  EXPECT_EQ(w.outcome, OPK_OUTCOME_WARNING);
  EXPECT_EQ(w.steps.back().outcome, OPK_OUTCOME_WARNING);
  auto e = host_.run("hello", R"({"steps":1,"step_ms":0,"fail":true})");
  EXPECT_EQ(e.status, OPK_ERR_FAILED);
  EXPECT_EQ(e.outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(e.exit_code, 0);
  EXPECT_EQ(e.summary, "failed on purpose (fail=true)");
  EXPECT_EQ(e.steps.back().summary, "asked to fail");
}

TEST_F(HelloUnit, CountsOnTheHostsClockWithoutSleeping) {
  const int64_t start = host_.clock().now_ms();
  auto r = host_.run("hello", R"({"steps":59,"step_ms":1000})");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(host_.clock().now_ms() - start, 59000);
  EXPECT_EQ(r.steps[1].end_ms - r.steps[1].start_ms, 59000);
}

TEST_F(HelloUnit, TheTypesTimeoutCancelsTheRun) {
  auto r = host_.run("hello", R"({"steps":61,"step_ms":1000})");
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(r.logged("timed out after 60000 ms; cancelling"));
  EXPECT_TRUE(r.logged("cancelled at step 60 of 61"));
}

TEST_F(HelloUnit, CancelStopsTheRunCooperatively) {
  auto r = host_.run("hello", R"({"steps":1000,"step_ms":5})", {.cancel_at_ms = opk::testing::kClockStartMs + 102});
  EXPECT_EQ(r.status, OPK_ERR_CANCELLED);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_DOUBLE_EQ(r.progress, 2);
  EXPECT_TRUE(r.logged("cancel requested; stopping"));
  EXPECT_TRUE(r.logged("cancelled at step 21 of 1000"));
  EXPECT_EQ(r.steps.back().summary, "cancelled");
  bool hook_logged = false;
  for (const auto& l : host_.log_lines()) hook_logged |= l.text == "run 1 asked to cancel";
  EXPECT_TRUE(hook_logged);
}

// --- Integration: hello in a real kernel ------------------------------------

class Hello : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = test::quiet_config(d_, test::plugins_dir(d_, {test::bundled("hello")}));
    k_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(k_->start());
  }
  jobs::RunView run(const std::string& params, const std::string& tenant = "", bool dry_run = false) {
    auto r = test::manual("hello", params);
    r.target_tenant = tenant;
    r.dry_run = dry_run;
    return test::run_and_wait(*k_, r);
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
  auto v = run(R"({"steps":3,"step_ms":1,"greeting":"hej"})", "acme");
  EXPECT_EQ(v.row.phase, store::kCompleted);
  EXPECT_EQ(v.row.outcome, store::kNormal);
  EXPECT_FALSE(v.row.terminated);
  EXPECT_EQ(v.row.progress, 100);
  EXPECT_EQ(v.row.summary, "greeted acme and counted to 3");
  ASSERT_EQ(v.steps.size(), 2u);
  EXPECT_EQ(v.steps[0].step_id, "greet");
  EXPECT_EQ(v.steps[1].step_id, "count");
  EXPECT_GE(v.steps[1].end_ms, v.steps[1].start_ms);
  ASSERT_GE(v.logs.size(), 4u);
  EXPECT_EQ(v.logs[0].message, "hej, acme!");
  EXPECT_EQ(v.logs[0].step, "greet");
  EXPECT_EQ(v.logs[1].step, "count");
}

TEST_F(Hello, CancelStopsTheRunCooperatively) {
  int64_t id = 0;
  ASSERT_TRUE(k_->engine()->run_now(test::manual("hello", R"({"steps":1000,"step_ms":10})"), &id));
  ASSERT_TRUE(test::wait_running(*k_, id));
  ASSERT_TRUE(k_->engine()->cancel(id, test::operator_actor(), "test"));
  ASSERT_TRUE(k_->engine()->wait(id, 10000));
  jobs::RunView v;
  ASSERT_TRUE(k_->engine()->get(id, &v));
  EXPECT_TRUE(v.row.terminated);
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_LT(v.row.progress, 100);
  bool hook_logged = false;
  for (const auto& l : v.logs) hook_logged |= l.message.find("cancel requested; stopping") != std::string::npos;
  EXPECT_TRUE(hook_logged);
}

}  // namespace
}  // namespace opk
