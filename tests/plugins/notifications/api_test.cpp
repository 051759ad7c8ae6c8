// The notifications plugin's admin API on the SDK's test host, with the
// bundled e-mail and webhook channels loaded: groups and rules created,
// read, changed and deleted; each scoped to the caller's node, refused with
// problem+json naming the field, audited with before and after; recipients
// checked by their channel and templates by the parser when a rule is saved.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "support/bundled.h"

namespace opk::test {
namespace {

using testing::Principal;

const Principal kAdmin = Principal::administrator();
const Principal kDistributor{"dora", "DistributorAdministrator", "distributor:d1"};
const Principal kAcme{"alice", "TenantAdministrator", "tenant:acme"};
const Principal kBeta{"bob", "TenantAdministrator", "tenant:beta"};
const Principal kViewer{"vera", "TenantUser", "tenant:acme"};

// On both stores: the plugin's tables and statements in SQLite, and in a
// schema of the Host's own on the tests' PostgreSQL server (OPK_TEST_PG).
class NotificationsApi : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << s.message();
    ASSERT_NO_FATAL_FAILURE(load_bundled(host_, {"channel-email", "channel-webhook", "notifications"}));
    host_.add_node("distributor:d1", "platform");
    host_.add_node("tenant:acme", "distributor:d1");
    host_.add_node("tenant:beta", "distributor:d1");
    for (const char* role : {"DistributorAdministrator", "TenantAdministrator"}) {
      host_.grant(role, "notifications.read");
      host_.grant(role, "notifications.manage");
    }
    host_.grant("TenantUser", "notifications.read");
  }

  testing::Response call(const std::string& method, const std::string& path, const Json& body = nullptr,
                         const Principal& who = kAdmin) {
    return host_.request(method, "/api/v1/notifications" + path, body.is_null() ? "" : body.dump(), who,
                         {{"content-type", "application/json"}});
  }
  static Json json(const testing::Response& r) { return Json::parse(r.body, nullptr, false); }

  // Creates group `id` at `scope`; 201 expected.
  void group(const std::string& id, const std::string& scope, const Principal& who = kAdmin) {
    const auto r = call("POST", "/groups", {{"id", id}, {"name", "Group " + id}, {"scope", scope}}, who);
    ASSERT_EQ(r.status, 201) << r.body;
  }

  static Json webhook_rule() {
    return {{"name", "failures to the hook"},
            {"events", {"run.failed", "alert.*"}},
            {"filter", {{"job_types", {"database-backup"}}}},
            {"channel", "webhook"},
            {"recipients",
             {{{"to", "https://hooks.example.com/ops"},
               {"options", {{"secrets", {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}}}}},
            {"template", {{"subject", "{{ run.job_type }} failed"}}},
            {"locale", "sv"}};
  }

  testing::Host host_;
};

INSTANTIATE_TEST_SUITE_P(Stores, NotificationsApi, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(NotificationsApi, GroupsAndRulesRoundTrip) {
  group("ops", "platform");
  auto r = call("POST", "/groups/ops/rules", webhook_rule());
  ASSERT_EQ(r.status, 201) << r.body;
  const Json rule = json(r);
  const std::string id = rule["id"];
  EXPECT_EQ(r.header("location"), "/api/v1/notifications/rules/" + id);
  EXPECT_EQ(rule["group_id"], "ops");
  EXPECT_EQ(rule["locale"], "sv");
  EXPECT_EQ(rule["events"], Json({"run.failed", "alert.*"}));
  EXPECT_EQ(r.body.find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string::npos) << "a secret is never shown";

  r = call("GET", "/groups/ops");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json(r)["rules"].size(), 1u);
  EXPECT_EQ(json(r)["rules"][0]["id"], id);

  // Replaced with the options as shown: the stored secret is kept.
  Json changed = json(call("GET", "/rules/" + id));
  changed["enabled"] = false;
  changed["events"] = {"run.*"};
  r = call("PUT", "/rules/" + id, changed);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["enabled"], false);
  const auto stored = host_.store_rows("SELECT doc FROM p_notifications_rules WHERE id = '" + id + "'");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_NE(stored[0][0]->find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string::npos) << *stored[0][0];

  r = call("PATCH", "/groups/ops", {{"description", "night shift"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["description"], "night shift");

  r = call("DELETE", "/groups/ops");
  EXPECT_EQ(r.status, 409) << "a group with rules is kept: " << r.body;
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  EXPECT_EQ(call("DELETE", "/rules/" + id).status, 204);
  EXPECT_EQ(call("GET", "/rules/" + id).status, 404);
  EXPECT_EQ(call("DELETE", "/groups/ops").status, 204);
  EXPECT_EQ(call("GET", "/groups/ops").status, 404);

  std::vector<std::string> actions;
  for (const auto& a : host_.audit_rows()) actions.push_back(a.action);
  EXPECT_EQ(actions, (std::vector<std::string>{"notifications.group.create", "notifications.rule.create",
                                               "notifications.rule.update", "notifications.group.update",
                                               "notifications.rule.delete", "notifications.group.delete"}));
  const auto rows = host_.audit_rows();
  const Json before = Json::parse(rows[2].before_json), after = Json::parse(rows[2].after_json);
  EXPECT_EQ(before["enabled"], true);
  EXPECT_EQ(after["enabled"], false);
  EXPECT_EQ(rows[2].user_id, "admin");
  EXPECT_EQ(rows[2].after_json.find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string::npos);
}

TEST_P(NotificationsApi, OperatorsSeeAndChangeOnlyTheirScope) {
  group("platform-ops", "platform");
  group("d1", "distributor:d1", kDistributor);
  group("acme", "tenant:acme", kAcme);
  group("beta", "tenant:beta", kBeta);

  auto ids = [&](const Principal& who) {
    std::vector<std::string> out;
    const auto r = call("GET", "/groups", nullptr, who);
    EXPECT_EQ(r.status, 200) << r.body;
    const Json doc = json(r);
    for (const auto& g : doc["groups"]) out.push_back(g["id"]);
    return out;
  };
  EXPECT_EQ(ids(kAdmin), (std::vector<std::string>{"acme", "beta", "d1", "platform-ops"}));
  EXPECT_EQ(ids(kDistributor), (std::vector<std::string>{"acme", "beta", "d1"}));
  EXPECT_EQ(ids(kAcme), (std::vector<std::string>{"acme"}));
  EXPECT_EQ(ids(kViewer), (std::vector<std::string>{"acme"}));

  // Another tenant's group answers like one that does not exist.
  EXPECT_EQ(call("GET", "/groups/beta", nullptr, kAcme).status, 404);
  EXPECT_EQ(call("PATCH", "/groups/beta", {{"name", "mine"}}, kAcme).status, 404);
  EXPECT_EQ(call("DELETE", "/groups/platform-ops", nullptr, kDistributor).status, 404);
  EXPECT_EQ(call("POST", "/groups/beta/rules", webhook_rule(), kAcme).status, 404);

  // A group outside one's node, or on a node that does not exist, is
  // refused in the same words.
  auto r = call("POST", "/groups", {{"id", "x"}, {"name", "X"}, {"scope", "tenant:beta"}}, kAcme);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(json(r)["detail"], "scope: no node 'tenant:beta' in your scope");
  r = call("POST", "/groups", {{"id", "x"}, {"name", "X"}, {"scope", "tenant:nobody"}}, kAcme);
  EXPECT_EQ(json(r)["detail"], "scope: no node 'tenant:nobody' in your scope");
  r = call("PATCH", "/groups/acme", {{"scope", "distributor:d1"}}, kAcme);
  EXPECT_EQ(r.status, 422) << "a tenant cannot lift its group above itself: " << r.body;

  // A rule's filter stays inside its group.
  Json narrow = webhook_rule();
  narrow["filter"]["scope"] = "tenant:beta";
  r = call("POST", "/groups/d1/rules", narrow, kDistributor);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = json(r)["id"];
  narrow["filter"]["scope"] = "tenant:acme";
  r = call("POST", "/groups/acme/rules", narrow, kAcme);
  ASSERT_EQ(r.status, 201) << r.body;
  narrow["filter"]["scope"] = "distributor:d1";
  r = call("POST", "/groups/acme/rules", narrow, kDistributor);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(json(r)["detail"], "filter.scope: 'distributor:d1' is not inside the group's scope 'tenant:acme'");
  r = call("PATCH", "/groups/d1", {{"scope", "tenant:acme"}}, kDistributor);
  EXPECT_EQ(r.status, 409) << "its rule filters on tenant:beta: " << r.body;

  EXPECT_EQ(call("GET", "/rules/" + id, nullptr, kAcme).status, 404);
  EXPECT_EQ(call("GET", "/rules/" + id, nullptr, kDistributor).status, 200);

  // Reading is not managing.
  r = call("POST", "/groups", {{"id", "v"}, {"name", "V"}, {"scope", "tenant:acme"}}, kViewer);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(call("GET", "/groups/acme", nullptr, kViewer).status, 200);
  EXPECT_EQ(call("GET", "/groups", nullptr, Principal{"nobody", "TenantUser", "tenant:beta"}).status, 200);
}

TEST_P(NotificationsApi, BadBodiesAreNamed) {
  group("ops", "platform");
  struct Case {
    const char* method;
    std::string path;
    std::string body;
    int status;
    std::string detail_starts;
  };
  Json bad_url = webhook_rule();
  bad_url["recipients"] = {"ftp://example.com/x"};
  Json bad_secret = webhook_rule();
  bad_secret["recipients"][0]["options"]["secrets"] = {"whsec_short"};
  Json bad_mail = webhook_rule();
  bad_mail["channel"] = "email";
  bad_mail["recipients"] = {"ops@example.com", "not an address"};
  Json unknown = webhook_rule();
  unknown["channel"] = "pager";
  Json bad_template = webhook_rule();
  bad_template["template"] = {{"subject", "fine"}, {"body", "Hello\n  {{ run.id"}};
  const std::vector<Case> cases = {
      {"POST", "/groups", "{", 400, "request: the body is not valid JSON"},
      {"POST", "/groups", "[]", 400, "request: the body must be a JSON object"},
      {"POST", "/groups", R"({"name":"x","scope":"platform"})", 422, "id: is required"},
      {"POST", "/groups", R"({"id":"Bad Id","name":"x","scope":"platform"})", 422, "id: must be lower-case"},
      {"POST", "/groups", R"({"id":"ops","name":"x","scope":"platform"})", 409, "id: a group 'ops' exists already"},
      {"POST", "/groups", R"({"id":"y","name":"","scope":"platform"})", 422, "name: must not be empty"},
      {"POST", "/groups", R"({"id":"y","name":"x","scope":"platform","colour":1})", 422, "colour: is not a field"},
      {"PATCH", "/groups/ops", R"({"id":"other"})", 422, "id: cannot be changed"},
      {"POST", "/groups/ops/rules", R"({"events":[],"channel":"email","recipients":["a@b.se"]})", 422,
       "events: must name at least one"},
      {"POST", "/groups/ops/rules", bad_url.dump(), 422, "recipients[0]: "},
      {"POST", "/groups/ops/rules", bad_secret.dump(), 422, "recipients[0]: "},
      {"POST", "/groups/ops/rules", bad_mail.dump(), 422, "recipients[1]: "},
      {"POST", "/groups/ops/rules", unknown.dump(), 422, "channel: no notification channel 'pager'"},
      {"POST", "/groups/ops/rules", bad_template.dump(), 422, "template.body: line 2, column "},
      {"POST", "/groups/nope/rules", webhook_rule().dump(), 404, "no notification group 'nope'"},
      {"GET", "/deliveries?state=lost", "", 400, "state: must be pending, sending"},
      {"GET", "/deliveries?limit=0", "", 400, "limit: must be a whole number from 1 to 500"},
      {"GET", "/deliveries?cursor=abc", "", 400, "cursor: not a cursor this API gave"},
  };
  for (const auto& c : cases) {
    const auto r = host_.request(c.method, "/api/v1/notifications" + c.path, c.body, kAdmin,
                                 {{"content-type", "application/json"}});
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << ": " << r.body;
    EXPECT_EQ(r.header("content-type"), "application/problem+json") << c.path;
    const Json doc = json(r);
    const std::string detail = doc.is_object() ? doc.value("detail", "") : "";
    EXPECT_EQ(detail.rfind(c.detail_starts, 0), 0u) << c.path << " " << c.body << ": " << detail;
  }
  // A refused template names its line and column in the answer's errors too.
  const auto r = call("POST", "/groups/ops/rules", bad_template);
  const Json errors = json(r)["errors"];
  ASSERT_EQ(errors.size(), 1u) << r.body;
  EXPECT_EQ(errors[0]["field"], "template.body");
  EXPECT_EQ(errors[0]["line"], 2);
  EXPECT_GT(errors[0]["column"].get<int>(), 0);
}

TEST_P(NotificationsApi, TemplateCheck) {
  auto r = call("POST", "/templates/check", {{"subject", "{{ run.id }}"}, {"body", "Run {{ run.status }}"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["ok"], true);
  r = call("POST", "/templates/check", {{"subject", "x {{ y"}, {"body", "fine"}, {"html_body", "a\nb\n{{ c"}});
  ASSERT_EQ(r.status, 422) << r.body;
  const Json errors = json(r)["errors"];
  ASSERT_EQ(errors.size(), 2u) << r.body;
  EXPECT_EQ(errors[0]["field"], "subject");
  EXPECT_EQ(errors[0]["line"], 1);
  EXPECT_EQ(errors[1]["field"], "html_body");
  EXPECT_EQ(errors[1]["line"], 3);
  EXPECT_EQ(json(r)["detail"].get<std::string>().rfind("subject: line 1, column ", 0), 0u) << r.body;
  r = call("POST", "/templates/check", {{"footer", "x"}});
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(json(r)["detail"], "footer: is not a template part (subject, body, html_body)");
}

TEST_P(NotificationsApi, DeliveriesAreEmptyAndScopedWithoutAnOutbox) {
  // The test host's event log takes emits only: the outbox does not run, and says so.
  bool said = false;
  for (const auto& l : host_.log_lines()) said |= l.text.find("the outbox does not run") != std::string::npos;
  EXPECT_TRUE(said);
  auto r = call("GET", "/deliveries");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(json(r)["deliveries"].empty());
  EXPECT_TRUE(json(r)["next_cursor"].is_null());
  EXPECT_EQ(call("GET", "/deliveries/msg_0000", nullptr, kAcme).status, 404);
  EXPECT_EQ(call("GET", "/endpoints", nullptr, kAcme).status, 403);
  EXPECT_EQ(call("GET", "/endpoints").status, 200);
}

// The outbox as the API and opskernel.notifications/1 show it, over
// deliveries written straight into the plugin's table (the test host has no
// event log to make them from).
class NotificationsOutbox : public NotificationsApi {
 protected:
  void SetUp() override {
    NotificationsApi::SetUp();
    const Status s = host_.load(std::string(OPK_TEST_PLUGIN_DIR) + "/notifications_inbox_probe.so");
    ASSERT_TRUE(s) << s.message();
    // Newest last: d1 .. d7.
    add("d1", "tenant:acme", "dead", 1);
    add("d2", "tenant:acme", "failed", 2);
    add("d3", "tenant:acme", "delivered", 3);
    add("d4", "tenant:acme", "pending", 4);
    add("d5", "tenant:beta", "dead", 5);
    add("d6", "tenant:beta", "delivered", 6);
    add("d7", "platform", "dead", 7);
    host_.store_rows(
        "INSERT INTO p_notifications_attempts (delivery_id, attempt, time_ms, outcome, code, latency_ms, detail) "
        "VALUES ('msg_d1', 1, 1000, 'failed', 503, 12, 'HTTP 503 Service Unavailable')");
  }

  void add(const std::string& id, const std::string& scope, const std::string& state, int64_t n) {
    host_.store_rows(
        "INSERT INTO p_notifications_deliveries (id, rule_id, group_id, scope, event_seq, event_kind, event_subject, "
        "channel, recipient, endpoint, message, state, attempts, next_attempt_ms, lease_until_ms, lease_owner, "
        "created_ms, updated_ms, last_code, last_detail, render_error) VALUES ('msg_" +
        id + "', 'rule-x', 'g', '" + scope + "', " + std::to_string(n) + ", 'run.failed', 'run:" + std::to_string(n) +
        "', 'webhook', 'https://x/h', 'ep_x', '{\"subject\":\"s\",\"body\":\"b\",\"options\":{\"secrets\":"
        "[\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]}}', '" +
        state + "', 1, " + (state == "pending" ? "99999999999999" : "0") + ", 0, '', " + std::to_string(n * 1000) +
        ", " + std::to_string(n * 1000) + ", NULL, '', '')");
  }

  std::vector<std::string> ids(const std::string& query, const Principal& who) {
    std::vector<std::string> out;
    const auto r = call("GET", "/deliveries" + query, nullptr, who);
    EXPECT_EQ(r.status, 200) << r.body;
    const Json doc = json(r);
    for (const auto& d : doc["deliveries"]) out.push_back(d["id"].get<std::string>().substr(4));
    return out;
  }

  // Calls opskernel.notifications/1 through the probe as `who`.
  Json ext(const std::string& op, const Json& request, const Principal& who = kAdmin) {
    const auto r =
        host_.request("POST", "/api/v1/inbox-probe/" + op, request.dump(), who, {{"content-type", "application/json"}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json(r);
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, NotificationsOutbox, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(NotificationsOutbox, DeliveriesAreScopedFilteredAndPaged) {
  using V = std::vector<std::string>;
  EXPECT_EQ(ids("", kAdmin), (V{"d7", "d6", "d5", "d4", "d3", "d2", "d1"}));
  EXPECT_EQ(ids("", kDistributor), (V{"d6", "d5", "d4", "d3", "d2", "d1"}));
  EXPECT_EQ(ids("", kAcme), (V{"d4", "d3", "d2", "d1"}));
  EXPECT_EQ(ids("", kViewer), (V{"d4", "d3", "d2", "d1"}));
  EXPECT_EQ(ids("?state=dead", kAcme), (V{"d1"}));
  EXPECT_EQ(ids("?state=dead", kAdmin), (V{"d7", "d5", "d1"}));
  EXPECT_EQ(ids("?since_ms=3000&until_ms=6000", kAdmin), (V{"d5", "d4", "d3"}));
  EXPECT_TRUE(ids("?channel=email", kAdmin).empty());

  // Pages of two, followed by their cursors, give each once.
  V paged;
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    const auto r = call("GET", "/deliveries?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), nullptr, kAcme);
    ASSERT_EQ(r.status, 200) << r.body;
    const Json doc = json(r);
    for (const auto& d : doc["deliveries"]) paged.push_back(d["id"].get<std::string>().substr(4));
    if (doc["next_cursor"].is_null()) break;
    cursor = doc["next_cursor"];
  }
  EXPECT_EQ(paged, (V{"d4", "d3", "d2", "d1"}));

  auto r = call("GET", "/deliveries/msg_d1", nullptr, kAcme);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json d1 = json(r);
  ASSERT_EQ(d1["attempts"].size(), 1u);
  EXPECT_EQ(d1["attempts"][0]["code"], 503);
  EXPECT_EQ(d1["message"]["subject"], "s");
  EXPECT_EQ(r.body.find("whsec_"), std::string::npos) << "options never leave the store";
  EXPECT_EQ(call("GET", "/deliveries/msg_d5", nullptr, kAcme).status, 404);
}

TEST_P(NotificationsOutbox, ReplayThroughTheApi) {
  auto r = call("POST", "/deliveries/msg_d1/replay", nullptr, kAcme);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(json(r)["state"], "pending");
  EXPECT_EQ(call("POST", "/deliveries/msg_d3/replay", nullptr, kAcme).status, 409) << "delivered stays delivered";
  EXPECT_EQ(call("POST", "/deliveries/msg_d5/replay", nullptr, kAcme).status, 404);
  EXPECT_EQ(call("POST", "/deliveries/msg_d2/replay", nullptr, kViewer).status, 403);
  const auto rows = host_.audit_rows();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().action, "notifications.delivery.replay");
  EXPECT_EQ(rows.back().target, "delivery:msg_d1");
  EXPECT_EQ(rows.back().user_id, "alice");
}

TEST_P(NotificationsOutbox, TheExtensionListsAndReplaysFailures) {
  auto list = [&](const Principal& who, const Json& rq = Json::object()) {
    std::vector<std::string> out;
    const Json doc = ext("list_failed", rq, who);
    EXPECT_EQ(doc["status"], OPK_OK) << doc.dump();
    for (const auto& d : doc["answer"]["deliveries"]) out.push_back(d["id"].get<std::string>().substr(4));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(list(kAdmin), (V{"d7", "d5", "d2", "d1"}));
  EXPECT_EQ(list(kAcme), (V{"d2", "d1"}));
  EXPECT_EQ(list(kAdmin, {{"state", "failed"}}), (V{"d2"}));
  EXPECT_EQ(list(kAdmin, {{"limit", 2}}), (V{"d7", "d5"}));

  Json doc = ext("get", {{"id", "msg_d1"}}, kAcme);
  EXPECT_EQ(doc["answer"]["delivery"]["attempts"].size(), 1u) << doc.dump();
  EXPECT_EQ(ext("get", {{"id", "msg_d5"}}, kAcme)["status"], OPK_ERR_NOT_FOUND);

  // All or none: one delivery outside the caller's scope refuses the lot.
  doc = ext("replay", {{"ids", {"msg_d1", "msg_d5"}}}, kAcme);
  EXPECT_EQ(doc["status"], OPK_ERR_NOT_FOUND) << doc.dump();
  EXPECT_EQ(doc["answer"]["error"], "ids[1]: no delivery 'msg_d5'");
  EXPECT_EQ(list(kAcme), (V{"d2", "d1"}));
  doc = ext("replay", {{"ids", {"msg_d3"}}}, kAcme);
  EXPECT_EQ(doc["status"], OPK_ERR_CONFLICT) << doc.dump();
  EXPECT_EQ(ext("replay", {{"ids", {"msg_d1"}}}, kViewer)["status"], OPK_ERR_PERMISSION);
  EXPECT_EQ(ext("explode", Json::object())["status"], OPK_ERR_UNSUPPORTED);
  EXPECT_EQ(ext("list_failed", {{"colour", 1}})["answer"]["error"], "colour: is not a field of list_failed");

  doc = ext("replay", {{"ids", {"msg_d1", "msg_d2"}}}, kAcme);
  ASSERT_EQ(doc["status"], OPK_OK) << doc.dump();
  EXPECT_EQ(doc["answer"]["replayed"], Json({"msg_d1", "msg_d2"}));
  EXPECT_TRUE(list(kAcme).empty()) << "both are pending again";
  EXPECT_EQ(ids("?state=pending", kAcme), (V{"d4", "d2", "d1"}));
}

TEST_P(NotificationsOutbox, HandledFailuresLeaveTheOpenInbox) {
  using V = std::vector<std::string>;
  auto list = [&](const Json& rq, const Principal& who = kAdmin) {
    V out;
    const Json doc = ext("list_failed", rq, who);
    EXPECT_EQ(doc["status"], OPK_OK) << doc.dump();
    for (const auto& d : doc["answer"]["deliveries"]) out.push_back(d["id"].get<std::string>().substr(4));
    return out;
  };
  auto counts = [&](const Principal& who) { return ext("counts", Json::object(), who)["answer"]; };
  EXPECT_EQ(counts(kAdmin), (Json{{"open", 4}, {"handled", 0}, {"suppressed_endpoints", 0}}));
  EXPECT_EQ(counts(kAcme)["open"], 2);

  Json doc = ext("handle", {{"ids", {"msg_d1"}}, {"note", "customer told"}}, kAcme);
  ASSERT_EQ(doc["status"], OPK_OK) << doc.dump();
  EXPECT_EQ(doc["answer"]["handled"], Json({"msg_d1"}));
  EXPECT_EQ(list(Json::object(), kAcme), (V{"d2"})) << "the open inbox";
  EXPECT_EQ(list({{"handled", true}}, kAcme), (V{"d1"}));
  EXPECT_EQ(list({{"handled", nullptr}}, kAcme), (V{"d2", "d1"}));
  const Json d1 = ext("list_failed", {{"handled", true}}, kAcme)["answer"]["deliveries"][0];
  EXPECT_EQ(d1["handled_by"], "alice");
  EXPECT_TRUE(d1["handled_ms"].is_number()) << d1.dump();
  EXPECT_EQ(counts(kAcme), (Json{{"open", 1}, {"handled", 1}, {"suppressed_endpoints", 0}}));
  EXPECT_EQ(counts(kAdmin)["open"], 3);

  // Filters: the tenant's scope, the endpoint.
  EXPECT_EQ(list({{"scope", "tenant:beta"}}), (V{"d5"}));
  EXPECT_EQ(list({{"scope", "distributor:d1"}}), (V{"d5", "d2"}));
  EXPECT_EQ(list({{"recipient", "https://x/h"}}), (V{"d7", "d5", "d2"}));
  EXPECT_TRUE(list({{"recipient", "https://elsewhere/"}}).empty());

  // Bad input is named.
  EXPECT_EQ(ext("list_failed", {{"scope", "tenant:beta"}}, kAcme)["answer"]["error"],
            "scope: no node 'tenant:beta' in your scope");
  EXPECT_EQ(ext("list_failed", {{"scope", "tenant:nosuch"}})["answer"]["error"],
            "scope: no node 'tenant:nosuch' in your scope");
  EXPECT_EQ(ext("list_failed", {{"since_ms", 5000}, {"until_ms", 4000}})["answer"]["error"],
            "until_ms: must be later than since_ms");
  EXPECT_EQ(ext("list_failed", {{"handled", "yes"}})["answer"]["error"], "handled: must be true, false or null");
  EXPECT_EQ(ext("handle", {{"ids", Json::array()}})["answer"]["error"],
            "ids: is required, an array of 1..500 delivery ids");
  Json many = Json::array();
  for (int i = 0; i < 501; ++i) many.push_back("msg_" + std::to_string(i));
  EXPECT_EQ(ext("handle", {{"ids", many}})["status"], OPK_ERR_INVALID_ARGUMENT);
  doc = ext("handle", {{"ids", {"msg_d2", "msg_nosuch"}}});
  EXPECT_EQ(doc["status"], OPK_ERR_NOT_FOUND);
  EXPECT_EQ(doc["answer"]["error"], "ids[1]: no delivery 'msg_nosuch'");
  EXPECT_EQ(counts(kAdmin)["handled"], 1) << "all or none";
  EXPECT_EQ(ext("handle", {{"ids", {"msg_d3"}}})["status"], OPK_ERR_CONFLICT) << "a delivered one";
  EXPECT_EQ(ext("handle", {{"ids", {"msg_d5"}}}, kAcme)["status"], OPK_ERR_NOT_FOUND) << "another tenant's";
  EXPECT_EQ(ext("handle", {{"ids", {"msg_d2"}}}, kViewer)["status"], OPK_ERR_PERMISSION);

  // A replay clears the mark.
  ASSERT_EQ(ext("replay", {{"ids", {"msg_d1"}}}, kAcme)["status"], OPK_OK);
  EXPECT_EQ(counts(kAcme), (Json{{"open", 1}, {"handled", 0}, {"suppressed_endpoints", 0}}));
  bool audited = false;
  for (const auto& row : host_.audit_rows())
    audited |=
        row.action == "notifications.delivery.handle" && row.target == "delivery:msg_d1" && row.user_id == "alice";
  EXPECT_TRUE(audited);
}

TEST_P(NotificationsOutbox, SuppressionsBelongToTheirScope) {
  Json doc = ext("suppress", {{"channel", "webhook"}, {"recipient", "https://x/h"}, {"reason", "maintenance"}}, kAcme);
  ASSERT_EQ(doc["status"], OPK_OK) << doc.dump();
  const Json sup = doc["answer"]["suppression"];
  EXPECT_EQ(sup["scope"], "tenant:acme");
  EXPECT_EQ(sup["created_by"], "alice");
  EXPECT_EQ(sup["reason"], "maintenance");
  EXPECT_TRUE(sup["until_ms"].is_null());
  const std::string id = sup["id"];
  EXPECT_EQ(ext("suppress", {{"channel", "webhook"}, {"recipient", "https://x/h"}}, kAcme)["status"], OPK_ERR_CONFLICT)
      << "once per endpoint and scope";
  EXPECT_EQ(ext("counts", Json::object(), kAcme)["answer"]["suppressed_endpoints"], 1);
  EXPECT_EQ(ext("counts", Json::object(), kBeta)["answer"]["suppressed_endpoints"], 0);
  EXPECT_EQ(ext("counts", Json::object(), kAdmin)["answer"]["suppressed_endpoints"], 1);
  EXPECT_EQ(ext("suppressions", Json::object(), kBeta)["answer"]["suppressions"].size(), 0u);
  EXPECT_EQ(ext("suppressions", Json::object(), kDistributor)["answer"]["suppressions"].size(), 1u);

  // Bad input is named.
  EXPECT_EQ(ext("suppress", {{"recipient", "https://x/h"}})["answer"]["error"],
            "channel: is required, a channel id such as webhook");
  EXPECT_EQ(ext("suppress", {{"channel", "webhook"}})["answer"]["error"],
            "recipient: is required, the endpoint's URL or address");
  EXPECT_EQ(ext("suppress", {{"channel", "webhook"}, {"recipient", "https://y/"}, {"until_ms", 1}})["answer"]["error"],
            "until_ms: must be in the future");
  EXPECT_EQ(ext("suppress", {{"channel", "webhook"}, {"recipient", "https://y/"}, {"scope", "tenant:beta"}},
                kAcme)["answer"]["error"],
            "scope: no node 'tenant:beta' in your scope");
  EXPECT_EQ(ext("suppress", {{"channel", "webhook"}, {"recipient", "https://y/"}}, kViewer)["status"],
            OPK_ERR_PERMISSION);

  EXPECT_EQ(ext("lift", {{"id", id}}, kBeta)["status"], OPK_ERR_NOT_FOUND) << "another tenant's";
  doc = ext("lift", {{"id", id}}, kAcme);
  ASSERT_EQ(doc["status"], OPK_OK) << doc.dump();
  EXPECT_EQ(doc["answer"]["suppression"]["lifted_by"], "alice");
  EXPECT_EQ(ext("lift", {{"id", id}}, kAcme)["status"], OPK_ERR_CONFLICT);
  EXPECT_EQ(ext("lift", {{"id", "sup_nosuch"}})["status"], OPK_ERR_NOT_FOUND);
  EXPECT_EQ(ext("suppressions", Json::object(), kAcme)["answer"]["suppressions"].size(), 0u);
  std::set<std::string> actions;
  for (const auto& row : host_.audit_rows()) actions.insert(row.action);
  EXPECT_TRUE(actions.count("notifications.suppression.create"));
  EXPECT_TRUE(actions.count("notifications.suppression.lift"));
}

}  // namespace
}  // namespace opk::test
