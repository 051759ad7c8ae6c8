// Two kernels on one PostgreSQL store (the tests' throwaway server,
// tests/support/pg_util.h): this process's and a second opskernel process,
// each with admin-http, feature-flags and the flag_consumer fixture. A flag
// changed through either kernel's API is seen at once by that kernel's
// plugin and within the poll interval by the other's; a flag created
// through one reaches the other's OFREP. The plugin's tables and SQL run on
// PostgreSQL as on SQLite.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"
#include "support/servers.h"

namespace opk {
namespace {

using Json = nlohmann::json;

constexpr const char* kPgDeclared =
    R"([{"id": "consumer.fast-path", "default": false, "description": "Take the fast path"}])";

class FlagsTwoKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = db_.create();
    ASSERT_TRUE(why.empty()) << why;
    plugins_ = test::plugins_dir(
        dir_, {test::bundled("admin-http"), test::bundled("feature-flags"), test::fixture("flag_consumer")});
  }
  void TearDown() override {
    if (kernel_) kernel_->stop();
    if (second_ > 0) {
      kill(second_, SIGTERM);
      int st = 0;
      waitpid(second_, &st, 0);
    }
  }

  test::Reply http(int port, const std::string& method, const std::string& target, const Json& body = nullptr) {
    return test::http_request(port, method, target, token_, body.is_null() ? "" : body.dump());
  }
  // What kernel `port`'s consumer plugin sees of consumer.fast-path; null
  // while it does not answer.
  Json seen(int port) {
    try {
      auto r = http(port, "GET", "/api/v1/flag-consumer/consumer.fast-path");
      return r.status == 200 ? Json::parse(r.body, nullptr, false) : Json();
    } catch (const std::exception&) {
      return Json();  // not listening yet
    }
  }
  template <typename F>
  static bool within(F done, int ms = 15000) {
    for (int i = 0; i < ms / 20; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }

  test::PgDatabase db_;
  test::TempDir dir_, second_dir_;
  std::string plugins_, token_;
  std::unique_ptr<Kernel> kernel_;
  pid_t second_ = -1;
};

TEST_F(FlagsTwoKernels, AChangeThroughOneKernelIsSeenByTheOther) {
  // The first kernel, in this process.
  const int port_a = test::free_port(), port_b = test::free_port();
  config::Config cfg = test::quiet_config(dir_, plugins_);
  cfg.listen = "127.0.0.1:" + std::to_string(port_a);
  cfg.log.console = false;
  cfg.node_name = "kernel-a";
  cfg.store_backend = "postgresql";
  cfg.pg_conninfo = test::pg_server();
  cfg.pg_database = db_.name();
  cfg.plugins["flag-consumer"] = {{"declare", kPgDeclared}};
  cfg.plugins["feature-flags"] = {{"poll_interval", "200ms"}};
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  ASSERT_TRUE(kernel_->identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
  ASSERT_TRUE(kernel_->identity()->issue_token("pat", 0, "test", &token_));
  ASSERT_EQ(seen(port_a)["enabled"], false);

  // The second, another process on the same database (its own data folder).
  const auto conf = second_dir_.path() / "second.conf";
  test::write_file(conf, "[kernel]\nlisten = 127.0.0.1:" + std::to_string(port_b) +
                             "\nnode_name = kernel-b\n[log]\nlevel = warn\n[store]\nbackend = postgresql\nconninfo = " +
                             test::pg_server() + "\ndatabase = " + db_.name() +
                             "\n[plugin.feature-flags]\npoll_interval = 200ms\n[plugin.flag-consumer]\ndeclare = " +
                             kPgDeclared + "\n");
  const std::string data = (second_dir_.path() / "data").string(), log = (second_dir_.path() / "second.log").string();
  second_ = fork();
  ASSERT_GE(second_, 0);
  if (second_ == 0) {
    FILE* f = freopen(log.c_str(), "w", stderr);
    f = freopen(log.c_str(), "a", stdout);
    (void)f;
    execl(OPK_KERNEL_BINARY, "opskernel", "--config", conf.c_str(), "--plugins-dir", plugins_.c_str(), "--data-dir",
          data.c_str(), "run", (char*)nullptr);
    _exit(127);
  }
  ASSERT_TRUE(within([&] { return !seen(port_b).is_null(); }, 30000)) << test::read_file(log);
  EXPECT_EQ(seen(port_b)["enabled"], false);

  // Through the first: seen there at once, by the second within its poll.
  auto r = http(port_a, "PATCH", "/api/v1/feature-flags/consumer.fast-path", {{"value", true}, {"reason", "roll out"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(seen(port_a)["enabled"], true);
  EXPECT_TRUE(within([&] { return seen(port_b)["enabled"] == true; })) << seen(port_b).dump();
  // And back through the second.
  r = http(port_b, "POST", "/api/v1/feature-flags/consumer.fast-path/reset", {{"reason", "roll back"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(seen(port_b)["enabled"], false);
  EXPECT_TRUE(within([&] { return seen(port_a)["enabled"] == false; })) << seen(port_a).dump();
  // An operator's flag created through the second reaches the first's OFREP.
  r = http(port_b, "POST", "/api/v1/feature-flags",
           {{"id", "ops.mode"}, {"type", "string"}, {"default", "blue"}, {"description", "d"}, {"reason", "new"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_TRUE(within([&] {
    auto o = http(port_a, "POST", "/ofrep/v1/evaluate/flags/ops.mode", Json::object());
    return o.status == 200 && Json::parse(o.body, nullptr, false)["value"] == "blue";
  }));
  // The admin API reads the store: a change is there at once on both.
  r = http(port_a, "PATCH", "/api/v1/feature-flags/ops.mode", {{"value", "green"}, {"reason", "a"}});
  ASSERT_EQ(r.status, 200) << r.body;
  r = http(port_b, "GET", "/api/v1/feature-flags/ops.mode");
  EXPECT_EQ(Json::parse(r.body)["flag"]["value"], "green") << r.body;
}

}  // namespace
}  // namespace opk
