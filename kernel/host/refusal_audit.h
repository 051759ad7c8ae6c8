// refusal_audit.h -- what the audit trail keeps of requests the route table
// refuses before any handler (401, 403, 404, 405 for methods other than
// GET). Anyone can send such requests, so what is kept is bounded: long
// fields are cut, and past a quota per client address and minute the
// refusals are counted and summed up in one row instead of a row each.
#ifndef OPSKERNEL_KERNEL_HOST_REFUSAL_AUDIT_H
#define OPSKERNEL_KERNEL_HOST_REFUSAL_AUDIT_H

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.h"

namespace opk::host {

// Bounds on the rows kept for refused requests.
struct RefusalLimits {
  size_t max_field_bytes = 256;  // target and outcome beyond it are cut
  int rows_per_window = 20;      // rows of their own per address and window
  int64_t window_ms = 60000;
  size_t max_addresses = 10000;  // windows held at once; more are closed early
};

// Turns refusals into audit rows within RefusalLimits. Thread-safe.
class RefusalAudit {
 public:
  explicit RefusalAudit(RefusalLimits limits = {}) : limits_(limits) {}

  // The rows to write for `row`, refused at `now_ms`: the row itself with
  // its long fields cut, or none once its address has used up the window's
  // quota (it is counted); and a summary row for each window that ended.
  std::vector<store::AuditRow> refused(store::AuditRow row, int64_t now_ms);

  // Summary rows of every window with uncounted refusals; the windows are
  // closed. For shutdown.
  std::vector<store::AuditRow> flush(int64_t now_ms);

 private:
  struct Window {
    int64_t start_ms = 0;
    int rows = 0;                               // written one by one
    int64_t unrecorded = 0;                     // counted only
    std::map<std::string, int64_t> by_outcome;  // "401", "404" ... -> count
    store::AuditRow last;                       // actor, role and source of the latest
  };
  static store::AuditRow summary(const std::string& address, const Window& w, int64_t now_ms);
  void close_ended(int64_t now_ms, std::vector<store::AuditRow>* out);

  const RefusalLimits limits_;
  std::mutex mu_;
  std::map<std::string, Window> windows_;  // by client address
};

// `text` cut to at most `max` bytes at a UTF-8 character boundary, with
// "... (N bytes)" appended when cut.
std::string cut_text(const std::string& text, size_t max);

}  // namespace opk::host

#endif
