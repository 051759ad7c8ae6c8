// engine_actions.cpp -- the operator actions, each checked and audited:
// define, update and delete a scheduled job, run now (one or a batch), cancel, retry,
// hold and release, recover a stale run; and the audit rows they write.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "config/config.h"
#include "jobs/engine_internal.h"
#include "jobs/params.h"
#include "log/logging.h"

namespace opk::jobs {
namespace {

bool valid_scope(const std::string& s) {
  if (s == "platform") return true;
  for (const char* kind : {"distributor:", "partner:", "tenant:"})
    if (s.rfind(kind, 0) == 0 && s.size() > std::string(kind).size()) return true;
  return false;
}

// Who a cancel is recorded as cancelled by: the user, or "system".
std::string canceller(const Actor& actor) {
  return actor.user_id.empty() ? "system" : actor.user_id;
}

}  // namespace

Status Engine::check_job(const store::ScheduledJob& j) {
  if (!config::valid_id(j.id)) return Status::invalid("id: '" + j.id + "' is not a valid id ([a-z0-9][a-z0-9._-]*)");
  TypeRef ref = resolve_(j.job_type);
  if (!ref.type) return Status::invalid("job_type: no job type '" + j.job_type + "' is registered");
  if (j.planning != "automatic" && j.planning != "scheduled" && j.planning != "disabled")
    return Status::invalid("planning: '" + j.planning + "' is not automatic, scheduled or disabled");
  if (j.planning == "scheduled" && split(j.cron, ';').empty())
    return Status::invalid("cron: a scheduled job needs a cron expression");
  if (j.jitter_minutes < 0 || j.jitter_minutes > 59) return Status::invalid("jitter_minutes: must be 0..59");
  if (!valid_scope(j.scope))
    return Status::invalid("scope: '" + j.scope + "' is not platform, distributor:ID, partner:ID or tenant:ID");
  std::string error;
  store::ScheduledJob probe = j;
  probe.enabled = true;
  if (probe.planning != "disabled") {
    next_slot(probe, now_ms(), &error);
    if (!error.empty()) return Status::invalid((j.planning == "scheduled" ? "cron: " : "schedule: ") + error);
  }
  Status s = validate_params(ref.type->params_schema_json, j.params_json);
  if (!s) return s;
  return Status::ok();
}

Status Engine::define_job(store::ScheduledJob job, const Actor& actor) {
  if (job.params_json.empty()) job.params_json = "{}";
  if (job.time_zone.empty()) job.time_zone = "UTC";
  Status s = check_job(job);
  if (s) {
    auto next = next_slot(job, now_ms(), nullptr);
    job.next_run_ms = next.value_or(0);
    s = store_.create_scheduled_job(job);
  }
  audit(actor, "job.create", job.id, "", job.params_json, s);
  if (!s) return s;
  std::lock_guard lock(mu_);
  schedules_[job.id] = {job, job.next_run_ms};
  sched_cv_.notify_all();
  return Status::ok();
}

Status Engine::update_job(const store::ScheduledJob& in, const Actor& actor) {
  store::ScheduledJob cur;
  Status s = store_.get_scheduled_job(in.id, &cur);
  if (s) {
    store::ScheduledJob j = cur;  // id, type and description stay
    j.owner = in.owner;
    j.planning = in.planning;
    j.cron = in.cron;
    j.time_zone = in.time_zone.empty() ? "UTC" : in.time_zone;
    j.jitter_minutes = in.jitter_minutes;
    j.params_json = in.params_json.empty() ? "{}" : in.params_json;
    j.enabled = in.enabled;
    j.scope = in.scope;
    j.region = in.region;
    j.report_recipients = in.report_recipients;
    if ((s = check_job(j))) {
      j.next_run_ms = next_slot(j, now_ms(), nullptr).value_or(0);
      s = store_.update_scheduled_job(j);
      if (s) {
        std::lock_guard lock(mu_);
        schedules_[j.id] = {j, j.next_run_ms};
        sched_cv_.notify_all();
      }
    }
  }
  audit(actor, "job.update", in.id, "", in.params_json, s);
  return s;
}

Status Engine::delete_job(const std::string& id, const Actor& actor, const std::string& reason,
                          const std::string& before) {
  Status s;
  std::optional<Scheduled> taken;  // out of the schedule while the runs are checked
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    s = Status::invalid("reason: a reason is required to delete a scheduled job");
  } else {
    // No slot of it is being stored meanwhile (a run stored after the check
    // below would be left queued for a deleted job).
    std::lock_guard firing(fire_mu_);
    {
      // Taken out first, so no slot fires between the check and the delete.
      std::lock_guard lock(mu_);
      auto it = schedules_.find(id);
      if (it != schedules_.end()) {
        taken = it->second;
        schedules_.erase(it);
      }
    }
    // Deleted only while no run of it is pending or running, in one step
    // of the store that every creation of its runs (through any kernel)
    // waits for or is waited for by: none is stored after it.
    s = store_.delete_scheduled_job(id);
    if (s.code() == OPK_ERR_CONFLICT)
      s = Status::conflict(s.message() + ": cancel it or let it finish, then delete the job");
    if (!s && taken) {
      std::lock_guard lock(mu_);
      schedules_.emplace(id, *taken);  // kept: unless it was changed meanwhile
      sched_cv_.notify_all();
    }
  }
  audit(actor, "job.delete", id, reason, before, s);
  return s;
}

Status Engine::check_request(const RunNow& r, store::RunRow* row, TypeRef* ref) {
  std::string type = r.job_type;
  std::string params = r.params_json.value_or("");
  store::ScheduledJob job;
  if (!r.scheduled_job_id.empty()) {
    Status s = store_.get_scheduled_job(r.scheduled_job_id, &job);
    if (!s) return s;
    if (!type.empty() && type != job.job_type)
      return Status::invalid("job_type: '" + type + "' is not the type of scheduled job '" + job.id + "'");
    type = job.job_type;
    if (!r.params_json) params = job.params_json;
  }
  if (type.empty()) return Status::invalid("job_type: give a job type or a scheduled job");
  *ref = resolve_(type);
  if (!ref->type) return Status::not_found("no job type '" + type + "' is registered");
  const auto& t = *ref->type;
  // The contract is enforced here, for every caller (API, CLI, plugins).
  if (!t.manual_run()) return Status::conflict("job type '" + type + "' does not allow manual runs (manual_run=false)");
  if (r.reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return Status::invalid("reason: a reason is required for a manual run");
  if (r.dry_run && !t.dry_run()) return Status::invalid("dry_run: job type '" + type + "' does not support dry-run");
  if (r.range_start_ms && r.range_end_ms && r.range_end_ms < r.range_start_ms)
    return Status::invalid("range: the end is before the start");
  if (params.empty()) params = "{}";
  Status s = validate_params(t.params_schema_json, params);
  if (!s) return s;
  const int64_t now = now_ms();
  if (r.start_at_ms > now + 366LL * 86400000)
    return Status::invalid("start_at: more than a year ahead; use a scheduled job");
  row->job_type = type;
  row->scheduled_job_id = r.scheduled_job_id;
  row->trigger = "manual";
  row->params_json = params;
  row->target_tenant = r.target_tenant;
  row->dry_run = r.dry_run;
  row->range_start_ms = r.range_start_ms;
  row->range_end_ms = r.range_end_ms;
  row->user_id = r.actor.user_id;
  row->role = r.actor.role;
  row->scope = r.actor.scope;
  row->reason = r.reason;
  row->priority = t.priority;
  row->pool = pools_.count(t.worker_pool) ? t.worker_pool : "default";
  row->scheduled_ms = std::max(now, r.start_at_ms);
  row->created_ms = now;
  return Status::ok();
}

Status Engine::run_now(const RunNow& request, int64_t* run_id) {
  std::vector<int64_t> ids;
  Status s = run_now_batch({request}, &ids);
  if (s && run_id) *run_id = ids.front();
  return s;
}

Status Engine::run_now_batch(const std::vector<RunNow>& requests, std::vector<int64_t>* run_ids) {
  std::vector<store::RunRow> rows(requests.size());
  std::vector<TypeRef> refs(requests.size());
  Status s;
  for (size_t i = 0; i < requests.size() && s; ++i) {
    s = check_request(requests[i], &rows[i], &refs[i]);
    if (!s && requests.size() > 1) s = Status(s.code(), "request " + std::to_string(i + 1) + ": " + s.message());
  }
  {
    std::lock_guard lock(mu_);
    if (s && !running_) s = Status::unavailable("the job engine is not running");
  }
  // The runs and their audit rows are written in one transaction; a refused
  // batch is audited as refused.
  // One batch is one request: its rows share one time.
  std::vector<store::AuditRow> audit_rows;
  for (const auto& r : requests) {
    audit_rows.push_back(audit_row(r.actor, "run-now", r.scheduled_job_id.empty() ? r.job_type : r.scheduled_job_id,
                                   r.reason, r.params_json.value_or(""), s));
    audit_rows.back().time_ms = audit_rows.front().time_ms;
  }
  if (s) s = store_and_queue(&rows, refs, &audit_rows, run_ids);
  if (!s) {
    for (auto& a : audit_rows) a.outcome = "refused: " + s.message();
    if (Status a = store_.audit(audit_rows); !a) log::kernel()->error("audit rows lost: {}", a.message());
  }
  return s;
}

Status Engine::cancel(int64_t run_id, const Actor& actor, const std::string& reason) {
  Status s;
  store::RunRow row;
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    s = Status::invalid("reason: a reason is required to cancel a run");
  } else if ((s = store_.get_run(run_id, &row))) {
    if (row.phase == store::kCompleted) {
      s = Status::conflict("run " + std::to_string(run_id) + " has already completed");
    } else if (row.phase == store::kPending) {
      // Conditional on PENDING: a worker may claim it meanwhile, and then it
      // is cancelled as a running run below.
      bool changed = false;
      store::Completion c = terminated(run_id, "cancelled by " + canceller(actor) + ": " + reason);
      c.cancelled_by = canceller(actor);
      c.end_cause = store::kEndOperator;
      c.end_by = canceller(actor);
      c.end_reason = reason;
      if (opts_.events) {
        std::string job_scope;
        {
          std::lock_guard lock(mu_);
          job_scope = job_scope_locked(row.scheduled_job_id);
        }
        add_end_events(row, &c, 0, events::RunEnd::finished, job_scope, 0);
      }
      s = store_.complete_pending(c, &changed);
      if (s && !changed) {
        row.phase = store::kRunning;
        s = cancel_in_flight(run_id, row, actor, reason);
      }
      done_cv_.notify_all();
    } else {
      s = cancel_in_flight(run_id, row, actor, reason);
    }
  }
  audit(actor, "cancel", "run " + std::to_string(run_id), reason, "", s);
  return s;
}

Status Engine::cancel_in_flight(int64_t run_id, const store::RunRow& row, const Actor& actor,
                                const std::string& reason) {
  Status s;
  bool elsewhere = false;  // cluster: another kernel runs it
  {
    std::lock_guard lock(mu_);
    {
      auto it = flights_.find(run_id);
      // Cluster: a claim of it this node is still trying, of a run the store
      // shows another node holds, is no run here (that node runs it).
      const bool tried_here =
          it != flights_.end() && !it->second->claimed && !row.node.empty() && row.node != opts_.node;
      if ((it == flights_.end() || tried_here) && opts_.cluster) {
        elsewhere = true;
      } else if (it == flights_.end()) {
        s = Status::conflict("run " + std::to_string(run_id) +
                             " is not running on this kernel; if it is stale, recover it instead");
      } else if (it->second->run->phase() == Phase::pending) {
        // Claimed but not started: it will not be started at all; its log
        // says who stopped it, as a started run's does.
        it->second->run->context()->log(it->second->run->context(), OPK_LOG_WARN,
                                        ("cancel requested by " + actor.user_id + ": " + reason).c_str());
        it->second->run->request_cancel(canceller(actor), reason);
      } else if (it->second->run->phase() == Phase::completed) {
        s = Status::conflict("run " + std::to_string(run_id) + " has already completed");
      } else if (!it->second->ref.type->cancellable()) {
        s = Status::conflict("job type '" + row.job_type + "' has no cancel hook; its runs cannot be cancelled safely");
      } else {
        Flight& f = *it->second;
        f.run->context()->log(f.run->context(), OPK_LOG_WARN,
                              ("cancel requested by " + actor.user_id + ": " + reason).c_str());
        // Under mu_ while the plugin is inside run(): never before or after it.
        if (f.run->request_cancel(canceller(actor), reason) && f.in_plugin)
          f.ref.type->c.cancel(f.ref.instance, f.ref.type->self, f.run->context());
      }
    }
  }
  if (elsewhere) {
    // Recorded in the store for the node that runs it, which cancels it
    // cooperatively (its next heartbeat, or at once on the store's hint).
    TypeRef ref = resolve_(row.job_type);
    if (ref.type && !ref.type->cancellable())
      return Status::conflict("job type '" + row.job_type +
                              "' has no cancel hook; its runs cannot be cancelled safely");
    s = store_.request_cancel(run_id, canceller(actor), reason);
    if (s) s = Status(OPK_OK, "cancel requested of node '" + row.node + "'");
  }
  return s;
}

Status Engine::retry(int64_t run_id, const Actor& actor, const std::string& reason,
                     const std::optional<std::string>& params_json, int64_t* new_run_id) {
  store::RunRow old;
  Status s = store_.get_run(run_id, &old);
  int64_t id = 0;
  if (s && (old.phase != store::kCompleted || old.outcome != store::kError))
    s = Status::conflict("run " + std::to_string(run_id) + " did not fail; only failed runs are retried");
  if (s && !old.scheduled_job_id.empty()) {
    // Nothing of a deleted scheduled job starts again.
    store::ScheduledJob job;
    s = store_.get_scheduled_job(old.scheduled_job_id, &job);
    if (s.code() == OPK_ERR_NOT_FOUND)
      s = Status::not_found("scheduled job '" + old.scheduled_job_id + "' of run " + std::to_string(run_id) +
                            " was deleted: its runs are not retried");
  }
  if (s) {
    // A claim of it still being tried (it is COMPLETED: it fails) is no run.
    std::lock_guard lock(mu_);
    if (auto it = flights_.find(run_id); it != flights_.end() && it->second->claimed)
      s = Status::conflict("run " + std::to_string(run_id) + " was given up but its plugin is still running");
  }
  if (s) {
    RunNow r;
    r.job_type = old.job_type;
    r.params_json = params_json.value_or(old.params_json);
    r.target_tenant = old.target_tenant;
    r.dry_run = old.dry_run;
    r.range_start_ms = old.range_start_ms;
    r.range_end_ms = old.range_end_ms;
    r.reason = reason;
    r.actor = actor;
    store::RunRow row;
    TypeRef ref;
    s = check_request(r, &row, &ref);
    if (s) {
      row.trigger = "retry";
      row.parent_run_id = run_id;
      row.scheduled_job_id = old.scheduled_job_id;
      std::vector<store::RunRow> rows = {row};
      s = store_.create_runs(&rows);
      if (s.code() == OPK_ERR_NOT_FOUND && !old.scheduled_job_id.empty())  // deleted since it was looked at
        s = Status::not_found("scheduled job '" + old.scheduled_job_id + "' of run " + std::to_string(run_id) +
                              " was deleted: its runs are not retried");
      if (s) {
        id = rows[0].id;
        std::lock_guard lock(mu_);
        enqueue_locked(rows[0], ref);
      }
    }
  }
  audit(actor, "retry", "run " + std::to_string(run_id), reason, params_json.value_or(""),
        s ? Status(OPK_OK, "run " + std::to_string(id)) : s);
  if (s && new_run_id) *new_run_id = id;
  return s;
}

Status Engine::hold(int64_t run_id, bool hold, const Actor& actor, const std::string& reason) {
  Status s = store_.set_hold(run_id, hold);
  if (s.code() == OPK_ERR_CONFLICT) {
    // Only a pending run is held or released: say why this one is not, and
    // which node holds a claimed one (it runs on; a cancel stops it).
    store::RunRow row;
    const std::string run = "run " + std::to_string(run_id);
    if (Status g = store_.get_run(run_id, &row); g.code() == OPK_ERR_NOT_FOUND)
      s = g;
    else if (g && row.phase == store::kCompleted)
      s = Status::conflict(run + " has already completed; only a pending run is held or released");
    else if (g && row.phase == store::kRunning)
      s = Status::conflict(run + " is not pending: node '" + row.node +
                           "' has claimed it and runs it; only a pending run is held (cancel it to stop it)");
    else if (g && row.phase == store::kPending)
      s = Status::conflict(run + " was not pending at that moment (claimed or changed meanwhile) and is pending " +
                           "again; ask again to " + (hold ? "hold" : "release") + " it");
  }
  if (s && !hold) {
    // A released run goes back into its pool's queue.
    store::RunRow row;
    if ((s = store_.get_run(run_id, &row))) {
      TypeRef ref = resolve_(row.job_type);
      std::lock_guard lock(mu_);
      if (ref.type) enqueue_locked(row, ref);
    }
  }
  audit(actor, hold ? "hold" : "release", "run " + std::to_string(run_id), reason, "", s);
  return s;
}

Status Engine::recover(int64_t run_id, const Actor& actor, const std::string& reason) {
  store::RunRow row;
  Status s = store_.get_run(run_id, &row);
  if (s && row.phase != store::kRunning) s = Status::conflict("run " + std::to_string(run_id) + " is not running");
  if (s && !row.stale) s = Status::conflict("run " + std::to_string(run_id) + " is not stale");
  if (s) {
    {
      std::lock_guard lock(mu_);
      if (auto it = flights_.find(run_id); it != flights_.end()) {
        Flight& f = *it->second;
        f.abandoned = true;
        if (f.run->request_cancel(canceller(actor), reason, store::kEndStale) && f.in_plugin && f.ref.type->c.cancel)
          f.ref.type->c.cancel(f.ref.instance, f.ref.type->self, f.run->context());
      }
    }
    store::Completion c = terminated(run_id, "recovered by " + actor.user_id + " after running too long: " + reason);
    c.end_cause = store::kEndStale;
    c.end_by = canceller(actor);
    c.end_reason = reason;
    if (opts_.events) {
      std::string job_scope;
      {
        std::lock_guard lock(mu_);
        job_scope = job_scope_locked(row.scheduled_job_id);
      }
      add_end_events(row, &c, row.started_ms, events::RunEnd::recovered, job_scope, 0);
    }
    s = store_.complete_runs({c});
    done_cv_.notify_all();
  }
  audit(actor, "recover", "run " + std::to_string(run_id), reason, "", s);
  return s;
}

store::AuditRow Engine::audit_row(const Actor& actor, const std::string& action, const std::string& target,
                                  const std::string& reason, const std::string& params, const Status& outcome) {
  store::AuditRow a;
  a.time_ms = now_ms();
  a.actor = actor.user_id.empty() ? "system" : actor.user_id;
  a.role = actor.role;
  a.action = action;
  a.target = target;
  a.reason = reason;
  a.params_json = params;
  a.outcome =
      outcome ? (outcome.message().empty() ? "ok" : "ok: " + outcome.message()) : "refused: " + outcome.message();
  a.source = actor.source;
  return a;
}

void Engine::audit(const Actor& actor, const std::string& action, const std::string& target, const std::string& reason,
                   const std::string& params, const Status& outcome) {
  Status s = store_.audit({audit_row(actor, action, target, reason, params, outcome)});
  if (!s) log::kernel()->error("audit row lost: {}", s.message());
}

}  // namespace opk::jobs
