// opk_liquid_bench -- rendering a typical notification: a run-report e-mail
// of about 40 lines (an if, a for over 20 steps, date and default filters)
// rendered over the same data again and again; microseconds per render,
// min / median / max of 3 rounds, and the time to parse the template.
//
//   build/bench/opk_liquid_bench [RENDERS_PER_ROUND]   (default 20000)
#include <opskernel/liquid.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

const char* const kTemplate = R"(Subject: [{{ run.outcome | upcase }}] {{ job.name }} run {{ run.id }}

Hello {{ recipient.name | default: "operator" }},

The job {{ job.name }} ({{ job.type }}) ran on {{ run.node | default: "an unnamed node" }}
for {{ run.tenant | default: "the platform" }}.

  Started:  {{ run.started_at | date: "%Y-%m-%d %H:%M:%S UTC" }}
  Finished: {{ run.finished_at | date: "%Y-%m-%d %H:%M:%S UTC" }}
  Duration: {{ run.duration_ms | divided_by: 1000.0 | round: 1 }} s
  Trigger:  {{ run.trigger | default: "schedule" }}{% if run.reason %} ({{ run.reason }}){% endif %}

{% if run.outcome == "failed" -%}
The run FAILED: {{ run.error | default: "no error message" }}
Look at the log before the next run at {{ job.next_at | date: "%H:%M" }}.
{%- elsif run.outcome == "warning" -%}
The run completed with warnings.
{%- else -%}
The run completed normally.
{%- endif %}

Steps ({{ run.steps | size }}):
{% for step in run.steps -%}
  {{ forloop.index }}. {{ step.name | truncate: 30 }} {{ step.outcome | default: "?" }} in {{ step.ms }} ms
{%- if step.summary %}: {{ step.summary }}{% endif %}
{% endfor %}
{%- assign slow = run.steps | where: "slow" | size -%}
{% if slow > 0 %}{{ slow }} step(s) took longer than their target.{% endif %}

Parameters: {{ run.params | json }}

Summary: {{ run.summary | default: "none" | strip_newlines }}

--
Opskernel at {{ site.url }} ({{ "now" | date: "%a %d %b %Y" }})
You get this mail because you watch {{ job.name }}.
Manage notifications: {{ site.url }}/administration/notifications
)";

nlohmann::json data() {
  nlohmann::json steps = nlohmann::json::array();
  for (int i = 0; i < 20; ++i) {
    nlohmann::json s = {{"name", "step-" + std::to_string(i + 1) + "-copy-and-verify-the-files"},
                        {"outcome", i == 13 ? "warning" : "normal"},
                        {"ms", 100 + i * 37},
                        {"slow", i % 7 == 0}};
    if (i % 4 == 0) s["summary"] = "moved " + std::to_string(i * 1000) + " rows";
    steps.push_back(s);
  }
  return {{"recipient", {{"name", "Ada Lovelace"}}},
          {"job", {{"name", "nightly-backup"}, {"type", "database-backup"}, {"next_at", 1767312000}}},
          {"run",
           {{"id", 4711},
            {"outcome", "warning"},
            {"node", "node-a"},
            {"started_at", 1767225600},
            {"finished_at", "2026-01-01T00:04:12Z"},
            {"duration_ms", 252000},
            {"trigger", "manual"},
            {"reason", "check after upgrade"},
            {"params", {{"database", "main"}, {"compress", true}}},
            {"summary", "20 steps, 1 warning"},
            {"steps", steps}}},
          {"site", {{"url", "https://ops.example.com"}}}};
}

double us_since(Clock::time_point t0, int n) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  const int renders = argc > 1 ? std::atoi(argv[1]) : 20000;
  if (renders < 1) {
    std::fprintf(stderr, "usage: opk_liquid_bench [RENDERS_PER_ROUND]\n");
    return 2;
  }
  const nlohmann::json d = data();
  opk::liquid::Template t;
  auto t0 = Clock::now();
  constexpr int kParses = 2000;
  for (int i = 0; i < kParses; ++i) {
    opk::Status s = opk::liquid::Template::parse(kTemplate, &t);
    if (!s) {
      std::fprintf(stderr, "parse: %s\n", s.message().c_str());
      return 1;
    }
  }
  const double parse_us = us_since(t0, kParses);
  std::string out;
  opk::liquid::RenderOptions options;
  options.now = 1767225600;
  if (opk::Status s = t.render(d, &out, options); !s) {
    std::fprintf(stderr, "render: %s\n", s.message().c_str());
    return 1;
  }
  const int lines = static_cast<int>(std::count(out.begin(), out.end(), '\n'));
  std::printf("template: %zu bytes; output: %zu bytes, %d lines; parse: %.1f us\n", std::string(kTemplate).size(),
              out.size(), lines, parse_us);
  std::vector<double> rounds;
  size_t total = 0;
  for (int round = 0; round < 3; ++round) {
    t0 = Clock::now();
    for (int i = 0; i < renders; ++i) {
      t.render(d, &out, options);
      total += out.size();
    }
    rounds.push_back(us_since(t0, renders));
    std::printf("round %d: %d renders, %.2f us per render\n", round + 1, renders, rounds.back());
  }
  std::sort(rounds.begin(), rounds.end());
  std::printf("render (us per render): min %.2f  median %.2f  max %.2f  (%zu bytes rendered)\n", rounds[0], rounds[1],
              rounds[2], total);
  if (argc > 2) std::fputs(out.c_str(), stdout);
  return 0;
}
