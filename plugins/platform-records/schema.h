// schema.h -- platform-records' tables in the kernel's store (opk.store/1):
// the migrations, and the portable SQL that reads and writes rows of a kind.
// Thread-safety: the store is; these functions keep no state.
#ifndef OPSKERNEL_PLUGINS_PLATFORM_RECORDS_SCHEMA_H
#define OPSKERNEL_PLUGINS_PLATFORM_RECORDS_SCHEMA_H

#include <opskernel/opk.hpp>

#include <map>
#include <string>
#include <vector>

#include "model.h"

namespace opk::records {

// Creates or updates the tables and indexes.
Status migrate(const Store& store);

// A page of a kind's rows in key order.
struct Page {
  Json rows = Json::array();
  // The key of the last row read (scanned, even if filtered out), for the
  // next page; null when the table has no more rows.
  Json last_key;
};

// Reads up to `limit` rows of `kind` whose fields equal `filter` (checked
// field -> typed value, null for IS NULL) and whose key comes after
// `after` (a key array, or null from the start). `tenant` non-empty: only
// rows of that tenant (for usage, of its subscriptions).
Status select_rows(const Store& store, const Kind& kind, const Json& filter, const Json& after, int limit,
                   const std::string& tenant, Page* page);

// The number of stored rows of `kind`.
Status count_rows(const Store& store, const Kind& kind, int64_t* count);

// Every stored row of `kind` into *rows, by its key's JSON text.
Status load_all(const Store& store, const Kind& kind, std::map<std::string, Json>* rows);

// Reads the stored rows of `kind` with the given keys (JSON key arrays)
// into *rows, by their key's JSON text; a few hundred keys a statement.
Status load_keys(const Store& store, const Kind& kind, const std::vector<Json>& keys,
                 std::map<std::string, Json>* rows);

// Upsert statements writing `rows` (checked rows of `kind`), several rows
// per statement, for one transaction.
std::vector<Store::Statement> upserts(const Kind& kind, const std::vector<Json>& rows);

// A typed value as the text bound to a $n parameter (booleans as 1 and 0).
Store::Param param_of(const Json& v);

}  // namespace opk::records

#endif  // OPSKERNEL_PLUGINS_PLATFORM_RECORDS_SCHEMA_H
