#include "host/jobs_service.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSONString.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "host/host.h"
#include "host/identity_service.h"
#include "jobs/cron.h"
#include "jobs/run.h"

namespace opk::host {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

// --------------------------------------------------------------- requests

// Typed reads of a request object; errors name the field.
class Request {
 public:
  Status parse(const std::string& text) {
    if (text.empty()) {
      obj_ = new Object;
      return Status::ok();
    }
    try {
      Poco::JSON::Parser parser;
      auto v = parser.parse(text);
      if (v.type() != typeid(Object::Ptr)) return Status::invalid("request: expected a JSON object");
      obj_ = v.extract<Object::Ptr>();
    } catch (const Poco::Exception& e) {
      return Status::invalid("request: not valid JSON: " + e.displayText());
    }
    return Status::ok();
  }
  bool has(const char* k) const { return obj_->has(k) && !obj_->isNull(k); }
  Status str(const char* k, std::string* out, bool required = false) const {
    if (!has(k)) return required ? Status::invalid(std::string(k) + ": required") : Status::ok();
    auto v = obj_->get(k);
    if (!v.isString()) return Status::invalid(std::string(k) + ": expected a string");
    std::string text = v.extract<std::string>();
    // A NUL would end the text wherever it is stored as C text, hiding what
    // follows it; other control characters have no place in these fields
    // (tab and line breaks aside).
    for (unsigned char c : text)
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
        return Status::invalid(std::string(k) + ": contains a control character (U+00" + "0123456789ABCDEF"[c >> 4] +
                               "0123456789ABCDEF"[c & 15] + ")");
    *out = std::move(text);
    return Status::ok();
  }
  Status integer(const char* k, int64_t* out, int64_t lo, int64_t hi, bool required = false) const {
    if (!has(k)) return required ? Status::invalid(std::string(k) + ": required") : Status::ok();
    auto v = obj_->get(k);
    if (!v.isInteger()) return Status::invalid(std::string(k) + ": expected a whole number");
    // Past int64 (Poco reads 9223372036854775808 as unsigned, and refuses to
    // convert it): out of range, named like any other.
    int64_t n = 0;
    try {
      n = v.convert<int64_t>();
    } catch (const Poco::Exception&) {
      return Status::invalid(std::string(k) + ": " + v.toString() + " is out of range " + std::to_string(lo) + ".." +
                             std::to_string(hi));
    }
    if (n < lo || n > hi)
      return Status::invalid(std::string(k) + ": " + std::to_string(n) + " is out of range " + std::to_string(lo) +
                             ".." + std::to_string(hi));
    *out = n;
    return Status::ok();
  }
  Status boolean(const char* k, bool* out) const {
    if (!has(k)) return Status::ok();
    auto v = obj_->get(k);
    if (!v.isBoolean()) return Status::invalid(std::string(k) + ": expected true or false");
    *out = v.extract<bool>();
    return Status::ok();
  }
  // A JSON object, as text.
  Status object_text(const char* k, std::optional<std::string>* out) const {
    if (!has(k)) return Status::ok();
    if (!obj_->getObject(k)) return Status::invalid(std::string(k) + ": expected a JSON object");
    std::ostringstream os;
    obj_->getObject(k)->stringify(os);
    *out = os.str();
    return Status::ok();
  }
  Array::Ptr array(const char* k) const { return obj_->getArray(k); }
  Object::Ptr object() const { return obj_; }

 private:
  Object::Ptr obj_;
};

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

std::string status_of(const std::string& phase, const std::string& outcome) {
  if (phase == store::kPending) return "pending";
  if (phase == store::kRunning) return "running";
  std::string s = outcome;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
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

// The same as job_json, written straight into `out`. Parameters are stored
// as validated JSON and copied as they are.
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

// What a caller may see of runs and jobs.
struct Visibility {
  identity::Identity& id;
  const identity::Principal& actor;
  std::map<std::string, std::string> job_scope;  // scheduled job -> scope node
  bool job(const std::string& scope) const { return id.contains(actor.scope, scope); }
  // A run is seen through its scheduled job's scope, else its target tenant,
  // else the scope of the user who started it.
  bool run(const store::RunRow& r) const {
    if (!r.scheduled_job_id.empty()) {
      auto it = job_scope.find(r.scheduled_job_id);
      if (it != job_scope.end()) return id.contains(actor.scope, it->second);
    }
    if (!r.target_tenant.empty()) return id.contains(actor.scope, "tenant:" + r.target_tenant);
    return id.contains(actor.scope, r.scope.empty() ? "platform" : r.scope);
  }
};

}  // namespace

// ------------------------------------------------------------------ service

namespace {

struct Ctx {
  store::Store& store;
  identity::Identity& id;
  jobs::Engine& engine;
  const identity::Principal& actor;
  const std::string& source;
  const std::vector<TypeInfo>& types;
  Request req;
  bool reached_engine = false;  // the engine audits what reaches it
  std::string raw_answer;       // set by operations that write their JSON by hand
  // The engine's inventory copy when the caller already took it.
  std::shared_ptr<const std::vector<store::InventoryRow>> inventory = nullptr;

  jobs::Actor engine_actor() const { return {actor.user_id, actor.role, actor.scope, source}; }
  Status need(const char* permission) const {
    if (id.allowed(actor.role, permission)) return Status::ok();
    return Status::permission("the role " + actor.role + " lacks the permission '" + permission + "'");
  }
  const loader::JobType* type(const std::string& t) const {
    for (auto& ti : types)
      if (ti.type->id == t) return ti.type;
    return nullptr;
  }
  // Job scopes come from the engine's cached inventory copy, not a store read.
  Visibility visibility() const {
    Visibility v{id, actor, {}};
    for (auto& r : *engine.inventory_snapshot()) v.job_scope[r.job.id] = r.job.scope;
    return v;
  }
  // How long the run ran, or has run so far; 0 before it started.
  static int64_t duration_ms(const store::RunRow& r) {
    const int64_t end = r.finished_ms ? r.finished_ms : (r.started_ms ? jobs::now_ms() : 0);
    return r.started_ms && end ? end - r.started_ms : 0;
  }
  // True when the run ran longer than its type's target duration.
  bool over_target(const store::RunRow& r) const {
    const auto* t = type(r.job_type);
    return t && t->target_duration_ms && duration_ms(r) > static_cast<int64_t>(t->target_duration_ms);
  }
  Object::Ptr run_json(const store::RunRow& r) const {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("id", r.id);
    o->set("job_type", r.job_type);
    o->set("scheduled_job_id", r.scheduled_job_id);
    o->set("status", status_of(r.phase, r.outcome));
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
    o->set("stale", r.stale);
    o->set("priority", r.priority);
    o->set("pool", r.pool);
    o->set("scheduled_ms", r.scheduled_ms);
    o->set("created_ms", r.created_ms);
    o->set("started_ms", r.started_ms);
    o->set("finished_ms", r.finished_ms);
    o->set("duration_ms", duration_ms(r));
    // Over its type's target duration: flagged for the attention panel.
    const auto* t = type(r.job_type);
    o->set("target_duration_ms", t ? static_cast<int64_t>(t->target_duration_ms) : 0);
    o->set("over_target", over_target(r));
    o->set("exit_code", r.exit_code);
    o->set("summary", r.summary);
    o->set("progress", r.progress);
    o->set("progress_message", r.progress_message);
    o->set("output", parsed_or_text(r.output_json));
    o->set("node", r.node);
    return o;
  }
};

// OK when `node` exists within the actor's scope. A node outside it and a
// node that does not exist get the same answer, so a caller cannot probe
// the hierarchy beyond its scope.
Status node_in_scope(Ctx& c, const char* field, const std::string& node) {
  if (c.id.exists(node) && c.id.contains(c.actor.scope, node)) return Status::ok();
  return Status::invalid(std::string(field) + ": no node '" + node + "' within your scope " + c.actor.scope);
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

Status op_types(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.read"); !s) return s;
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
    a->add(o);
  }
  out->set("types", a);
  return Status::ok();
}

Status op_inventory(Ctx& c, Object::Ptr /*out: written by hand, see below*/) {
  if (Status s = c.need("jobs.read"); !s) return s;
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
  static const std::vector<std::string> statuses = {"running", "pending", "normal", "warning", "error", "never"};
  std::string listed;
  for (size_t pos = 0; !f.status.empty() && pos <= f.status.size();) {
    size_t end = f.status.find(',', pos);
    if (end == std::string::npos) end = f.status.size();
    std::string one = f.status.substr(pos, end - pos);
    one.erase(0, one.find_first_not_of(' '));
    one.erase(one.find_last_not_of(' ') + 1);
    if (std::find(statuses.begin(), statuses.end(), one) == statuses.end())
      return Status::invalid("status: '" + one + "' is not running, pending, normal, warning, error or never");
    listed += (listed.empty() ? "" : ",") + one;
    pos = end + 1;
  }
  f.status = listed;
  static const std::vector<std::string> sorts = {"id", "type", "next_run", "last_run", "status"};
  if (std::find(sorts.begin(), sorts.end(), sort) == sorts.end())
    return Status::invalid("sort: '" + sort + "' is not id, type, next_run, last_run or status");
  if (order != "asc" && order != "desc") return Status::invalid("order: '" + order + "' is not asc or desc");
  if (!tenant.empty()) {
    if (Status s = node_in_scope(c, "tenant", tenant); !s) return s;
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
    if (!c.id.contains(c.actor.scope, r.job.scope)) continue;
    if (!r.job.region.empty()) regions.insert(r.job.region);
    scopes.insert(r.job.scope);
    if (!jobs::Engine::matches(r, f, text)) continue;
    if (!tenant.empty() && !c.id.contains(tenant, r.job.scope)) continue;
    Keyed k{{}, 0, &r};
    if (sort == "type") k.key_text = r.job.job_type;
    if (sort == "status") k.key_text = r.last_run_id ? status_of(r.last_phase, r.last_outcome) : "never";
    if (sort == "next_run") k.key_num = r.job.next_run_ms;
    if (sort == "last_run") k.key_num = r.last_created_ms;
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
      a += "{\"id\":" + std::to_string(r.last_run_id) + ",\"status\":\"" + status_of(r.last_phase, r.last_outcome) +
           "\",\"created_ms\":" + std::to_string(r.last_created_ms) +
           ",\"finished_ms\":" + std::to_string(r.last_finished_ms) + "}";
    } else {
      a += "null";
    }
    a += '}';
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

// The scheduled job `id` if the actor may see it (NOT_FOUND otherwise, so
// other scopes' jobs are not revealed).
Status visible_job(Ctx& c, const std::string& id, store::ScheduledJob* job) {
  Status s = c.store.get_scheduled_job(id, job);
  if (!s || !c.id.contains(c.actor.scope, job->scope)) return Status::not_found("no scheduled job '" + id + "'");
  return Status::ok();
}

Status visible_run(Ctx& c, int64_t run_id, store::RunRow* run) {
  Status s = c.store.get_run(run_id, run);
  if (!s || !c.visibility().run(*run)) return Status::not_found("no run " + std::to_string(run_id));
  return Status::ok();
}

Status op_job(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.read"); !s) return s;
  std::string id;
  int64_t last_n = 20;
  Status s;
  if (!(s = c.req.str("id", &id, true)) || !(s = c.req.integer("last_n", &last_n, 1, 1000))) return s;
  store::ScheduledJob job;
  if (!(s = visible_job(c, id, &job))) return s;
  jobs::DrillIn d;
  if (!(s = c.engine.drill_in(id, static_cast<size_t>(last_n), &d)) && s.code() != OPK_ERR_INVALID_ARGUMENT) return s;
  out->set("job", job_json(d.job));
  Array::Ptr runs = new Array;
  for (const auto& r : d.runs) {
    Object::Ptr o = c.run_json(r);
    // The last lines of each run's log, oldest first, for the dashboard.
    const std::vector<store::LogRow> lines = c.store.last_logs(r.id, 5);
    o->set("log_tail", log_json(lines));
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
  Array::Ptr next = new Array;
  for (auto ms : d.next_fire_ms) next->add(ms);
  out->set("next_fire_ms", next);
  return Status::ok();
}

// Fields a scheduled job may be given on create and update.
Status read_job_fields(Ctx& c, store::ScheduledJob* j) {
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
  return node_in_scope(c, "scope", j->scope);
}

Status op_define(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.write"); !s) return s;
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

Status op_update(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.write"); !s) return s;
  std::string id;
  Status s;
  if (!(s = c.req.str("id", &id, true))) return s;
  store::ScheduledJob j;
  if (!(s = visible_job(c, id, &j))) return s;
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

// One run-now request from a JSON object.
Status read_run_now(Ctx& c, const Request& r, jobs::RunNow* out) {
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
    if (!(s = visible_job(c, job_id, &job))) return s;
    out->scheduled_job_id = job_id;
  }
  if (!out->target_tenant.empty()) {
    if (Status s = node_in_scope(c, "tenant", "tenant:" + out->target_tenant); !s) return s;
  }
  out->actor = c.engine_actor();
  return Status::ok();
}

Status op_run_now(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("runs.start"); !s) return s;
  std::vector<jobs::RunNow> reqs;
  Status s;
  if (c.req.has("requests")) {
    auto arr = c.req.array("requests");
    if (!arr || arr->size() == 0 || arr->size() > 1000)
      return Status::invalid("requests: expected an array of 1 to 1000 run-now requests");
    for (size_t i = 0; i < arr->size(); ++i) {
      Request one;
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

Status op_action(Ctx& c, const std::string& op, Object::Ptr out) {
  const char* perm = op == "cancel"    ? "runs.cancel"
                     : op == "retry"   ? "runs.retry"
                     : op == "recover" ? "runs.recover"
                                       : "runs.hold";
  if (Status s = c.need(perm); !s) return s;
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
  if (!(s = visible_run(c, run_id, &run))) return s;
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

Status op_runs(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.read"); !s) return s;
  store::RunFilter f;
  std::string status;
  int64_t limit = 50, since = 0;
  bool over_target = false, stale = false;
  Status s;
  if (!(s = c.req.str("job_id", &f.scheduled_job_id)) || !(s = c.req.str("job_type", &f.job_type)) ||
      !(s = c.req.str("status", &status)) || !(s = c.req.integer("limit", &limit, 1, 1000)) ||
      !(s = c.req.integer("since_ms", &since, 0, INT64_MAX)) || !(s = c.req.boolean("over_target", &over_target)) ||
      !(s = c.req.boolean("stale", &stale)))
    return s;
  if (status == "pending" || status == "running") {
    f.phase = status == "pending" ? store::kPending : store::kRunning;
  } else if (status == "normal" || status == "warning" || status == "error") {
    f.outcome = status == "normal" ? store::kNormal : status == "warning" ? store::kWarning : store::kError;
  } else if (!status.empty()) {
    return Status::invalid("status: '" + status + "' is not pending, running, normal, warning or error");
  }
  f.since_ms = since;
  const auto vis = c.visibility();
  Array::Ptr items = new Array;
  // Read more than asked when the scope or a flag filter hides some.
  const bool filtered = c.actor.scope != "platform" || over_target || stale;
  f.limit = static_cast<size_t>(filtered ? std::min<int64_t>(limit * 10, 10000) : limit);
  for (const auto& r : c.store.list_runs(f)) {
    if (static_cast<int64_t>(items->size()) >= limit) break;
    if ((over_target && !c.over_target(r)) || (stale && !r.stale)) continue;
    if (vis.run(r)) items->add(c.run_json(r));
  }
  out->set("items", items);
  return Status::ok();
}

Status op_run(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.read"); !s) return s;
  int64_t run_id = 0;
  Status s;
  if (!(s = c.req.integer("run_id", &run_id, 1, INT64_MAX, true))) return s;
  store::RunRow visible;
  if (!(s = visible_run(c, run_id, &visible))) return s;
  jobs::RunView v;
  if (!(s = c.engine.get(run_id, &v))) return s;
  Object::Ptr run = c.run_json(v.row);
  const auto* t = c.type(v.row.job_type);
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

Status op_log(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.read"); !s) return s;
  int64_t run_id = 0, after = 0, limit = 500, wait_ms = 0;
  Status s;
  if (!(s = c.req.integer("run_id", &run_id, 1, INT64_MAX, true)) ||
      !(s = c.req.integer("after_seq", &after, 0, INT64_MAX)) || !(s = c.req.integer("limit", &limit, 1, 10000)) ||
      !(s = c.req.integer("wait_ms", &wait_ms, 0, 60000)))
    return s;
  store::RunRow run;
  if (!(s = visible_run(c, run_id, &run))) return s;
  bool finished = false;
  auto lines = c.engine.wait_log(run_id, after, static_cast<size_t>(limit), wait_ms, &finished);
  // Lines came back, fewer than asked: if the run is completed (its lines
  // are stored with the completion), these were the last ones.
  if (!finished && lines.size() < static_cast<size_t>(limit) && c.store.get_run(run_id, &run))
    finished = run.phase == store::kCompleted;
  out->set("lines", log_json(lines));
  out->set("next_seq", lines.empty() ? after : lines.back().seq);
  out->set("finished", finished);
  return Status::ok();
}

Status op_queues(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.read"); !s) return s;
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

Status op_stats(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("metrics.read"); !s) return s;
  std::vector<std::vector<std::optional<std::string>>> rows;
  Status s = c.store.query("SELECT job_type, phase, outcome, COUNT(*) FROM run_rows GROUP BY 1, 2, 3", {}, &rows);
  if (!s) return s;
  Array::Ptr runs = new Array;
  for (const auto& r : rows) {
    Object::Ptr o = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    o->set("job_type", r[0].value_or(""));
    o->set("status", status_of(r[1].value_or(""), r[2].value_or("")));
    o->set("count", std::stoll(r[3].value_or("0")));
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

Status op_audit(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("audit.read"); !s) return s;
  int64_t limit = 100;
  std::string actor, action;
  Status s;
  if (!(s = c.req.integer("limit", &limit, 1, 1000)) || !(s = c.req.str("actor", &actor)) ||
      !(s = c.req.str("action", &action)))
    return s;
  // A row is seen through the scope of the user who acted.
  std::map<std::string, std::string> user_scope;
  for (const auto& u : c.store.list_users()) user_scope[u.id] = u.scope;
  Array::Ptr items = new Array;
  for (const auto& a : c.store.audit_rows(static_cast<size_t>(c.actor.scope == "platform" ? limit : limit * 10))) {
    if (static_cast<int64_t>(items->size()) >= limit) break;
    if (!actor.empty() && a.actor != actor) continue;
    if (!action.empty() && a.action != action) continue;
    auto it = user_scope.find(a.actor);
    if (!c.id.contains(c.actor.scope, it == user_scope.end() ? "platform" : it->second)) continue;
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

Status op_cron_next(Ctx& c, Object::Ptr out) {
  if (Status s = c.need("jobs.read"); !s) return s;
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

// What a request is about, for the audit: its job id, run id or job type.
std::string target_of(const std::string& request_json) {
  Request r;
  if (!r.parse(request_json)) return "";
  std::string v;
  for (const char* k : {"id", "job_id", "job_type"})
    if (r.str(k, &v) && !v.empty()) return v;
  int64_t run = 0;
  if (r.integer("run_id", &run, 1, INT64_MAX) && run) return "run " + std::to_string(run);
  return "";
}

Status op_plugins(Ctx& c, const std::function<std::string()>& source, Object::Ptr out) {
  if (Status s = c.need("plugins.read"); !s) return s;
  Poco::JSON::Parser parser;
  out->set("plugins", source ? parser.parse(source()) : Poco::Dynamic::Var(Array::Ptr(new Array)));
  return Status::ok();
}

}  // namespace

JobsService::JobsService(store::Store& store, identity::Identity& identity,
                         std::function<std::vector<TypeInfo>()> types)
    : store_(store), identity_(identity), types_(std::move(types)) {
  ext_.struct_size = sizeof ext_;
  ext_.call = &cb_call;
}

std::vector<std::string> JobsService::operations() {
  return {"types",   "inventory", "job", "define", "update", "run_now", "cancel", "retry",     "hold",   "release",
          "recover", "runs",      "run", "log",    "queues", "stats",   "audit",  "cron_next", "plugins"};
}

Status JobsService::call(const identity::Principal& actor, const std::string& op, const std::string& request_json,
                         const std::string& source, std::string* answer) {
  std::shared_lock engine_lock(engine_mu_);
  jobs::Engine* engine = engine_;
  // The same inventory page for the same scope, while nothing changed, is
  // served as written (the console and dashboards poll it), before anything
  // else is prepared.
  std::shared_ptr<const std::vector<store::InventoryRow>> inventory_source;
  const std::string page_key = actor.role + "|" + actor.scope + "|" + request_json;
  if (engine && op == "inventory" && !actor.role.empty() && identity_.allowed(actor.role, "jobs.read")) {
    inventory_source = engine->inventory_snapshot();
    std::lock_guard lock(pages_mu_);
    auto it = pages_.find(page_key);
    if (it != pages_.end() && it->second.source == inventory_source) {
      *answer = it->second.json;
      return Status::ok();
    }
  }
  Status s;
  Object::Ptr out = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  const auto types = types_();
  bool reached_engine = false;
  std::string raw;
  if (!engine) {
    s = Status::unavailable("the job engine is starting; try again");
  } else if (actor.role.empty()) {
    s = Status::permission("an actor with a role is required");
  } else {
    Ctx c{store_, identity_, *engine, actor, source, types, {}, false, {}, inventory_source};
    if ((s = c.req.parse(request_json))) {
      if (op == "types")
        s = op_types(c, out);
      else if (op == "inventory")
        s = op_inventory(c, out);
      else if (op == "job")
        s = op_job(c, out);
      else if (op == "define")
        s = op_define(c, out);
      else if (op == "update")
        s = op_update(c, out);
      else if (op == "run_now")
        s = op_run_now(c, out);
      else if (op == "cancel" || op == "retry" || op == "hold" || op == "release" || op == "recover")
        s = op_action(c, op, out);
      else if (op == "runs")
        s = op_runs(c, out);
      else if (op == "run")
        s = op_run(c, out);
      else if (op == "log")
        s = op_log(c, out);
      else if (op == "queues")
        s = op_queues(c, out);
      else if (op == "stats")
        s = op_stats(c, out);
      else if (op == "audit")
        s = op_audit(c, out);
      else if (op == "cron_next")
        s = op_cron_next(c, out);
      else if (op == "plugins")
        s = op_plugins(c, plugins_, out);
      else
        s = Status(OPK_ERR_UNSUPPORTED, "no operation '" + op + "'");
    }
    reached_engine = c.reached_engine;
    raw = std::move(c.raw_answer);
    if (s && inventory_source && !raw.empty()) {
      std::lock_guard lock(pages_mu_);
      if (pages_.size() >= 256) pages_.clear();  // bounded: many distinct filters start over
      pages_[page_key] = {inventory_source, raw};
    }
  }
  static const std::set<std::string> changes = {"define", "update", "run_now", "cancel",
                                                "retry",  "hold",   "release", "recover"};
  if (!s && changes.count(op) && !reached_engine) {
    // Refused before the engine (permission, scope, a malformed field): the
    // attempt is audited here; the engine audits everything that reaches it.
    store::AuditRow a;
    a.time_ms = jobs::now_ms();
    a.actor = actor.user_id.empty() ? "anonymous" : actor.user_id;
    a.role = actor.role;
    a.action = op == "define" ? "job.create" : op == "update" ? "job.update" : op == "run_now" ? "run-now" : op;
    a.target = target_of(request_json);
    a.params_json = request_json.size() > 4096 ? request_json.substr(0, 4096) : request_json;
    a.outcome = "refused: " + s.message();
    a.source = source;
    store_.audit({a});  // if this fails, the caller still gets the refusal
  }
  if (s) {
    *answer = raw.empty() ? stringify(out) : std::move(raw);
  } else {
    *answer = "{\"error\":" + Poco::toJSON(s.message(), Poco::JSON_WRAP_STRINGS) + "}";
  }
  return s;
}

opk_status JobsService::cb_call(const opk_host* host, const opk_principal* actor, const char* operation,
                                const char* request_json, const char* source, char** answer_json) {
  auto* ph = PluginHost::from(host);
  if (!ph || !ph->jobs_service() || !operation || !answer_json) return OPK_ERR_INVALID_ARGUMENT;
  identity::Principal p;
  if (actor && actor->role) p = {actor->user_id ? actor->user_id : "", actor->role, actor->scope ? actor->scope : ""};
  std::string answer;
  Status s;
  try {
    s = ph->jobs_service()->call(p, operation, request_json ? request_json : "", source ? source : "", &answer);
  } catch (const std::exception& e) {  // a bug here must not take the caller down
    s = Status(OPK_ERR_INTERNAL, std::string("opk.jobs/1: ") + e.what());
    answer = "{\"error\":" + Poco::toJSON(s.message(), Poco::JSON_WRAP_STRINGS) + "}";
  }
  *answer_json = plugin_string(answer);
  if (!*answer_json) return OPK_ERR_NO_MEMORY;
  return s ? OPK_OK : s.code();
}

}  // namespace opk::host
