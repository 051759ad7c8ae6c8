// alert-missing-billing -- alert source missing-billing: a tenant with an
// active subscription and no billing record (no one to invoice).
//
// A full sweep: once the tenant has a billing record, or no active
// subscription, the engine closes the alert as cleared after the next good
// sweep. No settings. docs/alert-sources.md describes every alert source.
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

class MissingBilling : public opk::AlertSource {
 public:
  explicit MissingBilling(opk::Plugin& plugin) : host_(plugin.host()) {}

  opk::Status evaluate(opk::AlertContext& ctx) override {
    const opk::Records records(host_);
    std::set<std::string> billed;  // "tenant:<name>" with a billing record
    opk::Status s = records.list("billing", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) billed.insert(row.value("tenant", ""));
      return opk::Status::ok();
    });
    if (!s) return s;
    std::map<std::string, std::vector<std::string>> active;  // tenant -> its active subscriptions
    int64_t bad = 0;
    s = records.list("subscriptions", {{"status", "active"}}, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) {
        const std::string tenant = row.value("tenant", "");
        if (tenant.size() > 7 && tenant.compare(0, 7, "tenant:") == 0) {
          active[tenant].push_back(row.value("id", ""));
          continue;
        }
        // Not "tenant:<name>": no tenant to alert about; logged, not guessed.
        ctx.log(opk::Level::warn,
                "subscription " + row.value("id", "") + ": tenant '" + tenant + "' is not tenant:<name>; skipped");
        ++bad;
      }
      return opk::Status::ok();
    });
    if (!s) return s;

    int64_t missing = 0, refused = 0;
    for (const auto& [node, subscriptions] : active) {
      if (billed.count(node)) continue;
      ++missing;
      const std::string name = node.substr(7);
      const size_t n = subscriptions.size();
      opk::AlertContext::Alert a;
      a.severity = OPK_SEVERITY_WARNING;
      a.area = "billing";
      a.title = "Tenant " + name + " has no billing record";
      a.message = "Tenant " + name + " has " + std::to_string(n) + " active subscription" + (n == 1 ? "" : "s") + " (" +
                  subscriptions.front() + (n > 1 ? ", ..." : "") + ") and no billing record: no contact to invoice";
      a.related_type = "tenant";
      a.related_id = name;
      a.scope = node;
      const std::vector<std::string> sample(subscriptions.begin(), subscriptions.begin() + std::min<size_t>(n, 20));
      a.details_json = opk::Json{{"tenant", node}, {"active_subscriptions", n}, {"subscriptions", sample}}.dump();
      // Bad input (a tenant without its hierarchy node) is refused and logged
      // by the engine; the sweep goes on. Anything else stops it.
      if (opk::Status r = ctx.raise(a); !r) {
        if (r.code() != OPK_ERR_INVALID_ARGUMENT) return r;
        ++refused;
      }
    }
    std::string line = "checked " + std::to_string(active.size()) + " tenants with an active subscription, " +
                       std::to_string(missing) + " without a billing record";
    if (bad) line += ", " + std::to_string(bad) + " subscriptions without a valid tenant";
    if (refused) line += ", " + std::to_string(refused) + " refused by the alert engine";
    ctx.log(bad || refused ? opk::Level::warn : opk::Level::info, line);
    return opk::Status::ok();
  }

 private:
  opk::Host host_;
};

opk::Manifest describe() {
  opk::Manifest m("alert-missing-billing", "Missing billing alerts", "1.0.0", "Opskernel",
                  "Warns about tenants with active subscriptions and no billing record");
  m.alert_source<MissingBilling>({.id = "missing-billing",
                                  .title = "Missing billing information",
                                  .description = "A tenant with an active subscription has no billing record.",
                                  .area = "billing",
                                  .flags = OPK_ALERT_FULL_SWEEP,
                                  .default_schedule = "@hourly"});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::Plugin, describe);
