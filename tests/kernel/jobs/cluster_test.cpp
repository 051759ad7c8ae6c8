// Several kernels on one PostgreSQL database (a fresh one per test on the
// tests' throwaway server), each with its own node name, in this process:
// runs are claimed from the store by the nodes that have their types, every
// run is started once across three kernels, a dead node's runs are taken over
// within its lease, a fenced node's result is dropped and the node registers
// again, a cancel reaches the node that runs the run, a drained node claims
// nothing new, and a scheduled job defined through one kernel fires through
// another, and stops firing there once deleted. Leases are short here
// (900 ms); the kernels' own processes, killed and stopped, are
// cluster_process_test.cpp's.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "jobs/engine.h"
#include "support/cluster_util.h"
#include "support/kernel_util.h"

namespace opk::jobs {
namespace {

constexpr int64_t kLeaseMs = 900;

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string e = cluster_.create();
    ASSERT_TRUE(e.empty()) << e;
  }
  // A kernel named `node` on the test's database with `plugins`.
  std::unique_ptr<Kernel> start(const std::string& node, std::initializer_list<std::string> plugins) {
    return cluster_.start_node(node, plugins, [](config::Config& cfg) {
      cfg.timeout_grace_ms = 200;
      cfg.lease_ms = kLeaseMs;
      cfg.claim_poll_ms = 50;
    });
  }
  std::unique_ptr<Kernel> with_all(const std::string& node) {
    return start(node, {test::bundled("hello"), test::fixture("engine_jobs")});
  }
  // The run as stored, read through `k`'s store.
  static store::RunRow stored(Kernel& k, int64_t id) { return test::stored_run(k, id); }
  // Waits until `pred` holds, up to `ms`.
  static bool eventually(const std::function<bool()>& pred, int ms = 15000) { return test::holds_within(pred, ms); }
  static store::ClusterNode node_row(Kernel& k, const std::string& id) {
    for (const auto& n : k.store()->cluster_nodes().value())
      if (n.id == id) return n;
    return {};
  }
  test::PgCluster cluster_;
};

TEST_F(ClusterTest, ANodeClaimsOnlyTheTypesItLoadedAndRunsOtherKernelsRuns) {
  auto a = with_all("a");
  ASSERT_TRUE(a);
  // Runs of a type only "a" has, and hello, which both have; then "a" stops
  // before running them (they stay PENDING in the store).
  std::vector<int64_t> slow, hello;
  for (int i = 0; i < 3; ++i) {
    auto r = test::manual("slow-job", R"({"ms":1})");
    r.start_at_ms = now_ms() + 1500;
    int64_t id = 0;
    ASSERT_TRUE(a->engine()->run_now(r, &id));
    slow.push_back(id);
    auto h = test::manual("hello", R"({"steps":1,"step_ms":1})");
    h.start_at_ms = now_ms() + 1500;
    ASSERT_TRUE(a->engine()->run_now(h, &id));
    hello.push_back(id);
  }
  a.reset();
  auto b = start("b", {test::bundled("hello")});
  ASSERT_TRUE(b);
  // "b" runs the hello runs "a" created, and leaves slow-job's alone.
  EXPECT_TRUE(eventually([&] {
    for (int64_t id : hello)
      if (stored(*b, id).phase != store::kCompleted) return false;
    return true;
  }));
  for (int64_t id : hello) EXPECT_EQ(stored(*b, id).node, "b") << id;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int64_t id : slow) EXPECT_EQ(stored(*b, id).phase, store::kPending) << id;
  // Back with the type, "a" runs them.
  a = with_all("a");
  ASSERT_TRUE(a);
  EXPECT_TRUE(eventually([&] {
    for (int64_t id : slow)
      if (stored(*a, id).phase != store::kCompleted) return false;
    return true;
  }));
  for (int64_t id : slow) EXPECT_EQ(stored(*a, id).outcome, store::kNormal) << id;
}

TEST_F(ClusterTest, EveryRunStartsOnceAcrossThreeKernels) {
  std::vector<std::unique_ptr<Kernel>> ks;
  for (const char* n : {"a", "b", "c"}) {
    ks.push_back(with_all(n));
    ASSERT_TRUE(ks.back());
  }
  // Batches through each kernel, due now and a little later, so each
  // node's queue and the store's claims race for the same runs.
  std::vector<int64_t> ids;
  const int kRuns = 1500;
  for (int i = 0; i < kRuns / 50; ++i) {
    std::vector<RunNow> batch;
    for (int j = 0; j < 50; ++j) {
      auto r = test::manual("hello", R"({"steps":1,"step_ms":0})");
      if (j % 2) r.start_at_ms = now_ms() + 50 * (j % 5);
      batch.push_back(r);
    }
    std::vector<int64_t> got;
    ASSERT_TRUE(ks[static_cast<size_t>(i) % 3]->engine()->run_now_batch(batch, &got));
    ids.insert(ids.end(), got.begin(), got.end());
  }
  auto& st = *ks[0]->store();
  ASSERT_TRUE(eventually(
      [&] {
        return st.runs_in_phase(store::kPending, 1).value().empty() &&
               st.runs_in_phase(store::kRunning, 1).value().empty();
      },
      60000));
  store::RunFilter all;
  all.limit = 100000;
  std::map<std::string, size_t> by_node;
  for (const auto& r : st.list_runs(all).value()) {
    EXPECT_EQ(r.phase, store::kCompleted) << r.id;
    EXPECT_EQ(r.outcome, store::kNormal) << r.id << ": " << r.summary;
    ++by_node[r.node];
  }
  // Each start of a plugin is counted where it happened: together exactly
  // one per run.
  uint64_t started = 0;
  for (auto& k : ks) started += k->engine()->lag_histogram().count;
  EXPECT_EQ(started, static_cast<uint64_t>(kRuns));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kRuns));
  for (const char* n : {"a", "b", "c"}) EXPECT_GT(by_node[n], 0u) << n;
}

TEST_F(ClusterTest, ADeadNodesRunsAreTakenOverWithinItsLease) {
  auto a = with_all("a");
  ASSERT_TRUE(a);
  // "ghost" registers, claims two runs, and dies (its lease is never renewed).
  store::ClusterNode ghost;
  ghost.id = "ghost";
  ghost.started_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  ghost.lease_until_ms = ghost.started_ms + kLeaseMs;
  ASSERT_TRUE(a->store()->register_node(&ghost));
  std::vector<store::RunRow> rows(2);
  rows[0].job_type = "slow-job";                             // may be re-queued
  rows[1].job_type = "hello";                                // may not
  for (auto& r : rows) r.scheduled_ms = now_ms() + 3600000;  // not due: "a" does not claim them first
  ASSERT_TRUE(a->store()->create_runs(&rows, nullptr));
  store::ClaimRequest q;
  q.node = "ghost";
  q.epoch = ghost.epoch;
  q.ids = {rows[0].id, rows[1].id};
  q.now_ms = now_ms();
  std::vector<store::RunRow> claimed;
  ASSERT_TRUE(a->store()->claim_runs(q, &claimed));
  ASSERT_EQ(claimed.size(), 2u);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return stored(*a, rows[0].id).phase == store::kCompleted; }));
  // Within one lease after it lapsed (plus a heartbeat's third and slack
  // for a loaded machine).
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(kLeaseMs * 5));
  for (const auto& r : rows) {
    auto s = stored(*a, r.id);
    EXPECT_EQ(s.phase, store::kCompleted);
    EXPECT_EQ(s.outcome, store::kError);
    EXPECT_TRUE(s.terminated);
    EXPECT_NE(s.summary.find("node 'ghost'"), std::string::npos) << s.summary;
    EXPECT_NE(s.summary.find("taken over by node 'a'"), std::string::npos) << s.summary;
    EXPECT_EQ(s.end_cause, store::kEndCrash);
  }
  EXPECT_EQ(node_row(*a, "ghost").status, "dead");
  // slow-job (requeue capability) runs again, once; hello does not.
  store::RunFilter f;
  f.limit = 100;
  std::vector<store::RunRow> again;
  for (const auto& r : a->store()->list_runs(f).value())
    if (r.trigger == "recovery") again.push_back(r);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].parent_run_id, rows[0].id);
  EXPECT_TRUE(a->engine()->wait(again[0].id, 15000));
  EXPECT_EQ(stored(*a, again[0].id).outcome, store::kNormal);
}

TEST_F(ClusterTest, AFencedNodesResultIsNotStoredAndItRegistersAgain) {
  auto a = with_all("a");
  ASSERT_TRUE(a);
  const int64_t epoch = a->engine()->epoch();
  int64_t id = 0;
  // slow-job has no cancel hook: its plugin runs to the end whatever happens.
  ASSERT_TRUE(a->engine()->run_now(test::manual("slow-job", R"({"ms":2500})"), &id));
  ASSERT_TRUE(test::wait_running(*a, id));
  ASSERT_EQ(stored(*a, id).node, "a");
  auto b = with_all("b");
  ASSERT_TRUE(b);
  // What a survivor does when a's lease lapsed (a paused past it): a is
  // declared dead.
  ASSERT_TRUE(b->store()->execute("UPDATE cluster_nodes SET status = 'dead' WHERE id = 'a'", {}, nullptr));
  ASSERT_TRUE(eventually([&] { return stored(*b, id).phase == store::kCompleted; }));
  auto taken = stored(*b, id);
  EXPECT_EQ(taken.outcome, store::kError);
  EXPECT_TRUE(taken.terminated);
  // a notices at its next heartbeat and registers again with a new epoch.
  EXPECT_TRUE(eventually([&] { return a->engine()->epoch() > epoch; }));
  EXPECT_NE(node_row(*b, "a").status, "dead");
  // a's plugin ends NORMAL; its result is not stored over the takeover.
  EXPECT_TRUE(eventually(
      [&] {
        RunView v;
        return a->engine()->get(id, &v) && !v.started;
      },
      10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto after = stored(*b, id);
  EXPECT_EQ(after.outcome, store::kError) << after.summary;
  EXPECT_EQ(after.summary, taken.summary);
  EXPECT_EQ(after.finished_ms, taken.finished_ms);
  // And a works on: a new run completes there.
  auto v = test::run_and_wait(*a, test::manual("hello", R"({"steps":1,"step_ms":1})"));
  EXPECT_EQ(v.row.outcome, store::kNormal);
}

TEST_F(ClusterTest, ACancelReachesTheNodeThatRunsTheRun) {
  auto a = with_all("a");
  ASSERT_TRUE(a);
  int64_t id = 0;
  ASSERT_TRUE(a->engine()->run_now(test::manual("hello", R"({"steps":50,"step_ms":200})"), &id));
  ASSERT_TRUE(test::wait_running(*a, id));
  // b comes once a runs it.
  auto b = with_all("b");
  ASSERT_TRUE(b);
  Status s = b->engine()->cancel(id, test::operator_actor(), "wrong tenant");
  ASSERT_TRUE(s) << s.message();
  EXPECT_NE(s.message().find("node 'a'"), std::string::npos) << s.message();
  // Through the hint, well before a's heartbeat would poll.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(a->engine()->wait(id, 10000));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(5000));
  auto r = stored(*b, id);
  EXPECT_EQ(r.cancelled_by, "alice");
  EXPECT_EQ(store::run_status(r.phase, r.outcome, r.cancelled_by), "cancelled");
  // A type without a cancel hook is refused where it is asked, whichever
  // kernel runs it.
  ASSERT_TRUE(a->engine()->run_now(test::manual("slow-job", R"({"ms":800})"), &id));
  ASSERT_TRUE(eventually([&] { return stored(*a, id).phase == store::kRunning; }));
  Kernel& other = stored(*a, id).node == "a" ? *b : *a;
  EXPECT_EQ(other.engine()->cancel(id, test::operator_actor(), "no").code(), OPK_ERR_CONFLICT);
  EXPECT_TRUE(eventually([&] { return stored(*a, id).phase == store::kCompleted; }));
  EXPECT_EQ(stored(*a, id).outcome, store::kNormal);
}

TEST_F(ClusterTest, ADrainedNodeClaimsNothingNewAndReportsDrained) {
  auto a = with_all("a");
  ASSERT_TRUE(a);
  // A long run on a, then a drain asked through b.
  int64_t running = 0;
  ASSERT_TRUE(a->engine()->run_now(test::manual("slow-job", R"({"ms":1500})"), &running));
  ASSERT_TRUE(test::wait_running(*a, running));
  auto b = with_all("b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->engine()->drain("a", test::operator_actor(), "   ").code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(b->engine()->drain("nobody", test::operator_actor(), "patching").code(), OPK_ERR_NOT_FOUND);
  ASSERT_TRUE(b->engine()->drain("a", test::operator_actor(), "patching"));
  EXPECT_TRUE(eventually([&] { return node_row(*b, "a").status == "draining"; }, 3000));
  // Runs asked of a meanwhile run on b.
  std::vector<int64_t> ids;
  std::this_thread::sleep_for(std::chrono::milliseconds(kLeaseMs / 2));
  for (int i = 0; i < 20; ++i) {
    int64_t id = 0;
    ASSERT_TRUE(a->engine()->run_now(test::manual("hello", R"({"steps":1,"step_ms":1})"), &id));
    ids.push_back(id);
  }
  for (int64_t id : ids) {
    EXPECT_TRUE(eventually([&] { return stored(*b, id).phase == store::kCompleted; })) << id;
    EXPECT_EQ(stored(*b, id).node, "b") << id;
  }
  // a finishes what it held, then reports drained.
  EXPECT_TRUE(a->engine()->wait(running, 10000));
  EXPECT_EQ(stored(*a, running).outcome, store::kNormal);
  EXPECT_TRUE(eventually([&] { return node_row(*b, "a").status == "drained"; }, 5000));
  std::vector<Worker> ws;
  ASSERT_TRUE(b->engine()->workers(&ws));
  ASSERT_EQ(ws.size(), 2u);
  EXPECT_EQ(ws[0].node.id, "a");
  EXPECT_EQ(ws[0].node.drain_reason, "patching");
  EXPECT_NE(ws[0].node.job_types.find("slow-job"), std::string::npos);
  EXPECT_TRUE(ws[1].self);
  bool audited = false;
  for (const auto& row : b->store()->audit_rows(100).value())
    audited |=
        row.action == "worker.drain" && row.target == "node a" && row.reason == "patching" && row.outcome == "ok";
  EXPECT_TRUE(audited);
  // Fenced while drained (it stalled past its lease), a registers again
  // still drained: it takes no new work.
  const int64_t epoch = a->engine()->epoch();
  ASSERT_TRUE(b->store()->execute("UPDATE cluster_nodes SET status = 'dead' WHERE id = 'a'", {}, nullptr));
  ASSERT_TRUE(eventually([&] { return a->engine()->epoch() > epoch; }, 5000));
  EXPECT_TRUE(eventually([&] { return node_row(*b, "a").status == "drained"; }, 5000)) << node_row(*b, "a").status;
  EXPECT_EQ(node_row(*b, "a").drain_reason, "patching");
  int64_t after = 0;
  ASSERT_TRUE(a->engine()->run_now(test::manual("hello", R"({"steps":1,"step_ms":1})"), &after));
  EXPECT_TRUE(eventually([&] { return stored(*b, after).phase == store::kCompleted; })) << after;
  EXPECT_EQ(stored(*b, after).node, "b");
}

TEST_F(ClusterTest, AScheduleDefinedThroughOneKernelFiresThroughAnotherOncePerSlot) {
  auto a = with_all("a");
  auto b = with_all("b");
  ASSERT_TRUE(a && b);
  store::ScheduledJob j;
  j.id = "every-minute";
  j.job_type = "scheduled-only";
  j.planning = "scheduled";
  j.cron = "* * * * *";
  ASSERT_TRUE(a->engine()->define_job(j, test::operator_actor()));
  a.reset();  // a is gone; b learned the job at a heartbeat, or learns it now
  const int64_t slot = (now_ms() / 60000) * 60000;
  ASSERT_TRUE(b->store()->set_next_run(j.id, slot));
  ASSERT_TRUE(b->store()->execute("UPDATE scheduled_jobs SET updated_ms = updated_ms + 1 WHERE id = 'every-minute'", {},
                                  nullptr));
  // Another kernel comes (it fires the same slot too: one run).
  auto c = with_all("c");
  ASSERT_TRUE(c);
  store::RunFilter f;
  f.scheduled_job_id = j.id;
  EXPECT_TRUE(eventually([&] {
    auto runs = b->store()->list_runs(f).value();
    return !runs.empty() && runs[0].phase == store::kCompleted;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(kLeaseMs));
  // Each slot once: the one set, and the next if a minute began meanwhile.
  std::map<int64_t, int> runs_of_slot;
  for (const auto& r : b->store()->list_runs(f).value()) ++runs_of_slot[r.slot_ms];
  EXPECT_EQ(runs_of_slot[slot], 1);
  for (const auto& [at, n] : runs_of_slot) EXPECT_EQ(n, 1) << "slot " << at << " fired " << n << " times";
  EXPECT_LE(runs_of_slot.size(), 2u);
}

TEST_F(ClusterTest, AScheduleDeletedThroughOneKernelStopsFiringThroughAnother) {
  auto a = with_all("a");
  ASSERT_TRUE(a);
  store::ScheduledJob j;
  j.id = "soon";
  j.job_type = "scheduled-only";
  j.planning = "scheduled";
  j.cron = "0 0 1 1 *";  // a's own next slot is far off
  ASSERT_TRUE(a->engine()->define_job(j, test::operator_actor()));
  // Due 2.5 s from now. b reads the schedules as it starts and next at its
  // heartbeat, a third of its 60-s lease later: it still has the job when
  // the slot comes, after the delete, and fires it from memory.
  const int64_t due = now_ms() + 2500;
  ASSERT_TRUE(a->store()->set_next_run(j.id, due));
  auto b = cluster_.start_node("b", {test::bundled("hello"), test::fixture("engine_jobs")}, [](config::Config& cfg) {
    cfg.timeout_grace_ms = 200;
    cfg.lease_ms = 60000;
    cfg.claim_poll_ms = 50;
  });
  ASSERT_TRUE(b);
  // Refused while a run of it is open (b may have fired it already, on a
  // slow machine): then tried again.
  int64_t deleted_ms = 0;
  ASSERT_TRUE(eventually([&] {
    if (!a->engine()->delete_job(j.id, test::operator_actor(), "retired", "{}")) return false;
    deleted_ms = now_ms();
    return true;
  }));
  // The store refuses b's run of the slot: none is created after the delete.
  while (now_ms() < std::max(due, deleted_ms) + 1000) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  store::RunFilter f;
  f.scheduled_job_id = j.id;
  for (const auto& r : b->store()->list_runs(f).value())
    EXPECT_LT(r.created_ms, deleted_ms) << "run " << r.id << " of the deleted job was created through b";
  store::ScheduledJob gone;
  EXPECT_EQ(b->store()->get_scheduled_job(j.id, &gone).code(), OPK_ERR_NOT_FOUND);
  // Nor is it run by id through b.
  RunNow r = test::manual("");
  r.job_type.clear();
  r.scheduled_job_id = j.id;
  int64_t id = 0;
  EXPECT_EQ(b->engine()->run_now(r, &id).code(), OPK_ERR_NOT_FOUND);
}

}  // namespace
}  // namespace opk::jobs
