// webhook-inbox: the plugin, its settings, its gauges, its alert source and
// its manifest (inbox.h). The metrics service needs ABI 1.5.
#define OPK_REQUIRED_HOST_MINOR 5
#include "inbox.h"

namespace opk::inbox {

Status InboxPlugin::init() {
  Settings in = host().settings();
  alert_threshold_ = in.integer("alert_threshold", alert_threshold_, 0, 1'000'000);
  return in.status();
}

Status InboxPlugin::start() {
  if (Status s = add_routes(); !s) return s;
  // Without the gauges the inbox still works: say so and go on.
  if (Status s = metrics_.add("webhook-failures", [this](std::string* text) { return collect(text); }); !s)
    host().warn("webhook-inbox: no gauges in /metrics: " + s.message());
  return Status::ok();
}

Status InboxPlugin::call(const opk_principal* actor, const char* op, const Json& request, const std::string& source,
                         Json* answer) const {
  const auto* ext = host().extension<opk_notifications_v1>(OPK_EXT_NOTIFICATIONS);
  if (ext == nullptr || !ext->call) return Status::unavailable("the notifications plugin is not running");
  const std::string body = request.dump();
  char* out = nullptr;
  const opk_status st = ext->call(host().raw(), actor, op, body.c_str(), source.c_str(), &out);
  Json doc = out ? Json::parse(out, nullptr, false) : Json();
  if (out) ext->free(out);
  if (st != OPK_OK)
    return Status(st, doc.is_object() && doc.contains("error") && doc["error"].is_string()
                          ? doc["error"].get<std::string>()
                          : std::string("opskernel.notifications/1 ") + op + " failed");
  if (!doc.is_object()) return Status(OPK_ERR_INTERNAL, std::string("opskernel.notifications/1 ") + op + ": no answer");
  *answer = std::move(doc);
  return Status::ok();
}

Status InboxPlugin::collect(std::string* text) const {
  Json counts;
  if (Status s = call(host().system_principal(), "counts", Json::object(), "metrics", &counts); !s) return s;
  *text =
      "# HELP opskernel_webhook_failures Failed notification deliveries in the webhook failures inbox: open (not "
      "handled) and handled.\n"
      "# TYPE opskernel_webhook_failures gauge\n" +
      Metrics::sample("opskernel_webhook_failures", {{"state", "open"}}, counts.value("open", 0.0)) +
      Metrics::sample("opskernel_webhook_failures", {{"state", "handled"}}, counts.value("handled", 0.0)) +
      "# HELP opskernel_webhook_suppressed_endpoints Endpoints with an active suppression.\n"
      "# TYPE opskernel_webhook_suppressed_endpoints gauge\n" +
      Metrics::sample("opskernel_webhook_suppressed_endpoints", {}, counts.value("suppressed_endpoints", 0.0));
  return Status::ok();
}

namespace {

// The alert's object: there is one inbox.
constexpr const char* kRelatedType = "webhook-inbox";
constexpr const char* kRelatedId = "open-failures";

// Alert source webhook-failures: one warning while the open inbox holds
// more than alert_threshold failures, cleared when it holds no more.
class FailuresAlert : public AlertSource {
 public:
  explicit FailuresAlert(Plugin& plugin) : p_(static_cast<InboxPlugin&>(plugin)) {}

  Status evaluate(AlertContext& ctx) override {
    const int64_t threshold = p_.alert_threshold();
    if (threshold == 0) {
      ctx.log(Level::info, "alert_threshold is 0: the alert is off");
      return ctx.clear(kRelatedType, kRelatedId);
    }
    Json counts;
    if (Status s = p_.call(p_.host().system_principal(), "counts", Json::object(), "alert", &counts); !s) return s;
    const int64_t open = counts.value("open", int64_t{0});
    ctx.log(Level::info, std::to_string(open) + " open webhook failures (threshold " + std::to_string(threshold) + ")");
    if (open <= threshold) return ctx.clear(kRelatedType, kRelatedId);
    AlertContext::Alert a;
    a.severity = OPK_SEVERITY_WARNING;
    a.area = "notifications";
    a.title = std::to_string(open) + " webhook failures are waiting in the inbox";
    a.message = std::to_string(open) + " notification deliveries failed for good and nobody replayed or handled them " +
                "(more than " + std::to_string(threshold) +
                "): see /administration/webhook-failures, or suppress a failing endpoint";
    a.related_type = kRelatedType;
    a.related_id = kRelatedId;
    a.scope = "platform";
    a.details_json =
        Json{{"open", open}, {"threshold", threshold}, {"handled", counts.value("handled", int64_t{0})}}.dump();
    return ctx.raise(a);
  }

 private:
  InboxPlugin& p_;
};

}  // namespace
}  // namespace opk::inbox

namespace {

opk::Manifest describe() {
  opk::Manifest m("webhook-inbox", "Webhook failures inbox", "1.0.0", "Opskernel",
                  "Failed notification deliveries across tenants: replay, suppress an endpoint, mark handled");
  m.admin_feature({.id = "webhook-inbox",
                   .title = "Webhook failures",
                   .description = "Deliveries that failed every attempt or for good, with replay, suppress and "
                                  "mark handled",
                   .translations = {},
                   .permissions = {{"webhook_failures.read",
                                    "List failed deliveries, their counts and the "
                                    "suppressed endpoints (within the caller's scope)"},
                                   {"webhook_failures.manage",
                                    "Replay failed deliveries, mark them handled, suppress and lift endpoints "
                                    "(within the caller's scope)"}}});
  m.alert_source<opk::inbox::FailuresAlert>({.id = "webhook-failures",
                                             .title = "Webhook failures inbox over its threshold",
                                             .description =
                                                 "More failed deliveries are open in the webhook failures inbox than "
                                                 "[plugin.webhook-inbox] alert_threshold.",
                                             .area = "notifications",
                                             .default_schedule = "* * * * *"});
  m.requires_extension(OPK_EXT_NOTIFICATIONS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::inbox::InboxPlugin, describe);
