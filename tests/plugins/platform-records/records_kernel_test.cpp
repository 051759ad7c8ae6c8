// platform-records in a real kernel behind the admin API, over HTTP: a
// platform administrator imports, a tenant administrator lists only their
// tenant's rows, an export reads back unchanged, the kernel refuses callers
// without a token (401) or the permission (403), bad rows answer 422; and a
// consumer plugin reads the records through the kernel's extension lookup.
// On both stores: the embedded SQLite file and a fresh PostgreSQL database
// (the plugin's tables and statements unchanged).
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class RecordsKernel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    port_ = test::free_port();
    auto cfg = test::quiet_config(
        dir_, test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("platform-records"),
                                       test::fixture("records_consumer")}));
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    cfg.permissions["TenantAdministrator"] = {"jobs.read", "records.read"};
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    ASSERT_TRUE(e.empty()) << e;
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    auto* id = kernel_->identity();
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"tenant:t2", "partner:p1"},
                                                                        {"subscription:s1", "tenant:t1"},
                                                                        {"subscription:s2", "tenant:t1"},
                                                                        {"subscription:s3", "tenant:t2"}})
      ASSERT_TRUE(id->add_node(n, p, ""));
    struct U {
      const char *id, *role, *scope;
      std::string* token;
    } users[] = {{"pat", "PlatformAdministrator", "platform", &admin_},
                 {"ted", "TenantAdministrator", "tenant:t1", &tenant_admin_},
                 {"tim", "TenantUser", "tenant:t1", &tenant_user_}};
    for (auto& u : users) {
      ASSERT_TRUE(id->add_user({u.id, "", u.role, u.scope}));
      ASSERT_TRUE(id->issue_token(u.id, 0, "test", u.token));
    }
  }

  test::Reply http(const std::string& method, const std::string& target, const std::string& token,
                   const std::string& body = "", const std::string& type = "") {
    std::map<std::string, std::string> headers;
    if (!type.empty()) headers["Content-Type"] = type;
    return test::http_request(port_, method, target, token, body, headers);
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_, tenant_admin_, tenant_user_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RecordsKernel, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

const char* const kSubs =
    "id,tenant,product,status,period_start,period_end\n"
    "s1,tenant:t1,mail,active,2026-01-01,\n"
    "s2,tenant:t1,\"web, pro\",suspended,2026-02-01,2026-12-31\n"
    "s3,tenant:t2,mail,active,2026-03-01,\n";

TEST_P(RecordsKernel, ImportListExportOverHttp) {
  auto r = http("POST", "/api/v1/records/subscriptions/import", admin_, kSubs, "text/csv");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body), Json::parse(R"({"inserted": 3, "updated": 0, "unchanged": 0})"));
  r = http("POST", "/api/v1/records/subscriptions/import", admin_, kSubs, "text/csv");
  EXPECT_EQ(Json::parse(r.body), Json::parse(R"({"inserted": 0, "updated": 0, "unchanged": 3})"));

  // The tenant administrator sees their tenant's rows only.
  r = http("GET", "/api/v1/records/subscriptions", tenant_admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> ids;
  const Json page = Json::parse(r.body);
  for (const auto& row : page["rows"]) ids.push_back(row["id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"s1", "s2"})) << r.body;
  r = http("GET", "/api/v1/records/subscriptions/export?format=csv", tenant_admin_);
  EXPECT_EQ(r.body,
            "id,tenant,product,status,period_start,period_end,region\r\ns1,tenant:t1,mail,active,2026-01-01,,\r\n"
            "s2,tenant:t1,\"web, pro\",suspended,2026-02-01,2026-12-31,\r\n");

  // The platform's export reads back unchanged.
  r = http("GET", "/api/v1/records/subscriptions/export?format=json", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body).size(), 3u);
  auto again = http("POST", "/api/v1/records/subscriptions/import", admin_, r.body, "application/json");
  EXPECT_EQ(Json::parse(again.body), Json::parse(R"({"inserted": 0, "updated": 0, "unchanged": 3})"));

  // The audit trail has the imports, with their counts.
  auto audit = http("GET", "/api/v1/audit?action=records.import", admin_);
  EXPECT_NE(audit.body.find("records:subscriptions"), std::string::npos) << audit.body;
}

TEST_P(RecordsKernel, RefusalsAnswer401And403And422) {
  EXPECT_EQ(http("GET", "/api/v1/records/subscriptions", "").status, 401);
  EXPECT_EQ(http("POST", "/api/v1/records/subscriptions/import", "", kSubs, "text/csv").status, 401);
  // A tenant administrator may read by this configuration, not import.
  EXPECT_EQ(http("POST", "/api/v1/records/subscriptions/import", tenant_admin_, kSubs, "text/csv").status, 403);
  EXPECT_EQ(http("GET", "/api/v1/records/subscriptions", tenant_user_).status, 403);
  EXPECT_EQ(http("GET", "/api/v1/records/licenses", tenant_admin_).status, 403);

  ASSERT_EQ(http("POST", "/api/v1/records/subscriptions/import", admin_, kSubs, "text/csv").status, 200);

  auto r = http("POST", "/api/v1/records/usage/import", admin_,
                R"([{"subscription": "s1", "month": "2026-01", "quantity": 1, "cost": 2},
                    {"subscription": "s7", "month": "2026-13", "quantity": -1, "cost": 2}])",
                "application/json");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.head.getContentType(), "application/problem+json");
  const Json doc = Json::parse(r.body);
  EXPECT_EQ(doc["problem_count"], 2);
  EXPECT_EQ(doc["problems"][0]["line"], 2);
  EXPECT_EQ(doc["problems"][0]["field"], "month");
  EXPECT_EQ(doc["problems"][1]["field"], "quantity");
  // Nothing of the refused file was stored.
  r = http("GET", "/api/v1/records/usage", admin_);
  EXPECT_EQ(Json::parse(r.body)["rows"].size(), 0u) << r.body;
}

TEST_P(RecordsKernel, AConsumerPluginReadsTheRecordsThroughTheKernel) {
  ASSERT_EQ(http("POST", "/api/v1/records/subscriptions/import", admin_, kSubs, "text/csv").status, 200);
  ASSERT_EQ(http("POST", "/api/v1/records/regions/import", admin_,
                 R"([{"id": "eu", "name": "Europe", "api_url": "https://api.eu", "identity_url": "https://id.eu"}])",
                 "application/json")
                .status,
            200);
  auto v = test::run_and_wait(*kernel_, test::manual("records-consumer",
                                                     R"({"page_size": 1, "filter": {"status": "active"},
                                 "probes": [{"region": "eu", "kind": "api", "time_ms": 5, "ok": true}]})"));
  ASSERT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
  const Json out = Json::parse(v.row.output_json);
  EXPECT_EQ(out["pages"], 2);
  EXPECT_EQ(out["subscriptions"][0]["id"], "s1");
  EXPECT_EQ(out["subscriptions"][1]["id"], "s3");
  EXPECT_EQ(out["latest"], Json::parse(R"([{"region": "eu", "kind": "api", "time_ms": 5, "ok": true,
                                            "latency_ms": null, "detail": null}])"));
}

}  // namespace
}  // namespace opk
