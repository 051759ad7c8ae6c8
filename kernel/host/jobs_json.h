// jobs_json.h -- how scheduled jobs, runs and log lines read in the answers
// of "opk.jobs/1" (docs/abi.md, "A job" and "A run").
#ifndef OPSKERNEL_KERNEL_HOST_JOBS_JSON_H
#define OPSKERNEL_KERNEL_HOST_JOBS_JSON_H

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cstdint>
#include <string>
#include <vector>

#include "loader/manifest.h"
#include "store/store.h"

namespace opk::host {

// `v` as JSON text.
std::string stringify(const Poco::Dynamic::Var& v);
// Stored JSON text as a value: empty is null, text that does not parse is
// kept as a string.
Poco::Dynamic::Var parsed_or_text(const std::string& json);
// A run's status from its phase, outcome, who cancelled it and why it was
// terminated: "pending", "running", "cancelled", "timed_out", "stopped",
// "recovered", or the outcome in lower case (store::run_status).
std::string status_of(const std::string& phase, const std::string& outcome, const std::string& cancelled_by,
                      const std::string& end_cause = {});
// Why a run was terminated as an answer's object ({cause, by, reason,
// limit_ms}), or null for a run that was not.
Poco::Dynamic::Var termination_json(const store::RunRow& run);

// A scheduled job as an answer's object.
Poco::JSON::Object::Ptr job_json(const store::ScheduledJob& job);
// The same object as job_json, appended to *out as text. Parameters are
// stored as validated JSON and copied as they are.
void append_job_json(const store::ScheduledJob& job, std::string* out);

// How long the run ran, or has run so far; 0 before it started.
int64_t run_duration_ms(const store::RunRow& run);
// True when the run ran longer than its type's target duration. `type` may
// be null (a type no longer loaded): false.
bool run_over_target(const store::RunRow& run, const loader::JobType* type);
// A run as an answer's object; `type` (may be null) gives its target duration.
Poco::JSON::Object::Ptr run_json(const store::RunRow& run, const loader::JobType* type);

// Log lines as an answer's array, oldest first.
Poco::JSON::Array::Ptr log_json(const std::vector<store::LogRow>& lines);

}  // namespace opk::host

#endif
