// job-budget-alerts -- the BudgetAlerts job type (budget-alerts): judges
// every tenant and subscription budget in platform-records against the
// usage cost of a month (the current one by the kernel's clock, UTC,
// unless given) by the rules the cost alert source uses
// (alert-cost/budget_check.h: warning at warning_percent, breach at 100%),
// sends at most one notice per budget, threshold and month through the
// notification rules, then asks the kernel to evaluate the cost alert
// source, so its alerts open and clear with this run.
//
// A notice is a plugin event (opk.events/1 emit): name budget.warning or
// budget.breach, scope the budget's tenant, subject budget:<id>, payload
// {budget, threshold, spent, percent, period, ...}, with the idempotency
// key budget:<id>:<threshold>:<YYYY-MM>. The kernel's event log keeps one
// event per key, so a rerun, a retry, a requeue after a crash or a manual
// run in the same month never sends a second notice for the same crossing.
//
// Settings ([plugin.job-budget-alerts]):
//   evaluate_alerts  evaluate the cost alert source after a run (default true)
// Parameters: {"month": "YYYY-MM", "tenant": "tenant:acme"}.
#define OPK_REQUIRED_HOST_MINOR 4
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "budget_check.h"

namespace budget_alerts {
namespace {

namespace bc = opk::budget_check;

// The cost alert source's scheduled job in the kernel.
constexpr const char* kCostSourceJob = "alerts.cost";
// Budgets listed in the output, at most.
constexpr size_t kOutputBudgets = 1000;

struct Settings {
  bool evaluate_alerts = true;
};

std::string money_text(double v) {
  char buf[400];  // room for any double
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string percent_text(double v) {
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.0f%%", v);
  return buf;
}

// A percent with two decimals, for documents.
double rounded(double v) {
  return std::round(v * 100.0) / 100.0;
}

class BudgetAlertsPlugin : public opk::Plugin {
 public:
  explicit BudgetAlertsPlugin(opk::Host host) : Plugin(host) {}
  // Bad settings refuse the plugin, naming the key.
  opk::Status init() override {
    opk::Settings in = host().settings();
    settings_.evaluate_alerts = in.boolean("evaluate_alerts", settings_.evaluate_alerts);
    return in.status();
  }
  const Settings& settings() const { return settings_; }

 private:
  Settings settings_;
};

// One budget judged, and what became of its notice.
struct Judged {
  bc::Budget budget;
  bc::Judgement j;
  std::string notice;  // "sent", "already sent", "would send", "refused", "" (none due)
  int64_t seq = 0;
};

class BudgetAlertsJob : public opk::Job {
 public:
  explicit BudgetAlertsJob(opk::Plugin& p) : plugin_(static_cast<BudgetAlertsPlugin&>(p)) {}

  opk::Status run(opk::RunContext& run) override {
    const opk::Host& host = plugin_.host();
    const opk::Records records(host);
    std::string month = run.param<std::string>("month", "");
    if (month.empty()) {
      month = opk::records_month(host.now_ms());
    } else if (!opk::valid_records_month(month)) {
      return opk::Status::invalid("parameter month: expected a month YYYY-MM, got '" + month + "'");
    }
    std::string tenant = run.param<std::string>("tenant", "");
    if (tenant.empty() && !run.target_tenant().empty()) {
      tenant = std::string(run.target_tenant());
      if (tenant.rfind("tenant:", 0) != 0) tenant = "tenant:" + tenant;
    }

    // The month's cost and every budget, judged.
    std::vector<Judged> judged;
    int64_t bad_budgets = 0, bad_usage = 0, without_usage = 0, under = 0, warning = 0, breach = 0;
    {
      auto step = run.step("evaluate");
      const bc::CancelFn cancelled = [&] { return run.cancelled(); };
      const bc::ProblemFn problem = [&](const std::string& line) {
        run.warn(line);
        ++bad_usage;
      };
      bc::Tenants tenants;
      bc::MonthCost cost;
      opk::Status s = bc::read_tenants(records, cancelled, &tenants);
      if (s) s = bc::read_month_cost(records, month, tenants, cancelled, problem, &cost);
      if (s)
        s = records.list(
            "budgets", tenant.empty() ? opk::Json() : opk::Json{{"tenant", tenant}}, [&](const opk::Json& rows) {
              if (run.cancelled()) return opk::Status::cancelled();
              for (const auto& row : rows) {
                Judged one;
                if (std::string wrong = bc::read_budget(row, tenants, &one.budget); !wrong.empty()) {
                  run.warn("budget " + one.budget.id + " of " + one.budget.tenant + ": " + wrong + "; not judged");
                  ++bad_budgets;
                  continue;
                }
                one.j = bc::judge(one.budget, cost);
                judged.push_back(std::move(one));
              }
              return opk::Status::ok();
            });
      if (!s) {
        step.end(opk::Outcome::error, s.message());
        if (s.code() == OPK_ERR_CANCELLED) run.warn("cancelled while reading the budgets: no notice was sent");
        return s;
      }
      for (const Judged& one : judged) {
        const bc::Budget& b = one.budget;
        if (!one.j.has_usage) {
          ++without_usage;
          run.info("budget " + b.id + ": " + b.who() + " has no usage in " + month + "; spent 0.00");
        }
        (one.j.level == bc::Level::kBreach ? breach : one.j.level == bc::Level::kWarning ? warning : under)++;
        run.info("budget " + b.id + " (" + b.who() + "): " + money_text(one.j.cost) + " of " + money_text(b.amount) +
                 " (" + percent_text(one.j.percent) + ") in " + month + ": " + bc::level_name(one.j.level) +
                 (one.j.level == bc::Level::kUnder ? ", warning at " + percent_text(b.warning_percent) : ""));
      }
      step.end(bad_budgets || bad_usage ? opk::Outcome::warning : opk::Outcome::normal,
               std::to_string(judged.size()) + " budgets in " + month + ": " + std::to_string(breach) + " breach, " +
                   std::to_string(warning) + " warning, " + std::to_string(under) + " under" +
                   (bad_budgets ? ", " + std::to_string(bad_budgets) + " not judged" : "") +
                   (bad_usage ? ", " + std::to_string(bad_usage) + " usage rows left out" : ""));
    }
    run.progress(40, "judged " + std::to_string(judged.size()) + " budgets");

    // One notice per budget, threshold and month; a cancel stops between
    // budgets (each emit is whole).
    int64_t sent = 0, already = 0, would = 0, refused = 0;
    {
      auto step = run.step("notify");
      const auto* events = host.extension<opk_events_v1>(OPK_EXT_EVENTS);
      const opk_principal* self = host.system_principal();
      if (!run.dry_run() && (events == nullptr || events->call == nullptr || self == nullptr)) {
        const std::string msg = "the kernel's event log (" OPK_EXT_EVENTS
                                ") or this plugin's system identity is not available: no notice was sent";
        step.end(opk::Outcome::error, msg);
        return opk::Status::unavailable(msg);
      }
      size_t done = 0;
      for (Judged& one : judged) {
        ++done;
        if (one.j.level == bc::Level::kUnder) continue;
        if (run.cancelled()) {
          const std::string msg = "cancelled between budgets: " + std::to_string(sent) + " notices sent, " +
                                  std::to_string(already) +
                                  " sent before; the rest are sent by the next run (the key keeps it to one each)";
          run.warn(msg);
          step.end(opk::Outcome::error, msg);
          return opk::Status::cancelled();
        }
        const bc::Budget& b = one.budget;
        const std::string threshold = bc::level_name(one.j.level);
        const std::string key = "budget:" + b.id + ":" + threshold + ":" + month;
        const std::string what = "budget " + b.id + " (" + b.who() + ") " + threshold + " notice for " + month;
        if (run.dry_run()) {
          one.notice = "would send";
          ++would;
          run.info("would send the " + what + " (key " + key + ")");
          continue;
        }
        const opk::Json request = {
            {"name", "budget." + threshold},
            {"scope", b.tenant},
            {"subject", "budget:" + b.id},
            {"key", key},
            {"payload",
             {{"budget",
               {{"id", b.id},
                {"tenant", b.tenant},
                {"subscription", b.subscription.empty() ? opk::Json() : opk::Json(b.subscription)},
                {"amount", b.amount},
                {"warning_percent", b.warning_percent}}},
              {"threshold", threshold},
              {"spent", one.j.cost},
              {"percent", rounded(one.j.percent)},
              {"period", month},
              {"tenant", b.tenant},
              {"who", b.who()},
              {"run_id", run.run_id()}}}};
        char* out = nullptr;
        const opk_status st = events->call(host.raw(), self, "emit", request.dump().c_str(), nullptr, &out);
        const opk::Json answer = out ? opk::Json::parse(out, nullptr, false) : opk::Json();
        if (out) host.free(out);
        if (st != OPK_OK) {
          const std::string why =
              answer.is_object() && answer.contains("error") ? answer["error"].dump() : "status " + std::to_string(st);
          if (st != OPK_ERR_INVALID_ARGUMENT) {
            const std::string msg = what + " not sent: " + why + "; " + std::to_string(sent) + " sent before it";
            run.error(msg);
            step.end(opk::Outcome::error, msg);
            return {st, msg};
          }
          run.warn(what + " refused by the event log: " + why);
          one.notice = "refused";
          ++refused;
          continue;
        }
        one.seq = answer.is_object() ? answer.value("seq", int64_t{0}) : 0;
        if (answer.is_object() && answer.value("duplicate", false)) {
          one.notice = "already sent";
          ++already;
          run.info(what + " was sent before (event " + std::to_string(one.seq) + ")");
        } else {
          one.notice = "sent";
          ++sent;
          run.info("sent the " + what + " (event " + std::to_string(one.seq) + ")");
        }
        run.progress(40 + 50.0 * static_cast<double>(done) / static_cast<double>(judged.size()));
      }
      step.end(refused ? opk::Outcome::warning : opk::Outcome::normal,
               run.dry_run() ? std::to_string(would) + " notices would be sent"
                             : std::to_string(sent) + " notices sent, " + std::to_string(already) + " sent before" +
                                   (refused ? ", " + std::to_string(refused) + " refused" : ""));
    }

    opk::Json evaluation = nullptr;
    if (!run.dry_run() && plugin_.settings().evaluate_alerts) evaluation = evaluate_cost_alerts(run);

    opk::Json list = opk::Json::array();
    for (const Judged& one : judged) {
      if (list.size() >= kOutputBudgets) break;
      const bc::Budget& b = one.budget;
      list.push_back({{"budget", b.id},
                      {"tenant", b.tenant},
                      {"subscription", b.subscription.empty() ? opk::Json() : opk::Json(b.subscription)},
                      {"amount", b.amount},
                      {"warning_percent", b.warning_percent},
                      {"spent", one.j.cost},
                      {"percent", rounded(one.j.percent)},
                      {"level", bc::level_name(one.j.level)},
                      {"notice", one.notice.empty() ? opk::Json() : opk::Json(one.notice)},
                      {"event", one.seq ? opk::Json(one.seq) : opk::Json()}});
    }
    run.set_output(
        {{"dry_run", run.dry_run()},
         {"month", month},
         {"tenant", tenant.empty() ? opk::Json() : opk::Json(tenant)},
         {"budgets", judged.size()},
         {"under", under},
         {"warning", warning},
         {"breach", breach},
         {"not_judged", bad_budgets},
         {"usage_rows_left_out", bad_usage},
         {"without_usage", without_usage},
         {"notices", {{"sent", sent}, {"already_sent", already}, {"would_send", would}, {"refused", refused}}},
         {"alert_evaluation", evaluation},
         {"results", list}});
    std::string summary =
        (run.dry_run() ? "dry run: " : "") + std::to_string(judged.size()) + " budgets in " + month + ": " +
        std::to_string(breach) + " breach, " + std::to_string(warning) + " warning; " +
        (run.dry_run() ? std::to_string(would) + " notices would be sent, none sent"
                       : std::to_string(sent) + " notices sent, " + std::to_string(already) + " sent before");
    if (bad_budgets) summary += "; " + std::to_string(bad_budgets) + " budgets not judged";
    if (bad_usage) summary += "; " + std::to_string(bad_usage) + " usage rows left out";
    if (refused) summary += "; " + std::to_string(refused) + " notices refused";
    run.set_result(bad_budgets || bad_usage || refused ? opk::Outcome::warning : opk::Outcome::normal, summary);
    return opk::Status::ok();
  }

  void cancel(opk::RunContext& run) override { run.info("cancel requested: stopping before the next budget's notice"); }

 private:
  // Asks the kernel to evaluate the cost alert source now (opk.jobs/1
  // run_now as the plugin's system identity); the run id, or null. Where
  // the kernel has no job service (the SDK's test host), the source
  // evaluates on its own schedule.
  opk::Json evaluate_cost_alerts(const opk::RunContext& run) const {
    auto step = run.step("alerts");
    const opk::Host& host = plugin_.host();
    const auto* jobs = host.extension<opk_jobs_v1>(OPK_EXT_JOBS);
    const opk_principal* self = host.system_principal();
    if (jobs == nullptr || jobs->call == nullptr || self == nullptr) {
      run.info(
          "the kernel's job service is not available here: the cost alerts follow at the source's next "
          "evaluation");
      step.end(opk::Outcome::normal, "the cost source evaluates on its schedule");
      return nullptr;
    }
    const opk::Json request = {
        {"job_id", kCostSourceJob},
        {"reason", "budgets judged by run " + std::to_string(run.run_id()) + " of " + std::string(run.job_type())}};
    char* answer = nullptr;
    const opk_status st = jobs->call(host.raw(), self, "run_now", request.dump().c_str(), nullptr, &answer);
    const opk::Json doc = answer ? opk::Json::parse(answer, nullptr, false) : opk::Json();
    if (answer) host.free(answer);
    if (st == OPK_OK && doc.is_object() && doc.contains("run_ids") && doc["run_ids"].is_array() &&
        !doc["run_ids"].empty()) {
      run.info(std::string("alert evaluation ") + kCostSourceJob + " started as run " + doc["run_ids"][0].dump());
      step.end(opk::Outcome::normal, std::string(kCostSourceJob) + " started");
      return doc["run_ids"][0];
    }
    const std::string why =
        doc.is_object() && doc.contains("error") ? doc["error"].dump() : "status " + std::to_string(st);
    run.warn(std::string("could not start the alert evaluation ") + kCostSourceJob + " (" + why +
             "): the cost alerts follow at its next scheduled evaluation");
    step.end(opk::Outcome::warning, std::string(kCostSourceJob) + " not started");
    return nullptr;
  }

  const BudgetAlertsPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("job-budget-alerts", "Budget alerts", "1.0.0", "Opskernel",
                  "Judges tenant and subscription budgets against the month's usage cost and sends one notice per "
                  "budget, threshold and month");
  m.job<BudgetAlertsJob>({.id = "budget-alerts",
                          .title = "Budget alerts",
                          .description = "Evaluates tenant and subscription budget warning or breach notifications.",
                          .owner = "platform-team",
                          .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun | opk::kRequeue,
                          .params_schema_json = R"json({"type":"object","additionalProperties":false,
          "properties":{
            "month":{"type":"string","pattern":"^[0-9]{4}-(0[1-9]|1[0-2])$",
                     "description":"Judge the usage cost of this month (YYYY-MM) instead of the current one"},
            "tenant":{"type":"string","pattern":"^tenant:[A-Za-z0-9._-]{1,128}$",
                      "description":"Judge only this tenant's budgets (its node, tenant:<id>)"}}})json",
                          .default_schedule = "20 * * * *",
                          .target_duration_ms = 30000,
                          .timeout_ms = 1800000,
                          .priority = 4,
                          .worker_pool = "default",
                          .actions = {{"evaluate", "Judge every budget against the month's usage cost"},
                                      {"notify", "Send one notice per budget, threshold and month"},
                                      {"alerts", "Evaluate the cost alerts"}}});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace
}  // namespace budget_alerts

OPK_PLUGIN(budget_alerts::BudgetAlertsPlugin, budget_alerts::describe);
