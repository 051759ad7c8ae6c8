// The event documents (documents.h): run events from a run's end or its stale
// flag, alert events from an alert's saved change, plugins' events. A run's
// document is written with ObjectWriter (one string, no JSON tree): it is
// built for every completed run, on the worker that ran it.
#include "events/documents.h"

#include <opskernel/json.hpp>

#include <algorithm>

#include "alerts/alerts.h"
#include "clock/clock.h"
#include "events/json_text.h"

namespace opk::events {
namespace {

using Json = nlohmann::json;

// The tenant node in `path` ("/platform/.../tenant:acme/..."), or empty.
std::string tenant_in(const std::string& path) {
  const auto at = path.rfind("/tenant:");
  if (at == std::string::npos) return {};
  const auto end = path.find('/', at + 1);
  return path.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
}

// The run's status as the admin API shows it.
std::string status_of(const store::Completion* end, const store::RunRow& run) {
  if (!end) return store::run_status(run.phase, run.outcome, run.cancelled_by, run.end_cause);
  return store::run_status(store::kCompleted, end->outcome, end->cancelled_by, end->end_cause);
}

const char* kind_of_end(const RunFacts& f) {
  if (f.how == RunEnd::recovered) return kRunRecovered;
  if (!f.end->cancelled_by.empty()) return kRunCancelled;
  if (f.how == RunEnd::timed_out) return kRunTimedOut;
  if (f.end->outcome == store::kError) return kRunFailed;
  if (f.end->outcome == store::kWarning) return kRunWarning;
  return kRunCompleted;
}

}  // namespace

std::string run_scope(const store::RunRow& run, const std::string& job_scope) {
  if (!run.scheduled_job_id.empty() && !job_scope.empty()) return job_scope;
  if (!run.target_tenant.empty()) return "tenant:" + run.target_tenant;
  return run.scope.empty() ? std::string("platform") : run.scope;
}

Documents::Documents(DocumentOptions options) : options_(std::move(options)) {}

std::string Documents::path_of(const std::string& node) const {
  if (node.empty() || node == "platform") return "/platform/";
  std::string p = options_.path_of ? options_.path_of(node) : std::string();
  return p.empty() ? "/platform/" + node + "/" : p;
}

std::string Documents::link(const std::string& path) const {
  return options_.console_url + path;
}

std::string Documents::run_document(const RunFacts& f, const std::string& path, const std::string& extra) const {
  // A member not set is left out rather than null: every run's end writes
  // this document in its completion's transaction, and its bytes are the
  // event log's main cost there (bench/README.md).
  const store::RunRow& r = *f.run;
  const store::Completion* e = f.end;
  std::string out;
  out.reserve(448 + r.params_json.size() + (e ? e->output_json.size() + e->summary.size() : 0));
  {
    ObjectWriter doc(&out);
    {
      ObjectWriter run(doc.member("run"));
      run.integer("id", r.id)
          .text("job_type", r.job_type)
          .text_if("scheduled_job_id", r.scheduled_job_id)
          .text("status", status_of(e, r));
      if (e)
        run.text("outcome", e->outcome)
            .boolean("terminated", e->terminated)
            .integer("exit_code", e->exit_code)
            .text_if("summary", e->summary);
      else
        run.text_if("summary", r.summary);
      run.text("trigger", r.trigger).text_if("reason", r.reason).integer_if("parent_run_id", r.parent_run_id);
      if (is_json(r.params_json))
        run.raw("params", r.params_json);
      else
        run.text("params", r.params_json);
      const std::string& output = e ? e->output_json : r.output_json;
      if (output.size() > kMaxOutputBytes)
        run.integer("output_bytes", static_cast<int64_t>(output.size()));
      else if (!output.empty() && is_json(output))
        run.raw("output", output);
      else
        run.text_if("output", output);  // not JSON: as text
      run.text_if("target_tenant", r.target_tenant);
      if (r.dry_run) run.boolean("dry_run", true);
      if (!r.user_id.empty()) {
        ObjectWriter by(run.member("requested_by"));
        by.text("user_id", r.user_id).text("role", r.role).text("scope", r.scope);
      }
      const int64_t finished = e ? e->finished_ms : 0;
      run.text_if("cancelled_by", e ? e->cancelled_by : r.cancelled_by);
      // Why it was terminated, when it was: {cause, by, reason, limit_ms}.
      if (e && !e->end_cause.empty()) {
        ObjectWriter t(run.member("termination"));
        t.text("cause", e->end_cause)
            .text_if("by", e->end_by)
            .text_if("reason", e->end_reason)
            .integer_if("limit_ms", e->end_limit_ms);
      }
      run.integer("created_ms", r.created_ms)
          .integer_if("scheduled_ms", r.scheduled_ms)
          .integer_if("started_ms", f.started_ms)
          .integer_if("finished_ms", finished);
      if (finished && f.started_ms) run.integer("duration_ms", std::max<int64_t>(0, finished - f.started_ms));
      run.integer_if("target_duration_ms", static_cast<int64_t>(f.target_duration_ms)).text_if("node", f.node);
    }
    doc.text_if("tenant", tenant_in(path));
    {
      ObjectWriter links(doc.member("links"));
      links.text("run", link("/administration/runs/" + std::to_string(r.id)));
      if (!r.scheduled_job_id.empty()) links.text("job", link("/administration/jobs/" + r.scheduled_job_id));
    }
    if (!extra.empty()) {
      out.push_back(',');
      out += extra;
    }
  }
  return out;
}

void Documents::run_ended(const RunFacts& f, std::vector<store::EventRow>* out) const {
  if (!f.run || !f.end) return;
  const char* kind = kind_of_end(f);
  const std::string path = path_of(f.scope);
  const std::string subject = "run:" + std::to_string(f.run->id);
  const int64_t time = f.end->finished_ms;
  std::string extra;
  if (f.how == RunEnd::recovered) extra = std::string("\"requeued\":") + (f.requeued ? "true" : "false");
  const std::string doc = run_document(f, path, extra);
  out->push_back({0, time, kind, f.scope, path, subject, doc});
  // Over its target: a run that finished (not one cancelled or recovered).
  const bool finished = f.how != RunEnd::recovered && f.end->cancelled_by.empty();
  const int64_t took = f.started_ms ? f.end->finished_ms - f.started_ms : 0;
  if (finished && f.target_duration_ms > 0 && took > static_cast<int64_t>(f.target_duration_ms)) {
    const std::string over = "\"over_target_ms\":" + std::to_string(took - static_cast<int64_t>(f.target_duration_ms));
    out->push_back({0, time, kRunOverTarget, f.scope, path, subject, run_document(f, path, over)});
  }
}

void Documents::run_stale(const store::RunRow& run, const std::string& scope, std::vector<store::EventRow>* out) const {
  RunFacts f;
  f.run = &run;
  f.started_ms = run.started_ms;
  f.scope = scope;
  f.node = run.node;
  const int64_t now = clock::now_ms();
  const std::string extra = "\"running_ms\":" + std::to_string(std::max<int64_t>(0, now - run.started_ms));
  const std::string path = path_of(scope);
  out->push_back({0, now, kRunStale, scope, path, "run:" + std::to_string(run.id), run_document(f, path, extra)});
}

void Documents::alert_changed(const store::AlertSave& saved, std::vector<store::EventRow>* out) const {
  const store::AlertRow& a = saved.row;
  std::string alert_json;  // made once, for the first event that needs it
  for (const auto& h : saved.events) {
    if (h.alert_id != 0 && h.alert_id != a.id) continue;  // history of another alert (reopened_as)
    const char* kind = nullptr;
    Json details = Json::parse(h.details_json.empty() ? "{}" : h.details_json, nullptr, false);
    if (!details.is_object()) details = Json::object();
    if (h.kind == "raised") {
      kind = kAlertOpened;
    } else if (h.kind == "updated") {
      const Json& was = details.contains("was") ? details["was"] : Json();
      if (was.is_object() && was.contains("severity") && was["severity"] != a.severity) kind = kAlertUpdated;
    } else if (h.kind == "escalated") {
      kind = kAlertEscalated;
    } else if (h.kind == "acknowledged") {
      kind = kAlertAcknowledged;
    } else if (h.kind == "closed") {
      kind = kAlertClosed;
    } else if (h.kind == "silenced") {
      if (details.contains("until_ms") && details["until_ms"].is_number()) kind = kAlertSilenced;
    }
    if (!kind) continue;
    if (alert_json.empty()) alert_json = alerts::to_json(a);
    std::string doc;
    {
      ObjectWriter w(&doc);
      w.raw("alert", alert_json);
      {
        ObjectWriter change(w.member("change"));
        change.text("kind", h.kind)
            .text_or_null("actor", h.actor)
            .text_or_null("reason", h.reason)
            .raw("details", details.dump(-1, ' ', false, Json::error_handler_t::replace));
      }
      w.text_or_null("tenant", tenant_in(a.scope_path));
      ObjectWriter links(w.member("links"));
      links.text("alert", link("/administration/alerts/" + std::to_string(a.id)));
    }
    const std::string path = a.scope_path.empty() ? path_of(a.scope) : a.scope_path;
    out->push_back({0, h.time_ms ? h.time_ms : clock::now_ms(), kind, a.scope.empty() ? "platform" : a.scope, path,
                    "alert:" + std::to_string(a.id), std::move(doc)});
  }
}

store::EventRow Documents::plugin_event(const std::string& plugin_id, const std::string& name, const std::string& scope,
                                        const std::string& subject, const std::string& payload_json,
                                        int64_t time_ms) const {
  const std::string node = scope.empty() ? "platform" : scope;
  return {0,
          time_ms,
          "plugin." + plugin_id + "." + name,
          node,
          path_of(node),
          subject,
          payload_json.empty() ? "{}" : payload_json};
}

}  // namespace opk::events
