// alert-cost -- alert source cost: for every budget, the usage cost of its
// subscription (or of all its tenant's subscriptions, for a tenant budget)
// in the last closed month (UTC) against the budget, by the rules of
// budget_check.h (shared with the BudgetAlerts job type):
//   at or over the amount                             critical
//   at or over warning_percent of it                  warning
//   up more than the jump percent on the month before warning
// The jump percent is the budget's month_on_month_jump_percent, else the
// setting jump_percent, else no jump check. One alert per budget (related
// budget/<id>), scoped to the budget's subscription or tenant.
//
// A full sweep: a budget back within its limits (or removed) is closed as
// cleared by the engine after the next good sweep.
//
// Settings ([plugin.alert-cost]):
//   jump_percent  month-on-month rise that warns when a budget names none
//                 (a number above 0; default: not checked)
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <cstdio>
#include <string>

#include "budget_check.h"

namespace {

class CostPlugin : public opk::Plugin {
 public:
  explicit CostPlugin(opk::Host host) : Plugin(host) {}
  opk::Status init() override {
    opk::Settings s = host().settings();
    jump_percent_ = s.number("jump_percent", 0, 0.01, 1e6);
    return s.status();
  }
  // 0: no default jump check.
  double jump_percent() const { return jump_percent_; }

 private:
  double jump_percent_ = 0;
};

namespace bc = opk::budget_check;

class Cost : public opk::AlertSource {
 public:
  explicit Cost(opk::Plugin& plugin) : plugin_(static_cast<CostPlugin&>(plugin)) {}

  opk::Status evaluate(opk::AlertContext& ctx) override {
    char buf[256];
    const std::string month = opk::records_month(ctx.now_ms(), 1);
    const std::string previous = bc::previous_month(month);

    const opk::Records records(plugin_.host());
    const bc::CancelFn cancelled = [&] { return ctx.cancelled(); };
    int64_t bad_usage = 0;
    const bc::ProblemFn problem = [&](const std::string& line) {
      ctx.log(opk::Level::warn, line);
      ++bad_usage;
    };
    bc::Tenants tenant_of;
    opk::Status s = bc::read_tenants(records, cancelled, &tenant_of);
    if (!s) return s;
    bc::MonthCost now, prev;
    if (!(s = bc::read_month_cost(records, month, tenant_of, cancelled, problem, &now))) return s;
    if (!(s = bc::read_month_cost(records, previous, tenant_of, cancelled, problem, &prev))) return s;

    int64_t budgets = 0, over = 0, warned = 0, bad = 0, refused = 0;
    s = records.list("budgets", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) {
        ++budgets;
        bc::Budget b;
        // Bad records are logged and skipped, never guessed at.
        if (std::string wrong = bc::read_budget(row, tenant_of, &b); !wrong.empty()) {
          ctx.log(opk::Level::warn, "budget " + b.id + ": " + wrong + "; skipped");
          ++bad;
          continue;
        }
        const std::string &id = b.id, &tenant = b.tenant, &sub = b.subscription;
        const double amount = b.amount, warning_percent = b.warning_percent;
        const double jump = b.jump_percent.is_number() ? b.jump_percent.get<double>() : plugin_.jump_percent();
        const bc::Judgement j = bc::judge(b, now);
        const double cost = j.cost, before_cost = bc::judge(b, prev).cost;
        const double used = j.percent;
        const double rise = before_cost > 0 ? 100.0 * (cost - before_cost) / before_cost : 0.0;
        const bool is_over = j.level == bc::Level::kBreach, is_warning = j.level == bc::Level::kWarning;
        const bool is_jump = jump > 0 && before_cost > 0 && rise > jump;
        if (!is_over && !is_warning && !is_jump) continue;

        const std::string who = sub.empty() ? tenant : "subscription " + sub;
        std::snprintf(buf, sizeof buf, "%.2f", cost);
        const std::string cost_text = buf;
        std::snprintf(buf, sizeof buf, "%.2f", amount);
        const std::string amount_text = buf;
        std::snprintf(buf, sizeof buf, "%.0f%%", used);
        const std::string used_text = buf;
        opk::AlertContext::Alert a;
        std::string condition;
        if (is_over || is_warning) {
          a.severity = is_over ? OPK_SEVERITY_CRITICAL : OPK_SEVERITY_WARNING;
          condition = is_over ? "over_budget" : "over_warning";
          a.title = std::string(is_over ? "Budget exceeded" : "Budget nearly used") + " by " + who + " in " + month;
          a.message = who + " cost " + cost_text + " in " + month + ", " + used_text + " of its budget " + id + " (" +
                      amount_text +
                      (is_over ? ")" : ", warning at " + std::to_string(static_cast<int>(warning_percent)) + "%)");
          (is_over ? over : warned)++;
        } else {
          a.severity = OPK_SEVERITY_WARNING;
          condition = "jump";
          a.title = "Cost jump for " + who + " in " + month;
          ++warned;
        }
        if (is_jump) {
          std::snprintf(buf, sizeof buf, "%.2f in %s to %s in %s (+%.0f%%, more than %.0f%%)", before_cost,
                        previous.c_str(), cost_text.c_str(), month.c_str(), rise, jump);
          a.message += std::string(a.message.empty() ? "" : "; ") + who + " rose from " + buf;
        }
        a.area = "cost";
        a.related_type = "budget";
        a.related_id = id;
        a.scope = sub.empty() ? tenant : "subscription:" + sub;
        a.details_json = opk::Json{
            {"budget", id},
            {"tenant", tenant},
            {"subscription", sub.empty() ? opk::Json() : opk::Json(sub)},
            {"month", month},
            {"cost", cost},
            {"amount", amount},
            {"used_percent", used},
            {"warning_percent", warning_percent},
            {"previous_month", previous},
            {"previous_cost", before_cost},
            {"jump_percent", jump > 0 ? opk::Json(jump) : opk::Json()},
            {"condition",
             condition}}.dump();
        // Bad input (a scope that is not a node) is refused and logged by
        // the engine; the sweep goes on. Anything else stops it.
        if (opk::Status r = ctx.raise(a); !r) {
          if (r.code() != OPK_ERR_INVALID_ARGUMENT) return r;
          ++refused;
        }
      }
      return opk::Status::ok();
    });
    if (!s) return s;
    std::string line = "checked " + std::to_string(budgets) + " budgets for " + month + ", " + std::to_string(over) +
                       " over budget, " + std::to_string(warned) + " warned";
    if (bad) line += ", " + std::to_string(bad) + " bad budgets skipped";
    if (bad_usage) line += ", " + std::to_string(bad_usage) + " usage rows left out";
    if (refused) line += ", " + std::to_string(refused) + " refused by the alert engine";
    ctx.log(bad || bad_usage || refused ? opk::Level::warn : opk::Level::info, line);
    return opk::Status::ok();
  }

 private:
  const CostPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("alert-cost", "Cost alerts", "1.0.0", "Opskernel",
                  "Warns when a subscription's or tenant's monthly cost nears, passes or jumps past its budget");
  m.alert_source<Cost>({.id = "cost",
                        .title = "Cost",
                        .description = "Usage cost of the last closed month against each budget.",
                        .area = "cost",
                        .flags = OPK_ALERT_FULL_SWEEP,
                        .default_schedule = "@hourly"});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(CostPlugin, describe);
