// The admin HTTP API on a real kernel with real plugins, over real HTTP on
// 127.0.0.1: the role x endpoint visibility matrix over a seeded hierarchy,
// bad input of every kind, the live log stream, the manual_run=false refusal,
// limits, headers, metrics and the OpenAPI document, which passes a linter;
// on both stores (a fresh PostgreSQL database per test,
// tests/support/pg_util.h).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "http_client.h"
#include "support/admin_feature.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

using Poco::JSON::Object;

using test::free_port;
using test::Reply;

class AdminHttp : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { start({}); }

  // The kernel's configuration on the test's store.
  config::Config base_config() {
    auto cfg = test::quiet_config(dir_, plugins_);
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    EXPECT_TRUE(e.empty()) << e;
    return cfg;
  }

  void start(std::map<std::string, std::string> settings) {
    kernel_.reset();
    port_ = free_port();
    auto cfg = base_config();
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    cfg.plugins["admin-http"] = settings;
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    if (admin_.empty()) seed();
  }

  // Platform > d1 > p1 > t1, and d2 > p2 > t2; a user per role; jobs at
  // several levels.
  void seed() {
    auto* id = kernel_->identity();
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"distributor:d2", "platform"},
                                                                        {"partner:p2", "distributor:d2"},
                                                                        {"tenant:t2", "partner:p2"}})
      ASSERT_TRUE(id->add_node(n, p, ""));
    struct U {
      const char *id, *role, *scope;
      std::string* token;
    } users[] = {{"pat", "PlatformAdministrator", "platform", &admin_},
                 {"dan", "DistributorAdministrator", "distributor:d1", &dist_},
                 {"pam", "PartnerAdministrator", "partner:p1", &partner_},
                 {"ted", "TenantAdministrator", "tenant:t1", &tenant_admin_},
                 {"tim", "TenantUser", "tenant:t1", &tenant_user_}};
    for (auto& u : users) {
      ASSERT_TRUE(id->add_user({u.id, "", u.role, u.scope}));
      ASSERT_TRUE(id->issue_token(u.id, 0, "test", u.token));
    }
    for (auto [job, scope] : std::vector<std::pair<const char*, const char*>>{{"job-platform", "platform"},
                                                                              {"job-d1", "distributor:d1"},
                                                                              {"job-t1", "tenant:t1"},
                                                                              {"job-t2", "tenant:t2"}}) {
      store::ScheduledJob j;
      j.id = job;
      j.job_type = "hello";
      j.planning = "disabled";
      j.scope = scope;
      ASSERT_TRUE(kernel_->engine()->define_job(j, test::operator_actor()));
    }
  }

  Reply http(const std::string& method, const std::string& target, const std::string& token = "",
             const std::string& body = "", const std::map<std::string, std::string>& headers = {}) {
    return test::http_request(port_, method, target, token, body, headers);
  }

  std::set<std::string> inventory_ids(const std::string& token) {
    auto r = http("GET", "/api/v1/jobs", token);
    EXPECT_EQ(r.status, 200) << r.body;
    std::set<std::string> ids;
    auto items = r.json()->getArray("items");
    for (size_t i = 0; i < items->size(); ++i) ids.insert(items->getObject(i)->getValue<std::string>("id"));
    return ids;
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  std::string plugins_ = test::plugins_dir(
      dir_, {test::bundled("admin-http"), test::bundled("hello"), test::bundled("echo"), test::fixture("engine_jobs")});
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_, dist_, partner_, tenant_admin_, tenant_user_;
};

INSTANTIATE_TEST_SUITE_P(Backends, AdminHttp, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

// What is about SQLite's file (its size limit): SQLite only.
class AdminHttpSqliteFile : public AdminHttp {};

INSTANTIATE_TEST_SUITE_P(Backends, AdminHttpSqliteFile, ::testing::Values("sqlite"), test::store_backend_name);

TEST_P(AdminHttp, EveryListIsFilteredToTheCallersScope) {
  EXPECT_EQ(inventory_ids(admin_), (std::set<std::string>{"job-d1", "job-platform", "job-t1", "job-t2"}));
  EXPECT_EQ(inventory_ids(dist_), (std::set<std::string>{"job-d1", "job-t1"}));
  EXPECT_EQ(inventory_ids(partner_), (std::set<std::string>{"job-t1"}));
  EXPECT_EQ(inventory_ids(tenant_admin_), (std::set<std::string>{"job-t1"}));
  EXPECT_EQ(inventory_ids(tenant_user_), (std::set<std::string>{"job-t1"}));
  // Another scope's job is not found rather than forbidden: its existence is not revealed.
  EXPECT_EQ(http("GET", "/api/v1/jobs/job-t2", tenant_admin_).status, 404);
  EXPECT_EQ(http("GET", "/api/v1/jobs/job-t1", tenant_admin_).status, 200);
  EXPECT_EQ(http("GET", "/api/v1/jobs/job-platform", dist_).status, 404);
  // The tenant filter narrows within the caller's scope.
  auto r = http("GET", "/api/v1/jobs?tenant=distributor:d2", admin_);
  EXPECT_EQ(r.json()->getValue<int>("total"), 1) << r.body;
}

TEST_P(AdminHttp, ActionsFollowThePermissionMatrix) {
  const std::string run = R"({"reason": "matrix", "params": {"steps": 1}})";
  struct Case {
    std::string* token;
    int run_now, audit, plugins, metrics, jobs, delete_job;
  } cases[] = {
      // Deleting a job needs jobs.write, checked before the job is looked up
      // (the platform administrator gets as far as "no such job").
      {&admin_, 202, 200, 200, 200, 200, 404},       {&dist_, 403, 200, 403, 403, 200, 403},
      {&partner_, 403, 200, 403, 403, 200, 403},     {&tenant_admin_, 403, 200, 403, 403, 200, 403},
      {&tenant_user_, 403, 403, 403, 403, 200, 403},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(*c.token == admin_ ? "platform admin" : "another role");
    EXPECT_EQ(http("POST", "/api/v1/jobs/job-t1/run", *c.token, run).status, c.run_now);
    EXPECT_EQ(http("GET", "/api/v1/audit", *c.token).status, c.audit);
    EXPECT_EQ(http("GET", "/api/v1/plugins", *c.token).status, c.plugins);
    EXPECT_EQ(http("GET", "/metrics", *c.token).status, c.metrics);
    EXPECT_EQ(http("GET", "/api/v1/runs", *c.token).status, c.jobs);
    EXPECT_EQ(http("DELETE", "/api/v1/jobs/no-such-job?reason=matrix", *c.token).status, c.delete_job);
  }
  auto r = http("POST", "/api/v1/jobs/job-t1/run", tenant_admin_, run);
  EXPECT_NE(r.json()->getValue<std::string>("detail").find("lacks the permission 'runs.start'"), std::string::npos)
      << r.body;
  // The audit trail has the run-now with its actor, reason and source address.
  auto audit = http("GET", "/api/v1/audit?action=run-now", admin_).json()->getArray("items");
  ASSERT_GE(audit->size(), 1u);
  EXPECT_EQ(audit->getObject(0)->getValue<std::string>("actor"), "pat");
  EXPECT_EQ(audit->getObject(0)->getValue<std::string>("reason"), "matrix");
  EXPECT_NE(audit->getObject(0)->getValue<std::string>("source").find("127.0.0.1"), std::string::npos);
  // Refused attempts are in the trail too, with who tried.
  bool refused_seen = false;
  auto all = http("GET", "/api/v1/audit?actor=ted&limit=100", admin_).json()->getArray("items");
  for (size_t i = 0; i < all->size(); ++i) {
    auto row = all->getObject(i);
    if (row->getValue<std::string>("action") == "http POST" &&
        row->getValue<std::string>("outcome").rfind("refused: 403", 0) == 0)
      refused_seen = true;
  }
  EXPECT_TRUE(refused_seen) << "no audit row for ted's refused POST";
  // A distributor admin's audit view leaves out what platform users did.
  EXPECT_EQ(http("GET", "/api/v1/audit?action=run-now", dist_).json()->getArray("items")->size(), 0u);
}

TEST_P(AdminHttp, ConfiguredPermissionsWidenARole) {
  kernel_.reset();
  auto cfg = base_config();
  port_ = free_port();
  cfg.listen = "127.0.0.1:" + std::to_string(port_);
  cfg.permissions["TenantAdministrator"] = {"jobs.read", "runs.start", "jobs.write"};
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  const std::string run = R"({"reason": "mine", "params": {"steps": 1}})";
  auto started = http("POST", "/api/v1/jobs/job-t1/run", tenant_admin_, run);
  ASSERT_EQ(started.status, 202) << started.body;
  // Still only inside the scope.
  EXPECT_EQ(http("POST", "/api/v1/jobs/job-t2/run", tenant_admin_, run).status, 404);
  // The caller learns what the role may do (the console offers only that).
  auto me = http("GET", "/api/v1/me", tenant_admin_);
  ASSERT_EQ(me.status, 200);
  auto perms = me.json()->getArray("permissions");
  std::set<std::string> got;
  for (size_t i = 0; i < perms->size(); ++i) got.insert(perms->getElement<std::string>(i));
  EXPECT_EQ(got, (std::set<std::string>{"jobs.read", "runs.start", "jobs.write"})) << me.body;
  // Deleting is scoped alike: another tenant's job is not found, its own is
  // deleted once the run started above has finished.
  ASSERT_TRUE(kernel_->engine()->wait(started.json()->getArray("run_ids")->getElement<int64_t>(0), 10000));
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/job-t2?reason=not%20mine", tenant_admin_).status, 404);
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/job-platform?reason=above%20me", tenant_admin_).status, 404);
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/job-t1?reason=mine", tenant_admin_).status, 200);
  EXPECT_EQ(inventory_ids(admin_), (std::set<std::string>{"job-d1", "job-platform", "job-t2"}));
  me = http("GET", "/api/v1/me", admin_);
  EXPECT_NE(me.body.find("\"runs.cancel\""), std::string::npos) << me.body;
  EXPECT_NE(me.body.find("\"metrics.read\""), std::string::npos) << me.body;
  EXPECT_NE(me.body.find("\"scope\":\"platform\""), std::string::npos) << me.body;
}

TEST_P(AdminHttp, BadInputGetsAProblemNamingWhatToFix) {
  struct Case {
    std::string method, target, body;
    int status;
    std::string words;
  } cases[] = {
      {"POST", "/api/v1/runs", "{bad", 400, "not valid JSON"},
      {"POST", "/api/v1/runs", "[1,2]", 400, "must be a JSON object"},
      {"POST", "/api/v1/runs", R"({"job_type": "hello", "reason": 7})", 422, "reason: expected a string"},
      {"POST", "/api/v1/runs", R"({"job_type": "hello", "reason": "x", "params": {"steps": "many"}})", 422, "steps"},
      {"POST", "/api/v1/runs", R"({"job_type": "hello"})", 422, "reason"},
      {"POST", "/api/v1/runs", R"({"job_type": "nope", "reason": "x"})", 404, "no job type 'nope'"},
      {"POST", "/api/v1/jobs", R"({"id": "j", "job_type": "hello", "planning": "scheduled", "cron": "61 * * * *"})",
       422, "minute"},
      {"PATCH", "/api/v1/jobs/job-t1", R"({"description": "renamed"})", 422, "cannot be changed"},
      {"GET", "/api/v1/jobs?limit=many", "", 400, "limit"},
      {"GET", "/api/v1/jobs?colour=red", "", 400, "unknown query parameter 'colour'"},
      {"GET", "/api/v1/jobs?status=sleepy", "", 422, "status"},
      {"GET", "/api/v1/jobs?status=error,sleepy", "", 422, "status: 'sleepy'"},
      {"GET", "/api/v1/runs?over_target=maybe", "", 400, "over_target: 'maybe' is not true or false"},
      {"GET", "/api/v1/runs/abc", "", 404, "no run"},
      {"GET", "/api/v1/runs/999999", "", 404, "no run 999999"},
      {"GET", "/api/v1/unknown", "", 404, "no route serves"},
      {"DELETE", "/api/v1/jobs", "", 405, "use GET, POST"},
      {"POST", "/api/v1/jobs/job-t1/run", R"({"reason": "x", "start_at_ms": -5})", 422, "start_at_ms"},
  };
  for (const auto& c : cases) {
    auto r = http(c.method, c.target, admin_, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body << " -> " << r.body;
    EXPECT_EQ(r.head.getContentType(), "application/problem+json") << c.target;
    EXPECT_NE(r.body.find(c.words), std::string::npos) << c.target << " " << r.body;
    EXPECT_EQ(r.body.find("Exception"), std::string::npos) << r.body;
  }
  auto r = http("POST", "/api/v1/runs", admin_, "{}", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415) << r.body;
}

TEST_P(AdminHttp, TokensMissingExpiredRevokedOrMalformedGet401) {
  EXPECT_EQ(http("GET", "/api/v1/jobs").status, 401);
  auto r = http("GET", "/api/v1/jobs", "opk_not-a-real-token");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("not known"), std::string::npos);
  EXPECT_EQ(r.body.find("opk_not-a-real-token"), std::string::npos) << "tokens are never echoed";
  std::string short_lived;
  ASSERT_TRUE(kernel_->identity()->issue_token("tim", 1, "", &short_lived));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  r = http("GET", "/api/v1/jobs", short_lived);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("expired"), std::string::npos) << r.body;
  int64_t n = 0;
  ASSERT_TRUE(kernel_->identity()->revoke_user("tim", &n));
  r = http("GET", "/api/v1/jobs", tenant_user_);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("revoked"), std::string::npos) << r.body;
  r = http("GET", "/api/v1/jobs", "", "", {{"Authorization", "Basic YWRtaW46YWRtaW4="}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(http("GET", "/healthz").status, 200);  // anonymous routes need no token
  EXPECT_EQ(http("GET", "/api/v1/queues", "", "", {{"Authorization", "bearer " + admin_}}).status, 200)
      << "the scheme is case-insensitive";
}

TEST_P(AdminHttp, HugeBodiesAndTraversalAreRefused) {
  const std::string huge(2 * 1024 * 1024, 'x');
  auto r = http("POST", "/api/v1/runs", admin_, huge);
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 200);
  for (const char* target : {"/api/v1/../../etc/passwd", "/api/v1/jobs/%2e%2e/x", "/api/v1/./jobs"}) {
    r = http("GET", target, admin_);
    EXPECT_EQ(r.status, 400) << target << " " << r.body;
  }
  r = http("GET", "/api/v1/jobs/%zz", admin_);
  EXPECT_EQ(r.status, 400) << r.body;
  // Header limits (Poco's: 8 KiB a value, 100 fields) end in 431, not in
  // the handler, as problem+json.
  r = http("GET", "/api/v1/jobs", admin_, "", {{"X-Big", std::string(20000, 'a')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.head.getContentType(), "application/problem+json");
  EXPECT_EQ(r.json()->getValue<int>("status"), 431) << r.body;
  std::map<std::string, std::string> many;
  for (int i = 0; i < 150; ++i) many["X-H" + std::to_string(i)] = "v";
  r = http("GET", "/api/v1/jobs", admin_, "", many);
  EXPECT_EQ(r.status, 431);
  EXPECT_NE(r.json()->getValue<std::string>("detail").find("too many header fields"), std::string::npos) << r.body;
  EXPECT_EQ(http("GET", "/healthz").status, 200) << "the server goes on";
}

TEST_P(AdminHttp, ManualRunFalseIsRefusedWith409) {
  auto r = http("POST", "/api/v1/runs", admin_, R"({"job_type": "scheduled-only", "reason": "try"})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("manual_run=false"), std::string::npos) << r.body;
  auto types = http("GET", "/api/v1/job-types", admin_).json()->getArray("types");
  bool seen = false;
  for (size_t i = 0; i < types->size(); ++i)
    if (types->getObject(i)->getValue<std::string>("id") == "scheduled-only") {
      seen = true;
      EXPECT_FALSE(types->getObject(i)->getValue<bool>("manual_run"));
    }
  EXPECT_TRUE(seen);
  // A job type's title and description in the manifest's other languages.
  auto r2 = http("GET", "/api/v1/job-types", admin_);
  EXPECT_NE(r2.body.find(R"("translations":[{"lang":"sv","title":"Hej","description":"Hälsar)"), std::string::npos)
      << r2.body;
}

TEST_P(AdminHttp, TheEventStreamDeliversARunsLogInOrderAndEndsWithTheRun) {
  auto r = http("POST", "/api/v1/jobs/job-t1/run", admin_, R"({"reason": "stream", "params": {"steps": 4}})");
  ASSERT_EQ(r.status, 202) << r.body;
  const int64_t id = r.json()->getArray("run_ids")->getElement<int64_t>(0);
  auto s = http("GET", "/api/v1/runs/" + std::to_string(id) + "/events", admin_);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.head.getContentType(), "text/event-stream");
  EXPECT_TRUE(s.head.getChunkedTransferEncoding());
  // Lines in order, ids 1..n, then the end event with the completed run.
  std::vector<int> ids;
  size_t pos = 0;
  while ((pos = s.body.find("\nid: ", pos)) != std::string::npos) ids.push_back(std::stoi(s.body.substr(pos += 5)));
  ASSERT_EQ(ids.size(), 5u) << s.body;  // greet + 4 counts
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int>(i + 1));
  EXPECT_LT(s.body.find("step 1 of 4"), s.body.find("step 4 of 4"));
  const auto end = s.body.find("event: end\ndata: ");
  ASSERT_NE(end, std::string::npos) << s.body;
  EXPECT_NE(s.body.find("\"status\":\"normal\"", end), std::string::npos);
  // Resuming after the third line gets only the rest.
  auto resumed = http("GET", "/api/v1/runs/" + std::to_string(id) + "/events", admin_, "", {{"Last-Event-ID", "3"}});
  EXPECT_EQ(resumed.body.find("\nid: 3\n"), std::string::npos);
  EXPECT_NE(resumed.body.find("\nid: 4\n"), std::string::npos) << resumed.body;
  // The log with a cursor says the same.
  auto log = http("GET", "/api/v1/runs/" + std::to_string(id) + "/log?since=2", admin_).json();
  EXPECT_EQ(log->getArray("lines")->size(), 3u);
  EXPECT_TRUE(log->getValue<bool>("finished"));
  EXPECT_EQ(http("GET", "/api/v1/runs/" + std::to_string(id) + "/events", tenant_admin_).status, 200);
}

TEST_P(AdminHttp, CancelRetryAndHoldThroughTheApi) {
  auto r = http("POST", "/api/v1/runs", admin_, R"({"job_type": "slow-job", "reason": "r", "params": {"ms": 20000}})");
  ASSERT_EQ(r.status, 202) << r.body;
  // (The run goes on in the background; stopping the kernel at the end cancels it.)
  const std::string id = std::to_string(r.json()->getArray("run_ids")->getElement<int64_t>(0));
  ASSERT_TRUE(test::wait_running(*kernel_, std::stoll(id)));
  // slow-job has no cancel hook: a running one cannot be cancelled.
  r = http("POST", "/api/v1/runs/" + id + "/cancel", admin_, R"({"reason": "stop"})");
  EXPECT_EQ(r.status, 409) << r.body;
  r = http("POST", "/api/v1/runs/" + id + "/cancel", admin_, R"({})");
  EXPECT_EQ(r.status, 422) << r.body;  // a reason is required
  const int64_t in_an_hour = jobs::now_ms() + 3600000;
  r = http("POST", "/api/v1/runs", admin_,
           R"({"job_type": "prio-low", "reason": "r", "start_at_ms": )" + std::to_string(in_an_hour) + "}");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string later = std::to_string(r.json()->getArray("run_ids")->getElement<int64_t>(0));
  EXPECT_EQ(http("POST", "/api/v1/runs/" + later + "/hold", admin_, R"({"reason": "wait"})").status, 200);
  EXPECT_TRUE(http("GET", "/api/v1/runs/" + later, admin_).json()->getObject("run")->getValue<bool>("hold"));
  EXPECT_EQ(http("POST", "/api/v1/runs/" + later + "/cancel", admin_, R"({"reason": "no"})").status, 200);
  auto run = http("GET", "/api/v1/runs/" + later, admin_).json()->getObject("run");
  EXPECT_EQ(run->getValue<std::string>("phase"), "COMPLETED");
  // Cancelled, not failed: who and why are on the run, and the lists tell
  // cancelled runs from failed ones.
  EXPECT_EQ(run->getValue<std::string>("status"), "cancelled");
  EXPECT_EQ(run->getValue<std::string>("cancelled_by"), "pat");
  EXPECT_EQ(run->getValue<std::string>("summary"), "cancelled by pat: no");
  r = http("GET", "/api/v1/runs?status=cancelled", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"id\":" + later + ","), std::string::npos) << r.body;
  r = http("GET", "/api/v1/runs?status=error", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("\"id\":" + later + ","), std::string::npos) << r.body;
}

TEST_P(AdminHttp, MetricsHealthAndSecurityHeaders) {
  http("POST", "/api/v1/jobs/job-t1/run", admin_, R"({"reason": "m", "params": {"steps": 1}})");
  ASSERT_TRUE(kernel_->engine()->wait(1, 10000));
  auto r = http("GET", "/metrics", admin_);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.head.getContentType().rfind("text/plain", 0), 0u);
  for (const char* want :
       {"opskernel_runs{job_type=\"hello\",status=\"normal\"} 1", "opskernel_queue_depth{pool=\"default\"}",
        "opskernel_dispatch_lag_seconds_bucket{le=\"+Inf\"} 1", "opskernel_dispatch_lag_seconds_count 1",
        "opskernel_http_requests_total{method=\"POST\",route=\"/api/v1/jobs/{id}/run\",code=\"202\"} 1"})
    EXPECT_NE(r.body.find(want), std::string::npos) << want << "\n" << r.body;
  EXPECT_EQ(http("GET", "/readyz").status, 200);
  r = http("GET", "/healthz", "", "", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.head.get("X-Content-Type-Options", ""), "nosniff");
  EXPECT_EQ(r.head.get("X-Frame-Options", ""), "DENY");
  EXPECT_FALSE(r.head.has("Access-Control-Allow-Origin")) << "CORS is off by default";
  EXPECT_EQ(http("OPTIONS", "/api/v1/jobs", "", "", {{"Origin", "http://evil.example"}}).status, 403);
}

TEST_P(AdminHttp, RateLimitsAnswer429WithRetryAfter) {
  start({{"rate_per_user", "5"}, {"cors_origins", "https://console.example"}});
  int limited = 0;
  std::string retry;
  for (int i = 0; i < 8; ++i) {
    auto r = http("GET", "/api/v1/queues", admin_);
    if (r.status == 429) {
      ++limited;
      retry = r.head.get("Retry-After", "");
    }
  }
  EXPECT_GE(limited, 2);
  EXPECT_FALSE(retry.empty());
  EXPECT_EQ(http("GET", "/api/v1/queues", dist_).status, 200) << "limits are per user";
  auto r = http("GET", "/healthz", "", "", {{"Origin", "https://console.example"}});
  EXPECT_EQ(r.head.get("Access-Control-Allow-Origin", ""), "https://console.example");
}

TEST_P(AdminHttp, TheOpenApiDocumentListsEveryRegisteredRoute) {
  auto r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  auto doc = r.json();
  EXPECT_EQ(doc->getValue<std::string>("openapi").substr(0, 2), "3.");
  auto paths = doc->getObject("paths");
  const auto routes = kernel_->routes().list();
  ASSERT_GT(routes.size(), 20u);
  for (const auto& route : routes) {
    std::string m = route.method;
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
    ASSERT_TRUE(paths->has(route.path)) << route.path;
    EXPECT_TRUE(paths->getObject(route.path)->has(m)) << route.method << " " << route.path;
  }
  EXPECT_TRUE(paths->has("/api/v1/echo/{word}")) << "other plugins' routes are documented too";
  auto run = paths->getObject("/api/v1/jobs/{id}/run")->getObject("post");
  EXPECT_EQ(run->getValue<std::string>("x-permission"), "runs.start");
  EXPECT_EQ(run->getValue<std::string>("operationId"), "postApiV1JobsByIdRun");
  EXPECT_EQ(paths->getObject("/api/v1/echo/{word}")->getObject("get")->getValue<std::string>("operationId"),
            "getApiV1EchoByWord");

  // Operation ids: unique, letters and digits only.
  std::set<std::string> ids;
  for (const auto& [path, item] : *paths)
    for (const auto& [method, op] : *item.extract<Object::Ptr>()) {
      const auto id = op.extract<Object::Ptr>()->getValue<std::string>("operationId");
      EXPECT_EQ(id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"),
                std::string::npos)
          << id;
      EXPECT_TRUE(ids.insert(id).second) << "operationId " << id << " twice";
      // This API's own operations say what they answer.
      auto o = op.extract<Object::Ptr>();
      if (o->getArray("tags")->getElement<std::string>(0) != "admin-http/admin-api") continue;
      auto responses = o->getObject("responses");
      bool described = false;
      for (const auto& [code, response] : *responses)
        if (code[0] == '2') described = response.extract<Object::Ptr>()->has("content");
      EXPECT_TRUE(described) << method << " " << path << " has no success schema";
    }

  // Run ids are whole numbers, job ids strings.
  auto id_schema = [&](const std::string& path, const std::string& method) {
    auto p = paths->getObject(path)->getObject(method)->getArray("parameters")->getObject(0);
    EXPECT_EQ(p->getValue<std::string>("in"), "path");
    return p->getObject("schema");
  };
  for (const char* path : {"/api/v1/runs/{id}", "/api/v1/runs/{id}/log", "/api/v1/runs/{id}/events"}) {
    EXPECT_EQ(id_schema(path, "get")->getValue<std::string>("type"), "integer") << path;
    EXPECT_EQ(id_schema(path, "get")->getValue<std::string>("format"), "int64") << path;
  }
  EXPECT_EQ(id_schema("/api/v1/runs/{id}/cancel", "post")->getValue<std::string>("type"), "integer");
  EXPECT_EQ(id_schema("/api/v1/jobs/{id}", "get")->getValue<std::string>("type"), "string");
  EXPECT_EQ(id_schema("/api/v1/jobs/{id}/run", "post")->getValue<std::string>("type"), "string");

  // The live log is an event stream; errors are problems.
  auto events = paths->getObject("/api/v1/runs/{id}/events")->getObject("get")->getObject("responses");
  EXPECT_TRUE(events->getObject("200")->getObject("content")->has("text/event-stream"));
  EXPECT_EQ(events->getObject("404")->getValue<std::string>("$ref"), "#/components/responses/NotFound");
  auto components = doc->getObject("components");
  EXPECT_TRUE(
      components->getObject("responses")->getObject("NotFound")->getObject("content")->has("application/problem+json"));
  EXPECT_TRUE(components->getObject("schemas")->has("Problem"));
  EXPECT_EQ(components->getObject("securitySchemes")->getObject("bearer")->getValue<std::string>("scheme"), "bearer");
  EXPECT_EQ(doc->getArray("servers")->getObject(0)->getValue<std::string>("url"), "/");
  EXPECT_TRUE(doc->getObject("info")->has("license"));
}

// The document passes Redocly's linter with its recommended rules, without
// an error or a warning (test::expect_openapi_lints_clean: the linter is
// pinned in openapi-lint/ beside this file; dist/setup.sh installs it).
TEST_P(AdminHttp, TheOpenApiDocumentPassesTheLinter) {
  auto r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  test::expect_openapi_lints_clean(r.body, dir_.path());
}

// Every reason an operation takes is at most 2,000 bytes, refused longer
// whatever the operation (nothing done, the refusal audited), and a job's
// delete takes its reason in a JSON body as well as in the query.
TEST_P(AdminHttp, ReasonsAreCappedAndADeleteTakesItsReasonInABody) {
  const std::string longest(2000, 'r'), longer(2001, 'r');
  const std::string too_long = R"({"reason": ")" + longer + R"("})";
  auto r = http("POST", "/api/v1/jobs/job-platform/run", admin_, R"({"reason": ")" + longest + R"("})");
  ASSERT_EQ(r.status, 202) << r.body;
  const int64_t run = r.json()->getArray("run_ids")->getElement<int64_t>(0);
  auto refused = [&](const std::string& method, const std::string& target, const std::string& body) {
    auto a = http(method, target, admin_, body);
    EXPECT_EQ(a.status, 422) << method << " " << target.substr(0, 60) << ": " << a.body;
    EXPECT_NE(a.body.find("reason: longer than 2,000 bytes"), std::string::npos) << a.body;
  };
  refused("POST", "/api/v1/jobs/job-platform/run", too_long);
  refused("POST", "/api/v1/runs", R"({"job_type": "hello", "reason": ")" + longer + R"("})");
  for (const char* action : {"cancel", "retry", "hold", "release", "recover"})
    refused("POST", "/api/v1/runs/" + std::to_string(run) + "/" + action, too_long);
  refused("DELETE", "/api/v1/jobs/job-platform?reason=" + longer, "");
  refused("DELETE", "/api/v1/jobs/job-platform", too_long);
  // Nothing was done: one run of the job, the job still there.
  store::RunFilter of_job;
  of_job.scheduled_job_id = "job-platform";
  EXPECT_EQ(kernel_->store()->list_runs(of_job).value().size(), 1u);
  EXPECT_EQ(http("GET", "/api/v1/jobs/job-platform", admin_).status, 200);
  ASSERT_TRUE(kernel_->engine()->wait(run, 20000));

  // A delete's reason in a body, audited with it; none at all is refused.
  r = http("DELETE", "/api/v1/jobs/job-platform", admin_, "{}");
  EXPECT_EQ(r.status, 422) << r.body;
  r = http("DELETE", "/api/v1/jobs/job-platform", admin_, R"({"reason": "retired, by body"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(http("GET", "/api/v1/jobs/job-platform", admin_).status, 404);
  bool audited = false, refusal_audited = false;
  for (const auto& a : kernel_->store()->audit_rows(1000).value()) {
    if (a.action != "job.delete") continue;
    audited |= a.target == "job-platform" && a.reason == "retired, by body" && a.outcome.rfind("ok", 0) == 0;
    refusal_audited |= a.outcome == "refused: reason: longer than 2,000 bytes";
  }
  EXPECT_TRUE(audited);
  EXPECT_TRUE(refusal_audited);
}

TEST_P(AdminHttp, ScheduledJobsAreCreatedAndChangedButIdsAndDescriptionsStay) {
  auto r = http("POST", "/api/v1/jobs", tenant_admin_, R"({"id": "mine", "job_type": "hello"})");
  EXPECT_EQ(r.status, 403) << r.body;
  r = http("POST", "/api/v1/jobs", admin_,
           R"({"id": "weekly", "job_type": "hello", "planning": "scheduled", "cron": "0 6 * * 1;30 18 * * 5",
               "time_zone": "Europe/Stockholm", "description": "twice a week", "scope": "tenant:t1",
               "report_recipients": ["ops@example.com"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_EQ(http("POST", "/api/v1/jobs/weekly/run", admin_, R"({"reason": "once", "params": {"steps": 7}})").status,
            202);
  ASSERT_TRUE(kernel_->engine()->wait(1, 10000));
  auto job = http("GET", "/api/v1/jobs/weekly?last_n=5", tenant_admin_).json();
  EXPECT_EQ(job->getArray("next_fire_ms")->size(), 5u);
  auto last = job->getArray("runs")->getObject(0);
  EXPECT_EQ(last->getValue<std::string>("triggered_by"), "pat");
  EXPECT_GT(last->getValue<int64_t>("duration_ms"), 0);
  auto tail = last->getArray("log_tail");
  ASSERT_EQ(tail->size(), 5u);  // the last five of eight lines, oldest first
  EXPECT_EQ(tail->getObject(4)->getValue<std::string>("message"), "step 7 of 7");
  EXPECT_EQ(job->getArray("failures_30d")->size(), 30u);
  r = http("PATCH", "/api/v1/jobs/weekly", admin_, R"({"enabled": false, "report_recipients": ["a@b.c", "d@e.f"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(r.json()->getObject("job")->getValue<bool>("enabled"));
  EXPECT_EQ(r.json()->getObject("job")->getArray("report_recipients")->size(), 2u);
  r = http("PATCH", "/api/v1/jobs/weekly", admin_, R"({"report_recipients": ["not an address"]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("report_recipients[0]"), std::string::npos) << r.body;
  EXPECT_EQ(http("POST", "/api/v1/jobs", admin_, R"({"id": "weekly", "job_type": "hello"})").status, 409);
  r = http("GET", "/api/v1/cron/next?cron=0%206%20*%20*%201&time_zone=Europe/Stockholm&n=3", admin_);
  EXPECT_EQ(r.json()->getArray("fire_ms")->size(), 3u) << r.body;

  // The list sorts by every column and gives the last run's duration and the job's state.
  r = http("GET", "/api/v1/jobs?sort=duration&order=desc", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  auto first = r.json()->getArray("items")->getObject(0);
  EXPECT_EQ(first->getValue<std::string>("id"), "weekly") << r.body;  // the only job that ran
  EXPECT_EQ(first->getValue<std::string>("state"), "disabled");
  EXPECT_EQ(first->getObject("last_run")->getValue<int64_t>("duration_ms"),
            first->getObject("last_run")->getValue<int64_t>("finished_ms") -
                first->getObject("last_run")->getValue<int64_t>("started_ms"));
  EXPECT_GT(first->getObject("last_run")->getValue<int64_t>("duration_ms"), 0);
  for (const char* by : {"state", "description", "owner", "scope", "region", "enabled"})
    EXPECT_EQ(http("GET", std::string("/api/v1/jobs?sort=") + by, admin_).status, 200) << by;
  r = http("GET", "/api/v1/jobs?sort=scope&order=desc", admin_);
  EXPECT_EQ(r.json()->getArray("items")->getObject(0)->getValue<std::string>("scope"), "tenant:t2") << r.body;
  r = http("GET", "/api/v1/jobs?sort=colour", admin_);
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("sort: 'colour'"), std::string::npos) << r.body;

  // Deleting: jobs.write, a reason, and no run of the job pending or running.
  const int64_t done_id = last->getValue<int64_t>("id");
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/weekly?reason=no", tenant_admin_).status, 403);
  r = http("DELETE", "/api/v1/jobs/weekly", admin_);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("reason: a reason is required"), std::string::npos) << r.body;
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/weekly?reason=%20", admin_).status, 422);
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/nothing-here?reason=x", admin_).status, 404);
  r = http("POST", "/api/v1/jobs/weekly/run", admin_,
           R"({"reason": "later", "start_at_ms": )" + std::to_string(jobs::now_ms() + 3600000) + "}");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string waiting = std::to_string(r.json()->getArray("run_ids")->getElement<int64_t>(0));
  r = http("DELETE", "/api/v1/jobs/weekly?reason=retired", admin_);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("run " + waiting + " pending or running"), std::string::npos) << r.body;
  EXPECT_EQ(http("GET", "/api/v1/jobs/weekly", admin_).status, 200) << "a refused delete leaves the job";
  ASSERT_EQ(http("POST", "/api/v1/runs/" + waiting + "/cancel", admin_, R"({"reason": "retiring"})").status, 200);
  r = http("DELETE", "/api/v1/jobs/weekly?reason=retired", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("id"), "weekly");
  EXPECT_EQ(http("GET", "/api/v1/jobs/weekly", admin_).status, 404);
  EXPECT_EQ(inventory_ids(admin_).count("weekly"), 0u);
  EXPECT_EQ(http("DELETE", "/api/v1/jobs/weekly?reason=again", admin_).status, 404);
  // Its runs stay in the history, still naming it.
  r = http("GET", "/api/v1/runs?job_id=weekly", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  auto kept = r.json()->getArray("items");
  ASSERT_EQ(kept->size(), 2u) << r.body;
  EXPECT_EQ(kept->getObject(1)->getValue<int64_t>("id"), done_id);
  EXPECT_EQ(kept->getObject(1)->getValue<std::string>("scheduled_job_id"), "weekly");
  EXPECT_EQ(http("GET", "/api/v1/runs/" + std::to_string(done_id), admin_).status, 200);
  // Audited with the reason and the job as it was; the refusals too.
  auto audit = http("GET", "/api/v1/audit?action=job.delete", admin_).json()->getArray("items");
  Object::Ptr row, busy;
  for (size_t i = 0; i < audit->size(); ++i) {
    auto a = audit->getObject(static_cast<unsigned>(i));
    if (a->getValue<std::string>("outcome") == "ok") row = a;
    if (a->getValue<std::string>("outcome").find("pending or running") != std::string::npos) busy = a;
  }
  ASSERT_TRUE(row && busy) << "the delete and its refusal while a run waited";
  EXPECT_EQ(row->getValue<std::string>("target"), "weekly");
  EXPECT_EQ(row->getValue<std::string>("reason"), "retired");
  EXPECT_EQ(row->getValue<std::string>("outcome"), "ok");
  EXPECT_EQ(row->getValue<std::string>("actor"), "pat");
  auto before = row->getObject("params");
  ASSERT_TRUE(before) << "the job as it was";
  EXPECT_EQ(before->getValue<std::string>("cron"), "0 6 * * 1;30 18 * * 5");
  EXPECT_EQ(before->getValue<std::string>("scope"), "tenant:t1");
  EXPECT_EQ(busy->getValue<std::string>("outcome").rfind("refused: ", 0), 0u);
}

TEST_P(AdminHttpSqliteFile, ReadinessFailsNamingTheCauseWhileTheStoreCannotTakeWrites) {
  ASSERT_EQ(http("GET", "/readyz").status, 200);
  // SQLite's own size limit makes the store full for real.
  store::Store* st = kernel_->store();
  ASSERT_TRUE(st->execute("PRAGMA max_page_count = 1", {}, nullptr));
  Status s;
  for (int i = 0; i < 10000 && s; ++i) {
    std::vector<store::RunRow> runs(8);
    for (auto& r : runs) {
      r.job_type = "hello";
      r.params_json = "{\"pad\":\"" + std::string(3000, 'x') + "\"}";
    }
    s = st->create_runs(&runs);
  }
  ASSERT_FALSE(s) << "the store never filled up";
  auto r = http("GET", "/readyz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.head.getContentType(), "application/problem+json");
  EXPECT_NE(r.body.find("full"), std::string::npos) << r.body;
  // Room again: ready again, without a restart.
  ASSERT_TRUE(st->execute("PRAGMA max_page_count = 1073741823", {}, nullptr));
  r = http("GET", "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
}

// A second server on the admin API's address is refused, even one asking to
// share the port (SO_REUSEPORT, as Poco's ServerSocket(address) does): a
// second kernel started with the same listen address must fail to serve,
// never silently take a share of the connections with other tokens.
TEST_P(AdminHttp, ASecondServerOnTheListenAddressIsRefusedNotShared) {
  ASSERT_EQ(http("GET", "/healthz").status, 200);
  Poco::Net::ServerSocket other;
  EXPECT_THROW(other.bind(Poco::Net::SocketAddress("127.0.0.1", static_cast<uint16_t>(port_)), true, true),
               Poco::Exception);
}

}  // namespace
}  // namespace opk
