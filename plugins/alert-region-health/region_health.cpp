// alert-region-health -- alert source region-health: the latest "api" probe
// of each region failed (critical), or is older than `stale_after`
// (warning). probe_health.h has the rules.
//
// Settings ([plugin.alert-region-health]):
//   stale_after  a region without an api probe for longer is stale (default 15m)
#include "probe_health.h"

namespace {

class RegionHealth : public opk::probe_health::ProbeHealth {
 public:
  explicit RegionHealth(opk::Plugin& plugin) : ProbeHealth(plugin, "api", "API") {}
};

opk::Manifest describe() {
  opk::Manifest m("alert-region-health", "Region health alerts", "1.0.0", "Opskernel",
                  "Alerts on regions whose API probes fail or stop");
  m.alert_source<RegionHealth>({.id = "region-health",
                                .title = "Region health",
                                .description = "The latest API probe of a region failed, or none is recent.",
                                .area = "regions",
                                .flags = OPK_ALERT_FULL_SWEEP,
                                .default_schedule = "*/5 * * * *"});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::probe_health::ProbePlugin, describe);
