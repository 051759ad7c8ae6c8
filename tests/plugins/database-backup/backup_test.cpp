// DatabaseBackup in a real kernel against its real store: tiers and
// retention, a verified self-contained copy, dry-run, cancel leaving no
// partial file, and settings errors that name the key; on PostgreSQL (the
// tests' throwaway server, a fresh database), a pg_dump archive verified
// with pg_restore, the password kept off the command line and out of the
// logs, and clear refusals of a missing or too old pg_dump.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

namespace fs = std::filesystem;

class Backup : public ::testing::Test {
 protected:
  void start(std::map<std::string, std::string> settings, int workers = 4) {
    k_ = std::make_unique<Kernel>(config(std::move(settings), workers));
    ASSERT_TRUE(k_->start());
  }
  config::Config config(std::map<std::string, std::string> settings, int workers = 4) {
    if (plugins_.empty()) plugins_ = test::plugins_dir(d_, {test::bundled("database-backup")});
    auto cfg = test::quiet_config(d_, plugins_);
    cfg.plugins["database-backup"] = std::move(settings);
    cfg.pools = {{"default", workers}};
    return cfg;
  }
  jobs::RunView backup(const std::string& tier, bool dry_run = false) {
    auto r = test::manual("database-backup", "{\"tier\":\"" + tier + "\"}");
    r.dry_run = dry_run;
    return test::run_and_wait(*k_, r);
  }
  std::vector<std::string> files() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(d_.path() / "data" / "backups", ec))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  test::TempDir d_;
  std::string plugins_;
  std::unique_ptr<Kernel> k_;
};

TEST_F(Backup, KeepsTheNewestCopiesOfATierAndEachCopyIsAWorkingStore) {
  start({{"tiers", "daily:2,weekly:1"}});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(backup("daily").row.outcome, store::kNormal);
  auto w = backup("weekly");
  ASSERT_EQ(w.row.outcome, store::kNormal) << w.row.summary;
  auto f = files();
  ASSERT_EQ(f.size(), 3u) << ::testing::PrintToString(f);
  EXPECT_EQ(f[0].rfind("opskernel-daily-", 0), 0u);
  EXPECT_EQ(f[2].rfind("opskernel-weekly-", 0), 0u);
  EXPECT_NE(w.row.output_json.find("\"bytes\":"), std::string::npos);
  ASSERT_EQ(w.steps.size(), 3u);
  EXPECT_EQ(w.steps[2].step_id, "cleanup");
  // The newest daily copy holds the runs stored before it, as one file.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((d_.path() / "data" / "backups" / f[1]).c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM runs WHERE job_type = 'database-backup'", -1, &q, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_GE(sqlite3_column_int(q, 0), 2);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST_F(Backup, DryRunReportsAndChangesNothing) {
  start({{"tiers", "daily:1"}});
  ASSERT_EQ(backup("daily").row.outcome, store::kNormal);
  auto v = backup("daily", /*dry_run=*/true);
  EXPECT_EQ(v.row.summary, "dry run: nothing written or deleted");
  bool would_delete = false;
  for (auto& l : v.logs) would_delete |= l.message.find("dry run: would delete") != std::string::npos;
  EXPECT_TRUE(would_delete);
  EXPECT_EQ(files().size(), 1u);
}

TEST_F(Backup, AnUnknownTierFails) {
  start({});
  auto v = backup("yearly");
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_NE(v.logs.back().message.find("tier 'yearly' is not configured"), std::string::npos);
}

TEST_F(Backup, ACancelledBackupLeavesNoFile) {
  start({{"pages_per_step", "1"}, {"step_pause_ms", "40"}});
  int64_t id = 0;
  ASSERT_TRUE(k_->engine()->run_now(test::manual("database-backup", R"({"tier":"daily"})"), &id));
  jobs::RunView v;
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(k_->engine()->get(id, &v));
    if (v.row.progress > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(v.row.progress, 0) << "the copy never started";
  ASSERT_TRUE(k_->engine()->cancel(id, test::operator_actor(), "maintenance"));
  ASSERT_TRUE(k_->engine()->wait(id, 10000));
  ASSERT_TRUE(k_->engine()->get(id, &v));
  EXPECT_TRUE(v.row.terminated);
  EXPECT_TRUE(files().empty()) << ::testing::PrintToString(files());
}

TEST_F(Backup, ManyBackupsOfOneTierStartedTogetherEachMakeTheirOwnCopy) {
  constexpr int kRuns = 24;
  start({{"tiers", "daily:100"}}, kRuns);
  // Every worker takes one at the same moment: their copies begin within the
  // same millisecond.
  std::vector<jobs::RunNow> requests(kRuns, test::manual("database-backup", R"({"tier":"daily"})"));
  std::vector<int64_t> ids;
  ASSERT_TRUE(k_->engine()->run_now_batch(requests, &ids));
  int normal = 0;
  for (int64_t id : ids) {
    ASSERT_TRUE(k_->engine()->wait(id, 60000));
    jobs::RunView v;
    ASSERT_TRUE(k_->engine()->get(id, &v));
    EXPECT_EQ(v.row.outcome, store::kNormal) << "run " << id << ": " << v.row.summary;
    normal += v.row.outcome == store::kNormal;
  }
  EXPECT_EQ(normal, kRuns);
  const auto f = files();
  EXPECT_EQ(f.size(), static_cast<size_t>(kRuns)) << ::testing::PrintToString(f);
  for (const auto& name : f) EXPECT_EQ(fs::path(name).extension(), ".db") << name;
}

TEST_F(Backup, PartialCopiesNobodyIsWritingAreRemovedAtStartAndOthersAreKept) {
  const fs::path dir = d_.path() / "data" / "backups";
  fs::create_directories(dir);
  // Left by a backup killed mid-copy (an older release's name, and one with
  // its rollback journal), beside a finished copy and a copy in progress.
  const std::vector<std::string> stale = {"opskernel-daily-20260101T031500.000Z.db.partial",
                                          "opskernel-daily-20260102T031500.000Z-7.db.4242.1.partial",
                                          "opskernel-daily-20260102T031500.000Z-7.db.4242.1.partial-journal"};
  for (const auto& name : stale) test::write_file(dir / name, "half a copy");
  test::write_file(dir / "opskernel-daily-20260103T031500.000Z-9.db", "a finished copy");
  const fs::path busy = dir / "opskernel-daily-20260104T031500.000Z-12.db.4343.1.partial";
  test::write_file(busy, "being written");
  const int fd = ::open(busy.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as the process copying it holds it
  start({});
  EXPECT_EQ(files(), (std::vector<std::string>{"opskernel-daily-20260103T031500.000Z-9.db",
                                               "opskernel-daily-20260104T031500.000Z-12.db.4343.1.partial"}));
  ::close(fd);
}

TEST_F(Backup, ABackupKilledMidCopyLeavesNoPartialFileAndRunsAgainAtTheNextStart) {
  // Slow enough to be killed mid-copy.
  const auto cfg = config({{"pages_per_step", "1"}, {"step_pause_ms", "20"}});
  const fs::path dir = d_.path() / "data" / "backups";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Kernel k(cfg);
    int64_t id = 0;
    if (!k.start() || !k.engine()->run_now(test::manual("database-backup", R"({"tier":"daily"})"), &id)) _exit(3);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  auto partials = [&] {
    std::vector<std::string> out;
    for (const auto& f : files())
      if (f.find(".partial") != std::string::npos) out.push_back(f);
    return out;
  };
  for (int i = 0; i < 2000 && partials().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const auto left = partials();
  ASSERT_FALSE(left.empty()) << "the copy never started";
  // The next start removes what the killed copy left, before the run is
  // repeated (re-queued after a crash) and makes its own copy.
  k_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(k_->start());
  for (const auto& f : left) EXPECT_FALSE(fs::exists(dir / f)) << f;
  store::RunFilter backups;
  backups.job_type = "database-backup";
  const auto runs = k_->store()->list_runs(backups).value();  // newest first
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].outcome, store::kError);
  EXPECT_EQ(runs[0].trigger, "recovery");
  EXPECT_EQ(runs[0].parent_run_id, runs[1].id);
  ASSERT_TRUE(k_->engine()->wait(runs[0].id, 60000));
  jobs::RunView v;
  ASSERT_TRUE(k_->engine()->get(runs[0].id, &v));
  EXPECT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
  const auto f = files();
  ASSERT_EQ(f.size(), 1u) << ::testing::PrintToString(f);
  EXPECT_EQ(fs::path(f[0]).extension(), ".db");
}

// The same job on a kernel whose store is PostgreSQL.
class PgBackup : public Backup {
 protected:
  void start_pg(std::map<std::string, std::string> settings) {
    auto cfg = config(std::move(settings));
    const std::string e = test::use_store_backend("postgresql", &db_, &cfg);
    ASSERT_TRUE(e.empty()) << e;
    // The test server trusts loopback and never asks for it; the kernel and
    // pg_dump are still given one, which must not show anywhere.
    ::setenv("OPK_TEST_BACKUP_PASSWORD", kPassword, 1);
    cfg.pg_password_env = "OPK_TEST_BACKUP_PASSWORD";
    k_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(k_->start());
  }
  // A program `name` in the test's folder running `script` (sh).
  std::string program(const std::string& name, const std::string& script) {
    const fs::path path = d_.path() / name;
    test::write_file(path, "#!/bin/sh\n" + script);
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  }
  // Everything the run wrote where people read it.
  static std::string shown(const jobs::RunView& v) {
    std::string all = v.row.summary + "\n" + v.row.output_json + "\n" + v.row.params_json + "\n";
    for (const auto& l : v.logs) all += l.message + "\n";
    for (const auto& st : v.steps) all += st.summary + "\n";
    return all;
  }
  static constexpr const char* kPassword = "pw-6c1f0e";
  test::PgDatabase db_;
};

TEST_F(PgBackup, DumpsTheDatabaseVerifiesItAndKeepsTheNewestCopies) {
  // pg_dump as installed, behind a wrapper that records how it was called.
  const std::string calls = (d_.path() / "calls").string();
  const std::string wrapper =
      program("pg_dump_wrapper",
              "echo \"$@\" >> " + calls + "\necho \"PGPASSWORD=$PGPASSWORD\" >> " + calls + "\nexec pg_dump \"$@\"\n");
  start_pg({{"tiers", "daily:2"}, {"pg_dump", wrapper}});
  for (int i = 0; i < 3; ++i) {
    auto v = backup("daily");
    ASSERT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
    EXPECT_EQ(shown(v).find(kPassword), std::string::npos) << shown(v);
    ASSERT_EQ(v.steps.size(), 3u);
    EXPECT_NE(v.row.output_json.find(".dump"), std::string::npos) << v.row.output_json;
  }
  auto f = files();
  ASSERT_EQ(f.size(), 2u) << ::testing::PrintToString(f);
  for (const auto& name : f) {
    EXPECT_EQ(name.rfind("opskernel-daily-", 0), 0u) << name;
    EXPECT_EQ(fs::path(name).extension(), ".dump") << name;
  }
  // The newest archive restores: its table of contents lists the kernel's
  // runs, and the runs' rows hold the backups run before it.
  const fs::path newest = d_.path() / "data" / "backups" / f[1];
  const std::string out = (d_.path() / "runs.sql").string();
  ASSERT_EQ(std::system(("pg_restore --data-only --table=runs --file=" + out + " " + newest.string()).c_str()), 0);
  std::ifstream in(out);
  std::string sql((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(sql.find("database-backup"), std::string::npos) << sql.substr(0, 2000);
  // The password reached pg_dump in its environment only.
  std::ifstream c(calls);
  std::string recorded((std::istreambuf_iterator<char>(c)), std::istreambuf_iterator<char>());
  EXPECT_NE(recorded.find("--format=custom"), std::string::npos) << recorded;
  EXPECT_NE(recorded.find(std::string("PGPASSWORD=") + kPassword), std::string::npos) << recorded;
  for (std::istringstream lines(recorded); !lines.eof();) {
    std::string line;
    std::getline(lines, line);
    if (line.rfind("PGPASSWORD=", 0) != 0) {
      EXPECT_EQ(line.find(kPassword), std::string::npos) << line;
    }
  }
  // A dry run names the tool and writes nothing.
  auto dry = backup("daily", /*dry_run=*/true);
  EXPECT_EQ(dry.row.outcome, store::kNormal);
  EXPECT_NE(shown(dry).find("would dump the PostgreSQL store with"), std::string::npos) << shown(dry);
  EXPECT_EQ(files(), f);
}

TEST_F(PgBackup, AMissingOrOlderPgDumpIsRefusedNamingWhatToInstall) {
  start_pg({{"pg_dump", (d_.path() / "no-such-pg_dump").string()}});
  auto v = backup("daily");
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_NE(shown(v).find("no-such-pg_dump was not found: install Debian's postgresql-client-"), std::string::npos)
      << shown(v);
  EXPECT_TRUE(files().empty()) << ::testing::PrintToString(files());
  k_.reset();
  const std::string old = program("old_pg_dump", "echo 'pg_dump (PostgreSQL) 9.6.24'\n");
  start_pg({{"pg_dump", old}});
  v = backup("daily");
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_NE(shown(v).find("old_pg_dump is version 9, older than the server's"), std::string::npos) << shown(v);
  EXPECT_TRUE(files().empty()) << ::testing::PrintToString(files());
  // A dump that fails, and one pg_restore cannot read, leave no file.
  k_.reset();
  const std::string failing = program("failing_pg_dump",
                                      "if [ \"$1\" = --version ]; then exec pg_dump --version; fi\n"
                                      "echo 'pg_dump: error: connection refused' >&2\nexit 1\n");
  start_pg({{"pg_dump", failing}});
  v = backup("daily");
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_NE(shown(v).find("pg_dump failed (exit 1): pg_dump: error: connection refused"), std::string::npos)
      << shown(v);
  k_.reset();
  const std::string garbage =
      program("garbage_pg_dump",
              "if [ \"$1\" = --version ]; then exec pg_dump --version; fi\n"
              "for a in \"$@\"; do case $a in --file=*) echo junk > \"${a#--file=}\";; esac; done\n");
  start_pg({{"pg_dump", garbage}});
  v = backup("daily");
  EXPECT_EQ(v.row.outcome, store::kError);
  EXPECT_NE(shown(v).find("the dump failed pg_restore --list"), std::string::npos) << shown(v);
  EXPECT_TRUE(files().empty()) << ::testing::PrintToString(files());
}

TEST(BackupSettings, BadSettingsRefuseThePluginNamingTheKey) {
  test::TempDir d;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {test::bundled("database-backup")}));
  cfg.plugins["database-backup"] = {{"tiers", "daily:x"}};
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  ASSERT_EQ(k.plugins().size(), 1u);
  EXPECT_EQ(k.plugins()[0]->state, PluginState::refused);
  EXPECT_NE(k.plugins()[0]->reason.find(
                R"(init failed with status 2: [plugin.database-backup] tiers = "daily:x": expected NAME:KEEP)"),
            std::string::npos)
      << k.plugins()[0]->reason;
}

}  // namespace
}  // namespace opk
