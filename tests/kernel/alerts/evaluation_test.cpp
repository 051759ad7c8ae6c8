// Alert sources evaluated by a real kernel through its job engine: the
// scheduled job "alerts.<source>", raises seen through the alert engine, the
// full sweep and its guard (a failed, thrown, cancelled or timed-out run
// clears nothing), bad input logged with its field, and SIGKILL during
// sweeps: after a restart no alert is lost or doubled.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <opskernel/json.hpp>
#include <random>

#include "clock/clock.h"
#include "support/kernel_util.h"

namespace opk::alerts {
namespace {

class EvaluationTest : public ::testing::Test {
 protected:
  void SetUp() override { control("count=3\n"); }
  config::Config config() {
    auto cfg = test::quiet_config(dir_, plugins_);
    cfg.plugins["alert-probe"]["control"] = control_;
    cfg.timeout_grace_ms = 500;
    return cfg;
  }
  void start() {
    kernel_ = std::make_unique<Kernel>(config());
    ASSERT_TRUE(kernel_->start());
  }
  void control(const std::string& text) { test::write_file(control_, text); }
  jobs::RunView evaluate() { return test::run_and_wait(*kernel_, test::manual("probe")); }
  std::map<std::string, store::AlertRow> alerts(const std::string& status = "") {
    Page p;
    ListRequest r;
    r.status = status;
    r.limit = 500;
    EXPECT_TRUE(kernel_->alerts()->list(admin_, r, &p));
    std::map<std::string, store::AlertRow> out;
    for (auto& a : p.alerts) out[a.related_id] = a;
    return out;
  }
  static bool logged(const jobs::RunView& v, const std::string& text) {
    for (const auto& l : v.logs)
      if (l.message.find(text) != std::string::npos) return true;
    return false;
  }

  test::TempDir dir_;
  std::string plugins_ = test::plugins_dir(dir_, {test::fixture("alert_probe")});
  std::string control_ = (dir_.path() / "control.txt").string();
  std::unique_ptr<Kernel> kernel_;
  const Actor admin_{"alice", "PlatformAdministrator", "platform", ""};
};

TEST_F(EvaluationTest, TheSourceIsAScheduledJobAndItsRaisesAreStored) {
  start();
  store::ScheduledJob j;
  ASSERT_TRUE(kernel_->store()->get_scheduled_job("alerts.probe", &j));
  EXPECT_EQ(j.job_type, "probe");
  EXPECT_EQ(j.cron, "0 3 * * *");
  EXPECT_EQ(j.owner, "alert-probe");
  // Listed with the job types, titled in other languages as its manifest says.
  std::string out;
  ASSERT_TRUE(kernel_->jobs_service()->call({"pat", "PlatformAdministrator", "platform"}, "types", "{}", "test", &out))
      << out;
  const auto types = nlohmann::json::parse(out)["types"];
  auto probe = std::find_if(types.begin(), types.end(), [](const auto& t) { return t["id"] == "probe"; });
  ASSERT_NE(probe, types.end()) << out;
  EXPECT_EQ((*probe)["title"], "Probe");
  EXPECT_EQ((*probe)["translations"],
            nlohmann::json::parse(
                R"([{"lang": "sv", "title": "Sond", "description": "Larmar om det dess inställningar säger"}])"));
  auto v = evaluate();
  EXPECT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
  EXPECT_TRUE(logged(v, "full sweep: 3 alert(s) raised, 0 closed"));
  auto open = alerts();
  ASSERT_EQ(open.size(), 3u);
  EXPECT_EQ(open["obj-1"].severity, "critical");
  EXPECT_EQ(open["obj-1"].source, "probe");
  EXPECT_EQ(open["obj-1"].type, "probe");
  EXPECT_EQ(open["obj-1"].area, "testing");
  EXPECT_EQ(open["obj-2"].details_json, "{\"n\":2}");
  // Again: the same three, each seen twice.
  v = evaluate();
  open = alerts();
  ASSERT_EQ(open.size(), 3u);
  EXPECT_EQ(open["obj-3"].occurrences, 2);
}

TEST_F(EvaluationTest, OnlyASuccessfulRunSweeps) {
  start();
  evaluate();
  ASSERT_EQ(alerts().size(), 3u);
  // A run that fails, throws or hangs past its timeout says nothing about
  // what it did not raise.
  control("count=1\nmode=fail\n");
  auto v = evaluate();
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_EQ(alerts().size(), 3u);
  control("count=1\nmode=throw\n");
  v = evaluate();
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_TRUE(logged(v, "exception"));
  EXPECT_EQ(alerts().size(), 3u);
  control("count=1\nmode=hang\n");
  v = evaluate();
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_EQ(alerts().size(), 3u);
  // The kernel and other runs are unaffected: a good run sweeps.
  control("count=1\n");
  v = evaluate();
  EXPECT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
  auto open = alerts();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_TRUE(open.count("obj-1"));
  auto closed = alerts("closed");
  ASSERT_EQ(closed.size(), 2u);
  EXPECT_EQ(closed["obj-2"].close_kind, "cleared");
  EXPECT_EQ(closed["obj-2"].closed_by, "system:alert-probe");
}

TEST_F(EvaluationTest, BadInputIsLoggedWithItsFieldAndTheRestGoesOn) {
  start();
  control("count=2\nmode=bad\nscope=tenant:nobody\n");
  auto v = evaluate();
  EXPECT_EQ(v.row.outcome, store::kError);  // the probe returns the refusal of its first good raise
  EXPECT_TRUE(logged(v, "raise refused: title: is missing")) << v.logs.size();
  EXPECT_TRUE(logged(v, "raise refused: scope: no node 'tenant:nobody'"));
  EXPECT_TRUE(alerts().empty());
  control("count=2\nmode=bad\n");
  v = evaluate();
  EXPECT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
  EXPECT_TRUE(logged(v, "raise refused: title: is missing"));
  EXPECT_EQ(alerts().size(), 2u);
}

TEST_F(EvaluationTest, ConfiguredEscalationRulesAreCheckedAtStartOnceAcrossRestarts) {
  clock::ManualClock manual(clock::now_ms());
  clock::install(&manual);
  auto cfg = config();
  cfg.alert_escalations = {{"critical-4h", "*", "critical", 4 * 3600 * 1000, "unacknowledged"}};
  auto level_of_obj1 = [&] {
    Detail d;
    EXPECT_TRUE(kernel_->alerts()->get(admin_, alerts()["obj-1"].id, &d));
    return d.alert.escalation_level;
  };
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  evaluate();
  EXPECT_EQ(level_of_obj1(), 0);  // checked at start: nothing old enough yet
  kernel_.reset();
  manual.advance(4 * 3600 * 1000 + 1000);
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  for (int i = 0; i < 500 && level_of_obj1() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(level_of_obj1(), 1);  // the critical one, escalated at start
  EXPECT_EQ(alerts()["obj-2"].escalation_level, 0);
  kernel_.reset();
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  kernel_.reset();  // stop waits for the check at start
  kernel_ = std::make_unique<Kernel>(config());
  ASSERT_TRUE(kernel_->start());
  EXPECT_EQ(level_of_obj1(), 1);  // not twice
  kernel_.reset();
  clock::install(nullptr);
}

// The child: evaluates the probe again and again until killed.
[[noreturn]] void evaluate_forever(const config::Config& cfg) {
  Kernel k(cfg);
  if (!k.start()) _exit(3);
  for (;;) {
    int64_t id = 0;
    if (!k.engine()->run_now(test::manual("probe"), &id)) _exit(4);
    k.engine()->wait(id, 60000);
  }
}

TEST_F(EvaluationTest, KillNineDuringSweepsLosesNoAlertAndDoublesNone) {
  auto cfg = config();
  cfg.log.console = false;
  std::mt19937 rng(7);
  for (int i = 0; i < 6; ++i) {
    // Alternating sizes: the small runs sweep away what the big ones raised.
    control(i % 2 ? "count=10\ndelay_ms=2\n" : "count=40\ndelay_ms=2\n");
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) evaluate_forever(cfg);
    std::this_thread::sleep_for(std::chrono::milliseconds(250 + rng() % 250));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited by itself (status " << status << ")";
  }
  control("count=40\n");
  start();
  auto v = evaluate();
  ASSERT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
  auto open = alerts();
  EXPECT_EQ(open.size(), 40u);
  // Every stored alert is whole: its history starts with "raised", a closed
  // one has its "closed" entry, and no object has two open alerts.
  store::AlertQuery q;
  q.view.all = true;
  q.limit = 0;
  auto all = kernel_->store()->list_alerts(q).value();
  ASSERT_GT(all.size(), 40u) << "the kills came before any sweep";
  std::map<std::string, int> open_per_object;
  for (const auto& a : all) {
    auto h = kernel_->store()->alert_events(a.id).value();
    ASSERT_FALSE(h.empty()) << a.id;
    EXPECT_EQ(h.front().kind, "raised") << a.id;
    if (a.closed()) {
      bool has_closed = false;
      for (const auto& e : h) has_closed |= e.kind == "closed";
      EXPECT_TRUE(has_closed) << a.id;
    } else {
      EXPECT_EQ(++open_per_object[a.related_id], 1) << a.related_id;
    }
  }
}

}  // namespace
}  // namespace opk::alerts
