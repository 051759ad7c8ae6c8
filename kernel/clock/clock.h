// The kernel's one clock. Every module reads wall time through clock::now_ms()
// and sleeps through clock::wait_until(), so a test installs a ManualClock
// and drives time (timeouts, expiries, back-off, schedules) by advancing it
// instead of sleeping. Plugins read the same clock (opk_host.now_ms, the
// run context's wait).
#ifndef OPSKERNEL_CLOCK_CLOCK_H
#define OPSKERNEL_CLOCK_CLOCK_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace opk::clock {

// A source of wall time, milliseconds since the Unix epoch (UTC).
class Clock {
 public:
  virtual ~Clock() = default;
  // The current time.
  virtual int64_t now_ms() const = 0;
  // Waits on `cv` (with `lock` held, as condition_variable::wait) until
  // `done()` is true or this clock reaches `deadline_ms`. Returns done().
  // Whoever makes done() true notifies `cv` as usual.
  virtual bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                          const std::function<bool()>& done) const = 0;
  // Waits once, as condition_variable::wait_until: until `cv` is notified,
  // this clock reaches `deadline_ms`, or a spurious wake (a ManualClock's
  // waiter wakes every couple of milliseconds to look at the time). The
  // caller re-checks its conditions and loops.
  virtual void wait_once(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         int64_t deadline_ms) const = 0;
};

// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                  const std::function<bool()>& done) const override;
  void wait_once(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms) const override;
};

// A clock that moves only when told to, for tests. Waiters see an advance
// within a couple of milliseconds of real time.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(std::memory_order_acquire); }
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                  const std::function<bool()>& done) const override;
  void wait_once(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms) const override;
  // Sets the time (it may go backwards, as a wall clock may).
  void set(int64_t ms) { now_.store(ms, std::memory_order_release); }
  // Moves the time forward by `ms`.
  void advance(int64_t ms) { now_.fetch_add(ms, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> now_;
};

// The kernel's clock (a SystemClock unless a test installed another).
const Clock& get();

// Installs `clock` for the whole process; nullptr restores the system
// clock. REQUIRES: `clock` outlives its use; call while nothing waits on
// the clock being replaced.
void install(const Clock* clock);

// Shorthands for get().now_ms() and get().wait_until().
inline int64_t now_ms() {
  return get().now_ms();
}
inline bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms,
                       const std::function<bool()>& done) {
  return get().wait_until(lock, cv, deadline_ms, done);
}
inline void wait_once(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, int64_t deadline_ms) {
  get().wait_once(lock, cv, deadline_ms);
}

// Installs a ManualClock for the life of the object (tests).
class ScopedManualClock {
 public:
  explicit ScopedManualClock(int64_t start_ms) : clock_(start_ms) { install(&clock_); }
  ~ScopedManualClock() { install(nullptr); }
  ScopedManualClock(const ScopedManualClock&) = delete;
  ScopedManualClock& operator=(const ScopedManualClock&) = delete;
  ManualClock& operator*() { return clock_; }
  ManualClock* operator->() { return &clock_; }

 private:
  ManualClock clock_;
};

}  // namespace opk::clock

#endif  // OPSKERNEL_CLOCK_CLOCK_H
