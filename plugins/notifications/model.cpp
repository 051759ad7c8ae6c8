// Groups and rules: reading, checking, documents and matching (model.h).
#include "model.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include <algorithm>

namespace opk::notify {
namespace {

constexpr size_t kMaxText = 200;            // names and list items
constexpr size_t kMaxDescription = 2000;    // a group's description
constexpr size_t kMaxRecipients = 100;      // per rule
constexpr size_t kMaxTemplate = 64 * 1024;  // per template text
constexpr size_t kMaxListItems = 100;       // kinds and filter lists

Status bad(const std::string& field, const std::string& what) {
  return Status::invalid(field + ": " + what);
}

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// A one-line text of at most `max` bytes; `required` refuses "".
Status text(const Json& body, const std::string& field, bool required, size_t max, std::string* out) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) {
    if (required) return bad(field, "is required");
    return Status::ok();
  }
  if (!it->is_string()) return bad(field, "must be a string");
  std::string v = it->get<std::string>();
  if (required && v.empty()) return bad(field, "must not be empty");
  if (v.size() > max) return bad(field, "is longer than " + std::to_string(max) + " bytes");
  if (max <= kMaxText && has_control(v)) return bad(field, "must be one line without control characters");
  *out = std::move(v);
  return Status::ok();
}

// A list of one-line texts, each checked by `check` (empty: any).
Status text_list(const Json& body, const std::string& field, std::vector<std::string>* out,
                 const std::function<std::string(const std::string&)>& check = {}) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return Status::ok();
  if (!it->is_array()) return bad(field, "must be an array of strings");
  if (it->size() > kMaxListItems) return bad(field, "has more than " + std::to_string(kMaxListItems) + " items");
  std::vector<std::string> v;
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string item_field = field + "[" + std::to_string(i) + "]";
    const Json& item = (*it)[i];
    if (!item.is_string() || item.get<std::string>().empty()) return bad(item_field, "must be a non-empty string");
    const std::string s = item.get<std::string>();
    if (s.size() > kMaxText || has_control(s)) return bad(item_field, "must be one line of at most 200 bytes");
    if (check)
      if (std::string why = check(s); !why.empty()) return bad(item_field, why);
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  }
  *out = std::move(v);
  return Status::ok();
}

std::string mask(const std::string& secret) {
  const std::string prefix = secret.rfind("whsec_", 0) == 0 ? "whsec_" : "";
  return prefix + "\xE2\x80\xA6" + (secret.size() > prefix.size() + 8 ? secret.substr(secret.size() - 4) : "");
}

// `options` with every secret masked.
Json masked(const Json& options) {
  if (!options.is_object()) return options;
  Json out = options;
  for (auto& [key, value] : out.items()) {
    const bool secret_key = key.find("secret") != std::string::npos || key.find("password") != std::string::npos ||
                            key.find("token") != std::string::npos;
    if (!secret_key) continue;
    if (value.is_string()) {
      value = mask(value.get<std::string>());
    } else if (value.is_array()) {
      for (auto& v : value)
        if (v.is_string()) v = mask(v.get<std::string>());
    }
  }
  return out;
}

// The string at `path` ("run", "job_type") of `doc`, or nullopt.
std::optional<std::string> field_of(const Json& doc, const char* object, const char* field) {
  if (!doc.is_object()) return std::nullopt;
  auto o = doc.find(object);
  if (o == doc.end() || !o->is_object()) return std::nullopt;
  auto f = o->find(field);
  if (f == o->end() || !f->is_string()) return std::nullopt;
  return f->get<std::string>();
}

bool listed(const std::vector<std::string>& list, const std::optional<std::string>& value) {
  return value && std::find(list.begin(), list.end(), *value) != list.end();
}

Json recipient_json(const Recipient& r, bool secrets) {
  Json o = {{"to", r.to}};
  if (!r.options.is_null()) o["options"] = secrets ? r.options : masked(r.options);
  return o;
}

Json rule_json(const Rule& r, bool secrets) {
  Json recipients = Json::array();
  for (const auto& x : r.recipients) recipients.push_back(recipient_json(x, secrets));
  Json filter = Json::object();
  if (!r.filter.job_types.empty()) filter["job_types"] = r.filter.job_types;
  if (!r.filter.scheduled_jobs.empty()) filter["scheduled_jobs"] = r.filter.scheduled_jobs;
  if (!r.filter.alert_sources.empty()) filter["alert_sources"] = r.filter.alert_sources;
  if (!r.filter.min_severity.empty()) filter["min_severity"] = r.filter.min_severity;
  if (!r.filter.scope.empty()) filter["scope"] = r.filter.scope;
  Json templates = Json::object();
  if (!r.templates.subject.empty()) templates["subject"] = r.templates.subject;
  if (!r.templates.body.empty()) templates["body"] = r.templates.body;
  if (!r.templates.html_body.empty()) templates["html_body"] = r.templates.html_body;
  return {{"id", r.id},
          {"group_id", r.group_id},
          {"name", r.name},
          {"events", r.kinds},
          {"filter", filter},
          {"channel", r.channel},
          {"recipients", recipients},
          {"template", templates},
          {"locale", r.locale},
          {"enabled", r.enabled},
          {"created_ms", r.created_ms},
          {"updated_ms", r.updated_ms}};
}

}  // namespace

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  const auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && (c == '.' || c == '_' || c == '-'));
  };
  for (size_t i = 0; i < id.size(); ++i)
    if (!ok(id[i], i == 0)) return false;
  return true;
}

bool valid_kind_pattern(const std::string& p) {
  if (p == "*") return true;
  std::string stem = p;
  if (p.size() >= 2 && p.compare(p.size() - 2, 2, ".*") == 0) stem = p.substr(0, p.size() - 2);
  if (stem.empty() || stem.front() == '.' || stem.back() == '.' || stem.find("..") != std::string::npos) return false;
  return std::all_of(stem.begin(), stem.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

bool kind_matches(const std::string& pattern, const std::string& kind) {
  if (pattern == "*") return true;
  if (pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, ".*") == 0)
    return kind.size() > pattern.size() - 1 && kind.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == kind;
}

int severity_rank(const std::string& s) {
  if (s == "info") return 0;
  if (s == "warning") return 1;
  if (s == "critical") return 2;
  return -1;
}

Status parse_group(const Json& body, bool create, Group* out) {
  if (!body.is_object()) return Status::invalid("request: the body must be a JSON object");
  for (const auto& [key, value] : body.items())
    if (key != "id" && key != "name" && key != "scope" && key != "description")
      return bad(key, "is not a field of a group (id, name, scope, description)");
  Group g = *out;
  if (create) {
    if (Status s = text(body, "id", true, 64, &g.id); !s) return s;
    if (!valid_id(g.id))
      return bad("id", "must be lower-case letters, digits, '.', '_' or '-', starting with a letter or digit");
  } else if (body.contains("id") && body["id"] != Json(out->id)) {
    return bad("id", "cannot be changed");
  }
  if (Status s = text(body, "name", create, kMaxText, &g.name); !s) return s;
  if (!create && body.contains("name") && g.name.empty()) return bad("name", "must not be empty");
  if (Status s = text(body, "scope", create, kMaxText, &g.scope); !s) return s;
  if (Status s = text(body, "description", false, kMaxDescription, &g.description); !s) return s;
  *out = std::move(g);
  return Status::ok();
}

Status parse_rule(const Json& body, Rule* out) {
  if (!body.is_object()) return Status::invalid("request: the body must be a JSON object");
  static const std::vector<std::string> fields = {"id",     "group_id", "name",       "events",
                                                  "filter", "channel",  "recipients", "template",
                                                  "locale", "enabled",  "created_ms", "updated_ms"};
  for (const auto& [key, value] : body.items())
    if (std::find(fields.begin(), fields.end(), key) == fields.end())
      return bad(key,
                 "is not a field of a rule (name, events, filter, channel, recipients, template, locale, enabled)");
  Rule r = *out;
  if (Status s = text(body, "name", false, kMaxText, &r.name); !s) return s;
  r.kinds.clear();
  if (Status s = text_list(body, "events", &r.kinds,
                           [](const std::string& p) {
                             return valid_kind_pattern(p) ? std::string()
                                                          : "'" + p +
                                                                "' is not an event kind or pattern (\"run.failed\", "
                                                                "\"run.*\", \"*\")";
                           });
      !s)
    return s;
  if (r.kinds.empty()) return bad("events", "must name at least one event kind (\"run.failed\", \"run.*\", \"*\")");

  r.filter = {};
  if (auto f = body.find("filter"); f != body.end() && !f->is_null()) {
    if (!f->is_object()) return bad("filter", "must be an object");
    for (const auto& [key, value] : f->items())
      if (key != "job_types" && key != "scheduled_jobs" && key != "alert_sources" && key != "min_severity" &&
          key != "scope")
        return bad("filter." + key, "is not a filter (job_types, scheduled_jobs, alert_sources, min_severity, scope)");
    Json prefixed = Json::object();
    for (const auto& [key, value] : f->items()) prefixed["filter." + key] = value;
    if (Status s = text_list(prefixed, "filter.job_types", &r.filter.job_types); !s) return s;
    if (Status s = text_list(prefixed, "filter.scheduled_jobs", &r.filter.scheduled_jobs); !s) return s;
    if (Status s = text_list(prefixed, "filter.alert_sources", &r.filter.alert_sources); !s) return s;
    if (Status s = text(prefixed, "filter.min_severity", false, kMaxText, &r.filter.min_severity); !s) return s;
    if (!r.filter.min_severity.empty() && severity_rank(r.filter.min_severity) < 0)
      return bad("filter.min_severity", "must be info, warning or critical, not '" + r.filter.min_severity + "'");
    if (Status s = text(prefixed, "filter.scope", false, kMaxText, &r.filter.scope); !s) return s;
  }

  if (Status s = text(body, "channel", true, 64, &r.channel); !s) return s;
  if (!valid_id(r.channel)) return bad("channel", "'" + r.channel + "' is not a channel id");

  r.recipients.clear();
  auto rec = body.find("recipients");
  if (rec == body.end() || rec->is_null()) return bad("recipients", "is required (at least one)");
  if (!rec->is_array() || rec->empty()) return bad("recipients", "must be a non-empty array");
  if (rec->size() > kMaxRecipients)
    return bad("recipients", "has more than " + std::to_string(kMaxRecipients) + " recipients");
  for (size_t i = 0; i < rec->size(); ++i) {
    const std::string field = "recipients[" + std::to_string(i) + "]";
    const Json& item = (*rec)[i];
    Recipient x;
    if (item.is_string()) {
      x.to = item.get<std::string>();
    } else if (item.is_object()) {
      for (const auto& [key, value] : item.items())
        if (key != "to" && key != "options")
          return bad(field + "." + key, "is not a field of a recipient (to, options)");
      if (!item.contains("to") || !item["to"].is_string()) return bad(field + ".to", "is required, a string");
      x.to = item["to"].get<std::string>();
      if (item.contains("options") && !item["options"].is_null()) {
        if (!item["options"].is_object()) return bad(field + ".options", "must be an object");
        x.options = item["options"];
      }
    } else {
      return bad(field, "must be a string or {\"to\", \"options\"}");
    }
    if (x.to.empty() || x.to.size() > 2048 || has_control(x.to))
      return bad(field + (item.is_object() ? ".to" : ""), "must be one non-empty line of at most 2048 bytes");
    for (const auto& y : r.recipients)
      if (y.to == x.to) return bad(field, "'" + x.to + "' is listed twice");
    r.recipients.push_back(std::move(x));
  }

  r.templates = {};
  if (auto t = body.find("template"); t != body.end() && !t->is_null()) {
    if (!t->is_object()) return bad("template", "must be an object of subject, body and html_body");
    for (const auto& [key, value] : t->items())
      if (key != "subject" && key != "body" && key != "html_body")
        return bad("template." + key, "is not a template part (subject, body, html_body)");
    Json prefixed = Json::object();
    for (const auto& [key, value] : t->items()) prefixed["template." + key] = value;
    if (Status s = text(prefixed, "template.subject", false, kMaxText * 5, &r.templates.subject); !s) return s;
    if (Status s = text(prefixed, "template.body", false, kMaxTemplate, &r.templates.body); !s) return s;
    if (Status s = text(prefixed, "template.html_body", false, kMaxTemplate, &r.templates.html_body); !s) return s;
  }

  r.locale = "en";
  if (Status s = text(body, "locale", false, 16, &r.locale); !s) return s;
  if (r.locale.empty()) r.locale = "en";
  if (std::find(locales().begin(), locales().end(), r.locale) == locales().end())
    return bad("locale", "must be en or sv, not '" + r.locale + "'");

  r.enabled = true;
  if (auto e = body.find("enabled"); e != body.end() && !e->is_null()) {
    if (!e->is_boolean()) return bad("enabled", "must be true or false");
    r.enabled = e->get<bool>();
  }
  *out = std::move(r);
  return Status::ok();
}

Json to_json(const Group& g) {
  return {{"id", g.id},
          {"name", g.name},
          {"scope", g.scope},
          {"description", g.description},
          {"created_ms", g.created_ms},
          {"updated_ms", g.updated_ms}};
}

Json to_json(const Rule& r) {
  return rule_json(r, false);
}

Json stored_json(const Rule& r) {
  return rule_json(r, true);
}

Status from_stored(const Json& doc, Rule* out) {
  Rule r;
  if (Status s = parse_rule(doc, &r); !s) return Status(OPK_ERR_INTERNAL, "stored rule: " + s.message());
  r.id = doc.value("id", "");
  r.group_id = doc.value("group_id", "");
  r.created_ms = doc.value("created_ms", int64_t{0});
  r.updated_ms = doc.value("updated_ms", int64_t{0});
  *out = std::move(r);
  return Status::ok();
}

bool matches(const Rule& rule, const std::string& group_scope, const Event& event, const Contains& contains) {
  if (!rule.enabled) return false;
  if (std::none_of(rule.kinds.begin(), rule.kinds.end(),
                   [&](const std::string& p) { return kind_matches(p, event.kind); }))
    return false;
  const Filter& f = rule.filter;
  if (!f.job_types.empty() && !listed(f.job_types, field_of(event.payload, "run", "job_type"))) return false;
  if (!f.scheduled_jobs.empty() && !listed(f.scheduled_jobs, field_of(event.payload, "run", "scheduled_job_id")))
    return false;
  if (!f.alert_sources.empty() && !listed(f.alert_sources, field_of(event.payload, "alert", "source"))) return false;
  if (!f.min_severity.empty()) {
    const auto severity = field_of(event.payload, "alert", "severity");
    if (!severity || severity_rank(*severity) < severity_rank(f.min_severity)) return false;
  }
  const std::string& scope = f.scope.empty() ? group_scope : f.scope;
  const std::string node = event.scope.empty() ? "platform" : event.scope;
  return contains && contains(scope.empty() ? "platform" : scope, node);
}

std::string Bindings::group_for_run(const std::string& job_type, const std::string& scheduled_job) const {
  if (!scheduled_job.empty())
    if (auto it = scheduled_job_groups.find(scheduled_job); it != scheduled_job_groups.end()) return it->second;
  if (auto it = job_type_groups.find(job_type); it != job_type_groups.end()) return it->second;
  return default_group;
}

bool Bindings::bound(const std::string& group) const {
  if (group == default_group) return true;
  for (const auto& [k, g] : job_type_groups)
    if (g == group) return true;
  for (const auto& [k, g] : scheduled_job_groups)
    if (g == group) return true;
  return false;
}

bool group_applies(const Bindings& bindings, const std::string& group, const Event& event) {
  if (!bindings.bound(group)) return true;
  const auto job_type = field_of(event.payload, "run", "job_type");
  if (event.kind.rfind("run.", 0) != 0 || !job_type) return false;
  return bindings.group_for_run(*job_type, field_of(event.payload, "run", "scheduled_job_id").value_or("")) == group;
}

std::optional<Rule> report_rule(const std::string& scheduled_job, const std::string& addresses,
                                const std::string& locale) {
  Rule r;
  r.id = "report:" + scheduled_job;
  r.name = "Report of " + scheduled_job;
  r.kinds = {"run.completed", "run.warning", "run.failed", "run.cancelled", "run.timed_out"};
  r.filter.scheduled_jobs = {scheduled_job};
  r.channel = "email";
  r.locale = std::find(locales().begin(), locales().end(), locale) != locales().end() ? locale : "en";
  size_t from = 0;
  while (from <= addresses.size()) {
    size_t end = addresses.find_first_of(",;", from);
    if (end == std::string::npos) end = addresses.size();
    std::string a = addresses.substr(from, end - from);
    a.erase(0, a.find_first_not_of(" \t"));
    a.erase(a.find_last_not_of(" \t") + 1);
    if (!a.empty() &&
        std::none_of(r.recipients.begin(), r.recipients.end(), [&](const Recipient& x) { return x.to == a; }))
      r.recipients.push_back({a, nullptr});
    from = end + 1;
  }
  if (r.recipients.empty()) return std::nullopt;
  return r;
}

std::string delivery_id(const std::string& rule_id, int64_t event_seq, const std::string& channel,
                        const std::string& recipient) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  const std::string key = rule_id + '\n' + std::to_string(event_seq) + '\n' + channel + '\n' + recipient;
  sha.update(key.data(), static_cast<unsigned>(key.size()));
  return "msg_" + Poco::DigestEngine::digestToHex(sha.digest()).substr(0, 32);
}

std::string endpoint_id(const std::string& channel, const std::string& recipient) {
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  const std::string key = channel + '\n' + recipient;
  sha.update(key.data(), static_cast<unsigned>(key.size()));
  return "ep_" + Poco::DigestEngine::digestToHex(sha.digest()).substr(0, 24);
}

int64_t retry_delay_ms(const std::vector<int64_t>& schedule, int64_t attempt, double jitter, double unit,
                       int64_t retry_after_ms) {
  if (attempt < 1 || attempt >= static_cast<int64_t>(schedule.size())) return -1;
  const double base = static_cast<double>(schedule[static_cast<size_t>(attempt)]);
  const double scaled = base * (1.0 - jitter + 2.0 * jitter * unit);
  return std::max<int64_t>(static_cast<int64_t>(scaled), std::max<int64_t>(0, retry_after_ms));
}

}  // namespace opk::notify
