// lexer.h -- the template's tokens and a tag's markup tokens, for the parser.
#ifndef OPSKERNEL_SDK_LIQUID_LEXER_H
#define OPSKERNEL_SDK_LIQUID_LEXER_H

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace opk::liquid::internal {

// A token of the template: text, {{ output }} or {% tag %}.
struct Token {
  enum Kind { kText, kOutput, kTag, kEnd };
  Kind kind = kEnd;
  // Text: the text, whitespace control applied. Output and tag: the markup
  // between the delimiters and their '-' marks.
  std::string_view text;
  // Offset in the source of the token's start ({{, {% or the text) and of `text`.
  size_t offset = 0;
  size_t text_offset = 0;
};

// Splits a template into tokens, applying whitespace control ({{- -}} {%- -%}).
class Tokenizer {
 public:
  explicit Tokenizer(std::string_view source) : src_(source) {}

  // The next token (kEnd at the end). False, with *error and *error_offset,
  // when a {{ or {% is not closed.
  bool next(Token* t, std::string* error, size_t* error_offset);

  // Just after {% raw %}: the text up to the next {% endraw %}, verbatim,
  // and moves past that tag. False when there is none.
  bool raw_body(std::string_view* body, size_t* body_offset);

 private:
  std::string_view src_;
  size_t pos_ = 0;
  bool trim_next_ = false;  // the previous tag ended with -}} or -%}
};

// A token of a tag's or an output's markup.
struct Tok {
  enum Kind {
    kId,
    kString,
    kNumber,
    kDot,
    kDotDot,
    kColon,
    kComma,
    kPipe,
    kLBracket,
    kRBracket,
    kLParen,
    kRParen,
    kCmp,     // == != <> < > <= >=
    kAssign,  // =
    kEnd
  };
  Kind kind = kEnd;
  std::string_view text;  // a string's text without its quotes
  size_t offset = 0;      // in the template source
};

// Splits `markup` (at `base` in the source) into tokens ending with kEnd.
// False, with *error and *error_offset, on a character that starts none or
// a string not closed.
bool lex_markup(std::string_view markup, size_t base, std::vector<Tok>* out, std::string* error, size_t* error_offset);

// What a token kind is called in errors ("'|'", "a string", "the end").
std::string describe(const Tok& t);

}  // namespace opk::liquid::internal

#endif  // OPSKERNEL_SDK_LIQUID_LEXER_H
