// alert-cost -- alert source cost: for every budget, the usage cost of its
// subscription (or of all its tenant's subscriptions, for a tenant budget)
// in the last closed month (UTC) against the budget:
//   over the amount                                   critical
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

#include <chrono>
#include <cstdio>
#include <string>
#include <unordered_map>

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

// Cost in one month, per subscription and per tenant.
struct MonthCost {
  std::unordered_map<std::string, double> subscription, tenant;
};

class Cost : public opk::AlertSource {
 public:
  explicit Cost(opk::Plugin& plugin) : plugin_(static_cast<CostPlugin&>(plugin)) {}

  opk::Status evaluate(opk::AlertContext& ctx) override {
    using namespace std::chrono;
    const year_month_day today{floor<days>(sys_time<milliseconds>(milliseconds(ctx.now_ms())))};
    const year_month closed = year_month(today.year(), today.month()) - months(1);
    char buf[256];
    std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(closed.year()), static_cast<unsigned>(closed.month()));
    const std::string month = buf;
    const year_month before = closed - months(1);
    std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(before.year()), static_cast<unsigned>(before.month()));
    const std::string previous = buf;

    const opk::Records records(plugin_.host());
    std::unordered_map<std::string, std::string> tenant_of;  // subscription -> "tenant:<name>"
    opk::Status s = records.list("subscriptions", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) tenant_of[row.value("id", "")] = row.value("tenant", "");
      return opk::Status::ok();
    });
    if (!s) return s;
    MonthCost now, prev;
    for (auto [m, into] : {std::pair{&month, &now}, std::pair{&previous, &prev}}) {
      s = records.list("usage", {{"month", *m}}, [&](const opk::Json& rows) {
        if (ctx.cancelled()) return opk::Status::cancelled();
        for (const auto& row : rows) {
          const std::string sub = row.value("subscription", "");
          const double cost = row.value("cost", 0.0);
          into->subscription[sub] += cost;
          if (auto t = tenant_of.find(sub); t != tenant_of.end()) into->tenant[t->second] += cost;
        }
        return opk::Status::ok();
      });
      if (!s) return s;
    }

    int64_t budgets = 0, over = 0, warned = 0, bad = 0, refused = 0;
    s = records.list("budgets", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& b : rows) {
        ++budgets;
        const std::string id = b.value("id", ""), tenant = b.value("tenant", "");
        const std::string sub =
            b.value("subscription", opk::Json()).is_string() ? b["subscription"].get<std::string>() : "";
        const double amount = b.value("amount", 0.0);
        const double warning_percent =
            b.value("warning_percent", opk::Json()).is_number() ? b["warning_percent"].get<double>() : 80.0;
        const opk::Json jump_field = b.value("month_on_month_jump_percent", opk::Json());
        const double jump = jump_field.is_number() ? jump_field.get<double>() : plugin_.jump_percent();
        // Bad records are logged and skipped, never guessed at.
        if (amount <= 0) {
          std::snprintf(buf, sizeof buf, "%g", amount);
          ctx.log(opk::Level::warn, "budget " + id + ": amount " + buf + " is not above 0; skipped");
          ++bad;
          continue;
        }
        if (!sub.empty() && tenant_of.count(sub) == 0) {
          ctx.log(opk::Level::warn, "budget " + id + ": subscription '" + sub + "' is not in the records; skipped");
          ++bad;
          continue;
        }
        auto cost_in = [&](const MonthCost& mc) {
          const auto& table = sub.empty() ? mc.tenant : mc.subscription;
          auto it = table.find(sub.empty() ? tenant : sub);
          return it == table.end() ? 0.0 : it->second;
        };
        const double cost = cost_in(now), before_cost = cost_in(prev);
        const double used = 100.0 * cost / amount;
        const double rise = before_cost > 0 ? 100.0 * (cost - before_cost) / before_cost : 0.0;
        const bool is_over = cost > amount, is_warning = used >= warning_percent;
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
    if (refused) line += ", " + std::to_string(refused) + " refused by the alert engine";
    ctx.log(bad || refused ? opk::Level::warn : opk::Level::info, line);
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
