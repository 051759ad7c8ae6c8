// notifications: the plugin, its settings, its manifest and the extension
// opskernel.notifications/1 (plugin.h).
// Store transactions, plugin permissions, the event log and the channel
// service need ABI 1.4. The failures inbox's operations (handle, counts,
// suppress, lift, suppressions) are additive operations of
// opskernel.notifications/1.
#define OPK_REQUIRED_HOST_MINOR 4
#include <opskernel/notifications.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <shared_mutex>

#include "outbox.h"
#include "plugin.h"

namespace opk::notify {
namespace {

// --------------------------------------------------------- the extension

std::shared_mutex g_mu;
NotifyPlugin* g_plugin = nullptr;  // guarded by g_mu; set while started

std::string new_suppression_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s = "sup_";
  for (int i = 0; i < 16; ++i) s += hex[rng() % 16];
  return s;
}

char* copy(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// The request's fields must be among `known` (INVALID_ARGUMENT naming the
// first that is not).
Status known_fields(const Json& rq, const std::string& op, std::initializer_list<const char*> known) {
  for (const auto& [key, value] : rq.items())
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; }))
      return Status::invalid(key + ": is not a field of " + op);
  return Status::ok();
}

// An optional string field; INVALID_ARGUMENT naming it when not a string
// or longer than `max`.
Status string_field(const Json& rq, const char* key, size_t max, std::string* out) {
  if (!rq.contains(key) || rq[key].is_null()) return Status::ok();
  if (!rq[key].is_string()) return Status::invalid(std::string(key) + ": must be a string");
  *out = rq[key].get<std::string>();
  if (out->size() > max) return Status::invalid(std::string(key) + ": longer than " + std::to_string(max) + " bytes");
  return Status::ok();
}

// "ids": 1..500 delivery ids, each found in the actor's scope and passing
// `check` (all checked before any is changed); the first that does not is
// named ("ids[1]: ...").
Status deliveries_of(NotifyPlugin& p, const Json& rq, const std::string& scope,
                     const std::function<Status(const Delivery&)>& check, std::vector<Delivery>* out) {
  if (!rq.contains("ids") || !rq["ids"].is_array() || rq["ids"].empty() || rq["ids"].size() > 500)
    return Status::invalid("ids: is required, an array of 1..500 delivery ids");
  std::set<std::string> seen;
  for (size_t i = 0; i < rq["ids"].size(); ++i) {
    const Json& v = rq["ids"][i];
    if (!v.is_string()) return Status::invalid("ids[" + std::to_string(i) + "]: must be a string");
    if (!seen.insert(v.get<std::string>()).second) continue;
    Delivery d;
    Status s = p.repo().delivery(v.get<std::string>(), &d, nullptr);
    if (s && !p.contains(scope, d.scope)) s = Status::not_found("no delivery '" + v.get<std::string>() + "'");
    if (s) s = check(d);
    if (!s) return Status(s.code(), "ids[" + std::to_string(i) + "]: " + s.message());
    out->push_back(std::move(d));
  }
  return Status::ok();
}

void audit_row(NotifyPlugin& p, const opk_principal* actor, const std::string& action, const std::string& target,
               const Json& before, const Json& after, const std::string& source, const std::string& reason = "") {
  Audit audit(p.host());
  Status a = audit.record(actor, {.action = action,
                                  .target = target,
                                  .reason = reason,
                                  .before = before,
                                  .after = after,
                                  .outcome = "success",
                                  .source = source});
  if (!a) p.host().error("audit row " + action + " of " + target + " not written: " + a.message());
}

Status list_failed(NotifyPlugin& p, const std::string& scope, const Json& rq, Json* answer) {
  DeliveryQuery q;
  for (const auto& [key, value] : rq.items()) {
    if (key == "state" || key == "channel" || key == "rule" || key == "event" || key == "cursor" ||
        key == "recipient" || key == "scope") {
      if (!value.is_string()) return Status::invalid(key + ": must be a string");
    } else if (key == "since_ms" || key == "until_ms" || key == "limit") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0)
        return Status::invalid(key + ": must be a whole number");
    } else if (key == "handled") {
      if (!value.is_boolean() && !value.is_null()) return Status::invalid("handled: must be true, false or null");
    } else {
      return Status::invalid(key + ": is not a field of list_failed");
    }
  }
  q.state = rq.value("state", "");
  if (!q.state.empty() && q.state != kDead && q.state != kFailed)
    return Status::invalid("state: must be dead or failed, not '" + q.state + "'");
  q.channel = rq.value("channel", "");
  q.rule = rq.value("rule", "");
  q.event_kind = rq.value("event", "");
  q.recipient = rq.value("recipient", "");
  q.cursor = rq.value("cursor", "");
  q.since_ms = rq.value("since_ms", int64_t{0});
  q.until_ms = rq.value("until_ms", int64_t{0});
  if (q.since_ms > 0 && q.until_ms > 0 && q.until_ms <= q.since_ms)
    return Status::invalid("until_ms: must be later than since_ms");
  if (!rq.contains("handled"))
    q.handled = false;
  else if (rq["handled"].is_boolean())
    q.handled = rq["handled"].get<bool>();
  const std::string within = rq.value("scope", "");
  if (rq.contains("scope") && (within.empty() || !p.node_exists(within) || !p.contains(scope, within)))
    return Status::invalid("scope: no node '" + within + "' in your scope");
  const int64_t limit = rq.value("limit", int64_t{50});
  if (limit < 1 || limit > 500) return Status::invalid("limit: must be 1..500");
  Json list = Json::array();
  std::string next = q.cursor;
  for (int reads = 0; reads < 20 && static_cast<int64_t>(list.size()) < limit; ++reads) {
    q.cursor = next;
    q.limit = static_cast<int>(std::max<int64_t>(limit - static_cast<int64_t>(list.size()), 100));
    std::vector<Delivery> page;
    if (Status s = p.repo().failed(q, &page, &next); !s) return s;
    for (const auto& d : page) {
      if (!p.contains(scope, d.scope) || (!within.empty() && !p.contains(within, d.scope))) continue;
      list.push_back(to_json(d, false));
      if (static_cast<int64_t>(list.size()) == limit) {
        next = std::to_string(d.created_ms) + "." + d.id;
        break;
      }
    }
    if (next.empty()) break;
  }
  *answer = {{"deliveries", list}, {"next_cursor", next.empty() ? Json() : Json(next)}};
  return Status::ok();
}

Status ext_call(NotifyPlugin& p, const opk_principal* actor, const std::string& op, const Json& rq,
                const std::string& source, Json* answer) {
  if (actor == nullptr || actor->role == nullptr || actor->scope == nullptr)
    return Status::permission("actor: a principal with a role and a scope is required");
  const std::string role = actor->role, scope = actor->scope;
  const std::string who = actor->user_id ? actor->user_id : "system";
  const auto* id = p.host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
  // The outbox's own permission, or the failures inbox's (webhook-inbox).
  auto allowed = [&](const char* mine, const char* inbox) {
    auto has = [&](const char* permission) {
      return id && id->allowed && id->allowed(p.host().raw(), role.c_str(), permission) != 0;
    };
    return role == "System" || has(mine) || has(inbox);
  };
  static const std::set<std::string> reads = {"list_failed", "get", "counts", "suppressions"};
  static const std::set<std::string> writes = {"replay", "handle", "suppress", "lift"};
  if (reads.count(op)) {
    if (!allowed("notifications.read", "webhook_failures.read"))
      return Status::permission("role " + role + " lacks notifications.read");
  } else if (writes.count(op)) {
    if (!allowed("notifications.manage", "webhook_failures.manage"))
      return Status::permission("role " + role + " lacks notifications.manage");
  } else {
    return Status(OPK_ERR_UNSUPPORTED,
                  "no operation '" + op + "' (list_failed, get, replay, handle, counts, suppress, lift, suppressions)");
  }
  if (!rq.is_object()) return Status::invalid("request: must be a JSON object");
  const Repo& repo = p.repo();
  const int64_t now = p.host().now_ms();
  if (op == "list_failed") return list_failed(p, scope, rq, answer);
  if (op == "get") {
    if (!rq.contains("id") || !rq["id"].is_string()) return Status::invalid("id: is required, a delivery's id");
    Delivery d;
    std::vector<Attempt> attempts;
    const std::string did = rq["id"].get<std::string>();
    Status s = repo.delivery(did, &d, &attempts);
    if (s && !p.contains(scope, d.scope)) s = Status::not_found("no delivery '" + did + "'");
    if (!s) return s;
    Json doc = to_json(d, true);
    doc["attempts"] = Json::array();
    for (const auto& a : attempts) doc["attempts"].push_back(to_json(a));
    *answer = {{"delivery", doc}};
    return Status::ok();
  }
  if (op == "replay") {
    if (Status s = known_fields(rq, op, {"ids"}); !s) return s;
    std::vector<Delivery> found;
    if (Status s = deliveries_of(
            p, rq, scope,
            [](const Delivery& d) {
              if (d.state != kDead && d.state != kFailed && d.state != kSkipped)
                return Status::conflict("delivery '" + d.id + "' is " + d.state +
                                        "; only dead, failed or skipped ones are replayed");
              return Status::ok();
            },
            &found);
        !s)
      return s;
    Json replayed = Json::array();
    for (const auto& d : found) {
      if (Status s = repo.replay(d.id, now); !s) return s;
      replayed.push_back(d.id);
      audit_row(p, actor, "notifications.delivery.replay", "delivery:" + d.id,
                {{"state", d.state}, {"handled_ms", d.handled_ms ? Json(d.handled_ms) : Json()}},
                {{"state", kPending}, {"handled_ms", nullptr}}, source);
    }
    p.wake();
    *answer = {{"replayed", replayed}};
    return Status::ok();
  }
  if (op == "handle") {
    if (Status s = known_fields(rq, op, {"ids", "note"}); !s) return s;
    std::string note;
    if (Status s = string_field(rq, "note", 1000, &note); !s) return s;
    std::vector<Delivery> found;
    if (Status s = deliveries_of(
            p, rq, scope,
            [](const Delivery& d) {
              if (d.state != kDead && d.state != kFailed)
                return Status::conflict("delivery '" + d.id + "' is " + d.state +
                                        "; only dead or failed ones are handled");
              return Status::ok();
            },
            &found);
        !s)
      return s;
    Json handled = Json::array();
    for (const auto& d : found) {
      if (Status s = repo.handle(d.id, who, note, now); !s) return s;
      handled.push_back(d.id);
      audit_row(p, actor, "notifications.delivery.handle", "delivery:" + d.id,
                {{"handled_by", d.handled_ms ? Json(d.handled_by) : Json()}},
                {{"handled_by", who}, {"handled_ms", now}, {"note", note}}, source, note);
    }
    *answer = {{"handled", handled}};
    return Status::ok();
  }
  if (op == "counts") {
    if (Status s = known_fields(rq, op, {}); !s) return s;
    std::vector<FailureCount> counts;
    if (Status s = repo.failure_counts(&counts); !s) return s;
    int64_t open = 0, handled = 0;
    for (const auto& c : counts)
      if (p.contains(scope, c.scope)) (c.handled ? handled : open) += c.count;
    std::vector<Suppression> active;
    if (Status s = repo.active_suppressions("", now, &active); !s) return s;
    std::set<std::string> endpoints;
    for (const auto& x : active)
      if (p.contains(scope, x.scope)) endpoints.insert(x.endpoint);
    *answer = {{"open", open}, {"handled", handled}, {"suppressed_endpoints", endpoints.size()}};
    return Status::ok();
  }
  if (op == "suppressions") {
    if (Status s = known_fields(rq, op, {}); !s) return s;
    std::vector<Suppression> active;
    if (Status s = repo.active_suppressions("", now, &active); !s) return s;
    Json list = Json::array();
    for (const auto& x : active)
      if (p.contains(scope, x.scope)) list.push_back(to_json(x));
    *answer = {{"suppressions", list}};
    return Status::ok();
  }
  if (op == "suppress") {
    if (Status s = known_fields(rq, op, {"channel", "recipient", "reason", "until_ms", "scope"}); !s) return s;
    Suppression x;
    if (Status s = string_field(rq, "channel", 64, &x.channel); !s) return s;
    if (x.channel.empty()) return Status::invalid("channel: is required, a channel id such as webhook");
    if (Status s = string_field(rq, "recipient", 2000, &x.recipient); !s) return s;
    if (x.recipient.empty()) return Status::invalid("recipient: is required, the endpoint's URL or address");
    if (Status s = string_field(rq, "reason", 500, &x.reason); !s) return s;
    x.scope = scope;
    if (Status s = string_field(rq, "scope", 200, &x.scope); !s) return s;
    if (x.scope != scope && (!p.node_exists(x.scope) || !p.contains(scope, x.scope)))
      return Status::invalid("scope: no node '" + x.scope + "' in your scope");
    if (rq.contains("until_ms") && !rq["until_ms"].is_null()) {
      if (!rq["until_ms"].is_number_integer()) return Status::invalid("until_ms: must be a whole number");
      x.until_ms = rq["until_ms"].get<int64_t>();
      if (x.until_ms <= now) return Status::invalid("until_ms: must be in the future");
    }
    x.endpoint = endpoint_id(x.channel, x.recipient);
    std::vector<Suppression> active;
    if (Status s = repo.active_suppressions(x.endpoint, now, &active); !s) return s;
    for (const auto& a : active)
      if (a.scope == x.scope)
        return Status::conflict("recipient: the endpoint is suppressed already for " + x.scope + " (" + a.id + ")");
    x.id = new_suppression_id();
    x.created_by = who;
    x.created_ms = now;
    if (Status s = repo.insert_suppression(x); !s) return s;
    audit_row(p, actor, "notifications.suppression.create", "suppression:" + x.id, nullptr, to_json(x), source,
              x.reason);
    *answer = {{"suppression", to_json(x)}};
    return Status::ok();
  }
  // lift
  if (Status s = known_fields(rq, op, {"id"}); !s) return s;
  if (!rq.contains("id") || !rq["id"].is_string()) return Status::invalid("id: is required, a suppression's id");
  const std::string sid = rq["id"].get<std::string>();
  Suppression before;
  Status s = repo.suppression(sid, &before);
  if (s && !p.contains(scope, before.scope)) s = Status::not_found("no suppression '" + sid + "'");
  if (s) s = repo.lift(sid, who, now);
  if (!s) return s;
  Suppression after;
  if (!repo.suppression(sid, &after)) after = before;
  audit_row(p, actor, "notifications.suppression.lift", "suppression:" + sid, to_json(before), to_json(after), source);
  if (Status r = p.resume_endpoint(before.endpoint); !r)
    p.host().warn("notifications: deliveries held for " + before.endpoint + " not resumed yet: " + r.message());
  *answer = {{"suppression", to_json(after)}};
  return Status::ok();
}

opk_status cb_call(const opk_host* /*host*/, const opk_principal* actor, const char* operation,
                   const char* request_json, const char* source, char** answer_json) {
  if (answer_json == nullptr) return OPK_ERR_INVALID_ARGUMENT;
  Status s;
  Json answer;
  try {
    std::shared_lock lock(g_mu);
    if (g_plugin == nullptr) {
      s = Status::unavailable("the notifications plugin is not started");
    } else {
      Json rq = request_json && *request_json ? Json::parse(request_json, nullptr, false) : Json::object();
      if (rq.is_discarded())
        s = Status::invalid("request: not valid JSON");
      else
        s = ext_call(*g_plugin, actor, operation ? operation : "", rq, source ? source : "", &answer);
    }
  } catch (const std::exception& e) {
    s = Status(OPK_ERR_INTERNAL, std::string("opskernel.notifications/1: ") + e.what());
  }
  *answer_json = copy(s ? answer.dump() : Json{{"error", s.message()}}.dump());
  return s.is_ok() ? OPK_OK : s.code();
}

void cb_free(char* answer) {
  std::free(answer);
}

// One text read as a setting (an item of a list).
struct OneValue {
  std::string text;
  std::optional<std::string> config(std::string_view) const { return text; }
};

const opk_notifications_v1 kExtension = {sizeof(opk_notifications_v1), &cb_call, &cb_free};

}  // namespace

// ------------------------------------------------------------ settings

Status read_config(Settings& in, Config* out) {
  Config c;
  c.default_group = in.text("default_group", "");
  if (!c.default_group.empty() && !valid_id(c.default_group))
    in.invalid("default_group", c.default_group, "a group id");
  for (const auto& item : in.list("job_type_groups", {})) {
    const size_t eq = item.find('=');
    std::string type = eq == std::string::npos ? "" : item.substr(0, eq);
    std::string group = eq == std::string::npos ? "" : item.substr(eq + 1);
    auto trim = [](std::string& s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t") + 1);
    };
    trim(type);
    trim(group);
    if (type.empty() || !valid_id(group)) {
      in.invalid("job_type_groups", item, "items of the form job-type=group-id");
      break;
    }
    c.job_type_groups[type] = group;
  }
  c.workers = static_cast<int>(in.integer("workers", c.workers, 1, 16));
  std::vector<std::string> schedule = in.list("retry_schedule", {});
  if (!schedule.empty()) {
    c.retry_schedule_ms.clear();
    for (const auto& d : schedule) {
      const OneValue value{d};
      Settings one(value, "notifications");
      const int64_t ms = one.duration_ms("retry_schedule", 0, 0, 7LL * 86'400'000);
      if (!one.ok()) {
        in.invalid("retry_schedule", d, "durations from 0 to 7d, such as 5s, 5m, 2h, separated by commas");
        break;
      }
      c.retry_schedule_ms.push_back(ms);
    }
    if (c.retry_schedule_ms.size() > 50) in.invalid("retry_schedule", "...", "at most 50 attempts");
  }
  c.retry_jitter = in.number("retry_jitter", c.retry_jitter, 0, 0.5);
  c.circuit_failures = in.integer("circuit_failures", c.circuit_failures, 1, 1000);
  c.circuit_open_ms = in.duration_ms("circuit_open", c.circuit_open_ms, 100, 86'400'000);
  c.timeout_ms = in.duration_ms("timeout", c.timeout_ms, 100, 300'000);
  c.poll_wait_ms = in.duration_ms("poll_wait", c.poll_wait_ms, 0, 10'000);
  c.locale = in.choice("locale", c.locale, {"en", "sv"});
  if (Status s = in.status(); !s) return s;
  *out = std::move(c);
  return Status::ok();
}

// -------------------------------------------------------------- plugin

NotifyPlugin::NotifyPlugin(Host host) : Plugin(host) {}

NotifyPlugin::~NotifyPlugin() {
  stop();
}

Status NotifyPlugin::init() {
  Settings in = host().settings();
  if (Status s = read_config(in, &config_); !s) return s;
  identity_ = host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
  repo_ = std::make_unique<Repo>(host());
  // Without a store (plugins list, plugins check) there is nothing to migrate.
  if (Store(host()).available())
    if (Status s = repo_->migrate(); !s) return s;
  return Status::ok();
}

Status NotifyPlugin::start() {
  if (Status s = add_routes(); !s) return s;
  {
    std::unique_lock lock(g_mu);
    g_plugin = this;
  }
  outbox_ = std::make_unique<Outbox>(*this);
  if (Status s = outbox_->start(); !s) {
    // The groups and rules stay manageable; nothing is sent.
    host().warn("notifications: the outbox does not run: " + s.message());
    outbox_.reset();
  }
  return Status::ok();
}

void NotifyPlugin::stop() {
  {
    std::unique_lock lock(g_mu);
    if (g_plugin == this) g_plugin = nullptr;
  }
  if (outbox_) outbox_->stop();
  outbox_.reset();
}

const void* NotifyPlugin::extension(std::string_view id) {
  return id == OPK_EXT_NOTIFICATIONS ? &kExtension : nullptr;
}

bool NotifyPlugin::contains(const std::string& scope, const std::string& node) const {
  return identity_ != nullptr && identity_->contains &&
         identity_->contains(host().raw(), scope.c_str(), node.c_str()) != 0;
}

bool NotifyPlugin::node_exists(const std::string& node) const {
  if (node == "platform") return true;
  if (identity_ != nullptr && detail::has(identity_, &opk_identity_v1::node_exists) && identity_->node_exists)
    return identity_->node_exists(host().raw(), node.c_str()) != 0;
  return contains("platform", node);
}

void NotifyPlugin::wake() const {
  if (outbox_) outbox_->wake();
}

Status NotifyPlugin::suppressed_by(const Delivery& d, int64_t now_ms, std::string* id) const {
  id->clear();
  std::vector<Suppression> active;
  if (Status s = repo_->active_suppressions(d.endpoint, now_ms, &active); !s) return s;
  for (const auto& x : active)
    if (contains(x.scope, d.scope)) {
      *id = x.id;
      break;
    }
  return Status::ok();
}

Status NotifyPlugin::resume_endpoint(const std::string& endpoint) const {
  const int64_t now = host().now_ms();
  std::vector<std::pair<std::string, std::string>> held;
  if (Status s = repo_->held(endpoint, &held); !s) return s;
  if (held.empty()) return Status::ok();
  std::vector<Suppression> active;
  if (Status s = repo_->active_suppressions(endpoint, now, &active); !s) return s;
  std::vector<std::string> go;
  for (const auto& [id, scope] : held)
    if (std::none_of(active.begin(), active.end(), [&](const Suppression& x) { return contains(x.scope, scope); }))
      go.push_back(id);
  if (Status s = repo_->resume(go, now); !s) return s;
  if (!go.empty()) wake();
  return Status::ok();
}

void NotifyPlugin::expire_suppressions() const {
  const int64_t now = host().now_ms();
  std::vector<Suppression> expired;
  if (Status s = repo_->expired_suppressions(now, &expired); !s) {
    host().warn("notifications: ended suppressions not read: " + s.message());
    return;
  }
  for (const auto& x : expired) {
    if (!repo_->lift(x.id, "system:expired", now)) continue;  // lifted meanwhile
    Suppression after = x;
    after.lifted_by = "system:expired";
    after.lifted_ms = now;
    Audit audit(host());
    Status a = audit.record(host().system_principal(), {.action = "notifications.suppression.expire",
                                                        .target = "suppression:" + x.id,
                                                        .reason = "until_ms passed",
                                                        .before = to_json(x),
                                                        .after = to_json(after),
                                                        .outcome = "success",
                                                        .source = ""});
    if (!a) host().error("notifications: audit row of the ended suppression not written: " + a.message());
    if (Status s = resume_endpoint(x.endpoint); !s)
      host().warn("notifications: deliveries held for " + x.endpoint + " not resumed: " + s.message());
  }
}

}  // namespace opk::notify

namespace {

opk::Manifest describe() {
  opk::Manifest m("notifications", "Notifications", "1.0.0", "Opskernel",
                  "Groups of rules that turn the kernel's events into e-mails and webhooks through the "
                  "notification channels, with a durable outbox, retries and an admin API");
  m.admin_feature({.id = "notifications",
                   .title = "Notifications",
                   .description = "Notification groups and rules, the outbox of deliveries and its endpoints",
                   .translations = {},
                   .permissions = {{"notifications.read",
                                    "List notification groups, rules and deliveries (within the caller's scope)"},
                                   {"notifications.manage",
                                    "Create, change and delete notification groups and rules, replay deliveries, "
                                    "enable endpoints (within the caller's scope)"}}});
  m.provides(OPK_EXT_NOTIFICATIONS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::notify::NotifyPlugin, describe);
