// Fault test: a kernel completing runs is killed with SIGKILL, again and
// again, then started cleanly and drained. Every completed run has exactly
// one event of its end, whose kind matches how the run is stored; runs cut
// off in flight have run.recovered; no run that is not completed has one;
// seqs are unique and grow with the order of the runs' ends.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opskernel/json.hpp>

#include <fstream>
#include <map>
#include <random>
#include <set>

#include "events/documents.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

config::Config crash_config(const test::TempDir& d, const std::string& plugins) {
  auto cfg = test::quiet_config(d, plugins);
  cfg.log.console = false;
  cfg.pools = {{"default", 3}};
  cfg.store_path = (d.path() / "data" / "opk.db").string();
  return cfg;
}

// The child: submits runs as fast as it can, which end in several ways.
[[noreturn]] void load(const config::Config& cfg, unsigned seed) {
  Kernel k(cfg);
  if (!k.start()) _exit(3);
  std::mt19937 rng(seed);
  for (int i = 0;; ++i) {
    const char* outcome = i % 5 == 0 ? "error" : i % 7 == 0 ? "warning" : "normal";
    auto r = (i % 3 == 0) ? test::manual("ev-slow", "{\"ms\":" + std::to_string(rng() % 40) + "}")
                          : test::manual("ev-job",
                                         "{\"ms\":" + std::to_string(rng() % 10) + ",\"outcome\":\"" + outcome + "\"}");
    int64_t id = 0;
    k.engine()->run_now(r, &id);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 3));
  }
}

bool is_end(const std::string& kind) {
  return kind == events::kRunCompleted || kind == events::kRunWarning || kind == events::kRunFailed ||
         kind == events::kRunCancelled || kind == events::kRunTimedOut || kind == events::kRunRecovered;
}

TEST(EventsCrash, KillNineLosesNoRunsEventAndWritesNoneTwice) {
  test::TempDir d;
  auto plugins = test::plugins_dir(d, {test::fixture("events_probe")});
  auto cfg = crash_config(d, plugins);
  std::filesystem::create_directories(cfg.data_dir);
  std::mt19937 rng(4242);
  const int kills = 10;
  for (int i = 0; i < kills; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) load(cfg, 7000 + i);
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 300));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited by itself (status " << status << ")";
  }

  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  auto& st = *k.store();
  for (int i = 0; i < 3000; ++i) {
    if (st.runs_in_phase(store::kPending, 1).value().empty() && st.runs_in_phase(store::kRunning, 1).value().empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  store::RunFilter all;
  all.limit = 10000000;
  std::map<int64_t, store::RunRow> runs;
  for (auto& r : st.list_runs(all).value()) runs[r.id] = r;
  std::map<int64_t, std::vector<store::EventRow>> ends;  // run id -> its end events
  int64_t last_seq = 0;
  size_t total = 0;
  for (int64_t after = 0;;) {
    auto page = st.events_after(after, 5000).value();
    if (page.empty()) break;
    for (auto& e : page) {
      EXPECT_GT(e.seq, last_seq);
      last_seq = e.seq;
      ++total;
      if (is_end(e.kind) && e.subject.rfind("run:", 0) == 0) ends[std::stoll(e.subject.substr(4))].push_back(e);
    }
    after = page.back().seq;
  }
  size_t completed = 0, recovered = 0;
  for (const auto& [id, r] : runs) {
    auto it = ends.find(id);
    if (r.phase != store::kCompleted) {
      EXPECT_TRUE(it == ends.end()) << "run " << id << " is " << r.phase << " but has an end event";
      continue;
    }
    ++completed;
    ASSERT_TRUE(it != ends.end()) << "run " << id << " completed (" << r.summary << ") without its event";
    ASSERT_EQ(it->second.size(), 1u) << "run " << id << " has " << it->second.size() << " end events";
    const auto& e = it->second[0];
    const bool was_recovered = r.summary.find("recovered at start") != std::string::npos;
    recovered += was_recovered;
    if (was_recovered) {
      EXPECT_EQ(e.kind, events::kRunRecovered) << id;
      EXPECT_EQ(Json::parse(e.payload_json)["requeued"], r.job_type == "ev-slow") << id;
    } else {
      EXPECT_NE(e.kind, events::kRunRecovered) << id;
      EXPECT_EQ(Json::parse(e.payload_json)["run"]["status"], store::run_status(r.phase, r.outcome, r.cancelled_by))
          << id;
    }
  }
  for (const auto& [id, es] : ends) EXPECT_TRUE(runs.count(id)) << "an event of run " << id << ", which is not stored";
  EXPECT_GT(completed, 50u) << "the load did not get going";
  EXPECT_GT(recovered, 0u) << "no run was caught in flight: the test proved nothing";
  k.stop();
  std::cout << "[ crash    ] " << kills << " SIGKILLs, " << runs.size() << " runs, " << completed
            << " completed with one end event each, " << recovered << " recovered, " << total << " events\n";
}

}  // namespace
}  // namespace opk
