// What both stores do alike (portable_store.h): the statements are portable
// SQL with $n parameters, run through each store's read_text and write_one.
#include "store/portable_store.h"

#include <algorithm>
#include <cctype>

#include "store/alert_rows.h"
#include "store/sqlite_internal.h"

namespace opk::store::internal {

namespace {

constexpr const char* kPortableJobColumns =
    "j.id, j.job_type, j.description, j.owner, j.planning, j.cron, j.time_zone, j.jitter_minutes, j.params_json, "
    "j.enabled, j.scope, j.region, j.report_recipients, j.next_run_ms, j.created_ms, j.updated_ms";
constexpr size_t kPortableJobColumnCount = 16;

using PortableTextRows = std::vector<std::vector<std::optional<std::string>>>;

}  // namespace

// --- scheduled jobs

Status PortableStore::create_scheduled_job(ScheduledJob j) {
  const int64_t t = now_ms();
  j.created_ms = j.updated_ms = t;
  Status s = write_one(
      "scheduled job '" + j.id + "'",
      "INSERT INTO scheduled_jobs (id, job_type, description, owner, planning, cron, time_zone, "
      "jitter_minutes, params_json, enabled, scope, region, report_recipients, next_run_ms, "
      "created_ms, updated_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
      {j.id, j.job_type, j.description, j.owner, j.planning, j.cron, j.time_zone, std::to_string(j.jitter_minutes),
       j.params_json, j.enabled ? "1" : "0", j.scope, j.region, j.report_recipients, std::to_string(j.next_run_ms),
       std::to_string(j.created_ms), std::to_string(j.updated_ms)},
      nullptr);
  generation_.fetch_add(1, std::memory_order_release);
  if (s.code() == OPK_ERR_CONFLICT) {
    // The id taken, or another constraint (a planning the schema does not
    // know): the first is said as such.
    ScheduledJob existing;
    if (get_scheduled_job(j.id, &existing)) return Status::conflict("scheduled job '" + j.id + "' already exists");
  }
  return s;
}

Status PortableStore::update_scheduled_job(const ScheduledJob& j) {
  int64_t n = 0;
  Status s = write_one(
      "scheduled job '" + j.id + "'",
      "UPDATE scheduled_jobs SET owner=$1, planning=$2, cron=$3, time_zone=$4, jitter_minutes=$5, "
      "params_json=$6, enabled=$7, scope=$8, region=$9, report_recipients=$10, next_run_ms=$11, "
      "updated_ms=$12 WHERE id=$13",
      {j.owner, j.planning, j.cron, j.time_zone, std::to_string(j.jitter_minutes), j.params_json, j.enabled ? "1" : "0",
       j.scope, j.region, j.report_recipients, std::to_string(j.next_run_ms), std::to_string(now_ms()), j.id},
      &n);
  generation_.fetch_add(1, std::memory_order_release);
  if (!s) return s;
  return n ? Status::ok() : Status::not_found("no scheduled job '" + j.id + "'");
}

Status PortableStore::get_scheduled_job(const std::string& id, ScheduledJob* out) {
  std::vector<std::pair<ScheduledJob, TextRow>> all;
  if (Status s = scheduled(" j WHERE j.id = $1", "", {id}, &all); !s) return s;
  if (all.empty()) return Status::not_found("no scheduled job '" + id + "'");
  *out = all.front().first;
  return Status::ok();
}

Status PortableStore::delete_scheduled_job(const std::string& id) {
  // One statement: the embedded store's single writer serializes it with
  // every creation of runs.
  int64_t n = 0;
  Status s = write_one("scheduled job '" + id + "'", kDeleteJobSql, {id}, &n);
  generation_.fetch_add(1, std::memory_order_release);
  if (!s) return s;
  return n ? Status::ok() : job_not_deleted(id);
}

Status PortableStore::job_not_deleted(const std::string& id) {
  std::vector<TextRow> open;
  if (Status s = read_text("the open runs of scheduled job '" + id + "'",
                           "SELECT r.id FROM runs r JOIN run_state s ON s.id = r.id WHERE r.scheduled_job_id = $1 AND "
                           "s.phase IN ('PENDING', 'RUNNING') ORDER BY r.id LIMIT 5",
                           {id}, &open);
      !s)
    return s;
  if (!open.empty()) {
    std::string named;
    for (const auto& r : open) named += (named.empty() ? "run " : ", run ") + r.at(0);
    return Status::conflict("scheduled job '" + id + "' has " + named + " pending or running");
  }
  ScheduledJob job;
  if (Status s = get_scheduled_job(id, &job); !s) return s;
  // Its open run ended between the delete and this read.
  return Status::conflict("scheduled job '" + id + "' had a run pending or running as it was to be deleted");
}

StatusOr<std::vector<ScheduledJob>> PortableStore::list_scheduled_jobs() {
  std::vector<std::pair<ScheduledJob, TextRow>> all;
  if (Status s = scheduled(" j ORDER BY j.id", "", {}, &all); !s) return s;
  std::vector<ScheduledJob> out;
  out.reserve(all.size());
  for (auto& [j, extra] : all) out.push_back(std::move(j));
  return out;
}

StatusOr<std::vector<InventoryRow>> PortableStore::inventory() {
  std::vector<std::pair<ScheduledJob, TextRow>> jobs;
  Status s = scheduled(
      " j LEFT JOIN runs r ON r.id = (SELECT MAX(id) FROM runs WHERE scheduled_job_id = j.id AND scheduled_job_id <> "
      "'') LEFT JOIN run_state s ON s.id = r.id ORDER BY j.id",
      ", COALESCE(r.id, 0), COALESCE(s.phase, ''), COALESCE(s.outcome, ''), COALESCE(r.created_ms, 0), "
      "COALESCE(s.finished_ms, 0), COALESCE(s.cancelled_by, ''), COALESCE(s.end_cause, ''), "
      "COALESCE(s.started_ms, 0)",
      {}, &jobs);
  if (!s) return s;
  std::vector<InventoryRow> out;
  for (auto& [job, extra] : jobs)
    out.push_back({job, std::stoll(extra[0]), extra[1], extra[2], std::stoll(extra[3]), std::stoll(extra[4]), extra[5],
                   extra[6], std::stoll(extra[7])});
  return out;
}

StatusOr<std::map<int64_t, int64_t>> PortableStore::failures_per_day(const std::string& id, int64_t since_ms,
                                                                     bool terminated) {
  std::vector<TextRow> rows;
  Status s =
      read_text("failures",
                "SELECT s.finished_ms / 86400000, COUNT(*) FROM runs r JOIN run_state s ON s.id = r.id WHERE "
                "r.scheduled_job_id = $1 AND r.scheduled_job_id <> '' AND s.phase = 'COMPLETED' AND " +
                    std::string(terminated ? "(s.end_cause <> '' OR s.cancelled_by <> '')"
                                           : "s.outcome = 'ERROR' AND s.cancelled_by = '' AND s.end_cause = ''") +
                    " AND s.finished_ms >= $2 GROUP BY 1",
                {id, std::to_string(since_ms)}, &rows);
  if (!s) return s;
  std::map<int64_t, int64_t> out;
  for (auto& r : rows) out[std::stoll(r[0])] = std::stoll(r[1]);
  return out;
}

StatusOr<std::vector<RunCount>> PortableStore::run_counts() {
  std::vector<TextRow> rows;
  // The tables, not SQLite's run_rows view; the flag as 0/1 on both stores.
  Status s = read_text("run counts",
                       "SELECT r.job_type, s.phase, s.outcome, CASE WHEN s.cancelled_by <> '' THEN 1 ELSE 0 END, "
                       "s.end_cause, COUNT(*) FROM runs r JOIN run_state s ON s.id = r.id GROUP BY 1, 2, 3, 4, 5 "
                       "ORDER BY 1, 2, 3, 4, 5",
                       {}, &rows);
  if (!s) return s;
  std::vector<RunCount> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back({r[0], r[1], r[2], r[3] == "1", r[4], std::stoll(r[5])});
  return out;
}

StatusOr<std::vector<RunSummaryRow>> PortableStore::run_summary(int64_t since_ms, int64_t now_ms) {
  std::vector<TextRow> open, done;
  // The tables, not SQLite's run_rows view; flags as 0/1 on both stores;
  // the times are parameters, so the statements' texts do not change from
  // one call to the next (the SQLite store keeps its reads prepared by
  // text, and a text per call would fill that cache). The open runs
  // are read through open_runs (from the stores' open-runs mark, by id), not
  // by a scan of every run's phase. The completed ones are found by a scan
  // of run_state: there is no index of finish times, by design (one would
  // cost every completion; sqlite_schema.cpp, migration 4).
  Status s =
      read_text("open runs by pool",
                "SELECT r.scheduled_job_id, r.job_type, r.target_tenant, r.scope, s.phase, r.pool, "
                "CASE WHEN s.hold <> 0 THEN 1 ELSE 0 END, CASE WHEN r.scheduled_ms <= $1 THEN 1 ELSE 0 END, "
                "COUNT(*), MIN(r.scheduled_ms), MAX(r.id) FROM runs r JOIN run_state s ON s.id = r.id WHERE s.id IN "
                "(SELECT id FROM open_runs) AND s.phase IN ('PENDING', 'RUNNING') GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
                {std::to_string(now_ms)}, &open);
  if (s)
    s = read_text("completed runs by hour",
                  "SELECT r.scheduled_job_id, r.job_type, r.target_tenant, r.scope, s.outcome, "
                  "CASE WHEN s.cancelled_by <> '' THEN 1 ELSE 0 END, s.end_cause, s.finished_ms / 3600000, COUNT(*), "
                  "MAX(r.id) FROM runs r JOIN run_state s ON s.id = r.id WHERE s.phase = 'COMPLETED' AND "
                  "s.finished_ms >= $1 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
                  {std::to_string(since_ms)}, &done);
  if (!s) return s;
  std::vector<RunSummaryRow> out;
  out.reserve(open.size() + done.size());
  for (auto& r : open) {
    RunSummaryRow x{r[0], r[1], r[2], r[3], r[4]};
    x.pool = r[5];
    x.hold = r[6] == "1";
    x.due = r[7] == "1";
    x.count = std::stoll(r[8]);
    x.oldest_scheduled_ms = std::stoll(r[9]);
    x.last_id = std::stoll(r[10]);
    out.push_back(std::move(x));
  }
  for (auto& r : done) {
    RunSummaryRow x{r[0], r[1], r[2], r[3], kCompleted, r[4], r[6], r[5] == "1", std::stoll(r[7])};
    x.count = std::stoll(r[8]);
    x.last_id = std::stoll(r[9]);
    out.push_back(std::move(x));
  }
  return out;
}

Status PortableStore::scheduled(const std::string& tail, const std::string& extra, const SqlParams& params,
                                std::vector<std::pair<ScheduledJob, TextRow>>* out) {
  std::vector<TextRow> rs;
  if (Status s =
          read_text("scheduled jobs",
                    std::string("SELECT ") + kPortableJobColumns + extra + " FROM scheduled_jobs" + tail, params, &rs);
      !s)
    return s;
  for (auto& r : rs) try {
      ScheduledJob j;
      j.id = r[0];
      j.job_type = r[1];
      j.description = r[2];
      j.owner = r[3];
      j.planning = r[4];
      j.cron = r[5];
      j.time_zone = r[6];
      j.jitter_minutes = std::stoi(r[7]);
      j.params_json = r[8];
      j.enabled = r[9] == "1";
      j.scope = r[10];
      j.region = r[11];
      j.report_recipients = r[12];
      j.next_run_ms = std::stoll(r[13]);
      j.created_ms = std::stoll(r[14]);
      j.updated_ms = std::stoll(r[15]);
      out->emplace_back(std::move(j), TextRow(r.begin() + kPortableJobColumnCount, r.end()));
    } catch (const std::exception&) {
      // An unparsable row is skipped (as runs_where skips a run's).
    }
  return Status::ok();
}

// --- tenancy and identities

Status PortableStore::add_node(const Node& n) {
  return insert_unique("node '" + n.id + "'",
                       "INSERT INTO nodes (id, kind, name, parent, created_ms) VALUES ($1, $2, $3, $4, $5)",
                       {n.id, n.kind, n.name, n.parent, std::to_string(n.created_ms)});
}

StatusOr<std::vector<Node>> PortableStore::list_nodes() {
  std::vector<TextRow> rows;
  if (Status s = read_text("nodes", "SELECT id, kind, name, parent, created_ms FROM nodes ORDER BY id", {}, &rows); !s)
    return s;
  std::vector<Node> out;
  for (auto& r : rows) out.push_back({r[0], r[1], r[2], r[3], std::stoll(r[4])});
  return out;
}

Status PortableStore::add_user(const User& u) {
  return insert_unique("user '" + u.id + "'",
                       "INSERT INTO users (id, name, role, scope, disabled, created_ms) VALUES ($1, $2, $3, $4, $5, "
                       "$6)",
                       {u.id, u.name, u.role, u.scope, u.disabled ? "1" : "0", std::to_string(u.created_ms)});
}

Status PortableStore::get_user(const std::string& id, User* out) {
  std::vector<User> rows;
  if (Status s = users_where("WHERE id = $1", {id}, &rows); !s) return s;
  if (rows.empty()) return Status::not_found("no user '" + id + "'");
  *out = rows.front();
  return Status::ok();
}

StatusOr<std::vector<User>> PortableStore::list_users() {
  std::vector<User> out;
  if (Status s = users_where("ORDER BY id", {}, &out); !s) return s;
  return out;
}

Status PortableStore::add_token(const TokenRow& t) {
  return insert_unique("token '" + t.id + "'",
                       "INSERT INTO tokens (id, user_id, hash, label, created_ms, expires_ms, revoked_ms) VALUES "
                       "($1, $2, $3, $4, $5, $6, $7)",
                       {t.id, t.user_id, t.hash, t.label, std::to_string(t.created_ms), std::to_string(t.expires_ms),
                        std::to_string(t.revoked_ms)});
}

Status PortableStore::find_token(const std::string& hash, TokenRow* out) {
  std::vector<TokenRow> rows;
  if (Status s = tokens_where("WHERE hash = $1", {hash}, &rows); !s) return s;
  if (rows.empty()) return Status::not_found("no such token");
  *out = rows.front();
  return Status::ok();
}

StatusOr<std::vector<TokenRow>> PortableStore::list_tokens(const std::string& user_id) {
  std::vector<TokenRow> out;
  if (Status s = tokens_where("WHERE user_id = $1 ORDER BY created_ms, id", {user_id}, &out); !s) return s;
  return out;
}

Status PortableStore::insert_unique(const std::string& what, const std::string& sql, const SqlParams& params) {
  Status s = write_one(what, sql, params, nullptr);
  if (s.code() == OPK_ERR_CONFLICT) return Status::conflict(what + " already exists");
  return s;
}

Status PortableStore::users_where(const std::string& tail, const SqlParams& params, std::vector<User>* out) {
  std::vector<TextRow> rows;
  if (Status s =
          read_text("users", "SELECT id, name, role, scope, disabled, created_ms FROM users " + tail, params, &rows);
      !s)
    return s;
  for (auto& r : rows) out->push_back({r[0], r[1], r[2], r[3], r[4] == "1", std::stoll(r[5])});
  return Status::ok();
}

Status PortableStore::tokens_where(const std::string& tail, const SqlParams& params, std::vector<TokenRow>* out) {
  std::vector<TextRow> rows;
  if (Status s =
          read_text("tokens", "SELECT id, user_id, hash, label, created_ms, expires_ms, revoked_ms FROM tokens " + tail,
                    params, &rows);
      !s)
    return s;
  for (auto& r : rows) out->push_back({r[0], r[1], r[2], r[3], std::stoll(r[4]), std::stoll(r[5]), std::stoll(r[6])});
  return Status::ok();
}

// --- audit

StatusOr<std::vector<AuditRow>> PortableStore::audit_rows(size_t limit) {
  std::vector<TextRow> rs;
  if (Status s = read_text("audit rows",
                           "SELECT id, time_ms, actor, role, action, target, reason, params_json, outcome, source FROM "
                           "audit ORDER BY id DESC LIMIT $1",
                           {std::to_string(limit)}, &rs);
      !s)
    return s;
  std::vector<AuditRow> out;
  out.reserve(rs.size());
  for (auto& r : rs)
    out.push_back({std::stoll(r[0]), std::stoll(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]});
  return out;
}

Status PortableStore::prune_audit(int64_t before_ms, size_t batch, int64_t* deleted) {
  // Audit rows are written in time order (up to clock steps): only the
  // oldest `batch` rows are looked at, so nothing scans the whole trail
  // when nothing is due.
  return write_one("prune audit",
                   "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT $1) AND time_ms < $2",
                   {std::to_string(batch), std::to_string(before_ms)}, deleted);
}

// --- alerts' reads; visibility (AlertView) is part of every WHERE, so a
// page or a count never holds an alert its reader may not see.

Status PortableStore::get_alert(int64_t id, const AlertView& view, AlertRow* out) {
  SqlParams params;
  Where w(&params);
  w.add("id = " + w.param(std::to_string(id)));
  w.view(view);
  PortableTextRows rows;
  if (Status s = query(std::string("SELECT ") + kAlertColumns + " FROM alerts" + w.sql(), params, &rows); !s)
    return Status::unavailable("store: cannot read alert " + std::to_string(id) + ": " + s.message());
  if (rows.empty()) return Status::not_found("no alert " + std::to_string(id));
  *out = alert_of(rows.front());
  return Status::ok();
}

Status PortableStore::find_open_alert(const std::string& source, const std::string& related_type,
                                      const std::string& related_id, AlertRow* out) {
  PortableTextRows rows;
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

StatusOr<std::vector<AlertRow>> PortableStore::list_alerts(const AlertQuery& q) {
  SqlParams params;
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
  PortableTextRows rows;
  if (Status s = query(sql, params, &rows); !s) return Status::unavailable("store: cannot list alerts: " + s.message());
  std::vector<AlertRow> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(alert_of(r));
  return out;
}

StatusOr<std::vector<AlertRow>> PortableStore::alert_chain(const std::string& source, const std::string& related_type,
                                                           const std::string& related_id, size_t limit) {
  PortableTextRows rows;
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

StatusOr<std::vector<AlertEvent>> PortableStore::alert_events(int64_t alert_id) {
  PortableTextRows rows;
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

StatusOr<std::vector<AlertCount>> PortableStore::alert_counts(const AlertView& view) {
  SqlParams params;
  Where w(&params);
  w.view(view);
  PortableTextRows rows;
  if (Status s = query("SELECT status, severity, source, COUNT(*) FROM alerts" + w.sql() +
                           " GROUP BY status, severity, source ORDER BY status, severity, source",
                       params, &rows);
      !s)
    return Status::unavailable("store: cannot count alerts: " + s.message());
  std::vector<AlertCount> out;
  for (const auto& r : rows) out.push_back({r[0].value_or(""), r[1].value_or(""), r[2].value_or(""), column_int(r[3])});
  return out;
}

StatusOr<std::vector<FailureGroup>> PortableStore::failure_groups(const FailureQuery& q) {
  SqlParams p;
  auto param = [&](const std::string& v) {
    p.emplace_back(v);
    return "$" + std::to_string(p.size());
  };
  std::string where = "phase = 'COMPLETED' AND created_ms >= " + param(std::to_string(q.since_ms)) +
                      " AND ((outcome = 'ERROR' AND cancelled_by = '' AND end_cause = '')";
  if (q.terminated)
    where += " OR end_cause IN ('" + std::string(kEndOperator) + "', '" + kEndTimeout + "', '" + kEndShutdown + "', '" +
             kEndCrash + "', '" + kEndStale + "')";
  where += ")";
  if (!q.after.empty()) {
    std::string marks;
    for (const auto& [key, id] : q.after)
      marks += " WHEN " + param(key) + " THEN CAST(" + param(std::to_string(id)) + " AS BIGINT)";
    where += " AND id > CASE CASE WHEN scheduled_job_id <> '' THEN scheduled_job_id ELSE 'type:' || job_type END" +
             marks + " ELSE 0 END";
  }
  if (!q.except.empty()) {
    std::string in;
    for (int64_t id : q.except) in += (in.empty() ? "" : ", ") + std::to_string(id);
    where += " AND id NOT IN (" + in + ")";
  }
  if (q.seen_from) {
    std::string in;
    for (const auto& n : *q.seen_from) in += (in.empty() ? "" : ", ") + param(n);
    where += " AND " + runs_seen_from_sql(in.empty() ? std::string("''") : in);
  }
  std::vector<TextRow> rows;
  if (Status s = read_text("failed runs by job",
                           "SELECT scheduled_job_id, job_type, COUNT(*), MAX(id) FROM run_rows WHERE " + where +
                               " GROUP BY scheduled_job_id, job_type ORDER BY MAX(id) DESC",
                           p, &rows);
      !s)
    return s;
  std::vector<FailureGroup> out;
  for (auto& r : rows) out.push_back({r[0], r[1], std::stoll(r[2]), std::stoll(r[3])});
  return out;
}

std::string runs_seen_from_sql(const std::string& nodes) {
  // A run of a scheduled job is seen through the job's scope, and through
  // nothing else while the job exists; a run of none (or of a job deleted
  // since) through its target tenant, else through its own scope.
  return "(scheduled_job_id IN (SELECT id FROM scheduled_jobs WHERE scope IN (" + nodes +
         ")) OR (scheduled_job_id NOT IN (SELECT id FROM scheduled_jobs) AND (CASE WHEN target_tenant <> '' THEN "
         "'tenant:' || target_tenant WHEN scope = '' THEN 'platform' ELSE scope END) IN (" +
         nodes + ")))";
}

}  // namespace opk::store::internal
