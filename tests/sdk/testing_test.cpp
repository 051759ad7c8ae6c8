// opk::testing::Host with the bundled hello and echo plugins and the
// testing fixture (tests/sdk/fixtures): loading, runs, the clock, cancel,
// the store and its fence, alerts, channels, routes, identity and audit,
// the event log's emit and the alert service.
#include <opskernel/json.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace opk::testing {
namespace {

using Json = nlohmann::json;

const std::string kFixture = std::string(OPK_TEST_PLUGIN_DIR) + "/testing_fixture.so";
const std::string kHello = std::string(OPK_BUNDLED_PLUGIN_DIR) + "/hello.so";
const std::string kEcho = std::string(OPK_BUNDLED_PLUGIN_DIR) + "/echo.so";

class TestingHost : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(host_.load(kFixture).is_ok()); }
  Host host_;
};

TEST(TestingLoad, RunsHelloInTenLines) {
  Host host;
  host.set_setting("greeting", "hej");
  ASSERT_TRUE(host.load(kHello).is_ok());
  auto r = host.run("hello", R"({"steps":2,"step_ms":0})", {.target_tenant = "acme"});
  EXPECT_EQ(r.status, OPK_OK);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL);
  EXPECT_EQ(r.summary, "greeted acme and counted to 2");
  EXPECT_TRUE(r.logged("hello, acme!"));
  ASSERT_FALSE(host.log_lines().empty());
  EXPECT_EQ(host.log_lines()[0].text, "hello plugin ready; greeting 'hej'");
  EXPECT_EQ(host.log_lines()[0].plugin, "hello");
}

TEST(TestingLoad, FailuresNameTheCause) {
  Host host;
  Status s = host.load("/nonexistent/plugin.so");
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("/nonexistent/plugin.so"), std::string::npos) << s.message();

  s = host.load(std::string(OPK_TEST_PLUGIN_DIR) + "/wrong_major_field.so");
  EXPECT_EQ(s.code(), OPK_ERR_INCOMPATIBLE) << s.message();
  EXPECT_NE(s.message().find("a different major version is never compatible"), std::string::npos) << s.message();

  s = host.load(std::string(OPK_TEST_PLUGIN_DIR) + "/no_entry.so");
  EXPECT_EQ(s.code(), OPK_ERR_NOT_FOUND) << s.message();

  host.set_setting("fail_init", "1");
  s = host.load(kFixture);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("init of plugin 'testing-fixture' failed"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("fail_init is set"), std::string::npos) << s.message();

  Host twice;
  ASSERT_TRUE(twice.load(kHello).is_ok());
  EXPECT_EQ(twice.load(kHello).code(), OPK_ERR_CONFLICT);
}

TEST(TestingLoad, AnActionIdTheKernelRefusesRefusesThePlugin) {
  Host host;
  const Status s = host.load(std::string(OPK_TEST_PLUGIN_DIR) + "/bad_action_id.so");
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("action 0: id 'two words' is invalid"), std::string::npos) << s.message();
}

TEST(TestingLoad, UnknownNamesAreNotFound) {
  Host host;
  EXPECT_EQ(host.run("nope").status, OPK_ERR_NOT_FOUND);
  EXPECT_EQ(host.evaluate("nope").status, OPK_ERR_NOT_FOUND);
  EXPECT_EQ(host.send("nope", {}).code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(host.request("GET", "/api/v1/nope").status, 404);
}

TEST_F(TestingHost, WaitAdvancesTheClockWithoutSleeping) {
  const int64_t start = host_.clock().now_ms();
  EXPECT_EQ(start, kClockStartMs);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = host_.run("fixture-wait", R"({"waits":30})");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(r.status, OPK_OK);
  EXPECT_EQ(r.summary, "waited 30 s");
  EXPECT_EQ(host_.clock().now_ms(), start + 30000);
  EXPECT_EQ(r.started_ms, start);
  EXPECT_EQ(r.finished_ms, start + 30000);
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].id, "wait");
  EXPECT_EQ(r.steps[0].summary, "waited enough");
  EXPECT_EQ(r.steps[0].end_ms, start + 30000);
  EXPECT_EQ(r.log[0].step, "wait");
  EXPECT_DOUBLE_EQ(r.progress, 100);
}

TEST_F(TestingHost, CancelAtAClockInstantCallsTheHookFromAnotherThread) {
  const int64_t start = host_.clock().now_ms();
  auto r = host_.run("fixture-wait", R"({"waits":100})", {.cancel_at_ms = start + 2500});
  EXPECT_EQ(r.status, OPK_ERR_CANCELLED);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(r.summary, "cancelled");
  EXPECT_EQ(r.exit_code, OPK_ERR_CANCELLED);
  EXPECT_EQ(host_.clock().now_ms(), start + 2500);
  EXPECT_TRUE(r.logged("cancel hook on another thread"));
  EXPECT_TRUE(r.logged("cancelled after 2 waits"));
  // The step left open ends with the run: ERROR.
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].outcome, OPK_OUTCOME_ERROR);
}

TEST_F(TestingHost, TheTypesTimeoutCancelsOnTheClock) {
  auto r = host_.run("fixture-wait", R"({"waits":100})");
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(r.logged("timed out after 60000 ms; cancelling"));
  EXPECT_EQ(r.finished_ms - r.started_ms, 60000);
}

TEST_F(TestingHost, CancelAfterRealTimeAndFromAnotherThread) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = host_.run("fixture-spin", "{}", {.cancel_after_ms = 20});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(r.status, OPK_ERR_CANCELLED);
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(r.logged("spinner asked to stop"));

  std::atomic<bool> stop{false};
  std::thread canceller([&] {
    while (!stop && !host_.cancel_run()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  r = host_.run("fixture-spin");
  stop = true;
  canceller.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(host_.cancel_run());
}

TEST(TestingRun, ParametersAreCheckedAgainstTheSchema) {
  Host host;
  ASSERT_TRUE(host.load(kHello).is_ok());
  auto r = host.run("hello", R"({"steps":5000})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_TRUE(r.log.empty());
  EXPECT_EQ(r.error, "parameters: steps: Expected number less than or equal to 1000.000000") << r.error;
  r = host.run("hello", R"({"colour":"red"})");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.error.find("colour"), std::string::npos) << r.error;
  EXPECT_EQ(host.run("hello", "not json").status, OPK_ERR_INVALID_ARGUMENT);
}

TEST(TestingLoad, AnUnusableSchemaRefusesThePlugin) {
  Host host;
  Status s = host.load(std::string(OPK_TEST_PLUGIN_DIR) + "/schema_bad_type.so");
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << s.message();
  EXPECT_NE(s.message().find("params_schema_json: not a usable JSON Schema"), std::string::npos) << s.message();
}

TEST(TestingRun, HelloCancelsOnTheClock) {
  Host host;
  ASSERT_TRUE(host.load(kHello).is_ok());
  auto r = host.run("hello", R"({"steps":1000,"step_ms":5})", {.cancel_at_ms = kClockStartMs + 52});
  EXPECT_EQ(r.status, OPK_ERR_CANCELLED);
  EXPECT_TRUE(r.cancelled);
  EXPECT_TRUE(r.logged("cancel requested; stopping"));
  EXPECT_TRUE(r.logged("step 10 of 1000"));
  EXPECT_TRUE(r.logged("cancelled at step 11 of 1000"));
  EXPECT_DOUBLE_EQ(r.progress, 1);
}

TEST_F(TestingHost, FailureEndsErrorWithItsMessageAsSummary) {
  auto r = host_.run("fixture-fail");
  EXPECT_EQ(r.status, OPK_ERR_FAILED);
  EXPECT_EQ(r.outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(r.exit_code, OPK_ERR_FAILED);
  EXPECT_EQ(r.summary, "the disk is on fire");
  EXPECT_FALSE(r.cancelled);
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].outcome, OPK_OUTCOME_ERROR);
  EXPECT_EQ(host_.run("fixture-fail", "[1]").status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(host_.run("fixture-fail", "").status, OPK_ERR_FAILED);
  EXPECT_EQ(host_.run("fixture-fail", "{}", {.dry_run = true}).status, OPK_ERR_INVALID_ARGUMENT);
}

// The store's tests on both stores a plugin may meet: SQLite and, on the
// tests' PostgreSQL server (OPK_TEST_PG), a schema of the Host's own.
class TestingHostStore : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << s.message();
    ASSERT_EQ(host_.store_dialect(), GetParam());
    s = host_.load(kFixture);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  bool pg() const { return GetParam() == "postgresql"; }
  Host host_;
};

INSTANTIATE_TEST_SUITE_P(Backends, TestingHostStore, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(TestingHostStore, StoreWritesOwnTablesThroughEveryCall) {
  auto r = host_.run("fixture-write", "{}", {.target_tenant = "acme"});
  ASSERT_EQ(r.status, OPK_OK) << r.summary << r.error;
  auto out = Json::parse(r.output_json, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.output_json;
  // Each store words a broken unique key its own way; the rest is alike.
  const std::string error = out["failed"].value("error", "");
  EXPECT_NE(error.find(pg() ? "statement 1: SQL: store (postgresql): plugin testing-fixture: duplicate key value"
                            : "statement 1: SQL: UNIQUE constraint failed: p_testing_fixture_notes.owner"),
            std::string::npos)
      << error;
  out["failed"].erase("error");
  EXPECT_EQ(out.dump(), R"({"changed":1,"conflict":8,"failed":{"statement":1},"rows":[["acme","7",null]],)"
                        R"("transaction":[{"changed":1,"rows":[]},{"changed":1,"rows":[[2]]}],)"
                        R"("typed":[["acme",7,null,2.5,"AP8="]]})");
  auto rows = host_.store_rows("SELECT owner, n FROM p_testing_fixture_notes ORDER BY owner");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], "acme");
  EXPECT_EQ(rows[1][0], "batch");
  EXPECT_EQ(rows[1][1], "2");
  auto migrations = host_.store_rows("SELECT owner, version, name FROM schema_migrations");
  ASSERT_EQ(migrations.size(), 1u);
  EXPECT_EQ(migrations[0][0], "testing-fixture");
  EXPECT_THROW(host_.store_rows("SELEC nonsense"), std::invalid_argument);
}

TEST_P(TestingHostStore, StoreRefusesTablesThatAreNotThePluginsOwn) {
  host_.store_rows("CREATE TABLE p_hello_notes (x INTEGER)");
  auto r = host_.run("fixture-trespass");
  ASSERT_EQ(r.status, OPK_OK);
  // On PostgreSQL the catalog is readable by every role, in the kernel too
  // ("schema": 0); the kernel's tables, another plugin's and a name
  // without the prefix are refused alike.
  EXPECT_EQ(r.output_json, std::string(R"({"read_runs":9,"write_runs":9,"other_plugin":9,"missing_other":2,)") +
                               R"("create_foreign":9,"pragma":9,"begin":9,"schema":)" + (pg() ? "0" : "9") +
                               R"(,"view":9,"index":9,"own":0})");
  bool named = false;
  for (auto& l : host_.log_lines())
    named |= l.text.rfind(
                 "store: SQL: table 'runs' is not one of plugin testing-fixture's own (named p_testing_fixture_...)",
                 0) == 0;
  EXPECT_TRUE(named);
  EXPECT_TRUE(host_
                  .store_rows(pg() ? "SELECT relname FROM pg_class WHERE relname IN ('evil', 'evil_i') AND "
                                     "relnamespace = current_schema()::regnamespace"
                                   : "SELECT name FROM sqlite_master WHERE name IN ('evil', 'evil_i')")
                  .empty());
}

TEST(TestingStoreChoice, EachPostgresqlHostHasItsOwnSchemaDroppedWithIt) {
  Host keeper;
  ASSERT_TRUE(keeper.use_store("postgresql").is_ok());
  ASSERT_TRUE(keeper.load(kFixture).is_ok());
  ASSERT_EQ(keeper.run("fixture-write", "{}", {.target_tenant = "keeper"}).status, OPK_OK);
  std::string schema;
  {
    Host other;
    ASSERT_TRUE(other.use_store("postgresql", std::getenv("OPK_TEST_PG") ? std::getenv("OPK_TEST_PG") : "").is_ok());
    ASSERT_TRUE(other.load(kFixture).is_ok());
    ASSERT_EQ(other.run("fixture-write", "{}", {.target_tenant = "other"}).status, OPK_OK);
    // Neither sees the other's rows: the same plugin, a schema each.
    auto mine = other.store_rows("SELECT owner FROM p_testing_fixture_notes ORDER BY owner");
    ASSERT_EQ(mine.size(), 2u);
    EXPECT_EQ(mine[1][0], "other");
    schema = *other.store_rows("SELECT current_schema()")[0][0];
  }
  EXPECT_EQ(keeper.store_rows("SELECT owner FROM p_testing_fixture_notes ORDER BY owner")[1][0], "keeper");
  // Gone with its Host (dropped in the background, at once): the schema,
  // its tables and the plugin's role.
  auto gone = [&] {
    return keeper.store_rows("SELECT 1 FROM pg_namespace WHERE nspname = '" + schema + "'").empty() &&
           keeper.store_rows("SELECT 1 FROM pg_roles WHERE starts_with(rolname, '" + schema + "_')").empty();
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!gone() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(gone()) << schema;
}

// Hosts gone while their schemas' drops wait (here on a lock the test
// holds) leave at most four drops queued or running, each holding its
// Host's connection: the fifth Host's destructor waits for room, and every
// schema goes once the lock is released.
TEST(TestingStoreChoice, AtMostFourSchemaDropsAreInFlight) {
  const char* server = std::getenv("OPK_TEST_PG");
  ASSERT_TRUE(server) << "OPK_TEST_PG is not set: run through ctest";
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdb(server), &PQfinish);
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  auto exec = [&](const std::string& sql) {
    PGresult* r = PQexec(c.get(), sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string first = ok && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    EXPECT_TRUE(ok) << sql << ": " << PQresultErrorMessage(r);
    PQclear(r);
    return first;
  };
  std::vector<std::unique_ptr<Host>> hosts;
  std::string ours = "false";  // a drop of one of the Hosts' schemas
  std::vector<std::string> schemas;
  for (int i = 0; i < 6; ++i) {
    hosts.push_back(std::make_unique<Host>());
    ASSERT_TRUE(hosts.back()->use_store("postgresql").is_ok());
    schemas.push_back(*hosts.back()->store_rows("SELECT current_schema()")[0][0]);
    ours += " OR position('\"" + schemas.back() + "\"' in query) > 0";
  }
  exec("BEGIN");
  for (const auto& schema : schemas) exec("LOCK TABLE \"" + schema + "\".schema_migrations IN ACCESS SHARE MODE");
  std::atomic<int> destroyed{0};
  std::thread destroyer([&] {
    for (auto& h : hosts) {
      h.reset();
      ++destroyed;
    }
  });
  // The drops waiting on the test's locks (the server's view of its
  // sessions is taken once a transaction unless cleared).
  auto waiting = [&] {
    return std::stoi(
        exec("SELECT pg_stat_clear_snapshot(); SELECT count(*) FROM pg_stat_activity WHERE "
             "wait_event_type = 'Lock' AND (" +
             ours + ")"));
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (waiting() < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(waiting(), 4);
  EXPECT_EQ(destroyed.load(), 4);
  exec("COMMIT");
  destroyer.join();
  auto left = [&] {
    std::string in;
    for (const auto& schema : schemas) in += (in.empty() ? "'" : ", '") + schema + "'";
    return std::stoi(exec("SELECT count(*) FROM pg_namespace WHERE nspname IN (" + in + ")"));
  };
  const auto gone_by = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (left() > 0 && std::chrono::steady_clock::now() < gone_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(left(), 0);
}

TEST(TestingStoreChoice, BadChoicesAreNamed) {
  Host host;
  Status s = host.use_store("mysql");
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("backend 'mysql' is not sqlite or postgresql"), std::string::npos) << s.message();
  s = host.use_store("postgresql", "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=5");
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_NE(s.message().find("cannot connect to 'host=127.0.0.1 port=1"), std::string::npos) << s.message();
  EXPECT_EQ(host.store_dialect(), "sqlite");  // unchanged
  ASSERT_TRUE(host.load(kFixture).is_ok());
  s = host.use_store("postgresql");
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("must come before the first load"), std::string::npos) << s.message();
  // The plugin keeps the store it was loaded with.
  EXPECT_EQ(host.run("fixture-write").status, OPK_OK);
  EXPECT_EQ(host.store_dialect(), "sqlite");
}

TEST_F(TestingHost, AlertsRaisedAndClearedWithEveryField) {
  host_.clock().set(kClockStartMs + 1000);
  auto e = host_.evaluate("fixture-alerts");
  ASSERT_EQ(e.status, OPK_OK) << e.error;
  ASSERT_EQ(e.raised.size(), 2u);
  EXPECT_EQ(e.raised[0].severity, OPK_SEVERITY_CRITICAL);
  EXPECT_EQ(e.raised[0].area, "storage");
  EXPECT_EQ(e.raised[0].title, "Disk full");
  EXPECT_EQ(e.raised[0].message, "node-1 has no room");
  EXPECT_EQ(e.raised[0].related_type, "node");
  EXPECT_EQ(e.raised[0].related_id, "node-1");
  EXPECT_EQ(e.raised[0].scope, "tenant:acme");
  EXPECT_EQ(e.raised[0].details_json, R"({"free":0})");
  EXPECT_EQ(e.raised[0].type, "fixture-alerts");  // (1.3) none given: the source id
  EXPECT_EQ(e.raised[1].area, "other");
  ASSERT_EQ(e.escalated.size(), 1u);
  EXPECT_EQ(e.escalated[0].related_id, "node-1");
  EXPECT_EQ(e.escalated[0].reason, "still full");
  ASSERT_EQ(e.cleared.size(), 1u);
  EXPECT_EQ(e.cleared[0].second, "node-2");
  ASSERT_EQ(e.log.size(), 1u);
  EXPECT_EQ(e.log[0].text, "evaluating at " + std::to_string(kClockStartMs + 1000));
  ASSERT_EQ(host_.open_alerts().size(), 1u);
  EXPECT_EQ(host_.open_alerts()[0].related_id, "node-1");
  EXPECT_EQ(host_.open_alerts()[0].escalation_level, 1);
}

// {"status", "answer"} of one call to the event or alert service.
Json call(Host& host, const std::string& service, const std::string& operation, const Json& request) {
  const RunResult r =
      host.run("fixture-service", Json{{"service", service}, {"operation", operation}, {"request", request}}.dump());
  EXPECT_EQ(r.status, OPK_OK) << r.summary;
  return Json::parse(r.output_json, nullptr, false);
}

TEST_F(TestingHost, EmittedEventsAreKeptOncePerKey) {
  host_.add_node("tenant:acme", "platform");
  host_.clock().set(kClockStartMs + 5);
  const Json emit = {{"name", "quota.exceeded"},
                     {"scope", "tenant:acme"},
                     {"subject", "quota:disk"},
                     {"payload", {{"used", 3}}},
                     {"key", "quota:disk:2026-01"}};
  Json a = call(host_, "events", "emit", emit);
  EXPECT_EQ(a["status"], OPK_OK);
  EXPECT_EQ(a["answer"], (Json{{"seq", 1}, {"kind", "plugin.testing-fixture.quota.exceeded"}, {"duplicate", false}}));
  a = call(host_, "events", "emit", emit);
  EXPECT_EQ(a["answer"]["seq"], 1);
  EXPECT_EQ(a["answer"]["duplicate"], true);
  a = call(host_, "events", "emit", {{"name", "quota.exceeded"}});  // no key: always written
  EXPECT_EQ(a["answer"]["seq"], 2);
  const auto events = host_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].plugin, "testing-fixture");
  EXPECT_EQ(events[0].kind, "plugin.testing-fixture.quota.exceeded");
  EXPECT_EQ(events[0].scope, "tenant:acme");
  EXPECT_EQ(events[0].subject, "quota:disk");
  EXPECT_EQ(events[0].payload_json, R"({"used":3})");
  EXPECT_EQ(events[0].key, "quota:disk:2026-01");
  EXPECT_EQ(events[0].time_ms, kClockStartMs + 5);
  EXPECT_EQ(events[1].scope, "platform");
  EXPECT_EQ(events[1].payload_json, "{}");

  // Refusals name the field and write nothing.
  for (const auto& [bad, field] :
       std::vector<std::pair<Json, std::string>>{{{{"name", "Quota"}}, "name: "},
                                                 {{{"name", "q"}, {"scope", "tenant:nobody"}}, "scope: "},
                                                 {{{"name", "q"}, {"key", ""}}, "key: "},
                                                 {{{"name", "q"}, {"payload", 3}}, "payload: "}}) {
    a = call(host_, "events", "emit", bad);
    EXPECT_EQ(a["status"], OPK_ERR_INVALID_ARGUMENT) << bad;
    EXPECT_EQ(a["answer"].value("error", "").rfind(field, 0), 0u) << a;
  }
  EXPECT_EQ(call(host_, "events", "read", Json::object())["status"], OPK_ERR_UNSUPPORTED);
  EXPECT_EQ(host_.events().size(), 2u);
}

TEST_F(TestingHost, AlertServiceActsOnThePluginsOwnSources) {
  host_.add_node("tenant:acme", "platform");
  const Json raise = {{"source", "fixture-alerts"}, {"severity", "warning"},  {"title", "Disk low"},
                      {"related_type", "node"},     {"related_id", "node-9"}, {"scope", "tenant:acme"},
                      {"details", {{"free", 5}}}};
  Json a = call(host_, "alerts", "raise", raise);
  EXPECT_EQ(a["status"], OPK_OK) << a;
  EXPECT_EQ(a["answer"]["alert"]["severity"], "warning");
  ASSERT_EQ(host_.open_alerts().size(), 1u);
  EXPECT_EQ(host_.open_alerts()[0].area, "storage");  // the source's
  EXPECT_EQ(host_.open_alerts()[0].details_json, R"({"free":5})");
  a = call(host_, "alerts", "escalate",
           {{"source", "fixture-alerts"}, {"related_type", "node"}, {"related_id", "node-9"}, {"reason", "lower"}});
  EXPECT_EQ(a["answer"]["alert"]["escalation_level"], 1);
  a = call(host_, "alerts", "list", {{"source", "fixture-alerts"}});
  ASSERT_EQ(a["answer"]["alerts"].size(), 1u) << a;
  EXPECT_EQ(a["answer"]["alerts"][0]["status"], "escalated");
  EXPECT_EQ(call(host_, "alerts", "list", {{"source", "other"}})["answer"]["alerts"].size(), 0u);

  a = call(host_, "alerts", "raise", {{"source", "cost"}, {"severity", "warning"}, {"title", "x"}});
  EXPECT_EQ(a["status"], OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["answer"]["error"], "source: 'cost' is not an alert source of plugin 'testing-fixture'");
  a = call(host_, "alerts", "escalate",
           {{"source", "fixture-alerts"}, {"related_type", "node"}, {"related_id", "node-1"}, {"reason", "x"}});
  EXPECT_EQ(a["status"], OPK_ERR_NOT_FOUND);

  a = call(host_, "alerts", "clear",
           {{"source", "fixture-alerts"}, {"related_type", "node"}, {"related_id", "node-9"}});
  EXPECT_EQ(a["answer"]["alert"]["status"], "closed");
  EXPECT_TRUE(host_.open_alerts().empty());
  a = call(host_, "alerts", "clear",
           {{"source", "fixture-alerts"}, {"related_type", "node"}, {"related_id", "node-9"}});
  EXPECT_TRUE(a["answer"]["alert"].is_null());
}

TEST_F(TestingHost, ChannelSends) {
  EXPECT_TRUE(host_.send("fixture-channel", {.recipients = {"ops@example.com"}, .subject = "Hi"}).is_ok());
  EXPECT_EQ(host_.log_lines().back().text, "sent 'Hi' to ops@example.com as text/plain");
  Status s = host_.send("fixture-channel", {});
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("no recipients"), std::string::npos) << s.message();
}

// A channel with only send is delivered through send, its status deciding
// the flags, as opk.channels/1 does; it checks no recipient.
TEST_F(TestingHost, ChannelDeliversThroughSendWithoutDeliver) {
  auto ok = host_.deliver("fixture-channel", {.recipients = {"ops@example.com"}, .subject = "Hi"});
  EXPECT_EQ(ok.status, OPK_OK) << ok.detail;
  EXPECT_FALSE(ok.permanent());
  auto bad = host_.deliver("fixture-channel", {});
  EXPECT_EQ(bad.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(bad.permanent());
  EXPECT_NE(bad.detail.find("no recipients"), std::string::npos) << bad.detail;
  EXPECT_EQ(host_.check_recipient("fixture-channel", "anything at all").status, OPK_OK);
  auto unknown = host_.deliver("nope", {});
  EXPECT_EQ(unknown.status, OPK_ERR_NOT_FOUND);
  EXPECT_EQ(unknown.detail, "unknown channel 'nope'");
  EXPECT_EQ(host_.check_recipient("nope", "x").status, OPK_ERR_NOT_FOUND);
}

TEST_F(TestingHost, RoutesMatchAndCheckPermissions) {
  auto ok = host_.request("GET", "/api/v1/fixture/items/a%20b?q=x+y");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, R"({"name":"a b","q":"x y","user":"admin"})");
  EXPECT_EQ(ok.header("content-type"), "application/json");

  EXPECT_EQ(host_.request("GET", "/api/v1/fixture/health", "", Principal::none()).status, 200);
  auto anon = host_.request("GET", "/api/v1/fixture/items/a", "", Principal::none());
  EXPECT_EQ(anon.status, 401);
  EXPECT_EQ(anon.header("www-authenticate"), "Bearer");
  auto wrong = host_.request("DELETE", "/api/v1/fixture/items/a");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("allow"), "GET");
  EXPECT_EQ(host_.request("GET", "/api/v1/fixture").status, 404);

  const Principal user{"u1", "TenantAdministrator", "tenant:acme"};
  auto refused = host_.request("POST", "/api/v1/fixture/items", R"({"a":1})", user);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.header("content-type"), "application/problem+json");
  EXPECT_NE(refused.body.find("lacks the permission 'fixture.write'"), std::string::npos) << refused.body;
  host_.grant("TenantAdministrator", "fixture.write");
  auto created = host_.request("POST", "/api/v1/fixture/items", R"({"a":1})", user);
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(created.body, R"({"forged":9})");

  auto failed = host_.request("GET", "/api/v1/fixture/fail");
  EXPECT_EQ(failed.status, 500);
  EXPECT_NE(host_.log_lines().back().text.find("handler failed on purpose"), std::string::npos);
}

TEST_F(TestingHost, AuditRowsNameTheIssuedActor) {
  host_.grant("TenantAdministrator", "fixture.write");
  host_.clock().advance(5);
  host_.request("POST", "/api/v1/fixture/items", R"({"a":1})", {"u1", "TenantAdministrator", "tenant:acme"});
  auto rows = host_.audit_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].plugin, "testing-fixture");
  EXPECT_EQ(rows[0].user_id, "u1");
  EXPECT_EQ(rows[0].scope, "tenant:acme");
  EXPECT_EQ(rows[0].action, "fixture.create");
  EXPECT_EQ(rows[0].target, "item:one");
  EXPECT_EQ(rows[0].after_json, R"({"a":1})");
  EXPECT_EQ(rows[0].outcome, "success");
  EXPECT_EQ(rows[0].time_ms, kClockStartMs + 5);
}

TEST_F(TestingHost, IdentityFromRegisteredTokens) {
  host_.add_token("t-1", "u1", "TenantUser", "partner:p1");
  host_.add_node("tenant:acme", "partner:p1");
  host_.grant("TenantUser", "fixture.write");
  auto r = host_.request("GET", "/api/v1/fixture/whoami/t-1");
  EXPECT_EQ(r.body, R"({"user":"u1","role":"TenantUser","acme":1,"may_write":1,"system":"system:testing-fixture"})");
  EXPECT_EQ(host_.request("GET", "/api/v1/fixture/whoami/unknown").status, 401);
}

TEST_F(TestingHost, ServicesListRoutesAndPermissionsWithoutTheJobService) {
  host_.grant("TenantUser", "runs.start");
  auto r = host_.request("GET", "/api/v1/fixture/services");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind(R"({"jobs":false,"routes":[{"plugin":"testing-fixture","feature":"fixture",)"
                         R"("method":"GET","path":"/api/v1/fixture/health","summary":"Health","anonymous":true,)"
                         R"("permission":null},)",
                         0),
            0u)
      << r.body;
  EXPECT_NE(r.body.find(R"("permission":"fixture.write")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"({"name":"runs.start","description":"","owner":"kernel",)"
                        R"("roles":["PlatformAdministrator","TenantUser"]})"),
            std::string::npos)
      << r.body;
}

TEST(TestingEcho, EchoAnswersWhatItWasSent) {
  Host host;
  ASSERT_TRUE(host.load(kEcho).is_ok());
  auto r = host.request("GET", "/api/v1/echo/hi?x=1", "", {"ann", "TenantUser", "tenant:acme"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"word":"hi","query":{"x":"1"},"user":"ann"})");
  auto p = host.request("POST", "/api/v1/echo", "raw", Principal::administrator(), {{"Content-Type", "text/x-raw"}});
  EXPECT_EQ(p.body, "raw");
  EXPECT_EQ(p.header("content-type"), "text/x-raw");
}

}  // namespace
}  // namespace opk::testing
