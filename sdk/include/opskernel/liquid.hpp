// liquid.hpp -- opk::liquid, Liquid templates (Shopify's template language)
// rendered over nlohmann::json data; notifications render e-mail and webhook
// bodies with it.
//
// Why our own: Debian packages no maintained C++ Liquid library, and the SDK
// takes its dependencies from Debian only. This one parses a template once
// into a node tree; rendering walks the tree and never changes it, so one
// Template may be rendered from several threads at once.
//
//   opk::liquid::Template t;
//   opk::Status s = opk::liquid::Template::parse("Hello {{ user.name | default: 'you' }}!", &t);
//   std::string text;
//   if (s) s = t.render({{"user", {{"name", "Ada"}}}}, &text);   // "Hello Ada!"
//
// Semantics follow Shopify Liquid (https://shopify.github.io/liquid/);
// docs/templates.md lists the tags and filters, the limits and where this
// differs. Every error names the line and column (1-based; columns count
// characters) of what is wrong: "line 3, column 14: unknown tag 'endfo'".
// Link Opskernel::liquid.
#ifndef OPSKERNEL_LIQUID_HPP
#define OPSKERNEL_LIQUID_HPP

#include <opskernel/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <opskernel/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace opk::liquid {

// Bounds that keep a template from hanging its renderer or exhausting its
// memory, whatever the template and data. Parse refuses a template over
// max_template_bytes or nested deeper than max_depth; render stops with an
// error at the node that crosses any other bound.
struct Limits {
  // Size of the template source.
  size_t max_template_bytes = 1 << 20;
  // Nesting of blocks (if, for, case, capture ...) and of [ ] lookups.
  int max_depth = 64;
  // for-loop iterations in one render, all loops together; also the most
  // items an array made by a filter or a range may hold.
  int64_t max_loop_iterations = 100'000;
  // Bytes of rendered output; also the largest string a capture or a filter
  // may make.
  size_t max_output_bytes = 1 << 20;
  // Bytes of the values that filters, captures and ranges make in one
  // render, all together (what is dropped again still counts).
  size_t max_memory_bytes = size_t{64} << 20;
  // Work in one render: one step per tag or output rendered and per filter
  // applied, plus one per 64 bytes or per item a filter reads.
  int64_t max_steps = 10'000'000;
};

// How one rendering goes; the channel that renders chooses.
struct RenderOptions {
  // When true, the text of every `{{ }}` and `echo` is HTML-escaped (as by
  // the escape filter) unless its last filter is escape or escape_once, or
  // it outputs, unfiltered, a variable made by `capture` (whose own outputs
  // were escaped as they ran). Text of the template itself is never escaped.
  bool escape_html = false;
  // When true, a variable or key that is not there is a render error
  // ("undefined variable 'x'"), in conditions too; by default it is nil and
  // renders as nothing, as in Liquid.
  bool strict_variables = false;
  // The instant "now" and "today" mean to the date filter, in seconds since
  // the Unix epoch; unset: the system clock.
  std::optional<int64_t> now;
};

// Where a parse or render error is and what it says.
struct ErrorInfo {
  // 1-based line and column (in characters) of what is wrong.
  int line = 0;
  int column = 0;
  // What is wrong, without the location ("unknown tag 'endfo'").
  std::string message;
};

// A parsed template. Cheap to copy (copies share the parsed tree); an empty
// Template renders nothing.
class Template {
 public:
  Template();
  ~Template();
  Template(const Template&);
  Template& operator=(const Template&);
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Parses `source` into `*out`, whose renders then keep to `limits`. On an
  // error returns INVALID_ARGUMENT with "line L, column C: what" (an unknown
  // tag or filter, a tag never closed, bad syntax, a limit), leaves `*out`
  // as it was and, when `error` is given, fills it.
  static opk::Status parse(std::string_view source, Template* out, const Limits& limits = {},
                           ErrorInfo* error = nullptr);

  // Renders the template over `data` (a JSON object, or null for none) and
  // sets `*out` to the text. On an error (a bad filter argument, divided_by
  // 0, an undefined variable in strict mode, a limit) returns
  // INVALID_ARGUMENT with "line L, column C: what", leaves `*out` empty and,
  // when `error` is given, fills it. Thread-safe.
  opk::Status render(const nlohmann::json& data, std::string* out, const RenderOptions& options = {},
                     ErrorInfo* error = nullptr) const;

  // The limits given to parse.
  const Limits& limits() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace opk::liquid

#endif  // OPSKERNEL_LIQUID_HPP
