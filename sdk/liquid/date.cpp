// date.cpp -- the date filter's side: reading an instant (seconds, "now",
// ISO-8601) and strftime in UTC with Ruby's flags. Locale-free: names are
// English, as in Ruby.
#include <algorithm>
#include <cstdio>

#include "internal.h"

namespace opk::liquid::internal {

namespace {

constexpr const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                   "July",    "August",   "September", "October", "November", "December"};
constexpr const char* kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}
int64_t floor_mod(int64_t a, int64_t b) {
  return a - floor_div(a, b) * b;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = floor_div(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = floor_div(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int64_t y, int m) {
  static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDaysIn[m - 1];
}

// The broken-down time of an instant.
struct Tm {
  int64_t year = 1970;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int wday = 4;  // 0 = Sunday
  int yday = 0;  // 0-based
  int64_t epoch = 0;
  int32_t nanos = 0;
};

Tm breakdown(const Instant& t) {
  Tm tm;
  tm.epoch = t.seconds;
  tm.nanos = t.nanos;
  const int64_t days = floor_div(t.seconds, 86400);
  const int64_t secs = t.seconds - days * 86400;
  civil_from_days(days, &tm.year, &tm.month, &tm.day);
  tm.hour = static_cast<int>(secs / 3600);
  tm.minute = static_cast<int>(secs / 60 % 60);
  tm.second = static_cast<int>(secs % 60);
  tm.wday = static_cast<int>(floor_mod(days + 4, 7));
  tm.yday = static_cast<int>(days - days_from_civil(tm.year, 1, 1));
  return tm;
}

// ISO-8601 week-based year and week number.
void iso_week(const Tm& tm, int64_t* year, int* week) {
  const int wd = (tm.wday + 6) % 7 + 1;  // Monday 1 .. Sunday 7
  int w = (tm.yday + 1 - wd + 10) / 7;
  auto weeks_in = [](int64_t y) {
    const int jan1 = static_cast<int>(floor_mod(days_from_civil(y, 1, 1) + 4, 7));  // 0 = Sunday
    return (jan1 == 4 || (leap(y) && jan1 == 3)) ? 53 : 52;
  };
  int64_t y = tm.year;
  if (w < 1) {
    --y;
    w = weeks_in(y);
  } else if (w > weeks_in(y)) {
    ++y;
    w = 1;
  }
  *year = y;
  *week = w;
}

struct Spec {
  bool no_pad = false, space_pad = false, zero_pad = false, upper = false, swap = false;
  int width = -1;
  int colons = 0;
};

void pad_text(const Spec& sp, std::string_view text, std::string& out) {
  std::string t(text);
  if (sp.upper || sp.swap) t = upcase(t);
  if (sp.width > 0 && static_cast<int>(char_count(t)) < sp.width)
    out.append(static_cast<size_t>(sp.width) - char_count(t), sp.zero_pad ? '0' : ' ');
  out += t;
}

void pad_num(const Spec& sp, int64_t v, int def_width, char def_pad, std::string& out) {
  const bool neg = v < 0;
  std::string digits = std::to_string(neg ? -(v + 1) + uint64_t{1} : static_cast<uint64_t>(v));
  int width = sp.width >= 0 ? sp.width : def_width;
  char pad = sp.space_pad ? ' ' : sp.zero_pad ? '0' : def_pad;
  if (neg) {
    out += '-';
    --width;
  }
  if (!sp.no_pad && static_cast<int>(digits.size()) < width)
    out.append(static_cast<size_t>(width) - digits.size(), pad);
  out += digits;
}

void format_into(const Tm& tm, std::string_view f, std::string& out);

// Formats `sub` and applies the spec's width and case to the whole.
void composite(const Tm& tm, const Spec& sp, std::string_view sub, std::string& out) {
  std::string s;
  format_into(tm, sub, s);
  pad_text(sp, s, out);
}

void format_into(const Tm& tm, std::string_view f, std::string& out) {
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%' || i + 1 >= f.size()) {
      out += f[i];
      continue;
    }
    const size_t start = i++;
    Spec sp;
    for (; i < f.size(); ++i) {
      const char c = f[i];
      if (c == '-')
        sp.no_pad = true;
      else if (c == '_')
        sp.space_pad = true;
      else if (c == '0')
        sp.zero_pad = true;
      else if (c == '^')
        sp.upper = true;
      else if (c == '#')
        sp.swap = true;
      else
        break;
    }
    if (i < f.size() && f[i] >= '1' && f[i] <= '9') {
      sp.width = 0;
      while (i < f.size() && f[i] >= '0' && f[i] <= '9') sp.width = std::min(sp.width * 10 + (f[i++] - '0'), 64);
    }
    while (i < f.size() && f[i] == ':') {
      ++sp.colons;
      ++i;
    }
    if (i >= f.size()) {
      out.append(f.substr(start));
      return;
    }
    const int h12 = tm.hour % 12 == 0 ? 12 : tm.hour % 12;
    switch (f[i]) {
      case 'Y':
        pad_num(sp, tm.year, tm.year < 0 ? 5 : 4, '0', out);
        break;
      case 'C':
        pad_num(sp, floor_div(tm.year, 100), 2, '0', out);
        break;
      case 'y':
        pad_num(sp, floor_mod(tm.year, 100), 2, '0', out);
        break;
      case 'm':
        pad_num(sp, tm.month, 2, '0', out);
        break;
      case 'B':
        pad_text(sp, kMonths[tm.month - 1], out);
        break;
      case 'b':
      case 'h':
        pad_text(sp, std::string_view(kMonths[tm.month - 1]).substr(0, 3), out);
        break;
      case 'd':
        pad_num(sp, tm.day, 2, '0', out);
        break;
      case 'e':
        pad_num(sp, tm.day, 2, ' ', out);
        break;
      case 'j':
        pad_num(sp, tm.yday + 1, 3, '0', out);
        break;
      case 'H':
        pad_num(sp, tm.hour, 2, '0', out);
        break;
      case 'k':
        pad_num(sp, tm.hour, 2, ' ', out);
        break;
      case 'I':
        pad_num(sp, h12, 2, '0', out);
        break;
      case 'l':
        pad_num(sp, h12, 2, ' ', out);
        break;
      case 'P':
        pad_text(sp, tm.hour < 12 ? "am" : "pm", out);
        break;
      case 'p': {
        Spec s2 = sp;
        s2.swap = false;
        pad_text(s2, sp.swap ? (tm.hour < 12 ? "am" : "pm") : (tm.hour < 12 ? "AM" : "PM"), out);
        break;
      }
      case 'M':
        pad_num(sp, tm.minute, 2, '0', out);
        break;
      case 'S':
        pad_num(sp, tm.second, 2, '0', out);
        break;
      case 'L':
      case 'N': {
        const int digits = sp.width > 0 ? sp.width : (f[i] == 'L' ? 3 : 9);
        char buf[16];
        std::snprintf(buf, sizeof buf, "%09d", static_cast<int>(tm.nanos));
        std::string s(buf);
        if (digits <= 9)
          s.resize(static_cast<size_t>(digits));
        else
          s.append(static_cast<size_t>(digits - 9), '0');
        out += s;
        break;
      }
      case 'z': {
        std::string z = sp.colons == 1 ? "+00:00" : sp.colons >= 2 ? "+00:00:00" : "+0000";
        pad_text(Spec{}, z, out);
        break;
      }
      case 'Z':
        pad_text(sp, "UTC", out);
        break;
      case 'A':
        pad_text(sp, kDays[tm.wday], out);
        break;
      case 'a':
        pad_text(sp, std::string_view(kDays[tm.wday]).substr(0, 3), out);
        break;
      case 'u':
        pad_num(sp, tm.wday == 0 ? 7 : tm.wday, 1, '0', out);
        break;
      case 'w':
        pad_num(sp, tm.wday, 1, '0', out);
        break;
      case 'G':
      case 'g':
      case 'V': {
        int64_t y = 0;
        int w = 0;
        iso_week(tm, &y, &w);
        if (f[i] == 'G')
          pad_num(sp, y, 4, '0', out);
        else if (f[i] == 'g')
          pad_num(sp, floor_mod(y, 100), 2, '0', out);
        else
          pad_num(sp, w, 2, '0', out);
        break;
      }
      case 'U':
        pad_num(sp, (tm.yday + 7 - tm.wday) / 7, 2, '0', out);
        break;
      case 'W':
        pad_num(sp, (tm.yday + 7 - (tm.wday + 6) % 7) / 7, 2, '0', out);
        break;
      case 's':
        pad_num(sp, tm.epoch, 1, '0', out);
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '%':
        out += '%';
        break;
      case 'c':
        composite(tm, sp, "%a %b %e %H:%M:%S %Y", out);
        break;
      case 'D':
      case 'x':
        composite(tm, sp, "%m/%d/%y", out);
        break;
      case 'F':
        composite(tm, sp, "%Y-%m-%d", out);
        break;
      case 'T':
      case 'X':
        composite(tm, sp, "%H:%M:%S", out);
        break;
      case 'R':
        composite(tm, sp, "%H:%M", out);
        break;
      case 'r':
        composite(tm, sp, "%I:%M:%S %p", out);
        break;
      case 'v':
        composite(tm, sp, "%e-%^b-%4Y", out);
        break;
      case '+':
        composite(tm, sp, "%a %b %e %H:%M:%S %Z %Y", out);
        break;
      default:
        out.append(f.substr(start, i - start + 1));
    }
  }
}

// Reads `n` digits at s[*i] into *out.
bool digits(std::string_view s, size_t* i, int n, int* out) {
  if (*i + static_cast<size_t>(n) > s.size()) return false;
  int v = 0;
  for (int k = 0; k < n; ++k) {
    const char c = s[*i + static_cast<size_t>(k)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *i += static_cast<size_t>(n);
  *out = v;
  return true;
}

// YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]][ ][Z|UTC|GMT|+HH[:MM]|+HHMM]
bool parse_iso(std::string_view s, Instant* out) {
  size_t i = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  int64_t nanos = 0;
  if (!digits(s, &i, 4, &y) || i >= s.size() || s[i++] != '-' || !digits(s, &i, 2, &mo) || i >= s.size() ||
      s[i++] != '-' || !digits(s, &i, 2, &d))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return false;
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
    ++i;
    if (!digits(s, &i, 2, &h) || i >= s.size() || s[i++] != ':' || !digits(s, &i, 2, &mi)) return false;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!digits(s, &i, 2, &sec)) return false;
      if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
        ++i;
        int64_t scale = 100000000;
        const size_t f0 = i;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
          nanos += (s[i] - '0') * scale;
          scale /= 10;
        }
        if (i == f0) return false;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return false;
    if (i < s.size() && s[i] == ' ') ++i;
    const std::string_view zone = s.substr(i);
    if (zone == "Z" || zone == "z" || zone == "UTC" || zone == "GMT") {
      i = s.size();
    } else if (!zone.empty() && (zone[0] == '+' || zone[0] == '-')) {
      const bool neg = zone[0] == '-';
      ++i;
      int oh = 0, om = 0;
      if (!digits(s, &i, 2, &oh)) return false;
      if (i < s.size() && s[i] == ':') ++i;
      if (i < s.size() && !digits(s, &i, 2, &om)) return false;
      if (oh > 23 || om > 59) return false;
      offset = (oh * 3600 + om * 60) * (neg ? -1 : 1);
    }
  }
  if (i != s.size()) return false;
  out->seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
  out->nanos = static_cast<int32_t>(nanos);
  return true;
}

}  // namespace

bool to_instant(const json& v, int64_t now, Instant* out) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    int64_t n = 0;
    to_integer(v, &n);
    *out = {n, 0};
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(d > -9.2e15 && d < 9.2e15)) return false;
    const double fl = d < 0 ? static_cast<double>(static_cast<int64_t>(d) - (static_cast<int64_t>(d) != d)) : d;
    const auto secs = static_cast<int64_t>(fl);
    *out = {secs, static_cast<int32_t>((d - static_cast<double>(secs)) * 1e9)};
    return true;
  }
  if (!v.is_string()) return false;
  std::string_view s = v.get_ref<const std::string&>();
  if (s.empty()) return false;
  const std::string lower = downcase(s);
  if (lower == "now" || lower == "today") {
    *out = {now, 0};
    return true;
  }
  bool all_digits = true;
  for (char c : s) all_digits = all_digits && c >= '0' && c <= '9';
  if (all_digits) {
    int64_t n = 0;
    if (!to_integer(v, &n)) return false;
    *out = {n, 0};
    return true;
  }
  return parse_iso(s, out);
}

std::string format_time(const Instant& t, std::string_view format) {
  std::string out;
  format_into(breakdown(t), format, out);
  return out;
}

}  // namespace opk::liquid::internal
