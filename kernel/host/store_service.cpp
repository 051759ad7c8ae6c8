#include "host/store_service.h"

#include <Poco/JSONString.h>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>

#include "host/host.h"
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
  set_error_text(s.message());
  if (auto* ph = PluginHost::from(host)) ph->logger().warn("store: {}", s.message());
  return s.code();
}

}  // namespace

StoreService::StoreService(store::Store& store) : store_(store) {
  ext_.struct_size = sizeof ext_;
  ext_.dialect = &cb_dialect;
  ext_.migrate = &cb_migrate;
  ext_.execute = &cb_execute;
  ext_.query = &cb_query;
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
  Status st = s->store_.migrate(PluginHost::from(host)->plugin_id(), ms);
  return st ? OPK_OK : fail(host, st);
}

opk_status StoreService::cb_execute(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                                    int64_t* changed) {
  auto* s = self_of(host);
  if (!s || !sql) return OPK_ERR_INVALID_ARGUMENT;
  int64_t c = 0;
  Status st = s->store_.execute(sql, to_params(params, n), &c);
  if (!st) return fail(host, st);
  if (changed) *changed = c;
  return OPK_OK;
}

opk_status StoreService::cb_query(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                                  char** rows_json) {
  auto* s = self_of(host);
  if (!s || !sql || !rows_json) return OPK_ERR_INVALID_ARGUMENT;
  std::vector<std::vector<std::optional<std::string>>> rows;
  Status st = s->store_.query(sql, to_params(params, n), &rows);
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
  // Freed by the plugin through opk_host.free (std::free).
  char* out = static_cast<char*>(std::malloc(json.size() + 1));
  if (!out) return OPK_ERR_NO_MEMORY;
  std::memcpy(out, json.c_str(), json.size() + 1);
  *rows_json = out;
  return OPK_OK;
}

}  // namespace opk::host
