// records.hpp -- opk::Records, the C++ view of opskernel.records/1 (records.h).
//
// Header-only, on opk::Json. A plugin that reads the platform's business
// records declares the requirement in its manifest:
//
//   .requires_extension(OPK_EXT_RECORDS)
//
// and then, from init on:
//
//   opk::Records records(host());
//   Status s = records.list("subscriptions", {{"status", "active"}}, [&](const opk::Json& rows) {
//     for (const auto& row : rows) ...;
//     return opk::Status::ok();
//   });
//
// Thread-safety: as the extension, every call may be made from any thread.
#ifndef OPSKERNEL_RECORDS_HPP
#define OPSKERNEL_RECORDS_HPP

#include <opskernel/records.h>
#include <opskernel/opk.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace opk {

// The records' calendar fields (records.h) from the kernel's clock, UTC.

// "YYYY-MM" of the month `back` months before the one holding `ms` since the
// epoch.
inline std::string records_month(int64_t ms, int back = 0) {
  using namespace std::chrono;
  const year_month_day d{floor<days>(sys_time<milliseconds>(milliseconds(ms)))};
  const year_month ym = year_month(d.year(), d.month()) - months(back);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(ym.year()), static_cast<unsigned>(ym.month()));
  return buf;
}

// "YYYY-MM-DD" of the day holding `ms` since the epoch.
inline std::string records_date(int64_t ms) {
  using namespace std::chrono;
  const year_month_day d{floor<days>(sys_time<milliseconds>(milliseconds(ms)))};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return buf;
}

// True for "YYYY-MM" with a month 01..12 and a year after 0000.
inline bool valid_records_month(std::string_view s) {
  if (s.size() != 7 || s[4] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6})
    if (s[i] < '0' || s[i] > '9') return false;
  const int m = (s[5] - '0') * 10 + (s[6] - '0');
  return m >= 1 && m <= 12 && s.substr(0, 4) != "0000";
}

// The platform's records (subscriptions, usage, billing, invoices, budgets,
// licenses, regions, probes, billing lines, commissions) through
// OPK_EXT_RECORDS.
class Records {
 public:
  explicit Records(const Host& host) : host_(host), r_(host.extension<opk_records_v1>(OPK_EXT_RECORDS)) {}

  // False when the kernel has no provider or the manifest lacks the
  // requirement; every call then answers UNAVAILABLE.
  bool available() const { return r_ != nullptr && r_->call != nullptr; }

  // Runs `operation` with `request`; *answer gets the answer object (on
  // failure the status carries the provider's message).
  Status call(std::string_view operation, const Json& request, Json* answer) const {
    if (!available()) return unavailable();
    const std::string op(operation);
    const std::string body = request.is_null() ? std::string("{}") : request.dump();
    char* out = nullptr;
    const opk_status st = r_->call(host_.raw(), op.c_str(), body.c_str(), &out);
    Json parsed = out ? Json::parse(out, nullptr, false) : Json();
    if (out && r_->free) r_->free(out);
    if (st != OPK_OK) {
      std::string why = "records " + op + " failed with status " + std::to_string(st);
      if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string())
        why = "records " + op + ": " + parsed["error"].get<std::string>();
      return {st, why};
    }
    if (!parsed.is_object()) return {OPK_ERR_INTERNAL, "records " + op + ": the answer is not a JSON object"};
    if (answer) *answer = std::move(parsed);
    return Status::ok();
  }

  // Called once per page with the page's rows (a JSON array of objects);
  // a non-OK status stops the listing and is returned by list().
  using PageFn = std::function<Status(const Json& rows)>;

  // Lists every record of `kind` whose fields equal `filter`'s (an object,
  // or null for all), page by page of at most `page_size` rows (1..10000).
  Status list(std::string_view kind, const Json& filter, const PageFn& page, int page_size = 1000) const {
    Json request = {{"kind", std::string(kind)}, {"limit", page_size}};
    if (!filter.is_null()) request["filter"] = filter;
    for (;;) {
      Json answer;
      Status s = call("list", request, &answer);
      if (!s) return s;
      const Json rows = answer.value("rows", Json::array());
      if (!rows.empty()) {
        Status p = page(rows);
        if (!p) return p;
      }
      const auto next = answer.find("next");
      if (next == answer.end() || !next->is_string()) return Status::ok();
      request["after"] = *next;
    }
  }

  // The newest probe per region and kind ("api", "identity"; empty: both)
  // into *rows, an array of {"region", "kind", "time_ms", "ok",
  // "latency_ms", "detail"}.
  Status latest_probes(std::string_view kind, Json* rows) const {
    Json request = Json::object();
    if (!kind.empty()) request["kind"] = std::string(kind);
    Json answer;
    Status s = call("latest_probes", request, &answer);
    if (s && rows) *rows = answer.value("rows", Json::array());
    return s;
  }

  // Records one probe: {"region", "kind", "ok", "time_ms", "latency_ms"?,
  // "detail"?}.
  Status record_probe(const Json& probe) const { return call("record_probe", probe, nullptr); }

  // Records 1 to 1000 probes (an array of record_probe's objects) in one
  // transaction, or none of them.
  Status record_probes(const Json& probes) const { return call("record_probes", {{"probes", probes}}, nullptr); }

  // Upserts 1 to 1000 rows of `kind` ("usage", "billing_lines" or
  // "commissions") by their key in one transaction, or none: a bad row is
  // named "rows[i].<field>". *answer (may be null) gets {"inserted",
  // "updated", "unchanged"}.
  Status upsert(std::string_view kind, const Json& rows, Json* answer) const {
    return call("upsert", {{"kind", std::string(kind)}, {"rows", rows}}, answer);
  }

  // Usage rows per month before `before` ("YYYY-MM") into *months, an
  // array of {"month", "rows"}, oldest first.
  Status usage_months(std::string_view before, Json* months) const {
    Json answer;
    Status s = call("usage_months", {{"before", std::string(before)}}, &answer);
    if (s && months) *months = answer.value("months", Json::array());
    return s;
  }

  // Deletes up to `limit` (1..10000) usage rows of the months before
  // `before` ("YYYY-MM", not later than the current month), oldest first,
  // in one transaction; *answer gets {"deleted", "months": [{"month",
  // "rows"}]}.
  Status delete_usage(std::string_view before, int limit, Json* answer) const {
    return call("delete_usage", {{"before", std::string(before)}, {"limit", limit}}, answer);
  }

  // Moves up to `limit` (1..10000) open invoices due before `as_of`
  // ("YYYY-MM-DD", not later than today), of `tenant` when not empty, to
  // "overdue", oldest due first, in one transaction; *answer gets
  // {"invoices": [rows changed], "skipped": [{"id", "tenant", "due_date"}]}.
  Status mark_overdue(std::string_view as_of, int limit, std::string_view tenant, Json* answer) const {
    Json request = {{"as_of", std::string(as_of)}, {"limit", limit}};
    if (!tenant.empty()) request["tenant"] = std::string(tenant);
    return call("mark_overdue", request, answer);
  }

 private:
  static Status unavailable() {
    return {OPK_ERR_UNAVAILABLE, "the records service (" OPK_EXT_RECORDS
                                 ") is not available: is platform-records loaded and the "
                                 "requirement in the manifest?"};
  }
  Host host_;
  const opk_records_v1* r_;
};

}  // namespace opk

#endif  // OPSKERNEL_RECORDS_HPP
