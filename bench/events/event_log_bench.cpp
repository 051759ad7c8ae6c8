// Event log benchmark: what writing each run's end event costs the job
// engine. N no-op runs end to end (created 1,000 at a time -> RUNNING ->
// COMPLETED, one log line stored each; store at synchronous = FULL, WAL) in
// a kernel of a process of its own, with the run events on (each run's end
// event written in its completion's transaction, as the kernel always runs)
// and off (the kernel's bench-only switch Config::events_runs). The two are
// interleaved in one invocation (on, off, then off, on, ... for `pairs`
// rounds: odd rounds reverse the order, so a load that keeps rising or
// falling favours neither), so a shared machine's load moves the two rounds
// of a pair alike. Prints each pair's throughput ratio (on as a share of
// off) and CPU ratio (the CPU per run on as a share of off's) with the
// 1-minute load average before each round, then min / median / max of the
// ratios, of runs per second, of the process's CPU time per run
// (every thread, user and system), of the events written per run and of
// peak RSS.
//
//   opk_event_log_bench [--runs N] [--pairs P]
// With --round on|off it runs one round and prints its figures on one line.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/kernel.h"
#include "log/logging.h"
#include "support/bench_util.h"

namespace {

// CPU time of the whole process (every thread, user and system), seconds.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The 1-minute load average now (/proc/loadavg), or -1.
double loadavg_1m() {
  std::ifstream in("/proc/loadavg");
  double l = -1;
  in >> l;
  return l;
}

// One round: prints "<runs/s> <CPU us per run> <events per run> <peak RSS MiB>".
int event_round(bool events, int n) {
  char tmpl[] = "/tmp/opk-event-bench-XXXXXX";
  const char* made = mkdtemp(tmpl);
  if (made == nullptr) opk::bench::die("mkdtemp");
  const std::string dir = made;
  opk::config::Config c;
  c.plugins_dir = OPK_BENCH_PLUGIN_DIR;
  c.data_dir = dir;
  c.store_path = dir + "/opk.db";
  c.log.level = "warn";
  c.log.file.clear();
  c.log.console = false;
  c.pools = {{"default", 2}};
  c.events_runs = events;
  opk::log::setup(c.log);
  double rate = 0, cpu_us = 0, per_run = 0;
  {
    opk::Kernel k(c);
    opk::bench::check(k.start(), "start the kernel");
    opk::jobs::RunNow r;
    r.job_type = "noop";
    r.params_json = "{}";
    r.reason = "bench";
    r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
    std::vector<int64_t> ids;
    const int64_t t0 = opk::bench::now_us();
    const double cpu0 = process_cpu_seconds();
    for (int i = 0; i < n; i += 1000) {
      std::vector<opk::jobs::RunNow> batch(static_cast<size_t>(std::min(1000, n - i)), r);
      opk::bench::check(k.engine()->run_now_batch(batch, &ids), "create runs");
    }
    // The last run, then none open (as opk_engine_bench waits).
    opk::store::RunRow last;
    while (!k.store()->get_run(ids.back(), &last) || last.phase != opk::store::kCompleted)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    while (!k.store()->runs_in_phase(opk::store::kPending, 1).value().empty() ||
           !k.store()->runs_in_phase(opk::store::kRunning, 1).value().empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const double secs = static_cast<double>(opk::bench::now_us() - t0) / 1e6;
    const double cpu = process_cpu_seconds() - cpu0;
    rate = n / secs;
    cpu_us = cpu * 1e6 / n;
    per_run = static_cast<double>(k.store()->last_event_seq()) / n;
    k.stop();
  }
  std::filesystem::remove_all(dir);
  std::printf("%.1f %.3f %.3f %.1f\n", rate, cpu_us, per_run, opk::bench::peak_rss_mib());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_event_log_bench";
  int runs = 20000, pairs = 5;
  std::string round;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--runs" && has_value)
      runs = std::atoi(argv[++i]);
    else if (a == "--pairs" && has_value)
      pairs = std::atoi(argv[++i]);
    else if (a == "--round" && has_value)
      round = argv[++i];
    else
      opk::bench::die("unknown argument '" + a + "' (usage: [--runs N] [--pairs P] [--round on|off])");
  }
  if (runs < 1 || pairs < 1) opk::bench::die("--runs and --pairs must be at least 1");
  if (!round.empty()) {
    if (round != "on" && round != "off") opk::bench::die("--round: '" + round + "' is not on or off");
    return event_round(round == "on", runs);
  }
  std::map<std::string, std::vector<double>> rate, cpu, per_run, rss;
  std::vector<double> ratio, cpu_ratio;
  std::printf("event log benchmark: %d no-op runs a round, run events on and off, %d interleaved pair(s)\n", runs,
              pairs);
  for (int p = 0; p < pairs; ++p) {
    std::vector<std::string> order = {"on", "off"};
    if (p % 2 == 1) std::reverse(order.begin(), order.end());
    std::map<std::string, double> got, used;
    std::printf("  pair %d:", p + 1);
    for (const auto& kind : order) {
      const double load = loadavg_1m();
      std::string text =
          opk::bench::run_child(argv[0], {"--round", kind, "--runs", std::to_string(runs)}, "round " + kind);
      while (!text.empty() && text.back() == '\n') text.pop_back();
      const size_t last_line = text.rfind('\n');
      std::istringstream line(last_line == std::string::npos ? text : text.substr(last_line + 1));
      double r = 0, c = 0, e = 0, m = 0;
      if (!(line >> r >> c >> e >> m)) opk::bench::die("round " + kind + ": no figures");
      got[kind] = r;
      used[kind] = c;
      rate[kind].push_back(r);
      cpu[kind].push_back(c);
      per_run[kind].push_back(e);
      rss[kind].push_back(m);
      std::printf(" events %s %.0f runs/s, %.1f us CPU a run (load %.2f);", kind.c_str(), r, c, load);
      std::fflush(stdout);
    }
    ratio.push_back(100.0 * got["on"] / got["off"]);
    cpu_ratio.push_back(100.0 * used["on"] / used["off"]);
    std::printf(" on/off %.1f%% (CPU a run %.1f%%)\n", ratio.back(), cpu_ratio.back());
  }
  for (const char* kind : {"off", "on"}) {
    const std::string k = kind;
    opk::bench::print(("throughput, events " + k + ":").c_str(), rate[k], "runs/s", 36);
    opk::bench::print(("CPU per run, events " + k + ":").c_str(), cpu[k], "us", 36);
    opk::bench::print(("events written per run, " + k + ":").c_str(), per_run[k], "", 36);
    opk::bench::print(("peak RSS, events " + k + ":").c_str(), rss[k], "MiB", 36);
  }
  opk::bench::print("throughput, events on / off:", ratio, "%", 36);
  opk::bench::print("CPU per run, events on / off:", cpu_ratio, "%", 36);
  return 0;
}
