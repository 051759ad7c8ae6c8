/*
 * maintenance.h -- opskernel.maintenance/1 (OPK_EXT_MAINTENANCE), the
 * maintenance-mode plugin's per-tenant maintenance windows, for the plugin
 * that enforces them (admin-http) and any plugin that must hold a tenant's
 * work while it lasts. Pure C, C99/C11 and C++ compatible.
 *
 * A PlatformAdministrator puts a tenant (a hierarchy node "tenant:<id>")
 * into maintenance for a window: read-only (the tenant's writes refused,
 * reads served) or offline (every request scoped to the tenant refused),
 * with a banner text shown to the tenant's users, a start and an optional
 * end. A window begins and ends by itself: each lookup compares the
 * kernel's clock, so no job and no restart is needed. An operator may end
 * one early (or call off one not begun).
 *
 * The enforcing plugin lists OPK_EXT_MAINTENANCE among its manifest's
 * requirements (optional: without the plugin no tenant is in maintenance),
 * finds the table with opk_host.get_extension(host, OPK_EXT_MAINTENANCE)
 * and asks it per request: a lookup reads an in-memory snapshot, never the
 * store. The snapshot follows changes made by any kernel sharing the store
 * within the plugin's poll_interval (default 2 s); a change made through
 * this kernel is seen at once.
 *
 * Thread-safety: every call is [thread-safe]. docs/maintenance-mode.md
 * describes the windows and their admin API.
 */
#ifndef OPSKERNEL_MAINTENANCE_H
#define OPSKERNEL_MAINTENANCE_H

#include <stddef.h>
#include <stdint.h>

#include <opskernel/opk_abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Extension id of the per-tenant maintenance windows. */
#define OPK_EXT_MAINTENANCE "opskernel.maintenance/1"

/** A lookup's answer: no maintenance in force. */
#define OPK_MAINTENANCE_NONE 0
/** Read-only: the tenant's reads are served, its writes refused (503). */
#define OPK_MAINTENANCE_READ_ONLY 1
/** Offline: every request scoped to the tenant is refused (503). */
#define OPK_MAINTENANCE_OFFLINE 2

/** What a lookup found in force. */
typedef struct opk_maintenance_state {
  uint32_t struct_size;
  /** OPK_MAINTENANCE_NONE, _READ_ONLY or _OFFLINE. */
  int32_t mode;
  /** The tenant in maintenance ("tenant:acme"); "" when none. */
  char tenant[128];
  /** When it ends, ms since the epoch; 0 when no end is known. */
  int64_t until_ms;
  /** The banner text for the tenant's users (UTF-8, cut at 1,023 bytes). */
  char banner[1024];
  /** The window's id ("mnt_..."); "" when none. */
  char window_id[32];
} opk_maintenance_state;

/** The maintenance windows in force, as the enforcing side reads them. */
typedef struct opk_maintenance_v1 {
  uint32_t struct_size;
  /**
   * The maintenance in force now for what is scoped to hierarchy node
   * `scope` ("tenant:acme", or a node under a tenant): the tenant's window
   * whose start has come and whose end has not; when several overlap,
   * offline wins over read-only, then the one ending last. Returns
   * out->mode (OPK_MAINTENANCE_NONE for a node above every tenant, such as
   * "platform", or an unknown one). `out` (struct_size set by the caller)
   * may be NULL when only the mode is wanted. No store read (a node's
   * ancestors are asked of opk.identity/1 once and kept for a minute).
   * [thread-safe]
   */
  int32_t (*for_scope)(const opk_host* host, const char* scope, opk_maintenance_state* out);
} opk_maintenance_v1;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OPSKERNEL_MAINTENANCE_H */
