// The PostgreSQL store's alerts: alert rows with their history, written in
// one transaction per call, and the reads of kernel/alerts; the statements
// are the SQLite store's (sqlite_alerts.cpp, portable SQL). Alert ids are
// assigned under an advisory lock held to the commit, so kernels on one
// database never hand out the same id. Visibility (AlertView) is part of
// every read's WHERE.
#include <algorithm>
#include <cctype>
#include <map>

#include "store/alert_rows.h"
#include "store/pg_internal.h"
#include "store/sqlite_internal.h"

namespace opk::store::internal {
namespace {

using Params = std::vector<std::optional<std::string>>;
using TextRows = std::vector<std::vector<std::optional<std::string>>>;

}  // namespace

namespace {

// The advisory lock of alert ids ("opka").
constexpr int64_t kPgAlertLock = 0x6f706b61;

}  // namespace

Status PgStore::save_alerts(std::vector<AlertSave>* saves) {
  if (saves->empty()) return Status::ok();
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  std::vector<int64_t> given;  // the ids the saves came with, restored if the write is undone
  for (const auto& s : *saves) given.push_back(s.row.id);
  Status saved = in_transaction("alerts", [&](PGconn* c) { return save_alerts_in(c, saves); });
  if (!saved)
    for (size_t i = 0; i < saves->size(); ++i) (*saves)[i].row.id = given[i];
  if (saved) events_committed(events_before);
  return saved;
}

Status PgStore::save_alerts_in(PGconn* conn, std::vector<AlertSave>* saves) {
  auto run = [&](const std::string& sql, const Params& params, TextRows* rows, int64_t* changed) {
    return run_plugin_sql(conn, sql, params, {{}, false, rows, nullptr, changed});
  };
  // Ids are assigned here, one kernel at a time.
  if (Status s = pg_exec(conn, "alerts", "SELECT pg_advisory_xact_lock($1)", {std::to_string(kPgAlertLock)}); !s)
    return s;
  TextRows next;
  if (Status s = run("SELECT COALESCE(MAX(id), 0) + 1 FROM alerts", {}, &next, nullptr); !s)
    return Status::unavailable("store: alerts: " + s.message());
  int64_t next_id = column_int(next.at(0).at(0));
  std::string placeholders;
  for (int i = 1; i <= kAlertColumnCount; ++i) placeholders += (i > 1 ? ", $" : "$") + std::to_string(i);
  std::string sets;
  {
    std::string cols = kAlertColumns;
    int i = 0;
    size_t pos = 0;
    while (pos != std::string::npos) {
      const size_t comma = cols.find(", ", pos);
      const std::string col = cols.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      ++i;
      if (col != "id") sets += (sets.empty() ? "" : ", ") + col + " = $" + std::to_string(i);
      pos = comma == std::string::npos ? comma : comma + 2;
    }
  }
  std::map<int64_t, int64_t> last_seq;  // alert id -> its last event's seq
  std::vector<EventRow> log_rows;       // the event log's rows, written last
  for (auto& save : *saves) {
    AlertRow& a = save.row;
    a.details_json = a.details_json.empty() ? "{}" : a.details_json;
    const bool insert = a.id == 0;
    if (insert) a.id = next_id++;
    Params p = alert_params(a);
    p.push_back(std::to_string(severity_rank(a.severity)));
    int64_t changed = 0;
    Status s = insert ? run(std::string("INSERT INTO alerts (") + kAlertColumns + ", severity_rank) VALUES (" +
                                placeholders + ", $" + std::to_string(kAlertColumnCount + 1) + ")",
                            p, nullptr, &changed)
                      : run("UPDATE alerts SET " + sets + ", severity_rank = $" +
                                std::to_string(kAlertColumnCount + 1) + " WHERE id = $1",
                            p, nullptr, &changed);
    if (!s) {
      if (s.code() == OPK_ERR_CONFLICT)
        return Status::conflict("an alert is open already for source '" + a.source + "', " + a.related_type + " '" +
                                a.related_id + "'");
      return Status::unavailable("store: alerts: " + s.message());
    }
    if (!insert && changed == 0) return Status::not_found("no alert " + std::to_string(a.id));
    for (auto& e : save.events) {
      if (e.alert_id == 0) e.alert_id = a.id;
      // An event about another alert without details names this one
      // ("reopened_as": the id is known only here).
      if (e.alert_id != a.id && e.details_json.empty()) e.details_json = "{\"id\":" + std::to_string(a.id) + "}";
      auto it = last_seq.find(e.alert_id);
      if (it == last_seq.end()) {
        TextRows r;
        if (Status q = run("SELECT COALESCE(MAX(seq), 0) FROM alert_events WHERE alert_id = $1",
                           {std::to_string(e.alert_id)}, &r, nullptr);
            !q)
          return Status::unavailable("store: alerts: " + q.message());
        it = last_seq.emplace(e.alert_id, column_int(r.at(0).at(0))).first;
      }
      e.seq = ++it->second;
      if (e.time_ms == 0) e.time_ms = now_ms();
      if (Status q = run("INSERT INTO alert_events (alert_id, seq, time_ms, kind, actor, reason, details_json) VALUES "
                         "($1, $2, $3, $4, $5, $6, $7)",
                         {std::to_string(e.alert_id), std::to_string(e.seq), std::to_string(e.time_ms), e.kind, e.actor,
                          e.reason, e.details_json.empty() ? "{}" : e.details_json},
                         nullptr, nullptr);
          !q)
        return Status::unavailable("store: alert events: " + q.message());
    }
    if (alert_events_) alert_events_(save, &log_rows);
  }
  std::vector<const EventRow*> log_ptrs;
  for (const auto& e : log_rows) log_ptrs.push_back(&e);
  return insert_events(conn, log_ptrs);
}

}  // namespace opk::store::internal
