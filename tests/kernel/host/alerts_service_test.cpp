// opk.alerts/1 through its C table, as a plugin reaches it: principals the
// kernel did not issue, permissions, fields named in errors, a plugin's own
// sources only for raise/clear/escalate, NOT_FOUND for an alert outside the
// actor's view, and the actions' answers; on both stores (a fresh
// PostgreSQL database per test, tests/support/pg_util.h).
#include "host/alerts_service.h"

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include "host/principals.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk::host {
namespace {

using Json = nlohmann::json;

class AlertsServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto cfg = test::quiet_config(dir_, plugins_);
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    ASSERT_TRUE(e.empty()) << e;
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    auto* id = kernel_->identity();
    ASSERT_TRUE(id->add_node("distributor:d1", "platform", ""));
    ASSERT_TRUE(id->add_node("partner:p1", "distributor:d1", ""));
    ASSERT_TRUE(id->add_node("tenant:t1", "partner:p1", ""));
    ASSERT_TRUE(id->add_node("tenant:t2", "partner:p1", ""));
    for (const auto& p : kernel_->plugins())
      if (p->id == "alert-probe") host_ = p->host->table();
    ASSERT_NE(host_, nullptr);
    ext_ = static_cast<const opk_alerts_v1*>(host_->get_extension(host_, OPK_EXT_ALERTS));
    ASSERT_NE(ext_, nullptr);
    auto& principals = kernel_->identity_service()->principals();
    system_ = principals.system("alert-probe");
    admin_ = principals.issue("pat", "PlatformAdministrator", "platform");
    t1_ = principals.issue("ted", "TenantAdministrator", "tenant:t1");
    t2user_ = principals.issue("tina", "TenantUser", "tenant:t2");
  }
  // Calls `op`; *answer gets the parsed answer.
  opk_status call(const opk_principal* who, const char* op, const std::string& req, Json* answer) {
    char* out = nullptr;
    opk_status s = ext_->call(host_, who, op, req.c_str(), "10.1.1.1", &out);
    EXPECT_NE(out, nullptr);
    *answer = Json::parse(out ? out : "null", nullptr, false);
    host_->free(host_, out);
    return s;
  }
  int64_t raise(const std::string& related_id, const std::string& scope) {
    Json a;
    EXPECT_EQ(call(system_, "raise",
                   Json({{"source", "probe"},
                         {"severity", "warning"},
                         {"title", "t"},
                         {"related_type", "object"},
                         {"related_id", related_id},
                         {"scope", scope},
                         {"details", {{"k", 1}}}})
                       .dump(),
                   &a),
              OPK_OK)
        << a;
    return a["alert"]["id"].get<int64_t>();
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  std::string plugins_ = test::plugins_dir(dir_, {test::fixture("alert_probe")});
  std::unique_ptr<Kernel> kernel_;
  const opk_host* host_ = nullptr;
  const opk_alerts_v1* ext_ = nullptr;
  const opk_principal *system_ = nullptr, *admin_ = nullptr, *t1_ = nullptr, *t2user_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(Backends, AlertsServiceTest, ::testing::Values("sqlite", "postgresql"),
                         test::store_backend_name);

TEST_P(AlertsServiceTest, ActorsPermissionsAndOperationsAreChecked) {
  Json a;
  opk_principal forged{sizeof(opk_principal), "pat", "PlatformAdministrator", "platform"};
  EXPECT_EQ(call(&forged, "list", "{}", &a), OPK_ERR_PERMISSION);
  EXPECT_NE(a["error"].get<std::string>().find("not a principal the kernel issued"), std::string::npos);
  EXPECT_EQ(call(admin_, "explode", "{}", &a), OPK_ERR_UNSUPPORTED);
  EXPECT_EQ(call(admin_, "list", "[1]", &a), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("request:", 0), 0u);
  EXPECT_EQ(call(admin_, "list", R"({"limit": 0})", &a), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("limit:", 0), 0u);
  EXPECT_EQ(call(admin_, "list", R"({"limit": "many"})", &a), OPK_ERR_INVALID_ARGUMENT);
  // alerts.raise: System only by default ("*" does not grant it).
  EXPECT_EQ(call(t1_, "raise", R"({"source": "probe"})", &a), OPK_ERR_PERMISSION);
  EXPECT_EQ(call(admin_, "raise", R"({"source": "probe"})", &a), OPK_ERR_PERMISSION);
  EXPECT_EQ(call(admin_, "clear", R"({"source": "probe"})", &a), OPK_ERR_PERMISSION);
  // A tenant user reads but does not manage.
  const int64_t id = raise("o1", "tenant:t2");
  EXPECT_EQ(call(t2user_, "get", "{\"id\": " + std::to_string(id) + "}", &a), OPK_OK) << a;
  EXPECT_EQ(call(t2user_, "acknowledge", "{\"id\": " + std::to_string(id) + "}", &a), OPK_ERR_PERMISSION);
  bool audited = false;
  for (const auto& r : kernel_->store()->audit_rows(100).value())
    audited |= r.action == "alerts.acknowledge" && r.actor == "tina" && r.outcome.rfind("refused: ", 0) == 0;
  EXPECT_TRUE(audited);
}

TEST_P(AlertsServiceTest, RaiseClearAndEscalateOnlyForTheCallersOwnSources) {
  Json a;
  EXPECT_EQ(call(system_, "raise",
                 R"({"source": "someone-elses", "severity": "info", "title": "x", "related_type": "o",
                     "related_id": "1", "scope": "platform"})",
                 &a),
            OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("source:", 0), 0u) << a;
  EXPECT_EQ(call(system_, "raise",
                 R"({"source": "probe", "severity": 7, "title": "x", "related_type": "o", "related_id": "1",
                     "scope": "platform"})",
                 &a),
            OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("severity:", 0), 0u) << a;
  EXPECT_EQ(call(system_, "raise",
                 R"({"source": "probe", "severity": "info", "title": "x", "related_type": "o", "related_id": "1",
                     "scope": "platform", "details": [1]})",
                 &a),
            OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("details:", 0), 0u) << a;
  const int64_t id = raise("o1", "tenant:t1");
  EXPECT_EQ(call(system_, "escalate", R"({"source": "probe", "related_type": "object", "related_id": "o1"})", &a),
            OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("reason:", 0), 0u) << a;
  ASSERT_EQ(call(system_, "escalate",
                 R"({"source": "probe", "related_type": "object", "related_id": "o1", "reason": "third day"})", &a),
            OPK_OK)
      << a;
  EXPECT_EQ(a["alert"]["status"], "escalated");
  EXPECT_EQ(a["alert"]["escalation_level"], 1);
  ASSERT_EQ(call(system_, "clear", R"({"source": "probe", "related_type": "object", "related_id": "o1"})", &a), OPK_OK)
      << a;
  EXPECT_EQ(a["alert"]["id"], id);
  EXPECT_EQ(a["alert"]["close_kind"], "cleared");
  EXPECT_EQ(a["alert"]["closed_by"], "system:alert-probe");
  ASSERT_EQ(call(system_, "clear", R"({"source": "probe", "related_type": "object", "related_id": "o1"})", &a), OPK_OK);
  EXPECT_TRUE(a["alert"].is_null());
}

// Lists and counts are answered from a cache while no alert is written:
// every write through the engine is seen by the next read, whoever made it.
TEST_P(AlertsServiceTest, RepeatedReadsSeeEveryWriteAtOnce) {
  const int64_t first = raise("o1", "tenant:t1");
  Json a, counts;
  ASSERT_EQ(call(t1_, "list", "{}", &a), OPK_OK) << a;
  ASSERT_EQ(a["alerts"].size(), 1u);
  ASSERT_EQ(call(t1_, "counts", "{}", &counts), OPK_OK);
  EXPECT_EQ(counts["by_status"]["open"], 1);
  const int64_t second = raise("o2", "tenant:t1");
  ASSERT_EQ(call(t1_, "list", "{}", &a), OPK_OK) << a;
  ASSERT_EQ(a["alerts"].size(), 2u);
  ASSERT_EQ(call(t1_, "counts", "{}", &counts), OPK_OK);
  EXPECT_EQ(counts["by_status"]["open"], 2);
  ASSERT_EQ(call(admin_, "acknowledge", "{\"id\": " + std::to_string(second) + "}", &a), OPK_OK) << a;
  ASSERT_EQ(call(t1_, "list", R"({"status": "open"})", &a), OPK_OK) << a;
  ASSERT_EQ(a["alerts"].size(), 1u);
  EXPECT_EQ(a["alerts"][0]["id"], first);
  ASSERT_EQ(call(t1_, "list", "{}", &a), OPK_OK) << a;
  ASSERT_EQ(a["alerts"].size(), 2u);
  EXPECT_EQ(a["alerts"][0]["status"].get<std::string>() == "acknowledged" ||
                a["alerts"][1]["status"].get<std::string>() == "acknowledged",
            true);
  // The same request by another role and scope is its own answer.
  ASSERT_EQ(call(t2user_, "list", "{}", &a), OPK_OK) << a;
  EXPECT_EQ(a["alerts"].size(), 0u);
}

TEST_P(AlertsServiceTest, ReadsAndActionsSeeOnlyTheActorsView) {
  const int64_t mine = raise("o1", "tenant:t1");
  const int64_t theirs = raise("o2", "tenant:t2");
  Json a;
  ASSERT_EQ(call(t1_, "list", "{}", &a), OPK_OK) << a;
  ASSERT_EQ(a["alerts"].size(), 1u);
  EXPECT_EQ(a["alerts"][0]["id"], mine);
  EXPECT_TRUE(a["next_cursor"].is_null());
  EXPECT_EQ(call(t1_, "get", "{\"id\": " + std::to_string(theirs) + "}", &a), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(call(t1_, "acknowledge", "{\"id\": " + std::to_string(theirs) + "}", &a), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(call(t1_, "close", "{\"id\": " + std::to_string(theirs) + ", \"reason\": \"x\"}", &a), OPK_ERR_NOT_FOUND);
  ASSERT_EQ(call(t1_, "counts", "{}", &a), OPK_OK);
  EXPECT_EQ(a["by_status"]["open"], 1);
  EXPECT_EQ(a["by_source"]["probe"], 1);
  ASSERT_EQ(call(admin_, "counts", "{}", &a), OPK_OK);
  EXPECT_EQ(a["by_status"]["open"], 2);
  ASSERT_EQ(a["groups"].size(), 1u);
  EXPECT_EQ(a["groups"][0], Json({{"status", "open"}, {"severity", "warning"}, {"source", "probe"}, {"count", 2}}));

  ASSERT_EQ(call(t1_, "acknowledge", "{\"id\": " + std::to_string(mine) + ", \"reason\": \"on it\"}", &a), OPK_OK) << a;
  EXPECT_EQ(a["alert"]["status"], "acknowledged");
  EXPECT_EQ(a["alert"]["acknowledged_by"], "ted");
  ASSERT_EQ(call(t1_, "silence", "{\"id\": " + std::to_string(mine) + ", \"until_ms\": 1}", &a),
            OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("until_ms:", 0), 0u) << a;
  EXPECT_EQ(call(t1_, "close", "{\"id\": " + std::to_string(mine) + "}", &a), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("reason:", 0), 0u) << a;
  ASSERT_EQ(call(t1_, "close", "{\"id\": " + std::to_string(mine) + ", \"reason\": \"fixed\"}", &a), OPK_OK);
  EXPECT_EQ(a["alert"]["status"], "closed");
  EXPECT_EQ(call(t1_, "acknowledge", "{\"id\": " + std::to_string(mine) + "}", &a), OPK_ERR_CONFLICT);
  ASSERT_EQ(call(t1_, "get", "{\"id\": " + std::to_string(mine) + "}", &a), OPK_OK);
  ASSERT_EQ(a["history"].size(), 3u);
  EXPECT_EQ(a["history"][2]["kind"], "closed");
  EXPECT_EQ(a["history"][2]["reason"], "fixed");

  ASSERT_EQ(call(t1_, "create", R"({"severity": "critical", "title": "Call the customer", "scope": "tenant:t1"})", &a),
            OPK_OK)
      << a;
  EXPECT_EQ(a["alert"]["custom"], true);
  EXPECT_EQ(a["alert"]["source"], "custom");
  EXPECT_EQ(call(t1_, "create", R"({"severity": "critical", "title": "x", "scope": "tenant:t2"})", &a),
            OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(a["error"].get<std::string>().rfind("scope:", 0), 0u) << a;
}

}  // namespace
}  // namespace opk::host
