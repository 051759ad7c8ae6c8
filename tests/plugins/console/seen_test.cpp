// The console users' seen marks (plugins/console/seen.h) on a real kernel
// over real HTTP, on both stores: each user reads and sets only their own,
// a job's mark only moves forward, the read runs kept are bounded, and bad
// input is refused naming the field with nothing stored.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include "support/admin_feature.h"

namespace opk {
namespace {

class SeenMarks : public test::FeatureKernelTest<::testing::TestWithParam<std::string>> {
 protected:
  void SetUp() override {
    configure({test::bundled("console")});
    ASSERT_NO_FATAL_FAILURE(use_backend(GetParam()));
    ASSERT_NO_FATAL_FAILURE(start());
    pat_ = tokens_["pat"];
    ann_ = tokens_["ursula"];  // a TenantUser
  }

  test::Reply post(const std::string& token, const std::string& body) {
    return test::http_request(port_, "POST", "/api/v1/console/seen", token, body);
  }
  // The caller's marks as "runs: 5 3; jobs: a=1 b=2".
  std::string marks(const std::string& token) {
    auto r = test::http_request(port_, "GET", "/api/v1/console/seen", token);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    auto o = r.json();
    std::string out = "runs:";
    auto runs = o->getArray("runs");
    for (size_t i = 0; i < runs->size(); ++i) out += " " + runs->get(i).toString();
    out += "; jobs:";
    auto jobs = o->getObject("jobs");
    for (const auto& k : jobs->getNames()) out += " " + k + "=" + jobs->get(k).toString();
    return out;
  }

  std::string pat_, ann_;
};

INSTANTIATE_TEST_SUITE_P(Backends, SeenMarks, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(SeenMarks, EachUserKeepsTheirOwnAndBadInputStoresNothing) {
  EXPECT_EQ(marks(pat_), "runs:; jobs:");
  auto r = post(pat_, R"({"runs": [5, 3, 5], "jobs": {"nightly": 10, "type:hello": 4}})");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(marks(pat_), "runs: 5 3; jobs: nightly=10 type:hello=4");
  EXPECT_EQ(marks(ann_), "runs:; jobs:");  // another user's marks are not theirs
  ASSERT_EQ(post(ann_, R"({"jobs": {"nightly": 2}})").status, 204);
  EXPECT_EQ(marks(ann_), "runs:; jobs: nightly=2");

  // A job's mark only moves forward.
  ASSERT_EQ(post(pat_, R"({"jobs": {"nightly": 7}})").status, 204);
  EXPECT_EQ(marks(pat_), "runs: 5 3; jobs: nightly=10 type:hello=4");
  ASSERT_EQ(post(pat_, R"({"jobs": {"nightly": 12}, "runs": [9]})").status, 204);
  EXPECT_EQ(marks(pat_), "runs: 9 5 3; jobs: nightly=12 type:hello=4");

  // Bad input is named; nothing of the request is stored.
  for (auto [body, field] : std::vector<std::pair<const char*, const char*>>{
           {"", "body"},
           {"not json", "not valid JSON"},
           {"[1]", "JSON object"},
           {R"({"runs": [11, "x"]})", "runs[1]"},
           {R"({"runs": [11, 0]})", "runs[1]"},
           {R"({"runs": 11})", "runs"},
           {R"({"jobs": {"nightly": 20, "weekly": -1}})", "jobs.weekly"},
           {R"({"jobs": []})", "jobs"},
           {R"({"jobs": {"nightly": 20, "": 21}})", "job key is empty"},
           {R"({"jobs": {"nightly": 20, "Night ly": 21}})", "jobs.Night ly: is not a job key"},
           {R"({"jobs": {"type:": 21}})", "jobs.type:: is not a job key"},
           {R"({"runs": [12], "user": "ann"})", "user"},
           {R"({})", "no marks"}}) {
    r = post(pat_, body);
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << body << ": " << r.body;
  }
  // A job key too long is named by its start, cut before a character (the
  // answer stays valid JSON).
  std::string long_key(39, 'k');
  for (int i = 0; i < 150; ++i) long_key += "\xc3\xa9";  // é
  r = post(pat_, "{\"jobs\": {\"" + long_key + "\": 22}}");
  EXPECT_EQ(r.status, 400) << r.body;
  auto problem = r.json();
  ASSERT_TRUE(problem) << r.body;
  const std::string detail = problem->getValue<std::string>("detail");
  EXPECT_NE(detail.find("jobs." + std::string(39, 'k') + "...: the job key is longer than 300 bytes"),
            std::string::npos)
      << detail;
  EXPECT_EQ(marks(pat_), "runs: 9 5 3; jobs: nightly=12 type:hello=4");
  EXPECT_EQ(test::http_request(port_, "GET", "/api/v1/console/seen").status, 401);
  EXPECT_EQ(test::http_request(port_, "POST", "/api/v1/console/seen", "", R"({"runs": [1]})").status, 401);

  // The read runs kept are bounded: the oldest are forgotten.
  for (int batch = 0; batch < 6; ++batch) {
    std::string ids;
    for (int i = 1; i <= 1000; ++i) ids += (ids.empty() ? "" : ",") + std::to_string(100 + batch * 1000 + i);
    ASSERT_EQ(post(pat_, "{\"runs\": [" + ids + "]}").status, 204);
  }
  auto all = test::http_request(port_, "GET", "/api/v1/console/seen", pat_).json()->getArray("runs");
  ASSERT_EQ(all->size(), 5000u);
  EXPECT_EQ(all->getElement<int64_t>(0), 6100);
  EXPECT_EQ(all->getElement<int64_t>(4999), 1101);

  // So are the job marks: those least recently set are forgotten.
  for (int batch = 0; batch < 3; ++batch) {
    std::string keys;
    for (int i = 1; i <= 1000; ++i)
      keys += (keys.empty() ? "\"" : ",\"") + std::string(batch == 2 && i % 2 ? "type:t" : "j") +
              std::to_string(batch * 1000 + i) + "\": " + std::to_string(batch * 1000 + i);
    ASSERT_EQ(post(pat_, "{\"jobs\": {" + keys + "}}").status, 204);
  }
  auto kept = test::http_request(port_, "GET", "/api/v1/console/seen", pat_).json()->getObject("jobs");
  EXPECT_EQ(kept->size(), 2000u);
  EXPECT_FALSE(kept->has("nightly"));
  EXPECT_FALSE(kept->has("j1000"));
  EXPECT_EQ(kept->getValue<int64_t>("j1001"), 1001);
  EXPECT_EQ(kept->getValue<int64_t>("type:t2001"), 2001);
  EXPECT_EQ(kept->getValue<int64_t>("j3000"), 3000);
}

}  // namespace
}  // namespace opk
