// alert-missing-usage -- alert source missing-usage: an active subscription
// without a usage row for the last closed month (the month before the one
// the evaluation time falls in, UTC). A subscription whose period starts
// after that month, or ended before it, is not expected to have usage for it.
//
// A full sweep: an alert whose subscription got its usage, was cancelled or
// removed is closed as cleared by the engine after the next good sweep.
// No settings. docs/alert-sources.md describes every alert source.
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <unordered_set>

namespace {

class MissingUsage : public opk::AlertSource {
 public:
  explicit MissingUsage(opk::Plugin& plugin) : host_(plugin.host()) {}

  opk::Status evaluate(opk::AlertContext& ctx) override {
    using namespace std::chrono;
    const year_month_day today{floor<days>(sys_time<milliseconds>(milliseconds(ctx.now_ms())))};
    const year_month closed = year_month(today.year(), today.month()) - months(1);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(closed.year()), static_cast<unsigned>(closed.month()));
    const std::string month = buf;

    const opk::Records records(host_);
    std::unordered_set<std::string> with_usage;
    opk::Status s = records.list("usage", {{"month", month}}, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) with_usage.insert(row.value("subscription", ""));
      return opk::Status::ok();
    });
    if (!s) return s;

    int64_t checked = 0, missing = 0, not_due = 0, refused = 0;
    s = records.list("subscriptions", {{"status", "active"}}, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) {
        const std::string id = row.value("id", "");
        ++checked;
        // "YYYY-MM-DD" compared with "YYYY-MM": a period starting after the
        // month, or ended before it, owes no usage for it.
        const std::string start = row.value("period_start", "");
        const opk::Json end = row.value("period_end", opk::Json());
        if ((start.size() >= 7 && start.compare(0, 7, month) > 0) ||
            (end.is_string() && end.get_ref<const std::string&>().compare(0, 7, month) < 0)) {
          ++not_due;
          continue;
        }
        if (with_usage.count(id)) continue;
        ++missing;
        const std::string tenant = row.value("tenant", ""), product = row.value("product", "");
        opk::AlertContext::Alert a;
        a.severity = OPK_SEVERITY_WARNING;
        a.area = "billing";
        a.title = "No usage for " + month;
        a.message = "Subscription " + id + " (" + product + ", " + tenant +
                    ") is active but has no usage recorded for " + month;
        a.related_type = "subscription";
        a.related_id = id;
        a.scope = "subscription:" + id;
        a.details_json =
            opk::Json{{"subscription", id}, {"tenant", tenant}, {"product", product}, {"month", month}}.dump();
        // Bad input (a subscription without its hierarchy node) is refused
        // and logged by the engine; the sweep goes on. Anything else stops it.
        if (opk::Status r = ctx.raise(a); !r) {
          if (r.code() != OPK_ERR_INVALID_ARGUMENT) return r;
          ++refused;
        }
      }
      return opk::Status::ok();
    });
    if (!s) return s;
    std::string line = "checked " + std::to_string(checked) + " subscriptions, " + std::to_string(missing) +
                       " without usage for " + month;
    if (not_due) line += ", " + std::to_string(not_due) + " outside their period";
    if (refused) line += ", " + std::to_string(refused) + " refused by the alert engine";
    ctx.log(refused ? opk::Level::warn : opk::Level::info, line);
    return opk::Status::ok();
  }

 private:
  opk::Host host_;
};

opk::Manifest describe() {
  opk::Manifest m("alert-missing-usage", "Missing usage alerts", "1.0.0", "Opskernel",
                  "Warns about active subscriptions without usage for the last closed month");
  m.alert_source<MissingUsage>({.id = "missing-usage",
                                .title = "Missing usage",
                                .description = "An active subscription has no usage row for the last closed month.",
                                .area = "billing",
                                .flags = OPK_ALERT_FULL_SWEEP,
                                .default_schedule = "@hourly"});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::Plugin, describe);
