// A no-op job type for the engine benchmark: logs one line carrying the
// wall-clock microsecond it was entered, so dispatch lag can be measured.
// And a sleeping one (re-queued after a crash) for the cluster benchmark's
// recovery: runs in flight when a kernel is killed.
#include <opskernel/opk.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

class Noop : public opk::Job {
 public:
  opk::Status run(opk::RunContext& run) override {
    using namespace std::chrono;
    const auto us = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
    run.info("entry_us=" + std::to_string(us));
    return opk::Status::ok();
  }
};

// Sleeps {"ms":N} milliseconds (default 60,000), stopping early on a cancel.
class Sleep : public opk::Job {
 public:
  opk::Status run(opk::RunContext& run) override {
    const std::string params(run.params_json());
    const auto at = params.find("\"ms\":");
    const int ms = at == std::string::npos ? 60000 : std::atoi(params.c_str() + at + 5);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      if (run.cancelled()) return opk::Status::cancelled();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return opk::Status::ok();
  }
};

class Bench : public opk::Plugin {
 public:
  using Plugin::Plugin;
};

opk::Manifest describe() {
  opk::Manifest m("bench-noop", "Benchmark no-op", "1.0.0", "Opskernel");
  m.job<Noop>({.id = "noop",
               .title = "No-op",
               .capabilities = opk::kManualRun,
               .target_duration_ms = 1,  // declared short: claimed in groups
               .worker_pool = "default"});
  m.job<Sleep>(
      {.id = "sleep", .title = "Sleep", .capabilities = opk::kManualRun | opk::kRequeue, .worker_pool = "default"});
  return m;
}

}  // namespace

OPK_PLUGIN(Bench, describe);
