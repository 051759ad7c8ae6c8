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

Status PgStore::get_alert(int64_t id, const AlertView& view, AlertRow* out) {
  Params params;
  Where w(&params);
  w.add("id = " + w.param(std::to_string(id)));
  w.view(view);
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kAlertColumns + " FROM alerts" + w.sql(), params, &rows); !s)
    return Status::unavailable("store: cannot read alert " + std::to_string(id) + ": " + s.message());
  if (rows.empty()) return Status::not_found("no alert " + std::to_string(id));
  *out = alert_of(rows.front());
  return Status::ok();
}

Status PgStore::find_open_alert(const std::string& source, const std::string& related_type,
                                const std::string& related_id, AlertRow* out) {
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kAlertColumns +
                           " FROM alerts WHERE source = $1 AND related_type = $2 AND related_id = $3 AND closed_ms IS "
                           "NULL",
                       {source, related_type, related_id}, &rows);
      !s)
    return Status::unavailable("store: cannot read alerts: " + s.message());
  if (rows.empty()) return Status::not_found("no open alert for " + related_type + " '" + related_id + "'");
  *out = alert_of(rows.front());
  return Status::ok();
}

StatusOr<std::vector<AlertRow>> PgStore::list_alerts(const AlertQuery& q) {
  Params params;
  Where w(&params);
  w.view(q.view);
  if (!q.statuses.empty()) {
    std::string in;
    for (const auto& s : q.statuses) in += (in.empty() ? "" : ", ") + w.param(s);
    w.add("status IN (" + in + ")");
  }
  if (!q.severity.empty()) w.add("severity = " + w.param(q.severity));
  if (!q.area.empty()) w.add("area = " + w.param(q.area));
  if (!q.source.empty()) w.add("source = " + w.param(q.source));
  if (!q.related_type.empty()) w.add("related_type = " + w.param(q.related_type));
  if (!q.related_id.empty()) w.add("related_id = " + w.param(q.related_id));
  if (!q.scope_path.empty())
    w.add("substr(scope_path, 1, " + std::to_string(q.scope_path.size()) + ") = " + w.param(q.scope_path));
  if (!q.text.empty()) {
    // Case-insensitive for ASCII on both databases; % and _ in the text are
    // matched literally.
    std::string like = "%";
    for (char c : q.text) {
      if (c == '%' || c == '_' || c == '\\') like += '\\';
      like += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    like += "%";
    const std::string p = w.param(like);
    w.add("(lower(title) LIKE " + p + " ESCAPE '\\' OR lower(message) LIKE " + p + " ESCAPE '\\')");
  }
  if (q.from_ms) w.add("last_seen_ms >= " + w.param(std::to_string(q.from_ms)));
  if (q.to_ms) w.add("last_seen_ms <= " + w.param(std::to_string(q.to_ms)));
  if (q.first_seen_before_ms) w.add("first_seen_ms <= " + w.param(std::to_string(q.first_seen_before_ms)));
  if (q.acknowledged) w.add(*q.acknowledged ? "acknowledged_ms IS NOT NULL" : "acknowledged_ms IS NULL");
  const std::string key = q.sort == "first_seen" ? "first_seen_ms"
                          : q.sort == "severity" ? "severity_rank"
                                                 : "last_seen_ms";
  const char* dir = q.descending ? "DESC" : "ASC";
  if (q.after) {
    const char* op = q.descending ? "<" : ">";
    const std::string k = w.param(std::to_string(q.after->first));
    const std::string i = w.param(std::to_string(q.after->second));
    w.add("(" + key + " " + op + " " + k + " OR (" + key + " = " + k + " AND id " + op + " " + i + "))");
  }
  std::string sql = std::string("SELECT ") + kAlertColumns + " FROM alerts" + w.sql() + " ORDER BY " + key + " " + dir +
                    ", id " + dir;
  if (q.limit) sql += " LIMIT " + std::to_string(q.limit);
  TextRows rows;
  if (Status s = query(sql, params, &rows); !s) return Status::unavailable("store: cannot list alerts: " + s.message());
  std::vector<AlertRow> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(alert_of(r));
  return out;
}

StatusOr<std::vector<AlertRow>> PgStore::alert_chain(const std::string& source, const std::string& related_type,
                                                     const std::string& related_id, size_t limit) {
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kAlertColumns +
                           " FROM alerts WHERE source = $1 AND related_type = $2 AND related_id = $3 ORDER BY id DESC "
                           "LIMIT " +
                           std::to_string(std::max<size_t>(limit, 1)),
                       {source, related_type, related_id}, &rows);
      !s)
    return Status::unavailable("store: cannot read alerts: " + s.message());
  std::vector<AlertRow> out;
  for (const auto& r : rows) out.push_back(alert_of(r));
  return out;
}

StatusOr<std::vector<AlertEvent>> PgStore::alert_events(int64_t alert_id) {
  TextRows rows;
  if (Status s = query("SELECT alert_id, seq, time_ms, kind, actor, reason, details_json FROM alert_events WHERE "
                       "alert_id = $1 ORDER BY seq",
                       {std::to_string(alert_id)}, &rows);
      !s)
    return Status::unavailable("store: cannot read the history of alert " + std::to_string(alert_id) + ": " +
                               s.message());
  std::vector<AlertEvent> out;
  for (const auto& r : rows)
    out.push_back({column_int(r[0]), column_int(r[1]), column_int(r[2]), r[3].value_or(""), r[4].value_or(""),
                   r[5].value_or(""), r[6].value_or("{}")});
  return out;
}

StatusOr<std::vector<AlertCount>> PgStore::alert_counts(const AlertView& view) {
  Params params;
  Where w(&params);
  w.view(view);
  TextRows rows;
  if (Status s = query("SELECT status, severity, source, COUNT(*) FROM alerts" + w.sql() +
                           " GROUP BY status, severity, source ORDER BY status, severity, source",
                       params, &rows);
      !s)
    return Status::unavailable("store: cannot count alerts: " + s.message());
  std::vector<AlertCount> out;
  for (const auto& r : rows) out.push_back({r[0].value_or(""), r[1].value_or(""), r[2].value_or(""), column_int(r[3])});
  return out;
}

}  // namespace opk::store::internal
