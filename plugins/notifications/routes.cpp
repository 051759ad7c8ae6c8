// The admin API of notifications (docs/notifications.md lists each route):
//   /api/v1/notifications/groups[/{id}[/rules]]     groups and their rules
//   /api/v1/notifications/rules/{id}                one rule
//   /api/v1/notifications/jobs[/{id}]               scheduled jobs' groups
//   /api/v1/notifications/deliveries[/{id}[/replay]] the outbox and its attempts
//   /api/v1/notifications/endpoints[/{id}/enable]   disabled endpoints, circuits
//   /api/v1/notifications/templates/check           a template's errors
// A caller sees and changes only groups whose scope lies at or under their
// own; anything else answers 404, as if it did not exist. Every change is
// audited with its before and after. Errors are problem+json naming the field.
#include <charconv>
#include <random>

#include "plugin.h"
#include "render.h"

namespace opk::notify {
namespace {

// Answers a failed status: INVALID_ARGUMENT 422 (400 for "request: ..." and
// a query parameter), NOT_FOUND 404, CONFLICT 409, PERMISSION 403,
// UNAVAILABLE 503, anything else 500.
Status fail(Response& rs, const Status& s, bool query = false) {
  rs.problem(s, query ? 400 : 422);
  return Status::ok();
}

Status body_of(const Request& rq, Json* body) {
  if (rq.body().empty()) return Status::invalid("request: a JSON body is required");
  Json b = Json::parse(rq.body(), nullptr, false);
  if (b.is_discarded()) return Status::invalid("request: the body is not valid JSON");
  if (!b.is_object()) return Status::invalid("request: the body must be a JSON object");
  *body = std::move(b);
  return Status::ok();
}

std::string path_param(const Request& rq, std::string_view name) {
  return std::string(rq.path_param(name).value_or(""));
}

std::string new_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s = prefix;
  for (int i = 0; i < 12; ++i) s += hex[rng() % 16];
  return s;
}

Status int_query(const Request& rq, std::string_view name, int64_t min, int64_t max, int64_t* out) {
  auto v = rq.query(name);
  if (!v) return Status::ok();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < min || n > max)
    return Status::invalid(std::string(name) + ": must be a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", not '" + std::string(*v) + "'");
  *out = n;
  return Status::ok();
}

class Api {
 public:
  explicit Api(NotifyPlugin& p) : p_(p) {}

  // True when the caller sees a thing owned by `scope`.
  bool visible(const Request& rq, const std::string& scope) const {
    return !rq.scope().empty() && p_.contains(std::string(rq.scope()), scope);
  }

  // The group `id` if the caller sees it, else NOT_FOUND.
  Status visible_group(const Request& rq, const std::string& id, Group* g) const {
    Status s = p_.repo().group(id, g);
    if (s && !visible(rq, g->scope)) return Status::not_found("no notification group '" + id + "'");
    return s;
  }

  // A node at or under the caller's scope, else INVALID_ARGUMENT naming
  // `field` (the same words for a node that does not exist).
  Status node_in_scope(const Request& rq, const std::string& field, const std::string& node) const {
    if (node.empty() || !p_.node_exists(node) || !visible(rq, node))
      return Status::invalid(field + ": no node '" + node + "' in your scope");
    return Status::ok();
  }

  void audit(const Request& rq, const std::string& action, const std::string& target, const Json& before,
             const Json& after) const {
    Audit a(p_.host());
    Status s = a.record(rq.principal(), {.action = action,
                                         .target = target,
                                         .reason = std::string(rq.header("x-reason").value_or("")),
                                         .before = before,
                                         .after = after,
                                         .outcome = "success",
                                         .source = std::string(rq.remote_addr())});
    if (!s) p_.host().error("audit row for " + action + " on " + target + " not written: " + s.message());
  }

  // Checks what a rule names against the world: its filter's scope inside
  // its group's, its channel and recipients (opk.channels/1), its templates.
  Status check_rule(const Request& rq, const Group& g, const Rule& r, Json* problems) const {
    if (!r.filter.scope.empty()) {
      if (Status s = node_in_scope(rq, "filter.scope", r.filter.scope); !s) return s;
      if (!p_.contains(g.scope, r.filter.scope))
        return Status::invalid("filter.scope: '" + r.filter.scope + "' is not inside the group's scope '" + g.scope +
                               "'");
    }
    const std::vector<TemplateError> errors = check_templates(r.templates);
    if (!errors.empty()) {
      Json list = Json::array();
      for (const auto& e : errors)
        list.push_back({{"field", e.field}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
      *problems = {{"errors", list}};
      return Status::invalid(errors.front().text());
    }
    const auto* channels = p_.host().extension<opk_channels_v1>(OPK_EXT_CHANNELS);
    if (channels == nullptr || !channels->check_recipient)
      return Status::unavailable("channel: the kernel offers no notification channels (opk.channels/1, ABI 1.4)");
    for (size_t i = 0; i < r.recipients.size(); ++i) {
      const Recipient& x = r.recipients[i];
      const std::string options = x.options.is_null() ? std::string() : x.options.dump();
      opk_delivery_result result{};
      result.struct_size = sizeof result;
      const opk_status st = channels->check_recipient(p_.host().raw(), r.channel.c_str(), x.to.c_str(),
                                                      options.empty() ? nullptr : options.c_str(), &result);
      result.detail[sizeof result.detail - 1] = '\0';
      const std::string detail = result.detail;
      if (st == OPK_ERR_NOT_FOUND)
        return Status::invalid("channel: no notification channel '" + r.channel + "'" +
                               (detail.empty() ? "" : " (" + detail + ")"));
      if (st != OPK_OK)
        return Status::invalid("recipients[" + std::to_string(i) +
                               "]: " + (detail.empty() ? "refused by channel '" + r.channel + "'" : detail));
    }
    return Status::ok();
  }

  // ------------------------------------------------------------- groups

  Status list_groups(const Request& rq, Response& rs) const {
    std::vector<Group> all;
    if (Status s = p_.repo().groups(&all); !s) return fail(rs, s);
    Json out = Json::array();
    for (const auto& g : all)
      if (visible(rq, g.scope)) out.push_back(to_json(g));
    rs.status(200).json(Json{{"groups", out}});
    return Status::ok();
  }

  Status create_group(const Request& rq, Response& rs) const {
    Json body;
    Group g;
    Status s = body_of(rq, &body);
    if (s) s = parse_group(body, true, &g);
    if (s) s = node_in_scope(rq, "scope", g.scope);
    if (!s) return fail(rs, s);
    g.created_ms = g.updated_ms = p_.host().now_ms();
    if (s = p_.repo().insert_group(g); !s) return fail(rs, s);
    audit(rq, "notifications.group.create", "notification-group:" + g.id, nullptr, to_json(g));
    rs.status(201).header("location", "/api/v1/notifications/groups/" + g.id).json(to_json(g));
    return Status::ok();
  }

  Status get_group(const Request& rq, Response& rs) const {
    Group g;
    std::vector<Rule> rules;
    Status s = visible_group(rq, path_param(rq, "id"), &g);
    if (s) s = p_.repo().rules(g.id, &rules);
    if (!s) return fail(rs, s);
    Json out = to_json(g);
    out["rules"] = Json::array();
    for (const auto& r : rules) out["rules"].push_back(to_json(r));
    rs.status(200).json(out);
    return Status::ok();
  }

  Status update_group(const Request& rq, Response& rs) const {
    Json body;
    Group g;
    Status s = visible_group(rq, path_param(rq, "id"), &g);
    if (s) s = body_of(rq, &body);
    if (!s) return fail(rs, s);
    const Group before = g;
    if (s = parse_group(body, false, &g); !s) return fail(rs, s);
    if (g.scope != before.scope) {
      if (s = node_in_scope(rq, "scope", g.scope); !s) return fail(rs, s);
      std::vector<Rule> rules;
      if (s = p_.repo().rules(g.id, &rules); !s) return fail(rs, s);
      for (const auto& r : rules)
        if (!r.filter.scope.empty() && !p_.contains(g.scope, r.filter.scope))
          return fail(rs, Status::conflict("scope: rule '" + r.id + "' filters on '" + r.filter.scope +
                                           "', which is not inside '" + g.scope + "'"));
    }
    g.updated_ms = p_.host().now_ms();
    if (s = p_.repo().update_group(g); !s) return fail(rs, s);
    audit(rq, "notifications.group.update", "notification-group:" + g.id, to_json(before), to_json(g));
    rs.status(200).json(to_json(g));
    return Status::ok();
  }

  Status delete_group(const Request& rq, Response& rs) const {
    Group g;
    Status s = visible_group(rq, path_param(rq, "id"), &g);
    if (s) s = p_.repo().delete_group(g.id);
    if (!s) return fail(rs, s);
    audit(rq, "notifications.group.delete", "notification-group:" + g.id, to_json(g), nullptr);
    rs.status(204);
    return Status::ok();
  }

  // -------------------------------------------------------------- rules

  Status list_rules(const Request& rq, Response& rs) const {
    Group g;
    std::vector<Rule> rules;
    Status s = visible_group(rq, path_param(rq, "id"), &g);
    if (s) s = p_.repo().rules(g.id, &rules);
    if (!s) return fail(rs, s);
    Json out = Json::array();
    for (const auto& r : rules) out.push_back(to_json(r));
    rs.status(200).json(Json{{"rules", out}});
    return Status::ok();
  }

  Status create_rule(const Request& rq, Response& rs) const {
    Json body, problems = Json::object();
    Group g;
    Rule r;
    Status s = visible_group(rq, path_param(rq, "id"), &g);
    if (s) s = body_of(rq, &body);
    if (s) s = parse_rule(body, &r);
    if (s) s = check_rule(rq, g, r, &problems);
    if (!s) {
      if (s.code() == OPK_ERR_INVALID_ARGUMENT && !problems.empty()) {
        rs.problem(422, s.message(), problems);
        return Status::ok();
      }
      return fail(rs, s);
    }
    r.id = new_id("rule-");
    r.group_id = g.id;
    r.created_ms = r.updated_ms = p_.host().now_ms();
    if (s = p_.repo().insert_rule(r); !s) return fail(rs, s);
    audit(rq, "notifications.rule.create", "notification-rule:" + r.id, nullptr, to_json(r));
    rs.status(201).header("location", "/api/v1/notifications/rules/" + r.id).json(to_json(r));
    return Status::ok();
  }

  // The rule `id` if the caller sees its group, else NOT_FOUND.
  Status visible_rule(const Request& rq, const std::string& id, Rule* r, Group* g) const {
    Status s = p_.repo().rule(id, r);
    if (s && !p_.repo().group(r->group_id, g)) s = Status::not_found("no notification rule '" + id + "'");
    if (s && !visible(rq, g->scope)) s = Status::not_found("no notification rule '" + id + "'");
    return s;
  }

  Status get_rule(const Request& rq, Response& rs) const {
    Rule r;
    Group g;
    if (Status s = visible_rule(rq, path_param(rq, "id"), &r, &g); !s) return fail(rs, s);
    rs.status(200).json(to_json(r));
    return Status::ok();
  }

  Status replace_rule(const Request& rq, Response& rs) const {
    Json body, problems = Json::object();
    Rule r;
    Group g;
    Status s = visible_rule(rq, path_param(rq, "id"), &r, &g);
    if (s) s = body_of(rq, &body);
    if (!s) return fail(rs, s);
    const Rule before = r;
    if (body.contains("id") && body["id"] != Json(r.id)) return fail(rs, Status::invalid("id: cannot be changed"));
    if (body.contains("group_id") && body["group_id"] != Json(r.group_id))
      return fail(rs, Status::invalid("group_id: cannot be changed; create the rule in the other group"));
    // Secrets are never given back, so a recipient whose options are sent
    // as they were shown (masked) keeps its stored options.
    s = parse_rule(body, &r);
    if (s) {
      const Json shown = to_json(before)["recipients"];
      for (auto& x : r.recipients)
        for (size_t k = 0; k < before.recipients.size(); ++k)
          if (before.recipients[k].to == x.to && !x.options.is_null() && shown[k].contains("options") &&
              x.options == shown[k]["options"])
            x.options = before.recipients[k].options;
    }
    if (s) s = check_rule(rq, g, r, &problems);
    if (!s) {
      if (s.code() == OPK_ERR_INVALID_ARGUMENT && !problems.empty()) {
        rs.problem(422, s.message(), problems);
        return Status::ok();
      }
      return fail(rs, s);
    }
    r.updated_ms = p_.host().now_ms();
    if (s = p_.repo().update_rule(r); !s) return fail(rs, s);
    audit(rq, "notifications.rule.update", "notification-rule:" + r.id, to_json(before), to_json(r));
    rs.status(200).json(to_json(r));
    return Status::ok();
  }

  Status delete_rule(const Request& rq, Response& rs) const {
    Rule r;
    Group g;
    Status s = visible_rule(rq, path_param(rq, "id"), &r, &g);
    if (s) s = p_.repo().delete_rule(r.id);
    if (!s) return fail(rs, s);
    audit(rq, "notifications.rule.delete", "notification-rule:" + r.id, to_json(r), nullptr);
    rs.status(204);
    return Status::ok();
  }

  // ---------------------------------------------------------- templates

  Status check_template(const Request& rq, Response& rs) const {
    Json body;
    if (Status s = body_of(rq, &body); !s) return fail(rs, s);
    Templates t;
    for (const auto& [key, value] : body.items()) {
      if (key != "subject" && key != "body" && key != "html_body")
        return fail(rs, Status::invalid(key + ": is not a template part (subject, body, html_body)"));
      if (!value.is_string()) return fail(rs, Status::invalid(key + ": must be a string"));
    }
    t.subject = body.value("subject", "");
    t.body = body.value("body", "");
    t.html_body = body.value("html_body", "");
    const std::vector<TemplateError> errors = check_templates(t);
    if (errors.empty()) {
      rs.status(200).json(Json{{"ok", true}});
      return Status::ok();
    }
    Json list = Json::array();
    for (const auto& e : errors)
      list.push_back({{"field", e.field.substr(9)}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
    rs.problem(422, errors.front().text().substr(9), {{"errors", list}});
    return Status::ok();
  }

  // --------------------------------------------------------------- jobs

  // The scheduled job `id` as the caller sees it (opk.jobs/1 "job"), its scope in *scope.
  Status visible_job(const Request& rq, const std::string& id, std::string* scope) const {
    const auto* jobs = p_.host().extension<opk_jobs_v1>(OPK_EXT_JOBS);
    if (jobs == nullptr) return Status::unavailable("the kernel offers no job service (opk.jobs/1)");
    const std::string request = Json{{"id", id}, {"last_n", 1}}.dump();
    char* answer = nullptr;
    const opk_status st = jobs->call(p_.host().raw(), rq.principal(), "job", request.c_str(),
                                     std::string(rq.remote_addr()).c_str(), &answer);
    Json doc = answer ? Json::parse(answer, nullptr, false) : Json();
    if (answer) p_.host().free(answer);
    if (st == OPK_ERR_NOT_FOUND || st == OPK_ERR_INVALID_ARGUMENT)
      return Status::not_found("no scheduled job '" + id + "'");
    if (st != OPK_OK)
      return Status(st, doc.is_object() ? doc.value("error", "the job service failed") : "the job service failed");
    *scope = doc.is_object() && doc.contains("job") ? doc["job"].value("scope", "platform") : "platform";
    return Status::ok();
  }

  Status list_jobs(const Request& rq, Response& rs) const {
    std::vector<Repo::JobGroup> all;
    if (Status s = p_.repo().job_groups(&all); !s) return fail(rs, s);
    Json out = Json::array();
    for (const auto& j : all)
      if (visible(rq, j.scope))
        out.push_back({{"scheduled_job_id", j.scheduled_job_id},
                       {"group_id", j.group_id},
                       {"scope", j.scope},
                       {"updated_ms", j.updated_ms}});
    rs.status(200).json(Json{{"jobs", out}});
    return Status::ok();
  }

  Status put_job(const Request& rq, Response& rs) const {
    const std::string id = path_param(rq, "id");
    Json body;
    std::string scope;
    Group g;
    Status s = body_of(rq, &body);
    if (s) s = visible_job(rq, id, &scope);
    if (!s) return fail(rs, s);
    for (const auto& [key, value] : body.items())
      if (key != "group_id") return fail(rs, Status::invalid(key + ": is not a field (group_id)"));
    if (!body.contains("group_id") || !body["group_id"].is_string())
      return fail(rs, Status::invalid("group_id: is required, a group's id"));
    if (s = visible_group(rq, body["group_id"].get<std::string>(), &g); !s)
      return fail(rs, Status::invalid("group_id: " + s.message()));
    Repo::JobGroup before;
    const bool had = p_.repo().job_group(id, &before).is_ok();
    const Repo::JobGroup j{id, g.id, scope, p_.host().now_ms()};
    if (s = p_.repo().put_job_group(j); !s) return fail(rs, s);
    const Json after = {{"scheduled_job_id", id}, {"group_id", g.id}, {"scope", scope}};
    audit(rq, "notifications.job.update", "job:" + id,
          had ? Json{{"scheduled_job_id", id}, {"group_id", before.group_id}, {"scope", before.scope}} : Json(), after);
    rs.status(200).json(after);
    return Status::ok();
  }

  Status delete_job(const Request& rq, Response& rs) const {
    const std::string id = path_param(rq, "id");
    Repo::JobGroup j;
    Status s = p_.repo().job_group(id, &j);
    if (s && !visible(rq, j.scope)) s = Status::not_found("scheduled job '" + id + "' has no notification group");
    if (s) s = p_.repo().delete_job_group(id);
    if (!s) return fail(rs, s);
    audit(rq, "notifications.job.update", "job:" + id,
          {{"scheduled_job_id", id}, {"group_id", j.group_id}, {"scope", j.scope}}, nullptr);
    rs.status(204);
    return Status::ok();
  }

  // --------------------------------------------------------- deliveries

  Status list_deliveries(const Request& rq, Response& rs) const {
    DeliveryQuery q;
    int64_t limit = 50;
    q.state = std::string(rq.query("state").value_or(""));
    static const std::vector<std::string> states = {kPending, kSending, kDelivered, kFailed,
                                                    kDead,    kSkipped, kSuppressed};
    if (!q.state.empty() && std::find(states.begin(), states.end(), q.state) == states.end())
      return fail(rs,
                  Status::invalid("state: must be pending, sending, delivered, failed, dead, skipped or suppressed, "
                                  "not '" +
                                  q.state + "'"),
                  true);
    q.channel = std::string(rq.query("channel").value_or(""));
    q.rule = std::string(rq.query("rule").value_or(""));
    q.event_kind = std::string(rq.query("event").value_or(""));
    q.cursor = std::string(rq.query("cursor").value_or(""));
    Status s = int_query(rq, "limit", 1, 500, &limit);
    if (s) s = int_query(rq, "since_ms", 0, INT64_MAX, &q.since_ms);
    if (s) s = int_query(rq, "until_ms", 0, INT64_MAX, &q.until_ms);
    if (!s) return fail(rs, s, true);
    // Pages are filled with what the caller may see, reading at most a
    // few pages' worth of rows for one answer.
    Json out = Json::array();
    std::string next = q.cursor;
    const bool everything = visible(rq, "platform");
    for (int reads = 0; reads < 20 && static_cast<int64_t>(out.size()) < limit; ++reads) {
      q.cursor = next;
      q.limit = static_cast<int>(limit - static_cast<int64_t>(out.size()));
      if (!everything) q.limit = std::max(q.limit, 100);
      std::vector<Delivery> page;
      if (s = p_.repo().deliveries(q, &page, &next); !s) return fail(rs, s, s.message().rfind("cursor", 0) == 0);
      for (const auto& d : page) {
        if (!visible(rq, d.scope)) continue;
        out.push_back(to_json(d, false));
        if (static_cast<int64_t>(out.size()) == limit) {
          next = std::to_string(d.created_ms) + "." + d.id;
          break;
        }
      }
      if (next.empty()) break;
    }
    rs.status(200).json(Json{{"next_cursor", next.empty() ? Json() : Json(next)}, {"deliveries", out}});
    return Status::ok();
  }

  Status get_delivery(const Request& rq, Response& rs) const {
    Delivery d;
    std::vector<Attempt> attempts;
    const std::string id = path_param(rq, "id");
    Status s = p_.repo().delivery(id, &d, &attempts);
    if (s && !visible(rq, d.scope)) s = Status::not_found("no delivery '" + id + "'");
    if (!s) return fail(rs, s);
    Json out = to_json(d, true);
    out["attempts"] = Json::array();
    for (const auto& a : attempts) out["attempts"].push_back(to_json(a));
    rs.status(200).json(out);
    return Status::ok();
  }

  Status replay_delivery(const Request& rq, Response& rs) const {
    Delivery d;
    const std::string id = path_param(rq, "id");
    Status s = p_.repo().delivery(id, &d, nullptr);
    if (s && !visible(rq, d.scope)) s = Status::not_found("no delivery '" + id + "'");
    if (s) s = p_.repo().replay(id, p_.host().now_ms());
    if (!s) return fail(rs, s);
    audit(rq, "notifications.delivery.replay", "delivery:" + id, {{"state", d.state}}, {{"state", kPending}});
    p_.wake();
    Delivery now;
    if (p_.repo().delivery(id, &now, nullptr)) d = now;
    rs.status(202).json(to_json(d, false));
    return Status::ok();
  }

  // ---------------------------------------------------------- endpoints

  Status list_endpoints(const Request& rq, Response& rs) const {
    // Endpoints are shared by rules of any scope; only a caller who sees
    // the whole platform lists them.
    if (!visible(rq, "platform"))
      return fail(rs, Status::permission("endpoints are listed to platform-wide callers only"));
    std::vector<Endpoint> all;
    if (Status s = p_.repo().endpoints(rq.query("disabled").value_or("") == "true", &all); !s) return fail(rs, s);
    Json out = Json::array();
    for (const auto& e : all) out.push_back(to_json(e));
    rs.status(200).json(Json{{"endpoints", out}});
    return Status::ok();
  }

  Status enable_endpoint(const Request& rq, Response& rs) const {
    if (!visible(rq, "platform"))
      return fail(rs, Status::permission("endpoints are enabled by platform-wide callers only"));
    const std::string id = path_param(rq, "id");
    Endpoint before, after;
    Status s = p_.repo().endpoint(id, &before);
    if (s) s = p_.repo().enable(id, p_.host().now_ms());
    if (s) s = p_.repo().endpoint(id, &after);
    if (!s) return fail(rs, s);
    audit(rq, "notifications.endpoint.enable", "endpoint:" + id, to_json(before), to_json(after));
    p_.wake();
    rs.status(200).json(to_json(after));
    return Status::ok();
  }

 private:
  NotifyPlugin& p_;
};

}  // namespace

Status NotifyPlugin::add_routes() {
  return add_api_routes<Api>(
      "notifications", "/api/v1/notifications", std::make_shared<const Api>(*this),
      {
          {"GET", "/groups", "Notification groups in the caller's scope", "notifications.read", &Api::list_groups},
          {"POST", "/groups", "Create a notification group (id, name, scope, description)", "notifications.manage",
           &Api::create_group},
          {"GET", "/groups/{id}", "A notification group with its rules", "notifications.read", &Api::get_group},
          {"PATCH", "/groups/{id}", "Change a group's name, scope or description", "notifications.manage",
           &Api::update_group},
          {"DELETE", "/groups/{id}", "Delete a group without rules or scheduled jobs", "notifications.manage",
           &Api::delete_group},
          {"GET", "/groups/{id}/rules", "The rules of a group", "notifications.read", &Api::list_rules},
          {"POST", "/groups/{id}/rules",
           "Add a rule: events, filter, channel, recipients (checked by the channel), template (checked), locale",
           "notifications.manage", &Api::create_rule},
          {"GET", "/rules/{id}", "A rule (secrets masked)", "notifications.read", &Api::get_rule},
          {"PUT", "/rules/{id}", "Replace a rule", "notifications.manage", &Api::replace_rule},
          {"DELETE", "/rules/{id}", "Delete a rule", "notifications.manage", &Api::delete_rule},
          {"POST", "/templates/check", "Check a template: ok, or each part's error with line and column",
           "notifications.read", &Api::check_template},
          {"GET", "/jobs", "Scheduled jobs' notification groups", "notifications.read", &Api::list_jobs},
          {"PUT", "/jobs/{id}", "Set a scheduled job's notification group (group_id)", "notifications.manage",
           &Api::put_job},
          {"DELETE", "/jobs/{id}", "Remove a scheduled job's own notification group", "notifications.manage",
           &Api::delete_job},
          {"GET", "/deliveries",
           "Deliveries, newest first: filters state, channel, rule, event, since_ms, until_ms; limit and cursor",
           "notifications.read", &Api::list_deliveries},
          {"GET", "/deliveries/{id}", "A delivery with its message and every attempt", "notifications.read",
           &Api::get_delivery},
          {"POST", "/deliveries/{id}/replay", "Send a dead, failed or skipped delivery again (same id)",
           "notifications.manage", &Api::replay_delivery},
          {"GET", "/endpoints", "Endpoints with their circuit and disabled state (?disabled=true)",
           "notifications.read", &Api::list_endpoints},
          {"POST", "/endpoints/{id}/enable", "Enable an endpoint disabled by 410 Gone", "notifications.manage",
           &Api::enable_endpoint},
      });
}

}  // namespace opk::notify
