// The service itself and its C table: a call's JSON in and out, the engine's
// availability, the inventory pages already written, and the audit row of an
// action refused before the engine. The operations are in jobs_operations.cpp.
#include "host/jobs_service.h"

#include "host/error_answer.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "host/jobs_json.h"
#include "host/jobs_operations.h"
#include "host/jobs_request.h"
#include "jobs/run.h"

namespace opk::host {

JobsService::JobsService(store::Store& store, identity::Identity& identity,
                         std::function<std::vector<TypeInfo>()> types)
    : store_(store), identity_(identity), types_(std::move(types)) {
  ext_.struct_size = sizeof ext_;
  ext_.call = &cb_call;
}

std::vector<std::string> JobsService::operations() {
  std::vector<std::string> names;
  for (const auto& op : jobs_operations()) names.push_back(op.name);
  return names;
}

Status JobsService::call(const identity::Principal& actor, const std::string& op_name, const std::string& request_json,
                         const std::string& source, std::string* answer) {
  std::shared_lock engine_lock(engine_mu_);
  jobs::Engine* engine = engine_;
  const JobsOperation* op = find_jobs_operation(op_name);
  // The same inventory page for the same scope, while nothing changed, is
  // served as written (the console and dashboards poll it), before anything
  // else is prepared.
  std::shared_ptr<const std::vector<store::InventoryRow>> inventory_source;
  const std::string page_key = actor.role + "|" + actor.scope + "|" + request_json;
  if (engine && op && op_name == "inventory" && !actor.role.empty() && identity_.allowed(actor.role, op->permission)) {
    inventory_source = engine->inventory_snapshot();
    std::lock_guard lock(pages_mu_);
    auto it = pages_.find(page_key);
    if (it != pages_.end() && it->second.source == inventory_source) {
      *answer = it->second.json;
      return Status::ok();
    }
  }
  Status s;
  Poco::JSON::Object::Ptr out = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  const auto types = types_();
  bool reached_engine = false;
  std::string raw;
  if (!engine) {
    s = Status::unavailable("the job engine is starting; try again");
  } else if (actor.role.empty()) {
    s = Status::permission("an actor with a role is required");
  } else {
    JobsCall c(store_, identity_, *engine, actor, source, types, plugins_, inventory_source);
    c.op = op;
    // The request is read before the name is looked up: a malformed request
    // is named as such whatever the operation.
    if ((s = c.req.parse(request_json))) {
      if (!op)
        s = Status(OPK_ERR_UNSUPPORTED, "no operation '" + op_name + "'");
      else if ((s = c.need(op->permission)))
        s = op->handler(c, out);
    }
    reached_engine = c.reached_engine;
    raw = std::move(c.raw_answer);
    if (s && inventory_source && !raw.empty()) {
      std::lock_guard lock(pages_mu_);
      if (pages_.size() >= 256) pages_.clear();  // bounded: many distinct filters start over
      pages_[page_key] = {inventory_source, raw};
    }
  }
  if (!s && op && op->audit_action && !reached_engine) {
    // Refused before the engine (permission, scope, a malformed field): the
    // attempt is audited here; the engine audits everything that reaches it.
    store::AuditRow a;
    a.time_ms = jobs::now_ms();
    a.actor = actor.user_id.empty() ? "anonymous" : actor.user_id;
    a.role = actor.role;
    a.action = op->audit_action;
    a.target = audit_target(request_json);
    a.params_json = request_json.size() > 4096 ? request_json.substr(0, 4096) : request_json;
    a.outcome = "refused: " + s.message();
    a.source = source;
    store_.audit({a});  // if this fails, the caller still gets the refusal
  }
  if (s) {
    *answer = raw.empty() ? stringify(out) : std::move(raw);
  } else {
    *answer = error_answer(s);
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
  if (actor && ph->identity_service() && !ph->identity_service()->principals().issued(actor)) {
    // Only a principal the kernel issued acts: a plugin cannot name itself
    // anyone it likes (ABI 1.2).
    s = Status::permission(
        "actor: not a principal the kernel issued (pass the request's principal, or system_principal)");
    report_host_error(s.message());
    answer = error_answer(s);
  } else {
    try {
      s = ph->jobs_service()->call(p, operation, request_json ? request_json : "", source ? source : "", &answer);
    } catch (const std::exception& e) {  // a bug here must not take the caller down
      s = Status(OPK_ERR_INTERNAL, std::string("opk.jobs/1: ") + e.what());
      answer = error_answer(s);
    }
  }
  *answer_json = plugin_string(answer);
  if (!*answer_json) return OPK_ERR_NO_MEMORY;
  return s ? OPK_OK : s.code();
}

}  // namespace opk::host
