// Job engine benchmark. Prints, as min / median / max of 3 rounds on a fresh
// store each (synchronous=FULL, WAL):
//   throughput  20,000 no-op runs end to end (created -> RUNNING -> COMPLETED,
//               one log line stored each, and each run's end event in the
//               event log), from the enqueue call to the last completion
//               stored, with the events written per run;
//   enqueue     20,000 run-now requests through the batch call (into an idle
//               engine, and while a worker drains the queue), and 2,000
//               single calls;
//   run now     single run-now calls (actor and reason, one run each, durable
//               before the call returns) from 16 threads at once, each
//               calling again as soon as it is answered: calls/s and p50 /
//               p99 latency; with runs due at once, run meanwhile by the
//               default pool (4 workers), and with runs due in an hour (the
//               calls alone);
//   lag         200 one-shot runs due 100 ms apart: due time -> plugin entry;
//   burst       10,000 scheduled jobs due at the same instant: due time ->
//               last plugin entry;
//   memory      RSS with the plugin loaded and idle, and with 10,000
//               scheduled jobs loaded;
//   yardstick   plain SQLite inserts in memory before and after, to compare
//               runs on a machine whose speed varies.
// Usage: opk_engine_bench [--quick]
//          [--only throughput|enqueue|enqueue-idle|run-now|run-now-due|run-now-later|lag|burst]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <sqlite3.h>

#include "app/kernel.h"
#include "log/logging.h"
#include "support/bench_util.h"

namespace {

using opk::Kernel;
using opk::bench::percentile;
using opk::bench::stats;
using opk::jobs::RunNow;

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process (every thread, user and system), seconds.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

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
    char tmpl[] = "/tmp/opk-bench-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::unique_ptr<Kernel> kernel(const TempDir& d, int workers) {
  opk::config::Config c;
  c.plugins_dir = OPK_BENCH_PLUGIN_DIR;
  c.data_dir = d.path;
  c.store_path = d.path + "/opk.db";
  c.log.level = "warn";
  c.log.file.clear();
  c.pools = {{"default", workers}};
  opk::log::setup(c.log);
  auto k = std::make_unique<Kernel>(c);
  opk::Status s = k->start();
  if (!s) {
    std::cerr << "cannot start: " << s.message() << "\n";
    std::exit(1);
  }
  return k;
}

RunNow noop_request(int64_t start_at_ms = 0) {
  RunNow r;
  r.job_type = "noop";
  r.params_json = "{}";
  r.reason = "bench";
  r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
  r.start_at_ms = start_at_ms;
  return r;
}

// Entry microsecond the no-op logged.
int64_t entry_us(Kernel& k, int64_t run_id) {
  auto logs = k.store()->logs(run_id, 0, 1).value();
  if (logs.empty()) return 0;
  return std::stoll(logs[0].message.substr(logs[0].message.find('=') + 1));
}

// Waits until no run is PENDING or RUNNING: polls the last run (a lookup
// by id), then the open runs, so the polling takes little from the workers.
void wait_all(Kernel& k, const std::vector<int64_t>& ids) {
  opk::store::RunRow last;
  while (!ids.empty() && (!k.store()->get_run(ids.back(), &last) || last.phase != opk::store::kCompleted))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  while (!k.store()->runs_in_phase(opk::store::kPending, 1).value().empty() ||
         !k.store()->runs_in_phase(opk::store::kRunning, 1).value().empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

// A yardstick for the machine's speed at the moment: plain SQLite inserts
// into an in-memory table, rows per second. Shared virtual machines change
// speed from one minute to the next (2x on the one these figures come from);
// print it beside the figures so runs can be compared.
double sqlite_yardstick() {
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER); BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (a, b) VALUES ('hello', ?)", -1, &st, nullptr);
  constexpr int kRows = 200000;
  const int64_t t0 = now_us();
  for (int i = 0; i < kRows; ++i) {
    sqlite3_bind_int(st, 1, i);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  const double rate = kRows / ((now_us() - t0) / 1e6);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string only;  // one part alone, for profiling
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    if (a == "--only" && i + 1 < argc) only = argv[++i];
  }
  auto part = [&](const char* name) { return only.empty() || only == name; };
  const int rounds = quick ? 1 : 3;
  const int n = quick ? 2000 : 20000;
  // As the kernel does before SQLite's first use: the yardstick must not
  // leave SQLite in its default (serialized) mode for the rounds.
  opk::store::configure_sqlite();
  std::vector<double> yardstick{sqlite_yardstick()};
  std::vector<double> events_per_run;
  std::vector<double> throughput, cpu_per_run, busy_cores, enqueue_idle, enqueue_batch, enqueue_single, lag_p50,
      lag_p99, lag_max, burst_ms;
  std::vector<double> run_now_rate[2], run_now_p50[2], run_now_p99[2];  // runs due now, due in an hour
  double idle_rss = 0, loaded_rss = 0;

  for (int round = 0; round < rounds; ++round) {
    if (part("throughput")) {  // throughput
      TempDir d;
      auto k = kernel(d, 2);
      std::vector<RunNow> reqs(n, noop_request());
      std::vector<int64_t> ids;
      const int64_t t0 = now_us();
      const double cpu0 = cpu_seconds();
      for (size_t i = 0; i < reqs.size(); i += 1000) {
        std::vector<RunNow> part(reqs.begin() + i, reqs.begin() + std::min(reqs.size(), i + 1000));
        k->engine()->run_now_batch(part, &ids);
      }
      wait_all(*k, ids);
      const double secs = (now_us() - t0) / 1e6;
      const double cpu = cpu_seconds() - cpu0;
      throughput.push_back(n / secs);
      // Each run's end writes its event in its completion's transaction (the
      // event log is always on).
      events_per_run.push_back(static_cast<double>(k->store()->last_event_seq()) / n);
      cpu_per_run.push_back(cpu * 1e6 / n);
      busy_cores.push_back(cpu / secs);
      if (round == 0) idle_rss = rss_mib();
    }
    if (part("enqueue") || part("enqueue-idle")) {  // enqueue: batch calls, into an idle engine and while a worker
                                                    // drains the queue; singles
      {
        // Runs that start in an hour: created exactly as any run now (checked,
        // audited, stored, queued), but no worker takes them meanwhile.
        TempDir d;
        auto k = kernel(d, 1);
        std::vector<RunNow> part(1000, noop_request(now_us() / 1000 + 3600 * 1000));
        std::vector<int64_t> ids;
        const int64_t t0 = now_us();
        for (int i = 0; i < n / 1000; ++i) k->engine()->run_now_batch(part, &ids);
        enqueue_idle.push_back(n / ((now_us() - t0) / 1e6));
      }
      if (only == "enqueue-idle") continue;
      TempDir d;
      auto k = kernel(d, 1);
      std::vector<RunNow> part(1000, noop_request());
      std::vector<int64_t> ids;
      int64_t t0 = now_us();
      for (int i = 0; i < n / 1000; ++i) k->engine()->run_now_batch(part, &ids);
      enqueue_batch.push_back(n / ((now_us() - t0) / 1e6));
      const int singles = n / 10;
      t0 = now_us();
      for (int i = 0; i < singles; ++i) {
        int64_t id = 0;
        k->engine()->run_now(noop_request(), &id);
        ids.push_back(id);
      }
      enqueue_single.push_back(singles / ((now_us() - t0) / 1e6));
      wait_all(*k, ids);
    }
    if (part("run-now") || only == "run-now-due" || only == "run-now-later") {
      // run now: 16 callers in flight, one run per call. Twice: runs due at
      // once (the default pool runs them meanwhile), and runs due in an hour
      // (the calls alone, no worker writing beside them).
      for (const bool later : {false, true}) {
        if (only == (later ? "run-now-due" : "run-now-later")) continue;
        TempDir d;
        auto k = kernel(d, 4);  // the default pool's size
        constexpr int kCallers = 16;
        const int per_caller = n / kCallers;
        const int64_t start_at = later ? now_us() / 1000 + 3600 * 1000 : 0;
        std::vector<std::vector<double>> latency(kCallers);
        std::vector<std::vector<int64_t>> caller_ids(kCallers);
        std::atomic<int> ready{0}, failed{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> callers;
        for (int c = 0; c < kCallers; ++c)
          callers.emplace_back([&, c] {
            latency[c].reserve(per_caller);
            ++ready;
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < per_caller; ++i) {
              int64_t id = 0;
              const int64_t t = now_us();
              if (!k->engine()->run_now(noop_request(start_at), &id)) ++failed;
              latency[c].push_back((now_us() - t) / 1000.0);
              caller_ids[c].push_back(id);
            }
          });
        while (ready.load() < kCallers) std::this_thread::yield();
        const int64_t t0 = now_us();
        go = true;
        for (auto& t : callers) t.join();
        const double secs = (now_us() - t0) / 1e6;
        if (failed.load()) std::cerr << failed.load() << " run-now call(s) failed\n";
        std::vector<double> all;
        std::vector<int64_t> ids;
        for (int c = 0; c < kCallers; ++c) {
          all.insert(all.end(), latency[c].begin(), latency[c].end());
          ids.insert(ids.end(), caller_ids[c].begin(), caller_ids[c].end());
        }
        std::sort(ids.begin(), ids.end());
        const int v = later ? 1 : 0;
        run_now_rate[v].push_back(all.size() / secs);
        run_now_p50[v].push_back(percentile(all, 0.5));
        run_now_p99[v].push_back(percentile(all, 0.99));
        if (!later) wait_all(*k, ids);
      }
    }
    if (part("lag")) {  // dispatch lag: 200 one-shot runs due 100 ms apart on an idle kernel
      // An idle machine too: the earlier rounds' writes are on disk first, so
      // a flush here does not wait behind their write-back.
      ::sync();
      TempDir d;
      auto k = kernel(d, 2);
      const int count = quick ? 50 : 200;
      const int64_t first = now_us() / 1000 + 500;
      std::vector<RunNow> reqs;
      for (int i = 0; i < count; ++i) reqs.push_back(noop_request(first + i * 100));
      std::vector<int64_t> ids;
      k->engine()->run_now_batch(reqs, &ids);
      wait_all(*k, ids);
      std::vector<double> lags;
      for (int i = 0; i < count; ++i) lags.push_back((entry_us(*k, ids[i]) - (first + i * 100) * 1000) / 1000.0);
      lag_p50.push_back(percentile(lags, 0.5));
      lag_p99.push_back(percentile(lags, 0.99));
      lag_max.push_back(*std::max_element(lags.begin(), lags.end()));
    }
    if (part("burst")) {  // burst: 10,000 scheduled jobs due at the same instant
      TempDir d;
      const int jobs = quick ? 1000 : 10000;
      int64_t due = 0;
      {
        auto k = kernel(d, 4);
        for (int i = 0; i < jobs; ++i) {
          opk::store::ScheduledJob j;
          j.id = "job-" + std::to_string(i);
          j.job_type = "noop";
          j.planning = "scheduled";
          j.cron = "0 0 1 1 *";
          k->engine()->define_job(j, {"bench", "PlatformAdministrator", "platform", "bench"});
        }
        // Make every job due at the same instant, a moment after the restart.
        // One transaction, so the due instant has not passed when the
        // kernel has restarted.
        due = (now_us() / 1000) + 1500;
        std::vector<std::pair<std::string, int64_t>> next;
        for (int i = 0; i < jobs; ++i) next.emplace_back("job-" + std::to_string(i), due);
        k->store()->set_next_runs(next);
      }
      auto k = kernel(d, 4);
      if (round == 0) loaded_rss = rss_mib();
      opk::store::RunFilter f;
      f.limit = static_cast<size_t>(jobs);
      f.phase = opk::store::kCompleted;
      // A cheap count (the partial index of completed runs), so the polling
      // takes little from the workers.
      auto completed = [&] {
        std::vector<std::vector<std::optional<std::string>>> rows;
        k->store()->query("SELECT COUNT(*) FROM run_state WHERE phase = 'COMPLETED'", {}, &rows);
        return rows.empty() || !rows[0][0] ? 0 : std::stoll(*rows[0][0]);
      };
      while (completed() < jobs) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      int64_t last = 0;
      for (const auto& r : k->store()->list_runs(f).value()) last = std::max(last, entry_us(*k, r.id));
      burst_ms.push_back((last - due * 1000) / 1000.0);
    }
  }
  std::cout << "opskernel job engine benchmark (" << rounds << " round(s), " << std::thread::hardware_concurrency()
            << " cores, SQLite WAL synchronous=FULL)\n";
  yardstick.push_back(sqlite_yardstick());
  std::cout << "  yardstick, SQLite in-memory inserts (before, after): " << static_cast<int64_t>(yardstick[0]) << ", "
            << static_cast<int64_t>(yardstick[1]) << " rows/s\n";
  std::cout << "  throughput, " << n << " no-op runs end to end:  " << stats(throughput, "runs/s") << "\n";
  std::cout << "    CPU per run (every thread):            " << stats(cpu_per_run, "us", 1) << "\n";
  std::cout << "    events written per run (event log):    " << stats(events_per_run, "", 2) << "\n";
  std::cout << "    cores busy meanwhile:                  " << stats(busy_cores, "", 2) << "\n";
  std::cout << "  enqueue, batch call (1,000 per call):    " << stats(enqueue_idle, "runs/s") << "\n";
  std::cout << "  enqueue, batch call, a worker draining:  " << stats(enqueue_batch, "runs/s") << "\n";
  std::cout << "  enqueue, single calls:                   " << stats(enqueue_single, "runs/s") << "\n";
  for (const int v : {0, 1}) {
    std::cout << (v ? "  run now, 16 callers, runs due in 1 h:    " : "  run now, 16 callers, runs due now:       ")
              << stats(run_now_rate[v], "calls/s") << "\n";
    std::cout << "    latency p50:                           " << stats(run_now_p50[v], "ms", 2) << "\n";
    std::cout << "    latency p99:                           " << stats(run_now_p99[v], "ms", 2) << "\n";
  }
  std::cout << "  dispatch lag p50 (due -> plugin entry):  " << stats(lag_p50, "ms", 2) << "\n";
  std::cout << "  dispatch lag p99:                        " << stats(lag_p99, "ms", 2) << "\n";
  std::cout << "  dispatch lag max:                        " << stats(lag_max, "ms", 2) << "\n";
  std::cout << "  burst, scheduled jobs due at once -> last started: " << stats(burst_ms, "ms") << "\n";
  std::cout << "  RSS after the throughput round:          " << idle_rss << " MiB\n";
  std::cout << "  RSS with " << (quick ? 1000 : 10000) << " scheduled jobs loaded:      " << loaded_rss << " MiB\n";
  return 0;
}
