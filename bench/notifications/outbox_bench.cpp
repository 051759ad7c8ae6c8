// Notifications outbox benchmark: what the outbox costs the job engine. A
// kernel (store at synchronous = FULL, as it runs) with admin-http, hello,
// channel-webhook and notifications; N runs fail as fast as the engine takes
// them. Three kinds of round, alternated, each in a process of its own and
// repeated `rounds` times:
//   none       no rule: the engine alone (each run's end event is still
//              written to the event log);
//   queued     a rule sends every failed run to the webhook receiver, but the
//              first attempt is an hour away: the runs' time shows what the
//              outbox adds to their completion (events read and matched,
//              messages rendered, deliveries written), the receiver not
//              counted;
//   delivered  the same rule, first attempt at once: the deliveries (the
//              channel's HTTP requests, the Standard Webhooks receiver
//              verifying each signature, the attempts recorded) run on the
//              same cores meanwhile.
// Prints min / median / max of the runs' time per kind, how much lower the
// engine's throughput is with the rule (from the medians), the kernel
// process's CPU time until the runs were done (user + system, the receiver
// not counted: steadier than the time on a loaded machine), deliveries per
// second and peak RSS.
//
//   opk_notify_outbox_bench [--runs N] [--workers W] [--rounds R] [--plugins DIR]
// (DIR: where the plugins are loaded from, the build's by default, to compare
// builds.) With --round none|queued|delivered it runs one round and prints its
// figures on one line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <sys/resource.h>

#include <opskernel/json.hpp>

#include "../support/bench_util.h"
#include "app/kernel.h"
#include "log/logging.h"
#include "plugins/admin-http/http_client.h"
#include "support/servers.h"
#include "support/test_util.h"

using Json = nlohmann::json;

namespace {

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

size_t count_lines(const std::string& file) {
  std::ifstream in(file);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}

// This process's CPU time so far (user + system), seconds.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One round of `kind`; prints "<runs' seconds> <seconds until every delivery
// was received, or 0> <deliveries received> <peak RSS MiB> <CPU seconds of
// the runs>".
int round_of(const std::string& kind, int runs, const std::string& workers, const std::string& plugin_dir) {
  const bool rule = kind != "none";
  const bool deliver = kind == "delivered";
  opk::test::ScratchDir scratch;
  const std::string out = scratch.file("requests.jsonl");
  opk::test::ServerProcess receiver;
  const std::string why =
      receiver.start({OPK_NODE, std::string(OPK_SOURCE_DIR) + "/tests/support/webhook-receiver/receiver.mjs", "--out",
                      out, "--secret", kSecret},
                     scratch.file("receiver.err"));
  if (!why.empty()) opk::bench::die(why);
  opk::test::TempDir dir;
  const auto plugins =
      opk::test::plugins_dir(dir, {plugin_dir + "/admin-http.so", plugin_dir + "/hello.so",
                                   plugin_dir + "/channel-webhook.so", plugin_dir + "/notifications.so"});
  auto cfg = opk::test::quiet_config(dir, plugins);
  cfg.log.console = false;
  cfg.log.level = "warn";
  opk::log::setup(cfg.log);
  const int port = opk::test::free_port();
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  cfg.plugins["notifications"] = {{"workers", workers}, {"poll_wait", "200ms"}};
  // Queued: every delivery is written, none is due within the round.
  if (!deliver) cfg.plugins["notifications"]["retry_schedule"] = "1h";
  opk::Kernel k(cfg);
  opk::bench::check(k.start(), "start the kernel");
  std::string token;
  k.identity()->add_user({"pat", "", "PlatformAdministrator", "platform"});
  k.identity()->issue_token("pat", 0, "bench", &token);
  auto api = [&](const std::string& path, const Json& body) {
    return opk::test::http_request(port, "POST", "/api/v1/notifications" + path, token, body.dump()).status;
  };
  api("/groups", {{"id", "ops"}, {"name", "Ops"}, {"scope", "platform"}});
  if (rule) {
    const int st = api("/groups/ops/rules", {{"events", {"run.failed"}},
                                             {"channel", "webhook"},
                                             {"recipients",
                                              {{{"to", "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook"},
                                                {"options", {{"secrets", {kSecret}}}}}}}});
    if (st != 201) opk::bench::die("the rule was refused (" + std::to_string(st) + ")");
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  // The runs are created 100 at a time (as the admin API's batch run-now
  // does), so the engine, not the wait for each creation's flush, sets the
  // pace: one at a time, the runs' time was mostly 1,000 flushes in a row.
  std::vector<int64_t> ids;
  for (int i = 0; i < runs; i += 100) {
    std::vector<opk::jobs::RunNow> batch;
    for (int j = i; j < std::min(runs, i + 100); ++j) {
      opk::jobs::RunNow r;
      r.job_type = "hello";
      r.params_json = R"({"fail": true, "steps": 1, "step_ms": 0})";
      r.reason = "bench";
      r.actor = {"pat", "PlatformAdministrator", "platform", "bench"};
      batch.push_back(std::move(r));
    }
    std::vector<int64_t> created;
    opk::bench::check(k.engine()->run_now_batch(batch, &created), "create runs");
    ids.insert(ids.end(), created.begin(), created.end());
  }
  for (int64_t id : ids) k.engine()->wait(id, 120000);
  const double runs_s = seconds_since(t0);
  const double runs_cpu_s = cpu_seconds() - cpu0;
  while (deliver && count_lines(out) < static_cast<size_t>(runs) && seconds_since(t0) < 600)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double all_s = deliver ? seconds_since(t0) : 0;
  const size_t received = count_lines(out);
  if (deliver && received < static_cast<size_t>(runs))
    opk::bench::die(std::to_string(received) + " of " + std::to_string(runs) + " deliveries received");
  k.stop();
  std::printf("%.4f %.4f %zu %.1f %.4f\n", runs_s, all_s, received, opk::bench::peak_rss_mib(), runs_cpu_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_notify_outbox_bench";
  int runs = 1000, rounds = 3;
  std::string workers = "2", plugin_dir = OPK_BUNDLED_PLUGIN_DIR, round;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--runs" && has_value)
      runs = std::atoi(argv[++i]);
    else if (a == "--workers" && has_value)
      workers = argv[++i];
    else if (a == "--rounds" && has_value)
      rounds = std::atoi(argv[++i]);
    else if (a == "--plugins" && has_value)
      plugin_dir = argv[++i];
    else if (a == "--round" && has_value)
      round = argv[++i];
    else
      opk::bench::die("unknown argument '" + a +
                      "' (usage: [--runs N] [--workers W] [--rounds R] [--plugins DIR] [--round KIND])");
  }
  if (runs < 1 || rounds < 1) opk::bench::die("--runs and --rounds must be at least 1");
  if (!round.empty()) {
    if (round != "none" && round != "queued" && round != "delivered")
      opk::bench::die("--round: '" + round + "' is not none, queued or delivered");
    return round_of(round, runs, workers, plugin_dir);
  }
  const std::vector<std::string> kinds = {"none", "queued", "delivered"};
  std::map<std::string, std::vector<double>> runs_s, runs_cpu;
  std::vector<double> all_s, rate, rss;
  for (int r = 0; r < rounds; ++r)
    for (const auto& kind : kinds) {
      // The figures are its last line (a first start prints the admin's
      // token before them).
      std::string text = opk::bench::run_child(
          argv[0], {"--round", kind, "--runs", std::to_string(runs), "--workers", workers, "--plugins", plugin_dir},
          "round " + kind);
      while (!text.empty() && text.back() == '\n') text.pop_back();
      const size_t last_line = text.rfind('\n');
      std::istringstream line(last_line == std::string::npos ? text : text.substr(last_line + 1));
      double run_s = 0, all = 0, got = 0, mib = 0, cpu = 0;
      if (!(line >> run_s >> all >> got >> mib >> cpu)) opk::bench::die("round " + kind + ": no figures");
      runs_s[kind].push_back(run_s * 1000);
      runs_cpu[kind].push_back(cpu * 1000);
      rss.push_back(mib);
      if (kind == "delivered") {
        all_s.push_back(all * 1000);
        rate.push_back(got / all);  // all: seconds
      }
    }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("notifications outbox benchmark: %d failing runs, %s delivery workers, %d round(s) of each kind\n", runs,
              workers.c_str(), rounds);
  opk::bench::print("runs done, no rule:", runs_s["none"], "ms", 48);
  opk::bench::print("runs done, rule, deliveries queued only:", runs_s["queued"], "ms", 48);
  opk::bench::print("runs done, rule, deliveries sent meanwhile:", runs_s["delivered"], "ms", 48);
  opk::bench::print("CPU until the runs were done, no rule:", runs_cpu["none"], "ms", 48);
  opk::bench::print("CPU until the runs were done, queued only:", runs_cpu["queued"], "ms", 48);
  opk::bench::print("CPU until the runs were done, sent meanwhile:", runs_cpu["delivered"], "ms", 48);
  opk::bench::print("every delivery received (after the first run):", all_s, "ms", 48);
  opk::bench::print("deliveries per second:", rate, "/s", 48);
  // Throughput lower by 1 - t(none) / t(rule), from the medians.
  const double none = median(runs_s["none"]);
  std::printf(
      "  engine throughput lower with the rule: %.1f%% (outbox alone, receiver not counted), %.1f%% "
      "(deliveries on the same cores)\n",
      100.0 * (1.0 - none / median(runs_s["queued"])), 100.0 * (1.0 - none / median(runs_s["delivered"])));
  std::printf("  kernel CPU more with the rule: %.1f%% (outbox alone), %.1f%% (deliveries on the same cores)\n",
              100.0 * (median(runs_cpu["queued"]) / median(runs_cpu["none"]) - 1.0),
              100.0 * (median(runs_cpu["delivered"]) / median(runs_cpu["none"]) - 1.0));
  std::printf("  peak RSS of a round: %.0f MiB\n", *std::max_element(rss.begin(), rss.end()));
  return 0;
}
