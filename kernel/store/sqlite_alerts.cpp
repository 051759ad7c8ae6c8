// The embedded store's alerts: alert rows with their history, written in one
// transaction per call, and the reads of kernel/alerts. The SQL is portable
// ($n parameters, no SQLite-only syntax): the same statements serve the
// PostgreSQL store. Visibility (AlertView) is part of every read's WHERE, so
// a page or a count never holds an alert its reader may not see.
#include <algorithm>

#include "store/alert_rows.h"
#include "store/sqlite_internal.h"

namespace opk::store::internal {
namespace {

using Params = std::vector<std::optional<std::string>>;
using TextRows = std::vector<std::vector<std::optional<std::string>>>;

}  // namespace

Status SqliteStore::save_alerts(std::vector<AlertSave>* saves) {
  if (saves->empty()) return Status::ok();
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  Status saved = save_alerts_locked(saves);
  if (saved) events_committed(events_before);
  return saved;
}

Status SqliteStore::save_alerts_locked(std::vector<AlertSave>* saves) {
  std::lock_guard lock(write_mu_);
  auto run = [&](const std::string& sql, const Params& params, TextRows* rows, int64_t* changed) {
    return run_plugin_sql(db(), sql, params, {{}, false, rows, nullptr, changed});
  };
  if (sqlite3_exec(db(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return Status::unavailable(std::string("store: alerts: cannot begin a transaction: ") + sqlite3_errmsg(db()));
  auto fail = [&](Status s) {
    sqlite3_exec(db(), "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  };
  // Ids are assigned here, inside the writer's transaction (portable: no
  // AUTOINCREMENT or sequence needed).
  TextRows next;
  if (Status s = run("SELECT COALESCE(MAX(id), 0) + 1 FROM alerts", {}, &next, nullptr); !s)
    return fail(Status::unavailable("store: alerts: " + s.message()));
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
  std::vector<EventRow> log_rows;       // the event log's rows, written before the commit
  for (auto& save : *saves) {
    AlertRow& a = save.row;
    a.details_json = a.details_json.empty() ? "{}" : a.details_json;
    const bool insert = a.id == 0;
    if (insert) a.id = next_id++;
    int64_t changed = 0;
    Status s = insert ? run(
                            std::string("INSERT INTO alerts (") + kAlertColumns + ", severity_rank) VALUES (" +
                                placeholders + ", $" + std::to_string(kAlertColumnCount + 1) + ")",
                            [&] {
                              Params p = alert_params(a);
                              p.push_back(std::to_string(severity_rank(a.severity)));
                              return p;
                            }(),
                            nullptr, &changed)
                      : run(
                            "UPDATE alerts SET " + sets + ", severity_rank = $" +
                                std::to_string(kAlertColumnCount + 1) + " WHERE id = $1",
                            [&] {
                              Params p = alert_params(a);
                              p.push_back(std::to_string(severity_rank(a.severity)));
                              return p;
                            }(),
                            nullptr, &changed);
    if (!s) {
      if (insert) a.id = 0;
      if (s.code() == OPK_ERR_CONFLICT)
        return fail(Status::conflict("an alert is open already for source '" + a.source + "', " + a.related_type +
                                     " '" + a.related_id + "'"));
      return fail(Status::unavailable("store: alerts: " + s.message()));
    }
    if (!insert && changed == 0) return fail(Status::not_found("no alert " + std::to_string(a.id)));
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
          return fail(Status::unavailable("store: alerts: " + q.message()));
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
        return fail(Status::unavailable("store: alert events: " + q.message()));
    }
    if (alert_events_) alert_events_(save, &log_rows);
  }
  std::vector<const EventRow*> log_ptrs;
  for (const auto& e : log_rows) log_ptrs.push_back(&e);
  if (Status q = insert_events_locked(log_ptrs); !q) return fail(q);
  if (sqlite3_exec(db(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    const std::string msg = sqlite3_errmsg(db());
    return fail(Status::unavailable("store: alerts: commit: " + msg));
  }
  return Status::ok();
}

}  // namespace opk::store::internal
