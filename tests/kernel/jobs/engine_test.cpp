// The job engine in a real kernel with real plugins, on both stores (a SQLite
// file, and a fresh PostgreSQL database per test, tests/support/pg_util.h):
// the manual-run guard, schema errors, audit, cancel with and without a hook,
// retry, hold/release, timeouts, priorities and pool limits, schedules that
// fire once per slot across restarts, and recovery of a crashed kernel's runs.
// What is about SQLite's file (its damage, its lock) runs on SQLite only.
#include "jobs/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include "store/open.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk::jobs {
namespace {

using test::manual;
using test::run_and_wait;

class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (pg()) {
      const std::string e = db_.create();
      ASSERT_TRUE(e.empty()) << e;
    }
    plugins_ = test::plugins_dir(dir_, {test::bundled("hello"), test::fixture("engine_jobs")});
    start();
  }
  void start(const std::vector<std::pair<std::string, int>>& pools = {{"default", 1}}) {
    k_ = std::make_unique<Kernel>(config(pools));
    Status s = k_->start();
    ASSERT_TRUE(s) << s.message();
  }
  config::Config config(const std::vector<std::pair<std::string, int>>& pools = {{"default", 1}}) {
    auto cfg = test::quiet_config(dir_, plugins_);
    cfg.pools = pools;
    cfg.timeout_grace_ms = 200;
    cfg.store_path = store_path();
    if (pg()) {
      cfg.store_backend = "postgresql";
      cfg.pg_conninfo = db_.conninfo();
    }
    return cfg;
  }
  bool pg() const { return GetParam() == "postgresql"; }
  // The store the kernel's configuration names, opened beside the kernel
  // (or instead of it, while it is stopped).
  std::unique_ptr<store::Store> open_store() {
    std::unique_ptr<store::Store> st;
    Status s = store::open(config(), &st);
    EXPECT_TRUE(s) << s.message();
    return st;
  }
  // Makes `st` refuse, with `message`, a row `event` (INSERT, UPDATE) puts
  // in `table` when `condition` (on NEW) holds: a trigger named refuse.
  void refuse(store::Store* st, const std::string& event, const std::string& table, const std::string& condition,
              const std::string& message) {
    if (pg()) {
      ASSERT_TRUE(
          st->execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE "
                      "EXCEPTION '" +
                          message + "'; END $$",
                      {}, nullptr));
      ASSERT_TRUE(st->execute("CREATE TRIGGER refuse BEFORE " + event + " ON " + table + " FOR EACH ROW WHEN (" +
                                  condition + ") EXECUTE FUNCTION refuse()",
                              {}, nullptr));
    } else {
      ASSERT_TRUE(st->execute("CREATE TRIGGER refuse BEFORE " + event + " ON " + table + " WHEN " + condition +
                                  " BEGIN SELECT RAISE(ABORT, '" + message + "'); END",
                              {}, nullptr));
    }
  }
  // Takes the trigger refuse() made on `table` away.
  void stop_refusing(store::Store* st, const std::string& table) {
    ASSERT_TRUE(st->execute(pg() ? "DROP TRIGGER refuse ON " + table : "DROP TRIGGER refuse", {}, nullptr));
  }
  std::string store_path() const { return (dir_.path() / "data" / "opk.db").string(); }
  void restart() {
    k_.reset();
    start();
  }
  Engine& e() { return *k_->engine(); }
  // Defines the scheduled job "every-minute" and makes its current minute's
  // slot due by restarting the kernel with it stored as the next run; returns
  // the slot. `before_restart` runs just before the restart.
  int64_t every_minute_due(const std::function<void()>& before_restart = {}) {
    store::ScheduledJob j;
    j.id = "every-minute";
    j.job_type = "scheduled-only";
    j.planning = "scheduled";
    j.cron = "* * * * *";
    EXPECT_TRUE(e().define_job(j, test::operator_actor()));
    const int64_t slot = (now_ms() / 60000) * 60000;
    EXPECT_TRUE(k_->store()->set_next_run(j.id, slot));
    if (before_restart) before_restart();
    restart();
    return slot;
  }
  test::TempDir dir_;
  test::PgDatabase db_;
  std::string plugins_;
  std::unique_ptr<Kernel> k_;
};

INSTANTIATE_TEST_SUITE_P(Backends, EngineTest, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

// What is about SQLite's file (its damage, the lock beside it): SQLite only.
class EngineSqliteFileTest : public EngineTest {};

INSTANTIATE_TEST_SUITE_P(Backends, EngineSqliteFileTest, ::testing::Values("sqlite"), test::store_backend_name);

TEST_P(EngineTest, ManualRunIsRefusedForManualRunFalseWhateverTheCaller) {
  int64_t id = 0;
  Status s = e().run_now(manual("scheduled-only"), &id);
  EXPECT_EQ(s.code(), OPK_ERR_CONFLICT);
  EXPECT_NE(s.message().find("manual_run=false"), std::string::npos);
  // The batch call and retry path use the same guard.
  std::vector<int64_t> ids;
  EXPECT_EQ(e().run_now_batch({manual("hello"), manual("scheduled-only")}, &ids).code(), OPK_ERR_CONFLICT);
  EXPECT_TRUE(ids.empty());  // all or nothing
  auto audit = k_->store()->audit_rows(10).value();
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0].action, "run-now");
  EXPECT_NE(audit[0].outcome.find("refused: "), std::string::npos) << audit[0].outcome;
}

TEST_P(EngineTest, AReasonIsRequiredAndParametersFollowTheSchema) {
  auto r = manual("hello", R"({"steps":5000})");
  int64_t id = 0;
  Status s = e().run_now(r, &id);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("parameters: steps:"), std::string::npos) << s.message();
  r = manual("hello");
  r.reason = "  ";
  s = e().run_now(r, &id);
  EXPECT_NE(s.message().find("reason: a reason is required"), std::string::npos) << s.message();
  r = manual("slow-job");
  r.dry_run = true;
  EXPECT_NE(e().run_now(r, &id).message().find("does not support dry-run"), std::string::npos);
  EXPECT_EQ(e().run_now(manual("no-such-type"), &id).code(), OPK_ERR_NOT_FOUND);
}

TEST_P(EngineTest, ARunIsStoredWithItsLogStepsAndUser) {
  auto v = run_and_wait(*k_, manual("hello", R"({"steps":2,"step_ms":1})"));
  EXPECT_EQ(v.row.phase, store::kCompleted);
  EXPECT_EQ(v.row.outcome, store::kNormal);
  EXPECT_EQ(v.row.user_id, "alice");
  EXPECT_EQ(v.row.reason, "test");
  EXPECT_GT(v.row.started_ms, 0);
  EXPECT_GE(v.row.finished_ms, v.row.started_ms);
  ASSERT_EQ(v.steps.size(), 2u);
  EXPECT_EQ(v.steps[0].step_id, "greet");
  ASSERT_EQ(v.logs.size(), 3u);
  EXPECT_EQ(v.logs[0].message, "hello, world!");
  EXPECT_EQ(e().log_tail(v.row.id, 2, 10).size(), 1u);  // cursor
  auto audit = k_->store()->audit_rows(1).value();
  EXPECT_EQ(audit[0].outcome, "ok: run " + std::to_string(v.row.id));
}

TEST_P(EngineTest, AStepLeftOpenEndsWithTheRunNeverASilentSuccess) {
  // The SDK's Step ended NORMAL when destroyed, whatever became of the run.
  struct Case {
    const char* params;
    const char* run_outcome;
    const char* step_outcome;
  } cases[] = {
      {R"({"end":"fail"})", store::kError, store::kError},
      {R"({"end":"throw"})", store::kError, store::kError},
      {R"({"end":"warn"})", store::kWarning, store::kWarning},
      {R"({"end":"ok"})", store::kNormal, store::kNormal},
  };
  for (const auto& c : cases) {
    auto v = run_and_wait(*k_, manual("step-left-open", c.params));
    EXPECT_EQ(v.row.outcome, c.run_outcome) << c.params;
    ASSERT_EQ(v.steps.size(), 1u) << c.params;
    EXPECT_EQ(v.steps[0].step_id, "verify");
    EXPECT_EQ(v.steps[0].outcome, c.step_outcome) << c.params;
    EXPECT_GT(v.steps[0].end_ms, 0) << c.params;
  }
}

TEST_P(EngineTest, CancelNeedsAHookForRunningRunsButPendingOnesGoAtOnce) {
  int64_t slow = 0, queued = 0;
  ASSERT_TRUE(e().run_now(manual("slow-job", R"({"ms":3000})"), &slow));
  ASSERT_TRUE(test::wait_running(*k_, slow));
  Status s = e().cancel(slow, test::operator_actor(), "stop it");
  EXPECT_EQ(s.code(), OPK_ERR_CONFLICT);
  EXPECT_NE(s.message().find("has no cancel hook"), std::string::npos) << s.message();
  // One worker: this one waits in the queue and cancels at once.
  ASSERT_TRUE(e().run_now(manual("hello", R"({"steps":1,"step_ms":1})"), &queued));
  ASSERT_TRUE(e().cancel(queued, test::operator_actor(), "not needed"));
  RunView v;
  ASSERT_TRUE(e().get(queued, &v));
  EXPECT_EQ(v.row.phase, store::kCompleted);
  EXPECT_TRUE(v.row.terminated);
  EXPECT_EQ(v.row.summary, "cancelled by alice: not needed");
  EXPECT_EQ(v.row.cancelled_by, "alice");
  EXPECT_EQ(e().cancel(queued, test::operator_actor(), "again").code(), OPK_ERR_CONFLICT);
  EXPECT_FALSE(e().cancel(slow, test::operator_actor(), "").is_ok());  // a reason is required
}

TEST_P(EngineTest, CancelWithAHookStopsTheRunCooperatively) {
  int64_t id = 0;
  ASSERT_TRUE(e().run_now(manual("hello", R"({"steps":1000,"step_ms":5})"), &id));
  ASSERT_TRUE(test::wait_running(*k_, id));
  ASSERT_TRUE(e().cancel(id, test::operator_actor(), "enough"));
  ASSERT_TRUE(e().wait(id, 10000));
  RunView v;
  ASSERT_TRUE(e().get(id, &v));
  EXPECT_TRUE(v.row.terminated);
  EXPECT_EQ(v.row.outcome, store::kError);
  // Cancelled by an operator: who and why are the run's, not only the audit's.
  EXPECT_EQ(v.row.cancelled_by, "alice");
  EXPECT_EQ(v.row.summary, "cancelled by alice: enough");
  bool logged = false;
  for (auto& l : v.logs) logged |= l.message.find("cancel requested by alice: enough") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_P(EngineTest, ARunTheKernelStopsIsCancelledByTheKernel) {
  int64_t id = 0;
  ASSERT_TRUE(e().run_now(manual("hello", R"({"steps":1000,"step_ms":5})"), &id));
  ASSERT_TRUE(test::wait_running(*k_, id));
  restart();
  RunView v;
  ASSERT_TRUE(e().get(id, &v));
  EXPECT_EQ(v.row.phase, store::kCompleted);
  EXPECT_EQ(v.row.cancelled_by, store::kCancelledByKernel);
  EXPECT_EQ(v.row.summary, "cancelled: the kernel is stopping");
}

TEST_P(EngineTest, RetryReplaysAFailedRunLinkedToIt) {
  auto failed = run_and_wait(*k_, manual("hello", R"({"steps":1,"step_ms":0,"fail":true})"));
  ASSERT_EQ(failed.row.outcome, store::kError);
  // No summary of its own: the failure's message stands in for it.
  EXPECT_EQ(failed.row.summary, "failed on purpose (fail=true)");
  int64_t again = 0;
  ASSERT_TRUE(e().retry(failed.row.id, test::operator_actor(), "transient", R"({"steps":1,"step_ms":0})", &again));
  ASSERT_TRUE(e().wait(again, 10000));
  RunView v;
  ASSERT_TRUE(e().get(again, &v));
  EXPECT_EQ(v.row.trigger, "retry");
  EXPECT_EQ(v.row.parent_run_id, failed.row.id);
  EXPECT_EQ(v.row.outcome, store::kNormal);
  EXPECT_EQ(e().retry(again, test::operator_actor(), "x", std::nullopt, &again).code(), OPK_ERR_CONFLICT);
  EXPECT_EQ(k_->store()->audit_rows(1).value()[0].action, "retry");
}

// Nothing of a deleted scheduled job starts afterwards: its failed run is not
// retried and it is not run by id; the refusals name it.
TEST_P(EngineTest, ADeletedJobsFailedRunIsNotRetried) {
  store::ScheduledJob j;
  j.id = "retired-job";
  j.job_type = "hello";
  j.planning = "disabled";
  j.params_json = R"({"steps":1,"step_ms":0,"fail":true})";
  ASSERT_TRUE(e().define_job(j, test::operator_actor()));
  RunNow by_id = manual("");
  by_id.job_type.clear();
  by_id.params_json.reset();
  by_id.scheduled_job_id = j.id;
  auto failed = run_and_wait(*k_, by_id);
  ASSERT_EQ(failed.row.outcome, store::kError);
  ASSERT_EQ(failed.row.scheduled_job_id, j.id);
  ASSERT_TRUE(e().delete_job(j.id, test::operator_actor(), "retired", "{}"));
  int64_t again = 0;
  const Status retried = e().retry(failed.row.id, test::operator_actor(), "transient", std::nullopt, &again);
  EXPECT_EQ(retried.code(), OPK_ERR_NOT_FOUND) << retried.message();
  EXPECT_NE(
      retried.message().find("scheduled job 'retired-job' of run " + std::to_string(failed.row.id) + " was deleted"),
      std::string::npos)
      << retried.message();
  const Status ran = e().run_now(by_id, &again);
  EXPECT_EQ(ran.code(), OPK_ERR_NOT_FOUND) << ran.message();
  EXPECT_NE(ran.message().find("retired-job"), std::string::npos) << ran.message();
  store::RunFilter f;
  f.scheduled_job_id = j.id;
  EXPECT_EQ(k_->store()->list_runs(f).value().size(), 1u) << "a run of the deleted job was stored";
}

TEST_P(EngineTest, HeldRunsWaitUntilReleased) {
  int64_t blocker = 0, held = 0;
  ASSERT_TRUE(e().run_now(manual("slow-job", R"({"ms":300})"), &blocker));
  ASSERT_TRUE(e().run_now(manual("slow-job", R"({"ms":1})"), &held));
  ASSERT_TRUE(e().hold(held, true, test::operator_actor(), "wait"));
  ASSERT_TRUE(e().wait(blocker, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  RunView v;
  ASSERT_TRUE(e().get(held, &v));
  EXPECT_EQ(v.row.phase, store::kPending);
  EXPECT_TRUE(v.row.hold);
  ASSERT_TRUE(e().hold(held, false, test::operator_actor(), "go"));
  ASSERT_TRUE(e().wait(held, 10000));
}

TEST_P(EngineTest, ARunWithALaterStartWaitsForItThenStartsOnTime) {
  RunNow r = manual("slow-job", R"({"ms":1})");
  r.start_at_ms = jobs::now_ms() + 400;
  int64_t id = 0;
  ASSERT_TRUE(e().run_now(r, &id));
  EXPECT_EQ(e().queue_depths()["(delayed)"], 1u);
  RunView v;
  ASSERT_TRUE(e().get(id, &v));
  EXPECT_EQ(v.row.phase, store::kPending);
  ASSERT_TRUE(e().wait(id, 10000));
  ASSERT_TRUE(e().get(id, &v));
  // Recorded RUNNING a little ahead of its start, but the plugin is called
  // at the start or after, and no earlier start is stored.
  EXPECT_GE(v.row.started_ms, r.start_at_ms);
  EXPECT_LE(v.row.started_ms, r.start_at_ms + 200);
  ASSERT_FALSE(v.logs.empty());
  EXPECT_GE(v.logs.front().time_ms, r.start_at_ms);
  EXPECT_LE(v.logs.front().time_ms, r.start_at_ms + 200);
  EXPECT_EQ(e().queue_depths()["(delayed)"], 0u);
}

TEST_P(EngineTest, TimeoutCancelsAndMarksTheRun) {
  auto v = run_and_wait(*k_, manual("timeout-job", R"({"ms":5000})"));
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_TRUE(v.row.terminated);
  EXPECT_EQ(v.row.cancelled_by, "");  // a failure, not a cancel
  bool logged = false;
  for (auto& l : v.logs) logged |= l.message.find("timed out after 100 ms") != std::string::npos;
  EXPECT_TRUE(logged);
  EXPECT_LT(v.row.finished_ms - v.row.started_ms, 3000);
}

TEST_P(EngineTest, PriorityOrdersTheQueueAndThePoolLimitHolds) {
  int64_t blocker = 0;
  ASSERT_TRUE(e().run_now(manual("slow-job", R"({"ms":200})"), &blocker));
  ASSERT_TRUE(test::wait_running(*k_, blocker));
  std::vector<int64_t> ids;
  ASSERT_TRUE(e().run_now_batch(
      {manual("prio-low", R"({"ms":1})"), manual("prio-high", R"({"ms":1})"), manual("prio-low", R"({"ms":1})")},
      &ids));
  for (auto id : ids) ASSERT_TRUE(e().wait(id, 10000));
  std::vector<RunView> v(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(e().get(ids[i], &v[i]));
  EXPECT_LE(v[1].row.started_ms, v[0].row.started_ms);  // high before low
  EXPECT_LE(v[0].row.started_ms, v[2].row.started_ms);  // then in order
  RunView b;
  ASSERT_TRUE(e().get(blocker, &b));
  for (auto& r : v) EXPECT_GE(r.row.started_ms, b.row.finished_ms);  // one worker: never alongside
}

TEST_P(EngineTest, ASlotWhoseRunCannotBeStoredStaysDueUntilItIs) {
  // The store refuses this job's runs (a trigger on the real store) when
  // its slot is due.
  const int64_t slot = every_minute_due(
      [&] { refuse(k_->store(), "INSERT", "runs", "NEW.scheduled_job_id = 'every-minute'", "disk trouble"); });
  store::ScheduledJob j;
  j.id = "every-minute";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  store::RunFilter f;
  f.scheduled_job_id = j.id;
  EXPECT_TRUE(k_->store()->list_runs(f).value().empty());
  store::ScheduledJob stored;
  ASSERT_TRUE(k_->store()->get_scheduled_job(j.id, &stored));
  EXPECT_EQ(stored.next_run_ms, slot) << "the slot passed without its run";
  // Once the store takes it again, the slot fires, once, and moves on.
  stop_refusing(k_->store(), "runs");
  for (int i = 0; i < 600 && k_->store()->list_runs(f).value().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto runs = k_->store()->list_runs(f).value();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].slot_ms, slot);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(k_->store()->get_scheduled_job(j.id, &stored));
    if (stored.next_run_ms > slot) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(stored.next_run_ms, slot);
}

// A slot firing as its job is deleted: the delete waits until the slot's run
// is stored and then refuses (a run pending), or it goes first and the slot
// stores no run; never a run left queued for a deleted job. A run gate holds
// the scheduler between reading the slot and storing its run.
TEST_P(EngineTest, ADeleteWhileASlotFiresLeavesNoRunOfADeletedJob) {
  store::ScheduledJob j;
  j.id = "deleted-while-firing";
  j.job_type = "slow-job";
  j.planning = "scheduled";
  j.cron = "* * * * *";
  j.params_json = R"({"ms":5000})";
  ASSERT_TRUE(e().define_job(j, test::operator_actor()));
  ASSERT_TRUE(k_->store()->set_next_run(j.id, (now_ms() / 60000) * 60000));  // due at the restart
  struct Firing {
    std::promise<void> entered, left;
    std::atomic<bool> deleted{false};
    std::atomic<bool> deleted_while_firing{false};
  } firing;
  opk_run_gate_fn gate = [](void* user, const opk_run_slot* slot, char*, size_t) -> int32_t {
    auto* f = static_cast<Firing*>(user);
    if (std::string_view(slot->scheduled_job_id) != "deleted-while-firing") return OPK_GATE_RUN;
    f->entered.set_value();
    // The delete has this long to finish while the slot's run is not stored yet.
    for (int i = 0; i < 60 && !f->deleted; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    f->deleted_while_firing = f->deleted.load();
    f->left.set_value();
    return OPK_GATE_RUN;
  };
  k_.reset();
  k_ = std::make_unique<Kernel>(config());
  ASSERT_TRUE(k_->run_gates().add("test", "hold", gate, &firing));
  ASSERT_TRUE(k_->start());
  ASSERT_EQ(firing.entered.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const Status deleted = e().delete_job(j.id, test::operator_actor(), "retired", "{}");
  firing.deleted = true;
  ASSERT_EQ(firing.left.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(firing.deleted_while_firing) << "the job was deleted while its slot's run was being stored";
  store::RunFilter f;
  f.scheduled_job_id = j.id;
  auto runs = k_->store()->list_runs(f).value();
  // A run stored after the delete would show within this time.
  for (int i = 0; deleted && runs.empty() && i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    runs = k_->store()->list_runs(f).value();
  }
  store::ScheduledJob stored;
  if (deleted) {
    EXPECT_EQ(k_->store()->get_scheduled_job(j.id, &stored).code(), OPK_ERR_NOT_FOUND);
    for (const auto& r : runs) EXPECT_EQ(r.phase, store::kCompleted) << "run " << r.id << " of a deleted job";
  } else {
    EXPECT_EQ(deleted.code(), OPK_ERR_CONFLICT) << deleted.message();
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_NE(deleted.message().find("run " + std::to_string(runs[0].id)), std::string::npos) << deleted.message();
    EXPECT_TRUE(k_->store()->get_scheduled_job(j.id, &stored)) << "a refused delete keeps the job";
  }
  k_.reset();  // cancels the slow run
}

TEST_P(EngineTest, ARunWhoseClaimIsRefusedStaysPendingAndRunsOnceTheStoreTakesIt) {
  // The store refuses to record runs RUNNING (a trigger on the real store).
  refuse(k_->store(), "UPDATE", "run_state", "NEW.phase = 'RUNNING'", "disk trouble");
  int64_t id = 0;
  ASSERT_TRUE(e().run_now(manual("hello", R"({"steps":1})"), &id));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  RunView v;
  ASSERT_TRUE(e().get(id, &v));
  EXPECT_EQ(v.row.phase, store::kPending);  // neither started nor lost
  EXPECT_FALSE(v.started);
  stop_refusing(k_->store(), "run_state");
  ASSERT_TRUE(e().wait(id, 10000));
  ASSERT_TRUE(e().get(id, &v));
  EXPECT_EQ(v.row.phase, store::kCompleted);
  EXPECT_EQ(v.row.outcome, store::kNormal);
}

TEST_P(EngineTest, ABatchIsAuditedRunByRunAtOneTime) {
  // A batch of alike requests and one of two that differ: an audit row per
  // run, each naming its run, each batch's rows stamped with one time.
  const int64_t later = now_ms() + 3600000;  // not started meanwhile
  auto at_later = [&](const char* params) {
    auto r = manual("hello", params);
    r.start_at_ms = later;
    return r;
  };
  std::vector<int64_t> ids;
  const char* one = R"({"steps":1})";
  const char* two = R"({"steps":2})";
  ASSERT_TRUE(e().run_now_batch({at_later(one), at_later(one), at_later(one)}, &ids));
  ASSERT_TRUE(e().run_now_batch({at_later(two), at_later(one)}, &ids));
  ASSERT_EQ(ids.size(), 5u);
  auto audit = k_->store()->audit_rows(5).value();  // newest first
  ASSERT_EQ(audit.size(), 5u);
  const std::vector<std::string> params = {one, one, one, two, one};
  for (size_t i = 0; i < 5; ++i) {
    const auto& a = audit[4 - i];
    EXPECT_EQ(a.outcome, "ok: run " + std::to_string(ids[i]));
    EXPECT_EQ(a.action, "run-now");
    EXPECT_EQ(a.target, "hello");
    EXPECT_EQ(a.actor, test::operator_actor().user_id);
    EXPECT_EQ(a.params_json, params[i]);
    EXPECT_EQ(a.time_ms, audit[i < 3 ? 4 : 0].time_ms);
  }
}

TEST_P(EngineTest, ConcurrentRunNowCallersEachGetTheirOwnRunsAndAuditRows) {
  // Callers at once share store writes; each still gets its own runs, with
  // its own parameters, and an audit row naming each.
  const int64_t later = now_ms() + 3600000;  // not started meanwhile
  constexpr int kCallers = 16, kCalls = 20;
  std::vector<std::vector<int64_t>> ids(kCallers);
  std::atomic<int> failed{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int i = 0; i < kCalls; ++i) {
        auto r = manual("hello", "{\"steps\":" + std::to_string(c) + "}");
        r.start_at_ms = later;
        int64_t id = 0;
        if (!e().run_now(r, &id)) ++failed;
        ids[c].push_back(id);
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(failed.load(), 0);
  std::set<int64_t> all;
  for (int c = 0; c < kCallers; ++c)
    for (int64_t id : ids[c]) {
      all.insert(id);
      store::RunRow row;
      ASSERT_TRUE(k_->store()->get_run(id, &row));
      EXPECT_EQ(row.params_json, "{\"steps\":" + std::to_string(c) + "}") << "run " << id;
      EXPECT_EQ(row.phase, store::kPending);
    }
  EXPECT_EQ(all.size(), size_t{kCallers * kCalls});
  std::set<std::string> audited;
  for (const auto& a : k_->store()->audit_rows(kCallers * kCalls).value())
    if (a.action == "run-now") audited.insert(a.outcome);
  for (int64_t id : all) EXPECT_TRUE(audited.count("ok: run " + std::to_string(id))) << id;
  EXPECT_EQ(e().queue_depths()["(delayed)"], size_t{kCallers * kCalls});
}

TEST_P(EngineTest, ARunNowTheStoreRefusesFailsAloneAmongConcurrentCallers) {
  // The store refuses one caller's runs (a trigger on the real store); the
  // callers whose runs were written with them in one store call are stored
  // all the same, and only the refused ones are audited as refused.
  refuse(k_->store(), "INSERT", "runs", "NEW.params_json = '{\"steps\":9}'", "refused by the test");
  const int64_t later = now_ms() + 3600000;
  constexpr int kCallers = 8, kCalls = 30;
  std::atomic<int> ok{0}, refused{0}, wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int i = 0; i < kCalls; ++i) {
        const bool bad = c == 0 && i % 3 == 0;
        auto r = manual("hello", bad ? R"({"steps":9})" : R"({"steps":1})");
        r.start_at_ms = later;
        int64_t id = 0;
        Status s = e().run_now(r, &id);
        if (bad && !s && s.message().find("refused by the test") != std::string::npos)
          ++refused;
        else if (!bad && s && id > 0)
          ++ok;
        else
          ++wrong;
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(refused.load(), 10);
  EXPECT_EQ(ok.load(), kCallers * kCalls - 10);
  int refused_rows = 0;
  for (const auto& a : k_->store()->audit_rows(kCallers * kCalls + 10).value())
    if (a.action == "run-now" && a.outcome.find("refused: ") == 0) ++refused_rows;
  EXPECT_EQ(refused_rows, 10);
}

TEST_P(EngineTest, ASlotFiresOnceEvenAcrossRestarts) {
  const int64_t slot = every_minute_due();
  store::ScheduledJob j;
  j.id = "every-minute";
  store::RunFilter f;
  f.scheduled_job_id = j.id;
  for (int i = 0; i < 400 && k_->store()->list_runs(f).value().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto runs = k_->store()->list_runs(f).value();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].slot_ms, slot);
  EXPECT_EQ(runs[0].trigger, "schedule");
  // Again: the stored slot is replayed but the unique key refuses it.
  ASSERT_TRUE(k_->store()->set_next_run(j.id, slot));
  restart();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(k_->store()->list_runs(f).value().size(), 1u);
  std::vector<int64_t> next;
  ASSERT_TRUE(e().next_fire_times(j.id, 5, &next));
  ASSERT_EQ(next.size(), 5u);
  for (size_t i = 1; i < next.size(); ++i) EXPECT_EQ(next[i] - next[i - 1], 60000);
}

TEST_P(EngineTest, ManySlotsDueAtOnceFireOnceEachAndEveryJobMovesOn) {
  // More jobs than one firing chunk: stored and queued a chunk at a time,
  // their next slots computed and stored after.
  constexpr int kJobs = 1300;
  for (int i = 0; i < kJobs; ++i) {
    store::ScheduledJob j;
    j.id = "job-" + std::to_string(i);
    j.job_type = "scheduled-only";
    j.planning = "scheduled";
    j.cron = "* * * * *";
    ASSERT_TRUE(k_->store()->create_scheduled_job(j));
  }
  const int64_t slot = (now_ms() / 60000) * 60000;
  std::vector<std::pair<std::string, int64_t>> next;
  for (int i = 0; i < kJobs; ++i) next.emplace_back("job-" + std::to_string(i), slot);
  ASSERT_TRUE(k_->store()->set_next_runs(next));
  k_.reset();
  start({{"default", 4}});
  store::RunFilter f;
  f.limit = kJobs * 2;
  f.phase = store::kCompleted;
  for (int i = 0; i < 2000 && k_->store()->list_runs(f).value().size() < static_cast<size_t>(kJobs); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  f.phase.clear();
  std::set<std::string> jobs;
  size_t fired = 0;
  for (const auto& r : k_->store()->list_runs(f).value()) {
    if (r.slot_ms != slot) continue;  // the next minute's, if the test crossed into it
    ++fired;
    EXPECT_EQ(r.trigger, "schedule");
    EXPECT_EQ(r.phase, store::kCompleted);
    jobs.insert(r.scheduled_job_id);
  }
  EXPECT_EQ(fired, static_cast<size_t>(kJobs));
  EXPECT_EQ(jobs.size(), static_cast<size_t>(kJobs));  // one run per job
  // Every job's next run was stored, after the slot that fired.
  for (int i = 0; i < 2000; ++i) {
    size_t moved = 0;
    for (const auto& j : k_->store()->list_scheduled_jobs().value()) moved += j.next_run_ms > slot;
    if (moved == static_cast<size_t>(kJobs)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& j : k_->store()->list_scheduled_jobs().value()) {
    EXPECT_GT(j.next_run_ms, slot) << j.id;
    EXPECT_EQ(j.next_run_ms % 60000, 0) << j.id;
  }
}

TEST_P(EngineTest, ScheduledJobsAreCheckedWhenDefined) {
  store::ScheduledJob j;
  j.id = "bad";
  j.job_type = "hello";
  j.planning = "scheduled";
  j.cron = "61 * * * *";
  Status s = e().define_job(j, test::operator_actor());
  EXPECT_NE(s.message().find("cron: schedule '61 * * * *': minute (field 1)"), std::string::npos) << s.message();
  j.cron = "0 3 * * *";
  j.time_zone = "Atlantis/Capital";
  EXPECT_NE(e().define_job(j, test::operator_actor()).message().find("unknown time zone"), std::string::npos);
  j.time_zone = "UTC";
  j.params_json = R"({"steps":-1})";
  EXPECT_NE(e().define_job(j, test::operator_actor()).message().find("parameters: steps"), std::string::npos);
  j.params_json = "{}";
  j.scope = "galaxy:x";
  EXPECT_NE(e().define_job(j, test::operator_actor()).message().find("scope:"), std::string::npos);
  j.scope = "tenant:acme";
  j.job_type = "nope";
  EXPECT_NE(e().define_job(j, test::operator_actor()).message().find("job_type:"), std::string::npos);
  j.job_type = "hello";
  ASSERT_TRUE(e().define_job(j, test::operator_actor()));
  EXPECT_EQ(e().define_job(j, test::operator_actor()).code(), OPK_ERR_CONFLICT);
}

TEST_P(EngineTest, RunsLeftByACrashedKernelAreClosedAndRequeuedWhereAllowed) {
  // Simulate a crash: runs recorded RUNNING by this node, then a new kernel.
  std::vector<store::RunRow> rows(2);
  rows[0].job_type = "slow-job";  // requeue capability
  rows[0].params_json = R"({"ms":1})";
  rows[1].job_type = "hello";  // no requeue
  k_.reset();
  {
    std::unique_ptr<store::Store> st = open_store();
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->create_runs(&rows));
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    ASSERT_TRUE(st->mark_running({rows[0].id, rows[1].id}, now_ms(), host, nullptr));
  }
  start();
  for (auto& r : rows) {
    RunView v;
    ASSERT_TRUE(e().get(r.id, &v));
    EXPECT_EQ(v.row.phase, store::kCompleted);
    EXPECT_EQ(v.row.outcome, store::kError);
    EXPECT_TRUE(v.row.terminated);
    EXPECT_NE(v.row.summary.find("recovered at start"), std::string::npos);
  }
  store::RunFilter f;
  f.job_type = "slow-job";
  auto runs = k_->store()->list_runs(f).value();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].trigger, "recovery");
  EXPECT_EQ(runs[0].parent_run_id, rows[0].id);
  ASSERT_TRUE(e().wait(runs[0].id, 10000));
  f.job_type = "hello";
  EXPECT_EQ(k_->store()->list_runs(f).value().size(), 1u);  // not requeued
}

TEST_P(EngineTest, ARunLeftInFlightIsClosedOnlyTogetherWithItsRequeue) {
  // A crashed kernel left a run of a type that is re-queued after a crash.
  std::vector<store::RunRow> rows(1);
  rows[0].job_type = "slow-job";
  rows[0].params_json = R"({"ms":1})";
  k_.reset();
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  {
    std::unique_ptr<store::Store> st = open_store();
    ASSERT_TRUE(st);
    ASSERT_TRUE(st->create_runs(&rows));
    ASSERT_TRUE(st->mark_running({rows[0].id}, now_ms(), host, nullptr));
    // The store refuses the re-queued copy once.
    refuse(st.get(), "INSERT", "runs", "NEW.trigger = 'recovery'", "disk trouble");
  }
  {
    Kernel refused(config());
    Status s = refused.start();
    ASSERT_FALSE(s) << "the recovery could not be stored";
    EXPECT_NE(s.message().find("disk trouble"), std::string::npos) << s.message();
  }
  {
    // Then the run was not closed either: it is still there to recover.
    std::unique_ptr<store::Store> st = open_store();
    ASSERT_TRUE(st);
    store::RunRow r;
    ASSERT_TRUE(st->get_run(rows[0].id, &r));
    EXPECT_EQ(r.phase, store::kRunning);
    stop_refusing(st.get(), "runs");
  }
  start();
  RunView v;
  ASSERT_TRUE(e().get(rows[0].id, &v));
  EXPECT_EQ(v.row.phase, store::kCompleted);
  EXPECT_TRUE(v.row.terminated);
  store::RunFilter f;
  f.job_type = "slow-job";
  auto runs = k_->store()->list_runs(f).value();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].trigger, "recovery");
  EXPECT_EQ(runs[0].parent_run_id, rows[0].id);
}

TEST_P(EngineSqliteFileTest, AStoreDamagedInTheMiddleOfItsFileIsRefusedAtStartNamingIt) {
  // Enough runs that the runs table spans many pages of the file.
  std::vector<store::RunRow> rows(3000);
  for (auto& r : rows) {
    r.job_type = "hello";
    r.reason = std::string(200, 'r');
  }
  ASSERT_TRUE(k_->store()->create_runs(&rows));
  std::vector<std::vector<std::optional<std::string>>> leaves, page_size;
  ASSERT_TRUE(k_->store()->query("SELECT pageno FROM dbstat WHERE name = 'runs' AND pagetype = 'leaf' ORDER BY pageno",
                                 {}, &leaves));
  ASSERT_TRUE(k_->store()->query("PRAGMA page_size", {}, &page_size));
  ASSERT_GT(leaves.size(), 20u);
  k_.reset();  // the last connection writes the log back into the file
  ASSERT_FALSE(std::filesystem::exists(store_path() + "-wal"));
  // Garbage over the first half of a leaf page of runs in the middle of the
  // file; the file's header stays intact.
  const int64_t page = std::stoll(*leaves[leaves.size() / 2][0]), size = std::stoll(*page_size[0][0]);
  ASSERT_LT(page * size, static_cast<int64_t>(std::filesystem::file_size(store_path())));
  {
    std::fstream f(store_path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp((page - 1) * size);
    const std::string garbage(static_cast<size_t>(size / 2), '\xa5');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  Kernel damaged(config());
  Status s = damaged.start();
  ASSERT_FALSE(s) << "a damaged store was opened";
  EXPECT_NE(s.message().find("corrupt"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(store_path()), std::string::npos) << s.message();
}

TEST_P(EngineTest, InventoryFiltersAndDrillIn) {
  auto job = [](std::string id, std::string desc, std::string region, std::string scope) {
    store::ScheduledJob j;
    j.id = std::move(id);
    j.job_type = "hello";
    j.description = std::move(desc);
    j.region = std::move(region);
    j.scope = std::move(scope);
    j.planning = "scheduled";
    j.cron = "0 4 * * *";
    j.params_json = R"({"steps":1,"step_ms":0})";
    return j;
  };
  ASSERT_TRUE(e().define_job(job("eu-greeter", "Greets Europe", "eu-north", "platform"), test::operator_actor()));
  ASSERT_TRUE(e().define_job(job("us-greeter", "Greets America", "us-east", "tenant:acme"), test::operator_actor()));
  ASSERT_TRUE(e().define_job(job("idle", "Never run", "", "platform"), test::operator_actor()));
  auto by_job = [&](const std::string& id, const std::string& params) {
    RunNow r = manual("", params);
    r.job_type.clear();
    r.scheduled_job_id = id;
    return run_and_wait(*k_, r);
  };
  by_job("eu-greeter", R"({"steps":1,"step_ms":0,"fail":true})");
  by_job("eu-greeter", R"({"steps":1,"step_ms":0,"fail":true})");
  by_job("us-greeter", R"({"steps":1,"step_ms":0})");

  auto ids = [&](store::InventoryFilter f) {
    std::vector<std::string> out;
    for (auto& r : e().inventory(f)) out.push_back(r.job.id);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"eu-greeter", "idle", "us-greeter"}));
  EXPECT_EQ(ids({.status = "error"}), V{"eu-greeter"});
  EXPECT_EQ(ids({.status = "normal"}), V{"us-greeter"});
  EXPECT_EQ(ids({.status = "never"}), V{"idle"});
  EXPECT_EQ(ids({.text = "AMERICA"}), V{"us-greeter"});
  EXPECT_EQ(ids({.region = "eu-north"}), V{"eu-greeter"});
  EXPECT_EQ(ids({.scope = "tenant:acme"}), V{"us-greeter"});
  auto inv = e().inventory({.text = "eu-"});
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].last_outcome, store::kError);
  EXPECT_GT(inv[0].job.next_run_ms, now_ms());

  DrillIn d;
  ASSERT_TRUE(e().drill_in("eu-greeter", 10, &d));
  ASSERT_EQ(d.runs.size(), 2u);
  EXPECT_GT(d.runs[0].id, d.runs[1].id);
  ASSERT_EQ(d.failures_30d.size(), 30u);
  EXPECT_EQ(d.failures_30d.back().second, 2);
  EXPECT_EQ(d.failures_30d.front().second, 0);
  EXPECT_EQ(d.failures_30d.back().first % 86400000, 0);
  ASSERT_EQ(d.next_fire_ms.size(), 5u);
  EXPECT_EQ(d.next_fire_ms[1] - d.next_fire_ms[0], 86400000);
  EXPECT_EQ(e().drill_in("nope", 10, &d).code(), OPK_ERR_NOT_FOUND);
}

TEST_P(EngineTest, WaitLogStreamsEveryLineInOrderAndEnds) {
  int64_t id = 0;
  ASSERT_TRUE(e().run_now(manual("hello", R"({"steps":5,"step_ms":20})"), &id));
  std::vector<store::LogRow> got;
  bool finished = false;
  int64_t cursor = 0;
  for (int i = 0; i < 500 && !finished; ++i) {
    auto lines = e().wait_log(id, cursor, 100, 1000, &finished);
    for (auto& l : lines) {
      EXPECT_EQ(l.seq, cursor + 1) << "lines come in order, none skipped";
      cursor = l.seq;
      got.push_back(l);
    }
  }
  EXPECT_TRUE(finished);
  ASSERT_EQ(got.size(), 6u);  // greeting + 5 steps
  EXPECT_EQ(got.front().message, "hello, world!");
  EXPECT_EQ(got.back().message, "step 5 of 5");
}

TEST_P(EngineTest, ASecondKernelOnTheSameDataFolderIsRefusedOnlyOnSqlite) {
  // SQLite's file serves one process: the lock beside it keeps a second
  // kernel out.
  if (!pg()) {
    Kernel second(config());
    Status s = second.start();
    ASSERT_FALSE(s);
    EXPECT_NE(s.message().find("is in use by another opskernel"), std::string::npos) << s.message();
    return;
  }
  // Kernels share a PostgreSQL database (and here a data folder too): two
  // started side by side both start.
  k_.reset();
  Kernel first(config()), second(config());
  Status s1, s2;
  std::thread t1([&] { s1 = first.start(); }), t2([&] { s2 = second.start(); });
  t1.join();
  t2.join();
  ASSERT_TRUE(s1) << s1.message();
  ASSERT_TRUE(s2) << s2.message();
  EXPECT_FALSE(std::filesystem::exists(store_path() + ".lock"));
  // A job one of them defines is in the other's inventory once the store's
  // change count moves, not after the inventory's time to live.
  auto listed = [](Kernel& k, const std::string& id) {
    auto all = k.engine()->inventory_snapshot();
    return std::any_of(all->begin(), all->end(), [&](const store::InventoryRow& r) { return r.job.id == id; });
  };
  EXPECT_FALSE(listed(first, "defined-by-the-second"));  // the inventory is cached now
  store::ScheduledJob j;
  j.id = "defined-by-the-second";
  j.job_type = "hello";
  j.planning = "scheduled";
  j.cron = "0 4 * * *";
  ASSERT_TRUE(second.engine()->define_job(j, test::operator_actor()));
  const auto start = std::chrono::steady_clock::now();
  while (!listed(first, j.id) && std::chrono::steady_clock::now() - start < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(listed(first, j.id)) << "not within 5 s (the inventory's time to live is 10 s)";
}

}  // namespace
}  // namespace opk::jobs
