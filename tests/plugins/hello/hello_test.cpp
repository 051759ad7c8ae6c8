// The hello job type in a real kernel: parameters, steps, progress, dry-run,
// warning and error outcomes, and cooperative cancel.
#include <gtest/gtest.h>

#include "app/kernel.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

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

TEST_F(Hello, DryRunChangesNothingAndSaysSo) {
  auto v = run(R"({"steps":500,"step_ms":100})", "", true);
  EXPECT_EQ(v.row.outcome, store::kNormal);
  EXPECT_EQ(v.row.summary, "dry run: nothing done");
  ASSERT_EQ(v.logs.size(), 1u);
  EXPECT_NE(v.logs[0].message.find("dry run: would say"), std::string::npos);
}

TEST_F(Hello, WarningAndErrorOutcomes) {
  EXPECT_EQ(run(R"({"steps":1,"step_ms":0,"warn":true})").row.outcome, store::kWarning);
  auto e = run(R"({"steps":1,"step_ms":0,"fail":true})");
  EXPECT_EQ(e.row.outcome, store::kError);
  EXPECT_NE(e.row.exit_code, 0);
  EXPECT_NE(e.logs.back().message.find("failed on purpose"), std::string::npos);
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
