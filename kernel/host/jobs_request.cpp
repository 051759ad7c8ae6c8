#include "host/jobs_request.h"

#include <Poco/JSON/Parser.h>

#include <sstream>

namespace opk::host {

using Poco::JSON::Object;

Status JobsRequest::parse(const std::string& text) {
  if (text.empty()) {
    obj_ = new Object;
    return Status::ok();
  }
  try {
    Poco::JSON::Parser parser;
    auto v = parser.parse(text);
    if (v.type() != typeid(Object::Ptr)) return Status::invalid("request: expected a JSON object");
    obj_ = v.extract<Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return Status::invalid("request: not valid JSON: " + e.displayText());
  }
  // Every operation's reason, checked here once: it goes into the audit
  // trail, capped as a plugin's audited reason is (audit_service.cpp).
  if (has("reason")) {
    auto v = obj_->get("reason");
    if (v.isString() && v.extract<std::string>().size() > kMaxReasonBytes)
      return Status::invalid("reason: longer than 2,000 bytes");
  }
  return Status::ok();
}

bool JobsRequest::has(const char* k) const {
  return obj_->has(k) && !obj_->isNull(k);
}

Status JobsRequest::str(const char* k, std::string* out, bool required) const {
  if (!has(k)) return required ? Status::invalid(std::string(k) + ": required") : Status::ok();
  auto v = obj_->get(k);
  if (!v.isString()) return Status::invalid(std::string(k) + ": expected a string");
  std::string text = v.extract<std::string>();
  // A NUL would end the text wherever it is stored as C text, hiding what
  // follows it; other control characters have no place in these fields
  // (tab and line breaks aside).
  for (unsigned char c : text)
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
      return Status::invalid(std::string(k) + ": contains a control character (U+00" + "0123456789ABCDEF"[c >> 4] +
                             "0123456789ABCDEF"[c & 15] + ")");
  *out = std::move(text);
  return Status::ok();
}

Status JobsRequest::integer(const char* k, int64_t* out, int64_t lo, int64_t hi, bool required) const {
  if (!has(k)) return required ? Status::invalid(std::string(k) + ": required") : Status::ok();
  auto v = obj_->get(k);
  if (!v.isInteger()) return Status::invalid(std::string(k) + ": expected a whole number");
  // Past int64 (Poco reads 9223372036854775808 as unsigned, and refuses to
  // convert it): out of range, named like any other.
  int64_t n = 0;
  try {
    n = v.convert<int64_t>();
  } catch (const Poco::Exception&) {
    return Status::invalid(std::string(k) + ": " + v.toString() + " is out of range " + std::to_string(lo) + ".." +
                           std::to_string(hi));
  }
  if (n < lo || n > hi)
    return Status::invalid(std::string(k) + ": " + std::to_string(n) + " is out of range " + std::to_string(lo) + ".." +
                           std::to_string(hi));
  *out = n;
  return Status::ok();
}

Status JobsRequest::boolean(const char* k, bool* out) const {
  if (!has(k)) return Status::ok();
  auto v = obj_->get(k);
  if (!v.isBoolean()) return Status::invalid(std::string(k) + ": expected true or false");
  *out = v.extract<bool>();
  return Status::ok();
}

Status JobsRequest::object_text(const char* k, std::optional<std::string>* out) const {
  if (!has(k)) return Status::ok();
  if (!obj_->getObject(k)) return Status::invalid(std::string(k) + ": expected a JSON object");
  std::ostringstream os;
  obj_->getObject(k)->stringify(os);
  *out = os.str();
  return Status::ok();
}

Poco::JSON::Array::Ptr JobsRequest::array(const char* k) const {
  return obj_->getArray(k);
}

std::string audit_target(const std::string& request_json) {
  JobsRequest r;
  if (!r.parse(request_json)) return "";
  std::string v;
  for (const char* k : {"id", "job_id", "job_type"})
    if (r.str(k, &v) && !v.empty()) return v;
  int64_t run = 0;
  if (r.integer("run_id", &run, 1, INT64_MAX) && run) return "run " + std::to_string(run);
  return "";
}

}  // namespace opk::host
