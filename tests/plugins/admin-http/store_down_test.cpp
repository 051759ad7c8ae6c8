// A store that cannot be read, mid-flight, over real HTTP: the admin API
// answers 503 naming the store, never 404 or an empty list as if nothing
// were stored, and answers again once the store can be read.
#include <gtest/gtest.h>

#include "http_client.h"
#include "kernel/store/failing_vfs.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

TEST(AdminHttpStoreDown, ReadsThatFailAnswer503NotNotFound) {
  store::FailingVfs vfs;  // before the kernel opens its store
  test::TempDir dir;
  auto cfg = test::quiet_config(dir, test::plugins_dir(dir, {test::bundled("admin-http"), test::bundled("hello")}));
  const int port = test::free_port();
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  const std::string token = k.bootstrap_token();
  ASSERT_FALSE(token.empty());
  auto run = test::run_and_wait(k, test::manual("hello", R"({"steps":0})"));
  const std::string path = "/api/v1/runs/" + std::to_string(run.row.id);
  ASSERT_EQ(test::http_request(port, "GET", path, token).status, 200);
  ASSERT_EQ(test::http_request(port, "GET", "/api/v1/runs", token).status, 200);

  vfs.fail_reads(true);
  // A write from the writer's cache leaves what the readers hold stale, so
  // they go to the file, which cannot be read now.
  store::AuditRow row;
  row.time_ms = 1;
  row.actor = "test";
  row.action = "test";
  row.outcome = "ok";
  ASSERT_TRUE(k.store()->audit({row}));
  std::this_thread::sleep_for(std::chrono::milliseconds(identity::kTokenRecheckMs + 50));  // past the token cache
  for (const char* target : {path.c_str(), "/api/v1/runs", "/api/v1/audit", "/api/v1/runs/999999"}) {
    const auto r = test::http_request(port, "GET", target, token);
    EXPECT_EQ(r.status, 503) << target << ": " << r.body;
    EXPECT_NE(r.body.find("store"), std::string::npos) << target << ": " << r.body;
  }
  vfs.fail_reads(false);
  EXPECT_EQ(test::http_request(port, "GET", path, token).status, 200);
  EXPECT_EQ(test::http_request(port, "GET", "/api/v1/runs/999999", token).status, 404);
}

}  // namespace
}  // namespace opk
