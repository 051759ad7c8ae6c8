#include "clock/clock.h"

#include <algorithm>
#include <chrono>

namespace opk::clock {
namespace {
const SystemClock kSystem;
std::atomic<const Clock*> installed{&kSystem};

// How often a ManualClock's waiter looks at the time: an advance is seen
// this soon, in real time, without waiters registering with the clock.
constexpr auto kManualPoll = std::chrono::milliseconds(2);
}  // namespace

int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool SystemClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                             const std::function<bool()>& done) const {
  // A wall-clock deadline turned into a steady wait, re-read after each
  // wake, so a clock step neither hangs the wait nor ends it early by much.
  while (!done()) {
    const int64_t left = deadline_ms - now_ms();
    if (left <= 0) return done();
    cv.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 60'000)));
  }
  return true;
}

bool ManualClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                             const std::function<bool()>& done) const {
  while (!done()) {
    if (now_ms() >= deadline_ms) return done();
    cv.wait_for(lock, kManualPoll);
  }
  return true;
}

void SystemClock::wait_once(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            int64_t deadline_ms) const {
  const int64_t left = deadline_ms - now_ms();
  if (left > 0) cv.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 60'000)));
}

void ManualClock::wait_once(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            int64_t deadline_ms) const {
  if (now_ms() < deadline_ms) cv.wait_for(lock, kManualPoll);
}

const Clock& get() {
  return *installed.load(std::memory_order_acquire);
}

void install(const Clock* clock) {
  installed.store(clock ? clock : &kSystem, std::memory_order_release);
}

}  // namespace opk::clock
