#include "host/jobs_json.h"

#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/JSONString.h>

#include <algorithm>
#include <sstream>

#include "jobs/run.h"

namespace opk::host {

using Poco::JSON::Array;
using Poco::JSON::Object;

std::string stringify(const Poco::Dynamic::Var& v) {
  std::ostringstream os;
  Poco::JSON::Stringifier::stringify(v, os);
  return os.str();
}

Poco::Dynamic::Var parsed_or_text(const std::string& json) {
  if (json.empty()) return Poco::Dynamic::Var();
  try {
    Poco::JSON::Parser parser;
    return parser.parse(json);
  } catch (const Poco::Exception&) {
    return json;
  }
}

std::string status_of(const std::string& phase, const std::string& outcome, const std::string& cancelled_by,
                      const std::string& end_cause) {
  return store::run_status(phase, outcome, cancelled_by, end_cause);
}

Poco::Dynamic::Var termination_json(const store::RunRow& r) {
  std::string cause = r.end_cause;
  // A run stored before causes were kept: its canceller says which.
  if (cause.empty() && !r.cancelled_by.empty() && r.phase == store::kCompleted)
    cause = r.cancelled_by == store::kCancelledByKernel ? store::kEndShutdown : store::kEndOperator;
  if (cause.empty() || r.phase != store::kCompleted) return Poco::Dynamic::Var();
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("cause", cause);
  o->set("by", r.end_by.empty() ? r.cancelled_by : r.end_by);
  o->set("reason", r.end_reason);
  o->set("limit_ms", r.end_limit_ms);
  return o;
}

Object::Ptr job_json(const store::ScheduledJob& j) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", j.id);
  o->set("job_type", j.job_type);
  o->set("description", j.description);
  o->set("owner", j.owner);
  o->set("planning", j.planning);
  o->set("cron", j.cron);
  o->set("time_zone", j.time_zone);
  o->set("jitter_minutes", j.jitter_minutes);
  o->set("params", parsed_or_text(j.params_json));
  o->set("enabled", j.enabled);
  o->set("scope", j.scope);
  o->set("region", j.region);
  Array::Ptr rcpt = new Array;
  std::stringstream ss(j.report_recipients);
  std::string r;
  while (std::getline(ss, r, ','))
    if (!r.empty()) rcpt->add(r);
  o->set("report_recipients", rcpt);
  o->set("next_run_ms", j.next_run_ms);
  o->set("created_ms", j.created_ms);
  o->set("updated_ms", j.updated_ms);
  return o;
}

void append_job_json(const store::ScheduledJob& j, std::string* out) {
  auto str = [&](const char* key, const std::string& v) {
    *out += '"';
    *out += key;
    *out += "\":";
    *out += Poco::toJSON(v, Poco::JSON_WRAP_STRINGS);
    *out += ',';
  };
  auto num = [&](const char* key, int64_t v) {
    *out += '"';
    *out += key;
    *out += "\":" + std::to_string(v) + ",";
  };
  *out += '{';
  str("id", j.id);
  str("job_type", j.job_type);
  str("description", j.description);
  str("owner", j.owner);
  str("planning", j.planning);
  str("cron", j.cron);
  str("time_zone", j.time_zone);
  num("jitter_minutes", j.jitter_minutes);
  *out += "\"params\":" + (j.params_json.empty() ? std::string("{}") : j.params_json) + ",";
  *out += std::string("\"enabled\":") + (j.enabled ? "true" : "false") + ",";
  str("scope", j.scope);
  str("region", j.region);
  *out += "\"report_recipients\":[";
  std::stringstream ss(j.report_recipients);
  std::string r;
  bool first = true;
  while (std::getline(ss, r, ','))
    if (!r.empty()) {
      *out += (first ? "" : ",") + Poco::toJSON(r, Poco::JSON_WRAP_STRINGS);
      first = false;
    }
  *out += "],";
  num("next_run_ms", j.next_run_ms);
  num("created_ms", j.created_ms);
  num("updated_ms", j.updated_ms);
  out->back() = '}';
}

int64_t run_duration_ms(const store::RunRow& r) {
  const int64_t end = r.finished_ms ? r.finished_ms : (r.started_ms ? jobs::now_ms() : 0);
  return r.started_ms && end ? end - r.started_ms : 0;
}

bool run_over_target(const store::RunRow& r, const loader::JobType* t) {
  return t && t->target_duration_ms && run_duration_ms(r) > static_cast<int64_t>(t->target_duration_ms);
}

Object::Ptr run_json(const store::RunRow& r, const loader::JobType* t) {
  Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", r.id);
  o->set("job_type", r.job_type);
  o->set("scheduled_job_id", r.scheduled_job_id);
  o->set("status", status_of(r.phase, r.outcome, r.cancelled_by, r.end_cause));
  o->set("phase", r.phase);
  o->set("outcome", r.phase == store::kCompleted ? r.outcome : std::string());
  o->set("trigger", r.trigger);
  o->set("params", parsed_or_text(r.params_json));
  o->set("target_tenant", r.target_tenant);
  o->set("dry_run", r.dry_run);
  o->set("triggered_by", r.user_id);
  o->set("role", r.role);
  o->set("reason", r.reason);
  o->set("parent_run_id", r.parent_run_id);
  o->set("hold", r.hold);
  o->set("terminated", r.terminated);
  o->set("cancelled_by", r.cancelled_by);
  o->set("termination", termination_json(r));
  o->set("stale", r.stale);
  o->set("priority", r.priority);
  o->set("pool", r.pool);
  o->set("scheduled_ms", r.scheduled_ms);
  o->set("created_ms", r.created_ms);
  o->set("started_ms", r.started_ms);
  o->set("finished_ms", r.finished_ms);
  o->set("duration_ms", run_duration_ms(r));
  // Over its type's target duration: flagged for the attention panel.
  o->set("target_duration_ms", t ? static_cast<int64_t>(t->target_duration_ms) : 0);
  o->set("over_target", run_over_target(r, t));
  o->set("exit_code", r.exit_code);
  o->set("summary", r.summary);
  o->set("progress", r.progress);
  o->set("progress_message", r.progress_message);
  o->set("output", parsed_or_text(r.output_json));
  o->set("node", r.node);
  return o;
}

Array::Ptr log_json(const std::vector<store::LogRow>& lines) {
  static const char* levels[] = {"trace", "debug", "info", "warn", "error", "critical"};
  Array::Ptr a = new Array;
  for (const auto& l : lines) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("seq", l.seq);
    o->set("time_ms", l.time_ms);
    o->set("level", levels[std::clamp(l.level, 0, 5)]);
    o->set("step", l.step);
    o->set("message", l.message);
    a->add(o);
  }
  return a;
}

}  // namespace opk::host
