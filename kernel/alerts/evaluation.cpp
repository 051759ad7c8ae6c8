// An alert source's evaluation as a run of the job engine: the alert context
// bound to the run, and the full sweep after a successful run.
#include "alerts/evaluation.h"

#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "host/host.h"
#include "jobs/run.h"

namespace opk::alerts {
namespace {

std::string str(const char* p) {
  return p ? std::string(p) : std::string();
}

// One evaluation in progress: the context the source sees.
struct Binding {
  opk_alert_context ctx{};
  Engine* engine = nullptr;
  const SourceInfo* info = nullptr;
  const opk_run_context* run = nullptr;
  std::mutex mu;
  std::set<int64_t> raised;  // alerts raised (opened or updated) in this run

  static Binding* of(const opk_alert_context* c) { return c ? reinterpret_cast<Binding*>(c->host_data) : nullptr; }
  void log(opk_log_level level, const std::string& text) const {
    if (run && run->log) run->log(run, level, text.c_str());
  }
  // A refusal: the run's log names the field, the plugin's last_error too.
  opk_status refuse(const char* what, const Status& s) const {
    log(OPK_LOG_WARN, std::string(what) + " refused: " + s.message());
    host::report_host_error(s.message());
    return s.code();
  }
};

opk_status cb_raise(const opk_alert_context* self, const opk_alert* in) {
  Binding* b = Binding::of(self);
  if (!b) return OPK_ERR_INVALID_ARGUMENT;
  if (!in) return b->refuse("raise", Status::invalid("alert: is NULL"));
  // Zero-extended copy: fields a 1.0 source did not know read as NULL.
  opk_alert a{};
  const size_t n = std::min<size_t>(in->struct_size, sizeof a);
  if (n < offsetof(opk_alert, details_json) + sizeof(a.details_json))
    return b->refuse("raise", Status::invalid("alert: struct_size " + std::to_string(in->struct_size) +
                                              " is smaller than the ABI 1.0 size"));
  std::memcpy(static_cast<void*>(&a), in, n);
  static const char* names[] = {"info", "warning", "critical"};
  if (a.severity < OPK_SEVERITY_INFO || a.severity > OPK_SEVERITY_CRITICAL)
    return b->refuse("raise", Status::invalid("severity: " + std::to_string(a.severity) +
                                              " is not OPK_SEVERITY_INFO, _WARNING or _CRITICAL"));
  Raise r;
  r.severity = names[a.severity];
  r.area = str(a.area);
  r.title = str(a.title);
  r.message = str(a.message);
  r.related_type = str(a.related_type);
  r.related_id = str(a.related_id);
  r.scope = str(a.scope);
  r.details_json = str(a.details_json);
  r.type = str(a.type);
  store::AlertRow row;
  Status s = b->engine->raise(*b->info, r, "system:" + b->info->plugin, &row);
  if (!s) return b->refuse("raise", s);
  std::lock_guard lock(b->mu);
  b->raised.insert(row.id);
  return OPK_OK;
}

opk_status cb_clear(const opk_alert_context* self, const char* related_type, const char* related_id) {
  Binding* b = Binding::of(self);
  if (!b) return OPK_ERR_INVALID_ARGUMENT;
  Status s = b->engine->clear(*b->info, str(related_type), str(related_id), "system:" + b->info->plugin, "", nullptr);
  return s ? OPK_OK : b->refuse("clear", s);
}

opk_status cb_escalate(const opk_alert_context* self, const char* related_type, const char* related_id,
                       const char* reason) {
  Binding* b = Binding::of(self);
  if (!b) return OPK_ERR_INVALID_ARGUMENT;
  const Actor actor{"system:" + b->info->plugin, identity::kSystemRole, "platform", ""};
  Status s = b->engine->escalate(*b->info, str(related_type), str(related_id), str(reason), actor, nullptr);
  return s ? OPK_OK : b->refuse("escalate", s);
}

void cb_log(const opk_alert_context* self, opk_log_level level, const char* message) {
  Binding* b = Binding::of(self);
  if (b && message) b->log(level, message);
}

uint32_t cb_is_cancelled(const opk_alert_context* self) {
  Binding* b = Binding::of(self);
  return b && b->run && b->run->is_cancelled && b->run->is_cancelled(b->run) ? 1 : 0;
}

}  // namespace

SourceJob::SourceJob(Engine& engine, SourceInfo info, const loader::AlertSource& source, int64_t timeout_ms)
    : engine_(engine), info_(std::move(info)), source_self_(source.self), source_c_(source.c) {
  adapter_.c.struct_size = sizeof adapter_.c;
  adapter_.c.id = info_.id.c_str();
  adapter_.c.run = &SourceJob::run;
  adapter_.c.cancel = &SourceJob::cancel;
  adapter_.owner = this;
  type_.id = info_.id;
  type_.title = source.title;
  type_.description = source.description.empty() ? "Evaluates alert source " + info_.id : source.description;
  type_.owner = info_.plugin;
  // The manifest's title and description in other languages, so the
  // console names the source in the operator's language.
  type_.translations = source.translations;
  type_.capabilities = OPK_JOB_CAP_MANUAL_RUN | OPK_JOB_CAP_CANCEL;
  type_.default_schedule = source.default_schedule.empty() ? kDefaultSchedule : source.default_schedule;
  type_.timeout_ms = static_cast<uint64_t>(timeout_ms > 0 ? timeout_ms : kDefaultEvaluationTimeoutMs);
  // A pool of their own when jobs.pools names one, so a source that hangs
  // until its timeout holds no worker of other job types.
  type_.worker_pool = kEvaluationPool;
  type_.self = &adapter_.c;
  type_.c = adapter_.c;
}

opk_status SourceJob::run(opk_plugin* plugin, const opk_job_type* self, const opk_run_context* run) {
  const auto* adapter = reinterpret_cast<const Adapter*>(self);
  return adapter->owner->evaluate(plugin, run);
}

void SourceJob::cancel(opk_plugin*, const opk_job_type*, const opk_run_context*) {
  // The run's cancel flag is what the source's is_cancelled reads: nothing more to do.
}

opk_status SourceJob::evaluate(opk_plugin* plugin, const opk_run_context* run) {
  Binding b;
  b.engine = &engine_;
  b.info = &info_;
  b.run = run;
  b.ctx.struct_size = sizeof b.ctx;
  b.ctx.now_ms = jobs::now_ms();
  b.ctx.host_data = reinterpret_cast<opk_host_data*>(&b);
  b.ctx.raise = &cb_raise;
  b.ctx.clear = &cb_clear;
  b.ctx.log = &cb_log;
  b.ctx.is_cancelled = &cb_is_cancelled;
  b.ctx.escalate = &cb_escalate;
  opk_status st = OPK_ERR_FAILED;
  host::clear_error();
  try {
    st = source_c_.evaluate(plugin, source_self_, &b.ctx);
  } catch (...) {  // a last guard: exceptions must not cross the ABI
    b.log(OPK_LOG_ERROR, "evaluate threw an exception across the ABI");
    st = OPK_ERR_INTERNAL;
  }
  const std::string detail = host::take_error();
  if (st != OPK_OK) {
    b.log(OPK_LOG_ERROR, "evaluate failed with status " + std::to_string(st) + (detail.empty() ? "" : ": " + detail));
    return st;
  }
  if (cb_is_cancelled(&b.ctx)) {
    // Cancelled or timed out: what it did not raise says nothing.
    b.log(OPK_LOG_WARN, "evaluation cancelled: no sweep");
    return OPK_ERR_CANCELLED;
  }
  if (info_.full_sweep) {
    int64_t closed = 0;
    std::set<int64_t> raised;
    {
      std::lock_guard lock(b.mu);
      raised = b.raised;
    }
    Status s = engine_.sweep(info_, raised, &closed);
    if (!s) {
      b.log(OPK_LOG_ERROR, "full sweep failed: " + s.message());
      return s.code();
    }
    b.log(OPK_LOG_INFO, "full sweep: " + std::to_string(raised.size()) + " alert(s) raised, " + std::to_string(closed) +
                            " closed as cleared");
  }
  return OPK_OK;
}

}  // namespace opk::alerts
