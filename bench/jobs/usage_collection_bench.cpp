// UsageCollection benchmark: the job type usage-collection (plugin
// job-usage-collection) over 10,000 active subscriptions in 4 regions
// stored in platform-records (100 tenants under one partner and
// distributor, so every billing line gets two commissions), against a local
// usage provider on 127.0.0.1 (Poco's HTTPServer in this program's parent
// process, answering generated pages of 1,000 items; the tests' Python
// server would be part of what is measured, see --provider-only). Each
// round seeds a fresh store and runs the job twice in a kernel process of
// its own (WAL store, synchronous=FULL, as the kernel runs it): the first
// run inserts 10,000 usage rows, 10,000 billing lines and 20,000
// commissions; the rerun finds them all unchanged. Prints min / median /
// max of 3 rounds of each run's wall time (run now -> stored completion),
// of its collect, billing and commission steps, and the kernel process's
// peak RSS (getrusage ru_maxrss); then the provider alone (every page
// fetched once, one region after the other).
//   opk_usage_collection_bench [--subscriptions N] [--regions N] [--concurrency N]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>
#include "app/kernel.h"
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
using opk::bench::print;
using opk::bench::run_child;

int g_subscriptions = 10'000;
int g_regions = 4;
constexpr int kPageItems = 1000;

// GET /usage/<region index>?month=&cursor=<offset>: the subscriptions
// sub-<i> with i % regions == region, kPageItems a page.
class UsagePage : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest& rq, Poco::Net::HTTPServerResponse& rs) override {
    const Poco::URI uri(rq.getURI());
    const int region = std::atoi(uri.getPath().c_str() + 7);  // after "/usage/"
    size_t offset = 0;
    for (const auto& [k, v] : uri.getQueryParameters())
      if (k == "cursor") offset = static_cast<size_t>(std::stoul(v));
    std::vector<int> ids;
    for (int i = region; i < g_subscriptions; i += g_regions) ids.push_back(i);
    std::string body = "{\"items\":[";
    const size_t end = std::min(ids.size(), offset + kPageItems);
    for (size_t k = offset; k < end; ++k) {
      const int i = ids[k];
      char item[160];
      std::snprintf(item, sizeof item,
                    "%s{\"subscription\":\"sub-%d\",\"quantity\":%d,\"cost\":%.2f,\"currency\":\"EUR\"}",
                    k == offset ? "" : ",", i, i % 7, (i % 100) / 4.0);
      body += item;
    }
    body += "],\"next\":";
    body += end < ids.size() ? "\"" + std::to_string(end) + "\"" : "null";
    body += "}";
    rs.setContentType("application/json");
    rs.sendBuffer(body.data(), body.size());
  }
};
class UsagePages : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new UsagePage;
  }
};

opk::config::Config config(const std::string& dir, const std::string& concurrency) {
  opk::config::Config c;
  c.plugins_dir = dir + "/plugins";
  c.data_dir = dir;
  c.store_path = dir + "/opskernel.db";
  c.create_first_admin = false;
  c.plugins["job-usage-collection"] = {
      {"concurrency", concurrency}, {"partner_percent", "10"}, {"distributor_percent", "5"}};
  c.log.level = "error";
  c.log.file.clear();
  return c;
}

// A fresh data folder: platform-records and job-usage-collection, the
// regions, the hierarchy and the subscriptions.
void seed(const std::string& dir, const std::string& base) {
  fs::remove_all(dir);
  fs::create_directories(dir + "/plugins");
  for (const char* p : {"platform-records.so", "job-usage-collection.so"})
    fs::copy_file(std::string(OPK_BENCH_BUNDLED_PLUGIN_DIR) + "/" + p, dir + "/plugins/" + p,
                  fs::copy_options::overwrite_existing);
  {
    // A first start creates the tables.
    opk::config::Config c = config(dir, "4");
    opk::log::setup(c.log);
    opk::Kernel k(c);
    check(k.start(), "kernel start");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open((dir + "/opskernel.db").c_str(), &db) != SQLITE_OK) die("open the store to seed it");
  exec(db, "BEGIN");
  for (int r = 0; r < g_regions; ++r)
    exec(db,
         "INSERT INTO p_platform_records_regions (id, name, api_url, identity_url, usage_url, currency) VALUES ('r" +
             std::to_string(r) + "', 'r', 'https://api.example', 'https://id.example', '" + base + "/usage/" +
             std::to_string(r) + "', 'EUR')");
  {
    // The statements end before the commit.
    opk::bench::NodeWriter nodes(db);
    sqlite3_stmt* sub = nullptr;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO p_platform_records_subscriptions (id, tenant, product, status, period_start, region) "
        "VALUES (?1, ?2, 'mail', 'active', '2025-01-01', ?3)",
        -1, &sub, nullptr);
    if (!sub) die(std::string("prepare the seed: ") + sqlite3_errmsg(db));
    nodes.add("distributor:d1", "distributor", "platform");
    nodes.add("partner:p1", "partner", "distributor:d1");
    const int tenants = 100;
    for (int t = 0; t < tenants; ++t) nodes.add("tenant:t" + std::to_string(t), "tenant", "partner:p1");
    for (int i = 0; i < g_subscriptions; ++i) {
      const std::string id = "sub-" + std::to_string(i), tenant = "tenant:t" + std::to_string(i % tenants);
      const std::string region = "r" + std::to_string(i % g_regions);
      nodes.add("subscription:" + id, "subscription", tenant);
      sqlite3_bind_text(sub, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(sub, 2, tenant.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(sub, 3, region.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(sub) != SQLITE_DONE) die("subscription " + id + ": " + sqlite3_errmsg(db));
      sqlite3_reset(sub);
    }
    sqlite3_finalize(sub);
  }
  exec(db, "COMMIT");
  sqlite3_close(db);
}

// In a process of its own: starts the kernel on `dir`, runs the job twice,
// prints per run "run <ms> <outcome> <peak MiB> <collect ms> <billing ms>
// <commissions ms>".
int round_child(const std::string& dir, const std::string& concurrency) {
  opk::config::Config c = config(dir, concurrency);
  opk::log::setup(c.log);
  opk::Kernel k(c);
  check(k.start(), "kernel start");
  for (int pass = 0; pass < 2; ++pass) {
    opk::jobs::RunNow r;
    r.job_type = "usage-collection";
    r.params_json = "{}";
    r.reason = "benchmark";
    r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
    int64_t id = 0;
    const int64_t t0 = now_us();
    check(k.engine()->run_now(r, &id), "run usage-collection");
    while (!k.engine()->wait(id, 100)) {
    }
    const double ms = (now_us() - t0) / 1000.0;
    opk::jobs::RunView v;
    if (!k.engine()->get(id, &v)) die("run " + std::to_string(id));
    int64_t collect_ms = 0, billing_ms = 0, commissions_ms = 0;
    for (const auto& s : v.steps) {
      if (s.step_id.rfind("collect-usage: ", 0) == 0) collect_ms += s.end_ms - s.start_ms;
      if (s.step_id == "generate-billing") billing_ms += s.end_ms - s.start_ms;
      if (s.step_id == "generate-commissions") commissions_ms += s.end_ms - s.start_ms;
    }
    std::printf("run %.1f %s %.1f %lld %lld %lld\n", ms, v.row.outcome.c_str(), peak_rss_mib(),
                static_cast<long long>(collect_ms), static_cast<long long>(billing_ms),
                static_cast<long long>(commissions_ms));
    std::fprintf(stderr, "  %s\n", v.row.summary.c_str());
  }
  return 0;
}

// Every page of every region fetched once, one after the other: the
// provider's share of a run.
double provider_ms(const std::string& host, int port) {
  const int64_t t0 = now_us();
  for (int r = 0; r < g_regions; ++r) {
    std::string cursor;
    for (;;) {
      Poco::Net::HTTPClientSession s(host, static_cast<Poco::UInt16>(port));
      Poco::Net::HTTPRequest rq(Poco::Net::HTTPRequest::HTTP_GET, "/usage/" + std::to_string(r) + "?month=2026-01" +
                                                                      (cursor.empty() ? "" : "&cursor=" + cursor));
      s.sendRequest(rq);
      Poco::Net::HTTPResponse rs;
      std::string body;
      Poco::StreamCopier::copyToString(s.receiveResponse(rs), body);
      const size_t at = body.rfind("\"next\":\"");
      if (at == std::string::npos) break;
      cursor = body.substr(at + 8, body.find('"', at + 8) - at - 8);
    }
  }
  return (now_us() - t0) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_usage_collection_bench";
  if (argc == 4 && std::string(argv[1]) == "round-child") return round_child(argv[2], argv[3]);
  std::string concurrency = "4";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--subscriptions")
      g_subscriptions = std::stoi(argv[i + 1]);
    else if (a == "--regions")
      g_regions = std::stoi(argv[i + 1]);
    else if (a == "--concurrency")
      concurrency = argv[i + 1];
    else
      die("unknown option " + a + " (--subscriptions N, --regions N, --concurrency N)");
  }
  char tmpl[] = "/tmp/opk-usage-collection-bench-XXXXXX";
  const std::string scratch = mkdtemp(tmpl);
  Poco::ThreadPool pool(16, 16);
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(16);
  params->setMaxQueued(256);
  params->setKeepAlive(false);
  Poco::Net::HTTPServer server(new UsagePages, pool,
                               Poco::Net::ServerSocket(Poco::Net::SocketAddress("127.0.0.1", 0), 256), params);
  server.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const std::string self = fs::canonical("/proc/self/exe").string();
  std::printf("usage-collection over %d subscriptions in %d regions (pages of %d), concurrency %s, 3 rounds\n",
              g_subscriptions, g_regions, kPageItems, concurrency.c_str());
  std::vector<double> ms[2], rss[2], collect[2], billing[2], commissions[2];
  for (int round = 0; round < 3; ++round) {
    const std::string dir = scratch + "/round";
    seed(dir, base);
    std::istringstream in(run_child(self, {"round-child", dir, concurrency}, "the round's kernel process"));
    for (int pass = 0; pass < 2; ++pass) {
      std::string word, outcome;
      double t = 0, peak = 0, c = 0, b = 0, m = 0;
      in >> word >> t >> outcome >> peak >> c >> b >> m;
      if (word != "run") die("unexpected output from a round");
      if (outcome != "NORMAL")
        std::fprintf(stderr, "  round %d run %d ended %s\n", round + 1, pass + 1, outcome.c_str());
      ms[pass].push_back(t);
      rss[pass].push_back(peak);
      collect[pass].push_back(c);
      billing[pass].push_back(b);
      commissions[pass].push_back(m);
    }
  }
  for (int pass = 0; pass < 2; ++pass) {
    std::printf("%s\n", pass == 0 ? "first run (everything inserted)" : "rerun (everything unchanged)");
    print("run (run now -> completed)", ms[pass], "ms");
    print("  of which collect usage", collect[pass], "ms");
    print("  of which generate billing", billing[pass], "ms");
    print("  of which generate commissions", commissions[pass], "ms");
    print("kernel peak RSS", rss[pass], "MiB");
  }
  std::vector<double> provider;
  for (int round = 0; round < 3; ++round) provider.push_back(provider_ms("127.0.0.1", server.port()));
  std::printf("the provider alone (every page once, sequentially)\n");
  print("fetch", provider, "ms");
  server.stop();
  fs::remove_all(scratch);
  return 0;
}
