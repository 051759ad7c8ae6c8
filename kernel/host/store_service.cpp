#include "host/store_service.h"

#include <Poco/Base64Encoder.h>
#include <Poco/JSONString.h>

#include <opskernel/json.hpp>
#include <sstream>

#include <spdlog/spdlog.h>

#include "clock/clock.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "store/store.h"

namespace opk::host {
namespace {

std::vector<std::optional<std::string>> to_params(const char* const* params, uint32_t n) {
  std::vector<std::optional<std::string>> out;
  for (uint32_t i = 0; i < n; ++i)
    out.push_back(params && params[i] ? std::optional<std::string>(params[i]) : std::nullopt);
  return out;
}

// Reports a failed call to the plugin (set_error) and its log.
opk_status fail(const opk_host* host, const Status& s) {
  report_host_error(s.message());
  if (auto* ph = PluginHost::from(host)) ph->logger().warn("store: {}", s.message());
  return s.code();
}

// Hands `text` to the plugin (it frees it with opk_host.free).
opk_status hand_over(const std::string& text, char** out) {
  *out = plugin_string(text);
  return *out ? OPK_OK : OPK_ERR_NO_MEMORY;
}

// Typed rows as JSON: numbers, strings, null; blobs as base64 strings.
nlohmann::json typed_json(const std::vector<store::TypedRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json r = nlohmann::json::array();
    for (const auto& v : row) {
      switch (v.kind) {
        case store::Value::Kind::integer:
          r.push_back(v.integer);
          break;
        case store::Value::Kind::real:
          r.push_back(v.real);
          break;
        case store::Value::Kind::text:
          // Invalid UTF-8 in a text column is replaced, not thrown on.
          r.push_back(v.text);
          break;
        case store::Value::Kind::blob: {
          std::ostringstream b64;
          Poco::Base64Encoder enc(b64);
          enc.rdbuf()->setLineLength(0);
          enc << v.text;
          enc.close();
          r.push_back(b64.str());
          break;
        }
        default:
          r.push_back(nullptr);
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

StoreService::StoreService(store::Store& store) : store_(store) {
  ext_.struct_size = sizeof ext_;
  ext_.dialect = &cb_dialect;
  ext_.migrate = &cb_migrate;
  ext_.execute = &cb_execute;
  ext_.query = &cb_query;
  ext_.transaction = &cb_transaction;
  ext_.query_typed = &cb_query_typed;
}

StoreService* StoreService::self_of(const opk_host* host) {
  auto* ph = PluginHost::from(host);
  return ph ? ph->store_service() : nullptr;
}

const char* StoreService::cb_dialect(const opk_host* host) {
  auto* s = self_of(host);
  return s ? s->store_.dialect() : "";
}

opk_status StoreService::cb_migrate(const opk_host* host, const opk_store_migration* m, uint32_t count) {
  auto* s = self_of(host);
  if (!s || (count && !m)) return OPK_ERR_INVALID_ARGUMENT;
  std::vector<store::Migration> ms;
  for (uint32_t i = 0; i < count; ++i) {
    if (!m[i].sql || !m[i].name)
      return fail(host, Status::invalid("migration " + std::to_string(i) + ": name or sql is NULL"));
    ms.push_back({m[i].version, m[i].name, m[i].sql});
  }
  const std::string owner = PluginHost::from(host)->plugin_id();
  {
    Declared d{owner, clock::now_ms(), {}};
    for (const auto& x : ms) d.migrations.emplace_back(x.version, x.name);
    std::lock_guard lock(s->declared_mu_);
    s->declared_[owner] = std::move(d);
  }
  Status st = s->store_.migrate(owner, ms);
  return st ? OPK_OK : fail(host, st);
}

std::vector<StoreService::Declared> StoreService::declared() const {
  std::lock_guard lock(declared_mu_);
  std::vector<Declared> out;
  for (const auto& [owner, d] : declared_) out.push_back(d);
  return out;
}

opk_status StoreService::cb_execute(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                                    int64_t* changed) {
  auto* s = self_of(host);
  if (!s || !sql) return OPK_ERR_INVALID_ARGUMENT;
  int64_t c = 0;
  Status st = s->store_.plugin_execute(PluginHost::from(host)->plugin_id(), sql, to_params(params, n), &c);
  if (!st) return fail(host, st);
  if (changed) *changed = c;
  return OPK_OK;
}

opk_status StoreService::cb_query(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                                  char** rows_json) {
  auto* s = self_of(host);
  if (!s || !sql || !rows_json) return OPK_ERR_INVALID_ARGUMENT;
  std::vector<std::vector<std::optional<std::string>>> rows;
  Status st = s->store_.plugin_query(PluginHost::from(host)->plugin_id(), sql, to_params(params, n), &rows);
  if (!st) return fail(host, st);
  std::string json = "[";
  for (size_t r = 0; r < rows.size(); ++r) {
    json += r ? ",[" : "[";
    for (size_t c = 0; c < rows[r].size(); ++c) {
      if (c) json += ',';
      if (rows[r][c])
        json += Poco::toJSON(*rows[r][c], Poco::JSON_WRAP_STRINGS);
      else
        json += "null";
    }
    json += ']';
  }
  json += ']';
  return hand_over(json, rows_json);
}

opk_status StoreService::cb_query_typed(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                                        char** rows_json) {
  auto* s = self_of(host);
  if (!s || !sql || !rows_json) return OPK_ERR_INVALID_ARGUMENT;
  std::vector<store::TypedRow> rows;
  Status st = s->store_.plugin_query_typed(PluginHost::from(host)->plugin_id(), sql, to_params(params, n), &rows);
  if (!st) return fail(host, st);
  return hand_over(dump(typed_json(rows)), rows_json);
}

opk_status StoreService::cb_transaction(const opk_host* host, const opk_store_statement* statements, uint32_t count,
                                        char** results_json) {
  auto* s = self_of(host);
  if (!s || !results_json || (count && !statements)) return OPK_ERR_INVALID_ARGUMENT;
  *results_json = nullptr;
  std::vector<store::PluginStatement> list;
  for (uint32_t i = 0; i < count; ++i) {
    if (!statements[i].sql) {
      Status bad = Status::invalid("statement " + std::to_string(i) + ": sql is NULL");
      hand_over(dump({{"error", bad.message()}, {"statement", i}}), results_json);
      return fail(host, bad);
    }
    list.push_back({statements[i].sql, to_params(statements[i].params, statements[i].param_count)});
  }
  std::vector<store::PluginResult> results;
  size_t failed = 0;
  Status st = s->store_.plugin_transaction(PluginHost::from(host)->plugin_id(), list, &results, &failed);
  if (!st) {
    hand_over(dump({{"error", st.message()}, {"statement", failed}}), results_json);
    return fail(host, st);
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : results) out.push_back({{"changed", r.changed}, {"rows", typed_json(r.rows)}});
  return hand_over(dump(out), results_json);
}

}  // namespace opk::host
