// service.h -- what the routes, the job types and the extension share:
// lists filtered to a caller's scope with cursor paging, all-or-nothing
// imports that count what they changed, and probes.
// Thread-safety: a Service may be used from any thread at once; the store
// and the kernel's identity service are.
#ifndef OPSKERNEL_PLUGINS_PLATFORM_RECORDS_SERVICE_H
#define OPSKERNEL_PLUGINS_PLATFORM_RECORDS_SERVICE_H

#include <opskernel/opk.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "formats.h"
#include "model.h"

namespace opk::records {

// Who asks: a request's principal, or the platform itself (job types, other
// plugins through opskernel.records/1).
struct Caller {
  std::string role;
  std::string scope = "platform";
  // PlatformAdministrator or System: every record, the platform-wide kinds.
  bool platform() const { return role == "PlatformAdministrator" || role == "System"; }
  static Caller system() { return {"System", "platform"}; }
};

// What a list asks for.
struct ListRequest {
  // Field -> value; values are checked against the field's type (text
  // from a query string is parsed). Null or "" means the field has no value.
  Json filter = Json::object();
  // The previous page's `next`; empty from the start.
  std::string cursor;
  int limit = 100;
};

// The largest page of the extension's lists.
inline constexpr int kMaxLimit = 10000;

// What an import did: counts, or the problems that refused it whole.
struct ImportResult {
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t unchanged = 0;
  // The first kMaxProblems problems, in line order; problem_count has all.
  std::vector<Problem> problems;
  int64_t problem_count = 0;
  bool refused() const { return problem_count > 0; }
  Json counts() const { return {{"inserted", inserted}, {"updated", updated}, {"unchanged", unchanged}}; }
  // {"problems": [{"line", "field", "problem"}], "problem_count": n}.
  Json problems_json() const;
};

inline constexpr size_t kMaxProblems = 100;

class Service {
 public:
  explicit Service(const Host& host);

  // Creates or updates the tables.
  Status migrate() const;

  // One page of `kind`'s records that `caller` may see: *answer gets
  // {"rows": [...], "next": cursor|null}. PERMISSION for a platform-wide kind
  // and a caller who is not platform-wide; INVALID_ARGUMENT naming the
  // filter's field, "cursor" or "limit".
  Status list(const Kind& kind, const Caller& caller, const ListRequest& request, Json* answer) const;

  // Every record of `kind` that `caller` may see and `request.filter`
  // selects, in key order (its cursor and limit are not used).
  Status all(const Kind& kind, const Caller& caller, const ListRequest& request, Json* rows) const;

  // Checks every row of `text` (in `format`) and, when none has a problem
  // and `write`, upserts them in one transaction. A refused import changes
  // nothing; its problems are in *result (the status stays OK). PERMISSION
  // for a platform-wide kind and a caller who is not platform-wide.
  Status import(const Kind& kind, const Caller& caller, std::string_view format, std::string_view text, bool write,
                ImportResult* result) const;

  // Checks every row of `rows` (a JSON array of objects of `kind`) as an
  // import does and, when none has a problem, upserts the changed ones in
  // one transaction; *answer gets {"inserted", "updated", "unchanged"}. A
  // bad row refuses all with INVALID_ARGUMENT naming the first problem
  // "rows[i].<field>" (and how many more there are).
  Status upsert(const Kind& kind, const Json& rows, Json* answer) const;

  // The newest probe per region and kind ("" for both kinds).
  Status latest_probes(const std::string& kind, Json* rows) const;

  // Stores one probe ({"region", "kind", "ok", "time_ms", "latency_ms"?,
  // "detail"?}); NOT_FOUND for an unknown region. Probes older than
  // `retention_ms` before it are deleted for its region and kind.
  Status record_probe(const Json& probe, int64_t retention_ms) const;

  // Stores every probe of `probes` (an array of record_probe's objects) in
  // one transaction, or none: the first bad one is named "probes[i].field".
  Status record_probes(const Json& probes, int64_t retention_ms) const;

  // Usage rows of the months before `before` ("YYYY-MM"), oldest month
  // first: *months gets [{"month", "rows"}].
  Status usage_months(const std::string& before, Json* months) const;

  // Deletes up to `limit` usage rows of the months before `before`, the
  // oldest months first, in one transaction; *answer gets {"deleted": n,
  // "months": [{"month", "rows"}]}: what was deleted, per month.
  Status delete_usage(const std::string& before, int limit, Json* answer) const;

  // Moves up to `limit` open invoices due before `as_of` ("YYYY-MM-DD"),
  // of `tenant` when not empty, to "overdue", the oldest due first, in one
  // transaction; *answer gets {"invoices": [the rows changed, as after],
  // "skipped": [{"id", "tenant", "due_date"}]}: open invoices whose
  // due_date is not a date (never marked), looked for when the batch is
  // the last (fewer than `limit` rows), at most kMaxProblems. `dry_run`
  // changes nothing: "invoices" are the first `limit` it would change and
  // "count" how many in all.
  Status mark_overdue(const std::string& as_of, int limit, const std::string& tenant, bool dry_run, Json* answer) const;

 private:
  Status store_probes(const Json& probes, int64_t retention_ms, bool batch) const;
  bool node_exists(const std::string& node) const;
  bool contains(const std::string& scope, const std::string& node) const;

  Host host_;
  Store store_;
  const opk_identity_v1* identity_;
};

// A list's cursor: the last key a page read, opaque to callers (URL-safe
// base64 of its JSON). decode_cursor refuses one that is not a key of
// `kind` with INVALID_ARGUMENT naming "cursor".
std::string encode_cursor(const Json& key);
Status decode_cursor(const Kind& kind, const std::string& cursor, Json* key);

}  // namespace opk::records

#endif  // OPSKERNEL_PLUGINS_PLATFORM_RECORDS_SERVICE_H
