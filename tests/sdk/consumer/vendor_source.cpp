// A vendor's alert source and job type, as a vendor writes them against the
// installed SDK.
#include <opskernel/opk.hpp>

namespace {

class QuotaSource : public opk::AlertSource {
 public:
  opk::Status evaluate(opk::AlertContext& ctx) override {
    return ctx.raise({.severity = OPK_SEVERITY_WARNING,
                      .area = "quota",
                      .title = "Quota near limit",
                      .message = "tenant acme uses 91% of its quota",
                      .related_type = "tenant",
                      .related_id = "acme",
                      .scope = "tenant:acme",
                      .details_json = ""});
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

class VendorPlugin : public opk::Plugin {
 public:
  using Plugin::Plugin;
};

opk::Manifest describe() {
  opk::Manifest m("com.example.quota", "Example quota", "2.1.0", "Example Vendor", "An out-of-tree plugin");
  m.alert_source<QuotaSource>({.id = "com.example.quota",
                               .title = "Quota",
                               .description = "Quota use",
                               .area = "quota",
                               .flags = 0,
                               .default_schedule = "*/15 * * * *",
                               .translations = {}});
  m.job<CheckJob>({.id = "vendor-check",
                   .title = "Vendor check",
                   .description = "",
                   .owner = "vendor",
                   .capabilities = opk::kManualRun,
                   .params_schema_json = "",
                   .default_schedule = "",
                   .target_duration_ms = 0,
                   .timeout_ms = 0,
                   .priority = 0,
                   .worker_pool = "",
                   .actions = {},
                   .translations = {}});
  return m;
}

}  // namespace

OPK_PLUGIN(VendorPlugin, describe);
