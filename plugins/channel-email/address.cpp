#include "address.h"

#include <cstring>

namespace channel_email {

namespace {

// RFC 5322 atext: letters, digits and these.
bool atext(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Quotes `s` for a message, with control and non-ASCII bytes as \xNN.
std::string quoted(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  for (unsigned char c : s.substr(0, 200)) {
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

std::string ipv4_problem(std::string_view ip) {
  int parts = 0;
  size_t i = 0;
  while (i <= ip.size()) {
    size_t j = i;
    while (j < ip.size() && ip[j] >= '0' && ip[j] <= '9') ++j;
    if (j == i || j - i > 3 || std::stoi(std::string(ip.substr(i, j - i))) > 255) return "bad IPv4 literal";
    ++parts;
    if (j == ip.size()) break;
    if (ip[j] != '.') return "bad IPv4 literal";
    i = j + 1;
  }
  return parts == 4 ? std::string() : "bad IPv4 literal";
}

}  // namespace

std::string address_problem(std::string_view a) {
  const std::string q = quoted(a);
  if (a.empty()) return "the address is empty";
  for (unsigned char c : a) {
    if (c < 0x21 || c >= 0x7f) {
      if (c == ' ' || c == '\t') return q + " contains white space (give the bare address, without a name)";
      if (c >= 0x80) return q + " contains non-ASCII characters (internationalised addresses are not supported)";
      return q + " contains a control character";
    }
  }
  if (a.size() > 254) return q + " is longer than 254 characters";
  const size_t at = a.rfind('@');
  if (at == std::string_view::npos) return q + " has no '@'";
  const std::string_view local = a.substr(0, at);
  const std::string_view domain = a.substr(at + 1);
  if (a.find('<') != std::string_view::npos || a.find('>') != std::string_view::npos)
    return q + " contains '<' or '>' (give the bare address, without a name)";
  if (!local.empty() && local.front() == '"') return q + " has a quoted local part, which is not supported";
  if (local.empty()) return q + " has nothing before '@'";
  if (local.size() > 64) return q + " has a local part longer than 64 characters";
  if (domain.empty()) return q + " has no domain after '@'";
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return q + " has a local part with a misplaced '.'";
  for (char c : local)
    if (c != '.' && !atext(c)) return q + " has the character '" + std::string(1, c) + "' in its local part";
  if (domain.front() == '[') {
    if (domain.back() != ']') return q + " has an unclosed '[' in its domain";
    const std::string why = ipv4_problem(domain.substr(1, domain.size() - 2));
    return why.empty() ? std::string() : q + " has a " + why + " as its domain";
  }
  if (domain.size() > 253) return q + " has a domain longer than 253 characters";
  size_t from = 0;
  while (from <= domain.size()) {
    size_t dot = domain.find('.', from);
    if (dot == std::string_view::npos) dot = domain.size();
    const std::string_view label = domain.substr(from, dot - from);
    if (label.empty()) return q + " has an empty label in its domain";
    if (label.size() > 63) return q + " has a domain label longer than 63 characters";
    for (char c : label)
      if (!alnum(c) && c != '-') return q + " has the character '" + std::string(1, c) + "' in its domain";
    if (label.front() == '-' || label.back() == '-') return q + " has a domain label starting or ending with '-'";
    from = dot + 1;
  }
  return {};
}

std::string_view domain_of(std::string_view address) {
  const size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

}  // namespace channel_email
