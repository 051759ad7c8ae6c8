// The alert row's mapping to the portable alerts table, shared by both
// stores (alert_rows.h).
#include "store/alert_rows.h"

#include "store/sqlite_internal.h"

namespace opk::store::internal {

const char* const kAlertColumns =
    "id, source, plugin, type, severity, area, title, message, related_type, related_id, scope, scope_level, "
    "scope_path, platform_only, custom, details_json, status, escalation_level, escalated_rules, first_seen_ms, "
    "last_seen_ms, occurrences, acknowledged_by, acknowledged_ms, closed_by, closed_ms, close_kind, close_reason, "
    "silenced_until_ms, previous_id, flapping, clean_sweeps";

int severity_rank(const std::string& severity) {
  return severity == "critical" ? 2 : severity == "warning" ? 1 : 0;
}

namespace {

std::optional<std::string> opt_text(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}
std::optional<std::string> opt_ms(int64_t v) {
  return v == 0 ? std::nullopt : std::optional<std::string>(std::to_string(v));
}

}  // namespace

std::vector<std::optional<std::string>> alert_params(const AlertRow& a) {
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
          opt_text(a.acknowledged_by),
          opt_ms(a.acknowledged_ms),
          opt_text(a.closed_by),
          opt_ms(a.closed_ms),
          opt_text(a.close_kind),
          opt_text(a.close_reason),
          opt_ms(a.silenced_until_ms),
          opt_ms(a.previous_id),
          a.flapping ? "1" : "0",
          std::to_string(a.clean_sweeps)};
}

AlertRow alert_of(const std::vector<std::optional<std::string>>& r) {
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

std::string Where::param(std::optional<std::string> value) {
  params_->push_back(std::move(value));
  return "$" + std::to_string(params_->size());
}

void Where::view(const AlertView& v) {
  if (v.all) return;
  add("platform_only = 0");
  if (!v.path.empty()) add("substr(scope_path, 1, " + std::to_string(v.path.size()) + ") = " + param(v.path));
  if (!v.exact_scope.empty()) add("scope = " + param(v.exact_scope));
  std::string in;
  for (const auto& l : v.levels) in += (in.empty() ? "" : ", ") + param(l);
  add(in.empty() ? "1 = 0" : "scope_level IN (" + in + ")");
}

std::string Where::sql() const {
  std::string out;
  for (const auto& c : conditions_) out += (out.empty() ? " WHERE " : " AND ") + c;
  return out;
}

}  // namespace opk::store::internal
