#include "app/template_cli.h"

#include <opskernel/liquid.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace opk::cli {
namespace {

namespace po = boost::program_options;

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2;

// Data nested deeper than this is refused: rendering walks it recursively.
constexpr int kMaxDataDepth = 512;

// Reads the whole file at `path`; false with *error saying why not.
bool read_file(const std::string& path, std::string* out, std::string* error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    *error = "is a folder";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::strerror(errno);
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) {
    *error = std::strerror(errno);
    return false;
  }
  *out = std::move(s).str();
  return true;
}

// Reads and parses the data file: a JSON object. Prints why not and
// returns false.
bool read_data(const std::string& path, nlohmann::json* out) {
  std::string text, error;
  if (!read_file(path, &text, &error)) {
    std::cerr << "opskernel: cannot read data file '" << path << "': " << error << "\n";
    return false;
  }
  struct TooDeep {};
  try {
    *out = nlohmann::json::parse(text, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > kMaxDataDepth) throw TooDeep{};
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." without its tag.
    std::string what = e.what();
    if (const size_t tag = what.find("] "); tag != std::string::npos) what.erase(0, tag + 2);
    std::cerr << "opskernel: data file '" << path << "' is not valid JSON: " << what << "\n";
    return false;
  } catch (const TooDeep&) {
    std::cerr << "opskernel: data file '" << path << "' is nested deeper than " << kMaxDataDepth << " levels\n";
    return false;
  }
  if (!out->is_object()) {
    std::cerr << "opskernel: data file '" << path << "' must hold a JSON object, not " << out->type_name() << "\n";
    return false;
  }
  return true;
}

}  // namespace

int template_command(const po::variables_map& vm, const std::vector<std::string>& cmd) {
  if (cmd.empty() || cmd[0] != "template") return -1;
  if (cmd.size() != 3 || cmd[1] != "render") {
    std::cerr << "opskernel: usage: opskernel template render TEMPLATE_FILE [--data DATA_JSON_FILE] "
                 "[--escape-html] [--strict-variables]\n";
    return kExitUsage;
  }
  const std::string& path = cmd[2];
  std::string source, error;
  if (!read_file(path, &source, &error)) {
    std::cerr << "opskernel: cannot read template file '" << path << "': " << error << "\n";
    return kExitUsage;
  }
  nlohmann::json data = nlohmann::json::object();
  if (vm.count("data") && !read_data(vm["data"].as<std::string>(), &data)) return kExitUsage;

  liquid::Template t;
  liquid::ErrorInfo where;
  Status s = liquid::Template::parse(source, &t, {}, &where);
  std::string out;
  if (s) {
    liquid::RenderOptions options;
    options.escape_html = vm.count("escape-html") > 0;
    options.strict_variables = vm.count("strict-variables") > 0;
    s = t.render(data, &out, options, &where);
  }
  if (!s) {
    std::cerr << path << ":" << where.line << ":" << where.column << ": " << where.message << "\n";
    return kExitFailed;
  }
  std::cout << out << std::flush;
  return kExitOk;
}

}  // namespace opk::cli
