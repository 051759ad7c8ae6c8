// The opskernel executable as an operator uses it: exit codes, messages,
// and a clean stop on SIGTERM with a broken plugin in the folder.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <thread>

#include "support/test_util.h"

namespace opk {
namespace {

using test::TempDir;

struct Result {
  int code;
  std::string out;  // stdout and stderr together
};

Result sh(const std::string& args, const std::string& env = "") {
  std::string cmd = (env.empty() ? "" : "env " + env + " ") + std::string(OPK_KERNEL_BINARY) + " " + args + " 2>&1";
  Result r{-1, {}};
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(Cli, VersionAndHelp) {
  auto r = sh("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("plugin ABI 1."), std::string::npos) << r.out;
  r = sh("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("plugins check PATH"), std::string::npos) << r.out;
  r = sh("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown command 'frobnicate'"), std::string::npos) << r.out;
}

TEST(Cli, PluginsCheckPrintsTheManifest) {
  auto r = sh("plugins check " + test::bundled("hello"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"manual_run\": true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ok: hello 1.0.0 would be loaded"), std::string::npos) << r.out;
}

TEST(Cli, PluginsCheckSaysWhyARefusedPluginIsRefused) {
  auto r = sh("plugins check " + test::fixture("cancel_no_hook"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("refused:"), std::string::npos);
  EXPECT_NE(r.out.find("no cancel hook"), std::string::npos) << r.out;
  r = sh("plugins check " + test::fixture("init_fails"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("database unreachable at init"), std::string::npos) << r.out;
}

TEST(Cli, ConfigErrorsExitTwoNamingTheKey) {
  TempDir d;
  test::write_file(d.path() / "bad.conf", "[log]\nlevel = chatty\n");
  auto r = sh("--config " + (d.path() / "bad.conf").string() + " config check");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("log.level: 'chatty' is not one of"), std::string::npos) << r.out;
  r = sh("--listen nonsense config check");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("kernel.listen"), std::string::npos) << r.out;
}

TEST(Cli, ConfigCheckShowsTheLogSettingsRunWouldUse) {
  // It showed log.level = warn and an empty log.file whatever the file said.
  TempDir d;
  test::write_file(d.path() / "k.conf", "[log]\nlevel = debug\nfile = kernel.log\n");
  auto r = sh("--config " + (d.path() / "k.conf").string() + " config check");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("log.level = debug"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kernel.log"), std::string::npos) << r.out;
  r = sh("config check", "OPSKERNEL_LOG_LEVEL=error");
  EXPECT_NE(r.out.find("log.level = error"), std::string::npos) << r.out;
}

TEST(Cli, CronNextPrintsUtcInstantsOrTheError) {
  // Spring forward in Stockholm: 02:30 does not exist on 2026-03-29, so the
  // job runs once at the end of the gap (03:00 CEST = 01:00 UTC).
  auto r = sh("cron next '30 2 * * *' --tz Europe/Stockholm --after 2026-03-28T12:00:00Z -n 2");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "2026-03-29T01:00:00Z\n2026-03-30T00:30:00Z\n");
  r = sh("cron next '0 0 * * MON-XYZ'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("day-of-week (field 5)"), std::string::npos) << r.out;
  r = sh("cron next @daily --tz Nowhere/City");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown time zone 'Nowhere/City'"), std::string::npos) << r.out;
  r = sh("cron next @daily --after yesterday");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--after"), std::string::npos) << r.out;
}

TEST(Cli, PluginsListShowsActiveAndRefused) {
  TempDir d;
  auto dir = test::plugins_dir(d, {test::bundled("hello"), test::fixture("no_entry")});
  auto r = sh("--plugins-dir " + dir + " --data-dir " + d.str() + "/data plugins list");
  EXPECT_EQ(r.code, 1) << r.out;  // something was refused
  EXPECT_NE(r.out.find("active\thello\t1.0.0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused\t-\t-\t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no entry symbol"), std::string::npos) << r.out;
}

TEST(Cli, PluginCommandsSurviveATruncatedLibraryAndASymlinkLoop) {
  TempDir d;
  auto dir = std::filesystem::path(test::plugins_dir(d, {test::bundled("hello")}));
  std::filesystem::copy_file(test::bundled("echo"), dir / "half.so");
  std::filesystem::resize_file(dir / "half.so", std::filesystem::file_size(dir / "half.so") / 2);
  std::filesystem::create_symlink("loop_b.so", dir / "loop_a.so");
  std::filesystem::create_symlink("loop_a.so", dir / "loop_b.so");
  auto r = sh("--plugins-dir " + dir.string() + " --data-dir " + d.str() + "/data plugins list");
  EXPECT_EQ(r.code, 1) << r.out;  // refused, not crashed (a bus error was exit -1 here)
  EXPECT_NE(r.out.find("active\thello"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("truncated or still being copied"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("symbolic links"), std::string::npos) << r.out;
  r = sh("plugins check " + (dir / "half.so").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("truncated or still being copied"), std::string::npos) << r.out;
}

TEST(Cli, APluginThatCrashesInInitIsTheLastOneNamedInTheLog) {
  TempDir d;
  auto dir = test::plugins_dir(d, {test::bundled("hello"), test::fixture("init_crashes")});
  auto r = sh("--plugins-dir " + dir + " --data-dir " + d.str() + "/data run");
  EXPECT_NE(r.code, 0) << r.out;
  const size_t at = r.out.find("plugin crasher 0.1.0: initialising from ");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("init_crashes.so", at), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("initialised", at), std::string::npos) << "crasher is the last plugin named: " << r.out;
}

TEST(Cli, JobsInvokePrintsNoAdminTokenAndShowsTheLogAsItIsWritten) {
  TempDir d;
  auto dir = test::plugins_dir(d, {test::bundled("hello")});
  const std::string common = "--plugins-dir " + dir + " --data-dir " + d.str() + "/data ";
  auto r = sh(common + "jobs invoke hello --params '{\"steps\":2,\"step_ms\":1}'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("opk_"), std::string::npos) << "no token in a job's output: " << r.out;
  EXPECT_EQ(r.out.find("first start"), std::string::npos) << r.out;
  // Each line once, before the run's summary line.
  const size_t hello = r.out.find("hello, world!");
  ASSERT_NE(hello, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("hello, world!", hello + 1), std::string::npos) << r.out;
  EXPECT_LT(hello, r.out.find("run 1 hello COMPLETED")) << r.out;
  // The administrator is left to the first `run`.
  r = sh("users list --data-dir " + d.str() + "/data");
  EXPECT_EQ(r.out.find("admin\tPlatformAdministrator"), std::string::npos) << r.out;
}

TEST(Cli, CtrlCOnJobsInvokeCancelsTheRunCooperatively) {
  // It exited at once, skipped the cancel hook and left the run RUNNING.
  TempDir d;
  auto dir = test::plugins_dir(d, {test::bundled("hello")});
  const auto out = d.path() / "invoke.out";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = freopen(out.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), fileno(stderr));
    execl(OPK_KERNEL_BINARY, "opskernel", "--plugins-dir", dir.c_str(), "--data-dir", (d.str() + "/data").c_str(),
          "jobs", "invoke", "hello", "--params", R"({"steps":1000,"step_ms":20})", (char*)nullptr);
    _exit(127);
  }
  for (int i = 0; i < 400 && test::read_file(out).find("INFO") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_NE(test::read_file(out).find("INFO"), std::string::npos) << "the log is printed while the run goes on";
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  const std::string text = test::read_file(out);
  EXPECT_TRUE(WIFEXITED(st)) << text;
  EXPECT_NE(text.find("interrupted on the command line: cancel requested"), std::string::npos) << text;
  EXPECT_NE(text.find("COMPLETED ERROR terminated"), std::string::npos) << text;
  auto r = sh("runs show 1 --data-dir " + d.str() + "/data");
  EXPECT_NE(r.out.find("COMPLETED ERROR terminated"), std::string::npos) << r.out;
}

TEST(Cli, JobsInvokeRunsAJobAndRefusesBadParameters) {
  TempDir d;
  auto dir = test::plugins_dir(d, {test::bundled("hello")});
  const std::string base = "--plugins-dir " + dir + " --data-dir " + d.str() + "/data ";
  auto r = sh(base + "jobs invoke hello --params '{\"steps\":2,\"step_ms\":1}' --tenant acme");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("hello, acme!"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("COMPLETED NORMAL"), std::string::npos) << r.out;
  r = sh(base + "jobs invoke hello --params '[1]'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("parameters: must be a JSON object"), std::string::npos) << r.out;
}

TEST(Cli, UsersAndTenantsAreManagedFromTheCommandLine) {
  TempDir d;
  const std::string data = " --data-dir " + d.str();
  EXPECT_EQ(sh("tenants add distributor:d1 --parent platform --name 'D One'" + data).code, 0);
  EXPECT_EQ(sh("tenants add partner:p1 --parent distributor:d1" + data).code, 0);
  auto r = sh("tenants add tenant:t1 --parent distributor:d1" + data);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("a tenant belongs under a partner"), std::string::npos) << r.out;
  test::write_file(d.str() + "/h.json", R"({"nodes": [{"id": "tenant:acme", "parent": "partner:p1"}]})");
  r = sh("tenants import " + d.str() + "/h.json" + data);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("1 node(s) added"), std::string::npos) << r.out;
  r = sh("tenants list" + data);
  EXPECT_NE(r.out.find("tenant:acme\tpartner:p1"), std::string::npos) << r.out;

  r = sh("users add ann --role TenantAdministrator --scope tenant:acme" + data);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("opk_"), std::string::npos) << r.out;  // the token, shown once
  r = sh("users add bob --role TenantAdministrator --scope partner:p1" + data);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("scoped to a tenant node"), std::string::npos) << r.out;
  r = sh("users list" + data);
  EXPECT_NE(r.out.find("ann\tTenantAdministrator\ttenant:acme\tactive\t1"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("opk_"), std::string::npos) << "tokens are never listed: " << r.out;
  r = sh("users revoke ann" + data);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("1 token(s) revoked"), std::string::npos) << r.out;
  r = sh("users list" + data);
  EXPECT_NE(r.out.find("ann\tTenantAdministrator\ttenant:acme\tdisabled\t0"), std::string::npos) << r.out;
  EXPECT_EQ(sh("users revoke nobody" + data).code, 1);
}

TEST(Cli, RunStopsCleanlyOnSigtermWithABrokenPluginPresent) {
  TempDir d;
  auto dir = test::plugins_dir(d, {test::bundled("hello"), test::bundled("echo"), test::fixture("wrong_major_field")});
  const auto log = d.path() / "out.log";
  const auto conf = d.path() / "k.conf";
  test::write_file(conf, "[log]\nfile = kernel.log\n");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = freopen(log.c_str(), "w", stderr);
    (void)f;
    execl(OPK_KERNEL_BINARY, "opskernel", "--config", conf.c_str(), "--plugins-dir", dir.c_str(), "--data-dir",
          (d.str() + "/data").c_str(), "run", (char*)nullptr);
    _exit(127);
  }
  // Wait until ready.
  for (int i = 0; i < 200 && test::read_file(log).find("kernel ready") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_NE(test::read_file(log).find("kernel ready"), std::string::npos) << test::read_file(log);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  const std::string out = test::read_file(log);
  EXPECT_NE(out.find("2 plugin(s) active, 1 refused"), std::string::npos) << out;
  EXPECT_NE(out.find("built for plugin ABI 2."), std::string::npos) << out;
  EXPECT_NE(out.find("signal 15 received"), std::string::npos) << out;
  EXPECT_NE(out.find("kernel stopped"), std::string::npos) << out;
  // The rotating file (relative to the data folder) has the same lines, with
  // each plugin under its own logger name.
  const std::string file = test::read_file(d.path() / "data" / "kernel.log");
  EXPECT_NE(file.find("[plugin.hello] hello plugin ready"), std::string::npos) << file;
  EXPECT_NE(file.find("[kernel] kernel stopped"), std::string::npos) << file;
}

}  // namespace
}  // namespace opk
