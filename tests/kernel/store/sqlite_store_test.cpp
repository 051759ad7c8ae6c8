// The embedded store on a real SQLite file: migrations, slot uniqueness,
// the run lifecycle, logs, steps, pruning, audit, and durability across
// reopening.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "kernel/store/failing_vfs.h"
#include "store/open.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "support/test_util.h"

namespace opk::store {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    store_.reset();
    Status s = open_sqlite((dir_.path() / "opk.db").string(), true, &store_);
    ASSERT_TRUE(s) << s.message();
  }
  // Writes, at `path`, a store as a release with the kernel's first
  // `versions` migrations left it, then runs `rows` (SQL) on it.
  static void old_store(const std::string& path, int versions, const std::string& rows) {
    std::string sql =
        "CREATE TABLE schema_migrations (owner TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, "
        "applied_ms INTEGER NOT NULL, PRIMARY KEY (owner, version));";
    for (int v = 0; v < versions; ++v)
      sql += sqlite_kernel_migrations().at(v).sql + ";INSERT INTO schema_migrations VALUES ('kernel', " +
             std::to_string(v + 1) + ", 'v', 1);";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, (sql + rows).c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(db);
  }
  RunRow scheduled_run(const std::string& job, int64_t slot) {
    RunRow r;
    r.job_type = "hello";
    r.scheduled_job_id = job;
    r.slot_ms = slot;
    r.trigger = "schedule";
    return r;
  }
  test::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, UpgradingAVersionOneStoreKeepsItsRunsLogsAndAudit) {
  // A store as the first release wrote it: kernel migration 1 only.
  store_.reset();
  const auto path = (dir_.path() / "old.db").string();
  old_store(path, 1,
            "INSERT INTO runs (job_type, phase, outcome, trigger, params_json, created_ms, finished_ms) VALUES "
            "('old', 'COMPLETED', 'ERROR', 'manual', '{\"a\":1}', 5, 6);"
            "INSERT INTO run_logs VALUES (1, 1, 5, 4, '', 'it broke');"
            "INSERT INTO audit (time_ms, actor, action) VALUES (5, 'ann', 'run-now');");
  ASSERT_TRUE(open_sqlite(path, true, &store_));
  EXPECT_EQ(store_->applied_migrations().value().size(), sqlite_kernel_migrations().size());
  RunRow r;
  ASSERT_TRUE(store_->get_run(1, &r));
  EXPECT_EQ(r.job_type, "old");
  EXPECT_EQ(r.params_json, "{\"a\":1}");
  ASSERT_EQ(store_->logs(1, 0, 10).value().size(), 1u);
  EXPECT_EQ(store_->logs(1, 0, 10).value()[0].message, "it broke");
  ASSERT_EQ(store_->audit_rows(10).value().size(), 1u);
  std::vector<RunRow> more(1);
  more[0].job_type = "new";
  ASSERT_TRUE(store_->create_runs(&more));
  EXPECT_EQ(more[0].id, 2);  // numbering goes on
}

TEST_F(SqliteStoreTest, UpgradingAVersionThreeStoreKeepsEveryRunsState) {
  // Runs in every state as migration 3 left them, one table per run.
  store_.reset();
  const auto path = (dir_.path() / "v3.db").string();
  old_store(
      path, 3,
      "INSERT INTO runs (job_type, phase, outcome, trigger, params_json, reason, hold, created_ms) VALUES "
      "('a', 'PENDING', 'NORMAL', 'manual', '{\"x\":1}', 'why', 1, 5);"
      "INSERT INTO runs (job_type, phase, outcome, trigger, params_json, created_ms, started_ms, node, stale) VALUES "
      "('b', 'RUNNING', 'NORMAL', 'schedule', '{}', 6, 7, 'n1', 1);"
      "INSERT INTO runs (job_type, phase, outcome, trigger, params_json, created_ms, finished_ms, exit_code, summary) "
      "VALUES ('c', 'COMPLETED', 'ERROR', 'manual', '{}', 8, 0, 3, 'broke');");
  ASSERT_TRUE(open_sqlite(path, true, &store_));
  RunRow r;
  ASSERT_TRUE(store_->get_run(1, &r));
  EXPECT_EQ(r.phase, kPending);
  EXPECT_TRUE(r.hold);
  EXPECT_EQ(r.params_json, "{\"x\":1}");
  EXPECT_EQ(r.reason, "why");
  ASSERT_TRUE(store_->get_run(2, &r));
  EXPECT_EQ(r.phase, kRunning);
  EXPECT_EQ(r.started_ms, 7);
  EXPECT_EQ(r.node, "n1");
  EXPECT_TRUE(r.stale);
  ASSERT_TRUE(store_->get_run(3, &r));
  EXPECT_EQ(r.phase, kCompleted);
  EXPECT_EQ(r.outcome, kError);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.summary, "broke");
  EXPECT_GT(r.finished_ms, 0);  // a completed run always has a finish time
  // The open runs are found by phase; the completed one is not among them.
  ASSERT_EQ(store_->runs_in_phase(kPending, 10).value().size(), 1u);
  ASSERT_EQ(store_->runs_in_phase(kRunning, 10).value().size(), 1u);
  ASSERT_EQ(store_->runs_in_phase(kCompleted, 10).value().size(), 1u);
  // Released, the held run is claimed and completed like a new one.
  ASSERT_TRUE(store_->set_hold(1, false));
  std::vector<int64_t> skipped;
  ASSERT_TRUE(store_->mark_running({1}, 20, "n2", &skipped));
  EXPECT_TRUE(skipped.empty());
  Completion c;
  c.run_id = 1;
  c.finished_ms = 21;
  ASSERT_TRUE(store_->complete_runs({c}));
  ASSERT_TRUE(store_->get_run(1, &r));
  EXPECT_EQ(r.phase, kCompleted);
  EXPECT_EQ(r.finished_ms, 21);
  EXPECT_TRUE(store_->runs_in_phase(kPending, 10).value().empty());
}

TEST_F(SqliteStoreTest, ConcurrentWritersShareCommitsWithoutMixingTheirResults) {
  // Writers on many threads are grouped into shared transactions: each must
  // still get its own ids, skips and audit outcomes, and nothing be lost.
  constexpr int kThreads = 6, kCalls = 40, kPerCall = 7;
  ScheduledJob shared;
  shared.id = "shared";
  shared.job_type = "hello";
  ASSERT_TRUE(store_->create_scheduled_job(shared));
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCalls; ++c) {
        std::vector<RunRow> runs(kPerCall);
        std::vector<AuditRow> audit(kPerCall);
        for (auto& r : runs) r.job_type = "t" + std::to_string(t);
        // Every other call also fires a schedule slot another thread fires too.
        if (c % 2 == 0) runs[0] = scheduled_run("shared", 1000 + c);
        if (!store_->create_runs(&runs, &audit)) ++failures;
        std::vector<int64_t> mine;
        for (size_t k = 0; k < runs.size(); ++k) {
          if (runs[k].id == 0) {
            if (audit[k].outcome != "ok: run 0") ++failures;
            continue;
          }
          if (audit[k].outcome != "ok: run " + std::to_string(runs[k].id)) ++failures;
          mine.push_back(runs[k].id);
        }
        std::vector<int64_t> skipped;
        std::vector<int64_t> claim = mine;
        claim.push_back(-1);  // no such run: skipped, for this caller only
        if (!store_->mark_running(claim, 10, "n", &skipped) || skipped != std::vector<int64_t>{-1}) ++failures;
        std::vector<Completion> cs;
        for (int64_t id : mine) cs.push_back({.run_id = id, .finished_ms = 20, .logs = {{id, 1, 20, 2, "", "done"}}});
        if (!store_->complete_runs(cs)) ++failures;
        ids[t].insert(ids[t].end(), mine.begin(), mine.end());
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<int64_t> all;
  size_t total = 0;
  for (int t = 0; t < kThreads; ++t) {
    total += ids[t].size();
    all.insert(ids[t].begin(), ids[t].end());
    for (int64_t id : ids[t]) {
      RunRow r;
      ASSERT_TRUE(store_->get_run(id, &r));
      EXPECT_EQ(r.phase, kCompleted);
      if (r.scheduled_job_id.empty()) {
        EXPECT_EQ(r.job_type, "t" + std::to_string(t)) << "run " << id;
      }
      ASSERT_EQ(store_->logs(id, 0, 10).value().size(), 1u);
    }
  }
  EXPECT_EQ(all.size(), total);  // no id handed to two callers
  // Each of the 20 shared slots fired exactly once, whichever thread won it.
  RunFilter f;
  f.scheduled_job_id = "shared";
  f.limit = 1000;
  EXPECT_EQ(store_->list_runs(f).value().size(), static_cast<size_t>(kCalls / 2));
  const size_t adhoc = kThreads * (kCalls / 2) * (2 * kPerCall - 1);  // even calls gave one run a shared slot
  EXPECT_EQ(total, adhoc + kCalls / 2);
  EXPECT_TRUE(store_->runs_in_phase(kPending, 10).value().empty());
  EXPECT_TRUE(store_->runs_in_phase(kRunning, 10).value().empty());
}

// A flush of the write-ahead log that a test holds back or fails (only
// regular files: the store's folder is flushed too, once).
class Flush {
 public:
  FlushFile fn() {
    return [this](int fd) {
      struct stat st {};
      if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
      std::unique_lock lock(mu_);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      return error_;
    };
  }
  void hold() { set(false, 0); }
  void release() { set(true, 0); }
  void fail(int error) { set(true, error); }
  // Waits until `n` flushes have begun.
  bool wait_entered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ >= n; });
  }

 private:
  void set(bool open, int error) {
    std::lock_guard lock(mu_);
    open_ = open;
    error_ = error;
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int error_ = 0;
  int entered_ = 0;
};

TEST_F(SqliteStoreTest, AWriteReturnsOnceItsLogIsFlushedAndTheNextGroupIsWrittenMeanwhile) {
  Flush flush;
  store_.reset();
  ASSERT_TRUE(open_sqlite((dir_.path() / "flush.db").string(), true, &store_, flush.fn()));
  flush.hold();
  auto create = [&](const std::string& type) {
    return std::async(std::launch::async, [&, type] {
      std::vector<RunRow> runs(1);
      runs[0].job_type = type;
      Status s = store_->create_runs(&runs);
      return s ? runs[0].id : int64_t{-1};
    });
  };
  auto first = create("first");
  ASSERT_TRUE(flush.wait_entered(1));
  // Committed, being flushed: not answered yet.
  EXPECT_EQ(first.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  // The next write is committed while that flush is still held...
  auto second = create("second");
  RunFilter all;
  all.limit = 10;
  bool both_committed = false;
  for (int i = 0; i < 500 && !both_committed; ++i) {
    both_committed = store_->list_runs(all).value().size() == 2;
    if (!both_committed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(both_committed) << "the second group waited for the first one's flush";
  // ...and is not answered before a flush after its commit.
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  flush.release();
  const int64_t a = first.get(), b = second.get();
  EXPECT_GT(a, 0);
  EXPECT_GT(b, 0);
  EXPECT_NE(a, b);
}

TEST_F(SqliteStoreTest, AFailedFlushFailsItsWriteAndEveryLaterOneUntilReopened) {
  Flush flush;
  store_.reset();
  const auto path = (dir_.path() / "flush.db").string();
  ASSERT_TRUE(open_sqlite(path, true, &store_, flush.fn()));
  flush.fail(EIO);
  std::vector<RunRow> runs(1);
  runs[0].job_type = "lost";
  Status s = store_->create_runs(&runs);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_NE(s.message().find("flushing " + path + "-wal failed (Input/output error)"), std::string::npos)
      << s.message();
  // The disk may have dropped what it could not write, and a second fsync
  // would not say so: later writes are refused with the same reason, even
  // once flushing works again.
  flush.release();
  std::vector<RunRow> more(1);
  more[0].job_type = "later";
  s = store_->create_runs(&more);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("refused until"), std::string::npos) << s.message();
  EXPECT_FALSE(store_->append_logs({{1, 1, 1, 2, "", "line"}}));
  // Readiness says so, with the same reason.
  EXPECT_NE(store_->writable().message().find("flushing " + path + "-wal failed"), std::string::npos);
  store_.reset();
  ASSERT_TRUE(open_sqlite(path, true, &store_, flush.fn()));
  std::vector<RunRow> after(1);
  after[0].job_type = "after";
  EXPECT_TRUE(store_->create_runs(&after));
  EXPECT_TRUE(store_->writable());
}

// Runs `write` on `n` threads at once, each once; returns the failures' messages.
std::vector<std::string> at_once(int n, const std::function<Status(int)>& write) {
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      Status s = write(t);
      std::lock_guard lock(mu);
      if (!s) errors.push_back(s.message());
    });
  {
    std::lock_guard lock(mu);
    go = true;
  }
  cv.notify_all();
  for (auto& th : threads) th.join();
  return errors;
}

TEST_F(SqliteStoreTest, AFullStoreSaysSoKeepsWhatItStoredAndTakesWritesAgainOnceThereIsRoom) {
  std::vector<RunRow> kept(20);
  for (auto& r : kept) r.job_type = "kept";
  ASSERT_TRUE(store_->create_runs(&kept));
  ASSERT_TRUE(store_->writable());
  // SQLite's own size limit makes the store full for real: no page can be
  // added beyond the ones it has now.
  ASSERT_TRUE(store_->execute("PRAGMA max_page_count = 1", {}, nullptr));
  const std::string pad(5000, 'x');  // more than a page: each write needs a page more
  std::vector<int64_t> acknowledged;
  Status s;
  while (s) {
    std::vector<RunRow> runs(4);
    for (auto& r : runs) {
      r.job_type = "filler";
      r.params_json = "{\"pad\":\"" + pad + "\"}";
    }
    if ((s = store_->create_runs(&runs)))
      for (const auto& r : runs) acknowledged.push_back(r.id);
  }
  EXPECT_NE(s.message().find("database or disk is full (SQLITE_FULL"), std::string::npos) << s.message();
  // Then until not even a small run fits.
  for (s = Status::ok(); s;) {
    std::vector<RunRow> runs(1);
    runs[0].job_type = "small";
    if ((s = store_->create_runs(&runs))) acknowledged.push_back(runs[0].id);
  }
  // Every kind of write says so, alone or sharing a commit with others: a
  // failure that undoes the shared transaction is reported as itself.
  std::vector<std::string> errors;
  for (int round = 0; round < 20; ++round) {
    auto more = at_once(8, [&](int t) {
      const int64_t id = kept[t].id;
      switch (t % 3) {
        case 0:
          return store_->append_logs({{id, 1, 5, 2, "", pad}});
        case 1:
          return store_->complete_runs({{.run_id = id, .finished_ms = 5, .output_json = pad}});
        default: {
          std::vector<RunRow> runs(2);
          for (auto& r : runs) r.params_json = "{\"pad\":\"" + pad + "\"}";
          return store_->create_runs(&runs);
        }
      }
    });
    errors.insert(errors.end(), more.begin(), more.end());
  }
  EXPECT_EQ(errors.size(), 20u * 8u);
  for (const auto& e : errors) EXPECT_NE(e.find("database or disk is full (SQLITE_FULL"), std::string::npos) << e;
  // Readiness says so too, and why.
  s = store_->writable();
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_NE(s.message().find("full"), std::string::npos) << s.message();
  // Nothing that was acknowledged is lost, nor changed by the refused writes.
  for (int64_t id : acknowledged) {
    RunRow r;
    ASSERT_TRUE(store_->get_run(id, &r)) << "run " << id;
  }
  for (const auto& k : kept) {
    RunRow r;
    ASSERT_TRUE(store_->get_run(k.id, &r));
    EXPECT_EQ(r.phase, kPending);
    EXPECT_TRUE(store_->logs(k.id, 0, 10).value().empty());
  }
  // Room again: writes are taken, and readiness is back, without reopening
  // the store.
  ASSERT_TRUE(store_->execute("PRAGMA max_page_count = 1073741823", {}, nullptr));
  EXPECT_TRUE(store_->writable());
  std::vector<RunRow> after(4);
  for (auto& r : after) r.params_json = "{\"pad\":\"" + pad + "\"}";
  s = store_->create_runs(&after);
  EXPECT_TRUE(s) << s.message();
  EXPECT_TRUE(store_->complete_runs({{.run_id = kept[0].id, .finished_ms = 5, .output_json = pad}}));
}

TEST_F(SqliteStoreTest, ACommitTheDiskRefusesIsReportedWithItsOwnError) {
  std::vector<RunRow> first(1);
  first[0].job_type = "first";
  ASSERT_TRUE(store_->create_runs(&first));
  // The operating system refuses to let the write-ahead log grow (as a full
  // disk does), so the next commit fails while it writes the log.
  const auto wal = std::filesystem::file_size(dir_.path() / "opk.db-wal");
  struct rlimit old_limit {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old_limit;
  limit.rlim_cur = static_cast<rlim_t>(wal);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  std::vector<RunRow> big(50);
  for (auto& r : big) r.params_json = "{\"pad\":\"" + std::string(3000, 'x') + "\"}";
  Status s = store_->create_runs(&big);
  const Status ready = store_->writable();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("store: commit: disk I/O error (SQLITE_IOERR"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("cannot rollback"), std::string::npos) << s.message();
  EXPECT_NE(ready.message().find("disk I/O error"), std::string::npos) << ready.message();
  RunRow r;
  EXPECT_TRUE(store_->get_run(first[0].id, &r));
  EXPECT_FALSE(store_->get_run(first[0].id + 1, &r));
  s = store_->create_runs(&big);
  EXPECT_TRUE(s) << s.message();
  EXPECT_TRUE(store_->writable());
}

TEST_F(SqliteStoreTest, AFileDamagedInTheMiddleIsRefusedAtOpenNamingItWhenChecked) {
  std::vector<RunRow> runs(3000);
  for (auto& r : runs) r.reason = std::string(200, 'r');
  ASSERT_TRUE(store_->create_runs(&runs));
  std::vector<std::vector<std::optional<std::string>>> leaves, page_size;
  ASSERT_TRUE(store_->query("SELECT pageno FROM dbstat WHERE name = 'runs' AND pagetype = 'leaf' ORDER BY pageno", {},
                            &leaves));
  ASSERT_TRUE(store_->query("PRAGMA page_size", {}, &page_size));
  ASSERT_GT(leaves.size(), 20u);
  const std::string path = (dir_.path() / "opk.db").string();
  store_.reset();  // the last connection writes the log back into the file
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  // Both checks pass on the intact file.
  for (auto check : {OpenCheck::quick, OpenCheck::full}) {
    Status s = open_sqlite(path, true, &store_, {}, check);
    ASSERT_TRUE(s) << s.message();
    store_.reset();
  }
  // Garbage over the first half of a leaf page of runs in the middle of the
  // file; the file's header stays intact.
  const int64_t page = std::stoll(*leaves[leaves.size() / 2][0]), size = std::stoll(*page_size[0][0]);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp((page - 1) * size);
    const std::string garbage(static_cast<size_t>(size / 2), '\xa5');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  for (auto check : {OpenCheck::quick, OpenCheck::full}) {
    Status s = open_sqlite(path, true, &store_, {}, check);
    ASSERT_FALSE(s) << "the damage went unnoticed";
    EXPECT_NE(s.message().find("store " + path + " is corrupted"), std::string::npos) << s.message();
  }
  // Unchecked, the store opens; the damage shows when the page is read.
  ASSERT_TRUE(open_sqlite(path, true, &store_, {}, OpenCheck::none));
}

TEST_F(SqliteStoreTest, WithoutFullSynchronousNothingWaitsForAFlush) {
  Flush flush;
  store_.reset();
  ASSERT_TRUE(open_sqlite((dir_.path() / "normal.db").string(), false, &store_, flush.fn()));
  flush.hold();  // would block any write that waited for it
  std::vector<RunRow> runs(3);
  for (auto& r : runs) r.job_type = "n";
  ASSERT_TRUE(store_->create_runs(&runs));
  std::vector<int64_t> skipped;
  EXPECT_TRUE(store_->mark_running({runs[0].id}, 5, "n", &skipped));
  flush.release();
}

TEST_F(SqliteStoreTest, AnUnwritableLocationIsAClearError) {
  std::unique_ptr<Store> s;
  Status st = open_sqlite("/nonexistent-dir/x/opk.db", true, &s);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("/nonexistent-dir/x/opk.db"), std::string::npos) << st.message();
}

// Every read of a store whose file cannot be read reports it, naming the
// file and the cause: none passes for an empty result or "not found".
// (A reader connection opened while the file cannot be read is not tested:
// it waits instead of failing.)
TEST_F(SqliteStoreTest, ReadsOfAStoreThatCannotBeReadFailNamingTheCause) {
  FailingVfs vfs;
  reopen();  // on the failing VFS
  std::vector<RunRow> runs(1);
  runs[0].job_type = "t";
  ASSERT_TRUE(store_->create_runs(&runs));
  ScheduledJob job;
  job.id = "j";
  job.job_type = "t";
  ASSERT_TRUE(store_->create_scheduled_job(job));
  ASSERT_TRUE(store_->add_node({"tenant:a", "tenant", "A", "platform", 1}));
  ASSERT_TRUE(store_->add_user({"ann", "Ann", "TenantUser", "tenant:a", false, 1}));
  ASSERT_TRUE(store_->add_token({"t1", "ann", "abc", "", 1, 0, 0}));
  ASSERT_TRUE(store_->audit({{0, 1, "ann", "", "test", "", "", "", "ok", ""}}));
  RunRow run;
  ASSERT_TRUE(store_->get_run(runs[0].id, &run));  // a reader that has read

  vfs.fail_reads(true);
  // A write from the writer's cache: what the readers hold is stale.
  ASSERT_TRUE(store_->audit({{0, 2, "ann", "", "test", "", "", "", "ok", ""}}));
  const std::string path = (dir_.path() / "opk.db").string();
  auto names_the_cause = [&](const Status& s) {
    EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE) << s.message();
    EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("I/O error"), std::string::npos) << s.message();
  };
  names_the_cause(store_->get_run(runs[0].id, &run));
  ScheduledJob j;
  names_the_cause(store_->get_scheduled_job("j", &j));
  User u;
  names_the_cause(store_->get_user("ann", &u));
  TokenRow t;
  names_the_cause(store_->find_token("abc", &t));
  names_the_cause(store_->list_runs({}).status());
  names_the_cause(store_->runs_in_phase(kPending, 10).status());
  names_the_cause(store_->list_scheduled_jobs().status());
  names_the_cause(store_->inventory().status());
  names_the_cause(store_->failures_per_day("j", 0).status());
  names_the_cause(store_->logs(runs[0].id, 0, 10).status());
  names_the_cause(store_->last_logs(runs[0].id, 10).status());
  names_the_cause(store_->steps(runs[0].id).status());
  names_the_cause(store_->list_nodes().status());
  names_the_cause(store_->list_users().status());
  names_the_cause(store_->list_tokens("ann").status());
  names_the_cause(store_->audit_rows(10).status());
  names_the_cause(store_->applied_migrations().status());
  int64_t revoked = 0;
  names_the_cause(store_->disable_user("ann", 2, &revoked));

  // Readable again: the same reads find what is there, and "not found" is
  // told apart.
  vfs.fail_reads(false);
  ASSERT_TRUE(store_->get_run(runs[0].id, &run));
  EXPECT_EQ(run.job_type, "t");
  EXPECT_EQ(store_->get_run(runs[0].id + 1, &run).code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(store_->get_user("bob", &u).code(), OPK_ERR_NOT_FOUND);
  auto listed = store_->list_runs({});
  ASSERT_TRUE(listed) << listed.status().message();
  EXPECT_EQ(listed.value().size(), 1u);
  EXPECT_EQ(store_->list_users().value().size(), 1u);
  EXPECT_EQ(store_->audit_rows(10).value().size(), 2u);
}

// store::open opens the file the configuration names: store.path under
// kernel.data_dir, or an absolute one as it is; errors name the file.
TEST(StoreOpen, OpensTheFileTheConfigurationNames) {
  test::TempDir dir;
  config::Config cfg;
  cfg.data_dir = dir.str();
  cfg.store_path = "named.db";
  std::unique_ptr<Store> st;
  ASSERT_TRUE(open(cfg, &st));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "named.db"));
  st.reset();
  cfg.store_path = (dir.path() / "absolute.db").string();
  ASSERT_TRUE(open(cfg, &st, {.check = false}));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "absolute.db"));
  st.reset();
  cfg.store_path = (dir.path() / "missing" / "x.db").string();
  Status s = open(cfg, &st);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find(cfg.store_path), std::string::npos) << s.message();
}

}  // namespace
}  // namespace opk::store

TEST(NumberedParameters, DollarNumbersBecomeSqliteNumbersOutsideLiteralsAndComments) {
  using opk::store::internal::numbered_parameters;
  std::string out;
  EXPECT_FALSE(numbered_parameters("SELECT a FROM p_t WHERE a = $1 AND b IN ($2, $10)", 10, &out));  // no $3..$9
  ASSERT_TRUE(numbered_parameters("SELECT '$1 it''s', \"x$2\", [$3] -- $4\n, /* $5 */ $1, $2 FROM t", 2, &out));
  EXPECT_EQ(out, "SELECT '$1 it''s', \"x$2\", [$3] -- $4\n, /* $5 */ ?1, ?2 FROM t");
  ASSERT_TRUE(numbered_parameters("UPDATE t SET a = $2 WHERE b = $1 OR c = $2", 2, &out));
  EXPECT_EQ(out, "UPDATE t SET a = ?2 WHERE b = ?1 OR c = ?2");
  opk::Status s = numbered_parameters("SELECT :name", 1, &out);
  EXPECT_EQ(s.message(), "SQL: parameters must be $1..$1 (found ':name')");
  s = numbered_parameters("SELECT ?", 1, &out);
  EXPECT_EQ(s.message(), "SQL: parameters must be $1..$1 (found '?')");
  s = numbered_parameters("SELECT $1x", 1, &out);
  EXPECT_EQ(s.message(), "SQL: parameters must be $1..$1 (found '$1x')");
  s = numbered_parameters("SELECT $3", 2, &out);
  EXPECT_EQ(s.message(), "SQL: parameters must be $1..$2 (found '$3')");
  s = numbered_parameters("SELECT $2", 2, &out);
  EXPECT_EQ(s.message(), "SQL: the statement uses $2 but not $1");
  EXPECT_TRUE(numbered_parameters("SELECT 1", 0, &out));
}
