/*
 * feature_flags.h -- opskernel.feature-flags/1 (OPK_EXT_FEATURE_FLAGS), the
 * feature-flags plugin's global flags for other plugins (pure C, C99/C11
 * and C++ compatible). feature_flags.hpp is the C++ view.
 *
 * The plugin `feature-flags` keeps the installation's global flags in the
 * kernel's store: flags plugins declare and flags operators create, each a
 * boolean, a string or a number, its type fixed when it is made. An
 * operator may override a flag's default with a value, a reason and an
 * optional expiry, after which the flag is back at its default by itself.
 *
 * A consumer lists OPK_EXT_FEATURE_FLAGS among its manifest's requirements
 * (optional when it can run without flags), finds the table with
 * opk_host.get_extension(host, OPK_EXT_FEATURE_FLAGS), declares its flags
 * from start and checks them anywhere, hot paths included: a check reads
 * an in-memory snapshot, never the store. The snapshot follows changes made
 * by any kernel sharing the store within the plugin's poll_interval
 * (default 2 s); a change made through this kernel is seen at once.
 *
 * Thread-safety: every call is [thread-safe]. docs/feature-flags.md
 * describes the flags, the admin API and OFREP.
 */
#ifndef OPSKERNEL_FEATURE_FLAGS_H
#define OPSKERNEL_FEATURE_FLAGS_H

#include <stddef.h>

#include <opskernel/opk_abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Extension id of the global feature flags. */
#define OPK_EXT_FEATURE_FLAGS "opskernel.feature-flags/1"

/**
 * The flags. A flag id matches [a-z0-9][a-z0-9._-]{0,127}. `host` is the
 * calling plugin's own host table.
 */
typedef struct opk_feature_flags_v1 {
  uint32_t struct_size;
  /**
   * Declares the calling plugin's flags (from start; again at every start):
   * `flags_json` is an array of {"id", "type"? ("boolean", "string" or
   * "number"; default: the default's), "default" (of that type; a string at
   * most 4,096 bytes), "description" (1..1,000 bytes), "owner"? (who
   * answers for it, at most 200 bytes; default the plugin's id)}. A new flag
   * is created at its default; a flag the plugin declared before gets the
   * new description, default and owner and keeps an operator's override.
   * All or none: on failure nothing is written and *answer_json gets
   * {"error": message} with INVALID_ARGUMENT (the message starts with the
   * field, "flags[1].default: ...") or CONFLICT (the id belongs to an
   * operator's flag or another plugin's, or the type differs from the
   * stored flag's); UNAVAILABLE without a store. On success *answer_json
   * gets {"declared": n, "changed": n}. Changes are audited as the
   * plugin's system principal (feature_flags.declare).
   * OWNERSHIP: free *answer_json with opk_feature_flags_v1.free.
   */
  opk_status (*declare)(const opk_host* host, const char* flags_json, char** answer_json);
  /**
   * The value of boolean flag `id` (1 or 0) now; `fallback` when no such
   * flag exists or it is not a boolean. No store read. [thread-safe]
   */
  int (*enabled)(const opk_host* host, const char* id, int fallback);
  /**
   * The value of number flag `id` now; `fallback` when no such flag exists
   * or it is not a number. No store read. [thread-safe]
   */
  double (*number)(const opk_host* host, const char* id, double fallback);
  /**
   * The value of string flag `id` now, copied NUL-terminated into `buf` of
   * `size` bytes (cut to fit); *length (may be NULL) gets its full length.
   * NOT_FOUND when no such flag exists, INVALID_ARGUMENT when it is not a
   * string (buf untouched). No store read. [thread-safe]
   */
  opk_status (*string)(const opk_host* host, const char* id, char* buf, size_t size, size_t* length);
  /**
   * Flag `id` as JSON: {"id", "type", "value", "reason" ("STATIC": an
   * operator's override; "DEFAULT": its default), "expires_ms" (the
   * override's end, or null)}; NOT_FOUND with {"error"} when no such flag
   * exists. No store read.
   * OWNERSHIP: free *answer_json with opk_feature_flags_v1.free. [thread-safe]
   */
  opk_status (*evaluate)(const opk_host* host, const char* id, char** answer_json);
  /** Frees an answer of `declare` or `evaluate`; NULL is ignored. [thread-safe] */
  void (*free)(char* answer_json);
} opk_feature_flags_v1;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OPSKERNEL_FEATURE_FLAGS_H */
