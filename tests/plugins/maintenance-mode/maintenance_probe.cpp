// maintenance_probe: a plugin reading the tenants' maintenance windows
// through opskernel.maintenance/1 as admin-http does, for the
// maintenance-mode tests on the SDK's test host. It offers
//   job maintenance-lookup  {"scope"}: the output is {"available", "mode"
//                           (0 none, 1 read-only, 2 offline), "tenant",
//                           "until_ms", "banner", "window_id", "bare"
//                           (the mode asked without a state)}
#include <opskernel/maintenance.h>

#include <opskernel/opk.hpp>

namespace {

using opk::Json;
using opk::Status;

const char* const kMaintenanceProbeSchema = R"json({
  "type": "object",
  "additionalProperties": false,
  "properties": {"scope": {"type": "string"}}
})json";

class MaintenanceProbe : public opk::Plugin {
 public:
  explicit MaintenanceProbe(opk::Host host) : Plugin(host) {}
};

class MaintenanceLookup : public opk::Job {
 public:
  explicit MaintenanceLookup(opk::Plugin& p) : p_(p) {}
  Status run(opk::RunContext& run) override {
    const auto* ext = p_.host().extension<opk_maintenance_v1>(OPK_EXT_MAINTENANCE);
    Json out = {{"available", ext != nullptr}};
    if (ext) {
      const std::string scope = run.param<std::string>("scope", "");
      opk_maintenance_state st{};
      st.struct_size = sizeof st;
      st.until_ms = -7;
      out["mode"] = ext->for_scope(p_.host().raw(), scope.c_str(), &st);
      out["tenant"] = st.tenant;
      out["until_ms"] = st.until_ms;
      out["banner"] = st.banner;
      out["window_id"] = st.window_id;
      out["bare"] = ext->for_scope(p_.host().raw(), scope.c_str(), nullptr);
    }
    run.set_output(out);
    return Status::ok();
  }

 private:
  opk::Plugin& p_;
};

opk::Manifest describe() {
  opk::Manifest m("maintenance-probe", "Maintenance probe", "1.0.0", "Opskernel tests",
                  "Reads the tenants' maintenance windows as admin-http does");
  m.job<MaintenanceLookup>({.id = "maintenance-lookup",
                            .title = "maintenance-lookup",
                            .capabilities = opk::kManualRun,
                            .params_schema_json = kMaintenanceProbeSchema});
  m.requires_extension(OPK_EXT_MAINTENANCE, true);
  return m;
}

}  // namespace

OPK_PLUGIN(MaintenanceProbe, describe);
