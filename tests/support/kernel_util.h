// kernel_util.h -- starting a kernel over chosen plugins and running jobs
// through its engine, for tests.
#ifndef OPSKERNEL_TESTS_SUPPORT_KERNEL_UTIL_H
#define OPSKERNEL_TESTS_SUPPORT_KERNEL_UTIL_H

#include <gtest/gtest.h>

#include "app/kernel.h"
#include "support/test_util.h"

namespace opk::test {

inline jobs::Actor operator_actor() {
  return {"alice", "PlatformAdministrator", "platform", "test"};
}

// A manual run request with a reason.
inline jobs::RunNow manual(const std::string& type, const std::string& params = "{}") {
  jobs::RunNow r;
  r.job_type = type;
  r.params_json = params;
  r.reason = "test";
  r.actor = operator_actor();
  return r;
}

// Runs `r` and waits for it; fails the test if refused or not done in 20 s.
inline jobs::RunView run_and_wait(Kernel& k, const jobs::RunNow& r) {
  int64_t id = 0;
  Status s = k.engine()->run_now(r, &id);
  EXPECT_TRUE(s) << s.message();
  jobs::RunView v;
  if (!s) return v;
  EXPECT_TRUE(k.engine()->wait(id, 20000)) << "run " << id << " did not complete";
  EXPECT_TRUE(k.engine()->get(id, &v));
  return v;
}

// Waits until run `id` is RUNNING with its plugin called (or `ms` pass).
inline bool wait_running(Kernel& k, int64_t id, int ms = 10000) {
  for (int i = 0; i < ms / 5; ++i) {
    jobs::RunView v;
    if (k.engine()->get(id, &v) && v.row.phase == store::kRunning && v.started) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace opk::test

#endif
