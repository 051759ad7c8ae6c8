// maintenance-mode: the windows in the plugin's tables (maintenance.h).
// Portable SQL (SQLite and PostgreSQL): $n parameters, BIGINT and TEXT.
// Every write lookups depend on moves the change counter in the same
// transaction, which is what the kernels sharing the store poll. Pruning
// ended windows leaves the counter: they are in no snapshot.
#include "maintenance.h"

namespace opk::mnt {
namespace {

const char* const kWindowsSchemaV1 =
    "CREATE TABLE p_maintenance_mode_windows (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, mode TEXT NOT NULL, "
    "banner TEXT NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL, created_ms BIGINT NOT NULL, "
    "starts_ms BIGINT NOT NULL, ends_ms BIGINT NOT NULL, ended_by TEXT, ended_ms BIGINT, ended_reason TEXT);"
    "CREATE INDEX p_maintenance_mode_windows_live ON p_maintenance_mode_windows (ended_ms, ends_ms);"
    "CREATE TABLE p_maintenance_mode_changes (id BIGINT PRIMARY KEY, counter BIGINT NOT NULL);"
    "INSERT INTO p_maintenance_mode_changes (id, counter) VALUES (1, 0)";

const char* const kWindowColumns =
    "id, tenant, mode, banner, reason, created_by, created_ms, starts_ms, ends_ms, ended_by, ended_ms, ended_reason";

const char* const kWindowBump = "UPDATE p_maintenance_mode_changes SET counter = counter + 1 WHERE id = 1";

std::string mnt_text(const Json& row, size_t i) {
  return i < row.size() && row[i].is_string() ? row[i].get<std::string>() : std::string();
}

int64_t mnt_int(const Json& row, size_t i) {
  if (i >= row.size()) return 0;
  if (row[i].is_number()) return row[i].get<int64_t>();
  if (row[i].is_string()) return std::stoll(row[i].get<std::string>());
  return 0;
}

Status window_of_row(const Json& row, Window* w) {
  if (!row.is_array() || row.size() < 12) return Status(OPK_ERR_INTERNAL, "store: a window row has too few columns");
  w->id = mnt_text(row, 0);
  w->tenant = mnt_text(row, 1);
  w->mode = mnt_text(row, 2);
  w->banner = mnt_text(row, 3);
  w->reason = mnt_text(row, 4);
  w->created_by = mnt_text(row, 5);
  w->created_ms = mnt_int(row, 6);
  w->starts_ms = mnt_int(row, 7);
  w->ends_ms = mnt_int(row, 8);
  w->ended_by = mnt_text(row, 9);
  w->ended_ms = mnt_int(row, 10);
  w->ended_reason = mnt_text(row, 11);
  return Status::ok();
}

Status windows_of_rows(const Json& rows, std::vector<Window>* out) {
  out->clear();
  for (const auto& row : rows) {
    Window w;
    if (Status s = window_of_row(row, &w); !s) return s;
    out->push_back(std::move(w));
  }
  return Status::ok();
}

}  // namespace

Status migrate_windows(const Host& host) {
  return Store(host).migrate({{1, "maintenance windows and the change counter", kWindowsSchemaV1}});
}

Status read_window_counter(const Host& host, int64_t* counter) {
  Json rows;
  if (Status s = Store(host).query("SELECT counter FROM p_maintenance_mode_changes WHERE id = 1", {}, &rows); !s)
    return s;
  if (!rows.is_array() || rows.empty()) return Status(OPK_ERR_INTERNAL, "store: the change counter row is missing");
  *counter = mnt_int(rows[0], 0);
  return Status::ok();
}

Status MaintenancePlugin::read_all(bool live_only, int64_t now_ms, std::vector<Window>* out) const {
  Json rows;
  const std::string select = std::string("SELECT ") + kWindowColumns + " FROM p_maintenance_mode_windows";
  Status s = live_only ? Store(host()).query(select +
                                                 " WHERE ended_ms IS NULL AND (ends_ms = 0 OR ends_ms > $1) "
                                                 "ORDER BY starts_ms DESC, id",
                                             {std::to_string(now_ms)}, &rows)
                       : Store(host()).query(select + " ORDER BY starts_ms DESC, id", {}, &rows);
  if (!s) return s;
  return windows_of_rows(rows, out);
}

Status MaintenancePlugin::read(const std::string& id, Window* out) const {
  Json rows;
  if (Status s = Store(host()).query(
          std::string("SELECT ") + kWindowColumns + " FROM p_maintenance_mode_windows WHERE id = $1", {id}, &rows);
      !s)
    return s;
  if (!rows.is_array() || rows.empty()) return Status::not_found("id: no maintenance window '" + id + "'");
  return window_of_row(rows[0], out);
}

Status MaintenancePlugin::insert(const Window& w) const {
  Json results;
  Status s = Store(host()).transaction(
      {{"INSERT INTO p_maintenance_mode_windows (id, tenant, mode, banner, reason, created_by, created_ms, "
        "starts_ms, ends_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        {w.id, w.tenant, w.mode, w.banner, w.reason, w.created_by, std::to_string(w.created_ms),
         std::to_string(w.starts_ms), std::to_string(w.ends_ms)}},
       {kWindowBump, {}}},
      &results);
  if (s.code() == OPK_ERR_CONFLICT) return Status(OPK_ERR_CONFLICT, "id: window '" + w.id + "' exists already");
  return s;
}

Status MaintenancePlugin::mark_ended(const Window& w) const {
  Json results;
  Status s = Store(host()).transaction(
      {{"UPDATE p_maintenance_mode_windows SET ended_by = $2, ended_ms = $3, ended_reason = $4 "
        "WHERE id = $1 AND ended_ms IS NULL",
        {w.id, w.ended_by, std::to_string(w.ended_ms), w.ended_reason}},
       {kWindowBump, {}}},
      &results);
  if (!s) return s;
  if (!results.is_array() || results.empty() || results[0].value("changed", int64_t{0}) != 1)
    return Status(OPK_ERR_CONFLICT, "id: window '" + w.id + "' was ended meanwhile");
  return Status::ok();
}

Status MaintenancePlugin::prune(int64_t before_ms, int64_t* pruned) const {
  Json results;
  const std::string before = std::to_string(before_ms);
  Status s = Store(host()).transaction(
      {{"DELETE FROM p_maintenance_mode_windows WHERE (ended_ms IS NOT NULL AND ended_ms < $1) OR "
        "(ends_ms <> 0 AND ends_ms < $1)",
        {before}}},
      &results);
  if (!s) return s;
  *pruned = results.is_array() && !results.empty() ? results[0].value("changed", int64_t{0}) : 0;
  return Status::ok();
}

}  // namespace opk::mnt
