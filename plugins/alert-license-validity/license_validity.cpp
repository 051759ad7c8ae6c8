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
// The LicenseValidity job type (license-validity-refresh) applies the same
// rules (judge_license, escalate_once: one implementation) on demand or on
// its schedule, through the kernel's alert service (opk.alerts/1) as the
// source's own plugin: it opens, escalates and closes the source's alerts
// itself and records what it did as a run with steps and counts. See
// docs/job-types/license-validity.md.
//
// Settings ([plugin.alert-license-validity]):
//   window_days  days before expiry the alert opens (default 90, 1..3650)
// Its own table p_alert_license_validity_escalations remembers which expiry
// was escalated, so a restart, a re-run or the job and the source together
// do not escalate it again.
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace license_validity {
namespace {

using Day = std::chrono::sys_days;

constexpr const char* kSource = "license-validity";

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

Day day_of(int64_t ms) {
  using namespace std::chrono;
  return floor<days>(sys_time<milliseconds>(milliseconds(ms)));
}

std::string day_text(Day d) {
  const std::chrono::year_month_day ymd{d};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

// What the rules make of one license on one day.
struct Verdict {
  enum Kind { kNone, kExpiring, kExpired, kUnreadable };
  Kind kind = kNone;
  std::string id;
  opk::AlertContext::Alert alert;  // unless kNone
  std::string expires_on;          // kExpired: the expiry to escalate once
  std::string problem;             // kUnreadable: the field and its value
  int64_t days_left = 0;
};

// The rules, for the source and the job alike.
Verdict judge_license(const opk::Json& row, Day today, int64_t window) {
  Verdict v;
  v.id = row.value("id", "");
  const std::string& id = v.id;
  const std::string product = row.value("product", "");
  const opk::Json expires_field = row.value("expires_on", opk::Json());
  const opk::Json renewed_field = row.value("renewed_on", opk::Json());
  const auto expires = parse_day(expires_field);
  const auto renewed = parse_day(renewed_field);
  opk::AlertContext::Alert& a = v.alert;
  a.area = "licensing";
  a.related_type = "license";
  a.related_id = id;
  a.scope = "platform";
  opk::Json details = {{"license", id},
                       {"product", product},
                       {"expires_on", expires_field},
                       {"renewed_on", renewed_field},
                       {"window_days", window}};
  if (!expires || (!renewed_field.is_null() && !renewed)) {
    const char* field = !expires ? "expires_on" : "renewed_on";
    const std::string value = (!expires ? expires_field : renewed_field).dump();
    v.kind = Verdict::kUnreadable;
    v.problem = std::string(field) + " " + value + " is not a YYYY-MM-DD date";
    a.severity = OPK_SEVERITY_WARNING;
    a.title = "License " + id + " cannot be checked";
    a.message = "License " + id + " (" + product + "): " + v.problem;
  } else {
    v.days_left = (*expires - today).count();
    if (v.days_left > window || (renewed && *renewed >= *expires - std::chrono::days(window))) return v;
    const std::string date = expires_field.get<std::string>();
    details["days_left"] = v.days_left;
    if (v.days_left >= 0) {
      v.kind = Verdict::kExpiring;
      a.severity = OPK_SEVERITY_WARNING;
      a.title = "License " + id + " expires on " + date;
      a.message = "License " + id + " (" + product + ") expires on " + date + " and is not renewed";
    } else {
      v.kind = Verdict::kExpired;
      v.expires_on = date;
      a.severity = OPK_SEVERITY_CRITICAL;
      a.title = "License " + id + " expired on " + date;
      a.message = "License " + id + " (" + product + ") expired on " + date + " and is not renewed";
    }
  }
  a.details_json = details.dump();
  return v;
}

std::string escalation_reason(const Verdict& v) {
  return "license " + v.id + " expired on " + v.expires_on + " and is not renewed";
}

// Escalates `v` (expired, its alert open) once per expiry date through
// `escalate`: the row is claimed first, so two sweeps at once escalate
// once; it is given back when the escalation fails. *escalated: whether
// this call escalated it. A refused escalation is logged through `warn`
// and is not an error.
template <typename EscalateFn, typename WarnFn>
opk::Status escalate_once(const opk::Store& store, const Verdict& v, int64_t now_ms, EscalateFn escalate, WarnFn warn,
                          bool* escalated) {
  *escalated = false;
  int64_t claimed = 0;
  opk::Status c = store.execute(
      "INSERT INTO p_alert_license_validity_escalations (license, expires_on, escalated_ms) VALUES ($1, $2, $3) "
      "ON CONFLICT (license, expires_on) DO NOTHING",
      {v.id, v.expires_on, std::to_string(now_ms)}, &claimed);
  if (!c) return c;
  if (claimed == 0) return opk::Status::ok();
  opk::Status e = escalate(escalation_reason(v));
  if (!e) {
    warn("license " + v.id + ": escalation refused: " + e.message());
    return store.execute("DELETE FROM p_alert_license_validity_escalations WHERE license = $1 AND expires_on = $2",
                         {v.id, v.expires_on});
  }
  *escalated = true;
  return opk::Status::ok();
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
    const Day today = day_of(ctx.now_ms());
    const int64_t window = plugin_.window_days();
    const opk::Records records(plugin_.host());
    const opk::Store store(plugin_.host());
    int64_t checked = 0, expiring = 0, expired = 0, escalated = 0, bad = 0, refused = 0;
    opk::Status s = records.list("licenses", nullptr, [&](const opk::Json& rows) {
      if (ctx.cancelled()) return opk::Status::cancelled();
      for (const auto& row : rows) {
        ++checked;
        const Verdict v = judge_license(row, today, window);
        if (v.kind == Verdict::kNone) continue;
        if (v.kind == Verdict::kUnreadable) {
          ctx.log(opk::Level::warn, "license " + v.id + ": " + v.problem);
          ++bad;
        }
        if (v.kind == Verdict::kExpiring) ++expiring;
        if (v.kind == Verdict::kExpired) ++expired;
        if (opk::Status r = ctx.raise(v.alert); !r) {
          if (r.code() != OPK_ERR_INVALID_ARGUMENT) return r;
          ++refused;
          continue;
        }
        if (v.kind != Verdict::kExpired) continue;
        bool now = false;
        opk::Status e = escalate_once(
            store, v, ctx.now_ms(), [&](const std::string& why) { return ctx.escalate("license", v.id, why); },
            [&](const std::string& line) { ctx.log(opk::Level::warn, line); }, &now);
        if (!e) return e;
        if (now) ++escalated;
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

// The kernel's alert service for this plugin's own source, as its system
// identity.
class AlertService {
 public:
  explicit AlertService(const opk::Host& host)
      : host_(host), alerts_(host.extension<opk_alerts_v1>(OPK_EXT_ALERTS)), self_(host.system_principal()) {}
  bool available() const { return alerts_ != nullptr && alerts_->call != nullptr && self_ != nullptr; }

  // Runs `operation` with `request` (the source added); *answer gets the
  // answer object.
  opk::Status call(const char* operation, opk::Json request, opk::Json* answer) const {
    request["source"] = kSource;
    char* out = nullptr;
    const opk_status st = alerts_->call(host_.raw(), self_, operation, request.dump().c_str(), nullptr, &out);
    opk::Json doc = out ? opk::Json::parse(out, nullptr, false) : opk::Json();
    if (out) host_.free(out);
    if (st != OPK_OK) {
      const std::string why = doc.is_object() && doc.contains("error") && doc["error"].is_string()
                                  ? doc["error"].get<std::string>()
                                  : "status " + std::to_string(st);
      return {st, std::string("alerts ") + operation + ": " + why};
    }
    if (answer) *answer = std::move(doc);
    return opk::Status::ok();
  }
  // The source's open alerts: related license id -> severity name.
  opk::Status open_alerts(std::map<std::string, std::string>* out) const {
    opk::Json answer;
    std::string cursor;
    for (;;) {
      opk::Json request = {{"related_type", "license"}, {"limit", 500}};
      if (!cursor.empty()) request["cursor"] = cursor;
      if (opk::Status s = call("list", request, &answer); !s) return s;
      for (const auto& a : answer.value("alerts", opk::Json::array()))
        if (a.value("source", "") == kSource) (*out)[a.value("related_id", "")] = a.value("severity", "");
      const opk::Json next = answer.value("next_cursor", opk::Json());
      if (!next.is_string() || next.get<std::string>().empty()) return opk::Status::ok();
      cursor = next.get<std::string>();
    }
  }
  opk::Status raise(const opk::AlertContext::Alert& a) const {
    return call("raise",
                {{"severity", a.severity},
                 {"title", a.title},
                 {"message", a.message},
                 {"area", a.area},
                 {"related_type", a.related_type},
                 {"related_id", a.related_id},
                 {"scope", a.scope},
                 {"details", opk::Json::parse(a.details_json)}},
                nullptr);
  }

 private:
  const opk::Host& host_;
  const opk_alerts_v1* alerts_;
  const opk_principal* self_;
};

const char* const kSeverityNames[] = {"info", "warning", "critical"};

// The LicenseValidity job type: the source's rules for one day, applied
// through the alert service, with steps and counts.
class LicenseValidityJob : public opk::Job {
 public:
  explicit LicenseValidityJob(opk::Plugin& plugin) : plugin_(static_cast<LicensePlugin&>(plugin)) {}

  opk::Status run(opk::RunContext& run) override {
    const opk::Host& host = plugin_.host();
    const int64_t window = run.param<int64_t>("window_days", plugin_.window_days());
    const std::string as_of = run.param<std::string>("as_of", "");
    Day today = day_of(host.now_ms());
    if (!as_of.empty()) {
      const auto d = parse_day(as_of);
      if (!d) return opk::Status::invalid("parameter as_of: '" + as_of + "' is not a YYYY-MM-DD date");
      today = *d;
    }
    const std::string day = day_text(today);

    // The licenses, judged.
    std::vector<Verdict> verdicts;
    int64_t checked = 0, unreadable = 0;
    {
      auto step = run.step("licenses");
      const opk::Records records(host);
      opk::Status s = records.list("licenses", nullptr, [&](const opk::Json& rows) {
        if (run.cancelled()) return opk::Status::cancelled();
        for (const auto& row : rows) {
          ++checked;
          Verdict v = judge_license(row, today, window);
          if (v.kind == Verdict::kUnreadable) {
            run.warn("license " + v.id + ": " + v.problem + "; its alert says it cannot be checked");
            ++unreadable;
          }
          verdicts.push_back(std::move(v));
        }
        return opk::Status::ok();
      });
      if (!s) {
        step.end(opk::Outcome::error, s.message());
        if (s.code() == OPK_ERR_CANCELLED) run.warn("cancelled while reading the licenses: no alert was changed");
        return s;
      }
      int64_t due = 0;
      for (const auto& v : verdicts) due += v.kind == Verdict::kNone ? 0 : 1;
      step.end(unreadable ? opk::Outcome::warning : opk::Outcome::normal,
               std::to_string(checked) + " licenses on " + day + ", " + std::to_string(due) + " within " +
                   std::to_string(window) + " days, expired or unreadable");
    }

    // The source's alerts: open, escalate and close.
    auto step = run.step("alerts");
    const AlertService alerts(host);
    if (!alerts.available()) {
      const std::string msg = "the kernel's alert service (" OPK_EXT_ALERTS
                              ") or this plugin's system identity is not available: no alert was changed";
      step.end(opk::Outcome::error, msg);
      return opk::Status::unavailable(msg);
    }
    std::map<std::string, std::string> open;
    if (opk::Status s = alerts.open_alerts(&open); !s) {
      step.end(opk::Outcome::error, s.message());
      return s;
    }
    const opk::Store store(host);
    int64_t opened = 0, escalated = 0, closed = 0, unchanged = 0, refused = 0;
    opk::Json changes = opk::Json::array();
    auto note = [&](const std::string& id, const char* action, const std::string& detail) {
      if (changes.size() < 1000) changes.push_back({{"license", id}, {"action", action}, {"detail", detail}});
      run.info(std::string(run.dry_run() ? "would " : "") + action + " license " + id + ": " + detail);
    };
    std::set<std::string> alerting;
    const auto cancelled_now = [&]() {
      if (!run.cancelled()) return false;
      const std::string msg = "cancelled between licenses: " + std::to_string(opened) + " opened, " +
                              std::to_string(escalated) + " escalated, " + std::to_string(closed) +
                              " closed so far; each license's change is whole, the next run does the rest";
      run.warn(msg);
      step.end(opk::Outcome::error, msg);
      return true;
    };
    for (const Verdict& v : verdicts) {
      if (v.kind == Verdict::kNone) continue;
      if (cancelled_now()) return opk::Status::cancelled();
      alerting.insert(v.id);
      const auto was = open.find(v.id);
      const std::string severity = kSeverityNames[v.alert.severity];
      if (!run.dry_run()) {
        if (opk::Status r = alerts.raise(v.alert); !r) {
          if (r.code() != OPK_ERR_INVALID_ARGUMENT) {
            step.end(opk::Outcome::error, r.message());
            return r;
          }
          run.warn("license " + v.id + ": refused by the alert engine: " + r.message());
          ++refused;
          continue;
        }
      }
      if (was == open.end()) {
        ++opened;
        note(v.id, "open", severity + ": " + v.alert.title);
      } else {
        ++unchanged;
        if (was->second != severity) note(v.id, "update", was->second + " to " + severity + ": " + v.alert.title);
      }
      if (v.kind != Verdict::kExpired) continue;
      bool now = false;
      if (run.dry_run()) {
        opk::Json rows;
        opk::Status q =
            store.query("SELECT 1 FROM p_alert_license_validity_escalations WHERE license = $1 AND expires_on = $2",
                        {v.id, v.expires_on}, &rows);
        if (!q) {
          step.end(opk::Outcome::error, q.message());
          return q;
        }
        now = rows.empty();
      } else {
        opk::Status e = escalate_once(
            store, v, host.now_ms(),
            [&](const std::string& why) {
              return alerts.call("escalate", {{"related_type", "license"}, {"related_id", v.id}, {"reason", why}},
                                 nullptr);
            },
            [&](const std::string& line) { run.warn(line); }, &now);
        if (!e) {
          step.end(opk::Outcome::error, e.message());
          return e;
        }
      }
      if (now) {
        ++escalated;
        note(v.id, "escalate", escalation_reason(v));
      }
    }
    // Open alerts of licenses renewed, moved beyond the window or gone.
    for (const auto& [id, severity] : open) {
      if (alerting.count(id)) continue;
      if (cancelled_now()) return opk::Status::cancelled();
      const std::string why = "license " + id + " is renewed, expires beyond " + std::to_string(window) + " days of " +
                              day + " or is no longer stored";
      if (!run.dry_run()) {
        opk::Status c =
            alerts.call("clear", {{"related_type", "license"}, {"related_id", id}, {"reason", why}}, nullptr);
        if (!c) {
          step.end(opk::Outcome::error, c.message());
          return c;
        }
      }
      ++closed;
      note(id, "close", why);
    }
    const std::string counts = std::string(run.dry_run() ? "would be " : "") + std::to_string(opened) + " opened, " +
                               std::to_string(escalated) + " escalated, " + std::to_string(closed) + " closed, " +
                               std::to_string(unchanged) + " unchanged";
    step.end(refused ? opk::Outcome::warning : opk::Outcome::normal, counts);

    run.set_output({{"dry_run", run.dry_run()},
                    {"as_of", day},
                    {"window_days", window},
                    {"checked", checked},
                    {"opened", opened},
                    {"escalated", escalated},
                    {"closed", closed},
                    {"unchanged", unchanged},
                    {"unreadable", unreadable},
                    {"refused", refused},
                    {"changes", changes}});
    std::string summary =
        (run.dry_run() ? "dry run: " : "") + std::to_string(checked) + " licenses checked on " + day + ": " + counts;
    if (unreadable) summary += ", " + std::to_string(unreadable) + " with unreadable dates";
    if (refused) summary += ", " + std::to_string(refused) + " refused by the alert engine";
    if (run.dry_run()) summary += "; no alert was changed";
    run.set_result(unreadable || refused ? opk::Outcome::warning : opk::Outcome::normal, summary);
    return opk::Status::ok();
  }

  void cancel(opk::RunContext& run) override { run.info("cancel requested: stopping before the next license's alert"); }

 private:
  const LicensePlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("alert-license-validity", "License validity alerts", "1.0.0", "Opskernel",
                  "Platform-only alerts on licenses that expire soon or have expired without renewal");
  m.alert_source<LicenseValidity>(
      {.id = kSource,
       .title = "License validity",
       .description = "A license expires within the window (warning) or has expired (critical, escalated once) "
                      "without renewal.",
       .area = "licensing",
       .flags = OPK_ALERT_PLATFORM_ONLY | OPK_ALERT_FULL_SWEEP,
       .default_schedule = "7 * * * *"});
  m.job<LicenseValidityJob>({.id = "license-validity-refresh",
                             .title = "License validity",
                             .description = "Creates or closes platform license validity alerts.",
                             .owner = "platform-team",
                             .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun | opk::kRequeue,
                             .params_schema_json = R"json({"type":"object","additionalProperties":false,
          "properties":{
            "window_days":{"type":"integer","minimum":1,"maximum":3650,
                           "description":"Days before expiry an alert opens, instead of [plugin.alert-license-validity] window_days"},
            "as_of":{"type":"string","pattern":"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                     "description":"Judge the licenses as on this day (YYYY-MM-DD, UTC) instead of today"}}})json",
                             .default_schedule = "15 6 * * *",
                             .target_duration_ms = 10000,
                             .timeout_ms = 600000,
                             .priority = 3,
                             .worker_pool = "default",
                             .actions = {{"licenses", "Read and judge the licenses"},
                                         {"alerts", "Open, escalate and close the license-validity alerts"}}});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace
}  // namespace license_validity

OPK_PLUGIN(license_validity::LicensePlugin, license_validity::describe);
