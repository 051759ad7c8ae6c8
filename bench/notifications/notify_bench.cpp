// Notifications benchmark: the consumer's work per event, without the
// store: matching one event against 1,000 rules, and rendering a typical
// report (the default run template, and a rule's own template with a loop)
// in microseconds. Prints figures; never fails.
//
//   opk_notify_bench [events]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model.h"
#include "render.h"

using opk::Json;
using opk::notify::Event;
using opk::notify::Rule;

namespace {

bool contains(const std::string& scope, const std::string& node) {
  return scope == "platform" || scope == node;
}

Event event_of(int i) {
  Event e;
  e.seq = i;
  e.time_ms = 1767225600000 + i;
  e.kind = i % 3 == 0 ? "run.failed" : i % 3 == 1 ? "run.completed" : "alert.opened";
  e.scope = "tenant:t" + std::to_string(i % 50);
  e.subject = "run:" + std::to_string(i);
  Json steps = Json::array();
  for (int s = 0; s < 5; ++s) steps.push_back({{"id", "step" + std::to_string(s)}, {"outcome", "normal"}});
  e.payload = {{"run",
                {{"id", i},
                 {"job_type", "type-" + std::to_string(i % 20)},
                 {"scheduled_job_id", "job-" + std::to_string(i % 100)},
                 {"status", "error"},
                 {"summary", "backup of db-" + std::to_string(i) + " failed: disk full"},
                 {"params", {{"database", "db"}, {"retention_days", 30}}},
                 {"output", {{"steps", steps}, {"bytes", 123456789}}}}},
               {"alert", {{"source", "cost"}, {"severity", "warning"}}},
               {"tenant", e.scope},
               {"links", {{"run", "/administration/runs/" + std::to_string(i)}}}};
  return e;
}

std::vector<Rule> rules(int n) {
  std::vector<Rule> out;
  for (int i = 0; i < n; ++i) {
    Json body = {{"events", i % 4 == 0 ? Json({"run.*"}) : Json({"run.failed", "alert.opened"})},
                 {"channel", i % 2 ? "email" : "webhook"},
                 {"recipients", {i % 2 ? "ops@example.com" : "https://example.com/h"}}};
    if (i % 3 == 0) body["filter"]["job_types"] = {"type-" + std::to_string(i % 20)};
    if (i % 5 == 0) body["filter"]["scope"] = "tenant:t" + std::to_string(i % 50);
    if (i % 7 == 0) body["filter"]["min_severity"] = "warning";
    Rule r;
    if (!opk::notify::parse_rule(body, &r)) std::abort();
    r.id = "rule-" + std::to_string(i);
    out.push_back(std::move(r));
  }
  return out;
}

double us_since(std::chrono::steady_clock::time_point t0, int n) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  const int events = argc > 1 ? std::atoi(argv[1]) : 2000;
  const auto all = rules(1000);
  std::vector<Event> evs;
  for (int i = 0; i < events; ++i) evs.push_back(event_of(i));

  size_t matched = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& e : evs)
    for (const auto& r : all) matched += opk::notify::matches(r, "platform", e, contains);
  std::printf("match 1,000 rules: %.1f us per event (%zu matches over %d events)\n", us_since(t0, events), matched,
              events);

  Rule mail = all[1];
  t0 = std::chrono::steady_clock::now();
  size_t bytes = 0;
  for (const auto& e : evs) bytes += opk::notify::render(e, mail).body.size();
  std::printf("render the default run report (subject + body): %.1f us per message (%zu bytes)\n", us_since(t0, events),
              bytes);

  Rule own = mail;
  own.templates.subject = "{{ run.job_type | upcase }} {{ run.status }} on {{ tenant }}";
  own.templates.body =
      "Run {{ run.id }} ({{ run.scheduled_job_id }}) ended {{ run.status }} at {{ event.time }}.\n"
      "{% for s in run.output.steps %}- {{ s.id }}: {{ s.outcome }}\n{% endfor %}"
      "{% if run.summary %}Summary: {{ run.summary | truncate: 80 }}{% endif %}\n{{ links.run }}\n";
  own.templates.html_body = "<h1>{{ run.job_type }}</h1><p>{{ run.summary }}</p>";
  t0 = std::chrono::steady_clock::now();
  bytes = 0;
  for (const auto& e : evs) {
    const auto m = opk::notify::render(e, own);
    if (!m.render_error.empty()) std::abort();
    bytes += m.body.size() + m.html_body.size();
  }
  std::printf("render an own template (subject, body with a loop, html): %.1f us per message (%zu bytes)\n",
              us_since(t0, events), bytes);

  Rule hook = all[0];
  t0 = std::chrono::steady_clock::now();
  bytes = 0;
  for (const auto& e : evs) bytes += opk::notify::render(e, hook).body.size();
  std::printf("render a webhook body (the event as JSON): %.1f us per message (%zu bytes)\n", us_since(t0, events),
              bytes);
  return 0;
}
