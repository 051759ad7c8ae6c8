// filters_array.cpp -- the array filters. Most read their input as Liquid
// does (input_items: nested arrays flattened, one value as a list of one).
#include <algorithm>
#include <cmath>
#include <set>

#include "internal.h"

namespace opk::liquid::internal {

namespace {

// The input's items; their values borrow from the input.
std::vector<Value> items(FilterEnv& e) {
  e.input = std::move(e.input).shared();
  return input_items(e.input);
}

json to_array(const std::vector<Value>& v) {
  json out = json::array();
  out.get_ref<json::array_t&>().reserve(v.size());
  for (const Value& x : v) out.push_back(*x);
  return out;
}

bool f_join(FilterEnv& e) {
  const std::string glue = e.has_arg(0) ? to_s(e.arg(0)) : " ";
  std::string out;
  bool first = true;
  for (const Value& v : items(e)) {
    if (!first) out += glue;
    first = false;
    append_to_s(*v, out);
    if (out.size() > e.ctx.limits.max_output_bytes) return e.make(std::move(out));  // refused there
  }
  return e.make(std::move(out));
}

bool f_first(FilterEnv& e) {
  const json& in = e.in();
  if (in.is_array()) {
    e.result = in.empty() ? Value() : e.input.child(in.front());
    return true;
  }
  if (in.is_string()) {
    const std::string& s = in.get_ref<const std::string&>();
    return e.make(s.empty() ? std::string() : s.substr(0, char_len(s, 0)));
  }
  if (in.is_object() && !in.empty()) return e.make(json::array({in.begin().key(), in.begin().value()}));
  e.result = Value();
  return true;
}

bool f_last(FilterEnv& e) {
  const json& in = e.in();
  if (in.is_array()) {
    e.result = in.empty() ? Value() : e.input.child(in.back());
    return true;
  }
  if (in.is_string()) {
    const std::string& s = in.get_ref<const std::string&>();
    if (s.empty()) return e.make(std::string());
    size_t i = s.size() - 1;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    return e.make(s.substr(i));
  }
  e.result = Value();
  return true;
}

// The value `v` sorts by: itself, or its property when the filter has one.
const json& sort_key(FilterEnv& e, const Value& v) {
  return e.has_arg(0) ? property(*v, e.arg(0)) : *v;
}

bool f_sort(FilterEnv& e) {
  std::vector<Value> v = items(e);
  // nil sorts last; the rest must be all numbers or all strings.
  bool numbers = false, strings = false, other = false;
  for (const Value& x : v) {
    const json& k = sort_key(e, x);
    numbers = numbers || k.is_number();
    strings = strings || k.is_string();
    other = other || !(k.is_null() || k.is_number() || k.is_string());
  }
  if (other || (numbers && strings)) return e.fail("cannot sort values of different types");
  std::stable_sort(v.begin(), v.end(), [&](const Value& a, const Value& b) {
    const json& ka = sort_key(e, a);
    const json& kb = sort_key(e, b);
    if (ka.is_null() || kb.is_null()) return !ka.is_null() && kb.is_null();
    int r = 0;
    order(ka, kb, &r);
    return r < 0;
  });
  return e.make(to_array(v));
}

int casecmp(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    auto ca = static_cast<unsigned char>(a[i]), cb = static_cast<unsigned char>(b[i]);
    if (ca >= 'A' && ca <= 'Z') ca += 32;
    if (cb >= 'A' && cb <= 'Z') cb += 32;
    if (ca != cb) return ca < cb ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
}

bool f_sort_natural(FilterEnv& e) {
  std::vector<Value> v = items(e);
  std::vector<std::pair<std::string, size_t>> keys;  // to_s of the key, index; nil last
  std::vector<size_t> nils;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& k = sort_key(e, v[i]);
    if (k.is_null())
      nils.push_back(i);
    else
      keys.emplace_back(to_s(k), i);
  }
  std::stable_sort(keys.begin(), keys.end(),
                   [](const auto& a, const auto& b) { return casecmp(a.first, b.first) < 0; });
  json out = json::array();
  for (const auto& [k, i] : keys) out.push_back(*v[i]);
  for (size_t i : nils) out.push_back(*v[i]);
  return e.make(std::move(out));
}

struct JsonLess {
  bool operator()(const json* a, const json* b) const { return *a < *b; }
};

bool f_uniq(FilterEnv& e) {
  std::vector<Value> v = items(e);
  std::set<const json*, JsonLess> seen;
  json out = json::array();
  for (const Value& x : v)
    if (seen.insert(&sort_key(e, x)).second) out.push_back(*x);
  return e.make(std::move(out));
}

bool f_reverse(FilterEnv& e) {
  std::vector<Value> v = items(e);
  std::reverse(v.begin(), v.end());
  return e.make(to_array(v));
}

bool f_compact(FilterEnv& e) {
  json out = json::array();
  for (const Value& x : items(e))
    if (!sort_key(e, x).is_null()) out.push_back(*x);
  return e.make(std::move(out));
}

bool f_map(FilterEnv& e) {
  json out = json::array();
  for (const Value& x : items(e)) out.push_back(property(*x, e.arg(0)));
  return e.make(std::move(out));
}

// where and reject: items whose property is truthy, or equals the second argument.
bool select(FilterEnv& e, bool keep_matches) {
  const bool by_value = e.has_arg(1) && !e.arg(1).is_null();
  json out = json::array();
  for (const Value& x : items(e)) {
    if (!x->is_object()) continue;
    const json& p = property(*x, e.arg(0));
    const bool match = by_value ? equal(p, e.arg(1)) : truthy(p);
    if (match == keep_matches) out.push_back(*x);
  }
  return e.make(std::move(out));
}

bool f_where(FilterEnv& e) {
  return select(e, true);
}
bool f_reject(FilterEnv& e) {
  return select(e, false);
}

bool f_concat(FilterEnv& e) {
  if (!e.arg(0).is_array()) return e.fail("the argument must be an array, not '" + to_s(e.arg(0)) + "'");
  json out = to_array(items(e));
  for (const auto& x : e.arg(0)) out.push_back(x);
  return e.make(std::move(out));
}

bool f_sum(FilterEnv& e) {
  int64_t isum = 0;
  double fsum = 0;
  bool is_float = false;
  int places = 0;
  for (const Value& x : items(e)) {
    const json n = to_number(e.has_arg(0) ? property(*x, e.arg(0)) : *x);
    if (!is_float && n.is_number_integer()) {
      int64_t r = 0;
      if (!__builtin_add_overflow(isum, n.get<int64_t>(), &r)) {
        isum = r;
        continue;
      }
    }
    if (!is_float) fsum = static_cast<double>(isum);
    is_float = true;
    fsum += n.get<double>();
    if (n.is_number_float()) places = std::max(places, decimals(n.get<double>()));
  }
  if (is_float) return e.make(round_decimal(fsum, places));
  return e.make(isum);
}

}  // namespace

void add_array_filters(std::vector<FilterDef>* t) {
  t->insert(t->end(), {
                          {"join", 0, 1, f_join},
                          {"first", 0, 0, f_first},
                          {"last", 0, 0, f_last},
                          {"sort", 0, 1, f_sort},
                          {"sort_natural", 0, 1, f_sort_natural},
                          {"uniq", 0, 1, f_uniq},
                          {"reverse", 0, 0, f_reverse},
                          {"compact", 0, 1, f_compact},
                          {"map", 1, 1, f_map},
                          {"where", 1, 2, f_where},
                          {"reject", 1, 2, f_reject},
                          {"concat", 1, 1, f_concat},
                          {"sum", 0, 1, f_sum},
                      });
}

}  // namespace opk::liquid::internal
