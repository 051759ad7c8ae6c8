#include "host/jobs_operations.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/JSONString.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "host/jobs_json.h"
#include "jobs/cron.h"
#include "jobs/run.h"

namespace opk::host {

Status JobsCall::need(const char* permission) const {
  if (id.allowed(actor.role, permission)) return Status::ok();
  return Status::permission("the role " + actor.role + " lacks the permission '" + permission + "'");
}

const loader::JobType* JobsCall::type(const std::string& t) const {
  for (auto& ti : types)
    if (ti.type->id == t) return ti.type;
  return nullptr;
}

Visibility JobsCall::runs_visibility() const {
  Visibility v(id, actor);
  v.add_job_scopes(*engine.inventory_snapshot());
  return v;
}

namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// ------------------------------------------------------------------ reads

Status op_types(JobsCall& c, Object::Ptr out) {
  Array::Ptr a = new Array;
  for (const auto& ti : c.types) {
    const auto& t = *ti.type;
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", t.id);
    o->set("title", t.title);
    o->set("description", t.description);
    o->set("owner", t.owner);
    o->set("plugin", ti.plugin_id);
    o->set("manual_run", t.manual_run());
    o->set("cancel", t.cancellable());
    o->set("dry_run", t.dry_run());
    o->set("requeue", static_cast<bool>(t.capabilities & OPK_JOB_CAP_REQUEUE));
    o->set("params_schema", t.params_schema_json.empty() ? Poco::Dynamic::Var() : parsed_or_text(t.params_schema_json));
    o->set("default_schedule", t.default_schedule);
    o->set("target_duration_ms", static_cast<int64_t>(t.target_duration_ms));
    o->set("timeout_ms", static_cast<int64_t>(t.timeout_ms));
    o->set("priority", t.priority);
    o->set("pool", t.worker_pool);
    Array::Ptr steps = new Array;
    for (const auto& act : t.actions) {
      Object::Ptr s = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      s->set("id", act.id);
      s->set("title", act.title);
      steps->add(s);
    }
    o->set("steps", steps);
    // The manifest's title and description in other languages, as the
    // plugins answer gives an alert source's or a feature's.
    Array::Ptr translated = new Array;
    for (const auto& tr : t.translations) {
      Object::Ptr x = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
      x->set("lang", tr.lang);
      if (!tr.title.empty()) x->set("title", tr.title);
      if (!tr.description.empty()) x->set("description", tr.description);
      translated->add(x);
    }
    o->set("translations", translated);
    a->add(o);
  }
  out->set("types", a);
  return Status::ok();
}

// How long a job's last run ran, once it has finished; 0 before.
int64_t inventory_duration_ms(const store::InventoryRow& r) {
  return r.last_started_ms && r.last_finished_ms >= r.last_started_ms ? r.last_finished_ms - r.last_started_ms : 0;
}

// What a scheduled job is doing now: disabled (not enabled), running or
// queued (its last run), manual (planning disabled: runs only by hand), or
// idle (waiting for its next slot).
std::string inventory_state(const store::InventoryRow& r) {
  if (!r.job.enabled) return "disabled";
  if (r.last_run_id && r.last_phase == store::kRunning) return "running";
  if (r.last_run_id && r.last_phase == store::kPending) return "queued";
  if (r.job.planning == "disabled") return "manual";
  return "idle";
}

Status op_inventory(JobsCall& c, Object::Ptr /*out: written by hand, see below*/) {
  store::InventoryFilter f;
  std::string tenant, sort = "id", order = "asc";
  int64_t offset = 0, limit = 50;
  Status s;
  if (!(s = c.req.str("status", &f.status)) || !(s = c.req.str("text", &f.text)) ||
      !(s = c.req.str("type", &f.job_type)) || !(s = c.req.str("region", &f.region)) ||
      !(s = c.req.str("tenant", &tenant)) || !(s = c.req.str("sort", &sort)) || !(s = c.req.str("order", &order)) ||
      !(s = c.req.integer("offset", &offset, 0, 1000000000)) || !(s = c.req.integer("limit", &limit, 1, 500)))
    return s;
  // One status or several, comma-separated (the console's toggles).
  static const std::vector<std::string> statuses = {"running",   "pending",   "normal",    "warning",
                                                    "error",     "cancelled", "timed_out", "stopped",
                                                    "recovered", "skipped",   "never"};
  std::string listed;
  for (size_t pos = 0; !f.status.empty() && pos <= f.status.size();) {
    size_t end = f.status.find(',', pos);
    if (end == std::string::npos) end = f.status.size();
    std::string one = f.status.substr(pos, end - pos);
    one.erase(0, one.find_first_not_of(' '));
    one.erase(one.find_last_not_of(' ') + 1);
    if (std::find(statuses.begin(), statuses.end(), one) == statuses.end())
      return Status::invalid("status: '" + one +
                             "' is not running, pending, normal, warning, error, cancelled, timed_out, stopped, "
                             "recovered or never");
    listed += (listed.empty() ? "" : ",") + one;
    pos = end + 1;
  }
  f.status = listed;
  static const std::vector<std::string> sorts = {"id",          "type",  "next_run", "last_run", "status",  "state",
                                                 "description", "owner", "scope",    "region",   "enabled", "duration"};
  if (std::find(sorts.begin(), sorts.end(), sort) == sorts.end())
    return Status::invalid("sort: '" + sort +
                           "' is not id, type, next_run, last_run, status, state, description, owner, scope, region, "
                           "enabled or duration");
  if (order != "asc" && order != "desc") return Status::invalid("order: '" + order + "' is not asc or desc");
  if (!tenant.empty()) {
    if (Status s = c.vis.node("tenant", tenant); !s) return s;
  }
  // Filtered and sorted as pointers into the engine's shared copy: no row is
  // copied, each sort key is made once.
  const auto all = c.inventory ? c.inventory : c.engine.inventory_snapshot();
  std::string text = f.text;
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char ch) { return std::tolower(ch); });
  struct Keyed {
    std::string key_text;
    int64_t key_num = 0;
    const store::InventoryRow* row;
  };
  std::vector<Keyed> rows;
  // The regions and scope nodes of every job the actor may see, whatever the
  // other filters: the choices a client offers for those two filters.
  std::set<std::string> regions, scopes;
  for (const auto& r : *all) {
    if (!c.vis.job(r.job)) continue;
    if (!r.job.region.empty()) regions.insert(r.job.region);
    scopes.insert(r.job.scope);
    if (!jobs::Engine::matches(r, f, text)) continue;
    if (!tenant.empty() && !c.id.contains(tenant, r.job.scope)) continue;
    Keyed k{{}, 0, &r};
    if (sort == "type") k.key_text = r.job.job_type;
    if (sort == "status")
      k.key_text =
          r.last_run_id ? status_of(r.last_phase, r.last_outcome, r.last_cancelled_by, r.last_end_cause) : "never";
    if (sort == "next_run") k.key_num = r.job.next_run_ms;
    if (sort == "last_run") k.key_num = r.last_created_ms;
    if (sort == "state") k.key_text = inventory_state(r);
    if (sort == "description") k.key_text = r.job.description;
    if (sort == "owner") k.key_text = r.job.owner;
    if (sort == "scope") k.key_text = r.job.scope;
    if (sort == "region") k.key_text = r.job.region;
    if (sort == "enabled") k.key_num = r.job.enabled ? 1 : 0;
    if (sort == "duration") k.key_num = inventory_duration_ms(r);
    rows.push_back(std::move(k));
  }
  const bool asc = order == "asc";
  std::sort(rows.begin(), rows.end(), [&](const Keyed& a, const Keyed& b) {
    if (a.key_text != b.key_text) return asc ? a.key_text < b.key_text : b.key_text < a.key_text;
    if (a.key_num != b.key_num) return asc ? a.key_num < b.key_num : b.key_num < a.key_num;
    return asc ? a.row->job.id < b.row->job.id : b.row->job.id < a.row->job.id;
  });
  // Written by hand: this is the API's busiest answer, and building it
  // through Poco::JSON objects cost several times the rest of the request.
  std::string& a = c.raw_answer;
  a.reserve(512 * static_cast<size_t>(limit));
  a = "{\"total\":" + std::to_string(rows.size()) + ",\"offset\":" + std::to_string(offset) +
      ",\"limit\":" + std::to_string(limit) + ",\"items\":[";
  for (size_t i = static_cast<size_t>(offset), n = 0; i < rows.size() && n < static_cast<size_t>(limit); ++i, ++n) {
    const auto& r = *rows[i].row;
    if (n) a += ',';
    append_job_json(r.job, &a);
    a.pop_back();  // reopen the object for last_run
    a += ",\"last_run\":";
    if (r.last_run_id) {
      a += "{\"id\":" + std::to_string(r.last_run_id) + ",\"status\":\"" +
           status_of(r.last_phase, r.last_outcome, r.last_cancelled_by, r.last_end_cause) +
           "\",\"created_ms\":" + std::to_string(r.last_created_ms) +
           ",\"started_ms\":" + std::to_string(r.last_started_ms) +
           ",\"finished_ms\":" + std::to_string(r.last_finished_ms) +
           ",\"duration_ms\":" + std::to_string(inventory_duration_ms(r)) + "}";
    } else {
      a += "null";
    }
    a += ",\"state\":\"" + inventory_state(r) + "\"}";
  }
  a += "]";
  for (const auto& [name, set] : {std::pair{"regions", &regions}, std::pair{"scopes", &scopes}}) {
    a += std::string(",\"") + name + "\":[";
    for (const auto& v : *set) {
      if (a.back() != '[') a += ',';
      a += Poco::toJSON(v, Poco::JSON_WRAP_STRINGS);
    }
    a += ']';
  }
  a += "}";
  return Status::ok();
}

Status op_job(JobsCall& c, Object::Ptr out) {
  std::string id;
  int64_t last_n = 20;
  Status s;
  if (!(s = c.req.str("id", &id, true)) || !(s = c.req.integer("last_n", &last_n, 1, 1000))) return s;
  store::ScheduledJob job;
  if (!(s = c.vis.find_job(c.store, id, &job))) return s;
  jobs::DrillIn d;
  if (!(s = c.engine.drill_in(id, static_cast<size_t>(last_n), &d)) && s.code() != OPK_ERR_INVALID_ARGUMENT) return s;
  out->set("job", job_json(d.job));
  Array::Ptr runs = new Array;
  for (const auto& r : d.runs) {
    Object::Ptr o = run_json(r, c.type(r.job_type));
    // The last lines of each run's log, oldest first, for the dashboard.
    const auto lines = c.store.last_logs(r.id, 5);
    if (!lines) return lines.status();  // unreadable is 503, not an empty tail
    o->set("log_tail", log_json(lines.value()));
    runs->add(o);
  }
  out->set("runs", runs);
  Array::Ptr fails = new Array;
  for (const auto& [day, n] : d.failures_30d) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("day_ms", day);
    o->set("failures", n);
    fails->add(o);
  }
  out->set("failures_30d", fails);
  Array::Ptr stopped = new Array;
  for (const auto& [day, n] : d.terminated_30d) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("day_ms", day);
    o->set("terminated", n);
    stopped->add(o);
  }
  out->set("terminated_30d", stopped);
  Array::Ptr next = new Array;
  for (auto ms : d.next_fire_ms) next->add(ms);
  out->set("next_fire_ms", next);
  return Status::ok();
}

// A page of runs is read after an opaque cursor: "o<id>" for the runs older
// than the run <id>, "n<id>" for those newer (the page before). Into *f; the
// cursor's direction into *newer.
Status runs_cursor(const std::string& cursor, store::RunFilter* f, bool* newer) {
  *newer = false;
  if (cursor.empty()) return Status::ok();
  int64_t id = 0;
  const bool digits = cursor.size() > 1 && cursor.size() < 20 &&
                      std::all_of(cursor.begin() + 1, cursor.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (digits) id = std::stoll(cursor.substr(1));
  if (!digits || id < 1 || (cursor[0] != 'o' && cursor[0] != 'n'))
    return Status::invalid("cursor: '" + cursor + "' is not a cursor this API gave (next_cursor or prev_cursor)");
  *newer = cursor[0] == 'n';
  (*newer ? f->after_id : f->before_id) = id;
  return Status::ok();
}

Status op_runs(JobsCall& c, Object::Ptr out) {
  store::RunFilter f;
  std::string status, cursor;
  int64_t limit = 50, since = 0, until = 0;
  bool over_target = false, stale = false, newer = false;
  Status s;
  if (!(s = c.req.str("job_id", &f.scheduled_job_id)) || !(s = c.req.str("job_type", &f.job_type)) ||
      !(s = c.req.str("status", &status)) || !(s = c.req.integer("limit", &limit, 1, 1000)) ||
      !(s = c.req.integer("since_ms", &since, 0, INT64_MAX)) ||
      !(s = c.req.integer("until_ms", &until, 0, INT64_MAX)) || !(s = c.req.str("trigger", &f.trigger)) ||
      !(s = c.req.str("cursor", &cursor)) || !(s = c.req.boolean("over_target", &over_target)) ||
      !(s = c.req.boolean("stale", &stale)) || !(s = runs_cursor(cursor, &f, &newer)))
    return s;
  static const std::set<std::string> kTriggers = {"schedule", "manual", "retry", "chain", "recovery"};
  if (!f.trigger.empty() && !kTriggers.count(f.trigger))
    return Status::invalid("trigger: '" + f.trigger + "' is not schedule, manual, retry, chain or recovery");
  if (until && until <= since)
    return Status::invalid("until_ms: " + std::to_string(until) + " is not after since_ms " + std::to_string(since));
  if (status == "pending" || status == "running") {
    f.phase = status == "pending" ? store::kPending : store::kRunning;
  } else if (status == "normal" || status == "warning" || status == "error") {
    f.outcome = status == "normal" ? store::kNormal : status == "warning" ? store::kWarning : store::kError;
    f.cancelled = false;
    f.end_causes = std::vector<std::string>{""};
  } else if (status == "cancelled") {
    f.end_causes = std::vector<std::string>{store::kEndOperator};
  } else if (status == "timed_out") {
    f.end_causes = std::vector<std::string>{store::kEndTimeout};
  } else if (status == "stopped") {
    f.end_causes = std::vector<std::string>{store::kEndShutdown};
  } else if (status == "recovered") {
    f.end_causes = std::vector<std::string>{store::kEndCrash, store::kEndStale};
  } else if (status == "skipped") {  // a slot a run gate skipped (opk.run-gates/1)
    f.outcome = jobs::kSkipped;
  } else if (status == "terminated") {  // any of the four above
    f.end_causes = std::vector<std::string>{store::kEndOperator, store::kEndTimeout, store::kEndShutdown,
                                            store::kEndCrash, store::kEndStale};
  } else if (!status.empty()) {
    return Status::invalid("status: '" + status +
                           "' is not pending, running, normal, warning, error, cancelled, timed_out, stopped, "
                           "recovered, skipped or terminated");
  }
  f.since_ms = since;
  f.until_ms = until;
  const auto vis = c.runs_visibility();
  // The store keeps to the caller's scope; read more than asked when a flag
  // filter hides some, and one more to know whether a page follows.
  if (!vis.whole_platform()) f.seen_from = c.id.nodes_within(c.actor.scope);
  const bool filtered = over_target || stale;
  f.limit = static_cast<size_t>(filtered ? std::min<int64_t>(limit * 10, 10000) : limit + 1);
  const auto runs = c.store.list_runs(f);
  if (!runs) return runs.status();  // unreadable is 503, not an empty list
  std::vector<const store::RunRow*> page;
  // The last run looked at, and whether runs past it may match.
  int64_t last_seen = 0;
  bool more = false;
  for (const auto& r : runs.value()) {
    if (static_cast<int64_t>(page.size()) >= limit) {
      more = true;
      break;
    }
    last_seen = r.id;
    if ((over_target && !run_over_target(r, c.type(r.job_type))) || (stale && !r.stale)) continue;
    if (vis.run(r)) page.push_back(&r);
  }
  if (filtered && runs.value().size() >= f.limit) more = true;  // the read stopped before the end
  if (newer) std::reverse(page.begin(), page.end());            // read oldest first
  Array::Ptr items = new Array;
  for (const auto* r : page) items->add(run_json(*r, c.type(r->job_type)));
  out->set("items", items);
  // Cursors to the pages after (older runs) and before (newer runs), where
  // there may be some. Read backwards, the page's far end is its newest run.
  const int64_t oldest = page.empty() ? 0 : page.back()->id, newest = page.empty() ? 0 : page.front()->id;
  const int64_t far = more ? (filtered ? last_seen : (newer ? newest : oldest)) : 0;
  if (!newer && more) out->set("next_cursor", "o" + std::to_string(far));
  if (newer && more) out->set("prev_cursor", "n" + std::to_string(far));
  if (!newer && f.before_id)  // came from newer pages
    out->set("prev_cursor", "n" + std::to_string(page.empty() ? f.before_id - 1 : newest));
  if (newer)  // came from older pages
    out->set("next_cursor", "o" + std::to_string(page.empty() ? f.after_id + 1 : oldest));
  return Status::ok();
}

Status op_run(JobsCall& c, Object::Ptr out) {
  int64_t run_id = 0;
  Status s;
  if (!(s = c.req.integer("run_id", &run_id, 1, INT64_MAX, true))) return s;
  store::RunRow visible;
  if (!(s = c.runs_visibility().find_run(c.store, run_id, &visible))) return s;
  jobs::RunView v;
  if (!(s = c.engine.get(run_id, &v))) return s;
  const auto* t = c.type(v.row.job_type);
  Object::Ptr run = run_json(v.row, t);
  run->set("cancellable", t && t->cancellable() && v.row.phase != store::kCompleted);
  run->set("retryable", v.row.phase == store::kCompleted && v.row.outcome == store::kError);
  out->set("run", run);
  Array::Ptr steps = new Array;
  for (const auto& st : v.steps) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", st.step_id);
    o->set("outcome", st.outcome);
    o->set("start_ms", st.start_ms);
    o->set("end_ms", st.end_ms);
    o->set("summary", st.summary);
    steps->add(o);
  }
  out->set("steps", steps);
  return Status::ok();
}

Status op_log(JobsCall& c, Object::Ptr out) {
  int64_t run_id = 0, after = 0, limit = 500, wait_ms = 0;
  Status s;
  if (!(s = c.req.integer("run_id", &run_id, 1, INT64_MAX, true)) ||
      !(s = c.req.integer("after_seq", &after, 0, INT64_MAX)) || !(s = c.req.integer("limit", &limit, 1, 10000)) ||
      !(s = c.req.integer("wait_ms", &wait_ms, 0, 60000)))
    return s;
  store::RunRow run;
  if (!(s = c.runs_visibility().find_run(c.store, run_id, &run))) return s;
  bool finished = false;
  auto lines = c.engine.wait_log(run_id, after, static_cast<size_t>(limit), wait_ms, &finished);
  // Lines came back, fewer than asked: if the run is completed now (its
  // lines are stored with the completion), nothing more will be written,
  // but some may have been between the read above and the completion (a
  // cancelled run's last words): read on from the last line before saying
  // the log is finished.
  if (!finished && lines.size() < static_cast<size_t>(limit) && c.store.get_run(run_id, &run) &&
      run.phase == store::kCompleted) {
    const int64_t next = lines.empty() ? after : lines.back().seq;
    auto rest = c.engine.log_tail(run_id, next, static_cast<size_t>(limit) - lines.size());
    lines.insert(lines.end(), rest.begin(), rest.end());
    finished = lines.size() < static_cast<size_t>(limit);
  }
  out->set("lines", log_json(lines));
  out->set("next_seq", lines.empty() ? after : lines.back().seq);
  out->set("finished", finished);
  return Status::ok();
}

Status op_queues(JobsCall& c, Object::Ptr out) {
  Object::Ptr pools = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [name, n] : c.engine.queue_depths()) pools->set(name, static_cast<int64_t>(n));
  out->set("pools", pools);
  // Whether queued runs can be claimed and stored now (readiness asks this).
  const Status writable = c.store.writable();
  Object::Ptr store = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  store->set("writable", writable.code() == OPK_OK);
  if (!writable) store->set("error", writable.message());
  out->set("store", store);
  return Status::ok();
}

// The overview's counts (the console's second-monitor screen): the open
// runs now, the runs completed in the last 24 hours by status and per hour,
// the pools' queues and the failures by job, counted by the store (GROUP BY)
// and summed here over the groups the caller may see.
Status op_overview(JobsCall& c, Object::Ptr out) {
  constexpr int64_t kHour = 3600000, kHours = 24;
  const int64_t now = jobs::now_ms(), first_hour = now / kHour - (kHours - 1);
  const auto rows = c.store.run_summary(first_hour * kHour, now);
  if (!rows) return rows.status();
  const auto vis = c.runs_visibility();
  struct Pool {
    int64_t queued = 0, delayed = 0, held = 0, running = 0, oldest = 0;
  };
  struct Failures {
    std::string job_id, job_type;
    int64_t count = 0, last_id = 0;
  };
  std::map<std::string, Pool> pools;
  std::map<std::string, int64_t> day;
  std::map<std::string, Failures> failures;  // by job, else "type:<job type>"
  std::vector<int64_t> per_hour(kHours, 0);
  int64_t running = 0, pending = 0;
  for (const auto& r : rows.value()) {
    if (!vis.whole_platform() && !vis.run(r.scheduled_job_id, r.target_tenant, r.scope)) continue;
    if (r.phase == store::kRunning || r.phase == store::kPending) {
      Pool& p = pools[r.pool];
      if (r.phase == store::kRunning) {
        running += r.count;
        p.running += r.count;
        continue;
      }
      pending += r.count;
      if (r.hold) {
        p.held += r.count;
      } else if (!r.due) {
        p.delayed += r.count;
      } else {
        p.queued += r.count;
        if (!p.oldest || r.oldest_scheduled_ms < p.oldest) p.oldest = r.oldest_scheduled_ms;
      }
      continue;
    }
    const std::string status = status_of(r.phase, r.outcome, r.cancelled ? "yes" : "", r.end_cause);
    day[status] += r.count;
    if (r.hour >= first_hour && r.hour < first_hour + kHours)
      per_hour[static_cast<size_t>(r.hour - first_hour)] += r.count;
    if (status != "error") continue;
    Failures& f = failures[r.scheduled_job_id.empty() ? "type:" + r.job_type : r.scheduled_job_id];
    f.job_id = r.scheduled_job_id;
    f.job_type = r.job_type;
    f.count += r.count;
    f.last_id = std::max(f.last_id, r.last_id);
  }
  // Every pool the engine serves, also those with no open run.
  for (const auto& [name, n] : c.engine.queue_depths())
    if (!name.empty() && name[0] != '(') pools[name];
  out->set("now_ms", now);
  Object::Ptr open = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  open->set("running", running);
  open->set("pending", pending);
  out->set("now", open);
  Object::Ptr by_status = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const char* st : {"normal", "warning", "error", "cancelled", "timed_out", "stopped", "recovered", "skipped"})
    by_status->set(st, day.count(st) ? day[st] : 0);
  out->set("day", by_status);
  Array::Ptr hours = new Array;
  for (int64_t i = 0; i < kHours; ++i) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("hour_ms", (first_hour + i) * kHour);
    o->set("completed", per_hour[static_cast<size_t>(i)]);
    hours->add(o);
  }
  out->set("per_hour", hours);
  Array::Ptr queues = new Array;
  for (const auto& [name, p] : pools) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("pool", name);
    o->set("queued", p.queued);
    o->set("delayed", p.delayed);
    o->set("held", p.held);
    o->set("running", p.running);
    o->set("oldest_waiting_ms", p.oldest);
    queues->add(o);
  }
  out->set("pools", queues);
  // The jobs that failed most, at most 50, each with its last failure.
  std::vector<const Failures*> worst;
  for (const auto& [key, f] : failures) worst.push_back(&f);
  std::sort(worst.begin(), worst.end(), [](const Failures* a, const Failures* b) {
    return a->count != b->count ? a->count > b->count : a->last_id > b->last_id;
  });
  if (worst.size() > 50) worst.resize(50);
  // Their last failures in one read (a run pruned meanwhile has no
  // finished_ms or summary).
  std::map<int64_t, const store::RunRow*> last_runs;
  std::vector<store::RunRow> lasts;
  if (!worst.empty()) {
    store::RunFilter which;
    which.ids.emplace();
    for (const auto* f : worst) which.ids->push_back(f->last_id);
    which.limit = worst.size();
    auto read = c.store.list_runs(which);
    if (!read) return read.status();
    lasts = std::move(read).value();
    for (const auto& run : lasts) last_runs[run.id] = &run;
  }
  Array::Ptr failed = new Array;
  for (const auto* f : worst) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("job_id", f->job_id);
    o->set("job_type", f->job_type);
    o->set("count", f->count);
    Object::Ptr last = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    last->set("id", f->last_id);
    if (auto it = last_runs.find(f->last_id); it != last_runs.end()) {
      last->set("finished_ms", it->second->finished_ms);
      last->set("summary", it->second->summary);
    }
    o->set("last", last);
    failed->add(o);
  }
  out->set("failures", failed);
  return Status::ok();
}

// The failures a user has not seen, counted per job by the store over the
// lookback: those after the user's mark for the job ("after": job key ->
// run id) and not among the runs seen one by one ("seen_runs"), in the
// caller's scope; each group with its newest failure. The marks are the
// caller's (the console keeps them), so the kernel reads no plugin's table.
Status op_failure_groups(JobsCall& c, Object::Ptr out) {
  constexpr size_t kMaxMarks = 10000;
  store::FailureQuery q;
  std::optional<std::string> after;
  Status s;
  if (!(s = c.req.integer("since_ms", &q.since_ms, 0, INT64_MAX, true)) ||
      !(s = c.req.boolean("stopped", &q.terminated)) || !(s = c.req.object_text("after", &after)))
    return s;
  if (after) {
    Object::Ptr marks = Poco::JSON::Parser().parse(*after).extract<Object::Ptr>();
    if (marks->size() > kMaxMarks)
      return Status::invalid("after: " + std::to_string(marks->size()) + " marks, more than " +
                             std::to_string(kMaxMarks));
    for (const auto& [key, value] : *marks) {
      if (key.empty() || key.size() > 300)
        return Status::invalid("after: a job key must be 1 to 300 bytes (the scheduled job's id or type:<job type>)");
      if (!value.isInteger() || value.convert<int64_t>() < 0)
        return Status::invalid("after." + key + ": must be a run id (a whole number, 0 or more)");
      q.after[key] = value.convert<int64_t>();
    }
  }
  if (c.req.has("seen_runs")) {
    auto seen = c.req.array("seen_runs");
    if (!seen) return Status::invalid("seen_runs: must be an array of run ids");
    if (seen->size() > kMaxMarks)
      return Status::invalid("seen_runs: " + std::to_string(seen->size()) + " run ids, more than " +
                             std::to_string(kMaxMarks));
    for (size_t i = 0; i < seen->size(); ++i) {
      const auto v = seen->get(static_cast<unsigned>(i));
      if (!v.isInteger() || v.convert<int64_t>() < 1)
        return Status::invalid("seen_runs[" + std::to_string(i) + "]: must be a run id (a whole number, 1 or more)");
      q.except.push_back(v.convert<int64_t>());
    }
  }
  const auto vis = c.runs_visibility();
  if (!vis.whole_platform()) q.seen_from = c.id.nodes_within(c.actor.scope);
  const auto groups = c.store.failure_groups(q);
  if (!groups) return groups.status();  // unreadable is 503, not no failures
  Array::Ptr items = new Array;
  int64_t total = 0;
  for (const auto& g : groups.value()) {
    store::RunRow last;
    if (!(s = c.store.get_run(g.last_id, &last)) || !vis.run(last)) continue;  // gone, or a job's scope moved
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("key", g.scheduled_job_id.empty() ? "type:" + g.job_type : g.scheduled_job_id);
    o->set("job_id", g.scheduled_job_id);
    o->set("job_type", g.job_type);
    o->set("count", g.count);
    o->set("last", run_json(last, c.type(last.job_type)));
    items->add(o);
    total += g.count;
  }
  out->set("groups", items);
  out->set("total", total);
  return Status::ok();
}

Status op_stats(JobsCall& c, Object::Ptr out) {
  const auto run_counts = c.store.run_counts();
  if (!run_counts) return run_counts.status();
  // Summed per (job type, status): two causes may share a status.
  std::map<std::pair<std::string, std::string>, int64_t> counted;
  for (const auto& r : run_counts.value())
    counted[{r.job_type, status_of(r.phase, r.outcome, r.cancelled ? "yes" : "", r.end_cause)}] += r.count;
  Array::Ptr runs = new Array;
  for (const auto& [key, n] : counted) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("job_type", key.first);
    o->set("status", key.second);
    o->set("count", n);
    runs->add(o);
  }
  out->set("runs", runs);
  Object::Ptr pools = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [name, n] : c.engine.queue_depths()) pools->set(name, static_cast<int64_t>(n));
  out->set("queues", pools);
  const auto h = c.engine.lag_histogram();
  Object::Ptr lag = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  Array::Ptr bounds = new Array, counts = new Array;
  for (auto b : h.bounds_ms) bounds->add(b);
  for (auto n : h.counts) counts->add(static_cast<int64_t>(n));
  lag->set("bounds_ms", bounds);
  lag->set("counts", counts);  // per bucket; the last one is above every bound
  lag->set("sum_ms", h.sum_ms);
  lag->set("count", static_cast<int64_t>(h.count));
  out->set("dispatch_lag", lag);
  return Status::ok();
}

Status op_audit(JobsCall& c, Object::Ptr out) {
  int64_t limit = 100;
  std::string actor, action;
  Status s;
  if (!(s = c.req.integer("limit", &limit, 1, 1000)) || !(s = c.req.str("actor", &actor)) ||
      !(s = c.req.str("action", &action)))
    return s;
  std::map<std::string, std::string> user_scope;
  const auto users = c.store.list_users();
  if (!users) return users.status();
  for (const auto& u : users.value()) user_scope[u.id] = u.scope;
  Array::Ptr items = new Array;
  const auto rows = c.store.audit_rows(static_cast<size_t>(c.vis.whole_platform() ? limit : limit * 10));
  if (!rows) return rows.status();
  for (const auto& a : rows.value()) {
    if (static_cast<int64_t>(items->size()) >= limit) break;
    if (!actor.empty() && a.actor != actor) continue;
    if (!action.empty() && a.action != action) continue;
    if (!c.vis.audit(a, user_scope)) continue;
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", a.id);
    o->set("time_ms", a.time_ms);
    o->set("actor", a.actor);
    o->set("role", a.role);
    o->set("action", a.action);
    o->set("target", a.target);
    o->set("reason", a.reason);
    o->set("params", parsed_or_text(a.params_json));
    o->set("outcome", a.outcome);
    o->set("source", a.source);
    items->add(o);
  }
  out->set("items", items);
  return Status::ok();
}

Status op_cron_next(JobsCall& c, Object::Ptr out) {
  std::string expr, tz = "UTC";
  int64_t n = 5, after = 0;
  Status s;
  if (!(s = c.req.str("cron", &expr, true)) || !(s = c.req.str("time_zone", &tz)) ||
      !(s = c.req.integer("n", &n, 1, 100)) || !(s = c.req.integer("after_ms", &after, 0, INT64_MAX)))
    return s;
  const auto start = cron::Instant(std::chrono::seconds((after ? after : jobs::now_ms()) / 1000));
  Array::Ptr fires = new Array;
  // Several expressions separated by ';' fire at the union of their times.
  std::vector<int64_t> all;
  std::stringstream ss(expr);
  std::string one;
  while (std::getline(ss, one, ';')) {
    std::vector<cron::Instant> times;
    if (!(s = cron::next_fire_times(one, tz, start, static_cast<size_t>(n), &times)))
      return Status::invalid("cron: " + s.message());
    for (auto t : times)
      all.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  for (size_t i = 0; i < all.size() && i < static_cast<size_t>(n); ++i) fires->add(all[i]);
  out->set("fire_ms", fires);
  return Status::ok();
}

Status op_plugins(JobsCall& c, Object::Ptr out) {
  Poco::JSON::Parser parser;
  out->set("plugins", c.plugins ? parser.parse(c.plugins()) : Poco::Dynamic::Var(Array::Ptr(new Array)));
  return Status::ok();
}

// ---------------------------------------------------------------- actions

// Fields a scheduled job may be given on create and update.
Status read_job_fields(JobsCall& c, store::ScheduledJob* j) {
  Status s;
  int64_t jitter = j->jitter_minutes;
  std::optional<std::string> params;
  if (!(s = c.req.str("planning", &j->planning)) || !(s = c.req.str("cron", &j->cron)) ||
      !(s = c.req.str("time_zone", &j->time_zone)) || !(s = c.req.integer("jitter_minutes", &jitter, 0, 59)) ||
      !(s = c.req.object_text("params", &params)) || !(s = c.req.boolean("enabled", &j->enabled)) ||
      !(s = c.req.str("owner", &j->owner)) || !(s = c.req.str("scope", &j->scope)) ||
      !(s = c.req.str("region", &j->region)))
    return s;
  j->jitter_minutes = static_cast<int32_t>(jitter);
  if (params) j->params_json = *params;
  if (c.req.has("report_recipients")) {
    auto arr = c.req.array("report_recipients");
    if (!arr) return Status::invalid("report_recipients: expected an array of e-mail addresses");
    std::string joined;
    for (size_t i = 0; i < arr->size(); ++i) {
      auto v = arr->get(static_cast<unsigned>(i));
      const std::string addr = v.isString() ? v.extract<std::string>() : std::string();
      const auto at = addr.find('@');
      if (at == std::string::npos || at == 0 || at + 1 >= addr.size() ||
          addr.find_first_of(" ,;<>") != std::string::npos)
        return Status::invalid("report_recipients[" + std::to_string(i) + "]: '" + addr + "' is not an e-mail address");
      joined += (joined.empty() ? "" : ",") + addr;
    }
    j->report_recipients = joined;
  }
  return c.vis.node("scope", j->scope);
}

Status op_define(JobsCall& c, Object::Ptr out) {
  store::ScheduledJob j;
  j.scope = c.actor.scope;
  Status s;
  if (!(s = c.req.str("id", &j.id, true)) || !(s = c.req.str("job_type", &j.job_type, true)) ||
      !(s = c.req.str("description", &j.description)) || !(s = read_job_fields(c, &j)))
    return s;
  c.reached_engine = true;
  if (!(s = c.engine.define_job(j, c.engine_actor()))) return s;
  store::ScheduledJob stored;
  c.store.get_scheduled_job(j.id, &stored);
  out->set("job", job_json(stored));
  return Status::ok();
}

Status op_update(JobsCall& c, Object::Ptr out) {
  std::string id;
  Status s;
  if (!(s = c.req.str("id", &id, true))) return s;
  store::ScheduledJob j;
  if (!(s = c.vis.find_job(c.store, id, &j))) return s;
  for (const char* fixed : {"job_type", "description"}) {
    std::string v;
    if (!(s = c.req.str(fixed, &v))) return s;
    if (c.req.has(fixed) && v != (std::string(fixed) == "job_type" ? j.job_type : j.description))
      return Status::invalid(std::string(fixed) + ": cannot be changed after creation");
  }
  if (!(s = read_job_fields(c, &j))) return s;
  c.reached_engine = true;
  if (!(s = c.engine.update_job(j, c.engine_actor()))) return s;
  store::ScheduledJob stored;
  c.store.get_scheduled_job(id, &stored);
  out->set("job", job_json(stored));
  return Status::ok();
}

Status op_delete(JobsCall& c, Object::Ptr out) {
  std::string id, reason;
  Status s;
  if (!(s = c.req.str("id", &id, true)) || !(s = c.req.str("reason", &reason))) return s;
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return Status::invalid("reason: a reason is required to delete a scheduled job");
  store::ScheduledJob j;
  if (!(s = c.vis.find_job(c.store, id, &j))) return s;  // another scope's job is not found
  c.reached_engine = true;
  if (!(s = c.engine.delete_job(id, c.engine_actor(), reason, stringify(job_json(j))))) return s;
  out->set("id", id);
  return Status::ok();
}

// One run-now request from a JSON object.
Status read_run_now(JobsCall& c, const JobsRequest& r, jobs::RunNow* out) {
  Status s;
  std::string job_id;
  if (!(s = r.str("job_id", &job_id)) || !(s = r.str("job_type", &out->job_type)) ||
      !(s = r.object_text("params", &out->params_json)) || !(s = r.str("tenant", &out->target_tenant)) ||
      !(s = r.boolean("dry_run", &out->dry_run)) || !(s = r.str("reason", &out->reason)) ||
      !(s = r.integer("range_start_ms", &out->range_start_ms, 0, INT64_MAX)) ||
      !(s = r.integer("range_end_ms", &out->range_end_ms, 0, INT64_MAX)) ||
      !(s = r.integer("start_at_ms", &out->start_at_ms, 0, INT64_MAX)))
    return s;
  if (!job_id.empty()) {
    store::ScheduledJob job;
    if (!(s = c.vis.find_job(c.store, job_id, &job))) return s;
    out->scheduled_job_id = job_id;
  }
  if (!out->target_tenant.empty()) {
    if (Status s = c.vis.node("tenant", "tenant:" + out->target_tenant); !s) return s;
  }
  out->actor = c.engine_actor();
  return Status::ok();
}

Status op_run_now(JobsCall& c, Object::Ptr out) {
  std::vector<jobs::RunNow> reqs;
  Status s;
  if (c.req.has("requests")) {
    auto arr = c.req.array("requests");
    if (!arr || arr->size() == 0 || arr->size() > 1000)
      return Status::invalid("requests: expected an array of 1 to 1000 run-now requests");
    for (size_t i = 0; i < arr->size(); ++i) {
      JobsRequest one;
      std::ostringstream os;
      Poco::JSON::Stringifier::stringify(arr->get(static_cast<unsigned>(i)), os);
      if (!(s = one.parse(os.str()))) return Status::invalid("requests[" + std::to_string(i) + "]: expected an object");
      jobs::RunNow r;
      if (!(s = read_run_now(c, one, &r)))
        return Status(s.code(), "requests[" + std::to_string(i) + "]." + s.message());
      reqs.push_back(std::move(r));
    }
  } else {
    jobs::RunNow r;
    if (!(s = read_run_now(c, c.req, &r))) return s;
    reqs.push_back(std::move(r));
  }
  std::vector<int64_t> ids;
  c.reached_engine = true;
  if (!(s = c.engine.run_now_batch(reqs, &ids))) return s;
  Array::Ptr a = new Array;
  for (auto id : ids) a->add(id);
  out->set("run_ids", a);
  return Status::ok();
}

// cancel, retry, hold, release and recover: one run, with a reason.
Status op_run_action(JobsCall& c, Object::Ptr out) {
  const std::string op = c.op->name;
  int64_t run_id = 0;
  std::string reason;
  std::optional<std::string> params;
  Status s;
  if (!(s = c.req.integer("run_id", &run_id, 1, INT64_MAX, true)) || !(s = c.req.str("reason", &reason)) ||
      !(s = c.req.object_text("params", &params)))
    return s;
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return Status::invalid("reason: a reason is required for " + op);
  store::RunRow run;
  if (!(s = c.runs_visibility().find_run(c.store, run_id, &run))) return s;
  const auto actor = c.engine_actor();
  int64_t new_id = 0;
  c.reached_engine = true;
  if (op == "cancel") s = c.engine.cancel(run_id, actor, reason);
  if (op == "retry") s = c.engine.retry(run_id, actor, reason, params, &new_id);
  if (op == "hold" || op == "release") s = c.engine.hold(run_id, op == "hold", actor, reason);
  if (op == "recover") s = c.engine.recover(run_id, actor, reason);
  if (!s) return s;
  out->set("run_id", run_id);
  if (new_id) out->set("new_run_id", new_id);
  return Status::ok();
}

// The kernels sharing the store (workers) and their drain: kernel-wide.
Status op_workers(JobsCall& c, Object::Ptr out) {
  std::vector<jobs::Worker> ws;
  if (Status s = c.engine.workers(&ws); !s) return s;
  Array::Ptr a = new Array;
  for (const auto& w : ws) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("node", w.node.id);
    o->set("version", w.node.version);
    o->set("status", w.node.status);
    o->set("pools", w.node.pools);
    o->set("plugins", w.node.plugins);
    o->set("job_types", w.node.job_types);
    o->set("started_ms", w.node.started_ms);
    o->set("heartbeat_ms", w.node.heartbeat_ms);
    o->set("lease_until_ms", w.node.lease_until_ms);
    o->set("epoch", w.node.epoch);
    o->set("drain_reason", w.node.drain_reason);
    o->set("self", w.self);
    if (w.self) o->set("in_flight", static_cast<int64_t>(w.in_flight));
    a->add(o);
  }
  out->set("workers", a);
  return Status::ok();
}

Status op_drain(JobsCall& c, Object::Ptr out) {
  std::string node, reason;
  Status s;
  if (!(s = c.req.str("node", &node, true)) || !(s = c.req.str("reason", &reason))) return s;
  c.reached_engine = true;
  if (!(s = c.engine.drain(node, c.engine_actor(), reason))) return s;
  out->set("node", node);
  return Status::ok();
}

}  // namespace

// The audit actions are those the engine writes for what reaches it
// (jobs/engine.cpp), so a refusal here and an outcome there share a name.
const std::vector<JobsOperation>& jobs_operations() {
  static const std::vector<JobsOperation> table = {
      {"types", "jobs.read", op_types, nullptr},
      {"inventory", "jobs.read", op_inventory, nullptr},
      {"job", "jobs.read", op_job, nullptr},
      {"define", "jobs.write", op_define, "job.create"},
      {"update", "jobs.write", op_update, "job.update"},
      {"delete", "jobs.write", op_delete, "job.delete"},
      {"run_now", "runs.start", op_run_now, "run-now"},
      {"cancel", "runs.cancel", op_run_action, "cancel"},
      {"retry", "runs.retry", op_run_action, "retry"},
      {"hold", "runs.hold", op_run_action, "hold"},
      {"release", "runs.hold", op_run_action, "release"},
      {"recover", "runs.recover", op_run_action, "recover"},
      {"runs", "jobs.read", op_runs, nullptr},
      {"run", "jobs.read", op_run, nullptr},
      {"log", "jobs.read", op_log, nullptr},
      {"queues", "jobs.read", op_queues, nullptr},
      {"overview", "jobs.read", op_overview, nullptr},
      {"failure_groups", "jobs.read", op_failure_groups, nullptr},
      {"stats", "metrics.read", op_stats, nullptr},
      {"audit", "audit.read", op_audit, nullptr},
      {"cron_next", "jobs.read", op_cron_next, nullptr},
      {"plugins", "plugins.read", op_plugins, nullptr},
      {"workers", "jobs.read", op_workers, nullptr},
      {"drain", "runs.recover", op_drain, "worker.drain"},
  };
  return table;
}

const JobsOperation* find_jobs_operation(const std::string& name) {
  for (const auto& op : jobs_operations())
    if (name == op.name) return &op;
  return nullptr;
}

}  // namespace opk::host
