// The echo admin feature, reached through the kernel's route table.
#include <gtest/gtest.h>

#include "app/kernel.h"
#include "support/test_util.h"

namespace opk {
namespace {

class Echo : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = test::quiet_config(d_, test::plugins_dir(d_, {test::bundled("echo")}));
    k_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(k_->start());
  }
  test::TempDir d_;
  std::unique_ptr<Kernel> k_;
};

TEST_F(Echo, RegistersItsRoutesUnderItsFeature) {
  auto routes = k_->routes().list();
  ASSERT_EQ(routes.size(), 2u);
  for (const auto& r : routes) {
    EXPECT_EQ(r.plugin_id, "echo");
    EXPECT_EQ(r.feature_id, "echo");
  }
  EXPECT_NE(k_->registry().admin_features().count("echo"), 0u);
}

TEST_F(Echo, EchoesTheWordQueryAndUser) {
  // A principal the kernel issued, as admin-http gets one for a token.
  const opk_principal* who = k_->identity_service()->principals().issue("alice", "PlatformAdministrator", "platform");
  host::HttpRequest rq;
  rq.method = "GET";
  rq.path = "/api/v1/echo/hi\"there";
  rq.query = {{"a", "1"}};
  rq.principal = who;
  auto r = k_->routes().dispatch(rq);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.body, R"({"word":"hi\"there","query":{"a":"1"},"user":"alice"})");
}

TEST_F(Echo, EchoesABody) {
  host::HttpRequest rq;
  rq.method = "POST";
  rq.path = "/api/v1/echo";
  rq.headers = {{"content-type", "application/json"}};
  rq.body = R"({"x":[1,2,3]})";
  rq.principal = k_->identity_service()->principals().issue("alice", "TenantUser", "tenant:acme");
  auto r = k_->routes().dispatch(rq);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, rq.body);
  EXPECT_EQ(r.header("content-type"), "application/json");
}

TEST_F(Echo, RoutesGoAwayWhenTheKernelStops) {
  k_->stop();
  EXPECT_TRUE(k_->routes().list().empty());
}

}  // namespace
}  // namespace opk
