// log.h -- the kernel's event log: a durable, ordered log of what happened
// (runs that ended, alerts that changed, plugins' own events), each event a
// JSON document (docs/events.md). Run and alert events are written by the
// store in the transaction of the change they report (the job engine and
// the alert engine hand it the rows this module builds); plugins emit
// theirs through opk.events/1. Readers follow the log by seq, wait for new
// events, and acknowledge what they have handled; retention keeps what a
// consumer has not acknowledged. Thread-safe.
#ifndef OPSKERNEL_KERNEL_EVENTS_LOG_H
#define OPSKERNEL_KERNEL_EVENTS_LOG_H

#include <opskernel/status.hpp>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "events/documents.h"
#include "store/store.h"

namespace opk::events {

// Limits of what a plugin emits and a reader asks for.
inline constexpr size_t kMaxNameBytes = 64;
inline constexpr size_t kMaxSubjectBytes = 200;
inline constexpr size_t kMaxKeyBytes = 200;
inline constexpr size_t kMaxPayloadBytes = 256 * 1024;
inline constexpr size_t kMaxReadLimit = 1000;
inline constexpr int64_t kMaxWaitMs = 10000;

struct Options {
  // Events older than this are pruned ([events] retention), unless a
  // consumer has not acknowledged them.
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;
  // Events deleted per pruning transaction (jobs.prune_batch).
  size_t prune_batch = 1000;
  DocumentOptions documents;
};

class Log {
 public:
  // Becomes `store`'s event listener and its builder of alert events.
  // REQUIRES: `store` outlives this, and nothing writes to it once this is
  // destroyed.
  Log(store::Store& store, Options options);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  const Options& options() const { return options_; }
  // The documents of run and alert events, for the job and alert engines.
  const Documents& documents() const { return documents_; }

  // Writes plugin `plugin_id`'s event "plugin.<plugin_id>.<name>" about
  // `subject` (may be empty) at hierarchy node `scope` (empty: platform)
  // with `payload_json` (a JSON object; empty: {}). INVALID_ARGUMENT names
  // the field: a name that is not [a-z0-9][a-z0-9._-]* of at most 64 bytes,
  // a scope that does not exist, a subject over 200 bytes, a payload that is
  // not an object or is over 256 KiB, a key that is not 1..200 bytes of
  // printable text. *out (may be null) gets the event.
  //
  // With a non-empty `key` (an idempotency key), the log keeps at most one
  // event per (`plugin_id`, `key`), through a unique key in the store: a
  // second emit with the key writes nothing, *out->seq is the first
  // event's seq and *duplicate (may be null) is true. Requests are checked
  // in full before the key is looked at.
  Status emit(const std::string& plugin_id, const std::string& name, const std::string& scope,
              const std::string& subject, const std::string& payload_json, store::EventRow* out,
              const std::string& key = {}, bool* duplicate = nullptr);
  // Up to `limit` (1..1000) events with seq > `after_seq`, oldest first, into
  // *out. When there are none, waits up to `wait_ms` (0..10000; the kernel's
  // clock) for one to be written, and returns what came (possibly nothing).
  Status read(int64_t after_seq, size_t limit, int64_t wait_ms, std::vector<store::EventRow>* out);
  // Records that `consumer` ([a-z0-9][a-z0-9._-]*, at most 64 bytes) has
  // durably handled every event up to `seq` (0..the last seq written).
  Status ack(const std::string& consumer, int64_t seq);
  // The event with this seq; NOT_FOUND when pruned or never written.
  Status get(int64_t seq, store::EventRow* out);
  // Deletes events older than the retention, in batches of prune_batch (at
  // most ten batches a call), never one after the lowest seq acknowledged
  // by a consumer that acknowledged within twice the retention (a consumer
  // gone longer no longer holds the log). *deleted (may be null) gets how
  // many.
  Status prune(int64_t now_ms, int64_t* deleted);
  // The highest seq pruning may delete at `now_ms` (see prune); INT64_MAX
  // when no consumer holds the log.
  store::StatusOr<int64_t> retention_floor(int64_t now_ms);
  // Ends every wait at once; later reads do not wait. For stop.
  void stop();

  // An event as in opk.events/1 answers: {"seq", "time_ms", "kind",
  // "scope", "subject", "payload"}.
  static std::string to_json(const store::EventRow& event);

 private:
  // The store's listener: events up to `last_seq` are committed.
  void committed(int64_t last_seq);

  store::Store& store_;
  const Options options_;
  const Documents documents_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t committed_seq_ = 0;  // mu_
  bool stopped_ = false;       // mu_
};

}  // namespace opk::events

#endif
