// store_service.h -- "opk.store/1": plugins' own migrations and tables in the
// kernel's store. One table for all plugins; the calling plugin is known from
// its host table, and its SQL reaches only its own tables (the store fences
// it). Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_STORE_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_STORE_SERVICE_H

#include <opskernel/opk_abi.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace opk::store {
class Store;
}

namespace opk::host {

class StoreService {
 public:
  explicit StoreService(store::Store& store);
  // The C table served as "opk.store/1".
  const opk_store_v1* extension() const { return &ext_; }

  // The migrations one plugin gave migrate last (version, name), and when.
  struct Declared {
    std::string owner;
    int64_t declared_ms = 0;
    std::vector<std::pair<int, std::string>> migrations;
  };
  // What each plugin declared through migrate in this process, by owner.
  std::vector<Declared> declared() const;

 private:
  static StoreService* self_of(const opk_host* host);
  static const char* cb_dialect(const opk_host* host);
  static opk_status cb_migrate(const opk_host* host, const opk_store_migration* m, uint32_t count);
  static opk_status cb_execute(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                               int64_t* changed);
  static opk_status cb_query(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                             char** rows_json);
  static opk_status cb_transaction(const opk_host* host, const opk_store_statement* statements, uint32_t count,
                                   char** results_json);
  static opk_status cb_query_typed(const opk_host* host, const char* sql, const char* const* params, uint32_t n,
                                   char** rows_json);
  store::Store& store_;
  opk_store_v1 ext_{};
  mutable std::mutex declared_mu_;
  std::map<std::string, Declared> declared_;  // guarded by declared_mu_
};

}  // namespace opk::host

#endif
