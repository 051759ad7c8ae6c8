// Honest run states on a real kernel over real HTTP, on both stores: a run an
// operator cancelled, one its timeout stopped, one stopped at the kernel's
// shutdown, one closed after a crash and one an operator recovered after it
// was flagged stale each keep why in the store (end_cause and the rest) and
// show it in the run JSON (status and termination); only real failures are
// failures (status=error, a job's failure trend), status=terminated lists the
// others.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "support/admin_feature.h"

namespace opk {
namespace {

using Poco::JSON::Object;

class RunStates : public test::FeatureKernelTest<::testing::TestWithParam<std::string>> {
 protected:
  void SetUp() override {
    configure({test::bundled("hello"), test::fixture("engine_jobs")});
    ASSERT_NO_FATAL_FAILURE(use_backend(GetParam()));
    ASSERT_NO_FATAL_FAILURE(start());
    admin_ = tokens_["pat"];
  }

  test::Reply http(const std::string& method, const std::string& target, const std::string& body = "") {
    return test::http_request(port_, method, target, admin_, body);
  }

  // Starts a run of `type` with `params` through the API; its id.
  int64_t start_run(const std::string& type, const std::string& params, const std::string& job_id = "") {
    const std::string body = "{\"" + std::string(job_id.empty() ? "job_type\": \"" + type : "job_id\": \"" + job_id) +
                             "\", \"params\": " + params + ", \"reason\": \"test\"}";
    auto r = http("POST", "/api/v1/runs", body);
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status != 202) return 0;
    return r.json()->getArray("run_ids")->getElement<Poco::Int64>(0);
  }

  // The run as the API shows it, once it has completed (or after 20 s).
  Object::Ptr completed(int64_t id) {
    Object::Ptr run;
    for (int i = 0; i < 4000; ++i) {
      auto r = http("GET", "/api/v1/runs/" + std::to_string(id));
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) return new Object;
      run = r.json()->getObject("run");
      if (run->getValue<std::string>("phase") == "COMPLETED") return run;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "run " << id << " did not complete";
    return run;
  }

  // Waits until run `id` is RUNNING as the API shows it (at most 20 s).
  bool running(int64_t id) {
    for (int i = 0; i < 4000; ++i) {
      auto r = http("GET", "/api/v1/runs/" + std::to_string(id));
      if (r.status == 200 && r.json()->getObject("run")->getValue<std::string>("phase") == "RUNNING") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // The stored row of run `id`.
  store::RunRow row(int64_t id) {
    store::RunRow r;
    EXPECT_TRUE(kernel_->store()->get_run(id, &r));
    return r;
  }

  // The ids of the runs GET /api/v1/runs?status=`status` lists.
  std::set<int64_t> listed(const std::string& status) {
    auto r = http("GET", "/api/v1/runs?limit=100&status=" + status);
    EXPECT_EQ(r.status, 200) << r.body;
    std::set<int64_t> ids;
    auto items = r.json()->getArray("items");
    for (size_t i = 0; i < items->size(); ++i) ids.insert(items->getObject(i)->getValue<int64_t>("id"));
    return ids;
  }

  static std::string termination(const Object::Ptr& run, const char* field) {
    auto t = run->getObject("termination");
    return t ? t->get(field).toString() : "(no termination)";
  }

  std::string admin_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RunStates, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(RunStates, EachCauseIsStoredAndShownApartFromFailures) {
  // A real failure, for contrast.
  const int64_t failed = start_run("step-left-open", "{\"end\": \"fail\"}");
  auto run = completed(failed);
  EXPECT_EQ(run->getValue<std::string>("status"), "error");
  EXPECT_TRUE(run->get("termination").isEmpty());
  EXPECT_EQ(row(failed).end_cause, "");

  // An operator's cancel, with who and why (hello has a cancel hook).
  const int64_t cancelled = start_run("hello", "{\"steps\": 600, \"step_ms\": 100}");
  ASSERT_TRUE(running(cancelled));
  auto r = http("POST", "/api/v1/runs/" + std::to_string(cancelled) + "/cancel", "{\"reason\": \"wrong tenant\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  run = completed(cancelled);
  EXPECT_EQ(run->getValue<std::string>("status"), "cancelled");
  EXPECT_EQ(termination(run, "cause"), "operator");
  EXPECT_EQ(termination(run, "by"), "pat");
  EXPECT_EQ(termination(run, "reason"), "wrong tenant");
  EXPECT_EQ(row(cancelled).end_cause, store::kEndOperator);
  EXPECT_EQ(row(cancelled).end_reason, "wrong tenant");

  // A run waiting for a later start, cancelled before it started: the same cause.
  r = http("POST", "/api/v1/runs",
           "{\"job_type\": \"slow-job\", \"reason\": \"test\", \"start_at_ms\": " +
               std::to_string(jobs::now_ms() + 3600000) + "}");
  ASSERT_EQ(r.status, 202) << r.body;
  const int64_t pending = r.json()->getArray("run_ids")->getElement<Poco::Int64>(0);
  r = http("POST", "/api/v1/runs/" + std::to_string(pending) + "/cancel", "{\"reason\": \"not now\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  run = completed(pending);
  EXPECT_EQ(run->getValue<std::string>("status"), "cancelled");
  EXPECT_EQ(termination(run, "cause"), "operator");
  EXPECT_EQ(termination(run, "reason"), "not now");

  // Its timeout (100 ms), through a scheduled job: the trend counts no failure.
  store::ScheduledJob j;
  j.id = "slow-nightly";
  j.job_type = "timeout-job";
  j.planning = "disabled";
  ASSERT_TRUE(kernel_->engine()->define_job(j, test::operator_actor()));
  const int64_t timed_out = start_run("", "{\"ms\": 60000}", "slow-nightly");
  run = completed(timed_out);
  EXPECT_EQ(run->getValue<std::string>("status"), "timed_out");
  EXPECT_EQ(termination(run, "cause"), "timeout");
  EXPECT_EQ(termination(run, "limit_ms"), "100");
  EXPECT_EQ(row(timed_out).end_limit_ms, 100);
  auto job = http("GET", "/api/v1/jobs/slow-nightly");
  ASSERT_EQ(job.status, 200) << job.body;
  int64_t failures = 0, stopped = 0;
  auto f = job.json()->getArray("failures_30d"), t = job.json()->getArray("terminated_30d");
  ASSERT_EQ(f->size(), 30u);
  ASSERT_EQ(t->size(), 30u);
  for (size_t i = 0; i < f->size(); ++i) {
    failures += f->getObject(i)->getValue<int64_t>("failures");
    stopped += t->getObject(i)->getValue<int64_t>("terminated");
  }
  EXPECT_EQ(failures, 0) << job.body;
  EXPECT_EQ(stopped, 1) << job.body;

  // Recovered by an operator after it was flagged stale.
  const int64_t stale = start_run("slow-job", "{\"ms\": 60000}");
  ASSERT_TRUE(running(stale));
  int64_t flagged = 0;
  ASSERT_TRUE(kernel_->store()->flag_stale(jobs::now_ms() + 1000, &flagged));
  ASSERT_GE(flagged, 1);
  r = http("POST", "/api/v1/runs/" + std::to_string(stale) + "/recover", "{\"reason\": \"stuck on a lock\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  run = completed(stale);
  EXPECT_EQ(run->getValue<std::string>("status"), "recovered");
  EXPECT_EQ(termination(run, "cause"), "stale");
  EXPECT_EQ(termination(run, "by"), "pat");
  EXPECT_EQ(termination(run, "reason"), "stuck on a lock");

  // Stopped at the kernel's shutdown.
  const int64_t shutdown = start_run("slow-job", "{\"ms\": 60000}");
  ASSERT_TRUE(running(shutdown));
  // Left RUNNING in the store as a dead kernel leaves it (no node: any kernel recovers it).
  std::vector<store::RunRow> rows(1);
  rows[0].job_type = "slow-job";
  rows[0].params_json = "{\"ms\": 10}";
  rows[0].reason = "test";
  rows[0].created_ms = rows[0].scheduled_ms = jobs::now_ms() + 3600000;  // not claimed before it is marked
  ASSERT_TRUE(kernel_->store()->create_runs(&rows));
  const int64_t crashed = rows[0].id;
  std::vector<int64_t> skipped;
  ASSERT_TRUE(kernel_->store()->mark_running({crashed}, jobs::now_ms(), "", &skipped));
  ASSERT_TRUE(skipped.empty());
  restart();  // stops the kernel, then starts it again on the same store
  run = completed(shutdown);
  EXPECT_EQ(run->getValue<std::string>("status"), "stopped");
  EXPECT_EQ(termination(run, "cause"), "shutdown");
  EXPECT_EQ(termination(run, "by"), "kernel");
  EXPECT_EQ(row(shutdown).end_cause, store::kEndShutdown);

  // Closed after a crash, when a kernel started again.
  run = completed(crashed);
  EXPECT_EQ(run->getValue<std::string>("status"), "recovered");
  EXPECT_EQ(termination(run, "cause"), "crash");
  EXPECT_EQ(row(crashed).end_cause, store::kEndCrash);

  // Only the real failure is a failure; the rest are listed as terminated.
  EXPECT_EQ(listed("error"), (std::set<int64_t>{failed}));
  const auto terminated = listed("terminated");
  for (int64_t id : {cancelled, pending, timed_out, stale, shutdown, crashed}) EXPECT_TRUE(terminated.count(id)) << id;
  EXPECT_FALSE(terminated.count(failed));
  EXPECT_EQ(listed("timed_out"), (std::set<int64_t>{timed_out}));
  EXPECT_EQ(listed("stopped"), (std::set<int64_t>{shutdown}));
  EXPECT_EQ(listed("recovered"), (std::set<int64_t>{stale, crashed}));
  EXPECT_EQ(http("GET", "/api/v1/runs?status=gone").status, 422);
}

}  // namespace
}  // namespace opk
