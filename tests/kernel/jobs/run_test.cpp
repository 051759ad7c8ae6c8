// A run's context as a plugin sees it: the cancellable wait (ABI 1.2).
#include "jobs/run.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "clock/clock.h"

namespace opk::jobs {
namespace {

constexpr int64_t kStart = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

TEST(RunWait, ACancelWakesASleepingRunAtOnce) {
  jobs::Run run(1, "t", RunRequest{});
  const opk_run_context* c = run.context();
  ASSERT_TRUE(OPK_HAS_MEMBER(opk_run_context, c->struct_size, wait));
  const auto t0 = std::chrono::steady_clock::now();
  auto sleeper = std::async(std::launch::async, [c] { return c->wait(c, 3'600'000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(sleeper.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  run.request_cancel();
  ASSERT_EQ(sleeper.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(sleeper.get(), OPK_ERR_CANCELLED);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // Once cancelled, every wait returns at once.
  EXPECT_EQ(c->wait(c, 3'600'000), OPK_ERR_CANCELLED);
  EXPECT_EQ(c->wait(c, 0), OPK_ERR_CANCELLED);
}

TEST(RunWait, TheTimePassesOnTheKernelsClock) {
  clock::ScopedManualClock manual(kStart);
  jobs::Run run(2, "t", RunRequest{});
  const opk_run_context* c = run.context();
  EXPECT_EQ(c->wait(c, 0), OPK_OK);
  EXPECT_EQ(c->wait(c, -5), OPK_OK);
  auto sleeper = std::async(std::launch::async, [c] { return c->wait(c, 24LL * 3600 * 1000); });
  EXPECT_EQ(sleeper.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  manual->advance(24LL * 3600 * 1000);  // a day, without waiting one
  ASSERT_EQ(sleeper.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(sleeper.get(), OPK_OK);
  EXPECT_EQ(run.cancel_requested(), false);
}

TEST(RunWait, AHugeTimeoutDoesNotOverflow) {
  jobs::Run run(3, "t", RunRequest{});
  const opk_run_context* c = run.context();
  auto sleeper = std::async(std::launch::async, [c] { return c->wait(c, INT64_MAX); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  run.request_cancel();
  ASSERT_EQ(sleeper.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(sleeper.get(), OPK_ERR_CANCELLED);
}

}  // namespace
}  // namespace opk::jobs
