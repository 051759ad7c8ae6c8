// The kernel's one clock: a ManualClock drives waits without sleeping, and
// the system clock is back once a test's clock is gone.
#include "clock/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

namespace opk::clock {
namespace {

constexpr int64_t kStart = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

TEST(Clock, ManualClockIsInstalledAndRemoved) {
  const int64_t real = SystemClock().now_ms();
  {
    ScopedManualClock manual(kStart);
    EXPECT_EQ(now_ms(), kStart);
    manual->advance(90LL * 24 * 3600 * 1000);  // 90 days, at once
    EXPECT_EQ(now_ms(), kStart + 90LL * 24 * 3600 * 1000);
    manual->set(kStart - 1);
    EXPECT_EQ(now_ms(), kStart - 1);
  }
  EXPECT_GE(now_ms(), real);
  EXPECT_LT(now_ms() - real, 60'000);
}

TEST(Clock, ManualWaitEndsWhenTheClockIsAdvancedNotBefore) {
  ScopedManualClock manual(kStart);
  std::mutex mu;
  std::condition_variable cv;
  auto waiter = std::async(std::launch::async, [&] {
    std::unique_lock lock(mu);
    return wait_until(lock, cv, kStart + 3'600'000, [] { return false; });
  });
  // An hour on the manual clock has not passed: the waiter is still there.
  EXPECT_EQ(waiter.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  manual->advance(3'599'999);
  EXPECT_EQ(waiter.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  manual->advance(1);
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_FALSE(waiter.get());  // reached the deadline, not done
}

TEST(Clock, WaitEndsAtOnceWhenDone) {
  for (int manual = 0; manual < 2; ++manual) {
    std::optional<ScopedManualClock> m;
    if (manual) m.emplace(kStart);
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    auto waiter = std::async(std::launch::async, [&] {
      std::unique_lock lock(mu);
      return wait_until(lock, cv, now_ms() + 3'600'000, [&] { return done; });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
      std::lock_guard lock(mu);
      done = true;
    }
    cv.notify_all();
    ASSERT_EQ(waiter.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "manual=" << manual;
    EXPECT_TRUE(waiter.get());
  }
}

TEST(Clock, SystemWaitReachesItsDeadline) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock lock(mu);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(wait_until(lock, cv, now_ms() + 30, [] { return false; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(25));
}

TEST(Clock, WaitOnceReturnsOnANotifyOrTheDeadline) {
  std::mutex mu;
  std::condition_variable cv;
  {
    std::unique_lock lock(mu);
    const auto t0 = std::chrono::steady_clock::now();
    wait_once(lock, cv, now_ms() - 1);  // past: at once
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  }
  ScopedManualClock manual(kStart);
  auto waiter = std::async(std::launch::async, [&] {
    std::unique_lock lock(mu);
    int wakes = 0;
    while (now_ms() < kStart + 1000) {
      wait_once(lock, cv, kStart + 1000);
      ++wakes;
    }
    return wakes;
  });
  EXPECT_EQ(waiter.wait_for(std::chrono::milliseconds(30)), std::future_status::timeout);
  manual->advance(1000);
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_GE(waiter.get(), 1);
}

}  // namespace
}  // namespace opk::clock
