// parser.cpp -- tokens to the node tree. Strict: anything it does not
// understand is an error naming its line and column, filters are looked up
// and their arguments counted here, so rendering meets no unknown names.
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <initializer_list>

#include "internal.h"
#include "lexer.h"

namespace opk::liquid::internal {

namespace {

// Offsets to lines and columns, moving forward from the last answer.
class Locator {
 public:
  explicit Locator(std::string_view src) : src_(src) {}
  Pos at(size_t offset) {
    if (offset < off_) off_ = 0, line_ = 1, col_ = 1;
    if (offset > src_.size()) offset = src_.size();
    for (; off_ < offset; ++off_) {
      const char c = src_[off_];
      if (c == '\n') {
        ++line_;
        col_ = 1;
      } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
        ++col_;
      }
    }
    return {line_, col_};
  }

 private:
  std::string_view src_;
  size_t off_ = 0;
  int line_ = 1, col_ = 1;
};

// Tags Liquid has that this library does not.
constexpr std::string_view kUnsupported[] = {
    "include", "render",   "tablerow", "liquid",     "ifchanged", "doc",      "layout",      "section",
    "form",    "paginate", "style",    "javascript", "schema",    "sections", "content_for", "block"};
// Tags that only continue or end a block.
constexpr std::string_view kInner[] = {"else",    "elsif",  "when",       "endif",      "endunless",
                                       "endcase", "endfor", "endcapture", "endcomment", "endraw"};

template <size_t N>
bool in(std::string_view s, const std::string_view (&list)[N]) {
  for (auto x : list)
    if (x == s) return true;
  return false;
}

class Parser {
 public:
  Parser(std::string_view src, const Limits& limits) : src_(src), tz_(src), loc_(src), limits_(limits) {}

  bool parse(Body* root) {
    Stop stop;
    if (!parse_body(root, {}, {}, 0, &stop)) return false;
    return true;
  }

  ErrorInfo error;

 private:
  // The tag that ended a body.
  struct Stop {
    std::string_view name;
    std::string_view markup;
    size_t offset = 0;         // of its {%
    size_t markup_offset = 0;  // of its markup
  };

  bool fail(size_t offset, std::string message) {
    const Pos p = loc_.at(offset);
    error = ErrorInfo{p.line, p.column, std::move(message)};
    return false;
  }
  Pos pos(size_t offset) { return loc_.at(offset); }

  // --- Bodies and tags ------------------------------------------------------

  // Parses nodes into `body` until a tag named in `stops` (returned in
  // *stop) or, at the top (`opener` empty), the end of the template.
  bool parse_body(Body* body, std::initializer_list<std::string_view> stops, std::string_view opener,
                  size_t opener_offset, Stop* stop) {
    if (!opener.empty() && ++depth_ > limits_.max_depth)
      return fail(opener_offset, "blocks nested deeper than max_depth (" + std::to_string(limits_.max_depth) + ")");
    struct Leave {
      int& d;
      bool on;
      ~Leave() {
        if (on) --d;
      }
    } leave{depth_, !opener.empty()};
    Token t;
    while (true) {
      std::string err;
      size_t err_off = 0;
      if (!tz_.next(&t, &err, &err_off)) return fail(err_off, err);
      switch (t.kind) {
        case Token::kEnd:
          if (!opener.empty())  // the last of `stops` is the block's end tag
            return fail(opener_offset, "'" + std::string(opener) + "' was never closed (no '" +
                                           std::string(*(stops.end() - 1)) + "')");
          return true;
        case Token::kText: {
          auto n = std::make_unique<TextNode>();
          n->pos = pos(t.offset);
          n->text = std::string(t.text);
          body->push_back(std::move(n));
          break;
        }
        case Token::kOutput: {
          auto n = std::make_unique<OutputNode>();
          n->pos = pos(t.offset);
          if (!lex(t.text, t.text_offset)) return false;
          if (toks_[0].kind == Tok::kEnd) break;  // {{ }} renders nothing, as in Liquid
          if (!output(n.get()) || !at_end()) return false;
          body->push_back(std::move(n));
          break;
        }
        case Token::kTag: {
          size_t i = 0;
          const std::string_view m = t.text;
          while (i < m.size() && is_space(m[i])) ++i;
          const size_t name_begin = i;
          if (i < m.size() && m[i] == '#') {
            ++i;
          } else {
            while (i < m.size() && (std::isalnum(static_cast<unsigned char>(m[i])) || m[i] == '_')) ++i;
          }
          const std::string_view name = m.substr(name_begin, i - name_begin);
          if (name.empty()) return fail(t.text_offset + name_begin, "expected a tag name after '{%'");
          const size_t markup_offset = t.text_offset + i;
          const std::string_view markup = m.substr(i);
          for (auto s : stops) {
            if (s == name) {
              *stop = Stop{name, markup, t.offset, markup_offset};
              return true;
            }
          }
          if (in(name, kInner)) {
            if (opener.empty()) return fail(t.text_offset + name_begin, "unexpected '" + std::string(name) + "'");
            const Pos op = pos(opener_offset);
            return fail(t.text_offset + name_begin,
                        "unexpected '" + std::string(name) + "' in '" + std::string(opener) + "' (opened at line " +
                            std::to_string(op.line) + ", column " + std::to_string(op.column) + ")");
          }
          if (!tag(name, markup, t.offset, markup_offset, t.text_offset + name_begin, body)) return false;
          break;
        }
      }
    }
  }

  // Expects nothing more in a tag that takes no markup.
  bool no_markup(std::string_view name, std::string_view markup, size_t markup_offset) {
    for (size_t i = 0; i < markup.size(); ++i)
      if (!is_space(markup[i])) return fail(markup_offset + i, "'" + std::string(name) + "' takes no arguments");
    return true;
  }

  bool tag(std::string_view name, std::string_view markup, size_t offset, size_t markup_offset, size_t name_offset,
           Body* body) {
    if (name == "#") return true;
    if (name == "comment") return comment(markup, offset, markup_offset);
    if (name == "raw") {
      if (!no_markup(name, markup, markup_offset)) return false;
      auto n = std::make_unique<TextNode>();
      n->pos = pos(offset);
      n->raw = true;
      std::string_view text;
      size_t text_offset = 0;
      if (!tz_.raw_body(&text, &text_offset)) return fail(offset, "'raw' was never closed (no 'endraw')");
      n->text = std::string(text);
      body->push_back(std::move(n));
      return true;
    }
    if (name == "if" || name == "unless") return if_tag(name, markup, offset, markup_offset, body);
    if (name == "case") return case_tag(markup, offset, markup_offset, body);
    if (name == "for") return for_tag(markup, offset, markup_offset, body);
    if (name == "break" || name == "continue") {
      if (!no_markup(name, markup, markup_offset)) return false;
      auto n = std::make_unique<InterruptNode>();
      n->pos = pos(offset);
      n->is_break = name == "break";
      body->push_back(std::move(n));
      return true;
    }
    if (name == "assign") {
      auto n = std::make_unique<AssignNode>();
      n->pos = pos(offset);
      if (!lex(markup, markup_offset)) return false;
      if (peek().kind != Tok::kId) return fail(peek().offset, "expected a variable name after 'assign'");
      n->name = std::string(take().text);
      if (peek().kind != Tok::kAssign)
        return fail(peek().offset, "expected '=' after 'assign " + n->name + "', found " + describe(peek()));
      take();
      if (!filtered(&n->value) || !at_end()) return false;
      body->push_back(std::move(n));
      return true;
    }
    if (name == "capture") {
      auto n = std::make_unique<CaptureNode>();
      n->pos = pos(offset);
      if (!lex(markup, markup_offset)) return false;
      if (peek().kind != Tok::kId && peek().kind != Tok::kString)
        return fail(peek().offset, "expected a variable name after 'capture'");
      n->name = std::string(take().text);
      if (!at_end()) return false;
      Stop stop;
      if (!parse_body(&n->body, {"endcapture"}, "capture", offset, &stop)) return false;
      if (!no_markup(stop.name, stop.markup, stop.markup_offset)) return false;
      body->push_back(std::move(n));
      return true;
    }
    if (name == "increment" || name == "decrement") {
      auto n = std::make_unique<CounterNode>();
      n->pos = pos(offset);
      n->increment = name == "increment";
      if (!lex(markup, markup_offset)) return false;
      if (peek().kind != Tok::kId)
        return fail(peek().offset, "expected a variable name after '" + std::string(name) + "'");
      n->name = std::string(take().text);
      if (!at_end()) return false;
      body->push_back(std::move(n));
      return true;
    }
    if (name == "cycle") return cycle_tag(markup, offset, markup_offset, body);
    if (name == "echo") {
      auto n = std::make_unique<OutputNode>();
      n->pos = pos(offset);
      if (!lex(markup, markup_offset)) return false;
      if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected an expression after 'echo'");
      if (!output(n.get()) || !at_end()) return false;
      body->push_back(std::move(n));
      return true;
    }
    if (in(name, kUnsupported)) return fail(name_offset, "tag '" + std::string(name) + "' is not supported");
    return fail(name_offset, "unknown tag '" + std::string(name) + "'");
  }

  bool comment(std::string_view markup, size_t offset, size_t markup_offset) {
    if (!no_markup("comment", markup, markup_offset)) return false;
    int open = 1;
    Token t;
    while (true) {
      std::string err;
      size_t err_off = 0;
      if (!tz_.next(&t, &err, &err_off)) return fail(err_off, err);
      if (t.kind == Token::kEnd) return fail(offset, "'comment' was never closed (no 'endcomment')");
      if (t.kind != Token::kTag) continue;
      size_t i = 0;
      while (i < t.text.size() && is_space(t.text[i])) ++i;
      size_t j = i;
      while (j < t.text.size() && (std::isalnum(static_cast<unsigned char>(t.text[j])) || t.text[j] == '_')) ++j;
      const std::string_view name = t.text.substr(i, j - i);
      if (name == "comment") {
        ++open;
      } else if (name == "endcomment") {
        if (--open == 0) return true;
      } else if (name == "raw") {
        std::string_view text;
        size_t text_offset = 0;
        if (!tz_.raw_body(&text, &text_offset)) return fail(t.offset, "'raw' was never closed (no 'endraw')");
      }
    }
  }

  // Drops the whitespace of a block's bodies when the block renders no text.
  static void finish_block(Node* n, std::initializer_list<Body*> bodies) {
    if (!n->blank()) return;
    for (Body* b : bodies) drop_text(b);
  }

  bool if_tag(std::string_view name, std::string_view markup, size_t offset, size_t markup_offset, Body* body) {
    auto n = std::make_unique<IfNode>();
    n->pos = pos(offset);
    const std::string end = "end" + std::string(name);
    n->branches.emplace_back();
    n->branches.back().negate = name == "unless";
    if (!lex(markup, markup_offset)) return false;
    if (!condition(&n->branches.back().cond, name) || !at_end()) return false;
    while (true) {
      IfNode::Branch& br = n->branches.back();
      Stop stop;
      const bool ok = br.is_else ? parse_body(&br.body, {end}, name, offset, &stop)
                                 : parse_body(&br.body, {"elsif", "else", end}, name, offset, &stop);
      if (!ok) return false;
      if (stop.name == end) {
        if (!no_markup(stop.name, stop.markup, stop.markup_offset)) return false;
        break;
      }
      n->branches.emplace_back();
      IfNode::Branch& next = n->branches.back();
      if (stop.name == "else") {
        if (!no_markup(stop.name, stop.markup, stop.markup_offset)) return false;
        next.is_else = true;
      } else {
        if (!lex(stop.markup, stop.markup_offset)) return false;
        if (!condition(&next.cond, "elsif") || !at_end()) return false;
      }
    }
    IfNode* raw = n.get();
    body->push_back(std::move(n));
    if (raw->blank())
      for (auto& br : raw->branches) drop_text(&br.body);
    return true;
  }

  bool case_tag(std::string_view markup, size_t offset, size_t markup_offset, Body* body) {
    auto n = std::make_unique<CaseNode>();
    n->pos = pos(offset);
    if (!lex(markup, markup_offset)) return false;
    if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected an expression after 'case'");
    if (!(n->subject = expr(0)) || !at_end()) return false;
    Body before;  // between case and the first when: never rendered
    Stop stop;
    if (!parse_body(&before, {"when", "else", "endcase"}, "case", offset, &stop)) return false;
    while (stop.name != "endcase") {
      n->clauses.emplace_back();
      CaseNode::Clause& cl = n->clauses.back();
      if (stop.name == "else") {
        if (!no_markup(stop.name, stop.markup, stop.markup_offset)) return false;
        cl.is_else = true;
      } else {
        if (!lex(stop.markup, stop.markup_offset)) return false;
        if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected a value after 'when'");
        while (true) {
          Literal::Kind kind = literal_kind();
          ExprPtr v = expr(0);
          if (!v) return false;
          cl.values.push_back(std::move(v));
          cl.kinds.push_back(kind);
          if (peek().kind == Tok::kComma || (peek().kind == Tok::kId && peek().text == "or")) {
            take();
            continue;
          }
          break;
        }
        if (!at_end()) return false;
      }
      if (!parse_body(&cl.body, {"when", "else", "endcase"}, "case", offset, &stop)) return false;
    }
    if (!no_markup(stop.name, stop.markup, stop.markup_offset)) return false;
    CaseNode* raw = n.get();
    body->push_back(std::move(n));
    if (raw->blank())
      for (auto& cl : raw->clauses) drop_text(&cl.body);
    return true;
  }

  bool for_tag(std::string_view markup, size_t offset, size_t markup_offset, Body* body) {
    auto n = std::make_unique<ForNode>();
    n->pos = pos(offset);
    if (!lex(markup, markup_offset)) return false;
    if (peek().kind != Tok::kId) return fail(peek().offset, "expected a variable name after 'for'");
    n->var = std::string(take().text);
    if (peek().kind != Tok::kId || peek().text != "in")
      return fail(peek().offset, "expected 'in' after 'for " + n->var + "', found " + describe(peek()));
    take();
    if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected a collection after 'in'");
    const size_t coll_begin = peek().offset;
    if (!(n->collection = expr(0))) return false;
    n->range = dynamic_cast<const RangeExpr*>(n->collection.get());
    {
      std::string_view text = src_.substr(coll_begin, peek().offset - coll_begin);
      while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
      n->name = n->var + "-" + std::string(text);
    }
    while (peek().kind != Tok::kEnd) {
      const Tok& t = peek();
      if (t.kind == Tok::kComma) {
        take();
        continue;
      }
      if (t.kind == Tok::kId && t.text == "reversed") {
        take();
        n->reversed = true;
        continue;
      }
      if (t.kind == Tok::kId && (t.text == "limit" || t.text == "offset")) {
        const bool is_limit = t.text == "limit";
        take();
        if (peek().kind != Tok::kColon)
          return fail(peek().offset, "expected ':' after '" + std::string(is_limit ? "limit" : "offset") + "'");
        take();
        if (!is_limit && peek().kind == Tok::kId && peek().text == "continue") {
          take();
          n->offset_continue = true;
          continue;
        }
        ExprPtr e = expr(0);
        if (!e) return false;
        (is_limit ? n->limit : n->offset) = std::move(e);
        continue;
      }
      return fail(t.offset, "unexpected " + describe(t) + " in 'for' (expected limit:, offset: or reversed)");
    }
    Stop stop;
    if (!parse_body(&n->body, {"else", "endfor"}, "for", offset, &stop)) return false;
    if (!no_markup(stop.name, stop.markup, stop.markup_offset)) return false;
    if (stop.name == "else") {
      if (!parse_body(&n->else_body, {"endfor"}, "for", offset, &stop)) return false;
      if (!no_markup(stop.name, stop.markup, stop.markup_offset)) return false;
    }
    ForNode* raw = n.get();
    body->push_back(std::move(n));
    finish_block(raw, {&raw->body, &raw->else_body});
    return true;
  }

  bool cycle_tag(std::string_view markup, size_t offset, size_t markup_offset, Body* body) {
    auto n = std::make_unique<CycleNode>();
    n->pos = pos(offset);
    if (!lex(markup, markup_offset)) return false;
    if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected values after 'cycle'");
    auto value = [&]() -> bool {
      const Tok& t = peek();
      ExprPtr e = expr(0);
      if (!e) return false;
      if (auto* lit = dynamic_cast<const Literal*>(e.get()))
        n->key += lit->value.dump();
      else
        n->key += std::string(src_.substr(t.offset, peek().offset - t.offset));
      n->key += ',';
      n->values.push_back(std::move(e));
      return true;
    };
    ExprPtr first = expr(0);
    if (!first) return false;
    if (peek().kind == Tok::kColon) {
      take();
      n->group = std::move(first);
      if (!value()) return false;
    } else {
      toks_pos_ = 0;  // read the first value again, for the key
      if (!value()) return false;
    }
    while (peek().kind == Tok::kComma) {
      take();
      if (peek().kind == Tok::kEnd) break;
      if (!value()) return false;
    }
    if (!at_end()) return false;
    body->push_back(std::move(n));
    return true;
  }

  // --- Markup ---------------------------------------------------------------

  bool lex(std::string_view markup, size_t offset) {
    std::string err;
    size_t err_off = 0;
    toks_pos_ = 0;
    if (!lex_markup(markup, offset, &toks_, &err, &err_off)) return fail(err_off, err);
    return true;
  }
  const Tok& peek(size_t ahead = 0) const {
    const size_t i = toks_pos_ + ahead;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  const Tok& take() {
    const Tok& t = toks_[toks_pos_];
    if (toks_pos_ + 1 < toks_.size()) ++toks_pos_;
    return t;
  }
  bool at_end() {
    if (peek().kind == Tok::kEnd) return true;
    return fail(peek().offset, "unexpected " + describe(peek()));
  }

  // `empty` or `blank` as the next expression, alone.
  Literal::Kind literal_kind() const {
    const Tok& t = peek();
    if (t.kind != Tok::kId || peek(1).kind == Tok::kDot || peek(1).kind == Tok::kLBracket) return Literal::kPlain;
    if (t.text == "empty") return Literal::kEmpty;
    if (t.text == "blank") return Literal::kBlank;
    return Literal::kPlain;
  }

  // A literal, a variable lookup or a range; null after an error.
  ExprPtr expr(int nesting) {
    if (depth_ + nesting > limits_.max_depth) {
      fail(peek().offset, "expression nested deeper than max_depth (" + std::to_string(limits_.max_depth) + ")");
      return nullptr;
    }
    const Tok& t = peek();
    switch (t.kind) {
      case Tok::kString: {
        auto l = std::make_unique<Literal>();
        l->pos = pos(t.offset);
        l->value = std::string(take().text);
        return l;
      }
      case Tok::kNumber: {
        auto l = std::make_unique<Literal>();
        l->pos = pos(t.offset);
        const std::string_view s = take().text;
        if (s.find('.') == std::string_view::npos) {
          int64_t v = 0;
          auto r = std::from_chars(s.data(), s.data() + s.size(), v);
          if (r.ec == std::errc())
            l->value = v;
          else
            l->value = std::strtod(std::string(s).c_str(), nullptr);
        } else {
          l->value = std::strtod(std::string(s).c_str(), nullptr);
        }
        return l;
      }
      case Tok::kLParen: {
        auto r = std::make_unique<RangeExpr>();
        r->pos = pos(t.offset);
        take();
        if (!(r->from = expr(nesting + 1))) return nullptr;
        if (peek().kind != Tok::kDotDot) {
          fail(peek().offset, "expected '..' in a range, found " + describe(peek()));
          return nullptr;
        }
        take();
        if (!(r->to = expr(nesting + 1))) return nullptr;
        if (peek().kind != Tok::kRParen) {
          fail(peek().offset, "expected ')' to close the range, found " + describe(peek()));
          return nullptr;
        }
        take();
        return r;
      }
      case Tok::kId: {
        const bool alone = peek(1).kind != Tok::kDot && peek(1).kind != Tok::kLBracket;
        if (alone) {
          const std::string_view w = t.text;
          if (w == "true" || w == "false" || w == "nil" || w == "null" || w == "empty" || w == "blank") {
            auto l = std::make_unique<Literal>();
            l->pos = pos(t.offset);
            take();
            if (w == "true" || w == "false")
              l->value = w == "true";
            else if (w == "empty" || w == "blank") {
              l->value = "";
              l->kind = w == "empty" ? Literal::kEmpty : Literal::kBlank;
            }
            return l;
          }
        }
        auto l = std::make_unique<Lookup>();
        l->pos = pos(t.offset);
        l->root = std::string(take().text);
        return path(std::move(l), nesting);
      }
      case Tok::kLBracket: {
        auto l = std::make_unique<Lookup>();
        l->pos = pos(t.offset);
        take();
        if (!(l->root_expr = expr(nesting + 1))) return nullptr;
        if (peek().kind != Tok::kRBracket) {
          fail(peek().offset, "expected ']', found " + describe(peek()));
          return nullptr;
        }
        take();
        return path(std::move(l), nesting);
      }
      default:
        fail(t.offset, "expected a value, found " + describe(t));
        return nullptr;
    }
  }

  // The .key and [index] lookups after a variable's name.
  ExprPtr path(std::unique_ptr<Lookup> l, int nesting) {
    while (true) {
      if (peek().kind == Tok::kDot) {
        take();
        if (peek().kind != Tok::kId) {
          fail(peek().offset, "expected a name after '.', found " + describe(peek()));
          return nullptr;
        }
        Lookup::Segment seg;
        seg.pos = pos(peek().offset);
        seg.key = std::string(take().text);
        seg.command = seg.key == "size" || seg.key == "first" || seg.key == "last";
        l->path.push_back(std::move(seg));
        continue;
      }
      if (peek().kind == Tok::kLBracket) {
        Lookup::Segment seg;
        seg.pos = pos(peek().offset);
        take();
        ExprPtr e = expr(nesting + 1);
        if (!e) return nullptr;
        if (peek().kind != Tok::kRBracket) {
          fail(peek().offset, "expected ']', found " + describe(peek()));
          return nullptr;
        }
        take();
        auto* lit = dynamic_cast<Literal*>(e.get());
        if (lit && lit->kind == Literal::kPlain && lit->value.is_string()) {
          seg.kind = Lookup::Segment::kKey;
          seg.key = lit->value.get<std::string>();
        } else if (lit && lit->value.is_number_integer()) {
          seg.kind = Lookup::Segment::kIndex;
          seg.index = lit->value.get<int64_t>();
        } else {
          seg.kind = Lookup::Segment::kExpr;
          seg.expr = std::move(e);
        }
        l->path.push_back(std::move(seg));
        continue;
      }
      return l;
    }
  }

  // expr | filter: arg, key: arg | ...
  bool filtered(Filtered* f) {
    if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected a value, found the end");
    if (!(f->base = expr(0))) return false;
    while (peek().kind == Tok::kPipe) {
      take();
      if (peek().kind != Tok::kId)
        return fail(peek().offset, "expected a filter name after '|', found " + describe(peek()));
      const Tok& name = take();
      FilterCall call;
      call.pos = pos(name.offset);
      call.def = find_filter(name.text);
      if (!call.def) return fail(name.offset, "unknown filter '" + std::string(name.text) + "'");
      const std::string fname(name.text);
      if (peek().kind == Tok::kColon) {
        take();
        while (true) {
          if (peek().kind == Tok::kId && peek(1).kind == Tok::kColon) {
            const Tok& key = take();
            take();
            bool known = false;
            for (const char* k : call.def->kwargs) known = known || (k && key.text == k);
            if (!known) return fail(key.offset, "filter '" + fname + "' has no option '" + std::string(key.text) + "'");
            ExprPtr v = expr(0);
            if (!v) return false;
            call.kwargs.emplace_back(std::string(key.text), std::move(v));
          } else {
            const size_t arg_offset = peek().offset;
            ExprPtr v = expr(0);
            if (!v) return false;
            if (static_cast<int>(call.args.size()) >= call.def->max_args)
              return fail(arg_offset, "filter '" + fname + "' takes " + takes(call.def->max_args));
            call.args.push_back(std::move(v));
          }
          if (peek().kind != Tok::kComma) break;
          take();
        }
      }
      if (static_cast<int>(call.args.size()) < call.def->min_args)
        return fail(name.offset, "filter '" + fname + "' needs " + needs(call.def->min_args, call.def->max_args));
      f->filters.push_back(std::move(call));
    }
    return true;
  }

  static std::string arguments(int n) { return std::to_string(n) + (n == 1 ? " argument" : " arguments"); }
  // "takes no arguments", "takes at most 2 arguments"
  static std::string takes(int max) { return max == 0 ? "no arguments" : "at most " + arguments(max); }
  // "needs 1 argument", "needs at least 1 argument"
  static std::string needs(int min, int max) { return (max > min ? "at least " : "") + arguments(min); }

  bool output(OutputNode* n) {
    if (!filtered(&n->expr)) return false;
    if (!n->expr.filters.empty()) {
      const std::string_view last = n->expr.filters.back().def->name;
      n->escaped = last == "escape" || last == "escape_once" || last == "h";
    } else if (auto* l = dynamic_cast<const Lookup*>(n->expr.base.get()); l && !l->root_expr && l->path.empty()) {
      n->plain_var = l->root;
    }
    return true;
  }

  // comparison (and|or comparison)*
  bool condition(Condition* c, std::string_view tag_name) {
    if (peek().kind == Tok::kEnd)
      return fail(peek().offset, "expected a condition after '" + std::string(tag_name) + "'");
    while (true) {
      Condition::Term term;
      term.pos = pos(peek().offset);
      term.left_kind = literal_kind();
      if (!(term.left = expr(0))) return false;
      const Tok& t = peek();
      if (t.kind == Tok::kCmp || (t.kind == Tok::kId && t.text == "contains")) {
        const std::string_view op = take().text;
        term.op = op == "=="                   ? Condition::kEq
                  : (op == "!=" || op == "<>") ? Condition::kNe
                  : op == "<"                  ? Condition::kLt
                  : op == ">"                  ? Condition::kGt
                  : op == "<="                 ? Condition::kLe
                  : op == ">="                 ? Condition::kGe
                                               : Condition::kContains;
        if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected a value after '" + std::string(op) + "'");
        term.right_kind = literal_kind();
        if (!(term.right = expr(0))) return false;
      }
      const Tok& j = peek();
      const bool more = j.kind == Tok::kId && (j.text == "and" || j.text == "or");
      if (more) term.and_next = take().text == "and";
      c->terms.push_back(std::move(term));
      if (!more) return true;
      if (peek().kind == Tok::kEnd) return fail(peek().offset, "expected a condition after 'and' or 'or'");
    }
  }

  std::string_view src_;
  Tokenizer tz_;
  Locator loc_;
  const Limits& limits_;
  int depth_ = 0;
  std::vector<Tok> toks_;
  size_t toks_pos_ = 0;
};

}  // namespace

bool parse_template(std::string_view source, const Limits& limits, Body* root, ErrorInfo* error) {
  if (source.size() > limits.max_template_bytes) {
    *error = ErrorInfo{1, 1,
                       "the template is " + std::to_string(source.size()) + " bytes, more than max_template_bytes (" +
                           std::to_string(limits.max_template_bytes) + ")"};
    return false;
  }
  size_t bad = 0;
  if (!valid_utf8(source, &bad)) {
    Locator loc(source);
    const Pos p = loc.at(bad);
    *error = ErrorInfo{p.line, p.column, "the template is not valid UTF-8"};
    return false;
  }
  Parser p(source, limits);
  if (!p.parse(root)) {
    *error = p.error;
    return false;
  }
  return true;
}

}  // namespace opk::liquid::internal
