// Migration status in a real kernel (admin-http, migration-status and the
// migrating fixture) on both stores, SQLite and PostgreSQL (a fresh
// database per test, tests/support/pg_util.h): the kernel's and a plugin's
// versions with each applied migration's time and duration; a newer build
// of the plugin whose migration fails, shown failed with the database's
// error and its later version pending while its table and rows stay as
// they were; the fixed build applied; bad input named; the role x action
// matrix of both routes; the OpenAPI document.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <map>
#include <string>

#include "plugins/admin-http/http_client.h"
#include "support/admin_feature.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class MigrationStatusKernel : public test::FeatureKernelTest<::testing::TestWithParam<std::string>> {
 protected:
  void SetUp() override {
    configure({test::bundled("migration-status"), test::fixture("migrating")});
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg_);
    ASSERT_TRUE(e.empty()) << e;
  }

  // Starts a kernel with the migrating plugin's `settings`; the users and
  // tokens are made the first time.
  void start(const std::map<std::string, std::string>& settings) {
    if (kernel_) kernel_->stop();
    kernel_.reset();
    cfg_.plugins["migrating"] = {};
    for (const auto& [k, v] : settings) cfg_.plugins["migrating"][k] = v;
    kernel_ = std::make_unique<Kernel>(cfg_);
    ASSERT_TRUE(kernel_->start());
    if (!tokens_.empty()) return;
    ASSERT_NO_FATAL_FAILURE(test::add_feature_users(*kernel_, &tokens_));
  }

  test::Reply http(const std::string& target, const std::string& role = "PlatformAdministrator") {
    return test::http_request(port_, "GET", target, tokens_[role]);
  }
  // The owner `id` of a list answer, or null.
  static Json owner_of(const Json& list, const std::string& id) {
    for (const auto& o : list["owners"])
      if (o["owner"] == id) return o;
    return nullptr;
  }
  // The migrating plugin's rows, "id:name" in id order, read by the kernel.
  std::string items() {
    std::vector<std::vector<std::optional<std::string>>> rows;
    Status s =
        kernel_->store()->plugin_query("migrating", "SELECT id, name FROM p_migrating_items ORDER BY id", {}, &rows);
    if (!s) return s.message();
    std::string out;
    for (const auto& r : rows) out += (out.empty() ? "" : ",") + r[0].value_or("") + ":" + r[1].value_or("");
    return out;
  }

  test::PgDatabase db_;
};

INSTANTIATE_TEST_SUITE_P(Stores, MigrationStatusKernel, ::testing::Values("sqlite", "postgresql"),
                         test::store_backend_name);

TEST_P(MigrationStatusKernel, AFailedMigrationIsShownWithItsErrorAndLeavesTheTablesAsTheyWere) {
  // An older build of the plugin: two migrations, both applied.
  ASSERT_NO_FATAL_FAILURE(start({{"versions", "2"}}));
  auto r = http("/api/v1/migrations");
  ASSERT_EQ(r.status, 200) << r.body;
  Json list = json(r);
  EXPECT_EQ(list["dialect"], GetParam());
  const Json kernel = owner_of(list, "kernel");
  ASSERT_FALSE(kernel.is_null()) << r.body;
  EXPECT_EQ(list["owners"][0]["owner"], "kernel");  // the kernel first
  EXPECT_EQ(kernel["state"], "current");
  EXPECT_EQ(kernel["kind"], "kernel");
  EXPECT_GE(kernel["version"].get<int>(), 10);
  EXPECT_EQ(kernel["latest"], kernel["version"]);
  EXPECT_EQ(kernel["applied_count"], kernel["version"]);
  EXPECT_TRUE(kernel["pending"].empty());
  Json mine = owner_of(list, "migrating");
  ASSERT_FALSE(mine.is_null()) << r.body;
  EXPECT_EQ(mine["state"], "current") << mine;
  EXPECT_EQ(mine["kind"], "plugin");
  EXPECT_EQ(mine["version"], 2);
  EXPECT_EQ(mine["latest"], 2);
  EXPECT_TRUE(mine["failure"].is_null());
  EXPECT_EQ(list["last_run"]["owner"], "migrating") << list["last_run"];
  EXPECT_EQ(list["last_run"]["version"], 2);
  EXPECT_EQ(list["last_run"]["outcome"], "applied");
  EXPECT_EQ(list["counts"]["failed"], 0);
  r = http("/api/v1/migrations/migrating");
  ASSERT_EQ(r.status, 200) << r.body;
  Json one = json(r)["migrations"];
  ASSERT_EQ(one["applied"].size(), 2u) << r.body;
  EXPECT_EQ(one["applied"][0]["name"], "items");
  EXPECT_GT(one["applied"][0]["applied_ms"].get<int64_t>(), 0);
  EXPECT_TRUE(one["applied"][0]["duration_ms"].is_number()) << r.body;
  EXPECT_EQ(one["applied"][1]["name"], "two rows");
  EXPECT_EQ(one["attempts"].size(), 2u);
  EXPECT_EQ(one["declared"].size(), 2u);
  EXPECT_EQ(items(), "1:one,2:two");

  // A newer build whose version 3 changes the table and rows, then fails:
  // the plugin is refused, the kernel and its other plugins run.
  ASSERT_NO_FATAL_FAILURE(start({{"versions", "4"}, {"fail", "true"}}));
  r = http("/api/v1/migrations");
  ASSERT_EQ(r.status, 200) << r.body;
  list = json(r);
  mine = owner_of(list, "migrating");
  ASSERT_FALSE(mine.is_null()) << r.body;
  EXPECT_EQ(mine["state"], "failed") << mine;
  EXPECT_EQ(mine["version"], 2);
  EXPECT_EQ(mine["latest"], 4);
  ASSERT_EQ(mine["pending"].size(), 2u) << mine;
  EXPECT_EQ(mine["pending"][0]["version"], 3);
  EXPECT_EQ(mine["pending"][0]["name"], "colour");
  EXPECT_EQ(mine["pending"][1]["version"], 4);
  EXPECT_EQ(mine["failure"]["version"], 3);
  EXPECT_EQ(mine["failure"]["outcome"], "failed");
  EXPECT_NE(mine["failure"]["error"].get<std::string>().find("p_migrating_missing"), std::string::npos) << mine;
  EXPECT_EQ(list["last_run"]["owner"], "migrating");
  EXPECT_EQ(list["last_run"]["outcome"], "failed");
  EXPECT_EQ(list["counts"]["failed"], 1);
  EXPECT_EQ(owner_of(list, "kernel")["state"], "current");
  r = http("/api/v1/migrations?state=failed");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json(r)["owners"].size(), 1u) << r.body;
  EXPECT_EQ(json(r)["owners"][0]["owner"], "migrating");
  // Its table and rows as they were: no new column, the names unchanged.
  EXPECT_EQ(items(), "1:one,2:two");
  std::vector<std::vector<std::optional<std::string>>> rows;
  EXPECT_FALSE(kernel_->store()->plugin_query("migrating", "SELECT colour FROM p_migrating_items", {}, &rows));

  // The fixed build applies 3 and 4.
  ASSERT_NO_FATAL_FAILURE(start({{"versions", "4"}}));
  r = http("/api/v1/migrations/migrating");
  ASSERT_EQ(r.status, 200) << r.body;
  one = json(r)["migrations"];
  EXPECT_EQ(one["state"], "current") << one;
  EXPECT_EQ(one["version"], 4);
  EXPECT_TRUE(one["failure"].is_null());
  EXPECT_EQ(one["applied"].size(), 4u);
  ASSERT_EQ(one["attempts"].size(), 5u) << one;  // newest first
  EXPECT_EQ(one["attempts"][0]["version"], 4);
  EXPECT_EQ(one["attempts"][1]["version"], 3);
  EXPECT_EQ(one["attempts"][1]["outcome"], "applied");
  EXPECT_EQ(one["attempts"][2]["version"], 3);
  EXPECT_EQ(one["attempts"][2]["outcome"], "failed");
  EXPECT_EQ(items(), "1:renamed,2:renamed");
}

TEST_P(MigrationStatusKernel, BadInputIsNamed) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  auto r = http("/api/v1/migrations?state=broken");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.head.getContentType(), "application/problem+json");
  EXPECT_NE(r.body.find("state: must be current, pending, failed or unknown"), std::string::npos) << r.body;
  r = http("/api/v1/migrations/nobody");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("owner: no migrations of 'nobody'"), std::string::npos) << r.body;
}

// Platform administrators read the migrations by default; the file may
// grant migrations.read to another role. Nobody without it reads them.
TEST_P(MigrationStatusKernel, RoleByActionMatrixOfBothRoutes) {
  cfg_.permissions["PartnerAdministrator"] = {"jobs.read", "migrations.read"};
  ASSERT_NO_FATAL_FAILURE(start({}));
  const std::map<std::string, bool> may = {{"PlatformAdministrator", true},
                                           {"DistributorAdministrator", false},
                                           {"PartnerAdministrator", true},
                                           {"TenantAdministrator", false},
                                           {"TenantUser", false}};
  for (const auto& [role, read] : may)
    for (const char* target : {"/api/v1/migrations", "/api/v1/migrations/kernel"}) {
      auto r = http(target, role);
      EXPECT_EQ(r.status, read ? 200 : 403) << role << " " << target << " " << r.body;
    }
  EXPECT_EQ(http("/api/v1/migrations", "nobody").status, 401);
  // In the OpenAPI document with the permission.
  auto r = http("/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  const Json doc = json(r);
  EXPECT_EQ(doc["paths"]["/api/v1/migrations"]["get"]["x-permission"], "migrations.read");
  EXPECT_EQ(doc["paths"]["/api/v1/migrations/{owner}"]["get"]["x-permission"], "migrations.read");
}

}  // namespace
}  // namespace opk
