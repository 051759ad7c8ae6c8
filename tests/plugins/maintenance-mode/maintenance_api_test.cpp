// The tenants' maintenance windows on the SDK's test host, with the
// maintenance_probe fixture reading them as admin-http does: create, list,
// get and end early with the audit rows; a scheduled window beginning and
// ending by the test clock (no sleep, no job, no restart); a tenant's window
// reaching the nodes under it and no other tenant nor the nodes above;
// offline winning over an overlapping read-only window; the caller's own
// maintenance for the console's banner; bad input of every kind refused
// naming the field with nothing stored; the settings; the permissions.
#include <opskernel/maintenance.h>
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/admin_feature.h"
#include "support/bundled.h"

namespace opk::test {
namespace {

using testing::Principal;

const Principal kAdmin = Principal::administrator();
const Principal kTenantAdmin{"alice", "TenantAdministrator", "tenant:acme"};
const Principal kOtherUser{"olle", "TenantUser", "tenant:other"};
const Principal kReader{"rita", "DistributorAdministrator", "distributor:d1"};

constexpr int64_t kHour = 3'600'000;

class MaintenanceApi : public FeatureApiTest {
 protected:
  MaintenanceApi() : FeatureApiTest("/api/v1/maintenance", "window", "windows") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FeatureApiTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(start());
  }

  void start() {
    ASSERT_NO_FATAL_FAILURE(load_bundled(host_, {"maintenance-mode"}));
    const Status s = host_.load(std::string(OPK_TEST_PLUGIN_DIR) + "/maintenance_probe.so");
    ASSERT_TRUE(s) << s.message();
    host_.add_node("distributor:d1", "platform");
    host_.add_node("partner:p1", "distributor:d1");
    host_.add_node("tenant:acme", "partner:p1");
    host_.add_node("subscription:s1", "tenant:acme");
    host_.add_node("tenant:other", "partner:p1");
    host_.grant("DistributorAdministrator", "maintenance.read");
  }

  // What admin-http would see for `scope` (see the probe).
  Json lookup(const std::string& scope) {
    auto r = host_.run("maintenance-lookup", Json{{"scope", scope}}.dump());
    EXPECT_EQ(r.status, OPK_OK) << r.error;
    return Json::parse(r.output_json, nullptr, false);
  }
  int mode(const std::string& scope) { return lookup(scope)["mode"].get<int>(); }
  size_t stored() { return host_.store_rows("SELECT id FROM p_maintenance_mode_windows").size(); }
};

OPK_FEATURE_API_STORES(MaintenanceApi);

TEST_P(MaintenanceApi, CreateListGetAndEndEarlyAudited) {
  EXPECT_TRUE(lookup("tenant:acme")["available"]);
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_NONE);
  const int64_t now = host_.clock().now_ms();
  const Json w = create({{"tenant", "tenant:acme"},
                         {"mode", "read-only"},
                         {"banner", "Database upgrade until 14:00 UTC"},
                         {"reason", "CHG-42 upgrade"},
                         {"duration", "2h"}});
  EXPECT_EQ(w["tenant"], "tenant:acme");
  EXPECT_EQ(w["mode"], "read-only");
  EXPECT_EQ(w["created_by"], "admin");
  EXPECT_EQ(w["starts_ms"], now);
  EXPECT_EQ(w["ends_ms"], now + 2 * kHour);
  EXPECT_EQ(w["state"], "active");
  const std::string id = w["id"];

  // Seen at once, no poll; the tenant's subscription too; nothing else.
  Json seen = lookup("tenant:acme");
  EXPECT_EQ(seen["mode"], OPK_MAINTENANCE_READ_ONLY);
  EXPECT_EQ(seen["bare"], OPK_MAINTENANCE_READ_ONLY);
  EXPECT_EQ(seen["tenant"], "tenant:acme");
  EXPECT_EQ(seen["until_ms"], now + 2 * kHour);
  EXPECT_EQ(seen["banner"], "Database upgrade until 14:00 UTC");
  EXPECT_EQ(seen["window_id"], id);
  EXPECT_EQ(mode("subscription:s1"), OPK_MAINTENANCE_READ_ONLY);
  EXPECT_EQ(mode("tenant:other"), OPK_MAINTENANCE_NONE);
  EXPECT_EQ(mode("partner:p1"), OPK_MAINTENANCE_NONE);
  EXPECT_EQ(mode("platform"), OPK_MAINTENANCE_NONE);
  EXPECT_EQ(mode(""), OPK_MAINTENANCE_NONE);
  EXPECT_EQ(lookup("tenant:other")["banner"], "");

  // Listed, read alone, filtered.
  ASSERT_EQ(list().size(), 1u);
  EXPECT_EQ(list("?tenant=tenant:other").size(), 0u);
  EXPECT_EQ(list("?state=active").size(), 1u);
  EXPECT_EQ(list("?state=completed").size(), 0u);
  auto r = call("GET", "/" + id);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["window"]["reason"], "CHG-42 upgrade");
  EXPECT_EQ(call("GET", "/mnt_nope").status, 404);
  EXPECT_EQ(json(call("GET", "/mnt_nope"))["detail"], "id: no maintenance window 'mnt_nope'");

  // Audited with the window after.
  auto rows = audit("maintenance.create");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].user_id, "admin");
  EXPECT_EQ(rows[0].reason, "CHG-42 upgrade");
  EXPECT_EQ(rows[0].target, "maintenance:" + id);
  EXPECT_EQ(Json::parse(rows[0].after_json)["mode"], "read-only");

  // Ended early: a reason is required; the row stays, as ended.
  host_.clock().advance(10 * 60'000);
  r = call("DELETE", "/" + id);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"], "reason: is required (say why the tenant's maintenance changes)");
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_READ_ONLY) << "a refused end changes nothing";
  r = call("DELETE", "/" + id + "?reason=upgrade%20done%20early");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_NONE);
  const Json ended = json(call("GET", "/" + id))["window"];
  EXPECT_EQ(ended["state"], "ended");
  EXPECT_EQ(ended["ended_by"], "admin");
  EXPECT_EQ(ended["ended_ms"], now + 10 * 60'000);
  EXPECT_EQ(ended["ended_reason"], "upgrade done early");
  EXPECT_EQ(call("DELETE", "/" + id + "?reason=again").status, 409);
  rows = audit("maintenance.end");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Json::parse(rows[0].before_json)["state"], "active");
  EXPECT_EQ(Json::parse(rows[0].after_json)["state"], "ended");
  EXPECT_EQ(rows[0].reason, "upgrade done early");
}

TEST_P(MaintenanceApi, AScheduledWindowBeginsAndEndsByTheClock) {
  const int64_t now = host_.clock().now_ms();
  const Json w = create({{"tenant", "tenant:acme"},
                         {"mode", "offline"},
                         {"banner", "Offline for the move"},
                         {"reason", "data centre move"},
                         {"starts_ms", now + kHour},
                         {"ends_ms", now + 3 * kHour}});
  EXPECT_EQ(w["state"], "scheduled");
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_NONE) << "not begun";
  EXPECT_EQ(list("?state=live").size(), 1u);
  host_.clock().advance(kHour - 1);
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_NONE);
  host_.clock().advance(1);
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_OFFLINE) << "begun by the clock alone";
  EXPECT_EQ(json(call("GET", "/" + w["id"].get<std::string>()))["window"]["state"], "active");
  host_.clock().advance(2 * kHour - 1);
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_OFFLINE);
  host_.clock().advance(1);
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_NONE) << "ended by the clock alone";
  EXPECT_EQ(json(call("GET", "/" + w["id"].get<std::string>()))["window"]["state"], "completed");
  EXPECT_EQ(list("?state=completed").size(), 1u);
  EXPECT_EQ(call("DELETE", "/" + w["id"].get<std::string>() + "?reason=late").status, 409);

  // One not begun is called off.
  const Json later = create({{"tenant", "tenant:acme"},
                             {"mode", "read-only"},
                             {"banner", "b"},
                             {"reason", "r"},
                             {"starts_ms", host_.clock().now_ms() + kHour}});
  EXPECT_EQ(later["ends_ms"], nullptr) << "no end: until ended";
  ASSERT_EQ(call("DELETE", "/" + later["id"].get<std::string>() + "?reason=not%20needed").status, 204);
  host_.clock().advance(2 * kHour);
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_NONE) << "called off before it began";
}

TEST_P(MaintenanceApi, OfflineWinsOverAnOverlappingReadOnlyWindow) {
  const int64_t now = host_.clock().now_ms();
  create({{"tenant", "tenant:acme"}, {"mode", "read-only"}, {"banner", "read only"}, {"reason", "r"}});
  const Json off = create({{"tenant", "tenant:acme"},
                           {"mode", "offline"},
                           {"banner", "offline"},
                           {"reason", "r"},
                           {"starts_ms", now + kHour},
                           {"duration", "30m"}});
  EXPECT_EQ(lookup("tenant:acme")["banner"], "read only");
  EXPECT_EQ(lookup("tenant:acme")["until_ms"], 0) << "no end known";
  host_.clock().advance(kHour);
  EXPECT_EQ(lookup("tenant:acme")["mode"], OPK_MAINTENANCE_OFFLINE);
  EXPECT_EQ(lookup("tenant:acme")["banner"], "offline");
  EXPECT_EQ(lookup("tenant:acme")["until_ms"], now + kHour + 30 * 60'000);
  host_.clock().advance(30 * 60'000);
  EXPECT_EQ(lookup("tenant:acme")["mode"], OPK_MAINTENANCE_READ_ONLY);
}

TEST_P(MaintenanceApi, TheCallersOwnMaintenanceForTheBanner) {
  auto r = call("GET", "/current", nullptr, kTenantAdmin);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["maintenance"], nullptr);
  create({{"tenant", "tenant:acme"}, {"mode", "read-only"}, {"banner", "Back at 15:00"}, {"reason", "r"}});
  r = call("GET", "/current", nullptr, kTenantAdmin);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["maintenance"]["banner"], "Back at 15:00");
  EXPECT_EQ(json(r)["maintenance"]["mode"], "read-only");
  EXPECT_EQ(json(r)["maintenance"]["until_ms"], nullptr);
  r = call("GET", "/current", nullptr, kOtherUser);
  EXPECT_EQ(json(r)["maintenance"], nullptr) << "another tenant's users see no banner";
  r = call("GET", "/current");
  EXPECT_EQ(json(r)["maintenance"], nullptr);
}

TEST_P(MaintenanceApi, BadInputIsRefusedNamingTheFieldAndStoresNothing) {
  const int64_t now = host_.clock().now_ms();
  const Json good = {{"tenant", "tenant:acme"}, {"mode", "read-only"}, {"banner", "b"}, {"reason", "r"}};
  const auto with = [&](const std::string& key, const Json& value) {
    Json b = good;
    if (value.is_null())
      b.erase(key);
    else
      b[key] = value;
    return b;
  };
  const std::vector<std::pair<Json, std::string>> cases = {
      {with("ends_ms", now - 1), "ends_ms: the window ends before it starts"},
      {Json{{"tenant", "tenant:acme"},
            {"mode", "offline"},
            {"banner", "b"},
            {"reason", "r"},
            {"starts_ms", now + kHour},
            {"ends_ms", now + 30 * 60'000}},
       "ends_ms: the window ends before it starts"},
      {with("ends_ms", now), "ends_ms: the window ends before it starts"},
      {with("ends_ms", "tomorrow"), "ends_ms: must be a whole number"},
      {with("starts_ms", now - kHour), "starts_ms: is in the past"},
      {with("duration", "soon"), "duration: must be a duration"},
      {Json{{"tenant", "tenant:acme"},
            {"mode", "offline"},
            {"banner", "b"},
            {"reason", "r"},
            {"duration", "2h"},
            {"ends_ms", now + kHour}},
       "duration: give ends_ms or duration, not both"},
      {with("tenant", "tenant:nope"), "tenant: no tenant 'tenant:nope'"},
      {with("tenant", "partner:p1"), "tenant: 'partner:p1' is not a tenant's node id"},
      {with("tenant", 7), "tenant: must be a tenant's node id"},
      {with("tenant", nullptr), "tenant: is required"},
      {with("reason", nullptr), "reason: is required"},
      {with("reason", "  "), "reason: is required"},
      {with("mode", "frozen"), "mode: must be read-only or offline, not \"frozen\""},
      {with("mode", nullptr), "mode: is required"},
      {with("banner", nullptr), "banner: is required"},
      {with("banner", std::string(501, 'x')), "banner: longer than 500 bytes"},
      {with("colour", "red"), "colour: is not a field of this request"},
  };
  for (const auto& [body, detail] : cases) {
    auto r = call("POST", "", body);
    EXPECT_EQ(r.status, 400) << body.dump() << " " << r.body;
    const std::string got = json(r).value("detail", "");
    EXPECT_EQ(got.rfind(detail, 0), 0u) << body.dump() << ": " << got;
    EXPECT_EQ(json(r)["type"], "about:blank");
  }
  auto r = host_.request("POST", "/api/v1/maintenance", "{not json", kAdmin);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"], "request: the body is not valid JSON");
  EXPECT_EQ(call("GET", "?state=soon").status, 400);
  EXPECT_EQ(json(call("GET", "?state=soon"))["detail"].get<std::string>().rfind("state: must be", 0), 0u);
  EXPECT_EQ(stored(), 0u);
  EXPECT_TRUE(host_.audit_rows().empty());
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_NONE);
}

TEST_P(MaintenanceApi, PermissionsReadAndManage) {
  const Json body = {{"tenant", "tenant:acme"}, {"mode", "offline"}, {"banner", "b"}, {"reason", "r"}};
  EXPECT_EQ(call("GET", "", nullptr, kTenantAdmin).status, 403);
  EXPECT_EQ(call("POST", "", body, kTenantAdmin).status, 403);
  EXPECT_EQ(call("GET", "", nullptr, kReader).status, 200);
  EXPECT_EQ(call("POST", "", body, kReader).status, 403);
  const std::string id = create(body)["id"];
  EXPECT_EQ(call("GET", "/" + id, nullptr, kReader).status, 200);
  EXPECT_EQ(call("GET", "/" + id, nullptr, kTenantAdmin).status, 403);
  EXPECT_EQ(call("DELETE", "/" + id + "?reason=r", nullptr, kReader).status, 403);
  EXPECT_EQ(call("DELETE", "/" + id + "?reason=r", nullptr, kTenantAdmin).status, 403);
  EXPECT_EQ(call("GET", "/current", nullptr, kTenantAdmin).status, 200);
  EXPECT_EQ(mode("tenant:acme"), OPK_MAINTENANCE_OFFLINE) << "refused calls changed nothing";
}

TEST(MaintenanceSettings, BannerBoundAndBadSettingsNamed) {
  testing::Host host;
  host.set_setting("max_banner", "10");
  ASSERT_NO_FATAL_FAILURE(load_bundled(host, {"maintenance-mode"}));
  host.add_node("tenant:acme", "platform");
  auto r = host.request(
      "POST", "/api/v1/maintenance",
      Json{{"tenant", "tenant:acme"}, {"mode", "offline"}, {"banner", "eleven byte"}, {"reason", "r"}}.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("banner: longer than 10 bytes (max_banner)"), std::string::npos) << r.body;
  testing::Host bad;
  bad.set_setting("poll_interval", "1ms");
  const Status s = bad.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/maintenance-mode.so");
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("poll_interval"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace opk::test
