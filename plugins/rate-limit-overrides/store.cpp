// rate-limit-overrides: the overrides in the plugin's tables (overrides.h).
// Portable SQL (SQLite and PostgreSQL): $n parameters, BIGINT and TEXT.
// Every write lookups depend on moves the change counter in the same
// transaction, which is what the kernels sharing the store poll. Pruning
// ended overrides leaves the counter: they are in no snapshot.
#include "overrides.h"

namespace opk::rlo {
namespace {

const char* const kOverridesSchemaV1 =
    "CREATE TABLE p_rate_limit_overrides_rows (id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, "
    "per_minute BIGINT NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL, created_ms BIGINT NOT NULL, "
    "expires_ms BIGINT NOT NULL, removed_by TEXT, removed_ms BIGINT, removed_reason TEXT);"
    "CREATE INDEX p_rate_limit_overrides_rows_live ON p_rate_limit_overrides_rows (removed_ms, expires_ms);"
    "CREATE TABLE p_rate_limit_overrides_changes (id BIGINT PRIMARY KEY, counter BIGINT NOT NULL);"
    "INSERT INTO p_rate_limit_overrides_changes (id, counter) VALUES (1, 0)";

const char* const kOverrideColumns =
    "id, kind, target, per_minute, reason, created_by, created_ms, expires_ms, removed_by, removed_ms, removed_reason";

const char* const kOverrideBump = "UPDATE p_rate_limit_overrides_changes SET counter = counter + 1 WHERE id = 1";

std::string rlo_text(const Json& row, size_t i) {
  return i < row.size() && row[i].is_string() ? row[i].get<std::string>() : std::string();
}

int64_t rlo_int(const Json& row, size_t i) {
  if (i >= row.size()) return 0;
  if (row[i].is_number()) return row[i].get<int64_t>();
  if (row[i].is_string()) return std::stoll(row[i].get<std::string>());
  return 0;
}

Status override_of_row(const Json& row, Override* o) {
  if (!row.is_array() || row.size() < 11) return Status(OPK_ERR_INTERNAL, "store: an override row has too few columns");
  o->id = rlo_text(row, 0);
  o->kind = rlo_text(row, 1);
  o->target = rlo_text(row, 2);
  o->per_minute = rlo_int(row, 3);
  o->reason = rlo_text(row, 4);
  o->created_by = rlo_text(row, 5);
  o->created_ms = rlo_int(row, 6);
  o->expires_ms = rlo_int(row, 7);
  o->removed_by = rlo_text(row, 8);
  o->removed_ms = rlo_int(row, 9);
  o->removed_reason = rlo_text(row, 10);
  return Status::ok();
}

Status overrides_of_rows(const Json& rows, std::vector<Override>* out) {
  out->clear();
  for (const auto& row : rows) {
    Override o;
    if (Status s = override_of_row(row, &o); !s) return s;
    out->push_back(std::move(o));
  }
  return Status::ok();
}

}  // namespace

Status migrate_overrides(const Host& host) {
  return Store(host).migrate({{1, "overrides and the change counter", kOverridesSchemaV1}});
}

Status read_override_counter(const Host& host, int64_t* counter) {
  Json rows;
  if (Status s = Store(host).query("SELECT counter FROM p_rate_limit_overrides_changes WHERE id = 1", {}, &rows); !s)
    return s;
  if (!rows.is_array() || rows.empty()) return Status(OPK_ERR_INTERNAL, "store: the change counter row is missing");
  *counter = rlo_int(rows[0], 0);
  return Status::ok();
}

Status OverridesPlugin::read_all(bool live_only, int64_t now_ms, std::vector<Override>* out) const {
  Json rows;
  const std::string select = std::string("SELECT ") + kOverrideColumns + " FROM p_rate_limit_overrides_rows";
  Status s = live_only ? Store(host()).query(select +
                                                 " WHERE removed_ms IS NULL AND expires_ms > $1 "
                                                 "ORDER BY created_ms DESC, id",
                                             {std::to_string(now_ms)}, &rows)
                       : Store(host()).query(select + " ORDER BY created_ms DESC, id", {}, &rows);
  if (!s) return s;
  return overrides_of_rows(rows, out);
}

Status OverridesPlugin::read(const std::string& id, Override* out) const {
  Json rows;
  if (Status s = Store(host()).query(
          std::string("SELECT ") + kOverrideColumns + " FROM p_rate_limit_overrides_rows WHERE id = $1", {id}, &rows);
      !s)
    return s;
  if (!rows.is_array() || rows.empty()) return Status::not_found("id: no rate-limit override '" + id + "'");
  return override_of_row(rows[0], out);
}

Status OverridesPlugin::insert(const Override& o) const {
  Json results;
  Status s = Store(host()).transaction(
      {{"INSERT INTO p_rate_limit_overrides_rows (id, kind, target, per_minute, reason, created_by, created_ms, "
        "expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        {o.id, o.kind, o.target, std::to_string(o.per_minute), o.reason, o.created_by, std::to_string(o.created_ms),
         std::to_string(o.expires_ms)}},
       {kOverrideBump, {}}},
      &results);
  if (s.code() == OPK_ERR_CONFLICT) return Status(OPK_ERR_CONFLICT, "id: override '" + o.id + "' exists already");
  return s;
}

Status OverridesPlugin::mark_removed(const Override& o) const {
  Json results;
  Status s = Store(host()).transaction(
      {{"UPDATE p_rate_limit_overrides_rows SET removed_by = $2, removed_ms = $3, removed_reason = $4 "
        "WHERE id = $1 AND removed_ms IS NULL",
        {o.id, o.removed_by, std::to_string(o.removed_ms), o.removed_reason}},
       {kOverrideBump, {}}},
      &results);
  if (!s) return s;
  if (!results.is_array() || results.empty() || results[0].value("changed", int64_t{0}) != 1)
    return Status(OPK_ERR_CONFLICT, "id: override '" + o.id + "' was removed meanwhile");
  return Status::ok();
}

Status OverridesPlugin::prune(int64_t before_ms, int64_t* pruned) const {
  Json results;
  const std::string before = std::to_string(before_ms);
  Status s = Store(host()).transaction(
      {{"DELETE FROM p_rate_limit_overrides_rows WHERE (removed_ms IS NOT NULL AND removed_ms < $1) OR "
        "expires_ms < $1",
        {before}}},
      &results);
  if (!s) return s;
  *pruned = results.is_array() && !results.empty() ? results[0].value("changed", int64_t{0}) : 0;
  return Status::ok();
}

}  // namespace opk::rlo
