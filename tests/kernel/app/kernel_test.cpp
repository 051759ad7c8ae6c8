// The kernel with real plugin libraries: refusals that need more than one
// library, dependency order, lifecycle order, and the run guards.
#include "app/kernel.h"

#include <gtest/gtest.h>

#include "support/kernel_util.h"

namespace opk {
namespace {

using test::bundled;
using test::fixture;
using test::TempDir;

const PluginRecord* find(const Kernel& k, const std::string& file) {
  for (const auto& p : k.plugins())
    if (p->path.filename() == file) return p.get();
  return nullptr;
}

TEST(Kernel, BrokenPluginsAreRefusedWithReasonsAndTheRestRuns) {
  TempDir d;
  auto dir = test::plugins_dir(
      d, {bundled("hello"), bundled("echo"), fixture("wrong_major_field"), fixture("no_entry"), fixture("init_fails"),
          fixture("init_throws"), fixture("cancel_no_hook"), fixture("requires_missing")});
  test::write_file(std::filesystem::path(dir) / "zz_not_elf.so", "garbage");
  Kernel k(test::quiet_config(d, dir));
  ASSERT_TRUE(k.start());
  EXPECT_EQ(find(k, "hello.so")->state, PluginState::active);
  EXPECT_EQ(find(k, "echo.so")->state, PluginState::active);
  struct Want {
    const char* file;
    const char* reason;
  } wants[] = {
      {"wrong_major_field.so", "load: built for plugin ABI 2."},
      {"no_entry.so", "load: no entry symbol"},
      {"init_fails.so", "init: init failed with status 11: database unreachable at init"},
      {"init_throws.so", "init: init failed with status 1: exception: boom in constructor"},
      {"cancel_no_hook.so", "load: job type 'c-job': declares the cancel capability"},
      {"requires_missing.so", "resolve: requires extension 'com.example.missing/1'"},
      {"zz_not_elf.so", "load: cannot load"},
  };
  for (const auto& w : wants) {
    const PluginRecord* p = find(k, w.file);
    ASSERT_NE(p, nullptr) << w.file;
    EXPECT_EQ(p->state, PluginState::refused) << w.file;
    EXPECT_EQ(p->reason.rfind(w.reason, 0), 0u) << w.file << ": " << p->reason;
  }
  // The survivors still work.
  auto v = test::run_and_wait(k, test::manual("hello", R"({"steps":1,"step_ms":0})"));
  EXPECT_EQ(v.row.outcome, store::kNormal);
}

TEST(Kernel, HostilePluginFilesAreRefusedAndTheKernelStarts) {
  TempDir d;
  auto dir = std::filesystem::path(
      test::plugins_dir(d, {bundled("hello"), fixture("schema_bad_type"), fixture("schema_bad_minimum")}));
  // A copy still in progress, a symlink loop, a dangling link, a folder.
  std::filesystem::copy_file(bundled("echo"), dir / "half.so");
  std::filesystem::resize_file(dir / "half.so", std::filesystem::file_size(dir / "half.so") / 2);
  std::filesystem::create_symlink("loop_b.so", dir / "loop_a.so");
  std::filesystem::create_symlink("loop_a.so", dir / "loop_b.so");
  std::filesystem::create_symlink("nowhere.so", dir / "dangling.so");
  std::filesystem::create_directory(dir / "folder.so");
  Kernel k(test::quiet_config(d, dir.string()));
  ASSERT_TRUE(k.start());
  EXPECT_EQ(find(k, "hello.so")->state, PluginState::active);
  struct Want {
    const char* file;
    const char* reason;
  } wants[] = {
      {"schema_bad_type.so", "params_schema_json: not a usable JSON Schema"},
      {"schema_bad_minimum.so", "params_schema_json: not a usable JSON Schema"},
      {"half.so", "truncated or still being copied"},
      {"loop_a.so", "symbolic links"},
      {"loop_b.so", "symbolic links"},
      {"dangling.so", "No such file"},
      {"folder.so", "not a regular file"},
  };
  for (const auto& w : wants) {
    const PluginRecord* p = find(k, w.file);
    ASSERT_NE(p, nullptr) << w.file;
    EXPECT_EQ(p->state, PluginState::refused) << w.file;
    EXPECT_EQ(p->reason.rfind("load: ", 0), 0u) << w.file << ": " << p->reason;
    EXPECT_NE(p->reason.find(w.reason), std::string::npos) << w.file << ": " << p->reason;
  }
  auto v = test::run_and_wait(k, test::manual("hello", R"({"steps":1,"step_ms":0})"));
  EXPECT_EQ(v.row.outcome, store::kNormal);
}

TEST(Kernel, DuplicatePluginIdRefusesTheSecond) {
  TempDir d;
  auto dir = test::plugins_dir(d, {fixture("dup_a"), fixture("dup_b")});
  Kernel k(test::quiet_config(d, dir));
  ASSERT_TRUE(k.start());
  EXPECT_EQ(find(k, "dup_a.so")->state, PluginState::active);
  const auto* b = find(k, "dup_b.so");
  EXPECT_EQ(b->state, PluginState::refused);
  EXPECT_NE(b->reason.find("duplicate plugin id 'dup'"), std::string::npos) << b->reason;
  EXPECT_NE(k.registry().job_type("dup-a-job"), nullptr);
  EXPECT_EQ(k.registry().job_type("dup-b-job"), nullptr);
}

TEST(Kernel, DuplicateJobTypeRefusesTheWholeSecondLibrary) {
  TempDir d;
  auto dir = test::plugins_dir(d, {fixture("jobclash_a"), fixture("jobclash_b")});
  Kernel k(test::quiet_config(d, dir));
  ASSERT_TRUE(k.start());
  const auto* b = find(k, "jobclash_b.so");
  EXPECT_EQ(b->state, PluginState::refused);
  EXPECT_NE(b->reason.find("job type 'shared-job' is already provided by plugin 'jobclash-a'"), std::string::npos)
      << b->reason;
  EXPECT_EQ(k.registry().job_type("shared-job")->plugin_id, "jobclash-a");
}

std::string trace_of(const std::initializer_list<std::string>& files, const std::vector<std::string>& ids) {
  TempDir d;
  auto dir = test::plugins_dir(d, files);
  auto cfg = test::quiet_config(d, dir);
  const auto trace = (d.path() / "trace.txt").string();
  for (const auto& id : ids) cfg.plugins[id]["trace_file"] = trace;
  Kernel k(cfg);
  EXPECT_TRUE(k.start());
  k.stop();
  return test::read_file(trace);
}

TEST(Kernel, LifecycleFollowsDependenciesAndStopsInReverse) {
  // a_consumer sorts first but requires what b_provider offers.
  EXPECT_EQ(
      trace_of({fixture("a_consumer"), fixture("b_provider"), fixture("c_plain")}, {"consumer", "provider", "plain"}),
      "provider init\n"
      "consumer init\n"
      "consumer got hi from provider\n"
      "plain init\n"
      "provider start\n"
      "consumer start\n"
      "plain start\n"
      "plain stop\n"
      "consumer stop\n"
      "provider stop\n"
      "plain deinit\n"
      "consumer deinit\n"
      "provider deinit\n");
}

TEST(Kernel, AnOptionalProviderPresentIsInitialisedFirstAndStoppedLast) {
  EXPECT_EQ(trace_of({fixture("a_optional"), fixture("b_provider")}, {"optional", "provider"}),
            "provider init\noptional init\noptional got hi from provider\nprovider start\noptional start\n"
            "optional stop\nprovider stop\noptional deinit\nprovider deinit\n");
}

TEST(Kernel, AnOptionalProviderAbsentIsNoObstacle) {
  EXPECT_EQ(trace_of({fixture("a_optional")}, {"optional"}),
            "optional init\noptional no greeter\noptional start\noptional stop\noptional deinit\n");
}

TEST(Kernel, AnUndeclaredExtensionIsNotHandedOut) {
  // The provider is active, but the plugin did not list the extension.
  const std::string t = trace_of({fixture("a_undeclared"), fixture("b_provider")}, {"undeclared", "provider"});
  EXPECT_NE(t.find("undeclared no greeter\n"), std::string::npos) << t;
}

TEST(Kernel, StartsOnce) {
  TempDir d;
  Kernel k(test::quiet_config(d, test::plugins_dir(d, {})));
  ASSERT_TRUE(k.start());
  k.stop();
  EXPECT_EQ(k.start().code(), OPK_ERR_CONFLICT);
}

TEST(Kernel, AProviderThatFailsToStartTakesItsDependentsWithIt) {
  TempDir d;
  auto dir = test::plugins_dir(d, {fixture("start_fails")});
  // Re-use the consumer: it requires test.greeter/1, which start_fails provides.
  std::filesystem::create_symlink(fixture("a_consumer"), std::filesystem::path(dir) / "z_consumer.so");
  Kernel k(test::quiet_config(d, dir));
  ASSERT_TRUE(k.start());
  const auto* p = find(k, "start_fails.so");
  EXPECT_EQ(p->state, PluginState::refused);
  EXPECT_NE(p->reason.find("start: start failed with status 11: port already in use"), std::string::npos) << p->reason;
  const auto* c = find(k, "z_consumer.so");
  EXPECT_EQ(c->state, PluginState::refused);
  EXPECT_NE(c->reason.find("is gone"), std::string::npos) << c->reason;
}

TEST(Kernel, DisabledPluginsAreListedButNotLoaded) {
  TempDir d;
  auto dir = test::plugins_dir(d, {bundled("hello"), bundled("echo")});
  auto cfg = test::quiet_config(d, dir);
  cfg.disabled_plugins = {"echo"};
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  EXPECT_EQ(find(k, "echo.so")->state, PluginState::disabled);
  EXPECT_TRUE(k.routes().list().empty());
}

TEST(Kernel, MissingPluginsFolderFailsTheStartNamingTheKey) {
  TempDir d;
  Kernel k(test::quiet_config(d, (d.path() / "nope").string()));
  Status s = k.start();
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("kernel.plugins_dir"), std::string::npos) << s.message();
}

TEST(Kernel, StopCancelsRunsInFlightAndWaitsForThem) {
  TempDir d;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {bundled("hello")}));
  const auto db = cfg.store_path = (d.path() / "data" / "opk.db").string();
  int64_t id = 0;
  {
    Kernel k(cfg);
    ASSERT_TRUE(k.start());
    ASSERT_TRUE(k.engine()->run_now(test::manual("hello", R"({"steps":1000,"step_ms":20})"), &id));
    ASSERT_TRUE(test::wait_running(k, id));
    k.stop();
  }
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open_sqlite(db, true, &st));
  store::RunRow r;
  ASSERT_TRUE(st->get_run(id, &r));
  EXPECT_EQ(r.phase, store::kCompleted);
  EXPECT_TRUE(r.terminated);
  EXPECT_EQ(r.outcome, store::kError);
}

}  // namespace
}  // namespace opk
