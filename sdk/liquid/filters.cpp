// filters.cpp -- the filter table, the filters that fit no kind (default,
// date, size, json) and how array filters read their input.
#include <algorithm>

#include "internal.h"

namespace opk::liquid::internal {

namespace {

bool f_default(FilterEnv& e) {
  const json& in = e.in();
  const bool allow_false = truthy(*e.kwargs[0]);
  const bool use = (allow_false ? in.is_null() : !truthy(in)) || is_empty(in);
  if (!use) return e.keep();
  e.result = e.has_arg(0) ? e.args[0] : Value(json(""));
  return true;
}

bool f_date(FilterEnv& e) {
  const std::string format = to_s(e.arg(0));
  if (format.empty()) return e.keep();
  Instant t;
  if (!to_instant(e.in(), e.ctx.now, &t)) return e.keep();
  return e.make(format_time(t, format));
}

bool f_size(FilterEnv& e) {
  const json& in = e.in();
  if (in.is_string()) return e.make(char_count(in.get_ref<const std::string&>()));
  if (in.is_array() || in.is_object()) return e.make(in.size());
  return e.make(0);
}

bool f_json(FilterEnv& e) {
  return e.make(e.in().dump(-1, ' ', false, json::error_handler_t::replace));
}

std::vector<FilterDef> build_table() {
  std::vector<FilterDef> t = {
      {"default", 0, 1, f_default, {"allow_false", nullptr}},
      {"date", 1, 1, f_date},
      {"size", 0, 0, f_size},
      {"json", 0, 0, f_json},
  };
  add_string_filters(&t);
  add_array_filters(&t);
  add_math_filters(&t);
  std::sort(t.begin(), t.end(),
            [](const FilterDef& a, const FilterDef& b) { return std::string_view(a.name) < b.name; });
  return t;
}

void flatten(const Value& v, const json& j, std::vector<Value>* out, int depth) {
  for (const auto& e : j) {
    if (e.is_array() && depth < 64)
      flatten(v, e, out, depth + 1);
    else
      out->push_back(v.child(e));
  }
}

}  // namespace

const FilterDef* find_filter(std::string_view name) {
  static const std::vector<FilterDef> kTable = build_table();
  auto it = std::lower_bound(kTable.begin(), kTable.end(), name,
                             [](const FilterDef& d, std::string_view n) { return std::string_view(d.name) < n; });
  return it != kTable.end() && it->name == name ? &*it : nullptr;
}

std::vector<Value> input_items(const Value& input) {
  std::vector<Value> out;
  const json& j = *input;
  if (j.is_null()) return out;
  if (!j.is_array()) {
    out.push_back(input);
    return out;
  }
  out.reserve(j.size());
  flatten(input, j, &out, 0);
  return out;
}

const json& property(const json& item, const json& name) {
  if (!item.is_object()) return null_json();
  auto it = name.is_string() ? item.find(name.get_ref<const std::string&>()) : item.find(to_s(name));
  return it == item.end() ? null_json() : *it;
}

}  // namespace opk::liquid::internal
