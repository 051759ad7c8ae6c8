#include "log/logging.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <vector>

namespace opk::log {
namespace {
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%n] %v";
std::mutex g_mu;
std::vector<spdlog::sink_ptr> g_sinks;
spdlog::level::level_enum g_level = spdlog::level::info;

std::vector<spdlog::sink_ptr>& sinks_locked() {
  if (g_sinks.empty()) g_sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  return g_sinks;
}
}  // namespace

bool parse_level(const std::string& name, int* out) {
  static const char* names[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (int i = 0; i < 7; ++i)
    if (name == names[i]) {
      *out = i;
      return true;
    }
  return false;
}

void setup(const Settings& s) {
  std::lock_guard lock(g_mu);
  int lvl = spdlog::level::info;
  parse_level(s.level, &lvl);
  g_level = static_cast<spdlog::level::level_enum>(lvl);
  std::vector<spdlog::sink_ptr> sinks;
  if (s.console) sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!s.file.empty()) {
    std::filesystem::path p(s.file);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    sinks.push_back(
        std::make_shared<spdlog::sinks::rotating_file_sink_mt>(s.file, s.max_size_mb * 1024 * 1024, s.max_files));
  }
  if (sinks.empty()) sinks.push_back(std::make_shared<spdlog::sinks::null_sink_mt>());
  g_sinks = sinks;
  // Warnings and worse are flushed at once (flush_on in get()); the rest
  // within a second, so a log file being followed is never minutes behind.
  static std::once_flag periodic;
  std::call_once(periodic, [] { spdlog::flush_every(std::chrono::seconds(1)); });
  // Re-point loggers that already exist.
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks() = g_sinks;
    l->set_level(g_level);
    l->set_pattern(kPattern);
  });
}

std::shared_ptr<spdlog::logger> get(const std::string& name) {
  std::lock_guard lock(g_mu);
  if (auto l = spdlog::get(name)) return l;
  auto& sinks = sinks_locked();
  auto l = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
  l->set_level(g_level);
  l->set_pattern(kPattern);
  l->flush_on(spdlog::level::warn);
  spdlog::register_logger(l);
  return l;
}

std::shared_ptr<spdlog::logger> kernel() {
  static std::shared_ptr<spdlog::logger> k = get("kernel");
  return k;
}

int to_spdlog_level(opk_log_level level) {
  switch (level) {
    case OPK_LOG_TRACE:
      return spdlog::level::trace;
    case OPK_LOG_DEBUG:
      return spdlog::level::debug;
    case OPK_LOG_INFO:
      return spdlog::level::info;
    case OPK_LOG_WARN:
      return spdlog::level::warn;
    case OPK_LOG_ERROR:
      return spdlog::level::err;
    case OPK_LOG_CRITICAL:
      return spdlog::level::critical;
    default:
      return spdlog::level::info;
  }
}

}  // namespace opk::log
