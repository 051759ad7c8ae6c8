// Two kernels on one PostgreSQL store (the tests' throwaway server,
// tests/support/pg_util.h): this process's and a second opskernel process,
// each with admin-http and rate-limit-overrides, the address limit at 3 a
// minute. An override made through one kernel is enforced by the other's
// admin-http within the poll interval, and one ended through the other is
// no longer enforced by the first; the plugin's tables and statements run on
// PostgreSQL as on SQLite. The limited client speaks from 127.0.0.2.
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

// The status of GET /healthz on 127.0.0.1:`port` from local address
// 127.0.0.2; 0 when the kernel does not answer.
int rlo_pg_status_from_second_address(int port) {
  return test::get_from("127.0.0.2", port, "/healthz").status;
}

class OverridesTwoKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = db_.create();
    ASSERT_TRUE(why.empty()) << why;
    plugins_ = test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("rate-limit-overrides")});
  }
  void TearDown() override {
    if (kernel_) kernel_->stop();
    second_.stop();
  }

  test::Reply http(int port, const std::string& method, const std::string& target, const Json& body = nullptr) {
    return test::http_request(port, method, target, token_, body.is_null() ? "" : body.dump());
  }
  // Requests from 127.0.0.2 to kernel `port` until one is refused (at most
  // 20); true when one was.
  static bool limited(int port) {
    for (int i = 0; i < 20; ++i)
      if (rlo_pg_status_from_second_address(port) == 429) return true;
    return false;
  }

  test::PgDatabase db_;
  test::TempDir dir_, second_dir_;
  std::string plugins_, token_;
  std::unique_ptr<Kernel> kernel_;
  test::SecondKernel second_;
};

TEST_F(OverridesTwoKernels, AnOverrideThroughOneKernelIsEnforcedByTheOther) {
  const int port_a = test::free_port(), port_b = test::free_port();
  config::Config cfg = test::pg_kernel_config(dir_, plugins_, port_a, db_.name());
  cfg.plugins["admin-http"] = {{"rate_per_address", "3"}};
  cfg.plugins["rate-limit-overrides"] = {{"poll_interval", "200ms"}};
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  ASSERT_TRUE(kernel_->identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
  ASSERT_TRUE(kernel_->identity()->issue_token("pat", 0, "test", &token_));
  // The test's own address first, so it can go on talking to both kernels.
  auto r = http(port_a, "POST", "/api/v1/rate-limit-overrides",
                {{"address", "127.0.0.1"}, {"limit", "unlimited"}, {"reason", "test driver"}, {"duration", "1h"}});
  ASSERT_EQ(r.status, 201) << r.body;

  // The second kernel, another process on the same database.
  ASSERT_NO_FATAL_FAILURE(second_.start(second_dir_, port_b, plugins_, db_.name(),
                                        "[plugin.admin-http]\nrate_per_address = 3\n"
                                        "[plugin.rate-limit-overrides]\npoll_interval = 200ms\n"));
  ASSERT_TRUE(test::within(
      [&] {
        try {
          return http(port_b, "GET", "/api/v1/rate-limit-overrides").status == 200;
        } catch (const std::exception&) {
          return false;  // not listening yet
        }
      },
      30000))
      << second_.log();

  // 127.0.0.2 is limited on the second kernel.
  ASSERT_TRUE(limited(port_b));
  // Lifted through the first: the second enforces it within its poll.
  r = http(port_a, "POST", "/api/v1/rate-limit-overrides",
           {{"address", "127.0.0.2/32"}, {"limit", "unlimited"}, {"reason", "backfill"}, {"duration", "2h"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = Json::parse(r.body)["override"]["id"];
  EXPECT_TRUE(test::within([&] { return rlo_pg_status_from_second_address(port_b) == 200; }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rlo_pg_status_from_second_address(port_b), 200);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rlo_pg_status_from_second_address(port_a), 200);
  // Ended through the second: the first limits 127.0.0.2 again.
  r = http(port_b, "DELETE", "/api/v1/rate-limit-overrides/" + id + "?reason=done");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(test::within([&] { return limited(port_a); }));
  r = http(port_a, "GET", "/api/v1/rate-limit-overrides/" + id);
  EXPECT_EQ(Json::parse(r.body)["override"]["state"], "removed") << r.body;
  EXPECT_EQ(Json::parse(r.body)["override"]["removed_by"], "pat") << r.body;
}

}  // namespace
}  // namespace opk
