// documents.h -- the event log's documents: which events a run's end, a
// stale run or an alert's change make, and the JSON document of each
// (docs/events.md describes every kind and field). Built from what the
// caller holds already: nothing is read from the store, so a run's events
// cost no read on the job engine's hot path. Thread-safe (const).
#ifndef OPSKERNEL_KERNEL_EVENTS_DOCUMENTS_H
#define OPSKERNEL_KERNEL_EVENTS_DOCUMENTS_H

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/store.h"

namespace opk::events {

// The kinds the kernel writes; plugins' events are "plugin.<plugin id>.<name>".
inline constexpr const char* kRunCompleted = "run.completed";     // outcome NORMAL
inline constexpr const char* kRunWarning = "run.warning";         // outcome WARNING
inline constexpr const char* kRunFailed = "run.failed";           // outcome ERROR
inline constexpr const char* kRunCancelled = "run.cancelled";     // someone (or a stopping kernel) cancelled it
inline constexpr const char* kRunTimedOut = "run.timed_out";      // its type's timeout ended it
inline constexpr const char* kRunStale = "run.stale";             // RUNNING longer than jobs.stale_after_hours
inline constexpr const char* kRunOverTarget = "run.over_target";  // longer than its type's target duration
inline constexpr const char* kRunRecovered = "run.recovered";     // closed (and maybe re-queued) after a crash
inline constexpr const char* kAlertOpened = "alert.opened";
inline constexpr const char* kAlertUpdated = "alert.updated";  // its severity changed
inline constexpr const char* kAlertEscalated = "alert.escalated";
inline constexpr const char* kAlertAcknowledged = "alert.acknowledged";
inline constexpr const char* kAlertClosed = "alert.closed";
inline constexpr const char* kAlertSilenced = "alert.silenced";

// The longest run output (bytes of JSON) copied into a run's document; a
// larger one is left out and its size given (output_bytes).
inline constexpr size_t kMaxOutputBytes = 256 * 1024;

// How documents link to the console and place scopes in the hierarchy.
struct DocumentOptions {
  // Put before the console's paths in links ("https://ops.example.com");
  // empty: links are paths ("/administration/runs/12").
  std::string console_url;
  // A node's path "/platform/.../<node>/" (identity::Identity::path); empty
  // for a node that does not exist. Unset: every node lies under platform.
  std::function<std::string(const std::string& node)> path_of;
};

// How a run ended, beyond what its completion says.
enum class RunEnd {
  finished,   // its plugin returned, or it was cancelled
  timed_out,  // its type's timeout cancelled it or gave up on it
  recovered,  // closed after a kernel stopped while it was in flight, or by an operator's recover
};

// What a run's end is made of. The pointers are borrowed for the call.
struct RunFacts {
  const store::RunRow* run = nullptr;      // as created: type, job, parameters, requester; REQUIRED
  const store::Completion* end = nullptr;  // how it ended; REQUIRED
  int64_t started_ms = 0;                  // 0: never started
  std::string scope;                       // the node it concerns (run_scope)
  std::string node;                        // the kernel that ran it
  uint64_t target_duration_ms = 0;         // its type's target; 0: none
  RunEnd how = RunEnd::finished;
  bool requeued = false;  // recovered: a new run repeats it
};

// The node a run concerns, as the admin API's visibility decides it: its
// scheduled job's scope (`job_scope`, empty for an ad-hoc run), else its
// target tenant, else the scope of the user who started it, else platform.
std::string run_scope(const store::RunRow& run, const std::string& job_scope);

class Documents {
 public:
  explicit Documents(DocumentOptions options);

  const DocumentOptions& options() const { return options_; }

  // Appends the events of a run's end to *out: one of run.completed,
  // run.warning, run.failed, run.cancelled, run.timed_out, run.recovered;
  // and run.over_target when it finished (not cancelled or recovered) later
  // than its type's target duration.
  void run_ended(const RunFacts& facts, std::vector<store::EventRow>* out) const;
  // Appends run.stale for `run`, just flagged stale, concerning `scope`.
  void run_stale(const store::RunRow& run, const std::string& scope, std::vector<store::EventRow>* out) const;
  // Appends the events of an alert's saved change (its history entries in
  // `saved.events`): raised -> alert.opened; updated -> alert.updated when
  // the severity changed; escalated, acknowledged, closed; silenced (until a
  // time) -> alert.silenced. Unsilencing and the history of other alerts
  // ("reopened_as") make none.
  void alert_changed(const store::AlertSave& saved, std::vector<store::EventRow>* out) const;
  // A plugin's event "plugin.<plugin_id>.<name>" with the plugin's payload
  // (a JSON object) as its document.
  store::EventRow plugin_event(const std::string& plugin_id, const std::string& name, const std::string& scope,
                               const std::string& subject, const std::string& payload_json, int64_t time_ms) const;

  // The path of `node` for an event: its hierarchy path, or "/platform/<node>/"
  // for a node that does not exist (it then lies under platform only).
  std::string path_of(const std::string& node) const;
  // The console link of `path` ("/administration/runs/12").
  std::string link(const std::string& path) const;

 private:
  // The run's document: {"run": {...}, "tenant", "links"} and `extra`
  // members; `path` is the scope's path.
  std::string run_document(const RunFacts& f, const std::string& path, const std::string& extra) const;
  DocumentOptions options_;
};

}  // namespace opk::events

#endif
