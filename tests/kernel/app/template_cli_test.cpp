// `opskernel template render` as an operator uses it: the rendering on
// stdout, template errors as FILE:line:column on stderr with exit 1, and a
// missing file or bad data named with exit 2.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "support/test_util.h"

namespace opk {
namespace {

using test::TempDir;

struct Result {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the kernel binary with `args`, stdout and stderr apart.
Result run(const TempDir& dir, const std::string& args) {
  const std::string err_file = (dir.path() / "stderr.txt").string();
  const std::string cmd = std::string(OPK_KERNEL_BINARY) + " " + args + " 2>" + err_file;
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = test::read_file(err_file);
  return r;
}

class TemplateCli : public ::testing::Test {
 protected:
  std::string file(const std::string& name, const std::string& text) {
    const auto p = dir_.path() / name;
    test::write_file(p, text);
    return p.string();
  }
  TempDir dir_;
};

TEST_F(TemplateCli, RendersTheTemplateOverTheData) {
  const std::string tpl = file("report.liquid",
                               "Run {{ run.id }} {{ run.outcome | upcase }}\n"
                               "{% for s in run.steps %}- {{ s.name }}: {{ s.ms | divided_by: 1000.0 }} s\n{% endfor %}"
                               "{{ run.note | default: 'no note' }}");
  const std::string data = file("data.json", R"({"run": {"id": 7, "outcome": "ok",
      "steps": [{"name": "dump", "ms": 1500}, {"name": "upload", "ms": 250}]}})");
  Result r = run(dir_, "template render " + tpl + " --data " + data);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Run 7 OK\n- dump: 1.5 s\n- upload: 0.25 s\nno note");
  EXPECT_EQ(r.err, "");
}

TEST_F(TemplateCli, WithoutDataVariablesAreEmpty) {
  Result r = run(dir_, "template render " + file("t.liquid", "[{{ x }}]{{ 'now' | date: '%Y' | size }}"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "[]4");
}

TEST_F(TemplateCli, NeedsNoConfiguration) {
  Result r =
      run(dir_, "--config " + (dir_.path() / "missing.conf").string() + " template render " + file("t.liquid", "ok"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ok");
}

TEST_F(TemplateCli, EscapeHtmlAndStrictVariables) {
  const std::string tpl = file("t.liquid", "<p>{{ name }}</p>");
  const std::string data = file("d.json", R"({"name": "<Tom & Jerry>"})");
  Result r = run(dir_, "template render " + tpl + " --data " + data + " --escape-html");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "<p>&lt;Tom &amp; Jerry&gt;</p>");
  r = run(dir_, "template render " + tpl + " --data " + data);
  EXPECT_EQ(r.out, "<p><Tom & Jerry></p>");
  const std::string typo = file("typo.liquid", "Hello\n{{ nmae }}");
  r = run(dir_, "template render " + typo + " --data " + data + " --strict-variables");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, typo + ":2:4: undefined variable 'nmae'\n");
  r = run(dir_, "template render " + typo + " --data " + data);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello\n");
}

TEST_F(TemplateCli, ParseAndRenderErrorsNameFileLineAndColumn) {
  const std::string bad = file("bad.liquid", "ok\n{% for i in list %}\n  {% endfo %}\n");
  Result r = run(dir_, "template render " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, bad + ":3:6: unknown tag 'endfo'\n");
  const std::string filter = file("filter.liquid", "{{ x | upcase | nope }}");
  r = run(dir_, "template render " + filter);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, filter + ":1:17: unknown filter 'nope'\n");
  const std::string div = file("div.liquid", "a\n{{ 10 | divided_by: n }}");
  r = run(dir_, "template render " + div + " --data " + file("n.json", R"({"n": 0})"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, div + ":2:9: divided_by: divided by 0\n");
}

TEST_F(TemplateCli, MissingFilesAndBadDataAreNamed) {
  const std::string tpl = file("t.liquid", "{{ a }}");
  const std::string missing = (dir_.path() / "nope.liquid").string();
  Result r = run(dir_, "template render " + missing);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "opskernel: cannot read template file '" + missing + "': No such file or directory\n");
  r = run(dir_, "template render " + dir_.str());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "opskernel: cannot read template file '" + dir_.str() + "': is a folder\n");
  const std::string no_data = (dir_.path() / "nope.json").string();
  r = run(dir_, "template render " + tpl + " --data " + no_data);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "opskernel: cannot read data file '" + no_data + "': No such file or directory\n");
  const std::string bad = file("bad.json", "{\"a\": 1,\n \"b\": }");
  r = run(dir_, "template render " + tpl + " --data " + bad);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("opskernel: data file '" + bad + "' is not valid JSON: parse error at line 2, column 7", 0), 0u)
      << r.err;
  const std::string array = file("array.json", "[1, 2]");
  r = run(dir_, "template render " + tpl + " --data " + array);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "opskernel: data file '" + array + "' must hold a JSON object, not array\n");
  const std::string deep = file("deep.json", std::string(100000, '[') + std::string(100000, ']'));
  r = run(dir_, "template render " + tpl + " --data " + deep);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "opskernel: data file '" + deep + "' is nested deeper than 512 levels\n");
}

TEST_F(TemplateCli, UsageErrors) {
  Result r = run(dir_, "template frob x");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("usage: opskernel template render TEMPLATE_FILE [--data DATA_JSON_FILE]"), std::string::npos)
      << r.err;
  r = run(dir_, "template render");
  EXPECT_EQ(r.code, 2);
  r = run(dir_, "--help");
  EXPECT_NE(r.out.find("template render FILE"), std::string::npos);
}

}  // namespace
}  // namespace opk
