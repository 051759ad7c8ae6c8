// route_input.hpp -- opk::input, the checks that begin an admin feature's
// route handlers: a JSON object body with only known fields, the required
// reason of a change, a duration such as "90m", a new record's id, and a
// refusal answered as problem+json. Each error names the field first
// ("reason: is required ..."), as the admin API's errors do.
//
//   Status create(const Request& rq, Response& rs) const {
//     Json body;
//     std::string reason;
//     Status s = opk::input::json_object(rq, {"tenant", "reason", "duration"}, &body);
//     if (s) s = opk::input::reason(body.value("reason", Json()), "the tenant's maintenance changes", &reason);
//     if (!s) return opk::input::refuse(rs, s);   // 400 naming the field
//     const std::string id = opk::input::new_id("mnt_");
//     ...
//
// Header-only, on opk::Request and opk::Response (opk.hpp).
#ifndef OPSKERNEL_ROUTE_INPUT_HPP
#define OPSKERNEL_ROUTE_INPUT_HPP

#include <opskernel/opk.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>

namespace opk::input {

// Answers `s` as problem+json (INVALID_ARGUMENT 400, NOT_FOUND 404, ...)
// and returns OK: the handler has answered.
inline Status refuse(Response& rs, const Status& s) {
  rs.problem(s);
  return Status::ok();
}

// The request's body as a JSON object whose fields are all among `known`;
// INVALID_ARGUMENT naming the request ("request: ...") or the unknown field.
inline Status json_object(const Request& rq, std::initializer_list<const char*> known, Json* out) {
  if (rq.body().empty()) return Status::invalid("request: a JSON body is required");
  Json b = Json::parse(rq.body(), nullptr, false);
  if (b.is_discarded()) return Status::invalid("request: the body is not valid JSON");
  if (!b.is_object()) return Status::invalid("request: the body must be a JSON object");
  for (const auto& [key, value] : b.items())
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; }))
      return Status::invalid(key + ": is not a field of this request");
  *out = std::move(b);
  return Status::ok();
}

// True when `s` is empty or white space only.
inline bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// The required reason of a change, `v` (a body's field or the query's
// text; null when absent): a string of 1..2,000 bytes, not blank. The
// refusal says "reason: is required (say why <what>)".
inline Status reason(const Json& v, std::string_view what, std::string* out) {
  const std::string required = "reason: is required (say why " + std::string(what) + ")";
  if (v.is_null()) return Status::invalid(required);
  if (!v.is_string()) return Status::invalid("reason: must be a string");
  std::string r = v.get<std::string>();
  if (blank(r)) return Status::invalid(required);
  if (r.size() > 2000) return Status::invalid("reason: longer than 2,000 bytes");
  *out = std::move(r);
  return Status::ok();
}

// A duration of whole seconds, minutes, hours or days ("45s", "90m", "2h",
// "3d"; at most 11 digits) in ms, or -1 when `text` is none.
inline int64_t duration_ms(std::string_view text) {
  if (text.size() < 2 || text.size() > 12) return -1;
  const char unit = text.back();
  const std::string_view digits = text.substr(0, text.size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  const int64_t n = std::stoll(std::string(digits));
  switch (unit) {
    case 's':
      return n * 1000;
    case 'm':
      return n * 60'000;
    case 'h':
      return n * 3'600'000;
    case 'd':
      return n * 86'400'000;
    default:
      return -1;
  }
}

// A new record's id: `prefix` and 16 random hex digits ("mnt_0f3a...").
inline std::string new_id(std::string_view prefix) {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
  return std::string(prefix) + buf;
}

}  // namespace opk::input

#endif  // OPSKERNEL_ROUTE_INPUT_HPP
