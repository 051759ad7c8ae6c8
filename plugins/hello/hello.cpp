// hello -- the reference job type for plugin authors: parameters with a
// schema, named steps, progress, dry-run, and a cooperative cancel hook.
#include <opskernel/opk.hpp>

#include <chrono>
#include <string>

namespace {

// The parameters of a run.
struct Params {
  std::string greeting = "hello";
  int steps = 3;
  int step_ms = 100;
  bool fail = false;
  bool warn = false;
};

// Reads the parameters, which the kernel has checked against the schema.
Params parse(const opk::RunContext& run) {
  Params p;
  p.greeting = run.param<std::string>("greeting", p.greeting);
  p.steps = run.param<int>("steps", p.steps);
  p.step_ms = run.param<int>("step_ms", p.step_ms);
  p.fail = run.param<bool>("fail", p.fail);
  p.warn = run.param<bool>("warn", p.warn);
  return p;
}

class HelloJob : public opk::Job {
 public:
  explicit HelloJob(opk::Plugin& plugin) : plugin_(plugin) {}

  opk::Status run(opk::RunContext& run) override {
    const Params p = parse(run);
    const std::string who = run.target_tenant().empty() ? "world" : std::string(run.target_tenant());
    {
      auto step = run.step("greet");
      if (run.dry_run()) {
        run.info("dry run: would say '" + p.greeting + ", " + who + "' and count to " + std::to_string(p.steps));
        run.set_result(opk::Outcome::normal, "dry run: nothing done");
        return opk::Status::ok();
      }
      run.info(p.greeting + ", " + who + "!");
    }
    auto step = run.step("count");
    for (int i = 1; i <= p.steps; ++i) {
      // The pause ends at once when the run is cancelled (and, in tests,
      // passes on the test host's clock without sleeping).
      if (!run.wait(std::chrono::milliseconds(p.step_ms))) {
        run.warn("cancelled at step " + std::to_string(i) + " of " + std::to_string(p.steps));
        step.end(opk::Outcome::error, "cancelled");
        return opk::Status::cancelled();
      }
      run.info("step " + std::to_string(i) + " of " + std::to_string(p.steps));
      run.progress(100.0 * i / std::max(1, p.steps), "step " + std::to_string(i));
    }
    if (p.fail) {
      step.end(opk::Outcome::error, "asked to fail");
      return opk::Status::error("failed on purpose (fail=true)");
    }
    step.end(p.warn ? opk::Outcome::warning : opk::Outcome::normal);
    run.set_result(p.warn ? opk::Outcome::warning : opk::Outcome::normal,
                   "greeted " + who + " and counted to " + std::to_string(p.steps));
    return opk::Status::ok();
  }

  // Called on another thread; the wait in the loop above returns at once.
  void cancel(opk::RunContext& run) override {
    run.info("cancel requested; stopping before the next step");
    plugin_.host().info("run " + std::to_string(run.run_id()) + " asked to cancel");
  }

 private:
  opk::Plugin& plugin_;
};

class HelloPlugin : public opk::Plugin {
 public:
  explicit HelloPlugin(opk::Host host) : Plugin(host) {
    host.info("hello plugin ready; greeting '" + host.config_or("greeting", "hello") + "'");
  }
};

// A delimited raw string: a description may then hold )" without ending it.
const char* kSchema = R"json({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "greeting": {"type": "string", "maxLength": 200, "description": "What to say"},
    "steps":    {"type": "integer", "minimum": 0, "maximum": 1000, "default": 3},
    "step_ms":  {"type": "integer", "minimum": 0, "maximum": 60000, "default": 100},
    "fail":     {"type": "boolean", "default": false, "description": "Finish with ERROR"},
    "warn":     {"type": "boolean", "default": false, "description": "Finish with WARNING"}
  }
})json";

opk::Manifest describe() {
  static const opk_translation sv[] = {{"sv", "Hej", "Hälsar och räknar; exempel för pluginförfattare."}};
  opk::Manifest m("hello", "Hello", "1.0.0", "Opskernel", "Reference job type for plugin authors");
  m.job<HelloJob>({.id = "hello",
                   .title = "Hello",
                   .description = "Greets and counts; the reference job type for plugin authors.",
                   .owner = "platform-team",
                   .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun,
                   .params_schema_json = kSchema,
                   .default_schedule = "@daily",
                   .target_duration_ms = 5000,
                   .timeout_ms = 60000,
                   .priority = 0,
                   .worker_pool = "default",
                   .actions = {{"greet", "Greet"}, {"count", "Count"}},
                   .translations = {sv[0]}});
  return m;
}

}  // namespace

OPK_PLUGIN(HelloPlugin, describe);
