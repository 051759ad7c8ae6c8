// feature-flags: the flags in the plugin's tables (flags.h). Portable SQL
// (SQLite and PostgreSQL): $n parameters, BIGINT and TEXT. Every write moves
// the change counter in the same transaction, which is what the kernels
// sharing the store poll.
#include "flags.h"

namespace opk::flags {
namespace {

const char* const kFlagsSchemaV1 =
    "CREATE TABLE p_feature_flags_flags (id TEXT PRIMARY KEY, flag_type TEXT NOT NULL, default_json TEXT NOT NULL, "
    "value_json TEXT, expires_ms BIGINT, description TEXT NOT NULL, owner TEXT NOT NULL, plugin TEXT, "
    "created_by TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_by TEXT NOT NULL, updated_ms BIGINT NOT NULL, "
    "reason TEXT NOT NULL, revision BIGINT NOT NULL);"
    "CREATE TABLE p_feature_flags_changes (id BIGINT PRIMARY KEY, counter BIGINT NOT NULL);"
    "INSERT INTO p_feature_flags_changes (id, counter) VALUES (1, 0)";

const char* const kFlagColumns =
    "id, flag_type, default_json, value_json, expires_ms, description, owner, plugin, created_by, created_ms, "
    "updated_by, updated_ms, reason, revision";

const char* const kBump = "UPDATE p_feature_flags_changes SET counter = counter + 1 WHERE id = 1";

using P = Store::Param;

std::string flag_text(const Json& row, size_t i) {
  return i < row.size() && row[i].is_string() ? row[i].get<std::string>() : std::string();
}

int64_t flag_int(const Json& row, size_t i) {
  if (i >= row.size()) return 0;
  if (row[i].is_number()) return row[i].get<int64_t>();
  if (row[i].is_string()) return std::stoll(row[i].get<std::string>());
  return 0;
}

Status flag_of_row(const Json& row, Flag* f) {
  if (!row.is_array() || row.size() < 14) return Status(OPK_ERR_INTERNAL, "store: a flag row has too few columns");
  f->id = flag_text(row, 0);
  f->type = flag_text(row, 1);
  f->default_value = Json::parse(flag_text(row, 2), nullptr, false);
  f->value = row[3].is_null() ? Json() : Json::parse(flag_text(row, 3), nullptr, false);
  if (f->default_value.is_discarded() || f->value.is_discarded())
    return Status(OPK_ERR_INTERNAL, "store: flag " + f->id + ": a value is not JSON");
  f->expires_ms = flag_int(row, 4);
  f->description = flag_text(row, 5);
  f->owner = flag_text(row, 6);
  f->plugin = flag_text(row, 7);
  f->created_by = flag_text(row, 8);
  f->created_ms = flag_int(row, 9);
  f->updated_by = flag_text(row, 10);
  f->updated_ms = flag_int(row, 11);
  f->reason = flag_text(row, 12);
  f->revision = flag_int(row, 13);
  return Status::ok();
}

P opt_int(int64_t v) {
  return v == 0 ? P() : P(std::to_string(v));
}

}  // namespace

Status migrate_flags(const Host& host) {
  return Store(host).migrate({{1, "flags and the change counter", kFlagsSchemaV1}});
}

Status read_counter(const Host& host, int64_t* counter) {
  Json rows;
  if (Status s = Store(host).query("SELECT counter FROM p_feature_flags_changes WHERE id = 1", {}, &rows); !s) return s;
  if (!rows.is_array() || rows.empty()) return Status(OPK_ERR_INTERNAL, "store: the change counter row is missing");
  *counter = flag_int(rows[0], 0);
  return Status::ok();
}

Status FlagsPlugin::read_all(std::vector<Flag>* out) const {
  Json rows;
  if (Status s = Store(host()).query(std::string("SELECT ") + kFlagColumns + " FROM p_feature_flags_flags ORDER BY id",
                                     {}, &rows);
      !s)
    return s;
  out->clear();
  for (const auto& row : rows) {
    Flag f;
    if (Status s = flag_of_row(row, &f); !s) return s;
    out->push_back(std::move(f));
  }
  return Status::ok();
}

Status FlagsPlugin::read(const std::string& id, Flag* out) const {
  Json rows;
  if (Status s = Store(host()).query(
          std::string("SELECT ") + kFlagColumns + " FROM p_feature_flags_flags WHERE id = $1", {id}, &rows);
      !s)
    return s;
  if (!rows.is_array() || rows.empty()) return Status::not_found("id: no flag '" + id + "'");
  return flag_of_row(rows[0], out);
}

Status FlagsPlugin::insert(const Flag& f) const {
  Json results;
  Status s = Store(host()).transaction(
      {{"INSERT INTO p_feature_flags_flags (id, flag_type, default_json, value_json, expires_ms, description, owner, "
        "plugin, created_by, created_ms, updated_by, updated_ms, reason, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, "
        "$8, $9, $10, $11, $12, $13, 1)",
        {f.id, f.type, f.default_value.dump(), f.value.is_null() ? P() : P(f.value.dump()), opt_int(f.expires_ms),
         f.description, f.owner, f.plugin.empty() ? P() : P(f.plugin), f.created_by, std::to_string(f.created_ms),
         f.updated_by, std::to_string(f.updated_ms), f.reason}},
       {kBump, {}}},
      &results);
  if (s.code() == OPK_ERR_CONFLICT) return Status(OPK_ERR_CONFLICT, "id: flag '" + f.id + "' exists already");
  return s;
}

Status FlagsPlugin::replace(const Flag& before, const Flag& f) const {
  Json results;
  Status s = Store(host()).transaction(
      {{"UPDATE p_feature_flags_flags SET flag_type = $2, default_json = $3, value_json = $4, expires_ms = $5, "
        "description = $6, owner = $7, updated_by = $8, updated_ms = $9, reason = $10, revision = revision + 1 "
        "WHERE id = $1 AND revision = $11",
        {f.id, f.type, f.default_value.dump(), f.value.is_null() ? P() : P(f.value.dump()), opt_int(f.expires_ms),
         f.description, f.owner, f.updated_by, std::to_string(f.updated_ms), f.reason,
         std::to_string(before.revision)}},
       {kBump, {}}},
      &results);
  if (!s) return s;
  if (!results.is_array() || results.empty() || results[0].value("changed", int64_t{0}) != 1)
    return Status(OPK_ERR_CONFLICT, "id: flag '" + f.id + "' changed meanwhile; read it again");
  return Status::ok();
}

Status FlagsPlugin::remove(const Flag& before) const {
  Json results;
  Status s = Store(host()).transaction({{"DELETE FROM p_feature_flags_flags WHERE id = $1 AND revision = $2",
                                         {before.id, std::to_string(before.revision)}},
                                        {kBump, {}}},
                                       &results);
  if (!s) return s;
  if (!results.is_array() || results.empty() || results[0].value("changed", int64_t{0}) != 1)
    return Status(OPK_ERR_CONFLICT, "id: flag '" + before.id + "' changed meanwhile; read it again");
  return Status::ok();
}

}  // namespace opk::flags
