// The webhook failures inbox in a real kernel (admin-http, hello,
// channel-webhook, notifications, webhook-inbox) delivering to the Standard
// Webhooks receiver (tests/support/webhook-receiver), which fails and then
// recovers: a delivery that dies appears in the inbox and a replay brings it
// with the same webhook-id; handled failures leave the open inbox; a
// suppressed endpoint gets no attempt and makes no failure until it is
// lifted; tenant operators see and change only their own failures; every
// write is audited; /metrics shows the gauges (and passes promtool); the
// threshold alert opens and closes; bad input is named.
#include <unistd.h>

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "clock/clock.h"
#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"
#include "support/servers.h"
#include "support/webhook_kernel.h"

namespace opk {
namespace {

using Json = nlohmann::json;

// On both stores: the embedded SQLite file and a fresh PostgreSQL database
// (the plugins' tables and statements unchanged).
class WebhookInbox : public test::WebhookKernelTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        set_up({test::bundled("admin-http"), test::bundled("hello"), test::bundled("channel-webhook"),
                test::bundled("notifications"), test::bundled("webhook-inbox")}));
    cfg_.permissions["TenantAdministrator"] = {"jobs.read", "webhook_failures.read", "webhook_failures.manage"};
    cfg_.permissions["TenantUser"] = {"jobs.read", "webhook_failures.read"};
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg_);
    ASSERT_TRUE(e.empty()) << e;
  }
  test::PgDatabase db_;

  test::Reply http(const std::string& method, const std::string& target, const Json& body = nullptr,
                   const std::string& token = "") {
    return test::http_request(port_, method, target, token.empty() ? admin_ : token, body.is_null() ? "" : body.dump());
  }
  test::Reply inbox(const std::string& method, const std::string& target, const Json& body = nullptr,
                    const std::string& token = "") {
    return http(method, "/api/v1/webhook-failures" + target, body, token);
  }
  static Json json(const test::Reply& r) { return Json::parse(r.body, nullptr, false); }

  // Group `id` at `scope` (made once) with one rule sending failed runs to
  // the receiver's `path`.
  void rule(const std::string& path, const std::string& group = "ops", const std::string& scope = "platform") {
    auto r = http("POST", "/api/v1/notifications/groups", {{"id", group}, {"name", group}, {"scope", scope}});
    ASSERT_TRUE(r.status == 201 || r.status == 409) << r.body;
    r = http("POST", "/api/v1/notifications/groups/" + group + "/rules",
             {{"events", {"run.failed"}},
              {"channel", "webhook"},
              {"recipients", {{{"to", url(path)}, {"options", {{"secrets", {kSecret}}}}}}}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  void fail_a_run() {
    const auto v = test::run_and_wait(*kernel_, test::manual("hello", R"({"fail": true, "steps": 1, "step_ms": 1})"));
    EXPECT_EQ(v.row.outcome, store::kError);
  }

  // The inbox's failures for `query`, newest first.
  Json failures(const std::string& query = "", const std::string& token = "") {
    auto r = inbox("GET", query, nullptr, token);
    EXPECT_EQ(r.status, 200) << r.body;
    return json(r).value("failures", Json::array());
  }

  // The outbox's deliveries (the notifications API), newest first.
  Json deliveries() {
    auto r = http("GET", "/api/v1/notifications/deliveries");
    EXPECT_EQ(r.status, 200) << r.body;
    return json(r).value("deliveries", Json::array());
  }

  std::vector<Json> audit(const std::string& action) {
    auto r = http("GET", "/api/v1/audit?action=" + action + "&limit=100");
    EXPECT_EQ(r.status, 200) << r.body;
    const Json doc = json(r);
    std::vector<Json> out;
    for (const auto& row : doc.value("items", Json::array())) out.push_back(row);
    return out;
  }

  // Waits for `n` failures in the open inbox.
  void wait_open(size_t n) {
    ASSERT_TRUE(eventually([&] { return failures().size() == n; })) << failures().dump() << deliveries().dump();
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, WebhookInbox, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(WebhookInbox, ADeadDeliveryIsReplayedWithTheSameId) {
  start();
  rule("/flaky/4");  // fails the schedule's four attempts, then recovers
  fail_a_run();
  wait_open(1);
  const Json f = failures()[0];
  EXPECT_EQ(f["state"], "dead");
  EXPECT_EQ(f["endpoint"], url("/flaky/4"));
  EXPECT_EQ(f["attempts"], 4);
  EXPECT_TRUE(f["handled_by"].is_null());
  const std::string id = f["id"];
  ASSERT_EQ(received(requests_).size(), 4u);
  auto r = inbox("GET", "/" + id);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json(r)["failure"]["attempts"].size(), 4u) << r.body;
  EXPECT_EQ(json(r)["failure"]["attempts"][3]["code"], 500);
  EXPECT_EQ(json(inbox("GET", "/counts")), (Json{{"open", 1}, {"handled", 0}, {"suppressed_endpoints", 0}}));

  r = inbox("POST", "/replay", {{"ids", {id}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["replayed"], Json({id}));
  ASSERT_TRUE(eventually([&] { return received(requests_).size() == 5; })) << receiver_.errors();
  const Json last = received(requests_).back();
  EXPECT_EQ(last["headers"]["webhook-id"], id) << "the same id: the receiver can drop a repeat";
  EXPECT_EQ(last["verified"], Json({true}));
  ASSERT_TRUE(eventually([&] { return deliveries()[0]["state"] == "delivered"; })) << deliveries().dump();
  EXPECT_TRUE(failures("?handled=all").empty()) << "delivered: out of the inbox";
  const auto rows = audit("webhook_failures.replay");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["actor"], "pat") << rows[0].dump();
  EXPECT_EQ(audit("notifications.delivery.replay").size(), 1u) << "and the outbox's row of the delivery";
  EXPECT_EQ(inbox("POST", "/replay", {{"ids", {id}}}).status, 409) << "a delivered one is not replayed";
}

TEST_P(WebhookInbox, HandledFailuresLeaveTheOpenInbox) {
  start();
  rule("/status/503");
  fail_a_run();
  fail_a_run();
  wait_open(2);
  const std::string first = failures()[1]["id"];
  auto r = inbox("POST", "/handle", {{"ids", {first}}, {"note", "the customer resent it"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["handled"], Json({first}));
  ASSERT_EQ(failures().size(), 1u);
  EXPECT_NE(failures()[0]["id"], first);
  const Json handled = failures("?handled=true");
  ASSERT_EQ(handled.size(), 1u);
  EXPECT_EQ(handled[0]["handled_by"], "pat");
  EXPECT_EQ(handled[0]["handled_note"], "the customer resent it");
  EXPECT_TRUE(handled[0]["handled_ms"].is_number());
  EXPECT_EQ(failures("?handled=all").size(), 2u);
  EXPECT_EQ(json(inbox("GET", "/counts")), (Json{{"open", 1}, {"handled", 1}, {"suppressed_endpoints", 0}}));
  const auto rows = audit("webhook_failures.handle");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["actor"], "pat");
  EXPECT_EQ(rows[0]["reason"], "the customer resent it");
}

TEST_P(WebhookInbox, ASuppressedEndpointGetsNoAttemptUntilLifted) {
  start();
  rule("/hook");
  auto r =
      inbox("POST", "/suppressions", {{"channel", "webhook"}, {"endpoint", url("/hook")}, {"reason", "migration"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const Json sup = json(r)["suppression"];
  EXPECT_EQ(sup["endpoint"], url("/hook"));
  EXPECT_EQ(sup["scope"], "platform");
  EXPECT_EQ(sup["created_by"], "pat");
  const std::string sid = sup["id"];
  EXPECT_EQ(inbox("POST", "/suppressions", {{"channel", "webhook"}, {"endpoint", url("/hook")}}).status, 409);
  fail_a_run();
  fail_a_run();
  ASSERT_TRUE(eventually([&] {
    const Json d = deliveries();
    return d.size() == 2 && d[0]["state"] == "suppressed" && d[1]["state"] == "suppressed";
  })) << deliveries().dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the schedule would have ended by now
  EXPECT_TRUE(received(requests_).empty()) << "no attempt while suppressed";
  EXPECT_TRUE(failures("?handled=all").empty()) << "no inbox entry while suppressed";
  EXPECT_EQ(deliveries()[0]["attempts"], 0);
  EXPECT_EQ(json(inbox("GET", "/counts"))["suppressed_endpoints"], 1);
  r = inbox("GET", "/suppressions");
  ASSERT_EQ(json(r)["suppressions"].size(), 1u) << r.body;

  r = inbox("DELETE", "/suppressions/" + sid);
  ASSERT_EQ(r.status, 204) << r.body;
  ASSERT_TRUE(eventually([&] { return received(requests_).size() == 2; })) << receiver_.errors();
  std::set<std::string> ids;
  for (const auto& g : received(requests_)) ids.insert(g["headers"]["webhook-id"].get<std::string>());
  EXPECT_EQ(ids, (std::set<std::string>{deliveries()[0]["id"], deliveries()[1]["id"]}));
  EXPECT_EQ(inbox("DELETE", "/suppressions/" + sid).status, 409) << "lifted already";
  EXPECT_EQ(inbox("DELETE", "/suppressions/sup_nosuch").status, 404);
  EXPECT_TRUE(json(inbox("GET", "/suppressions"))["suppressions"].empty());
  EXPECT_EQ(audit("webhook_failures.suppress").size(), 1u);
  EXPECT_EQ(audit("webhook_failures.lift").size(), 1u);
}

TEST_P(WebhookInbox, AnAttemptUnderWayWhenSuppressedIsHeldInsteadOfFailing) {
  // One attempt with a 500 ms limit to a receiver that answers after 3 s:
  // it would die into the inbox.
  cfg_.plugins["notifications"]["retry_schedule"] = "0";
  cfg_.plugins["notifications"]["timeout"] = "500ms";
  start();
  rule("/sleep/3000");
  fail_a_run();
  ASSERT_TRUE(eventually([&] { return received(requests_).size() == 1; })) << "the attempt is under way";
  auto r = inbox("POST", "/suppressions", {{"channel", "webhook"}, {"endpoint", url("/sleep/3000")}});
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(eventually([&] { return deliveries()[0]["state"] == "suppressed"; })) << deliveries().dump();
  EXPECT_EQ(deliveries()[0]["attempts"], 1) << "the attempt is kept";
  EXPECT_TRUE(failures("?handled=all").empty()) << "held, not in the inbox";
  // Lifted, it goes again; with the schedule spent it dies into the inbox.
  ASSERT_EQ(inbox("DELETE", "/suppressions/" + json(r)["suppression"]["id"].get<std::string>()).status, 204);
  ASSERT_TRUE(eventually([&] { return received(requests_).size() == 2; }));
  wait_open(1);
  EXPECT_EQ(failures()[0]["state"], "dead");
}

TEST_P(WebhookInbox, ASuppressionEndsAtItsUntil) {
  start();
  rule("/hook");
  const int64_t until = clock::now_ms() + 1500;
  auto r = inbox("POST", "/suppressions", {{"channel", "webhook"}, {"endpoint", url("/hook")}, {"until_ms", until}});
  ASSERT_EQ(r.status, 201) << r.body;
  fail_a_run();
  ASSERT_TRUE(eventually([&] { return deliveries().size() == 1 && deliveries()[0]["state"] == "suppressed"; }));
  ASSERT_TRUE(eventually([&] { return received(requests_).size() == 1; })) << "sent once the suppression ended";
  EXPECT_GE(received(requests_)[0]["time_ms"].get<int64_t>(), until);
}

TEST_P(WebhookInbox, TenantOperatorsSeeAndChangeOnlyTheirOwnFailures) {
  start();
  auto* id = kernel_->identity();
  ASSERT_TRUE(id->add_node("distributor:d", "platform", "d"));
  ASSERT_TRUE(id->add_node("partner:p", "distributor:d", "p"));
  for (const char* t : {"tenant:a", "tenant:b"}) ASSERT_TRUE(id->add_node(t, "partner:p", t));
  std::string alice, bob, vera;
  ASSERT_TRUE(id->add_user({"alice", "", "TenantAdministrator", "tenant:a"}));
  ASSERT_TRUE(id->add_user({"bob", "", "TenantAdministrator", "tenant:b"}));
  ASSERT_TRUE(id->add_user({"vera", "", "TenantUser", "tenant:a"}));
  ASSERT_TRUE(id->issue_token("alice", 0, "test", &alice));
  ASSERT_TRUE(id->issue_token("bob", 0, "test", &bob));
  ASSERT_TRUE(id->issue_token("vera", 0, "test", &vera));
  for (const char* t : {"a", "b"}) {
    rule("/status/503?tenant=" + std::string(t), std::string("group-") + t, std::string("tenant:") + t);
    auto r = http("POST", "/api/v1/jobs",
                  {{"id", std::string("job-") + t},
                   {"job_type", "hello"},
                   {"planning", "disabled"},
                   {"scope", std::string("tenant:") + t},
                   {"params", {{"fail", true}, {"steps", 1}, {"step_ms", 1}}}});
    ASSERT_EQ(r.status, 201) << r.body;
    r = http("POST", "/api/v1/jobs/job-" + std::string(t) + "/run", {{"reason", "scope test"}});
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_TRUE(kernel_->engine()->wait(json(r)["run_ids"][0], 20000));
  }
  wait_open(2);
  const Json mine = failures("", alice);
  ASSERT_EQ(mine.size(), 1u) << mine.dump();
  EXPECT_EQ(mine[0]["scope"], "tenant:a");
  const Json theirs = failures("", bob);
  ASSERT_EQ(theirs.size(), 1u);
  const std::string b_id = theirs[0]["id"];
  EXPECT_EQ(inbox("GET", "/" + b_id, nullptr, alice).status, 404) << "another tenant's failure is not there";
  EXPECT_EQ(inbox("POST", "/replay", {{"ids", {b_id}}}, alice).status, 404);
  EXPECT_EQ(inbox("POST", "/handle", {{"ids", {b_id}}}, alice).status, 404);
  EXPECT_EQ(failures("?scope=tenant:a").size(), 1u) << "the platform narrows to one tenant";
  EXPECT_EQ(inbox("GET", "?scope=tenant:b", nullptr, alice).status, 400) << "a scope outside the caller's";
  EXPECT_EQ(json(inbox("GET", "/counts", nullptr, alice))["open"], 1);
  EXPECT_EQ(json(inbox("GET", "/counts"))["open"], 2);
  // A tenant user reads, but may not change.
  EXPECT_EQ(failures("", vera).size(), 1u);
  EXPECT_EQ(inbox("POST", "/handle", {{"ids", {mine[0]["id"]}}}, vera).status, 403);
  // A tenant's suppression holds its own deliveries only.
  auto r = inbox("POST", "/suppressions", {{"channel", "webhook"}, {"endpoint", url("/status/503?tenant=b")}}, alice);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json(r)["suppression"]["scope"], "tenant:a");
  EXPECT_TRUE(json(inbox("GET", "/suppressions", nullptr, bob))["suppressions"].empty());
  EXPECT_EQ(inbox("DELETE", "/suppressions/" + json(r)["suppression"]["id"].get<std::string>(), nullptr, bob).status,
            404);
  r = inbox("POST", "/handle", {{"ids", {mine[0]["id"]}}}, alice);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto rows = audit("webhook_failures.handle");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["actor"], "alice");
}

TEST_P(WebhookInbox, MetricsShowTheGaugesAndTheThresholdAlertOpensAndCloses) {
  cfg_.plugins["webhook-inbox"] = {{"alert_threshold", "1"}};
  start();
  rule("/status/503");
  auto scrape = [&] {
    auto r = http("GET", "/metrics");
    EXPECT_EQ(r.status, 200);
    return r.body;
  };
  // Evaluates alerts.webhook-failures now; its run must end normal.
  auto evaluate = [&] {
    auto r = http("POST", "/api/v1/jobs/alerts.webhook-failures/run", {{"reason", "check the inbox"}});
    ASSERT_EQ(r.status, 202) << r.body;
    const int64_t run = json(r)["run_ids"][0];
    ASSERT_TRUE(kernel_->engine()->wait(run, 20000));
    auto v = http("GET", "/api/v1/runs/" + std::to_string(run));
    EXPECT_EQ(json(v)["run"].value("status", ""), "normal") << v.body;
  };
  auto open_alerts = [&] {
    auto a = http("GET", "/api/v1/alerts?source=webhook-failures&status=open");
    EXPECT_EQ(a.status, 200) << a.body;
    return json(a).value("alerts", Json::array());
  };
  EXPECT_NE(scrape().find("opskernel_webhook_failures{state=\"open\"} 0\n"), std::string::npos) << scrape();
  evaluate();
  EXPECT_TRUE(open_alerts().empty()) << "an empty inbox: nothing to clear, nothing raised";

  fail_a_run();
  fail_a_run();
  wait_open(2);
  auto r = inbox("POST", "/suppressions", {{"channel", "webhook"}, {"endpoint", url("/elsewhere")}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string text = scrape();
  EXPECT_NE(text.find("# TYPE opskernel_webhook_failures gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("opskernel_webhook_failures{state=\"open\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("opskernel_webhook_failures{state=\"handled\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("opskernel_webhook_suppressed_endpoints 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("opskernel_runs{"), std::string::npos) << "the kernel's own metrics are still there";
  if (access("/usr/bin/promtool", X_OK) == 0) {
    const std::string file = scratch_.file("metrics.txt");
    std::ofstream(file) << text;
    const std::string cmd =
        "/usr/bin/promtool check metrics < " + file + " >" + scratch_.file("promtool.out") + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << test::slurp(scratch_.file("promtool.out"));
  }

  evaluate();
  Json alerts = open_alerts();
  ASSERT_EQ(alerts.size(), 1u) << "2 open failures are over the threshold of 1";
  EXPECT_EQ(alerts[0]["severity"], "warning");
  EXPECT_EQ(alerts[0]["scope"], "platform");
  EXPECT_NE(alerts[0]["title"].get<std::string>().find("2 webhook failures"), std::string::npos) << alerts.dump();
  evaluate();
  EXPECT_EQ(open_alerts().size(), 1u) << "one alert, not one per evaluation";

  r = inbox("POST", "/handle", {{"ids", {failures()[0]["id"], failures()[1]["id"]}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(scrape().find("opskernel_webhook_failures{state=\"handled\"} 2\n"), std::string::npos);
  evaluate();
  EXPECT_TRUE(open_alerts().empty()) << "closed once the open inbox is at or under the threshold";
}

TEST_P(WebhookInbox, BadInputIsNamed) {
  start();
  auto detail = [&](const test::Reply& r) { return json(r).value("detail", ""); };
  auto r = inbox("GET", "/msg_nosuch");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(detail(r), "no delivery 'msg_nosuch'");
  r = inbox("POST", "/replay", {{"ids", {"msg_nosuch"}}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(detail(r), "ids[0]: no delivery 'msg_nosuch'");
  r = inbox("POST", "/replay", {{"ids", Json::array()}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r), "ids: is required, an array of 1..500 delivery ids");
  Json many = Json::array();
  for (int i = 0; i < 501; ++i) many.push_back("msg_" + std::to_string(i));
  r = inbox("POST", "/handle", {{"ids", many}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r), "ids: is required, an array of 1..500 delivery ids");
  r = inbox("POST", "/handle", {{"ids", {"msg_x"}}, {"colour", "red"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r), "colour: is not a field of this request");
  r = inbox("GET", "?scope=tenant:nosuch");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r), "scope: no node 'tenant:nosuch' in your scope");
  r = inbox("GET", "?since_ms=2000&until_ms=1000");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r), "until_ms: must be later than since_ms");
  r = inbox("GET", "?since_ms=yesterday");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r).rfind("since_ms: must be a whole number", 0), 0u) << detail(r);
  r = inbox("GET", "?handled=maybe");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r), "handled: must be false, true or all, not 'maybe'");
  EXPECT_EQ(inbox("GET", "?limit=0").status, 400);
  r = inbox("POST", "/suppressions", {{"channel", "webhook"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(detail(r), "endpoint: is required, the endpoint's URL or address");
  r = inbox("POST", "/suppressions", {{"channel", "webhook"}, {"endpoint", url("/x")}, {"until_ms", 5}});
  EXPECT_EQ(detail(r), "until_ms: must be in the future");
  r = inbox("POST", "/replay");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["title"], "Bad Request");
  EXPECT_EQ(test::http_request(port_, "GET", "/api/v1/webhook-failures").status, 401);
}

TEST_P(WebhookInbox, TheRoutesAreInTheOpenApiDocument) {
  start();
  const auto r = test::http_request(port_, "GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  const Json paths = json(r)["paths"];
  ASSERT_TRUE(paths.contains("/api/v1/webhook-failures")) << r.body.substr(0, 400);
  EXPECT_EQ(paths["/api/v1/webhook-failures"]["get"]["x-permission"], "webhook_failures.read");
  EXPECT_EQ(paths["/api/v1/webhook-failures/replay"]["post"]["x-permission"], "webhook_failures.manage");
  EXPECT_EQ(paths["/api/v1/webhook-failures/suppressions/{id}"]["delete"]["x-permission"], "webhook_failures.manage");
  EXPECT_EQ(paths["/api/v1/webhook-failures/{id}"]["get"]["tags"], Json({"webhook-inbox/webhook-inbox"}));
  for (const char* path :
       {"/api/v1/webhook-failures/counts", "/api/v1/webhook-failures/handle", "/api/v1/webhook-failures/suppressions"})
    EXPECT_TRUE(paths.contains(path)) << path;
  // With these routes in it the document still passes the admin API's
  // linter (tests/plugins/admin-http/openapi-lint, installed by dist/setup.sh).
  const std::filesystem::path lint = std::filesystem::path(OPK_SOURCE_DIR) / "tests/plugins/admin-http/openapi-lint";
  const auto redocly = lint / "node_modules/.bin/redocly";
  ASSERT_TRUE(std::filesystem::exists(redocly)) << redocly.string() << " is missing: run 'npm ci' in " << lint.string();
  const std::string file = scratch_.file("openapi.json"), out = scratch_.file("lint.out");
  std::ofstream(file) << r.body;
  const std::string cmd = "REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true '" + redocly.string() +
                          "' lint '" + file + "' --config '" + (lint / "redocly.yaml").string() +
                          "' --format=stylish >'" + out + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << test::slurp(out);
  // A problem's line reads "LINE:COLUMN  error|warning  RULE  MESSAGE".
  EXPECT_FALSE(std::regex_search(test::slurp(out), std::regex(R"(\d+:\d+ +(error|warning) )"))) << test::slurp(out);
}

}  // namespace
}  // namespace opk
