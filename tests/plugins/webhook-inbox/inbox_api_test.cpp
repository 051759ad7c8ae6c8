// The webhook failures inbox on the SDK's test host, over the notifications
// plugin's outbox with deliveries written straight into its table (the
// test host has no event log to make them from): the API's answers (a
// failure's endpoint, the handled filter, counts, pages by cursor, a
// suppression's endpoint), per-role scoping, the webhook_failures.*
// permissions alone being enough, the alert source against its threshold,
// and the plugin starting without the metrics service.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/bundled.h"

namespace opk::test {
namespace {

using testing::Principal;

const Principal kAdmin = Principal::administrator();
const Principal kAcme{"alice", "TenantAdministrator", "tenant:acme"};
const Principal kBeta{"bob", "TenantAdministrator", "tenant:beta"};
const Principal kViewer{"vera", "TenantUser", "tenant:acme"};

class InboxApi : public ::testing::Test {
 protected:
  void SetUp() override { load(); }

  void load() {
    ASSERT_NO_FATAL_FAILURE(load_bundled(host_, {"channel-webhook", "notifications", "webhook-inbox"}));
    host_.add_node("distributor:d1", "platform");
    host_.add_node("tenant:acme", "distributor:d1");
    host_.add_node("tenant:beta", "distributor:d1");
    // Only the inbox's permissions: enough to work it.
    host_.grant("TenantAdministrator", "webhook_failures.read");
    host_.grant("TenantAdministrator", "webhook_failures.manage");
    host_.grant("TenantUser", "webhook_failures.read");
    add("d1", "tenant:acme", "dead", 1, "https://a.example/hook");
    add("d2", "tenant:acme", "failed", 2, "https://b.example/hook");
    add("d3", "tenant:acme", "delivered", 3, "https://a.example/hook");
    add("d4", "tenant:beta", "dead", 4, "https://a.example/hook");
    add("d5", "platform", "dead", 5, "https://a.example/hook");
  }

  void add(const std::string& id, const std::string& scope, const std::string& state, int64_t n,
           const std::string& to) {
    host_.store_rows(
        "INSERT INTO p_notifications_deliveries (id, rule_id, group_id, scope, event_seq, event_kind, event_subject, "
        "channel, recipient, endpoint, message, state, attempts, next_attempt_ms, lease_until_ms, lease_owner, "
        "created_ms, updated_ms, last_code, last_detail, render_error) VALUES ('msg_" +
        id + "', 'rule-x', 'g', '" + scope + "', " + std::to_string(n) + ", 'run.failed', 'run:" + std::to_string(n) +
        "', 'webhook', '" + to + "', 'ep_" + to + "', '{\"subject\":\"s\",\"body\":\"b\"}', '" + state +
        "', 8, 0, 0, '', " + std::to_string(n * 1000) + ", " + std::to_string(n * 1000) + ", 503, 'HTTP 503', '')");
  }

  testing::Response call(const std::string& method, const std::string& path, const Json& body = nullptr,
                         const Principal& who = kAdmin) {
    return host_.request(method, "/api/v1/webhook-failures" + path, body.is_null() ? "" : body.dump(), who,
                         {{"content-type", "application/json"}});
  }
  static Json json(const testing::Response& r) { return Json::parse(r.body, nullptr, false); }

  std::vector<std::string> ids(const std::string& query, const Principal& who = kAdmin) {
    std::vector<std::string> out;
    const auto r = call("GET", query, nullptr, who);
    EXPECT_EQ(r.status, 200) << r.body;
    const Json doc = json(r);
    for (const auto& f : doc["failures"]) out.push_back(f["id"].get<std::string>().substr(4));
    return out;
  }

  testing::Host host_;
};

using V = std::vector<std::string>;

TEST_F(InboxApi, StartsWithoutTheMetricsService) {
  bool said = false;
  for (const auto& l : host_.log_lines()) said |= l.text.find("no gauges in /metrics") != std::string::npos;
  EXPECT_TRUE(said) << "the test host has no opk.metrics/1: the inbox says so and works";
  EXPECT_EQ(call("GET", "/counts").status, 200);
}

TEST_F(InboxApi, ListsFailuresPerScopeWithTheirEndpoint) {
  EXPECT_EQ(ids(""), (V{"d5", "d4", "d2", "d1"}));
  EXPECT_EQ(ids("", kAcme), (V{"d2", "d1"}));
  EXPECT_EQ(ids("", kBeta), (V{"d4"}));
  EXPECT_EQ(ids("", kViewer), (V{"d2", "d1"}));
  EXPECT_EQ(ids("?endpoint=https://a.example/hook"), (V{"d5", "d4", "d1"}));
  EXPECT_EQ(ids("?scope=distributor:d1"), (V{"d4", "d2", "d1"}));
  EXPECT_EQ(ids("?since_ms=2000&until_ms=5000"), (V{"d4", "d2"}));
  EXPECT_TRUE(ids("?channel=email").empty());
  EXPECT_TRUE(ids("?event=alert.opened").empty());
  const auto r = call("GET", "", nullptr, kAcme);
  const Json f = json(r)["failures"][1];
  EXPECT_EQ(f["endpoint"], "https://a.example/hook");
  EXPECT_EQ(f["recipient"], "https://a.example/hook");
  EXPECT_EQ(f["state"], "dead");
  EXPECT_EQ(f["last_code"], 503);

  // Pages of one, followed by their cursors, give each once.
  V paged;
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    const auto p = call("GET", "?limit=1" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(p.status, 200) << p.body;
    const Json doc = json(p);
    for (const auto& d : doc["failures"]) paged.push_back(d["id"].get<std::string>().substr(4));
    if (doc["next_cursor"].is_null()) break;
    cursor = doc["next_cursor"];
  }
  EXPECT_EQ(paged, (V{"d5", "d4", "d2", "d1"}));
  EXPECT_EQ(call("GET", "?cursor=nonsense").status, 400);

  auto one = call("GET", "/msg_d1", nullptr, kAcme);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(json(one)["failure"]["message"]["subject"], "s");
  EXPECT_TRUE(json(one)["failure"]["attempts"].is_array());
  EXPECT_EQ(call("GET", "/msg_d4", nullptr, kAcme).status, 404);
  EXPECT_EQ(call("GET", "/msg_d3").status, 200) << "get shows any delivery in scope, as the outbox's get";
}

TEST_F(InboxApi, HandleReplayAndSuppressWithTheInboxPermissionsOnly) {
  auto r = call("POST", "/handle", {{"ids", {"msg_d1"}}, {"note", "resent by hand"}}, kAcme);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ids("", kAcme), (V{"d2"}));
  EXPECT_EQ(ids("?handled=true", kAcme), (V{"d1"}));
  EXPECT_EQ(ids("?handled=all", kAcme), (V{"d2", "d1"}));
  EXPECT_EQ(json(call("GET", "/counts", nullptr, kAcme)),
            (Json{{"open", 1}, {"handled", 1}, {"suppressed_endpoints", 0}}));
  EXPECT_EQ(call("POST", "/handle", {{"ids", {"msg_d2"}}}, kViewer).status, 403);

  r = call("POST", "/replay", {{"ids", {"msg_d1", "msg_d2"}}}, kAcme);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["replayed"], Json({"msg_d1", "msg_d2"}));
  EXPECT_TRUE(ids("?handled=all", kAcme).empty()) << "both pending again";

  r = call("POST", "/suppressions",
           {{"channel", "webhook"}, {"endpoint", "https://a.example/hook"}, {"reason", "moving"}}, kAcme);
  ASSERT_EQ(r.status, 201) << r.body;
  const Json sup = json(r)["suppression"];
  EXPECT_EQ(sup["endpoint"], "https://a.example/hook");
  EXPECT_EQ(sup["scope"], "tenant:acme");
  EXPECT_EQ(sup["reason"], "moving");
  EXPECT_EQ(r.header("location"), "/api/v1/webhook-failures/suppressions/" + sup["id"].get<std::string>());
  r = call("GET", "/suppressions", nullptr, kViewer);
  ASSERT_EQ(json(r)["suppressions"].size(), 1u) << r.body;
  EXPECT_EQ(json(r)["suppressions"][0]["endpoint"], "https://a.example/hook");
  EXPECT_TRUE(json(call("GET", "/suppressions", nullptr, kBeta))["suppressions"].empty());
  EXPECT_EQ(call("DELETE", "/suppressions/" + sup["id"].get<std::string>(), nullptr, kBeta).status, 404);
  EXPECT_EQ(call("DELETE", "/suppressions/" + sup["id"].get<std::string>(), nullptr, kAcme).status, 204);

  std::vector<std::string> actions;
  for (const auto& row : host_.audit_rows())
    if (row.action.rfind("webhook_failures.", 0) == 0) {
      actions.push_back(row.action);
      EXPECT_EQ(row.user_id, "alice");
    }
  EXPECT_EQ(actions, (V{"webhook_failures.handle", "webhook_failures.replay", "webhook_failures.suppress",
                        "webhook_failures.lift"}));
}

TEST_F(InboxApi, TheAlertFollowsTheThreshold) {
  // Default threshold 10: four open failures raise nothing.
  auto e = host_.evaluate("webhook-failures");
  ASSERT_EQ(e.status, OPK_OK) << e.error;
  EXPECT_TRUE(e.raised.empty());
  EXPECT_EQ(e.cleared.size(), 1u);
  EXPECT_TRUE(host_.open_alerts().empty());
}

TEST(InboxAlert, OpensOverTheThresholdAndClosesUnderIt) {
  testing::Host host;
  host.set_setting("alert_threshold", "2");
  ASSERT_NO_FATAL_FAILURE(load_bundled(host, {"channel-webhook", "notifications", "webhook-inbox"}));
  auto add = [&](const std::string& id) {
    host.store_rows(
        "INSERT INTO p_notifications_deliveries (id, rule_id, group_id, scope, event_seq, event_kind, event_subject, "
        "channel, recipient, endpoint, message, state, attempts, next_attempt_ms, lease_until_ms, lease_owner, "
        "created_ms, updated_ms, last_code, last_detail, render_error) VALUES ('msg_" +
        id +
        "', 'r', 'g', 'platform', 1, 'run.failed', 'run:1', 'webhook', 'https://x/', 'ep', '{}', 'dead', 8, 0, "
        "0, '', 1000, 1000, 503, '', '')");
  };
  add("a");
  add("b");
  auto e = host.evaluate("webhook-failures");
  ASSERT_EQ(e.status, OPK_OK) << e.error;
  EXPECT_TRUE(e.raised.empty()) << "2 is not over 2";
  add("c");
  e = host.evaluate("webhook-failures");
  ASSERT_EQ(e.raised.size(), 1u);
  EXPECT_EQ(e.raised[0].severity, OPK_SEVERITY_WARNING);
  EXPECT_EQ(e.raised[0].scope, "platform");
  EXPECT_EQ(e.raised[0].related_type, "webhook-inbox");
  EXPECT_EQ(Json::parse(e.raised[0].details_json)["open"], 3);
  EXPECT_EQ(host.open_alerts().size(), 1u);
  const auto r = host.request("POST", "/api/v1/webhook-failures/handle", R"({"ids": ["msg_a"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  e = host.evaluate("webhook-failures");
  EXPECT_TRUE(e.raised.empty());
  EXPECT_TRUE(host.open_alerts().empty()) << "cleared at the threshold";
}

}  // namespace
}  // namespace opk::test
