// The tables, in SQL that SQLite and PostgreSQL both run.
#include "schema.h"

#include <algorithm>
#include <map>

namespace opk::records {
namespace {

// Version 1: every kind's table, keyed as the kind is, with the indexes the
// lists and the alert sources filter on.
const char* const kSchemaV1 =
    "CREATE TABLE p_platform_records_subscriptions (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, product TEXT NOT "
    "NULL, status TEXT NOT NULL, period_start TEXT NOT NULL, period_end TEXT);"
    "CREATE INDEX p_platform_records_subscriptions_tenant ON p_platform_records_subscriptions (tenant, id);"
    "CREATE INDEX p_platform_records_subscriptions_status ON p_platform_records_subscriptions (status, id);"
    "CREATE INDEX p_platform_records_subscriptions_product ON p_platform_records_subscriptions (product, id);"
    "CREATE TABLE p_platform_records_usage (subscription TEXT NOT NULL, month TEXT NOT NULL, quantity DOUBLE "
    "PRECISION NOT NULL, cost DOUBLE PRECISION NOT NULL, PRIMARY KEY (subscription, month));"
    "CREATE INDEX p_platform_records_usage_month ON p_platform_records_usage (month, subscription);"
    "CREATE TABLE p_platform_records_billing (tenant TEXT PRIMARY KEY, contact TEXT NOT NULL, email TEXT NOT NULL, "
    "address TEXT, payment_method TEXT);"
    "CREATE TABLE p_platform_records_invoices (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, subscription TEXT, amount "
    "DOUBLE PRECISION NOT NULL, currency TEXT NOT NULL, due_date TEXT NOT NULL, status TEXT NOT NULL);"
    "CREATE INDEX p_platform_records_invoices_tenant ON p_platform_records_invoices (tenant, id);"
    "CREATE INDEX p_platform_records_invoices_status ON p_platform_records_invoices (status, due_date);"
    "CREATE INDEX p_platform_records_invoices_subscription ON p_platform_records_invoices (subscription);"
    "CREATE TABLE p_platform_records_budgets (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, subscription TEXT, amount "
    "DOUBLE PRECISION NOT NULL, warning_percent BIGINT NOT NULL, month_on_month_jump_percent DOUBLE PRECISION);"
    "CREATE INDEX p_platform_records_budgets_tenant ON p_platform_records_budgets (tenant, id);"
    "CREATE INDEX p_platform_records_budgets_subscription ON p_platform_records_budgets (subscription);"
    "CREATE TABLE p_platform_records_licenses (id TEXT PRIMARY KEY, product TEXT NOT NULL, expires_on TEXT NOT NULL, "
    "renewed_on TEXT);"
    "CREATE INDEX p_platform_records_licenses_expires ON p_platform_records_licenses (expires_on);"
    "CREATE TABLE p_platform_records_regions (id TEXT PRIMARY KEY, name TEXT NOT NULL, api_url TEXT NOT NULL, "
    "identity_url TEXT NOT NULL);"
    "CREATE TABLE p_platform_records_probes (region TEXT NOT NULL, kind TEXT NOT NULL, time_ms BIGINT NOT NULL, ok "
    "BIGINT NOT NULL, latency_ms BIGINT, detail TEXT, PRIMARY KEY (region, kind, time_ms))";

// Version 2: a subscription's region and a region's usage provider and
// currency (UsageCollection), and the billing lines and commissions it
// generates.
const char* const kSchemaV2 =
    "ALTER TABLE p_platform_records_subscriptions ADD COLUMN region TEXT;"
    "CREATE INDEX p_platform_records_subscriptions_region ON p_platform_records_subscriptions (region, id);"
    "ALTER TABLE p_platform_records_regions ADD COLUMN usage_url TEXT;"
    "ALTER TABLE p_platform_records_regions ADD COLUMN currency TEXT;"
    "CREATE TABLE p_platform_records_billing_lines (subscription TEXT NOT NULL, month TEXT NOT NULL, tenant TEXT NOT "
    "NULL, region TEXT, quantity DOUBLE PRECISION NOT NULL, amount DOUBLE PRECISION NOT NULL, currency TEXT NOT NULL, "
    "run_id BIGINT, PRIMARY KEY (subscription, month));"
    "CREATE INDEX p_platform_records_billing_lines_month ON p_platform_records_billing_lines (month, tenant);"
    "CREATE TABLE p_platform_records_commissions (subscription TEXT NOT NULL, month TEXT NOT NULL, role TEXT NOT "
    "NULL, party TEXT NOT NULL, tenant TEXT NOT NULL, percent DOUBLE PRECISION NOT NULL, base DOUBLE PRECISION NOT "
    "NULL, amount DOUBLE PRECISION NOT NULL, currency TEXT NOT NULL, run_id BIGINT, PRIMARY KEY (subscription, month, "
    "role));"
    "CREATE INDEX p_platform_records_commissions_party ON p_platform_records_commissions (party, month)";

// Version 3: invoices of one status in key order (a list filtered by
// status pages through this index instead of sorting every row of the
// status for each page; the delinquent payments list the overdue ones).
const char* const kSchemaV3 =
    "CREATE INDEX p_platform_records_invoices_status_id ON p_platform_records_invoices (status, id)";

std::string columns(const Kind& kind, const std::string& alias = "") {
  std::string s;
  for (const auto& f : kind.fields) s += (s.empty() ? "" : ", ") + alias + f.name;
  return s;
}

// A stored row (typed values in field order) as an object; booleans back
// from 1 and 0.
Json row_object(const Kind& kind, const Json& values) {
  Json row = Json::object();
  for (size_t i = 0; i < kind.fields.size() && i < values.size(); ++i) {
    const Json& v = values[i];
    if (kind.fields[i].type == Type::kBool && v.is_number())
      row[kind.fields[i].name] = v.get<int64_t>() != 0;
    else if (kind.fields[i].type == Type::kNumber && v.is_number())
      row[kind.fields[i].name] = v.get<double>();
    else
      row[kind.fields[i].name] = v;
  }
  return row;
}

// "(a > $1 OR (a = $1 AND (b > $2 ...)))": after the key `after`, whose
// values are bound from parameter `first` on.
std::string after_clause(const Kind& kind, const std::string& alias, size_t first) {
  std::string s;
  const size_t n = kind.key.size();
  for (size_t i = n; i-- > 0;) {
    const std::string col = alias + kind.key[i], p = "$" + std::to_string(first + i);
    s = i + 1 == n ? col + " > " + p : col + " > " + p + " OR (" + col + " = " + p + " AND (" + s + "))";
  }
  return "(" + s + ")";
}

std::string order_by(const Kind& kind, const std::string& alias) {
  std::string s;
  for (const auto& k : kind.key) s += (s.empty() ? "" : ", ") + alias + k;
  return s;
}

}  // namespace

Status migrate(const Store& store) {
  return store.migrate(
      {{1, "records tables", kSchemaV1}, {2, "usage collection", kSchemaV2}, {3, "invoices by status", kSchemaV3}});
}

Store::Param param_of(const Json& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_boolean()) return std::string(v.get<bool>() ? "1" : "0");
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

Status select_rows(const Store& store, const Kind& kind, const Json& filter, const Json& after, int limit,
                   const std::string& tenant, Page* page) {
  const bool via_subscription = !tenant.empty() && kind.name == "usage";
  const std::string alias = "r.";
  std::string sql = "SELECT " + columns(kind, alias) + " FROM " + kind.table + " r";
  if (via_subscription) sql += " JOIN p_platform_records_subscriptions s ON s.id = r.subscription";
  std::vector<Store::Param> params;
  std::vector<std::string> where;
  for (const auto& [name, value] : filter.items()) {
    if (value.is_null()) {
      where.push_back(alias + name + " IS NULL");
      continue;
    }
    params.push_back(param_of(value));
    where.push_back(alias + name + " = $" + std::to_string(params.size()));
  }
  if (!tenant.empty()) {
    params.push_back(tenant);
    where.push_back((via_subscription ? std::string("s.tenant") : alias + "tenant") + " = $" +
                    std::to_string(params.size()));
  }
  if (after.is_array() && after.size() == kind.key.size()) {
    const size_t first = params.size() + 1;
    for (const auto& v : after) params.push_back(param_of(v));
    where.push_back(after_clause(kind, alias, first));
  }
  for (size_t i = 0; i < where.size(); ++i) sql += (i ? " AND " : " WHERE ") + where[i];
  sql += " ORDER BY " + order_by(kind, alias) + " LIMIT " + std::to_string(limit + 1);
  Json rows;
  Status s = store.query(sql, params, &rows);
  if (!s) return s;
  page->rows = Json::array();
  page->last_key = nullptr;
  for (size_t i = 0; i < rows.size() && static_cast<int>(i) < limit; ++i)
    page->rows.push_back(row_object(kind, rows[i]));
  if (static_cast<int>(rows.size()) > limit) page->last_key = key_of(kind, page->rows.back());
  return Status::ok();
}

Status count_rows(const Store& store, const Kind& kind, int64_t* count) {
  Json rows;
  Status s = store.query("SELECT COUNT(*) FROM " + kind.table, {}, &rows);
  if (!s) return s;
  *count = rows.size() == 1 && rows[0].size() == 1 && rows[0][0].is_number() ? rows[0][0].get<int64_t>() : 0;
  return Status::ok();
}

Status load_all(const Store& store, const Kind& kind, std::map<std::string, Json>* out) {
  Json rows;
  Status s = store.query("SELECT " + columns(kind) + " FROM " + kind.table, {}, &rows);
  if (!s) return s;
  for (const auto& values : rows) {
    Json row = row_object(kind, values);
    const std::string key = key_of(kind, row).dump();
    (*out)[key] = std::move(row);
  }
  return Status::ok();
}

Status load_keys(const Store& store, const Kind& kind, const std::vector<Json>& keys,
                 std::map<std::string, Json>* out) {
  // One statement per batch of keys: (k1 = $1 AND k2 = $2) OR (...).
  // About 64 parameters a statement: SQLite finds each "$n" by a linear
  // search of the statement's names, so a statement's cost grows with the
  // square of its parameters (up to 500 a statement spent a quarter of a
  // usage collection's time there, bench/README.md).
  const size_t per = std::max<size_t>(1, 64 / kind.key.size());
  for (size_t start = 0; start < keys.size(); start += per) {
    std::string where;
    std::vector<Store::Param> params;
    for (size_t i = start; i < keys.size() && i < start + per; ++i) {
      std::string one;
      for (size_t k = 0; k < kind.key.size(); ++k) {
        params.push_back(param_of(keys[i][k]));
        one += (k ? " AND " : "") + kind.key[k] + " = $" + std::to_string(params.size());
      }
      where += (where.empty() ? "(" : " OR (") + one + ")";
    }
    if (kind.key.size() == 1) {
      // One column: an IN list, which the store looks up key by key.
      where = kind.key[0] + " IN (";
      for (size_t p = 1; p <= params.size(); ++p) where += (p > 1 ? ", $" : "$") + std::to_string(p);
      where += ")";
    }
    Json rows;
    Status s = store.query("SELECT " + columns(kind) + " FROM " + kind.table + " WHERE " + where, params, &rows);
    if (!s) return s;
    for (const auto& values : rows) {
      Json row = row_object(kind, values);
      // The key first: the assignment's right side is evaluated (moved) first.
      const std::string key = key_of(kind, row).dump();
      (*out)[key] = std::move(row);
    }
  }
  return Status::ok();
}

std::vector<Store::Statement> upserts(const Kind& kind, const std::vector<Json>& rows) {
  std::vector<Store::Statement> out;
  const size_t width = kind.fields.size();
  // About 64 parameters a statement, as in load_keys.
  const size_t per = std::max<size_t>(1, 64 / width);
  std::string set;
  for (const auto& f : kind.fields) {
    if (std::find(kind.key.begin(), kind.key.end(), f.name) != kind.key.end()) continue;
    set += (set.empty() ? "" : ", ") + f.name + " = excluded." + f.name;
  }
  for (size_t start = 0; start < rows.size(); start += per) {
    Store::Statement st;
    std::string values;
    for (size_t i = start; i < rows.size() && i < start + per; ++i) {
      values += values.empty() ? "(" : ", (";
      for (size_t c = 0; c < width; ++c) {
        st.params.push_back(param_of(rows[i].value(kind.fields[c].name, Json())));
        values += (c ? ", $" : "$") + std::to_string(st.params.size());
      }
      values += ")";
    }
    st.sql = "INSERT INTO " + kind.table + " (" + columns(kind) + ") VALUES " + values + " ON CONFLICT (" +
             order_by(kind, "") + ") DO UPDATE SET " + set;
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace opk::records
