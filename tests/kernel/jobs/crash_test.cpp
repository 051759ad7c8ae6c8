// Fault test: a kernel with runs in flight is killed with SIGKILL, again and
// again, then started cleanly. Every run whose creation returned is in the
// store and completes; runs cut off mid-flight are closed as ERROR +
// terminated and re-queued only where the type allows; no schedule slot fires
// twice; the database passes SQLite's integrity check. The SIGKILL round runs
// on both stores (a fresh PostgreSQL database, tests/support/pg_util.h); the
// full disk is SQLite's file's.
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <set>

#include "store/open.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk::jobs {
namespace {

config::Config crash_config(const test::TempDir& d, const std::string& plugins) {
  auto cfg = test::quiet_config(d, plugins);
  cfg.log.console = false;
  cfg.pools = {{"default", 3}};
  cfg.store_path = (d.path() / "data" / "opk.db").string();
  return cfg;
}

// The child: submits runs as fast as it can and records each id once
// run_now has returned (from then on the run is durable).
[[noreturn]] void load(const config::Config& cfg, const std::string& submitted, unsigned seed) {
  Kernel k(cfg);
  if (!k.start()) _exit(3);
  std::ofstream out(submitted, std::ios::app);
  std::mt19937 rng(seed);
  for (int i = 0;; ++i) {
    auto r = (i % 3 == 0) ? test::manual("hello", R"({"steps":2,"step_ms":3})")
                          : test::manual("slow-job", "{\"ms\":" + std::to_string(rng() % 30) + "}");
    int64_t id = 0;
    if (k.engine()->run_now(r, &id)) out << id << "\n" << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 4));
  }
}

class CrashTest : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Backends, CrashTest, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(CrashTest, KillNineRepeatedlyLosesNothingAndFiresNoSlotTwice) {
  const bool pg = GetParam() == "postgresql";
  test::TempDir d;
  test::PgDatabase db;
  auto plugins = test::plugins_dir(d, {test::bundled("hello"), test::fixture("engine_jobs")});
  auto cfg = crash_config(d, plugins);
  const std::string e = test::use_store_backend(GetParam(), &db, &cfg);
  ASSERT_TRUE(e.empty()) << e;
  const std::string submitted = (d.path() / "submitted.txt").string();
  std::filesystem::create_directories(cfg.data_dir);

  // A scheduled job whose slot is due at every start: its catch-up run must
  // exist once per distinct slot, however often the kernel dies.
  {
    Kernel k(cfg);
    ASSERT_TRUE(k.start());
    store::ScheduledJob j;
    j.id = "every-minute";
    j.job_type = "scheduled-only";
    j.planning = "scheduled";
    j.cron = "* * * * *";
    ASSERT_TRUE(k.engine()->define_job(j, test::operator_actor()));
  }
  std::mt19937 rng(12345);
  const int kills = 12;
  for (int i = 0; i < kills; ++i) {
    {  // make the slot due again (the same slot each time)
      std::unique_ptr<store::Store> st;
      ASSERT_TRUE(store::open(cfg, &st));
      ASSERT_TRUE(st->set_next_run("every-minute", 60000));
    }
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) load(cfg, submitted, 1000 + i);
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 250));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited by itself (status " << status << ")";
  }

  // A clean start recovers and drains everything.
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  auto& st = *k.store();
  for (int i = 0; i < 2000; ++i) {
    if (st.runs_in_phase(store::kPending, 1).value().empty() && st.runs_in_phase(store::kRunning, 1).value().empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(st.runs_in_phase(store::kPending, 1).value().empty());
  EXPECT_TRUE(st.runs_in_phase(store::kRunning, 1).value().empty());

  std::ifstream in(submitted);
  std::set<int64_t> ids;
  for (int64_t id; in >> id;) ids.insert(id);
  ASSERT_GT(ids.size(), 20u) << "the load did not get going";
  store::RunFilter all;
  all.limit = 1000000;
  auto runs = st.list_runs(all).value();
  std::map<int64_t, store::RunRow> by_id;
  for (auto& r : runs) by_id[r.id] = r;
  size_t recovered = 0, requeued = 0;
  for (int64_t id : ids) {
    ASSERT_TRUE(by_id.count(id)) << "run " << id << " was acknowledged but is not in the store";
    EXPECT_EQ(by_id[id].phase, store::kCompleted) << "run " << id;
  }
  std::map<int64_t, int> children;
  for (auto& r : runs) {
    if (r.summary.find("recovered at start") != std::string::npos) {
      ++recovered;
      EXPECT_EQ(r.outcome, store::kError);
      EXPECT_TRUE(r.terminated);
    }
    if (r.trigger == "recovery") {
      ++requeued;
      ASSERT_TRUE(by_id.count(r.parent_run_id));
      EXPECT_EQ(by_id[r.parent_run_id].job_type, "slow-job") << "only types with the requeue capability";
      EXPECT_EQ(++children[r.parent_run_id], 1) << "run " << r.parent_run_id << " re-queued twice";
    }
  }
  EXPECT_GT(recovered, 0u) << "no run was caught in flight: the test proved nothing";
  std::set<int64_t> slots;
  size_t slot_runs = 0;
  for (auto& r : runs)
    if (r.scheduled_job_id == "every-minute") {
      ++slot_runs;
      slots.insert(r.slot_ms);
    }
  EXPECT_EQ(slot_runs, slots.size()) << "a schedule slot fired twice";
  EXPECT_EQ(slots.count(60000), 1u);
  k.stop();

  if (!pg) {  // the file is whole
    sqlite3* file = nullptr;
    ASSERT_EQ(sqlite3_open(cfg.store_path.c_str(), &file), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(file, "PRAGMA integrity_check", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "ok");
    sqlite3_finalize(q);
    sqlite3_close(file);
  }
  std::cout << "[ crash    ] " << GetParam() << ": " << kills << " SIGKILLs, " << ids.size() << " acknowledged runs, "
            << runs.size() << " runs stored, " << recovered << " recovered in flight, " << requeued << " re-queued\n";
}

// A tmpfs of `mib` MiB at `dir` for the life of the object: a small real
// file system to fill (needs root, as the test set-up runs).
class SmallDisk {
 public:
  SmallDisk(const std::filesystem::path& dir, int mib) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string opts = "size=" + std::to_string(mib) + "m";
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool grow(int mib) {
    const std::string opts = "size=" + std::to_string(mib) + "m";
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, opts.c_str()) == 0;
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  std::string error_;
};

// The child of the full-disk round: submits runs until the disk is full and
// past it; records each acknowledged id, and the first refusal's words.
[[noreturn]] void fill(const config::Config& cfg, const std::string& submitted, const std::string& refusal) {
  Kernel k(cfg);
  if (!k.start()) _exit(3);
  std::ofstream out(submitted, std::ios::app);
  for (int i = 0;; ++i) {
    int64_t id = 0;
    Status s = k.engine()->run_now(test::manual("hello", R"({"steps":1,"step_ms":0})"), &id);
    if (s) {
      out << id << "\n" << std::flush;
    } else if (!std::filesystem::exists(refusal)) {
      std::ofstream(refusal + ".tmp") << s.message() << std::flush;
      std::filesystem::rename(refusal + ".tmp", refusal);
    }
  }
}

TEST(Crash, AFullDiskRefusesWithItsNameLosesNothingAndTheStoreRecovers) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root (the test set-up runs as root)";
  test::TempDir d;
  auto plugins = test::plugins_dir(d, {test::bundled("hello")});
  SmallDisk disk(d.path() / "small", 3);
  ASSERT_TRUE(disk.mounted()) << "cannot mount a 3 MiB tmpfs: " << disk.error();
  auto cfg = crash_config(d, plugins);
  cfg.data_dir = (d.path() / "small").string();
  cfg.store_path = (d.path() / "small" / "opk.db").string();
  const std::string submitted = (d.path() / "submitted.txt").string();
  const std::string refusal = (d.path() / "refusal.txt").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) fill(cfg, submitted, refusal);
  for (int i = 0; i < 600 && !std::filesystem::exists(refusal); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // refused writes go on, then the kill
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(std::filesystem::exists(refusal)) << "the disk never filled";
  const std::string words = test::read_file(refusal);
  EXPECT_NE(words.find("full"), std::string::npos) << words;
  EXPECT_EQ(words.find("cannot rollback"), std::string::npos) << words;

  // Room again: the store opens (its check passes), and every acknowledged
  // run is there and completes.
  ASSERT_TRUE(disk.grow(64));
  Kernel k(cfg);
  Status started = k.start();
  ASSERT_TRUE(started) << started.message();
  auto& st = *k.store();
  for (int i = 0; i < 3000; ++i) {
    if (st.runs_in_phase(store::kPending, 1).value().empty() && st.runs_in_phase(store::kRunning, 1).value().empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream in(submitted);
  std::set<int64_t> ids;
  for (int64_t id; in >> id;) ids.insert(id);
  ASSERT_GT(ids.size(), 20u) << "the load did not get going";
  store::RunFilter all;
  all.limit = 1000000;
  std::map<int64_t, store::RunRow> by_id;
  for (auto& r : st.list_runs(all).value()) by_id[r.id] = r;
  for (int64_t id : ids) {
    ASSERT_TRUE(by_id.count(id)) << "run " << id << " was acknowledged but is not in the store";
    EXPECT_EQ(by_id[id].phase, store::kCompleted) << "run " << id;
  }
  int64_t id = 0;
  EXPECT_TRUE(k.engine()->run_now(test::manual("hello", R"({"steps":1,"step_ms":0})"), &id)) << "writes resume";
  std::cout << "[ crash    ] full disk: " << ids.size()
            << " acknowledged runs before it filled, refused with: " << words << "\n";
}

}  // namespace
}  // namespace opk::jobs
