/* Compiles the ABI header as strict C11 (-pedantic) and pins its layout on
 * LP64: any change to a size or offset below is an ABI change and must be
 * deliberate (append only, and update docs/abi.md). */
#include <opskernel/opk_abi.h>

#include <assert.h>
#include <stddef.h>

static_assert(sizeof(void*) == 8, "layout pinned for LP64");
static_assert(offsetof(opk_plugin_entry, abi_major) == 0, "version first, frozen");
static_assert(offsetof(opk_plugin_entry, abi_minor) == 4, "version first, frozen");
static_assert(offsetof(opk_plugin_entry, struct_size) == 8, "entry layout");
static_assert(offsetof(opk_plugin_entry, get_manifest) == 16, "entry layout");
static_assert(sizeof(opk_plugin_entry) == 64, "entry layout");
static_assert(offsetof(opk_host, last_error) == 80 && sizeof(opk_host) == 88, "host layout");
static_assert(offsetof(opk_host, log) == 32, "host layout");
static_assert(sizeof(opk_manifest) == 144, "manifest layout");
static_assert(sizeof(opk_job_type) == 144, "job type layout");
static_assert(offsetof(opk_job_type, run) == 128, "job type layout");
static_assert(offsetof(opk_run_context, wait) == 160 && sizeof(opk_run_context) == 168, "run context layout");
static_assert(offsetof(opk_run_context, log) == 104, "run context layout");
static_assert(offsetof(opk_alert_source, evaluate) == 72, "alert source layout");
static_assert(offsetof(opk_alert, details_json) == 56, "alert layout");
static_assert(offsetof(opk_alert_context, is_cancelled) == 48, "alert context layout");
static_assert(offsetof(opk_admin_feature, permissions) == 48 && sizeof(opk_admin_feature) == 64,
              "admin feature layout");
static_assert(offsetof(opk_notification_channel, send) == 32, "channel layout (1.0 part)");
static_assert(offsetof(opk_notification, event_json) == 48, "notification layout (1.0 part)");
static_assert(sizeof(opk_http_request) == 104, "http request layout");
/* 1.1 appended members after the 1.0 layout, which is unchanged. */
static_assert(offsetof(opk_http_response, flush) == 40 && sizeof(opk_http_response) == 48, "http response layout");
static_assert(offsetof(opk_http_route, permission) == 64 && sizeof(opk_http_route) == 72, "http route layout");
static_assert(offsetof(opk_http_routes_v1, dispatch) == 16 && sizeof(opk_http_routes_v1) == 32,
              "http routes ext layout");
static_assert(offsetof(opk_identity_v1, principal_for_token) == 32, "identity ext layout");
static_assert(offsetof(opk_identity_v1, permissions) == 56, "identity ext layout");
static_assert(sizeof(opk_jobs_v1) == 16, "jobs ext layout");
static_assert(sizeof(opk_principal) == 32, "principal layout");
static_assert(sizeof(opk_kv) == 16 && sizeof(opk_bytes) == 16, "frozen");
static_assert(sizeof(opk_translation) == 24 && sizeof(opk_action) == 16, "frozen");
static_assert(sizeof(opk_requirement) == 16, "frozen");
static_assert(sizeof(opk_store_migration) == 24, "frozen");
static_assert(offsetof(opk_store_v1, transaction) == 40 && sizeof(opk_store_v1) == 56, "store ext layout");
/* 1.2 appended members (above) and added these. */
static_assert(sizeof(opk_permission) == 16 && sizeof(opk_store_statement) == 24, "frozen");
static_assert(sizeof(opk_audit_entry) == 72 && sizeof(opk_audit_v1) == 16, "audit layout");
/* 1.3 appended these members after the 1.2 layout (above), which is unchanged. */
static_assert(offsetof(opk_alert, type) == 64 && sizeof(opk_alert) == 72, "alert layout");
static_assert(offsetof(opk_alert_context, escalate) == 56 && sizeof(opk_alert_context) == 64, "alert context layout");
static_assert(offsetof(opk_alert_source, clean_sweeps) == 80 && offsetof(opk_alert_source, timeout_ms) == 88 &&
                  sizeof(opk_alert_source) == 96,
              "alert source layout");
static_assert(offsetof(opk_identity_v1, node_exists) == 64, "identity ext layout");
static_assert(sizeof(opk_alerts_v1) == 16, "alerts ext layout");
/* 1.4 appended these members after the 1.3 layout (above), which is unchanged. */
static_assert(offsetof(opk_notification, id) == 56 && offsetof(opk_notification, attempt) == 64 &&
                  offsetof(opk_notification, html_body) == 72 && offsetof(opk_notification, options_json) == 80 &&
                  offsetof(opk_notification, timeout_ms) == 88 && sizeof(opk_notification) == 96,
              "notification layout");
static_assert(offsetof(opk_notification_channel, deliver) == 40 &&
                  offsetof(opk_notification_channel, check_recipient) == 48 && sizeof(opk_notification_channel) == 56,
              "channel layout");
static_assert(offsetof(opk_delivery_result, code) == 4 && offsetof(opk_delivery_result, latency_ms) == 8 &&
                  offsetof(opk_delivery_result, retry_after_ms) == 16 && offsetof(opk_delivery_result, flags) == 24 &&
                  offsetof(opk_delivery_result, detail) == 28 && sizeof(opk_delivery_result) == 544,
              "delivery result layout, frozen");
static_assert(OPK_DELIVERY_PERMANENT == 1 && OPK_DELIVERY_GONE == 2, "delivery flags");
static_assert(sizeof(opk_events_v1) == 16, "events ext layout");
static_assert(offsetof(opk_channels_v1, list) == 8 && offsetof(opk_channels_v1, deliver) == 16 &&
                  offsetof(opk_channels_v1, check_recipient) == 24 && sizeof(opk_channels_v1) == 32,
              "channels ext layout");

/* 1.5: the metrics service. */
static_assert(offsetof(opk_metrics_writer, host_data) == 8 && offsetof(opk_metrics_writer, append) == 16 &&
                  sizeof(opk_metrics_writer) == 24,
              "metrics writer layout");
static_assert(offsetof(opk_metrics_v1, add_collector) == 8 && offsetof(opk_metrics_v1, remove_collector) == 16 &&
                  offsetof(opk_metrics_v1, collect) == 24 && sizeof(opk_metrics_v1) == 32,
              "metrics ext layout");

/* 1.6 appended node_path after the 1.3 identity layout (above), which is unchanged. */
static_assert(offsetof(opk_identity_v1, node_path) == 72 && sizeof(opk_identity_v1) == 80, "identity ext layout");

/* 1.7: the cache service. */
static_assert(offsetof(opk_cache_v1, get) == 8 && offsetof(opk_cache_v1, put) == 16 &&
                  offsetof(opk_cache_v1, remove) == 24 && offsetof(opk_cache_v1, purge) == 32 &&
                  offsetof(opk_cache_v1, stats) == 40 && offsetof(opk_cache_v1, purge_plugin) == 48 &&
                  sizeof(opk_cache_v1) == 56,
              "cache ext layout");

/* 1.8: the migrations service. */
static_assert(offsetof(opk_migrations_v1, status) == 8 && sizeof(opk_migrations_v1) == 16, "migrations ext layout");

/* Referenced by the C++ test so the file is linked, not only compiled. */
int opk_abi_c11_ok(void) {
  return OPK_ABI_MAJOR * 100 + OPK_ABI_MINOR;
}
