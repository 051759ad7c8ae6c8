// A vendor's plugin, as the vendor writes it against the installed SDK: an
// alert source that warns about a tenant's disk quota, and a job type.
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

class CheckJob : public opk::Job {
 public:
  opk::Status run(opk::RunContext& run) override {
    run.info("vendor check ran for " + std::string(run.target_tenant().empty() ? "all" : run.target_tenant()));
    run.set_result(opk::Outcome::normal, "vendor ok");
    return opk::Status::ok();
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

OPK_PLUGIN(opk::Plugin, describe);
