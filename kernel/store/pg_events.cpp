// The PostgreSQL store's event log: events inserted inside the transactions
// of the writes they report (completions, stale runs, alerts; pg_runs.cpp
// and pg_alerts.cpp call insert_events), plugins' events (with their
// idempotency keys), reads by seq, consumers' acknowledgements and pruning.
//
// Seqs are handed out in commit order across every kernel on the database:
// a transaction that writes events takes an advisory lock held to its
// commit and numbers its events after the largest seq stored (the last
// event is never pruned, so a seq is never handed out twice). A reader that
// has read up to seq N so never finds a later commit below N. Events are
// the last thing a transaction writes, so the lock is never held while
// waiting for another lock.
#include <algorithm>

#include "store/pg_internal.h"

namespace opk::store::internal {

namespace {

// The advisory lock of the event log ("opke").
constexpr int64_t kPgEventLock = 0x6f706b65;
constexpr const char* kPgEventColumns = "seq, time_ms, kind, scope, scope_path, subject, payload_json";

EventRow pg_event_of(const std::vector<std::string>& r) {
  EventRow e;
  e.seq = std::stoll(r[0]);
  e.time_ms = std::stoll(r[1]);
  e.kind = r[2];
  e.scope = r[3];
  e.scope_path = r[4];
  e.subject = r[5];
  e.payload_json = r[6].empty() ? "{}" : r[6];
  return e;
}

}  // namespace

Status PgStore::insert_events(PGconn* conn, const std::vector<const EventRow*>& events, int64_t* first_seq) {
  if (events.empty() && !first_seq) return Status::ok();
  if (Status s = pg_exec_hot(conn, "opk_event_lock", "event log lock", "SELECT pg_advisory_xact_lock($1)",
                             {std::to_string(kPgEventLock)});
      !s)
    return s;
  PgResult r;
  if (Status s = pg_exec_hot(conn, "opk_event_seq", "event log", "SELECT COALESCE(MAX(seq), 0) FROM events", {}, &r);
      !s)
    return s;
  int64_t seq = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
  if (first_seq) *first_seq = seq + 1;
  if (!events.empty()) {
    // One statement, the events as arrays (PgColumns).
    PgColumns col(7);
    for (const EventRow* e : events) {
      col.number(0, ++seq);
      col.number(1, e->time_ms ? e->time_ms : now_ms());
      col.text(2, e->kind);
      col.text(3, e->scope);
      col.text(4, e->scope_path);
      col.text(5, e->subject);
      col.text(6, e->payload_json);
    }
    if (Status s =
            pg_exec_hot(conn, "opk_insert_events", "insert events",
                        std::string("INSERT INTO events (") + kPgEventColumns +
                            ") SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], "
                            "$6::text[], $7::text[])",
                        col.params());
        !s)
      return s;
  }
  int64_t known = last_event_seq_.load(std::memory_order_acquire);
  while (known < seq && !last_event_seq_.compare_exchange_weak(known, seq, std::memory_order_acq_rel)) {
  }
  return Status::ok();
}

void PgStore::events_committed(int64_t before) {
  const int64_t last = last_event_seq_.load(std::memory_order_acquire);
  if (last > before && event_listener_) event_listener_(last);
}

void PgStore::set_event_listener(std::function<void(int64_t last_seq)> fn) {
  event_listener_ = std::move(fn);
}

void PgStore::set_alert_events(AlertEventsOf fn) {
  alert_events_ = std::move(fn);
}

Status PgStore::append_events(std::vector<EventRow>* events) {
  if (events->empty()) return Status::ok();
  const int64_t before = last_event_seq_.load(std::memory_order_acquire);
  std::vector<const EventRow*> rows;
  for (const auto& e : *events) rows.push_back(&e);
  int64_t first = 0;
  Status s = in_transaction("append events", [&](PGconn* c) { return insert_events(c, rows, &first); });
  if (!s) return s;
  for (size_t i = 0; i < events->size(); ++i) (*events)[i].seq = first + static_cast<int64_t>(i);
  events_committed(before);
  return Status::ok();
}

Status PgStore::append_keyed_event(const std::string& owner, const std::string& key, EventRow* event, bool* duplicate) {
  const int64_t before = last_event_seq_.load(std::memory_order_acquire);
  bool dup = false;
  int64_t seq = 0;
  Status s = in_transaction("event key '" + key + "'", [&](PGconn* c) {
    dup = false;
    // The event log's lock first (held to the commit), then the key: a
    // concurrent writer of the same key waits for the lock, then finds the
    // key this one committed.
    int64_t next = 0;
    if (Status w = insert_events(c, {}, &next); !w) return w;
    PgResult r;
    if (Status w = pg_exec(c, "event key '" + key + "'",
                           "INSERT INTO event_keys (owner, event_key, seq, created_ms) VALUES ($1, $2, $3, $4) ON "
                           "CONFLICT (owner, event_key) DO NOTHING",
                           {owner, key, std::to_string(next), std::to_string(now_ms())}, &r);
        !w)
      return w;
    if (std::strtoll(PQcmdTuples(r.get()), nullptr, 10) == 0) {
      PgResult k;
      if (Status w = pg_exec(c, "event key '" + key + "'",
                             "SELECT seq FROM event_keys WHERE owner = $1 AND event_key = $2", {owner, key}, &k);
          !w)
        return w;
      if (PQntuples(k.get()) == 0)
        return Status::unavailable("store (postgresql): event key '" + key + "': not found after a conflict");
      dup = true;
      seq = std::strtoll(PQgetvalue(k.get(), 0, 0), nullptr, 10);
      return Status::ok();
    }
    int64_t first = 0;
    if (Status w = insert_events(c, {event}, &first); !w) return w;
    seq = first;
    if (first != next) return Status(OPK_ERR_INTERNAL, "store: event key '" + key + "': seq moved");
    return Status::ok();
  });
  if (!s) return s;
  event->seq = seq;
  if (duplicate) *duplicate = dup;
  if (!dup) events_committed(before);
  return Status::ok();
}

StatusOr<std::vector<EventRow>> PgStore::events_after(int64_t after_seq, size_t limit) {
  std::vector<std::vector<std::string>> rows;
  if (Status s =
          text_rows("the event log",
                    std::string("SELECT ") + kPgEventColumns + " FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    {std::to_string(after_seq), std::to_string(std::max<size_t>(limit, 1))}, &rows);
      !s)
    return s;
  std::vector<EventRow> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(pg_event_of(r));
  return out;
}

Status PgStore::get_event(int64_t seq, EventRow* out) {
  std::vector<std::vector<std::string>> rows;
  if (Status s = text_rows("event " + std::to_string(seq),
                           std::string("SELECT ") + kPgEventColumns + " FROM events WHERE seq = $1",
                           {std::to_string(seq)}, &rows);
      !s)
    return s;
  if (rows.empty()) return Status::not_found("no event " + std::to_string(seq));
  *out = pg_event_of(rows.front());
  return Status::ok();
}

int64_t PgStore::last_event_seq() {
  // Other kernels on the database write events too: the table decides.
  std::vector<std::vector<std::string>> rows;
  if (text_rows("the event log", "SELECT COALESCE(MAX(seq), 0) FROM events", {}, &rows) && !rows.empty()) {
    const int64_t seq = std::stoll(rows[0][0]);
    int64_t known = last_event_seq_.load(std::memory_order_acquire);
    while (known < seq && !last_event_seq_.compare_exchange_weak(known, seq, std::memory_order_acq_rel)) {
    }
    return seq;
  }
  return last_event_seq_.load(std::memory_order_acquire);
}

Status PgStore::ack_events(const std::string& consumer, int64_t seq, int64_t now) {
  Status s = write_rows("ack events",
                        "INSERT INTO event_consumers (consumer, seq, acked_ms) VALUES ($1, $2, $3) ON CONFLICT "
                        "(consumer) DO UPDATE SET seq = excluded.seq, acked_ms = excluded.acked_ms",
                        {consumer, std::to_string(seq), std::to_string(now)}, nullptr);
  if (!s) return Status::unavailable("store: cannot record the acknowledgement of '" + consumer + "': " + s.message());
  return Status::ok();
}

StatusOr<std::vector<EventConsumer>> PgStore::event_consumers() {
  std::vector<std::vector<std::string>> rows;
  if (Status s = text_rows("the event consumers",
                           "SELECT consumer, seq, acked_ms FROM event_consumers ORDER BY consumer", {}, &rows);
      !s)
    return s;
  std::vector<EventConsumer> out;
  for (const auto& r : rows) out.push_back({r[0], std::stoll(r[1]), std::stoll(r[2])});
  return out;
}

Status PgStore::prune_events(int64_t before_ms, int64_t max_seq, size_t batch, int64_t* deleted) {
  *deleted = 0;
  return in_transaction("prune events", [&](PGconn* c) {
    // The oldest `batch` events by seq, and of those the run written before
    // `before_ms`: seqs grow with time, so the first newer one ends what may
    // go. The last event is kept.
    PgResult r;
    if (Status s = pg_exec(c, "prune events",
                           "SELECT seq, time_ms FROM events WHERE seq < (SELECT MAX(seq) FROM events) ORDER BY seq "
                           "LIMIT $1",
                           {std::to_string(std::max<size_t>(batch, 1))}, &r);
        !s)
      return s;
    int64_t last = 0, n = 0;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const int64_t seq = std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10);
      const int64_t time = std::strtoll(PQgetvalue(r.get(), i, 1), nullptr, 10);
      if (time >= before_ms || seq > max_seq) break;
      last = seq;
      ++n;
    }
    if (n == 0) return Status::ok();
    if (Status s = pg_exec(c, "prune events", "DELETE FROM events WHERE seq <= $1", {std::to_string(last)}); !s)
      return s;
    *deleted = n;
    return Status::ok();
  });
}

}  // namespace opk::store::internal
