// Two kernels on one PostgreSQL store (the tests' throwaway server,
// tests/support/pg_util.h): this process's and a second opskernel process,
// each with admin-http, feature-flags and the flag_consumer fixture. A flag
// changed through either kernel's API is seen at once by that kernel's
// plugin and within the poll interval by the other's; a flag created
// through one reaches the other's OFREP. The plugin's tables and SQL run on
// PostgreSQL as on SQLite.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "plugins/admin-http/http_client.h"
#include "support/admin_feature.h"
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
    second_.stop();
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
  test::PgDatabase db_;
  test::TempDir dir_, second_dir_;
  std::string plugins_, token_;
  std::unique_ptr<Kernel> kernel_;
  test::SecondKernel second_;
};

TEST_F(FlagsTwoKernels, AChangeThroughOneKernelIsSeenByTheOther) {
  // The first kernel, in this process.
  const int port_a = test::free_port(), port_b = test::free_port();
  config::Config cfg = test::pg_kernel_config(dir_, plugins_, port_a, db_.name());
  cfg.plugins["flag-consumer"] = {{"declare", kPgDeclared}};
  cfg.plugins["feature-flags"] = {{"poll_interval", "200ms"}};
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  ASSERT_TRUE(kernel_->identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
  ASSERT_TRUE(kernel_->identity()->issue_token("pat", 0, "test", &token_));
  ASSERT_EQ(seen(port_a)["enabled"], false);

  // The second, another process on the same database (its own data folder).
  ASSERT_NO_FATAL_FAILURE(
      second_.start(second_dir_, port_b, plugins_, db_.name(),
                    std::string("[plugin.feature-flags]\npoll_interval = 200ms\n[plugin.flag-consumer]\ndeclare = ") +
                        kPgDeclared + "\n"));
  ASSERT_TRUE(test::within([&] { return !seen(port_b).is_null(); }, 30000)) << second_.log();
  EXPECT_EQ(seen(port_b)["enabled"], false);

  // Through the first: seen there at once, by the second within its poll.
  auto r = http(port_a, "PATCH", "/api/v1/feature-flags/consumer.fast-path", {{"value", true}, {"reason", "roll out"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(seen(port_a)["enabled"], true);
  EXPECT_TRUE(test::within([&] { return seen(port_b)["enabled"] == true; })) << seen(port_b).dump();
  // And back through the second.
  r = http(port_b, "POST", "/api/v1/feature-flags/consumer.fast-path/reset", {{"reason", "roll back"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(seen(port_b)["enabled"], false);
  EXPECT_TRUE(test::within([&] { return seen(port_a)["enabled"] == false; })) << seen(port_a).dump();
  // An operator's flag created through the second reaches the first's OFREP.
  r = http(port_b, "POST", "/api/v1/feature-flags",
           {{"id", "ops.mode"}, {"type", "string"}, {"default", "blue"}, {"description", "d"}, {"reason", "new"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_TRUE(test::within([&] {
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
