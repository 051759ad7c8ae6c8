#include "jobs/cron.h"

#include <date/tz.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

// Expected fire times below were written by hand; the UTC instants of local
// times were checked with the system tools, e.g.
//   s=$(TZ=Europe/Stockholm date -d '2026-03-29 03:00' +%s); date -u -d @$s
//   TZ=America/New_York date -d 2026-11-01T06:00:00Z   (-> 01:00:00 EST)
// and weekdays with `date -u -d 2026-01-02 +%a`.

namespace opk::cron {
namespace {

using std::chrono::minutes;

Instant at(std::string_view iso) {
  Instant t;
  Status s = parse_instant(iso, &t);
  EXPECT_TRUE(s) << s.message();
  return t;
}

// The next `n` fire times of `expr` after `after`, in `zone`, formatted.
std::vector<std::string> fires(std::string_view expr, std::string_view zone, std::string_view after, size_t n,
                               int jitter = 0) {
  Expression e;
  Status s = Expression::parse(expr, &e);
  EXPECT_TRUE(s) << expr << ": " << s.message();
  e.set_jitter_minutes(jitter);
  std::vector<std::string> out;
  for (Instant t : e.next(at(after), date::locate_zone(std::string(zone)), n)) out.push_back(format_instant(t));
  return out;
}

// The error message parse() gives for `expr` (empty when it parses).
std::string parse_error(std::string_view expr) {
  Expression e;
  Status s = Expression::parse(expr, &e);
  if (s) return "";
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  return s.message();
}

struct Case {
  const char* expr;
  const char* after;
  std::vector<std::string> want;
  const char* why;
};

void check_cases(const char* zone, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.expr) + " after " + c.after + " in " + zone + ": " + c.why);
    EXPECT_EQ(fires(c.expr, zone, c.after, c.want.size()), c.want);
  }
}

// 2026-01-01 is a Thursday.
TEST(Cron, UtcBasics) {
  check_cases(
      "UTC", {
                 {"* * * * *",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z"},
                  "every minute, strictly after"},
                 {"* * * * *", "2026-01-01T00:00:30Z", {"2026-01-01T00:01:00Z"}, "seconds in `after` round up"},
                 {"*/15 * * * *",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z"},
                  "minutes 0,15,30,45"},
                 {"10-50/20 * * * *",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-01T00:10:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:50:00Z", "2026-01-01T01:10:00Z"},
                  "minutes 10,30,50"},
                 {"5/20 * * * *",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-01T00:05:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:05:00Z"},
                  "N/STEP is N-59/STEP: 5,25,45"},
                 {"0 9-17/4 * * *",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-01T09:00:00Z", "2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z"},
                  "hours 9,13,17"},
                 {"5,10 1,2 * * *",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-01T01:05:00Z", "2026-01-01T01:10:00Z", "2026-01-01T02:05:00Z", "2026-01-01T02:10:00Z",
                   "2026-01-02T01:05:00Z"},
                  "lists in minute and hour"},
                 {"0 0 1 JAN,jul *",
                  "2026-01-01T00:00:00Z",
                  {"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"},
                  "month names, any case; Jan 1 00:00 itself is not after `after`"},
                 {"0 9 * * MON-FRI",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-01T09:00:00Z", "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z"},
                  "Thu, Fri, (weekend skipped) Mon, Tue"},
                 {"0 12 * * 7",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-04T12:00:00Z", "2026-01-11T12:00:00Z"},
                  "7 is Sunday; Jan 4 and 11 are Sundays"},
                 {"0 12 * * 0", "2026-01-01T00:00:00Z", {"2026-01-04T12:00:00Z"}, "0 is Sunday too"},
                 {"0 0 * * 5-7",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"},
                  "Fri-Sun through 7"},
                 {"0 0 13 * FRI",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z",
                   "2026-01-23T00:00:00Z"},
                  "Vixie OR rule: Fridays (2, 9, 16, 23) and the 13th (a Tuesday)"},
                 {"0 0 13 * *",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"},
                  "day-of-month only"},
                 {"0 0 * * FRI",
                  "2026-01-01T00:00:00Z",
                  {"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-16T00:00:00Z"},
                  "day-of-week only"},
                 {"0 0 */10 * FRI",
                  "2026-01-01T00:00:00Z",
                  {"2026-05-01T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-21T00:00:00Z"},
                  "day-of-month starts with '*', so both must match (Vixie): a 1st/11th/21st/31st that is a Friday"},
                 {"0 0 31 2 MON",
                  "2026-01-01T00:00:00Z",
                  {"2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"},
                  "OR rule: Feb 31 never exists, but Mondays in February do"},
                 {"0\t0  *\t* *", "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z"}, "tabs and runs of blanks separate"},
             });
}

TEST(Cron, Macros) {
  check_cases("UTC",
              {
                  {"@yearly", "2026-01-01T00:00:00Z", {"2027-01-01T00:00:00Z"}, "0 0 1 1 *"},
                  {"@annually", "2026-01-01T00:00:00Z", {"2027-01-01T00:00:00Z"}, "0 0 1 1 *"},
                  {"@monthly", "2026-01-01T00:00:00Z", {"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}, "0 0 1 * *"},
                  {"@weekly", "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z"}, "0 0 * * 0: Sunday Jan 4"},
                  {"@daily", "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z"}, "0 0 * * *"},
                  {"@midnight", "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z"}, "0 0 * * *"},
                  {"@hourly", "2026-01-01T00:00:00Z", {"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}, "0 * * * *"},
              });
  Expression e;
  ASSERT_TRUE(Expression::parse("@daily", &e));
  EXPECT_EQ(e.text(), "@daily");
}

TEST(Cron, February29OnlyInLeapYears) {
  check_cases("UTC", {{"0 0 29 2 *",
                       "2026-01-01T00:00:00Z",
                       {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
                       "2026 and 2027 are not leap years"}});
  // Local midnight in Stockholm (CET, +01:00) is 23:00 UTC the day before.
  check_cases("Europe/Stockholm",
              {{"0 0 29 2 *", "2026-01-01T00:00:00Z", {"2028-02-28T23:00:00Z"}, "local Feb 29 00:00 CET"}});
}

TEST(Cron, RareButPossibleExpressionIsFoundAcrossDecades) {
  // "*/7" in day-of-week is {0, 7}: Sunday; the day-of-month starts with a
  // digit and the day-of-week with '*', so both must match: a Sunday Feb 29.
  // Those are 2032, 2060, 2088, then 2128 (2100 is not a leap year).
  check_cases("UTC", {{"0 0 29 2 */7",
                       "2033-01-01T00:00:00Z",
                       {"2060-02-29T00:00:00Z", "2088-02-29T00:00:00Z", "2128-02-29T00:00:00Z"},
                       "Sunday Feb 29"}});
}

// parse() rejects a day-of-month/month pair that never occurs (when the
// day-of-month must match), so next() never has to search in vain.
TEST(Cron, NeverFiringExpressionIsRejectedAtParse) {
  for (const char* expr : {"0 0 30 2 *", "0 0 31 4 *", "0 0 31 4,6,9,11 *", "0 0 30,31 2 */2"}) {
    SCOPED_TRACE(expr);
    const std::string msg = parse_error(expr);
    EXPECT_NE(msg.find("day-of-month (field 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("never fire"), std::string::npos) << msg;
  }
  // Neither day field starts with '*', so the OR rule applies: weekdays in February still fire.
  EXPECT_EQ(parse_error("0 0 30,31 2 1-5"), "");

  std::vector<Instant> out;
  Status s = next_fire_times("0 0 30 2 *", "UTC", at("2026-01-01T00:00:00Z"), 5, &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(out.empty());
}

TEST(Cron, DefaultExpressionAndZeroCountFireNothing) {
  Expression none;
  EXPECT_TRUE(none.next(at("2026-01-01T00:00:00Z"), date::locate_zone("UTC"), 5).empty());
  EXPECT_TRUE(fires("* * * * *", "UTC", "2026-01-01T00:00:00Z", 0).empty());
}

// Europe/Stockholm: CET (+01:00) / CEST (+02:00). 2026-03-29 02:00 CET jumps to
// 03:00 CEST at 01:00Z; 2026-10-25 03:00 CEST falls back to 02:00 CET at 01:00Z.
TEST(Cron, StockholmSpringForward) {
  check_cases("Europe/Stockholm",
              {
                  {"30 2 * * *",
                   "2026-03-28T12:00:00Z",
                   {"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
                   "fixed-time 02:30 does not exist on the 29th: once at the transition (03:00 CEST = 01:00Z); "
                   "then 02:30 CEST"},
                  {"0,30 2,3 * * *",
                   "2026-03-28T12:00:00Z",
                   {"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"},
                   "02:00, 02:30 (gap) and 03:00 CEST all land on 01:00Z and fire once; 03:30 CEST = 01:30Z"},
                  {"*/30 * * * *",
                   "2026-03-29T00:00:00Z",
                   {"2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"},
                   "wildcard: 01:30 CET, then 02:00/02:30 do not exist and are skipped, 03:00 CEST, 03:30 CEST"},
                  {"30 1 * * *",
                   "2026-03-28T12:00:00Z",
                   {"2026-03-29T00:30:00Z", "2026-03-29T23:30:00Z"},
                   "before the gap: 01:30 CET = 00:30Z; next day 01:30 CEST = 23:30Z the day before"},
              });
}

TEST(Cron, StockholmFallBack) {
  check_cases("Europe/Stockholm",
              {
                  {"30 2 * * *",
                   "2026-10-24T12:00:00Z",
                   {"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
                   "fixed-time 02:30 happens twice on the 25th: only the first (CEST, 00:30Z); next day 02:30 CET"},
                  {"0,30 2 * * *",
                   "2026-10-24T12:00:00Z",
                   {"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:00:00Z", "2026-10-26T01:30:00Z"},
                   "fixed-time: first occurrences of 02:00 and 02:30 (CEST) only"},
                  {"0,30 * * * *",
                   "2026-10-24T23:45:00Z",
                   {"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z",
                    "2026-10-25T02:00:00Z"},
                   "wildcard hour: 02:00 CEST, 02:30 CEST, 02:00 CET, 02:30 CET, 03:00 CET -- every real half hour"},
              });
}

// America/New_York: EST (-05:00) / EDT (-04:00). 2026-03-08 02:00 EST jumps to
// 03:00 EDT at 07:00Z; 2026-11-01 02:00 EDT falls back to 01:00 EST at 06:00Z.
TEST(Cron, NewYorkSpringForward) {
  check_cases("America/New_York",
              {
                  {"30 2 * * *",
                   "2026-03-07T12:00:00Z",
                   {"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"},
                   "02:30 does not exist on the 8th: once at 03:00 EDT = 07:00Z; then 02:30 EDT = 06:30Z"},
                  {"30 1 * * *",
                   "2026-03-07T12:00:00Z",
                   {"2026-03-08T06:30:00Z", "2026-03-09T05:30:00Z"},
                   "01:30 exists on both days: EST then EDT"},
                  {"*/30 * * * *",
                   "2026-03-08T06:15:00Z",
                   {"2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"},
                   "01:30 EST, (02:00 and 02:30 skipped), 03:00 EDT, 03:30 EDT"},
              });
}

TEST(Cron, NewYorkFallBack) {
  check_cases("America/New_York", {
                                      {"30 1 * * *",
                                       "2026-10-31T12:00:00Z",
                                       {"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
                                       "01:30 happens twice on Nov 1: first (EDT) only; then 01:30 EST"},
                                      {"30 2 * * *",
                                       "2026-10-30T12:00:00Z",
                                       {"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"},
                                       "02:30 EDT, then 02:30 EST (unique after the fall-back)"},
                                      {"*/30 * * * *",
                                       "2026-11-01T04:45:00Z",
                                       {"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z",
                                        "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"},
                                       "01:00 EDT, 01:30 EDT, 01:00 EST, 01:30 EST, 02:00 EST"},
                                  });
}

// America/Santiago changes at local midnight: 2026-04-05 00:00 -03 falls back
// to 2026-04-04 23:00 -04 (03:00Z); 2026-09-06 00:00 -04 jumps to 01:00 -03 (04:00Z).
TEST(Cron, SantiagoTransitionsAtMidnight) {
  check_cases("America/Santiago",
              {
                  {"0 0 * * *",
                   "2026-09-05T12:00:00Z",
                   {"2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"},
                   "midnight of Sep 6 does not exist: once at 01:00 -03 = 04:00Z; then 00:00 -03"},
                  {"30 23 * * *",
                   "2026-04-04T12:00:00Z",
                   {"2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"},
                   "23:30 on Apr 4 happens twice: first (-03) only; then 23:30 -04 on Apr 5"},
                  {"30 * * * *",
                   "2026-04-05T01:00:00Z",
                   {"2026-04-05T01:30:00Z", "2026-04-05T02:30:00Z", "2026-04-05T03:30:00Z", "2026-04-05T04:30:00Z"},
                   "22:30 -03, 23:30 -03, 23:30 -04, 00:30 -04"},
              });
}

// Checks wildcard expressions against a brute force that walks real minutes
// and converts each to local time (sys -> local is never ambiguous), which is
// what "periodic in real time" means.
TEST(Cron, WildcardJobsMatchBruteForceAcrossTransitions) {
  struct Probe {
    const char* expr;
    std::function<bool(const date::year_month_day&, date::weekday, int hour, int minute)> match;
  };
  const std::vector<Probe> probes = {
      {"*/15 * * * *", [](auto&, auto, int, int m) { return m % 15 == 0; }},
      {"*/20 1-3 * * *", [](auto&, auto, int h, int m) { return h >= 1 && h <= 3 && m % 20 == 0; }},
      {"10 * * * SUN", [](auto&, auto wd, int, int m) { return m == 10 && wd == date::Sunday; }},
      {"* 2 * * *", [](auto&, auto, int h, int) { return h == 2; }},
      {"*/7 */5 1-10,20-31 * *", [](auto& ymd, auto, int h, int m) {
         const unsigned d = unsigned(ymd.day());
         return (d <= 10 || d >= 20) && h % 5 == 0 && m % 7 == 0;
       }}};
  struct Window {
    const char* zone;
    const char* after;
  };
  const std::vector<Window> windows = {
      {"Europe/Stockholm", "2026-03-27T00:00:00Z"},    {"Europe/Stockholm", "2026-10-23T00:00:00Z"},
      {"America/New_York", "2026-03-06T00:00:00Z"},    {"America/New_York", "2026-10-30T00:00:00Z"},
      {"America/Santiago", "2026-04-03T00:00:00Z"},    {"America/Santiago", "2026-09-04T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-03T00:00:00Z"},  // +11 -> +10:30, a half-hour change
      {"Australia/Lord_Howe", "2026-10-02T00:00:00Z"}, {"UTC", "2026-02-27T00:00:00Z"},
  };
  for (const Window& w : windows) {
    const date::time_zone* tz = date::locate_zone(w.zone);
    const Instant after = at(w.after);
    for (const Probe& p : probes) {
      SCOPED_TRACE(std::string(p.expr) + " in " + w.zone + " after " + w.after);
      std::vector<Instant> want;
      for (Instant t = after + minutes(1); t < after + std::chrono::hours(24 * 5); t += minutes(1)) {
        const auto local = tz->to_local(t);
        const auto day = date::floor<date::days>(local);
        const date::hh_mm_ss<std::chrono::seconds> hms{local - day};
        if (p.match(date::year_month_day{day}, date::weekday{day}, static_cast<int>(hms.hours().count()),
                    static_cast<int>(hms.minutes().count()))) {
          want.push_back(t);
        }
      }
      ASSERT_FALSE(want.empty());
      Expression e;
      ASSERT_TRUE(Expression::parse(p.expr, &e));
      EXPECT_EQ(e.next(after, tz, want.size()), want);
    }
  }
}

// Checks day rules (Vixie OR / AND), month lengths and Feb 29 against a brute
// force over 400 days of UTC minutes.
TEST(Cron, DayRulesMatchBruteForceInUtc) {
  struct Probe {
    const char* expr;
    std::function<bool(unsigned month, unsigned day, unsigned weekday, int hour, int minute)> match;
  };
  const std::vector<Probe> probes = {
      {"0 0 13 * FRI",
       [](unsigned, unsigned d, unsigned wd, int h, int m) { return (d == 13 || wd == 5) && !h && !m; }},
      {"0 0 */10 * FRI",
       [](unsigned, unsigned d, unsigned wd, int h, int m) { return d % 10 == 1 && wd == 5 && !h && !m; }},
      {"15 10 1-7 * MON",
       [](unsigned, unsigned d, unsigned wd, int h, int m) { return (d <= 7 || wd == 1) && h == 10 && m == 15; }},
      {"15 10 * 2,5 sun-tue", [](unsigned mo, unsigned, unsigned wd, int h,
                                 int m) { return (mo == 2 || mo == 5) && wd <= 2 && h == 10 && m == 15; }},
      {"0 12 31 * *", [](unsigned, unsigned d, unsigned, int h, int m) { return d == 31 && h == 12 && !m; }},
      {"30 6 29 2 *",
       [](unsigned mo, unsigned d, unsigned, int h, int m) { return mo == 2 && d == 29 && h == 6 && m == 30; }},
      {"*/20 23 28-31 * 6",
       [](unsigned, unsigned d, unsigned wd, int h, int m) { return (d >= 28 || wd == 6) && h == 23 && m % 20 == 0; }},
  };
  const Instant after = at("2027-06-01T00:00:00Z");
  for (const Probe& p : probes) {
    SCOPED_TRACE(p.expr);
    std::vector<Instant> want;
    for (Instant t = after + minutes(1); t < after + std::chrono::hours(24 * 400); t += minutes(1)) {
      const auto day = date::floor<date::days>(t);
      const date::year_month_day ymd{day};
      const date::hh_mm_ss<std::chrono::seconds> hms{t - day};
      if (p.match(unsigned(ymd.month()), unsigned(ymd.day()), date::weekday{day}.c_encoding(),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()))) {
        want.push_back(t);
      }
    }
    ASSERT_FALSE(want.empty());
    Expression e;
    ASSERT_TRUE(Expression::parse(p.expr, &e));
    EXPECT_EQ(e.next(after, date::locate_zone("UTC"), want.size()), want);
  }
}

TEST(Cron, InvalidExpressionsNameFieldAndReason) {
  struct Bad {
    const char* expr;
    std::vector<const char*> parts;
  };
  const std::vector<Bad> cases = {
      {"60 * * * *", {"minute (field 1)", "'60' is out of range 0-59"}},
      {"* 24 * * *", {"hour (field 2)", "'24' is out of range 0-23"}},
      {"* 25 * * *", {"hour (field 2): '25' is out of range 0-23"}},
      {"* * 0 * *", {"day-of-month (field 3)", "'0' is out of range 1-31"}},
      {"* * 32 * *", {"day-of-month (field 3)", "'32' is out of range 1-31"}},
      {"* * * 13 *", {"month (field 4)", "'13' is out of range 1-12"}},
      {"* * * * 8", {"day-of-week (field 5)", "'8' is out of range 0-7"}},
      {"*/0 * * * *", {"minute (field 1)", "step must be at least 1"}},
      {"* */x * * *", {"hour (field 2)", "invalid step"}},
      {"* 1/ * * *", {"hour (field 2)", "invalid step"}},
      {"5-1 * * * *", {"minute (field 1)", "'5-1' has start greater than end"}},
      {"* * * DEC-JAN *", {"month (field 4)", "start greater than end"}},
      {"* * * FOO *", {"month (field 4)", "unknown name 'FOO'"}},
      {"* * * * mox", {"day-of-week (field 5): unknown name 'mox'"}},
      {"* * * * MONDAY", {"day-of-week (field 5)", "unknown name 'MONDAY'"}},
      {"* * *", {"expected 5 fields, got 3"}},
      {"* * * *", {"expected 5 fields, got 4"}},
      {"* * * * * *", {"expected 5 fields, got 6"}},
      {"", {"expected 5 fields, got 0"}},
      {"@reboot", {"@reboot"}},
      {"@sometimes", {"unknown macro '@sometimes'"}},
      {"@daily 5", {"unexpected text after macro '@daily'"}},
      {"1,,2 * * * *", {"minute (field 1)", "empty item"}},
      {"1, * * * *", {"minute (field 1)", "empty item"}},
      {"* * * * ,1", {"day-of-week (field 5)", "empty item"}},
      {"abc * * * *", {"minute (field 1)", "'abc' is not a number"}},
      {"5x * * * *", {"minute (field 1)", "invalid value '5x'"}},
      {"1-2-3 * * * *", {"minute (field 1)", "invalid value '2-3'"}},
      {"*-5 * * * *", {"minute (field 1)", "invalid value '*'"}},
      {"1-* * * * *", {"minute (field 1)", "invalid value '*'"}},
      {"-5 * * * *", {"minute (field 1)", "missing value"}},
      {"* * * JAN- *", {"month (field 4)", "missing value"}},
      {"99999999999999999999 * * * *", {"minute (field 1)", "out of range 0-59"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.expr);
    const std::string msg = parse_error(b.expr);
    ASSERT_FALSE(msg.empty()) << "parsed";
    for (const char* part : b.parts) EXPECT_NE(msg.find(part), std::string::npos) << msg;
  }
}

TEST(Cron, FailedParseLeavesTheExpressionAlone) {
  Expression e;
  ASSERT_TRUE(Expression::parse("0 0 * * *", &e));
  EXPECT_FALSE(Expression::parse("0 0 * *", &e));
  EXPECT_EQ(e.text(), "0 0 * * *");
  EXPECT_EQ(e.next(at("2026-01-01T00:00:00Z"), date::locate_zone("UTC"), 1),
            std::vector<Instant>{at("2026-01-02T00:00:00Z")});
}

TEST(Cron, NextFireTimesLocatesZone) {
  std::vector<Instant> out;
  Status s = next_fire_times("30 2 * * *", "Europe/Stockholm", at("2026-03-28T12:00:00Z"), 1, &out);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(out, std::vector<Instant>{at("2026-03-29T01:00:00Z")});

  s = next_fire_times("30 2 * * *", "", at("2026-03-28T12:00:00Z"), 1, &out);  // empty: UTC
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(out, std::vector<Instant>{at("2026-03-29T02:30:00Z")});

  s = next_fire_times("* * * * *", "Mars/Olympus_Mons", at("2026-01-01T00:00:00Z"), 1, &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message(), "unknown time zone 'Mars/Olympus_Mons'");

  s = next_fire_times("* 24 * * *", "UTC", at("2026-01-01T00:00:00Z"), 1, &out);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("hour (field 2)"), std::string::npos);
}

TEST(Cron, InstantsParseAndFormat) {
  EXPECT_EQ(at("1970-01-01T00:00:00Z").time_since_epoch().count(), 0);
  EXPECT_EQ(at("2026-03-29T01:30:00Z").time_since_epoch().count(), 1774747800);  // date -u -d ... +%s
  EXPECT_EQ(format_instant(at("2026-03-29T01:30:00Z")), "2026-03-29T01:30:00Z");
  EXPECT_EQ(format_instant(at("2026-03-29T01:30:00+01:00")), "2026-03-29T00:30:00Z");
  EXPECT_EQ(format_instant(at("2026-03-29T01:30:00-05:30")), "2026-03-29T07:00:00Z");
  EXPECT_EQ(format_instant(at("2028-02-29T23:59:59Z")), "2028-02-29T23:59:59Z");
  for (const char* bad :
       {"", "2026-03-29", "2026-03-29 01:30:00Z", "2026-03-29T01:30:00", "2026-03-29T01:30:00z",
        "2026-03-29T01:30:00+0100", "2026-03-29T01:30:00.5Z", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z", "2026-03-29T24:00:00Z", "2026-03-29T01:60:00Z", "2026-03-29T01:30:60Z",
        "2026-03-29T01:30:00+24:00", "x026-03-29T01:30:00Z", "2026-03-29T01:30:00Zjunk", "+026-03-29T01:30:00Z"}) {
    SCOPED_TRACE(bad);
    Instant t;
    Status s = parse_instant(bad, &t);
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  }
}

TEST(Cron, JitterIsDeterministicAndInRange) {
  EXPECT_EQ(jitter_for("nightly-backup", 0), 0);
  EXPECT_EQ(jitter_for("nightly-backup", 15), jitter_for("nightly-backup", 15));
  // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (not std::hash): mod 60 is 16, mod 16 is 12.
  EXPECT_EQ(jitter_for("a", 59), 16);
  EXPECT_EQ(jitter_for("a", 15), 12);
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    const int j = jitter_for("job-" + std::to_string(i), 15);
    EXPECT_GE(j, 0);
    EXPECT_LE(j, 15);
    seen.insert(j);
  }
  EXPECT_GT(seen.size(), 10u);  // ids spread over the range
  EXPECT_LE(jitter_for("x", 1000), 59);
  EXPECT_EQ(jitter_for("x", -3), 0);
}

TEST(Cron, JitterShiftsFireTimes) {
  EXPECT_EQ(fires("0 0 * * *", "UTC", "2026-01-01T00:00:00Z", 2, 7),
            (std::vector<std::string>{"2026-01-01T00:07:00Z", "2026-01-02T00:07:00Z"}))
      << "Jan 1 00:00 + 7 min is after `after`, so it counts";
  EXPECT_EQ(fires("0 0 * * *", "UTC", "2026-01-01T00:07:00Z", 1, 7), std::vector<std::string>{"2026-01-02T00:07:00Z"})
      << "strictly after";
  EXPECT_EQ(fires("30 2 * * *", "Europe/Stockholm", "2026-03-28T12:00:00Z", 2, 10),
            (std::vector<std::string>{"2026-03-29T01:10:00Z", "2026-03-30T00:40:00Z"}))
      << "added in absolute time after the DST rule";
  Expression e;
  ASSERT_TRUE(Expression::parse("*/5 * * * *", &e));
  e.set_jitter_minutes(99);
  EXPECT_EQ(e.jitter_minutes(), 59);
  e.set_jitter_minutes(3);
  const Instant after = at("2026-10-25T00:58:00Z");
  const std::vector<Instant> got = e.next(after, date::locate_zone("Europe/Stockholm"), 50);
  ASSERT_EQ(got.size(), 50u);
  EXPECT_GT(got.front(), after);
  for (size_t i = 1; i < got.size(); ++i) EXPECT_EQ(got[i] - got[i - 1], minutes(5));  // periodic in real time
}

}  // namespace
}  // namespace opk::cron
