/*
 * rate_limits.h -- opskernel.rate-limits/1 (OPK_EXT_RATE_LIMITS), the
 * rate-limit-overrides plugin's overrides of the admin API's request rate
 * limits, for the plugin that enforces them (admin-http). Pure C, C99/C11
 * and C++ compatible.
 *
 * An operator lifts (no limit) or raises the admin API's limits for a
 * client address or CIDR block, or for the users of a hierarchy node (a
 * tenant, or any node: its users and those of the nodes under it), with a
 * reason and a required expiry. An override ends by itself at its expiry:
 * each lookup compares the kernel's clock, so no job and no restart is
 * needed. An override never lowers a limit: the enforcing side applies the
 * larger of its own limit and the override's.
 *
 * The enforcing plugin lists OPK_EXT_RATE_LIMITS among its manifest's
 * requirements (optional: without the plugin its own limits apply), finds
 * the table with opk_host.get_extension(host, OPK_EXT_RATE_LIMITS) and asks
 * it per request: a lookup reads an in-memory snapshot, never the store.
 * The snapshot follows changes made by any kernel sharing the store within
 * the plugin's poll_interval (default 2 s); a change made through this
 * kernel is seen at once.
 *
 * Thread-safety: every call is [thread-safe]. docs/rate-limit-overrides.md
 * describes the overrides and their admin API.
 */
#ifndef OPSKERNEL_RATE_LIMITS_H
#define OPSKERNEL_RATE_LIMITS_H

#include <stdint.h>

#include <opskernel/opk_abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Extension id of the admin API's rate-limit overrides. */
#define OPK_EXT_RATE_LIMITS "opskernel.rate-limits/1"

/** A lookup's answer for an override that lifts the limit altogether. */
#define OPK_RATE_UNLIMITED (-1)

/** The overrides in force, as the enforcing side reads them. */
typedef struct opk_rate_limits_v1 {
  uint32_t struct_size;
  /**
   * The override in force now for requests from client address `address`
   * (IPv4 "192.0.2.7" or IPv6 "2001:db8::7"; an IPv4-mapped IPv6 address
   * counts as its IPv4 address): requests per minute (> 0), or
   * OPK_RATE_UNLIMITED; 0 when none applies (or `address` is not an
   * address). When several apply, the most generous wins. *until_ms (may
   * be NULL) gets the winning override's end, ms since the epoch. No store
   * read. [thread-safe]
   */
  int64_t (*for_address)(const opk_host* host, const char* address, int64_t* until_ms);
  /**
   * The same for a user whose scope is hierarchy node `scope`
   * ("tenant:acme"): overrides on that node and on every node above it
   * apply. No store read (a node's ancestors are asked of opk.identity/1
   * once and kept for a minute). [thread-safe]
   */
  int64_t (*for_scope)(const opk_host* host, const char* scope, int64_t* until_ms);
} opk_rate_limits_v1;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OPSKERNEL_RATE_LIMITS_H */
