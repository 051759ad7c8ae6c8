/*
 * opk_abi.h -- the Opskernel plugin ABI (pure C, C99/C11 and C++ compatible).
 *
 * This header is the whole contract between the kernel and a plugin. A plugin
 * is a shared library that exports exactly one data symbol, `opk_plugin_entry_v1`
 * (see OPK_PLUGIN_ENTRY_SYMBOL), of type `opk_plugin_entry`. Everything else the
 * plugin provides -- job types, alert sources, admin features, notification
 * channels, extensions for other plugins -- is reached from that entry.
 *
 * STABILITY (full text in docs/abi.md)
 *   - OPK_ABI_MAJOR changes only for a break; the kernel refuses a plugin whose
 *     major differs from its own.
 *   - A minor version only appends: new fields at the end of a struct, new
 *     function pointers at the end of a table, new status codes, new flag bits,
 *     new extension ids. Nothing is removed, reordered or retyped.
 *   - Every struct that can grow starts with `uint32_t struct_size`, set by the
 *     writer to sizeof(the struct it was compiled with). A reader copies
 *     min(struct_size, sizeof) into a zeroed struct, so fields the writer did
 *     not know read as 0/NULL. Before calling a function pointer added in a
 *     later minor, check both the size and that the pointer is not NULL
 *     (OPK_HAS_MEMBER).
 *   - Structs documented as FROZEN never grow; a new need gets a new struct.
 *   - Extensions are looked up by string id with a revision ("opk.http-routes/1");
 *     a new revision is a new id and a new struct. Third parties use reverse-DNS
 *     ids ("com.example.thing/1").
 *
 * DATA ACROSS THE BOUNDARY
 *   Only plain data crosses: integers, UTF-8 NUL-terminated strings, byte views
 *   (pointer + size), JSON text, and structs of those. No C++ types, no
 *   exceptions, no shared mutable memory. A pointer lent by one side for a call
 *   is valid only until that call returns, unless its documentation says until
 *   when ("LIFETIME:"). Whoever allocates frees ("OWNERSHIP:"). This keeps every
 *   call marshallable, so a plugin can later run in a child process behind a
 *   socket without any change to its code.
 *
 * THREADS
 *   Each function is tagged with the thread it is called on:
 *   [control-thread]  the kernel's control thread: loading, init, start, stop,
 *                     deinit. Never concurrently with another [control-thread]
 *                     call into the same plugin.
 *   [worker-thread]   a thread of a kernel worker pool. Calls into different runs
 *                     may happen at the same time on different threads; at most
 *                     one call into a given run at a time unless stated.
 *   [any-thread]      any thread, possibly concurrently with anything else.
 *   [thread-safe]     a host function the plugin may call from any thread.
 *
 * NAMING
 *   Functions in plugin-provided tables are called by the kernel; functions in
 *   host-provided tables (opk_host, contexts, extensions) are callbacks into the
 *   kernel. Every host callback takes its own table as `self` first.
 */
#ifndef OPSKERNEL_OPK_ABI_H
#define OPSKERNEL_OPK_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions */

/** ABI major version: a plugin with another major is refused. */
#define OPK_ABI_MAJOR 1
/** ABI minor version: additive changes only.
 *  1: opk_http_route.permission, opk_http_response.flush,
 *     opk_http_routes_v1.dispatch and .list, opk.identity/1, opk.jobs/1.
 *  2: opk_host.last_error; opk_run_context.wait; opk_store_v1.transaction and .query_typed;
 *     opk_identity_v1.principal_for_token, .release_principal,
 *     .system_principal and .permissions; opk_admin_feature.permissions;
 *     opk.audit/1. Kernel services accept only principals the kernel
 *     issued (docs/abi.md, "Principals").
 *  3: opk_alert.type; opk_alert_source.clean_sweeps and .timeout_ms,
 *     OPK_ALERT_FULL_SWEEP; opk_alert_context.escalate;
 *     opk_identity_v1.node_exists; opk.alerts/1.
 *  4: opk_notification.id, .attempt, .html_body, .options_json and
 *     .timeout_ms; opk_delivery_result, OPK_DELIVERY_*;
 *     opk_notification_channel.deliver and .check_recipient; opk.events/1;
 *     opk.channels/1.
 *  5: opk.metrics/1, opk_metrics_writer.
 *  6: opk_identity_v1.node_path.
 *  7: opk.cache/1.
 *  8: opk.migrations/1; opk.run-gates/1, opk_run_slot. */
#define OPK_ABI_MINOR 8

/** Name of the one exported symbol; the suffix is the ABI major. */
#define OPK_PLUGIN_ENTRY_SYMBOL "opk_plugin_entry_v1"

/** Marks the entry symbol exported (all else stays hidden). */
#if defined(_WIN32)
#define OPK_EXPORT __declspec(dllexport)
#else
#define OPK_EXPORT __attribute__((visibility("default")))
#endif

/** True when a struct of the given `struct_size` contains `member`. */
#define OPK_HAS_MEMBER(type, size, member) ((size_t)(size) >= offsetof(type, member) + sizeof(((type*)0)->member))

/* ------------------------------------------------------------ status codes */

/**
 * Result of every fallible call. Values are append-only with explicit
 * numbers; the human-readable detail travels separately (opk_host.set_error,
 * a run's log, an HTTP response body) and its wording is not part of the ABI.
 * A reader must treat an unknown non-zero value as a failure.
 */
typedef int32_t opk_status;
enum {
  OPK_OK = 0,                   /* success */
  OPK_ERR_FAILED = 1,           /* generic failure; see the detail message */
  OPK_ERR_INVALID_ARGUMENT = 2, /* a parameter or input was malformed */
  OPK_ERR_NOT_FOUND = 3,        /* the named thing does not exist */
  OPK_ERR_UNSUPPORTED = 4,      /* not implemented by this side/version */
  OPK_ERR_INCOMPATIBLE = 5,     /* ABI or version mismatch */
  OPK_ERR_CANCELLED = 6,        /* the operation stopped because it was cancelled */
  OPK_ERR_TIMEOUT = 7,          /* a deadline passed */
  OPK_ERR_CONFLICT = 8,         /* duplicate id, already running, wrong state */
  OPK_ERR_PERMISSION = 9,       /* the caller may not do this */
  OPK_ERR_NO_MEMORY = 10,       /* allocation failed */
  OPK_ERR_UNAVAILABLE = 11,     /* a dependency is down; retrying may help */
  OPK_ERR_INTERNAL = 12,        /* a bug: an invariant did not hold */
  OPK_ERR_BUFFER_TOO_SMALL = 13 /* caller buffer too small; size reported */
};

/** Log severities, shared by kernel, plugin and run logs. */
typedef int32_t opk_log_level;
enum {
  OPK_LOG_TRACE = 0,
  OPK_LOG_DEBUG = 1,
  OPK_LOG_INFO = 2,
  OPK_LOG_WARN = 3,
  OPK_LOG_ERROR = 4,
  OPK_LOG_CRITICAL = 5
};

/* ------------------------------------------------------------ opaque types */

/** A plugin instance, created by opk_plugin_entry.init; only the plugin
 *  knows what it points to. */
typedef struct opk_plugin_s opk_plugin;
/** Kernel-private data behind a host table or context; never dereferenced
 *  by a plugin. */
typedef struct opk_host_data_s opk_host_data;

/* ------------------------------------------------------------ plain values */

/** FROZEN. A key/value pair of UTF-8 strings. */
typedef struct opk_kv {
  const char* key;
  const char* value;
} opk_kv;

/** FROZEN. A byte view; `data` may be NULL when `size` is 0. */
typedef struct opk_bytes {
  const uint8_t* data;
  size_t size;
} opk_bytes;

/**
 * FROZEN. Operator-facing text in one more language. `lang` is a BCP 47 tag
 * ("sv", "de-CH"); `title` and `description` may be NULL to keep the default
 * (English) text of that field.
 */
typedef struct opk_translation {
  const char* lang;
  const char* title;
  const char* description;
} opk_translation;

/* --------------------------------------------------------- the host table */

typedef struct opk_host opk_host;

/**
 * The kernel's function table, given to a plugin at init.
 * LIFETIME: valid from the start of init until deinit returns; the plugin
 * may keep the pointer for that long.
 */
struct opk_host {
  uint32_t struct_size;
  /** ABI version the kernel speaks; gate features on it and on struct_size. */
  uint32_t abi_major;
  uint32_t abi_minor;
  /** Kernel version string, e.g. "0.1.0". LIFETIME: as the table. */
  const char* kernel_version;
  /** Kernel-private; do not touch. */
  opk_host_data* host_data;

  /** Writes a line to this plugin's named logger.
   *  [thread-safe] OWNERSHIP: `message` is copied. */
  void (*log)(const opk_host* self, opk_log_level level, const char* message);

  /** Records the detail of the failure the plugin is about to return from
   *  the current call (init, start, a handler ...). Call it on the thread
   *  that returns the failure. The kernel logs it with the status and shows
   *  it to operators where that call's outcome is shown (refusal reasons),
   *  never to HTTP clients. [thread-safe] OWNERSHIP: copied. */
  void (*set_error)(const opk_host* self, const char* message);

  /** Wall-clock time, milliseconds since the Unix epoch, UTC. Use this
   *  rather than the system clock so tests can drive time. [thread-safe] */
  int64_t (*now_ms)(const opk_host* self);

  /**
   * One of this plugin's settings (key `key` of the `[plugin.<id>]` section
   * of the kernel configuration), or a public kernel setting when `key`
   * starts with "kernel." (kernel.listen, kernel.data_dir,
   * kernel.plugins_dir, kernel.node_name, kernel.store_path); NULL when not set.
   * [thread-safe] LIFETIME: valid until deinit returns.
   */
  const char* (*config_value)(const opk_host* self, const char* key);

  /**
   * Finds a kernel service ("opk.*" ids) or another plugin's extension by id
   * with revision. Another plugin's extension is returned only if this
   * plugin lists it in its manifest's requirements (that is what orders
   * init and stop). Returns NULL otherwise; the caller must handle that.
   * [thread-safe]
   * LIFETIME: the returned table stays valid until this plugin's deinit
   * returns (a required extension's provider is stopped after its users).
   */
  const void* (*get_extension)(const opk_host* self, const char* id);

  /** Frees memory the kernel allocated and handed to the plugin (documented
   *  per call with "OWNERSHIP: free with opk_host.free"). [thread-safe] */
  void (*free)(const opk_host* self, void* ptr);

  /**
   * (1.2) Why the most recent failed call into a kernel service on this
   * thread failed (a refused route, a store or audit error, a bad token);
   * NULL if none has failed. Read it right after the failing call: a later
   * failure replaces it. The words are for logs and operators, not for
   * parsing. [thread-safe]
   * LIFETIME: until the next call into the kernel on this thread.
   */
  const char* (*last_error)(const opk_host* self);
};

/* ------------------------------------------------------------- job types */

/** What started a run. */
typedef int32_t opk_trigger;
enum {
  OPK_TRIGGER_SCHEDULE = 0, /* a schedule slot fell due */
  OPK_TRIGGER_MANUAL = 1,   /* an operator's run-now */
  OPK_TRIGGER_RETRY = 2,    /* an operator's retry of an earlier run */
  OPK_TRIGGER_CHAIN = 3,    /* started by another run (parent_run_id) */
  OPK_TRIGGER_RECOVERY = 4  /* re-queued after a kernel crash */
};

/** Outcome of a completed run or step (the seed's COMPLETED status). */
typedef int32_t opk_outcome;
enum { OPK_OUTCOME_NORMAL = 0, OPK_OUTCOME_WARNING = 1, OPK_OUTCOME_ERROR = 2 };

/** Job type capability bits (opk_job_type.capabilities). */
#define OPK_JOB_CAP_MANUAL_RUN ((uint64_t)1 << 0) /* an operator may start it by hand */
#define OPK_JOB_CAP_CANCEL ((uint64_t)1 << 1)     /* has a cooperative cancel hook */
#define OPK_JOB_CAP_DRY_RUN ((uint64_t)1 << 2)    /* honours opk_run_context.dry_run */
#define OPK_JOB_CAP_REQUEUE ((uint64_t)1 << 3)    /* safe to re-run after a crash */

/**
 * The authenticated user on whose behalf something happens.
 * Since 1.2 a principal handed to a kernel service (opk.jobs/1, opk.audit/1,
 * opk_http_routes_v1.dispatch) must be one the kernel issued
 * (opk_identity_v1.principal_for_token or .system_principal, or the
 * request's own): the kernel compares the pointer, not the fields, and
 * refuses any other with OPK_ERR_PERMISSION. Treat it as an opaque handle
 * whose fields may be read.
 */
typedef struct opk_principal {
  uint32_t struct_size;
  /** User id; NULL for the system (schedules). */
  const char* user_id;
  /** Role name ("PlatformAdministrator", ...); NULL for the system. */
  const char* role;
  /** Scope node in the hierarchy ("platform", "tenant:acme"); NULL for the
   *  system. */
  const char* scope;
} opk_principal;

typedef struct opk_run_context opk_run_context;

/**
 * One run of a job type, lent to opk_job_type.run and .cancel.
 * LIFETIME: valid until `run` returns. Callbacks are [thread-safe] unless
 * noted, so a plugin may log from threads it starts for the run, as long as
 * they end before `run` returns.
 */
struct opk_run_context {
  uint32_t struct_size;
  /** Job number, unique and increasing within one store. */
  int64_t run_id;
  /** Run that started this one (chaining), 0 when none. */
  int64_t parent_run_id;
  /** Job type id. */
  const char* job_type_id;
  /** Scheduled job this run belongs to; NULL for ad-hoc runs. */
  const char* scheduled_job_id;
  /** Parameters, a JSON object; "{}" when none. */
  const char* params_json;
  /** Tenant the run is aimed at; NULL means the whole installation. */
  const char* target_tenant;
  /** Non-zero: report what would be done and change nothing. Only set for
   *  types with OPK_JOB_CAP_DRY_RUN. */
  uint32_t dry_run;
  opk_trigger trigger;
  /** Time range the run covers, ms since the epoch; 0 when not given. */
  int64_t range_start_ms;
  int64_t range_end_ms;
  /** The user who created the run, captured at creation; fields NULL for
   *  schedule-triggered runs. */
  const opk_principal* triggered_by;
  /** Operator's reason for a manual run, retry or cancel; NULL if none. */
  const char* reason;
  /** Kernel-private. */
  opk_host_data* host_data;

  /** Appends a line to the run's log, kept with the run. OWNERSHIP: copied. */
  void (*log)(const opk_run_context* self, opk_log_level level, const char* message);
  /** Reports progress, 0..100 (clamped), with an optional message. */
  void (*progress)(const opk_run_context* self, double percent, const char* message);
  /**
   * Sets the outcome the run completes with (default NORMAL), an exit code
   * (default 0) and a one-line summary (may be NULL). The last call wins.
   * A run that returns a non-OK status completes with ERROR regardless.
   */
  void (*set_result)(const opk_run_context* self, opk_outcome outcome, int32_t exit_code, const char* summary);
  /** Non-zero once cancellation was requested (operator cancel, timeout,
   *  shutdown). Cheap: poll it between units of work. */
  uint32_t (*is_cancelled)(const opk_run_context* self);
  /** Marks the start of a named step (one of the type's declared actions,
   *  or any name). Steps do not nest: beginning one ends the previous. */
  opk_status (*step_begin)(const opk_run_context* self, const char* step_id);
  /** Ends the current step with an outcome and optional summary. */
  opk_status (*step_end)(const opk_run_context* self, opk_outcome outcome, const char* summary);
  /** Attaches a result document (JSON object) to the run, for templates and
   *  chaining; replaces an earlier one. OWNERSHIP: copied. */
  opk_status (*set_output_json)(const opk_run_context* self, const char* json);
  /**
   * (1.2) Sleeps up to `timeout_ms` on the kernel's clock, waking at once
   * when the run is cancelled. Returns OPK_OK when the time passed,
   * OPK_ERR_CANCELLED when cancellation was requested (before or during the
   * wait). Use it for pauses and back-off instead of the plugin's own
   * sleep, so a cancel never waits for the pause and tests drive time.
   * [thread-safe]
   */
  opk_status (*wait)(const opk_run_context* self, int64_t timeout_ms);
};

/** FROZEN. A named step of a job type (the seed's "actions"). */
typedef struct opk_action {
  const char* id;
  const char* title;
} opk_action;

typedef struct opk_job_type opk_job_type;

/**
 * A kind of work (the seed's "program"). Declared in the manifest.
 * LIFETIME: static, or at least until deinit returns.
 */
struct opk_job_type {
  uint32_t struct_size;
  /** Unique id across the kernel: [a-z0-9][a-z0-9._-]*, at most 64 bytes. */
  const char* id;
  /** Operator-facing name and description (English). */
  const char* title;
  const char* description;
  /** Team or person responsible. */
  const char* owner;
  /** OPK_JOB_CAP_* bits. OPK_JOB_CAP_CANCEL requires `cancel`. */
  uint64_t capabilities;
  /** JSON Schema (draft 2020-12 subset) of the parameters; NULL = none. */
  const char* params_schema_json;
  /** Default schedule, 5-field cron or macro; NULL = on demand only. */
  const char* default_schedule;
  /** Target duration (SLA); runs longer are flagged. 0 = none. */
  uint64_t target_duration_ms;
  /** The kernel cancels a run after this long. 0 = no limit. */
  uint64_t timeout_ms;
  /** Higher runs first among pending runs of one pool. */
  int32_t priority;
  /** Worker pool name; NULL = "default". */
  const char* worker_pool;
  /** Named steps, in order; may be NULL with count 0. */
  const opk_action* actions;
  uint32_t action_count;
  const opk_translation* translations;
  uint32_t translation_count;

  /**
   * Does the work. Returns OPK_OK when the run completed (its outcome is
   * what set_result said), OPK_ERR_CANCELLED when it stopped on request,
   * anything else for failure (detail: log it first).
   * [worker-thread] `plugin` is the instance from init.
   */
  opk_status (*run)(opk_plugin* plugin, const opk_job_type* self, const opk_run_context* run);

  /**
   * Asks a running run to stop soon and leave no half state; returns at
   * once (the run itself returns OPK_ERR_CANCELLED later). NULL when the
   * type has no cancel hook. [any-thread], concurrently with `run`; only
   * while `run` is executing.
   */
  void (*cancel)(opk_plugin* plugin, const opk_job_type* self, const opk_run_context* run);
};

/* ---------------------------------------------------------- alert sources */

/** Alert severities. */
typedef int32_t opk_severity;
enum { OPK_SEVERITY_INFO = 0, OPK_SEVERITY_WARNING = 1, OPK_SEVERITY_CRITICAL = 2 };

/** Alert source flag: only PlatformAdministrator may see or manage its alerts. */
#define OPK_ALERT_PLATFORM_ONLY ((uint64_t)1 << 0)
/** (1.3) Alert source flag: one evaluation is a full sweep. When it completes
 *  OK, every open alert of the source it did not raise counts one clean
 *  sweep, and closes as cleared after `clean_sweeps` of them. */
#define OPK_ALERT_FULL_SWEEP ((uint64_t)1 << 1)

/** An alert to raise. At most one alert is open per (source, related_type,
 *  related_id): raising again updates it. */
typedef struct opk_alert {
  uint32_t struct_size;
  opk_severity severity;
  /** Area ("billing", "identity" ...); NULL = the source's area. */
  const char* area;
  const char* title;
  const char* message;
  /** The object the alert is about, e.g. "subscription" / "sub-42". */
  const char* related_type;
  const char* related_id;
  /** Hierarchy node owning the object ("tenant:acme"), for visibility. */
  const char* scope;
  /** Extra data, a JSON object; may be NULL. */
  const char* details_json;
  /** (1.3) Kind of alert, e.g. "missing-usage"; NULL = the source id. */
  const char* type;
} opk_alert;

typedef struct opk_alert_context opk_alert_context;

/** Lent to opk_alert_source.evaluate. LIFETIME: until evaluate returns. */
struct opk_alert_context {
  uint32_t struct_size;
  /** Evaluation time, ms since the epoch. */
  int64_t now_ms;
  /** Kernel-private. */
  opk_host_data* host_data;
  /** Opens or updates the alert for (source, related object). */
  opk_status (*raise)(const opk_alert_context* self, const opk_alert* alert);
  /** Closes the open alert for the related object, if any (condition cleared). */
  opk_status (*clear)(const opk_alert_context* self, const char* related_type, const char* related_id);
  void (*log)(const opk_alert_context* self, opk_log_level level, const char* message);
  uint32_t (*is_cancelled)(const opk_alert_context* self);
  /** (1.3) Raises the escalation level of the open alert for the related
   *  object by one, with a reason (required). OPK_ERR_NOT_FOUND when no
   *  alert is open for it. */
  opk_status (*escalate)(const opk_alert_context* self, const char* related_type, const char* related_id,
                         const char* reason);
};

typedef struct opk_alert_source opk_alert_source;

/** Something that detects conditions and raises/clears alerts. */
struct opk_alert_source {
  uint32_t struct_size;
  const char* id;
  const char* title;
  const char* description;
  /** Default area of its alerts. */
  const char* area;
  /** OPK_ALERT_* flags. */
  uint64_t flags;
  /** How often to evaluate, 5-field cron; NULL = every ten minutes. */
  const char* default_schedule;
  const opk_translation* translations;
  uint32_t translation_count;
  /** Looks at the world, raises and clears alerts. [worker-thread] */
  opk_status (*evaluate)(opk_plugin* plugin, const opk_alert_source* self, const opk_alert_context* ctx);
  /** (1.3) With OPK_ALERT_FULL_SWEEP: successful sweeps without an alert
   *  before it closes as cleared; 0 = 1. */
  uint32_t clean_sweeps;
  /** (1.3) Longest an evaluation may run, ms; 0 = the engine's default. */
  int64_t timeout_ms;
};

/* --------------------------------------------------------- admin features */

/** FROZEN. (1.2) A permission an admin feature declares: a name its routes
 *  and audit rows use, and the roles of `[permissions]` can be given. */
typedef struct opk_permission {
  /** "<area>.<verb>", e.g. "flags.write": [a-z][a-z0-9_-]* '.'
   *  [a-z][a-z0-9_.-]*, at most 64 bytes, unique across the kernel. */
  const char* name;
  /** One line for operators ("Create, change and delete feature flags"). */
  const char* description;
} opk_permission;

/** An operator-facing feature (API routes, a console page). Its routes are
 *  added in start through the "opk.http-routes/1" extension. */
typedef struct opk_admin_feature {
  uint32_t struct_size;
  const char* id;
  const char* title;
  const char* description;
  const opk_translation* translations;
  uint32_t translation_count;
  /** (1.2) Permissions the feature introduces; a route or audit row may
   *  name only the kernel's permissions and those declared here. The
   *  kernel refuses a plugin declaring a name another plugin or the kernel
   *  already has. */
  const opk_permission* permissions;
  uint32_t permission_count;
} opk_admin_feature;

/* --------------------------------------------------- notification channels */

/** A message to deliver. LIFETIME: during `send`, `deliver` or
 *  opk_channels_v1.deliver only. */
typedef struct opk_notification {
  uint32_t struct_size;
  /** Recipients in the channel's own form (e-mail addresses, URLs). */
  const char* const* recipients;
  uint32_t recipient_count;
  const char* subject;
  const char* body;
  /** "text/plain", "text/html", "application/json". */
  const char* content_type;
  /** The event that caused it, JSON; may be NULL. */
  const char* event_json;
  /** (1.4) The delivery's idempotency key, the same on every attempt of
   *  one delivery (the webhook-id header, the e-mail Message-ID), so a
   *  receiver can drop a duplicate. NULL: the channel makes one up. */
  const char* id;
  /** (1.4) Which attempt this is, 1 for the first; 0 when not known. */
  uint32_t attempt;
  /** (1.4) An HTML alternative to `body` (a multipart e-mail); NULL if
   *  none. */
  const char* html_body;
  /** (1.4) Per-recipient channel options, a JSON object, e.g. a webhook's
   *  signing secrets {"secrets": ["whsec_...", "whsec_..."]}; NULL = none.
   *  Never log it. */
  const char* options_json;
  /** (1.4) Longest the delivery may take, ms; 0 = the channel's default. */
  int64_t timeout_ms;
} opk_notification;

/** (1.4) opk_delivery_result.flags: retrying cannot help (a 4xx other than
 *  408 or 429, a 5xx SMTP reply, a malformed address). */
#define OPK_DELIVERY_PERMANENT ((uint32_t)1 << 0)
/** (1.4) opk_delivery_result.flags: the endpoint is gone for good (HTTP
 *  410); disable it. Set with OPK_DELIVERY_PERMANENT. */
#define OPK_DELIVERY_GONE ((uint32_t)1 << 1)

/**
 * FROZEN. (1.4) What one delivery attempt came to, filled by a channel's
 * `deliver` or `check_recipient`. The caller zero-fills it and sets
 * `struct_size`; the channel sets what it knows and leaves the rest 0.
 * LIFETIME: during the call.
 */
typedef struct opk_delivery_result {
  uint32_t struct_size;
  /** The receiver's answer: an HTTP status or an SMTP reply code; 0 when
   *  none came (no connection, a timeout). */
  int32_t code;
  /** Time the attempt took, ms. */
  int64_t latency_ms;
  /** When to try again at the earliest, ms from now, from the receiver's
   *  Retry-After; 0 when it gave none. */
  int64_t retry_after_ms;
  /** OPK_DELIVERY_* bits. */
  uint32_t flags;
  /** The reply or the error, NUL-terminated, for operators ("250 2.0.0 Ok:
   *  queued as 4F1", "connect 127.0.0.1:9: connection refused"); a channel
   *  truncates longer text. Never a secret. */
  char detail[512];
} opk_delivery_result;

/** A way to deliver notifications (SMTP, webhooks ...). Since 1.4 a channel
 *  sets `send`, `deliver` or both; the kernel refuses one with neither. */
typedef struct opk_notification_channel opk_notification_channel;
struct opk_notification_channel {
  uint32_t struct_size;
  const char* id;
  const char* title;
  const char* description;
  /** Delivers one notification; may block. NULL allowed since 1.4 when
   *  `deliver` is set. [worker-thread] */
  opk_status (*send)(opk_plugin* plugin, const opk_notification_channel* self, const opk_notification* message);
  /**
   * (1.4) Delivers one notification and says how it went in `result`
   * (always set `detail` on failure); may block up to message->timeout_ms.
   * OK: delivered (accepted by the receiver). Otherwise UNAVAILABLE or
   * TIMEOUT for a failure a retry may cure, INVALID_ARGUMENT for a message
   * or recipient that can never be delivered, PERMISSION for a refused
   * login; result->flags says whether to retry. Preferred over `send` when
   * set. [worker-thread], concurrently with other deliveries.
   */
  opk_status (*deliver)(opk_plugin* plugin, const opk_notification_channel* self, const opk_notification* message,
                        opk_delivery_result* result);
  /**
   * (1.4) Checks a recipient (an address, a URL) and its options (JSON, may
   * be NULL) when a rule is saved, without sending anything. OK: valid;
   * INVALID_ARGUMENT with result->detail saying what is wrong. NULL: every
   * recipient is accepted. [any-thread]
   */
  opk_status (*check_recipient)(opk_plugin* plugin, const opk_notification_channel* self, const char* recipient,
                                const char* options_json, opk_delivery_result* result);
};

/* --------------------------------------------------------------- manifest */

/** FROZEN. An extension this plugin needs from the kernel or another plugin. */
typedef struct opk_requirement {
  /** Extension id with revision. */
  const char* extension_id;
  /** Non-zero: the plugin works without it (get_extension may return NULL).
   *  When present, it orders init and stop like a required one, and if its
   *  provider fails to start, this plugin is stopped as well. */
  uint32_t optional;
} opk_requirement;

/**
 * What a plugin is and what it provides. Read before init and validated as
 * a whole: one invalid item refuses the whole library.
 * LIFETIME: static (valid while the library is loaded).
 */
typedef struct opk_manifest {
  uint32_t struct_size;
  /** Unique plugin id: [a-z0-9][a-z0-9._-]*, at most 64 bytes. */
  const char* id;
  const char* name;
  /** Semantic version "MAJOR.MINOR.PATCH". */
  const char* version;
  const char* vendor;
  const char* description;
  /** Arrays of pointers, so each element carries its own struct_size. */
  const opk_job_type* const* job_types;
  uint32_t job_type_count;
  const opk_alert_source* const* alert_sources;
  uint32_t alert_source_count;
  const opk_admin_feature* const* admin_features;
  uint32_t admin_feature_count;
  const opk_notification_channel* const* notification_channels;
  uint32_t notification_channel_count;
  /** Extension ids this plugin offers others through get_extension. */
  const char* const* provides;
  uint32_t provides_count;
  /** Extensions it needs; the kernel starts providers first and refuses the
   *  plugin, naming the id, when a required one is missing. */
  const opk_requirement* requirements;
  uint32_t requirement_count;
} opk_manifest;

/* ------------------------------------------------------------------ entry */

/**
 * The exported entry. The first two fields are frozen for all majors, so
 * the kernel can read the version before calling any plugin code.
 * Lifecycle: get_manifest -> init -> start -> ... -> stop -> deinit.
 */
typedef struct opk_plugin_entry {
  /** ABI the plugin was compiled against (OPK_ABI_MAJOR / _MINOR). */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size;
  /** Lowest kernel ABI minor this plugin works with. A plugin built against
   *  a newer minor than the kernel's loads only if this is <= the kernel's. */
  uint32_t min_host_minor;

  /** Returns the manifest; no side effects. [control-thread] */
  const opk_manifest* (*get_manifest)(void);

  /**
   * Creates the plugin instance. Must not start work: that belongs in
   * start. On failure call host->set_error and return non-OK; the plugin is
   * then refused and deinit is not called. [control-thread]
   */
  opk_status (*init)(const opk_host* host, opk_plugin** out_plugin);

  /** Begins serving: add routes, open connections. May be NULL.
   *  Non-OK refuses the plugin (stop is then not called). [control-thread] */
  opk_status (*start)(opk_plugin* plugin);

  /** Stops serving; runs of this plugin have ended. May be NULL.
   *  [control-thread] */
  void (*stop)(opk_plugin* plugin);

  /** Destroys the instance. [control-thread] */
  void (*deinit)(opk_plugin* plugin);

  /** Returns an extension the plugin provides (listed in the manifest's
   *  `provides`), or NULL. LIFETIME: until deinit. [any-thread] May be
   *  NULL when the plugin provides none. */
  const void* (*get_extension)(opk_plugin* plugin, const char* id);
} opk_plugin_entry;

/* ========================================================== extensions */

/* ---- opk.http-routes/1: admin features add HTTP routes ----------------- */

#define OPK_EXT_HTTP_ROUTES "opk.http-routes/1"

/** An HTTP request, lent to a route handler. LIFETIME: during the call. */
typedef struct opk_http_request {
  uint32_t struct_size;
  /** "GET", "POST" ... */
  const char* method;
  /** Decoded path, without the query ("/api/v1/echo/abc"). */
  const char* path;
  /** Values of `{name}` segments of the route pattern. */
  const opk_kv* path_params;
  uint32_t path_param_count;
  /** Decoded query parameters, in order; keys may repeat. */
  const opk_kv* query;
  uint32_t query_count;
  /** Header names in lower case. */
  const opk_kv* headers;
  uint32_t header_count;
  opk_bytes body;
  /** Authenticated caller; NULL on routes that allow anonymous access. */
  const opk_principal* principal;
  /** Client address, "127.0.0.1:53412". */
  const char* remote_addr;
} opk_http_request;

typedef struct opk_http_response opk_http_response;

/** Filled by a route handler. LIFETIME: during the call. Defaults: 200,
 *  no headers, empty body. */
struct opk_http_response {
  uint32_t struct_size;
  opk_host_data* host_data;
  void (*set_status)(const opk_http_response* self, int32_t status);
  /** Adds a header; "content-type" replaces the default. OWNERSHIP: copied. */
  void (*add_header)(const opk_http_response* self, const char* name, const char* value);
  /** Appends to the body. OWNERSHIP: copied. */
  void (*append_body)(const opk_http_response* self, const void* data, size_t size);
  /** (1.1) Sends the status, headers and the body appended so far, and goes
   *  on streaming (Server-Sent Events, long downloads): later appends are
   *  sent at the next flush or when the handler returns. Status and headers
   *  are fixed after the first flush. Returns OPK_ERR_CANCELLED once the
   *  client has gone: stop then. NULL when the server cannot stream. */
  opk_status (*flush)(const opk_http_response* self);
};

/** Route flag: reachable without authentication (health checks). */
#define OPK_ROUTE_ANONYMOUS ((uint64_t)1 << 0)

/** A route an admin feature serves. */
typedef struct opk_http_route {
  uint32_t struct_size;
  /** Admin feature (from the manifest) the route belongs to. */
  const char* feature_id;
  /** "GET", "POST", "PUT", "PATCH", "DELETE". */
  const char* method;
  /** Pattern: literal segments and `{name}` segments, e.g. "/api/v1/echo/{word}". */
  const char* path;
  /** One line for the API document. */
  const char* summary;
  /** OPK_ROUTE_* flags. */
  uint64_t flags;
  /** Passed back to handle. */
  void* route_data;
  /**
   * Handles one request. Returning non-OK with an untouched response makes
   * the kernel answer 500 (problem+json); the set_error detail goes to the
   * plugin's log, never to the client. A touched response is sent as written.
   * [any-thread], concurrently with other requests.
   */
  opk_status (*handle)(opk_plugin* plugin, void* route_data, const opk_http_request* request,
                       const opk_http_response* response);
  /**
   * (1.1) Permission the caller's role needs ("jobs.read", "flags.write"),
   * checked by the kernel against the permission matrix before `handle` is
   * called (403 otherwise). NULL: any authenticated caller. Scope is the
   * handler's to apply: filter what it returns to request->principal's scope.
   */
  const char* permission;
} opk_http_route;

/** The kernel's route service. */
typedef struct opk_http_routes_v1 {
  uint32_t struct_size;
  /**
   * Adds a route for the calling plugin (call from start). Refused with
   * OPK_ERR_CONFLICT if the method and pattern are taken, with
   * OPK_ERR_INVALID_ARGUMENT if malformed or if feature_id is not one of the
   * plugin's admin features. Routes are removed when the plugin
   * stops. [control-thread] OWNERSHIP: the struct and strings are copied.
   */
  opk_status (*add_route)(const opk_host* host, const opk_http_route* route);
  /**
   * (1.1) Serves one request through the route table, for the plugin that
   * runs the HTTP server: finds the route (404, or 405 with Allow), refuses
   * a request without principal on a non-anonymous route (401) or a
   * principal whose role lacks the route's permission (403), then calls the
   * handler with `response` (the server's own, so it can stream). Errors
   * are written into `response` as problem+json. The request's
   * path_params are filled by the kernel. [any-thread]
   */
  opk_status (*dispatch)(const opk_host* host, const opk_http_request* request, const opk_http_response* response);
  /**
   * (1.1) Every route as JSON: [{"plugin", "feature", "method", "path",
   * "summary", "anonymous", "permission"}], in the order added.
   * OWNERSHIP: free *routes_json with opk_host.free. [thread-safe]
   */
  opk_status (*list)(const opk_host* host, char** routes_json);
} opk_http_routes_v1;

/* ---- opk.store/1: a plugin's own tables in the kernel's store ------------ */

#define OPK_EXT_STORE "opk.store/1"

/** FROZEN. (1.2) One statement of opk_store_v1.transaction, with its
 *  parameters bound as text to $1..$n (a NULL entry binds SQL NULL). */
typedef struct opk_store_statement {
  const char* sql;
  const char* const* params;
  uint32_t param_count;
} opk_store_statement;

/** FROZEN. One schema change of a plugin's own tables. */
typedef struct opk_store_migration {
  /** 1, 2, 3 ... without gaps. */
  int32_t version;
  const char* name;
  /** One or more statements separated by ';'. */
  const char* sql;
} opk_store_migration;

/**
 * The kernel's store, shared by every kernel of an installation (SQLite when
 * embedded, PostgreSQL when scaled out). Write portable SQL with $1, $2 ...
 * placeholders; name tables after the plugin (p_<id>_...). Decide anything
 * that must happen once (a reminder per invoice) with a unique key here,
 * never in memory: several kernels may run the same plugin. Available from
 * init on, in `opskernel run` and `jobs run`; NULL where the kernel runs
 * without a store (`plugins list`, `plugins check`).
 */
typedef struct opk_store_v1 {
  uint32_t struct_size;
  /** "sqlite" or "postgresql", for the rare statement that must differ.
   *  [thread-safe] LIFETIME: static. */
  const char* (*dialect)(const opk_host* host);
  /**
   * Applies the calling plugin's migrations not yet applied, in order, each
   * in its own transaction, recorded with the plugin id as owner. A failing
   * one is rolled back; the error (set_error) names its version and the
   * database's message. [control-thread] (call from init or start)
   */
  opk_status (*migrate)(const opk_host* host, const opk_store_migration* migrations, uint32_t count);
  /**
   * Runs one statement with `params` bound as text to $1..$n (a NULL entry
   * binds SQL NULL); *changed (may be NULL) gets the rows changed. A
   * constraint violation returns OPK_ERR_CONFLICT. [thread-safe]
   */
  opk_status (*execute)(const opk_host* host, const char* sql, const char* const* params, uint32_t param_count,
                        int64_t* changed);
  /**
   * Runs one query; *rows_json gets its rows as a JSON array of arrays of
   * strings and nulls, e.g. [["1","a"],["2",null]].
   * OWNERSHIP: free *rows_json with opk_host.free. [thread-safe]
   */
  opk_status (*query)(const opk_host* host, const char* sql, const char* const* params, uint32_t param_count,
                      char** rows_json);
  /**
   * (1.2) Runs `count` statements in one transaction: all take effect or
   * none does. Each may return rows (a SELECT, or a write with RETURNING).
   * *results_json gets one object per statement, in order:
   * [{"changed": n, "rows": [[1, "a", null, 2.5], ...]}, ...], values typed
   * as in query_typed. On failure nothing is changed, *results_json gets
   * {"error": message, "statement": index} and the status is
   * OPK_ERR_CONFLICT for a constraint violation, OPK_ERR_PERMISSION for a
   * table outside the plugin's own, OPK_ERR_INVALID_ARGUMENT for bad SQL,
   * OPK_ERR_UNAVAILABLE when the store cannot be written.
   * OWNERSHIP: free *results_json with opk_host.free. [thread-safe]
   */
  opk_status (*transaction)(const opk_host* host, const opk_store_statement* statements, uint32_t count,
                            char** results_json);
  /**
   * (1.2) As query, with values typed: integers and reals as JSON numbers,
   * text as strings, SQL NULL as null, blobs as base64 strings.
   * OWNERSHIP: free *rows_json with opk_host.free. [thread-safe]
   */
  opk_status (*query_typed)(const opk_host* host, const char* sql, const char* const* params, uint32_t param_count,
                            char** rows_json);
} opk_store_v1;

/* ---- opk.identity/1: who a token belongs to, what a role may do -------- (1.1) */

#define OPK_EXT_IDENTITY "opk.identity/1"

/** The kernel's tenancy and identities: the hierarchy Platform > Distributor
 *  > Partner > Tenant > Subscription (node ids "platform", "tenant:acme"),
 *  users with a role at a node, API tokens and the permission matrix. */
typedef struct opk_identity_v1 {
  uint32_t struct_size;
  /**
   * Checks an API token. OK: *principal_json gets {"user_id", "role",
   * "scope"}. OPK_ERR_PERMISSION when the token is unknown, expired,
   * revoked or its user disabled: *principal_json gets {"error": why}.
   * Never log the token. OWNERSHIP: free *principal_json with
   * opk_host.free. [thread-safe]
   */
  opk_status (*authenticate)(const opk_host* host, const char* token, char** principal_json);
  /** 1 if `role` has `permission` in the configured matrix, else 0. [thread-safe] */
  int32_t (*allowed)(const opk_host* host, const char* role, const char* permission);
  /** 1 if node `node` is `scope` or lies under it, else 0. [thread-safe] */
  int32_t (*contains)(const opk_host* host, const char* scope, const char* node);
  /**
   * (1.2) Checks an API token and issues its principal: the handle to pass
   * as actor to kernel services. OPK_ERR_PERMISSION as for authenticate
   * (the reason goes to set_error). Valid until release_principal; release
   * it when the request ends. [thread-safe]
   */
  opk_status (*principal_for_token)(const opk_host* host, const char* token, const opk_principal** out);
  /** (1.2) Ends a principal from principal_for_token; NULL is ignored.
   *  [thread-safe] */
  void (*release_principal)(const opk_host* host, const opk_principal* principal);
  /**
   * (1.2) The calling plugin's system identity, for work nobody asked for
   * in a request (health checks, background sweeps): user id
   * "system:<plugin id>", role "System" (every permission), scope
   * "platform"; audit rows name it as such. LIFETIME: until deinit.
   * [thread-safe]
   */
  const opk_principal* (*system_principal)(const opk_host* host);
  /**
   * (1.2) Every permission the kernel knows: [{"name", "description",
   * "owner" ("kernel" or a plugin id), "roles": [role names granted it]}].
   * OWNERSHIP: free *permissions_json with opk_host.free. [thread-safe]
   */
  opk_status (*permissions)(const opk_host* host, char** permissions_json);
  /** (1.3) 1 if hierarchy node `node` ("tenant:acme") exists, else 0.
   *  [thread-safe] */
  int32_t (*node_exists)(const opk_host* host, const char* node);
  /**
   * (1.6) Hierarchy node `node` and its ancestors, the root first, as a
   * JSON array of node ids: ["platform", "distributor:d1", "partner:p1",
   * "tenant:acme"] (["platform"] for the root). OPK_ERR_NOT_FOUND when the
   * node does not exist (*path_json then gets NULL). Use it to find whose a
   * node is (a tenant's partner and distributor).
   * OWNERSHIP: free *path_json with opk_host.free. [thread-safe]
   */
  opk_status (*node_path)(const opk_host* host, const char* node, char** path_json);
} opk_identity_v1;

/* ---- opk.jobs/1: the job engine, for admin features --------------------- (1.1) */

#define OPK_EXT_JOBS "opk.jobs/1"

/**
 * The job engine's operations, by name, with JSON in and out (docs/abi.md
 * lists each operation's request and answer). Reads are filtered to the
 * actor's scope; actions are checked against the actor's permissions and
 * audited with `source`. The engine's own rules hold for every caller
 * (manual_run=false types are refused, a reason is required ...).
 */
typedef struct opk_jobs_v1 {
  uint32_t struct_size;
  /**
   * Runs `operation` ("inventory", "job", "run_now", "cancel", "log" ...)
   * for `actor` (required) with `request_json` (an object; NULL for {}),
   * coming from `source` (a client address, for the audit; may be NULL).
   * *answer_json gets the answer; on failure {"error": message} with the
   * status: INVALID_ARGUMENT (the message names the field), NOT_FOUND,
   * CONFLICT, PERMISSION, UNSUPPORTED (unknown operation), UNAVAILABLE.
   * "log" with "wait_ms" blocks up to that long for new lines.
   * OWNERSHIP: free *answer_json with opk_host.free. [any-thread]
   */
  opk_status (*call)(const opk_host* host, const opk_principal* actor, const char* operation, const char* request_json,
                     const char* source, char** answer_json);
} opk_jobs_v1;

/* ---- opk.alerts/1: the alert engine ------------------------------------ (1.3) */

#define OPK_EXT_ALERTS "opk.alerts/1"

/**
 * The alert engine's operations, by name, with JSON in and out (docs/abi.md
 * lists each operation's request and answer): "list", "get", "counts",
 * "acknowledge", "close", "silence", "unsilence", "create", and for the
 * calling plugin's own alert sources "raise", "clear", "escalate". Every
 * read and action sees only the alerts in the actor's view; an alert outside
 * it answers NOT_FOUND. Actions are checked against the actor's permissions
 * and audited with `source`.
 */
typedef struct opk_alerts_v1 {
  uint32_t struct_size;
  /**
   * Runs `operation` for `actor` (required, a principal the kernel issued)
   * with `request_json` (an object; NULL for {}), coming from `source` (a
   * client address, for the audit; may be NULL). *answer_json gets the
   * answer; on failure {"error": message} with the status: INVALID_ARGUMENT
   * (the message starts with the field), NOT_FOUND, CONFLICT, PERMISSION,
   * UNSUPPORTED (unknown operation), UNAVAILABLE.
   * OWNERSHIP: free *answer_json with opk_host.free. [any-thread]
   */
  opk_status (*call)(const opk_host* host, const opk_principal* actor, const char* operation, const char* request_json,
                     const char* source, char** answer_json);
} opk_alerts_v1;

/* ---- opk.events/1: the kernel's event log ------------------------------ (1.4) */

#define OPK_EXT_EVENTS "opk.events/1"

/**
 * The kernel's event log: a durable, ordered log of what happened (a run
 * completed or failed, an alert opened or closed, a plugin's own events),
 * each event a JSON document whose shape docs/events.md describes. Run and
 * alert events are written in the same store transaction as the change
 * they report, so none is lost or doubled across a crash. Operations by
 * name, with JSON in and out (docs/abi.md lists each request and answer):
 * "emit" (permission events.emit; a plugin's system principal has it; an
 * optional "key" keeps at most one event per plugin and key, in the store),
 * "read" (blocks up to "wait_ms" for new events), "ack" and "get" (System
 * principal only: events are not filtered by scope, the reader applies it).
 */
typedef struct opk_events_v1 {
  uint32_t struct_size;
  /**
   * Runs `operation` for `actor` (required, a principal the kernel issued)
   * with `request_json` (an object; NULL for {}), coming from `source` (for
   * logs; may be NULL). *answer_json gets the answer; on failure {"error":
   * message} with the status: INVALID_ARGUMENT (the message starts with the
   * field), NOT_FOUND, PERMISSION, UNSUPPORTED (unknown operation),
   * UNAVAILABLE. OWNERSHIP: free *answer_json with opk_host.free.
   * [any-thread]
   */
  opk_status (*call)(const opk_host* host, const opk_principal* actor, const char* operation, const char* request_json,
                     const char* source, char** answer_json);
} opk_events_v1;

/* ---- opk.channels/1: the loaded notification channels ------------------ (1.4) */

#define OPK_EXT_CHANNELS "opk.channels/1"

/**
 * The notification channels of every started plugin, for the plugin that
 * sends notifications. The kernel routes each call to the channel's plugin
 * and guards it: a channel that fails, leaves `detail` unterminated or is
 * unknown never harms the caller. A 1.0 channel that has only `send` is
 * called through `send`, its status mapped into the result.
 */
typedef struct opk_channels_v1 {
  uint32_t struct_size;
  /**
   * Every channel: [{"id", "title", "description", "plugin", "deliver"
   * (true when it reports results), "check_recipient" (true when it checks
   * recipients)}]. OWNERSHIP: free *answer_json with opk_host.free.
   * [thread-safe]
   */
  opk_status (*list)(const opk_host* host, char** answer_json);
  /**
   * Delivers `message` through channel `channel_id`; `result` (zero-filled
   * by the caller, struct_size set) gets the channel's report. NOT_FOUND
   * with detail "unknown channel 'x'"; INTERNAL when the channel broke its
   * contract; otherwise the channel's status. [any-thread] (blocks while
   * the channel delivers)
   */
  opk_status (*deliver)(const opk_host* host, const char* channel_id, const opk_notification* message,
                        opk_delivery_result* result);
  /**
   * Checks `recipient` with `options_json` (may be NULL) through channel
   * `channel_id`: OK, or INVALID_ARGUMENT with result->detail saying what
   * is wrong; NOT_FOUND for an unknown channel. OK for a channel that does
   * not check recipients. [any-thread]
   */
  opk_status (*check_recipient)(const opk_host* host, const char* channel_id, const char* recipient,
                                const char* options_json, opk_delivery_result* result);
} opk_channels_v1;

/* ---- opk.metrics/1: plugins' Prometheus metrics ----------------------- (1.5) */

#define OPK_EXT_METRICS "opk.metrics/1"

typedef struct opk_metrics_writer opk_metrics_writer;

/** Lent to a collector for one collection. LIFETIME: until the collector
 *  returns; do not keep it. */
struct opk_metrics_writer {
  uint32_t struct_size;
  /** Kernel-private. */
  opk_host_data* host_data;
  /** Appends `text`: whole lines of the Prometheus text exposition format
   *  (version 0.0.4), each ending in "\n": "# HELP name ...", "# TYPE name
   *  gauge|counter|histogram|summary|untyped" and samples "name{label="v"}
   *  value". Every name starts with "opskernel_". OWNERSHIP: copied. */
  void (*append)(const opk_metrics_writer* self, const char* text);
};

/** A plugin's collector: appends the current values of the plugin's own
 *  metrics through `out` and returns OPK_OK. Called on the thread serving a
 *  scrape, possibly on several at once. [any-thread] */
typedef opk_status (*opk_metrics_collect_fn)(void* user_data, const opk_metrics_writer* out);

/**
 * The kernel's list of metrics collectors: every plugin adds its own, and
 * the plugin serving HTTP reads them all (admin-http's /metrics). A
 * collection that fails, or whose text is not the exposition format with
 * "opskernel_" names, is left out and logged; the others are kept. A
 * plugin's collectors are removed before it stops, once the calls into
 * them have returned.
 */
typedef struct opk_metrics_v1 {
  uint32_t struct_size;
  /**
   * Adds collector `name` ([a-z0-9_-]{1,64}, unique within the calling
   * plugin) calling `collect` with `user_data`; call it from start. The
   * collector is called until remove_collector or the plugin stops.
   * INVALID_ARGUMENT for a bad name or NULL `collect`, CONFLICT when the
   * plugin has one of that name. [thread-safe]
   */
  opk_status (*add_collector)(const opk_host* host, const char* name, opk_metrics_collect_fn collect, void* user_data);
  /** Removes the calling plugin's collector `name`, once the calls into it
   *  have returned; NOT_FOUND when it has none of that name. [thread-safe] */
  opk_status (*remove_collector)(const opk_host* host, const char* name);
  /**
   * Runs every collector and gives their text, one after another in the
   * order they were added. *text gets it (possibly ""). OWNERSHIP: free
   * *text with opk_host.free. [any-thread] (blocks while collectors run)
   */
  opk_status (*collect)(const opk_host* host, char** text);
} opk_metrics_v1;

/* ---- opk.audit/1: audit rows written by plugins ------------------------ (1.2) */

#define OPK_EXT_AUDIT "opk.audit/1"

/** One audited action of a plugin. LIFETIME: during the call. */
typedef struct opk_audit_entry {
  uint32_t struct_size;
  /** Who did it: a principal the kernel issued (a request's, or the
   *  plugin's system principal). Required. */
  const opk_principal* actor;
  /** What was done, "<area>.<verb>" ("flags.update"). Required. */
  const char* action;
  /** What it was done to ("flag:checkout-v2"). Required. */
  const char* target;
  /** The operator's reason; NULL if none. */
  const char* reason;
  /** The target before and after, JSON; NULL when not applicable. */
  const char* before_json;
  const char* after_json;
  /** "success", "refused" or "failed". NULL: "success". */
  const char* outcome;
  /** Where the request came from (a client address); NULL if none. */
  const char* source;
} opk_audit_entry;

/** The kernel's audit trail, for admin features. Rows are written durably
 *  before record returns, with the plugin's id, and appear with the
 *  kernel's own rows (the audit API, retention, export). */
typedef struct opk_audit_v1 {
  uint32_t struct_size;
  /**
   * Appends one row. OPK_ERR_PERMISSION when the actor is not a principal
   * the kernel issued; OPK_ERR_INVALID_ARGUMENT (set_error names the field)
   * for a missing or malformed field or JSON; OPK_ERR_UNAVAILABLE when the
   * store cannot be written. [thread-safe]
   */
  opk_status (*record)(const opk_host* host, const opk_audit_entry* entry);
} opk_audit_v1;

/* ---- opk.cache/1: the kernel's in-process cache ----------------------- (1.7) */

#define OPK_EXT_CACHE "opk.cache/1"

/**
 * The kernel's in-process cache (docs/cache.md). Each plugin has its own
 * namespace: get, put, remove and purge reach only the calling plugin's
 * entries. All namespaces share one bound on memory ([cache] max_bytes):
 * a put past it evicts the least recently used entries of any plugin, and
 * an entry above [cache] max_entry_bytes is refused. Expiry reads the
 * kernel's clock (opk_host.now_ms). Keys are 1..1024 bytes of text;
 * patterns are Redis-style globs (*, ?, [a-z], [^a], \ escapes).
 */
typedef struct opk_cache_v1 {
  uint32_t struct_size;
  /**
   * The value of `key`: *value gets a copy of it and *size its length
   * (the copy is NUL-terminated after `size` bytes). NOT_FOUND (and NULL)
   * when there is none or it has expired. OWNERSHIP: free *value with
   * opk_host.free. [thread-safe]
   */
  opk_status (*get)(const opk_host* host, const char* key, char** value, size_t* size);
  /**
   * Stores `size` bytes at `value` under `key`, replacing any entry,
   * expiring `ttl_ms` from now (0: only when evicted). INVALID_ARGUMENT
   * (set_error names the field) for a bad key, a negative ttl or an entry
   * above the bound. OWNERSHIP: copied. [thread-safe]
   */
  opk_status (*put)(const opk_host* host, const char* key, const void* value, size_t size, int64_t ttl_ms);
  /** Removes `key`; NOT_FOUND when there is none. [thread-safe] */
  opk_status (*remove)(const opk_host* host, const char* key);
  /**
   * Removes the calling plugin's live entries whose key matches glob
   * `pattern` (with `dry_run` non-zero only counts them); *count gets how
   * many. INVALID_ARGUMENT for an empty pattern. [thread-safe]
   */
  opk_status (*purge)(const opk_host* host, const char* pattern, int32_t dry_run, uint64_t* count);
  /**
   * For an admin feature acting for `actor` (a principal the kernel
   * issued whose role holds "cache.read"): every namespace with its
   * counters, as JSON {"max_bytes":N,"max_entry_bytes":N,"bytes":N,
   * "namespaces":[{"plugin":"...","entries":N,"bytes":N,"hits":N,
   * "misses":N,"puts":N,"evictions":N,"expirations":N,"purged":N,
   * "refused":N}]}. PERMISSION otherwise. OWNERSHIP: free *stats_json with
   * opk_host.free. [thread-safe]
   */
  opk_status (*stats)(const opk_host* host, const opk_principal* actor, char** stats_json);
  /**
   * For an admin feature acting for `actor` (a principal the kernel
   * issued whose role holds "cache.purge"): purge as above in the
   * namespace of plugin `plugin_id`. PERMISSION otherwise;
   * INVALID_ARGUMENT for an empty plugin id or pattern. [thread-safe]
   */
  opk_status (*purge_plugin)(const opk_host* host, const opk_principal* actor, const char* plugin_id,
                             const char* pattern, int32_t dry_run, uint64_t* count);
} opk_cache_v1;

/* ---- opk.migrations/1: the store's schema migrations ------------------ (1.8) */

#define OPK_EXT_MIGRATIONS "opk.migrations/1"

/**
 * The schema migrations of the kernel's store, the kernel's own and every
 * plugin's, for an admin feature (docs/abi.md, "The migrations service").
 * Read-only: the kernel keeps the records and applies migrations itself
 * (opk_store_v1.migrate).
 */
typedef struct opk_migrations_v1 {
  uint32_t struct_size;
  /**
   * For an admin feature acting for `actor` (a principal the kernel
   * issued whose role holds "migrations.read"): the migrations as JSON
   * {"dialect":"sqlite"|"postgresql","now_ms":N,
   *  "applied":[{"owner":"...","version":N,"name":"...","applied_ms":N}],
   *  "attempts":[{"owner":"...","version":N,"name":"...","started_ms":N,
   *    "duration_us":N,"outcome":"applied"|"failed","error":"..."}],
   *  "declared":[{"owner":"...","declared_ms":N,
   *    "migrations":[{"version":N,"name":"..."}]}]}
   * `applied` by owner and version; `attempts` oldest first (recorded from
   * kernel schema version 10 on: an applied migration with its script's
   * time, a failed one, rolled back, with the database's message);
   * `declared` the kernel's own migrations and those each plugin gave
   * opk_store_v1.migrate in this kernel since it started (what a plugin
   * declares beyond what is applied is pending). PERMISSION otherwise;
   * UNAVAILABLE when the store cannot be read. OWNERSHIP: free
   * *status_json with opk_host.free. [thread-safe]
   */
  opk_status (*status)(const opk_host* host, const opk_principal* actor, char** status_json);
} opk_migrations_v1;

/* ---- opk.run-gates/1: gates on the scheduler's runs ------------------- (1.8) */

#define OPK_EXT_RUN_GATES "opk.run-gates/1"

/** A scheduled job's slot falling due, as a run gate is asked about it.
 *  LIFETIME: valid during the gate's call. */
typedef struct opk_run_slot {
  uint32_t struct_size;
  /** The scheduled job's id. */
  const char* scheduled_job_id;
  /** Its job type id. */
  const char* job_type_id;
  /** Its scope node ("platform", "tenant:acme"). */
  const char* scope;
  /** The slot's time, ms since the epoch. */
  int64_t slot_ms;
} opk_run_slot;

/** A run gate's answer: the slot's run is created as usual. */
#define OPK_GATE_RUN 0
/** A run gate's answer: the slot is not run; it is recorded as a run
 *  COMPLETED with outcome "SKIPPED" whose summary is the reason. */
#define OPK_GATE_SKIP 1

/**
 * A run gate: asked by the job engine's scheduler before it creates the
 * run of a scheduled job's slot (never for runs started by hand, retries or
 * chains). Returns OPK_GATE_RUN or OPK_GATE_SKIP; for a skip it writes why
 * into `reason`, a buffer of `reason_size` bytes, NUL-terminated UTF-8 (the
 * kernel prefixes the plugin id). Must answer from memory, without a store
 * read or a wait: the scheduler waits for it. Any other answer runs the
 * slot. [thread-safe]
 */
typedef int32_t (*opk_run_gate_fn)(void* user_data, const opk_run_slot* slot, char* reason, size_t reason_size);

/**
 * The scheduler's run gates (docs/abi.md, "The run gates"): a plugin that
 * must hold scheduled work for a while (a tenant in maintenance) adds a
 * gate; the scheduler asks every gate for each slot falling due and skips
 * the slot when one says so, recording it, so an operator sees the slot and
 * why it did not run. Gates are kept in memory; the kernel removes a
 * plugin's gates, after the calls into them have returned, before the
 * plugin stops.
 */
typedef struct opk_run_gates_v1 {
  uint32_t struct_size;
  /** Adds gate `name` (1..64 of [a-z0-9_-]) of the calling plugin.
   *  INVALID_ARGUMENT for a bad name or a NULL `gate`, CONFLICT when the
   *  plugin has a gate of that name. [thread-safe] */
  opk_status (*add_gate)(const opk_host* host, const char* name, opk_run_gate_fn gate, void* user_data);
  /** Removes gate `name` of the calling plugin, waiting for calls into it;
   *  NOT_FOUND if it has none of that name. [thread-safe] */
  opk_status (*remove_gate)(const opk_host* host, const char* name);
} opk_run_gates_v1;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OPSKERNEL_OPK_ABI_H */
