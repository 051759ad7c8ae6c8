// test_util.h -- helpers shared by the tests: temporary folders, a plugins
// folder made of chosen fixtures, a quiet kernel configuration.
#ifndef OPSKERNEL_TESTS_SUPPORT_TEST_UTIL_H
#define OPSKERNEL_TESTS_SUPPORT_TEST_UTIL_H

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

#include "config/config.h"

namespace opk::test {

// A fresh folder under the system temp folder, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "opk-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::string fixture(const std::string& name) {
  return std::string(OPK_TEST_PLUGIN_DIR) + "/" + name + ".so";
}
inline std::string bundled(const std::string& name) {
  return std::string(OPK_BUNDLED_PLUGIN_DIR) + "/" + name + ".so";
}

// Links the given plugin files into `dir`/plugins and returns that folder.
inline std::string plugins_dir(const TempDir& dir, std::initializer_list<std::string> files) {
  auto p = dir.path() / "plugins";
  std::filesystem::create_directories(p);
  for (const auto& f : files) std::filesystem::create_symlink(f, p / std::filesystem::path(f).filename());
  return p.string();
}

// A configuration for a kernel over `plugins` with data in `dir`, logging
// only warnings and worse to the console.
inline config::Config quiet_config(const TempDir& dir, const std::string& plugins) {
  config::Config c;
  c.plugins_dir = plugins;
  c.data_dir = (dir.path() / "data").string();
  c.log.level = "warn";
  c.log.file.clear();
  c.shutdown_grace_ms = 2000;
  return c;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

}  // namespace opk::test

#endif
