// values.cpp -- Liquid's view of JSON values: truthiness, comparison, to_s,
// numbers as Ruby prints and converts them.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "internal.h"

namespace opk::liquid::internal {

const json kNull;

bool is_empty(const json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return v.empty();
  return false;
}

bool is_blank(const json& v) {
  if (v.is_null()) return true;
  if (v.is_boolean()) return !v.get<bool>();
  if (v.is_string()) {
    for (char ch : v.get_ref<const std::string&>())
      if (!is_space(ch)) return false;
    return true;
  }
  if (v.is_array() || v.is_object()) return v.empty();
  return false;
}

bool equal(const json& a, const json& b) {
  return a == b;
}

namespace {

template <typename T>
int cmp3(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

}  // namespace

bool order(const json& a, const json& b, int* out) {
  if (a.is_number() && b.is_number()) {
    if (a.is_number_float() || b.is_number_float()) {
      *out = cmp3(a.get<double>(), b.get<double>());
    } else if (a.is_number_unsigned() || b.is_number_unsigned()) {
      // One may not fit int64: compare signs first.
      const bool an = !a.is_number_unsigned() && a.get<int64_t>() < 0;
      const bool bn = !b.is_number_unsigned() && b.get<int64_t>() < 0;
      if (an != bn)
        *out = an ? -1 : 1;
      else if (an)
        *out = cmp3(a.get<int64_t>(), b.get<int64_t>());
      else
        *out = cmp3(a.get<uint64_t>(), b.get<uint64_t>());
    } else {
      *out = cmp3(a.get<int64_t>(), b.get<int64_t>());
    }
    return true;
  }
  if (a.is_string() && b.is_string()) {
    const int r = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    *out = r < 0 ? -1 : (r > 0 ? 1 : 0);
    return true;
  }
  return false;
}

namespace {

// Shortest round-trip digits of |d| (no leading zeros) and the decimal
// exponent of the first digit: d = 0.D x 10^(exp + 1).
void shortest(double d, std::string* digits, int* exp) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(d), std::chars_format::scientific);
  std::string_view s(buf, r.ptr - buf);
  const size_t e = s.find('e');
  digits->clear();
  for (char ch : s.substr(0, e))
    if (ch != '.') digits->push_back(ch);
  *exp = std::atoi(std::string(s.substr(e + 1)).c_str());
  while (digits->size() > 1 && digits->back() == '0') digits->pop_back();
}

void append_inspect(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::null:
      out += "nil";
      return;
    case json::value_t::string: {
      out += '"';
      for (char ch : v.get_ref<const std::string&>()) {
        switch (ch) {
          case '"':
            out += "\\\"";
            break;
          case '\\':
            out += "\\\\";
            break;
          case '\n':
            out += "\\n";
            break;
          case '\t':
            out += "\\t";
            break;
          case '\r':
            out += "\\r";
            break;
          default:
            if (static_cast<unsigned char>(ch) < 0x20) {
              char buf[8];
              std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(ch));
              out += buf;
            } else {
              out += ch;
            }
        }
      }
      out += '"';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        append_inspect(e, out);
      }
      out += ']';
      return;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        append_inspect(json(it.key()), out);
        out += "=>";
        append_inspect(it.value(), out);
      }
      out += '}';
      return;
    }
    default:
      append_to_s(v, out);
  }
}

}  // namespace

void append_float(double d, std::string& out) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-Infinity" : "Infinity";
    return;
  }
  if (d == 0) {
    out += std::signbit(d) ? "-0.0" : "0.0";
    return;
  }
  std::string digits;
  int exp = 0;
  shortest(d, &digits, &exp);
  if (d < 0) out += '-';
  if (exp >= -4 && exp <= 15) {
    if (exp >= 0) {
      const size_t int_len = static_cast<size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits;
        out.append(int_len - digits.size(), '0');
        out += ".0";
      } else {
        out.append(digits, 0, int_len);
        out += '.';
        out.append(digits, int_len);
      }
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    }
    return;
  }
  out += digits[0];
  out += '.';
  out += digits.size() > 1 ? digits.substr(1) : "0";
  out += 'e';
  out += exp < 0 ? '-' : '+';
  const int a = exp < 0 ? -exp : exp;
  if (a < 10) out += '0';
  out += std::to_string(a);
}

void append_to_s(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
      return;
    case json::value_t::string:
      out += v.get_ref<const std::string&>();
      return;
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case json::value_t::number_integer: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, v.get<int64_t>());
      out.append(buf, r.ptr);
      return;
    }
    case json::value_t::number_unsigned: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, v.get<uint64_t>());
      out.append(buf, r.ptr);
      return;
    }
    case json::value_t::number_float:
      append_float(v.get<double>(), out);
      return;
    case json::value_t::array:
    case json::value_t::object:
      append_inspect(v, out);
      return;
    case json::value_t::binary:
      return;
  }
}

std::string to_s(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  std::string s;
  append_to_s(v, s);
  return s;
}

void append_output(const json& v, std::string& out) {
  if (v.is_array()) {
    for (const auto& e : v) append_output(e, out);
    return;
  }
  append_to_s(v, out);
}

json to_number(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return static_cast<double>(u);
    return static_cast<int64_t>(u);
  }
  if (v.is_number()) return v;
  if (!v.is_string()) return 0;
  std::string_view s = v.get_ref<const std::string&>();
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  const std::string_view t = s.substr(b, e - b);
  // -?\d+\.\d+ is a decimal number.
  {
    size_t i = 0;
    if (i < t.size() && t[i] == '-') ++i;
    const size_t d0 = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i > d0 && i < t.size() && t[i] == '.') {
      const size_t f0 = ++i;
      while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
      if (i > f0 && i == t.size()) return std::strtod(std::string(t).c_str(), nullptr);
    }
  }
  // Otherwise Ruby's to_i: an optional sign and the leading digits (and
  // underscores between them), 0 if none.
  size_t i = 0;
  bool neg = false;
  if (i < t.size() && (t[i] == '-' || t[i] == '+')) neg = t[i++] == '-';
  uint64_t n = 0;
  bool any = false, overflow = false;
  double big = 0;
  for (; i < t.size(); ++i) {
    const char ch = t[i];
    if (ch == '_' && any && i + 1 < t.size() && t[i + 1] >= '0' && t[i + 1] <= '9') continue;
    if (ch < '0' || ch > '9') break;
    any = true;
    const unsigned dgt = static_cast<unsigned>(ch - '0');
    big = big * 10 + dgt;
    if (n > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - dgt) / 10) overflow = true;
    n = n * 10 + dgt;
  }
  if (!any) return 0;
  if (overflow) return neg ? -big : big;
  return neg ? -static_cast<int64_t>(n) : static_cast<int64_t>(n);
}

bool to_integer(const json& v, int64_t* out) {
  if (v.is_number_integer() && !v.is_number_unsigned()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    *out = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                          : static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::trunc(d)) return false;
    if (d >= 9.2e18 || d <= -9.2e18) {
      *out = d < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
      return true;
    }
    *out = static_cast<int64_t>(d);
    return true;
  }
  if (!v.is_string()) return false;
  std::string_view s = v.get_ref<const std::string&>();
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  std::string t;
  for (size_t i = b; i < e; ++i)
    if (s[i] != '_') t += s[i];
  if (t.empty()) return false;
  if (t[0] == '+') t.erase(0, 1);
  int64_t n = 0;
  auto r = std::from_chars(t.data(), t.data() + t.size(), n);
  if (r.ptr != t.data() + t.size()) return false;
  if (r.ec == std::errc::result_out_of_range) {
    n = t[0] == '-' ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  } else if (r.ec != std::errc()) {
    return false;
  }
  *out = n;
  return true;
}

int decimals(double d) {
  if (!std::isfinite(d) || d == 0) return 0;
  std::string digits;
  int exp = 0;
  shortest(d, &digits, &exp);
  const int n = static_cast<int>(digits.size()) - 1 - exp;
  return n > 0 ? n : 0;
}

double round_decimal(double d, int places) {
  if (!std::isfinite(d) || d == 0) return d;
  std::string digits;
  int exp = 0;
  shortest(d, &digits, &exp);
  const long keep = static_cast<long>(exp) + 1 + places;
  if (keep >= static_cast<long>(digits.size())) return d;
  if (keep < 0) return std::signbit(d) ? -0.0 : 0.0;
  std::string kept = digits.substr(0, static_cast<size_t>(keep));
  if (kept.empty()) kept = "0";
  if (digits[static_cast<size_t>(keep)] >= '5') {
    // Add one to the last kept digit, carrying.
    size_t i = kept.size();
    while (i > 0) {
      --i;
      if (kept[i] == '9') {
        kept[i] = '0';
        if (i == 0) kept.insert(kept.begin(), '1');
      } else {
        ++kept[i];
        break;
      }
    }
  }
  const std::string text = (d < 0 ? "-" : "") + kept + "e" + std::to_string(-places);
  return std::strtod(text.c_str(), nullptr);
}

size_t approx_bytes(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return 16 + v.get_ref<const std::string&>().size();
    case json::value_t::array: {
      size_t n = 16;
      for (const auto& e : v) n += approx_bytes(e);
      return n;
    }
    case json::value_t::object: {
      size_t n = 16;
      for (auto it = v.begin(); it != v.end(); ++it) n += 16 + it.key().size() + approx_bytes(it.value());
      return n;
    }
    default:
      return 16;
  }
}

}  // namespace opk::liquid::internal
