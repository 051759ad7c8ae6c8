// What only the PostgreSQL store has: the fence by roles (a plugin's
// statement runs as the plugin's own role, and the ways out of it are shut),
// kernels migrating one database at once, a server that cannot be reached,
// a kernel whose configuration names the PostgreSQL store, and runs that
// commit out of id order staying open. Each test has a fresh database
// (tests/support/pg_util.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "store/open.h"
#include "store/pg_internal.h"
#include "store/store.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk::store {
namespace {

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string e = db_.create();
    ASSERT_TRUE(e.empty()) << e;
    Status s = open_postgresql(db_.conninfo(), {}, &store_);
    ASSERT_TRUE(s) << s.message();
  }
  // A connection of the test's own to the database.
  internal::PgConn connect() const {
    internal::PgConn c(PQconnectdb(db_.conninfo().c_str()));
    EXPECT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
    return c;
  }
  // Runs `q` on `c`: its first value ("" if none), or "error: ...".
  static std::string sql(PGconn* c, const std::string& q) {
    internal::PgResult r(PQexec(c, q.c_str()));
    const bool ok = PQresultStatus(r.get()) == PGRES_COMMAND_OK || PQresultStatus(r.get()) == PGRES_TUPLES_OK;
    return ok ? (PQntuples(r.get()) > 0 ? std::string(PQgetvalue(r.get(), 0, 0)) : std::string())
              : "error: " + std::string(PQresultErrorMessage(r.get()));
  }
  // True once a session of the database waits for a lock (generous bound).
  static bool a_session_waits(PGconn* watch) {
    for (int i = 0; i < 1000; ++i) {
      if (sql(watch,
              "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
              "current_database()") != "0")
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  test::PgDatabase db_;
  std::unique_ptr<Store> store_;
};

TEST_F(PgStoreTest, ADeleteOfAJobAndACreationOfItsRunsWaitForEachOther) {
  // READ COMMITTED: a creation of runs holds their job FOR KEY SHARE to its
  // commit, and a delete locks the job FOR UPDATE before its conditional
  // DELETE, so whichever comes second waits and then sees the first's work.
  ScheduledJob j;
  j.id = "nightly";
  j.job_type = "hello";
  ASSERT_TRUE(store_->create_scheduled_job(j));
  internal::PgConn raw = connect(), watch = connect();
  // A creation under way (as create_runs_in writes it), not committed yet:
  // the delete waits for it, then finds its run and refuses.
  EXPECT_EQ(sql(raw.get(), "BEGIN"), "");
  EXPECT_EQ(sql(raw.get(), "SELECT id FROM scheduled_jobs WHERE id = 'nightly' FOR KEY SHARE"), "nightly");
  const std::string id = sql(raw.get(), "SELECT nextval(pg_get_serial_sequence('runs', 'id'))");
  EXPECT_EQ(
      sql(raw.get(), "INSERT INTO runs (id, job_type, scheduled_job_id, trigger, params_json, created_ms) VALUES (" +
                         id + ", 'hello', 'nightly', 'manual', '{}', 1)"),
      "");
  EXPECT_EQ(sql(raw.get(), "INSERT INTO run_state (id, phase) VALUES (" + id + ", 'PENDING')"), "");
  std::atomic<bool> done{false};
  Status deleted;
  std::thread deleter([&] {
    deleted = store_->delete_scheduled_job("nightly");
    done = true;
  });
  EXPECT_TRUE(a_session_waits(watch.get())) << "the delete did not wait for the runs being created";
  EXPECT_FALSE(done.load());
  EXPECT_EQ(sql(raw.get(), "COMMIT"), "");
  deleter.join();
  EXPECT_EQ(deleted.code(), OPK_ERR_CONFLICT) << deleted.message();
  EXPECT_NE(deleted.message().find("run " + id + " pending or running"), std::string::npos) << deleted.message();
  ScheduledJob kept;
  ASSERT_TRUE(store_->get_scheduled_job("nightly", &kept));

  // A delete under way, not committed yet: a creation waits for it, then
  // finds the job gone and stores nothing.
  ASSERT_TRUE(store_->complete_runs({{.run_id = std::stoll(id), .finished_ms = 5}}));
  EXPECT_EQ(sql(raw.get(), "BEGIN"), "");
  EXPECT_EQ(sql(raw.get(), "SELECT id FROM scheduled_jobs WHERE id = 'nightly' FOR UPDATE"), "nightly");
  EXPECT_EQ(sql(raw.get(), "DELETE FROM scheduled_jobs WHERE id = 'nightly'"), "");
  done = false;
  std::vector<RunRow> runs(1);
  runs[0].job_type = "hello";
  runs[0].scheduled_job_id = "nightly";
  Status created;
  std::thread creator([&] {
    created = store_->create_runs(&runs);
    done = true;
  });
  EXPECT_TRUE(a_session_waits(watch.get())) << "the creation did not wait for the delete";
  EXPECT_FALSE(done.load());
  EXPECT_EQ(sql(raw.get(), "COMMIT"), "");
  creator.join();
  EXPECT_EQ(created.code(), OPK_ERR_NOT_FOUND) << created.message();
  EXPECT_EQ(runs[0].id, 0);
  EXPECT_EQ(sql(watch.get(), "SELECT COUNT(*) FROM runs WHERE scheduled_job_id = 'nightly'"), "1");
}

TEST_F(PgStoreTest, OpenRunsTheMarkPassedAreListedAgainAtTheKernelsStart) {
  // A database hit before the mark waited for runs being written: two open
  // runs below the mark and not lingering (a pending one, and one left
  // running by this kernel, which then died), so no reader of open_runs
  // finds them.
  std::vector<RunRow> runs(2);
  for (auto& r : runs) r.job_type = "hello";
  ASSERT_TRUE(store_->create_runs(&runs));
  ASSERT_TRUE(store_->mark_running({runs[1].id}, 1000, "k1", nullptr));
  ASSERT_TRUE(store_->execute("UPDATE store_marks SET value = $1 WHERE name = 'open_from'",
                              {std::to_string(runs[1].id + 1)}, nullptr));
  EXPECT_TRUE(store_->runs_in_phase(kPending, 10).value().empty());
  EXPECT_TRUE(store_->runs_in_phase(kRunning, 10).value().empty());
  // The kernel lists them again as it starts: the pending one runs, the
  // running one is recovered; nothing is left to repair.
  test::TempDir dir;
  config::Config cfg = test::quiet_config(dir, test::plugins_dir(dir, {test::bundled("hello")}));
  std::filesystem::create_directories(cfg.data_dir);
  cfg.store_backend = "postgresql";
  cfg.pg_conninfo = db_.conninfo();
  cfg.node_name = "k1";
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  RunRow r;
  for (int i = 0; i < 1500 && (!store_->get_run(runs[0].id, &r) || r.phase != kCompleted); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(r.phase, kCompleted);
  EXPECT_EQ(r.outcome, kNormal) << r.summary;
  ASSERT_TRUE(store_->get_run(runs[1].id, &r));
  EXPECT_EQ(r.phase, kCompleted);
  EXPECT_EQ(r.end_cause, kEndCrash);
  int64_t repaired = -1;
  ASSERT_TRUE(store_->repair_open_runs(1000000, &repaired));
  EXPECT_EQ(repaired, 0);
  // A run lost again later (here by hand) is found by the next look, which
  // reads only the ids not looked at before.
  std::vector<RunRow> later(1);
  later[0].job_type = "hello";
  later[0].hold = true;
  ASSERT_TRUE(store_->create_runs(&later));
  ASSERT_TRUE(store_->execute("UPDATE store_marks SET value = $1 WHERE name = 'open_from'",
                              {std::to_string(later[0].id + 1)}, nullptr));
  ASSERT_TRUE(store_->repair_open_runs(1000000, &repaired));
  EXPECT_EQ(repaired, 1);
  auto pending = store_->runs_in_phase(kPending, 10).value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, later[0].id);
}

TEST_F(PgStoreTest, ALookForLostOpenRunsDoesNotWaitForAnotherKernels) {
  // Another kernel's look holds the row of how far the looks got: this one
  // leaves the look to it and answers at once (its housekeeping fires the
  // schedules too), and looks again once that one is done.
  std::vector<RunRow> runs(1);
  runs[0].job_type = "hello";
  ASSERT_TRUE(store_->create_runs(&runs));
  ASSERT_TRUE(store_->execute("UPDATE store_marks SET value = $1 WHERE name = 'open_from'",
                              {std::to_string(runs[0].id + 1)}, nullptr));
  int64_t repaired = -1;
  ASSERT_TRUE(store_->execute(
      "INSERT INTO store_marks (name, value) VALUES ('open_checked', 0) ON CONFLICT (name) DO NOTHING", {}, nullptr));
  internal::PgConn other = connect();
  EXPECT_EQ(sql(other.get(), "BEGIN"), "");
  EXPECT_EQ(sql(other.get(), "SELECT value FROM store_marks WHERE name = 'open_checked' FOR UPDATE"), "0");
  std::atomic<bool> done{false};
  Status looked;
  std::thread look([&] {
    looked = store_->repair_open_runs(1000000, &repaired);
    done = true;
  });
  for (int i = 0; i < 1000 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(done.load()) << "the look waited for another kernel's";
  EXPECT_EQ(sql(other.get(), "COMMIT"), "");
  look.join();
  EXPECT_TRUE(looked) << looked.message();
  EXPECT_EQ(repaired, 0);
  ASSERT_TRUE(store_->repair_open_runs(1000000, &repaired));
  EXPECT_EQ(repaired, 1);
}

TEST_F(PgStoreTest, APluginsStatementRunsAsItsOwnRoleAndCannotLeaveIt) {
  ASSERT_TRUE(store_->migrate("plugin-x", {{1, "t", "CREATE TABLE p_plugin_x_t (k TEXT PRIMARY KEY, v TEXT)"}}));
  ASSERT_TRUE(store_->migrate("plugin-y", {{1, "t", "CREATE TABLE p_plugin_y_t (k TEXT PRIMARY KEY)"}}));
  ASSERT_TRUE(store_->plugin_execute("plugin-x", "INSERT INTO p_plugin_x_t VALUES ($1, $2)", {"a", "1"}, nullptr));
  std::vector<std::vector<std::optional<std::string>>> rows;
  // Its tables belong to its role, named from the database and the plugin.
  const std::string role = internal::pg_plugin_role(db_.name(), "plugin-x");
  EXPECT_EQ(role.rfind(internal::pg_plugin_role_prefix(db_.name()), 0), 0u) << role;
  ASSERT_TRUE(
      store_->query("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'p_plugin_x_t'", {}, &rows));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], role);
  rows.clear();
  ASSERT_TRUE(store_->plugin_query("plugin-x", "SELECT current_user", {}, &rows));
  EXPECT_EQ(rows[0][0], role);
  // The kernel's tables and another plugin's: PostgreSQL refuses, named.
  Status s = store_->plugin_query("plugin-x", "SELECT * FROM run_rows", {}, &rows);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  EXPECT_NE(s.message().find("'run_rows'"), std::string::npos) << s.message();
  s = store_->plugin_query("plugin-y", "SELECT * FROM p_plugin_x_t", {}, &rows);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  EXPECT_NE(s.message().find("table 'p_plugin_x_t' is not one of plugin plugin-y's own"), std::string::npos)
      << s.message();
  // The ways back to the kernel's role are shut.
  for (const char* sql :
       {"RESET ROLE", "SET ROLE NONE", "SET SESSION AUTHORIZATION DEFAULT", "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$",
        "CREATE FUNCTION p_plugin_x_f() RETURNS int "
        "LANGUAGE sql AS 'SELECT 1'"}) {
    s = store_->plugin_execute("plugin-x", sql, {}, nullptr);
    EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << sql << ": " << s.message();
  }
  s = store_->plugin_query(
      "plugin-x", "SELECT set_config('role', 'none', true), query_to_xml('SELECT * FROM runs', true, false, '')", {},
      &rows);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  EXPECT_NE(s.message().find("set_config"), std::string::npos) << s.message();
  s = store_->plugin_query("plugin-x", "SELECT query_to_xml('SELECT * FROM runs', true, false, '')", {}, &rows);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  // Renaming its table out of its prefix, or granting it away, is refused
  // and undone.
  s = store_->plugin_execute("plugin-x", "ALTER TABLE p_plugin_x_t RENAME TO runs_copy", {}, nullptr);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  EXPECT_NE(s.message().find("runs_copy"), std::string::npos) << s.message();
  s = store_->plugin_execute("plugin-x", "GRANT SELECT ON p_plugin_x_t TO PUBLIC", {}, nullptr);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION) << s.message();
  rows.clear();
  ASSERT_TRUE(store_->plugin_query("plugin-x", "SELECT v FROM p_plugin_x_t WHERE k = $1", {"a"}, &rows));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "1");
  // After all that, the kernel's own statements run as the kernel.
  rows.clear();
  ASSERT_TRUE(store_->query("SELECT COUNT(*) FROM schema_migrations WHERE owner = 'kernel'", {}, &rows));
  EXPECT_EQ(rows[0][0], std::to_string(postgresql_kernel_migrations().size()));
}

TEST_F(PgStoreTest, TwoDatabasesOnOneServerDoNotShareRoles) {
  test::PgDatabase other;
  ASSERT_EQ(other.create(), "");
  EXPECT_NE(internal::pg_plugin_role(db_.name(), "plugin-x"), internal::pg_plugin_role(other.name(), "plugin-x"));
  // A long id still fits PostgreSQL's 63 bytes and stays distinct.
  const std::string a = internal::pg_plugin_role(db_.name(), std::string(80, 'a') + "1");
  const std::string b = internal::pg_plugin_role(db_.name(), std::string(80, 'a') + "2");
  EXPECT_LE(a.size(), 63u);
  EXPECT_NE(a, b);
}

TEST_F(PgStoreTest, KernelsMigratingOneDatabaseAtOnceApplyEachVersionOnce) {
  test::PgDatabase fresh;
  ASSERT_EQ(fresh.create(), "");
  constexpr int kKernels = 4;
  std::vector<std::unique_ptr<Store>> stores(kKernels);
  std::vector<Status> opened(kKernels), migrated(kKernels);
  std::vector<std::thread> threads;
  const std::vector<Migration> plugin = {{1, "t", "CREATE TABLE p_shared_t (k TEXT PRIMARY KEY)"},
                                         {2, "seed", "INSERT INTO p_shared_t VALUES ('only once')"}};
  for (int i = 0; i < kKernels; ++i)
    threads.emplace_back([&, i] {
      opened[i] = open_postgresql(fresh.conninfo(), {}, &stores[i]);
      if (opened[i]) migrated[i] = stores[i]->migrate("shared", plugin);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kKernels; ++i) {
    ASSERT_TRUE(opened[i]) << opened[i].message();
    EXPECT_TRUE(migrated[i]) << migrated[i].message();
  }
  auto applied = stores[0]->applied_migrations();
  ASSERT_TRUE(applied) << applied.status().message();
  EXPECT_EQ(applied.value().size(), postgresql_kernel_migrations().size() + plugin.size());
  std::vector<TypedRow> rows;
  ASSERT_TRUE(stores[kKernels - 1]->plugin_query_typed("shared", "SELECT COUNT(*) FROM p_shared_t", {}, &rows));
  EXPECT_EQ(rows[0][0].integer, 1);
}

TEST_F(PgStoreTest, AServerThatCannotBeReachedIsAClearError) {
  // Nothing listens on port 1 of this host: as a stopped server.
  std::unique_ptr<Store> other;
  Status s = open_postgresql("host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=5", {}, &other);
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_NE(s.message().find("cannot connect"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("127.0.0.1"), std::string::npos) << s.message();
  EXPECT_EQ(other, nullptr);
  // TLS is libpq's: sslmode passes through, and a server without TLS (the
  // test server) is refused when TLS is required, saying so.
  s = open_postgresql(db_.conninfo() + " sslmode=require", {}, &other);
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_NE(s.message().find("SSL"), std::string::npos) << s.message();
  ASSERT_TRUE(open_postgresql(db_.conninfo() + " sslmode=prefer", {}, &other));
  other.reset();
  // A server that goes away under an open store: each call fails, naming
  // the cause, and nothing crashes.
  ASSERT_EQ(db_.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db_.name() + "'"),
            "");
  ASSERT_EQ(db_.admin("ALTER DATABASE " + db_.name() + " ALLOW_CONNECTIONS false"), "");
  ASSERT_EQ(db_.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db_.name() + "'"),
            "");
  std::vector<std::vector<std::optional<std::string>>> rows;
  for (int i = 0; i < 3; ++i) {
    s = store_->query("SELECT 1", {}, &rows);
    EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE) << s.message();
    EXPECT_NE(s.message().find("store (postgresql)"), std::string::npos) << s.message();
  }
  auto applied = store_->applied_migrations();
  EXPECT_FALSE(applied);
  // Back again: the pool reconnects.
  ASSERT_EQ(db_.admin("ALTER DATABASE " + db_.name() + " ALLOW_CONNECTIONS true"), "");
  ASSERT_TRUE(store_->query("SELECT 1", {}, &rows));
}

TEST_F(PgStoreTest, AKernelConfiguredForPostgresqlRunsOnIt) {
  test::TempDir dir;
  config::Config cfg = test::quiet_config(dir, test::plugins_dir(dir, {test::bundled("hello")}));
  std::filesystem::create_directories(cfg.data_dir);
  cfg.store_backend = "postgresql";
  cfg.pg_conninfo = test::pg_server();
  cfg.pg_database = db_.name();
  cfg.pg_pool_size = 4;
  // A password source that cannot be read is named, never the password.
  cfg.pg_password_env = "OPK_TEST_NO_SUCH_VARIABLE";
  std::unique_ptr<Store> st;
  Status s = open(cfg, &st);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("store.password_env: the environment variable OPK_TEST_NO_SUCH_VARIABLE is not set"),
            std::string::npos)
      << s.message();
  cfg.pg_password_env.clear();
  cfg.pg_password_file = "db-password";
  s = open(cfg, &st);
  EXPECT_NE(s.message().find("store.password_file: cannot read " + cfg.data_dir + "/db-password"), std::string::npos)
      << s.message();
  test::write_file(std::filesystem::path(cfg.data_dir) / "db-password", "it's\\secret\n");
  std::string conninfo;
  ASSERT_TRUE(postgresql_conninfo(cfg, &conninfo));
  EXPECT_NE(conninfo.find("dbname='" + db_.name() + "'"), std::string::npos) << conninfo;
  EXPECT_NE(conninfo.find("password='it\\'s\\\\secret'"), std::string::npos) << conninfo;
  for (const auto& [key, value] : cfg.public_settings()) EXPECT_EQ(value.find("secret"), std::string::npos) << key;
  // The test server trusts loopback, so the password is not checked; the
  // kernel opens the store, migrates it and runs a job on it.
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  ASSERT_NE(k.store(), nullptr);
  EXPECT_STREQ(k.store()->dialect(), "postgresql");
  auto v = test::run_and_wait(k, test::manual("hello"));
  EXPECT_EQ(v.row.phase, kCompleted);
  EXPECT_EQ(v.row.outcome, kNormal) << v.row.summary;
  EXPECT_FALSE(v.logs.empty());
  // What the kernel wrote is in the database the test reads.
  RunRow stored;
  ASSERT_TRUE(store_->get_run(v.row.id, &stored));
  EXPECT_EQ(stored.phase, kCompleted);
  EXPECT_FALSE(store_->audit_rows(10).value().empty());
}

TEST_F(PgStoreTest, AChangeMadeThroughAnotherStoreMovesTheGeneration) {
  // Two stores on one database, as two kernels have: what one changes in
  // runs or scheduled jobs moves the other's generation, so the other's
  // cached views (the engine's inventory) are read again.
  std::unique_ptr<Store> other;
  ASSERT_TRUE(open_postgresql(db_.conninfo(), {}, &other));
  // Reads and writes of other tables do not move it.
  uint64_t before = store_->generation();
  ASSERT_TRUE(other->add_node({"tenant:acme", "tenant", "Acme", "platform", 1}));
  ASSERT_TRUE(other->audit({AuditRow{0, 1, "u", "r", "a", "t", "", "{}", "ok", "test"}}));
  EXPECT_TRUE(other->list_scheduled_jobs());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(store_->generation(), before);
  // A scheduled job the other store defines, then a run it creates.
  auto moved = [&](uint64_t from) {
    for (int i = 0; i < 500; ++i) {
      if (store_->generation() != from) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ScheduledJob j;
  j.id = "nightly";
  j.job_type = "hello";
  ASSERT_TRUE(other->create_scheduled_job(j));
  EXPECT_TRUE(moved(before)) << "a scheduled job defined through another store";
  auto inventory = store_->inventory().value();
  ASSERT_EQ(inventory.size(), 1u);
  EXPECT_EQ(inventory[0].last_run_id, 0);
  before = store_->generation();
  std::vector<RunRow> runs(1);
  runs[0].job_type = "hello";
  runs[0].scheduled_job_id = "nightly";
  runs[0].slot_ms = 60000;
  runs[0].trigger = "schedule";
  ASSERT_TRUE(other->create_runs(&runs));
  EXPECT_TRUE(moved(before)) << "a run created through another store";
  EXPECT_EQ(store_->inventory().value().at(0).last_run_id, runs[0].id);
  // Its own changes move it at once.
  before = store_->generation();
  ASSERT_TRUE(store_->set_next_run("nightly", 120000));
  EXPECT_NE(store_->generation(), before);
  // The other store, closed right after a change, publishes it as it closes.
  before = store_->generation();
  ASSERT_TRUE(other->set_next_run("nightly", 180000));
  other.reset();
  EXPECT_NE(store_->generation(), before);
}

TEST_F(PgStoreTest, TheHotPathsStatementsArePreparedOncePerConnectionUnlessTurnedOff) {
  // One connection each, so what a store prepared is what its session
  // lists; one store prepares its hot statements, the other does not
  // (PgBouncer before 1.21 in transaction pooling).
  std::unique_ptr<Store> prepared, plain;
  PostgresOptions one;
  one.pool_size = 1;
  ASSERT_TRUE(open_postgresql(db_.conninfo(), one, &prepared));
  one.prepared_statements = false;
  ASSERT_TRUE(open_postgresql(db_.conninfo(), one, &plain));
  auto names = [](Store* s) {
    std::vector<std::vector<std::optional<std::string>>> rows;
    EXPECT_TRUE(s->query("SELECT name FROM pg_prepared_statements ORDER BY name", {}, &rows));
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.at(0).value_or(""));
    return out;
  };
  // Runs through their whole path, twice (the second time by name).
  auto work = [](Store* s, const std::string& tag) {
    std::vector<RunRow> runs(3);
    std::vector<AuditRow> audit(3);
    for (auto& r : runs) r.job_type = "t";
    for (auto& a : audit) a.actor = tag;
    EXPECT_TRUE(s->create_runs(&runs, &audit));
    std::vector<int64_t> ids;
    for (const auto& r : runs) ids.push_back(r.id);
    EXPECT_TRUE(s->mark_running(ids, 10, "n", nullptr));
    std::vector<Completion> done;
    for (const auto& r : runs) {
      Completion c{.run_id = r.id, .finished_ms = 20, .summary = tag};
      c.logs = {{r.id, 1, 11, 2, "", tag}};
      c.steps = {{r.id, 1, "s", 12, 13, kNormal, tag}};
      c.events = {{0, 14, "run.done", "platform", "/platform/", "run", "{}"}};
      done.push_back(std::move(c));
    }
    EXPECT_TRUE(s->complete_runs(done));
    return ids;
  };
  for (const char* round : {"first", "second"}) {
    SCOPED_TRACE(round);
    for (Store* s : {prepared.get(), plain.get()}) {
      const auto ids = work(s, round);
      RunRow r;
      ASSERT_TRUE(s->get_run(ids.back(), &r));
      EXPECT_EQ(r.phase, kCompleted);
      EXPECT_EQ(r.summary, round);
      EXPECT_EQ(s->steps(ids.back()).value().size(), 1u);
    }
  }
  const auto listed = names(prepared.get());
  for (const char* name : {"opk_insert_runs", "opk_insert_run_state", "opk_insert_audit", "opk_run_ids",
                           "opk_mark_running", "opk_complete_runs", "opk_insert_logs", "opk_insert_steps",
                           "opk_insert_events", "opk_event_lock", "opk_event_seq"})
    EXPECT_NE(std::find(listed.begin(), listed.end(), name), listed.end()) << name;
  EXPECT_TRUE(names(plain.get()).empty());
  // A connection the server ends takes its statements with it: the next one
  // prepares them again (the call that finds it ended fails, UNAVAILABLE).
  std::vector<std::vector<std::optional<std::string>>> rows;
  (void)prepared->query("SELECT pg_terminate_backend(pg_backend_pid())", {}, &rows);
  std::vector<RunRow> runs(1);
  runs[0].job_type = "t";
  Status s = prepared->create_runs(&runs);
  if (!s) {
    EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE) << s.message();
    ASSERT_TRUE(prepared->create_runs(&runs));
  }
  const auto ids = work(prepared.get(), "after");
  RunRow r;
  ASSERT_TRUE(prepared->get_run(ids.back(), &r));
  EXPECT_EQ(r.summary, "after");
  EXPECT_FALSE(names(prepared.get()).empty());
}

TEST_F(PgStoreTest, ARunCommittedAfterALaterOneStaysOpen) {
  // Run ids come from a sequence when a run is written and become visible
  // at its commit, so a run may commit after one with a larger id. The
  // open-runs mark never passes it: moving the mark waits for every
  // transaction still writing runs. Here a transaction takes an id and
  // writes its run as create_runs does, and does not commit yet; the store
  // creates a later run (which moves the mark: its first) and flags stale
  // runs (housekeeping moves it too) meanwhile.
  internal::PgConn raw(PQconnectdb(db_.conninfo().c_str()));
  ASSERT_EQ(PQstatus(raw.get()), CONNECTION_OK) << PQerrorMessage(raw.get());
  internal::PgConn watch(PQconnectdb(db_.conninfo().c_str()));
  ASSERT_EQ(PQstatus(watch.get()), CONNECTION_OK) << PQerrorMessage(watch.get());
  auto sql = [](PGconn* c, const std::string& q) {
    internal::PgResult r(PQexec(c, q.c_str()));
    const bool ok = PQresultStatus(r.get()) == PGRES_COMMAND_OK || PQresultStatus(r.get()) == PGRES_TUPLES_OK;
    return ok ? (PQntuples(r.get()) > 0 ? std::string(PQgetvalue(r.get(), 0, 0)) : std::string())
              : "error: " + std::string(PQresultErrorMessage(r.get()));
  };
  auto begin_a_run = [&] {
    EXPECT_EQ(sql(raw.get(), "BEGIN"), "");
    EXPECT_EQ(sql(raw.get(), "SELECT pg_advisory_xact_lock_shared(" + std::to_string(internal::kPgRunIdsLock) + ")"),
              "");
    const std::string id = sql(raw.get(), "SELECT nextval(pg_get_serial_sequence('runs', 'id'))");
    EXPECT_EQ(sql(raw.get(), "INSERT INTO runs (id, job_type, trigger, params_json, created_ms) VALUES (" + id +
                                 ", 'hello', 'manual', '{}', 1)"),
              "");
    EXPECT_EQ(sql(raw.get(), "INSERT INTO run_state (id, phase) VALUES (" + id + ", 'PENDING')"), "");
    return std::strtoll(id.c_str(), nullptr, 10);
  };
  // True once a session waits for the run ids' lock (generous bound).
  auto mark_waits = [&] {
    const std::string q = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = " +
                          std::to_string(internal::kPgRunIdsLock & 0xffffffff) + " AND database = (SELECT oid FROM " +
                          "pg_database WHERE datname = current_database())";
    for (int i = 0; i < 1000; ++i) {
      if (sql(watch.get(), q) != "0") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  auto open_runs = [&] {
    internal::PgResult r(PQexec(watch.get(), "SELECT id FROM open_runs ORDER BY id"));
    std::vector<int64_t> ids;
    for (int i = 0; i < PQntuples(r.get()); ++i) ids.push_back(std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10));
    return ids;
  };

  const int64_t first = begin_a_run();
  std::atomic<bool> created{false};
  std::vector<RunRow> later(1);
  later[0].job_type = "hello";
  later[0].trigger = "manual";
  Status made;
  std::thread creator([&] {
    made = store_->create_runs(&later);
    created = true;
  });
  EXPECT_TRUE(mark_waits()) << "the mark did not wait for the run being written";
  EXPECT_FALSE(created.load());
  EXPECT_EQ(sql(raw.get(), "COMMIT"), "");
  creator.join();
  ASSERT_TRUE(made) << made.message();
  EXPECT_GT(later[0].id, first);
  EXPECT_EQ(open_runs(), (std::vector<int64_t>{first, later[0].id}));

  // Housekeeping, with both runs finished and a run created after one still
  // being written (creating runs does not wait for it): the mark moves up
  // to the one being written, not past it.
  std::vector<Completion> done(2);
  done[0].run_id = first;
  done[1].run_id = later[0].id;
  for (auto& c : done) c.finished_ms = 1;
  ASSERT_TRUE(store_->complete_runs(done));
  const int64_t second = begin_a_run();
  std::vector<RunRow> third(1);
  third[0].job_type = "hello";
  third[0].trigger = "manual";
  ASSERT_TRUE(store_->create_runs(&third));
  EXPECT_GT(third[0].id, second);
  std::atomic<bool> flagged{false};
  Status swept;
  std::thread sweeper([&] {
    int64_t n = 0;
    swept = store_->flag_stale(0, &n);
    flagged = true;
  });
  EXPECT_TRUE(mark_waits()) << "housekeeping did not wait for the run being written";
  EXPECT_FALSE(flagged.load());
  EXPECT_EQ(sql(raw.get(), "COMMIT"), "");
  sweeper.join();
  ASSERT_TRUE(swept) << swept.message();
  EXPECT_EQ(open_runs(), (std::vector<int64_t>{second, third[0].id}));
}

}  // namespace
}  // namespace opk::store
