#include "jobs/params.h"

#include <gtest/gtest.h>

namespace opk::jobs {
namespace {

const char* kSchema = R"({"type":"object","additionalProperties":false,
  "properties":{"steps":{"type":"integer","minimum":0,"maximum":10},"name":{"type":"string"},
                "window":{"type":"object","properties":{"days":{"type":"integer"}}}},
  "required":["steps"]})";

TEST(Params, AcceptsValidParameters) {
  EXPECT_TRUE(validate_params(kSchema, R"({"steps":3,"name":"x"})"));
  EXPECT_TRUE(validate_params("", R"({"anything":1})"));
  EXPECT_TRUE(validate_params("", ""));  // no parameters at all
}

TEST(Params, ErrorsNameTheField) {
  struct Case {
    const char* params;
    const char* words;
  } cases[] = {
      {R"({"steps":42})", "parameters: steps:"},
      {R"({"steps":"3"})", "parameters: steps:"},
      {R"({"steps":1,"window":{"days":"x"}})", "parameters: window.days:"},
      {R"({"name":"x"})", "steps"},  // required
      {R"({"steps":1,"extra":true})", "extra"},
      {R"([1,2])", "must be a JSON object"},
      {R"({"steps":)", "not valid JSON"},
  };
  for (const auto& c : cases) {
    Status s = validate_params(kSchema, c.params);
    ASSERT_FALSE(s) << c.params;
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(s.message().find(c.words), std::string::npos) << c.params << " -> " << s.message();
  }
}

}  // namespace
}  // namespace opk::jobs
