// The feature flags on the SDK's test host, with the flag_consumer fixture
// reading them as a plugin does: the three types and the wrong-type
// refusal naming the field, the required reason, an override's expiry
// driven by the test clock (no sleep, no job), flags declared by a plugin
// (overridable and resettable, never deleted; bad and clashing
// declarations refused naming the field with nothing written), the audit
// rows, the permissions, OFREP's answers, and bad input losing nothing.
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/admin_feature.h"
#include "support/bundled.h"

namespace opk::test {
namespace {

using testing::Principal;

const Principal kAdmin = Principal::administrator();
const Principal kTenantAdmin{"alice", "TenantAdministrator", "tenant:acme"};
const Principal kReader{"rita", "DistributorAdministrator", "distributor:d1"};

constexpr const char* kDeclared = R"([
  {"id": "consumer.fast-path", "default": false, "description": "Take the fast path", "owner": "team-core"},
  {"id": "consumer.banner", "default": "hello", "description": "The banner's text"},
  {"id": "consumer.batch", "type": "number", "default": 50, "description": "Rows per batch"}
])";

class FlagsApi : public FeatureApiTest {
 protected:
  FlagsApi() : FeatureApiTest("/api/v1/feature-flags", "flag", "flags") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FeatureApiTest::SetUp());
    host_.set_setting("declare", kDeclared);
    ASSERT_NO_FATAL_FAILURE(load_bundled(host_, {"feature-flags"}));
    const Status s = host_.load(std::string(OPK_TEST_PLUGIN_DIR) + "/flag_consumer.so");
    ASSERT_TRUE(s) << s.message();
    host_.add_node("distributor:d1", "platform");
    host_.add_node("tenant:acme", "distributor:d1");
    host_.grant("DistributorAdministrator", "feature_flags.read");
  }

  Json flag(const std::string& id) {
    auto r = call("GET", "/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return json(r)["flag"];
  }
  // What the consumer plugin sees of flag `id`.
  Json seen(const std::string& id) {
    auto r = host_.run("flag-read", Json{{"id", id}}.dump());
    EXPECT_EQ(r.status, OPK_OK) << r.error;
    return Json::parse(r.output_json, nullptr, false);
  }
  Json declare(const Json& flags) {
    auto r = host_.run("flag-declare", Json{{"flags_json", flags.dump()}}.dump());
    EXPECT_EQ(r.status, OPK_OK) << r.error;
    return Json::parse(r.output_json, nullptr, false);
  }
  void create(const std::string& id, const std::string& type, const Json& def) {
    auto r = call("POST", "",
                  {{"id", id}, {"type", type}, {"default", def}, {"description", "d of " + id}, {"reason", "new"}});
    ASSERT_EQ(r.status, 201) << r.body;
  }
};

OPK_FEATURE_API_STORES(FlagsApi);

TEST_P(FlagsApi, ThreeTypesAndTheWrongTypeRefusedNamingTheField) {
  create("ops.enabled", "boolean", true);
  create("ops.mode", "string", "blue");
  create("ops.limit", "number", 2.5);
  EXPECT_EQ(seen("ops.enabled")["enabled"], true);
  EXPECT_EQ(seen("ops.mode")["string"], "blue");
  EXPECT_EQ(seen("ops.limit")["number"], 2.5);
  EXPECT_EQ(seen("ops.mode")["enabled_fallback_true"], true) << "a string is no boolean: the fallback";

  struct Case {
    std::string id;
    Json value;
    std::string detail;
  };
  for (const Case& c : {Case{"ops.enabled", "true", "value: the flag is a boolean, not a string"},
                        Case{"ops.enabled", 1, "value: the flag is a boolean, not a number"},
                        Case{"ops.mode", false, "value: the flag is a string, not a boolean"},
                        Case{"ops.limit", "3", "value: the flag is a number, not a string"},
                        Case{"ops.limit", Json::array({1}), "value: the flag is a number, not a array"},
                        Case{"ops.mode", Json::object(), "value: the flag is a string, not a object"}}) {
    auto r = call("PATCH", "/" + c.id, {{"value", c.value}, {"reason", "try"}});
    EXPECT_EQ(r.status, 400) << c.id << " " << r.body;
    EXPECT_EQ(r.header("content-type"), "application/problem+json");
    EXPECT_EQ(json(r)["detail"], c.detail) << r.body;
  }
  EXPECT_EQ(flag("ops.enabled")["value"], true) << "nothing changed";
  EXPECT_EQ(flag("ops.limit")["value"], 2.5);
  EXPECT_EQ(flag("ops.limit")["revision"], 1);

  // Right types are taken, and the plugin sees them at once.
  ASSERT_EQ(call("PATCH", "/ops.enabled", {{"value", false}, {"reason", "incident 42"}}).status, 200);
  ASSERT_EQ(call("PATCH", "/ops.mode", {{"value", "green"}, {"reason", "switch"}}).status, 200);
  ASSERT_EQ(call("PATCH", "/ops.limit", {{"value", 7}, {"reason", "more"}}).status, 200);
  EXPECT_EQ(seen("ops.enabled")["enabled"], false);
  EXPECT_EQ(seen("ops.enabled")["evaluate"]["reason"], "STATIC");
  EXPECT_EQ(seen("ops.mode")["string"], "green");
  EXPECT_EQ(seen("ops.limit")["number"], 7);

  // A create whose default or value is of the wrong type.
  auto r = call("POST", "", {{"id", "x"}, {"type", "number"}, {"default", "1"}, {"description", "d"}, {"reason", "r"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"], "default: the flag is a number, not a string");
  r = call(
      "POST", "",
      {{"id", "x"}, {"type", "boolean"}, {"default", true}, {"value", "no"}, {"description", "d"}, {"reason", "r"}});
  EXPECT_EQ(json(r)["detail"], "value: the flag is a boolean, not a string");
  r = call("POST", "", {{"id", "x"}, {"type", "list"}, {"default", true}, {"description", "d"}, {"reason", "r"}});
  EXPECT_EQ(json(r)["detail"], "type: must be boolean, string or number");
  EXPECT_EQ(call("GET", "/x").status, 404) << "nothing was created";
}

TEST_P(FlagsApi, EveryChangeNeedsAReasonAndIsAudited) {
  create("ops.enabled", "boolean", false);
  for (const Json& body : {Json{{"value", true}}, Json{{"value", true}, {"reason", ""}},
                           Json{{"value", true}, {"reason", "   "}}, Json{{"value", true}, {"reason", 5}}}) {
    auto r = call("PATCH", "/ops.enabled", body);
    EXPECT_EQ(r.status, 400) << body.dump();
    EXPECT_EQ(json(r)["detail"].get<std::string>().rfind("reason: ", 0), 0u) << r.body;
  }
  EXPECT_EQ(call("POST", "/ops.enabled/reset", Json::object()).status, 400);
  EXPECT_EQ(call("DELETE", "/ops.enabled").status, 400);
  auto r = call("POST", "", {{"id", "y"}, {"type", "boolean"}, {"default", true}, {"description", "d"}});
  EXPECT_EQ(json(r)["detail"], "reason: is required (say why the flag changes)");
  EXPECT_EQ(flag("ops.enabled")["overridden"], false);

  ASSERT_EQ(call("PATCH", "/ops.enabled", {{"value", true}, {"reason", "incident 42"}}).status, 200);
  ASSERT_EQ(call("POST", "/ops.enabled/reset", {{"reason", "incident over"}}).status, 200);
  ASSERT_EQ(call("DELETE", "/ops.enabled?reason=no%20longer%20needed").status, 204);
  EXPECT_EQ(call("GET", "/ops.enabled").status, 404);

  const auto created = audit("feature_flags.create");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].user_id, "admin");
  EXPECT_EQ(created[0].target, "flag:ops.enabled");
  EXPECT_EQ(created[0].reason, "new");
  const auto updated = audit("feature_flags.update");
  ASSERT_EQ(updated.size(), 1u);
  EXPECT_EQ(updated[0].reason, "incident 42");
  EXPECT_EQ(Json::parse(updated[0].before_json)["value"], false);
  EXPECT_EQ(Json::parse(updated[0].after_json)["value"], true);
  const auto reset = audit("feature_flags.reset");
  ASSERT_EQ(reset.size(), 1u);
  EXPECT_EQ(reset[0].reason, "incident over");
  EXPECT_EQ(Json::parse(reset[0].before_json)["value"], true);
  EXPECT_EQ(Json::parse(reset[0].after_json)["overridden"], false);
  const auto deleted = audit("feature_flags.delete");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0].reason, "no longer needed");
  EXPECT_EQ(Json::parse(deleted[0].before_json)["id"], "ops.enabled");
  EXPECT_TRUE(deleted[0].after_json.empty());
}

TEST_P(FlagsApi, AnOverrideExpiresByItselfOnTheClock) {
  create("ops.enabled", "boolean", false);
  const int64_t now = host_.clock().now_ms();
  auto r = call("PATCH", "/ops.enabled", {{"value", true}, {"reason", "for an hour"}, {"expires_ms", now + 3600000}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["flag"]["expires_ms"], now + 3600000);
  EXPECT_EQ(seen("ops.enabled")["enabled"], true);
  EXPECT_EQ(seen("ops.enabled")["evaluate"]["expires_ms"], now + 3600000);
  host_.clock().advance(3600000 - 1);
  EXPECT_EQ(seen("ops.enabled")["enabled"], true) << "a millisecond before";
  host_.clock().advance(1);
  EXPECT_EQ(seen("ops.enabled")["enabled"], false) << "reverted: no job, no reload";
  EXPECT_EQ(seen("ops.enabled")["evaluate"]["reason"], "DEFAULT");
  const Json f = flag("ops.enabled");
  EXPECT_EQ(f["value"], false);
  EXPECT_EQ(f["overridden"], false);
  EXPECT_EQ(f["override"]["expired"], true) << f.dump();
  EXPECT_TRUE(f["expires_ms"].is_null());
  r = call("GET", "?state=overridden");
  EXPECT_TRUE(json(r)["flags"].empty()) << r.body;

  // An expiry alone needs an override that holds; one in the past is refused.
  r = call("PATCH", "/ops.enabled", {{"reason", "extend"}, {"expires_ms", host_.clock().now_ms() + 1000}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"], "expires_ms: flag 'ops.enabled' has no override to expire; give a value");
  r = call("PATCH", "/ops.enabled", {{"value", true}, {"reason", "x"}, {"expires_ms", host_.clock().now_ms()}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"].get<std::string>().rfind("expires_ms: must be in the future", 0), 0u) << r.body;
  r = call("PATCH", "/ops.enabled", {{"value", true}, {"reason", "x"}, {"expires_ms", "tomorrow"}});
  EXPECT_EQ(json(r)["detail"], "expires_ms: must be a whole number of ms since the epoch");

  // A new value without expiry holds until reset; an expiry can be moved.
  ASSERT_EQ(call("PATCH", "/ops.enabled", {{"value", true}, {"reason", "on"}}).status, 200);
  host_.clock().advance(86400000);
  EXPECT_EQ(seen("ops.enabled")["enabled"], true);
  ASSERT_EQ(call("PATCH", "/ops.enabled", {{"reason", "a minute more"}, {"expires_ms", host_.clock().now_ms() + 60000}})
                .status,
            200);
  EXPECT_EQ(seen("ops.enabled")["enabled"], true);
  host_.clock().advance(60000);
  EXPECT_EQ(seen("ops.enabled")["enabled"], false);
}

TEST_P(FlagsApi, APluginsDeclaredFlagsAreOverriddenAndResetNeverDeleted) {
  Json f = flag("consumer.fast-path");
  EXPECT_EQ(f["origin"], "plugin");
  EXPECT_EQ(f["plugin"], "flag-consumer");
  EXPECT_EQ(f["owner"], "team-core");
  EXPECT_EQ(f["type"], "boolean");
  EXPECT_EQ(flag("consumer.banner")["owner"], "flag-consumer") << "the plugin, when it names no owner";
  EXPECT_EQ(flag("consumer.batch")["value"], 50);
  EXPECT_EQ(seen("consumer.banner")["string"], "hello");
  EXPECT_EQ(json(call("GET", "?origin=plugin"))["flags"].size(), 3u);
  EXPECT_EQ(json(call("GET", "?origin=operator"))["flags"].size(), 0u);
  EXPECT_EQ(json(call("GET", "?type=number"))["flags"].size(), 1u);
  EXPECT_EQ(json(call("GET", "?text=BANNER"))["flags"].size(), 1u);
  EXPECT_EQ(json(call("GET", "?owner=team-core"))["flags"].size(), 1u);
  EXPECT_EQ(audit("feature_flags.declare").size(), 3u);
  EXPECT_EQ(audit("feature_flags.declare")[0].user_id, "system:flag-consumer");

  ASSERT_EQ(call("PATCH", "/consumer.fast-path", {{"value", true}, {"reason", "try it"}}).status, 200);
  EXPECT_EQ(seen("consumer.fast-path")["enabled"], true);
  auto r = call("DELETE", "/consumer.fast-path?reason=gone");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json(r)["detail"],
            "id: flag 'consumer.fast-path' is declared by plugin 'flag-consumer' and cannot be deleted; override it "
            "or reset it");
  r = call("PATCH", "/consumer.batch", {{"default", 10}, {"reason", "r"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["detail"].get<std::string>().rfind("default: flag 'consumer.batch' is declared by plugin", 0), 0u);
  ASSERT_EQ(call("POST", "/consumer.fast-path/reset", {{"reason", "done"}}).status, 200);
  EXPECT_EQ(seen("consumer.fast-path")["enabled"], false);

  // Declared again (a restart): unchanged declarations change nothing and
  // keep the operator's override; a new default is taken.
  ASSERT_EQ(call("PATCH", "/consumer.batch", {{"value", 80}, {"reason", "load"}}).status, 200);
  Json again = Json::parse(kDeclared);
  Json out = declare(again);
  EXPECT_EQ(out["status"], OPK_OK) << out.dump();
  EXPECT_EQ(audit("feature_flags.declare").size(), 3u);
  again[2]["default"] = 60;
  EXPECT_EQ(declare(again)["status"], OPK_OK);
  f = flag("consumer.batch");
  EXPECT_EQ(f["default"], 60);
  EXPECT_EQ(f["value"], 80) << "the override holds";
  EXPECT_EQ(audit("feature_flags.declare").size(), 4u);
}

TEST_P(FlagsApi, BadOrClashingDeclarationsAreRefusedNamingTheFieldAndWriteNothing) {
  create("ops.owned", "boolean", false);
  struct Case {
    Json flags;
    int status;
    std::string message;
  };
  const Json good = {{"id", "consumer.new"}, {"default", true}, {"description", "d"}};
  auto with = [&](const char* key, const Json& v) {
    Json j = good;
    if (v.is_discarded())
      j.erase(key);
    else
      j[key] = v;
    return j;
  };
  const Json drop = Json(Json::value_t::discarded);
  for (const Case& c : {
           Case{Json::object(), OPK_ERR_INVALID_ARGUMENT, "flags: must be an array of flags"},
           Case{Json("not json"), OPK_ERR_INVALID_ARGUMENT, "flags: must be an array of flags"},
           Case{{good, with("default", "yes")},
                OPK_ERR_INVALID_ARGUMENT,
                "flags[1].id: 'consumer.new' is declared twice"},
           Case{{good, with("id", "Bad Id")},
                OPK_ERR_INVALID_ARGUMENT,
                "flags[1].id: 'Bad Id' is not a flag id (a lower-case letter or digit, then up to 127 of a-z 0-9 . _ "
                "-)"},
           Case{{with("default", drop)}, OPK_ERR_INVALID_ARGUMENT, "flags[0].default: is required"},
           Case{{with("default", Json::array())},
                OPK_ERR_INVALID_ARGUMENT,
                "flags[0].default: must be a boolean, a string or a number"},
           Case{{with("type", "number")},
                OPK_ERR_INVALID_ARGUMENT,
                "flags[0].default: the flag is a number, not a boolean"},
           Case{{with("description", drop)},
                OPK_ERR_INVALID_ARGUMENT,
                "flags[0].description: must be a string of 1 to 1,000 bytes"},
           Case{{with("owner", 3)}, OPK_ERR_INVALID_ARGUMENT, "flags[0].owner: must be a string of 1 to 200 bytes"},
           Case{
               {with("colour", "red")}, OPK_ERR_INVALID_ARGUMENT, "flags[0].colour: is not a field of a declared flag"},
           Case{{good, with("id", "ops.owned")}, OPK_ERR_CONFLICT, "flags[1].id: flag 'ops.owned' is an operator's"},
           Case{{good, {{"id", "consumer.fast-path"}, {"default", "on"}, {"description", "d"}}},
                OPK_ERR_CONFLICT,
                "flags[1].type: flag 'consumer.fast-path' is a boolean already, not a string"},
       }) {
    const Json out = declare(c.flags);
    EXPECT_EQ(out["status"], c.status) << c.flags.dump() << out.dump();
    EXPECT_EQ(out["message"], c.message) << c.flags.dump();
  }
  EXPECT_EQ(call("GET", "/consumer.new").status, 404) << "all or none: nothing written";
  EXPECT_EQ(flag("ops.owned")["origin"], "operator");
}

TEST_P(FlagsApi, BadRequestsAreNamedAndLoseNothing) {
  create("ops.enabled", "boolean", false);
  struct Case {
    std::string method, target, body;
    int status;
    std::string detail;
  };
  for (
      const Case& c : {
          Case{"PATCH", "/ops.enabled", "", 400, "request: a JSON body is required"},
          Case{"PATCH", "/ops.enabled", "{", 400, "request: the body is not valid JSON"},
          Case{"PATCH", "/ops.enabled", "[]", 400, "request: the body must be a JSON object"},
          Case{"PATCH", "/ops.enabled", R"({"reason": "r", "colour": 1})", 400,
               "colour: is not a field of this request"},
          Case{"PATCH", "/ops.enabled", R"({"reason": "r"})", 400,
               "request: nothing to change (value, expires_ms, description, owner or default)"},
          Case{"PATCH", "/ops.enabled", R"({"reason": "r", "value": null})", 400,
               "value: must be a boolean (to go back to the default, reset the flag)"},
          Case{"PATCH", "/nope", R"({"reason": "r", "value": true})", 404, "id: no flag 'nope'"},
          Case{"POST", "/nope/reset", R"({"reason": "r"})", 404, "id: no flag 'nope'"},
          Case{"DELETE", "/nope?reason=r", "", 404, "id: no flag 'nope'"},
          Case{"POST", "",
               R"({"id": "ops.enabled", "type": "boolean", "default": true, "description": "d", "reason": "r"})", 409,
               "id: flag 'ops.enabled' exists already"},
          Case{"POST", "", R"({"id": "-x", "type": "boolean", "default": true, "description": "d", "reason": "r"})",
               400, "id: '-x' is not a flag id (a lower-case letter or digit, then up to 127 of a-z 0-9 . _ -)"},
          Case{"POST", "", R"({"type": "boolean", "default": true, "description": "d", "reason": "r"})", 400,
               "id: is required"},
          Case{"POST", "", R"({"id": "a", "type": "boolean", "default": true, "reason": "r"})", 400,
               "description: must be a string of 1 to 1,000 bytes"},
          Case{
              "POST", "",
              R"({"id": "a", "type": "boolean", "default": true, "description": "d", "reason": "r", "expires_ms": 9999999999999})",
              400, "expires_ms: needs a value to expire"},
          Case{"GET", "?type=list", "", 400, "type: must be boolean, string or number, not 'list'"},
          Case{"GET", "?origin=x", "", 400, "origin: must be plugin or operator, not 'x'"},
          Case{"GET", "?state=x", "", 400, "state: must be overridden or default, not 'x'"},
      }) {
    auto r = host_.request(c.method, "/api/v1/feature-flags" + c.target, c.body, kAdmin);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body << " " << r.body;
    EXPECT_EQ(json(r)["detail"], c.detail) << c.method << " " << c.target << " " << c.body;
  }
  const Json f = flag("ops.enabled");
  EXPECT_EQ(f["revision"], 1) << "nothing changed: " << f.dump();
  EXPECT_EQ(f["value"], false);
  EXPECT_EQ(audit("feature_flags.update").size(), 0u);
}

TEST_P(FlagsApi, PermissionsReadAndManage) {
  // Without a grant, no route; feature_flags.read lists and reads but
  // changes nothing.
  EXPECT_EQ(call("GET", "", nullptr, kTenantAdmin).status, 403);
  EXPECT_EQ(host_.request("POST", "/ofrep/v1/evaluate/flags", "{}", kTenantAdmin).status, 403);
  EXPECT_EQ(call("GET", "", nullptr, kReader).status, 200);
  EXPECT_EQ(call("GET", "/consumer.batch", nullptr, kReader).status, 200);
  EXPECT_EQ(host_.request("POST", "/ofrep/v1/evaluate/flags/consumer.batch", "{}", kReader).status, 200);
  EXPECT_EQ(call("PATCH", "/consumer.batch", {{"value", 1}, {"reason", "r"}}, kReader).status, 403);
  EXPECT_EQ(call("POST", "/consumer.batch/reset", {{"reason", "r"}}, kReader).status, 403);
  EXPECT_EQ(call("POST", "", {{"id", "a"}}, kReader).status, 403);
  EXPECT_EQ(call("DELETE", "/consumer.batch?reason=r", nullptr, kReader).status, 403);
  host_.grant("DistributorAdministrator", "feature_flags.manage");
  EXPECT_EQ(call("PATCH", "/consumer.batch", {{"value", 1}, {"reason", "r"}}, kReader).status, 200);
  EXPECT_EQ(flag("consumer.batch")["updated_by"], "rita");
}

TEST_P(FlagsApi, TheCppViewDeclaresAndReadsAsTheCTableDoes) {
  const Json flags = {{{"id", "consumer.cpp-on"}, {"default", true}, {"description", "From C++"}, {"owner", "team"}},
                      {{"id", "consumer.cpp-text"}, {"default", std::string(300, 'x')}, {"description", "Long"}}};
  auto r = host_.run("flag-declare", Json{{"flags_json", flags.dump()}, {"cpp", true}}.dump());
  ASSERT_EQ(r.status, OPK_OK) << r.error;
  EXPECT_EQ(Json::parse(r.output_json)["status"], OPK_OK) << r.output_json;
  EXPECT_EQ(flag("consumer.cpp-on")["owner"], "team");
  EXPECT_EQ(flag("consumer.cpp-text")["owner"], "flag-consumer");
  EXPECT_EQ(seen("consumer.cpp-on")["enabled"], true);
  EXPECT_EQ(seen("consumer.cpp-text")["string"], std::string(300, 'x')) << "longer than the view's first buffer";
  EXPECT_EQ(seen("consumer.cpp-on")["number"], -1) << "a boolean read as a number: the fallback";
  // A refusal comes back with the extension's message.
  const Json bad = {{{"id", "consumer.cpp-bad"}, {"default", nullptr}, {"description", "d"}}};
  r = host_.run("flag-declare", Json{{"flags_json", bad.dump()}, {"cpp", true}}.dump());
  EXPECT_EQ(Json::parse(r.output_json)["message"], "flags[0].default: must be a boolean, a string or a number");
}

TEST_P(FlagsApi, AnOverrideHeldLongWithoutAnExpiryRaisesTheStaleAlert) {
  create("ops.kept", "boolean", false);
  create("ops.timed", "boolean", false);
  const int64_t day = 86400000;
  ASSERT_EQ(call("PATCH", "/ops.kept", {{"value", true}, {"reason", "incident 7"}}).status, 200);
  ASSERT_EQ(
      call("PATCH", "/ops.timed", {{"value", true}, {"reason", "r"}, {"expires_ms", host_.clock().now_ms() + 90 * day}})
          .status,
      200);
  auto e = host_.evaluate("feature-flags-stale");
  ASSERT_EQ(e.status, OPK_OK) << e.error;
  EXPECT_TRUE(e.raised.empty()) << "fresh overrides are not stale";
  host_.clock().advance(30 * day);
  e = host_.evaluate("feature-flags-stale");
  ASSERT_EQ(e.status, OPK_OK) << e.error;
  ASSERT_EQ(e.raised.size(), 1u) << "the one without an expiry";
  EXPECT_EQ(e.raised[0].related_type, "feature-flag");
  EXPECT_EQ(e.raised[0].related_id, "ops.kept");
  EXPECT_EQ(e.raised[0].scope, "platform");
  EXPECT_EQ(e.raised[0].title, "Feature flag ops.kept overridden for 30 days");
  EXPECT_NE(e.raised[0].message.find("since admin set it without an expiry (\"incident 7\")"), std::string::npos)
      << e.raised[0].message;
  ASSERT_EQ(call("POST", "/ops.kept/reset", {{"reason", "done"}}).status, 200);
  e = host_.evaluate("feature-flags-stale");
  EXPECT_TRUE(e.raised.empty()) << "reset: not raised again, so the full sweep closes it";
}

TEST_P(FlagsApi, OfrepAnswersItsShapesAndErrors) {
  const std::string base = "/ofrep/v1/evaluate/flags";
  auto r = host_.request("POST", base + "/consumer.batch", R"({"context": {"targetingKey": "u1"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r), (Json{{"key", "consumer.batch"},
                           {"value", 50},
                           {"reason", "DEFAULT"},
                           {"variant", "default"},
                           {"metadata", {{"type", "number"}, {"owner", "flag-consumer"}}}}));
  ASSERT_EQ(call("PATCH", "/consumer.batch", {{"value", 70}, {"reason", "r"}}).status, 200);
  r = host_.request("POST", base + "/consumer.batch", "");
  EXPECT_EQ(json(r)["value"], 70);
  EXPECT_EQ(json(r)["reason"], "STATIC");
  EXPECT_EQ(json(r)["variant"], "override");
  r = host_.request("POST", base + "/nope", "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json(r)["errorCode"], "FLAG_NOT_FOUND");
  EXPECT_EQ(json(r)["key"], "nope");
  r = host_.request("POST", base + "/consumer.batch", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["errorCode"], "PARSE_ERROR");
  r = host_.request("POST", base + "/consumer.batch", R"({"context": 5})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json(r)["errorCode"], "INVALID_CONTEXT");

  r = host_.request("POST", base, "{}");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json flags = json(r)["flags"];
  ASSERT_EQ(flags.size(), 3u);
  EXPECT_EQ(flags[0]["key"], "consumer.banner");
  EXPECT_EQ(flags[1]["value"], 70);
  const std::string etag = r.header("etag");
  ASSERT_FALSE(etag.empty());
  r = host_.request("POST", base, "{}", kAdmin, {{"if-none-match", etag}});
  EXPECT_EQ(r.status, 304);
  ASSERT_EQ(call("POST", "/consumer.batch/reset", {{"reason", "r"}}).status, 200);
  r = host_.request("POST", base, "{}", kAdmin, {{"if-none-match", etag}});
  EXPECT_EQ(r.status, 200) << "changed: a new ETag";
  EXPECT_NE(r.header("etag"), etag);
}

}  // namespace
}  // namespace opk::test
