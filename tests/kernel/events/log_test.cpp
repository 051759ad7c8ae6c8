// The event log on a real SQLite store: events written only with the change
// they report (a completion that does not complete its run writes none), seqs
// in commit order, reads that wait and are woken, acknowledgements, retention
// that keeps what an active consumer has not acknowledged, plugins' events
// refused with the field named, idempotency keys (one event per plugin and
// key, across a reopen, pruning, concurrent emits and a second store on the
// file), and the documents' kinds and fields.
#include <gtest/gtest.h>
#include <opskernel/json.hpp>

#include <atomic>
#include <thread>

#include "clock/clock.h"
#include "events/json_text.h"
#include "events/log.h"
#include "store/store.h"
#include "support/test_util.h"

namespace opk::events {
namespace {

using Json = nlohmann::json;

constexpr int64_t kDay = 24LL * 3600 * 1000;

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store::open_sqlite((dir_.path() / "opk.db").string(), false, &store_));
    Options o;
    o.retention_ms = 7 * kDay;
    o.prune_batch = 3;
    o.documents.console_url = "https://ops.example.com";
    o.documents.path_of = [](const std::string& node) -> std::string {
      if (node == "tenant:acme") return "/platform/distributor:d/partner:p/tenant:acme/";
      if (node == "partner:p") return "/platform/distributor:d/partner:p/";
      return "";
    };
    log_ = std::make_unique<Log>(*store_, o);
  }
  void TearDown() override { log_.reset(); }

  // A PENDING run of type "t" stored, returned with its id.
  store::RunRow new_run(const std::string& tenant = "") {
    store::RunRow r;
    r.job_type = "t";
    r.params_json = R"({"n":1})";
    r.target_tenant = tenant;
    r.user_id = "ann";
    r.role = "PlatformAdministrator";
    r.scope = "platform";
    std::vector<store::RunRow> rows = {r};
    EXPECT_TRUE(store_->create_runs(&rows));
    return rows[0];
  }
  // The completion of `run` with its events, built as the engine does.
  store::Completion ended(const store::RunRow& run, const std::string& outcome, RunEnd how = RunEnd::finished,
                          int64_t started = 1000, int64_t finished = 1100, uint64_t target = 0) {
    store::Completion c;
    c.run_id = run.id;
    c.outcome = outcome;
    c.finished_ms = finished;
    c.summary = "done";
    c.output_json = R"({"rows":3})";
    RunFacts f;
    f.run = &run;
    f.end = &c;
    f.started_ms = started;
    f.scope = run_scope(run, "");
    f.node = "n1";
    f.target_duration_ms = target;
    f.how = how;
    log_->documents().run_ended(f, &c.events);
    return c;
  }
  std::vector<store::EventRow> all() { return store_->events_after(0, 1000).value(); }

  test::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Log> log_;
};

TEST_F(EventLogTest, ARunsEventIsWrittenOnlyByTheCompletionThatCompletesIt) {
  const store::RunRow run = new_run("acme");
  ASSERT_TRUE(store_->complete_runs({ended(run, store::kError)}));
  // The watchdog gave up on it first, then the plugin returned: the second
  // completion changes nothing, and writes no second event.
  ASSERT_TRUE(store_->complete_runs({ended(run, store::kNormal)}));
  auto events = all();
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e.seq, 1);
  EXPECT_EQ(e.kind, kRunFailed);
  EXPECT_EQ(e.subject, "run:" + std::to_string(run.id));
  EXPECT_EQ(e.scope, "tenant:acme");
  EXPECT_EQ(e.scope_path, "/platform/distributor:d/partner:p/tenant:acme/");
  EXPECT_EQ(e.time_ms, 1100);
  Json doc = Json::parse(e.payload_json);
  EXPECT_EQ(doc["run"]["id"], run.id);
  EXPECT_EQ(doc["run"]["status"], "error");
  EXPECT_EQ(doc["run"]["outcome"], "ERROR");
  EXPECT_EQ(doc["run"]["params"], Json({{"n", 1}}));
  EXPECT_EQ(doc["run"]["output"], Json({{"rows", 3}}));
  EXPECT_EQ(doc["run"]["duration_ms"], 100);
  EXPECT_EQ(doc["run"]["requested_by"]["user_id"], "ann");
  EXPECT_EQ(doc["run"]["node"], "n1");
  EXPECT_FALSE(doc["run"].contains("scheduled_job_id")) << "not set: left out";
  EXPECT_EQ(doc["tenant"], "tenant:acme");
  EXPECT_EQ(doc["links"]["run"], "https://ops.example.com/administration/runs/" + std::to_string(run.id));
  EXPECT_FALSE(doc["links"].contains("job"));

  // complete_pending writes its events only when the run was still pending.
  const store::RunRow p = new_run();
  store::Completion c = ended(p, store::kError);
  c.cancelled_by = "ann";
  c.events.clear();
  RunFacts f{&p, &c, 0, "platform", "n1", 0, RunEnd::finished, false};
  log_->documents().run_ended(f, &c.events);
  bool changed = false;
  ASSERT_TRUE(store_->complete_pending(c, &changed));
  EXPECT_TRUE(changed);
  ASSERT_TRUE(store_->complete_pending(c, &changed));
  EXPECT_FALSE(changed);
  events = all();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, kRunCancelled);
  EXPECT_EQ(Json::parse(events[1].payload_json)["run"]["status"], "cancelled");
}

TEST_F(EventLogTest, EachEndHasItsKindAndALateRunIsOverItsTarget) {
  struct Case {
    std::string outcome;
    RunEnd how;
    std::string cancelled_by;
    const char* kind;
  };
  const std::vector<Case> cases = {
      {store::kNormal, RunEnd::finished, "", kRunCompleted}, {store::kWarning, RunEnd::finished, "", kRunWarning},
      {store::kError, RunEnd::finished, "", kRunFailed},     {store::kError, RunEnd::finished, "kernel", kRunCancelled},
      {store::kError, RunEnd::timed_out, "", kRunTimedOut},  {store::kError, RunEnd::recovered, "", kRunRecovered}};
  for (const auto& k : cases) {
    const store::RunRow run = new_run();
    store::Completion c;
    c.run_id = run.id;
    c.outcome = k.outcome;
    c.cancelled_by = k.cancelled_by;
    c.finished_ms = 5000;
    RunFacts f{&run, &c, 1000, "platform", "n1", 0, k.how, true};
    std::vector<store::EventRow> rows;
    log_->documents().run_ended(f, &rows);
    ASSERT_EQ(rows.size(), 1u) << k.kind;
    EXPECT_EQ(rows[0].kind, k.kind);
    EXPECT_EQ(Json::parse(rows[0].payload_json).contains("requeued"), k.how == RunEnd::recovered) << k.kind;
    // With a target of 1 s, a run of 4 s is over it, unless cancelled or recovered.
    f.target_duration_ms = 1000;
    rows.clear();
    log_->documents().run_ended(f, &rows);
    const bool over = k.how != RunEnd::recovered && k.cancelled_by.empty();
    ASSERT_EQ(rows.size(), over ? 2u : 1u) << k.kind;
    if (over) {
      EXPECT_EQ(rows[1].kind, kRunOverTarget);
      EXPECT_EQ(Json::parse(rows[1].payload_json)["over_target_ms"], 3000);
    }
  }
  // Not over: exactly on target.
  const store::RunRow run = new_run();
  store::Completion c;
  c.run_id = run.id;
  c.finished_ms = 2000;
  RunFacts f{&run, &c, 1000, "platform", "", 1000, RunEnd::finished, false};
  std::vector<store::EventRow> rows;
  log_->documents().run_ended(f, &rows);
  EXPECT_EQ(rows.size(), 1u);
}

TEST_F(EventLogTest, DocumentsAreValidJsonWhateverAPluginWrote) {
  const store::RunRow run = new_run();
  store::Completion c;
  c.run_id = run.id;
  c.finished_ms = 10;
  c.summary = std::string("bad \xff\xfe utf-8, a \"quote\", a tab\t and a \x01 control");
  c.output_json = "not json {";
  RunFacts f{&run, &c, 0, "platform", "", 0, RunEnd::finished, false};
  std::vector<store::EventRow> rows;
  log_->documents().run_ended(f, &rows);
  ASSERT_EQ(rows.size(), 1u);
  Json doc = Json::parse(rows[0].payload_json);   // throws if not JSON
  EXPECT_EQ(doc["run"]["output"], "not json {");  // kept, as text
  EXPECT_NE(doc["run"]["summary"].get<std::string>().find("\"quote\""), std::string::npos);
  EXPECT_NE(doc["run"]["summary"].get<std::string>().find("\xEF\xBF\xBD"), std::string::npos);
  // Too large an output is left out, its size given.
  c.output_json = "\"" + std::string(kMaxOutputBytes, 'a') + "\"";
  rows.clear();
  log_->documents().run_ended(f, &rows);
  doc = Json::parse(rows[0].payload_json);
  EXPECT_FALSE(doc["run"].contains("output"));
  EXPECT_EQ(doc["run"]["output_bytes"], kMaxOutputBytes + 2);

  std::string s;
  append_json_string("\xE2\x82\xAC \xED\xA0\x80 \xC0\xAF", &s);  // euro sign, a surrogate, an overlong '/'
  EXPECT_EQ(Json::parse(s), "\xE2\x82\xAC \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(EventLogTest, AlertChangesWriteTheirEventsInTheSaveAndOnlyTheListedOnes) {
  store::AlertRow a;
  a.source = "custom";
  a.type = "custom";
  a.severity = "warning";
  a.title = "Disk";
  a.related_type = "disk";
  a.related_id = "d1";
  a.scope = "tenant:acme";
  a.scope_level = "tenant";
  a.scope_path = "/platform/distributor:d/partner:p/tenant:acme/";
  a.first_seen_ms = a.last_seen_ms = 100;
  std::vector<store::AlertSave> saves = {{a, {{0, 0, 100, "raised", "ann", "", "{}"}}}};
  ASSERT_TRUE(store_->save_alerts(&saves));
  a = saves[0].row;
  // An update that only changes the title makes no event; a severity change does.
  std::vector<store::AlertSave> title = {{a, {{0, 0, 101, "updated", "x", "", R"({"was":{"severity":"warning"}})"}}}};
  ASSERT_TRUE(store_->save_alerts(&title));
  a.severity = "critical";
  std::vector<store::AlertSave> sev = {{a, {{0, 0, 102, "updated", "x", "", R"({"was":{"severity":"warning"}})"}}}};
  ASSERT_TRUE(store_->save_alerts(&sev));
  std::vector<store::AlertSave> more = {{a,
                                         {{0, 0, 103, "escalated", "kernel", "rule", R"({"level":1})"},
                                          {0, 0, 104, "acknowledged", "ann", "", "{}"},
                                          {0, 0, 105, "silenced", "ann", "", R"({"until_ms":9999})"},
                                          {0, 0, 106, "silenced", "ann", "", R"({"until_ms":null})"},
                                          {0, 0, 107, "closed", "ann", "fixed", R"({"kind":"manual"})"}}}};
  ASSERT_TRUE(store_->save_alerts(&more));
  std::vector<std::string> kinds;
  for (const auto& e : all()) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{kAlertOpened, kAlertUpdated, kAlertEscalated, kAlertAcknowledged,
                                             kAlertSilenced, kAlertClosed}));
  const auto closed = all().back();
  EXPECT_EQ(closed.subject, "alert:" + std::to_string(a.id));
  EXPECT_EQ(closed.scope, "tenant:acme");
  Json doc = Json::parse(closed.payload_json);
  EXPECT_EQ(doc["alert"]["id"], a.id);
  EXPECT_EQ(doc["change"]["reason"], "fixed");
  EXPECT_EQ(doc["change"]["details"]["kind"], "manual");
  EXPECT_EQ(doc["links"]["alert"], "https://ops.example.com/administration/alerts/" + std::to_string(a.id));

  // A save that fails writes no event either (all or nothing).
  const size_t before = all().size();
  store::AlertRow ghost = a;
  ghost.id = 999;
  std::vector<store::AlertSave> bad = {{a, {{0, 0, 108, "escalated", "k", "", "{}"}}},
                                       {ghost, {{0, 0, 108, "escalated", "k", "", "{}"}}}};
  EXPECT_EQ(store_->save_alerts(&bad).code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(all().size(), before);
}

TEST_F(EventLogTest, StaleRunsGetTheirEventInTheFlaggingTransaction) {
  const store::RunRow r = new_run();
  std::vector<int64_t> skipped;
  ASSERT_TRUE(store_->mark_running({r.id}, 1000, "n1", &skipped));
  int64_t n = 0;
  auto build = [&](const store::RunRow& run, std::vector<store::EventRow>* out) {
    log_->documents().run_stale(run, run_scope(run, ""), out);
  };
  ASSERT_TRUE(store_->flag_stale(2000, &n, build));
  EXPECT_EQ(n, 1);
  ASSERT_TRUE(store_->flag_stale(2000, &n, build));  // flagged already: nothing, no second event
  EXPECT_EQ(n, 0);
  auto events = all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, kRunStale);
  Json doc = Json::parse(events[0].payload_json);
  EXPECT_EQ(doc["run"]["status"], "running");
  EXPECT_EQ(doc["run"]["started_ms"], 1000);
  EXPECT_TRUE(doc.contains("running_ms"));
}

TEST_F(EventLogTest, PluginEventsAreCheckedAndNamedByThePlugin) {
  store::EventRow e;
  ASSERT_TRUE(log_->emit("acme-plugin", "widget.created", "tenant:acme", "widget:7", R"({"w":7})", &e));
  EXPECT_EQ(e.kind, "plugin.acme-plugin.widget.created");
  EXPECT_EQ(e.seq, 1);
  EXPECT_EQ(e.scope_path, "/platform/distributor:d/partner:p/tenant:acme/");
  struct Bad {
    std::string name, scope, subject, payload, field;
  };
  for (const auto& b :
       std::vector<Bad>{{"", "", "", "", "name:"},
                        {"Widget Created", "", "", "", "name:"},
                        {std::string(65, 'a'), "", "", "", "name:"},
                        {"w", "tenant:nobody", "", "", "scope:"},
                        {"w", "", std::string(201, 's'), "", "subject:"},
                        {"w", "", "", "[1,2]", "payload:"},
                        {"w", "", "", "{", "payload:"},
                        {"w", "", "", "{\"a\":\"" + std::string(kMaxPayloadBytes, 'a') + "\"}", "payload:"}}) {
    Status s = log_->emit("p", b.name, b.scope, b.subject, b.payload, nullptr);
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << b.field;
    EXPECT_EQ(s.message().rfind(b.field, 0), 0u) << s.message();
  }
  EXPECT_EQ(all().size(), 1u);
  store::EventRow got;
  ASSERT_TRUE(log_->get(1, &got));
  EXPECT_EQ(Json::parse(Log::to_json(got))["payload"]["w"], 7);
  EXPECT_EQ(log_->get(2, &got).code(), OPK_ERR_NOT_FOUND);
}

TEST_F(EventLogTest, AKeyedEmitWritesOneEventPerPluginAndKey) {
  store::EventRow e;
  bool dup = true;
  ASSERT_TRUE(log_->emit("billing", "invoice.overdue", "tenant:acme", "invoice:1", R"({"n":1})", &e,
                         "invoice-overdue:1", &dup));
  EXPECT_FALSE(dup);
  const int64_t first = e.seq;
  EXPECT_EQ(first, 1);
  // Again, even with another name and payload: nothing written, the first seq.
  e = {};
  ASSERT_TRUE(log_->emit("billing", "invoice.late", "", "invoice:1", R"({"n":2})", &e, "invoice-overdue:1", &dup));
  EXPECT_TRUE(dup);
  EXPECT_EQ(e.seq, first);
  EXPECT_EQ(all().size(), 1u);
  // Another plugin's same key, and the plugin's other key, are other events.
  ASSERT_TRUE(log_->emit("dunning", "invoice.overdue", "", "", "", &e, "invoice-overdue:1", &dup));
  EXPECT_FALSE(dup);
  EXPECT_EQ(e.seq, 2);
  ASSERT_TRUE(log_->emit("billing", "invoice.overdue", "", "", "", &e, "invoice-overdue:2", &dup));
  EXPECT_FALSE(dup);
  EXPECT_EQ(e.seq, 3);
  // Without a key every emit writes.
  ASSERT_TRUE(log_->emit("billing", "x", "", "", "", &e));
  ASSERT_TRUE(log_->emit("billing", "x", "", "", "", &e, "", &dup));
  EXPECT_FALSE(dup);
  EXPECT_EQ(all().size(), 5u);
  auto events = all();
  EXPECT_EQ(Json::parse(events[0].payload_json)["n"], 1) << "the first payload is kept";
  // Bad keys and bad requests under a used key are refused before the key
  // is looked at; nothing is written.
  for (const std::string& key :
       {std::string(kMaxKeyBytes + 1, 'k'), std::string("a\nb"), std::string("t\tab"), std::string("del\x7f")}) {
    Status s = log_->emit("billing", "x", "", "", "", nullptr, key, &dup);
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << key;
    EXPECT_EQ(s.message().rfind("key:", 0), 0u) << s.message();
  }
  EXPECT_EQ(log_->emit("billing", "Bad Name", "", "", "", nullptr, "invoice-overdue:1", &dup).code(),
            OPK_ERR_INVALID_ARGUMENT);
  ASSERT_TRUE(log_->emit("billing", "x", "", "", "", &e, std::string(kMaxKeyBytes, 'k'), &dup));
  EXPECT_FALSE(dup);
  ASSERT_TRUE(log_->emit("billing", "x", "", "", "", &e, "fakt\xc3\xbcra 7", &dup));  // UTF-8 is printable text
  EXPECT_EQ(all().size(), 7u);
}

TEST_F(EventLogTest, AKeyHoldsAcrossAReopenPruningAndASecondStore) {
  clock::ManualClock clk(100 * kDay);
  clock::install(&clk);
  struct Restore {
    ~Restore() { clock::install(nullptr); }
  } restore;
  store::EventRow e;
  bool dup = true;
  ASSERT_TRUE(log_->emit("billing", "invoice.overdue", "", "", "", &e, "k1", &dup));  // seq 1
  ASSERT_FALSE(dup);
  ASSERT_TRUE(log_->emit("billing", "later", "", "", "", nullptr));  // seq 2
  // The event is pruned; its key stays.
  clk.advance(8 * kDay);
  ASSERT_TRUE(log_->emit("billing", "latest", "", "", "", nullptr));  // seq 3
  int64_t deleted = 0;
  ASSERT_TRUE(log_->prune(clk.now_ms(), &deleted));
  EXPECT_EQ(deleted, 2);
  EXPECT_EQ(log_->get(1, &e).code(), OPK_ERR_NOT_FOUND);
  // A reopened store keeps the key.
  log_.reset();
  store_.reset();
  ASSERT_TRUE(store::open_sqlite((dir_.path() / "opk.db").string(), false, &store_));
  log_ = std::make_unique<Log>(*store_, Options{});
  ASSERT_TRUE(log_->emit("billing", "invoice.overdue", "", "", "", &e, "k1", &dup));
  EXPECT_TRUE(dup);
  EXPECT_EQ(e.seq, 1);
  EXPECT_EQ(all().size(), 1u);
  // A second store on the same file (as a second kernel) finds the first's keys.
  ASSERT_TRUE(log_->emit("billing", "invoice.overdue", "", "", "", &e, "k2", &dup));  // seq 4
  ASSERT_FALSE(dup);
  std::unique_ptr<store::Store> other;
  ASSERT_TRUE(store::open_sqlite((dir_.path() / "opk.db").string(), false, &other));
  {
    Log other_log(*other, Options{});
    store::EventRow o;
    ASSERT_TRUE(other_log.emit("billing", "invoice.overdue", "", "", "", &o, "k2", &dup));
    EXPECT_TRUE(dup);
    EXPECT_EQ(o.seq, 4);
  }
  other.reset();
  EXPECT_EQ(all().size(), 2u);
}

TEST_F(EventLogTest, ConcurrentEmitsOfOneKeyWriteOneEvent) {
  constexpr int kThreads = 8, kKeys = 20;
  std::vector<std::thread> threads;
  std::vector<int64_t> first_seq(kThreads, 0);
  std::atomic<int> written{0}, failed{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        store::EventRow e;
        bool dup = true;
        if (!log_->emit("billing", "n", "", "", "", &e, "key-" + std::to_string(k), &dup)) ++failed;
        if (!dup) ++written;
        if (k == 0) first_seq[t] = e.seq;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(written.load(), kKeys) << "one event per key, whoever wrote it";
  EXPECT_EQ(all().size(), static_cast<size_t>(kKeys));
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(first_seq[t], first_seq[0]) << "every caller of key-0 gets one seq";
}

TEST_F(EventLogTest, AReadWaitsForTheNextEventAndIsWokenByIt) {
  std::vector<store::EventRow> got;
  // Nothing after 0: a read without wait returns at once, empty.
  ASSERT_TRUE(log_->read(0, 10, 0, &got));
  EXPECT_TRUE(got.empty());
  // A wait that nothing ends returns empty after its time.
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(log_->read(0, 10, 150, &got));
  EXPECT_TRUE(got.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(140));
  // A waiting read wakes when an event is written, well before its time.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log_->emit("p", "ping", "", "", "", nullptr);
  });
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(log_->read(0, 10, 10000, &got));
  const auto took = std::chrono::steady_clock::now() - t0;
  writer.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, "plugin.p.ping");
  EXPECT_LT(took, std::chrono::milliseconds(3000));
  // Reads page by seq, oldest first.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log_->emit("p", "n" + std::to_string(i), "", "", "", nullptr));
  ASSERT_TRUE(log_->read(2, 3, 0, &got));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].seq, 3);
  EXPECT_EQ(got[2].seq, 5);
  // stop() ends a wait at once.
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log_->stop();
  });
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(log_->read(100, 10, 10000, &got));
  stopper.join();
  EXPECT_TRUE(got.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(3000));
}

TEST_F(EventLogTest, RetentionKeepsWhatAnActiveConsumerHasNotAcknowledged) {
  clock::ManualClock clk(100 * kDay);
  clock::install(&clk);
  struct Restore {
    ~Restore() { clock::install(nullptr); }
  } restore;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log_->emit("p", "old", "", "", "", nullptr));  // seqs 1..10 at day 100
  EXPECT_EQ(log_->ack("notifications", 11).code(), OPK_ERR_INVALID_ARGUMENT);             // after the last event
  EXPECT_EQ(log_->ack("Bad Name", 1).code(), OPK_ERR_INVALID_ARGUMENT);
  ASSERT_TRUE(log_->ack("notifications", 4));
  clk.advance(8 * kDay);                                     // the ten are older than the 7 days now
  ASSERT_TRUE(log_->emit("p", "new", "", "", "", nullptr));  // seq 11
  int64_t deleted = 0;
  ASSERT_TRUE(log_->prune(clk.now_ms(), &deleted));
  EXPECT_EQ(deleted, 4);  // up to the acknowledged seq 4, in batches of 3
  auto events = all();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().seq, 5);
  // The consumer catches up: the rest of the old ones go, the new one stays.
  ASSERT_TRUE(log_->ack("notifications", 11));
  ASSERT_TRUE(log_->prune(clk.now_ms(), &deleted));
  EXPECT_EQ(deleted, 6);
  events = all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events.front().seq, 11);
  // A consumer silent for longer than twice the retention no longer holds the log.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log_->emit("p", "later", "", "", "", nullptr));  // 12..14
  ASSERT_TRUE(log_->ack("notifications", 11));
  clk.advance(15 * kDay);
  ASSERT_TRUE(log_->emit("p", "latest", "", "", "", nullptr));  // 15
  EXPECT_EQ(log_->retention_floor(clk.now_ms()).value(), INT64_MAX);
  ASSERT_TRUE(log_->prune(clk.now_ms(), &deleted));
  EXPECT_EQ(deleted, 4);  // 11..14; the last event always stays
  events = all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events.front().seq, 15);
  // Seqs are never handed out again, across a reopen too.
  log_.reset();
  store_.reset();
  ASSERT_TRUE(store::open_sqlite((dir_.path() / "opk.db").string(), false, &store_));
  EXPECT_EQ(store_->last_event_seq(), 15);
  std::vector<store::EventRow> one = {{0, 1, "plugin.p.x", "platform", "/platform/", "", "{}"}};
  ASSERT_TRUE(store_->append_events(&one));
  EXPECT_EQ(one[0].seq, 16);
}

}  // namespace
}  // namespace opk::events
