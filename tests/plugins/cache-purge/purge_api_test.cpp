// The cache-purge plugin on the SDK's test host against a real redis-server
// started on 127.0.0.1 with its own port and folder, and the kernel's cache
// (opk.cache/1) through a plugin using it (cache_consumer): Redis purge by
// key and pattern with SCAN + UNLINK, 100,000 keys purged within the
// configured keys per second, dry run counts, '*' refused without confirm,
// Redis stopped mid-purge (the purge fails naming the server, the plugin
// still answers), a server that is down, every purge audited; the kernel
// cache's TTL on the test clock, bound and refusal, a plugin's own purge,
// an admin's purge of another plugin's namespace and the counters; the role
// x action matrix of the routes; bad input named.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/bundled.h"
#include "support/servers.h"

namespace opk::test {
namespace {

using testing::Principal;

const Principal kAdmin = Principal::administrator();
const Principal kReader{"rita", "TenantAdministrator", "tenant:acme"};
const Principal kNobody{"nora", "TenantUser", "tenant:acme"};

// redis-server on 127.0.0.1 at a port of its own, its files in a scratch
// folder, no persistence; stopped when destroyed.
class RedisProcess {
 public:
  std::string start() {
    port_ = closed_port();
    pid_ = fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      const std::string log = dir_.file("redis.log");
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execlp("redis-server", "redis-server", "--port", std::to_string(port_).c_str(), "--bind", "127.0.0.1", "--dir",
             dir_.path().c_str(), "--save", "", "--appendonly", "no", "--daemonize", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      if (redisContext* c = connect()) {
        redisFree(c);
        return {};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "redis-server did not answer on port " + std::to_string(port_) + ": " + slurp(dir_.file("redis.log"));
  }
  // A connection that answers PING, or nullptr.
  redisContext* connect() const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (!c || c->err) {
      if (c) redisFree(c);
      return nullptr;
    }
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    const bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) {
      redisFree(c);
      return nullptr;
    }
    return c;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  ~RedisProcess() { stop(); }
  int port() const { return port_; }

  // Stores keys prefix0..prefix(n-1), pipelined.
  void fill(const std::string& prefix, int n) const {
    redisContext* c = connect();
    ASSERT_NE(c, nullptr);
    int pending = 0;
    for (int i = 0; i < n; ++i) {
      const std::string k = prefix + std::to_string(i);
      redisAppendCommand(c, "SET %b v", k.data(), k.size());
      if (++pending == 1000 || i == n - 1) {
        for (; pending > 0; --pending) {
          void* r = nullptr;
          ASSERT_EQ(redisGetReply(c, &r), REDIS_OK);
          freeReplyObject(r);
        }
      }
    }
    redisFree(c);
  }
  long long dbsize() const {
    redisContext* c = connect();
    if (!c) return -1;
    auto* r = static_cast<redisReply*>(redisCommand(c, "DBSIZE"));
    const long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
  }
  bool exists(const std::string& key) const {
    redisContext* c = connect();
    if (!c) return false;
    auto* r = static_cast<redisReply*>(redisCommand(c, "EXISTS %b", key.data(), key.size()));
    const bool yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return yes;
  }

 private:
  ScratchDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class CachePurge : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = redis_.start();
    ASSERT_TRUE(why.empty()) << why;
    host_.set_setting("servers", "sessions, down");
    host_.set_setting("sessions_port", std::to_string(redis_.port()));
    host_.set_setting("down_port", std::to_string(closed_port()));
    host_.set_setting("keys_per_second", std::to_string(kRate));
    host_.set_setting("batch", "500");
    host_.set_setting("timeout", "2s");
    ASSERT_NO_FATAL_FAILURE(load_bundled(host_, {"cache-purge"}));
    const Status s = host_.load(std::string(OPK_TEST_PLUGIN_DIR) + "/cache_consumer.so");
    ASSERT_TRUE(s) << s.message();
    host_.grant("TenantAdministrator", "cache.read");
  }

  testing::Response call(const std::string& method, const std::string& target, const Json& body = nullptr,
                         const Principal& who = kAdmin) {
    return host_.request(method, "/api/v1/cache" + target, body.is_null() ? "" : body.dump(), who);
  }
  static Json json(const testing::Response& r) { return Json::parse(r.body, nullptr, false); }
  std::vector<testing::AuditRow> audit(const std::string& action) {
    std::vector<testing::AuditRow> out;
    for (const auto& row : host_.audit_rows())
      if (row.action == action) out.push_back(row);
    return out;
  }

  static constexpr int kRate = 40000;
  RedisProcess redis_;
  testing::Host host_;
};

TEST_F(CachePurge, PurgesOneHundredThousandKeysWithinTheThrottle) {
  redis_.fill("page:", 100000);
  redis_.fill("keep:", 100);
  ASSERT_EQ(redis_.dbsize(), 100100);
  auto dry = call("POST", "/redis/sessions/purge", {{"pattern", "page:*"}, {"reason", "count"}, {"dry_run", true}});
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(json(dry)["matched"], 100000);
  EXPECT_EQ(json(dry)["removed"], 0);
  EXPECT_EQ(redis_.dbsize(), 100100) << "a dry run removes nothing";
  const auto t0 = std::chrono::steady_clock::now();
  auto r = call("POST", "/redis/sessions/purge", {{"pattern", "page:*"}, {"reason", "stale pages after deploy"}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["removed"], 100000);
  EXPECT_EQ(redis_.dbsize(), 100);
  EXPECT_TRUE(redis_.exists("keep:7"));
  // 100,000 keys at 40,000 a second take at least 2.5 s less the first
  // batch's burst: the throttle held (the rate is an upper bound).
  const double rate = 100000 / seconds;
  EXPECT_LE(rate, kRate * 1.05) << seconds << " s";
  RecordProperty("keys_per_second", std::to_string(static_cast<int>(rate)));
  const auto rows = audit("cache.purge");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].target, "redis:sessions");
  EXPECT_EQ(rows[0].reason, "stale pages after deploy");
  EXPECT_EQ(rows[0].outcome, "success");
  const Json after = Json::parse(rows[0].after_json);
  EXPECT_EQ(after["pattern"], "page:*");
  EXPECT_EQ(after["removed"], 100000);
  EXPECT_EQ(audit("cache.count").size(), 1u);
}

TEST_F(CachePurge, ByKeyAndPatternAndTheStarNeedsConfirm) {
  redis_.fill("user:", 20);
  redis_.fill("order:", 5);
  auto one = call("POST", "/redis/sessions/purge", {{"pattern", "user:1"}, {"reason", "one key"}});
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(json(one)["removed"], 1);
  EXPECT_FALSE(redis_.exists("user:1"));
  EXPECT_TRUE(redis_.exists("user:10"));
  auto set = call("POST", "/redis/sessions/purge", {{"pattern", "user:1?"}, {"reason", "ten"}});
  EXPECT_EQ(json(set)["removed"], 10);
  for (const char* star : {"*", "**"}) {
    auto refused = call("POST", "/redis/sessions/purge", {{"pattern", star}, {"reason", "all"}});
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_NE(refused.body.find("pattern:"), std::string::npos) << refused.body;
    EXPECT_NE(refused.body.find("confirm"), std::string::npos) << refused.body;
  }
  EXPECT_EQ(redis_.dbsize(), 14) << "nothing removed by the refusals";
  auto count = call("POST", "/redis/sessions/purge", {{"pattern", "*"}, {"reason", "all"}, {"dry_run", true}});
  EXPECT_EQ(json(count)["matched"], 14);
  auto all = call("POST", "/redis/sessions/purge", {{"pattern", "*"}, {"reason", "all"}, {"confirm", true}});
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(redis_.dbsize(), 0);
}

TEST_F(CachePurge, BadInputIsNamedAndRemovesNothing) {
  redis_.fill("k:", 3);
  struct Case {
    Json body;
    std::string field;
  } cases[] = {
      {Json{{"reason", "r"}}, "pattern:"},
      {Json{{"pattern", ""}, {"reason", "r"}}, "pattern:"},
      {Json{{"pattern", "k:*"}}, "reason:"},
      {Json{{"pattern", "k:*"}, {"reason", "  "}}, "reason:"},
      {Json{{"pattern", "k:*"}, {"reason", "r"}, {"dry_run", "yes"}}, "dry_run:"},
      {Json{{"pattern", "k:*"}, {"reason", "r"}, {"ttl", 1}}, "ttl:"},
      {Json{{"pattern", "k:\n"}, {"reason", "r"}}, "pattern:"},
  };
  for (const auto& c : cases) {
    auto r = call("POST", "/redis/sessions/purge", c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump();
    EXPECT_NE(r.body.find(c.field), std::string::npos) << r.body;
  }
  auto none = call("POST", "/redis/nope/purge", {{"pattern", "k:*"}, {"reason", "r"}});
  EXPECT_EQ(none.status, 404);
  EXPECT_NE(none.body.find("server:"), std::string::npos) << none.body;
  EXPECT_EQ(redis_.dbsize(), 3);
  EXPECT_TRUE(audit("cache.purge").empty());
}

TEST_F(CachePurge, RedisDownOrStoppedMidPurgeFailsThatPurgeOnly) {
  auto down = call("POST", "/redis/down/purge", {{"pattern", "k:*"}, {"reason", "r"}});
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_NE(down.body.find("redis server 'down'"), std::string::npos) << down.body;
  redis_.fill("slow:", 200000);
  auto purge = std::async(std::launch::async, [&] {
    return call("POST", "/redis/sessions/purge", {{"pattern", "slow:*"}, {"reason", "mid-purge stop"}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  redis_.stop();
  const auto r = purge.get();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("redis server 'sessions'"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("keys removed"), std::string::npos) << r.body;
  const auto rows = audit("cache.purge");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].outcome, "failed");
  EXPECT_GT(Json::parse(rows[1].after_json)["removed"].get<int64_t>(), 0);
  // The plugin and the kernel cache still answer.
  EXPECT_EQ(call("GET", "").status, 200);
  EXPECT_EQ(host_.request("PUT", "/api/v1/cache-consumer/k", "v", kNobody).status, 200);
}

TEST_F(CachePurge, TheKernelCacheThroughAPluginAndTheAdminApi) {
  auto put = [&](const std::string& key, const std::string& value, int64_t ttl) {
    return host_.request("PUT", "/api/v1/cache-consumer/" + key + "?ttl_ms=" + std::to_string(ttl), value, kNobody);
  };
  auto get = [&](const std::string& key) { return host_.request("GET", "/api/v1/cache-consumer/" + key, "", kNobody); };
  ASSERT_EQ(put("user:1", "alice", 60000).status, 200);
  ASSERT_EQ(put("user:2", "bob", 0).status, 200);
  ASSERT_EQ(put("page:1", "<html>", 0).status, 200);
  EXPECT_EQ(get("user:1").body, "alice");
  host_.clock().advance(60000);
  EXPECT_EQ(get("user:1").status, 404) << "expired on the host clock";
  EXPECT_EQ(get("user:2").body, "bob");
  host_.set_cache_bounds(4096, 1024);
  EXPECT_EQ(get("user:2").status, 404);
  auto big = put("big", std::string(2000, 'x'), 0);
  EXPECT_EQ(big.status, 400);
  EXPECT_NE(big.body.find("value:"), std::string::npos) << big.body;
  for (int i = 0; i < 40; ++i) ASSERT_EQ(put("k" + std::to_string(i), std::string(100, 'v'), 0).status, 200);
  EXPECT_EQ(get("k0").status, 404) << "evicted first";
  EXPECT_EQ(get("k39").status, 200);
  auto own = host_.request("POST", "/api/v1/cache-consumer/purge?pattern=k3*&dry_run=1", "", kNobody);
  EXPECT_EQ(Json::parse(own.body)["count"], 10) << own.body;
  // An admin purges the consumer's namespace through cache-purge.
  auto dry = call("POST", "/kernel/purge",
                  {{"plugin", "cache-consumer"}, {"pattern", "k3*"}, {"reason", "r"}, {"dry_run", true}});
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(json(dry)["matched"], 10);
  EXPECT_EQ(get("k39").status, 200);
  auto refused = call("POST", "/kernel/purge", {{"plugin", "cache-consumer"}, {"pattern", "*"}, {"reason", "r"}});
  EXPECT_EQ(refused.status, 400);
  auto done = call("POST", "/kernel/purge", {{"plugin", "cache-consumer"}, {"pattern", "k3*"}, {"reason", "stale"}});
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(json(done)["removed"], 10);
  EXPECT_EQ(get("k39").status, 404);
  EXPECT_EQ(get("k29").status, 200);
  const auto rows = audit("cache.purge");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].target, "cache:cache-consumer");
  // The counters, for a reader and in the metrics.
  auto list = call("GET", "", nullptr, kReader);
  ASSERT_EQ(list.status, 200) << list.body;
  const Json spaces = json(list)["kernel"]["namespaces"];
  ASSERT_EQ(spaces.size(), 1u) << list.body;
  EXPECT_EQ(spaces[0]["plugin"], "cache-consumer");
  EXPECT_GE(spaces[0]["evictions"].get<int>(), 1);
  EXPECT_EQ(spaces[0]["purged"], 10);
  EXPECT_EQ(json(list)["redis"][0]["name"], "down");
  EXPECT_NE(host_.cache_metrics().find("opskernel_cache_purged_total{plugin=\"cache-consumer\"} 10\n"),
            std::string::npos)
      << host_.cache_metrics();
}

TEST_F(CachePurge, RoleByActionMatrix) {
  redis_.fill("m:", 3);
  const Json purge{{"pattern", "m:*"}, {"reason", "r"}, {"dry_run", true}};
  const Json kernel{{"plugin", "cache-consumer"}, {"pattern", "m:*"}, {"reason", "r"}, {"dry_run", true}};
  struct Row {
    Principal who;
    int list, redis, kernel_purge;
  } rows[] = {
      {kAdmin, 200, 200, 200},
      {kReader, 200, 403, 403},
      {kNobody, 403, 403, 403},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(call("GET", "", nullptr, r.who).status, r.list) << r.who.role;
    EXPECT_EQ(call("POST", "/redis/sessions/purge", purge, r.who).status, r.redis) << r.who.role;
    EXPECT_EQ(call("POST", "/kernel/purge", kernel, r.who).status, r.kernel_purge) << r.who.role;
  }
  host_.grant("TenantUser", "cache.purge");
  EXPECT_EQ(call("POST", "/redis/sessions/purge", purge, kNobody).status, 200);
  EXPECT_EQ(redis_.dbsize(), 3);
}

// The job type cache-purge: a large purge as a run. A dry run counts and
// removes nothing; a cancel stops it between batches, keeping what it
// removed and leaving the rest; a whole run removes every match with its
// progress at 100 and its counts in the output; each is audited with the
// run's reason. Bad parameters are named with nothing removed.
TEST_F(CachePurge, APurgeAsARunCountsCancelsBetweenBatchesAndFinishes) {
  redis_.fill("big:", 60000);
  redis_.fill("keep:", 10);
  testing::RunOptions dry;
  dry.dry_run = true;
  dry.reason = "how many";
  auto r = host_.run("cache-purge", R"({"server": "sessions", "pattern": "big:*"})", dry);
  ASSERT_EQ(r.status, OPK_OK) << r.error << r.summary;
  EXPECT_EQ(Json::parse(r.output_json)["matched"], 60000) << r.output_json;
  EXPECT_EQ(Json::parse(r.output_json)["removed"], 0);
  EXPECT_EQ(redis_.dbsize(), 60010) << "a dry run removes nothing";
  // At 40,000 keys a second, 60,000 keys take 1.5 s: cancelled after 400 ms.
  testing::RunOptions cut;
  cut.reason = "stop halfway";
  cut.cancel_after_ms = 400;
  r = host_.run("cache-purge", R"({"server": "sessions", "pattern": "big:*"})", cut);
  EXPECT_TRUE(r.cancelled) << r.summary;
  const int64_t removed = Json::parse(r.output_json)["removed"].get<int64_t>();
  EXPECT_GT(removed, 0) << r.output_json;
  EXPECT_LT(removed, 60000) << r.output_json;
  EXPECT_EQ(redis_.dbsize(), 60010 - removed) << "what was removed stays removed, the rest stays";
  EXPECT_GT(r.progress, 0);
  EXPECT_LT(r.progress, 100);
  testing::RunOptions all;
  all.reason = "drop the big keys";
  r = host_.run("cache-purge", R"({"server": "sessions", "pattern": "big:*"})", all);
  ASSERT_EQ(r.status, OPK_OK) << r.error << r.summary;
  EXPECT_EQ(r.progress, 100);
  EXPECT_EQ(Json::parse(r.output_json)["removed"], 60000 - removed) << r.output_json;
  EXPECT_EQ(redis_.dbsize(), 10);
  EXPECT_TRUE(redis_.exists("keep:3"));
  const auto rows = audit("cache.purge");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].reason, "stop halfway");
  EXPECT_EQ(rows[1].reason, "drop the big keys");
  EXPECT_EQ(rows[1].target, "redis:sessions");
  EXPECT_EQ(rows[1].outcome, "success");
  ASSERT_EQ(audit("cache.count").size(), 1u);
  // Bad parameters: named, nothing removed.
  for (const auto& [params, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"server": "nowhere", "pattern": "keep:*"})", "server: no Redis server 'nowhere'"},
           {R"({"server": "sessions", "pattern": "*"})", "pattern: '*' matches every key"}}) {
    r = host_.run("cache-purge", params, all);
    EXPECT_NE(r.status, OPK_OK) << params;
    EXPECT_NE(r.summary.find(field), std::string::npos) << r.summary;
  }
  EXPECT_EQ(redis_.dbsize(), 10);
  r = host_.run("cache-purge", R"({"server": "sessions", "pattern": "*", "confirm": true})", all);
  ASSERT_EQ(r.status, OPK_OK) << r.error << r.summary;
  EXPECT_EQ(redis_.dbsize(), 0);
}

}  // namespace
}  // namespace opk::test
