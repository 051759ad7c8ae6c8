// internal.h -- what the files of opk::liquid share: values, the parsed
// tree, the render context, the filter table and text helpers. Not installed.
//
//   lexer.cpp    the template's tokens ({{ }}, {% %}, text) and a tag's markup tokens
//   parser.cpp   tokens -> the node tree, filters looked up and checked
//   render.cpp   Template, the nodes' and expressions' rendering, lookups
//   values.cpp   truthiness, comparison, to_s, number formatting and conversion
//   text.cpp     UTF-8 helpers (characters, case mapping)
//   date.cpp     the date filter's input parsing and strftime
//   filters_*.cpp  the filters, by kind; filters.cpp the table
#ifndef OPSKERNEL_SDK_LIQUID_INTERNAL_H
#define OPSKERNEL_SDK_LIQUID_INTERNAL_H

#include <opskernel/liquid.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <opskernel/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace opk::liquid::internal {

using json = nlohmann::json;

// 1-based line and column (in characters) in the template source.
struct Pos {
  int line = 0;
  int column = 0;
};

// The null every missing value refers to.
extern const json kNull;
inline const json& null_json() {
  return kNull;
}

// A value while rendering. Borrowed (it points into the data or the parsed
// template, which outlive the render), shared (an assigned variable's value,
// kept alive by whoever holds it) or owned (a filter's result). Cheap to copy
// unless owned; an empty Value (nil) costs nothing to make or drop.
class Value {
 public:
  Value() noexcept : p_(&kNull) {}
  explicit Value(json j) : own_(std::move(j)) { p_ = &*own_; }
  Value(const Value& o) : keep_(o.keep_) {
    if (o.owned()) {
      own_.emplace(*o.own_);
      p_ = &*own_;
    } else {
      p_ = o.p_;
    }
  }
  Value(Value&& o) noexcept : keep_(std::move(o.keep_)) { take(o); }
  Value& operator=(const Value& o) {
    if (this != &o) *this = Value(o);
    return *this;
  }
  Value& operator=(Value&& o) noexcept {
    if (this != &o) {
      keep_ = std::move(o.keep_);
      own_.reset();
      take(o);
    }
    return *this;
  }

  // A value that refers to `j`, which outlives the render.
  static Value borrow(const json& j) {
    Value v;
    v.p_ = &j;
    return v;
  }

  const json& operator*() const { return *p_; }
  const json* operator->() const { return p_; }

  // A value for `part`, a member or element of this value.
  Value child(const json& part) const {
    if (owned()) return Value(part);
    Value v;
    v.p_ = &part;
    v.keep_ = keep_;
    return v;
  }

  // This value in a form whose children borrow rather than copy (an owned
  // value moves to the heap).
  Value shared() && {
    if (!owned()) return std::move(*this);
    Value v;
    v.keep_ = std::make_shared<const json>(std::move(*own_));
    v.p_ = v.keep_.get();
    own_.reset();
    p_ = &kNull;
    return v;
  }

 private:
  bool owned() const { return own_.has_value(); }
  // Takes o's pointer and owned value (keep_ already moved); leaves o nil.
  void take(Value& o) noexcept {
    if (o.owned()) {
      own_.emplace(std::move(*o.own_));
      o.own_.reset();
      p_ = &*own_;
    } else {
      p_ = o.p_;
    }
    o.p_ = &kNull;
  }
  const json* p_;
  std::optional<json> own_;
  std::shared_ptr<const json> keep_;
};

// --- Values (values.cpp) -----------------------------------------------------

// Liquid truthiness: only nil and false are false.
inline bool truthy(const json& v) {
  return !(v.is_null() || (v.is_boolean() && !v.get<bool>()));
}
// `v == empty`: an empty string, array or object.
bool is_empty(const json& v);
// `v == blank`: nil, false, a string of white space only, an empty array or object.
bool is_blank(const json& v);
// Ruby's ==: numbers compare by value whatever their type.
bool equal(const json& a, const json& b);
// Order of two values for <, <=, >, >=: -1, 0 or 1 in *out. Returns false
// when they cannot be ordered (anything but two numbers or two strings).
bool order(const json& a, const json& b, int* out);
// Appends `v` as Liquid's to_s would (nil "", arrays and objects inspected).
void append_to_s(const json& v, std::string& out);
std::string to_s(const json& v);
// Appends `v` as `{{ v }}` would: arrays element by element, nil nothing.
void append_output(const json& v, std::string& out);
// Appends a float as Ruby prints it ("3.0", "0.1", "1.0e+20").
void append_float(double d, std::string& out);
// Liquid's to_number: numbers as they are, "1.5" a float, "12abc" 12,
// anything else 0. The result is an int64 or a double, never unsigned.
json to_number(const json& v);
// Liquid's to_integer: an integer, or a string or float that is one;
// returns false otherwise.
bool to_integer(const json& v, int64_t* out);
// Number of decimal places in the shortest form of `d` (0.125: 3).
int decimals(double d);
// `d` rounded half away from zero to `places` decimal places, on its
// shortest decimal form (1.005 -> 1.01 for 2 places).
double round_decimal(double d, int places);
// Approximate bytes `v` takes: what making it counts against Limits::max_memory_bytes.
size_t approx_bytes(const json& v);

// --- Text (text.cpp) ---------------------------------------------------------

// Number of UTF-8 characters in `s` (a stray byte counts as one).
size_t char_count(std::string_view s);
// Byte offset of character `n` in `s` (s.size() when past the end).
size_t char_offset(std::string_view s, size_t n);
// Length in bytes of the UTF-8 character starting at s[i].
size_t char_len(std::string_view s, size_t i);
// Upper- and lower-case of ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic letters.
std::string upcase(std::string_view s);
std::string downcase(std::string_view s);
// First character upper-cased, the rest lower-cased.
std::string capitalize(std::string_view s);
// Ruby's whitespace for strip: space, \t, \n, \v, \f, \r (and \0 at the right).
inline bool is_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}
// Whether `s` is valid UTF-8; if not, *bad is the offset of the first bad byte.
bool valid_utf8(std::string_view s, size_t* bad = nullptr);
// Appends `s` with & < > " ' as HTML entities (the escape filter).
void append_escaped(std::string_view s, std::string& out);

// --- Dates (date.cpp) --------------------------------------------------------

// An instant: seconds since the epoch and nanoseconds, UTC.
struct Instant {
  int64_t seconds = 0;
  int32_t nanos = 0;
};
// The instant `v` names: a number of seconds, a string of digits, "now" or
// "today" (`now`), or an ISO-8601 date or date-time. False if none.
bool to_instant(const json& v, int64_t now, Instant* out);
// `t` formatted by strftime's conversions in UTC (Ruby's flags - _ 0 ^ # and widths).
std::string format_time(const Instant& t, std::string_view format);

// --- The parsed tree ---------------------------------------------------------

struct Ctx;
struct FilterDef;

// An expression: a literal, a variable lookup or a range.
struct Expr {
  Pos pos;
  virtual ~Expr() = default;
  // Evaluates into *out; false after recording an error in the context.
  virtual bool eval(Ctx& c, Value* out) const = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

// A literal; `empty` and `blank` are the empty string except where compared.
struct Literal final : Expr {
  enum Kind { kPlain, kEmpty, kBlank };
  json value;
  Kind kind = kPlain;
  bool eval(Ctx& c, Value* out) const override;
};

// (from..to): an array of the integers between, both included.
struct RangeExpr final : Expr {
  ExprPtr from, to;
  bool eval(Ctx& c, Value* out) const override;
  // Evaluates the bounds only.
  bool bounds(Ctx& c, int64_t* from_out, int64_t* to_out) const;
};

// name.key[index]["key"][expr].size ...
struct Lookup final : Expr {
  struct Segment {
    enum Kind { kKey, kIndex, kExpr };
    Kind kind = kKey;
    std::string key;
    int64_t index = 0;
    ExprPtr expr;
    // A dotted size, first or last: also a command when there is no such key.
    bool command = false;
    Pos pos;
  };
  std::string root;
  ExprPtr root_expr;  // [expr] as the root
  std::vector<Segment> path;
  bool eval(Ctx& c, Value* out) const override;
};

// One filter of a chain, with its arguments.
struct FilterCall {
  const FilterDef* def = nullptr;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  Pos pos;
};

// An expression and the filters applied to it, left to right.
struct Filtered {
  ExprPtr base;
  std::vector<FilterCall> filters;
  bool eval(Ctx& c, Value* out) const;
};

// A condition: comparisons joined by and/or, grouped from the right as
// Liquid does (a or b and c == a or (b and c)).
struct Condition {
  enum Op { kNone, kEq, kNe, kLt, kGt, kLe, kGe, kContains };
  struct Term {
    ExprPtr left;
    Op op = kNone;
    ExprPtr right;
    Pos pos;
    bool and_next = false;  // joined to the next term by `and` (else `or`)
    // `empty` or `blank` on either side of == or != tests the other side.
    Literal::Kind left_kind = Literal::kPlain;
    Literal::Kind right_kind = Literal::kPlain;
  };
  std::vector<Term> terms;
  bool eval(Ctx& c, bool* out) const;
};

// A node of the tree: text, an output or a tag.
struct Node {
  Pos pos;
  virtual ~Node() = default;
  // Appends its text to `out`; false after recording an error.
  virtual bool render(Ctx& c, std::string& out) const = 0;
  // Whether it renders no text (whitespace, assign, capture, blocks of those):
  // a block that is all blank drops its whitespace, as in Liquid.
  virtual bool blank() const { return false; }
  // Text nodes are dropped from blank blocks.
  virtual bool is_text() const { return false; }
};
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

// Renders each node of `body` in turn; stops at break, continue or an error.
bool render_body(const Body& body, Ctx& c, std::string& out);
bool body_blank(const Body& body);
void drop_text(Body* body);

struct TextNode final : Node {
  std::string text;
  bool raw = false;  // from {% raw %}: blank only when empty
  bool render(Ctx& c, std::string& out) const override;
  bool blank() const override;
  bool is_text() const override { return !raw; }
};

// {{ expr | filters }} and {% echo %}.
struct OutputNode final : Node {
  Filtered expr;
  bool escaped = false;        // the last filter is escape or escape_once
  std::string_view plain_var;  // the expression is this variable alone, unfiltered
  bool render(Ctx& c, std::string& out) const override;
};

// if / elsif / else and unless (its first branch negated).
struct IfNode final : Node {
  struct Branch {
    Condition cond;
    bool negate = false;
    bool is_else = false;
    Body body;
  };
  std::vector<Branch> branches;
  bool render(Ctx& c, std::string& out) const override;
  bool blank() const override;
};

struct CaseNode final : Node {
  struct Clause {
    std::vector<ExprPtr> values;       // empty for else
    std::vector<Literal::Kind> kinds;  // of each value: `when empty` tests emptiness
    bool is_else = false;
    Body body;
  };
  ExprPtr subject;
  std::vector<Clause> clauses;
  bool render(Ctx& c, std::string& out) const override;
  bool blank() const override;
};

struct ForNode final : Node {
  std::string var;
  std::string name;  // var-collection, for offset: continue
  ExprPtr collection;
  const RangeExpr* range = nullptr;  // the collection when it is a range: iterated, never made
  ExprPtr limit, offset;
  bool offset_continue = false;
  bool reversed = false;
  Body body, else_body;
  bool render(Ctx& c, std::string& out) const override;
  bool blank() const override;
};

struct InterruptNode final : Node {
  bool is_break = true;
  bool render(Ctx& c, std::string& out) const override;
};

struct AssignNode final : Node {
  std::string name;
  Filtered value;
  bool render(Ctx& c, std::string& out) const override;
  bool blank() const override { return true; }
};

struct CaptureNode final : Node {
  std::string name;
  Body body;
  bool render(Ctx& c, std::string& out) const override;
  bool blank() const override { return true; }
};

struct CounterNode final : Node {
  std::string name;
  bool increment = true;
  bool render(Ctx& c, std::string& out) const override;
};

struct CycleNode final : Node {
  ExprPtr group;    // null: unnamed, keyed by `key`
  std::string key;  // the values' source text
  std::vector<ExprPtr> values;
  bool render(Ctx& c, std::string& out) const override;
};

// Parses `source` into `root` within `limits`; false with *error filled.
bool parse_template(std::string_view source, const Limits& limits, Body* root, ErrorInfo* error);

// --- Rendering ---------------------------------------------------------------

// The state of one render.
struct Ctx {
  Ctx(const json& data, const RenderOptions& options, const Limits& limits);

  const json& data;
  const RenderOptions& options;
  const Limits& limits;
  int64_t now = 0;

  // Variables of enclosing for loops, innermost last.
  struct Local {
    std::string_view name;
    Value value;
  };
  std::vector<Local> locals;
  // The for loops being rendered, innermost last.
  struct Loop {
    std::string_view name;
    int64_t index0 = 0;
    int64_t length = 0;
  };
  std::vector<Loop> loops;

  std::map<std::string, Value, std::less<>> assigns;
  std::set<std::string, std::less<>> captured;  // assigns made by capture
  std::map<std::string, int64_t, std::less<>> counters;
  std::map<std::string, size_t, std::less<>> cycles;
  std::map<std::string, int64_t, std::less<>> for_offsets;

  enum Interrupt { kNone, kBreak, kContinue };
  Interrupt interrupt = kNone;

  int64_t iterations = 0;
  int64_t steps = 0;
  size_t made_bytes = 0;

  bool failed = false;
  ErrorInfo error;

  // Records an error at `pos`; returns false.
  bool fail(Pos pos, std::string message);
  // Counts `n` steps of work; false (and an error at `pos`) past the limit.
  bool step(Pos pos, int64_t n = 1);
  // Appends `text` to `out` within max_output_bytes.
  bool write(Pos pos, std::string_view text, std::string& out);
  // Counts a value a filter, capture or range made against max_memory_bytes.
  bool made(Pos pos, const json& v);
  // The value of variable `name` (loop variables, then assigns, counters,
  // data); false if there is none.
  bool find(std::string_view name, Value* out) const;
};

// --- Filters (filters*.cpp) --------------------------------------------------

// One filter being applied: its input and arguments, and its result.
struct FilterEnv {
  FilterEnv(Ctx& c, const FilterCall& f) : ctx(c), call(f) {}

  Ctx& ctx;
  const FilterCall& call;
  Value input;
  Value args[3];
  int nargs = 0;
  Value kwargs[2];  // by the FilterDef's kwargs order; null when not given
  Value result;

  const json& in() const { return *input; }
  const json& arg(int i) const { return i < nargs ? *args[i] : null_json(); }
  bool has_arg(int i) const { return i < nargs; }
  // Sets the result to the input unchanged.
  bool keep() {
    result = input;
    return true;
  }
  // Sets the result to a value made here, counted against the limits.
  bool make(json v);
  // Records an error naming the filter; returns false.
  bool fail(const std::string& message);
};

using FilterFn = bool (*)(FilterEnv& e);

struct FilterDef {
  const char* name;
  int min_args;
  int max_args;
  FilterFn fn;
  const char* kwargs[2] = {nullptr, nullptr};
};

// The filter named `name`, or null.
const FilterDef* find_filter(std::string_view name);

// Registers each kind's filters into the table (filters.cpp calls them).
void add_string_filters(std::vector<FilterDef>* table);
void add_array_filters(std::vector<FilterDef>* table);
void add_math_filters(std::vector<FilterDef>* table);

// Array filters read their input as Liquid does: an array (nested arrays
// flattened), an object as one item, nil as none, anything else as one item.
std::vector<Value> input_items(const Value& v);
// A member of an object item (nil when the item is not an object).
const json& property(const json& item, const json& name);

}  // namespace opk::liquid::internal

#endif  // OPSKERNEL_SDK_LIQUID_INTERNAL_H
