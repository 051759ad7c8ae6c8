// The notifications plugin in a real kernel with admin-http, hello and the
// webhook and e-mail channels, delivering to the Standard Webhooks receiver
// (tests/support/webhook-receiver, which verifies every signature with the
// standardwebhooks library) and to aiosmtpd (tests/support/smtp-server): a
// failed run is delivered once and verified, or mailed in the rule's locale;
// a receiver that fails and recovers gets the same webhook-id until it
// answers 2xx; one that never does ends dead; 410 Gone disables the
// endpoint; an open circuit holds one endpoint only; a kernel SIGKILLed
// with notifications queued delivers each of them after its restart. The
// first, the whole way from the kernel's event log through the plugin's
// outbox to the receiver, also on the PostgreSQL store.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <fstream>
#include <map>
#include <set>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"
#include "support/servers.h"
#include "support/webhook_kernel.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class NotificationsKernel : public test::WebhookKernelTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        set_up({test::bundled("admin-http"), test::bundled("hello"), test::bundled("channel-webhook"),
                test::bundled("channel-email"), test::bundled("notifications")}));
  }

  test::Reply http(const std::string& method, const std::string& target, const Json& body = nullptr) {
    return test::http_request(port_, method, "/api/v1/notifications" + target, admin_,
                              body.is_null() ? "" : body.dump());
  }

  // A group (made once) with one rule sending `events` (failed runs) to the
  // receiver's `path`.
  void rule(const std::string& path, const Json& events = {"run.failed"}) {
    auto r = http("POST", "/groups", {{"id", "ops"}, {"name", "Ops"}, {"scope", "platform"}});
    ASSERT_TRUE(r.status == 201 || r.status == 409) << r.body;
    r = http("POST", "/groups/ops/rules",
             {{"events", events},
              {"channel", "webhook"},
              {"recipients", {{{"to", url(path)}, {"options", {{"secrets", {kSecret}}}}}}}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  int64_t fail_a_run() {
    const auto v = test::run_and_wait(*kernel_, test::manual("hello", R"({"fail": true, "steps": 1, "step_ms": 1})"));
    EXPECT_EQ(v.row.outcome, store::kError);
    return v.row.id;
  }

  // The deliveries, newest first.
  Json deliveries(const std::string& query = "") {
    auto r = http("GET", "/deliveries" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false).value("deliveries", Json::array());
  }
};

// NotificationsKernel on the store GetParam() names (test::use_store_backend).
class NotificationsKernelOnStores : public NotificationsKernel, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(NotificationsKernel::SetUp());
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg_);
    ASSERT_TRUE(e.empty()) << e;
  }
  void TearDown() override {
    NotificationsKernel::TearDown();
    kernel_.reset();  // before its database goes
  }
  test::PgDatabase db_;
};

INSTANTIATE_TEST_SUITE_P(Backends, NotificationsKernelOnStores, ::testing::Values("sqlite", "postgresql"),
                         test::store_backend_name);

TEST_P(NotificationsKernelOnStores, AFailedRunIsDeliveredOnceAndVerified) {
  start();
  rule("/hook");
  const int64_t run = fail_a_run();
  ASSERT_TRUE(eventually([&] { return received(requests_).size() >= 1; })) << receiver_.errors();
  ASSERT_TRUE(eventually([&] {
    const Json d = deliveries();
    return d.size() == 1 && d[0]["state"] == "delivered";
  })) << deliveries().dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const auto got = received(requests_);
  ASSERT_EQ(got.size(), 1u) << "delivered once";
  EXPECT_EQ(got[0]["verified"], Json({true})) << got[0].dump();
  const Json d = deliveries()[0];
  EXPECT_EQ(got[0]["headers"]["webhook-id"], d["id"]);
  const Json body = Json::parse(got[0]["body"].get<std::string>());
  EXPECT_EQ(body["type"], "run.failed");
  EXPECT_EQ(body["data"]["run"]["id"], run);
  EXPECT_EQ(body["data"]["run"]["job_type"], "hello");
  auto r = http("GET", "/deliveries/" + d["id"].get<std::string>());
  ASSERT_EQ(r.status, 200) << r.body;
  const Json detail = Json::parse(r.body);
  ASSERT_EQ(detail["attempts"].size(), 1u) << r.body;
  EXPECT_EQ(detail["attempts"][0]["code"], 200);
  EXPECT_EQ(detail["attempts"][0]["outcome"], "delivered");
  // The default envelope is stored as its event: read back, it is the body
  // that was sent.
  EXPECT_EQ(detail["message"]["body"], got[0]["body"]) << r.body;
  // A run that ends well matches no rule.
  test::run_and_wait(*kernel_, test::manual("hello", R"({"steps": 1, "step_ms": 1})"));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(deliveries().size(), 1u);
}

// The outbox keeps the rules in memory (read again when their change
// counter moves) and each template parsed once: a rule whose template is
// edited, a rule deleted and a rule added in a new group are each seen by
// the very next event.
TEST_F(NotificationsKernel, ARuleChangedIsSeenByTheNextEvent) {
  start();
  auto r = http("POST", "/groups", {{"id", "ops"}, {"name", "Ops"}, {"scope", "platform"}});
  ASSERT_EQ(r.status, 201) << r.body;
  r = http("POST", "/groups/ops/rules",
           {{"events", {"run.failed"}},
            {"channel", "webhook"},
            {"template", {{"body", "first {{ run.id }}"}}},
            {"recipients", {{{"to", url("/hook")}, {"options", {{"secrets", {kSecret}}}}}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = Json::parse(r.body)["id"];
  auto bodies = [&] {
    std::vector<std::string> out;
    for (const Json& g : received(requests_)) out.push_back(g["body"].get<std::string>());
    return out;
  };
  const int64_t first = fail_a_run();
  ASSERT_TRUE(eventually([&] { return bodies().size() == 1; })) << receiver_.errors();
  EXPECT_EQ(bodies()[0], "first " + std::to_string(first));

  Json changed = Json::parse(http("GET", "/rules/" + id).body);
  changed["template"]["body"] = "second {{ run.id }}";
  r = http("PUT", "/rules/" + id, changed);
  ASSERT_EQ(r.status, 200) << r.body;
  const int64_t second = fail_a_run();
  ASSERT_TRUE(eventually([&] { return bodies().size() == 2; })) << receiver_.errors();
  EXPECT_EQ(bodies()[1], "second " + std::to_string(second)) << "the edited template, not the one parsed before";

  ASSERT_EQ(http("DELETE", "/rules/" + id).status, 204);
  r = http("POST", "/groups", {{"id", "night"}, {"name", "Night"}, {"scope", "platform"}});
  ASSERT_EQ(r.status, 201) << r.body;
  r = http("POST", "/groups/night/rules",
           {{"events", {"run.failed"}},
            {"channel", "webhook"},
            {"template", {{"body", "third {{ run.id }}"}}},
            {"recipients", {{{"to", url("/hook")}, {"options", {{"secrets", {kSecret}}}}}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  const int64_t third = fail_a_run();
  ASSERT_TRUE(eventually([&] { return bodies().size() >= 3; })) << receiver_.errors();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(bodies(), (std::vector<std::string>{"first " + std::to_string(first), "second " + std::to_string(second),
                                                "third " + std::to_string(third)}))
      << "the deleted rule sent nothing, the new group's rule sent the third";
}

TEST_F(NotificationsKernel, ASilencedAlertNotifiesNoOneUntilItsSilenceEnds) {
  start();
  rule("/hook", {"alert.*"});
  auto alerts = [&](const std::string& method, const std::string& path, const Json& body) {
    return test::http_request(port_, method, "/api/v1/alerts" + path, admin_, body.dump());
  };
  auto create = [&](const std::string& title) {
    const auto a =
        alerts("POST", "", {{"severity", "warning"}, {"title", title}, {"message", "m"}, {"scope", "platform"}});
    EXPECT_EQ(a.status, 201) << a.body;
    return Json::parse(a.body, nullptr, false)["alert"]["id"].get<int64_t>();
  };
  auto kinds = [&] {
    std::vector<std::string> out;
    for (const Json& g : received(requests_))
      out.push_back(Json::parse(g["body"].get<std::string>(), nullptr, false).value("type", ""));
    return out;
  };
  const int64_t quiet = create("disk full");
  ASSERT_TRUE(eventually([&] { return kinds().size() == 1; })) << receiver_.errors();
  const int64_t until = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours(1))
                            .count();
  const std::string id = "/" + std::to_string(quiet);
  ASSERT_EQ(alerts("POST", id + "/silence", {{"until_ms", until}, {"reason", "known"}}).status, 200);
  ASSERT_EQ(alerts("POST", id + "/acknowledge", Json::object()).status, 200);
  ASSERT_EQ(alerts("POST", id + "/close", {{"reason", "fixed"}}).status, 200);
  // A later alert's notification arrives after the events before it were
  // matched: the silenced alert's acknowledgement and close sent nothing.
  create("cpu hot");
  ASSERT_TRUE(eventually([&] { return kinds().size() >= 3; })) << receiver_.errors();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(kinds(), (std::vector<std::string>{"alert.opened", "alert.silenced", "alert.opened"}));
}

TEST_F(NotificationsKernel, AFailedRunIsMailedInTheRuleLocale) {
  test::ServerProcess smtp;
  const std::string mails = scratch_.file("mails.jsonl");
  const std::string why = smtp.start(
      {OPK_PYTHON3, std::string(OPK_SOURCE_DIR) + "/tests/support/smtp-server/smtp_server.py", "--out", mails},
      scratch_.file("smtp.err"));
  ASSERT_TRUE(why.empty()) << why;
  cfg_.plugins["channel-email"] = {
      {"host", "127.0.0.1"}, {"port", std::to_string(smtp.port())}, {"from", "ops@example.com"}};
  start();
  auto r = http("POST", "/groups", {{"id", "mail"}, {"name", "Mail"}, {"scope", "platform"}});
  ASSERT_EQ(r.status, 201) << r.body;
  r = http("POST", "/groups/mail/rules",
           {{"events", {"run.*"}},
            {"filter", {{"job_types", {"hello"}}}},
            {"channel", "email"},
            {"recipients", {"oncall@example.com"}},
            {"locale", "sv"},
            {"template", {{"html_body", "<p>{{ run.job_type }} <b>{{ run.status }}</b> {{ run.summary }}</p>"}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  const int64_t run = fail_a_run();
  std::vector<Json> got;
  ASSERT_TRUE(eventually([&] {
    got = received(mails);
    return !got.empty();
  })) << smtp.errors();
  const Json& m = got[0];
  EXPECT_EQ(m["rcpt_tos"], Json({"oncall@example.com"}));
  EXPECT_EQ(m["headers"]["Subject"], "[run.failed] hello körning " + std::to_string(run) + ": error") << m.dump();
  const Json d = deliveries()[0];
  EXPECT_NE(m["headers"]["Message-ID"].get<std::string>().find(d["id"].get<std::string>()), std::string::npos)
      << m["headers"].dump();
  ASSERT_EQ(m["parts"].size(), 2u) << m.dump();
  EXPECT_NE(m["parts"][0]["text"].get<std::string>().find("Körning " + std::to_string(run) + " av hello"),
            std::string::npos)
      << m["parts"][0]["text"];
  EXPECT_EQ(m["parts"][1]["content_type"], "text/html");
  EXPECT_NE(m["parts"][1]["text"].get<std::string>().find("failed on purpose (fail=true)"), std::string::npos)
      << m["parts"][1]["text"];
  ASSERT_TRUE(eventually([&] { return deliveries()[0]["state"] == "delivered"; }));
  EXPECT_EQ(deliveries()[0]["last_code"], 250);
}

TEST_F(NotificationsKernel, AScheduledJobsReportRecipientsGetItsReport) {
  test::ServerProcess smtp;
  const std::string mails = scratch_.file("mails.jsonl");
  const std::string why = smtp.start(
      {OPK_PYTHON3, std::string(OPK_SOURCE_DIR) + "/tests/support/smtp-server/smtp_server.py", "--out", mails},
      scratch_.file("smtp.err"));
  ASSERT_TRUE(why.empty()) << why;
  cfg_.plugins["channel-email"] = {{"host", "127.0.0.1"}, {"port", std::to_string(smtp.port())}};
  start();
  // The console's "Send the report": recipients stored on the job, no rule.
  auto r = test::http_request(port_, "POST", "/api/v1/jobs", admin_,
                              Json{{"id", "nightly"},
                                   {"job_type", "hello"},
                                   {"planning", "disabled"},
                                   {"params", {{"steps", 1}, {"step_ms", 1}, {"warn", true}}},
                                   {"report_recipients", {"boss@example.com", "ops@example.com"}}}
                                  .dump());
  ASSERT_EQ(r.status, 201) << r.body;
  r = test::http_request(port_, "POST", "/api/v1/jobs/nightly/run", admin_, R"({"reason": "report test"})");
  ASSERT_EQ(r.status, 202) << r.body;
  const int64_t run = Json::parse(r.body)["run_ids"][0];
  ASSERT_TRUE(kernel_->engine()->wait(run, 20000));
  std::vector<Json> got;
  ASSERT_TRUE(eventually([&] {
    got = received(mails);
    return got.size() == 2;
  })) << smtp.errors();
  std::set<std::string> to;
  for (const auto& m : got) {
    to.insert(m["rcpt_tos"][0].get<std::string>());
    EXPECT_EQ(m["headers"]["Subject"], "[run.warning] hello run " + std::to_string(run) + ": warning");
  }
  EXPECT_EQ(to, (std::set<std::string>{"boss@example.com", "ops@example.com"}));
  const Json d = deliveries();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["rule_id"], "report:nightly");
  // An ad-hoc run of the same type has no report.
  fail_a_run();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(deliveries().size(), 2u);
}

TEST_F(NotificationsKernel, AScheduledJobsGroupTakesItsRunsOnly) {
  start();
  auto r = test::http_request(port_, "POST", "/api/v1/jobs", admin_,
                              Json{{"id", "nightly"},
                                   {"job_type", "hello"},
                                   {"planning", "disabled"},
                                   {"params", {{"steps", 1}, {"step_ms", 1}, {"fail", true}}}}
                                  .dump());
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_EQ(http("POST", "/groups", {{"id", "night"}, {"name", "Night shift"}, {"scope", "platform"}}).status, 201);
  r = http("POST", "/groups/night/rules",
           {{"events", {"run.*"}},
            {"channel", "webhook"},
            {"recipients", {{{"to", url("/night")}, {"options", {{"secrets", {kSecret}}}}}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(http("PUT", "/jobs/nosuch", {{"group_id", "night"}}).status, 404);
  r = http("PUT", "/jobs/nightly", {{"group_id", "night"}});
  ASSERT_EQ(r.status, 200) << r.body;
  rule("/hook");  // an unbound group: every failed run
  r = test::http_request(port_, "POST", "/api/v1/jobs/nightly/run", admin_, R"({"reason": "group test"})");
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(kernel_->engine()->wait(Json::parse(r.body)["run_ids"][0], 20000));
  fail_a_run();  // ad hoc: not the night shift's
  auto paths = [&] {
    std::multiset<std::string> out;
    for (const auto& g : received(requests_)) out.insert(g["path"].get<std::string>());
    return out;
  };
  ASSERT_TRUE(eventually([&] { return paths().size() == 3; })) << received(requests_).size();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(paths(), (std::multiset<std::string>{"/hook", "/hook", "/night"}));
}

TEST_F(NotificationsKernel, AReceiverThatRecoversGetsTheSameIdUntilItAccepts) {
  start();
  rule("/flaky/2");
  fail_a_run();
  ASSERT_TRUE(eventually([&] {
    const Json d = deliveries();
    return d.size() == 1 && d[0]["state"] == "delivered";
  })) << deliveries().dump();
  const auto got = received(requests_);
  ASSERT_EQ(got.size(), 3u);
  std::set<std::string> ids;
  for (const auto& g : got) {
    ids.insert(g["headers"]["webhook-id"].get<std::string>());
    EXPECT_EQ(g["verified"], Json({true}));
  }
  EXPECT_EQ(ids.size(), 1u) << "every attempt carries the delivery's id";
  auto r = http("GET", "/deliveries/" + *ids.begin());
  const Json detail = Json::parse(r.body);
  ASSERT_EQ(detail["attempts"].size(), 3u) << r.body;
  EXPECT_EQ(detail["attempts"][0]["code"], 500);
  EXPECT_EQ(detail["attempts"][0]["outcome"], "failed");
  EXPECT_EQ(detail["attempts"][2]["code"], 200);
  EXPECT_GE(detail["attempts"][1]["time_ms"].get<int64_t>() - detail["attempts"][0]["time_ms"].get<int64_t>(), 250)
      << "the schedule's 300 ms between attempts";
}

TEST_F(NotificationsKernel, AReceiverThatNeverRecoversEndsDead) {
  start();
  rule("/status/503");
  fail_a_run();
  ASSERT_TRUE(eventually([&] {
    const Json d = deliveries();
    return d.size() == 1 && d[0]["state"] == "dead";
  })) << deliveries().dump();
  EXPECT_EQ(received(requests_).size(), 4u) << "the schedule's four attempts";
  EXPECT_EQ(deliveries("?state=dead").size(), 1u);
}

TEST_F(NotificationsKernel, RetryAfterIsHonoured) {
  start();
  rule("/status/503?retry_after=2");
  fail_a_run();
  ASSERT_TRUE(eventually([&] { return received(requests_).size() >= 2; }));
  const auto got = received(requests_);
  EXPECT_GE(got[1]["time_ms"].get<int64_t>() - got[0]["time_ms"].get<int64_t>(), 1900)
      << "the receiver's Retry-After: 2 wins over the schedule's 300 ms";
  auto r = http("GET", "/deliveries/" + got[0]["headers"]["webhook-id"].get<std::string>());
  const Json d = Json::parse(r.body);
  EXPECT_EQ(d["attempts"][0]["code"], 503) << r.body;
}

TEST_F(NotificationsKernel, TheRoutesAreInTheOpenApiDocument) {
  start();
  const auto r = test::http_request(port_, "GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  const Json paths = Json::parse(r.body)["paths"];
  ASSERT_TRUE(paths.contains("/api/v1/notifications/groups")) << r.body.substr(0, 400);
  EXPECT_EQ(paths["/api/v1/notifications/groups"]["get"]["x-permission"], "notifications.read");
  EXPECT_EQ(paths["/api/v1/notifications/groups"]["post"]["x-permission"], "notifications.manage");
  EXPECT_EQ(paths["/api/v1/notifications/rules/{id}"]["put"]["tags"], Json({"notifications/notifications"}));
  for (const char* path : {"/api/v1/notifications/deliveries/{id}/replay", "/api/v1/notifications/templates/check",
                           "/api/v1/notifications/endpoints/{id}/enable", "/api/v1/notifications/jobs/{id}"})
    EXPECT_TRUE(paths.contains(path)) << path;
}

TEST_F(NotificationsKernel, GoneDisablesTheEndpoint) {
  start();
  rule("/status/410");
  fail_a_run();
  ASSERT_TRUE(eventually([&] {
    const Json d = deliveries();
    return d.size() == 1 && d[0]["state"] == "failed";
  })) << deliveries().dump();
  auto r = http("GET", "/endpoints?disabled=true");
  const Json eps = Json::parse(r.body)["endpoints"];
  ASSERT_EQ(eps.size(), 1u) << r.body;
  EXPECT_EQ(eps[0]["disabled"], true);
  fail_a_run();
  ASSERT_TRUE(eventually([&] {
    const Json d = deliveries();
    return d.size() == 2 && d[0]["state"] == "skipped";
  })) << deliveries().dump();
  EXPECT_EQ(received(requests_).size(), 1u) << "nothing more goes to a gone endpoint";
  // Enabled again (audited), a replay goes out with the same id.
  r = http("POST", "/endpoints/" + eps[0]["endpoint"].get<std::string>() + "/enable");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string skipped = deliveries()[0]["id"];
  r = http("POST", "/deliveries/" + skipped + "/replay");
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(eventually([&] { return received(requests_).size() == 2; }));
  EXPECT_EQ(received(requests_)[1]["headers"]["webhook-id"], skipped);
}

TEST_F(NotificationsKernel, AnOpenCircuitHoldsOneEndpointOnly) {
  cfg_.plugins["notifications"]["workers"] = "1";
  cfg_.plugins["notifications"]["circuit_failures"] = "2";
  cfg_.plugins["notifications"]["circuit_open"] = "2s";
  start();
  rule("/status/503");
  rule("/hook");
  for (int i = 0; i < 3; ++i) fail_a_run();
  auto at = [&](const std::string& path) {
    std::vector<int64_t> times;
    for (const auto& g : received(requests_))
      if (g["path"] == path) times.push_back(g["time_ms"].get<int64_t>());
    return times;
  };
  ASSERT_TRUE(eventually([&] { return at("/hook").size() == 3 && at("/status/503").size() >= 2; }));
  // Two failures opened the circuit: the third delivery and the retries
  // wait for one probe when it half-opens, 2 s later.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto failing = at("/status/503");
  ASSERT_EQ(failing.size(), 2u) << "the third delivery and the retries wait for the probe";
  ASSERT_TRUE(eventually([&] { return at("/status/503").size() == 3; }, 5000));
  const auto probed = at("/status/503");
  EXPECT_GE(probed[2] - probed[1], 1800) << "one probe after the circuit's 2 s";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(at("/status/503").size(), 3u) << "the probe failed: the circuit opened again";
  auto r = http("GET", "/endpoints");
  bool open = false;
  const Json eps = Json::parse(r.body);
  for (const auto& e : eps["endpoints"])
    if (e["recipient"].get<std::string>().find("/status/503") != std::string::npos)
      open = e["open_until_ms"].is_number() && e["failures"].get<int64_t>() >= 3;
  EXPECT_TRUE(open) << r.body;
}

// The child: a kernel failing runs as fast as it can until it is killed.
[[noreturn]] void fail_runs(const config::Config& cfg) {
  Kernel k(cfg);
  if (!k.start()) _exit(3);
  for (;;) {
    int64_t id = 0;
    k.engine()->run_now(test::manual("hello", R"({"fail": true, "steps": 1, "step_ms": 1})"), &id);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST_F(NotificationsKernel, KilledWithQueuedNotificationsDeliversEachAfterRestart) {
  start();
  rule("/sleep/50");
  kernel_->stop();
  kernel_.reset();
  for (int i = 0; i < 3; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) fail_runs(cfg_);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200 + 300 * i));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited by itself (status " << status << ")";
  }
  start();
  // Every failed run has exactly one delivery, and each is delivered.
  std::map<std::string, Json> all;
  ASSERT_TRUE(eventually(
      [&] {
        all.clear();
        std::string cursor;
        bool pending = false;
        do {
          auto r = http("GET", "/deliveries?limit=500" + (cursor.empty() ? "" : "&cursor=" + cursor));
          const Json page = Json::parse(r.body);
          for (const auto& d : page["deliveries"]) {
            all[d["id"]] = d;
            pending |= d["state"] != "delivered";
          }
          cursor = page["next_cursor"].is_string() ? page["next_cursor"].get<std::string>() : "";
        } while (!cursor.empty());
        return !all.empty() && !pending;
      },
      60000))
      << all.size() << " deliveries, some not delivered";
  store::RunFilter f;
  f.limit = 1000000;
  size_t failed = 0;
  for (const auto& r : kernel_->store()->list_runs(f).value())
    failed +=
        r.phase == store::kCompleted && r.outcome == store::kError && r.summary.find("recovered") == std::string::npos;
  std::set<int64_t> runs;
  for (const auto& [id, d] : all) runs.insert(std::stoll(d["event"]["subject"].get<std::string>().substr(4)));
  EXPECT_EQ(runs.size(), all.size()) << "one delivery per run";
  EXPECT_EQ(all.size(), failed) << "a delivery for every failed run";
  std::set<std::string> seen;
  for (const auto& g : received(requests_)) {
    seen.insert(g["headers"]["webhook-id"].get<std::string>());
    EXPECT_EQ(g["verified"], Json({true}));
  }
  for (const auto& [id, d] : all) EXPECT_TRUE(seen.count(id)) << id << " never reached the receiver";
  EXPECT_GT(all.size(), 10u) << "the load did not get going";
  std::cout << "[ killed   ] 3 SIGKILLs, " << all.size() << " failed runs, " << received(requests_).size()
            << " requests for " << seen.size() << " deliveries\n";
}

}  // namespace
}  // namespace opk
