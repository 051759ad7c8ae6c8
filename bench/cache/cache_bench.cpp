// opk_cache_bench: the kernel's cache (opk.cache/1's code, kernel/cache) and
// the cache-purge plugin's Redis purge (plugins/cache-purge/redis.cpp).
//   1. put and get, ns per operation: 1,000,000 operations over 10,000 keys
//      of 100-byte values in one namespace, bound large enough for all.
//   2. A Redis purge of 100,000 keys at the configured throttle
//      (keys_per_second, default 20,000; first argument), against a
//      redis-server this program starts on 127.0.0.1 with a folder of its
//      own: keys per second achieved.
// Each figure is the min / median / max of 3 rounds; then the peak RSS.
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache.h"
#include "redis.h"
#include "support/bench_util.h"

namespace {

using opk::bench::die;
using opk::bench::free_port;
using opk::bench::now_us;
using opk::bench::peak_rss_mib;

void fill_keys(int port, int n) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) die("redis connect failed");
  for (int i = 0; i < n; ++i) {
    const std::string k = "bench:" + std::to_string(i);
    redisAppendCommand(c, "SET %b v", k.data(), k.size());
    if ((i + 1) % 1000 == 0 || i == n - 1)
      for (int j = i % 1000; j >= 0; --j) {
        void* r = nullptr;
        if (redisGetReply(c, &r) != REDIS_OK) die("redis SET failed");
        freeReplyObject(r);
      }
  }
  redisFree(c);
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_cache_bench";
  const double rate = argc > 1 ? std::stod(argv[1]) : 20000;
  std::vector<double> put_ns, get_ns, purge_rate;
  const std::string value(100, 'v');
  for (int round = 0; round < 3; ++round) {
    int64_t now = 1'700'000'000'000;
    opk::cache::Cache c(opk::cache::Options{1ull << 30, 1ull << 20}, [&now] { return now; });
    std::vector<std::string> keys;
    for (int i = 0; i < 10000; ++i) keys.push_back("tenant:" + std::to_string(i) + ":plan");
    constexpr int kOps = 1'000'000;
    int64_t t0 = now_us();
    for (int i = 0; i < kOps; ++i)
      if (!c.put("bench", keys[i % keys.size()], value, 60'000)) die("put failed");
    put_ns.push_back((now_us() - t0) * 1000.0 / kOps);
    t0 = now_us();
    std::string out;
    for (int i = 0; i < kOps; ++i)
      if (!c.get("bench", keys[(static_cast<size_t>(i) * 7919) % keys.size()], &out)) die("get missed");
    get_ns.push_back((now_us() - t0) * 1000.0 / kOps);
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("opk-cache-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const int port = free_port();
  const pid_t pid = fork();
  if (pid == 0) {
    execlp("redis-server", "redis-server", "--port", std::to_string(port).c_str(), "--bind", "127.0.0.1", "--dir",
           dir.c_str(), "--save", "", "--appendonly", "no", "--logfile", (dir / "redis.log").c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  opk::cachepurge::RedisServer server;
  server.name = "bench";
  server.port = port;
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    up = static_cast<bool>(opk::cachepurge::ping_redis(server));
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!up) die("redis-server did not start on port " + std::to_string(port));
  for (int round = 0; round < 3; ++round) {
    fill_keys(port, 100000);
    opk::cachepurge::PurgeOptions o;
    o.pattern = "bench:*";
    o.keys_per_second = rate;
    o.batch = 500;
    opk::cachepurge::PurgeCounts counts;
    const int64_t t0 = now_us();
    if (opk::Status s = opk::cachepurge::purge_redis(server, o, &counts); !s) die("purge: " + s.message());
    const double seconds = (now_us() - t0) / 1e6;
    if (counts.removed != 100000) die("purge removed " + std::to_string(counts.removed) + " keys, not 100000");
    purge_rate.push_back(100000 / seconds);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  opk::bench::print("cache put (ns/op)", put_ns, "ns");
  opk::bench::print("cache get (ns/op)", get_ns, "ns");
  const std::string what = "redis purge 100k at " + std::to_string(static_cast<int>(rate)) + "/s";
  opk::bench::print(what.c_str(), purge_rate, "keys/s");
  std::printf("peak RSS %.1f MiB\n", peak_rss_mib());
  return 0;
}
