// Alert engine benchmark. Prints min / median / max of 3 rounds, each on a
// fresh SQLite store (WAL, synchronous=FULL, as the kernel runs it):
//   raise   100,000 distinct alerts raised one by one through the engine's
//           raise path (what an alert source's ctx.raise does), then the
//           same 100,000 again, which only update the open alerts: alerts/s
//           for each;
//   sweep   the missing-usage source over 100,000 active subscriptions
//           without usage (platform-records' table and their hierarchy
//           nodes seeded first), run as its scheduled job
//           alerts.missing-usage in a kernel of its own process: the first
//           sweep raises 100,000 alerts, the second only updates them; the
//           wall time of each run and the kernel process's peak RSS
//           (getrusage ru_maxrss) after each (the current RSS
//           on standard error). A run that ends otherwise
//           (the evaluation's timeout, 5 minutes by default) is printed
//           with how far it got.
// Also used by bench/alerts/alerts_api.sh to fill a store with alerts:
//   opk_alerts_bench [--quick] [--only raise|sweep] [--alerts N] [--subscriptions N]
//   opk_alerts_bench seed STORE_FILE ALERTS
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>
#include <opskernel/json.hpp>

#include "alerts/alerts.h"
#include "app/kernel.h"
#include "identity/identity.h"
#include "log/logging.h"
#include "store/store.h"
#include "support/bench_util.h"

namespace {

namespace fs = std::filesystem;
using opk::bench::check;
using opk::bench::die;
using opk::bench::exec;
using opk::bench::now_us;
using opk::bench::peak_rss_mib;
using opk::bench::run_child;
using opk::bench::stats;

// Resident set of this process now, MiB.
double rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/opk-alerts-bench-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// distributor:d1 > partner:p1 > tenant:t0 ... tenant:t<tenants - 1>.
std::string hierarchy(int tenants) {
  using Json = nlohmann::json;
  Json nodes = Json::array(
      {{{"id", "distributor:d1"}, {"parent", "platform"}}, {{"id", "partner:p1"}, {"parent", "distributor:d1"}}});
  for (int t = 0; t < tenants; ++t) nodes.push_back({{"id", "tenant:t" + std::to_string(t)}, {"parent", "partner:p1"}});
  return Json{{"nodes", nodes}}.dump();
}

constexpr int kTenants = 100;
const char* const kSeverities[] = {"info", "warning", "critical"};

// The alert a source raises about object i.
opk::alerts::Raise alert(int i, const std::string& title) {
  opk::alerts::Raise r;
  r.severity = kSeverities[i % 3];
  r.title = title;
  r.message = "object obj-" + std::to_string(i) + " needs attention";
  r.related_type = "object";
  r.related_id = "obj-" + std::to_string(i);
  r.scope = "tenant:t" + std::to_string(i % kTenants);
  r.details_json = R"({"n":)" + std::to_string(i) + "}";
  return r;
}

// The engine over a store at `path` with the bench hierarchy.
struct EngineOnStore {
  std::unique_ptr<opk::store::Store> store;
  std::unique_ptr<opk::identity::Identity> identity;
  std::unique_ptr<opk::alerts::Engine> engine;
  opk::alerts::SourceInfo source{.id = "bench", .plugin = "bench", .area = "bench"};

  EngineOnStore(const std::string& path, bool durable_full) {
    check(opk::store::open_sqlite(path, durable_full, &store), "open " + path);
    identity = std::make_unique<opk::identity::Identity>(*store, opk::identity::default_permissions());
    int added = 0;
    check(identity->import_hierarchy(hierarchy(kTenants), &added), "hierarchy");
    engine = std::make_unique<opk::alerts::Engine>(*store, *identity, opk::alerts::Options{});
  }
};

// Raises n alerts with `title`; alerts/s.
double raise_all(EngineOnStore& e, int n, const std::string& title) {
  const int64_t t0 = now_us();
  for (int i = 0; i < n; ++i) check(e.engine->raise(e.source, alert(i, title), "system:bench", nullptr), "raise");
  return n / ((now_us() - t0) / 1e6);
}

int64_t count(opk::store::Store& st, const std::string& sql) {
  std::vector<std::vector<std::optional<std::string>>> rows;
  check(st.query(sql, {}, &rows), sql);
  return rows.empty() || !rows[0][0] ? 0 : std::stoll(*rows[0][0]);
}

// --- seed: a store with `n` open alerts for the admin API benchmark
int seed(const std::string& path, int n) {
  // Not durable: the store is only filled here; the kernel that serves it
  // opens it as usual.
  EngineOnStore e(path, false);
  const double rate = raise_all(e, n, "Benchmark alert");
  std::printf("seeded %d open alerts (a third each info, warning, critical; %d tenants) into %s at %.0f alerts/s\n", n,
              kTenants, path.c_str(), rate);
  return 0;
}

// --- sweep: the data folder for a kernel with platform-records and
// alert-missing-usage, `n` active subscriptions without usage.
void seed_sweep(const std::string& dir, int n) {
  fs::create_directories(dir + "/plugins");
  for (const char* p : {"platform-records.so", "alert-missing-usage.so"})
    fs::copy_file(std::string(OPK_BENCH_BUNDLED_PLUGIN_DIR) + "/" + p, dir + "/plugins/" + p);
  {
    // A first start creates the kernel's tables and platform-records'.
    opk::config::Config c;
    c.plugins_dir = dir + "/plugins";
    c.data_dir = dir;
    c.store_path = dir + "/opskernel.db";
    c.create_first_admin = false;
    // Its schedule far away: only the benchmark's runs sweep.
    c.jobs["alerts.missing-usage"] = {{"type", "missing-usage"}, {"planning", "scheduled"}, {"cron", "0 0 1 1 *"}};
    c.log.level = "error";
    c.log.file.clear();
    opk::log::setup(c.log);
    opk::Kernel k(c);
    check(k.start(), "kernel start");
  }
  // Then the records and their hierarchy nodes, in one transaction: 1,000
  // tenants of n / 1,000 subscriptions each.
  sqlite3* db = nullptr;
  if (sqlite3_open((dir + "/opskernel.db").c_str(), &db) != SQLITE_OK) die("open the store to seed it");
  exec(db, "BEGIN");
  {
    // The statements end before the commit.
    opk::bench::NodeWriter nodes(db);
    sqlite3_stmt* sub = nullptr;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO p_platform_records_subscriptions (id, tenant, product, status, period_start) VALUES "
        "(?1, ?2, 'mail', 'active', '2026-01-01')",
        -1, &sub, nullptr);
    if (!sub) die(std::string("prepare the seed: ") + sqlite3_errmsg(db));
    nodes.add("distributor:d1", "distributor", "platform");
    nodes.add("partner:p1", "partner", "distributor:d1");
    const int tenants = 1000;
    for (int t = 0; t < tenants; ++t) nodes.add("tenant:t" + std::to_string(t), "tenant", "partner:p1");
    for (int i = 0; i < n; ++i) {
      const std::string id = "sub-" + std::to_string(i), tenant = "tenant:t" + std::to_string(i % tenants);
      nodes.add("subscription:" + id, "subscription", tenant);
      sqlite3_bind_text(sub, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(sub, 2, tenant.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(sub) != SQLITE_DONE) die("subscription " + id + ": " + sqlite3_errmsg(db));
      sqlite3_reset(sub);
    }
    sqlite3_finalize(sub);
  }
  exec(db, "COMMIT");
  sqlite3_close(db);
}

// In a process of its own (so its peak RSS is the kernel's): starts the
// kernel on `dir` and runs alerts.missing-usage twice (once if the first run
// fails), printing "start <peak MiB>" and, per run, "sweep <ms> <outcome>
// <open alerts> <their occurrences> <peak MiB>".
int sweep_child(const std::string& dir) {
  opk::config::Config c;
  c.plugins_dir = dir + "/plugins";
  c.data_dir = dir;
  c.store_path = dir + "/opskernel.db";
  c.create_first_admin = false;
  c.log.level = "error";
  c.log.file.clear();
  opk::log::setup(c.log);
  opk::Kernel k(c);
  check(k.start(), "kernel start");
  std::printf("start %.1f\n", peak_rss_mib());
  for (int sweep = 0; sweep < 2; ++sweep) {
    opk::jobs::RunNow r;
    r.scheduled_job_id = "alerts.missing-usage";
    r.reason = "benchmark";
    r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
    int64_t id = 0;
    const int64_t t0 = now_us();
    check(k.engine()->run_now(r, &id), "run alerts.missing-usage");
    while (!k.engine()->wait(id, 100)) {
    }
    const double ms = (now_us() - t0) / 1000.0;
    opk::jobs::RunView v;
    check(k.engine()->get(id, &v), "run " + std::to_string(id));
    std::fprintf(stderr, "  sweep %d: RSS now %.1f MiB\n", sweep + 1, rss_mib());
    std::printf("sweep %.1f %s %lld %lld %.1f\n", ms, v.row.outcome.c_str(),
                static_cast<long long>(count(*k.store(), "SELECT COUNT(*) FROM alerts WHERE closed_ms IS NULL")),
                static_cast<long long>(count(*k.store(), "SELECT COALESCE(SUM(occurrences), 0) FROM alerts")),
                peak_rss_mib());
    std::fflush(stdout);
    if (v.row.outcome != opk::store::kNormal) {
      std::cerr << "alerts.missing-usage ended " << v.row.outcome << ": " << v.row.summary << "\n";
      break;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_alerts_bench";
  opk::store::configure_sqlite();
  if (argc == 4 && std::string(argv[1]) == "seed") return seed(argv[2], std::atoi(argv[3]));
  if (argc == 3 && std::string(argv[1]) == "sweep-child") return sweep_child(argv[2]);
  bool quick = false;
  std::string only;
  int alerts_n = 0, subs_n = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    if (a == "--only" && i + 1 < argc) only = argv[++i];
    if (a == "--alerts" && i + 1 < argc) alerts_n = std::atoi(argv[++i]);
    if (a == "--subscriptions" && i + 1 < argc) subs_n = std::atoi(argv[++i]);
  }
  auto part = [&](const char* name) { return only.empty() || only == name; };
  const int rounds = quick ? 1 : 3;
  const int n = alerts_n > 0 ? alerts_n : quick ? 10000 : 100000;
  const int subs = subs_n > 0 ? subs_n : quick ? 10000 : 100000;
  opk::log::Settings quiet;
  quiet.level = "warn";
  quiet.file.clear();
  opk::log::setup(quiet);

  std::vector<double> raise_new, raise_repeat, sweep_first, sweep_second, rss_start, rss_first, rss_second;
  std::string self = fs::read_symlink("/proc/self/exe");
  for (int round = 0; round < rounds; ++round) {
    if (part("raise")) {
      TempDir d;
      EngineOnStore e(d.path + "/opskernel.db", true);
      raise_new.push_back(raise_all(e, n, "Benchmark alert"));
      raise_repeat.push_back(raise_all(e, n, "Benchmark alert"));
      const int64_t open = count(*e.store, "SELECT COUNT(*) FROM alerts WHERE closed_ms IS NULL");
      const int64_t events = count(*e.store, "SELECT COUNT(*) FROM alert_events");
      if (open != n || events != n)
        die("raise: expected " + std::to_string(n) + " open alerts with one event each, got " + std::to_string(open) +
            " and " + std::to_string(events));
    }
    if (part("sweep")) {
      TempDir d;
      seed_sweep(d.path, subs);
      std::istringstream in(run_child(self, {"sweep-child", d.path}, "the sweep's kernel process"));
      std::string tag, outcome;
      double ms = 0, rss = 0;
      long long open = 0, occurrences = 0;
      in >> tag >> rss;
      rss_start.push_back(rss);
      for (int sweep = 0; sweep < 2 && (in >> tag >> ms >> outcome >> open >> occurrences >> rss); ++sweep) {
        if (outcome != opk::store::kNormal) {
          std::cout << "  sweep " << sweep + 1 << " of round " << round + 1 << " ended " << outcome << " after " << ms
                    << " ms with " << open << " of " << subs << " alerts open (peak RSS " << rss << " MiB)\n";
          break;
        }
        if (open != subs || occurrences != (sweep + 1LL) * subs)
          die("sweep: expected " + std::to_string(subs) + " open alerts seen " + std::to_string(sweep + 1) +
              " time(s) each, got " + std::to_string(open) + " with " + std::to_string(occurrences) + " occurrences");
        std::cout << "  round " << round + 1 << ", sweep " << sweep + 1 << ": " << ms << " ms, peak RSS " << rss
                  << " MiB" << std::endl;
        (sweep ? sweep_second : sweep_first).push_back(ms);
        (sweep ? rss_second : rss_first).push_back(rss);
      }
    }
  }
  std::cout << "opskernel alert engine benchmark (" << rounds << " round(s), " << std::thread::hardware_concurrency()
            << " cores, SQLite WAL synchronous=FULL)\n";
  std::cout << "  raise, " << n << " distinct alerts:            " << stats(raise_new, "alerts/s") << "\n";
  std::cout << "  raise, the same " << n << " again (updates):   " << stats(raise_repeat, "alerts/s") << "\n";
  std::cout << "  sweep of missing-usage, " << subs
            << " subscriptions, first (raises all): " << stats(sweep_first, "ms") << "\n";
  std::cout << "  sweep, second (updates all):             " << stats(sweep_second, "ms") << "\n";
  std::cout << "  kernel peak RSS, started:                " << stats(rss_start, "MiB", 1) << "\n";
  std::cout << "  kernel peak RSS, after the first sweep:  " << stats(rss_first, "MiB", 1) << "\n";
  std::cout << "  kernel peak RSS, after the second sweep: " << stats(rss_second, "MiB", 1) << "\n";
  return 0;
}
