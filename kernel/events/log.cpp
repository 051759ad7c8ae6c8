// The event log (log.h): plugins' events checked and written, reads that wait
// for new events (woken by the store's listener after each commit that added
// events), acknowledgements and retention.
#include "events/log.h"

#include <spdlog/spdlog.h>
#include <opskernel/json.hpp>

#include <algorithm>
#include <limits>

#include "clock/clock.h"
#include "config/config.h"
#include "events/json_text.h"
#include "log/logging.h"

namespace opk::events {

Log::Log(store::Store& store, Options options)
    : store_(store), options_(std::move(options)), documents_(options_.documents) {
  committed_seq_ = store_.last_event_seq();
  store_.set_event_listener([this](int64_t last_seq) { committed(last_seq); });
  // Each alert's change is written with its events.
  store_.set_alert_events([this](const store::AlertSave& saved, std::vector<store::EventRow>* out) {
    try {
      documents_.alert_changed(saved, out);
    } catch (const std::exception& e) {  // the change is stored without its event
      log::kernel()->error("alert {}: its event could not be built: {}", saved.row.id, e.what());
    }
  });
}

Log::~Log() {
  stop();
  store_.set_event_listener({});
  store_.set_alert_events({});
}

void Log::committed(int64_t last_seq) {
  {
    std::lock_guard lock(mu_);
    committed_seq_ = std::max(committed_seq_, last_seq);
  }
  cv_.notify_all();
}

void Log::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

Status Log::emit(const std::string& plugin_id, const std::string& name, const std::string& scope,
                 const std::string& subject, const std::string& payload_json, store::EventRow* out,
                 const std::string& key, bool* duplicate) {
  if (duplicate) *duplicate = false;
  if (name.empty()) return Status::invalid("name: is required");
  if (!config::valid_id(name))
    return Status::invalid("name: '" + name + "' is not [a-z0-9][a-z0-9._-]* of at most " +
                           std::to_string(kMaxNameBytes) + " bytes");
  const std::string node = scope.empty() ? "platform" : scope;
  if (node != "platform" && (!options_.documents.path_of || options_.documents.path_of(node).empty()))
    return Status::invalid("scope: no node '" + node + "'");
  if (subject.size() > kMaxSubjectBytes)
    return Status::invalid("subject: " + std::to_string(subject.size()) + " bytes is longer than " +
                           std::to_string(kMaxSubjectBytes));
  std::string payload = "{}";
  if (!payload_json.empty()) {
    if (payload_json.size() > kMaxPayloadBytes)
      return Status::invalid("payload: " + std::to_string(payload_json.size()) + " bytes is larger than " +
                             std::to_string(kMaxPayloadBytes));
    nlohmann::json p = nlohmann::json::parse(payload_json, nullptr, false);
    if (p.is_discarded() || !p.is_object()) return Status::invalid("payload: is not a JSON object");
    payload = p.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (key.size() > kMaxKeyBytes)
    return Status::invalid("key: " + std::to_string(key.size()) + " bytes is longer than " +
                           std::to_string(kMaxKeyBytes));
  for (unsigned char c : key)
    if (c < 0x20 || c == 0x7f) return Status::invalid("key: has a control character (printable text only)");
  std::vector<store::EventRow> rows = {
      documents_.plugin_event(plugin_id, name, node, subject, payload, clock::now_ms())};
  if (!key.empty()) {
    if (Status s = store_.append_keyed_event(plugin_id, key, &rows.front(), duplicate); !s) return s;
    if (out) *out = rows.front();
    return Status::ok();
  }
  if (Status s = store_.append_events(&rows); !s) return s;
  if (out) *out = rows.front();
  return Status::ok();
}

Status Log::read(int64_t after_seq, size_t limit, int64_t wait_ms, std::vector<store::EventRow>* out) {
  limit = std::clamp<size_t>(limit, 1, kMaxReadLimit);
  wait_ms = std::clamp<int64_t>(wait_ms, 0, kMaxWaitMs);
  const int64_t deadline = clock::now_ms() + wait_ms;
  // Commits up to `seen` were looked for by a read that found nothing after
  // `after_seq`. A commit after that read is in committed_seq_ already, or
  // wakes the wait: nothing is missed between a read and the wait.
  int64_t seen = after_seq;
  for (;;) {
    auto rows = store_.events_after(after_seq, limit);
    if (!rows) return rows.status();
    if (!rows.value().empty() || wait_ms == 0) {
      *out = std::move(rows).value();
      return Status::ok();
    }
    std::unique_lock lock(mu_);
    const bool woke = clock::wait_until(lock, cv_, deadline, [&] { return stopped_ || committed_seq_ > seen; });
    if (!woke || stopped_) {
      out->clear();
      return Status::ok();
    }
    // Events committed after `seen` (or only seqs of writes undone): read again.
    seen = committed_seq_;
  }
}

Status Log::ack(const std::string& consumer, int64_t seq) {
  if (consumer.empty()) return Status::invalid("consumer: is required");
  if (!config::valid_id(consumer))
    return Status::invalid("consumer: '" + consumer + "' is not [a-z0-9][a-z0-9._-]* of at most 64 bytes");
  if (seq < 0) return Status::invalid("seq: " + std::to_string(seq) + " is negative");
  const int64_t last = store_.last_event_seq();
  if (seq > last)
    return Status::invalid("seq: " + std::to_string(seq) + " is after the last event written (" + std::to_string(last) +
                           ")");
  return store_.ack_events(consumer, seq, clock::now_ms());
}

Status Log::get(int64_t seq, store::EventRow* out) {
  return store_.get_event(seq, out);
}

store::StatusOr<int64_t> Log::retention_floor(int64_t now_ms) {
  auto consumers = store_.event_consumers();
  if (!consumers) return consumers.status();
  int64_t floor = std::numeric_limits<int64_t>::max();
  const int64_t recent = now_ms - 2 * options_.retention_ms;
  for (const auto& c : consumers.value())
    if (c.acked_ms >= recent) floor = std::min(floor, c.seq);
  return floor;
}

Status Log::prune(int64_t now_ms, int64_t* deleted) {
  int64_t total = 0;
  auto floor = retention_floor(now_ms);
  if (!floor) return floor.status();
  const int64_t before = now_ms - options_.retention_ms;
  Status s;
  for (int i = 0; i < 10; ++i) {
    int64_t n = 0;
    if (!(s = store_.prune_events(before, floor.value(), options_.prune_batch, &n)) || n == 0) break;
    total += n;
  }
  if (deleted) *deleted = total;
  return s;
}

std::string Log::to_json(const store::EventRow& e) {
  std::string out;
  out.reserve(96 + e.kind.size() + e.scope.size() + e.subject.size() + e.payload_json.size());
  ObjectWriter w(&out);
  w.integer("seq", e.seq)
      .integer("time_ms", e.time_ms)
      .text("kind", e.kind)
      .text("scope", e.scope)
      .text("subject", e.subject)
      .raw("payload", e.payload_json.empty() ? std::string_view("{}") : std::string_view(e.payload_json));
  w.close();
  return out;
}

}  // namespace opk::events
