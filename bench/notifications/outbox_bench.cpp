// Notifications outbox benchmark: what the outbox costs the job engine. A
// kernel (store at synchronous = FULL, as it runs) with admin-http, hello,
// channel-webhook and notifications; N runs fail as fast as the engine takes
// them. Three kinds of round, each in a process of its own:
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
// The kinds are interleaved in one invocation (none, queued, delivered,
// then delivered, queued, none, ... for `pairs` rounds: odd rounds reverse
// the order, so a load that keeps rising or falling favours no kind), so a
// machine whose load changes from one minute to the next moves the rounds
// of a pair alike. Each round's ratio (the engine's throughput with the
// rule as a share of that round's no-rule throughput) is printed with the
// 1-minute load average before each child, then min / median / max of the
// ratios, of the runs' time, of the kernel process's CPU time per 1,000
// runs until they were done (user + system, the receiver not counted), of
// deliveries per second and of peak RSS.
//
//   opk_notify_outbox_bench [--runs N] [--workers W] [--pairs P]
//       [--kinds none,queued,delivered] [--plugins DIR] [--before DIR]
//       [--sync full|normal]
// DIR of --plugins: where the plugins are loaded from, the build's by
// default. --before DIR: every rule kind also runs from another build's
// copy, DIR/opk_notify_outbox_bench with its plugins in DIR/plugins, in the
// same rounds (kind "queued-before" etc.), to compare builds in one run.
// --sync normal: the store at synchronous = normal (no flush at each commit),
// so the disk's flush latency, which other programs' writes make vary most
// on a shared machine, does not set the engine's pace: the CPU the outbox
// takes from it shows. With --round none|queued|delivered it runs one round and prints its
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
#include <vector>

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

// Counts the non-empty lines of a file another process appends to, reading
// only what was added since the last call (reading the whole file again
// every 20 ms took a core's share from the kernel once it held thousands of
// requests).
class LineCounter {
 public:
  explicit LineCounter(std::string file) : file_(std::move(file)) {}
  size_t count() {
    std::ifstream in(file_, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset_));
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      const auto got = static_cast<size_t>(in.gcount());
      for (size_t i = 0; i < got; ++i) {
        if (buf[i] == '\n') {
          lines_ += partial_ ? 1 : 0;
          partial_ = false;
        } else {
          partial_ = true;
        }
      }
      offset_ += got;
    }
    return lines_;
  }

 private:
  std::string file_;
  size_t offset_ = 0, lines_ = 0;
  bool partial_ = false;  // the last line read so far has characters
};

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
// the runs> <CPU seconds until every delivery was received, or 0>" (the
// kernel process's: the bench's own waiting is a thread that sleeps).
int round_of(const std::string& kind, int runs, const std::string& workers, const std::string& plugin_dir,
             bool sync_full) {
  const bool rule = kind != "none";
  const bool deliver = kind == "delivered";
  opk::test::ScratchDir scratch;
  const std::string out = scratch.file("requests.jsonl");
  LineCounter received_lines(out);
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
  cfg.store_sync_full = sync_full;
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
  while (deliver && received_lines.count() < static_cast<size_t>(runs) && seconds_since(t0) < 600)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double all_s = deliver ? seconds_since(t0) : 0;
  const double all_cpu_s = deliver ? cpu_seconds() - cpu0 : 0;
  const size_t received = received_lines.count();
  if (deliver && received < static_cast<size_t>(runs))
    opk::bench::die(std::to_string(received) + " of " + std::to_string(runs) + " deliveries received");
  k.stop();
  std::printf("%.4f %.4f %zu %.1f %.4f %.4f\n", runs_s, all_s, received, opk::bench::peak_rss_mib(), runs_cpu_s,
              all_cpu_s);
  return 0;
}

// The 1-minute load average now (/proc/loadavg), or -1.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = -1;
  in >> l;
  return l;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// One kind of round as the main process runs it: its name, the program
// whose child round it is and its plugins folder.
struct Variant {
  std::string label, kind, program, plugins;
};

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_notify_outbox_bench";
  int runs = 1000, pairs = 5;
  std::string workers = "2", plugin_dir = OPK_BUNDLED_PLUGIN_DIR, round, before, kinds_arg = "none,queued,delivered";
  std::string sync = "full";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--runs" && has_value)
      runs = std::atoi(argv[++i]);
    else if (a == "--workers" && has_value)
      workers = argv[++i];
    else if ((a == "--pairs" || a == "--rounds") && has_value)
      pairs = std::atoi(argv[++i]);
    else if (a == "--plugins" && has_value)
      plugin_dir = argv[++i];
    else if (a == "--before" && has_value)
      before = argv[++i];
    else if (a == "--kinds" && has_value)
      kinds_arg = argv[++i];
    else if (a == "--round" && has_value)
      round = argv[++i];
    else if (a == "--sync" && has_value)
      sync = argv[++i];
    else
      opk::bench::die("unknown argument '" + a +
                      "' (usage: [--runs N] [--workers W] [--pairs P] [--kinds none,queued,delivered] "
                      "[--plugins DIR] [--before DIR] [--sync full|normal] [--round KIND])");
  }
  if (runs < 1 || pairs < 1) opk::bench::die("--runs and --pairs must be at least 1");
  if (sync != "full" && sync != "normal") opk::bench::die("--sync: '" + sync + "' is not full or normal");
  auto known = [](const std::string& k) { return k == "none" || k == "queued" || k == "delivered"; };
  if (!round.empty()) {
    if (!known(round)) opk::bench::die("--round: '" + round + "' is not none, queued or delivered");
    return round_of(round, runs, workers, plugin_dir, sync == "full");
  }
  std::vector<Variant> variants{{"none", "none", argv[0], plugin_dir}};
  for (size_t from = 0; from <= kinds_arg.size();) {
    const size_t comma = std::min(kinds_arg.find(',', from), kinds_arg.size());
    const std::string k = kinds_arg.substr(from, comma - from);
    from = comma + 1;
    if (!known(k)) opk::bench::die("--kinds: '" + k + "' is not none, queued or delivered");
    if (k == "none") continue;  // always run: the ratios' base
    variants.push_back({k, k, argv[0], plugin_dir});
    if (!before.empty())
      variants.push_back({k + "-before", k, before + "/opk_notify_outbox_bench", before + "/plugins"});
  }
  if (variants.size() < 2) opk::bench::die("--kinds: name queued or delivered besides none");

  std::map<std::string, std::vector<double>> runs_ms, cpu_per_k, cpu_all, rss, ratio, rate;
  std::printf(
      "notifications outbox benchmark: %d failing runs, %s delivery workers, %d interleaved round(s), "
      "synchronous=%s\n",
      runs, workers.c_str(), pairs, sync.c_str());
  for (int r = 0; r < pairs; ++r) {
    std::map<std::string, double> took;
    std::printf("  round %d:", r + 1);
    // Odd rounds run the kinds in reverse order, so a load that keeps rising
    // or falling through the invocation does not favour one kind.
    std::vector<Variant> order = variants;
    if (r % 2 == 1) std::reverse(order.begin(), order.end());
    for (const auto& v : order) {
      const double load = load_average();
      // The figures are its last line (a first start prints the admin's
      // token before them).
      std::vector<std::string> args = {"--round",   v.kind,  "--runs",    std::to_string(runs),
                                       "--workers", workers, "--plugins", v.plugins};
      if (sync != "full") args.insert(args.end(), {"--sync", sync});  // a build before --sync takes only full
      std::string text = opk::bench::run_child(v.program, args, "round " + v.label);
      while (!text.empty() && text.back() == '\n') text.pop_back();
      const size_t last_line = text.rfind('\n');
      std::istringstream line(last_line == std::string::npos ? text : text.substr(last_line + 1));
      double run_s = 0, all = 0, got = 0, mib = 0, cpu = 0;
      if (!(line >> run_s >> all >> got >> mib >> cpu)) opk::bench::die("round " + v.label + ": no figures");
      double all_cpu = 0;
      line >> all_cpu;  // a build before this figure does not print it
      took[v.label] = run_s;
      runs_ms[v.label].push_back(run_s * 1000);
      cpu_per_k[v.label].push_back(cpu * 1e6 / runs);  // ms per 1,000 runs
      rss[v.label].push_back(mib);
      if (v.kind == "delivered") rate[v.label].push_back(got / all);
      if (v.kind == "delivered" && all_cpu > 0) cpu_all[v.label].push_back(all_cpu * 1e6 / got);
      std::printf(" %s %.0f ms (load %.2f)", v.label.c_str(), run_s * 1000, load);
      std::fflush(stdout);
    }
    for (const auto& v : variants)
      if (v.label != "none") {
        ratio[v.label].push_back(100.0 * took["none"] / took[v.label]);
        std::printf(", %s/none %.1f%%", v.label.c_str(), ratio[v.label].back());
      }
    std::printf("\n");
  }
  for (const auto& v : variants) {
    const std::string l = v.label;
    opk::bench::print(("runs done, " + l + ":").c_str(), runs_ms[l], "ms", 44);
    opk::bench::print(("kernel CPU per 1,000 runs, " + l + ":").c_str(), cpu_per_k[l], "ms", 44);
    opk::bench::print(("peak RSS, " + l + ":").c_str(), rss[l], "MiB", 44);
    if (!rate[l].empty()) opk::bench::print(("deliveries per second, " + l + ":").c_str(), rate[l], "/s", 44);
    if (!cpu_all[l].empty())
      opk::bench::print(("kernel CPU per 1,000 runs, all delivered, " + l + ":").c_str(), cpu_all[l], "ms", 44);
  }
  for (const auto& v : variants)
    if (v.label != "none") {
      std::vector<double> lower;
      for (double x : ratio[v.label]) lower.push_back(100.0 - x);
      opk::bench::print(("throughput " + v.label + " / none:").c_str(), ratio[v.label], "%", 44);
      std::printf("  engine throughput lower with the rule (%s): median %.1f%% (target: less than 10%%)\n",
                  v.label.c_str(), median_of(lower));
    }
  return 0;
}
