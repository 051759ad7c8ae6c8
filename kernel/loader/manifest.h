// manifest.h -- the kernel's own copy of a plugin manifest, validated.
// Strings are copied; the C structs are kept (zero-extended to this kernel's
// size) only for calling the plugin's functions.
#ifndef OPSKERNEL_KERNEL_LOADER_MANIFEST_H
#define OPSKERNEL_KERNEL_LOADER_MANIFEST_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <string>
#include <vector>

namespace opk::loader {

// A translation of title/description.
struct Translation {
  std::string lang, title, description;
};

// A step of a job type.
struct Action {
  std::string id, title;
};

struct JobType {
  std::string id, title, description, owner;
  uint64_t capabilities = 0;
  std::string params_schema_json;  // empty: no parameters
  std::string default_schedule;    // empty: on demand
  uint64_t target_duration_ms = 0, timeout_ms = 0;
  int32_t priority = 0;
  std::string worker_pool = "default";
  std::vector<Action> actions;
  std::vector<Translation> translations;
  const opk_job_type* self = nullptr;  // the plugin's pointer, passed back on calls
  opk_job_type c{};                    // zero-extended copy: function pointers

  bool manual_run() const { return capabilities & OPK_JOB_CAP_MANUAL_RUN; }
  bool cancellable() const { return capabilities & OPK_JOB_CAP_CANCEL; }
  bool dry_run() const { return capabilities & OPK_JOB_CAP_DRY_RUN; }
};

struct AlertSource {
  std::string id, title, description, area, default_schedule;
  uint64_t flags = 0;
  // (ABI 1.3) Full sweeps without an alert before it clears (at least 1),
  // and the longest evaluation in ms (0: the engine's default).
  uint32_t clean_sweeps = 1;
  int64_t timeout_ms = 0;

  bool platform_only() const { return flags & OPK_ALERT_PLATFORM_ONLY; }
  bool full_sweep() const { return flags & OPK_ALERT_FULL_SWEEP; }
  std::vector<Translation> translations;
  const opk_alert_source* self = nullptr;
  opk_alert_source c{};
};

struct AdminFeature {
  std::string id, title, description;
  std::vector<Translation> translations;
  // Permissions it declares (ABI 1.2): name, description.
  std::vector<std::pair<std::string, std::string>> permissions;
};

struct Channel {
  std::string id, title, description;
  const opk_notification_channel* self = nullptr;
  opk_notification_channel c{};
};

struct Requirement {
  std::string extension_id;
  bool optional = false;
};

// Everything a plugin declared.
struct Manifest {
  std::string id, name, version, vendor, description;
  uint32_t abi_major = 0, abi_minor = 0;
  std::vector<JobType> job_types;
  std::vector<AlertSource> alert_sources;
  std::vector<AdminFeature> admin_features;
  std::vector<Channel> channels;
  std::vector<std::string> provides;
  std::vector<Requirement> requirements;
};

// Validates a plugin's manifest as a whole and copies it. Returns
// INVALID_ARGUMENT naming the first offending item ("job type 'x':
// declares cancel capability but has no cancel hook").
Status read_manifest(const opk_manifest* m, bool has_get_extension, Manifest* out);

// True for "name/REV" extension ids: [a-z0-9][a-z0-9._-]* '/' digits.
bool valid_extension_id(const std::string& id);

// True for a light syntactic check of a schedule: a macro or five fields.
// (Full cron parsing belongs to the scheduler.)
bool plausible_schedule(const std::string& s);

}  // namespace opk::loader

#endif
