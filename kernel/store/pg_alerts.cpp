// The PostgreSQL store's alerts: alert rows with their history, written in
// one transaction per call, and the reads of kernel/alerts; the statements
// are the SQLite store's (sqlite_alerts.cpp, portable SQL). Alert ids are
// assigned under an advisory lock held to the commit, so kernels on one
// database never hand out the same id. Visibility (AlertView) is part of
// every read's WHERE.
#include <algorithm>
#include <cctype>
#include <map>

#include "store/pg_internal.h"
#include "store/sqlite_internal.h"

namespace opk::store::internal {
namespace {

using Params = std::vector<std::optional<std::string>>;
using TextRows = std::vector<std::vector<std::optional<std::string>>>;

constexpr const char* kPgAlertColumns =
    "id, source, plugin, type, severity, area, title, message, related_type, related_id, scope, scope_level, "
    "scope_path, platform_only, custom, details_json, status, escalation_level, escalated_rules, first_seen_ms, "
    "last_seen_ms, occurrences, acknowledged_by, acknowledged_ms, closed_by, closed_ms, close_kind, close_reason, "
    "silenced_until_ms, previous_id, flapping, clean_sweeps";
constexpr int kPgAlertColumnCount = 32;

int pg_severity_rank(const std::string& severity) {
  return severity == "critical" ? 2 : severity == "warning" ? 1 : 0;
}

std::optional<std::string> pg_opt_text(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}
std::optional<std::string> pg_opt_ms(int64_t v) {
  return v == 0 ? std::nullopt : std::optional<std::string>(std::to_string(v));
}

// The alert's columns in kPgAlertColumns order, as parameters.
Params pg_alert_params(const AlertRow& a) {
  return {std::to_string(a.id),
          a.source,
          a.plugin,
          a.type,
          a.severity,
          a.area,
          a.title,
          a.message,
          a.related_type,
          a.related_id,
          a.scope,
          a.scope_level,
          a.scope_path,
          a.platform_only ? "1" : "0",
          a.custom ? "1" : "0",
          a.details_json.empty() ? "{}" : a.details_json,
          a.status,
          std::to_string(a.escalation_level),
          a.escalated_rules,
          std::to_string(a.first_seen_ms),
          std::to_string(a.last_seen_ms),
          std::to_string(a.occurrences),
          pg_opt_text(a.acknowledged_by),
          pg_opt_ms(a.acknowledged_ms),
          pg_opt_text(a.closed_by),
          pg_opt_ms(a.closed_ms),
          pg_opt_text(a.close_kind),
          pg_opt_text(a.close_reason),
          pg_opt_ms(a.silenced_until_ms),
          pg_opt_ms(a.previous_id),
          a.flapping ? "1" : "0",
          std::to_string(a.clean_sweeps)};
}

AlertRow pg_alert_of(const std::vector<std::optional<std::string>>& r) {
  auto t = [&](int i) { return r[i].value_or(""); };
  AlertRow a;
  a.id = column_int(r[0]);
  a.source = t(1);
  a.plugin = t(2);
  a.type = t(3);
  a.severity = t(4);
  a.area = t(5);
  a.title = t(6);
  a.message = t(7);
  a.related_type = t(8);
  a.related_id = t(9);
  a.scope = t(10);
  a.scope_level = t(11);
  a.scope_path = t(12);
  a.platform_only = t(13) == "1";
  a.custom = t(14) == "1";
  a.details_json = t(15);
  a.status = t(16);
  a.escalation_level = static_cast<int32_t>(column_int(r[17]));
  a.escalated_rules = t(18);
  a.first_seen_ms = column_int(r[19]);
  a.last_seen_ms = column_int(r[20]);
  a.occurrences = column_int(r[21]);
  a.acknowledged_by = t(22);
  a.acknowledged_ms = column_int(r[23]);
  a.closed_by = t(24);
  a.closed_ms = column_int(r[25]);
  a.close_kind = t(26);
  a.close_reason = t(27);
  a.silenced_until_ms = column_int(r[28]);
  a.previous_id = column_int(r[29]);
  a.flapping = t(30) == "1";
  a.clean_sweeps = static_cast<int32_t>(column_int(r[31]));
  return a;
}

// WHERE conditions, with their parameters numbered from params->size() + 1.
class PgWhere {
 public:
  explicit PgWhere(Params* params) : params_(params) {}
  // "$n" for a new parameter with `value`.
  std::string param(std::optional<std::string> value) {
    params_->push_back(std::move(value));
    return "$" + std::to_string(params_->size());
  }
  void add(const std::string& condition) { conditions_.push_back(condition); }
  void view(const AlertView& v) {
    if (v.all) return;
    add("platform_only = 0");
    if (!v.path.empty()) add("substr(scope_path, 1, " + std::to_string(v.path.size()) + ") = " + param(v.path));
    if (!v.exact_scope.empty()) add("scope = " + param(v.exact_scope));
    std::string in;
    for (const auto& l : v.levels) in += (in.empty() ? "" : ", ") + param(l);
    add(in.empty() ? "1 = 0" : "scope_level IN (" + in + ")");
  }
  std::string sql() const {
    std::string out;
    for (const auto& c : conditions_) out += (out.empty() ? " WHERE " : " AND ") + c;
    return out;
  }

 private:
  Params* params_;
  std::vector<std::string> conditions_;
};

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
  for (int i = 1; i <= kPgAlertColumnCount; ++i) placeholders += (i > 1 ? ", $" : "$") + std::to_string(i);
  std::string sets;
  {
    std::string cols = kPgAlertColumns;
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
    Params p = pg_alert_params(a);
    p.push_back(std::to_string(pg_severity_rank(a.severity)));
    int64_t changed = 0;
    Status s = insert ? run(std::string("INSERT INTO alerts (") + kPgAlertColumns + ", severity_rank) VALUES (" +
                                placeholders + ", $" + std::to_string(kPgAlertColumnCount + 1) + ")",
                            p, nullptr, &changed)
                      : run("UPDATE alerts SET " + sets + ", severity_rank = $" +
                                std::to_string(kPgAlertColumnCount + 1) + " WHERE id = $1",
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
  PgWhere w(&params);
  w.add("id = " + w.param(std::to_string(id)));
  w.view(view);
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kPgAlertColumns + " FROM alerts" + w.sql(), params, &rows); !s)
    return Status::unavailable("store: cannot read alert " + std::to_string(id) + ": " + s.message());
  if (rows.empty()) return Status::not_found("no alert " + std::to_string(id));
  *out = pg_alert_of(rows.front());
  return Status::ok();
}

Status PgStore::find_open_alert(const std::string& source, const std::string& related_type,
                                const std::string& related_id, AlertRow* out) {
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kPgAlertColumns +
                           " FROM alerts WHERE source = $1 AND related_type = $2 AND related_id = $3 AND closed_ms IS "
                           "NULL",
                       {source, related_type, related_id}, &rows);
      !s)
    return Status::unavailable("store: cannot read alerts: " + s.message());
  if (rows.empty()) return Status::not_found("no open alert for " + related_type + " '" + related_id + "'");
  *out = pg_alert_of(rows.front());
  return Status::ok();
}

StatusOr<std::vector<AlertRow>> PgStore::list_alerts(const AlertQuery& q) {
  Params params;
  PgWhere w(&params);
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
  std::string sql = std::string("SELECT ") + kPgAlertColumns + " FROM alerts" + w.sql() + " ORDER BY " + key + " " +
                    dir + ", id " + dir;
  if (q.limit) sql += " LIMIT " + std::to_string(q.limit);
  TextRows rows;
  if (Status s = query(sql, params, &rows); !s) return Status::unavailable("store: cannot list alerts: " + s.message());
  std::vector<AlertRow> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(pg_alert_of(r));
  return out;
}

StatusOr<std::vector<AlertRow>> PgStore::alert_chain(const std::string& source, const std::string& related_type,
                                                     const std::string& related_id, size_t limit) {
  TextRows rows;
  if (Status s = query(std::string("SELECT ") + kPgAlertColumns +
                           " FROM alerts WHERE source = $1 AND related_type = $2 AND related_id = $3 ORDER BY id DESC "
                           "LIMIT " +
                           std::to_string(std::max<size_t>(limit, 1)),
                       {source, related_type, related_id}, &rows);
      !s)
    return Status::unavailable("store: cannot read alerts: " + s.message());
  std::vector<AlertRow> out;
  for (const auto& r : rows) out.push_back(pg_alert_of(r));
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
  PgWhere w(&params);
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
