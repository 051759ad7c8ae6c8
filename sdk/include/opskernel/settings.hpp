// settings.hpp -- typed, validated access to a plugin's settings (the
// `[plugin.<id>]` section of the kernel configuration), part of the C++ layer.
//
//   opk::Settings s(host, "admin-http");
//   const int threads = s.integer("threads", 16, 4, 1024);
//   const auto timeout = s.duration_ms("timeout", 30'000, 1'000, 3'600'000);
//   const bool tls = s.boolean("tls", false);
//   if (!s.ok()) return s.status();   // names the first bad key and value
//
// Each read returns its fallback when the key is not set, and also when the
// value is bad, after recording the first such error; so a plugin reads all
// its settings and checks once. Values arrive from the kernel as text.
#ifndef OPSKERNEL_SETTINGS_HPP
#define OPSKERNEL_SETTINGS_HPP

#include <opskernel/status.hpp>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace opk {

// Reads settings through a function returning the text of a key, if set
// (opk::Host::config; tests may pass their own).
class Settings {
 public:
  using Source = std::optional<std::string> (*)(const void* ctx, std::string_view key);

  // `plugin_id` names the section in errors ("[plugin.<id>] threads = ...").
  template <typename H>
  Settings(const H& host, std::string plugin_id)
      : ctx_(&host),
        source_([](const void* c, std::string_view k) { return static_cast<const H*>(c)->config(k); }),
        id_(std::move(plugin_id)) {}

  // A whole number in [min, max].
  int64_t integer(std::string_view key, int64_t fallback, int64_t min, int64_t max) {
    auto v = get(key);
    if (!v) return fallback;
    errno = 0;
    char* end = nullptr;
    const long long n = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || end != v->c_str() + v->size() || errno == ERANGE || n < min || n > max) {
      fail(key, *v, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
      return fallback;
    }
    return n;
  }

  // A number (decimal point allowed) in [min, max].
  double number(std::string_view key, double fallback, double min, double max) {
    auto v = get(key);
    if (!v) return fallback;
    errno = 0;
    char* end = nullptr;
    const double n = std::strtod(v->c_str(), &end);
    if (v->empty() || end != v->c_str() + v->size() || errno == ERANGE || !std::isfinite(n) || n < min || n > max) {
      fail(key, *v, "a number from " + trim_number(min) + " to " + trim_number(max));
      return fallback;
    }
    return n;
  }

  // true/false, yes/no, on/off, 1/0.
  bool boolean(std::string_view key, bool fallback) {
    auto v = get(key);
    if (!v) return fallback;
    if (*v == "true" || *v == "yes" || *v == "on" || *v == "1") return true;
    if (*v == "false" || *v == "no" || *v == "off" || *v == "0") return false;
    fail(key, *v, "true or false");
    return fallback;
  }

  // Any text; with `non_empty`, an empty value is an error.
  std::string text(std::string_view key, std::string fallback, bool non_empty = false) {
    auto v = get(key);
    if (!v) return fallback;
    if (non_empty && v->empty()) {
      fail(key, *v, "a non-empty text");
      return fallback;
    }
    return *v;
  }

  // One of `allowed`.
  std::string choice(std::string_view key, std::string fallback, std::initializer_list<std::string_view> allowed) {
    auto v = get(key);
    if (!v) return fallback;
    std::string list;
    for (auto a : allowed) {
      if (*v == a) return *v;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    fail(key, *v, "one of " + list);
    return fallback;
  }

  // A duration in milliseconds within [min_ms, max_ms]: "250ms", "30s",
  // "5m", "2h", "1d", or a bare number of milliseconds.
  int64_t duration_ms(std::string_view key, int64_t fallback, int64_t min_ms, int64_t max_ms) {
    auto v = get(key);
    if (!v) return fallback;
    errno = 0;
    char* end = nullptr;
    const long long n = std::strtoll(v->c_str(), &end, 10);
    const std::string_view unit(end, static_cast<size_t>(v->c_str() + v->size() - end));
    int64_t scale = 0;
    if (unit.empty() || unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    const bool bad_number = v->empty() || end == v->c_str() || errno == ERANGE || n < 0;
    if (bad_number || scale == 0 || n > max_ms / scale || n * scale < min_ms || n * scale > max_ms) {
      fail(key, *v,
           "a duration from " + std::to_string(min_ms) + " ms to " + std::to_string(max_ms) +
               " ms, such as 250ms, 30s, 5m, 2h or 1d");
      return fallback;
    }
    return n * scale;
  }

  // Comma-separated items, each trimmed; empty items are dropped.
  std::vector<std::string> list(std::string_view key, std::vector<std::string> fallback) {
    auto v = get(key);
    if (!v) return fallback;
    std::vector<std::string> out;
    size_t from = 0;
    while (from <= v->size()) {
      size_t comma = v->find(',', from);
      if (comma == std::string::npos) comma = v->size();
      std::string item = v->substr(from, comma - from);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (!item.empty()) out.push_back(item);
      from = comma + 1;
    }
    return out;
  }

  // Records an error found by the plugin's own check of a value it read
  // (a cross-field rule, a format the readers above do not know).
  void invalid(std::string_view key, std::string_view value, std::string_view expected) { fail(key, value, expected); }

  // True while every read value was valid.
  bool ok() const { return error_.empty(); }
  // OK, or INVALID_ARGUMENT naming the first bad setting, its value and what
  // was expected.
  Status status() const { return ok() ? Status::ok() : Status::invalid(error_); }

 private:
  std::optional<std::string> get(std::string_view key) const { return source_(ctx_, key); }
  void fail(std::string_view key, std::string_view value, std::string_view expected) {
    if (!error_.empty()) return;
    error_ = "[plugin." + id_ + "] " + std::string(key) + " = \"" + std::string(value) + "\": expected " +
             std::string(expected);
  }
  static std::string trim_number(double d) {
    std::string s = std::to_string(d);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  const void* ctx_;
  Source source_;
  std::string id_;
  std::string error_;
};

}  // namespace opk

#endif  // OPSKERNEL_SETTINGS_HPP
