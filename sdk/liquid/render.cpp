// render.cpp -- Template, and rendering: the nodes, the expressions and the
// lookups, with every limit counted as the render goes.
#include <chrono>
#include <cstdint>
#include <vector>

#include "internal.h"

namespace opk::liquid {

using internal::Body;

struct Template::Impl {
  Body root;
  Limits limits;
};

Template::Template() = default;
Template::~Template() = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

namespace {

opk::Status located(const ErrorInfo& e, ErrorInfo* out) {
  if (out) *out = e;
  return opk::Status::invalid("line " + std::to_string(e.line) + ", column " + std::to_string(e.column) + ": " +
                              e.message);
}

const Limits& default_limits() {
  static const Limits kLimits;
  return kLimits;
}

}  // namespace

opk::Status Template::parse(std::string_view source, Template* out, const Limits& limits, ErrorInfo* error) {
  auto impl = std::make_shared<Impl>();
  impl->limits = limits;
  ErrorInfo e;
  if (!internal::parse_template(source, limits, &impl->root, &e)) return located(e, error);
  out->impl_ = std::move(impl);
  return opk::Status::ok();
}

opk::Status Template::render(const nlohmann::json& data, std::string* out, const RenderOptions& options,
                             ErrorInfo* error) const {
  out->clear();
  if (!data.is_null() && !data.is_object())
    return opk::Status::invalid(std::string("the data must be a JSON object, not ") + data.type_name());
  if (!impl_) return opk::Status::ok();
  internal::Ctx c(data, options, impl_->limits);
  std::string text;
  if (!internal::render_body(impl_->root, c, text)) return located(c.error, error);
  *out = std::move(text);
  return opk::Status::ok();
}

const Limits& Template::limits() const {
  return impl_ ? impl_->limits : default_limits();
}

}  // namespace opk::liquid

namespace opk::liquid::internal {

// --- Context -----------------------------------------------------------------

Ctx::Ctx(const json& d, const RenderOptions& o, const Limits& l) : data(d), options(o), limits(l) {
  now = o.now ? *o.now
              : std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count();
}

bool Ctx::fail(Pos pos, std::string message) {
  if (!failed) {
    failed = true;
    error = ErrorInfo{pos.line, pos.column, std::move(message)};
  }
  return false;
}

bool Ctx::step(Pos pos, int64_t n) {
  steps += n;
  if (steps <= limits.max_steps) return true;
  return fail(pos, "the render took more than max_steps (" + std::to_string(limits.max_steps) + ")");
}

bool Ctx::write(Pos pos, std::string_view text, std::string& out) {
  if (out.size() + text.size() > limits.max_output_bytes)
    return fail(pos, "the output is larger than max_output_bytes (" + std::to_string(limits.max_output_bytes) + ")");
  out.append(text);
  return true;
}

bool Ctx::made(Pos pos, const json& v) {
  if (v.is_string() || v.is_array() || v.is_object()) made_bytes += approx_bytes(v);
  if (made_bytes <= limits.max_memory_bytes) return true;
  return fail(pos,
              "the render made more than max_memory_bytes (" + std::to_string(limits.max_memory_bytes) + ") of values");
}

namespace {

json loop_object(const Ctx& c, size_t level);

// forloop.<key> of the loop at `level`; false if it has no such member.
bool loop_member(const Ctx& c, size_t level, std::string_view key, json* out) {
  const Ctx::Loop& l = c.loops[level];
  if (key == "index")
    *out = l.index0 + 1;
  else if (key == "index0")
    *out = l.index0;
  else if (key == "rindex")
    *out = l.length - l.index0;
  else if (key == "rindex0")
    *out = l.length - l.index0 - 1;
  else if (key == "first")
    *out = l.index0 == 0;
  else if (key == "last")
    *out = l.index0 == l.length - 1;
  else if (key == "length")
    *out = l.length;
  else if (key == "name")
    *out = std::string(l.name);
  else if (key == "parentloop")
    *out = level == 0 ? json() : loop_object(c, level - 1);
  else
    return false;
  return true;
}

json loop_object(const Ctx& c, size_t level) {
  json o = json::object();
  for (const char* k : {"index", "index0", "rindex", "rindex0", "first", "last", "length", "name", "parentloop"})
    loop_member(c, level, k, &o[k]);
  return o;
}

}  // namespace

bool Ctx::find(std::string_view name, Value* out) const {
  for (auto it = locals.rbegin(); it != locals.rend(); ++it) {
    if (it->name == name) {
      *out = it->value;
      return true;
    }
  }
  if (name == "forloop" && !loops.empty()) {
    *out = Value(loop_object(*this, loops.size() - 1));
    return true;
  }
  if (auto it = assigns.find(name); it != assigns.end()) {
    *out = it->second;
    return true;
  }
  if (auto it = counters.find(name); it != counters.end()) {
    *out = Value(json(it->second));
    return true;
  }
  if (data.is_object()) {
    if (auto it = data.find(name); it != data.end()) {
      *out = Value::borrow(*it);
      return true;
    }
  }
  return false;
}

// --- Expressions -------------------------------------------------------------

namespace {

// The steps reading `v` takes: a string's bytes / 64, an array's or object's items.
int64_t read_cost(const json& v) {
  if (v.is_string()) return static_cast<int64_t>(v.get_ref<const std::string&>().size() / 64);
  if (v.is_array() || v.is_object()) return static_cast<int64_t>(v.size());
  return 0;
}

}  // namespace

bool Literal::eval(Ctx&, Value* out) const {
  *out = Value::borrow(value);
  return true;
}

bool RangeExpr::bounds(Ctx& c, int64_t* from_out, int64_t* to_out) const {
  Value a, b;
  if (!from->eval(c, &a) || !to->eval(c, &b)) return false;
  // Liquid reads a bound with to_integer; nil is 0 there.
  if (a->is_null()) a = Value(json(0));
  if (b->is_null()) b = Value(json(0));
  if (!to_integer(*a, from_out)) return c.fail(from->pos, "a range's start must be an integer, not " + to_s(*a));
  if (!to_integer(*b, to_out)) return c.fail(to->pos, "a range's end must be an integer, not " + to_s(*b));
  return true;
}

bool RangeExpr::eval(Ctx& c, Value* out) const {
  int64_t a = 0, b = 0;
  if (!bounds(c, &a, &b)) return false;
  json arr = json::array();
  if (b >= a) {
    const uint64_t n = static_cast<uint64_t>(b) - static_cast<uint64_t>(a) + 1;
    if (n > static_cast<uint64_t>(c.limits.max_loop_iterations))
      return c.fail(pos, "the range (" + std::to_string(a) + ".." + std::to_string(b) + ") has more than " +
                             std::to_string(c.limits.max_loop_iterations) + " items (max_loop_iterations)");
    arr.get_ref<json::array_t&>().reserve(n);
    for (int64_t i = a;; ++i) {
      arr.push_back(i);
      if (i == b) break;
    }
  }
  if (!c.made(pos, arr)) return false;
  *out = Value(std::move(arr));
  return true;
}

namespace {

bool undefined(Ctx& c, Pos pos, std::string_view name, Value* out) {
  if (c.options.strict_variables) return c.fail(pos, "undefined variable '" + std::string(name) + "'");
  *out = Value();
  return true;
}

// One step of a lookup: `key` (a string or an integer) in `cur`.
bool lookup_step(Ctx& c, const Lookup::Segment& seg, const json& key, Value* cur) {
  const json& obj = **cur;
  if (obj.is_object() && key.is_string()) {
    if (auto it = obj.find(key.get_ref<const std::string&>()); it != obj.end()) {
      *cur = cur->child(*it);
      return true;
    }
  } else if (obj.is_array() && key.is_number_integer()) {
    int64_t i = 0;
    to_integer(key, &i);
    const auto n = static_cast<int64_t>(obj.size());
    if (i < 0) i += n;
    *cur = (i >= 0 && i < n) ? cur->child(obj[static_cast<size_t>(i)]) : Value();
    return true;
  }
  if (seg.command) {
    if (seg.key == "size") {
      if (obj.is_string()) {
        *cur = Value(json(char_count(obj.get_ref<const std::string&>())));
        return true;
      }
      if (obj.is_array() || obj.is_object()) {
        *cur = Value(json(obj.size()));
        return true;
      }
    } else if (obj.is_array()) {
      *cur = obj.empty() ? Value() : cur->child(seg.key == "first" ? obj.front() : obj.back());
      return true;
    } else if (obj.is_string()) {
      const std::string& s = obj.get_ref<const std::string&>();
      if (s.empty()) {
        *cur = Value(json(""));
      } else if (seg.key == "first") {
        *cur = Value(json(s.substr(0, char_len(s, 0))));
      } else {
        size_t i = s.size() - 1;
        while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
        *cur = Value(json(s.substr(i)));
      }
      return true;
    } else if (obj.is_object() && seg.key == "first" && !obj.empty()) {
      *cur = Value(json::array({obj.begin().key(), obj.begin().value()}));
      return true;
    }
  }
  return undefined(c, seg.pos, key.is_string() ? key.get_ref<const std::string&>() : to_s(key), cur);
}

}  // namespace

bool Lookup::eval(Ctx& c, Value* out) const {
  c.steps += static_cast<int64_t>(path.size());  // checked at the next node or filter
  Value cur;
  size_t first = 0;
  if (root_expr) {
    Value name;
    if (!root_expr->eval(c, &name)) return false;
    const std::string n = to_s(*name);
    if (!c.find(n, &cur)) return undefined(c, pos, n, out);
  } else if (root == "forloop" && !c.loops.empty() && !(c.locals.size() && c.locals.back().name == "forloop")) {
    // forloop.index and its siblings without making the whole object.
    size_t level = c.loops.size() - 1;
    while (first < path.size() && path[first].kind == Segment::kKey && path[first].key == "parentloop" && level > 0) {
      --level;
      ++first;
    }
    json v;
    if (first < path.size() && path[first].kind == Segment::kKey && loop_member(c, level, path[first].key, &v)) {
      cur = Value(std::move(v));
      ++first;
    } else {
      cur = Value(loop_object(c, level));
    }
  } else if (!c.find(root, &cur)) {
    return undefined(c, pos, root, out);
  }
  for (size_t i = first; i < path.size(); ++i) {
    const Segment& seg = path[i];
    switch (seg.kind) {
      case Segment::kKey: {
        const json& obj = *cur;
        // The common case, a member of an object, without making a key.
        if (obj.is_object()) {
          if (auto it = obj.find(seg.key); it != obj.end()) {
            cur = cur.child(*it);
            continue;
          }
        }
        if (!lookup_step(c, seg, json(seg.key), &cur)) return false;
        break;
      }
      case Segment::kIndex:
        if (!lookup_step(c, seg, json(seg.index), &cur)) return false;
        break;
      case Segment::kExpr: {
        Value k;
        if (!seg.expr->eval(c, &k)) return false;
        if (!lookup_step(c, seg, *k, &cur)) return false;
        break;
      }
    }
    if (cur->is_null() && i + 1 < path.size()) {
      // Nothing further down nil.
      return undefined(c, path[i + 1].pos, path[i + 1].kind == Segment::kKey ? path[i + 1].key : "[]", out);
    }
  }
  *out = std::move(cur);
  return true;
}

bool Filtered::eval(Ctx& c, Value* out) const {
  Value v;
  if (!base->eval(c, &v)) return false;
  for (const FilterCall& f : filters) {
    FilterEnv e{c, f};
    e.input = std::move(v);
    for (const auto& a : f.args)
      if (!a->eval(c, &e.args[e.nargs++])) return false;
    for (const auto& [name, expr] : f.kwargs) {
      for (int k = 0; k < 2; ++k)
        if (f.def->kwargs[k] && name == f.def->kwargs[k] && !expr->eval(c, &e.kwargs[k])) return false;
    }
    if (!c.step(f.pos, 1 + read_cost(*e.input))) return false;
    if (!f.def->fn(e)) return false;
    v = std::move(e.result);
  }
  *out = std::move(v);
  return true;
}

bool FilterEnv::make(json v) {
  if (v.is_string() && v.get_ref<const std::string&>().size() > ctx.limits.max_output_bytes)
    return fail("makes a string longer than max_output_bytes (" + std::to_string(ctx.limits.max_output_bytes) + ")");
  if (v.is_array() && static_cast<int64_t>(v.size()) > ctx.limits.max_loop_iterations)
    return fail("makes an array of more than " + std::to_string(ctx.limits.max_loop_iterations) +
                " items (max_loop_iterations)");
  if (v.is_string() || v.is_array() || v.is_object()) ctx.made_bytes += approx_bytes(v);
  if (ctx.made_bytes > ctx.limits.max_memory_bytes)
    return fail("the render made more than max_memory_bytes (" + std::to_string(ctx.limits.max_memory_bytes) +
                ") of values");
  result = Value(std::move(v));
  return true;
}

bool FilterEnv::fail(const std::string& message) {
  return ctx.fail(call.pos, std::string(call.def->name) + ": " + message);
}

namespace {

bool compare(Ctx& c, const Condition::Term& t, const json& a, const json& b, bool* out) {
  if (!c.step(t.pos, read_cost(a))) return false;
  switch (t.op) {
    case Condition::kEq:
    case Condition::kNe: {
      bool eq;
      if (t.right_kind == Literal::kEmpty)
        eq = is_empty(a);
      else if (t.right_kind == Literal::kBlank)
        eq = is_blank(a);
      else if (t.left_kind == Literal::kEmpty)
        eq = is_empty(b);
      else if (t.left_kind == Literal::kBlank)
        eq = is_blank(b);
      else
        eq = equal(a, b);
      *out = t.op == Condition::kEq ? eq : !eq;
      return true;
    }
    case Condition::kContains:
      if (a.is_string()) {
        *out = !b.is_null() && a.get_ref<const std::string&>().find(to_s(b)) != std::string::npos;
      } else if (a.is_array()) {
        *out = false;
        for (const auto& e : a)
          if (equal(e, b)) {
            *out = true;
            break;
          }
      } else if (a.is_object()) {
        *out = b.is_string() && a.contains(b.get_ref<const std::string&>());
      } else {
        *out = false;
      }
      return true;
    default: {
      int r = 0;
      if (!order(a, b, &r)) {
        if ((a.is_string() && b.is_number()) || (a.is_number() && b.is_string()))
          return c.fail(t.pos, std::string("cannot compare ") + (a.is_string() ? "a string" : "a number") + " with " +
                                   (b.is_string() ? "a string" : "a number"));
        *out = false;  // nil, booleans, arrays: never ordered
        return true;
      }
      *out = t.op == Condition::kLt ? r < 0 : t.op == Condition::kGt ? r > 0 : t.op == Condition::kLe ? r <= 0 : r >= 0;
      return true;
    }
  }
}

}  // namespace

bool Condition::eval(Ctx& c, bool* out) const {
  for (size_t i = 0; i < terms.size(); ++i) {
    const Term& t = terms[i];
    ++c.steps;  // checked at the next node or filter
    Value a;
    if (!t.left->eval(c, &a)) return false;
    bool r = false;
    if (t.op == kNone) {
      r = truthy(*a);
    } else {
      Value b;
      if (!t.right->eval(c, &b)) return false;
      if (!compare(c, t, *a, *b, &r)) return false;
    }
    // a or b and c == a or (b and c): each term decides or passes on.
    if (i + 1 == terms.size() || (t.and_next && !r) || (!t.and_next && r)) {
      *out = r;
      return true;
    }
  }
  *out = false;
  return true;
}

// --- Nodes -------------------------------------------------------------------

bool render_body(const Body& body, Ctx& c, std::string& out) {
  for (const auto& n : body) {
    if (!c.step(n->pos) || !n->render(c, out)) return false;
    if (c.interrupt != Ctx::kNone) return true;
  }
  return true;
}

bool body_blank(const Body& body) {
  for (const auto& n : body)
    if (!n->blank()) return false;
  return true;
}

void drop_text(Body* body) {
  std::erase_if(*body, [](const NodePtr& n) { return n->is_text(); });
}

bool TextNode::render(Ctx& c, std::string& out) const {
  return c.write(pos, text, out);
}

bool TextNode::blank() const {
  if (raw) return text.empty();
  for (char ch : text)
    if (!is_space(ch)) return false;
  return true;
}

bool OutputNode::render(Ctx& c, std::string& out) const {
  Value v;
  if (!expr.eval(c, &v)) return false;
  const json& j = *v;
  bool escape = c.options.escape_html && !escaped;
  if (escape && !plain_var.empty() && c.captured.count(plain_var)) {
    // A capture's own outputs were escaped as it ran, unless a loop
    // variable of the same name hides it.
    bool local = false;
    for (const auto& l : c.locals) local = local || l.name == plain_var;
    escape = local;
  }
  if (j.is_string() && !escape) return c.write(pos, j.get_ref<const std::string&>(), out);
  std::string s;
  append_output(j, s);
  if (!escape) return c.write(pos, s, out);
  std::string e;
  append_escaped(s, e);
  return c.write(pos, e, out);
}

bool IfNode::render(Ctx& c, std::string& out) const {
  for (const Branch& b : branches) {
    bool take = true;
    if (!b.is_else) {
      if (!b.cond.eval(c, &take)) return false;
      if (b.negate) take = !take;
    }
    if (take) return render_body(b.body, c, out);
  }
  return true;
}

bool IfNode::blank() const {
  for (const Branch& b : branches)
    if (!body_blank(b.body)) return false;
  return true;
}

bool CaseNode::render(Ctx& c, std::string& out) const {
  Value subject_value;
  if (!subject->eval(c, &subject_value)) return false;
  const json& s = *subject_value;
  bool matched = false;
  for (const Clause& cl : clauses) {
    bool hit = false;
    if (cl.is_else) {
      hit = !matched;
    } else {
      for (size_t i = 0; i < cl.values.size() && !hit; ++i) {
        Value v;
        if (!c.step(pos, 1 + read_cost(s)) || !cl.values[i]->eval(c, &v)) return false;
        hit = cl.kinds[i] == Literal::kEmpty   ? is_empty(s)
              : cl.kinds[i] == Literal::kBlank ? is_blank(s)
                                               : equal(s, *v);
      }
      matched = matched || hit;
    }
    if (hit) {
      if (!render_body(cl.body, c, out)) return false;
      if (c.interrupt != Ctx::kNone) return true;
    }
  }
  return true;
}

bool CaseNode::blank() const {
  for (const Clause& cl : clauses)
    if (!body_blank(cl.body)) return false;
  return true;
}

bool ForNode::blank() const {
  return body_blank(body) && body_blank(else_body);
}

bool ForNode::render(Ctx& c, std::string& out) const {
  Value coll;
  int64_t range_from = 0, total = 0;
  if (range) {
    int64_t to = 0;
    if (!range->bounds(c, &range_from, &to)) return false;
    if (to >= range_from) {
      const uint64_t n = static_cast<uint64_t>(to) - static_cast<uint64_t>(range_from) + 1;
      total = (n == 0 || n > static_cast<uint64_t>(INT64_MAX)) ? INT64_MAX : static_cast<int64_t>(n);
    }
  } else {
    if (!collection->eval(c, &coll)) return false;
    coll = std::move(coll).shared();
    const json& j = *coll;
    total = j.is_array() || j.is_object()                                 ? static_cast<int64_t>(j.size())
            : (j.is_string() && !j.get_ref<const std::string&>().empty()) ? 1
                                                                          : 0;
  }
  int64_t from = 0;
  if (offset_continue) {
    if (auto it = c.for_offsets.find(name); it != c.for_offsets.end()) from = it->second;
  } else if (offset) {
    Value v;
    if (!offset->eval(c, &v)) return false;
    if (!v->is_null() && !to_integer(*v, &from))
      return c.fail(offset->pos, "offset must be an integer, not " + to_s(*v));
  }
  int64_t begin = from < 0 ? 0 : from, end = total;
  if (limit) {
    Value v;
    if (!limit->eval(c, &v)) return false;
    int64_t n = 0;
    if (!v->is_null()) {
      if (!to_integer(*v, &n)) return c.fail(limit->pos, "limit must be an integer, not " + to_s(*v));
      const int64_t to = (n > 0 && from > INT64_MAX - n) ? INT64_MAX : from + n;
      if (to < end) end = to;
    }
  }
  const int64_t length = end > begin ? end - begin : 0;
  c.for_offsets[name] = from + length;
  if (length == 0) return render_body(else_body, c, out);

  c.loops.push_back(Ctx::Loop{name, 0, length});
  c.locals.push_back(Ctx::Local{var, Value()});
  struct Pop {
    Ctx& c;
    ~Pop() {
      c.loops.pop_back();
      c.locals.pop_back();
    }
  } pop{c};
  const json& j = *coll;
  std::vector<json::const_iterator> members;  // an object's, in order
  if (j.is_object()) {
    members.reserve(j.size());
    for (auto it = j.begin(); it != j.end(); ++it) members.push_back(it);
  }
  for (int64_t k = 0; k < length; ++k) {
    if (++c.iterations > c.limits.max_loop_iterations)
      return c.fail(pos, "for loops ran more than max_loop_iterations (" +
                             std::to_string(c.limits.max_loop_iterations) + ") times");
    const int64_t idx = reversed ? end - 1 - k : begin + k;
    Value& item = c.locals.back().value;
    if (range) {
      item = Value(json(range_from + idx));
    } else if (j.is_array()) {
      item = coll.child(j[static_cast<size_t>(idx)]);
    } else if (j.is_object()) {
      const auto& it = members[static_cast<size_t>(idx)];
      item = Value(json::array({it.key(), it.value()}));
    } else {
      item = coll;
    }
    c.loops.back().index0 = k;
    if (!render_body(body, c, out)) return false;
    if (c.interrupt == Ctx::kBreak) {
      c.interrupt = Ctx::kNone;
      break;
    }
    c.interrupt = Ctx::kNone;
  }
  return true;
}

bool InterruptNode::render(Ctx& c, std::string&) const {
  c.interrupt = is_break ? Ctx::kBreak : Ctx::kContinue;
  return true;
}

bool AssignNode::render(Ctx& c, std::string&) const {
  Value v;
  if (!value.eval(c, &v)) return false;
  auto it = c.assigns.find(name);
  if (it == c.assigns.end()) it = c.assigns.emplace(name, Value()).first;
  it->second = std::move(v).shared();
  c.captured.erase(name);
  return true;
}

bool CaptureNode::render(Ctx& c, std::string&) const {
  std::string text;
  if (!render_body(body, c, text)) return false;
  json v(std::move(text));
  if (!c.made(pos, v)) return false;
  auto it = c.assigns.find(name);
  if (it == c.assigns.end()) it = c.assigns.emplace(name, Value()).first;
  it->second = Value(std::move(v)).shared();
  c.captured.insert(name);
  return true;
}

bool CounterNode::render(Ctx& c, std::string& out) const {
  auto it = c.counters.find(name);
  if (it == c.counters.end()) {
    // Liquid's counters start from a number of the same name in the data.
    int64_t start = 0;
    if (c.data.is_object())
      if (auto d = c.data.find(name); d != c.data.end() && d->is_number_integer()) to_integer(*d, &start);
    it = c.counters.emplace(name, start).first;
  }
  int64_t shown;
  if (increment) {
    shown = it->second;
    it->second = shown == INT64_MAX ? shown : shown + 1;
  } else {
    shown = it->second == INT64_MIN ? it->second : it->second - 1;
    it->second = shown;
  }
  return c.write(pos, std::to_string(shown), out);
}

bool CycleNode::render(Ctx& c, std::string& out) const {
  std::string k = key;
  if (group) {
    Value g;
    if (!group->eval(c, &g)) return false;
    k = "group:" + to_s(*g);
  }
  size_t& at = c.cycles[k];
  Value v;
  if (!values[at % values.size()]->eval(c, &v)) return false;
  at = (at + 1) % values.size();
  std::string s;
  append_output(*v, s);
  return c.write(pos, s, out);
}

}  // namespace opk::liquid::internal
