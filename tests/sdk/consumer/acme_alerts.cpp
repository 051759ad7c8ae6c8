// A vendor's plugin, as the vendor writes it against the installed SDK: an
// alert source that warns about a tenant's disk quota, and a job type that
// keeps a count in the plugin's own table.
#include <opskernel/opk.hpp>

namespace {

class DiskQuota : public opk::AlertSource {
 public:
  opk::Status evaluate(opk::AlertContext& ctx) override {
    if (ctx.cancelled()) return opk::Status::cancelled();
    return ctx.raise({.severity = OPK_SEVERITY_WARNING,
                      .area = "quota",
                      .title = "Disk quota near its limit",
                      .message = "Tenant acme uses 91% of its disk quota",
                      .related_type = "tenant",
                      .related_id = "acme",
                      .scope = "tenant:acme",
                      .details_json = R"json({"used_percent": 91})json"});
  }
};

// Counts its runs per tenant in the plugin's own table, in portable SQL.
class CheckJob : public opk::Job {
 public:
  explicit CheckJob(opk::Plugin& plugin) : host_(plugin.host()) {}
  opk::Status run(opk::RunContext& run) override {
    const std::string tenant(run.target_tenant().empty() ? "all" : run.target_tenant());
    opk::Status s = opk::Store(host_).execute(
        "INSERT INTO p_com_acme_alerts_checks (tenant, runs) VALUES ($1, 1) ON CONFLICT (tenant) DO UPDATE SET runs "
        "= p_com_acme_alerts_checks.runs + 1",
        {tenant});
    if (!s) return s;
    run.info("vendor check ran for " + tenant);
    run.set_result(opk::Outcome::normal, "vendor ok");
    return opk::Status::ok();
  }

 private:
  const opk::Host& host_;
};

class AcmePlugin : public opk::Plugin {
 public:
  explicit AcmePlugin(opk::Host host) : Plugin(host) {}
  opk::Status start() override {
    return opk::Store(host()).migrate(
        {{1, "checks", "CREATE TABLE p_com_acme_alerts_checks (tenant TEXT PRIMARY KEY, runs BIGINT NOT NULL)"}});
  }
};

opk::Manifest describe() {
  opk::Manifest m("com.acme.alerts", "Acme alerts", "2.1.0", "Acme", "Disk quota alerts, out of tree");
  m.alert_source<DiskQuota>({.id = "acme-disk-quota",
                             .title = "Disk quota",
                             .description = "A tenant uses more than 90% of its disk quota.",
                             .area = "quota",
                             .default_schedule = "*/15 * * * *"});
  m.job<CheckJob>({.id = "vendor-check", .title = "Vendor check", .owner = "acme", .capabilities = opk::kManualRun});
  return m;
}

}  // namespace

OPK_PLUGIN(AcmePlugin, describe);
