// The embedded store's caches of plugins' prepared statements (the writer's
// and each reader connection's, sqlite_plugin_sql.cpp): a statement kept for
// one plugin is never run for another, the fence checks a kept statement again when a schema change makes
// SQLite prepare it anew, and a migration that alters a table is seen by the
// statements kept before it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/open.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "support/test_util.h"

namespace opk::store {
namespace {

class PluginStmtCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = open_sqlite((dir_.path() / "opk.db").string(), true, &store_);
    ASSERT_TRUE(s) << s.message();
    s = store_->migrate("plugin-x", {{1, "create", "CREATE TABLE p_plugin_x_t (id INTEGER PRIMARY KEY, name TEXT)"}});
    ASSERT_TRUE(s) << s.message();
  }
  // The number of rows of `table` (an unfenced read, as the kernel's).
  int64_t count(const std::string& table) {
    std::vector<std::vector<std::optional<std::string>>> rows;
    Status s = store_->query("SELECT COUNT(*) FROM " + table, {}, &rows);
    EXPECT_TRUE(s) << s.message();
    return rows.empty() || !rows[0][0] ? -1 : std::stoll(*rows[0][0]);
  }

  test::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(PluginStmtCacheTest, AStatementKeptForOnePluginIsRefusedToAnother) {
  const std::string sql = "INSERT INTO p_plugin_x_t (name) VALUES ($1)";
  for (const char* name : {"a", "b", "c"}) {
    Status s = store_->plugin_execute("plugin-x", sql, {name}, nullptr);
    ASSERT_TRUE(s) << s.message();
  }
  // The same text from another plugin is prepared under its own fence.
  for (int i = 0; i < 2; ++i) {
    Status s = store_->plugin_execute("plugin-y", sql, {"stolen"}, nullptr);
    EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
    EXPECT_NE(s.message().find("'p_plugin_x_t' is not one of plugin plugin-y's own"), std::string::npos) << s.message();
  }
  std::vector<PluginResult> results;
  size_t failed = 99;
  Status s = store_->plugin_transaction("plugin-y", {{sql, {"stolen"}}}, &results, &failed);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  EXPECT_EQ(failed, 0u);
  s = store_->plugin_execute("plugin-x", sql, {"d"}, nullptr);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(count("p_plugin_x_t"), 4);
}

TEST_F(PluginStmtCacheTest, TheFenceChecksAKeptStatementAgainAfterASchemaChange) {
  const std::string sql = "DELETE FROM p_plugin_x_t WHERE name = $1";
  ASSERT_TRUE(store_->plugin_execute("plugin-x", "INSERT INTO p_plugin_x_t (name) VALUES ($1)", {"a"}, nullptr));
  ASSERT_TRUE(store_->plugin_execute("plugin-x", "INSERT INTO p_plugin_x_t (name) VALUES ($1)", {"b"}, nullptr));
  Status s = store_->plugin_execute("plugin-x", sql, {"a"}, nullptr);  // kept
  ASSERT_TRUE(s) << s.message();
  ASSERT_TRUE(store_->audit({{0, 1, "u", "r", "act", "target", "why", "{}", "ok", "test"}}));
  // A trigger on the plugin's table that reaches the kernel's audit (made
  // behind the fence's back: plugins cannot create triggers) changes the
  // schema, so SQLite prepares the kept statement again, trigger included:
  // the fence refuses it.
  ASSERT_TRUE(store_->execute(
      "CREATE TRIGGER p_plugin_x_wipe AFTER DELETE ON p_plugin_x_t BEGIN DELETE FROM audit; END", {}, nullptr));
  s = store_->plugin_execute("plugin-x", sql, {"b"}, nullptr);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  EXPECT_NE(s.message().find("'audit' is not one of plugin plugin-x's own"), std::string::npos) << s.message();
  EXPECT_EQ(count("audit"), 1);
  EXPECT_EQ(count("p_plugin_x_t"), 1);
  // Without the trigger, the kept statement runs again.
  ASSERT_TRUE(store_->execute("DROP TRIGGER p_plugin_x_wipe", {}, nullptr));
  s = store_->plugin_execute("plugin-x", sql, {"b"}, nullptr);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(count("p_plugin_x_t"), 0);
}

TEST_F(PluginStmtCacheTest, AMigrationThatAltersATableReachesTheStatementsKeptBeforeIt) {
  const std::string sql = "INSERT INTO p_plugin_x_t (name) VALUES ($1) RETURNING *";
  std::vector<PluginResult> results;
  Status s = store_->plugin_transaction("plugin-x", {{sql, {"a"}}}, &results, nullptr);
  ASSERT_TRUE(s) << s.message();
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].rows.size(), 1u);
  EXPECT_EQ(results[0].rows[0].size(), 2u);  // id, name
  s = store_->migrate("plugin-x",
                      {{1, "create", "CREATE TABLE p_plugin_x_t (id INTEGER PRIMARY KEY, name TEXT)"},
                       {2, "score", "ALTER TABLE p_plugin_x_t ADD COLUMN score DOUBLE PRECISION DEFAULT 1.5"}});
  ASSERT_TRUE(s) << s.message();
  s = store_->plugin_transaction("plugin-x", {{sql, {"b"}}}, &results, nullptr);
  ASSERT_TRUE(s) << s.message();
  ASSERT_EQ(results[0].rows.size(), 1u);
  ASSERT_EQ(results[0].rows[0].size(), 3u);  // id, name, score
  EXPECT_EQ(results[0].rows[0][2].kind, Value::Kind::real);
  EXPECT_EQ(results[0].rows[0][2].real, 1.5);
  // A table dropped and made anew with other columns: the kept statement
  // follows it too.
  s = store_->migrate("plugin-x",
                      {{1, "create", "CREATE TABLE p_plugin_x_t (id INTEGER PRIMARY KEY, name TEXT)"},
                       {2, "score", "ALTER TABLE p_plugin_x_t ADD COLUMN score DOUBLE PRECISION DEFAULT 1.5"},
                       {3, "anew", "DROP TABLE p_plugin_x_t; CREATE TABLE p_plugin_x_t (name TEXT)"}});
  ASSERT_TRUE(s) << s.message();
  s = store_->plugin_transaction("plugin-x", {{sql, {"c"}}}, &results, nullptr);
  ASSERT_TRUE(s) << s.message();
  ASSERT_EQ(results[0].rows.size(), 1u);
  ASSERT_EQ(results[0].rows[0].size(), 1u);
  EXPECT_EQ(results[0].rows[0][0].text, "c");
}

TEST_F(PluginStmtCacheTest, PluginsCallsLeaveTheConnectionsStatementsPrepared) {
  auto* sqlite = dynamic_cast<internal::SqliteStore*>(store_.get());
  ASSERT_NE(sqlite, nullptr);
  const AuditRow row{0, 1, "u", "r", "act", "target", "why", "{}", "ok", "test"};
  const std::string insert = "INSERT INTO p_plugin_x_t (name) VALUES ($1)";
  // Every statement this round uses, prepared once.
  auto round = [&](int i) {
    ASSERT_TRUE(store_->audit({row}));
    Status s = store_->plugin_execute("plugin-x", insert, {"n" + std::to_string(i)}, nullptr);
    ASSERT_TRUE(s) << s.message();
    std::vector<std::vector<std::optional<std::string>>> rows;
    s = store_->plugin_query("plugin-x", "SELECT COUNT(*) FROM p_plugin_x_t", {}, &rows);
    ASSERT_TRUE(s) << s.message();
    s = store_->plugin_transaction("plugin-x", {{insert, {"t"}}, {"DELETE FROM p_plugin_x_t WHERE name = $1", {"t"}}},
                                   nullptr, nullptr);
    ASSERT_TRUE(s) << s.message();
    // A refused statement is checked by the fence too.
    s = store_->plugin_execute("plugin-x", "DELETE FROM audit", {}, nullptr);
    ASSERT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  };
  round(0);
  const int64_t before = sqlite->writer_reprepares();
  for (int i = 1; i <= 20; ++i) round(i);
  // Setting SQLite's authorizer around each plugin statement expired them
  // all: the kernel's audit and transaction statements and the plugin's
  // kept insert were prepared again after every call.
  EXPECT_EQ(sqlite->writer_reprepares(), before);
  EXPECT_EQ(count("p_plugin_x_t"), 21);
  EXPECT_EQ(count("audit"), 21);
}

// Plugins' reads are kept prepared on the reader connections too: a read
// run again is not prepared again, is refused to another plugin as the
// writer's are, and follows a migration that changes its table.
TEST_F(PluginStmtCacheTest, PluginsReadsAreKeptOnTheReaderConnections) {
  auto* sqlite = dynamic_cast<internal::SqliteStore*>(store_.get());
  ASSERT_NE(sqlite, nullptr);
  ASSERT_TRUE(store_->plugin_execute("plugin-x", "INSERT INTO p_plugin_x_t (name) VALUES ($1)", {"a"}, nullptr));
  const std::string sql = "SELECT * FROM p_plugin_x_t WHERE name = $1";
  const int64_t before = sqlite->reader_prepares();
  for (int i = 0; i < 20; ++i) {
    std::vector<std::vector<std::optional<std::string>>> rows;
    Status s = store_->plugin_query("plugin-x", sql, {"a"}, &rows);
    ASSERT_TRUE(s) << s.message();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].size(), 2u);
    std::vector<TypedRow> typed;
    s = store_->plugin_query_typed("plugin-x", sql, {"b"}, &typed);
    ASSERT_TRUE(s) << s.message();
    EXPECT_TRUE(typed.empty());
  }
  // One connection at a time here: the text is prepared once on it.
  EXPECT_EQ(sqlite->reader_prepares() - before, 1);
  for (int i = 0; i < 2; ++i) {
    std::vector<std::vector<std::optional<std::string>>> rows;
    Status s = store_->plugin_query("plugin-y", sql, {"a"}, &rows);
    EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
    EXPECT_TRUE(rows.empty());
  }
  Status s = store_->migrate("plugin-x",
                             {{1, "create", "CREATE TABLE p_plugin_x_t (id INTEGER PRIMARY KEY, name TEXT)"},
                              {2, "score", "ALTER TABLE p_plugin_x_t ADD COLUMN score DOUBLE PRECISION DEFAULT 1.5"}});
  ASSERT_TRUE(s) << s.message();
  std::vector<TypedRow> typed;
  s = store_->plugin_query_typed("plugin-x", sql, {"a"}, &typed);
  ASSERT_TRUE(s) << s.message();
  ASSERT_EQ(typed.size(), 1u);
  ASSERT_EQ(typed[0].size(), 3u);  // id, name, score
  EXPECT_EQ(typed[0][2].real, 1.5);
  // A write through a read is still refused by a kept statement's check.
  std::vector<std::vector<std::optional<std::string>>> rows;
  s = store_->plugin_query("plugin-x", "DELETE FROM p_plugin_x_t WHERE name = $1", {"a"}, &rows);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << s.message();
  s = store_->plugin_query("plugin-x", "DELETE FROM p_plugin_x_t WHERE name = $1", {"a"}, &rows);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << s.message();
  EXPECT_EQ(count("p_plugin_x_t"), 1);
  // The kernel's own reads through query are kept too (under no plugin's
  // name, so never run for one).
  const int64_t kernel_before = sqlite->reader_prepares();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(count("audit"), 0);
  EXPECT_EQ(sqlite->reader_prepares() - kernel_before, 1);
  // More texts of the kernel's own than a cache keeps do not drop the
  // plugins' kept reads: the kernel's are kept apart.
  for (int i = 0; i < 300; ++i) EXPECT_EQ(count("audit WHERE id > " + std::to_string(i)), 0);
  const int64_t after_kernel = sqlite->reader_prepares();
  rows.clear();
  s = store_->plugin_query("plugin-x", sql, {"a"}, &rows);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(sqlite->reader_prepares(), after_kernel) << "the plugin's kept read was dropped";
  rows.clear();
  s = store_->plugin_query("plugin-x", "SELECT COUNT(*) FROM audit", {}, &rows);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
}

TEST_F(PluginStmtCacheTest, ManyDifferentStatementsAndWrongParameterCountsStayCorrect) {
  // More texts than the cache keeps: each still runs, and a kept statement
  // called with another number of parameters is refused as before.
  for (int i = 0; i < 600; ++i) {
    Status s = store_->plugin_execute(
        "plugin-x", "INSERT INTO p_plugin_x_t (name) VALUES ($1 || '" + std::to_string(i % 300) + "')", {"n"}, nullptr);
    ASSERT_TRUE(s) << i << ": " << s.message();
  }
  EXPECT_EQ(count("p_plugin_x_t"), 600);
  const std::string sql = "UPDATE p_plugin_x_t SET name = $1 WHERE name = $2";
  ASSERT_TRUE(store_->plugin_execute("plugin-x", sql, {"m", "n0"}, nullptr));
  Status s = store_->plugin_execute("plugin-x", sql, {"m", "n1", "extra"}, nullptr);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << s.message();
  s = store_->plugin_execute("plugin-x", sql, {"m"}, nullptr);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT) << s.message();
  int64_t changed = 0;
  s = store_->plugin_execute("plugin-x", sql, {"m", "n1"}, &changed);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(changed, 2);
}

// The overview's summary (Store::run_summary), polled by every console that
// shows it, reads with the same texts at every call, so each reader
// connection prepares them once instead of keeping a new pair per call.
TEST_F(PluginStmtCacheTest, TheOverviewsSummaryIsPreparedOncePerConnection) {
  auto* sqlite = dynamic_cast<internal::SqliteStore*>(store_.get());
  ASSERT_NE(sqlite, nullptr);
  ASSERT_TRUE(store_->run_summary(1000, 2000).is_ok());
  const int64_t before = sqlite->reader_prepares();
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(store_->run_summary(1000 + i, 2000 + i).is_ok());
  // A call may land on another reader connection than the first: at most
  // one more pair per connection the pool holds, never one per call.
  EXPECT_LE(sqlite->reader_prepares() - before, 4);
}

}  // namespace
}  // namespace opk::store
