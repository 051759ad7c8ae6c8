// alert-identity-health -- alert source identity-health: the latest
// "identity" probe of each region failed (critical), or is older than
// `stale_after` (warning). The rules are region-health's, for the identity
// service (alert-region-health/probe_health.h).
//
// Settings ([plugin.alert-identity-health]):
//   stale_after  a region without an identity probe for longer is stale (default 15m)
#include "probe_health.h"

namespace {

class IdentityHealth : public opk::probe_health::ProbeHealth {
 public:
  explicit IdentityHealth(opk::Plugin& plugin) : ProbeHealth(plugin, "identity", "Identity service") {}
};

opk::Manifest describe() {
  opk::Manifest m("alert-identity-health", "Identity health alerts", "1.0.0", "Opskernel",
                  "Alerts on regions whose identity-service probes fail or stop");
  m.alert_source<IdentityHealth>(
      {.id = "identity-health",
       .title = "Identity health",
       .description = "The latest identity-service probe of a region failed, or none is recent.",
       .area = "identity",
       .flags = OPK_ALERT_FULL_SWEEP,
       .default_schedule = "*/5 * * * *"});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::probe_health::ProbePlugin, describe);
