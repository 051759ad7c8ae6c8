// The event service and its C table: a call's JSON in and out, the actor and
// permission checks, and each operation's request fields.
#include "host/events_service.h"

#include "events/json_text.h"
#include "host/error_answer.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "host/jobs_request.h"
#include "host/principals.h"
#include "host/served.h"

namespace opk::host {
namespace {

// Which service serves the calls coming through a plugin's host table.
ServedBy<EventsService> g_events_served;

// An operation and who may run it: a permission, or the System role only.
struct EventOperation {
  const char* name;
  const char* permission;  // nullptr: the System role only
};

const std::vector<EventOperation>& event_operations() {
  static const std::vector<EventOperation> ops = {
      {"emit", "events.emit"},
      {"read", nullptr},
      {"ack", nullptr},
      {"get", nullptr},
  };
  return ops;
}

}  // namespace

EventsService::EventsService(events::Log& log, identity::Identity& identity, const Principals& principals)
    : log_(log), identity_(identity), principals_(principals) {
  ext_.struct_size = sizeof ext_;
  ext_.call = &cb_call;
}

EventsService::~EventsService() {
  g_events_served.forget(this);
}

void EventsService::serve(const PluginHost* host) {
  g_events_served.serve(host, this);
}

std::vector<std::string> EventsService::operations() {
  std::vector<std::string> out;
  for (const auto& op : event_operations()) out.push_back(op.name);
  return out;
}

Status EventsService::call(const identity::Principal& principal, const std::string& plugin_id,
                           const std::string& op_name, const std::string& request_json, std::string* answer) {
  const EventOperation* op = nullptr;
  for (const auto& o : event_operations())
    if (op_name == o.name) op = &o;
  JobsRequest req;
  Status s = req.parse(request_json);
  if (s && !op) s = Status(OPK_ERR_UNSUPPORTED, "no operation '" + op_name + "'");
  if (s && principal.role.empty()) s = Status::permission("an actor with a role is required");
  if (s && !op->permission && principal.role != identity::kSystemRole)
    s = Status::permission("'" + op_name +
                           "' is for a plugin's system principal only (events are not filtered by scope); role " +
                           principal.role + " may not");
  if (s && op->permission) {
    // events.emit is the System role's unless a role is given it by name:
    // "*" (everything an operator may do) does not include it.
    bool may = principal.role == identity::kSystemRole;
    if (!may) {
      auto it = identity_.permissions().find(principal.role);
      may = it != identity_.permissions().end() && it->second.count(op->permission) > 0;
    }
    if (!may) s = Status::permission("role " + principal.role + " lacks permission " + op->permission);
  }
  if (!s) {
    *answer = error_answer(s);
    return s;
  }
  const std::string name = op->name;
  std::string out;
  if (name == "emit") {
    std::string event_name, scope, subject, key;
    std::optional<std::string> payload;
    store::EventRow e;
    bool duplicate = false;
    if ((s = req.str("name", &event_name, true)) && (s = req.str("scope", &scope)) &&
        (s = req.str("subject", &subject)) && (s = req.object_text("payload", &payload)) &&
        (s = req.str("key", &key)) &&
        (s = req.has("key") && key.empty() ? Status::invalid("key: is empty (1 to 200 bytes)") : Status::ok()) &&
        (s = log_.emit(plugin_id, event_name, scope, subject, payload.value_or(""), &e, key, &duplicate))) {
      events::ObjectWriter w(&out);
      w.integer("seq", e.seq).text("kind", e.kind).boolean("duplicate", duplicate);
    }
  } else if (name == "read") {
    int64_t after = 0, limit = 100, wait_ms = 0;
    std::vector<store::EventRow> rows;
    if ((s = req.integer("after", &after, 0, INT64_MAX)) &&
        (s = req.integer("limit", &limit, 1, static_cast<int64_t>(events::kMaxReadLimit))) &&
        (s = req.integer("wait_ms", &wait_ms, 0, events::kMaxWaitMs)) &&
        (s = log_.read(after, static_cast<size_t>(limit), wait_ms, &rows))) {
      out = "{\"events\":[";
      for (size_t i = 0; i < rows.size(); ++i) {
        if (i) out += ",";
        out += events::Log::to_json(rows[i]);
      }
      out += "],\"last\":" + std::to_string(rows.empty() ? after : rows.back().seq) + "}";
    }
  } else if (name == "ack") {
    std::string consumer;
    int64_t seq = 0;
    if ((s = req.str("consumer", &consumer, true)) && (s = req.integer("seq", &seq, 0, INT64_MAX, true)) &&
        (s = log_.ack(consumer, seq))) {
      events::ObjectWriter w(&out);
      w.text("consumer", consumer).integer("seq", seq);
    }
  } else {  // get
    int64_t seq = 0;
    store::EventRow e;
    if ((s = req.integer("seq", &seq, 1, INT64_MAX, true)) && (s = log_.get(seq, &e)))
      out = "{\"event\":" + events::Log::to_json(e) + "}";
  }
  *answer = s ? out : error_answer(s);
  return s;
}

opk_status EventsService::cb_call(const opk_host* host, const opk_principal* actor, const char* operation,
                                  const char* request_json, const char* /*source*/, char** answer_json) {
  auto* ph = PluginHost::from(host);
  if (!ph || !operation || !answer_json) return OPK_ERR_INVALID_ARGUMENT;
  EventsService* self = g_events_served.find(ph);
  std::string answer;
  Status s;
  if (!self) {
    s = Status::unavailable("opk.events/1: the event log is not open");
    answer = error_answer(s);
  } else if (!actor || !self->principals_.issued(actor)) {
    s = Status::permission(
        "actor: not a principal the kernel issued (pass the request's principal, or system_principal)");
    answer = error_answer(s);
  } else {
    identity::Principal p{actor->user_id ? actor->user_id : "", actor->role ? actor->role : "",
                          actor->scope ? actor->scope : ""};
    try {
      s = self->call(p, ph->plugin_id(), operation, request_json ? request_json : "", &answer);
    } catch (const std::exception& e) {  // a bug here must not take the caller down
      s = Status(OPK_ERR_INTERNAL, std::string("opk.events/1: ") + e.what());
      answer = error_answer(s);
    }
  }
  if (!s) report_host_error(s.message());
  *answer_json = plugin_string(answer);
  if (!*answer_json) return OPK_ERR_NO_MEMORY;
  return s ? OPK_OK : s.code();
}

}  // namespace opk::host
