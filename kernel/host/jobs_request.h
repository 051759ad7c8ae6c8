// jobs_request.h -- the request object of an "opk.jobs/1" operation, read
// field by field. Every refusal is INVALID_ARGUMENT and its message starts
// with the field's name ("limit: 0 is out of range 1..500"); a request that
// is not a JSON object is named "request:".
#ifndef OPSKERNEL_KERNEL_HOST_JOBS_REQUEST_H
#define OPSKERNEL_KERNEL_HOST_JOBS_REQUEST_H

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <opskernel/status.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace opk::host {

// The longest reason an operation takes (delete, run now, cancel, retry,
// hold, release, recover, drain), in bytes, as for a plugin's audited one.
inline constexpr size_t kMaxReasonBytes = 2000;

// Typed reads of one request object. A field that is absent or null leaves
// the output as it was (its default), unless the read says it is required.
class JobsRequest {
 public:
  // Reads `text`: a JSON object, or empty for {}. A "reason" longer than
  // kMaxReasonBytes is refused ("reason: longer than 2,000 bytes").
  Status parse(const std::string& text);

  // True if the field is present and not null.
  bool has(const char* key) const;
  // A string without control characters other than tab and line breaks.
  Status str(const char* key, std::string* out, bool required = false) const;
  // A whole number within lo..hi; numbers past int64 are out of range too.
  Status integer(const char* key, int64_t* out, int64_t lo, int64_t hi, bool required = false) const;
  // true or false.
  Status boolean(const char* key, bool* out) const;
  // A JSON object, as text.
  Status object_text(const char* key, std::optional<std::string>* out) const;
  // The field as an array; null when absent or not an array.
  Poco::JSON::Array::Ptr array(const char* key) const;

 private:
  Poco::JSON::Object::Ptr obj_ = new Poco::JSON::Object;
};

// What an action's request is about, for its audit row: its "id", "job_id"
// or "job_type", else "run <run_id>", else empty.
std::string audit_target(const std::string& request_json);

}  // namespace opk::host

#endif
