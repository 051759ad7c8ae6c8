// The rate-limit overrides on the SDK's test host, with the rate_limit_probe
// fixture reading them as admin-http does: create, list, get and end early
// with the audit rows; expiry driven by the test clock (no sleep, no job,
// the row kept as expired); address and CIDR matching for IPv4, IPv6 and
// IPv4-mapped addresses with the most generous override winning; a node's
// override reaching the users of the nodes under it; bad input of every
// kind refused naming the field with nothing stored; the max_duration
// setting; ended overrides pruned after keep_history; the permissions.
#include <opskernel/rate_limits.h>
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/admin_feature.h"
#include "support/bundled.h"

namespace opk::test {
namespace {

using testing::Principal;

const Principal kAdmin = Principal::administrator();
const Principal kTenantAdmin{"alice", "TenantAdministrator", "tenant:acme"};
const Principal kReader{"rita", "DistributorAdministrator", "distributor:d1"};

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

class OverridesApi : public FeatureApiTest {
 protected:
  OverridesApi() : FeatureApiTest("/api/v1/rate-limit-overrides", "override", "overrides") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FeatureApiTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(start());
  }

  void start() {
    ASSERT_NO_FATAL_FAILURE(load_bundled(host_, {"rate-limit-overrides"}));
    const Status s = host_.load(std::string(OPK_TEST_PLUGIN_DIR) + "/rate_limit_probe.so");
    ASSERT_TRUE(s) << s.message();
    host_.add_node("distributor:d1", "platform");
    host_.add_node("tenant:acme", "distributor:d1");
    host_.add_node("subscription:s1", "tenant:acme");
    host_.add_node("tenant:other", "distributor:d1");
    host_.grant("DistributorAdministrator", "rate_limits.read");
  }

  // What admin-http would see: {"address", "scope", ...} (see the probe).
  Json lookup(const Json& params) {
    auto r = host_.run("rate-lookup", params.dump());
    EXPECT_EQ(r.status, OPK_OK) << r.error;
    return Json::parse(r.output_json, nullptr, false);
  }
  int64_t for_address(const std::string& a) { return lookup({{"address", a}})["address"].get<int64_t>(); }
  int64_t for_scope(const std::string& s) { return lookup({{"scope", s}})["scope"].get<int64_t>(); }
};

OPK_FEATURE_API_STORES(OverridesApi);

TEST_P(OverridesApi, CreateListGetAndEndEarlyAudited) {
  EXPECT_TRUE(lookup({{"address", "192.0.2.7"}})["available"]);
  EXPECT_EQ(for_address("192.0.2.7"), 0) << "no override";
  const int64_t now = host_.clock().now_ms();
  const Json o =
      create({{"address", "192.0.2.7"}, {"limit", "unlimited"}, {"reason", "backfill of INC-7"}, {"duration", "2h"}});
  EXPECT_EQ(o["kind"], "address");
  EXPECT_EQ(o["target"], "192.0.2.7/32");
  EXPECT_EQ(o["limit"], "unlimited");
  EXPECT_EQ(o["created_by"], "admin");
  EXPECT_EQ(o["created_ms"], now);
  EXPECT_EQ(o["expires_ms"], now + 2 * kHour);
  EXPECT_EQ(o["state"], "active");
  EXPECT_EQ(o["remaining_ms"], 2 * kHour);
  const std::string id = o["id"];
  EXPECT_EQ(for_address("192.0.2.7"), OPK_RATE_UNLIMITED) << "seen at once, no poll";
  EXPECT_EQ(lookup({{"address", "192.0.2.7"}})["address_until_ms"], now + 2 * kHour);
  EXPECT_EQ(for_address("192.0.2.8"), 0);

  // A raise for a block, by expires_ms.
  const Json raised =
      create({{"address", "10.0.0.0/8"}, {"limit", 5000}, {"reason", "migration"}, {"expires_ms", now + 3 * kDay}});
  EXPECT_EQ(raised["limit"], 5000);
  EXPECT_EQ(for_address("10.20.30.40"), 5000);

  // Listed newest first with who set it and when it ends; read alone.
  Json all = list();
  ASSERT_EQ(all.size(), 2u);
  auto r = call("GET", "/" + id);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["override"]["reason"], "backfill of INC-7");
  EXPECT_EQ(call("GET", "/rlo_nope").status, 404);
  EXPECT_EQ(json(call("GET", "/rlo_nope"))["detail"], "id: no rate-limit override 'rlo_nope'");

  // Ended early: a reason is required; the row stays, as removed.
  host_.clock().advance(10 * 60'000);
  r = call("DELETE", "/" + id);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"], "reason: is required (say why the limit changes)");
  EXPECT_EQ(for_address("192.0.2.7"), OPK_RATE_UNLIMITED) << "a refused delete changes nothing";
  r = call("DELETE", "/" + id + "?reason=backfill%20done");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(for_address("192.0.2.7"), 0) << "today's limit again, at once";
  const Json ended = json(call("GET", "/" + id))["override"];
  EXPECT_EQ(ended["state"], "removed");
  EXPECT_EQ(ended["removed_by"], "admin");
  EXPECT_EQ(ended["removed_reason"], "backfill done");
  EXPECT_EQ(ended["ends_ms"], now + 10 * 60'000);
  r = call("DELETE", "/" + id + "?reason=again");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json(r)["detail"], "id: override '" + id + "' has ended already (removed)");
  EXPECT_EQ(list("?state=removed").size(), 1u);
  EXPECT_EQ(list("?state=active").size(), 1u);
  EXPECT_EQ(list("?state=ended").size(), 1u);
  EXPECT_EQ(list("?kind=tenant").size(), 0u);
  EXPECT_EQ(list("?target=10.0.0.0/8").size(), 1u);

  // Audited with actor, reason, before and after.
  const auto creates = audit("rate_limits.create");
  ASSERT_EQ(creates.size(), 2u);
  EXPECT_EQ(creates[0].user_id, "admin");
  EXPECT_EQ(creates[0].target, "rate-limit-override:" + id);
  EXPECT_EQ(creates[0].reason, "backfill of INC-7");
  EXPECT_EQ(Json::parse(creates[0].after_json)["target"], "192.0.2.7/32");
  const auto deletes = audit("rate_limits.delete");
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].reason, "backfill done");
  EXPECT_EQ(Json::parse(deletes[0].before_json)["state"], "active");
  EXPECT_EQ(Json::parse(deletes[0].after_json)["state"], "removed");
}

TEST_P(OverridesApi, AnOverrideExpiresByTheClockAndStaysListed) {
  const Json o = create({{"tenant", "tenant:acme"}, {"limit", 2000}, {"reason", "import"}, {"duration", "1h"}});
  const std::string id = o["id"];
  EXPECT_EQ(for_scope("tenant:acme"), 2000);
  host_.clock().advance(kHour - 1);
  EXPECT_EQ(for_scope("tenant:acme"), 2000) << "a millisecond before its end";
  EXPECT_EQ(json(call("GET", "/" + id))["override"]["remaining_ms"], 1);
  host_.clock().advance(1);
  EXPECT_EQ(for_scope("tenant:acme"), 0) << "ended by the clock alone: no reload, no job";
  const Json ended = json(call("GET", "/" + id))["override"];
  EXPECT_EQ(ended["state"], "expired");
  EXPECT_EQ(ended["remaining_ms"], 0);
  EXPECT_EQ(list("?state=expired").size(), 1u) << "kept for history";
  EXPECT_EQ(list("?state=active").size(), 0u);
  auto r = call("DELETE", "/" + id + "?reason=late");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(json(r)["detail"], "id: override '" + id + "' has ended already (expired)");
}

TEST_P(OverridesApi, AddressesBlocksAndNodesMatch) {
  const int64_t until = host_.clock().now_ms() + kDay;
  create({{"address", "10.0.0.0/8"}, {"limit", 5000}, {"reason", "r"}, {"expires_ms", until}});
  create({{"address", "10.1.0.0/16"}, {"limit", "unlimited"}, {"reason", "r"}, {"expires_ms", until}});
  create({{"address", "10.2.0.0/16"}, {"limit", 100}, {"reason", "r"}, {"expires_ms", until}});
  create({{"address", "2001:db8::/32"}, {"limit", 7000}, {"reason", "r"}, {"expires_ms", until}});
  create({{"address", "::ffff:192.0.2.0/120"}, {"limit", 900}, {"reason", "r"}, {"expires_ms", until}});
  EXPECT_EQ(for_address("10.9.9.9"), 5000);
  EXPECT_EQ(for_address("10.1.2.3"), OPK_RATE_UNLIMITED) << "the most generous wins";
  EXPECT_EQ(for_address("10.2.0.1"), 5000) << "a smaller raise inside a block does not lower it";
  EXPECT_EQ(for_address("11.0.0.1"), 0);
  EXPECT_EQ(for_address("::ffff:10.9.9.9"), 5000) << "an IPv4-mapped address is its IPv4 address";
  EXPECT_EQ(for_address("2001:db8:1::5"), 7000);
  EXPECT_EQ(for_address("2001:db9::5"), 0);
  EXPECT_EQ(for_address("192.0.2.200"), 900);
  EXPECT_EQ(for_address("not an address"), 0);
  EXPECT_EQ(list("?target=192.0.2.0/24").size(), 1u) << "stored as its IPv4 block";

  // A node's override reaches its users and those of the nodes under it.
  create({{"tenant", "tenant:acme"}, {"limit", 3000}, {"reason", "r"}, {"expires_ms", until}});
  EXPECT_EQ(for_scope("tenant:acme"), 3000);
  EXPECT_EQ(for_scope("subscription:s1"), 3000);
  EXPECT_EQ(for_scope("tenant:other"), 0);
  EXPECT_EQ(for_scope("distributor:d1"), 0);
  create({{"tenant", "distributor:d1"}, {"limit", "unlimited"}, {"reason", "r"}, {"expires_ms", until}});
  EXPECT_EQ(for_scope("subscription:s1"), OPK_RATE_UNLIMITED);
  EXPECT_EQ(for_scope("tenant:other"), OPK_RATE_UNLIMITED);
}

TEST_P(OverridesApi, BadInputIsRefusedNamingTheFieldAndStoresNothing) {
  const int64_t now = host_.clock().now_ms();
  const Json good = {{"address", "192.0.2.0/24"}, {"limit", 1000}, {"reason", "r"}, {"duration", "1h"}};
  const auto with = [&](const Json& patch) {
    Json b = good;
    for (const auto& [k, v] : patch.items()) {
      if (v.is_null())
        b.erase(k);
      else
        b[k] = v;
    }
    return b;
  };
  struct Case {
    Json body;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {with({{"duration", nullptr}}),
       "expires_ms: is required (or duration): an override must end, at most 7d ahead (max_duration)"},
      {with({{"duration", "8d"}}), "duration: 8d is too long; at most 7d ahead (max_duration)"},
      {with({{"duration", nullptr}, {"expires_ms", now + 7 * kDay + kHour}}),
       "expires_ms: is 169h ahead; at most 7d ahead (max_duration)"},
      {with({{"duration", nullptr}, {"expires_ms", now}}),
       "expires_ms: must be in the future (now is " + std::to_string(now) + ")"},
      {with({{"duration", nullptr}, {"expires_ms", "tomorrow"}}),
       "expires_ms: must be a whole number of ms since the epoch"},
      {with({{"expires_ms", now + kHour}}), "duration: give expires_ms or duration, not both"},
      {with({{"duration", "soon"}}), "duration: must be a duration such as 90m, 2h or 3d"},
      {with({{"reason", nullptr}}), "reason: is required (say why the limit changes)"},
      {with({{"reason", "  "}}), "reason: is required (say why the limit changes)"},
      {with({{"reason", 7}}), "reason: must be a string"},
      {with({{"address", "300.1.2.3"}}),
       "address: '300.1.2.3' is not an IPv4 or IPv6 address or CIDR block (192.0.2.7, 10.0.0.0/8, 2001:db8::/32)"},
      {with({{"address", "10.0.0.1/8"}}),
       "address: '10.0.0.1/8' has bits set past its prefix; the block is 10.0.0.0/8"},
      {with({{"address", "10.0.0.0/33"}}), "address: '10.0.0.0/33' has a bad prefix length (0 to 32 after the '/')"},
      {with({{"address", "2001:db8::/129"}}),
       "address: '2001:db8::/129' has a bad prefix length (0 to 128 after the '/')"},
      {with({{"address", "10.0.0.0/"}}), "address: '10.0.0.0/' has a bad prefix length (0 to 32 after the '/')"},
      {with({{"address", "gateway.example"}}),
       "address: 'gateway.example' is not an IPv4 or IPv6 address or CIDR block (192.0.2.7, 10.0.0.0/8, "
       "2001:db8::/32)"},
      {with({{"address", 10}}), "address: must be a string: an IP address or CIDR block"},
      {with({{"address", nullptr}}),
       "address: is required (or tenant): an IP address or CIDR block, or a hierarchy node"},
      {with({{"address", nullptr}, {"tenant", "tenant:nope"}}), "tenant: no hierarchy node 'tenant:nope'"},
      {with({{"tenant", "tenant:acme"}}), "tenant: give address or tenant, not both"},
      {with({{"limit", nullptr}}), "limit: is required: \"unlimited\" or requests per minute"},
      {with({{"limit", 0}}), "limit: must be \"unlimited\" or a whole number of requests per minute, 1 to 1000000000"},
      {with({{"limit", "lots"}}),
       "limit: must be \"unlimited\" or a whole number of requests per minute, 1 to 1000000000"},
      {with({{"limits", 5}}), "limits: is not a field of this request"},
  };
  for (const Case& c : cases) {
    auto r = call("POST", "", c.body);
    EXPECT_EQ(r.status, 400) << c.body.dump() << " " << r.body;
    EXPECT_EQ(r.header("content-type"), "application/problem+json");
    EXPECT_EQ(json(r)["detail"], c.detail) << c.body.dump();
  }
  auto r = host_.request("POST", "/api/v1/rate-limit-overrides", "{not json", kAdmin);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"], "request: the body is not valid JSON");
  EXPECT_EQ(list().size(), 0u) << "nothing stored";
  EXPECT_TRUE(audit("rate_limits.create").empty());
  r = call("GET", "?state=later");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"], "state: must be active, expired, removed or ended, not 'later'");
  // The bound itself is taken.
  create(with({{"duration", "7d"}}));
}

TEST(OverridesSettings, MaxDurationBoundsTheExpiry) {
  testing::Host host;
  host.set_setting("max_duration", "2h");
  ASSERT_NO_FATAL_FAILURE(load_bundled(host, {"rate-limit-overrides"}));
  const Json body = {{"address", "192.0.2.1"}, {"limit", 100}, {"reason", "r"}, {"duration", "3h"}};
  auto r = host.request("POST", "/api/v1/rate-limit-overrides", body.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Json::parse(r.body)["detail"], "duration: 3h is too long; at most 2h ahead (max_duration)");
  Json ok = body;
  ok["duration"] = "2h";
  EXPECT_EQ(host.request("POST", "/api/v1/rate-limit-overrides", ok.dump()).status, 201);

  testing::Host bad;
  bad.set_setting("max_duration", "1s");
  const Status s = bad.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/rate-limit-overrides.so");
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("max_duration"), std::string::npos) << s.message();
}

// Ended overrides stay listed for keep_history after they ended, then the
// poller deletes them; active ones stay whatever their age.
TEST(OverridesHistory, EndedOverridesArePrunedAfterKeepHistory) {
  testing::Host host;
  host.set_setting("poll_interval", "100ms");
  host.set_setting("keep_history", "1d");
  ASSERT_NO_FATAL_FAILURE(load_bundled(host, {"rate-limit-overrides"}));
  const auto make = [&](const std::string& address, const std::string& duration) {
    const Json body = {{"address", address}, {"limit", 100}, {"reason", "r"}, {"duration", duration}};
    auto r = host.request("POST", "/api/v1/rate-limit-overrides", body.dump());
    EXPECT_EQ(r.status, 201) << r.body;
  };
  const auto listed = [&] {
    auto r = host.request("GET", "/api/v1/rate-limit-overrides");
    EXPECT_EQ(r.status, 200) << r.body;
    const Json doc = Json::parse(r.body);
    std::vector<std::string> out;
    for (const auto& o : doc["overrides"])
      out.push_back(o["target"].get<std::string>() + " " + o["state"].get<std::string>());
    std::sort(out.begin(), out.end());
    return out;
  };
  make("192.0.2.1", "1h");
  make("192.0.2.2", "7d");
  host.clock().advance(2 * kHour);
  // Over a dozen polls: ended an hour ago, within keep_history, kept.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(listed(), (std::vector<std::string>{"192.0.2.1/32 expired", "192.0.2.2/32 active"}));
  host.clock().advance(kDay);
  bool pruned = false;
  for (int i = 0; i < 750 && !pruned; ++i) {
    pruned = listed() == std::vector<std::string>{"192.0.2.2/32 active"};
    if (!pruned) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(pruned) << "still listed: " << Json(listed()).dump();
}

TEST_P(OverridesApi, PermissionsReadAndManage) {
  const Json body = {{"address", "192.0.2.1"}, {"limit", 100}, {"reason", "r"}, {"duration", "1h"}};
  EXPECT_EQ(call("GET", "", nullptr, kTenantAdmin).status, 403);
  EXPECT_EQ(call("POST", "", body, kTenantAdmin).status, 403);
  EXPECT_EQ(call("GET", "", nullptr, kReader).status, 200);
  EXPECT_EQ(call("POST", "", body, kReader).status, 403);
  const std::string id = create(body)["id"];
  EXPECT_EQ(call("GET", "/" + id, nullptr, kReader).status, 200);
  EXPECT_EQ(call("DELETE", "/" + id + "?reason=r", nullptr, kReader).status, 403);
  EXPECT_EQ(for_address("192.0.2.1"), 100) << "refused calls change nothing";
}

}  // namespace
}  // namespace opk::test
