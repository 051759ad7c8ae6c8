// cron.cpp -- cron expressions and next fire times; see cron.h.
//
// How next() works: it walks local calendar days from the day before `after`,
// jumping over months whose bit is clear and straight to the next day that
// passes the day rule (found from the bit sets, not by trying each day). For
// each matching day it turns the (hour, minute) bits into instants: on a day
// with one UTC offset and no transition within 16 hours of it (almost every
// day) by plain subtraction; otherwise by looking each local time up in the tz
// database (get_info) and applying the DST rules below. Results are kept
// sorted, unique and at most `n` long; the walk stops once no later day can
// produce an instant earlier than the n-th kept one.
//
// Daylight saving, as cronie: a "fixed-time" job (neither minute nor hour field
// starts with '*') whose local time does not exist fires once at the transition
// instant (several such slots collapse into one), and whose local time occurs
// twice fires at the first occurrence only. A "wildcard" job is periodic in real
// time: its slots inside a gap are skipped and a repeated slot fires at both
// occurrences.
//
// Known limit: with the system tz database, Howard Hinnant's date library uses
// the TZif transition tables but not their POSIX-TZ footer, so for zones whose
// files are "slim" no DST transitions are known after the last listed one
// (2037 for Debian's files); later times use the last known offset.

#include "jobs/cron.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <exception>
#include <string>

namespace opk::cron {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// How far next() searches: one Gregorian cycle (146097 days), in which every
// date/weekday combination that exists at all occurs.
constexpr date::days kSearchDays{146097};

// A bound on |UTC offset| (the largest ever, local mean times included, is under 16 h).
constexpr hours kMaxOffset{16};

const char* const kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const kWeekdayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

// One of the five fields: its name, position, allowed values and names.
struct FieldSpec {
  const char* name;
  int position;  // 1-based
  int min, max;
  const char* const* names;  // names[i] means value min + i; nullptr: numbers only
  int name_count;
};

constexpr FieldSpec kMinute{"minute", 1, 0, 59, nullptr, 0};
constexpr FieldSpec kHour{"hour", 2, 0, 23, nullptr, 0};
constexpr FieldSpec kDay{"day-of-month", 3, 1, 31, nullptr, 0};
constexpr FieldSpec kMonth{"month", 4, 1, 12, kMonthNames, 12};
constexpr FieldSpec kWeekday{"day-of-week", 5, 0, 7, kWeekdayNames, 7};  // 7 is Sunday too

struct Macro {
  const char* name;
  const char* expansion;
};

constexpr Macro kMacros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

bool all_of(std::string_view s, int (*pred)(int)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [pred](char c) { return pred(static_cast<unsigned char>(c)); });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

std::vector<std::string_view> split_blanks(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_blank(text[i])) ++i;
    size_t j = i;
    while (j < text.size() && !is_blank(text[j])) ++j;
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

Status field_error(const FieldSpec& f, const std::string& reason) {
  return Status::invalid(std::string(f.name) + " (field " + std::to_string(f.position) + "): " + reason);
}

// Parses a decimal of at most 9 digits (longer ones are out of range anyway).
bool parse_small_number(std::string_view s, int* out) {
  if (!all_of(s, ::isdigit)) return false;
  const size_t nonzero = std::min(s.find_first_not_of('0'), s.size());
  if (s.size() - nonzero > 9) {
    *out = 1000000000;
    return true;
  }
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  *out = v;
  return true;
}

// Parses one value of a field: a number in range or, where allowed, a name.
Status parse_value(const FieldSpec& f, std::string_view s, std::string_view item, int* out) {
  if (s.empty()) return field_error(f, "missing value in " + in_quotes(item));
  int v = 0;
  if (parse_small_number(s, &v)) {
    if (v < f.min || v > f.max) {
      return field_error(f, in_quotes(s) + " is out of range " + std::to_string(f.min) + "-" + std::to_string(f.max));
    }
    *out = v;
    return Status::ok();
  }
  if (all_of(s, ::isalpha)) {
    if (f.names == nullptr) return field_error(f, in_quotes(s) + " is not a number");
    for (int i = 0; i < f.name_count; ++i) {
      if (iequals(s, f.names[i])) {
        *out = f.min + i;
        return Status::ok();
      }
    }
    return field_error(f, "unknown name " + in_quotes(s));
  }
  return field_error(f, "invalid value " + in_quotes(s));
}

// Parses one comma-separated item ("*", "N", "N-M", each optionally "/STEP") into `bits`.
Status parse_item(const FieldSpec& f, std::string_view item, uint64_t* bits) {
  if (item.empty()) return field_error(f, "empty item in list");
  std::string_view base = item;
  int step = 0;  // 0: no step given
  if (size_t slash = item.find('/'); slash != std::string_view::npos) {
    base = item.substr(0, slash);
    std::string_view step_text = item.substr(slash + 1);
    if (!parse_small_number(step_text, &step)) return field_error(f, "invalid step in " + in_quotes(item));
    if (step == 0) return field_error(f, "step must be at least 1 in " + in_quotes(item));
  }
  int lo = 0, hi = 0;
  if (base == "*") {
    lo = f.min;
    hi = f.max;
  } else if (size_t dash = base.find('-'); dash != std::string_view::npos) {
    if (Status s = parse_value(f, base.substr(0, dash), item, &lo); !s) return s;
    if (Status s = parse_value(f, base.substr(dash + 1), item, &hi); !s) return s;
    if (lo > hi) return field_error(f, "range " + in_quotes(base) + " has start greater than end");
  } else {
    if (Status s = parse_value(f, base, item, &lo); !s) return s;
    hi = step > 0 ? f.max : lo;  // Vixie: "N/STEP" means N-max/STEP
  }
  if (step == 0) step = 1;
  for (int v = lo; v <= hi; v += step) *bits |= uint64_t{1} << v;
  return Status::ok();
}

// Parses a whole field (a comma list) into `bits`.
Status parse_field(const FieldSpec& f, std::string_view text, uint64_t* bits) {
  *bits = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (Status s = parse_item(f, item, bits); !s) return s;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::ok();
}

// Days a month can have at most (February 29 included).
int max_days_in_month(int month) {
  static constexpr std::array<int, 13> kDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[month];
}

// Calls fn(i) for every set bit i of `bits`, lowest first; stops when fn returns false.
template <class Fn>
bool for_each_bit(uint64_t bits, Fn fn) {
  while (bits != 0) {
    const int i = std::countr_zero(bits);
    if (!fn(i)) return false;
    bits &= bits - 1;
  }
  return true;
}

}  // namespace

Status Expression::parse(std::string_view text, Expression* out) {
  std::vector<std::string_view> fields = split_blanks(text);
  if (!fields.empty() && fields[0].front() == '@') {
    const std::string_view name = fields[0];
    if (fields.size() > 1) return Status::invalid("unexpected text after macro " + in_quotes(name));
    if (iequals(name, "@reboot")) return Status::invalid("unsupported macro '@reboot' (no boot-time schedules)");
    for (const Macro& m : kMacros) {
      if (iequals(name, m.name)) {
        Expression e;
        Status s = parse(m.expansion, &e);
        if (!s) return s;
        e.text_ = std::string(text);
        *out = std::move(e);
        return Status::ok();
      }
    }
    return Status::invalid("unknown macro " + in_quotes(name));
  }
  if (fields.size() != 5) return Status::invalid("expected 5 fields, got " + std::to_string(fields.size()));

  uint64_t minute = 0, hour = 0, day = 0, month = 0, weekday = 0;
  if (Status s = parse_field(kMinute, fields[0], &minute); !s) return s;
  if (Status s = parse_field(kHour, fields[1], &hour); !s) return s;
  if (Status s = parse_field(kDay, fields[2], &day); !s) return s;
  if (Status s = parse_field(kMonth, fields[3], &month); !s) return s;
  if (Status s = parse_field(kWeekday, fields[4], &weekday); !s) return s;
  if (weekday & (uint64_t{1} << 7)) weekday = (weekday | 1) & 0x7f;  // 7 is Sunday

  Expression e;
  e.text_ = std::string(text);
  e.minutes_ = minute;
  e.hours_ = static_cast<uint32_t>(hour);
  e.days_ = static_cast<uint32_t>(day);
  e.months_ = static_cast<uint16_t>(month);
  e.weekdays_ = static_cast<uint8_t>(weekday);
  e.day_star_ = fields[2].front() == '*';
  e.weekday_star_ = fields[4].front() == '*';
  e.fixed_time_ = fields[0].front() != '*' && fields[1].front() != '*';

  // When the day-of-month must match (it is not OR-ed with a restricted
  // day-of-week), it has to name a day that some chosen month has.
  if (e.day_star_ || e.weekday_star_) {
    bool possible = false;
    for_each_bit(month, [&](int m) {
      const uint64_t days_in_month = ((uint64_t{1} << (max_days_in_month(m) + 1)) - 1) & ~uint64_t{1};
      possible = (e.days_ & days_in_month) != 0;
      return !possible;
    });
    if (!possible) {
      return field_error(kDay, "no day in " + in_quotes(fields[2]) + " occurs in month " + in_quotes(fields[3]) +
                                   ", so the expression would never fire");
    }
  }
  *out = std::move(e);
  return Status::ok();
}

void Expression::set_jitter_minutes(int minutes) {
  jitter_minutes_ = std::clamp(minutes, 0, 59);
}

std::vector<Instant> Expression::next(Instant after, const date::time_zone* tz, size_t n) const {
  std::vector<Instant> out;
  if (n == 0 || tz == nullptr || minutes_ == 0 || hours_ == 0 || days_ == 0 || months_ == 0 || weekdays_ == 0) {
    return out;
  }
  out.reserve(std::min<size_t>(n, 1024));
  const minutes jitter{jitter_minutes_};
  const Instant lower = after - jitter;  // fire times before jitter must be after this

  // Keeps `out` sorted, unique and at most n long.
  auto full = [&] { return out.size() == n; };
  auto add = [&](Instant t) {
    if (t <= lower || (full() && t >= out.back())) return;
    auto it = std::lower_bound(out.begin(), out.end(), t);
    if (it != out.end() && *it == t) return;
    out.insert(it, t);
    if (out.size() > n) out.pop_back();
  };

  // The first day >= ymd (weekday wd) in ymd's month that passes the day rule; 0 if none.
  auto matching_day = [&](const date::year_month_day& ymd, date::weekday wd) -> unsigned {
    const unsigned last_day = static_cast<unsigned>((ymd.year() / ymd.month() / date::last).day());
    unsigned d = static_cast<unsigned>(ymd.day());
    unsigned w = wd.c_encoding();
    auto next_day_bit = [&](unsigned from) -> unsigned {  // 32 when none
      const uint64_t rest = uint64_t{days_} >> from;
      return rest != 0 ? from + std::countr_zero(rest) : 32;
    };
    auto next_weekday = [&](unsigned from, unsigned from_wd) -> unsigned {
      for (unsigned k = 0; k < 7; ++k) {
        if (weekdays_ >> ((from_wd + k) % 7) & 1) return from + k;
      }
      return 32;
    };
    if (!day_star_ && !weekday_star_) {  // Vixie: either may match
      const unsigned first = std::min(next_day_bit(d), next_weekday(d, w));
      return first <= last_day ? first : 0;
    }
    while (true) {  // both must match
      const unsigned next = next_day_bit(d);
      if (next > last_day) return 0;
      w = (w + next - d) % 7;
      if (weekdays_ >> w & 1) return next;
      d = next + 1;
      w = (w + 1) % 7;
    }
  };

  // The local day before: a fall-back across midnight can put the previous
  // day's repeated times after `after`.
  date::local_days day = date::floor<date::days>(tz->to_local(lower)) - date::days{1};
  const date::local_days last = day + kSearchDays;
  while (day <= last) {
    const Instant day_as_sys{day.time_since_epoch()};
    if (full() && out.back() < day_as_sys - kMaxOffset) break;  // nothing later can come earlier
    const date::year_month_day ymd{day};
    const unsigned month = static_cast<unsigned>(ymd.month());
    if (!(months_ >> month & 1)) {
      // On to the first day of the next chosen month (bit 0 is never set).
      const unsigned later = months_ & ~((2u << month) - 1);
      day = later != 0 ? date::local_days{ymd.year() / std::countr_zero(later) / 1}
                       : date::local_days{(ymd.year() + date::years{1}) / std::countr_zero(months_) / 1};
      continue;
    }
    const unsigned match = matching_day(ymd, date::weekday{day});
    if (match == 0) {
      day = date::local_days{(ymd.year() / ymd.month() + date::months{1}) / 1};
      continue;
    }
    if (match != static_cast<unsigned>(ymd.day())) {
      day = date::local_days{ymd.year() / ymd.month() / match};  // checks the stop condition again first
      continue;
    }

    const date::local_seconds start{day};
    // One offset with no transition within kMaxOffset of the day's local
    // times: each local time then maps to exactly one instant, by subtraction.
    const date::sys_info si = tz->get_info(day_as_sys - kMaxOffset);
    if (si.end >= day_as_sys + hours{24} + kMaxOffset) {
      // Instants rise with local time: stop at the first one past the n-th kept.
      const Instant base = day_as_sys - si.offset;
      for_each_bit(hours_, [&](int h) {
        const Instant hour_start = base + hours{h};
        if (hour_start + minutes{59} <= lower) return true;
        return for_each_bit(minutes_, [&](int m) {
          const Instant t = hour_start + minutes{m};
          if (full() && t >= out.back()) return false;
          add(t);
          return true;
        });
      });
    } else {
      for_each_bit(hours_, [&](int h) {
        const Instant hour_as_sys = day_as_sys + hours{h};
        if (hour_as_sys + minutes{59} + kMaxOffset <= lower) return true;   // all before `after`
        if (full() && hour_as_sys - kMaxOffset > out.back()) return false;  // all after the n-th kept
        return for_each_bit(minutes_, [&](int m) {
          const date::local_seconds local = start + hours{h} + minutes{m};
          const date::local_info info = tz->get_info(local);
          const seconds since_epoch = local.time_since_epoch();
          switch (info.result) {
            case date::local_info::unique:
              add(Instant{since_epoch - info.first.offset});
              break;
            case date::local_info::nonexistent:  // in a spring-forward gap
              if (fixed_time_) add(info.first.end);
              break;
            case date::local_info::ambiguous:  // repeated by a fall-back
              add(Instant{since_epoch - info.first.offset});
              if (!fixed_time_) add(Instant{since_epoch - info.second.offset});
              break;
          }
          return true;
        });
      });
    }
    day += date::days{1};
  }
  for (Instant& t : out) t += jitter;
  return out;
}

Status next_fire_times(std::string_view expr, std::string_view zone, Instant after, size_t n,
                       std::vector<Instant>* out) {
  Expression e;
  if (Status s = Expression::parse(expr, &e); !s) return s;
  const std::string name = zone.empty() ? std::string("UTC") : std::string(zone);
  const date::time_zone* tz = nullptr;
  try {
    tz = date::locate_zone(name);
  } catch (const std::exception&) {
    return Status::invalid("unknown time zone " + in_quotes(name));
  }
  *out = e.next(after, tz, n);
  return Status::ok();
}

int jitter_for(std::string_view job_id, int max_minutes) {
  max_minutes = std::clamp(max_minutes, 0, 59);
  if (max_minutes == 0) return 0;
  uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64-bit
  for (char c : job_id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<int>(hash % static_cast<uint64_t>(max_minutes + 1));
}

Status parse_instant(std::string_view text, Instant* out) {
  // YYYY-MM-DDTHH:MM:SS then Z or +HH:MM / -HH:MM.
  auto bad = [&] {
    return Status::invalid("invalid instant " + in_quotes(text) +
                           " (expected e.g. 2026-03-29T01:30:00Z or 2026-03-29T01:30:00+01:00)");
  };
  if (text.size() != 20 && text.size() != 25) return bad();
  auto number = [&](size_t pos, size_t len, int* v) { return parse_small_number(text.substr(pos, len), v); };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!number(0, 4, &y) || text[4] != '-' || !number(5, 2, &mo) || text[7] != '-' || !number(8, 2, &d) ||
      text[10] != 'T' || !number(11, 2, &h) || text[13] != ':' || !number(14, 2, &mi) || text[16] != ':' ||
      !number(17, 2, &s)) {
    return bad();
  }
  seconds offset{0};
  if (text.size() == 20) {
    if (text[19] != 'Z') return bad();
  } else {
    int oh = 0, om = 0;
    if ((text[19] != '+' && text[19] != '-') || !number(20, 2, &oh) || text[22] != ':' || !number(23, 2, &om) ||
        oh > 23 || om > 59) {
      return bad();
    }
    offset = hours{oh} + minutes{om};
    if (text[19] == '-') offset = -offset;
  }
  const date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)},
                                 date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return bad();
  *out = Instant{date::sys_days{ymd}} + hours{h} + minutes{mi} + seconds{s} - offset;
  return Status::ok();
}

std::string format_instant(Instant t) {
  return date::format("%FT%TZ", t);
}

}  // namespace opk::cron
