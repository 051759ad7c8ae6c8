// lexer.cpp -- the template's tokens and a tag's markup tokens.
#include "lexer.h"

#include "internal.h"

namespace opk::liquid::internal {

namespace {

bool id_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool id_char(char c) {
  return id_start(c) || (c >= '0' && c <= '9') || c == '-';
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}

// The next "{{" or "{%" at or after `from`, or npos.
size_t find_open(std::string_view s, size_t from) {
  while (true) {
    const size_t p = s.find('{', from);
    if (p == std::string_view::npos || p + 1 >= s.size()) return std::string_view::npos;
    if (s[p + 1] == '{' || s[p + 1] == '%') return p;
    from = p + 1;
  }
}

}  // namespace

bool Tokenizer::next(Token* t, std::string* error, size_t* error_offset) {
  while (true) {
    if (pos_ >= src_.size()) {
      *t = Token{Token::kEnd, {}, src_.size(), src_.size()};
      return true;
    }
    const size_t open = find_open(src_, pos_);
    const size_t text_end = open == std::string_view::npos ? src_.size() : open;
    if (text_end > pos_) {
      size_t b = pos_, e = text_end;
      if (trim_next_)
        while (b < e && is_space(src_[b])) ++b;
      if (open != std::string_view::npos && open + 2 < src_.size() && src_[open + 2] == '-')
        while (e > b && is_space(src_[e - 1])) --e;
      trim_next_ = false;
      pos_ = text_end;
      if (e > b) {
        *t = Token{Token::kText, src_.substr(b, e - b), b, b};
        return true;
      }
      continue;
    }
    // A {{ or {% at pos_.
    trim_next_ = false;
    const bool output = src_[open + 1] == '{';
    const size_t close = src_.find(output ? "}}" : "%}", open + 2);
    if (close == std::string_view::npos) {
      *error = output ? "'{{' was not closed with '}}'" : "'{%' was not closed with '%}'";
      *error_offset = open;
      return false;
    }
    size_t b = open + 2, e = close;
    if (b < e && src_[b] == '-') ++b;
    if (e > b && src_[e - 1] == '-') {
      --e;
      trim_next_ = true;
    }
    pos_ = close + 2;
    *t = Token{output ? Token::kOutput : Token::kTag, src_.substr(b, e - b), open, b};
    return true;
  }
}

bool Tokenizer::raw_body(std::string_view* body, size_t* body_offset) {
  size_t from = pos_;
  while (true) {
    const size_t p = src_.find("{%", from);
    if (p == std::string_view::npos) return false;
    size_t i = p + 2;
    if (i < src_.size() && src_[i] == '-') ++i;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.substr(i, 6) == "endraw" && (i + 6 >= src_.size() || !id_char(src_[i + 6]))) {
      i += 6;
      while (i < src_.size() && is_space(src_[i])) ++i;
      bool trim = false;
      if (i < src_.size() && src_[i] == '-') {
        trim = true;
        ++i;
      }
      if (src_.substr(i, 2) == "%}") {
        *body = src_.substr(pos_, p - pos_);
        *body_offset = pos_;
        pos_ = i + 2;
        trim_next_ = trim;
        return true;
      }
    }
    from = p + 2;
  }
}

bool lex_markup(std::string_view m, size_t base, std::vector<Tok>* out, std::string* error, size_t* error_offset) {
  out->clear();
  size_t i = 0;
  auto push = [&](Tok::Kind k, size_t b, size_t len) { out->push_back(Tok{k, m.substr(b, len), base + b}); };
  while (i < m.size()) {
    const char c = m[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (id_start(c)) {
      size_t j = i + 1;
      while (j < m.size() && id_char(m[j])) ++j;
      if (j < m.size() && m[j] == '?') ++j;
      push(Tok::kId, i, j - i);
      i = j;
      continue;
    }
    if (digit(c) || (c == '-' && i + 1 < m.size() && digit(m[i + 1]))) {
      size_t j = i + 1;
      while (j < m.size() && digit(m[j])) ++j;
      if (j + 1 < m.size() && m[j] == '.' && digit(m[j + 1])) {
        j += 2;
        while (j < m.size() && digit(m[j])) ++j;
      }
      push(Tok::kNumber, i, j - i);
      i = j;
      continue;
    }
    if (c == '"' || c == '\'') {
      const size_t close = m.find(c, i + 1);
      if (close == std::string_view::npos) {
        *error = std::string("string not closed with ") + c;
        *error_offset = base + i;
        return false;
      }
      out->push_back(Tok{Tok::kString, m.substr(i + 1, close - i - 1), base + i});
      i = close + 1;
      continue;
    }
    const char n = i + 1 < m.size() ? m[i + 1] : '\0';
    if ((c == '=' || c == '!') && n == '=') {
      push(Tok::kCmp, i, 2);
      i += 2;
      continue;
    }
    if (c == '<' || c == '>') {
      const size_t len = (n == '=' || (c == '<' && n == '>')) ? 2 : 1;
      push(Tok::kCmp, i, len);
      i += len;
      continue;
    }
    if (c == '.' && n == '.') {
      push(Tok::kDotDot, i, 2);
      i += 2;
      continue;
    }
    Tok::Kind k;
    switch (c) {
      case '.':
        k = Tok::kDot;
        break;
      case ':':
        k = Tok::kColon;
        break;
      case ',':
        k = Tok::kComma;
        break;
      case '|':
        k = Tok::kPipe;
        break;
      case '[':
        k = Tok::kLBracket;
        break;
      case ']':
        k = Tok::kRBracket;
        break;
      case '(':
        k = Tok::kLParen;
        break;
      case ')':
        k = Tok::kRParen;
        break;
      case '=':
        k = Tok::kAssign;
        break;
      default: {
        const size_t len = char_len(m, i);
        *error = "unexpected character '" + std::string(m.substr(i, len)) + "'";
        *error_offset = base + i;
        return false;
      }
    }
    push(k, i, 1);
    ++i;
  }
  out->push_back(Tok{Tok::kEnd, {}, base + m.size()});
  return true;
}

std::string describe(const Tok& t) {
  switch (t.kind) {
    case Tok::kEnd:
      return "the end";
    case Tok::kString:
      return "the string '" + std::string(t.text) + "'";
    default:
      return "'" + std::string(t.text) + "'";
  }
}

}  // namespace opk::liquid::internal
