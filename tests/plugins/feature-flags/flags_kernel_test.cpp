// The feature flags in a real kernel (admin-http, feature-flags and the
// flag_consumer fixture): the role x action matrix of every route under
// the kernel's default permissions and [permissions] grants, audit rows
// through the kernel's audit API, the OpenAPI document, and a change
// another kernel writes to the shared store file seen by this kernel's
// plugin within its poll_interval, and not before the change counter moves.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "clock/clock.h"
#include "plugins/admin-http/http_client.h"
#include "support/admin_feature.h"
#include "support/kernel_util.h"
#include "support/servers.h"

namespace opk {
namespace {

using Json = nlohmann::json;

constexpr const char* kDeclared =
    R"([{"id": "consumer.fast-path", "default": false, "description": "Take the fast path"}])";

class FlagsKernel : public test::FeatureKernelTest<> {
 protected:
  void SetUp() override {
    configure({test::bundled("feature-flags"), test::fixture("flag_consumer")});
    cfg_.node_name = "kernel-a";
    cfg_.plugins["flag-consumer"] = {{"declare", kDeclared}};
    cfg_.plugins["feature-flags"] = {{"poll_interval", "200ms"}};
  }

  test::Reply http(const std::string& method, const std::string& target, const Json& body = nullptr,
                   const std::string& role = "PlatformAdministrator", int port = 0) {
    return test::http_request(port ? port : port_, method, target, tokens_[role], body.is_null() ? "" : body.dump());
  }
};

TEST_F(FlagsKernel, RoleByActionMatrixOfEveryRoute) {
  // The defaults give the flags to platform administrators only (*); the
  // file may grant them: here a tenant administrator reads and a partner
  // administrator manages.
  cfg_.permissions["TenantAdministrator"] = {"jobs.read", "feature_flags.read"};
  cfg_.permissions["PartnerAdministrator"] = {"jobs.read", "feature_flags.read", "feature_flags.manage"};
  ASSERT_NO_FATAL_FAILURE(start());
  const std::vector<std::string> roles = {"PlatformAdministrator", "DistributorAdministrator", "PartnerAdministrator",
                                          "TenantAdministrator", "TenantUser"};
  const std::map<std::string, std::pair<bool, bool>> may = {// role -> (read, manage)
                                                            {"PlatformAdministrator", {true, true}},
                                                            {"DistributorAdministrator", {false, false}},
                                                            {"PartnerAdministrator", {true, true}},
                                                            {"TenantAdministrator", {true, false}},
                                                            {"TenantUser", {false, false}}};
  int n = 0;
  for (const auto& role : roles) {
    const auto [read, manage] = may.at(role);
    const std::string id = "m" + std::to_string(n++);
    // The platform administrator makes a flag for each role to work on.
    ASSERT_EQ(http("POST", "/api/v1/feature-flags",
                   {{"id", id}, {"type", "boolean"}, {"default", false}, {"description", "d"}, {"reason", "r"}})
                  .status,
              201);
    struct Step {
      std::string method, target;
      Json body;
      bool manage;
      int ok;
    };
    const std::string mine = "own-" + id;
    for (const Step& s : {
             Step{"GET", "/api/v1/feature-flags", nullptr, false, 200},
             Step{"GET", "/api/v1/feature-flags/" + id, nullptr, false, 200},
             Step{"POST", "/ofrep/v1/evaluate/flags/" + id, Json::object(), false, 200},
             Step{"POST", "/ofrep/v1/evaluate/flags", Json::object(), false, 200},
             Step{"POST",
                  "/api/v1/feature-flags",
                  {{"id", mine}, {"type", "string"}, {"default", "a"}, {"description", "d"}, {"reason", "r"}},
                  true,
                  201},
             Step{"PATCH", "/api/v1/feature-flags/" + id, {{"value", true}, {"reason", "r"}}, true, 200},
             Step{"POST", "/api/v1/feature-flags/" + id + "/reset", {{"reason", "r"}}, true, 200},
             Step{"DELETE", "/api/v1/feature-flags/" + id + "?reason=r", nullptr, true, 204},
         }) {
      const bool allowed = s.manage ? manage : read;
      auto r = http(s.method, s.target, s.body, role);
      EXPECT_EQ(r.status, allowed ? s.ok : 403) << role << " " << s.method << " " << s.target << " " << r.body;
    }
  }
  // Audited with the actor, through the kernel's audit API.
  auto r = http("GET", "/api/v1/audit?action=feature_flags.update&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<std::string> actors;
  const Json updates = json(r);
  for (const auto& row : updates["items"]) actors.insert(row.value("actor", ""));
  EXPECT_EQ(actors, (std::set<std::string>{"pat", "paul"})) << r.body;
  r = http("GET", "/api/v1/audit?action=feature_flags.declare&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(json(r)["items"].size(), 1u) << r.body;
  EXPECT_EQ(json(r)["items"][0]["actor"], "system:flag-consumer") << r.body;
  // In the OpenAPI document with their permissions.
  r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  const Json doc = json(r);
  EXPECT_EQ(doc["paths"]["/api/v1/feature-flags/{id}"]["patch"]["x-permission"], "feature_flags.manage");
  EXPECT_EQ(doc["paths"]["/ofrep/v1/evaluate/flags/{key}"]["post"]["x-permission"], "feature_flags.read");
}

// The document with the flags' and OFREP's routes passes Redocly's linter
// (tests/plugins/admin-http/openapi-lint, as admin_http_test.cpp runs it)
// without an error or a warning.
TEST_F(FlagsKernel, TheOpenApiDocumentWithTheFlagsPassesTheLinter) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto r = http("GET", "/api/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  ASSERT_NE(r.body.find("/ofrep/v1/evaluate/flags/{key}"), std::string::npos);
  test::expect_openapi_lints_clean(r.body, dir_.path());
}

// An application reads the flags with the OpenFeature server SDK and its
// OFREP provider from npm (ofrep-client/, installed by dist/setup.sh test):
// values of the three types, an override's reason and variant, a flag not
// found, a value of another type than asked (TYPE_MISMATCH), and a token
// whose role lacks feature_flags.read, each with the default value.
TEST_F(FlagsKernel, AnApplicationReadsTheFlagsWithTheOpenFeatureSdk) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::filesystem::path client =
      std::filesystem::path(OPK_SOURCE_DIR) / "tests/plugins/feature-flags/ofrep-client";
  ASSERT_TRUE(std::filesystem::exists(client / "node_modules/@openfeature/ofrep-provider"))
      << "the OFREP client's packages are missing: run 'npm ci' in " << client.string() << " (dist/setup.sh does)";
  const int64_t later = clock::now_ms() + 3600000;
  for (const Json& body :
       {Json{{"id", "ops.enabled"}, {"type", "boolean"}, {"default", false}, {"value", true}, {"reason", "r"}},
        Json{{"id", "ops.mode"}, {"type", "string"}, {"default", "blue"}, {"reason", "r"}},
        Json{{"id", "ops.limit"},
             {"type", "number"},
             {"default", 5},
             {"value", 7.5},
             {"expires_ms", later},
             {"reason", "r"},
             {"description", "d"}}}) {
    Json b = body;
    if (!b.contains("description")) b["description"] = "d";
    ASSERT_EQ(http("POST", "/api/v1/feature-flags", b).status, 201);
  }
  const auto evaluate = [&](const std::string& role, const Json& evaluations) {
    const std::string cmd = std::string(OPK_NODE) + " '" + (client / "ofrep_client.mjs").string() +
                            "' --url http://127.0.0.1:" + std::to_string(port_) + " --token '" + tokens_[role] +
                            "' --evaluate '" + evaluations.dump() + "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    for (size_t n; p && (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int status = p ? pclose(p) : -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    const Json doc = Json::parse(out, nullptr, false);
    EXPECT_TRUE(doc.is_object()) << out;
    return doc.is_object() ? doc["results"] : Json::array();
  };
  const Json r =
      evaluate("PlatformAdministrator", Json::array({
                                            {{"key", "ops.enabled"}, {"type", "boolean"}, {"default", false}},
                                            {{"key", "ops.mode"}, {"type", "string"}, {"default", "x"}},
                                            {{"key", "ops.limit"}, {"type", "number"}, {"default", 0}},
                                            {{"key", "consumer.fast-path"}, {"type", "boolean"}, {"default", true}},
                                            {{"key", "nope"}, {"type", "boolean"}, {"default", true}},
                                            {{"key", "ops.mode"}, {"type", "boolean"}, {"default", false}},
                                        }));
  ASSERT_EQ(r.size(), 6u) << r.dump();
  EXPECT_EQ(r[0]["value"], true);
  EXPECT_EQ(r[0]["reason"], "STATIC");
  EXPECT_EQ(r[0]["variant"], "override");
  EXPECT_TRUE(r[0]["errorCode"].is_null()) << r[0].dump();
  EXPECT_EQ(r[1]["value"], "blue");
  EXPECT_EQ(r[1]["reason"], "DEFAULT");
  EXPECT_EQ(r[2]["value"], 7.5);
  EXPECT_EQ(r[2]["flagMetadata"]["expiresMs"], later) << r[2].dump();
  EXPECT_EQ(r[3]["value"], false) << "a plugin's declared flag at its default";
  EXPECT_EQ(r[4]["value"], true) << "the application's default";
  EXPECT_EQ(r[4]["errorCode"], "FLAG_NOT_FOUND") << r[4].dump();
  EXPECT_EQ(r[4]["reason"], "ERROR");
  EXPECT_EQ(r[5]["value"], false);
  EXPECT_EQ(r[5]["errorCode"], "TYPE_MISMATCH") << r[5].dump();
  // A role without feature_flags.read gets the defaults and an error.
  const Json denied =
      evaluate("TenantUser", Json::array({{{"key", "ops.enabled"}, {"type", "boolean"}, {"default", false}}}));
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0]["value"], false);
  EXPECT_EQ(denied[0]["reason"], "ERROR");
  EXPECT_FALSE(denied[0]["errorCode"].is_null()) << denied[0].dump();
}

TEST_F(FlagsKernel, AChangeWrittenToTheSharedStoreIsSeenWithinThePollInterval) {
  // The embedded store admits one kernel per file (kernel.cpp, open_store),
  // so the other kernel sharing the store is played by a second connection
  // to the file running what that kernel's feature-flags plugin runs for
  // an override: the flag's row and the change counter, in one transaction.
  ASSERT_NO_FATAL_FAILURE(start());
  const auto seen = [&] {
    auto r = http("GET", "/api/v1/flag-consumer/consumer.fast-path");
    return r.status == 200 ? json(r) : Json();
  };
  ASSERT_EQ(seen()["enabled"], false);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(cfg_.store_path.c_str(), &other), SQLITE_OK);
  sqlite3_busy_timeout(other, 10000);
  const auto run = [&](const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(other, sql.c_str(), nullptr, nullptr, &err);
    const std::string why = err ? err : "";
    sqlite3_free(err);
    return rc == SQLITE_OK ? std::string() : why;
  };
  // A row changed without the counter: checks read the snapshot, never the
  // store, so nothing moves however long it waits.
  ASSERT_EQ(run("UPDATE p_feature_flags_flags SET value_json = 'true', revision = revision + 1, updated_by = 'kb', "
                "reason = 'roll out' WHERE id = 'consumer.fast-path'"),
            "");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // five poll intervals
  EXPECT_EQ(seen()["enabled"], false) << "no store read per check, no reload while the counter stands";
  // The counter moves: the kernel reloads within its poll interval.
  ASSERT_EQ(run("UPDATE p_feature_flags_changes SET counter = counter + 1 WHERE id = 1"), "");
  EXPECT_TRUE(test::within([&] { return seen()["enabled"] == true; })) << seen().dump();
  auto r = http("POST", "/ofrep/v1/evaluate/flags/consumer.fast-path", Json::object());
  EXPECT_EQ(json(r)["value"], true) << r.body;
  EXPECT_EQ(json(r)["reason"], "STATIC");
  // And a flag the other kernel creates reaches this one's OFREP.
  ASSERT_EQ(run("BEGIN; INSERT INTO p_feature_flags_flags (id, flag_type, default_json, value_json, expires_ms, "
                "description, owner, plugin, created_by, created_ms, updated_by, updated_ms, reason, revision) VALUES "
                "('ops.mode', 'string', '\"blue\"', NULL, NULL, 'd', 'kb', NULL, 'kb', 1, 'kb', 1, 'new', 1); "
                "UPDATE p_feature_flags_changes SET counter = counter + 1 WHERE id = 1; COMMIT"),
            "");
  EXPECT_TRUE(test::within(
      [&] { return json(http("POST", "/ofrep/v1/evaluate/flags/ops.mode", Json::object()))["value"] == "blue"; }));
  sqlite3_close(other);
  // The bulk evaluation's ETag: 304 while nothing changed.
  r = http("POST", "/ofrep/v1/evaluate/flags", Json::object());
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string etag = r.head.get("ETag", "");
  ASSERT_FALSE(etag.empty());
  r = test::http_request(port_, "POST", "/ofrep/v1/evaluate/flags", tokens_["PlatformAdministrator"], "{}",
                         {{"If-None-Match", etag}});
  EXPECT_EQ(r.status, 304) << r.body;
  EXPECT_TRUE(r.body.empty());
  // The kernel's own change is seen at once, with no wait for a poll.
  r = http("POST", "/api/v1/feature-flags/consumer.fast-path/reset", {{"reason", "roll back"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(seen()["enabled"], false);
}

}  // namespace
}  // namespace opk
