/*
 * records.h -- opskernel.records/1 (OPK_EXT_RECORDS), the platform's business records for plugins
 * (pure C, C99/C11 and C++ compatible).
 *
 * The plugin `platform-records` keeps the records operators import
 * (subscriptions, usage, billing contacts, invoices, budgets, licenses,
 * regions), the probes health checks record and the billing lines and
 * commissions the usage collection generates, and offers them to other
 * plugins through this extension. A consumer lists OPK_EXT_RECORDS among its
 * manifest's requirements, then finds the table with
 * opk_host.get_extension(host, OPK_EXT_RECORDS). C++ consumers use the
 * wrapper opk::Records (records.hpp).
 *
 * Thread-safety: every call is [thread-safe]. docs/records.md describes the
 * kinds, their fields and each operation.
 */
#ifndef OPSKERNEL_RECORDS_H
#define OPSKERNEL_RECORDS_H

#include <opskernel/opk_abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Extension id of the records service. A plugin provides it, so its id is
 *  outside the prefix "opk.", which the kernel keeps for its own services. */
#define OPK_EXT_RECORDS "opskernel.records/1"

/**
 * The records service, by operation name, JSON in and out (as the kernel's opk.jobs/1).
 * Rows are JSON objects with typed values: numbers as numbers, booleans as
 * booleans, a field without a value as null.
 *
 * Kinds and their fields:
 *   subscriptions {id, tenant ("tenant:<n>"), product, status
 *                  ("active"|"suspended"|"cancelled"), period_start
 *                  ("YYYY-MM-DD"), period_end ("YYYY-MM-DD"|null),
 *                  region (a stored region's id|null)}
 *   usage         {subscription, month ("YYYY-MM"), quantity, cost}
 *   billing       {tenant, contact, email, address|null, payment_method|null}
 *   invoices      {id, tenant, subscription|null, amount, currency,
 *                  due_date ("YYYY-MM-DD"), status ("open"|"paid"|"overdue"|"void")}
 *   budgets       {id, tenant, subscription|null, amount, warning_percent
 *                  (1..100), month_on_month_jump_percent|null}
 *   licenses      {id, product, expires_on ("YYYY-MM-DD"), renewed_on|null}
 *   regions       {id, name, api_url, identity_url, usage_url|null (the
 *                  region's usage provider), currency|null ("EUR")}
 *   probes        {region, kind ("api"|"identity"), time_ms, ok (boolean),
 *                  latency_ms|null, detail|null}
 *   billing_lines {subscription, month, tenant, region|null, quantity,
 *                  amount, currency, run_id|null}, key (subscription, month)
 *   commissions   {subscription, month, role ("partner"|"distributor"),
 *                  party ("partner:<n>"), tenant, percent, base, amount,
 *                  currency, run_id|null}, key (subscription, month, role)
 *
 * Operations:
 *   "list"          {"kind", "filter": {field: value, ...} (equality on the
 *                   kind's fields), "after": cursor (from the previous
 *                   page), "limit": 1..10000 (default 1000)}
 *                   -> {"rows": [...], "next": cursor|null}
 *                   Rows come in key order; "next" is null on the last page.
 *   "latest_probes" {"kind"?: "api"|"identity"}
 *                   -> {"rows": [{"region", "kind", "time_ms", "ok",
 *                   "latency_ms", "detail"}, ...]}: the newest probe per
 *                   region and kind.
 *   "record_probe"  {"region", "kind", "ok", "time_ms", "latency_ms"?,
 *                   "detail"?} -> {"recorded": true}
 *   "record_probes" {"probes": [probe, ...] (1..1000, each as for
 *                   record_probe)} -> {"recorded": n}: all in one
 *                   transaction, or none (the first bad one is named
 *                   "probes[i].<field>").
 *   "upsert"        {"kind": "usage"|"billing_lines"|"commissions", "rows":
 *                   [row, ...] (1..1000)} -> {"inserted", "updated",
 *                   "unchanged"}: every row checked as an import checks it
 *                   (references included), then the changed ones upserted
 *                   by their key in one transaction; a bad row refuses all,
 *                   named "rows[i].<field>". A rerun updates, never adds.
 *   "usage_months"  {"before": "YYYY-MM"} -> {"months": [{"month", "rows"},
 *                   ...]}: usage rows per month before "before", oldest
 *                   first.
 *   "delete_usage"  {"before": "YYYY-MM", "limit": 1..10000} ->
 *                   {"deleted": n, "months": [{"month", "rows"}, ...]}:
 *                   deletes up to "limit" usage rows of the months before
 *                   "before", oldest first, in one transaction. "before"
 *                   may not be later than the current month (the kernel's
 *                   clock, UTC): the current month's usage is never reached.
 *   "mark_overdue"  {"as_of": "YYYY-MM-DD", "limit": 1..10000, "tenant"?:
 *                   "tenant:<n>", "dry_run"?: false} -> {"invoices": [...],
 *                   "skipped": [{"id", "tenant", "due_date"}, ...]}: moves
 *                   up to "limit" open invoices due before "as_of" (of the
 *                   tenant, if given) to "overdue", the oldest due first,
 *                   in one transaction; "invoices" are the rows changed, as
 *                   after. "as_of" may not be later than today (the
 *                   kernel's clock, UTC). "skipped" names open invoices
 *                   whose due_date is not a date (never marked; at most
 *                   100), given when fewer than "limit" rows changed. With
 *                   "dry_run": true nothing changes: "invoices" are the
 *                   first "limit" it would change and "count" how many.
 */
typedef struct opk_records_v1 {
  uint32_t struct_size;
  /**
   * Runs `operation` with `request_json` (an object; NULL for {}). `host` is
   * the calling plugin's host table. *answer_json gets the answer; on
   * failure {"error": message} with the status: INVALID_ARGUMENT (the
   * message starts with the field's name), NOT_FOUND (unknown kind or
   * region), UNSUPPORTED (unknown operation), UNAVAILABLE (the store cannot
   * be read or written).
   * OWNERSHIP: free *answer_json with opk_records_v1.free. [thread-safe]
   */
  opk_status (*call)(const opk_host* host, const char* operation, const char* request_json, char** answer_json);
  /** Frees an answer of `call`; NULL is ignored. [thread-safe] */
  void (*free)(char* answer_json);
} opk_records_v1;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OPSKERNEL_RECORDS_H */
