// probe_health.h -- the alert source behind region-health ("api" probes)
// and identity-health ("identity" probes): one alert per region whose
// latest probe of the kind failed (critical), is older than the setting
// `stale_after` (warning), is missing (warning), or is dated in the future
// (warning: the region's health is unknown). Scope "platform", related
// region/<id>. A full sweep: a region back to a fresh, good probe is closed
// as cleared by the engine after the next good sweep.
//
// Shared by the plugins alert-region-health and alert-identity-health, which
// differ only in the probe kind and the names they give.
#ifndef OPSKERNEL_PLUGINS_PROBE_HEALTH_H
#define OPSKERNEL_PLUGINS_PROBE_HEALTH_H

#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

namespace opk::probe_health {

// A probe dated up to this far ahead of the evaluation is clock skew, not
// a bad record.
inline constexpr int64_t kFutureSkewMs = 60'000;

// The plugin: reads and checks `stale_after` (default 15m, 1m to 7d).
class ProbePlugin : public opk::Plugin {
 public:
  explicit ProbePlugin(opk::Host host) : Plugin(host) {}
  opk::Status init() override {
    opk::Settings s = host().settings();
    stale_after_ms_ = s.duration_ms("stale_after", 15 * 60'000, 60'000, 7 * 86'400'000);
    return s.status();
  }
  int64_t stale_after_ms() const { return stale_after_ms_; }

 private:
  int64_t stale_after_ms_ = 15 * 60'000;
};

// Evaluates the latest probes of `kind` ("api", "identity") of every region.
// `label` names the probed service in titles ("API", "identity service").
class ProbeHealth : public opk::AlertSource {
 public:
  ProbeHealth(opk::Plugin& plugin, std::string kind, std::string label)
      : plugin_(static_cast<ProbePlugin&>(plugin)), kind_(std::move(kind)), label_(std::move(label)) {}

  opk::Status evaluate(opk::AlertContext& ctx) override {
    const opk::Records records(plugin_.host());
    opk::Json latest;
    if (opk::Status s = records.latest_probes(kind_, &latest); !s) return s;
    std::map<std::string, opk::Json> by_region;
    for (auto& p : latest) {
      if (p.value("kind", "") != kind_) continue;
      const std::string region = p.value("region", "");
      by_region[region] = std::move(p);
    }

    const int64_t now = ctx.now_ms();
    int64_t regions = 0, failing = 0, stale = 0, refused = 0;
    opk::Status s = records.list("regions", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) {
        ++regions;
        const std::string id = row.value("id", ""), name = row.value("name", id);
        opk::AlertContext::Alert a;
        opk::Json details = {
            {"region", id}, {"name", name}, {"kind", kind_}, {"stale_after_ms", plugin_.stale_after_ms()}};
        auto it = by_region.find(id);
        // Titles and messages name the probe's time, not its age, so they
        // change only with a new probe (the alert's history stays short).
        if (it == by_region.end()) {
          a.severity = OPK_SEVERITY_WARNING;
          a.title = label_ + " of region " + name + " never probed";
          a.message = "No " + kind_ + " probe has been recorded for region " + name + " (" + id + ")";
          ++stale;
        } else {
          const opk::Json& p = it->second;
          const int64_t at = p.value("time_ms", int64_t{0});
          const bool ok = p.value("ok", false);
          const std::string detail = p.value("detail", opk::Json()).is_string() ? p["detail"].get<std::string>() : "";
          details["probe"] = p;
          details["age_ms"] = now - at;
          if (at > now + kFutureSkewMs) {
            // A bad record: it says nothing about the region's health now.
            ctx.log(opk::Level::warn, "region " + id + ": latest " + kind_ + " probe time_ms " + std::to_string(at) +
                                          " (" + utc(at) + ") is ahead of the evaluation time " + utc(now));
            a.severity = OPK_SEVERITY_WARNING;
            a.title = label_ + " health of region " + name + " unknown";
            a.message = "The latest " + kind_ + " probe of region " + name + " is dated " + utc(at) +
                        ", in the future: its health is unknown";
            ++stale;
          } else if (!ok) {
            a.severity = OPK_SEVERITY_CRITICAL;
            a.title = label_ + " of region " + name + " is failing";
            a.message = "The latest " + kind_ + " probe of region " + name + ", at " + utc(at) + ", failed" +
                        (detail.empty() ? std::string() : ": " + detail);
            ++failing;
          } else if (now - at > plugin_.stale_after_ms()) {
            a.severity = OPK_SEVERITY_WARNING;
            a.title = label_ + " of region " + name + " not probed recently";
            a.message = "No " + kind_ + " probe of region " + name + " since " + utc(at) + " (stale after " +
                        std::to_string(plugin_.stale_after_ms() / 60'000) + " min)";
            ++stale;
          } else {
            continue;
          }
        }
        a.related_type = "region";
        a.related_id = id;
        a.scope = "platform";
        a.details_json = details.dump();
        // Bad input is refused and logged by the engine; the sweep goes on.
        // Anything else stops it.
        if (opk::Status r = ctx.raise(a); !r) {
          if (r.code() != OPK_ERR_INVALID_ARGUMENT) return r;
          ++refused;
        }
      }
      return opk::Status::ok();
    });
    if (!s) return s;
    std::string line = "checked " + std::to_string(regions) + " regions, " + std::to_string(failing) +
                       " with a failed " + kind_ + " probe, " + std::to_string(stale) + " without a recent one";
    if (refused) line += ", " + std::to_string(refused) + " refused by the alert engine";
    ctx.log(refused ? opk::Level::warn : opk::Level::info, line);
    return opk::Status::ok();
  }

 private:
  // "2026-12-03T23:40:00Z"
  static std::string utc(int64_t ms) {
    using namespace std::chrono;
    const sys_seconds t = floor<seconds>(sys_time<milliseconds>(milliseconds(ms)));
    const year_month_day d{floor<days>(t)};
    const hh_mm_ss hms{t - floor<days>(t)};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
  }

  const ProbePlugin& plugin_;
  const std::string kind_, label_;
};

}  // namespace opk::probe_health

#endif  // OPSKERNEL_PLUGINS_PROBE_HEALTH_H
