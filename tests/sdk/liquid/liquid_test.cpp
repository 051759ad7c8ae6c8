// opk::liquid against tables of template, data and the expected output (or
// error), with the semantics of Shopify Liquid; then the limits: templates
// that would hang or exhaust memory are refused, quickly, naming the limit.
#include <gtest/gtest.h>
#include <opskernel/liquid.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace opk::liquid {
namespace {

using nlohmann::json;

constexpr int kEscape = 1;  // RenderOptions::escape_html
constexpr int kStrict = 2;  // RenderOptions::strict_variables

// "now" for the date filter: 2027-01-15T08:00:00Z.
constexpr int64_t kNow = 1800000000;

struct Case {
  const char* tpl;
  const char* want;
  const char* data = nullptr;  // JSON; null: kData
  int flags = 0;
};

const char* const kData = R"({
  "name": "Ada", "empty_s": "", "zero": 0, "f": false, "t": true, "n": null,
  "num": 42, "neg": -7, "pi": 3.14159, "price": 4.5,
  "words": "the quick brown fox",
  "list": [3, 1, 2], "strs": ["b", "a", "C"], "empty_a": [], "empty_o": {},
  "user": {"name": "Bob", "tags": ["x", "y"], "address": {"city": "Oslo"}},
  "items": [{"name": "a", "price": 3, "ok": true}, {"name": "b", "price": 1, "ok": false},
            {"name": "c", "price": 2, "ok": true}],
  "html": "<b>Tom & \"Jerry\"</b>",
  "key": "name", "idx": 1,
  "ts": 1767225600, "iso": "2026-01-02T03:04:05Z",
  "mixed": [3, null, 1], "nested": [[1, 2], [3, [4]]], "dup": [1, 2, 1, "1", 2], "prices": [0.1, 0.2],
  "ws": "  \n"
})";

RenderOptions options(int flags) {
  RenderOptions o;
  o.escape_html = flags & kEscape;
  o.strict_variables = flags & kStrict;
  o.now = kNow;
  return o;
}

// Parses and renders; the output, or "ERROR: " and the error.
std::string run(const std::string& tpl, const json& data, int flags = 0, const Limits& limits = {}) {
  Template t;
  Status s = Template::parse(tpl, &t, limits);
  if (!s) return "ERROR: " + s.message();
  std::string out;
  s = t.render(data, &out, options(flags));
  if (!s) return "ERROR: " + s.message();
  return out;
}

std::string run_case(const Case& c) {
  static const json kDefault = json::parse(kData);
  return run(c.tpl, c.data ? json::parse(c.data) : kDefault, c.flags);
}

// --- Outputs and lookups -------------------------------------------------------

const Case kOutput[] = {
    {"Hello {{ name }}!", "Hello Ada!"},
    {"{{ user.name }}", "Bob"},
    {"{{ user.address.city }}", "Oslo"},
    {"{{ user['name'] }}", "Bob"},
    {R"({{ user["address"]["city"] }})", "Oslo"},
    {"{{ user[key] }}", "Bob"},
    {"{{ list[0] }}{{ list[-1] }}", "32"},
    {"{{ list[idx] }}", "1"},
    {"{{ list[9] }}|", "|"},
    {"{{ list.size }} {{ list.first }} {{ list.last }}", "3 3 2"},
    {"{{ name.size }} {{ name.first }}{{ name.last }}", "3 Aa"},
    {"{{ user.size }} {{ user.tags.size }}", "3 2"},
    {"{{ missing }}|{{ missing.deep.er }}|{{ user.nope }}|{{ user.name.nope }}", "|||"},
    {"{{ n }}|{{ t }}|{{ f }}", "|true|false"},
    {"{{ num }} {{ neg }} {{ pi }} {{ price }}", "42 -7 3.14159 4.5"},
    {"{{ list }} {{ user.tags }}", "312 xy"},
    {R"({{ 'single' }} {{ "double" }})", "single double"},
    {"{{ 12 }} {{ -3 }} {{ 1.50 }} {{ 2.0 }}", "12 -3 1.5 2.0"},
    {"{{ true }} {{ false }} {{ nil }}|{{ null }}|", "true false ||"},
    {"{{ empty_o }}|{{ empty_a }}|{{ empty }}|{{ blank }}|{{ }}", "{}||||"},
    {"{{ user }}", R"({"address"=>{"city"=>"Oslo"}, "name"=>"Bob", "tags"=>["x", "y"]})"},
    {"{{ items[1].name }} {{ items.last.price }}", "b 2"},
    {"{{ my-key }} {{ ['my key'] }}", "v 1", R"({"my-key": "v", "my key": 1})"},
    {"{{ h.size }} {{ h.first }}", "big 1", R"({"h": {"size": "big", "first": 1}})"},
    {"{{ big }} {{ small }} {{ x }} {{ third }}", "1.0e+20 1.0e-05 1000000000000000.0 0.30000000000000004",
     R"({"big": 1e20, "small": 0.00001, "x": 1e15, "third": 0.30000000000000004})"},
    {"{{ u }}", "18446744073709551615", R"({"u": 18446744073709551615})"},
    {"{{ user.tags[1] }}", "y"},
    {"{{ a.b.c }}", "deep", R"({"a": {"b": {"c": "deep"}}})"},
    {"{{ a[0][1] }}", "2", R"({"a": [[1, 2]]})"},
    {"{{ forloop }}|{{ forloop.index }}|", "||"},
};

// --- Whitespace control ----------------------------------------------------------

const Case kWhitespace[] = {
    {"a  {{- name -}}  b", "aAdab"},
    {"a \n {%- if true -%} \n b \n {%- endif -%} \n c", "abc"},
    {"{% if true %}\n  x\n{% endif %}", "\n  x\n"},
    {"{%- assign a = 1 -%}\n{{ a }}", "1"},
    {"[ {{- name }} ]", "[Ada ]"},
    {"[ {{ name -}} ]", "[ Ada]"},
    {"{% for i in (1..3) -%} {{ i }} {%- endfor %}", "123"},
    {"x\n{%- comment %} c {% endcomment -%}\ny", "xy"},
    {"{%- raw -%} {{ a }} {%- endraw -%} |", " {{ a }} |"},
    {"a\n\t {{- '' -}} \r\n b", "ab"},
    // A block that renders no text drops its whitespace, as in Liquid.
    {"{% if true %}  {% assign x = 1 %}  {% endif %}[{{ x }}]", "[1]"},
    {"{% for i in list %}\n  {% assign last = i %}\n{% endfor %}{{ last }}", "2"},
    {"{% if true %} x {% endif %}", " x "},
    {"{% if true %} {% endif %}|", "|"},
    {"{% case 1 %} {% when 1 %} {% assign y = 2 %} {% endcase %}[{{ y }}]", "[2]"},
    {"{% capture c %} {% endcapture %}[{{ c }}]", "[ ]"},
    {"{% unless false %} {% increment k %} {% endunless %}", " 0 "},
};

// --- Truthiness and conditions -----------------------------------------------------

const Case kConditions[] = {
    {"{% if empty_s %}y{% else %}n{% endif %}", "y"},
    {"{% if zero %}y{% else %}n{% endif %}", "y"},
    {"{% if empty_a %}y{% else %}n{% endif %}", "y"},
    {"{% if f %}y{% else %}n{% endif %}", "n"},
    {"{% if n %}y{% else %}n{% endif %}", "n"},
    {"{% if missing %}y{% else %}n{% endif %}", "n"},
    {"{% if t %}y{% else %}n{% endif %}", "y"},
    {"{% unless f %}y{% endunless %}", "y"},
    {"{% unless num %}y{% else %}n{% endunless %}", "n"},
    {"{% if num == 42 %}y{% endif %}", "y"},
    {"{% if num != 42 %}y{% else %}n{% endif %}", "n"},
    {"{% if num <> 41 %}y{% endif %}", "y"},
    {"{% if num > 41 and num < 43 %}y{% endif %}", "y"},
    {"{% if num >= 42 %}y{% endif %}{% if num <= 41 %}z{% endif %}", "y"},
    {"{% if 1 == 1.0 %}y{% endif %}", "y"},
    {"{% if '1' == 1 %}y{% else %}n{% endif %}", "n"},
    {"{% if name == 'Ada' %}y{% endif %}", "y"},
    {"{% if 'abc' < 'abd' %}y{% endif %}", "y"},
    {"{% if price < 5 %}y{% endif %}", "y"},
    {"{% if n < 5 %}y{% else %}n{% endif %}", "n"},
    {"{% if t > 1 %}y{% else %}n{% endif %}", "n"},
    {"{% if list == list %}y{% endif %}", "y"},
    {"{% if words contains 'quick' %}y{% endif %}", "y"},
    {"{% if words contains 'slow' %}y{% else %}n{% endif %}", "n"},
    {"{% if user.tags contains 'x' %}y{% endif %}", "y"},
    {"{% if list contains 2 %}y{% endif %}", "y"},
    {"{% if list contains '2' %}y{% else %}n{% endif %}", "n"},
    {"{% if user contains 'name' %}y{% endif %}", "y"},
    {"{% if n contains 'a' %}y{% else %}n{% endif %}", "n"},
    {"{% if '123' contains 2 %}y{% endif %}", "y"},
    // and/or group from the right: a or (b and c), a and (b or c).
    {"{% if true or false and false %}y{% else %}n{% endif %}", "y"},
    {"{% if false and false or true %}y{% else %}n{% endif %}", "n"},
    {"{% if true and false or true %}y{% else %}n{% endif %}", "y"},
    {"{% if false or false or true %}y{% endif %}", "y"},
    {"{% if true and true and false %}y{% else %}n{% endif %}", "n"},
    {"{% if num == 42 and name == 'Ada' %}y{% endif %}", "y"},
    {"{% if empty_s == empty %}y{% endif %}", "y"},
    {"{% if empty_a == empty and empty_o == empty %}y{% endif %}", "y"},
    {"{% if n == empty %}y{% else %}n{% endif %}", "n"},
    {"{% if name == empty %}y{% else %}n{% endif %}", "n"},
    {"{% if empty == empty_s %}y{% endif %}", "y"},
    {"{% if name != empty %}y{% endif %}", "y"},
    {"{% if ws == blank %}y{% endif %}", "y"},
    {"{% if n == blank and f == blank and missing == blank and empty_a == blank %}y{% endif %}", "y"},
    {"{% if zero == blank %}y{% else %}n{% endif %}", "n"},
    {"{% if name == blank %}y{% else %}n{% endif %}", "n"},
    {"{% if num == 1 %}a{% elsif num == 42 %}b{% else %}c{% endif %}", "b"},
    {"{% if false %}a{% elsif false %}b{% else %}c{% endif %}", "c"},
    {"{% if false %}a{% elsif true %}b{% elsif true %}c{% endif %}", "b"},
    {"{% if true %}{% if false %}a{% else %}b{% endif %}{% endif %}", "b"},
    {"{% unless true %}a{% else %}b{% endunless %}", "b"},
    {"{% unless true %}a{% elsif true %}b{% endunless %}", "b"},
};

// --- case, for, assign, capture, counters, cycle, comment, raw, echo ------------------

const Case kTags[] = {
    {"{% case num %}{% when 1 %}one{% when 42 %}answer{% else %}other{% endcase %}", "answer"},
    {"{% case name %}{% when 'Bob', 'Ada' %}known{% else %}unknown{% endcase %}", "known"},
    {"{% case name %}{% when 'Bob' or 'Ada' %}known{% endcase %}", "known"},
    {"{% case 7 %}{% when 1 %}one{% else %}none{% endcase %}", "none"},
    {"{% case missing %}{% when nil %}nil{% endcase %}", "nil"},
    {"{% case empty_a %}{% when empty %}e{% endcase %}", "e"},
    {"{% case 2 %}{% when 1 %}a{% when 2 %}b{% when 2 %}c{% else %}d{% endcase %}", "bc"},
    {"{% case 'x' %} junk {% when 'x' %}X{% endcase %}", "X"},
    {"{% case 1.0 %}{% when 1 %}one{% endcase %}", "one"},
    {"{% for i in list %}{{ i }},{% endfor %}", "3,1,2,"},
    {"{% for i in (1..5) %}{{ i }}{% endfor %}", "12345"},
    {"{% for i in (1..num) limit: 3 %}{{ i }}{% endfor %}", "123"},
    {"{% for i in (idx..3) %}{{ i }}{% endfor %}", "123"},
    {"{% for i in (-2..0) %}{{ i }}{% endfor %}", "-2-10"},
    {"{% for i in (3..1) %}{{ i }}{% else %}none{% endfor %}", "none"},
    {"{% for i in list reversed %}{{ i }}{% endfor %}", "213"},
    {"{% for i in (1..10) limit: 3 offset: 2 %}{{ i }}{% endfor %}", "345"},
    {"{% for i in (1..10) offset: 8 %}{{ i }}{% endfor %}", "910"},
    {"{% for i in (1..6) limit: 2 reversed %}{{ i }}{% endfor %}", "21"},
    {"{% for i in list limit: 2 %}{{ i }}{% endfor %}-{% for i in list offset: continue %}{{ i }}{% endfor %}", "31-2"},
    {"{% for i in list limit: idx %}{{ i }}{% endfor %}", "3"},
    {"{% for i in list %}{{ forloop.index }}/{{ forloop.index0 }}/{{ forloop.rindex }}/{{ forloop.rindex0 }}/"
     "{{ forloop.length }}{% if forloop.first %}F{% endif %}{% if forloop.last %}L{% endif %} {% endfor %}",
     "1/0/3/2/3F 2/1/2/1/3 3/2/1/0/3L "},
    {"{% for a in (1..2) %}{% for b in (1..2) %}{{ forloop.parentloop.index }}{{ forloop.index }} "
     "{% endfor %}{% endfor %}",
     "11 12 21 22 "},
    {"{% for i in (1..2) %}{{ forloop.name }}{% endfor %}", "i-(1..2)i-(1..2)"},
    {"{% for i in (1..1) %}{% assign f = forloop %}{% endfor %}{{ f.length }}{{ f.last }}", "1true"},
    {"{% for i in empty_a %}x{% else %}empty{% endfor %}", "empty"},
    {"{% for i in missing %}x{% else %}none{% endfor %}", "none"},
    {"{% for i in n %}x{% endfor %}|", "|"},
    {"{% for p in user.address %}{{ p[0] }}={{ p[1] }}{% endfor %}", "city=Oslo"},
    {"{% for c in name %}[{{ c }}]{% endfor %}", "[Ada]"},
    {"{% for i in (1..10) %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", "123"},
    {"{% for i in (1..5) %}{% if i == 2 or i == 4 %}{% continue %}{% endif %}{{ i }}{% endfor %}", "135"},
    {"{% for a in (1..2) %}{% for b in (1..3) %}{% if b == 2 %}{% break %}{% endif %}{{ a }}{{ b }} "
     "{% endfor %}{% endfor %}",
     "11 21 "},
    {"{% for i in list %}{% endfor %}[{{ i }}]", "[]"},
    {"{% for i in list %}{% assign last = i %}{% endfor %}{{ last }}", "2"},
    {"{% for item in items %}{{ item.name }}{% unless forloop.last %}, {% endunless %}{% endfor %}", "a, b, c"},
    {"{% for item in items %}{% if item.ok %}{{ item.name }}{% endif %}{% endfor %}", "ac"},
    {"{% for x in list %}{% assign x = 5 %}{{ x }}{% endfor %}", "312"},
    {"{{ (1..4) | join: '-' }}", "1-2-3-4"},
    {"{% assign r = (1..3) %}{{ r | size }}{{ r.last }}", "33"},
    {"a{% break %}b", "a"},
    {"{% assign x = 'hi' %}{{ x }}", "hi"},
    {"{% assign x = num | plus: 1 %}{{ x }}", "43"},
    {"{% assign name = 'Zed' %}{{ name }}", "Zed"},
    {"{% assign x = user.tags %}{{ x.size }}{{ x[1] }}", "2y"},
    {"{% assign a = 'x' %}{% assign b = a %}{% assign a = 'y' %}{{ b }}{{ a }}", "xy"},
    {"{% assign a = list | sort %}{% assign b = a.first %}{% assign a = 0 %}{{ b }}", "1"},
    {"{% capture greeting %}Hello {{ name }}!{% endcapture %}{{ greeting | upcase }}", "HELLO ADA!"},
    {"{% capture c %}{% for i in list %}{{ i }}{% endfor %}{% endcapture %}[{{ c }}]", "[312]"},
    {"{% capture 'quoted' %}q{% endcapture %}{{ quoted }}", "q"},
    {"{% increment c %}{% increment c %}{% increment c %}", "012"},
    {"{% decrement d %}{% decrement d %}", "-1-2"},
    {"{% increment c %}{% decrement c %}{% increment c %}", "000"},
    {"{% assign c = 10 %}{% increment c %}{{ c }}", "010"},
    {"{% increment c %}{{ c }}", "01"},
    {"{% increment num %}{% increment num %}", "4243"},
    {"{% for i in (1..4) %}{% cycle 'a', 'b', 'c' %}{% endfor %}", "abca"},
    {"{% cycle 'a', 'b' %}{% cycle 'a', 'b' %}{% cycle 'a', 'b' %}", "aba"},
    {"{% cycle 'g1': 'a', 'b' %}{% cycle 'g2': 'a', 'b' %}{% cycle 'g1': 'a', 'b' %}", "aab"},
    {"{% cycle 'x', 'y' %}{% cycle 'a', 'b' %}", "xa"},
    {"{% for i in (1..3) %}{% cycle name, 'z' %}{% endfor %}", "AdazAda"},
    {"{% for i in (1..3) %}{% cycle group: list, 'z' %}{% endfor %}", "312z312",
     R"({"group": "g", "list": [3, 1, 2]})"},
    {"a{% comment %} {{ nope }} {% if %} {% endcomment %}b", "ab"},
    {"a{% comment %}x{% comment %}y{% endcomment %}z{% endcomment %}b", "ab"},
    {"{% comment %}{% raw %}{% endcomment %}{% endraw %}{% endcomment %}x", "x"},
    {"{% raw %}{{ name }} {% if %}{% endraw %}", "{{ name }} {% if %}"},
    {"a{% # an inline comment %}b", "ab"},
    {"{% echo name | upcase %}", "ADA"},
    {"{% echo 'a' %}{% echo list %}", "a312"},
};

// --- Filters -----------------------------------------------------------------------

const Case kStringFilters[] = {
    {"{{ html | escape }}", "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;"},
    {R"({{ "it's" | escape }} {{ 1 | escape }} {{ n | escape }}|)", "it&#39;s 1 |"},
    {"{{ html | h }}", "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;"},
    {"{{ '&lt; & &amp; <' | escape_once }}", "&lt; &amp; &amp; &lt;"},
    {"{{ '&#39; &#x27; &copy' | escape_once }}", "&#39; &amp;#x27; &amp;copy"},
    {"{{ 'Hello' | upcase }} {{ 'Hello' | downcase }} {{ n | upcase }}|", "HELLO hello |"},
    {"{{ 'élan über ß' | upcase }} {{ 'ÀÉÎ ΣΑΣ ПРИВЕТ' | downcase }}", "ÉLAN ÜBER ß àéî σασ привет"},
    {"{{ 'hELLO wORLD' | capitalize }} {{ 'émile' | capitalize }} {{ '' | capitalize }}|", "Hello world Émile |"},
    {"{{ 'a' | append: 'b' | prepend: 'c' }} {{ 1 | append: 2 }} {{ n | append: 'x' }}", "cab 12 x"},
    {"{{ 'a a a' | replace: 'a', 'b' }}|{{ 'a a a' | replace_first: 'a', 'b' }}|{{ 'a a a' | replace_last: 'a', 'b' }}",
     "b b b|b a a|a a b"},
    {"[{{ 'a a a' | remove: 'a' }}][{{ 'a b a' | remove_first: 'a ' }}][{{ 'a b a' | remove_last: 'a' }}]",
     "[  ][b a][a b ]"},
    {"{{ '1 1 1' | replace: '1', 2 }} {{ 'abc' | replace: '', '-' }} {{ 'abc' | replace: 'b' }} "
     "{{ 'abc' | replace_first: '', '-' }}",
     "2 2 2 -a-b-c- ac -abc"},
    {"[{{ '  x y  ' | strip }}][{{ '  x  ' | lstrip }}][{{ '  x  ' | rstrip }}]", "[x y][x  ][  x]"},
    {"[{{ ' a  b \n c ' | squish }}]", "[a b c]"},
    {"{{ words | truncate: 10 }}|{{ words | truncate: 10, '' }}|{{ words | truncate: 100 }}",
     "the qui...|the quick |the quick brown fox"},
    {"{{ 'ab' | truncate: 0 }} {{ '测试测试测试测试' | truncate: 5 }} {{ '1234567890' | truncate: 5, 1 }}",
     "... 测试... 12341"},
    {"{{ words | truncatewords: 2 }}|{{ words | truncatewords: 2, '--' }}|{{ words | truncatewords: 10 }}|"
     "{{ words | truncatewords: 0 }}",
     "the quick...|the quick--|the quick brown fox|the..."},
    {"{{ 'one  two\tthree\nfour' | truncatewords: 3 }}", "one two three..."},
    {"{{ 'a,b,,c,,' | split: ',' | join: '|' }} {{ '  a  b ' | split: ' ' | join: '|' }} "
     "{{ 'abc' | split: '' | join: '|' }} {{ words | split: ' ' | size }}",
     "a|b||c a|b a|b|c 4"},
    {"{{ ',a' | split: ',' | size }} {{ '' | split: ',' | size }}", "2 0"},
    {"{{ 'foo+1@example.com' | url_encode }} {{ 'a b/c?d=é~' | url_encode }}",
     "foo%2B1%40example.com a+b%2Fc%3Fd%3D%C3%A9~"},
    {"{{ 'a+b%20c%2Fd%zz' | url_decode }}", "a b c/d%zz"},
    {"{{ \"a\nb\r\nc\" | newline_to_br }}", "a<br />\nb<br />\nc"},
    {"{{ \"a\nb\r\nc\rd\" | strip_newlines }}", "abc\rd"},
    {"{{ '<p>Hi <b>there</b></p><script>x(\"<b>\")</script><!-- <i>c</i> --><style>p{}</style>!' | strip_html }}",
     "Hi there!"},
    {"{{ '<div\nclass=\"a\">t</div>' | strip_html }}", "t"},
    {"{{ 'foobar' | slice: 1, 3 }} {{ 'foobar' | slice: -2, 2 }} {{ 'foobar' | slice: -1 }} "
     "[{{ 'foobar' | slice: 100, 2 }}] [{{ 'foobar' | slice: 6 }}] {{ 'foobar' | slice: '1', '3' }}",
     "oob ar r [] [] oob"},
    {"{{ list | slice: 1, 2 | join: ',' }} {{ 'héllo' | slice: 1, 2 }} {{ list | slice: -5, 2 | size }}", "1,2 él 0"},
    {"{{ 'héllo' | size }} {{ list | size }} {{ user | size }} {{ num | size }} {{ n | size }}", "5 3 3 0 0"},
    {"{{ html | strip_html | escape }}", "Tom &amp; &quot;Jerry&quot;"},
    {"{{ 'x' | json }} {{ user.tags | json }} {{ n | json }} {{ price | json }}", R"("x" ["x","y"] null 4.5)"},
};

const Case kDateFilter[] = {
    {"{{ ts | date: '%Y-%m-%d %H:%M:%S' }}", "2026-01-01 00:00:00"},
    {"{{ iso | date: '%a %d %b %Y, %H:%M' }}", "Fri 02 Jan 2026, 03:04"},
    {"{{ '2026-03-09' | date: '%A %B %-d, %j' }}", "Monday March 9, 068"},
    {"{{ '2026-01-02T03:04:05+02:00' | date: '%H:%M %Z %z %:z' }}", "01:04 UTC +0000 +00:00"},
    {"{{ '2026-01-02 03:04:05-0130' | date: '%H:%M' }}", "04:34"},
    {"{{ ts | date: '%I:%M %p %P %e|%k|%l' }}", "12:00 AM am  1| 0|12"},
    {"{{ '1767225600' | date: '%s' }} {{ -86400 | date: '%F' }}", "1767225600 1969-12-31"},
    {"{{ 'now' | date: '%Y-%m-%d %H:%M' }} {{ 'Today' | date: '%Y' }}", "2027-01-15 08:00 2027"},
    {"{{ 'not a date' | date: '%Y' }}|{{ '' | date: '%Y' }}|{{ ts | date: '' }}|{{ n | date: '%Y' }}|",
     "not a date||1767225600||"},
    {"{{ '2026-02-30' | date: '%F' }}", "2026-02-30"},
    {"{{ ts | date: '%^a %^B %-m/%-d/%y %D %F %T %R %C' }}",
     "THU JANUARY 1/1/26 01/01/26 2026-01-01 00:00:00 00:00 20"},
    {"{{ '2026-01-02 03:04:05.123' | date: '%L %N %3N' }}", "123 123000000 123"},
    {"{{ 1767225600.5 | date: '%S.%L' }}", "00.500"},
    {"{{ '2027-01-01' | date: '%G-W%V-%u %U %W %w' }}", "2026-W53-5 00 00 5"},
    {"{{ '2026-12-31T23:59:59Z' | date: '%j %U %W %V' }}", "365 52 52 53"},
    {"{{ ts | date: '%c' }}|{{ ts | date: '%x %X %r' }}", "Thu Jan  1 00:00:00 2026|01/01/26 00:00:00 12:00:00 AM"},
    {"{{ ts | date: '%%|%Q|%-5d|%5d|%_m|%10A|' }}", "%|%Q|1|00001| 1|  Thursday|"},
};

const Case kOtherFilters[] = {
    {"{{ n | default: 'x' }} {{ f | default: 'x' }} {{ empty_s | default: 'x' }} {{ empty_a | default: 'x' }} "
     "{{ empty_o | default: 'x' }} {{ zero | default: 'x' }} {{ name | default: 'x' }}",
     "x x x x x 0 Ada"},
    {"{{ f | default: 'x', allow_false: true }} {{ n | default: 'x', allow_false: true }} "
     "{{ t | default: 'x', allow_false: false }}",
     "false x true"},
    {"{{ missing | default: user.name }}|{{ missing | default }}|", "Bob||"},
    {"{{ 4 | plus: 2 }} {{ 4 | minus: 6 }} {{ 3 | times: 4 }} {{ 7 | divided_by: 2 }} {{ 7 | modulo: 3 }}",
     "6 -2 12 3 1"},
    {"{{ 0.1 | plus: 0.2 }} {{ '1' | plus: '1.0' }} {{ '4.3' | minus: '2' }} {{ num | plus: 0.5 }}",
     "0.3 2.0 2.3 42.5"},
    {"{{ 7 | divided_by: 2.0 }} {{ -7 | divided_by: 2 }} {{ -7 | modulo: 3 }} {{ 7 | modulo: -3 }} "
     "{{ 2.0 | divided_by: 4 }}",
     "3.5 -4 2 -2 0.5"},
    {"{{ 0.0725 | times: 100 }} {{ '-0.0725' | times: 100 }} {{ '2.1' | times: 3 }} {{ 2 | times: 3.0 }}",
     "7.25 -7.25 6.3 6.0"},
    {"{{ '2.1' | times: 3 | replace: '.', '-' | plus: 0 }} {{ 'foo' | plus: 1 }} {{ n | minus: 1 }}", "6 1 -1"},
    {"{{ 5.5 | modulo: 2 }} {{ 0.3 | modulo: 0.1 }} {{ 10 | divided_by: 4 | times: 1.0 }}", "1.5 0.0 2.0"},
    {"{{ 4.6 | round }} {{ 4.5612 | round: 2 }} {{ 2.5 | round }} {{ -2.5 | round }} {{ 1.005 | round: 2 }} "
     "{{ '4.3' | round }}",
     "5 4.56 3 -3 1.01 4"},
    {"{{ 1250 | round: -2 }} {{ -1250 | round: -2 }} {{ 7 | round: 2 }} {{ 1 | divided_by: 3.0 | round: 3 }}",
     "1300 -1300 7 0.333"},
    {"{{ 4.3 | ceil }} {{ 4.6 | floor }} {{ '4.3' | ceil }} {{ -4.3 | floor }} {{ 5 | ceil }}", "5 4 5 -5 5"},
    {"{{ -17 | abs }} {{ '-17.42' | abs }} {{ 0 | abs }} {{ -0.5 | abs }}", "17 17.42 0 0.5"},
    {"{{ 5 | at_least: 6 }} {{ 5 | at_most: 4 }} {{ 4.5 | at_least: 5 }} {{ 4.5 | at_most: 5 }} "
     "{{ '3' | at_least: 2 }}",
     "6 4 5 4.5 3"},
    {"{{ 9223372036854775807 | plus: 1 }} {{ 4611686018427387904 | times: 4 }}",
     "9.223372036854776e+18 1.8446744073709552e+19"},
    {"{{ strs | join }} {{ strs | join: ', ' }} {{ nested | join: ',' }} [{{ n | join: ',' }}] {{ name | join: ',' }}",
     "b a C b, a, C 1,2,3,4 [] Ada"},
    {"{{ list | first }} {{ list | last }} {{ 'abc' | first }}{{ 'abc' | last }} [{{ empty_a | first }}]", "3 2 ac []"},
    {"{{ list | sort | join: ',' }} {{ strs | sort | join: ',' }} {{ strs | sort_natural | join: ',' }}",
     "1,2,3 C,a,b a,b,C"},
    {"{{ items | sort: 'price' | map: 'name' | join: ',' }} {{ items | sort_natural: 'name' | map: 'name' | join }}",
     "b,c,a a b c"},
    {"{{ mixed | sort | json }} {{ mixed | sort_natural | json }}", "[1,3,null] [1,3,null]"},
    {"{{ dup | uniq | json }} {{ items | uniq: 'ok' | map: 'name' | join }}", R"([1,2,"1"] a b)"},
    {"{{ list | reverse | join }} {{ mixed | compact | join: ',' }} {{ items | compact: 'ok' | size }}", "2 1 3 3,1 3"},
    {"{{ items | map: 'name' | join: ',' }} {{ user | map: 'name' }}", "a,b,c Bob"},
    {"{{ items | where: 'ok' | map: 'name' | join }}|{{ items | where: 'price', 1 | map: 'name' | join }}|"
     "{{ items | where: 'name', 'c' | map: 'price' }}|{{ items | reject: 'ok' | map: 'name' | join }}",
     "a c|b|2|b"},
    {"{{ list | concat: strs | join: ',' }} {{ n | concat: list | size }}", "3,1,2,b,a,C 3"},
    {"{{ items | map: 'price' | sum }} {{ prices | sum }} {{ list | sum }} {{ items | sum: 'price' }}", "6 0.3 6 6"},
    {"{{ list | sort | first }} {{ items | map: 'price' | sort | last }}", "1 3"},
};

// --- HTML escaping and strict variables ----------------------------------------------

const Case kModes[] = {
    {"<p>{{ html }}</p>", "<p>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;</p>", nullptr, kEscape},
    {"{{ html | escape }}|{{ '&lt;' | escape_once }}", "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;|&lt;", nullptr,
     kEscape},
    {"{{ html | upcase }}", "&lt;B&gt;TOM &amp; &quot;JERRY&quot;&lt;/B&gt;", nullptr, kEscape},
    {"{% capture c %}<i>{{ html }}</i>{% endcapture %}{{ c }}", "<i>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;</i>",
     nullptr, kEscape},
    {"{% capture c %}<i>{% endcapture %}{{ c | append: '' }}", "&lt;i&gt;", nullptr, kEscape},
    {"{% capture c %}<i>{% endcapture %}{% assign c = '<x>' %}{{ c }}", "&lt;x&gt;", nullptr, kEscape},
    {"{% capture c %}<i>{% endcapture %}{% for c in list %}{{ c }}{% endfor %}{{ c }}", "312<i>", nullptr, kEscape},
    {"{% echo html %}", "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;", nullptr, kEscape},
    {"<b>{{ num }}</b>{% raw %}<i>{% endraw %}", "<b>42</b><i>", nullptr, kEscape},
    {"{{ user.tags }}", "xy", nullptr, kEscape},
    {"{{ name }} {{ user.address.city }} {{ list[0] }} {{ list[9] }}|", "Ada Oslo 3 |", nullptr, kStrict},
    {"{% assign x = 1 %}{{ x }}{% for i in list %}{{ i }}{% endfor %}{% increment c %}{{ c }}", "131201", nullptr,
     kStrict},
    {"{% if n == nil %}y{% endif %}", "y", nullptr, kStrict},
};

// --- Errors: what is wrong and where ---------------------------------------------------

struct ErrorCase {
  const char* tpl;
  const char* want;  // the message, "line L, column C: ..."
  int flags = 0;
};

const ErrorCase kErrors[] = {
    {"{% for i in list %}", "line 1, column 1: 'for' was never closed (no 'endfor')"},
    {"a\n  {% if x %}\n{% else %}", "line 2, column 3: 'if' was never closed (no 'endif')"},
    {"a\n{% endfo %}", "line 2, column 4: unknown tag 'endfo'"},
    {"line 1\n\n   {%- endfo -%}", "line 3, column 8: unknown tag 'endfo'"},
    {"{% if x %}\n  {% endfor %}", "line 2, column 6: unexpected 'endfor' in 'if' (opened at line 1, column 1)"},
    {"{% endif %}", "line 1, column 4: unexpected 'endif'"},
    {"{% else %}", "line 1, column 4: unexpected 'else'"},
    {"{% if a %}{% else %}{% elsif b %}{% endif %}",
     "line 1, column 24: unexpected 'elsif' in 'if' (opened at line 1, column 1)"},
    {"{% include 'x' %}", "line 1, column 4: tag 'include' is not supported"},
    {"{% %}", "line 1, column 4: expected a tag name after '{%'"},
    {"{{ x | nope }}", "line 1, column 8: unknown filter 'nope'"},
    {"{{ x | append }}", "line 1, column 8: filter 'append' needs 1 argument"},
    {"{{ x | replace }}", "line 1, column 8: filter 'replace' needs at least 1 argument"},
    {"{{ x | upcase: 1 }}", "line 1, column 16: filter 'upcase' takes no arguments"},
    {"{{ x | slice: 1, 2, 3 }}", "line 1, column 21: filter 'slice' takes at most 2 arguments"},
    {"{{ x | default: 1, nope: true }}", "line 1, column 20: filter 'default' has no option 'nope'"},
    {"{{ 'abc }}", "line 1, column 4: string not closed with '"},
    {"x {{ name", "line 1, column 3: '{{' was not closed with '}}'"},
    {"x {% if", "line 1, column 3: '{%' was not closed with '%}'"},
    {"{% if %}", "line 1, column 7: expected a condition after 'if'"},
    {"{% assign = 1 %}", "line 1, column 11: expected a variable name after 'assign'"},
    {"{% assign x 1 %}", "line 1, column 13: expected '=' after 'assign x', found '1'"},
    {"{% for i from list %}{% endfor %}", "line 1, column 10: expected 'in' after 'for i', found 'from'"},
    {"{% for i in list limt: 2 %}{% endfor %}",
     "line 1, column 18: unexpected 'limt' in 'for' (expected limit:, offset: or reversed)"},
    {"{% break now %}", "line 1, column 10: 'break' takes no arguments"},
    {"{{ a b }}", "line 1, column 6: unexpected 'b'"},
    {"{{ a | }}", "line 1, column 8: expected a filter name after '|', found the end"},
    {"{% if a == %}{% endif %}", "line 1, column 12: expected a value after '=='"},
    {"{% if a and %}{% endif %}", "line 1, column 13: expected a condition after 'and' or 'or'"},
    {"{% if a = b %}{% endif %}", "line 1, column 9: unexpected '='"},
    {"{% raw %}abc", "line 1, column 1: 'raw' was never closed (no 'endraw')"},
    {"{% comment %}abc", "line 1, column 1: 'comment' was never closed (no 'endcomment')"},
    {"{{ (1..) }}", "line 1, column 8: expected a value, found ')'"},
    {"{{ (1.2) }}", "line 1, column 8: expected '..' in a range, found ')'"},
    {"{{ a. }}", "line 1, column 7: expected a name after '.', found the end"},
    {"{{ a[1 }}", "line 1, column 8: expected ']', found the end"},
    {"{{ $x }}", "line 1, column 4: unexpected character '$'"},
    {"é {{ x | nope }}", "line 1, column 10: unknown filter 'nope'"},
    {"a\xff", "line 1, column 2: the template is not valid UTF-8"},
    {"{% case %}{% endcase %}", "line 1, column 9: expected an expression after 'case'"},
    {"{% case x %}{% when %}{% endcase %}", "line 1, column 21: expected a value after 'when'"},
    {"{% cycle %}", "line 1, column 10: expected values after 'cycle'"},
    // Render errors name the node too.
    {"{{ 5 | divided_by: 0 }}", "line 1, column 8: divided_by: divided by 0"},
    {"line 1\n  {{ 1 | modulo: 0 }}", "line 2, column 10: modulo: divided by 0"},
    {"{{ 5.0 | divided_by: 0 }}", "line 1, column 10: divided_by: divided by 0"},
    {"{% if 'a' < 1 %}{% endif %}", "line 1, column 7: cannot compare a string with a number"},
    {"{{ 'x' | truncate: 'y' }}", "line 1, column 10: truncate: argument 1 must be an integer, not 'y'"},
    {"{{ list | concat: 1 }}", "line 1, column 11: concat: the argument must be an array, not '1'"},
    {"{{ strs | concat: list | sort }}", "line 1, column 26: sort: cannot sort values of different types"},
    {"{% for i in list offset: 'x' %}{% endfor %}", "line 1, column 26: offset must be an integer, not x"},
    {"{% for i in (1..'b') %}{% endfor %}", "line 1, column 17: a range's end must be an integer, not b"},
    {"{{ '%ff' | url_decode }}", "line 1, column 12: url_decode: the decoded text is not valid UTF-8"},
    {"{{ missing }}", "line 1, column 4: undefined variable 'missing'", kStrict},
    {"{{ user.nope }}", "line 1, column 9: undefined variable 'nope'", kStrict},
    {"{{ n.x }}", "line 1, column 6: undefined variable 'x'", kStrict},
    {"{% if missing %}x{% endif %}", "line 1, column 7: undefined variable 'missing'", kStrict},
    {"{{ missing | default: 1 }}", "line 1, column 4: undefined variable 'missing'", kStrict},
};

class Render : public ::testing::TestWithParam<Case> {};

TEST_P(Render, GivesTheExpectedOutput) {
  const Case& c = GetParam();
  EXPECT_EQ(run_case(c), c.want) << "template: " << c.tpl;
}

INSTANTIATE_TEST_SUITE_P(Output, Render, ::testing::ValuesIn(kOutput));
INSTANTIATE_TEST_SUITE_P(Whitespace, Render, ::testing::ValuesIn(kWhitespace));
INSTANTIATE_TEST_SUITE_P(Conditions, Render, ::testing::ValuesIn(kConditions));
INSTANTIATE_TEST_SUITE_P(Tags, Render, ::testing::ValuesIn(kTags));
INSTANTIATE_TEST_SUITE_P(StringFilters, Render, ::testing::ValuesIn(kStringFilters));
INSTANTIATE_TEST_SUITE_P(DateFilter, Render, ::testing::ValuesIn(kDateFilter));
INSTANTIATE_TEST_SUITE_P(OtherFilters, Render, ::testing::ValuesIn(kOtherFilters));
INSTANTIATE_TEST_SUITE_P(Modes, Render, ::testing::ValuesIn(kModes));

class Errors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(Errors, NameTheLineAndColumn) {
  const ErrorCase& c = GetParam();
  EXPECT_EQ(run(c.tpl, json::parse(kData), c.flags), std::string("ERROR: ") + c.want) << "template: " << c.tpl;
}

INSTANTIATE_TEST_SUITE_P(Liquid, Errors, ::testing::ValuesIn(kErrors));

// --- The API -----------------------------------------------------------------------------

TEST(Liquid, ErrorInfoGivesTheLocationApart) {
  Template t;
  ErrorInfo e;
  Status s = Template::parse("ok\n  {% endfo %}", &t, {}, &e);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 6);
  EXPECT_EQ(e.message, "unknown tag 'endfo'");
  ASSERT_TRUE(Template::parse("a\n{{ 1 | divided_by: 0 }}", &t));
  std::string out = "stale";
  s = t.render(json::object(), &out, {}, &e);
  ASSERT_FALSE(s);
  EXPECT_EQ(out, "");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 8);
  EXPECT_EQ(e.message, "divided_by: divided by 0");
}

TEST(Liquid, AFailedParseLeavesTheTemplateAsItWas) {
  Template t;
  ASSERT_TRUE(Template::parse("{{ name }}", &t));
  EXPECT_FALSE(Template::parse("{{ name | nope }}", &t));
  std::string out;
  ASSERT_TRUE(t.render({{"name", "kept"}}, &out));
  EXPECT_EQ(out, "kept");
}

TEST(Liquid, DataMustBeAnObjectOrNull) {
  Template t;
  ASSERT_TRUE(Template::parse("x{{ a }}", &t));
  std::string out;
  EXPECT_TRUE(t.render(nullptr, &out));
  EXPECT_EQ(out, "x");
  Status s = t.render(json::array({1}), &out);
  EXPECT_FALSE(s);
  EXPECT_EQ(s.message(), "the data must be a JSON object, not array");
}

TEST(Liquid, AnEmptyTemplateRendersNothing) {
  Template t;
  std::string out = "stale";
  EXPECT_TRUE(t.render({{"a", 1}}, &out));
  EXPECT_EQ(out, "");
}

TEST(Liquid, CopiesShareTheTreeAndRenderFromManyThreads) {
  Template t;
  ASSERT_TRUE(Template::parse("{% for i in (1..n) %}{% cycle 'a', 'b' %}{{ i | times: k }}{% endfor %}", &t));
  Template copy = t;
  std::vector<std::thread> threads;
  std::vector<std::string> outs(4);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int round = 0; round < 200; ++round) {
        std::string out;
        if (!copy.render({{"n", 3}, {"k", k}}, &out)) return;
        outs[static_cast<size_t>(k)] = out;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(outs[0], "a0b0a0");
  EXPECT_EQ(outs[3], "a3b6a9");
}

TEST(Liquid, NowDefaultsToTheSystemClock) {
  Template t;
  ASSERT_TRUE(Template::parse("{{ 'now' | date: '%s' }}", &t));
  std::string out;
  ASSERT_TRUE(t.render({}, &out));
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(std::stoll(out), now, 5);
}

// --- Limits: refused, quickly, naming the limit -----------------------------------------

struct Timed {
  std::string out;
  double seconds;
};

Timed timed(const std::string& tpl, const json& data = json::object(), const Limits& limits = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string out = run(tpl, data, 0, limits);
  return {out, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

// Each takes milliseconds in a release build and, stopped by its limit, up
// to about 5 s in the unoptimized sanitizer build (-O0) on a busy 2-core
// machine; unstopped, the slowest would take minutes.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kQuick = 30.0;
#else
constexpr double kQuick = 5.0;
#endif

TEST(LiquidLimits, DeepNestingIsRefusedAtParse) {
  std::string tpl;
  for (int i = 0; i < 10000; ++i) tpl += "{% if true %}";
  auto r = timed(tpl);
  EXPECT_EQ(r.out, "ERROR: line 1, column 833: blocks nested deeper than max_depth (64)");
  EXPECT_LT(r.seconds, kQuick);
  std::string expr = "{{ a";
  for (int i = 0; i < 10000; ++i) expr += "[a";
  r = timed(expr + " }}");
  EXPECT_EQ(r.out.rfind("ERROR: line 1, column ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("expression nested deeper than max_depth (64)"), std::string::npos) << r.out;
  std::string ranges = "{{ ";
  for (int i = 0; i < 10000; ++i) ranges += "(";
  r = timed(ranges);
  EXPECT_EQ(r.out, "ERROR: line 1, column 1: '{{' was not closed with '}}'");
  r = timed(ranges + " }}");
  EXPECT_NE(r.out.find("expression nested deeper than max_depth (64)"), std::string::npos) << r.out;
  // 64 levels are fine.
  std::string ok;
  for (int i = 0; i < 64; ++i) ok += "{% if true %}";
  ok += "deep";
  for (int i = 0; i < 64; ++i) ok += "{% endif %}";
  EXPECT_EQ(run(ok, json::object()), "deep");
}

TEST(LiquidLimits, AHugeLoopIsStopped) {
  auto r = timed("{% for i in (1..1000000000) %}x{% endfor %}");
  EXPECT_EQ(r.out, "ERROR: line 1, column 1: for loops ran more than max_loop_iterations (100000) times");
  EXPECT_LT(r.seconds, kQuick);
  r = timed("\n {% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}");
  EXPECT_EQ(r.out, "ERROR: line 2, column 26: for loops ran more than max_loop_iterations (100000) times");
  EXPECT_LT(r.seconds, kQuick);
  r = timed("{{ (1..1000000000) | size }}");
  EXPECT_EQ(r.out,
            "ERROR: line 1, column 4: the range (1..1000000000) has more than 100000 items (max_loop_iterations)");
  // The whole int64 span does not overflow.
  r = timed("{% for i in (-9223372036854775807..9223372036854775807) %}{% endfor %}");
  EXPECT_EQ(r.out, "ERROR: line 1, column 1: for loops ran more than max_loop_iterations (100000) times");
  // Exactly the limit is fine.
  Limits small;
  small.max_loop_iterations = 10;
  EXPECT_EQ(timed("{% for i in (1..10) %}{{ i }}{% endfor %}", {}, small).out, "12345678910");
  EXPECT_NE(timed("{% for i in (1..11) %}{% endfor %}", {}, small).out.find("max_loop_iterations (10)"),
            std::string::npos);
}

TEST(LiquidLimits, AHugeOutputIsStopped) {
  const json data = {{"s", std::string(100, 'x')}};
  auto r = timed("{% for i in (1..100000) %}{{ s }}{% endfor %}", data);
  EXPECT_EQ(r.out, "ERROR: line 1, column 27: the output is larger than max_output_bytes (1048576)");
  EXPECT_LT(r.seconds, kQuick);
  // A string doubled by a filter, an array doubled, a capture doubled.
  r = timed("{% assign s = 'xx' %}{% for i in (1..100) %}{% assign s = s | append: s %}{% endfor %}");
  EXPECT_EQ(r.out, "ERROR: line 1, column 63: append: makes a string longer than max_output_bytes (1048576)");
  r = timed("{% assign a = 'x,y' | split: ',' %}{% for i in (1..100) %}{% assign a = a | concat: a %}{% endfor %}");
  EXPECT_EQ(r.out, "ERROR: line 1, column 77: concat: makes an array of more than 100000 items (max_loop_iterations)");
  r = timed(
      "{% capture s %}xx{% endcapture %}{% for i in (1..100) %}{% capture s %}{{ s }}{{ s }}{% endcapture %}"
      "{% endfor %}");
  EXPECT_NE(r.out.find("the output is larger than max_output_bytes (1048576)"), std::string::npos) << r.out;
  r = timed("{{ 'ab' | replace: '', s }}", {{"s", std::string(600000, 'y')}});
  EXPECT_EQ(r.out, "ERROR: line 1, column 11: replace: makes a string longer than max_output_bytes (1048576)");
  EXPECT_LT(r.seconds, kQuick);
}

TEST(LiquidLimits, TooMuchWorkOrMemoryIsStopped) {
  // 128 KiB searched 100,000 times would take minutes.
  auto r = timed(
      "{% assign s = 'x' %}{% for i in (1..17) %}{% assign s = s | append: s %}{% endfor %}"
      "{% for i in (1..100000) %}{% if s contains 'y' %}{% endif %}{% endfor %}");
  EXPECT_NE(r.out.find("the render took more than max_steps (10000000)"), std::string::npos) << r.out;
  EXPECT_LT(r.seconds, kQuick);
  // 512 KiB strings made over and over.
  r = timed(
      "{% assign s = 'x' %}{% for i in (1..19) %}{% assign s = s | append: s %}{% endfor %}"
      "{% for i in (1..100000) %}{% assign t = s | upcase %}{% endfor %}");
  EXPECT_NE(r.out.find("upcase: the render made more than max_memory_bytes (67108864) of values"), std::string::npos)
      << r.out;
  EXPECT_LT(r.seconds, kQuick);
}

TEST(LiquidLimits, ATemplateTooLargeIsRefused) {
  Limits l;
  l.max_template_bytes = 10;
  EXPECT_EQ(timed("01234567890", {}, l).out,
            "ERROR: line 1, column 1: the template is 11 bytes, more than max_template_bytes (10)");
  EXPECT_EQ(timed("0123456789", {}, l).out, "0123456789");
}

TEST(LiquidLimits, TemplateRemembersItsLimits) {
  Limits l;
  l.max_output_bytes = 5;
  Template t;
  ASSERT_TRUE(Template::parse("{{ s }}", &t, l));
  EXPECT_EQ(t.limits().max_output_bytes, 5u);
  std::string out;
  EXPECT_TRUE(t.render({{"s", "12345"}}, &out));
  Status s = t.render({{"s", "123456"}}, &out);
  EXPECT_EQ(s.message(), "line 1, column 1: the output is larger than max_output_bytes (5)");
}

}  // namespace
}  // namespace opk::liquid
