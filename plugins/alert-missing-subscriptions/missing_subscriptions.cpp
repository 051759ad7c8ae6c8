// alert-missing-subscriptions -- alert source missing-subscriptions: a
// tenant the records know (it has a subscription or a billing record) with
// no active subscription.
//
// A full sweep: once the tenant has an active subscription again, or its
// records are gone, the engine closes the alert as cleared after the next
// good sweep. No settings. docs/alert-sources.md describes every alert
// source.
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <map>
#include <string>

namespace {

// What the records say about one tenant.
struct Tenant {
  std::map<std::string, int64_t> by_status;  // subscription status -> count
  bool billing = false;
};

class MissingSubscriptions : public opk::AlertSource {
 public:
  explicit MissingSubscriptions(opk::Plugin& plugin) : host_(plugin.host()) {}

  opk::Status evaluate(opk::AlertContext& ctx) override {
    const opk::Records records(host_);
    std::map<std::string, Tenant> tenants;  // "tenant:<name>" -> records
    int64_t bad = 0;
    // A tenant reference that is not "tenant:<name>" names no tenant: it is
    // logged and left out rather than guessed at.
    auto tenant_of = [&](const opk::Json& row, const std::string& record) -> Tenant* {
      const std::string t = row.value("tenant", "");
      if (t.size() > 7 && t.compare(0, 7, "tenant:") == 0) return &tenants[t];
      ctx.log(opk::Level::warn, record + ": tenant '" + t + "' is not tenant:<name>; skipped");
      ++bad;
      return nullptr;
    };
    opk::Status s = records.list("subscriptions", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows)
        if (Tenant* t = tenant_of(row, "subscription " + row.value("id", ""))) ++t->by_status[row.value("status", "")];
      return opk::Status::ok();
    });
    if (!s) return s;
    s = records.list("billing", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows)
        if (Tenant* t = tenant_of(row, "billing record of " + row.value("contact", ""))) t->billing = true;
      return opk::Status::ok();
    });
    if (!s) return s;

    int64_t without = 0, refused = 0;
    for (const auto& [node, t] : tenants) {
      if (t.by_status.count("active")) continue;
      ++without;
      int64_t total = 0;
      std::string statuses;
      for (const auto& [status, n] : t.by_status) {
        total += n;
        statuses += (statuses.empty() ? "" : ", ") + std::to_string(n) + " " + status;
      }
      const std::string name = node.substr(7);
      opk::AlertContext::Alert a;
      a.severity = OPK_SEVERITY_WARNING;
      a.area = "subscriptions";
      a.title = "Tenant " + name + " has no active subscription";
      a.message = total == 0 ? "Tenant " + name + " has a billing record but no subscription"
                             : "Tenant " + name + " has " + std::to_string(total) + " subscription" +
                                   (total == 1 ? "" : "s") + ", none active (" + statuses + ")";
      a.related_type = "tenant";
      a.related_id = name;
      a.scope = node;
      a.details_json =
          opk::Json{{"tenant", node}, {"subscriptions", t.by_status}, {"billing_record", t.billing}}.dump();
      // Bad input (a tenant without its hierarchy node) is refused and logged
      // by the engine; the sweep goes on. Anything else stops it.
      if (opk::Status r = ctx.raise(a); !r) {
        if (r.code() != OPK_ERR_INVALID_ARGUMENT) return r;
        ++refused;
      }
    }
    std::string line = "checked " + std::to_string(tenants.size()) + " tenants, " + std::to_string(without) +
                       " without an active subscription";
    if (bad) line += ", " + std::to_string(bad) + " records without a valid tenant";
    if (refused) line += ", " + std::to_string(refused) + " refused by the alert engine";
    ctx.log(bad || refused ? opk::Level::warn : opk::Level::info, line);
    return opk::Status::ok();
  }

 private:
  opk::Host host_;
};

opk::Manifest describe() {
  opk::Manifest m("alert-missing-subscriptions", "Missing subscription alerts", "1.0.0", "Opskernel",
                  "Warns about tenants with no active subscription");
  m.alert_source<MissingSubscriptions>(
      {.id = "missing-subscriptions",
       .title = "Missing subscriptions",
       .description = "A tenant with subscription or billing records has no active subscription.",
       .area = "subscriptions",
       .flags = OPK_ALERT_FULL_SWEEP,
       .default_schedule = "@hourly"});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::Plugin, describe);
