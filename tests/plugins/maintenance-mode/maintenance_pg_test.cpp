// Two kernels on one PostgreSQL store (the tests' throwaway server,
// tests/support/pg_util.h): this process's and a second opskernel process,
// each with admin-http and maintenance-mode. A window made through one
// kernel is enforced by the other's admin-http within the poll interval,
// and one ended through the other is no longer enforced by the first; the
// plugin's tables and statements run on PostgreSQL as on SQLite.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "plugins/admin-http/http_client.h"
#include "support/admin_feature.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"
#include "support/servers.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class MaintenanceTwoKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = db_.create();
    ASSERT_TRUE(why.empty()) << why;
    plugins_ = test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("maintenance-mode")});
  }
  void TearDown() override {
    if (kernel_) kernel_->stop();
    second_.stop();
  }

  test::Reply http(int port, const std::string& method, const std::string& target, const std::string& token,
                   const Json& body = nullptr) {
    return test::http_request(port, method, target, token, body.is_null() ? "" : body.dump());
  }
  // The status of the tenant's write (an empty custom alert: 422 when it
  // reaches its route, 503 when maintenance refuses it) on kernel `port`.
  int tenant_write(int port) {
    try {
      return http(port, "POST", "/api/v1/alerts", tenant_, Json::object()).status;
    } catch (const std::exception&) {
      return 0;
    }
  }
  test::PgDatabase db_;
  test::TempDir dir_, second_dir_;
  std::string plugins_, admin_, tenant_;
  std::unique_ptr<Kernel> kernel_;
  test::SecondKernel second_;
};

TEST_F(MaintenanceTwoKernels, AWindowThroughOneKernelIsEnforcedByTheOther) {
  const int port_a = test::free_port(), port_b = test::free_port();
  config::Config cfg = test::pg_kernel_config(dir_, plugins_, port_a, db_.name());
  cfg.plugins["maintenance-mode"] = {{"poll_interval", "200ms"}};
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  std::map<std::string, std::string> tokens;
  ASSERT_NO_FATAL_FAILURE(test::add_feature_users(*kernel_, &tokens));
  admin_ = tokens["pat"];
  tenant_ = tokens["tess"];

  // The second kernel, another process on the same database.
  ASSERT_NO_FATAL_FAILURE(
      second_.start(second_dir_, port_b, plugins_, db_.name(), "[plugin.maintenance-mode]\npoll_interval = 200ms\n"));
  ASSERT_TRUE(test::within([&] { return tenant_write(port_b) == 422; }, 30000)) << second_.log();
  EXPECT_EQ(tenant_write(port_a), 422);

  // Read-only through the first: the second refuses the tenant's writes
  // within its poll, with the banner.
  auto r = http(port_a, "POST", "/api/v1/maintenance", admin_,
                {{"tenant", "tenant:t"},
                 {"mode", "read-only"},
                 {"banner", "Ledger upgrade"},
                 {"reason", "CHG-1"},
                 {"duration", "2h"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string window = Json::parse(r.body)["window"]["id"];
  EXPECT_EQ(tenant_write(port_a), 503) << "at once on the kernel that made it";
  EXPECT_TRUE(test::within([&] { return tenant_write(port_b) == 503; }));
  r = http(port_b, "POST", "/api/v1/alerts", tenant_, Json::object());
  EXPECT_EQ(Json::parse(r.body)["maintenance"]["banner"], "Ledger upgrade") << r.body;
  EXPECT_EQ(http(port_b, "GET", "/api/v1/jobs", tenant_).status, 200) << "reads are served";

  // Ended through the second: the first serves the tenant's writes again.
  r = http(port_b, "DELETE", "/api/v1/maintenance/" + window + "?reason=done", admin_);
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(tenant_write(port_b), 422);
  EXPECT_TRUE(test::within([&] { return tenant_write(port_a) == 422; }));
  r = http(port_a, "GET", "/api/v1/maintenance/" + window, admin_);
  EXPECT_EQ(Json::parse(r.body)["window"]["state"], "ended") << r.body;
  EXPECT_EQ(Json::parse(r.body)["window"]["ended_by"], "pat") << r.body;
}

}  // namespace
}  // namespace opk
