// filters_string.cpp -- the string filters, as Liquid's (Ruby's String
// methods where Liquid calls them); lengths and offsets count characters.
#include <cstdint>
#include <limits>

#include "internal.h"

namespace opk::liquid::internal {

namespace {

// A value's text: the string itself, or its to_s.
class Str {
 public:
  explicit Str(const json& j) {
    if (j.is_string()) {
      view_ = j.get_ref<const std::string&>();
    } else {
      tmp_ = to_s(j);
      view_ = tmp_;
    }
  }
  std::string_view view() const { return view_; }

 private:
  std::string tmp_;
  std::string_view view_;
};

bool integer_arg(FilterEnv& e, int i, int64_t fallback, int64_t* out) {
  if (!e.has_arg(i) || e.arg(i).is_null()) {
    *out = fallback;
    return true;
  }
  if (to_integer(e.arg(i), out)) return true;
  return e.fail("argument " + std::to_string(i + 1) + " must be an integer, not '" + to_s(e.arg(i)) + "'");
}

bool f_escape(FilterEnv& e) {
  if (e.in().is_null()) return e.keep();
  std::string out;
  append_escaped(Str(e.in()).view(), out);
  return e.make(std::move(out));
}

bool entity_at(std::string_view s, size_t amp) {
  size_t i = amp + 1;
  if (i < s.size() && s[i] == '#') {
    const size_t d0 = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > d0 && i < s.size() && s[i] == ';';
  }
  const size_t a0 = i;
  while (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) ++i;
  return i > a0 && i < s.size() && s[i] == ';';
}

bool f_escape_once(FilterEnv& e) {
  const Str in(e.in());
  const std::string_view s = in.view();
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    switch (s[i]) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '&':
        out += entity_at(s, i) ? "&" : "&amp;";
        break;
      default:
        out += s[i];
    }
  }
  return e.make(std::move(out));
}

bool f_upcase(FilterEnv& e) {
  return e.make(upcase(Str(e.in()).view()));
}
bool f_downcase(FilterEnv& e) {
  return e.make(downcase(Str(e.in()).view()));
}
bool f_capitalize(FilterEnv& e) {
  return e.make(capitalize(Str(e.in()).view()));
}

bool f_append(FilterEnv& e) {
  std::string out(Str(e.in()).view());
  out += Str(e.arg(0)).view();
  return e.make(std::move(out));
}

bool f_prepend(FilterEnv& e) {
  std::string out(Str(e.arg(0)).view());
  out += Str(e.in()).view();
  return e.make(std::move(out));
}

enum class Which { kAll, kFirst, kLast };

// Replaces occurrences of `pat` in `s` by `rep`. An empty pattern matches
// before each character and at the end, as in Ruby.
bool replace(FilterEnv& e, Which which, std::string_view rep) {
  const Str in(e.in()), pattern(e.arg(0));
  const std::string_view s = in.view(), pat = pattern.view();
  std::string out;
  if (which == Which::kLast) {
    const size_t at = s.rfind(pat);
    if (at == std::string_view::npos) return e.make(std::string(s));
    out.append(s.substr(0, at)).append(rep).append(s.substr(at + pat.size()));
    return e.make(std::move(out));
  }
  if (pat.empty()) {
    if (which == Which::kFirst) return e.make(std::string(rep) + std::string(s));
    if (s.size() + (char_count(s) + 1) * rep.size() > e.ctx.limits.max_output_bytes)
      return e.fail("makes a string longer than max_output_bytes (" + std::to_string(e.ctx.limits.max_output_bytes) +
                    ")");
    for (size_t i = 0; i < s.size();) {
      out.append(rep);
      const size_t n = char_len(s, i);
      out.append(s.substr(i, n));
      i += n;
    }
    out.append(rep);
    return e.make(std::move(out));
  }
  size_t from = 0;
  while (true) {
    const size_t at = s.find(pat, from);
    if (at == std::string_view::npos) break;
    out.append(s.substr(from, at - from)).append(rep);
    from = at + pat.size();
    if (out.size() > e.ctx.limits.max_output_bytes)
      return e.fail("makes a string longer than max_output_bytes (" + std::to_string(e.ctx.limits.max_output_bytes) +
                    ")");
    if (which == Which::kFirst) break;
  }
  out.append(s.substr(from));
  return e.make(std::move(out));
}

bool f_replace(FilterEnv& e) {
  return replace(e, Which::kAll, Str(e.arg(1)).view());
}
bool f_replace_first(FilterEnv& e) {
  return replace(e, Which::kFirst, Str(e.arg(1)).view());
}
bool f_replace_last(FilterEnv& e) {
  return replace(e, Which::kLast, Str(e.arg(1)).view());
}
bool f_remove(FilterEnv& e) {
  return replace(e, Which::kAll, "");
}
bool f_remove_first(FilterEnv& e) {
  return replace(e, Which::kFirst, "");
}
bool f_remove_last(FilterEnv& e) {
  return replace(e, Which::kLast, "");
}

std::string_view lstrip(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && is_space(s[b])) ++b;
  return s.substr(b);
}

std::string_view rstrip(std::string_view s) {
  size_t e = s.size();
  while (e > 0 && (is_space(s[e - 1]) || s[e - 1] == '\0')) --e;
  return s.substr(0, e);
}

bool f_strip(FilterEnv& e) {
  return e.make(std::string(rstrip(lstrip(Str(e.in()).view()))));
}
bool f_lstrip(FilterEnv& e) {
  return e.make(std::string(lstrip(Str(e.in()).view())));
}
bool f_rstrip(FilterEnv& e) {
  return e.make(std::string(rstrip(Str(e.in()).view())));
}

bool f_squish(FilterEnv& e) {
  if (e.in().is_null()) return e.keep();
  const std::string_view s = rstrip(lstrip(Str(e.in()).view()));
  std::string out;
  bool space = false;
  for (char c : s) {
    if (is_space(c)) {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return e.make(std::move(out));
}

bool f_truncate(FilterEnv& e) {
  if (e.in().is_null()) return e.keep();
  int64_t length = 0;
  if (!integer_arg(e, 0, 50, &length)) return false;
  const Str in(e.in());
  const std::string ellipsis = e.has_arg(1) ? to_s(e.arg(1)) : "...";
  const std::string_view s = in.view();
  const auto chars = static_cast<int64_t>(char_count(s));
  if (chars <= length) return e.make(std::string(s));
  int64_t keep = length - static_cast<int64_t>(char_count(ellipsis));
  if (keep < 0) keep = 0;
  std::string out(s.substr(0, char_offset(s, static_cast<size_t>(keep))));
  out += ellipsis;
  return e.make(std::move(out));
}

bool f_truncatewords(FilterEnv& e) {
  if (e.in().is_null()) return e.keep();
  int64_t words = 0;
  if (!integer_arg(e, 0, 15, &words)) return false;
  if (words <= 0) words = 1;
  const Str in(e.in());
  const std::string_view s = in.view();
  const std::string ellipsis = e.has_arg(1) ? to_s(e.arg(1)) : "...";
  // Ruby's split(" ", words + 1): the words, and whether anything (even an
  // empty rest after white space) follows them.
  std::string out;
  size_t i = 0;
  int64_t n = 0;
  while (n < words) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i >= s.size()) break;
    const size_t b = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (n > 0) out += ' ';
    out.append(s.substr(b, i - b));
    ++n;
  }
  if (n < words || i >= s.size()) return e.make(std::string(s));
  out += ellipsis;
  return e.make(std::move(out));
}

bool f_split(FilterEnv& e) {
  const Str in(e.in()), pattern(e.arg(0));
  const std::string_view s = in.view(), pat = pattern.view();
  json out = json::array();
  const auto limit = static_cast<size_t>(e.ctx.limits.max_loop_iterations);
  auto push = [&](std::string_view part) {
    if (out.size() >= limit) return false;
    out.push_back(std::string(part));
    return true;
  };
  auto too_many = [&] {
    return e.fail("makes an array of more than " + std::to_string(limit) + " items (max_loop_iterations)");
  };
  if (pat == " ") {
    size_t i = 0;
    while (true) {
      while (i < s.size() && is_space(s[i])) ++i;
      if (i >= s.size()) break;
      const size_t b = i;
      while (i < s.size() && !is_space(s[i])) ++i;
      if (!push(s.substr(b, i - b))) return too_many();
    }
  } else if (pat.empty()) {
    for (size_t i = 0; i < s.size();) {
      const size_t n = char_len(s, i);
      if (!push(s.substr(i, n))) return too_many();
      i += n;
    }
  } else {
    size_t from = 0;
    while (true) {
      const size_t at = s.find(pat, from);
      if (at == std::string_view::npos) {
        if (!push(s.substr(from))) return too_many();
        break;
      }
      if (!push(s.substr(from, at - from))) return too_many();
      from = at + pat.size();
    }
    // Ruby drops empty strings at the end.
    while (!out.empty() && out.back().get_ref<const std::string&>().empty()) out.erase(out.size() - 1);
  }
  return e.make(std::move(out));
}

bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-' || c == '~';
}

bool f_url_encode(FilterEnv& e) {
  if (e.in().is_null()) return e.keep();
  static constexpr char kHex[] = "0123456789ABCDEF";
  const Str in(e.in());
  std::string out;
  for (unsigned char c : in.view()) {
    if (unreserved(c)) {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return e.make(std::move(out));
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool f_url_decode(FilterEnv& e) {
  if (e.in().is_null()) return e.keep();
  const Str in(e.in());
  const std::string_view s = in.view();
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  if (!valid_utf8(out)) return e.fail("the decoded text is not valid UTF-8");
  return e.make(std::move(out));
}

bool f_newline_to_br(FilterEnv& e) {
  const Str in(e.in());
  const std::string_view s = in.view();
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    if (s[i] == '\n')
      out += "<br />\n";
    else
      out += s[i];
  }
  return e.make(std::move(out));
}

bool f_strip_newlines(FilterEnv& e) {
  const Str in(e.in());
  const std::string_view s = in.view();
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    if (s[i] != '\n') out += s[i];
  }
  return e.make(std::move(out));
}

bool f_strip_html(FilterEnv& e) {
  const Str in(e.in());
  const std::string_view s = in.view();
  // First <script ...</script>, <!-- ... --> and <style ...</style> whole,
  // then every <...>; each the shortest match, as Liquid's regular expressions.
  std::string pass;
  for (size_t i = 0; i < s.size();) {
    size_t end = std::string_view::npos;
    if (s.compare(i, 7, "<script") == 0) {
      end = s.find("</script>", i + 7);
      if (end != std::string_view::npos) end += 9;
    } else if (s.compare(i, 4, "<!--") == 0) {
      end = s.find("-->", i + 4);
      if (end != std::string_view::npos) end += 3;
    } else if (s.compare(i, 6, "<style") == 0) {
      end = s.find("</style>", i + 6);
      if (end != std::string_view::npos) end += 8;
    }
    if (end != std::string_view::npos) {
      i = end;
    } else {
      pass += s[i++];
    }
  }
  std::string out;
  for (size_t i = 0; i < pass.size();) {
    if (pass[i] == '<') {
      const size_t close = pass.find('>', i + 1);
      if (close != std::string::npos) {
        i = close + 1;
        continue;
      }
    }
    out += pass[i++];
  }
  return e.make(std::move(out));
}

bool f_slice(FilterEnv& e) {
  int64_t offset = 0, length = 1;
  if (!integer_arg(e, 0, 0, &offset) || !integer_arg(e, 1, 1, &length)) return false;
  const json& in = e.in();
  const bool array = in.is_array();
  const Str text(array ? null_json() : in);
  const int64_t size = array ? static_cast<int64_t>(in.size()) : static_cast<int64_t>(char_count(text.view()));
  if (offset < 0) offset = offset < -size ? -1 - size : offset + size;
  if (offset < 0 || offset > size || length < 0) return e.make(array ? json::array() : json(""));
  const int64_t end = length > size - offset ? size : offset + length;
  if (array) {
    json out = json::array();
    for (int64_t i = offset; i < end; ++i) out.push_back(in[static_cast<size_t>(i)]);
    return e.make(std::move(out));
  }
  const std::string_view s = text.view();
  const size_t b = char_offset(s, static_cast<size_t>(offset));
  const size_t en = b + char_offset(s.substr(b), static_cast<size_t>(end - offset));
  return e.make(std::string(s.substr(b, en - b)));
}

}  // namespace

void add_string_filters(std::vector<FilterDef>* t) {
  t->insert(t->end(), {
                          {"escape", 0, 0, f_escape},
                          {"h", 0, 0, f_escape},
                          {"escape_once", 0, 0, f_escape_once},
                          {"upcase", 0, 0, f_upcase},
                          {"downcase", 0, 0, f_downcase},
                          {"capitalize", 0, 0, f_capitalize},
                          {"append", 1, 1, f_append},
                          {"prepend", 1, 1, f_prepend},
                          {"replace", 1, 2, f_replace},
                          {"replace_first", 1, 2, f_replace_first},
                          {"replace_last", 2, 2, f_replace_last},
                          {"remove", 1, 1, f_remove},
                          {"remove_first", 1, 1, f_remove_first},
                          {"remove_last", 1, 1, f_remove_last},
                          {"strip", 0, 0, f_strip},
                          {"lstrip", 0, 0, f_lstrip},
                          {"rstrip", 0, 0, f_rstrip},
                          {"squish", 0, 0, f_squish},
                          {"truncate", 0, 2, f_truncate},
                          {"truncatewords", 0, 2, f_truncatewords},
                          {"split", 1, 1, f_split},
                          {"url_encode", 0, 0, f_url_encode},
                          {"url_decode", 0, 0, f_url_decode},
                          {"newline_to_br", 0, 0, f_newline_to_br},
                          {"strip_newlines", 0, 0, f_strip_newlines},
                          {"strip_html", 0, 0, f_strip_html},
                          {"slice", 1, 2, f_slice},
                      });
}

}  // namespace opk::liquid::internal
