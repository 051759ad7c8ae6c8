// Fault test of several kernels on one PostgreSQL database: three kernel
// processes (forked, each with its own node name and data folder) submit
// runs as fast as they can while every scheduled job's slot is due; one is
// killed with SIGKILL, another stopped with SIGSTOP past its lease and then
// resumed. Every run whose creation returned completes exactly once or is
// visibly taken over (ERROR, terminated, naming the dead node) and re-queued
// only where its type allows; no slot has two runs; nothing the stopped node
// held is stored after its runs were taken over, and it registers again;
// the third, drained while runs flow, claims nothing once it reports
// drained.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "store/open.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk::jobs {
namespace {

constexpr int64_t kProcessLeaseMs = 1500;
constexpr int kJobs = 20;

config::Config node_config(const test::TempDir& d, const std::string& plugins, const std::string& node,
                           const std::string& conninfo) {
  auto cfg = test::quiet_config(d, plugins);
  cfg.log.console = std::getenv("OPK_TEST_NODE_LOGS") != nullptr;
  cfg.node_name = node;
  cfg.pools = {{"default", 3}};
  cfg.lease_ms = kProcessLeaseMs;
  cfg.claim_poll_ms = 50;
  cfg.store_backend = "postgresql";
  cfg.pg_conninfo = conninfo;
  return cfg;
}

// A kernel process: submits runs (recording each id once run_now returned)
// until `enough` exists, then writes `submitted` + ".done", and stops cleanly
// once `stop` exists.
[[noreturn]] void node_process(const config::Config& cfg, const std::string& submitted, const std::string& enough,
                               const std::string& stop, unsigned seed) {
  Kernel k(cfg);
  if (!k.start()) _exit(3);
  std::ofstream out(submitted, std::ios::app);
  std::mt19937 rng(seed);
  for (int i = 0; i < 100000 && !std::filesystem::exists(enough); ++i) {
    // Short runs, and a long one first, so the kernels killed and stopped
    // have runs in flight whatever the load.
    auto r = (i % 3 == 0) ? test::manual("hello", R"({"steps":1,"step_ms":2})")
             : (i == 1)   ? test::manual("slow-job", R"({"ms":3000})")
                          : test::manual("slow-job", "{\"ms\":" + std::to_string(rng() % 20) + "}");
    int64_t id = 0;
    if (k.engine()->run_now(r, &id)) out << id << "\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 6));
  }
  test::write_file(submitted + ".done", "");
  while (!std::filesystem::exists(stop)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  k.stop();
  _exit(0);
}

// Waits up to `ms` for a child to exit; false if it is still running.
bool exited_within(pid_t pid, int* status, int ms) {
  for (int i = 0; i < ms / 20; ++i) {
    if (waitpid(pid, status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return waitpid(pid, status, WNOHANG) == pid;
}

// Kills the kernel processes still running when the test ends, so a failed
// assertion is reported as such instead of a test that never ends.
struct ChildReaper {
  std::vector<pid_t>* pids;
  ~ChildReaper() {
    for (pid_t p : *pids) {
      if (p <= 0) continue;
      kill(p, SIGCONT);
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  }
};

// Then, with the stopped kernel back, the third is drained while runs
// flow: it claims nothing once it reports drained, and the runs it queued
// are run by the other.
TEST(ClusterProcessTest, KilledStoppedAndDrainedKernelsLoseNoRunAndStoreNothingAfterTheirFence) {
  test::TempDir d;
  test::PgDatabase db;
  ASSERT_TRUE(db.create().empty());
  const std::string plugins = test::plugins_dir(d, {test::bundled("hello"), test::fixture("engine_jobs")});
  std::vector<std::unique_ptr<test::TempDir>> dirs;
  auto cfg_of = [&](const std::string& node) {
    dirs.push_back(std::make_unique<test::TempDir>());
    std::filesystem::create_directories(dirs.back()->path() / "data");
    return node_config(*dirs.back(), plugins, node, db.conninfo());
  };
  const auto setup = cfg_of("setup");
  {
    // Scheduled jobs whose slot is due at every kernel's start: each fires
    // once whichever kernel fires it.
    Kernel k(setup);
    ASSERT_TRUE(k.start());
    for (int i = 0; i < kJobs; ++i) {
      store::ScheduledJob j;
      j.id = "every-minute-" + std::to_string(i);
      j.job_type = "scheduled-only";
      j.planning = "scheduled";
      j.cron = "* * * * *";
      ASSERT_TRUE(k.engine()->define_job(j, test::operator_actor()));
      ASSERT_TRUE(k.store()->set_next_run(j.id, 60000));
    }
  }
  const std::string stop = (d.path() / "stop").string();
  const std::string enough = (d.path() / "enough").string();
  std::vector<pid_t> pids;
  ChildReaper reaper{&pids};
  std::vector<std::string> submitted;
  for (int i = 0; i < 3; ++i) {
    const std::string node = "n" + std::to_string(i);
    const auto cfg = cfg_of(node);
    submitted.push_back((d.path() / (node + ".txt")).string());
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) node_process(cfg, submitted.back(), enough, stop, 100 + i);
    pids.push_back(pid);
  }
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open(setup, &st));
  auto nodes = [&] {
    std::map<std::string, store::ClusterNode> m;
    for (auto& n : st->cluster_nodes().value()) m[n.id] = n;
    return m;
  };
  // True once `pred` held (the value it last gave, never a second reading).
  auto wait_for = [](const std::function<bool()>& pred, int ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      if (pred()) return true;
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  // What is left open, and who holds what, when something does not happen in time.
  auto open_runs = [&] {
    std::vector<std::vector<std::optional<std::string>>> rows;
    std::string out;
    const char* sql[] = {
        "SELECT s.id, r.job_type, s.phase, s.node, s.claim_epoch, s.hold, r.trigger, r.parent_run_id, "
        "r.scheduled_ms, s.started_ms FROM run_state s JOIN runs r ON r.id = s.id WHERE s.phase <> 'COMPLETED' "
        "ORDER BY s.id",
        "SELECT id, epoch, status, lease_until_ms FROM cluster_nodes ORDER BY id",
        "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid), now() - state_change, left(query, "
        "100) FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle' AND pid <> "
        "pg_backend_pid()"};
    for (const char* q : sql) {
      rows.clear();
      if (!st->query(q, {}, &rows)) continue;
      for (const auto& r : rows) {
        for (const auto& v : r) out += v.value_or("NULL") + " | ";
        out += "\n";
      }
      out += "--\n";
    }
    return out;
  };
  ASSERT_TRUE(wait_for([&] { return nodes().size() == 4; }, 20000)) << "the kernels did not start";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  // n0 dies under load, with a run of a type that is re-queued in flight.
  auto running_on = [&](const std::string& node) {
    store::RunFilter f;
    f.phase = store::kRunning;
    f.job_type = "slow-job";
    for (const auto& r : st->list_runs(f).value())
      if (r.node == node) return true;
    return false;
  };
  EXPECT_TRUE(wait_for([&] { return running_on("n0"); }, 10000)) << "n0 runs nothing";
  ASSERT_EQ(kill(pids[0], SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pids[0], &status, 0), pids[0]);
  pids[0] = -1;
  const auto killed_at = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // n1 stalls past its lease, and comes back.
  const int64_t n1_epoch = nodes()["n1"].epoch;
  ASSERT_EQ(kill(pids[1], SIGSTOP), 0);
  EXPECT_TRUE(wait_for([&] { return nodes()["n1"].status == "dead"; }, kProcessLeaseMs * 6))
      << "n1 was not declared dead:\n"
      << open_runs();
  // n0's runs were closed within about a lease of its death.
  EXPECT_TRUE(wait_for(
      [&] {
        store::RunFilter f;
        f.phase = store::kRunning;
        f.limit = 100000;
        for (const auto& r : st->list_runs(f).value())
          if (r.node == "n0") return false;
        return true;
      },
      kProcessLeaseMs * 6));
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, std::chrono::milliseconds(kProcessLeaseMs * 8));
  ASSERT_EQ(kill(pids[1], SIGCONT), 0);
  EXPECT_TRUE(
      wait_for([&] { return nodes()["n1"].epoch > n1_epoch && nodes()["n1"].status != "dead"; }, kProcessLeaseMs * 6))
      << "n1 did not register again:\n"
      << open_runs();

  // n2 is drained while runs flow: it reports drained once its runs in
  // flight are done, and claims nothing after that.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(st->drain_node("n2", "patching"));
  // No new runs from here: those queued and in flight still flow.
  test::write_file(enough, "");
  EXPECT_TRUE(wait_for([&] { return nodes()["n2"].status == "drained"; }, kProcessLeaseMs * 6))
      << "n2 did not report drained";
  const int64_t drained_seen_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  for (int i = 1; i < 3; ++i)
    ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(submitted[i] + ".done"); }, 20000))
        << "n" << i << " did not finish submitting";

  // Everything drains; then the two left stop cleanly.
  const auto drain_from = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for(
      [&] {
        return st->runs_in_phase(store::kPending, 1).value().empty() &&
               st->runs_in_phase(store::kRunning, 1).value().empty();
      },
      60000))
      << st->runs_in_phase(store::kPending, 1000).value().size() << " run(s) still pending, "
      << st->runs_in_phase(store::kRunning, 1000).value().size() << " running:\n"
      << open_runs() << "after " << (std::chrono::steady_clock::now() - drain_from).count() / 1000000 << " ms";
  test::write_file(stop, "");
  for (int i = 1; i < 3; ++i) {
    ASSERT_TRUE(exited_within(pids[i], &status, 30000)) << "n" << i << " did not stop within 30 s";
    pids[i] = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "n" << i << " status " << status;
  }
  EXPECT_EQ(nodes()["n0"].status, "dead");
  EXPECT_EQ(nodes()["n2"].status, "drained");

  std::set<int64_t> acknowledged;
  for (const auto& f : submitted) {
    std::ifstream in(f);
    for (int64_t id; in >> id;) acknowledged.insert(id);
  }
  ASSERT_GT(acknowledged.size(), 300u) << "the load did not get going";
  store::RunFilter all;
  all.limit = 1000000;
  auto runs = st->list_runs(all).value();
  std::map<int64_t, store::RunRow> by_id;
  for (auto& r : runs) by_id[r.id] = r;
  for (int64_t id : acknowledged) {
    ASSERT_TRUE(by_id.count(id)) << "run " << id << " was acknowledged but is not in the store";
    EXPECT_EQ(by_id[id].phase, store::kCompleted) << "run " << id;
  }
  std::map<std::string, size_t> taken_from;
  std::map<int64_t, int> children;
  size_t taken = 0, requeued = 0, on_n2 = 0;
  for (const auto& r : runs) {
    if (r.node == "n2") {
      ++on_n2;
      EXPECT_LT(r.started_ms, drained_seen_ms) << "run " << r.id << " started on n2 after it reported drained";
    }
    const bool took = r.summary.find("stopped or lost its lease") != std::string::npos;
    if (took) {
      ++taken;
      EXPECT_EQ(r.outcome, store::kError) << r.id;
      EXPECT_TRUE(r.terminated) << r.id;
      for (const char* n : {"n0", "n1", "n2"})
        if (r.summary.find(std::string("node '") + n + "'") != std::string::npos) ++taken_from[n];
    } else if (r.job_type != "scheduled-only") {
      // A run either finished normally (once) or is visibly taken over:
      // nothing else, and no result of a fenced node over a takeover.
      EXPECT_EQ(r.outcome, store::kNormal) << r.id << ": " << r.summary;
    }
    if (r.trigger == "recovery") {
      ++requeued;
      ASSERT_TRUE(by_id.count(r.parent_run_id));
      const auto& parent = by_id[r.parent_run_id];
      EXPECT_EQ(parent.job_type, "slow-job") << "only types with the requeue capability are re-queued";
      EXPECT_EQ(++children[r.parent_run_id], 1) << "run " << r.parent_run_id << " re-queued twice";
    }
  }
  EXPECT_GT(taken_from["n0"], 0u) << "n0 had no run in flight when killed";
  EXPECT_GT(requeued, 0u);
  EXPECT_GT(on_n2, 0u);
  // Each slot once: the catch-up slot of every job, and any later slot once.
  std::vector<std::vector<std::optional<std::string>>> twice;
  ASSERT_TRUE(
      st->query("SELECT scheduled_job_id, slot_ms FROM run_rows WHERE slot_ms <> 0 GROUP BY 1, 2 HAVING "
                "COUNT(*) > 1",
                {}, &twice));
  EXPECT_TRUE(twice.empty()) << twice.size() << " slot(s) fired twice";
  std::vector<std::vector<std::optional<std::string>>> first;
  ASSERT_TRUE(st->query("SELECT COUNT(*) FROM run_rows WHERE slot_ms = 60000", {}, &first));
  EXPECT_EQ(first[0][0].value_or(""), std::to_string(kJobs));
  std::cout << "acknowledged " << acknowledged.size() << " runs, " << runs.size() << " stored, " << taken
            << " taken over (n0 " << taken_from["n0"] << ", n1 " << taken_from["n1"] << "), " << requeued
            << " re-queued, " << on_n2 << " run on n2 before its drain\n";
}

}  // namespace
}  // namespace opk::jobs
