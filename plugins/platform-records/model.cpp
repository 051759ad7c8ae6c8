// The kinds of records and the checks of their rows.
#include "model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace opk::records {
namespace {

const char* const kPrefix = "p_platform_records_";

Field f(std::string name, Type type, bool required = true, Json fallback = nullptr) {
  return Field{std::move(name), type, required, {}, std::move(fallback)};
}
Field e(std::string name, std::vector<std::string> values) {
  return Field{std::move(name), Type::kEnum, true, std::move(values), nullptr};
}

std::vector<Kind> make_kinds() {
  std::vector<Kind> k;
  k.push_back({"subscriptions",
               kPrefix + std::string("subscriptions"),
               {f("id", Type::kId), f("tenant", Type::kTenant), f("product", Type::kText),
                e("status", {"active", "suspended", "cancelled"}), f("period_start", Type::kDate),
                f("period_end", Type::kDate, false), f("region", Type::kRegion, false)},
               {"id"},
               Reach::kSubscription});
  k.push_back({"usage",
               kPrefix + std::string("usage"),
               {f("subscription", Type::kSubscription), f("month", Type::kMonth), f("quantity", Type::kNumber),
                f("cost", Type::kNumber)},
               {"subscription", "month"},
               Reach::kSubscription});
  k.push_back({"billing",
               kPrefix + std::string("billing"),
               {f("tenant", Type::kTenant), f("contact", Type::kText), f("email", Type::kEmail),
                f("address", Type::kText, false), f("payment_method", Type::kText, false)},
               {"tenant"},
               Reach::kTenant});
  k.push_back({"invoices",
               kPrefix + std::string("invoices"),
               {f("id", Type::kId), f("tenant", Type::kTenant), f("subscription", Type::kSubscription, false),
                f("amount", Type::kNumber), f("currency", Type::kCurrency), f("due_date", Type::kDate),
                e("status", {"open", "paid", "overdue", "void"})},
               {"id"},
               Reach::kTenant});
  k.push_back({"budgets",
               kPrefix + std::string("budgets"),
               {f("id", Type::kId), f("tenant", Type::kTenant), f("subscription", Type::kSubscription, false),
                f("amount", Type::kNumber), f("warning_percent", Type::kPercent, false, 80),
                f("month_on_month_jump_percent", Type::kNumber, false)},
               {"id"},
               Reach::kTenant});
  k.push_back({"licenses",
               kPrefix + std::string("licenses"),
               {f("id", Type::kId), f("product", Type::kText), f("expires_on", Type::kDate),
                f("renewed_on", Type::kDate, false)},
               {"id"},
               Reach::kPlatform});
  k.push_back({"regions",
               kPrefix + std::string("regions"),
               {f("id", Type::kId), f("name", Type::kText), f("api_url", Type::kUrl), f("identity_url", Type::kUrl),
                f("usage_url", Type::kUrl, false), f("currency", Type::kCurrency, false)},
               {"id"},
               Reach::kPlatform});
  k.push_back({"probes",
               kPrefix + std::string("probes"),
               {f("region", Type::kRegion), e("kind", {"api", "identity"}), f("time_ms", Type::kInteger),
                f("ok", Type::kBool), f("latency_ms", Type::kInteger, false), f("detail", Type::kText, false)},
               {"region", "kind", "time_ms"},
               Reach::kPlatform});
  k.push_back({"billing_lines",
               kPrefix + std::string("billing_lines"),
               {f("subscription", Type::kSubscription), f("month", Type::kMonth), f("tenant", Type::kTenant),
                f("region", Type::kRegion, false), f("quantity", Type::kNumber), f("amount", Type::kNumber),
                f("currency", Type::kCurrency), f("run_id", Type::kInteger, false)},
               {"subscription", "month"},
               Reach::kTenant});
  k.push_back(
      {"commissions",
       kPrefix + std::string("commissions"),
       {f("subscription", Type::kSubscription), f("month", Type::kMonth), e("role", {"partner", "distributor"}),
        f("party", Type::kNode), f("tenant", Type::kTenant), f("percent", Type::kNumber), f("base", Type::kNumber),
        f("amount", Type::kNumber), f("currency", Type::kCurrency), f("run_id", Type::kInteger, false)},
       {"subscription", "month", "role"},
       Reach::kPlatform});
  return k;
}

bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int number(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool valid_date(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  const std::string_view v(s);
  if (!digits(v.substr(0, 4)) || !digits(v.substr(5, 2)) || !digits(v.substr(8, 2))) return false;
  const int y = number(v.substr(0, 4)), m = number(v.substr(5, 2)), d = number(v.substr(8, 2));
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

bool valid_month(const std::string& s) {
  if (s.size() != 7 || s[4] != '-') return false;
  const std::string_view v(s);
  if (!digits(v.substr(0, 4)) || !digits(v.substr(5, 2))) return false;
  const int m = number(v.substr(5, 2));
  return number(v.substr(0, 4)) >= 1 && m >= 1 && m <= 12;
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return false;
  return true;
}

bool valid_url(const std::string& s) {
  size_t rest = 0;
  if (s.rfind("https://", 0) == 0)
    rest = 8;
  else if (s.rfind("http://", 0) == 0)
    rest = 7;
  else
    return false;
  for (unsigned char c : s)
    if (c <= ' ' || c == 0x7f) return false;
  const size_t end = s.find_first_of("/?#", rest);
  const std::string host = s.substr(rest, end == std::string::npos ? std::string::npos : end - rest);
  return !host.empty() && host.front() != ':' && host.front() != '@';
}

bool valid_email(const std::string& s) {
  const size_t at = s.find('@');
  if (at == 0 || at == std::string::npos || s.find('@', at + 1) != std::string::npos) return false;
  const std::string domain = s.substr(at + 1);
  const size_t dot = domain.find('.');
  if (dot == 0 || dot == std::string::npos || domain.back() == '.') return false;
  for (unsigned char c : s)
    if (c <= ' ' || c == 0x7f || c == ',' || c == ';' || c == '<' || c == '>') return false;
  return true;
}

std::string quoted(const Json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return "'" + s + "'";
}

// A number from JSON, or from text when `from_text`; nullopt if neither.
std::optional<double> as_number(const Json& v, bool from_text) {
  if (v.is_number()) return v.get<double>();
  if (!from_text || !v.is_string()) return std::nullopt;
  const std::string s = v.get<std::string>();
  if (s.empty()) return std::nullopt;
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return d;
}

}  // namespace

const std::vector<Kind>& kinds() {
  static const std::vector<Kind> k = make_kinds();
  return k;
}

const Kind* find_kind(std::string_view name) {
  for (const auto& k : kinds())
    if (k.name == name) return &k;
  return nullptr;
}

std::string kind_names() {
  std::string s;
  for (const auto& k : kinds()) s += (s.empty() ? "" : ", ") + k.name;
  return s;
}

const Field* Kind::field(std::string_view n) const {
  for (const auto& x : fields)
    if (x.name == n) return &x;
  return nullptr;
}

std::string Kind::node_of(const Json& row) const {
  switch (reach) {
    case Reach::kPlatform:
      return "platform";
    case Reach::kTenant:
      return row.value("tenant", std::string());
    case Reach::kSubscription: {
      const std::string id = name == "subscriptions" ? row.value("id", std::string()) : row.value("subscription", "");
      return "subscription:" + id;
    }
  }
  return "platform";
}

Json key_of(const Kind& kind, const Json& row) {
  Json k = Json::array();
  for (const auto& name : kind.key) k.push_back(row.contains(name) ? row[name] : Json());
  return k;
}

Status check_value(const Field& field, const Json& value, bool from_text, Json* out) {
  const std::string& n = field.name;
  auto bad = [&](const std::string& what) { return Status::invalid(n + ": " + what); };
  auto text = [&](std::string* s) {
    if (!value.is_string()) return false;
    *s = value.get<std::string>();
    return true;
  };
  std::string s;
  switch (field.type) {
    case Type::kText:
      if (!text(&s) || s.empty()) return bad("expected text, got " + quoted(value));
      if (s.size() > 1000) return bad("at most 1000 bytes, got " + std::to_string(s.size()));
      *out = s;
      return Status::ok();
    case Type::kId:
    case Type::kSubscription:
    case Type::kRegion:
      if (!text(&s) || !valid_id(s))
        return bad("expected an id of letters, digits, '-', '_' and '.' (1-128), got " + quoted(value));
      *out = s;
      return Status::ok();
    case Type::kTenant:
      if (!text(&s) || s.rfind("tenant:", 0) != 0 || !valid_id(s.substr(7)))
        return bad("expected a tenant node \"tenant:<name>\", got " + quoted(value));
      *out = s;
      return Status::ok();
    case Type::kNode: {
      const size_t colon = text(&s) ? s.find(':') : std::string::npos;
      if (colon == std::string::npos || colon == 0 || !valid_id(s.substr(0, colon)) || !valid_id(s.substr(colon + 1)))
        return bad("expected a hierarchy node \"<kind>:<name>\" (partner:p1), got " + quoted(value));
      *out = s;
      return Status::ok();
    }
    case Type::kDate:
      if (!text(&s) || !valid_date(s)) return bad("expected a date YYYY-MM-DD, got " + quoted(value));
      *out = s;
      return Status::ok();
    case Type::kMonth:
      if (!text(&s) || !valid_month(s)) return bad("expected a month YYYY-MM, got " + quoted(value));
      *out = s;
      return Status::ok();
    case Type::kNumber: {
      auto d = as_number(value, from_text);
      if (!d || !std::isfinite(*d)) return bad("expected a number, got " + quoted(value));
      if (*d < 0) return bad("must be 0 or more, got " + quoted(value));
      *out = *d;
      return Status::ok();
    }
    case Type::kInteger:
    case Type::kPercent: {
      auto d = as_number(value, from_text);
      if (!d || !std::isfinite(*d) || std::floor(*d) != *d || std::fabs(*d) > 9.0e15)
        return bad("expected a whole number, got " + quoted(value));
      const auto i = static_cast<int64_t>(*d);
      if (field.type == Type::kPercent && (i < 1 || i > 100)) return bad("must be 1..100, got " + quoted(value));
      if (i < 0) return bad("must be 0 or more, got " + quoted(value));
      *out = i;
      return Status::ok();
    }
    case Type::kEnum: {
      std::string all;
      for (const auto& v : field.values) all += (all.empty() ? "" : ", ") + v;
      if (!text(&s)) return bad("expected one of " + all + ", got " + quoted(value));
      for (const auto& v : field.values)
        if (v == s) {
          *out = s;
          return Status::ok();
        }
      return bad("expected one of " + all + ", got " + quoted(value));
    }
    case Type::kUrl:
      if (!text(&s) || !valid_url(s)) return bad("expected an http:// or https:// URL, got " + quoted(value));
      *out = s;
      return Status::ok();
    case Type::kEmail:
      if (!text(&s) || !valid_email(s)) return bad("expected an e-mail address, got " + quoted(value));
      *out = s;
      return Status::ok();
    case Type::kCurrency:
      if (!text(&s) || s.size() != 3 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        return bad("expected a currency code of three capital letters (EUR), got " + quoted(value));
      *out = s;
      return Status::ok();
    case Type::kBool:
      if (value.is_boolean()) {
        *out = value.get<bool>();
        return Status::ok();
      }
      if (from_text && text(&s) && (s == "true" || s == "false")) {
        *out = s == "true";
        return Status::ok();
      }
      return bad("expected true or false, got " + quoted(value));
  }
  return bad("unknown field type");
}

Json check_row(const Kind& kind, const Json& in, bool from_text, int64_t line, const World* world,
               std::vector<Problem>* problems) {
  const size_t before = problems->size();
  auto problem = [&](const std::string& field, const std::string& what) { problems->push_back({line, field, what}); };
  if (!in.is_object()) {
    problem("", "expected an object of fields, got " + quoted(in));
    return nullptr;
  }
  for (const auto& [name, v] : in.items())
    if (kind.field(name) == nullptr) problem(name, "not a field of " + kind.name);
  Json row = Json::object();
  for (const auto& field : kind.fields) {
    auto it = in.find(field.name);
    // An empty text is no value: a CSV cell cannot tell them apart.
    const bool absent = it == in.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty());
    if (absent) {
      if (field.required)
        problem(field.name, "required");
      else
        row[field.name] = field.fallback;
      continue;
    }
    Json v;
    Status s = check_value(field, *it, from_text, &v);
    if (!s) {
      problem(field.name, s.message().substr(field.name.size() + 2));
      continue;
    }
    row[field.name] = std::move(v);
  }
  if (problems->size() != before) return nullptr;
  if (world == nullptr) return row;

  // References, once every field is well formed.
  const auto str = [&](const char* name) { return row.value(name, std::string()); };
  const std::string hidden = " does not exist or lies outside your scope";
  if (row.contains("tenant") && !world->visible_node(str("tenant")))
    problem("tenant", "'" + str("tenant") + "'" + hidden);
  if (row.contains("party") && row["party"].is_string() && !world->visible_node(str("party")))
    problem("party", "'" + str("party") + "'" + hidden);
  if (kind.name == "subscriptions" && problems->size() == before) {
    const std::string node = "subscription:" + str("id");
    if (!world->visible_node(node) || !world->contains(str("tenant"), node))
      problem("id", "hierarchy node '" + node + "' does not lie under " + str("tenant") + hidden);
  }
  if (kind.name != "subscriptions" && row.contains("subscription") && row["subscription"].is_string()) {
    const std::string sub = str("subscription");
    auto tenant = world->subscription_tenant(sub);
    if (!tenant)
      problem("subscription", "no subscription '" + sub + "' is stored (import subscriptions first)");
    else if (row.contains("tenant") && *tenant != str("tenant"))
      problem("subscription", "subscription '" + sub + "' belongs to " + *tenant + ", not " + str("tenant"));
    else if (!row.contains("tenant") && !world->visible_node("subscription:" + sub))
      problem("subscription", "'subscription:" + sub + "'" + hidden);
  }
  if (row.contains("region") && row["region"].is_string() && !world->region_exists(str("region")))
    problem("region", "no region '" + str("region") + "' is stored (import regions first)");
  if (row.contains("period_end") && row["period_end"].is_string() && str("period_end") < str("period_start"))
    problem("period_end", "'" + str("period_end") + "' is before period_start '" + str("period_start") + "'");
  return problems->size() == before ? row : Json();
}

}  // namespace opk::records
