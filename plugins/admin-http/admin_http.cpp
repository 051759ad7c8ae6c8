// admin-http -- the HTTP admin API. Serves the kernel's route table on the
// configured address (http_server.*) and adds the API's own routes: jobs,
// runs and their logs (with a Server-Sent Events stream), alerts
// (alerts_routes.*), audit, plugins, health, Prometheus metrics and the
// OpenAPI document. The job and alert routes are thin: they turn the request
// into an operation of opk.jobs/1 or opk.alerts/1, and the kernel checks
// permission and scope and audits.
// Needs the route dispatch, streaming and the job service of ABI 1.1; serves
// the alert routes where the kernel offers opk.alerts/1 (ABI 1.3).
#define OPK_REQUIRED_HOST_MINOR 1
#include <opskernel/maintenance.h>
#include <opskernel/rate_limits.h>
#include <opskernel/opk.hpp>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSONString.h>
#include <Poco/String.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

#include "alerts_routes.h"
#include "api_errors.h"
#include "http_server.h"

namespace opk::admin {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// One route of this API: what it does and how a request becomes an
// operation of opk.jobs/1. Also the source of its OpenAPI description.
struct ApiRoute {
  const char* method;
  const char* path;
  const char* summary;
  const char* permission;  // nullptr: any authenticated caller
  const char* op;          // opk.jobs/1 operation; nullptr: a handler of its own
  std::vector<const char*> query_strings;
  std::vector<const char*> query_ints;
  bool body = false;               // takes a JSON object body
  const char* path_key = nullptr;  // the {id} segment's field in the request
  bool path_is_int = false;
  int success = 200;
  uint64_t flags = 0;
  std::vector<const char*> query_bools;     // true | false
  std::vector<const char*> required_query;  // of the query parameters, those the OpenAPI document marks required
  bool body_optional = false;               // the body may be left out (what it carries may come in the query)
};

const std::vector<ApiRoute>& api_routes() {
  static const std::vector<ApiRoute> routes = {
      {"GET",
       "/api/v1/jobs",
       "Scheduled jobs with their last run (filter, sort, page)",
       "jobs.read",
       "inventory",
       {"status", "text", "type", "tenant", "region", "sort", "order"},
       {"offset", "limit"}},
      {"POST", "/api/v1/jobs", "Create a scheduled job", "jobs.write", "define", {}, {}, true, nullptr, false, 201},
      {"GET",
       "/api/v1/jobs/{id}",
       "A scheduled job: last runs, failures per day (30 days), next fire times",
       "jobs.read",
       "job",
       {},
       {"last_n"},
       false,
       "id"},
      {"PATCH",
       "/api/v1/jobs/{id}",
       "Change a scheduled job's schedule, parameters, enabled, recipients ...",
       "jobs.write",
       "update",
       {},
       {},
       true,
       "id"},
      {.method = "DELETE",
       .path = "/api/v1/jobs/{id}",
       .summary = "Delete a scheduled job (a reason required, in a JSON body or the query); refused while a run of it "
                  "is pending or running; its runs stay in the history",
       .permission = "jobs.write",
       .op = "delete",
       .query_strings = {"reason"},
       .body = true,
       .path_key = "id",
       .body_optional = true},
      {"POST",
       "/api/v1/jobs/{id}/run",
       "Run a scheduled job now (parameters, reason)",
       "runs.start",
       "run_now",
       {},
       {},
       true,
       "job_id",
       false,
       202},
      {"GET", "/api/v1/job-types", "Job types with capabilities and parameter schemas", "jobs.read", "types"},
      {.method = "GET",
       .path = "/api/v1/runs",
       .summary =
           "Runs, newest first, a page at a time (filter by job, type, status, trigger, time, over target, stale)",
       .permission = "jobs.read",
       .op = "runs",
       .query_strings = {"job_id", "job_type", "status", "trigger", "cursor"},
       .query_ints = {"limit", "since_ms", "until_ms"},
       .query_bools = {"over_target", "stale"}},
      {"POST",
       "/api/v1/runs",
       "Start an ad-hoc run of a job type, or a batch ({\"requests\": [...]})",
       "runs.start",
       "run_now",
       {},
       {},
       true,
       nullptr,
       false,
       202},
      {"GET", "/api/v1/runs/{id}", "A run with its steps", "jobs.read", "run", {}, {}, false, "run_id", true},
      {"GET",
       "/api/v1/runs/{id}/log",
       "A run's log lines after a cursor (since = last seq seen)",
       "jobs.read",
       "log",
       {},
       {"since", "limit"},
       false,
       "run_id",
       true},
      {"GET",
       "/api/v1/runs/{id}/events",
       "A run's log as Server-Sent Events until the run completes",
       "jobs.read",
       nullptr,
       {},
       {"since"},
       false,
       "run_id",
       true},
      {"POST",
       "/api/v1/runs/{id}/cancel",
       "Cancel a run (its type must have a cancel hook once running)",
       "runs.cancel",
       "cancel",
       {},
       {},
       true,
       "run_id",
       true},
      {"POST",
       "/api/v1/runs/{id}/retry",
       "Run a failed run again, with the same or new parameters",
       "runs.retry",
       "retry",
       {},
       {},
       true,
       "run_id",
       true,
       202},
      {"POST", "/api/v1/runs/{id}/hold", "Hold a pending run", "runs.hold", "hold", {}, {}, true, "run_id", true},
      {"POST", "/api/v1/runs/{id}/release", "Release a held run", "runs.hold", "release", {}, {}, true, "run_id", true},
      {"POST",
       "/api/v1/runs/{id}/recover",
       "Close a stale running run (status recovered, not a failure)",
       "runs.recover",
       "recover",
       {},
       {},
       true,
       "run_id",
       true},
      {"GET", "/api/v1/queues", "Queued runs per worker pool", "jobs.read", "queues"},
      {"GET", "/api/v1/overview",
       "Runs now, the last 24 hours by status and per hour, the pools' queues, failures by job (the caller's scope)",
       "jobs.read", "overview"},
      {"POST",
       "/api/v1/failure-groups",
       "Failed runs not yet seen, counted per job (after a run id per job, without runs seen one by one; the "
       "caller's scope)",
       "jobs.read",
       "failure_groups",
       {},
       {},
       true},
      {"GET", "/api/v1/workers", "The kernels sharing the store: node, version, plugins, heartbeat, status",
       "jobs.read", "workers"},
      {"POST",
       "/api/v1/workers/{id}/drain",
       "Drain a worker: it claims no new run, finishes its runs, then reports drained (reason)",
       "runs.recover",
       "drain",
       {},
       {},
       true,
       "node",
       false,
       202},
      {"GET",
       "/api/v1/cron/next",
       "The next fire times of a cron expression in a time zone",
       "jobs.read",
       "cron_next",
       {"cron", "time_zone"},
       {"n", "after_ms"}},
      {"GET",
       "/api/v1/audit",
       "The audit log, newest first (filter by actor, action)",
       "audit.read",
       "audit",
       {"actor", "action"},
       {"limit"}},
      {"GET", "/api/v1/plugins", "Loaded plugins with their manifests, and refused ones with reasons", "plugins.read",
       "plugins"},
      {"GET", "/api/v1/me", "The caller: user, role, scope and the kernel permissions the role holds", nullptr,
       nullptr},
      {.method = "GET",
       .path = "/api/v1/openapi.json",
       .summary = "This API as an OpenAPI 3 document",
       .permission = nullptr,
       .op = nullptr,
       .flags = OPK_ROUTE_ANONYMOUS},
      {.method = "GET",
       .path = "/healthz",
       .summary = "Liveness: the server answers",
       .permission = nullptr,
       .op = nullptr,
       .flags = OPK_ROUTE_ANONYMOUS},
      {.method = "GET",
       .path = "/readyz",
       .summary = "Readiness: the job engine runs and the store takes writes",
       .permission = nullptr,
       .op = nullptr,
       .flags = OPK_ROUTE_ANONYMOUS},
      {"GET", "/metrics",
       "Prometheus metrics: runs, queues, dispatch lag, HTTP requests, and every plugin's own (opk.metrics/1)",
       "metrics.read", nullptr},
  };
  return routes;
}

// The OpenAPI document's components: the bearer scheme, the problem answers
// and the schemas of this API's bodies and answers.
const char* const kOpenApiComponents = R"json({
  "securitySchemes": {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API token (opk_...), made by the first start or by `opskernel users add` and `users token`"}
  },
  "responses": {
    "BadRequest": {"description": "The request is malformed: its target, body or query", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "Unauthorized": {"description": "No token, or one that is unknown, expired or revoked",
      "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
      "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "Forbidden": {"description": "The role lacks the route's permission", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "NotFound": {"description": "No such job, run, job type or alert, or one outside the caller's scope", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "Conflict": {"description": "The engine refuses in the current state", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "ContentTooLarge": {"description": "The body is larger than the server takes", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "UnsupportedMediaType": {"description": "The body is not sent as application/json", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "UnprocessableContent": {"description": "A value is wrong; the detail starts with the field", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "TooManyRequests": {"description": "The rate limit is reached",
      "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
        "RateLimit-Policy": {"description": "The limits that apply (IETF draft-ietf-httpapi-ratelimit-headers): \"address\";q=1200;w=60, \"user\";q=600;w=60", "schema": {"type": "string"}},
        "RateLimit": {"description": "Each limit's requests left and seconds until it is whole again: \"address\";r=0;t=3", "schema": {"type": "string"}}},
      "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "InternalServerError": {"description": "A failure inside the kernel or a handler; the kernel log has the cause", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
    "ServiceUnavailable": {"description": "The job engine or a kernel service is not running", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
  },
  "schemas": {
    "Problem": {"type": "object", "description": "An RFC 9457 problem", "required": ["type", "title", "status"],
      "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                     "detail": {"type": "string", "description": "What to fix"}}},
    "Job": {"type": "object", "description": "A scheduled job",
      "properties": {"id": {"type": "string"}, "job_type": {"type": "string"}, "description": {"type": "string"},
        "owner": {"type": "string"}, "planning": {"type": "string", "enum": ["automatic", "scheduled", "disabled"]},
        "cron": {"type": "string"}, "time_zone": {"type": "string"}, "jitter_minutes": {"type": "integer"},
        "params": {"description": "The job's run parameters"}, "enabled": {"type": "boolean"},
        "scope": {"type": "string"}, "region": {"type": "string"},
        "report_recipients": {"type": "array", "items": {"type": "string"}},
        "next_run_ms": {"type": "integer", "format": "int64"}, "created_ms": {"type": "integer", "format": "int64"},
        "updated_ms": {"type": "integer", "format": "int64"}}},
    "JobListItem": {"allOf": [{"$ref": "#/components/schemas/Job"}, {"type": "object", "properties": {
      "last_run": {"type": "object", "nullable": true, "description": "The job's last run; null if it never ran",
        "properties": {"id": {"type": "integer", "format": "int64"},
          "status": {"type": "string", "enum": ["pending", "running", "normal", "warning", "error", "cancelled",
                                                "timed_out", "stopped", "recovered", "skipped"]},
          "created_ms": {"type": "integer", "format": "int64"}, "started_ms": {"type": "integer", "format": "int64"},
          "finished_ms": {"type": "integer", "format": "int64"},
          "duration_ms": {"type": "integer", "format": "int64", "description": "How long it ran, once finished; else 0"}}},
      "state": {"type": "string", "enum": ["disabled", "running", "queued", "manual", "idle"],
        "description": "What the job does now: not enabled, its last run running or queued, runs only by hand (planning disabled), or waiting for its next slot"}}}]},
    "JobPage": {"type": "object", "description": "A page of scheduled jobs, with the regions and scopes of every job the caller may see",
      "properties": {"total": {"type": "integer"}, "offset": {"type": "integer"}, "limit": {"type": "integer"},
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/JobListItem"}},
        "regions": {"type": "array", "items": {"type": "string"}}, "scopes": {"type": "array", "items": {"type": "string"}}}},
    "JobAnswer": {"type": "object", "properties": {"job": {"$ref": "#/components/schemas/Job"}}},
    "JobDeleted": {"type": "object", "description": "The scheduled job deleted; its runs stay, with its id as scheduled_job_id",
      "properties": {"id": {"type": "string"}}},
    "JobDetail": {"type": "object",
      "properties": {"job": {"$ref": "#/components/schemas/Job"},
        "runs": {"type": "array", "description": "The last runs, newest first, each with its last log lines",
          "items": {"allOf": [{"$ref": "#/components/schemas/Run"}, {"type": "object", "properties": {
            "log_tail": {"type": "array", "items": {"$ref": "#/components/schemas/LogLine"}}}}]}},
        "failures_30d": {"type": "array", "description": "Real failures (status error) per UTC day, oldest first",
          "items": {"type": "object", "properties": {
          "day_ms": {"type": "integer", "format": "int64"}, "failures": {"type": "integer"}}}},
        "terminated_30d": {"type": "array", "description": "Runs cancelled, timed out, stopped or recovered per UTC day, the same days; not failures",
          "items": {"type": "object", "properties": {
          "day_ms": {"type": "integer", "format": "int64"}, "terminated": {"type": "integer"}}}},
        "next_fire_ms": {"type": "array", "items": {"type": "integer", "format": "int64"}}}},
    "JobCreate": {"type": "object", "required": ["id", "job_type"],
      "properties": {"id": {"type": "string"}, "job_type": {"type": "string"}, "description": {"type": "string"},
        "planning": {"type": "string", "enum": ["automatic", "scheduled", "disabled"]},
        "cron": {"type": "string"}, "time_zone": {"type": "string"},
        "jitter_minutes": {"type": "integer", "minimum": 0, "maximum": 59},
        "params": {"type": "object", "description": "Checked against the job type's params_schema"},
        "enabled": {"type": "boolean"}, "owner": {"type": "string"},
        "scope": {"type": "string", "description": "A node at or under the caller's; default: the caller's"},
        "region": {"type": "string"},
        "report_recipients": {"type": "array", "items": {"type": "string", "format": "email"}}}},
    "JobChange": {"type": "object", "description": "The fields to change; the others keep their values",
      "properties": {"planning": {"type": "string", "enum": ["automatic", "scheduled", "disabled"]},
        "cron": {"type": "string"}, "time_zone": {"type": "string"},
        "jitter_minutes": {"type": "integer", "minimum": 0, "maximum": 59},
        "params": {"type": "object", "description": "Checked against the job type's params_schema"},
        "enabled": {"type": "boolean"}, "owner": {"type": "string"}, "scope": {"type": "string"},
        "region": {"type": "string"},
        "report_recipients": {"type": "array", "items": {"type": "string", "format": "email"}}}},
    "RunNow": {"type": "object", "description": "Run a scheduled job now, with its stored parameters unless params is given",
      "required": ["reason"],
      "properties": {"reason": {"type": "string", "maxLength": 2000, "description": "At most 2,000 bytes of UTF-8 (fewer characters outside ASCII); longer is refused with 422"},
        "params": {"type": "object", "description": "Checked against the job type's params_schema"},
        "dry_run": {"type": "boolean"}, "tenant": {"type": "string", "description": "A tenant's name, without tenant:"},
        "range_start_ms": {"type": "integer", "format": "int64", "minimum": 0},
        "range_end_ms": {"type": "integer", "format": "int64", "minimum": 0},
        "start_at_ms": {"type": "integer", "format": "int64", "minimum": 0, "description": "A later start, at most a year ahead"}}},
    "StartRun": {"type": "object", "description": "An ad-hoc run of a job type, or a run of a scheduled job",
      "required": ["reason"],
      "properties": {"job_type": {"type": "string"}, "job_id": {"type": "string"}, "reason": {"type": "string", "maxLength": 2000, "description": "At most 2,000 bytes of UTF-8 (fewer characters outside ASCII); longer is refused with 422"},
        "params": {"type": "object", "description": "Checked against the job type's params_schema"},
        "dry_run": {"type": "boolean"}, "tenant": {"type": "string", "description": "A tenant's name, without tenant:"},
        "range_start_ms": {"type": "integer", "format": "int64", "minimum": 0},
        "range_end_ms": {"type": "integer", "format": "int64", "minimum": 0},
        "start_at_ms": {"type": "integer", "format": "int64", "minimum": 0, "description": "A later start, at most a year ahead"}}},
    "StartRuns": {"oneOf": [{"$ref": "#/components/schemas/StartRun"},
      {"type": "object", "description": "A batch, created all or none", "required": ["requests"],
       "properties": {"requests": {"type": "array", "minItems": 1, "maxItems": 1000,
                                   "items": {"$ref": "#/components/schemas/StartRun"}}}}]},
    "Action": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "maxLength": 2000, "description": "At most 2,000 bytes of UTF-8 (fewer characters outside ASCII); longer is refused with 422"}}},
    "Retry": {"type": "object", "required": ["reason"],
      "properties": {"reason": {"type": "string", "maxLength": 2000, "description": "At most 2,000 bytes of UTF-8 (fewer characters outside ASCII); longer is refused with 422"},
        "params": {"type": "object", "description": "Default: the failed run's parameters"}}},
    "RunIds": {"type": "object", "description": "The runs, stored and queued",
      "properties": {"run_ids": {"type": "array", "items": {"type": "integer", "format": "int64"}}}},
    "RunAction": {"type": "object",
      "properties": {"run_id": {"type": "integer", "format": "int64"},
        "new_run_id": {"type": "integer", "format": "int64", "description": "The new run of a retry"}}},
    "JobType": {"type": "object",
      "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
        "owner": {"type": "string"}, "plugin": {"type": "string"}, "manual_run": {"type": "boolean"},
        "cancel": {"type": "boolean"}, "dry_run": {"type": "boolean"}, "requeue": {"type": "boolean"},
        "params_schema": {"type": "object", "nullable": true, "description": "A JSON Schema; null if the type takes none"},
        "default_schedule": {"type": "string"}, "target_duration_ms": {"type": "integer", "format": "int64"},
        "timeout_ms": {"type": "integer", "format": "int64"}, "priority": {"type": "integer"}, "pool": {"type": "string"},
        "steps": {"type": "array", "items": {"type": "object", "properties": {
          "id": {"type": "string"}, "title": {"type": "string"}}}},
        "translations": {"type": "array", "description": "The manifest's title and description in other languages; title and description above are the fallback",
          "items": {"type": "object", "required": ["lang"], "properties": {"lang": {"type": "string", "description": "A language tag, such as sv"},
            "title": {"type": "string"}, "description": {"type": "string"}}}}}},
    "JobTypes": {"type": "object",
      "properties": {"types": {"type": "array", "items": {"$ref": "#/components/schemas/JobType"}}}},
    "Run": {"type": "object", "description": "A run of a job type",
      "properties": {"id": {"type": "integer", "format": "int64"}, "job_type": {"type": "string"},
        "scheduled_job_id": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "running", "normal", "warning", "error", "cancelled",
                                              "timed_out", "stopped", "recovered", "skipped"],
          "description": "Only error is a failure. cancelled: an operator cancelled it; timed_out: its job type's timeout stopped it; stopped: the kernel stopped it while shutting down; recovered: a kernel died with it in flight, or an operator recovered it after it was flagged stale (termination says which); skipped: a schedule slot a run gate skipped, never started (summary says why)"},
        "phase": {"type": "string"}, "outcome": {"type": "string"}, "trigger": {"type": "string"},
        "params": {"description": "The run's parameters"}, "target_tenant": {"type": "string"},
        "dry_run": {"type": "boolean"}, "triggered_by": {"type": "string"}, "role": {"type": "string"},
        "reason": {"type": "string"}, "parent_run_id": {"type": "integer", "format": "int64"},
        "hold": {"type": "boolean"}, "terminated": {"type": "boolean"},
        "cancelled_by": {"type": "string", "description": "Who cancelled it: a user id, or kernel when the kernel stopped it; empty if nobody did"},
        "termination": {"type": "object", "nullable": true,
          "description": "Why it was terminated rather than finished; null if it was not",
          "properties": {"cause": {"type": "string", "enum": ["operator", "timeout", "shutdown", "crash", "stale"]},
            "by": {"type": "string", "description": "Who: the operator's user id, kernel at a shutdown; empty for a timeout or a crash"},
            "reason": {"type": "string", "description": "The operator's reason (operator, stale)"},
            "limit_ms": {"type": "integer", "format": "int64", "description": "The timeout that stopped it (timeout); else 0"}}},
        "stale": {"type": "boolean"},
        "priority": {"type": "integer"}, "pool": {"type": "string"},
        "scheduled_ms": {"type": "integer", "format": "int64"}, "created_ms": {"type": "integer", "format": "int64"},
        "started_ms": {"type": "integer", "format": "int64"}, "finished_ms": {"type": "integer", "format": "int64"},
        "duration_ms": {"type": "integer", "format": "int64"},
        "target_duration_ms": {"type": "integer", "format": "int64"}, "over_target": {"type": "boolean"},
        "exit_code": {"type": "integer"}, "summary": {"type": "string"}, "progress": {"type": "number"},
        "progress_message": {"type": "string"}, "output": {"description": "What the run wrote as its output"},
        "node": {"type": "string"}}},
    "Overview": {"type": "object", "description": "Counted by the store over every run the caller may see",
      "properties": {"now_ms": {"type": "integer", "format": "int64"},
        "now": {"type": "object", "properties": {"running": {"type": "integer"}, "pending": {"type": "integer"}}},
        "day": {"type": "object", "description": "Runs completed in the last 24 hours (the current hour and the 23 before it) by status",
          "additionalProperties": {"type": "integer"}},
        "per_hour": {"type": "array", "description": "Runs completed per hour, oldest first, 24 hours",
          "items": {"type": "object", "properties": {"hour_ms": {"type": "integer", "format": "int64"}, "completed": {"type": "integer"}}}},
        "pools": {"type": "array", "items": {"type": "object", "properties": {"pool": {"type": "string"},
          "queued": {"type": "integer", "description": "Pending, due and not held"}, "delayed": {"type": "integer", "description": "Pending, to start later"},
          "held": {"type": "integer"}, "running": {"type": "integer"},
          "oldest_waiting_ms": {"type": "integer", "format": "int64", "description": "When the oldest queued run was due; 0: none"}}}},
        "failures": {"type": "array", "description": "The last 24 hours' failures by job (an ad-hoc run by its type), most first, at most 50",
          "items": {"type": "object", "properties": {"job_id": {"type": "string", "description": "Empty for ad-hoc runs"},
            "job_type": {"type": "string"}, "count": {"type": "integer"},
            "last": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"},
              "finished_ms": {"type": "integer", "format": "int64"}, "summary": {"type": "string", "description": "Its error"}}}}}}}},
    "FailureQuery": {"type": "object", "required": ["since_ms"],
      "properties": {"since_ms": {"type": "integer", "format": "int64", "description": "Runs created at or after"},
        "stopped": {"type": "boolean", "description": "Also runs cancelled, timed out, stopped or recovered"},
        "after": {"type": "object", "description": "Per job key (the job's id, else type:<job type>): count only runs newer than this run id",
          "additionalProperties": {"type": "integer", "format": "int64"}},
        "seen_runs": {"type": "array", "description": "Runs left out, seen one by one", "items": {"type": "integer", "format": "int64"}}}},
    "FailureGroups": {"type": "object", "description": "Counted by the store over every run the caller may see",
      "properties": {"total": {"type": "integer", "format": "int64"},
        "groups": {"type": "array", "description": "Newest last failure first",
          "items": {"type": "object", "properties": {"key": {"type": "string"},
            "job_id": {"type": "string", "description": "Empty for ad-hoc runs"}, "job_type": {"type": "string"},
            "count": {"type": "integer", "format": "int64"}, "last": {"$ref": "#/components/schemas/Run"}}}}}},
    "RunList": {"type": "object",
      "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}},
        "next_cursor": {"type": "string", "description": "Opaque; passed as cursor, the next page (older runs). Absent when no older run matches; with over_target or stale, present whenever the runs looked at did not reach the oldest, so that page may be empty (with a next_cursor further back)"},
        "prev_cursor": {"type": "string", "description": "Opaque; passed as cursor, the page before (newer runs). Absent on the first page"}}},
    "Step": {"type": "object",
      "properties": {"id": {"type": "string"}, "outcome": {"type": "string"},
        "start_ms": {"type": "integer", "format": "int64"}, "end_ms": {"type": "integer", "format": "int64"},
        "summary": {"type": "string"}}},
    "RunDetail": {"type": "object",
      "properties": {"run": {"allOf": [{"$ref": "#/components/schemas/Run"}, {"type": "object", "properties": {
          "cancellable": {"type": "boolean"}, "retryable": {"type": "boolean"}}}]},
        "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}}}},
    "LogLine": {"type": "object",
      "properties": {"seq": {"type": "integer", "format": "int64"}, "time_ms": {"type": "integer", "format": "int64"},
        "level": {"type": "string", "enum": ["trace", "debug", "info", "warn", "error", "critical"]},
        "step": {"type": "string"}, "message": {"type": "string"}}},
    "LogPage": {"type": "object",
      "properties": {"lines": {"type": "array", "items": {"$ref": "#/components/schemas/LogLine"}},
        "next_seq": {"type": "integer", "format": "int64", "description": "The since of the next request"},
        "finished": {"type": "boolean", "description": "The run has completed and every line was sent"}}},
    "EventStream": {"type": "string",
      "description": "Server-Sent Events: first 'retry: 2000'; then one 'log' event per log line, its id the line's seq and its data the line (LogLine) as JSON; a ': waiting' comment whenever a wait for new lines ends without one; once the run has completed, an 'end' event whose data is the run with its steps (RunDetail), and the stream closes",
      "example": "retry: 2000\n\nid: 1\nevent: log\ndata: {\"seq\":1,\"time_ms\":1795000000123,\"level\":\"info\",\"step\":\"greet\",\"message\":\"hello, world!\"}\n\nevent: end\ndata: {\"run\":{\"id\":42,\"status\":\"normal\"},\"steps\":[]}\n\n"},
    "Queues": {"type": "object",
      "properties": {"pools": {"type": "object", "description": "Queued runs per worker pool",
          "additionalProperties": {"type": "integer", "format": "int64"}},
        "store": {"type": "object", "description": "Whether the store takes writes",
          "properties": {"writable": {"type": "boolean"}, "error": {"type": "string"}}}}},
    "Workers": {"type": "object",
      "properties": {"workers": {"type": "array", "description": "The kernels sharing the store",
        "items": {"type": "object", "properties": {"node": {"type": "string"}, "version": {"type": "string"},
          "status": {"type": "string", "enum": ["idle", "busy", "draining", "drained", "dead"]},
          "pools": {"type": "string"}, "plugins": {"type": "string"}, "job_types": {"type": "string"},
          "started_ms": {"type": "integer", "format": "int64"}, "heartbeat_ms": {"type": "integer", "format": "int64"},
          "lease_until_ms": {"type": "integer", "format": "int64"}, "epoch": {"type": "integer", "format": "int64"},
          "drain_reason": {"type": "string"}, "self": {"type": "boolean"},
          "in_flight": {"type": "integer", "format": "int64"}}}}}},
    "Drain": {"type": "object", "properties": {"node": {"type": "string", "description": "The kernel asked to drain"}}},
    "FireTimes": {"type": "object",
      "properties": {"fire_ms": {"type": "array", "items": {"type": "integer", "format": "int64"}}}},
    "AuditRow": {"type": "object",
      "properties": {"id": {"type": "integer", "format": "int64"}, "time_ms": {"type": "integer", "format": "int64"},
        "actor": {"type": "string"}, "role": {"type": "string"}, "action": {"type": "string"},
        "target": {"type": "string"}, "reason": {"type": "string"}, "params": {"description": "The request"},
        "outcome": {"type": "string"}, "source": {"type": "string"}}},
    "AuditPage": {"type": "object",
      "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditRow"}}}},
    "Plugin": {"type": "object",
      "properties": {"id": {"type": "string"}, "state": {"type": "string"}, "version": {"type": "string"},
        "file": {"type": "string"}, "reason": {"type": "string", "description": "Why it was refused"},
        "manifest": {"type": "object", "nullable": true}}},
    "Plugins": {"type": "object",
      "properties": {"plugins": {"type": "array", "items": {"$ref": "#/components/schemas/Plugin"}}}},
    "Caller": {"type": "object",
      "properties": {"user_id": {"type": "string"}, "role": {"type": "string"}, "scope": {"type": "string"},
        "permissions": {"type": "array", "description": "The kernel's permissions the role holds",
          "items": {"type": "string"}}}},
    "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
    "OpenApiDocument": {"type": "object", "description": "An OpenAPI 3.0 document",
      "required": ["openapi", "info", "paths"],
      "properties": {"openapi": {"type": "string"}, "info": {"type": "object"}, "paths": {"type": "object"}}},
    "Metrics": {"type": "string", "description": "The Prometheus text format, version 0.0.4"}
  }
})json";

// The name in components/responses of the problem answered with `status`.
const char* problem_response(int status) {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 409:
      return "Conflict";
    case 413:
      return "ContentTooLarge";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "UnprocessableContent";
    case 429:
      return "TooManyRequests";
    case 503:
      return "ServiceUnavailable";
    default:
      return "InternalServerError";
  }
}

// A route's operationId: the method in lower case, then the path's words in
// camel case, a parameter as "By" and its name (GET /api/v1/runs/{id}/log is
// getApiV1RunsByIdLog). Only letters and digits.
std::string operation_id(const std::string& method, const std::string& path) {
  std::string id;
  for (unsigned char c : method)
    if (std::isalnum(c)) id += static_cast<char>(std::tolower(c));
  bool word = true;
  for (unsigned char c : path) {
    if (c == '{') id += "By";
    if (!std::isalnum(c)) {
      word = true;
      continue;
    }
    id += static_cast<char>(word ? std::toupper(c) : c);
    word = false;
  }
  return id;
}

// The success answer of one of this API's routes: its media type and the
// name of its schema in components/schemas.
struct Answer {
  const char* media;
  const char* schema;
};

Answer answer_of(const ApiRoute& r) {
  static const std::map<std::string, const char*> by_op = {
      {"inventory", "JobPage"},   {"define", "JobAnswer"},  {"job", "JobDetail"},   {"update", "JobAnswer"},
      {"run_now", "RunIds"},      {"types", "JobTypes"},    {"runs", "RunList"},    {"run", "RunDetail"},
      {"log", "LogPage"},         {"cancel", "RunAction"},  {"retry", "RunAction"}, {"hold", "RunAction"},
      {"release", "RunAction"},   {"recover", "RunAction"}, {"queues", "Queues"},   {"overview", "Overview"},
      {"cron_next", "FireTimes"}, {"audit", "AuditPage"},   {"plugins", "Plugins"}, {"workers", "Workers"},
      {"drain", "Drain"},         {"delete", "JobDeleted"}};
  if (r.op && std::string(r.op) == "failure_groups") return {"application/json", "FailureGroups"};
  static const std::map<std::string, Answer> by_path = {
      {"/api/v1/runs/{id}/events", {"text/event-stream", "EventStream"}},
      {"/api/v1/me", {"application/json", "Caller"}},
      {"/api/v1/openapi.json", {"application/json", "OpenApiDocument"}},
      {"/healthz", {"application/json", "Health"}},
      {"/readyz", {"application/json", "Health"}},
      {"/metrics", {"text/plain", "Metrics"}}};
  if (r.op && by_op.count(r.op)) return {"application/json", by_op.at(r.op)};
  auto it = by_path.find(r.path);
  return it != by_path.end() ? it->second : Answer{nullptr, nullptr};
}

// The name in components/schemas of the body one of this API's routes takes.
const char* body_of(const ApiRoute& r) {
  const std::string op = r.op ? r.op : "";
  if (op == "define") return "JobCreate";
  if (op == "update") return "JobChange";
  if (op == "run_now") return r.path_key ? "RunNow" : "StartRuns";
  if (op == "retry") return "Retry";
  if (op == "failure_groups") return "FailureQuery";
  return "Action";
}

class AdminHttp : public Plugin {
 public:
  explicit AdminHttp(Host host) : Plugin(host) {}

  Status start() override {
    jobs_ = host().extension<opk_jobs_v1>(OPK_EXT_JOBS);
    if (!jobs_) return {OPK_ERR_UNAVAILABLE, "the kernel offers no job service (opk.jobs/1): it runs without a store"};
    ServerSettings settings;
    if (Status s = read_settings(host(), &settings); !s) return s;
    for (const auto& r : api_routes()) {
      Status s = add_route(
          "admin-api", r.method, r.path, r.summary,
          [this, &r](const Request& rq, Response& rs) { return handle(r, rq, rs); }, r.flags,
          r.permission ? r.permission : "");
      if (!s) return s;
    }
    // A kernel without the alert service (before ABI 1.3) serves the rest.
    const auto* alerts = host().extension<opk_alerts_v1>(OPK_EXT_ALERTS);
    if (alerts && OPK_HAS_MEMBER(opk_alerts_v1, alerts->struct_size, call) && alerts->call) {
      alert_routes_ = std::make_unique<AlertRoutes>(host(), alerts);
      if (Status s = alert_routes_->add_to(*this, "admin-api"); !s) return s;
    }
    server_ = std::make_unique<Server>(host(), settings);
    return server_->start();
  }

  void stop() override { server_.reset(); }

 private:
  // Calls an opk.jobs/1 operation for the request's caller.
  opk_status call(const Request& rq, const std::string& op, const std::string& request, std::string* answer) const {
    const std::string source(rq.remote_addr());
    char* out = nullptr;
    const opk_status st = jobs_->call(host().raw(), rq.principal(), op.c_str(), request.c_str(), source.c_str(), &out);
    *answer = out ? out : "{}";
    host().free(out);
    return st;
  }

  // The operation's request: the body object, the path's id and the query.
  static Status build_request(const ApiRoute& r, const Request& rq, Object::Ptr* out, int* http) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    *http = 400;
    if (r.path_key && std::string(r.path_key) == "job_id" && rq.body().find("\"requests\"") != std::string_view::npos) {
      *http = 422;
      return Status::invalid("requests: a batch goes to POST /api/v1/runs, not to one job's run");
    }
    if (r.body && !rq.body().empty()) {
      const auto type = rq.header("content-type").value_or("");
      if (Poco::icompare(std::string(type.substr(0, 16)), std::string("application/json")) != 0) {
        *http = 415;
        return Status::invalid("send the body as application/json");
      }
      try {
        Poco::JSON::Parser parser;
        auto v = parser.parse(std::string(rq.body()));
        if (v.type() != typeid(Object::Ptr)) return Status::invalid("the body must be a JSON object");
        o = v.extract<Object::Ptr>();
      } catch (const Poco::Exception& e) {
        return Status::invalid("the body is not valid JSON: " + e.message());
      }
    }
    // Query parameters: known names only, so a typo is an error.
    for (uint32_t i = 0; i < rq.raw()->query_count; ++i) {
      const std::string k = rq.raw()->query[i].key, v = rq.raw()->query[i].value;
      auto is = [&](const std::vector<const char*>& names) {
        return std::any_of(names.begin(), names.end(), [&](const char* n) { return k == n; });
      };
      if (is(r.query_strings)) {
        o->set(k, v);
      } else if (is(r.query_bools)) {
        if (v != "true" && v != "false")
          return Status::invalid("query parameter " + k + ": '" + v + "' is not true or false");
        o->set(k, v == "true");
      } else if (is(r.query_ints)) {
        if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
          return Status::invalid("query parameter " + k + ": '" + v + "' is not a whole number");
        o->set(k == "since" ? "after_seq" : k, static_cast<Poco::Int64>(std::stoll(v)));
      } else {
        return Status::invalid("unknown query parameter '" + k + "'");
      }
    }
    if (r.path_key) {
      const std::string id(rq.path_param("id").value_or(""));
      if (r.path_is_int) {
        if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
          *http = 404;
          return Status::not_found("no run '" + id + "'");
        }
        o->set(r.path_key, static_cast<Poco::Int64>(std::stoll(id)));
      } else {
        o->set(r.path_key, id);
      }
    }
    *out = o;
    return Status::ok();
  }

  Status handle(const ApiRoute& r, const Request& rq, Response& rs) {
    const std::string path = r.path;
    if (path == "/healthz") {
      rs.status(200).json("{\"status\":\"ok\"}");
      return Status::ok();
    }
    if (path == "/readyz") return readyz(rs);
    if (path == "/api/v1/openapi.json") return openapi(rs);
    if (path == "/api/v1/me") return me(rq, rs);
    Object::Ptr request;
    int http = 400;
    if (Status s = build_request(r, rq, &request, &http); !s) {
      problem(rs, http,
              http == 415   ? "Unsupported Media Type"
              : http == 404 ? "Not Found"
                            : "Bad Request",
              s.message());
      return Status::ok();
    }
    std::ostringstream os;
    request->stringify(os);
    if (path == "/metrics") return metrics(rq, rs);
    if (path == "/api/v1/runs/{id}/events") return events(rq, rs, request);
    std::string answer;
    const opk_status st = call(rq, r.op, os.str(), &answer);
    if (st != OPK_OK) {
      const std::string msg = error_of(answer);
      const int code = http_status(st, msg);
      problem(rs, code, title_of(code), code == 500 ? "the request could not be completed" : msg);
      if (code == 500) host().error("opk.jobs/1 " + std::string(r.op) + " failed: " + msg);
      return Status::ok();
    }
    rs.status(r.success).json(answer);
    return Status::ok();
  }

  // The caller, with the kernel's permissions its role holds, so a client
  // (the console) can offer only what the caller may do.
  Status me(const Request& rq, Response& rs) {
    // Every permission the kernel knows (its own and those admin features
    // declare), with the roles granted each: this plugin keeps no copy.
    const std::string role(rq.role());
    const auto* identity = host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    Json permissions = Json::array();
    if (identity && OPK_HAS_MEMBER(opk_identity_v1, identity->struct_size, permissions) && identity->permissions) {
      char* out = nullptr;
      if (identity->permissions(host().raw(), &out) == OPK_OK && out) {
        const Json all = Json::parse(out, nullptr, false);
        if (all.is_array())
          for (const auto& p : all)
            if (p.contains("name") && p["name"].is_string() &&
                identity->allowed(host().raw(), role.c_str(), p["name"].get<std::string>().c_str()))
              permissions.push_back(p["name"]);
      }
      host().free(out);
    }
    rs.status(200).json(Json{{"user_id", std::string(rq.user_id())},
                             {"role", role},
                             {"scope", std::string(rq.scope())},
                             {"permissions", permissions}});
    return Status::ok();
  }

  Status readyz(Response& rs) {
    // The engine answers a trivial operation once it runs, with whether the
    // store takes writes.
    // Nobody asked for this: the plugin's own system identity.
    char* out = nullptr;
    const opk_status st = jobs_->call(host().raw(), host().system_principal(), "queues", "{}", "readyz", &out);
    const std::string answer = out ? out : "";
    host().free(out);
    // Only UNAVAILABLE means the engine is not there; a permission refusal
    // (a narrowed matrix) still proves it answers.
    if (st == OPK_ERR_UNAVAILABLE) {
      problem(rs, 503, "Service Unavailable", "the job engine is not running yet");
      return Status::ok();
    }
    if (st == OPK_OK) {
      std::string store_error;
      try {
        Poco::JSON::Parser parser;
        auto store = parser.parse(answer).extract<Object::Ptr>()->getObject("store");
        if (store && !store->optValue<bool>("writable", true))
          store_error = store->optValue<std::string>("error", "unknown cause");
      } catch (const Poco::Exception&) {
        // An answer without the store's state: the engine answers, so ready.
      }
      if (!store_error.empty()) {
        problem(rs, 503, "Service Unavailable", "the store cannot take writes: " + store_error);
        return Status::ok();
      }
    }
    rs.status(200).json("{\"status\":\"ready\"}");
    return Status::ok();
  }

  // Server-Sent Events: one "log" event per line (id = its seq, so a
  // reconnecting client resumes with Last-Event-ID), then "end" with the run.
  Status events(const Request& rq, Response& rs, Object::Ptr request) {
    int64_t after = request->optValue<Poco::Int64>("after_seq", 0);
    if (auto last = rq.header("last-event-id");
        last && !last->empty() && last->find_first_not_of("0123456789") == std::string::npos && last->size() < 18)
      after = std::stoll(std::string(*last));
    const int64_t run_id = request->getValue<Poco::Int64>("run_id");
    bool started = false;
    while (true) {
      const std::string req = "{\"run_id\":" + std::to_string(run_id) + ",\"after_seq\":" + std::to_string(after) +
                              ",\"limit\":500,\"wait_ms\":" + (started ? "5000" : "0") + "}";
      std::string answer;
      const opk_status st = call(rq, "log", req, &answer);
      if (st != OPK_OK) {
        if (!started) {
          const std::string msg = error_of(answer);
          const int code = http_status(st, msg);
          problem(rs, code, title_of(code), msg);
        }
        return Status::ok();
      }
      Poco::JSON::Parser parser;
      auto o = parser.parse(answer).extract<Object::Ptr>();
      auto lines = o->getArray("lines");
      std::string chunk;
      if (!started) {
        rs.status(200)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-store")
            .header("x-accel-buffering", "no");
        chunk = "retry: 2000\n\n";
        started = true;
      }
      for (size_t i = 0; i < lines->size(); ++i) {
        auto line = lines->getObject(static_cast<unsigned>(i));
        std::ostringstream data;
        line->stringify(data);
        after = line->getValue<Poco::Int64>("seq");
        chunk += "id: " + std::to_string(after) + "\nevent: log\ndata: " + data.str() + "\n\n";
      }
      const bool finished = o->getValue<bool>("finished");
      if (finished) {
        std::string run;
        call(rq, "run", "{\"run_id\":" + std::to_string(run_id) + "}", &run);
        chunk += "event: end\ndata: " + run + "\n\n";
      } else if (lines->size() == 0) {
        chunk += ": waiting\n\n";  // keeps proxies and clients from timing out
      }
      rs.body(chunk);
      if (finished) return Status::ok();     // the rest is sent when the handler returns
      if (!rs.flush()) return Status::ok();  // the client has gone
    }
  }

  Status metrics(const Request& rq, Response& rs) {
    std::string answer;
    const opk_status st = call(rq, "stats", "{}", &answer);
    if (st != OPK_OK) {
      const std::string msg = error_of(answer);
      problem(rs, http_status(st, msg), title_of(http_status(st, msg)), msg);
      return Status::ok();
    }
    Poco::JSON::Parser parser;
    auto o = parser.parse(answer).extract<Object::Ptr>();
    auto label = [](const std::string& v) {
      std::string out;
      for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
          out += "\\n";
          continue;
        }
        out += c;
      }
      return out;
    };
    std::string text =
        "# HELP opskernel_runs Runs in the store, by job type and status.\n# TYPE opskernel_runs gauge\n";
    auto runs = o->getArray("runs");
    for (size_t i = 0; i < runs->size(); ++i) {
      auto r = runs->getObject(static_cast<unsigned>(i));
      text += "opskernel_runs{job_type=\"" + label(r->getValue<std::string>("job_type")) + "\",status=\"" +
              label(r->getValue<std::string>("status")) + "\"} " + std::to_string(r->getValue<Poco::Int64>("count")) +
              "\n";
    }
    text += "# HELP opskernel_queue_depth Runs queued per worker pool.\n# TYPE opskernel_queue_depth gauge\n";
    auto queues = o->getObject("queues");
    for (const auto& [name, v] : *queues)
      text += "opskernel_queue_depth{pool=\"" + label(name) + "\"} " + v.toString() + "\n";
    auto lag = o->getObject("dispatch_lag");
    auto bounds = lag->getArray("bounds_ms");
    auto counts = lag->getArray("counts");
    text +=
        "# HELP opskernel_dispatch_lag_seconds Scheduled start to plugin entry.\n"
        "# TYPE opskernel_dispatch_lag_seconds histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < counts->size(); ++i) {
      cumulative += counts->getElement<Poco::Int64>(static_cast<unsigned>(i));
      const std::string le = i < bounds->size()
                                 ? std::to_string(bounds->getElement<Poco::Int64>(static_cast<unsigned>(i)) / 1000.0)
                                 : "+Inf";
      text += "opskernel_dispatch_lag_seconds_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    text += "opskernel_dispatch_lag_seconds_sum " + std::to_string(lag->getValue<Poco::Int64>("sum_ms") / 1000.0) +
            "\nopskernel_dispatch_lag_seconds_count " + std::to_string(lag->getValue<Poco::Int64>("count")) + "\n";
    if (alert_routes_) text += alert_routes_->prometheus();
    if (server_) text += server_->metrics().prometheus();
    // Every plugin's own metrics (opk.metrics/1, ABI 1.5); the kernel
    // leaves out a collector that fails or writes something else.
    if (const Metrics plugins(host()); plugins.available()) {
      std::string more;
      if (Status s = plugins.collect(&more); s)
        text += more;
      else
        host().warn("/metrics: the plugins' metrics were not collected: " + s.message());
    }
    rs.status(200).header("content-type", "text/plain; version=0.0.4").body(text);
    return Status::ok();
  }

  // The OpenAPI 3 document: every route the kernel serves, this API's with
  // their parameters, bodies and answers, other features' with their
  // summary, permission and path parameters.
  Status openapi(Response& rs) {
    const auto* routes = host().extension<opk_http_routes_v1>(OPK_EXT_HTTP_ROUTES);
    char* json = nullptr;
    if (!routes || !routes->list || routes->list(host().raw(), &json) != OPK_OK) {
      problem(rs, 503, "Service Unavailable", "the route table cannot be listed");
      return Status::ok();
    }
    Poco::JSON::Parser parser;
    auto list = parser.parse(json).extract<Array::Ptr>();
    host().free(json);
    std::map<std::string, const ApiRoute*> own;
    for (const auto& r : api_routes()) own[std::string(r.method) + " " + r.path] = &r;

    Object::Ptr doc = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    doc->set("openapi", "3.0.3");
    Object::Ptr info = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    info->set("title", "Opskernel admin API");
    info->set("version", "1");
    info->set("description",
              "Errors are RFC 9457 problem+json. Authenticate with 'Authorization: Bearer <token>'. Every list is "
              "filtered to the caller's scope; x-permission names what the caller's role needs.");
    Object::Ptr license = new Object;
    license->set("name", "Proprietary");
    info->set("license", license);
    doc->set("info", info);
    Object::Ptr server = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    server->set("url", "/");
    server->set("description", "The server that serves this document");
    Array::Ptr servers = new Array;
    servers->add(server);
    doc->set("servers", servers);
    Array::Ptr tags = new Array;
    std::set<std::string> tag_names, ids;
    Object::Ptr paths = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (size_t i = 0; i < list->size(); ++i) {
      auto r = list->getObject(static_cast<unsigned>(i));
      const std::string method = r->getValue<std::string>("method"), path = r->getValue<std::string>("path");
      std::string lower = method;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      const ApiRoute* mine = own.count(method + " " + path) ? own[method + " " + path] : nullptr;
      Object::Ptr item =
          paths->has(path) ? paths->getObject(path) : Object::Ptr(new Object(Poco::JSON_PRESERVE_KEY_ORDER));
      Object::Ptr op = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      op->set("summary", r->getValue<std::string>("summary"));
      std::string id = operation_id(method, path);
      for (int n = 2; ids.count(id); ++n) id = operation_id(method, path) + "_" + std::to_string(n);
      ids.insert(id);
      op->set("operationId", id);
      const std::string plugin = r->getValue<std::string>("plugin"), feature = r->getValue<std::string>("feature");
      const std::string tag = plugin + "/" + feature;
      if (tag_names.insert(tag).second) {
        Object::Ptr t = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
        t->set("name", tag);
        t->set("description", "The admin feature '" + feature + "' of the plugin '" + plugin + "'");
        tags->add(t);
      }
      Array::Ptr op_tags = new Array;
      op_tags->add(tag);
      op->set("tags", op_tags);
      const bool anonymous = r->getValue<bool>("anonymous");
      if (anonymous) op->set("security", Array::Ptr(new Array));
      if (!r->isNull("permission")) op->set("x-permission", r->getValue<std::string>("permission"));
      if (const Json alert = alert_openapi_operation(method, path); !alert.is_null()) {
        auto described = parser.parse(alert.dump()).extract<Object::Ptr>();
        for (const char* key : {"parameters", "requestBody", "responses"})
          if (described->has(key)) op->set(key, described->get(key));
        item->set(lower, op);
        paths->set(path, item);
        continue;
      }

      Array::Ptr params = new Array;
      std::stringstream ss(path);
      std::string seg;
      while (std::getline(ss, seg, '/')) {
        if (seg.size() <= 2 || seg.front() != '{') continue;
        Object::Ptr p = param(seg.substr(1, seg.size() - 2), "path", "string", true);
        if (mine && mine->path_key) {
          const bool run = mine->path_is_int;
          p->set("description", run ? "The run's id" : "The scheduled job's id");
          if (run) p->set("schema", int_schema(1));
        }
        params->add(p);
      }
      const bool has_body = mine ? mine->body : method == "POST" || method == "PUT" || method == "PATCH";
      const Answer answer = mine ? answer_of(*mine) : Answer{nullptr, nullptr};
      if (mine) {
        for (auto q : mine->query_strings)
          params->add(param(q, "query", "string",
                            std::any_of(mine->required_query.begin(), mine->required_query.end(),
                                        [&](const char* n) { return std::string(n) == q; })));
        for (auto q : mine->query_ints) {
          Object::Ptr p = param(q, "query", "integer", false);
          p->set("schema", int_schema(0));
          params->add(p);
        }
        for (auto q : mine->query_bools) params->add(param(q, "query", "boolean", false));
        if (answer.media && std::string(answer.media) == "text/event-stream") {
          Object::Ptr p = param("Last-Event-ID", "header", "integer", false);
          p->set("description", "The last seq seen, on a reconnect; wins over since");
          p->set("schema", int_schema(0));
          params->add(p);
        }
        if (mine->body) {
          Object::Ptr body = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
          body->set("required", !mine->body_optional);
          body->set("content", content("application/json", schema_ref(body_of(*mine))));
          op->set("requestBody", body);
        }
      }
      if (params->size() > 0) op->set("parameters", params);

      Object::Ptr responses = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      Object::Ptr ok = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      ok->set("description", answer.schema ? "Success" : "Success; the answer is the feature's own");
      if (answer.schema) ok->set("content", content(answer.media, schema_ref(answer.schema)));
      responses->set(std::to_string(mine ? mine->success : 200), ok);
      // The server may answer any route with these; the others follow from
      // what the route does.
      std::set<int> problems = {400, 429, 500, 503};
      if (!anonymous) problems.insert({401, 403});
      if (has_body) problems.insert(413);
      const std::string op_name = mine && mine->op ? mine->op : "";
      if (path.find('{') != std::string::npos || op_name == "run_now") problems.insert(404);
      if (mine && mine->body) problems.insert(415);
      if (!op_name.empty()) problems.insert(422);
      static const std::set<std::string> refused_in_state = {"define", "run_now", "cancel",  "retry",
                                                             "hold",   "release", "recover", "delete"};
      if (refused_in_state.count(op_name)) problems.insert(409);
      for (int code : problems) {
        Object::Ptr ref = new Object;
        ref->set("$ref", std::string("#/components/responses/") + problem_response(code));
        responses->set(std::to_string(code), ref);
      }
      op->set("responses", responses);
      item->set(lower, op);
      paths->set(path, item);
    }
    doc->set("tags", tags);
    doc->set("paths", paths);
    auto components = parser.parse(kOpenApiComponents).extract<Object::Ptr>();
    auto schemas = components->getObject("schemas");
    for (const auto& [name, schema] : *parser.parse(alert_openapi_schemas().dump()).extract<Object::Ptr>())
      schemas->set(name, schema);
    doc->set("components", components);
    Array::Ptr security = new Array;
    Object::Ptr bearer = new Object;
    bearer->set("bearer", Array::Ptr(new Array));
    security->add(bearer);
    doc->set("security", security);
    std::ostringstream os;
    doc->stringify(os);
    rs.status(200).json(os.str());
    return Status::ok();
  }

  static Object::Ptr param(const std::string& name, const char* in, const char* type, bool required) {
    Object::Ptr p = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    p->set("name", name);
    p->set("in", in);
    p->set("required", required);
    Object::Ptr schema = new Object;
    schema->set("type", type);
    p->set("schema", schema);
    return p;
  }

  // A 64-bit whole number of at least `minimum`.
  static Object::Ptr int_schema(int minimum) {
    Object::Ptr schema = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    schema->set("type", "integer");
    schema->set("format", "int64");
    schema->set("minimum", minimum);
    return schema;
  }

  static Object::Ptr schema_ref(const char* name) {
    Object::Ptr ref = new Object;
    ref->set("$ref", std::string("#/components/schemas/") + name);
    return ref;
  }

  // {"<media>": {"schema": schema}}
  static Object::Ptr content(const char* media, Object::Ptr schema) {
    Object::Ptr c = new Object, m = new Object;
    m->set("schema", schema);
    c->set(media, m);
    return c;
  }

  const opk_jobs_v1* jobs_ = nullptr;
  std::unique_ptr<AlertRoutes> alert_routes_;  // null without opk.alerts/1
  std::unique_ptr<Server> server_;
};

Manifest describe() {
  Manifest m("admin-http", "Admin HTTP API", "1.0.0", "Opskernel",
             "Serves the admin API and every admin feature's routes over HTTP");
  m.admin_feature({.id = "admin-api",
                   .title = "Admin API",
                   .description = "Jobs, runs, live logs, alerts, audit, plugins, health and metrics over HTTP.",
                   .translations = {}});
  // Overrides of the rate limits, when the rate-limit-overrides plugin runs.
  m.requires_extension(OPK_EXT_RATE_LIMITS, true);
  // Tenants' maintenance windows, when the maintenance-mode plugin runs.
  m.requires_extension(OPK_EXT_MAINTENANCE, true);
  return m;
}

}  // namespace
}  // namespace opk::admin

OPK_PLUGIN(opk::admin::AdminHttp, opk::admin::describe);
