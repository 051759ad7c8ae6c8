// migrations_service.h -- "opk.migrations/1": the store's schema migrations,
// the kernel's and every plugin's, for an admin feature (docs/abi.md, "The
// migrations service"): what is applied, every recorded attempt with its
// duration or its error, and what the kernel and each plugin declared, so
// what is pending shows. Read-only; the kernel keeps the records. Answers
// only for a principal the kernel issued whose role holds migrations.read.
// Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_MIGRATIONS_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_MIGRATIONS_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <functional>
#include <string>

namespace opk::store {
class Store;
}

namespace opk::host {

class PluginHost;
class Principals;
class StoreService;

class MigrationsService {
 public:
  // `declared` gives what plugins declared (StoreService::declared);
  // `allowed(role, permission)` says whether a role holds a permission.
  MigrationsService(store::Store& store, const StoreService& declared, const Principals& principals,
                    std::function<bool(const std::string&, const std::string&)> allowed);
  ~MigrationsService();
  MigrationsService(const MigrationsService&) = delete;
  MigrationsService& operator=(const MigrationsService&) = delete;

  // Calls through `host`'s table reach this service (until it is destroyed).
  void serve(const PluginHost* host);

  // The migrations as the JSON of opk_migrations_v1.status into *out;
  // UNAVAILABLE when the store cannot be read.
  Status status_json(std::string* out) const;

  // PERMISSION unless `actor` was issued by the kernel and its role holds
  // migrations.read.
  Status check_actor(const opk_principal* actor) const;

  // The C table served as "opk.migrations/1".
  const opk_migrations_v1* extension() const { return &ext_; }

 private:
  static opk_status cb_status(const opk_host* host, const opk_principal* actor, char** status_json);

  store::Store& store_;
  const StoreService& declared_;
  const Principals& principals_;
  std::function<bool(const std::string&, const std::string&)> allowed_;
  int64_t opened_ms_ = 0;  // when the kernel's own migrations were declared
  opk_migrations_v1 ext_{};
};

}  // namespace opk::host

#endif  // OPSKERNEL_KERNEL_HOST_MIGRATIONS_SERVICE_H
