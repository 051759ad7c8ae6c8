// Lists, imports and probes over the records' tables.
#include "service.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "schema.h"

namespace opk::records {
namespace {

const char* const kUrlSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(const std::string& in) {
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kUrlSafe[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += kUrlSafe[(buf << (6 - bits)) & 63];
  return out;
}

bool unbase64url(const std::string& in, std::string* out) {
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::strchr(kUrlSafe, c);
    if (c == '\0' || p == nullptr) return false;
    buf = (buf << 6) | static_cast<uint32_t>(p - kUrlSafe);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((buf >> bits) & 0xff));
    }
  }
  return true;
}

std::string platform_only(const Kind& kind) {
  return "records of kind " + kind.name + " concern the whole platform: only platform administrators see them";
}

// The references of imported rows: the hierarchy through the kernel, the
// stored subscriptions and regions they name.
class ImportWorld : public World {
 public:
  ImportWorld(std::function<bool(const std::string&)> visible,
              std::function<bool(const std::string&, const std::string&)> contains)
      : visible_(std::move(visible)), contains_(std::move(contains)) {}
  bool visible_node(const std::string& node) const override { return visible_(node); }
  bool contains(const std::string& scope, const std::string& node) const override { return contains_(scope, node); }
  std::optional<std::string> subscription_tenant(const std::string& id) const override {
    auto it = subscriptions.find(id);
    if (it == subscriptions.end()) return std::nullopt;
    return it->second;
  }
  bool region_exists(const std::string& id) const override { return regions.count(id) > 0; }

  std::map<std::string, std::string> subscriptions;  // id -> tenant
  std::set<std::string> regions;

 private:
  std::function<bool(const std::string&)> visible_;
  std::function<bool(const std::string&, const std::string&)> contains_;
};

// The distinct string values of `field` among `rows`, as one-field keys.
std::vector<Json> referenced(const std::vector<Json>& rows, const std::string& field) {
  std::set<std::string> seen;
  std::vector<Json> keys;
  for (const auto& row : rows) {
    if (!row.is_object()) continue;
    auto it = row.find(field);
    if (it != row.end() && it->is_string() && seen.insert(it->get<std::string>()).second)
      keys.push_back(Json::array({*it}));
  }
  return keys;
}

void finish(std::vector<Problem>& problems, ImportResult* result) {
  std::stable_sort(problems.begin(), problems.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
  result->problem_count = static_cast<int64_t>(problems.size());
  if (problems.size() > kMaxProblems) problems.resize(kMaxProblems);
  result->problems = std::move(problems);
}

}  // namespace

Json ImportResult::problems_json() const {
  Json list = Json::array();
  for (const auto& p : problems) list.push_back({{"line", p.line}, {"field", p.field}, {"problem", p.problem}});
  return {{"problems", list}, {"problem_count", problem_count}};
}

std::string encode_cursor(const Json& key) {
  return base64url(key.dump());
}

Status decode_cursor(const Kind& kind, const std::string& cursor, Json* key) {
  std::string text;
  const auto bad =
      Status::invalid("cursor: not a cursor of a list of " + kind.name + " (pass the previous page's next)");
  if (!unbase64url(cursor, &text)) return bad;
  Json k = Json::parse(text, nullptr, false);
  if (!k.is_array() || k.size() != kind.key.size()) return bad;
  for (const auto& v : k)
    if (!v.is_string() && !v.is_number()) return bad;
  *key = std::move(k);
  return Status::ok();
}

Service::Service(const Host& host)
    : host_(host), store_(host_), identity_(host_.extension<opk_identity_v1>(OPK_EXT_IDENTITY)) {}

Status Service::migrate() const {
  return records::migrate(store_);
}

bool Service::node_exists(const std::string& node) const {
  if (identity_ == nullptr) return false;
  if (detail::has(identity_, &opk_identity_v1::node_exists) && identity_->node_exists)
    return identity_->node_exists(host_.raw(), node.c_str()) != 0;
  // Kernels before ABI 1.3 cannot say whether a node exists; a node is then
  // taken to exist and is checked only through `contains`.
  return true;
}

bool Service::contains(const std::string& scope, const std::string& node) const {
  return identity_ != nullptr && identity_->contains && identity_->contains(host_.raw(), scope.c_str(), node.c_str());
}

Status Service::list(const Kind& kind, const Caller& caller, const ListRequest& request, Json* answer) const {
  if (kind.reach == Reach::kPlatform && !caller.platform()) return Status::permission(platform_only(kind));
  if (request.limit < 1 || request.limit > kMaxLimit)
    return Status::invalid("limit: must be 1.." + std::to_string(kMaxLimit) + ", got " + std::to_string(request.limit));
  if (!request.filter.is_object()) return Status::invalid("filter: expected an object of field: value");
  Json filter = Json::object();
  for (const auto& [name, value] : request.filter.items()) {
    const Field* field = kind.field(name);
    if (field == nullptr) return Status::invalid(name + ": not a field of " + kind.name + " to filter on");
    if (value.is_null() || (value.is_string() && value.get<std::string>().empty())) {
      filter[name] = nullptr;
      continue;
    }
    Json typed;
    if (Status s = check_value(*field, value, true, &typed); !s) return s;
    filter[name] = typed;
  }
  Json after;
  if (!request.cursor.empty())
    if (Status s = decode_cursor(kind, request.cursor, &after); !s) return s;

  Json rows = Json::array();
  Json next;
  if (caller.platform() || caller.scope.rfind("tenant:", 0) == 0) {
    // Everything, or one tenant's rows: the store filters.
    Page page;
    const std::string tenant = caller.platform() ? std::string() : caller.scope;
    if (Status s = select_rows(store_, kind, filter, after, request.limit, tenant, &page); !s) return s;
    rows = std::move(page.rows);
    if (!page.last_key.is_null()) next = encode_cursor(page.last_key);
  } else {
    // A subtree: rows are read in key order and kept when their node lies
    // in it; a page stops after reading ten pages' worth, with a cursor.
    const int64_t budget = 10 * static_cast<int64_t>(request.limit) + 1000;
    int64_t scanned = 0;
    for (;;) {
      Page page;
      if (Status s = select_rows(store_, kind, filter, after, request.limit, "", &page); !s) return s;
      for (size_t i = 0; i < page.rows.size(); ++i) {
        const Json& row = page.rows[i];
        ++scanned;
        after = key_of(kind, row);
        if (!contains(caller.scope, kind.node_of(row))) continue;
        rows.push_back(row);
        if (static_cast<int>(rows.size()) == request.limit) {
          const bool more = i + 1 < page.rows.size() || !page.last_key.is_null();
          if (more) next = encode_cursor(after);
          break;
        }
      }
      if (static_cast<int>(rows.size()) == request.limit || page.last_key.is_null()) break;
      after = page.last_key;
      if (scanned >= budget) {
        next = encode_cursor(after);
        break;
      }
    }
  }
  *answer = {{"rows", std::move(rows)}, {"next", next}};
  return Status::ok();
}

Status Service::all(const Kind& kind, const Caller& caller, const ListRequest& filter, Json* rows) const {
  *rows = Json::array();
  ListRequest request;
  request.filter = filter.filter;
  request.limit = kMaxLimit;
  for (;;) {
    Json page;
    if (Status s = list(kind, caller, request, &page); !s) return s;
    for (auto& row : page["rows"]) rows->push_back(std::move(row));
    if (!page["next"].is_string()) return Status::ok();
    request.cursor = page["next"].get<std::string>();
  }
}

Status Service::import(const Kind& kind, const Caller& caller, std::string_view format, std::string_view text,
                       bool write, ImportResult* result) const {
  if (kind.reach == Reach::kPlatform && !caller.platform()) return Status::permission(platform_only(kind));
  std::vector<Problem> problems;
  const Input in = read_rows(kind, format, text, &problems);
  if (!problems.empty()) {
    finish(problems, result);
    return Status::ok();
  }

  // What the rows refer to, read once.
  auto visible = [&](const std::string& node) {
    return node_exists(node) && (caller.platform() || contains(caller.scope, node));
  };
  ImportWorld world(visible, [&](const std::string& s, const std::string& n) { return contains(s, n); });
  if (kind.field("subscription") != nullptr && kind.name != "subscriptions") {
    std::map<std::string, Json> subs;
    if (Status s = load_keys(store_, *find_kind("subscriptions"), referenced(in.rows, "subscription"), &subs); !s)
      return s;
    for (const auto& [k, row] : subs)
      world.subscriptions[row["id"].get<std::string>()] = row["tenant"].get<std::string>();
  }
  if (kind.field("region") != nullptr) {
    std::map<std::string, Json> regions;
    if (Status s = load_keys(store_, *find_kind("regions"), referenced(in.rows, "region"), &regions); !s) return s;
    for (const auto& [k, row] : regions) world.regions.insert(row["id"].get<std::string>());
  }

  std::vector<Json> rows;
  std::vector<int64_t> lines;
  std::map<std::string, int64_t> line_of_key;
  for (size_t i = 0; i < in.rows.size(); ++i) {
    Json row = check_row(kind, in.rows[i], in.from_text, in.lines[i], &world, &problems);
    if (row.is_null()) continue;
    const std::string key = key_of(kind, row).dump();
    if (auto [it, fresh] = line_of_key.emplace(key, in.lines[i]); !fresh) {
      problems.push_back({in.lines[i], kind.key.front(),
                          "the same " + std::string(kind.key.size() > 1 ? "key " : "") + key + " as line " +
                              std::to_string(it->second)});
      continue;
    }
    rows.push_back(std::move(row));
    lines.push_back(in.lines[i]);
  }
  if (!problems.empty()) {
    finish(problems, result);
    return Status::ok();
  }

  // The stored rows these keys may match: the whole table when the import
  // is a good part of it (one read), else only these keys (a month of usage
  // is compared with that month's rows, not with every month's).
  std::map<std::string, Json> stored;
  int64_t count = 0;
  if (Status s = count_rows(store_, kind, &count); !s) return s;
  if (static_cast<int64_t>(rows.size()) * 4 >= count) {
    if (Status s = load_all(store_, kind, &stored); !s) return s;
  } else {
    std::vector<Json> keys;
    for (const auto& row : rows) keys.push_back(key_of(kind, row));
    if (Status s = load_keys(store_, kind, keys, &stored); !s) return s;
  }
  std::vector<Json> changed;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto it = stored.find(key_of(kind, rows[i]).dump());
    if (it == stored.end()) {
      ++result->inserted;
      changed.push_back(rows[i]);
    } else if (!caller.platform() && !contains(caller.scope, kind.node_of(it->second))) {
      problems.push_back({lines[i], kind.key.front(), "the key " + it->first + " is a record outside your scope"});
    } else if (it->second == rows[i]) {
      ++result->unchanged;
    } else {
      ++result->updated;
      changed.push_back(rows[i]);
    }
  }
  if (!problems.empty()) {
    *result = ImportResult();
    finish(problems, result);
    return Status::ok();
  }
  if (!write || changed.empty()) return Status::ok();
  Json results;
  return store_.transaction(upserts(kind, changed), &results);
}

Status Service::upsert(const Kind& kind, const Json& rows, Json* answer) const {
  ImportResult result;
  if (Status s = import(kind, Caller::system(), "json", rows.dump(), true, &result); !s) return s;
  if (result.refused()) {
    // A JSON array's element i is line i + 1.
    const Problem& p = result.problems.front();
    std::string at = p.line > 0 ? "rows[" + std::to_string(p.line - 1) + "]" : std::string("rows");
    if (!p.field.empty()) at += "." + p.field;
    std::string message = at + ": " + p.problem;
    if (result.problem_count > 1)
      message += " (and " + std::to_string(result.problem_count - 1) + " more problems; nothing was written)";
    else
      message += " (nothing was written)";
    return Status::invalid(message);
  }
  *answer = result.counts();
  return Status::ok();
}

Status Service::latest_probes(const std::string& kind, Json* rows) const {
  std::string sql =
      "SELECT p.region, p.kind, p.time_ms, p.ok, p.latency_ms, p.detail FROM p_platform_records_probes p JOIN (SELECT "
      "region, kind, MAX(time_ms) AS newest FROM p_platform_records_probes";
  std::vector<Store::Param> params;
  if (!kind.empty()) {
    if (kind != "api" && kind != "identity")
      return Status::invalid("kind: expected api or identity, got '" + kind + "'");
    sql += " WHERE kind = $1";
    params.push_back(kind);
  }
  sql +=
      " GROUP BY region, kind) m ON p.region = m.region AND p.kind = m.kind AND p.time_ms = m.newest ORDER BY "
      "p.region, p.kind";
  Json values;
  if (Status s = store_.query(sql, params, &values); !s) return s;
  *rows = Json::array();
  for (const auto& v : values)
    rows->push_back({{"region", v[0]},
                     {"kind", v[1]},
                     {"time_ms", v[2]},
                     {"ok", v[3].is_number() && v[3].get<int64_t>() != 0},
                     {"latency_ms", v[4]},
                     {"detail", v[5]}});
  return Status::ok();
}

Status Service::record_probe(const Json& probe, int64_t retention_ms) const {
  return store_probes(Json::array({probe}), retention_ms, false);
}

Status Service::record_probes(const Json& probes, int64_t retention_ms) const {
  return store_probes(probes, retention_ms, true);
}

Status Service::store_probes(const Json& probes, int64_t retention_ms, bool batch) const {
  const Kind& kind = *find_kind("probes");
  ImportWorld world([](const std::string&) { return true; },
                    [](const std::string&, const std::string&) { return true; });
  std::vector<Json> keys;
  for (const auto& probe : probes)
    if (probe.is_object() && probe.contains("region") && probe["region"].is_string())
      keys.push_back(Json::array({probe["region"]}));
  std::map<std::string, Json> regions;
  if (Status s = load_keys(store_, *find_kind("regions"), keys, &regions); !s) return s;
  for (const auto& [key, row] : regions) world.regions.insert(row.value("id", ""));
  std::vector<Json> rows;
  std::map<std::pair<std::string, std::string>, int64_t> newest;  // (region, kind) -> newest time_ms
  for (size_t i = 0; i < probes.size(); ++i) {
    const Json& probe = probes[i];
    std::vector<Problem> problems;
    Json row = check_row(kind, probe, false, 0, &world, &problems);
    if (!problems.empty()) {
      const Problem& p = problems.front();
      const std::string at = batch ? "probes[" + std::to_string(i) + "]" : std::string();
      const std::string message =
          (p.field.empty() ? (batch ? at : std::string("probe")) : (batch ? at + "." : "") + p.field) + ": " +
          p.problem;
      return p.field == "region" && probe["region"].is_string() ? Status::not_found(message) : Status::invalid(message);
    }
    int64_t& n = newest[{row["region"].get<std::string>(), row["kind"].get<std::string>()}];
    n = std::max(n, row["time_ms"].get<int64_t>());
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return Status::ok();
  std::vector<Store::Statement> statements = upserts(kind, rows);
  for (const auto& [key, time_ms] : newest)
    statements.push_back({"DELETE FROM p_platform_records_probes WHERE region = $1 AND kind = $2 AND time_ms < $3",
                          {key.first, key.second, std::to_string(time_ms - retention_ms)}});
  Json results;
  return store_.transaction(statements, &results);
}

Status Service::usage_months(const std::string& before, Json* months) const {
  Json values;
  if (Status s = store_.query(
          "SELECT month, COUNT(*) FROM p_platform_records_usage WHERE month < $1 GROUP BY month ORDER BY month",
          {before}, &values);
      !s)
    return s;
  *months = Json::array();
  for (const auto& v : values) months->push_back({{"month", v[0]}, {"rows", v[1]}});
  return Status::ok();
}

Status Service::delete_usage(const std::string& before, int limit, Json* answer) const {
  // The batch's keys and their deletion in one statement (row values and
  // RETURNING, which SQLite and PostgreSQL both have), so the batch is
  // one transaction.
  Json results;
  if (Status s = store_.transaction(
          {{"DELETE FROM p_platform_records_usage WHERE (subscription, month) IN (SELECT subscription, month FROM "
            "p_platform_records_usage WHERE month < $1 ORDER BY month, subscription LIMIT CAST($2 AS INTEGER)) "
            "RETURNING month",
            {before, std::to_string(limit)}}},
          &results);
      !s)
    return s;
  std::map<std::string, int64_t> per_month;
  int64_t deleted = 0;
  for (const auto& row : results.at(0).value("rows", Json::array())) {
    ++per_month[row.at(0).get<std::string>()];
    ++deleted;
  }
  Json months = Json::array();
  for (const auto& [month, rows] : per_month) months.push_back({{"month", month}, {"rows", rows}});
  *answer = {{"deleted", deleted}, {"months", std::move(months)}};
  return Status::ok();
}

Status Service::mark_overdue(const std::string& as_of, int limit, const std::string& tenant, bool dry_run,
                             Json* answer) const {
  const Kind& kind = *find_kind("invoices");
  std::string cols;
  for (const auto& f : kind.fields) cols += (cols.empty() ? "" : ", ") + f.name;
  // A due date the store compares as a date: YYYY-MM-DD, digits where
  // digits go (portable: SUBSTR and LENGTH are in SQLite and PostgreSQL).
  std::string date_shape = "LENGTH(due_date) = 10 AND SUBSTR(due_date, 5, 1) = '-' AND SUBSTR(due_date, 8, 1) = '-'";
  for (int i : {1, 2, 3, 4, 6, 7, 9, 10})
    date_shape += " AND SUBSTR(due_date, " + std::to_string(i) + ", 1) BETWEEN '0' AND '9'";
  date_shape += " AND SUBSTR(due_date, 6, 2) BETWEEN '01' AND '12' AND SUBSTR(due_date, 9, 2) BETWEEN '01' AND '31'";
  std::vector<Store::Param> params = {as_of, std::to_string(limit)};
  std::string of_tenant;
  if (!tenant.empty()) {
    params.push_back(tenant);
    of_tenant = " AND tenant = $3";
  }
  // The oldest due first, by the index (status, due_date).
  const std::string due = "status = 'open' AND due_date < $1 AND " + date_shape + of_tenant;
  auto typed = [&](const Json& values) {
    Json row = Json::object();
    for (size_t i = 0; i < kind.fields.size() && i < values.size(); ++i) {
      const Json& v = values[i];
      if (kind.fields[i].type == Type::kNumber && v.is_string())
        row[kind.fields[i].name] = std::strtod(v.get<std::string>().c_str(), nullptr);
      else if (kind.fields[i].type == Type::kNumber && v.is_number())
        row[kind.fields[i].name] = v.get<double>();
      else
        row[kind.fields[i].name] = v;
    }
    return row;
  };
  Json invoices = Json::array();
  int64_t count = -1;
  if (dry_run) {
    Json rows, counted;
    if (Status s = store_.query("SELECT " + cols + " FROM " + kind.table + " WHERE " + due +
                                    " ORDER BY due_date, id LIMIT CAST($2 AS INTEGER)",
                                params, &rows);
        !s)
      return s;
    std::vector<Store::Param> count_params = params;
    count_params.erase(count_params.begin() + 1);
    std::string count_where = due;
    if (!tenant.empty()) count_where = "status = 'open' AND due_date < $1 AND " + date_shape + " AND tenant = $2";
    if (Status s = store_.query("SELECT COUNT(*) FROM " + kind.table + " WHERE " + count_where, count_params, &counted);
        !s)
      return s;
    for (const auto& r : rows) invoices.push_back(typed(r));
    count = counted.empty() ? 0 : counted[0][0].get<int64_t>();
  } else {
    // The batch's ids and their update in one statement (RETURNING, which
    // SQLite and PostgreSQL both have), so the batch is one transaction.
    // status = 'open' again outside: a concurrent writer's batch that took
    // a row first leaves it out of this one (PostgreSQL re-checks the
    // condition on the row it waited for). Written as a CASE so that no
    // index serves it: the rows are found by their ids (the primary key),
    // not by a scan of every open invoice per batch.
    Json results;
    if (Status s = store_.transaction(
            {{"UPDATE " + kind.table +
                  " SET status = 'overdue' WHERE (CASE WHEN status = 'open' THEN 1 ELSE 0 END) = 1 AND id IN (SELECT "
                  "id FROM " +
                  kind.table + " WHERE " + due + " ORDER BY due_date, id LIMIT CAST($2 AS INTEGER)) RETURNING " + cols,
              params}},
            &results);
        !s)
      return s;
    for (const auto& r : results.at(0).value("rows", Json::array())) invoices.push_back(typed(r));
    std::sort(invoices.begin(), invoices.end(), [](const Json& a, const Json& b) {
      return std::make_pair(a.value("due_date", ""), a.value("id", "")) <
             std::make_pair(b.value("due_date", ""), b.value("id", ""));
    });
  }
  // Open invoices whose due date is not a date: never marked, named so the
  // caller can report them. Looked for when the batch is the last (fewer
  // rows than the limit), so a run pays for it once.
  Json skipped = Json::array();
  if (static_cast<int64_t>(invoices.size()) < limit) {
    std::vector<Store::Param> bad_params;
    std::string where = "status = 'open' AND NOT (" + date_shape + ")";
    if (!tenant.empty()) {
      bad_params.push_back(tenant);
      where += " AND tenant = $1";
    }
    Json rows;
    if (Status s = store_.query("SELECT id, tenant, due_date FROM " + kind.table + " WHERE " + where +
                                    " ORDER BY id LIMIT " + std::to_string(kMaxProblems),
                                bad_params, &rows);
        !s)
      return s;
    for (const auto& r : rows) skipped.push_back({{"id", r.at(0)}, {"tenant", r.at(1)}, {"due_date", r.at(2)}});
  }
  *answer = {{"invoices", std::move(invoices)}, {"skipped", std::move(skipped)}};
  if (dry_run) (*answer)["count"] = count;
  return Status::ok();
}

}  // namespace opk::records
