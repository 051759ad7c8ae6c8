// json_text.h -- a small JSON writer for the event documents built on the job
// engine's hot path (one per completed run): appends to one string, escapes
// text as JSON requires and replaces bytes that are not UTF-8, so every
// document is valid JSON whatever a plugin wrote. Internal to kernel/events.
// Not thread-safe (one writer per document).
#ifndef OPSKERNEL_KERNEL_EVENTS_JSON_TEXT_H
#define OPSKERNEL_KERNEL_EVENTS_JSON_TEXT_H

#include <cstdint>
#include <string>
#include <string_view>

namespace opk::events {

// Appends `text` as a JSON string to *out: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD.
void append_json_string(std::string_view text, std::string* out);

// True when `text` is one JSON value (object, array, string, number, true,
// false or null), surrounded by nothing but blanks.
bool is_json(std::string_view text);

// Builds one JSON object member by member: {"a":1,"b":"x"}. Keys are the
// caller's own names, written as they are: REQUIRES plain ASCII without
// quotes, backslashes or control characters.
class ObjectWriter {
 public:
  // Starts the object at the end of *out. REQUIRES: *out outlives this.
  explicit ObjectWriter(std::string* out);
  // Ends the object (close() if not called).
  ~ObjectWriter();
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  ObjectWriter& text(std::string_view key, std::string_view value);
  // A text member, or null when `value` is empty.
  ObjectWriter& text_or_null(std::string_view key, std::string_view value);
  // A text member, left out when `value` is empty.
  ObjectWriter& text_if(std::string_view key, std::string_view value);
  ObjectWriter& integer(std::string_view key, int64_t value);
  // An integer member, left out when `value` is 0.
  ObjectWriter& integer_if(std::string_view key, int64_t value);
  // An integer member, or null when `value` is 0.
  ObjectWriter& integer_or_null(std::string_view key, int64_t value);
  ObjectWriter& boolean(std::string_view key, bool value);
  ObjectWriter& null(std::string_view key);
  // A member whose value is JSON text already. REQUIRES: is_json(json).
  ObjectWriter& raw(std::string_view key, std::string_view json);
  // Starts a member whose value the caller appends next (a nested object).
  std::string* member(std::string_view key);
  // Ends the object; later calls do nothing.
  void close();

 private:
  void key(std::string_view k);
  std::string* out_;
  bool first_ = true, closed_ = false;
};

}  // namespace opk::events

#endif
