// The engine on the kernel's clock: a test advances it instead of sleeping,
// and timeouts and stale flags follow the clock, not real time.
#include <gtest/gtest.h>

#include "clock/clock.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

constexpr int64_t kStart = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

// Waits, in real time, until `done` or `ms` pass.
template <typename Fn>
bool eventually(Fn done, int ms = 10000) {
  for (int i = 0; i < ms / 5; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

TEST(EngineClock, ATimeoutFollowsTheKernelsClock) {
  clock::ScopedManualClock manual(kStart);
  test::TempDir d;
  Kernel k(test::quiet_config(d, test::plugins_dir(d, {test::fixture("engine_jobs")})));
  ASSERT_TRUE(k.start());
  int64_t id = 0;
  ASSERT_TRUE(k.engine()->run_now(test::manual("timeout-job", R"({"ms":60000})"), &id));
  ASSERT_TRUE(test::wait_running(k, id));
  // 300 ms of real time are not the type's 100 ms: the clock has not moved.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  jobs::RunView v;
  ASSERT_TRUE(k.engine()->get(id, &v));
  EXPECT_EQ(v.row.phase, store::kRunning);
  manual->advance(101);
  ASSERT_TRUE(eventually([&] { return k.engine()->get(id, &v) && v.row.phase == store::kCompleted; }));
  EXPECT_EQ(v.row.outcome, store::kError);
  bool timed_out = false;
  for (const auto& l : v.logs) timed_out |= l.message.find("timed out after 100 ms") != std::string::npos;
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(v.row.started_ms, kStart);  // recorded on the same clock
}

TEST(EngineClock, ARunningRunIsFlaggedStaleWhenTheClockPassesTheLimit) {
  clock::ScopedManualClock manual(kStart);
  test::TempDir d;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {test::fixture("engine_jobs")}));
  cfg.stale_after_hours = 2;
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  int64_t id = 0;
  ASSERT_TRUE(k.engine()->run_now(test::manual("slow-job", R"({"ms":60000})"), &id));
  ASSERT_TRUE(test::wait_running(k, id));
  jobs::RunView v;
  manual->advance(2LL * 3600 * 1000 - 60'000);  // not yet
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(k.engine()->get(id, &v));
  EXPECT_FALSE(v.row.stale);
  manual->advance(3LL * 60'000);  // two hours and two minutes: flagged, without waiting them
  EXPECT_TRUE(eventually([&] { return k.engine()->get(id, &v) && v.row.stale; }));
  k.stop();  // cancels the run (it polls its flag)
}

}  // namespace
}  // namespace opk
