// RegionHealth benchmark: the job type region-health-refresh (plugin
// job-region-health) over 100 regions (200 endpoints) stored in
// platform-records, against a local HTTP server on 127.0.0.1 (Poco's
// HTTPServer with 32 threads, in this program's parent process: the tests'
// Python region server serves only about 25 requests at a time per 40 ms
// and would be what is measured), in a kernel of its own process per round
// (WAL store, synchronous=FULL, as the kernel runs it). Two cases: every
// endpoint answers at once (/ok), and every endpoint answers after 20 ms
// (/slow/20, a near region). Prints, per case, min / median / max of 3
// rounds of the run's wall time (run now -> stored completion) and the
// kernel process's peak RSS (getrusage ru_maxrss) after the run, with the
// time of its probe step (every endpoint, `concurrency` at a time) and of
// its record step (the history and platform-records' probes).
//   opk_region_health_bench [--regions N] [--concurrency N]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include "app/kernel.h"
#include "log/logging.h"
#include "store/store.h"
#include "support/bench_util.h"

#include <thread>

namespace {

namespace fs = std::filesystem;
using opk::bench::check;
using opk::bench::die;
using opk::bench::now_us;
using opk::bench::peak_rss_mib;
using opk::bench::print;
using opk::bench::run_child;

// A region's endpoint: /ok answers {"status":"pass"} at once, /slow/MS
// after MS milliseconds.
class Endpoint : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest& rq, Poco::Net::HTTPServerResponse& rs) override {
    const std::string uri = rq.getURI();
    if (uri.rfind("/slow/", 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(uri.c_str() + 6)));
    rs.setContentType("application/json");
    rs.sendBuffer("{\"status\":\"pass\"}", 17);
  }
};
class Endpoints : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Endpoint;
  }
};

opk::config::Config config(const std::string& dir, const std::string& concurrency) {
  opk::config::Config c;
  c.plugins_dir = dir + "/plugins";
  c.data_dir = dir;
  c.store_path = dir + "/opskernel.db";
  c.create_first_admin = false;
  c.plugins["job-region-health"] = {{"concurrency", concurrency}, {"evaluate_alerts", "false"}};
  c.log.level = "error";
  c.log.file.clear();
  return c;
}

// The data folder: platform-records and job-region-health, `n` regions
// whose endpoints are `base` + `path`.
void seed(const std::string& dir, int n, const std::string& base, const std::string& path) {
  fs::create_directories(dir + "/plugins");
  for (const char* p : {"platform-records.so", "job-region-health.so"})
    fs::copy_file(std::string(OPK_BENCH_BUNDLED_PLUGIN_DIR) + "/" + p, dir + "/plugins/" + p,
                  fs::copy_options::overwrite_existing);
  {
    // A first start creates the tables.
    opk::config::Config c = config(dir, "8");
    opk::log::setup(c.log);
    opk::Kernel k(c);
    check(k.start(), "kernel start");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open((dir + "/opskernel.db").c_str(), &db) != SQLITE_OK) die("open the store to seed it");
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO p_platform_records_regions (id, name, api_url, identity_url) VALUES (?1, ?1, ?2, ?3)",
                     -1, &st, nullptr);
  if (!st) die(std::string("prepare the seed: ") + sqlite3_errmsg(db));
  for (int i = 0; i < n; ++i) {
    const std::string id = "region-" + std::to_string(i);
    const std::string api = base + path + "?api=" + id, idp = base + path + "?identity=" + id;
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, api.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, idp.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) die("region " + id + ": " + sqlite3_errmsg(db));
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

// In a process of its own: starts the kernel on `dir`, runs the job once,
// prints "run <ms> <outcome> <peak MiB>".
int round_child(const std::string& dir, const std::string& concurrency) {
  opk::config::Config c = config(dir, concurrency);
  opk::log::setup(c.log);
  opk::Kernel k(c);
  check(k.start(), "kernel start");
  opk::jobs::RunNow r;
  r.job_type = "region-health-refresh";
  r.params_json = "{}";
  r.reason = "benchmark";
  r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
  int64_t id = 0;
  const int64_t t0 = now_us();
  check(k.engine()->run_now(r, &id), "run region-health-refresh");
  while (!k.engine()->wait(id, 100)) {
  }
  const double ms = (now_us() - t0) / 1000.0;
  opk::jobs::RunView v;
  if (!k.engine()->get(id, &v)) die("run " + std::to_string(id));
  // Where the time went: the probe step and the record step.
  int64_t probe_ms = 0, record_ms = 0;
  for (const auto& s : v.steps) {
    if (s.step_id == "probe") probe_ms += s.end_ms - s.start_ms;
    if (s.step_id == "record") record_ms += s.end_ms - s.start_ms;
  }
  std::printf("run %.1f %s %.1f %lld %lld\n", ms, v.row.outcome.c_str(), peak_rss_mib(),
              static_cast<long long>(probe_ms), static_cast<long long>(record_ms));
  std::fprintf(stderr, "  %s\n", v.row.summary.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_region_health_bench";
  if (argc == 4 && std::string(argv[1]) == "round-child") return round_child(argv[2], argv[3]);
  int regions = 100;
  std::string concurrency = "8";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--regions")
      regions = std::stoi(argv[i + 1]);
    else if (a == "--concurrency")
      concurrency = argv[i + 1];
    else
      die("unknown option " + a + " (--regions N, --concurrency N)");
  }
  char tmpl[] = "/tmp/opk-region-health-bench-XXXXXX";
  const std::string scratch = mkdtemp(tmpl);
  Poco::ThreadPool pool(32, 32);
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(32);
  params->setMaxQueued(1024);
  params->setKeepAlive(false);
  Poco::Net::HTTPServer server(new Endpoints, pool,
                               Poco::Net::ServerSocket(Poco::Net::SocketAddress("127.0.0.1", 0), 256), params);
  server.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const std::string self = fs::canonical("/proc/self/exe").string();
  std::printf("region-health-refresh over %d regions (%d endpoints), concurrency %s, 3 rounds\n", regions, 2 * regions,
              concurrency.c_str());
  for (const auto& [label, path] : std::vector<std::pair<std::string, std::string>>{
           {"answering at once (/ok)", "/ok"}, {"answering after 20 ms (/slow/20)", "/slow/20"}}) {
    const std::string dir = scratch + (path == "/ok" ? "/ok" : "/slow");
    seed(dir, regions, base, path);
    std::vector<double> ms, rss, probe_ms, record_ms;
    for (int round = 0; round < 3; ++round) {
      std::istringstream in(run_child(self, {"round-child", dir, concurrency}, "the round's kernel process"));
      std::string word, outcome;
      double t = 0, peak = 0, probe = 0, record = 0;
      in >> word >> t >> outcome >> peak >> probe >> record;
      if (word != "run") die("unexpected output from a round");
      if (outcome != "NORMAL") std::fprintf(stderr, "  round %d ended %s\n", round + 1, outcome.c_str());
      ms.push_back(t);
      rss.push_back(peak);
      probe_ms.push_back(probe);
      record_ms.push_back(record);
    }
    std::printf("%s\n", label.c_str());
    print("run (run now -> completed)", ms, "ms", 28);
    print("  of which probing", probe_ms, "ms", 28);
    print("  of which recording", record_ms, "ms", 28);
    print("kernel peak RSS", rss, "MiB", 28);
  }
  server.stop();
  fs::remove_all(scratch);
  return 0;
}
