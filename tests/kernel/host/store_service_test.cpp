// opk.store/1 as a plugin uses it: its migrations recorded under its id,
// parameters bound, rows back as JSON, errors as statuses.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>
#include <opskernel/testing.hpp>

#include "host/migrations_service.h"
#include "host/principals.h"
#include "host/store_service.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

TEST(StoreService, APluginKeepsItsOwnTables) {
  test::TempDir d;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {test::fixture("store_user")}));
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  ASSERT_EQ(k.plugins()[0]->state, PluginState::active) << k.plugins()[0]->reason;
  bool recorded = false;
  for (const auto& m : k.store()->applied_migrations().value()) recorded |= m.owner == "store-user" && m.version == 2;
  EXPECT_TRUE(recorded);
  auto a = test::run_and_wait(k, [] {
    auto r = test::manual("store-job");
    r.reason = "first";
    return r;
  }());
  auto b = test::run_and_wait(k, [] {
    auto r = test::manual("store-job");
    r.reason = "second";
    return r;
  }());
  EXPECT_EQ(a.row.summary, R"([["1","first"]])");
  EXPECT_EQ(b.row.summary, R"([["2","second"]])");
  ASSERT_EQ(b.logs.size(), 2u);
  EXPECT_EQ(b.logs[0].message, "duplicate insert: status " + std::to_string(OPK_ERR_CONFLICT));
  EXPECT_EQ(b.logs[1].message, "bad sql: status " + std::to_string(OPK_ERR_INVALID_ARGUMENT));
}

TEST(StoreService, NotOfferedWithoutAStore) {
  // plugins list runs without a store: the plugin's start is not called, and
  // the extension is absent rather than broken.
  test::TempDir d;
  Kernel k(test::quiet_config(d, test::plugins_dir(d, {test::fixture("store_user")})));
  ASSERT_TRUE(k.start(/*start_plugins=*/false));
  EXPECT_EQ(k.plugins()[0]->state, PluginState::active);
  EXPECT_EQ(k.store(), nullptr);
}

// The fence on both stores: SQLite's authorizer, PostgreSQL's roles (a
// fresh database per test, tests/support/pg_util.h).
class StoreFence : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Backends, StoreFence, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(StoreFence, APluginReachesOnlyItsOwnTables) {
  const bool pg = GetParam() == "postgresql";
  test::TempDir d;
  test::PgDatabase db;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {test::fixture("fence_probe"), test::fixture("store_user"),
                                                         test::fixture("fence_bad_migration")}));
  if (pg) {
    const std::string e = db.create();
    ASSERT_TRUE(e.empty()) << e;
    cfg.store_backend = "postgresql";
    cfg.pg_conninfo = db.conninfo();
  }
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  for (const auto& p : k.plugins()) {
    if (p->id == "fence-bad-migration") {
      // A migration that creates a table outside its names refuses the plugin, naming it.
      EXPECT_EQ(p->state, PluginState::refused);
      EXPECT_NE(p->reason.find("table 'runs_copy' is not one of plugin fence-bad-migration's own "
                               "(named p_fence_bad_migration_...)"),
                std::string::npos)
          << p->reason;
    } else {
      EXPECT_EQ(p->state, PluginState::active) << p->id << ": " << p->reason;
    }
  }
  store::RunFilter all;
  all.limit = 1000;
  const size_t runs_before = k.store()->list_runs(all).value().size();
  auto v = test::run_and_wait(k, test::manual("fence-job"));
  const std::string deny = std::to_string(OPK_ERR_PERMISSION);
  const std::string& s = v.row.summary;
  for (const char* what :
       {"read-runs", "write-runs", "other-plugin", "schema", "pragma", "attach", "trigger", "view"}) {
    // PostgreSQL's catalog (names, not rows) is readable by every role;
    // sqlite_master is not there to read.
    if (pg && std::string(what) == "schema") continue;
    EXPECT_NE(s.find(std::string(what) + "=" + deny + " "), std::string::npos) << what << " in " << s;
  }
  // Several statements in one transaction, rows from RETURNING, values typed.
  EXPECT_NE(s.find(R"(tx=0 tx-results=[{"changed":1,"rows":[[1,"a",2.5]]},{"changed":1,"rows":[]}])"),
            std::string::npos)
      << s;
  // A failing statement undoes the whole transaction ('c' is not kept).
  EXPECT_NE(s.find("tx-dup=" + std::to_string(OPK_ERR_CONFLICT)), std::string::npos) << s;
  EXPECT_NE(s.find(R"(typed=0 rows=[[1,"a",2.5,null],[2,"b",null,null]])"), std::string::npos) << s;
  // The refusals name what was refused, for the plugin's log.
  bool named = false;
  for (const auto& line : v.logs)
    named |= line.message.find("read-runs: store query: SQL: table 'runs' is not one of plugin fence-probe's own") !=
             std::string::npos;
  EXPECT_TRUE(named);
  // Nothing of the kernel's was touched.
  auto after = k.store()->list_runs(all).value();
  EXPECT_EQ(after.size(), runs_before + 1);
  for (const auto& r : after) EXPECT_NE(r.job_type, "x");
}

// The test host's store on PostgreSQL (opk::testing, Host::use_store) tells
// a plugin the server's errors as the kernel's store does, word for word
// and with the same status: a unique key (CONFLICT, alone and inside a
// transaction), bad SQL and a value of the wrong type (INVALID_ARGUMENT).
TEST(StoreFenceParity, TheTestHostTellsAPluginTheServersErrorsAsTheKernel) {
  test::TempDir d;
  test::PgDatabase db;
  const std::string e = db.create();
  ASSERT_TRUE(e.empty()) << e;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {test::fixture("fence_probe")}));
  cfg.store_backend = "postgresql";
  cfg.pg_conninfo = db.conninfo();
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  const auto in_kernel = test::run_and_wait(k, test::manual("fence-job"));
  opk::testing::Host h;
  ASSERT_TRUE(h.use_store("postgresql", test::pg_server()));
  ASSERT_TRUE(h.load(test::fixture("fence_probe")));
  const auto in_host = h.run("fence-job");
  ASSERT_EQ(in_host.status, OPK_OK) << in_host.error;

  auto kernel_line = [&](const std::string& key) {
    for (const auto& l : in_kernel.logs)
      if (l.message.rfind(key, 0) == 0) return l.message;
    return std::string("(no line " + key + ")");
  };
  auto host_line = [&](const std::string& key) {
    for (const auto& l : in_host.log)
      if (l.text.rfind(key, 0) == 0) return l.text;
    return std::string("(no line " + key + ")");
  };
  const std::pair<const char*, const char*> kErrors[] = {{"dup", "(SQLSTATE 23505)"},
                                                         {"tx-dup", "(SQLSTATE 23505)"},
                                                         {"syntax", "(SQLSTATE 42601)"},
                                                         {"cast", "(SQLSTATE 22P02)"}};
  for (const auto& [what, state] : kErrors) {
    const std::string key = std::string(what) + ": ";
    EXPECT_NE(kernel_line(key).find(state), std::string::npos) << kernel_line(key);
    EXPECT_EQ(host_line(key), kernel_line(key));
  }
  for (const std::string& code :
       {"dup=" + std::to_string(OPK_ERR_CONFLICT), "tx-dup=" + std::to_string(OPK_ERR_CONFLICT),
        "syntax=" + std::to_string(OPK_ERR_INVALID_ARGUMENT), "cast=" + std::to_string(OPK_ERR_INVALID_ARGUMENT)}) {
    EXPECT_NE(in_kernel.row.summary.find(code + " "), std::string::npos) << code << " in " << in_kernel.row.summary;
    EXPECT_NE(in_host.summary.find(code + " "), std::string::npos) << code << " in " << in_host.summary;
  }
}

// opk.migrations/1's service answers only a principal this kernel issued
// whose role holds migrations.read, and then with the store's applied
// migrations, their recorded attempts and the kernel's own declaration.
TEST(MigrationsService, AnswersOnlyAnIssuedPrincipalWhoseRoleHoldsMigrationsRead) {
  test::TempDir d;
  std::unique_ptr<store::Store> s;
  ASSERT_TRUE(store::open_sqlite((d.path() / "opk.db").string(), true, &s));
  ASSERT_TRUE(s->migrate("plugin-x", {{1, "one", "CREATE TABLE p_plugin_x_t (id BIGINT)"}}));
  host::StoreService declared(*s);
  host::Principals principals, elsewhere;
  host::MigrationsService m(*s, declared, principals, [](const std::string& role, const std::string& permission) {
    return role == "Reader" && permission == "migrations.read";
  });
  EXPECT_EQ(m.check_actor(nullptr).code(), OPK_ERR_PERMISSION);
  EXPECT_EQ(m.check_actor(elsewhere.issue("rita", "Reader", "platform")).code(), OPK_ERR_PERMISSION)
      << "a principal another registry issued";
  const Status refused = m.check_actor(principals.issue("walt", "Writer", "platform"));
  EXPECT_EQ(refused.code(), OPK_ERR_PERMISSION);
  EXPECT_NE(refused.message().find("role 'Writer' does not hold migrations.read"), std::string::npos)
      << refused.message();
  EXPECT_TRUE(m.check_actor(principals.issue("rita", "Reader", "platform")));
  std::string text;
  ASSERT_TRUE(m.status_json(&text));
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["dialect"], "sqlite");
  bool applied = false, attempted = false;
  for (const auto& a : j["applied"]) applied |= a["owner"] == "plugin-x" && a["version"] == 1;
  for (const auto& a : j["attempts"])
    attempted |= a["owner"] == "plugin-x" && a["outcome"] == "applied" && a["duration_us"].get<int64_t>() >= 0;
  EXPECT_TRUE(applied) << text;
  EXPECT_TRUE(attempted) << text;
  ASSERT_FALSE(j["declared"].empty()) << text;
  EXPECT_EQ(j["declared"][0]["owner"], "kernel");
  EXPECT_EQ(j["declared"][0]["migrations"].size(), store::sqlite_kernel_migrations().size());
}

}  // namespace
}  // namespace opk
