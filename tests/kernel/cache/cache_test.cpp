// The kernel's cache (kernel/cache) and its service opk.cache/1
// (kernel/host/cache_service): expiry on the kernel's clock, the shared
// memory bound with least-recently-used eviction and the per-entry bound,
// each plugin reaching only its own namespace through its host table, the
// admin calls refused without a kernel-issued principal holding the
// permission, purge by key and glob with a dry run, the Redis-style glob
// itself, the counters as Prometheus text the metrics service accepts, and
// the [cache] configuration keys.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

#include "cache/cache.h"
#include "clock/clock.h"
#include "config/config.h"
#include "host/cache_service.h"
#include "host/host.h"
#include "host/metrics_service.h"
#include "host/principals.h"

namespace opk {
namespace {

using cache::Cache;
using cache::glob_match;
using cache::kEntryOverhead;

TEST(CacheGlob, MatchesAsRedisDoes) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("user:*", "user:42"));
  EXPECT_FALSE(glob_match("user:*", "users:42"));
  EXPECT_TRUE(glob_match("user:?", "user:4"));
  EXPECT_FALSE(glob_match("user:?", "user:42"));
  EXPECT_TRUE(glob_match("*:session:*", "tenant:acme:session:9"));
  EXPECT_FALSE(glob_match("*:session:*", "tenant:acme:sessions"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-c]llo", "hbllo"));
  EXPECT_FALSE(glob_match("h[a-c]llo", "hdllo"));
  EXPECT_TRUE(glob_match("a\\*b", "a*b"));
  EXPECT_FALSE(glob_match("a\\*b", "axb"));
  EXPECT_TRUE(glob_match("exact", "exact"));
  EXPECT_FALSE(glob_match("exact", "exact2"));
  EXPECT_TRUE(glob_match("a*b*c", "a-b-b-c"));
}

class CacheTest : public ::testing::Test {
 protected:
  int64_t now_ = 1'700'000'000'000;
  Cache make(uint64_t max_bytes, uint64_t max_entry) {
    return Cache(cache::Options{max_bytes, max_entry}, [this] { return now_; });
  }
};

TEST_F(CacheTest, ValuesExpireAfterTheirTtlOnTheClock) {
  Cache c = make(1 << 20, 1 << 16);
  ASSERT_TRUE(c.put("p", "short", "v1", 1000));
  ASSERT_TRUE(c.put("p", "forever", "v2", 0));
  std::string v;
  ASSERT_TRUE(c.get("p", "short", &v));
  EXPECT_EQ(v, "v1");
  now_ += 999;
  EXPECT_TRUE(c.get("p", "short", &v));
  now_ += 1;
  EXPECT_EQ(c.get("p", "short", &v).code(), OPK_ERR_NOT_FOUND);
  now_ += 365LL * 24 * 3600 * 1000;
  ASSERT_TRUE(c.get("p", "forever", &v));
  EXPECT_EQ(v, "v2");
  const auto st = c.stats().at("p");
  EXPECT_EQ(st.hits, 3u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.expirations, 1u);
  EXPECT_EQ(st.entries, 1u);
}

TEST_F(CacheTest, TheBoundIsSharedAndTheLeastRecentlyUsedGoesFirst) {
  const uint64_t entry = 1 + 100 + kEntryOverhead;  // a one-byte key, 100 bytes of value
  Cache c = make(3 * entry, entry);
  const std::string value(100, 'x');
  ASSERT_TRUE(c.put("a", "1", value, 0));
  ASSERT_TRUE(c.put("b", "2", value, 0));
  ASSERT_TRUE(c.put("a", "3", value, 0));
  EXPECT_EQ(c.bytes(), 3 * entry);
  // a:1 is used again, so b:2 is now the least recently used.
  ASSERT_TRUE(c.get("a", "1", nullptr));
  ASSERT_TRUE(c.put("b", "4", value, 0));
  EXPECT_EQ(c.bytes(), 3 * entry);
  EXPECT_TRUE(c.get("a", "1", nullptr));
  EXPECT_EQ(c.get("b", "2", nullptr).code(), OPK_ERR_NOT_FOUND);
  EXPECT_TRUE(c.get("a", "3", nullptr));
  EXPECT_TRUE(c.get("b", "4", nullptr));
  EXPECT_EQ(c.stats().at("b").evictions, 1u);
  EXPECT_EQ(c.stats().at("a").evictions, 0u);
  // Replacing a key charges only its new size.
  ASSERT_TRUE(c.put("a", "1", "", 0));
  EXPECT_EQ(c.bytes(), 2 * entry + 1 + kEntryOverhead);
}

TEST_F(CacheTest, AnEntryAboveTheBoundIsRefusedAndNothingIsLost) {
  Cache c = make(1 << 20, 1000);
  ASSERT_TRUE(c.put("p", "k", "small", 0));
  const Status s = c.put("p", "k", std::string(1000, 'x'), 0);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("value:"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("max_entry_bytes"), std::string::npos) << s.message();
  std::string v;
  ASSERT_TRUE(c.get("p", "k", &v));
  EXPECT_EQ(v, "small");
  EXPECT_EQ(c.stats().at("p").refused, 1u);
  EXPECT_EQ(c.put("p", "", "v", 0).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(c.put("p", std::string(cache::kMaxKey + 1, 'k'), "v", 0).code(), OPK_ERR_INVALID_ARGUMENT);
  const Status neg = c.put("p", "k2", "v", -1);
  EXPECT_EQ(neg.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(neg.message().rfind("ttl_ms:", 0), 0u) << neg.message();
}

TEST_F(CacheTest, PurgeByKeyAndPatternWithADryRun) {
  Cache c = make(1 << 20, 1 << 16);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.put("p", "user:" + std::to_string(i), "v", 0));
  ASSERT_TRUE(c.put("p", "order:1", "v", 0));
  ASSERT_TRUE(c.put("q", "user:1", "v", 0));
  ASSERT_TRUE(c.put("p", "user:old", "v", 10));
  now_ += 10;  // user:old has expired: not counted
  uint64_t n = 0;
  ASSERT_TRUE(c.purge("p", "user:*", true, &n));
  EXPECT_EQ(n, 10u);
  EXPECT_TRUE(c.get("p", "user:3", nullptr));
  ASSERT_TRUE(c.purge("p", "user:[0-4]", false, &n));
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(c.get("p", "user:3", nullptr).code(), OPK_ERR_NOT_FOUND);
  EXPECT_TRUE(c.get("p", "user:7", nullptr));
  ASSERT_TRUE(c.purge("p", "order:1", false, &n));
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(c.get("q", "user:1", nullptr)) << "another namespace is untouched";
  EXPECT_EQ(c.purge("p", "", false, &n).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(c.erase("p", "user:9"));
  EXPECT_EQ(c.erase("p", "user:9").code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(c.stats().at("p").purged, 6u);
}

TEST_F(CacheTest, MetricsAreThePrometheusTextTheMetricsServiceAccepts) {
  Cache c = make(1 << 20, 1 << 16);
  ASSERT_TRUE(c.put("plug\"in", "k", "v", 0));
  ASSERT_TRUE(c.get("plug\"in", "k", nullptr));
  EXPECT_FALSE(c.get("plug\"in", "nope", nullptr));
  const std::string text = c.metrics();
  EXPECT_EQ(host::check_exposition(text), "") << text;
  EXPECT_NE(text.find("opskernel_cache_hits_total{plugin=\"plug\\\"in\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("opskernel_cache_misses_total{plugin=\"plug\\\"in\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("opskernel_cache_max_bytes 1048576\n"), std::string::npos) << text;
}

// The service through two plugins' host tables.
class CacheServiceTest : public ::testing::Test {
 protected:
  host::Principals principals_;
  host::CacheService service_{
      cache::Options{1 << 20, 1 << 16}, principals_, [](const std::string& role, const std::string& permission) {
        return role == "System" || (role == "Reader" && permission == "cache.read") ||
               (role == "Purger" && (permission == "cache.read" || permission == "cache.purge"));
      }};
  host::PluginHost a_{"plugin-a", {}, {}, nullptr};
  host::PluginHost b_{"plugin-b", {}, {}, nullptr};
  const opk_cache_v1* ext_ = service_.extension();

  void SetUp() override {
    service_.serve(&a_);
    service_.serve(&b_);
  }
  std::string get(const host::PluginHost& h, const char* key, opk_status* st) {
    char* v = nullptr;
    size_t n = 0;
    *st = ext_->get(h.table(), key, &v, &n);
    std::string out = v ? std::string(v, n) : "";
    std::free(v);
    return out;
  }
};

TEST_F(CacheServiceTest, APluginReachesOnlyItsOwnNamespace) {
  ASSERT_EQ(ext_->put(a_.table(), "k", "from-a", 6, 0), OPK_OK);
  ASSERT_EQ(ext_->put(b_.table(), "k", "from-b", 6, 0), OPK_OK);
  opk_status st = OPK_OK;
  EXPECT_EQ(get(a_, "k", &st), "from-a");
  EXPECT_EQ(get(b_, "k", &st), "from-b");
  uint64_t n = 0;
  ASSERT_EQ(ext_->purge(a_.table(), "*", 0, &n), OPK_OK);
  EXPECT_EQ(n, 1u);
  get(a_, "k", &st);
  EXPECT_EQ(st, OPK_ERR_NOT_FOUND);
  EXPECT_EQ(get(b_, "k", &st), "from-b");
  EXPECT_EQ(ext_->remove(a_.table(), "k"), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(get(b_, "k", &st), "from-b");
  // Binary values keep their bytes.
  ASSERT_EQ(ext_->put(a_.table(), "bin", "a\0b", 3, 0), OPK_OK);
  EXPECT_EQ(get(a_, "bin", &st), std::string("a\0b", 3));
  // Bad input names the field.
  EXPECT_EQ(ext_->put(a_.table(), "k", "v", 1, -5), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(a_.table()->last_error(a_.table())).rfind("ttl_ms:", 0), 0u);
}

TEST_F(CacheServiceTest, AdminCallsNeedAnIssuedPrincipalHoldingThePermission) {
  ASSERT_EQ(ext_->put(b_.table(), "user:1", "v", 1, 0), OPK_OK);
  ASSERT_EQ(ext_->put(b_.table(), "user:2", "v", 1, 0), OPK_OK);
  uint64_t n = 0;
  opk_principal forged{sizeof(opk_principal), "u", "Purger", "platform"};
  EXPECT_EQ(ext_->purge_plugin(a_.table(), &forged, "plugin-b", "*", 0, &n), OPK_ERR_PERMISSION);
  EXPECT_EQ(ext_->purge_plugin(a_.table(), nullptr, "plugin-b", "*", 0, &n), OPK_ERR_PERMISSION);
  const opk_principal* reader = principals_.issue("r", "Reader", "platform");
  const opk_principal* purger = principals_.issue("p", "Purger", "platform");
  EXPECT_EQ(ext_->purge_plugin(a_.table(), reader, "plugin-b", "*", 0, &n), OPK_ERR_PERMISSION);
  char* json = nullptr;
  ASSERT_EQ(ext_->stats(a_.table(), reader, &json), OPK_OK);
  const auto doc = nlohmann::json::parse(json);
  std::free(json);
  EXPECT_EQ(doc["max_bytes"], 1 << 20);
  ASSERT_EQ(doc["namespaces"].size(), 1u);
  EXPECT_EQ(doc["namespaces"][0]["plugin"], "plugin-b");
  EXPECT_EQ(doc["namespaces"][0]["entries"], 2);
  opk_status st = OPK_OK;
  get(b_, "user:1", &st);
  ASSERT_EQ(st, OPK_OK) << "nothing purged by the refused calls";
  ASSERT_EQ(ext_->purge_plugin(a_.table(), purger, "plugin-b", "user:*", 1, &n), OPK_OK);
  EXPECT_EQ(n, 2u);
  get(b_, "user:1", &st);
  EXPECT_EQ(st, OPK_OK) << "a dry run removes nothing";
  ASSERT_EQ(ext_->purge_plugin(a_.table(), purger, "plugin-b", "user:1", 0, &n), OPK_OK);
  EXPECT_EQ(n, 1u);
  get(b_, "user:1", &st);
  EXPECT_EQ(st, OPK_ERR_NOT_FOUND);
  EXPECT_EQ(ext_->purge_plugin(a_.table(), purger, "", "x", 0, &n), OPK_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(ext_->stats(a_.table(), principals_.system("plugin-a"), &json), OPK_OK);
  std::free(json);
  principals_.release(reader);
  principals_.release(purger);
}

TEST_F(CacheServiceTest, TheCountersReachTheMetricsService) {
  host::MetricsService metrics;
  ASSERT_TRUE(metrics.add(
      "kernel", "cache",
      [](void* user_data, const opk_metrics_writer* out) {
        out->append(out, static_cast<host::CacheService*>(user_data)->cache().metrics().c_str());
        return static_cast<opk_status>(OPK_OK);
      },
      &service_));
  ASSERT_EQ(ext_->put(a_.table(), "k", "v", 1, 0), OPK_OK);
  opk_status st = OPK_OK;
  get(a_, "k", &st);
  get(a_, "missing", &st);
  const std::string text = metrics.collect();
  EXPECT_NE(text.find("opskernel_cache_hits_total{plugin=\"plugin-a\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("opskernel_cache_misses_total{plugin=\"plugin-a\"} 1\n"), std::string::npos) << text;
  metrics.remove_plugin("kernel");
}

TEST(CacheConfig, TheKeysTakeSizesAndRefuseOthersNamingTheKey) {
  const std::string file = ::testing::TempDir() + "/cache_config_test.conf";
  auto load_text = [&](const std::string& text, config::Config* c) {
    std::ofstream(file) << text;
    config::Sources src;
    src.file = file;
    return config::load(src, c);
  };
  config::Config def, c;
  ASSERT_TRUE(load_text("", &def));
  EXPECT_EQ(def.cache_max_bytes, 64ull << 20);
  EXPECT_EQ(def.cache_max_entry_bytes, 1ull << 20);
  ASSERT_TRUE(load_text("[cache]\nmax_bytes = 256MiB\nmax_entry_bytes = 65536\n", &c));
  EXPECT_EQ(c.cache_max_bytes, 256ull << 20);
  EXPECT_EQ(c.cache_max_entry_bytes, 65536u);
  for (const char* bad : {"12", "lots", "1TB", "-5", "2048GiB", ""}) {
    config::Config d;
    const Status s = load_text(std::string("[cache]\nmax_bytes = ") + bad + "\n", &d);
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << bad;
    EXPECT_NE(s.message().find("cache.max_bytes:"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace opk
