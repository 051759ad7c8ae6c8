// logging.h -- the kernel's logs: console + rotating file, one named spdlog
// logger per plugin. Thread-safe after setup().
#ifndef OPSKERNEL_KERNEL_LOG_LOGGING_H
#define OPSKERNEL_KERNEL_LOG_LOGGING_H

#include <opskernel/opk_abi.h>

#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace opk::log {

// Where and how much to log.
struct Settings {
  std::string level = "info";  // trace|debug|info|warn|error|critical|off
  bool console = true;
  std::string file;         // empty: no file
  size_t max_size_mb = 10;  // rotation size
  size_t max_files = 5;     // rotated files kept
};

// Installs the sinks and level for every logger made afterwards. Call once at
// start; calling again replaces the sinks. Throws spdlog_ex on an unwritable file.
void setup(const Settings& settings);

// The kernel's own logger ("kernel").
std::shared_ptr<spdlog::logger> kernel();

// A logger named `name` (e.g. "plugin.hello"), sharing the kernel's sinks.
std::shared_ptr<spdlog::logger> get(const std::string& name);

// Maps an ABI severity to spdlog's level (unknown values map to info).
int to_spdlog_level(opk_log_level level);

// Parses a level name; returns false for an unknown name.
bool parse_level(const std::string& name, int* out);

}  // namespace opk::log

#endif
