// DatabaseBackup in a real kernel against its real store: tiers and
// retention, a verified self-contained copy, dry-run, cancel leaving no
// partial file, and settings errors that name the key.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "support/kernel_util.h"

namespace opk {
namespace {

namespace fs = std::filesystem;

class Backup : public ::testing::Test {
 protected:
  void start(std::map<std::string, std::string> settings) {
    auto cfg = test::quiet_config(d_, test::plugins_dir(d_, {test::bundled("database-backup")}));
    cfg.plugins["database-backup"] = std::move(settings);
    k_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(k_->start());
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

TEST(BackupSettings, BadSettingsRefuseThePluginNamingTheKey) {
  test::TempDir d;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {test::bundled("database-backup")}));
  cfg.plugins["database-backup"] = {{"tiers", "daily:x"}};
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  ASSERT_EQ(k.plugins().size(), 1u);
  EXPECT_EQ(k.plugins()[0]->state, PluginState::refused);
  EXPECT_NE(k.plugins()[0]->reason.find("plugin.database-backup.tiers: 'daily:x'"), std::string::npos)
      << k.plugins()[0]->reason;
}

}  // namespace
}  // namespace opk
