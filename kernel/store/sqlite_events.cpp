// The embedded store's event log: events inserted inside the transactions of
// the writes they report (completions, alerts; sqlite_runs.cpp and
// sqlite_alerts.cpp call insert_events_locked), plugins' events (with their
// idempotency keys), reads by seq, consumers' acknowledgements and pruning. The SQL is portable ($n
// parameters, no SQLite-only syntax).
//
// Seqs come from a counter kept under the writer's lock, read from the table
// at open: one writer commits in the order it hands seqs out, so a reader
// that has read up to seq N never finds a later commit below N. A write that
// is undone leaves its seqs unused.
#include <algorithm>

#include "store/sqlite_internal.h"

namespace opk::store::internal {
namespace {

using Params = std::vector<std::optional<std::string>>;
using TextRows = std::vector<std::vector<std::optional<std::string>>>;

constexpr const char* kEventColumnList = "seq, time_ms, kind, scope, scope_path, subject, payload_json";

EventRow event_of(const std::vector<std::optional<std::string>>& r) {
  EventRow e;
  e.seq = column_int(r[0]);
  e.time_ms = column_int(r[1]);
  e.kind = r[2].value_or("");
  e.scope = r[3].value_or("");
  e.scope_path = r[4].value_or("");
  e.subject = r[5].value_or("");
  e.payload_json = r[6].value_or("{}");
  return e;
}

}  // namespace

Status SqliteStore::load_event_seq() {
  TextRows rows;
  if (Status s = run_one(db(), "SELECT COALESCE(MAX(seq), 0) FROM events", {}, &rows, nullptr); !s)
    return Status::unavailable("store: event log: " + s.message());
  last_event_seq_.store(rows.empty() ? 0 : column_int(rows[0][0]), std::memory_order_release);
  return Status::ok();
}

Status SqliteStore::insert_events_locked(const std::vector<const EventRow*>& events, int64_t* first_seq) {
  int64_t seq = last_event_seq_.load(std::memory_order_acquire);
  if (first_seq) *first_seq = seq + 1;
  if (events.empty()) return Status::ok();
  for (size_t k = 0; k < events.size();) {
    const size_t n = insert_size_for(std::min(events.size() - k, kRunsPerInsert));
    Stmt& st = stmts_->insert_events_of(n);
    for (size_t i = 0; i < n; ++i) {
      const EventRow& e = *events[k + i];
      st.bind_at(static_cast<int>(i * kEventColumns) + 1, seq + static_cast<int64_t>(i) + 1,
                 e.time_ms ? e.time_ms : now_ms(), e.kind, e.scope, e.scope_path, e.subject, e.payload_json);
    }
    if (!st.exec()) return sql_error("insert events");
    seq += static_cast<int64_t>(n);
    k += n;
    // Handed out even if the transaction is undone later: never reused.
    last_event_seq_.store(seq, std::memory_order_release);
  }
  return Status::ok();
}

void SqliteStore::events_committed(int64_t before) {
  const int64_t last = last_event_seq_.load(std::memory_order_acquire);
  if (last > before && event_listener_) event_listener_(last);
}

void SqliteStore::set_event_listener(std::function<void(int64_t last_seq)> fn) {
  event_listener_ = std::move(fn);
}

void SqliteStore::set_alert_events(AlertEventsOf fn) {
  alert_events_ = std::move(fn);
}

Status SqliteStore::append_events(std::vector<EventRow>* events) {
  if (events->empty()) return Status::ok();
  const int64_t before = last_event_seq_.load(std::memory_order_acquire);
  std::vector<const EventRow*> rows;
  for (const auto& e : *events) rows.push_back(&e);
  int64_t first = 0;
  Status s = grouped(
      [&] {
        if (Status w = insert_events_locked(rows, &first); !w) return w;
        return Status::ok();
      },
      rows.size());
  if (!s) return s;
  for (size_t i = 0; i < events->size(); ++i) (*events)[i].seq = first + static_cast<int64_t>(i);
  events_committed(before);
  return Status::ok();
}

Status SqliteStore::append_keyed_event(const std::string& owner, const std::string& key, EventRow* event,
                                       bool* duplicate) {
  const int64_t before = last_event_seq_.load(std::memory_order_acquire);
  bool dup = false;
  int64_t seq = 0;
  Status s = grouped(
      [&] {
        dup = false;
        // The key first: its primary key decides, inside this transaction,
        // whether the event is written (a concurrent writer of the same key
        // waits for this one's commit, then finds its row).
        const int64_t next = last_event_seq_.load(std::memory_order_acquire) + 1;
        int64_t added = 0;
        if (Status w = run_plugin_sql(db(),
                                      "INSERT INTO event_keys (owner, event_key, seq, created_ms) VALUES ($1, $2, $3, "
                                      "$4) ON CONFLICT (owner, event_key) DO NOTHING",
                                      {owner, key, std::to_string(next), std::to_string(now_ms())},
                                      {{}, false, nullptr, nullptr, &added});
            !w)
          return Status::unavailable("store: event key '" + key + "': " + w.message());
        if (added == 0) {
          TextRows rows;
          if (Status w = run_plugin_sql(db(), "SELECT seq FROM event_keys WHERE owner = $1 AND event_key = $2",
                                        {owner, key}, {{}, false, &rows, nullptr, nullptr});
              !w || rows.empty())
            return Status::unavailable("store: event key '" + key +
                                       "': " + (w ? "not found after a conflict" : w.message()));
          dup = true;
          seq = column_int(rows[0][0]);
          return Status::ok();
        }
        int64_t first = 0;
        if (Status w = insert_events_locked({event}, &first); !w) return w;
        seq = first;
        if (first != next) return Status(OPK_ERR_INTERNAL, "store: event key '" + key + "': seq moved");
        return Status::ok();
      },
      1);
  if (!s) return s;
  event->seq = seq;
  if (duplicate) *duplicate = dup;
  if (!dup) events_committed(before);
  return Status::ok();
}

StatusOr<std::vector<EventRow>> SqliteStore::events_after(int64_t after_seq, size_t limit) {
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kEventColumnList + " FROM events WHERE seq > $1 ORDER BY seq LIMIT " +
                           std::to_string(std::max<size_t>(limit, 1)),
                       {std::to_string(after_seq)}, &rows);
      !s)
    return Status::unavailable("store: cannot read the event log: " + s.message());
  std::vector<EventRow> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(event_of(r));
  return out;
}

Status SqliteStore::get_event(int64_t seq, EventRow* out) {
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kEventColumnList + " FROM events WHERE seq = $1", {std::to_string(seq)},
                       &rows);
      !s)
    return Status::unavailable("store: cannot read event " + std::to_string(seq) + ": " + s.message());
  if (rows.empty()) return Status::not_found("no event " + std::to_string(seq));
  *out = event_of(rows.front());
  return Status::ok();
}

int64_t SqliteStore::last_event_seq() {
  return last_event_seq_.load(std::memory_order_acquire);
}

Status SqliteStore::ack_events(const std::string& consumer, int64_t seq, int64_t now) {
  std::lock_guard lock(write_mu_);
  Status s = run_one(db(),
                     "INSERT INTO event_consumers (consumer, seq, acked_ms) VALUES ($1, $2, $3) ON CONFLICT (consumer) "
                     "DO UPDATE SET seq = excluded.seq, acked_ms = excluded.acked_ms",
                     {consumer, std::to_string(seq), std::to_string(now)}, nullptr, nullptr);
  if (!s) return Status::unavailable("store: cannot record the acknowledgement of '" + consumer + "': " + s.message());
  return Status::ok();
}

StatusOr<std::vector<EventConsumer>> SqliteStore::event_consumers() {
  TextRows rows;
  if (Status s = query("SELECT consumer, seq, acked_ms FROM event_consumers ORDER BY consumer", {}, &rows); !s)
    return Status::unavailable("store: cannot read the event consumers: " + s.message());
  std::vector<EventConsumer> out;
  for (const auto& r : rows) out.push_back({r[0].value_or(""), column_int(r[1]), column_int(r[2])});
  return out;
}

Status SqliteStore::prune_events(int64_t before_ms, int64_t max_seq, size_t batch, int64_t* deleted) {
  *deleted = 0;
  std::lock_guard lock(write_mu_);
  // Inside the writer's transaction (run_one refuses to run there).
  auto run = [&](const std::string& sql, const Params& params, TextRows* rows) {
    return run_plugin_sql(db(), sql, params, {{}, false, rows, nullptr, nullptr});
  };
  return in_transaction([&] {
    // The oldest `batch` events by seq (the primary key: no scan of the
    // rest), and of those the run written before `before_ms`: seqs grow
    // with time, so the first newer one ends what may go.
    TextRows rows;
    if (Status s = run("SELECT seq, time_ms FROM events WHERE seq < (SELECT MAX(seq) FROM events) ORDER BY seq LIMIT " +
                           std::to_string(std::max<size_t>(batch, 1)),
                       {}, &rows);
        !s)
      return Status::unavailable("store: prune events: " + s.message());
    int64_t last = 0, n = 0;
    for (const auto& r : rows) {
      const int64_t seq = column_int(r[0]), time = column_int(r[1]);
      if (time >= before_ms || seq > max_seq) break;
      last = seq;
      ++n;
    }
    if (n == 0) return Status::ok();
    if (Status s = run("DELETE FROM events WHERE seq <= $1", {std::to_string(last)}, nullptr); !s)
      return Status::unavailable("store: prune events: " + s.message());
    *deleted = n;
    return Status::ok();
  });
}

}  // namespace opk::store::internal
