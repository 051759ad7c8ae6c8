// The engine on the kernel's clock: a test advances it instead of sleeping,
// and timeouts and stale flags follow the clock, not real time; on both
// stores (a fresh PostgreSQL database per test, tests/support/pg_util.h).
#include <gtest/gtest.h>

#include "clock/clock.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

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

class EngineClock : public ::testing::TestWithParam<std::string> {
 protected:
  // A configuration over the engine_jobs fixture on the test's backend.
  config::Config config() {
    auto cfg = test::quiet_config(d_, test::plugins_dir(d_, {test::fixture("engine_jobs")}));
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    EXPECT_TRUE(e.empty()) << e;
    return cfg;
  }
  test::TempDir d_;
  test::PgDatabase db_;
};

INSTANTIATE_TEST_SUITE_P(Backends, EngineClock, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(EngineClock, ATimeoutFollowsTheKernelsClock) {
  clock::ScopedManualClock manual(kStart);
  Kernel k(config());
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

TEST_P(EngineClock, ARunningRunIsFlaggedStaleWhenTheClockPassesTheLimit) {
  clock::ScopedManualClock manual(kStart);
  auto cfg = config();
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
