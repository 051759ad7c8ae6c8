// The event documents' JSON writer (json_text.h).
#include "events/json_text.h"

#include <opskernel/json.hpp>

namespace opk::events {
namespace {

// The length of the UTF-8 sequence starting at s[i], or 0 if it is not a
// valid one (overlong forms, surrogates and code points above U+10FFFF
// included).
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  const size_t left = s.size() - i;
  auto cont = [&](size_t k) { return k < left && (b(i + k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(i + 1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void append_json_string(std::string_view text, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  // Most text needs no escaping: one scan, one append.
  size_t clean = 0;
  while (clean < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[clean]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
    ++clean;
  }
  if (clean == text.size()) {
    out->push_back('"');
    out->append(text);
    out->push_back('"');
    return;
  }
  out->push_back('"');
  size_t plain = 0;  // start of the bytes copied as they are
  auto flush = [&](size_t upto) { out->append(text.data() + plain, upto - plain); };
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t n = utf8_length(text, i);
      if (n) {
        i += n;
        continue;
      }
      flush(i);
      out->append("\xEF\xBF\xBD");  // U+FFFD
      plain = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
    plain = ++i;
  }
  flush(text.size());
  out->push_back('"');
}

bool is_json(std::string_view text) {
  return !text.empty() && nlohmann::json::accept(text.begin(), text.end());
}

ObjectWriter::ObjectWriter(std::string* out) : out_(out) {
  out_->push_back('{');
}

ObjectWriter::~ObjectWriter() {
  close();
}

void ObjectWriter::close() {
  if (closed_) return;
  closed_ = true;
  out_->push_back('}');
}

void ObjectWriter::key(std::string_view k) {
  // Keys are the kernel's own names: plain ASCII, nothing to escape.
  out_->append(first_ ? "\"" : ",\"", first_ ? 1 : 2);
  first_ = false;
  out_->append(k);
  out_->append("\":", 2);
}

ObjectWriter& ObjectWriter::text(std::string_view k, std::string_view value) {
  key(k);
  append_json_string(value, out_);
  return *this;
}

ObjectWriter& ObjectWriter::text_or_null(std::string_view k, std::string_view value) {
  return value.empty() ? null(k) : text(k, value);
}

ObjectWriter& ObjectWriter::text_if(std::string_view k, std::string_view value) {
  return value.empty() ? *this : text(k, value);
}

ObjectWriter& ObjectWriter::integer_if(std::string_view k, int64_t value) {
  return value == 0 ? *this : integer(k, value);
}

ObjectWriter& ObjectWriter::integer(std::string_view k, int64_t value) {
  key(k);
  out_->append(std::to_string(value));
  return *this;
}

ObjectWriter& ObjectWriter::integer_or_null(std::string_view k, int64_t value) {
  return value == 0 ? null(k) : integer(k, value);
}

ObjectWriter& ObjectWriter::boolean(std::string_view k, bool value) {
  key(k);
  out_->append(value ? "true" : "false");
  return *this;
}

ObjectWriter& ObjectWriter::null(std::string_view k) {
  key(k);
  out_->append("null");
  return *this;
}

ObjectWriter& ObjectWriter::raw(std::string_view k, std::string_view json) {
  key(k);
  out_->append(json);
  return *this;
}

std::string* ObjectWriter::member(std::string_view k) {
  key(k);
  return out_;
}

}  // namespace opk::events
