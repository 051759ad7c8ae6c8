// The kernel's cache and the cache-purge plugin in a real kernel (admin-http,
// cache-purge and the cache_consumer fixture): a plugin's entries under the
// kernel's [cache] bounds, their counters on /metrics, an administrator's
// purge of the plugin's namespace through the admin API audited in the
// kernel's audit trail, a Redis server that is down failing only its purge,
// the role x action matrix of the routes under the default permissions, and
// the OpenAPI document with the routes through Redocly's linter.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <tuple>

#include "plugins/admin-http/http_client.h"
#include "support/admin_feature.h"
#include "support/kernel_util.h"
#include "support/servers.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class CacheKernel : public test::FeatureKernelTest<> {
 protected:
  void SetUp() override {
    configure({test::bundled("cache-purge"), test::fixture("cache_consumer")});
    cfg_.cache_max_bytes = 64 * 1024;
    cfg_.cache_max_entry_bytes = 4096;
    cfg_.plugins["cache-purge"] = {{"servers", "down"}, {"down_port", std::to_string(test::closed_port())}};
    ASSERT_NO_FATAL_FAILURE(start());
  }
  test::Reply http(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::string& role = "PlatformAdministrator") {
    return test::http_request(port_, method, target, tokens_[role], body);
  }
};

TEST_F(CacheKernel, APluginsEntriesTheirCountersAndAnAdminsPurge) {
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(http("PUT", "/api/v1/cache-consumer/user:" + std::to_string(i), "v", "TenantUser").status, 200);
  EXPECT_EQ(http("GET", "/api/v1/cache-consumer/user:3", "", "TenantUser").body, "v");
  EXPECT_EQ(http("GET", "/api/v1/cache-consumer/nope", "", "TenantUser").status, 404);
  auto big = http("PUT", "/api/v1/cache-consumer/big", std::string(5000, 'x'), "TenantUser");
  EXPECT_EQ(big.status, 400);
  EXPECT_NE(big.body.find("max_entry_bytes"), std::string::npos) << big.body;
  auto metrics = http("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("opskernel_cache_hits_total{plugin=\"cache-consumer\"} 1\n"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("opskernel_cache_max_bytes 65536\n"), std::string::npos);
  const std::string purge = Json{{"plugin", "cache-consumer"}, {"pattern", "user:[0-2]"}, {"reason", "stale"}}.dump();
  auto r = http("POST", "/api/v1/cache/kernel/purge", purge);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body)["removed"], 3);
  EXPECT_EQ(http("GET", "/api/v1/cache-consumer/user:1", "", "TenantUser").status, 404);
  EXPECT_EQ(http("GET", "/api/v1/cache-consumer/user:4", "", "TenantUser").status, 200);
  auto audit = http("GET", "/api/v1/audit?action=cache.purge");
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_NE(audit.body.find("cache:cache-consumer"), std::string::npos) << audit.body;
  auto down = http("POST", "/api/v1/cache/redis/down/purge", Json{{"pattern", "x:*"}, {"reason", "r"}}.dump());
  EXPECT_EQ(down.status, 503) << down.body;
  EXPECT_NE(down.body.find("redis server 'down'"), std::string::npos) << down.body;
  EXPECT_EQ(http("GET", "/api/v1/cache").status, 200);
}

TEST_F(CacheKernel, RoleByActionMatrix) {
  const std::string dry = Json{{"pattern", "x:*"}, {"reason", "r"}, {"dry_run", true}}.dump();
  const std::string kernel_dry =
      Json{{"plugin", "cache-consumer"}, {"pattern", "x:*"}, {"reason", "r"}, {"dry_run", true}}.dump();
  struct Row {
    std::string role;
    int list, redis, kernel;
  } rows[] = {
      {"PlatformAdministrator", 200, 503, 200},
      {"TenantAdministrator", 403, 403, 403},
      {"TenantUser", 403, 403, 403},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(http("GET", "/api/v1/cache", "", r.role).status, r.list) << r.role;
    EXPECT_EQ(http("POST", "/api/v1/cache/redis/down/purge", dry, r.role).status, r.redis) << r.role;
    EXPECT_EQ(http("POST", "/api/v1/cache/kernel/purge", kernel_dry, r.role).status, r.kernel) << r.role;
  }
  EXPECT_EQ(http("GET", "/api/v1/cache", "", "").status, 401);
}

// The routes are in the OpenAPI document with their permissions, and the
// document passes Redocly's linter (tests/plugins/admin-http/openapi-lint)
// without an error or a warning.
TEST_F(CacheKernel, TheOpenApiDocumentWithTheRoutesPassesTheLinter) {
  auto r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  const Json doc = Json::parse(r.body);
  EXPECT_EQ(doc["paths"]["/api/v1/cache"]["get"]["x-permission"], "cache.read");
  EXPECT_EQ(doc["paths"]["/api/v1/cache/redis/{server}/purge"]["post"]["x-permission"], "cache.purge");
  EXPECT_EQ(doc["paths"]["/api/v1/cache/kernel/purge"]["post"]["x-permission"], "cache.purge");
  test::expect_openapi_lints_clean(r.body, dir_.path());
}

}  // namespace
}  // namespace opk
