// The alert engine: raise, clear, escalate and full sweeps for sources;
// listing, detail, counts and the audited actions for operators; the
// escalation rules. The visibility rule is built here (view_of) and applied
// by the store inside each read.
#include <opskernel/json.hpp>

#include <algorithm>
#include <atomic>
#include <functional>

#include "alerts/alerts.h"
#include "events/json_text.h"
#include "jobs/run.h"

namespace opk::alerts {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxTitle = 500;
constexpr size_t kMaxMessage = 10000;
constexpr size_t kMaxDetails = 64 * 1024;
constexpr size_t kMaxId = 200;

const std::vector<std::string> kLevels = {"platform", "distributor", "partner", "tenant", "subscription"};
const std::vector<std::string> kStatuses = {"open", "acknowledged", "escalated", "closed"};
const std::vector<std::string> kNotClosed = {"open", "acknowledged", "escalated"};

int level_index(const std::string& kind) {
  auto it = std::find(kLevels.begin(), kLevels.end(), kind);
  return it == kLevels.end() ? -1 : static_cast<int>(it - kLevels.begin());
}

std::string kind_of(const std::string& node) {
  if (node == "platform") return "platform";
  const auto colon = node.find(':');
  return colon == std::string::npos ? std::string() : node.substr(0, colon);
}

bool is_role(const Actor& a, const char* role) {
  return a.role == role;
}

}  // namespace

Status check_text(const char* field, const std::string& text, bool line_breaks) {
  for (unsigned char c : text)
    if ((c < 0x20 && !(line_breaks && (c == '\t' || c == '\n' || c == '\r'))) || c == 0x7f)
      return Status::invalid(std::string(field) + ": contains a control character (U+00" + "0123456789ABCDEF"[c >> 4] +
                             "0123456789ABCDEF"[c & 15] + ")");
  return Status::ok();
}

namespace {

std::string target_of(int64_t id) {
  return "alert:" + std::to_string(id);
}

// A close of `a` at `now` by `by`.
void close_row(store::AlertRow* a, int64_t now, const std::string& by, const std::string& kind,
               const std::string& reason) {
  a->status = "closed";
  a->closed_ms = now;
  a->closed_by = by;
  a->close_kind = kind;
  a->close_reason = reason;
}

// "<sort>~<sort key>~<id>" of the last alert of a page.
std::string cursor_of(const std::string& sort, const store::AlertRow& a) {
  const bool severity = sort.find("severity") != std::string::npos;
  const bool first = sort.find("first_seen") != std::string::npos;
  const int64_t k = severity ? severity_rank(a.severity) : first ? a.first_seen_ms : a.last_seen_ms;
  return sort + "~" + std::to_string(k) + "~" + std::to_string(a.id);
}

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] < '0' || s[k] > '9') return false;
  *out = std::stoll(s);
  return true;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string part = s.substr(pos, comma - pos);
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    if (!part.empty()) out.push_back(part);
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int severity_rank(const std::string& severity) {
  if (severity == "info") return 0;
  if (severity == "warning") return 1;
  if (severity == "critical") return 2;
  return -1;
}

namespace {

// The stored details as they are when they are a JSON object (the engine
// stores only objects it parsed and wrote itself), else {}.
std::string_view details_text(const std::string& text) {
  size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  if (e - b < 2 || text[b] != '{' || text[e - 1] != '}') return "{}";
  return std::string_view(text).substr(b, e - b);
}

}  // namespace

void append_json(const store::AlertRow& a, std::string* out) {
  // Written directly (events::ObjectWriter): the listing writes thousands
  // of these a second, and a JSON value per field, then dumped, cost about
  // three quarters of a page's time.
  events::ObjectWriter w(out);
  w.integer("id", a.id);
  w.text("source", a.source);
  w.text("type", a.type);
  w.text("severity", a.severity);
  w.text("area", a.area);
  w.text("title", a.title);
  w.text("message", a.message);
  w.text("related_type", a.related_type);
  w.text("related_id", a.related_id);
  w.text("scope", a.scope);
  w.boolean("platform_only", a.platform_only);
  w.boolean("custom", a.custom);
  w.raw("details", details_text(a.details_json));
  w.text("status", a.status);
  w.integer("escalation_level", a.escalation_level);
  w.integer("first_seen_ms", a.first_seen_ms);
  w.integer("last_seen_ms", a.last_seen_ms);
  w.integer("occurrences", a.occurrences);
  w.text_or_null("acknowledged_by", a.acknowledged_by);
  w.integer_or_null("acknowledged_ms", a.acknowledged_ms);
  w.text_or_null("closed_by", a.closed_by);
  w.integer_or_null("closed_ms", a.closed_ms);
  w.text_or_null("close_kind", a.close_kind);
  w.text_or_null("close_reason", a.close_reason);
  w.integer_or_null("silenced_until_ms", a.silenced_until_ms);
  w.integer_or_null("previous_id", a.previous_id);
  w.boolean("flapping", a.flapping);
  w.close();
}

std::string to_json(const store::AlertRow& a) {
  std::string out;
  out.reserve(512 + a.message.size() + a.details_json.size());
  append_json(a, &out);
  return out;
}

Engine::Engine(store::Store& store, identity::Identity& identity, Options options)
    : store_(store), identity_(identity), options_(std::move(options)) {}

// ------------------------------------------------------------------ visibility

store::AlertView Engine::view_of(const Actor& actor) {
  store::AlertView v;
  if (is_role(actor, "PlatformAdministrator") || is_role(actor, identity::kSystemRole.c_str())) {
    v.all = true;
    return v;
  }
  v.path = identity_.path(actor.scope);
  if (v.path.empty()) return v;  // an unknown node sees nothing (no levels)
  const std::string own = kind_of(actor.scope);
  auto from = [&](const std::string& first) {
    for (int i = level_index(first); i >= 0 && i < static_cast<int>(kLevels.size()); ++i)
      v.levels.push_back(kLevels[i]);
  };
  if (is_role(actor, "DistributorAdministrator")) {
    from("distributor");
  } else if (is_role(actor, "PartnerAdministrator")) {
    from("partner");
  } else if (is_role(actor, "TenantAdministrator")) {
    from("tenant");
  } else if (is_role(actor, "TenantUser")) {
    v.levels = {"tenant"};
    std::string tenant = actor.scope;
    if (own == "subscription") {
      // The tenant whose subtree holds the subscription: the path's last
      // tenant node.
      const auto at = v.path.rfind("/tenant:");
      if (at != std::string::npos) tenant = v.path.substr(at + 1, v.path.find('/', at + 1) - at - 1);
    }
    v.exact_scope = tenant;
  } else {
    from(own.empty() ? "subscription" : own);
  }
  return v;
}

// ------------------------------------------------------------------ sources

Status Engine::check_raise(const Raise& r, store::AlertRow* a) {
  // Control characters have no place in an alert's texts (a NUL would cut
  // the text where it is stored as C text); the message may break lines.
  struct Field {
    const char* name;
    const std::string* text;
    bool line_breaks;
  };
  const Field fields[] = {{"title", &r.title, false},
                          {"message", &r.message, true},
                          {"area", &r.area, false},
                          {"type", &r.type, false},
                          {"related_type", &r.related_type, false},
                          {"related_id", &r.related_id, false},
                          {"scope", &r.scope, false}};
  for (const auto& f : fields)
    if (Status s = check_text(f.name, *f.text, f.line_breaks); !s) return s;
  if (r.title.empty()) return Status::invalid("title: is missing");
  if (r.title.size() > kMaxTitle)
    return Status::invalid("title: " + std::to_string(r.title.size()) + " bytes is longer than " +
                           std::to_string(kMaxTitle));
  if (r.message.size() > kMaxMessage)
    return Status::invalid("message: " + std::to_string(r.message.size()) + " bytes is longer than " +
                           std::to_string(kMaxMessage));
  if (severity_rank(r.severity) < 0)
    return Status::invalid("severity: '" + r.severity + "' is not info, warning or critical");
  if (r.related_type.empty()) return Status::invalid("related_type: is missing");
  if (r.related_id.empty()) return Status::invalid("related_id: is missing");
  if (r.related_type.size() > kMaxId || r.related_id.size() > kMaxId)
    return Status::invalid(std::string(r.related_type.size() > kMaxId ? "related_type" : "related_id") +
                           ": longer than " + std::to_string(kMaxId) + " bytes");
  if (r.scope.empty()) return Status::invalid("scope: is missing (a hierarchy node such as 'tenant:acme')");
  const std::string path = identity_.path(r.scope);
  if (path.empty()) return Status::invalid("scope: no node '" + r.scope + "'");
  if (!r.details_json.empty()) {
    if (r.details_json.size() > kMaxDetails)
      return Status::invalid("details: " + std::to_string(r.details_json.size()) + " bytes is larger than " +
                             std::to_string(kMaxDetails));
    Json d = Json::parse(r.details_json, nullptr, false);
    if (!d.is_object()) return Status::invalid("details: is not a JSON object");
    a->details_json = d.dump(-1, ' ', false, Json::error_handler_t::replace);
  } else {
    a->details_json = "{}";
  }
  a->severity = r.severity;
  a->title = r.title;
  a->message = r.message;
  a->related_type = r.related_type;
  a->related_id = r.related_id;
  a->scope = r.scope;
  a->scope_level = kind_of(r.scope);
  a->scope_path = path;
  return Status::ok();
}

Status Engine::raise(const SourceInfo& source, const Raise& r, const std::string& actor, store::AlertRow* out) {
  store::AlertRow fresh;
  if (Status s = check_raise(r, &fresh); !s) return s;
  fresh.area = r.area.empty() ? source.area : r.area;
  fresh.type = r.type.empty() ? source.id : r.type;
  const int64_t now = jobs::now_ms();
  std::lock_guard lock(write_mu_);
  store::AlertRow open;
  Status found = store_.find_open_alert(source.id, r.related_type, r.related_id, &open);
  if (!found && found.code() != OPK_ERR_NOT_FOUND) return found;
  std::vector<store::AlertSave> saves(1);
  store::AlertSave& save = saves[0];
  if (found) {
    const bool changed = open.severity != fresh.severity || open.title != fresh.title || open.message != fresh.message;
    if (changed) {
      Json was = {{"severity", open.severity}, {"title", open.title}, {"message", open.message}};
      save.events.push_back(
          {0, 0, now, "updated", actor, "", Json({{"was", was}}).dump(-1, ' ', false, Json::error_handler_t::replace)});
    }
    open.severity = fresh.severity;
    open.title = fresh.title;
    open.message = fresh.message;
    open.area = fresh.area;
    open.type = fresh.type;
    open.details_json = fresh.details_json;
    open.scope = fresh.scope;
    open.scope_level = fresh.scope_level;
    open.scope_path = fresh.scope_path;
    open.last_seen_ms = std::max(open.last_seen_ms, now);
    open.occurrences += 1;
    open.clean_sweeps = 0;
    save.row = std::move(open);
  } else {
    fresh.source = source.id;
    fresh.plugin = source.plugin;
    fresh.platform_only = source.platform_only;
    fresh.first_seen_ms = fresh.last_seen_ms = now;
    auto chain = store_.alert_chain(source.id, r.related_type, r.related_id,
                                    static_cast<size_t>(std::max(options_.flap_threshold, 1)) + 1);
    if (!chain) return chain.status();
    if (!chain.value().empty()) {
      const store::AlertRow& prev = chain.value().front();
      fresh.previous_id = prev.id;
      // Reopenings within the window, this one included.
      int reopened = 1;
      for (const auto& c : chain.value())
        if (c.previous_id != 0 && c.first_seen_ms >= now - options_.flap_window_ms) ++reopened;
      fresh.flapping = options_.flap_threshold > 0 && reopened >= options_.flap_threshold;
      // The closed alert names the one it reopened as (the store fills the id in).
      save.events.push_back({prev.id, 0, now, "reopened_as", actor, "", ""});
    }
    save.events.insert(save.events.begin(), {0, 0, now, "raised", actor, "", "{}"});
    save.row = std::move(fresh);
  }
  if (Status s = save_counted(&saves); !s) return s;
  if (out) *out = saves[0].row;
  return Status::ok();
}

Status Engine::clear(const SourceInfo& source, const std::string& related_type, const std::string& related_id,
                     const std::string& actor, const std::string& reason, store::AlertRow* closed) {
  if (related_type.empty()) return Status::invalid("related_type: is missing");
  if (related_id.empty()) return Status::invalid("related_id: is missing");
  std::lock_guard lock(write_mu_);
  std::vector<store::AlertSave> saves(1);
  Status found = store_.find_open_alert(source.id, related_type, related_id, &saves[0].row);
  if (!found) return found.code() == OPK_ERR_NOT_FOUND ? Status::ok() : found;
  const int64_t now = jobs::now_ms();
  const std::string why = reason.empty() ? "the condition cleared" : reason;
  close_row(&saves[0].row, now, actor, "cleared", why);
  saves[0].events.push_back({0, 0, now, "closed", actor, why, R"({"kind":"cleared"})"});
  if (Status s = save_counted(&saves); !s) return s;
  if (closed) *closed = saves[0].row;
  return Status::ok();
}

Status Engine::escalate(const SourceInfo& source, const std::string& related_type, const std::string& related_id,
                        const std::string& reason, const Actor& actor, store::AlertRow* out) {
  if (related_type.empty()) return Status::invalid("related_type: is missing");
  if (related_id.empty()) return Status::invalid("related_id: is missing");
  store::AlertRow open;
  {
    Status found = store_.find_open_alert(source.id, related_type, related_id, &open);
    if (!found) {
      audit(actor, "alerts.escalate", source.id + ":" + related_type + ":" + related_id, reason, "{}", found);
      return found;
    }
  }
  Actor system = actor;
  return escalate_by_id(system, open.id, reason, out);
}

Status Engine::sweep(const SourceInfo& source, const std::set<int64_t>& raised, int64_t* closed) {
  std::lock_guard lock(write_mu_);
  store::AlertQuery q;
  q.view.all = true;
  q.source = source.id;
  q.statuses = kNotClosed;
  q.limit = 0;
  auto open = store_.list_alerts(q);
  if (!open) return open.status();
  const int64_t now = jobs::now_ms();
  const std::string by = "system:" + source.plugin;
  const uint32_t need = std::max<uint32_t>(source.clean_sweeps, 1);
  std::vector<store::AlertSave> saves;
  int64_t n = 0;
  for (auto a : open.value()) {
    if (raised.count(a.id)) continue;
    a.clean_sweeps += 1;
    store::AlertSave save;
    if (static_cast<uint32_t>(a.clean_sweeps) >= need) {
      const std::string why = "not found by " + std::to_string(need) + " full sweep(s) in a row";
      close_row(&a, now, by, "cleared", why);
      save.events.push_back({0, 0, now, "closed", by, why, R"({"kind":"cleared"})"});
      ++n;
    }
    save.row = std::move(a);
    saves.push_back(std::move(save));
  }
  if (Status s = save_counted(&saves); !s) return s;
  if (closed) *closed = n;
  return Status::ok();
}

Status Engine::save_counted(std::vector<store::AlertSave>* saves) {
  // Counted after the write: an answer read before or during it carries an
  // older count and is not used again.
  Status s = store_.save_alerts(saves);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return s;
}

// ------------------------------------------------------------------ reads

Status Engine::list(const Actor& actor, const ListRequest& r, Page* out) {
  store::AlertQuery q;
  q.view = view_of(actor);
  if (r.status.empty()) {
    q.statuses = kNotClosed;
  } else {
    for (const auto& s : split_list(r.status)) {
      if (std::find(kStatuses.begin(), kStatuses.end(), s) == kStatuses.end())
        return Status::invalid("status: '" + s + "' is not open, acknowledged, escalated or closed");
      q.statuses.push_back(s);
    }
  }
  if (!r.severity.empty() && severity_rank(r.severity) < 0)
    return Status::invalid("severity: '" + r.severity + "' is not info, warning or critical");
  q.severity = r.severity;
  q.area = r.area;
  q.source = r.source;
  q.related_type = r.related_type;
  q.related_id = r.related_id;
  if (!r.scope.empty()) {
    // A node in another branch answers as one that does not exist.
    q.scope_path = identity_.path(r.scope);
    const bool related =
        q.view.all ||
        (!q.view.path.empty() && (q.scope_path.rfind(q.view.path, 0) == 0 || q.view.path.rfind(q.scope_path, 0) == 0));
    if (q.scope_path.empty() || !related) return Status::invalid("scope: no node '" + r.scope + "' within your view");
  }
  q.text = r.q;
  if (r.from_ms < 0) return Status::invalid("from_ms: " + std::to_string(r.from_ms) + " is negative");
  if (r.to_ms < 0) return Status::invalid("to_ms: " + std::to_string(r.to_ms) + " is negative");
  q.from_ms = r.from_ms;
  q.to_ms = r.to_ms;
  static const std::vector<std::string> sorts = {"last_seen",   "-last_seen", "first_seen",
                                                 "-first_seen", "severity",   "-severity"};
  const std::string sort = r.sort.empty() ? "-last_seen" : r.sort;
  if (std::find(sorts.begin(), sorts.end(), sort) == sorts.end())
    return Status::invalid("sort: '" + sort +
                           "' is not last_seen, -last_seen, first_seen, -first_seen, severity or -severity");
  q.descending = sort[0] == '-';
  q.sort = q.descending ? sort.substr(1) : sort;
  if (r.limit < 1 || r.limit > 500)
    return Status::invalid("limit: " + std::to_string(r.limit) + " is out of range 1..500");
  if (!r.cursor.empty()) {
    const auto a = r.cursor.find('~'), b = r.cursor.rfind('~');
    int64_t key = 0, id = 0;
    if (a == std::string::npos || a == b || !parse_int(r.cursor.substr(a + 1, b - a - 1), &key) ||
        !parse_int(r.cursor.substr(b + 1), &id))
      return Status::invalid("cursor: '" + r.cursor + "' is not a cursor this list gave");
    if (r.cursor.substr(0, a) != sort)
      return Status::invalid("cursor: it belongs to sort '" + r.cursor.substr(0, a) + "', not '" + sort + "'");
    q.after = std::make_pair(key, id);
  }
  q.limit = r.limit + 1;  // one more: is there a next page?
  auto rows = store_.list_alerts(q);
  if (!rows) return rows.status();
  out->alerts = std::move(rows).value();
  out->next_cursor.clear();
  if (out->alerts.size() > r.limit) {
    out->alerts.resize(r.limit);
    out->next_cursor = cursor_of(sort, out->alerts.back());
  }
  return Status::ok();
}

Status Engine::get(const Actor& actor, int64_t id, Detail* out) {
  if (Status s = store_.get_alert(id, view_of(actor), &out->alert); !s) return s;
  auto events = store_.alert_events(id);
  if (!events) return events.status();
  out->history = std::move(events).value();
  auto chain = store_.alert_chain(out->alert.source, out->alert.related_type, out->alert.related_id, 100);
  if (!chain) return chain.status();
  out->previous.clear();
  for (const auto& c : chain.value())
    if (c.id < id) out->previous.push_back(c.id);
  return Status::ok();
}

Status Engine::counts(const Actor& actor, Counts* out) {
  auto rows = store_.alert_counts(view_of(actor));
  if (!rows) return rows.status();
  *out = Counts{};
  for (const auto& s : kStatuses) out->by_status[s] = 0;
  for (const char* s : {"info", "warning", "critical"}) out->by_severity[s] = 0;
  out->groups = rows.value();
  for (const auto& c : rows.value()) {
    out->by_status[c.status] += c.count;
    if (c.status == "closed") continue;
    out->by_severity[c.severity] += c.count;
    out->by_source[c.source] += c.count;
    if (c.severity == "critical") out->open_critical += c.count;
    if (c.status == "escalated") out->escalated += c.count;
  }
  return Status::ok();
}

// ------------------------------------------------------------------ actions

void Engine::audit(const Actor& actor, const std::string& action, const std::string& target, const std::string& reason,
                   const std::string& params, const Status& outcome) {
  store::AuditRow a;
  a.time_ms = jobs::now_ms();
  a.actor = actor.user_id.empty() ? "anonymous" : actor.user_id;
  a.role = actor.role;
  a.action = action;
  a.target = target;
  a.reason = reason;
  a.params_json = params.size() > 4096 ? params.substr(0, 4096) : params;
  a.outcome = outcome ? "success" : "refused: " + outcome.message();
  a.source = actor.source;
  store_.audit({a});  // a failed audit write does not undo the action
}

void Engine::audit_refusal(const Actor& actor, const std::string& action, const std::string& target,
                           const std::string& reason, const Status& why) {
  audit(actor, action, target, reason, "{}", why);
}

Status Engine::act(const Actor& actor, const std::string& action, int64_t id, const std::string& reason,
                   const std::function<Status(store::AlertRow*, store::AlertEvent*)>& change, store::AlertRow* out) {
  Status s;
  std::string params = "{}";
  {
    std::lock_guard lock(write_mu_);
    std::vector<store::AlertSave> saves(1);
    s = store_.get_alert(id, view_of(actor), &saves[0].row);
    if (s && saves[0].row.closed())
      s = Status::conflict("alert " + std::to_string(id) + " is closed (" + saves[0].row.close_kind + ")");
    store::AlertEvent e{0, 0, jobs::now_ms(), "", actor.user_id, reason, "{}"};
    if (s) s = change(&saves[0].row, &e);
    if (s && !e.kind.empty()) {
      saves[0].events.push_back(e);
      params = e.details_json;
    }
    if (s && (!e.kind.empty() || action == "alerts.acknowledge")) s = save_counted(&saves);
    if (s && out) *out = saves[0].row;
  }
  audit(actor, action, target_of(id), reason, params, s);
  return s;
}

Status Engine::acknowledge(const Actor& actor, int64_t id, const std::string& reason, store::AlertRow* out) {
  return act(
      actor, "alerts.acknowledge", id, reason,
      [&](store::AlertRow* a, store::AlertEvent* e) {
        if (a->acknowledged_ms != 0) return Status::ok();  // already: nothing to add
        a->acknowledged_by = actor.user_id;
        a->acknowledged_ms = e->time_ms;
        if (a->status == "open") a->status = "acknowledged";
        e->kind = "acknowledged";
        return Status::ok();
      },
      out);
}

Status Engine::close(const Actor& actor, int64_t id, const std::string& reason, store::AlertRow* out) {
  if (reason.empty()) {
    Status s = Status::invalid("reason: a reason is required to close an alert");
    audit(actor, "alerts.close", target_of(id), reason, "{}", s);
    return s;
  }
  return act(
      actor, "alerts.close", id, reason,
      [&](store::AlertRow* a, store::AlertEvent* e) {
        close_row(a, e->time_ms, actor.user_id, "manual", reason);
        e->kind = "closed";
        e->details_json = R"({"kind":"manual"})";
        return Status::ok();
      },
      out);
}

Status Engine::silence(const Actor& actor, int64_t id, int64_t until_ms, const std::string& reason,
                       store::AlertRow* out) {
  if (until_ms <= jobs::now_ms()) {
    Status s = Status::invalid("until_ms: " + std::to_string(until_ms) + " is not in the future");
    audit(actor, "alerts.silence", target_of(id), reason, "{}", s);
    return s;
  }
  return act(
      actor, "alerts.silence", id, reason,
      [&](store::AlertRow* a, store::AlertEvent* e) {
        a->silenced_until_ms = until_ms;
        e->kind = "silenced";
        e->details_json = Json({{"until_ms", until_ms}}).dump();
        return Status::ok();
      },
      out);
}

Status Engine::unsilence(const Actor& actor, int64_t id, store::AlertRow* out) {
  return act(
      actor, "alerts.unsilence", id, "",
      [&](store::AlertRow* a, store::AlertEvent* e) {
        a->silenced_until_ms = 0;
        e->kind = "silenced";
        e->details_json = R"({"until_ms":null})";
        return Status::ok();
      },
      out);
}

Status Engine::escalate_by_id(const Actor& actor, int64_t id, const std::string& reason, store::AlertRow* out) {
  if (reason.empty()) {
    Status s = Status::invalid("reason: a reason is required to escalate an alert");
    audit(actor, "alerts.escalate", target_of(id), reason, "{}", s);
    return s;
  }
  return act(
      actor, "alerts.escalate", id, reason,
      [&](store::AlertRow* a, store::AlertEvent* e) {
        a->escalation_level += 1;
        a->status = "escalated";
        e->kind = "escalated";
        e->details_json = Json({{"level", a->escalation_level}}).dump();
        return Status::ok();
      },
      out);
}

Status Engine::create(const Actor& actor, const Raise& r, store::AlertRow* out) {
  static std::atomic<uint64_t> counter{0};
  Raise req = r;
  if (req.related_type.empty()) req.related_type = "custom";
  if (req.related_id.empty())
    req.related_id = "c" + std::to_string(jobs::now_ms()) + "-" + std::to_string(counter.fetch_add(1) + 1);
  store::AlertRow a;
  Status s = check_raise(req, &a);
  if (!s && s.message().rfind("scope: no node", 0) == 0)
    s = Status::invalid("scope: no node '" + req.scope + "' within your view");  // as one outside the view
  if (s) {
    // The actor may create only what it would then see.
    const store::AlertView v = view_of(actor);
    const bool sees = v.all || (a.scope_path.rfind(v.path, 0) == 0 &&
                                std::find(v.levels.begin(), v.levels.end(), a.scope_level) != v.levels.end() &&
                                (v.exact_scope.empty() || v.exact_scope == a.scope));
    if (!sees) s = Status::invalid("scope: no node '" + req.scope + "' within your view");
  }
  if (s) {
    const int64_t now = jobs::now_ms();
    a.source = "custom";
    a.type = req.type.empty() ? "custom" : req.type;
    a.area = req.area;
    a.custom = true;
    a.first_seen_ms = a.last_seen_ms = now;
    std::lock_guard lock(write_mu_);
    std::vector<store::AlertSave> saves(1);
    saves[0].row = a;
    saves[0].events.push_back({0, 0, now, "raised", actor.user_id, "", R"({"custom":true})"});
    s = save_counted(&saves);
    if (s) a = saves[0].row;
  }
  audit(actor, "alerts.create", s ? target_of(a.id) : "alert:new", "", a.title.empty() ? "{}" : to_json(a), s);
  if (s && out) *out = a;
  return s;
}

// ------------------------------------------------------------------ rules

Status Engine::check_escalations(int64_t now, int64_t* escalated) {
  int64_t n = 0;
  const Actor kernel{"kernel", identity::kSystemRole, "platform", ""};
  for (const auto& rule : options_.rules) {
    std::vector<store::AlertSave> saves;
    {
      std::lock_guard lock(write_mu_);
      store::AlertQuery q;
      q.view.all = true;
      if (rule.source != "*") q.source = rule.source;
      q.severity = rule.severity;
      q.statuses = kNotClosed;
      if (rule.when == "unacknowledged") q.acknowledged = false;
      q.first_seen_before_ms = now - rule.after_ms;
      q.limit = 0;
      auto rows = store_.list_alerts(q);
      if (!rows) return rows.status();
      const std::string mark = "," + rule.name + ",";
      for (auto a : rows.value()) {
        if (a.escalated_rules.find(mark) != std::string::npos) continue;
        a.escalated_rules = (a.escalated_rules.empty() ? "," : a.escalated_rules) + rule.name + ",";
        a.escalation_level += 1;
        a.status = "escalated";
        store::AlertSave save;
        save.events.push_back({0, 0, now, "escalated", "kernel", "escalation rule '" + rule.name + "'",
                               Json({{"level", a.escalation_level}, {"rule", rule.name}}).dump()});
        save.row = std::move(a);
        saves.push_back(std::move(save));
      }
      if (Status s = save_counted(&saves); !s) return s;
    }
    for (const auto& save : saves)
      audit(kernel, "alerts.escalate", target_of(save.row.id), "escalation rule '" + rule.name + "'",
            save.events.front().details_json, Status::ok());
    n += static_cast<int64_t>(saves.size());
  }
  if (escalated) *escalated = n;
  return Status::ok();
}

Status Engine::expire(int64_t now, int64_t* expired) {
  int64_t n = 0;
  // (A cutoff at or before the epoch expires nothing; 0 would mean no bound.)
  if (options_.expire_after_ms > 0 && now - options_.expire_after_ms > 0) {
    const Actor kernel{"kernel", identity::kSystemRole, "platform", ""};
    const std::string why = "not raised again for " + std::to_string(options_.expire_after_ms / 1000) + " s";
    // In batches, so a store with many old alerts is not held by one write.
    for (;;) {
      std::vector<store::AlertSave> saves;
      {
        std::lock_guard lock(write_mu_);
        store::AlertQuery q;
        q.view.all = true;
        q.statuses = kNotClosed;
        q.to_ms = now - options_.expire_after_ms;
        q.limit = 500;
        auto rows = store_.list_alerts(q);
        if (!rows) return rows.status();
        for (auto a : rows.value()) {
          close_row(&a, now, "kernel", "expired", why);
          store::AlertSave save;
          save.events.push_back({0, 0, now, "closed", "kernel", why, R"({"kind":"expired"})"});
          save.row = std::move(a);
          saves.push_back(std::move(save));
        }
        if (saves.empty()) break;
        if (Status s = save_counted(&saves); !s) return s;
      }
      for (const auto& save : saves) audit(kernel, "alerts.expire", target_of(save.row.id), why, "{}", Status::ok());
      n += static_cast<int64_t>(saves.size());
      if (saves.size() < 500) break;
    }
  }
  if (expired) *expired = n;
  return Status::ok();
}

}  // namespace opk::alerts
