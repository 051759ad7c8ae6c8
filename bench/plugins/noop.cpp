// A no-op job type for the engine benchmark: logs one line carrying the
// wall-clock microsecond it was entered, so dispatch lag can be measured.
#include <opskernel/opk.hpp>

#include <chrono>
#include <string>

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
  return m;
}

}  // namespace

OPK_PLUGIN(Bench, describe);
