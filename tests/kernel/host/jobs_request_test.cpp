// Reading the fields of an opk.jobs/1 request: every refusal names its field
// and what is wrong, and the audit target of an action's request.
#include "host/jobs_request.h"

#include <gtest/gtest.h>

namespace opk::host {
namespace {

JobsRequest parsed(const std::string& text) {
  JobsRequest r;
  Status s = r.parse(text);
  EXPECT_TRUE(s) << s.message();
  return r;
}

TEST(JobsRequest, ARequestMustBeAJsonObject) {
  JobsRequest r;
  EXPECT_TRUE(r.parse(""));
  EXPECT_FALSE(r.has("anything"));
  Status s = r.parse("[1]");
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message(), "request: expected a JSON object");
  s = r.parse("{\"a\":");
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message().rfind("request: not valid JSON: ", 0), 0u) << s.message();
}

TEST(JobsRequest, AbsentAndNullFieldsKeepTheirDefaultUnlessRequired) {
  const auto r = parsed(R"({"limit": null})");
  int64_t limit = 50;
  EXPECT_TRUE(r.integer("limit", &limit, 1, 500));
  EXPECT_EQ(limit, 50);
  std::string id = "kept";
  EXPECT_TRUE(r.str("id", &id));
  EXPECT_EQ(id, "kept");
  Status s = r.str("id", &id, true);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message(), "id: required");
  s = r.integer("run_id", &limit, 1, 9, true);
  EXPECT_EQ(s.message(), "run_id: required");
}

TEST(JobsRequest, WholeNumbersAreRangeCheckedPastInt64Too) {
  const auto r = parsed(R"({"a": 0, "b": 501, "c": "ten", "d": 1.5, "e": 9223372036854775808,
                            "f": -9223372036854775808, "g": 500})");
  int64_t n = 7;
  EXPECT_EQ(r.integer("a", &n, 1, 500).message(), "a: 0 is out of range 1..500");
  EXPECT_EQ(r.integer("b", &n, 1, 500).message(), "b: 501 is out of range 1..500");
  EXPECT_EQ(r.integer("c", &n, 1, 500).message(), "c: expected a whole number");
  EXPECT_EQ(r.integer("d", &n, 1, 500).message(), "d: expected a whole number");
  Status s = r.integer("e", &n, 0, INT64_MAX);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message(), "e: 9223372036854775808 is out of range 0..9223372036854775807");
  EXPECT_EQ(r.integer("f", &n, 0, INT64_MAX).message(),
            "f: -9223372036854775808 is out of range 0..9223372036854775807");
  EXPECT_EQ(n, 7) << "a refused number leaves the output alone";
  EXPECT_TRUE(r.integer("g", &n, 1, 500));
  EXPECT_EQ(n, 500);
}

TEST(JobsRequest, ControlCharactersOtherThanTabAndLineBreaksAreNamed) {
  const auto r = parsed(R"({"nul": "a\u0000b", "bell": "\u0007", "del": "x\u007f", "ok": "a\tb\r\nc", "num": 5})");
  std::string v;
  EXPECT_EQ(r.str("nul", &v).message(), "nul: contains a control character (U+0000)");
  EXPECT_EQ(r.str("bell", &v).message(), "bell: contains a control character (U+0007)");
  EXPECT_EQ(r.str("del", &v).message(), "del: contains a control character (U+007F)");
  EXPECT_EQ(r.str("num", &v).message(), "num: expected a string");
  EXPECT_TRUE(r.str("ok", &v));
  EXPECT_EQ(v, "a\tb\r\nc");
}

TEST(JobsRequest, BooleansObjectsAndArraysAreTyped) {
  const auto r = parsed(R"({"yes": true, "word": "yes", "params": {"a": 1}, "list": [1], "text": "x"})");
  bool b = false;
  EXPECT_TRUE(r.boolean("yes", &b));
  EXPECT_TRUE(b);
  EXPECT_EQ(r.boolean("word", &b).message(), "word: expected true or false");
  std::optional<std::string> obj;
  EXPECT_TRUE(r.object_text("params", &obj));
  EXPECT_EQ(obj, std::optional<std::string>("{\"a\":1}"));
  EXPECT_EQ(r.object_text("list", &obj).message(), "list: expected a JSON object");
  EXPECT_TRUE(r.array("list"));
  EXPECT_FALSE(r.array("text"));
  EXPECT_FALSE(r.array("absent"));
}

TEST(JobsRequest, TheAuditTargetIsTheJobTheTypeOrTheRun) {
  EXPECT_EQ(audit_target(R"({"id": "nightly", "job_type": "hello"})"), "nightly");
  EXPECT_EQ(audit_target(R"({"job_id": "nightly", "job_type": "hello"})"), "nightly");
  EXPECT_EQ(audit_target(R"({"job_type": "hello"})"), "hello");
  EXPECT_EQ(audit_target(R"({"run_id": 42, "reason": "x"})"), "run 42");
  EXPECT_EQ(audit_target(R"({"run_id": 0})"), "");
  EXPECT_EQ(audit_target("not json"), "");
  EXPECT_EQ(audit_target(""), "");
}

}  // namespace
}  // namespace opk::host
