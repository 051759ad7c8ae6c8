// cron.h -- cron schedules for scheduled jobs: parses 5-field (Vixie/cronie)
// expressions and macros, and computes the next fire instants in a time zone
// from the system tz database, with cronie's daylight-saving rules and a
// deterministic per-job jitter. Also ISO-8601 instant parsing and formatting.
//
// Thread-safety: an Expression is immutable after parse() and set_jitter_minutes(),
// so const methods may be called from any number of threads at once. The free
// functions are thread-safe.
//
// Semantics, in short (details in cron.cpp):
// - Day rule: when both day-of-month and day-of-week are restricted (neither
//   field starts with '*'), a day matches when either matches; otherwise both
//   must match (so a plain '*' leaves the other field as the only restriction).
// - parse() rejects a day-of-month/month combination that can never occur
//   ("0 0 30 2 *"); every accepted expression fires at least once in any
//   400-year window, which is how far next() searches.
// - Daylight saving: a "fixed-time" job (neither minute nor hour starts with
//   '*') due in a spring-forward gap fires once at the transition instant, and
//   once (first occurrence) for a repeated local time; a "wildcard" job skips
//   slots in a gap and fires at both occurrences of a repeated local time.
#ifndef OPSKERNEL_KERNEL_JOBS_CRON_H
#define OPSKERNEL_KERNEL_JOBS_CRON_H

#include <opskernel/status.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace date {
class time_zone;
}

namespace opk::cron {

// An absolute point in time, UTC, whole seconds.
using Instant = std::chrono::sys_seconds;

// A parsed 5-field cron expression (minute hour day-of-month month day-of-week) or macro.
class Expression {
 public:
  // An expression that never fires; assign from parse().
  Expression() = default;

  // Parses `text` into *out (left unchanged on error). On error returns
  // INVALID_ARGUMENT naming the field, its 1-based position and the reason,
  // e.g. "hour (field 2): '25' is out of range 0-23".
  static Status parse(std::string_view text, Expression* out);

  // The next `n` fire instants strictly after `after`, in increasing order, with
  // the expression evaluated in the wall-clock time of `tz`. Fewer than `n` only
  // when nothing more fires within 400 years (or for a default-constructed one).
  std::vector<Instant> next(Instant after, const date::time_zone* tz, size_t n) const;

  // Sets the minute offset added to every fire time (deterministic jitter); clamped to 0..59; default 0.
  void set_jitter_minutes(int minutes);

  // The jitter in minutes.
  int jitter_minutes() const { return jitter_minutes_; }

  // The text it was parsed from.
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  uint64_t minutes_ = 0;       // bit m: minute m (0-59)
  uint32_t hours_ = 0;         // bit h: hour h (0-23)
  uint32_t days_ = 0;          // bit d: day-of-month d (1-31)
  uint16_t months_ = 0;        // bit m: month m (1-12)
  uint8_t weekdays_ = 0;       // bit d: day-of-week d (0-6, 0 = Sunday)
  bool day_star_ = false;      // day-of-month field starts with '*'
  bool weekday_star_ = false;  // day-of-week field starts with '*'
  bool fixed_time_ = false;    // neither minute nor hour starts with '*'
  int jitter_minutes_ = 0;
};

// Parses `expr`, locates `zone` ("UTC" when empty) and stores the next `n` fire
// instants after `after` in *out. Unknown zone: INVALID_ARGUMENT "unknown time zone 'X'".
Status next_fire_times(std::string_view expr, std::string_view zone, Instant after, size_t n,
                       std::vector<Instant>* out);

// Deterministic jitter for a job id, 0..max_minutes (max_minutes clamped to 0..59): a
// stable FNV-1a hash of `job_id` mod (max_minutes + 1); 0 when max_minutes is 0.
int jitter_for(std::string_view job_id, int max_minutes);

// Parses an ISO-8601 instant in UTC or with an offset ("2026-03-29T01:30:00Z",
// "2026-03-29T01:30:00+01:00"); INVALID_ARGUMENT otherwise.
Status parse_instant(std::string_view text, Instant* out);

// Formats `t` as "2026-03-29T01:30:00Z".
std::string format_instant(Instant t);

}  // namespace opk::cron

#endif  // OPSKERNEL_KERNEL_JOBS_CRON_H
