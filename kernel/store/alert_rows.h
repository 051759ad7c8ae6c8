// alert_rows.h -- how an alert row maps to the portable alerts table, shared
// by both stores (sqlite_alerts.cpp, pg_alerts.cpp): its columns in order,
// the row as statement parameters and back, and the WHERE a reader's view
// (AlertView) adds to every read. Internal to kernel/store.
#ifndef OPSKERNEL_KERNEL_STORE_ALERT_ROWS_H
#define OPSKERNEL_KERNEL_STORE_ALERT_ROWS_H

#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace opk::store::internal {

// The alerts table's columns, in the order alert_params and alert_of use.
extern const char* const kAlertColumns;
// How many kAlertColumns names.
constexpr int kAlertColumnCount = 32;

// 2 for critical, 1 for warning, 0 for anything else.
int severity_rank(const std::string& severity);

// The alert's columns in kAlertColumns order, as parameters.
std::vector<std::optional<std::string>> alert_params(const AlertRow& a);

// The alert in a row read with kAlertColumns.
AlertRow alert_of(const std::vector<std::optional<std::string>>& r);

// WHERE conditions, with their parameters numbered from params->size() + 1.
class Where {
 public:
  // Conditions whose parameters are appended to `*params`.
  explicit Where(std::vector<std::optional<std::string>>* params) : params_(params) {}
  // "$n" for a new parameter with `value`.
  std::string param(std::optional<std::string> value);
  // Adds `condition`, ANDed with the others.
  void add(const std::string& condition) { conditions_.push_back(condition); }
  // Adds the conditions that keep what `v` may not see out.
  void view(const AlertView& v);
  // " WHERE a AND b", or "" without conditions.
  std::string sql() const;

 private:
  std::vector<std::optional<std::string>>* params_;
  std::vector<std::string> conditions_;
};

}  // namespace opk::store::internal

#endif
