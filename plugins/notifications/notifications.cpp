// notifications: the plugin, its settings, its manifest and the extension
// opskernel.notifications/1 (plugin.h).
// Store transactions, plugin permissions, the event log and the channel
// service need ABI 1.4.
#define OPK_REQUIRED_HOST_MINOR 4
#include <opskernel/notifications.h>

#include <cstring>
#include <shared_mutex>

#include "outbox.h"
#include "plugin.h"

namespace opk::notify {
namespace {

// --------------------------------------------------------- the extension

std::shared_mutex g_mu;
NotifyPlugin* g_plugin = nullptr;  // guarded by g_mu; set while started

char* copy(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

Status ext_call(NotifyPlugin& p, const opk_principal* actor, const std::string& op, const Json& rq,
                const std::string& source, Json* answer) {
  if (actor == nullptr || actor->role == nullptr || actor->scope == nullptr)
    return Status::permission("actor: a principal with a role and a scope is required");
  const std::string role = actor->role, scope = actor->scope;
  const auto* id = p.host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
  auto allowed = [&](const char* permission) {
    return role == "System" || (id && id->allowed && id->allowed(p.host().raw(), role.c_str(), permission) != 0);
  };
  if (op == "list_failed" || op == "get") {
    if (!allowed("notifications.read")) return Status::permission("role " + role + " lacks notifications.read");
  } else if (op == "replay") {
    if (!allowed("notifications.manage")) return Status::permission("role " + role + " lacks notifications.manage");
  } else {
    return Status(OPK_ERR_UNSUPPORTED, "no operation '" + op + "' (list_failed, get, replay)");
  }
  if (!rq.is_object()) return Status::invalid("request: must be a JSON object");
  const Repo& repo = p.repo();
  if (op == "list_failed") {
    DeliveryQuery q;
    for (const auto& [key, value] : rq.items()) {
      if (key == "state" || key == "channel" || key == "rule" || key == "event" || key == "cursor") {
        if (!value.is_string()) return Status::invalid(key + ": must be a string");
      } else if (key == "since_ms" || key == "until_ms" || key == "limit") {
        if (!value.is_number_integer() || value.get<int64_t>() < 0)
          return Status::invalid(key + ": must be a whole number");
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
    q.cursor = rq.value("cursor", "");
    q.since_ms = rq.value("since_ms", int64_t{0});
    q.until_ms = rq.value("until_ms", int64_t{0});
    const int64_t limit = rq.value("limit", int64_t{50});
    if (limit < 1 || limit > 500) return Status::invalid("limit: must be 1..500");
    Json list = Json::array();
    std::string next = q.cursor;
    for (int reads = 0; reads < 20 && static_cast<int64_t>(list.size()) < limit; ++reads) {
      q.cursor = next;
      q.limit = static_cast<int>(std::max<int64_t>(limit - static_cast<int64_t>(list.size()), 100));
      std::vector<Delivery> page;
      if (Status s = repo.failed(q, &page, &next); !s) return s;
      for (const auto& d : page) {
        if (!p.contains(scope, d.scope)) continue;
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
  // replay
  if (!rq.contains("ids") || !rq["ids"].is_array() || rq["ids"].empty() || rq["ids"].size() > 500)
    return Status::invalid("ids: is required, an array of 1..500 delivery ids");
  std::vector<Delivery> found;
  for (size_t i = 0; i < rq["ids"].size(); ++i) {
    const Json& v = rq["ids"][i];
    if (!v.is_string()) return Status::invalid("ids[" + std::to_string(i) + "]: must be a string");
    Delivery d;
    Status s = repo.delivery(v.get<std::string>(), &d, nullptr);
    if (s && !p.contains(scope, d.scope)) s = Status::not_found("no delivery '" + v.get<std::string>() + "'");
    if (s && d.state != kDead && d.state != kFailed && d.state != kSkipped)
      s = Status::conflict("delivery '" + d.id + "' is " + d.state +
                           "; only dead, failed or skipped ones are replayed");
    if (!s) return Status(s.code(), "ids[" + std::to_string(i) + "]: " + s.message());
    found.push_back(std::move(d));
  }
  Json replayed = Json::array();
  Audit audit(p.host());
  for (const auto& d : found) {
    if (Status s = repo.replay(d.id, p.host().now_ms()); !s) return s;
    replayed.push_back(d.id);
    Status a = audit.record(actor, {.action = "notifications.delivery.replay",
                                    .target = "delivery:" + d.id,
                                    .reason = "",
                                    .before = {{"state", d.state}},
                                    .after = {{"state", kPending}},
                                    .outcome = "success",
                                    .source = source});
    if (!a) p.host().error("audit row for the replay of " + d.id + " not written: " + a.message());
  }
  p.wake();
  *answer = {{"replayed", replayed}};
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
