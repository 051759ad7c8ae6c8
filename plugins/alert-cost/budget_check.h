// budget_check.h -- the budget rules, in one place for the cost alert
// source (alert-cost, the last closed month) and the BudgetAlerts job type
// (job-budget-alerts, the month it is given): the usage cost of a budget's
// subscription, or of all its tenant's subscriptions for a tenant budget,
// in one month, against the budget's amount:
//   at or over the amount                     breach
//   at or over warning_percent of the amount  warning
//   below                                     under
// A usage row whose cost is not a number is named and left out of the
// sums; a budget whose amount is not above 0 or whose subscription is not
// stored is named and not judged. Nothing here writes.
//
// The including plugin requires OPK_EXT_RECORDS.
#ifndef OPSKERNEL_PLUGINS_BUDGET_CHECK_H
#define OPSKERNEL_PLUGINS_BUDGET_CHECK_H

#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <unordered_map>

namespace opk::budget_check {

// Whether the caller was asked to stop.
using CancelFn = std::function<bool()>;
// Takes one line naming a record and field the rules could not use.
using ProblemFn = std::function<void(const std::string&)>;

// The month before `month` ("YYYY-MM", valid).
inline std::string previous_month(const std::string& month) {
  int y = std::stoi(month.substr(0, 4)), m = std::stoi(month.substr(5, 2)) - 1;
  if (m == 0) {
    m = 12;
    --y;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d", y, m);
  return buf;
}

// Subscription id -> its tenant node ("tenant:acme"), every stored one.
using Tenants = std::unordered_map<std::string, std::string>;

inline Status read_tenants(const Records& records, const CancelFn& cancelled, Tenants* out) {
  return records.list("subscriptions", nullptr, [&](const Json& rows) {
    if (cancelled()) return Status::cancelled();
    for (const auto& row : rows) (*out)[row.value("id", "")] = row.value("tenant", "");
    return Status::ok();
  });
}

// Usage cost of one month, per subscription and per tenant; a subscription
// or tenant with at least one usage row that month has an entry.
struct MonthCost {
  std::unordered_map<std::string, double> subscription, tenant;
  int64_t rows = 0;     // usage rows summed
  int64_t skipped = 0;  // usage rows left out: their cost is not a number
};

inline Status read_month_cost(const Records& records, const std::string& month, const Tenants& tenants,
                              const CancelFn& cancelled, const ProblemFn& problem, MonthCost* out) {
  return records.list("usage", {{"month", month}}, [&](const Json& rows) {
    if (cancelled()) return Status::cancelled();
    for (const auto& row : rows) {
      const std::string sub = row.value("subscription", "");
      const Json cost = row.value("cost", Json());
      if (!cost.is_number()) {
        problem("usage of subscription " + sub + " in " + month + ": cost " + cost.dump() +
                " is not a number; left out of the sums");
        ++out->skipped;
        continue;
      }
      ++out->rows;
      out->subscription[sub] += cost.get<double>();
      if (auto t = tenants.find(sub); t != tenants.end()) out->tenant[t->second] += cost.get<double>();
    }
    return Status::ok();
  });
}

// One budget as the rules read it.
struct Budget {
  std::string id, tenant;
  std::string subscription;  // empty for a tenant budget
  double amount = 0;
  double warning_percent = 80;
  Json jump_percent;  // the budget's month_on_month_jump_percent, or null
  // "subscription s1" or the tenant node: whose cost it is.
  std::string who() const { return subscription.empty() ? tenant : "subscription " + subscription; }
};

// Reads `row` into *out: "" when the rules can judge it, else what is
// wrong, naming the field ("amount 0 is not above 0").
inline std::string read_budget(const Json& row, const Tenants& tenants, Budget* out) {
  out->id = row.value("id", "");
  out->tenant = row.value("tenant", "");
  const Json sub = row.value("subscription", Json());
  out->subscription = sub.is_string() ? sub.get<std::string>() : "";
  const Json amount = row.value("amount", Json());
  const Json warning = row.value("warning_percent", Json());
  out->warning_percent = warning.is_number() ? warning.get<double>() : 80.0;
  const Json jump = row.value("month_on_month_jump_percent", Json());
  out->jump_percent = jump.is_number() ? jump : Json();
  if (!amount.is_number()) return "amount " + amount.dump() + " is not a number";
  out->amount = amount.get<double>();
  if (out->amount <= 0) {
    char buf[64];  // %g: at most 13 characters
    std::snprintf(buf, sizeof buf, "%g", out->amount);
    return std::string("amount ") + buf + " is not above 0";
  }
  if (!out->subscription.empty() && tenants.count(out->subscription) == 0)
    return "subscription '" + out->subscription + "' is not in the records";
  return "";
}

enum class Level { kUnder, kWarning, kBreach };

inline const char* level_name(Level l) {
  return l == Level::kBreach ? "breach" : l == Level::kWarning ? "warning" : "under";
}

// What the rules make of one budget in one month.
struct Judgement {
  double cost = 0;
  double percent = 0;  // of the amount
  Level level = Level::kUnder;
  bool has_usage = false;  // a usage row of the budget's subscription or tenant that month
};

inline Judgement judge(const Budget& b, const MonthCost& mc) {
  Judgement j;
  const auto& table = b.subscription.empty() ? mc.tenant : mc.subscription;
  if (auto it = table.find(b.subscription.empty() ? b.tenant : b.subscription); it != table.end()) {
    j.cost = it->second;
    j.has_usage = true;
  }
  j.percent = 100.0 * j.cost / b.amount;
  j.level = j.cost >= b.amount ? Level::kBreach : j.percent >= b.warning_percent ? Level::kWarning : Level::kUnder;
  return j;
}

}  // namespace opk::budget_check

#endif  // OPSKERNEL_PLUGINS_BUDGET_CHECK_H
