// The C++ layer's typed helpers: settings read and checked with errors that
// name the key, the value and what was expected; parameters read as typed
// values; JSON built with escaping.
#include <gtest/gtest.h>
#include <opskernel/opk.hpp>

#include <map>

namespace {

// A settings source with the interface of opk::Host::config.
struct FakeHost {
  std::map<std::string, std::string, std::less<>> values;
  std::optional<std::string> config(std::string_view key) const {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
};

TEST(Settings, FallbacksWhenUnset) {
  FakeHost h;
  opk::Settings s(h, "p");
  EXPECT_EQ(s.integer("n", 7, 1, 10), 7);
  EXPECT_EQ(s.number("x", 0.5, 0, 1), 0.5);
  EXPECT_TRUE(s.boolean("b", true));
  EXPECT_EQ(s.text("t", "dflt"), "dflt");
  EXPECT_EQ(s.choice("c", "a", {"a", "b"}), "a");
  EXPECT_EQ(s.duration_ms("d", 1500, 0, 10'000), 1500);
  EXPECT_EQ(s.list("l", {"x"}), std::vector<std::string>{"x"});
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(s.status());
}

TEST(Settings, ValuesAreParsedAndRangesKept) {
  FakeHost h{{{"n", "10"},
              {"x", "0.25"},
              {"b", "off"},
              {"c", "b"},
              {"d1", "30s"},
              {"d2", "250ms"},
              {"d3", "2h"},
              {"d4", "1500"},
              {"l", " a, b ,,c "}}};
  opk::Settings s(h, "p");
  EXPECT_EQ(s.integer("n", 7, 1, 10), 10);
  EXPECT_EQ(s.number("x", 0.5, 0, 1), 0.25);
  EXPECT_FALSE(s.boolean("b", true));
  EXPECT_EQ(s.choice("c", "a", {"a", "b"}), "b");
  EXPECT_EQ(s.duration_ms("d1", 0, 0, 86'400'000), 30'000);
  EXPECT_EQ(s.duration_ms("d2", 0, 0, 86'400'000), 250);
  EXPECT_EQ(s.duration_ms("d3", 0, 0, 86'400'000), 7'200'000);
  EXPECT_EQ(s.duration_ms("d4", 0, 0, 86'400'000), 1500);
  EXPECT_EQ(s.list("l", {}), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(s.ok()) << s.status().message();
}

TEST(Settings, TheFirstBadValueIsNamedWithWhatWasExpected) {
  struct Case {
    std::string value;
    std::function<void(opk::Settings&)> read;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"11", [](opk::Settings& s) { s.integer("k", 1, 1, 10); }, "expected a whole number from 1 to 10"},
      {"3x", [](opk::Settings& s) { s.integer("k", 1, 1, 10); }, "expected a whole number from 1 to 10"},
      {"", [](opk::Settings& s) { s.integer("k", 1, 1, 10); }, "expected a whole number from 1 to 10"},
      {"99999999999999999999", [](opk::Settings& s) { s.integer("k", 1, 1, 10); }, "a whole number"},
      {"nan", [](opk::Settings& s) { s.number("k", 1, 0, 2); }, "expected a number from 0 to 2"},
      {"maybe", [](opk::Settings& s) { s.boolean("k", true); }, "expected true or false"},
      {"c",
       [](opk::Settings& s) {
         s.choice("k", "a", {"a", "b"});
       },
       "expected one of a, b"},
      {"5 minutes", [](opk::Settings& s) { s.duration_ms("k", 0, 0, 3'600'000); }, "such as 250ms, 30s"},
      {"2h", [](opk::Settings& s) { s.duration_ms("k", 0, 0, 3'600'000); }, "from 0 ms to 3600000 ms"},
      {"-5s", [](opk::Settings& s) { s.duration_ms("k", 0, 0, 3'600'000); }, "a duration"},
      {"", [](opk::Settings& s) { s.text("k", "x", /*non_empty=*/true); }, "expected a non-empty text"},
  };
  for (const auto& c : cases) {
    FakeHost h{{{"k", c.value}}};
    opk::Settings s(h, "flags");
    c.read(s);
    ASSERT_FALSE(s.ok()) << c.value;
    EXPECT_EQ(s.status().code(), OPK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(s.status().message().rfind("[plugin.flags] k = \"" + c.value + "\": ", 0), 0u) << s.status().message();
    EXPECT_NE(s.status().message().find(c.expected), std::string::npos) << s.status().message();
  }
}

TEST(Settings, OnlyTheFirstErrorIsKeptAndFallbacksAreReturned) {
  FakeHost h{{{"a", "x"}, {"b", "y"}}};
  opk::Settings s(h, "p");
  EXPECT_EQ(s.integer("a", 3, 0, 9), 3);
  EXPECT_EQ(s.integer("b", 4, 0, 9), 4);
  s.invalid("c", "z", "never shown");
  EXPECT_EQ(s.status().message(), "[plugin.p] a = \"x\": expected a whole number from 0 to 9");
}

// A run context carrying only parameters.
opk_run_context context_with(const char* params) {
  opk_run_context c{};
  c.struct_size = sizeof c;
  c.params_json = params;
  return c;
}

TEST(Params, TypedValuesWithFallbacksAndNamedTypeErrors) {
  const opk_run_context c = context_with(R"({"tier":"daily","keep":7,"dry":true,"ratio":0.5,"none":null})");
  const opk::RunContext run(&c);
  EXPECT_EQ(run.param<std::string>("tier", "hourly"), "daily");
  EXPECT_EQ(run.param<int>("keep", 1), 7);
  EXPECT_TRUE(run.param<bool>("dry", false));
  EXPECT_EQ(run.param<double>("ratio", 0), 0.5);
  EXPECT_EQ(run.param<int>("none", 3), 3);
  EXPECT_EQ(run.param<std::string>("missing", "x"), "x");
  EXPECT_EQ(run.params()["keep"], 7);
  try {
    run.param<int>("tier", 0);
    FAIL() << "a string read as an int";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("parameter 'tier'"), std::string::npos) << e.what();
  }
}

TEST(Params, NoneOrNotAnObjectIsAnEmptyObject) {
  for (const char* p : {static_cast<const char*>(nullptr), "[]", "not json"}) {
    const opk_run_context c = context_with(p);
    const opk::RunContext run(&c);
    EXPECT_TRUE(run.params().is_object());
    EXPECT_TRUE(run.params().empty());
  }
}

TEST(Output, DocumentsAreEscaped) {
  std::string captured;
  opk_run_context c = context_with("{}");
  c.host_data = reinterpret_cast<opk_host_data*>(&captured);
  c.set_output_json = [](const opk_run_context* self, const char* json) -> opk_status {
    *reinterpret_cast<std::string*>(self->host_data) = json;
    return OPK_OK;
  };
  const opk::RunContext run(&c);
  run.set_output({{"file", "/backups/a\"b\\c\n.db"}, {"bytes", 12}});
  const opk::Json back = opk::Json::parse(captured);
  EXPECT_EQ(back["file"], "/backups/a\"b\\c\n.db");
  EXPECT_EQ(back["bytes"], 12);
}

}  // namespace
