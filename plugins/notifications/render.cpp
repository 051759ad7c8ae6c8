// Notification texts (render.h): the rule's Liquid templates or the defaults
// of the event kind, in English or Swedish.
#include "render.h"

#include <algorithm>
#include <ctime>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <opskernel/liquid.hpp>

namespace opk::notify {
namespace {

struct Default {
  const char* subject;
  const char* body;
};

// The default templates, by locale and kind family ("run", "alert", other).
Default default_for(const std::string& locale, const std::string& kind) {
  const bool sv = locale == "sv";
  if (kind.rfind("run.", 0) == 0) {
    if (sv)
      return {"[{{ event.kind }}] {{ run.job_type }} körning {{ run.id }}: {{ run.status }}",
              "Körning {{ run.id }} av {{ run.job_type }}: {{ event.kind }}\n"
              "Schemalagt jobb: {{ run.scheduled_job_id | default: \"-\" }}\n"
              "Status: {{ run.status }}\n"
              "Sammanfattning: {{ run.summary | default: \"-\" }}\n"
              "Omfång: {{ event.scope }}\n"
              "Tid: {{ event.time }}\n"
              "{{ links.run }}\n"};
    return {"[{{ event.kind }}] {{ run.job_type }} run {{ run.id }}: {{ run.status }}",
            "Run {{ run.id }} of {{ run.job_type }}: {{ event.kind }}\n"
            "Scheduled job: {{ run.scheduled_job_id | default: \"-\" }}\n"
            "Status: {{ run.status }}\n"
            "Summary: {{ run.summary | default: \"-\" }}\n"
            "Scope: {{ event.scope }}\n"
            "Time: {{ event.time }}\n"
            "{{ links.run }}\n"};
  }
  if (kind.rfind("alert.", 0) == 0) {
    if (sv)
      return {"[{{ event.kind }}] {{ alert.severity }}: {{ alert.title }}",
              "Larm {{ alert.id }} från {{ alert.source }} ({{ alert.severity }}): {{ event.kind }}\n"
              "{{ alert.message }}\n"
              "Omfång: {{ event.scope }}\n"
              "Av: {{ change.actor | default: \"-\" }}\n"
              "Tid: {{ event.time }}\n"
              "{{ links.alert }}\n"};
    return {"[{{ event.kind }}] {{ alert.severity }}: {{ alert.title }}",
            "Alert {{ alert.id }} from {{ alert.source }} ({{ alert.severity }}): {{ event.kind }}\n"
            "{{ alert.message }}\n"
            "Scope: {{ event.scope }}\n"
            "By: {{ change.actor | default: \"-\" }}\n"
            "Time: {{ event.time }}\n"
            "{{ links.alert }}\n"};
  }
  if (sv)
    return {"[{{ event.kind }}] {{ event.subject }}",
            "Händelse {{ event.seq }}: {{ event.kind }} om {{ event.subject | default: \"-\" }}\n"
            "Omfång: {{ event.scope }}\nTid: {{ event.time }}\n"};
  return {"[{{ event.kind }}] {{ event.subject }}",
          "Event {{ event.seq }}: {{ event.kind }} about {{ event.subject | default: \"-\" }}\n"
          "Scope: {{ event.scope }}\nTime: {{ event.time }}\n"};
}

std::string iso_time(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status parse_one(std::string_view source, liquid::Template* t, TemplateError* e) {
  liquid::ErrorInfo info;
  Status s = liquid::Template::parse(source, t, {}, &info);
  if (!s) {
    e->line = info.line;
    e->column = info.column;
    e->message = info.message.empty() ? s.message() : info.message;
  }
  return s;
}

// Templates parsed once, by their text: a rule's template edited is another
// text, so the next event renders the new one. Parse errors are kept too
// (the same text fails the same way). Bounded: emptied when full.
struct ParsedTemplate {
  Status status;
  liquid::Template parsed;
  TemplateError error;
};
constexpr size_t kMaxParsedTemplates = 512;
std::mutex g_parsed_mu;
std::unordered_map<std::string, std::shared_ptr<const ParsedTemplate>> g_parsed;  // guarded by g_parsed_mu

std::shared_ptr<const ParsedTemplate> parsed_template(std::string_view source) {
  {
    std::lock_guard lock(g_parsed_mu);
    if (auto it = g_parsed.find(std::string(source)); it != g_parsed.end()) return it->second;
  }
  auto p = std::make_shared<ParsedTemplate>();
  p->status = parse_one(source, &p->parsed, &p->error);
  std::lock_guard lock(g_parsed_mu);
  if (g_parsed.size() >= kMaxParsedTemplates) g_parsed.clear();
  g_parsed.emplace(std::string(source), p);
  return p;
}

Status render_one(std::string_view source, const Json& data, bool html, int64_t now_ms, std::string* out,
                  TemplateError* e) {
  const auto parsed = parsed_template(source);
  if (!parsed->status) {
    e->line = parsed->error.line;
    e->column = parsed->error.column;
    e->message = parsed->error.message;
    return parsed->status;
  }
  const liquid::Template& t = parsed->parsed;
  liquid::RenderOptions options;
  options.escape_html = html;
  options.now = now_ms / 1000;
  liquid::ErrorInfo info;
  Status s = t.render(data, out, options, &info);
  if (!s) {
    e->line = info.line;
    e->column = info.column;
    e->message = info.message.empty() ? s.message() : info.message;
  }
  return s;
}

// Renders the rule's `part` if set, else the default; a failure of the
// rule's own is noted in `m->render_error` and the default used.
std::string part(const std::string& own, const char* fallback, const char* field, const Json& data, bool html,
                 int64_t now_ms, Message* m) {
  std::string out;
  if (!own.empty()) {
    TemplateError e;
    e.field = field;
    if (render_one(own, data, html, now_ms, &out, &e)) return out;
    if (!m->render_error.empty()) m->render_error += "; ";
    m->render_error += e.text();
    out.clear();
  }
  if (fallback == nullptr) return {};
  TemplateError e;
  if (!render_one(fallback, data, html, now_ms, &out, &e)) return std::string(fallback);
  return out;
}

}  // namespace

std::string TemplateError::text() const {
  std::string s = field.empty() ? std::string() : field + ": ";
  if (line > 0) s += "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
  return s + message;
}

std::vector<TemplateError> check_templates(const Templates& t) {
  std::vector<TemplateError> errors;
  const std::pair<const char*, const std::string*> parts[] = {
      {"template.subject", &t.subject}, {"template.body", &t.body}, {"template.html_body", &t.html_body}};
  for (const auto& [field, text] : parts) {
    if (text->empty()) continue;
    TemplateError e;
    e.field = field;
    liquid::Template parsed;
    if (!parse_one(*text, &parsed, &e)) errors.push_back(e);
  }
  return errors;
}

namespace {

std::string json_text_of(const std::string& v) {
  // Most texts here are printable ASCII without quotes or backslashes,
  // which nlohmann writes as they are.
  if (std::all_of(v.begin(), v.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x20 && u < 0x7f && c != '"' && c != '\\';
      })) {
    std::string out;
    out.reserve(v.size() + 2);
    out.push_back('"');
    out += v;
    out.push_back('"');
    return out;
  }
  return Json(v).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Appends `text`, which nlohmann wrote (its UTF-8 is valid), as a JSON
// string escaped as nlohmann escapes one: quotes, backslashes and control
// characters; the rest is copied as it is.
void append_json_text_string(std::string* out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    out->append(text.data() + from, i - from);
    from = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(text.data() + from, text.size() - from);
  out->push_back('"');
}

// The default body of a webhook: {data, scope, seq, subject, timestamp,
// type} as nlohmann writes the object (keys in order, invalid UTF-8
// replaced), from the document written once.
std::string webhook_envelope(const Rendering& r) {
  std::string out;
  out.reserve(r.payload_json.size() + r.event.scope.size() + r.event.subject.size() + r.event.kind.size() + 96);
  out += "{\"data\":";
  out += r.payload_null ? std::string("{}") : r.payload_json;
  out += ",\"scope\":";
  out += json_text_of(r.event.scope);
  out += ",\"seq\":";
  out += std::to_string(r.event.seq);
  out += ",\"subject\":";
  out += json_text_of(r.event.subject);
  out += ",\"timestamp\":";
  out += json_text_of(iso_time(r.event.time_ms));
  out += ",\"type\":";
  out += json_text_of(r.event.kind);
  out += '}';
  return out;
}

}  // namespace

Json template_data(const Event& event, const Rule& rule) {
  Json data = event.payload.is_object() ? event.payload : Json::object();
  data["event"] = {{"seq", event.seq},         {"kind", event.kind},
                   {"time_ms", event.time_ms}, {"time", iso_time(event.time_ms)},
                   {"scope", event.scope},     {"subject", event.subject}};
  data["rule"] = {{"id", rule.id}, {"name", rule.name}, {"group_id", rule.group_id}};
  return data;
}

Rendering rendering_of(Event event) {
  Rendering r;
  r.payload_null = event.payload.is_null();
  r.payload_json = event.payload.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.data = event.payload.is_object() ? std::move(event.payload) : Json::object();
  event.payload = Json();
  r.data["event"] = {{"seq", event.seq},         {"kind", event.kind},
                     {"time_ms", event.time_ms}, {"time", iso_time(event.time_ms)},
                     {"scope", event.scope},     {"subject", event.subject}};
  r.event = std::move(event);
  return r;
}

Message render(const Event& event, const Rule& rule) {
  Rendering r = rendering_of(event);
  return render(r, rule);
}

Message render(Rendering& r, const Rule& rule, bool* envelope) {
  Message m;
  if (envelope) *envelope = false;
  r.data["rule"] = {{"id", rule.id}, {"name", rule.name}, {"group_id", rule.group_id}};
  const Json& data = r.data;
  const Event& event = r.event;
  const Default d = default_for(rule.locale, event.kind);
  m.subject = part(rule.templates.subject, d.subject, "template.subject", data, false, event.time_ms, &m);
  // One line: a subject's line breaks become spaces.
  for (char& c : m.subject)
    if (c == '\r' || c == '\n') c = ' ';
  if (rule.channel == "webhook") {
    m.body = part(rule.templates.body, nullptr, "template.body", data, false, event.time_ms, &m);
    if (m.body.empty()) {
      if (envelope)
        *envelope = true;  // left to the caller
      else
        m.body = webhook_envelope(r);
    }
    m.content_type = "application/json";
    return m;
  }
  m.body = part(rule.templates.body, d.body, "template.body", data, false, event.time_ms, &m);
  m.html_body = part(rule.templates.html_body, nullptr, "template.html_body", data, true, event.time_ms, &m);
  m.content_type = "text/plain";
  return m;
}

std::string event_json_of(const Rendering& r) {
  const Event& e = r.event;
  std::string out;
  out.reserve(r.payload_json.size() + e.kind.size() + e.scope.size() + e.subject.size() + 96);
  out += "{\"kind\":";
  out += json_text_of(e.kind);
  out += ",\"payload\":";
  out += r.payload_json;
  out += ",\"scope\":";
  out += json_text_of(e.scope);
  out += ",\"seq\":";
  out += std::to_string(e.seq);
  out += ",\"subject\":";
  out += json_text_of(e.subject);
  out += ",\"time_ms\":";
  out += std::to_string(e.time_ms);
  out += '}';
  return out;
}

std::string stored_message(const Message& m, bool envelope, const std::string& event_json,
                           const std::string& options_json) {
  std::string out;
  out.reserve((envelope ? 0 : m.body.size()) + event_json.size() + m.subject.size() + m.html_body.size() +
              options_json.size() + 128);
  out += envelope ? "{\"body_of\":\"event\"" : "{\"body\":" + json_text_of(m.body);
  out += ",\"content_type\":";
  out += json_text_of(m.content_type);
  out += ",\"event_json\":";
  append_json_text_string(&out, event_json);
  out += ",\"html_body\":";
  out += json_text_of(m.html_body);
  out += ",\"options\":";
  out += options_json.empty() ? std::string("null") : options_json;
  out += ",\"subject\":";
  out += json_text_of(m.subject);
  out += '}';
  return out;
}

Json load_message(const std::string& text) {
  Json m = Json::parse(text, nullptr, false);
  if (!m.is_object()) return Json::object();
  auto of = m.find("body_of");
  if (of == m.end()) return m;
  const bool from_event = *of == "event";
  m.erase(of);
  if (!from_event || m.contains("body")) return m;
  auto ej = m.find("event_json");
  Json doc = ej != m.end() && ej->is_string() ? Json::parse(ej->get_ref<const std::string&>(), nullptr, false) : Json();
  if (!doc.is_object()) return m;
  Event e;
  e.kind = doc.value("kind", "");
  e.scope = doc.value("scope", "");
  e.subject = doc.value("subject", "");
  e.seq = doc.value("seq", int64_t{0});
  e.time_ms = doc.value("time_ms", int64_t{0});
  if (auto p = doc.find("payload"); p != doc.end()) e.payload = std::move(*p);
  const Rendering r = rendering_of(std::move(e));
  m["body"] = webhook_envelope(r);
  return m;
}

}  // namespace opk::notify
