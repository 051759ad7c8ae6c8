// alert-license-validity -- alert source license-validity, for the
// platform's own licenses (platform-only: only PlatformAdministrator sees
// its alerts). A license whose expires_on is within `window_days` of the
// evaluation day (UTC) and is not renewed opens a warning; once it has
// expired the alert turns critical and is escalated once for that expiry
// date. Renewed means renewed_on on or after the window's first day (an
// older renewal belongs to an earlier expiry). A renewed license, or one
// whose expires_on moved beyond the window, is closed as cleared by the
// engine's full sweep. A license whose dates cannot be read raises a warning
// naming the field, so a bad record neither closes nor hides its alert.
//
// Settings ([plugin.alert-license-validity]):
//   window_days  days before expiry the alert opens (default 90, 1..3650)
// Its own table p_alert_license_validity_escalations remembers which expiry
// was escalated, so a restart or a re-run does not escalate it again.
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

namespace {

using Day = std::chrono::sys_days;

// "YYYY-MM-DD" as a day, or nullopt.
std::optional<Day> parse_day(const opk::Json& v) {
  if (!v.is_string() || v.get_ref<const std::string&>().size() != 10) return std::nullopt;
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  if (std::sscanf(v.get_ref<const std::string&>().c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3)
    return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(m), std::chrono::day(d)};
  if (!ymd.ok()) return std::nullopt;
  return Day(ymd);
}

class LicensePlugin : public opk::Plugin {
 public:
  explicit LicensePlugin(opk::Host host) : Plugin(host) {}
  opk::Status init() override {
    opk::Settings s = host().settings();
    window_days_ = s.integer("window_days", 90, 1, 3650);
    if (!s.ok()) return s.status();
    opk::Store store(host());
    if (!store.available()) return opk::Status::ok();  // plugins list/check: no store
    static const opk_store_migration kMigrations[] = {
        {1, "escalations",
         "CREATE TABLE p_alert_license_validity_escalations (license TEXT NOT NULL, expires_on TEXT NOT NULL, "
         "escalated_ms BIGINT NOT NULL, PRIMARY KEY (license, expires_on))"},
    };
    return store.migrate({std::begin(kMigrations), std::end(kMigrations)});
  }
  int64_t window_days() const { return window_days_; }

 private:
  int64_t window_days_ = 90;
};

class LicenseValidity : public opk::AlertSource {
 public:
  explicit LicenseValidity(opk::Plugin& plugin) : plugin_(static_cast<LicensePlugin&>(plugin)) {}

  opk::Status evaluate(opk::AlertContext& ctx) override {
    using namespace std::chrono;
    const Day today = floor<days>(sys_time<milliseconds>(milliseconds(ctx.now_ms())));
    const int64_t window = plugin_.window_days();
    const opk::Records records(plugin_.host());
    const opk::Store store(plugin_.host());
    int64_t checked = 0, expiring = 0, expired = 0, escalated = 0, bad = 0, refused = 0;
    opk::Status s = records.list("licenses", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) {
        ++checked;
        const std::string id = row.value("id", ""), product = row.value("product", "");
        const opk::Json expires_field = row.value("expires_on", opk::Json());
        const opk::Json renewed_field = row.value("renewed_on", opk::Json());
        const auto expires = parse_day(expires_field);
        const auto renewed = parse_day(renewed_field);
        opk::AlertContext::Alert a;
        a.area = "licensing";
        a.related_type = "license";
        a.related_id = id;
        a.scope = "platform";
        opk::Json details = {{"license", id},
                             {"product", product},
                             {"expires_on", expires_field},
                             {"renewed_on", renewed_field},
                             {"window_days", window}};
        bool escalate = false;
        if (!expires || (!renewed_field.is_null() && !renewed)) {
          const char* field = !expires ? "expires_on" : "renewed_on";
          const std::string value = (!expires ? expires_field : renewed_field).dump();
          ctx.log(opk::Level::warn, "license " + id + ": " + field + " " + value + " is not a YYYY-MM-DD date");
          a.severity = OPK_SEVERITY_WARNING;
          a.title = "License " + id + " cannot be checked";
          a.message = "License " + id + " (" + product + "): " + field + " " + value + " is not a YYYY-MM-DD date";
          ++bad;
        } else {
          const int64_t days_left = (*expires - today).count();
          if (days_left > window || (renewed && *renewed >= *expires - days(window))) continue;
          const std::string date = expires_field.get<std::string>();
          details["days_left"] = days_left;
          if (days_left >= 0) {
            a.severity = OPK_SEVERITY_WARNING;
            a.title = "License " + id + " expires on " + date;
            a.message = "License " + id + " (" + product + ") expires on " + date + " and is not renewed";
            ++expiring;
          } else {
            a.severity = OPK_SEVERITY_CRITICAL;
            a.title = "License " + id + " expired on " + date;
            a.message = "License " + id + " (" + product + ") expired on " + date + " and is not renewed";
            escalate = true;
            ++expired;
          }
        }
        a.details_json = details.dump();
        if (opk::Status r = ctx.raise(a); !r) {
          if (r.code() != OPK_ERR_INVALID_ARGUMENT) return r;
          ++refused;
          continue;
        }
        if (!escalate) continue;
        // Once per expiry date: the row is claimed first, so two sweeps at
        // once escalate once; it is given back when the escalation fails.
        const std::string date = expires_field.get<std::string>();
        int64_t claimed = 0;
        opk::Status c = store.execute(
            "INSERT INTO p_alert_license_validity_escalations (license, expires_on, escalated_ms) VALUES ($1, $2, $3) "
            "ON CONFLICT (license, expires_on) DO NOTHING",
            {id, date, std::to_string(ctx.now_ms())}, &claimed);
        if (!c) return c;
        if (claimed == 0) continue;
        opk::Status e = ctx.escalate("license", id, "license " + id + " expired on " + date + " and is not renewed");
        if (!e) {
          ctx.log(opk::Level::warn, "license " + id + ": escalation refused: " + e.message());
          opk::Status u = store.execute(
              "DELETE FROM p_alert_license_validity_escalations WHERE license = $1 AND expires_on = $2", {id, date});
          if (!u) return u;
          continue;
        }
        ++escalated;
      }
      return opk::Status::ok();
    });
    if (!s) return s;
    std::string line = "checked " + std::to_string(checked) + " licenses, " + std::to_string(expiring) +
                       " expiring within " + std::to_string(window) + " days, " + std::to_string(expired) +
                       " expired (" + std::to_string(escalated) + " escalated now)";
    if (bad) line += ", " + std::to_string(bad) + " with unreadable dates";
    if (refused) line += ", " + std::to_string(refused) + " refused by the alert engine";
    ctx.log(bad || refused ? opk::Level::warn : opk::Level::info, line);
    return opk::Status::ok();
  }

 private:
  const LicensePlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("alert-license-validity", "License validity alerts", "1.0.0", "Opskernel",
                  "Platform-only alerts on licenses that expire soon or have expired without renewal");
  m.alert_source<LicenseValidity>(
      {.id = "license-validity",
       .title = "License validity",
       .description = "A license expires within the window (warning) or has expired (critical, escalated once) "
                      "without renewal.",
       .area = "licensing",
       .flags = OPK_ALERT_PLATFORM_ONLY | OPK_ALERT_FULL_SWEEP,
       .default_schedule = "7 * * * *"});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(LicensePlugin, describe);
