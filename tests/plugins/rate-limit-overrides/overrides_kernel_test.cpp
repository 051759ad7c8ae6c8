// The rate-limit overrides in a real kernel (admin-http and
// rate-limit-overrides): an address limited by admin-http (429 with
// Retry-After, RateLimit and RateLimit-Policy), lifted by an override and
// limited again once the override is ended; an override written by another
// kernel sharing the store enforced once the change counter moves, within
// the poll interval, and not before; a tenant's users lifted past the
// per-user limit while others stay limited; the role x action matrix of
// every route under the kernel's default permissions and [permissions]
// grants, audit rows through the kernel's audit API; the OpenAPI document
// through Redocly's linter. The limited client speaks from 127.0.0.2, a
// loopback address of its own, so the test's own requests (127.0.0.1) are
// counted apart.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "plugins/admin-http/http_client.h"
#include "support/admin_feature.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class OverridesKernel : public test::FeatureKernelTest<> {
 protected:
  void SetUp() override { configure({test::bundled("rate-limit-overrides")}); }

  // Requests /healthz from `source` until one is refused (at most `most`);
  // the refusal, or the last answer.
  test::RawReply until_limited(const std::string& source, int most, int* served) {
    test::RawReply r;
    *served = 0;
    for (int i = 0; i < most; ++i) {
      r = test::get_from(source, port_, "/healthz");
      if (r.status != 200) break;
      ++*served;
    }
    return r;
  }
};

TEST_F(OverridesKernel, AnAddressIsLimitedLiftedAndLimitedAgain) {
  cfg_.plugins["admin-http"] = {{"rate_per_address", "5"}};
  ASSERT_NO_FATAL_FAILURE(start());
  // The test's own address first (its first request, with the bucket full),
  // so the test can go on talking to the API.
  auto r = http("POST", "/api/v1/rate-limit-overrides",
                {{"address", "127.0.0.1"}, {"limit", "unlimited"}, {"reason", "test driver"}, {"duration", "1h"}});
  ASSERT_EQ(r.status, 201) << r.body;

  // 127.0.0.2 has five requests a minute: the sixth is refused.
  int served = 0;
  test::RawReply limited = until_limited("127.0.0.2", 20, &served);
  ASSERT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(served, 5);
  EXPECT_EQ(limited.head["content-type"], "application/problem+json");
  EXPECT_EQ(limited.head["ratelimit-policy"], "\"address\";q=5;w=60");
  EXPECT_TRUE(std::regex_match(limited.head["ratelimit"], std::regex(R"("address";r=0;t=([1-9]|1[0-2]))")))
      << limited.head["ratelimit"];
  const int retry = std::stoi(limited.head["retry-after"]);
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 12);
  EXPECT_EQ(limited.head["ratelimit"], "\"address\";r=0;t=" + limited.head["retry-after"]);

  // An answer that passes says what is left.
  test::RawReply other = test::get_from("127.0.0.3", port_, "/healthz");
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.head["ratelimit-policy"], "\"address\";q=5;w=60");
  EXPECT_TRUE(std::regex_match(other.head["ratelimit"], std::regex(R"("address";r=4;t=\d+)")))
      << other.head["ratelimit"];

  // An override lifts it, at once.
  r = http("POST", "/api/v1/rate-limit-overrides",
           {{"address", "127.0.0.2/32"}, {"limit", "unlimited"}, {"reason", "backfill"}, {"duration", "2h"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = json(r)["override"]["id"];
  for (int i = 0; i < 30; ++i) {
    test::RawReply ok = test::get_from("127.0.0.2", port_, "/healthz");
    ASSERT_EQ(ok.status, 200) << "request " << i << ": " << ok.body;
    EXPECT_EQ(ok.head.count("ratelimit"), 0u) << "no limit applies";
  }

  // A raise for the block instead: its quota is the override's.
  r = http("POST", "/api/v1/rate-limit-overrides",
           {{"address", "127.0.0.0/24"}, {"limit", 1000}, {"reason", "raise"}, {"duration", "2h"}});
  ASSERT_EQ(r.status, 201) << r.body;
  test::RawReply raised = test::get_from("127.0.0.4", port_, "/healthz");
  EXPECT_EQ(raised.status, 200);
  EXPECT_EQ(raised.head["ratelimit-policy"], "\"address\";q=1000;w=60");
  const std::string block = json(r)["override"]["id"];
  ASSERT_EQ(http("DELETE", "/api/v1/rate-limit-overrides/" + block + "?reason=done").status, 204);

  // Ended early: the limit is back.
  r = http("DELETE", "/api/v1/rate-limit-overrides/" + id + "?reason=backfill%20done");
  ASSERT_EQ(r.status, 204) << r.body;
  limited = until_limited("127.0.0.2", 20, &served);
  EXPECT_EQ(limited.status, 429) << "limited again";
  EXPECT_LE(served, 5);
  EXPECT_EQ(limited.head["ratelimit-policy"], "\"address\";q=5;w=60");

  // Listed with who set it, and audited through the kernel's audit API.
  r = http("GET", "/api/v1/rate-limit-overrides/" + id);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json(r)["override"]["state"], "removed");
  EXPECT_EQ(json(r)["override"]["created_by"], "pat");
  r = http("GET", "/api/v1/audit?action=rate_limits.delete&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json(r)["items"].size(), 2u) << r.body;
  EXPECT_EQ(json(r)["items"][0]["actor"], "pat");
}

TEST_F(OverridesKernel, AnOverrideAnotherKernelWritesIsEnforcedWithinThePollInterval) {
  // The embedded store admits one kernel per file, so the other kernel
  // sharing the store is played by a second connection to the file writing
  // what that kernel's plugin writes for a create: the row and the change
  // counter.
  cfg_.plugins["admin-http"] = {{"rate_per_address", "3"}};
  cfg_.plugins["rate-limit-overrides"] = {{"poll_interval", "200ms"}};
  ASSERT_NO_FATAL_FAILURE(start());
  auto r = http("POST", "/api/v1/rate-limit-overrides",
                {{"address", "127.0.0.1"}, {"limit", "unlimited"}, {"reason", "test driver"}, {"duration", "1h"}});
  ASSERT_EQ(r.status, 201) << r.body;
  int served = 0;
  ASSERT_EQ(until_limited("127.0.0.2", 20, &served).status, 429);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(cfg_.store_path.c_str(), &other), SQLITE_OK);
  sqlite3_busy_timeout(other, 10000);
  const auto run = [&](const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(other, sql.c_str(), nullptr, nullptr, &err);
    const std::string why = err ? err : "";
    sqlite3_free(err);
    return rc == SQLITE_OK ? std::string() : why;
  };
  const int64_t created = json(r)["override"]["created_ms"];
  // The row alone: lookups read the snapshot, never the store.
  ASSERT_EQ(run("INSERT INTO p_rate_limit_overrides_rows (id, kind, target, per_minute, reason, created_by, "
                "created_ms, expires_ms) VALUES ('rlo_other', 'address', '127.0.0.2/32', -1, 'from kernel b', 'kb', " +
                std::to_string(created) + ", " + std::to_string(created + 3'600'000) + ")"),
            "");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // five poll intervals
  EXPECT_EQ(test::get_from("127.0.0.2", port_, "/healthz").status, 429) << "no reload while the counter stands";
  // The counter moves: enforced within the poll interval.
  ASSERT_EQ(run("UPDATE p_rate_limit_overrides_changes SET counter = counter + 1 WHERE id = 1"), "");
  bool lifted = false;
  for (int i = 0; i < 750 && !lifted; ++i) {
    lifted = test::get_from("127.0.0.2", port_, "/healthz").status == 200;
    if (!lifted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sqlite3_close(other);
  ASSERT_TRUE(lifted);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(test::get_from("127.0.0.2", port_, "/healthz").status, 200);
  r = http("GET", "/api/v1/rate-limit-overrides/rlo_other");
  EXPECT_EQ(json(r)["override"]["created_by"], "kb") << r.body;
}

TEST_F(OverridesKernel, ATenantsUsersAreLiftedPastThePerUserLimit) {
  cfg_.plugins["admin-http"] = {{"rate_per_user", "3"}};
  ASSERT_NO_FATAL_FAILURE(start());
  auto r = http("POST", "/api/v1/rate-limit-overrides",
                {{"tenant", "tenant:t"}, {"limit", "unlimited"}, {"reason", "import"}, {"duration", "1h"}});
  ASSERT_EQ(r.status, 201) << r.body;
  for (int i = 0; i < 10; ++i) {
    const auto ok = http("GET", "/api/v1/jobs", nullptr, "TenantUser");
    ASSERT_NE(ok.status, 429) << "request " << i << " of the tenant's user: " << ok.body;
  }
  int status = 0, n = 0;
  std::string policy;
  for (; n < 10 && status != 429; ++n) {
    const auto other = http("GET", "/api/v1/jobs", nullptr, "DistributorAdministrator");
    status = other.status;
    policy = other.head.get("RateLimit-Policy", "");
  }
  EXPECT_EQ(status, 429) << "a user of another node stays limited";
  EXPECT_EQ(n, 4);
  EXPECT_EQ(policy, "\"address\";q=1200;w=60, \"user\";q=3;w=60") << "both limits apply";
}

TEST_F(OverridesKernel, RoleByActionMatrixOfEveryRoute) {
  // The defaults give the overrides to platform administrators only (*);
  // the file may grant them: a tenant administrator reads, a partner
  // administrator manages.
  cfg_.permissions["TenantAdministrator"] = {"jobs.read", "rate_limits.read"};
  cfg_.permissions["PartnerAdministrator"] = {"jobs.read", "rate_limits.read", "rate_limits.manage"};
  ASSERT_NO_FATAL_FAILURE(start());
  const std::map<std::string, std::pair<bool, bool>> may = {// role -> (read, manage)
                                                            {"PlatformAdministrator", {true, true}},
                                                            {"DistributorAdministrator", {false, false}},
                                                            {"PartnerAdministrator", {true, true}},
                                                            {"TenantAdministrator", {true, false}},
                                                            {"TenantUser", {false, false}}};
  int n = 0;
  for (const auto& [role, rights] : may) {
    const auto [read, manage] = rights;
    const Json body = {
        {"address", "192.0.2." + std::to_string(++n)}, {"limit", 100}, {"reason", "r"}, {"duration", "1h"}};
    // The platform administrator makes an override for each role to end.
    auto made = http("POST", "/api/v1/rate-limit-overrides", body);
    ASSERT_EQ(made.status, 201) << made.body;
    const std::string id = json(made)["override"]["id"];
    struct Step {
      std::string method, target;
      Json body;
      bool manage;
      int ok;
    };
    for (const Step& s : {
             Step{"GET", "/api/v1/rate-limit-overrides", nullptr, false, 200},
             Step{"GET", "/api/v1/rate-limit-overrides/" + id, nullptr, false, 200},
             Step{"POST", "/api/v1/rate-limit-overrides", body, true, 201},
             Step{"DELETE", "/api/v1/rate-limit-overrides/" + id + "?reason=r", nullptr, true, 204},
         }) {
      const bool allowed = s.manage ? manage : read;
      auto r = http(s.method, s.target, s.body, role);
      EXPECT_EQ(r.status, allowed ? s.ok : 403) << role << " " << s.method << " " << s.target << " " << r.body;
    }
    EXPECT_EQ(http("GET", "/api/v1/rate-limit-overrides", nullptr, "").status, 401) << "no token";
  }
  auto r = http("GET", "/api/v1/audit?action=rate_limits.create&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> actors;
  const Json creates = json(r);
  for (const auto& row : creates["items"]) actors.insert(row.value("actor", ""));
  EXPECT_EQ(actors, (std::set<std::string>{"pat", "paul"})) << r.body;
  r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  const Json doc = json(r);
  EXPECT_EQ(doc["paths"]["/api/v1/rate-limit-overrides/{id}"]["delete"]["x-permission"], "rate_limits.manage");
  EXPECT_EQ(doc["paths"]["/api/v1/rate-limit-overrides"]["get"]["x-permission"], "rate_limits.read");
}

// The document with the overrides' routes passes Redocly's linter
// (tests/plugins/admin-http/openapi-lint, as admin_http_test.cpp runs it)
// without an error or a warning.
TEST_F(OverridesKernel, TheOpenApiDocumentWithTheOverridesPassesTheLinter) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  ASSERT_NE(r.body.find("/api/v1/rate-limit-overrides/{id}"), std::string::npos);
  test::expect_openapi_lints_clean(r.body, dir_.path());
}

}  // namespace
}  // namespace opk
