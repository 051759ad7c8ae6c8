// The notifications plugin's rules as functions: which events a rule
// matches (a table of cases), how a rule body is read and refused, which
// groups apply to a run, the report rule of a scheduled job, the delivery
// ids, the retry delays and the default messages.
#include <gtest/gtest.h>

#include "model.h"
#include "render.h"

namespace opk::notify {
namespace {

// A small hierarchy: platform > distributor:d1 > tenant:acme, tenant:beta.
bool contains(const std::string& scope, const std::string& node) {
  if (scope == "platform" || scope == node) return true;
  if (scope == "distributor:d1") return node == "tenant:acme" || node == "tenant:beta";
  return false;
}

Event run_event(const std::string& kind, const std::string& type, const std::string& job, const std::string& scope) {
  Event e;
  e.seq = 7;
  e.time_ms = 1767225600000;
  e.kind = kind;
  e.scope = scope;
  e.subject = "run:12";
  e.payload = {{"run",
                {{"id", 12},
                 {"job_type", type},
                 {"scheduled_job_id", job.empty() ? Json() : Json(job)},
                 {"status", "ERROR"},
                 {"summary", "disk full"}}},
               {"links", {{"run", "/administration/runs/12"}}}};
  return e;
}

Event alert_event(const std::string& kind, const std::string& source, const std::string& severity,
                  const std::string& scope) {
  Event e;
  e.seq = 8;
  e.kind = kind;
  e.scope = scope;
  e.subject = "alert:4";
  e.payload = {{"alert", {{"id", 4}, {"source", source}, {"severity", severity}, {"title", "Quota"}}}};
  return e;
}

Rule rule_of(const Json& body) {
  Rule r;
  const Status s = parse_rule(body, &r);
  EXPECT_TRUE(s) << s.message() << " in " << body.dump();
  return r;
}

struct MatchCase {
  const char* name;
  Json rule;  // the body without channel and recipients
  std::string group_scope;
  Event event;
  bool expected;
};

TEST(NotificationRules, MatchTable) {
  const Event failed = run_event("run.failed", "database-backup", "nightly", "tenant:acme");
  const Event warning = run_event("run.warning", "hello", "", "tenant:beta");
  const Event opened = alert_event("alert.opened", "missing-usage", "warning", "tenant:acme");
  const Event critical = alert_event("alert.opened", "cost", "critical", "platform");
  Event plugin_event;
  plugin_event.kind = "plugin.backup.verified";
  plugin_event.scope = "tenant:acme";
  const std::vector<MatchCase> cases = {
      {"exact kind", {{"events", {"run.failed"}}}, "platform", failed, true},
      {"other kind", {{"events", {"run.completed"}}}, "platform", failed, false},
      {"prefix pattern", {{"events", {"run.*"}}}, "platform", warning, true},
      {"prefix is not a substring", {{"events", {"run.*"}}}, "platform", opened, false},
      {"star matches all", {{"events", {"*"}}}, "platform", plugin_event, true},
      {"plugin prefix", {{"events", {"plugin.backup.*"}}}, "platform", plugin_event, true},
      {"second of two kinds", {{"events", {"run.completed", "run.failed"}}}, "platform", failed, true},
      {"job type listed",
       {{"events", {"run.*"}}, {"filter", {{"job_types", {"database-backup"}}}}},
       "platform",
       failed,
       true},
      {"job type not listed",
       {{"events", {"run.*"}}, {"filter", {{"job_types", {"hello"}}}}},
       "platform",
       failed,
       false},
      {"job type filter on an alert",
       {{"events", {"*"}}, {"filter", {{"job_types", {"hello"}}}}},
       "platform",
       opened,
       false},
      {"scheduled job listed",
       {{"events", {"run.failed"}}, {"filter", {{"scheduled_jobs", {"nightly"}}}}},
       "platform",
       failed,
       true},
      {"ad-hoc run and a job filter",
       {{"events", {"run.*"}}, {"filter", {{"scheduled_jobs", {"nightly"}}}}},
       "platform",
       warning,
       false},
      {"alert source",
       {{"events", {"alert.*"}}, {"filter", {{"alert_sources", {"missing-usage"}}}}},
       "platform",
       opened,
       true},
      {"other alert source",
       {{"events", {"alert.*"}}, {"filter", {{"alert_sources", {"cost"}}}}},
       "platform",
       opened,
       false},
      {"severity at the minimum",
       {{"events", {"alert.*"}}, {"filter", {{"min_severity", "warning"}}}},
       "platform",
       opened,
       true},
      {"severity below the minimum",
       {{"events", {"alert.*"}}, {"filter", {{"min_severity", "critical"}}}},
       "platform",
       opened,
       false},
      {"severity above the minimum",
       {{"events", {"alert.*"}}, {"filter", {{"min_severity", "info"}}}},
       "platform",
       critical,
       true},
      {"severity filter on a run",
       {{"events", {"*"}}, {"filter", {{"min_severity", "info"}}}},
       "platform",
       failed,
       false},
      {"event inside the group's scope", {{"events", {"run.*"}}}, "distributor:d1", failed, true},
      {"event outside the group's scope", {{"events", {"run.*"}}}, "tenant:beta", failed, false},
      {"platform event, tenant group", {{"events", {"alert.*"}}}, "tenant:acme", critical, false},
      {"filter scope narrows",
       {{"events", {"run.*"}}, {"filter", {{"scope", "tenant:beta"}}}},
       "distributor:d1",
       failed,
       false},
      {"filter scope holds it",
       {{"events", {"run.*"}}, {"filter", {{"scope", "tenant:acme"}}}},
       "distributor:d1",
       failed,
       true},
      {"disabled rule", {{"events", {"run.failed"}}, {"enabled", false}}, "platform", failed, false},
      {"every filter holds",
       {{"events", {"run.failed"}},
        {"filter", {{"job_types", {"database-backup"}}, {"scheduled_jobs", {"nightly"}}, {"scope", "tenant:acme"}}}},
       "platform",
       failed,
       true},
  };
  for (const auto& c : cases) {
    Json body = c.rule;
    body["channel"] = "webhook";
    body["recipients"] = {"https://example.com/hook"};
    const Rule r = rule_of(body);
    EXPECT_EQ(matches(r, c.group_scope, c.event, contains), c.expected) << c.name;
  }
}

TEST(NotificationRules, KindPatterns) {
  for (const char* ok : {"*", "run.failed", "run.*", "plugin.backup.*", "plugin.x-y.z_1"})
    EXPECT_TRUE(valid_kind_pattern(ok)) << ok;
  for (const char* bad : {"", "run.", ".run", "run..failed", "Run.failed", "run.*.x", "ru*", "*.failed", "run failed"})
    EXPECT_FALSE(valid_kind_pattern(bad)) << bad;
  EXPECT_FALSE(kind_matches("run.*", "run."));
  EXPECT_FALSE(kind_matches("run.*", "runner.x"));
  EXPECT_TRUE(kind_matches("run.*", "run.over_target"));
}

struct RefusedCase {
  Json body;
  std::string starts_with;
};

TEST(NotificationRules, BadRulesNameTheField) {
  const Json ok = {{"events", {"run.failed"}}, {"channel", "email"}, {"recipients", {"ops@example.com"}}};
  auto with = [&](const std::string& key, const Json& value) {
    Json b = ok;
    if (value.is_discarded())
      b.erase(key);
    else
      b[key] = value;
    return b;
  };
  const Json gone = Json(Json::value_t::discarded);
  const std::vector<RefusedCase> cases = {
      {with("events", gone), "events: must name at least one"},
      {with("events", Json::array()), "events: must name at least one"},
      {with("events", {"run.failed", "Run!"}), "events[1]: 'Run!' is not an event kind"},
      {with("events", "run.failed"), "events: must be an array"},
      {with("channel", gone), "channel: is required"},
      {with("channel", "E Mail"), "channel: 'E Mail' is not a channel id"},
      {with("recipients", gone), "recipients: is required"},
      {with("recipients", Json::array()), "recipients: must be a non-empty array"},
      {with("recipients", {"a@example.com", "a@example.com"}), "recipients[1]: 'a@example.com' is listed twice"},
      {with("recipients", {{{"to", "https://x"}, {"options", "secret"}}}), "recipients[0].options: must be an object"},
      {with("recipients", {{{"url", "https://x"}}}), "recipients[0].url: is not a field"},
      {with("recipients", {42}), "recipients[0]: must be a string"},
      {with("filter", {{"severity", "high"}}), "filter.severity: is not a filter"},
      {with("filter", {{"min_severity", "high"}}), "filter.min_severity: must be info, warning or critical"},
      {with("filter", {{"job_types", {""}}}), "filter.job_types[0]: must be a non-empty string"},
      {with("template", {{"text", "x"}}), "template.text: is not a template part"},
      {with("template", {{"body", 3}}), "template.body: must be a string"},
      {with("locale", "de"), "locale: must be en or sv"},
      {with("enabled", "yes"), "enabled: must be true or false"},
      {with("colour", "red"), "colour: is not a field of a rule"},
  };
  for (const auto& c : cases) {
    Rule r;
    const Status s = parse_rule(c.body, &r);
    ASSERT_FALSE(s) << c.body.dump();
    EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(s.message().rfind(c.starts_with, 0), 0u) << s.message() << " (wanted " << c.starts_with << ")";
  }
  Rule r;
  EXPECT_TRUE(parse_rule(ok, &r));
  EXPECT_EQ(r.locale, "en");
  EXPECT_TRUE(r.enabled);
}

TEST(NotificationRules, SecretsAreMaskedButStored) {
  const Rule r = rule_of(
      {{"events", {"*"}},
       {"channel", "webhook"},
       {"recipients",
        {{{"to", "https://example.com/h"}, {"options", {{"secrets", {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}}}}}});
  const std::string shown = to_json(r).dump();
  EXPECT_EQ(shown.find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string::npos) << shown;
  EXPECT_NE(shown.find("LaSw"), std::string::npos) << shown;
  Rule back;
  ASSERT_TRUE(from_stored(stored_json(r), &back));
  EXPECT_EQ(back.recipients[0].options["secrets"][0], "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
}

TEST(NotificationRules, GroupsBoundToJobsApplyToTheirRunsOnly) {
  Bindings b;
  b.default_group = "ops";
  b.job_type_groups = {{"database-backup", "dba"}};
  b.scheduled_job_groups = {{"nightly", "night-shift"}};
  const Event nightly = run_event("run.failed", "database-backup", "nightly", "platform");
  const Event backup = run_event("run.failed", "database-backup", "weekly", "platform");
  const Event hello = run_event("run.failed", "hello", "", "platform");
  const Event alert = alert_event("alert.opened", "cost", "critical", "platform");
  EXPECT_TRUE(group_applies(b, "night-shift", nightly));
  EXPECT_FALSE(group_applies(b, "dba", nightly)) << "the scheduled job's own group wins over its type's";
  EXPECT_TRUE(group_applies(b, "dba", backup));
  EXPECT_FALSE(group_applies(b, "ops", backup));
  EXPECT_TRUE(group_applies(b, "ops", hello)) << "the default group takes types without one";
  EXPECT_FALSE(group_applies(b, "ops", alert)) << "a bound group is for runs";
  EXPECT_TRUE(group_applies(b, "alerting", alert)) << "an unbound group applies by its filters";
  EXPECT_TRUE(group_applies(b, "alerting", hello));
}

TEST(NotificationRules, ReportRecipientsMakeAMailRuleOfTheJob) {
  auto r = report_rule("nightly", " ops@example.com; boss@example.com ,ops@example.com,", "sv");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, "report:nightly");
  EXPECT_EQ(r->channel, "email");
  EXPECT_EQ(r->locale, "sv");
  ASSERT_EQ(r->recipients.size(), 2u);
  EXPECT_EQ(r->recipients[1].to, "boss@example.com");
  EXPECT_TRUE(matches(*r, "platform", run_event("run.completed", "x", "nightly", "tenant:acme"), contains));
  EXPECT_FALSE(matches(*r, "platform", run_event("run.completed", "x", "weekly", "tenant:acme"), contains));
  EXPECT_FALSE(matches(*r, "platform", run_event("run.stale", "x", "nightly", "tenant:acme"), contains));
  EXPECT_FALSE(report_rule("nightly", " , ", "en"));
  EXPECT_EQ(report_rule("n", "a@b.se", "de")->locale, "en");
}

TEST(NotificationRules, DeliveryIdsAreStableAndDistinct) {
  const std::string id = delivery_id("rule-1", 42, "webhook", "https://x/h");
  EXPECT_EQ(id, delivery_id("rule-1", 42, "webhook", "https://x/h"));
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(id.rfind("msg_", 0), 0u);
  EXPECT_NE(id, delivery_id("rule-1", 43, "webhook", "https://x/h"));
  EXPECT_NE(id, delivery_id("rule-2", 42, "webhook", "https://x/h"));
  EXPECT_NE(id, delivery_id("rule-1", 42, "webhook", "https://x/g"));
  EXPECT_NE(endpoint_id("webhook", "https://x/h"), endpoint_id("webhook", "https://x/g"));
}

TEST(NotificationRules, RetryDelaysFollowTheScheduleWithJitter) {
  const std::vector<int64_t> schedule = {0, 5'000, 300'000, 1'800'000};
  EXPECT_EQ(retry_delay_ms(schedule, 1, 0, 0.5, 0), 5'000);
  EXPECT_EQ(retry_delay_ms(schedule, 2, 0, 0.9, 0), 300'000);
  EXPECT_EQ(retry_delay_ms(schedule, 3, 0.2, 0.0, 0), 1'440'000);
  EXPECT_EQ(retry_delay_ms(schedule, 3, 0.2, 0.999999, 0) / 1000, 2'159);
  EXPECT_EQ(retry_delay_ms(schedule, 4, 0, 0, 0), -1) << "four attempts, then dead";
  EXPECT_EQ(retry_delay_ms(schedule, 1, 0, 0, 60'000), 60'000) << "Retry-After wins when later";
  EXPECT_EQ(retry_delay_ms(schedule, 2, 0, 0, 60'000), 300'000);
}

TEST(NotificationTemplates, DefaultsInTheRuleLocale) {
  const Event e = run_event("run.failed", "database-backup", "nightly", "tenant:acme");
  Rule r = rule_of({{"events", {"run.*"}}, {"channel", "email"}, {"recipients", {"a@example.com"}}});
  Message m = render(e, r);
  EXPECT_EQ(m.subject, "[run.failed] database-backup run 12: ERROR");
  EXPECT_NE(m.body.find("Summary: disk full"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("/administration/runs/12"), std::string::npos) << m.body;
  EXPECT_TRUE(m.render_error.empty());
  r.locale = "sv";
  m = render(e, r);
  EXPECT_EQ(m.subject, "[run.failed] database-backup körning 12: ERROR");
  EXPECT_NE(m.body.find("Sammanfattning: disk full"), std::string::npos) << m.body;
}

TEST(NotificationTemplates, OwnTemplateAndItsRenderErrorFallsBack) {
  const Event e = run_event("run.failed", "database-backup", "nightly", "tenant:acme");
  const Json templates = {{"subject", "Backup {{ run.scheduled_job_id }}\nfailed"}, {"body", "{{ run.summary"}};
  const Rule r = rule_of(
      {{"events", {"run.*"}}, {"channel", "email"}, {"recipients", {"a@example.com"}}, {"template", templates}});
  const Message m = render(e, r);
  EXPECT_EQ(m.subject, "Backup nightly failed") << "a subject is one line";
  EXPECT_NE(m.body.find("Summary: disk full"), std::string::npos) << "the default body is used: " << m.body;
  EXPECT_EQ(m.render_error.rfind("template.body: line 1, column ", 0), 0u) << m.render_error;
}

TEST(NotificationTemplates, WebhookBodyIsTheEvent) {
  const Event e = run_event("run.failed", "database-backup", "nightly", "tenant:acme");
  const Rule r = rule_of({{"events", {"run.*"}}, {"channel", "webhook"}, {"recipients", {"https://x/h"}}});
  const Message m = render(e, r);
  EXPECT_EQ(m.content_type, "application/json");
  const Json body = Json::parse(m.body);
  EXPECT_EQ(body["type"], "run.failed");
  EXPECT_EQ(body["timestamp"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(body["seq"], 7);
  EXPECT_EQ(body["data"]["run"]["job_type"], "database-backup");
  // Byte for byte the envelope as a document of its own writes it, quotes
  // and bytes that are not UTF-8 included; a null payload is {}.
  Event odd = e;
  odd.subject = "run:\"7\"\xff";
  odd.scope = "tenant:\\acme";
  for (const Json& payload : {odd.payload, Json()}) {
    odd.payload = payload;
    const Json envelope = {{"type", odd.kind},       {"timestamp", "2026-01-01T00:00:00Z"},
                           {"seq", odd.seq},         {"scope", odd.scope},
                           {"subject", odd.subject}, {"data", payload.is_null() ? Json::object() : payload}};
    EXPECT_EQ(render(odd, r).body, envelope.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
}

// The outbox writes an event's texts once for all its rules and the
// stored message by hand: each byte for byte what the documents write,
// quotes, backslashes, control characters and bytes that are not UTF-8
// included, and each rule's message what render(event, rule) gives.
TEST(NotificationTemplates, TextsWrittenOnceAreTheDocuments) {
  Event e = run_event("run.failed", "database-backup", "nightly", "tenant:acme");
  e.subject = "run:\"7\"\xff";
  e.scope = "tenant:\\acme\x01";
  e.payload["run"]["summary"] = "tab\there \"quoted\" back\\slash \x7f nul-ish \x02 \xc3\xa5 bad \xfe";
  const Rule hook = rule_of({{"events", {"run.*"}}, {"channel", "webhook"}, {"recipients", {"https://x/h"}}});
  Rule mail = rule_of({{"events", {"run.*"}}, {"channel", "email"}, {"recipients", {"a@example.com"}}});
  mail.id = "mail-rule";
  mail.locale = "sv";
  mail.templates.html_body = "<p>{{ run.summary }}</p>";
  for (const Json& payload : {e.payload, Json(), Json::array({1, "two"})}) {
    Event ev = e;
    ev.payload = payload;
    Rendering r = rendering_of(ev);
    const Json event_doc = {{"kind", ev.kind}, {"payload", ev.payload}, {"scope", ev.scope},
                            {"seq", ev.seq},   {"subject", ev.subject}, {"time_ms", ev.time_ms}};
    const std::string event_json = event_json_of(r);
    EXPECT_EQ(event_json, event_doc.dump(-1, ' ', false, Json::error_handler_t::replace));
    for (const Rule* rule : std::initializer_list<const Rule*>{&hook, &mail, &hook}) {
      bool envelope = false;
      const Message m = render(r, *rule, &envelope);
      const Message want = render(ev, *rule);
      EXPECT_EQ(m.subject, want.subject);
      EXPECT_EQ(m.body, envelope ? "" : want.body) << "the envelope is left to the caller";
      EXPECT_EQ(m.html_body, want.html_body);
      EXPECT_EQ(m.content_type, want.content_type);
      EXPECT_EQ(envelope, rule == &hook);
      Rendering again = rendering_of(ev);
      EXPECT_EQ(render(again, *rule).body, want.body);
      const Json options = {{"secrets", {"whsec_\"x\""}}};
      Json doc = {{"subject", want.subject},           {"body", want.body},        {"html_body", want.html_body},
                  {"content_type", want.content_type}, {"event_json", event_json}, {"options", options}};
      const std::string stored = stored_message(m, envelope, event_json, options.dump());
      const Json loaded = load_message(stored);
      EXPECT_TRUE(loaded == Json::parse(doc.dump(-1, ' ', false, Json::error_handler_t::replace)))
          << "the webhook's envelope is made again as render made it";
      if (envelope) {
        EXPECT_EQ(stored.find("\"body\":"), std::string::npos) << "the envelope is not stored: " << stored;
        doc.erase("body");
        doc["body_of"] = "event";
      }
      EXPECT_EQ(stored, doc.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
  }
  // A body of the rule's own template is checked for UTF-8 as a document
  // would be.
  Message odd;
  odd.body = "bad \xff \"x\"\n";
  const Json doc = {{"subject", ""},      {"body", odd.body},   {"html_body", ""},
                    {"content_type", ""}, {"event_json", "{}"}, {"options", nullptr}};
  EXPECT_EQ(stored_message(odd, false, "{}", ""), doc.dump(-1, ' ', false, Json::error_handler_t::replace));
  // Messages stored before keep their body; an unreadable one is {}.
  EXPECT_EQ(load_message(doc.dump(-1, ' ', false, Json::error_handler_t::replace))["body"],
            Json("bad \xef\xbf\xbd \"x\"\n"));
  EXPECT_EQ(load_message("{\"body"), Json::object());
}

TEST(NotificationTemplates, CheckNamesPartLineAndColumn) {
  Templates t;
  t.subject = "ok {{ run.id }}";
  t.body = "line one\nline {{ two";
  const auto errors = check_templates(t);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "template.body");
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[0].column, 6);
  EXPECT_TRUE(check_templates(Templates{"{{ a }}", "{{ b | default: \"x\" }}", ""}).empty());
}

}  // namespace
}  // namespace opk::notify
