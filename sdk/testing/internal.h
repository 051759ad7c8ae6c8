// Internals of opk::testing::Host, shared by its source files.
#ifndef OPSKERNEL_SDK_TESTING_INTERNAL_H
#define OPSKERNEL_SDK_TESTING_INTERNAL_H

#include <opskernel/testing.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

struct sqlite3;
struct pg_conn;
struct pg_result;

namespace opk::testing {

// JSON string literal of `s` (quotes included).
std::string json_string(std::string_view s);
// `text` in memory the plugin frees with opk_host.free (std::free); NULL
// when out of memory.
char* plugin_string(const std::string& text);
// Records the detail of a failure for the calling thread (set_error).
void set_error_text(const std::string& text);
// Takes the calling thread's failure detail, leaving it empty.
std::string take_error();
// `size` bytes at `data` in base64 (RFC 4648, padded), as both stores give a
// blob to a typed read.
std::string blob_base64(const void* data, size_t size);

template <typename S>
struct StoreCallbacks;

// The clock behind Host::clock().
class ManualClock : public Clock {
 public:
  int64_t now_ms() const override { return ms_.load(); }
  void advance(int64_t ms) override { ms_.fetch_add(ms); }
  void set(int64_t ms) override { ms_.store(ms); }

 private:
  std::atomic<int64_t> ms_{kClockStartMs};
};

// One loaded plugin: its library, the host table lent to it, its instance.
struct PluginSlot {
  Host::Impl* host = nullptr;
  std::string path;
  std::string id;
  // Tables of this plugin are named with this prefix: "p_<id>_" with '-'
  // and '.' as '_' (the kernel's rule, store::plugin_table_prefix).
  std::string table_prefix;
  void* library = nullptr;
  opk_plugin_entry entry{};
  // The manifest's copy (struct_size rule) and the plugin's own pointers,
  // which calls pass back as `self`.
  opk_manifest manifest{};
  std::vector<const opk_job_type*> job_types;
  std::vector<const opk_alert_source*> alert_sources;
  std::vector<const opk_notification_channel*> channels;
  std::vector<std::string> features;
  std::vector<std::pair<std::string, std::string>> permissions;  // declared: name, description
  std::vector<std::string> provides;
  std::set<std::string> requirements;
  std::map<std::string, std::string> settings;
  opk_host table{};
  opk_plugin* instance = nullptr;
  bool started = false;
  const opk_principal* system = nullptr;

  static PluginSlot* from(const opk_host* host) {
    return host ? reinterpret_cast<PluginSlot*>(host->host_data) : nullptr;
  }
};

// The in-memory SQLite store behind opk.store/1. Thread-safe.
class MemoryStore {
 public:
  MemoryStore();
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // The service table given to plugins.
  const opk_store_v1* table() const { return &table_; }
  // Runs `sql` without the fence (for tests).
  Status rows(const std::string& sql, Rows* out) const;
  // The JSON type of `text` ("object", "array" ...); empty when it is not JSON.
  std::string json_type(const std::string& text) const;

 private:
  struct Fence;
  Status migrate(PluginSlot& slot, const opk_store_migration* m, uint32_t count);
  // Runs one statement of `slot` inside the fence; rows to `rows_json`
  // (typed or as text) when given.
  Status run_one(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool query, bool typed,
                 std::string* rows_json, int64_t* changed);
  Status transaction(const PluginSlot& slot, const opk_store_statement* st, uint32_t count, std::string* results,
                     uint32_t* failed_at);
  static int authorize(void* data, int action, const char* a1, const char* a2, const char* db, const char* inner);
  // The fence's refusal as PERMISSION, else `sql_error` as INVALID_ARGUMENT.
  Status fence_error(const std::string& sql_error) const;
  // Fences statements to `slot`'s tables from now on; nullptr lifts it.
  void raise_fence(const PluginSlot* slot);

  static constexpr const char* kDialect = "sqlite";
  // The service's calls (StoreCallbacks): the store of the Host that lent
  // `host`, and one plugin statement, read or transaction, each taking the
  // store's lock.
  template <typename S>
  friend struct StoreCallbacks;
  static MemoryStore* of(const opk_host* host);
  Status execute(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, int64_t* changed);
  Status read(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool typed,
              std::string* rows_json);

  mutable std::mutex mu_;
  sqlite3* db_ = nullptr;
  // The plugin whose statement runs; nullptr: no fence.
  const PluginSlot* fenced_ = nullptr;
  // The first thing the fence refused in the current statement.
  std::string refused_;
  // A CREATE, DROP or ALTER of the plugin's own was allowed (it may then
  // read the schema).
  bool ddl_ = false;
  opk_store_v1 table_{};
};

// Frees a libpq result.
struct PgResultFree {
  void operator()(pg_result* r) const;
};
using PgtResult = std::unique_ptr<pg_result, PgResultFree>;

// opk.store/1 on PostgreSQL (Host::use_store): a schema of its own on the
// test's server, made at open and dropped with the object, with the roles
// it made for plugins; fenced as the kernel's PostgreSQL store is.
// Thread-safe (one connection, one call at a time).
class PgTestStore {
 public:
  // Connects to `conninfo` and makes the schema with the kernel's tables.
  static Status open(const std::string& conninfo, std::unique_ptr<PgTestStore>* out);
  ~PgTestStore();
  PgTestStore(const PgTestStore&) = delete;
  PgTestStore& operator=(const PgTestStore&) = delete;

  // The service table given to plugins.
  const opk_store_v1* table() const { return &table_; }
  // Runs `sql` without the fence (for tests).
  Status rows(const std::string& sql, Rows* out);
  // The schema this store made.
  const std::string& schema() const { return schema_; }

 private:
  PgTestStore() = default;
  // One statement (several when `params` is empty and none given), as the
  // host itself; *out gets the result.
  Status exec(const std::string& what, const std::string& sql);
  Status exec(const std::string& what, const std::string& sql, const std::vector<const char*>& params,
              PgtResult* out = nullptr);
  // One command of a pipeline.
  struct PgCommand {
    std::string what, sql;
    std::vector<const char*> params;
  };
  // Sends `cmds` in one round trip (libpq's pipeline mode); *out gets the
  // result of cmds[want]. The first failure's status, its index in *failed.
  Status pipeline(const std::vector<PgCommand>& cmds, size_t want, PgtResult* out, size_t* failed);
  // Makes `slot`'s role (once), in a transaction of its own.
  Status ensure_role(const PluginSlot& slot);
  // After DDL: every relation `role` owns carries `slot`'s prefix.
  Status check_relations(const PluginSlot& slot, const std::string& role);
  // Runs `body` in a transaction, under `slot`'s role (made already) or
  // as the host when null, rolled back when it fails. The BEGIN is sent
  // with the body's first statement; with `single` (a body of one
  // statement) so is the COMMIT: a call is one round trip.
  Status in_transaction(bool read_only, const PluginSlot* slot, bool single, const std::function<Status()>& body);
  // One statement of `slot` inside the fence, in the open transaction.
  Status run_one(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool query, bool typed,
                 std::string* rows_json, int64_t* changed);
  Status migrate(PluginSlot& slot, const opk_store_migration* m, uint32_t count);
  Status transaction(const PluginSlot& slot, const opk_store_statement* st, uint32_t count, std::string* results,
                     uint32_t* failed_at);

  static constexpr const char* kDialect = "postgresql";
  // The service's calls (StoreCallbacks): the store of the Host that lent
  // `host`, and one plugin statement, read or transaction, each taking the
  // store's lock.
  template <typename S>
  friend struct StoreCallbacks;
  static PgTestStore* of(const opk_host* host);
  Status execute(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, int64_t* changed);
  Status read(const PluginSlot& slot, const char* sql, const char* const* params, uint32_t n, bool typed,
              std::string* rows_json);

  mutable std::mutex mu_;
  pg_conn* conn_ = nullptr;
  std::string schema_;
  std::map<std::string, std::string> roles_;  // plugin id -> its role
  std::string txn_role_;                      // the role the open transaction is under, if any
  // The open transaction: statements not sent yet (its BEGIN and role),
  // whether it began and was committed, and whether the next statement
  // carries the COMMIT.
  std::vector<std::string> pending_;
  bool begun_ = false, committed_ = false, commit_with_statement_ = false, commit_next_ = false;
  opk_store_v1 table_{};
};

// The PostgreSQL store of the Host `host` belongs to; nullptr when it
// keeps its plugins' tables in SQLite.
PgTestStore* host_pg_store(Host::Impl* host);

// Reports a failed service call: the plugin's last_error and its log.
opk_status service_failure(const opk_host* host, const Status& s);
// The store of the Host that lent `host`; nullptr for a foreign table.
MemoryStore* store_of(const opk_host* host);
// Appends a line to the plugin's logger (Host::log_lines).
void plugin_log(const PluginSlot& slot, opk_log_level level, const std::string& text);

// The opk.store/1 table of the test host's store type S (MemoryStore,
// PgTestStore), one set of C callbacks for both: each checks the plugin's
// arguments, finds its Host's S (S::of), calls it and reports a failure as
// a service failure, with the plugin's copies of what S answers. S names its
// kDialect and has of, migrate, execute, read and transaction.
template <typename S>
struct StoreCallbacks {
  // Fills `t` with the callbacks.
  static void fill(opk_store_v1* t) {
    t->struct_size = sizeof *t;
    t->dialect = &dialect;
    t->migrate = &migrate;
    t->execute = &execute;
    t->query = &query;
    t->transaction = &transaction;
    t->query_typed = &query_typed;
  }

 private:
  static const char* dialect(const opk_host*) { return S::kDialect; }
  static opk_status migrate(const opk_host* host, const opk_store_migration* m, uint32_t count) {
    S* s = S::of(host);
    if (!s || (count && !m)) return OPK_ERR_INVALID_ARGUMENT;
    Status st = s->migrate(*PluginSlot::from(host), m, count);
    return st ? OPK_OK : service_failure(host, st);
  }
  static opk_status execute(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                            int64_t* changed) {
    S* s = S::of(host);
    if (!s || !sql) return OPK_ERR_INVALID_ARGUMENT;
    int64_t c = 0;
    Status st = s->execute(*PluginSlot::from(host), sql, params, n, &c);
    if (!st) return service_failure(host, st);
    if (changed) *changed = c;
    return OPK_OK;
  }
  static opk_status read(const opk_host* host, const char* sql, const char* const* params, uint32_t n, bool typed,
                         char** rows_json) {
    S* s = S::of(host);
    if (!s || !sql || !rows_json) return OPK_ERR_INVALID_ARGUMENT;
    std::string json;
    Status st = s->read(*PluginSlot::from(host), sql, params, n, typed, &json);
    if (!st) return service_failure(host, st);
    *rows_json = plugin_string(json);
    return *rows_json ? OPK_OK : OPK_ERR_NO_MEMORY;
  }
  static opk_status query(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                          char** rows_json) {
    return read(host, sql, params, n, false, rows_json);
  }
  static opk_status query_typed(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                                char** rows_json) {
    return read(host, sql, params, n, true, rows_json);
  }
  static opk_status transaction(const opk_host* host, const opk_store_statement* statements, uint32_t count,
                                char** results_json) {
    S* s = S::of(host);
    if (!s || !results_json || (count && !statements)) return OPK_ERR_INVALID_ARGUMENT;
    std::string json;
    uint32_t failed_at = 0;
    Status st = s->transaction(*PluginSlot::from(host), statements, count, &json, &failed_at);
    if (!st) json = "{\"error\":" + json_string(st.message()) + ",\"statement\":" + std::to_string(failed_at) + "}";
    *results_json = plugin_string(json);
    if (!*results_json) return OPK_ERR_NO_MEMORY;
    return st ? OPK_OK : service_failure(host, st);
  }
};

}  // namespace opk::testing

#endif  // OPSKERNEL_SDK_TESTING_INTERNAL_H
