// audit_service.h -- "opk.audit/1": audit rows written by admin features
// through the kernel, checked (an issued actor, a well-formed action and
// target, JSON before/after) and stored with the kernel's own rows, so the
// audit API, retention and export cover them. Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_AUDIT_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_AUDIT_SERVICE_H

#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <string>

namespace opk::store {
class Store;
struct AuditRow;
}  // namespace opk::store

namespace opk::host {

class Principals;

class AuditService {
 public:
  AuditService(store::Store& store, const Principals& principals);
  // The C table served as "opk.audit/1".
  const opk_audit_v1* extension() const { return &ext_; }

  // Checks `entry` from plugin `plugin_id` and turns it into a row: the
  // status names the bad field. Exposed for tests.
  Status row_of(const std::string& plugin_id, const opk_audit_entry& entry, store::AuditRow* row) const;

 private:
  static opk_status cb_record(const opk_host* host, const opk_audit_entry* entry);
  store::Store& store_;
  const Principals& principals_;
  opk_audit_v1 ext_{};
};

}  // namespace opk::host

#endif
