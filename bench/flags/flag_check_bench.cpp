// Flag check benchmark: what one global feature flag check costs a plugin.
// A kernel of its own process per round (feature-flags and the flag
// consumer plugin, tests/plugins/feature-flags/flag_consumer.cpp) runs the
// consumer's job flag-bench, which checks a flag through
// opskernel.feature-flags/1 (opk::FeatureFlags::enabled) `checks` times on
// one worker thread and reports the time per check. Three cases: a flag at
// its default, a flag with an operator's override that expires (the clock
// compared on every check), and an unknown id (the fallback). Prints, per
// case, min / median / max of 3 rounds in ns per check, and the kernel
// process's peak RSS.
//   opk_flag_check_bench [--checks N]
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <opskernel/json.hpp>

#include "app/kernel.h"
#include "log/logging.h"
#include "support/bench_util.h"

namespace {

namespace fs = std::filesystem;
using opk::bench::check;
using opk::bench::die;
using opk::bench::peak_rss_mib;
using opk::bench::print;
using opk::bench::run_child;

constexpr const char* kDeclared =
    R"([{"id": "bench.default", "default": true, "description": "At its default"},
        {"id": "bench.override", "default": false, "description": "Overridden until far ahead"}])";

opk::config::Config flags_config(const std::string& dir) {
  opk::config::Config c;
  c.plugins_dir = dir + "/plugins";
  c.data_dir = dir;
  c.store_path = dir + "/opskernel.db";
  c.create_first_admin = false;
  c.plugins["flag-consumer"] = {{"declare", kDeclared}};
  c.log.level = "error";
  c.log.file.clear();
  return c;
}

// The data folder: the two plugins, the flags declared by a first start,
// and bench.override overridden until 2100 as an operator's PATCH leaves it.
void flags_seed(const std::string& dir) {
  fs::create_directories(dir + "/plugins");
  fs::copy_file(std::string(OPK_BENCH_BUNDLED_PLUGIN_DIR) + "/feature-flags.so", dir + "/plugins/feature-flags.so",
                fs::copy_options::overwrite_existing);
  fs::copy_file(std::string(OPK_BENCH_PLUGIN_DIR) + "/bench_flag_consumer.so", dir + "/plugins/flag_consumer.so",
                fs::copy_options::overwrite_existing);
  {
    opk::config::Config c = flags_config(dir);
    opk::log::setup(c.log);
    opk::Kernel k(c);
    check(k.start(), "kernel start");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open((dir + "/opskernel.db").c_str(), &db) != SQLITE_OK) die("open the store to seed it");
  opk::bench::exec(db,
                   "UPDATE p_feature_flags_flags SET value_json = 'true', expires_ms = 4102444800000, "
                   "revision = revision + 1 WHERE id = 'bench.override'");
  sqlite3_close(db);
}

// In a process of its own: starts the kernel on `dir`, runs flag-bench on
// `id` `checks` times, prints "run <ns per check> <peak MiB>".
int flags_round(const std::string& dir, const std::string& id, const std::string& checks) {
  opk::config::Config c = flags_config(dir);
  opk::log::setup(c.log);
  opk::Kernel k(c);
  check(k.start(), "kernel start");
  opk::jobs::RunNow r;
  r.job_type = "flag-bench";
  r.params_json = nlohmann::json{{"id", id}, {"checks", std::stoll(checks)}}.dump();
  r.reason = "benchmark";
  r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
  int64_t run = 0;
  check(k.engine()->run_now(r, &run), "run flag-bench");
  while (!k.engine()->wait(run, 100)) {
  }
  opk::jobs::RunView v;
  if (!k.engine()->get(run, &v)) die("run " + std::to_string(run));
  const nlohmann::json out = nlohmann::json::parse(v.row.output_json, nullptr, false);
  if (!out.is_object() || !out.contains("ns_per_check")) die("flag-bench gave no figure: " + v.row.output_json);
  std::printf("run %.3f %.1f %lld\n", out["ns_per_check"].get<double>(), peak_rss_mib(),
              static_cast<long long>(out.value("on", int64_t{0})));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_flag_check_bench";
  if (argc == 5 && std::string(argv[1]) == "round-child") return flags_round(argv[2], argv[3], argv[4]);
  std::string checks = "20000000";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--checks")
      checks = argv[i + 1];
    else
      die(std::string("unknown option ") + argv[i] + " (--checks N)");
  }
  char tmpl[] = "/tmp/opk-flag-check-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  flags_seed(dir);
  const std::string self = fs::canonical("/proc/self/exe").string();
  std::printf("a flag check from a plugin (opk::FeatureFlags::enabled), %s checks a round, 3 rounds\n", checks.c_str());
  for (const auto& [label, id] : std::vector<std::pair<std::string, std::string>>{
           {"at its default", "bench.default"}, {"overridden, expiring", "bench.override"}, {"unknown id", "nope"}}) {
    std::vector<double> ns, rss;
    for (int round = 0; round < 3; ++round) {
      std::istringstream in(run_child(self, {"round-child", dir, id, checks}, "the round's kernel process"));
      std::string word;
      double t = 0, peak = 0;
      long long on = 0;
      in >> word >> t >> peak >> on;
      if (word != "run") die("unexpected output from a round");
      if (id != "nope" && on != std::stoll(checks)) die(id + ": the flag did not read true on every check");
      ns.push_back(t);
      rss.push_back(peak);
    }
    print(label.c_str(), ns, "ns/check", 24);
    print("  kernel peak RSS", rss, "MiB", 24);
  }
  fs::remove_all(dir);
  return 0;
}
