/*
 * notifications.h -- opskernel.notifications/1 (OPK_EXT_NOTIFICATIONS), the
 * notifications plugin's outbox for other plugins (pure C, C99/C11 and C++
 * compatible).
 *
 * The plugin `notifications` keeps every delivery of a notification in the
 * kernel's store. This extension lets another plugin (the webhook failures
 * inbox) read the deliveries that failed and send them again. A consumer
 * lists OPK_EXT_NOTIFICATIONS among its manifest's requirements, then finds
 * the table with opk_host.get_extension(host, OPK_EXT_NOTIFICATIONS).
 *
 * Thread-safety: every call is [thread-safe]. docs/notifications.md
 * describes the deliveries, their states and each operation.
 */
#ifndef OPSKERNEL_NOTIFICATIONS_H
#define OPSKERNEL_NOTIFICATIONS_H

#include <opskernel/opk_abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Extension id of the notifications outbox. */
#define OPK_EXT_NOTIFICATIONS "opskernel.notifications/1"

/**
 * The outbox, by operation name, JSON in and out (as the kernel's opk.jobs/1).
 * A delivery is {"id" (its idempotency key, the webhook-id), "rule_id",
 * "group_id", "scope", "event": {"seq", "kind", "subject"}, "channel",
 * "recipient", "state" ("pending", "sending", "delivered", "failed",
 * "dead", "skipped", "suppressed"), "attempts", "next_attempt_ms",
 * "created_ms", "updated_ms", "last_code", "last_detail", "render_error",
 * "handled_by", "handled_ms", "handled_note" (null while not handled)}.
 * A suppression is {"id", "endpoint", "channel", "recipient", "scope",
 * "reason", "until_ms" (null: until lifted), "created_by", "created_ms",
 * "lifted_by", "lifted_ms"}.
 *
 * Operations (the actor's role needs notifications.read or
 * webhook_failures.read for reads, notifications.manage or
 * webhook_failures.manage for the others; only deliveries and suppressions
 * whose scope lies at or under the actor's are seen, others answer
 * NOT_FOUND; every change is audited with the actor):
 *   "list_failed" {"state"?: "dead"|"failed", "channel"?, "recipient"? (an
 *                 endpoint), "rule"?, "event"? (an event kind), "scope"? (a
 *                 node at or under the actor's: deliveries at or under it),
 *                 "handled"?: false (default: the open inbox) | true |
 *                 null (both), "since_ms"?, "until_ms"? (later than
 *                 since_ms), "cursor"?, "limit"?: 1..500 (default 50)}
 *                 -> {"deliveries": [...], "next_cursor": cursor|null},
 *                 newest first: deliveries that failed for good (a 4xx, a
 *                 bad address, 410 Gone) or failed every attempt (dead).
 *   "get"         {"id"} -> {"delivery": {... "attempts": [{"attempt",
 *                 "time_ms", "outcome", "code", "latency_ms", "detail"}]}}
 *   "replay"      {"ids": [id, ...]} (1..500) -> {"replayed": [id, ...]}:
 *                 each dead, failed or skipped delivery goes back to pending
 *                 now, with the same id, its handled mark cleared; all or
 *                 none are checked first (NOT_FOUND or CONFLICT naming the
 *                 first that cannot: "ids[1]: ...").
 *   "handle"      {"ids": [id, ...] (1..500), "note"?} -> {"handled": [...]}:
 *                 marks dead or failed deliveries handled by the actor now
 *                 (again: the mark is replaced); all or none, as replay.
 *   "counts"      {} -> {"open", "handled", "suppressed_endpoints"}: failed
 *                 deliveries not handled and handled, and endpoints with an
 *                 active suppression, in the actor's scope.
 *   "suppress"    {"channel", "recipient", "reason"?, "until_ms"? (in the
 *                 future; default until lifted), "scope"? (at or under the
 *                 actor's; default the actor's)} -> {"suppression": {...}}:
 *                 while active, the endpoint's deliveries at or under the
 *                 scope are not attempted: each is held in state
 *                 "suppressed" when it falls due, so it neither retries nor
 *                 fails into the inbox. CONFLICT when the endpoint is
 *                 suppressed for that scope already.
 *   "lift"        {"id"} -> {"suppression": {...}}: ends it; the held
 *                 deliveries no other active suppression covers go back to
 *                 pending now (so do those of a suppression whose until_ms
 *                 passes). CONFLICT when lifted already.
 *   "suppressions" {} -> {"suppressions": [...]}: the active ones.
 */
typedef struct opk_notifications_v1 {
  uint32_t struct_size;
  /**
   * Runs `operation` for `actor` (required: a principal the kernel issued,
   * a request's or the calling plugin's system principal) with
   * `request_json` (an object; NULL for {}), coming from `source` (a client
   * address, for the audit; may be NULL). *answer_json gets the answer; on
   * failure {"error": message} with the status: INVALID_ARGUMENT (the
   * message starts with the field), NOT_FOUND, CONFLICT, PERMISSION,
   * UNSUPPORTED (unknown operation), UNAVAILABLE.
   * OWNERSHIP: free *answer_json with opk_notifications_v1.free. [thread-safe]
   */
  opk_status (*call)(const opk_host* host, const opk_principal* actor, const char* operation, const char* request_json,
                     const char* source, char** answer_json);
  /** Frees an answer of `call`; NULL is ignored. [thread-safe] */
  void (*free)(char* answer_json);
} opk_notifications_v1;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OPSKERNEL_NOTIFICATIONS_H */
