#include "mime.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "address.h"

namespace channel_email {

namespace {

const char kHex[] = "0123456789ABCDEF";

bool printable_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace

std::string base64(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += i + 1 < in.size() ? t[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

// A display name for From: a quoted string, or encoded-words when not ASCII.
std::string display_name(std::string_view name) {
  std::string clean;
  for (char c : name) clean += (c == '\r' || c == '\n') ? ' ' : c;
  if (!printable_ascii(clean) || clean.find("=?") != std::string::npos) return header_text(clean);
  std::string out = "\"";
  for (char c : clean) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void append_part(std::string& out, std::string_view type, std::string_view body) {
  out += "Content-Type: ";
  out += type;
  out += "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n";
  out += quoted_printable(body);
}

}  // namespace

std::string message_id(const Mail& mail) {
  std::string left;
  const std::string& id = mail.id;
  for (size_t i = 0; i < id.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(id[i]);
    const bool dot_ok = c == '.' && i > 0 && i + 1 < id.size() && id[i - 1] != '.';
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       (c != '=' && c != 0 && std::string_view("!#$%&'*+-/?^_`{|}~").find(c) != std::string_view::npos);
    if (plain || dot_ok) {
      left += static_cast<char>(c);
    } else {
      left += '=';
      left += kHex[c >> 4];
      left += kHex[c & 15];
    }
  }
  return "<" + left + "@" + std::string(domain_of(mail.from)) + ">";
}

std::string rfc5322_date(int64_t ms) {
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string quoted_printable(std::string_view text) {
  std::string out;
  size_t from = 0;
  while (from <= text.size()) {
    size_t nl = text.find('\n', from);
    const bool last = nl == std::string_view::npos;
    if (last) nl = text.size();
    std::string_view line = text.substr(from, nl - from);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t width = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(line[i]);
      const bool at_end = i + 1 == line.size();
      char enc[4] = {0, 0, 0, 0};
      if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_end)) {
        enc[0] = static_cast<char>(c);
      } else {
        enc[0] = '=';
        enc[1] = kHex[c >> 4];
        enc[2] = kHex[c & 15];
      }
      const size_t n = enc[1] ? 3 : 1;
      if (width + n > 75) {
        out += "=\r\n";
        width = 0;
      }
      out.append(enc, n);
      width += n;
    }
    if (last) break;
    out += "\r\n";
    from = nl + 1;
  }
  return out;
}

std::string header_text(std::string_view text) {
  std::string clean;
  for (char c : text) clean += (c == '\r' || c == '\n' || c == '\t') ? ' ' : c;
  if (printable_ascii(clean) && clean.find("=?") == std::string::npos && clean.size() <= 900) return clean;
  // Encoded-words of at most 45 bytes of text each (60 base64 characters),
  // never splitting a UTF-8 sequence.
  std::string out;
  size_t i = 0;
  while (i < clean.size()) {
    size_t end = std::min(clean.size(), i + 45);
    while (end < clean.size() && end > i + 1 && (static_cast<unsigned char>(clean[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(std::string_view(clean).substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string compose(const Mail& mail) {
  std::string out;
  out += "Date: " + rfc5322_date(mail.date_ms) + "\r\n";
  out += "From: ";
  if (!mail.from_name.empty()) out += display_name(mail.from_name) + " ";
  out += "<" + mail.from + ">\r\n";
  out += "To: ";
  for (size_t i = 0; i < mail.to.size(); ++i) out += (i ? ",\r\n " : "") + mail.to[i];
  out += "\r\n";
  out += "Subject: " + header_text(mail.subject) + "\r\n";
  out += "Message-ID: " + message_id(mail) + "\r\n";
  out += "MIME-Version: 1.0\r\n";
  // RFC 3834: automatic messages; auto-responders do not answer them.
  out += "Auto-Submitted: auto-generated\r\n";
  if (mail.html.empty()) {
    append_part(out, mail.text_is_html ? "text/html" : "text/plain", mail.text);
    return out;
  }
  // "=_" never occurs in quoted-printable text, so the boundary cannot.
  out += "Content-Type: multipart/alternative; boundary=\"" + mail.boundary + "\"\r\n\r\n";
  out += "This is a message in MIME format: a plain text part and an HTML part.\r\n";
  // The line end before each boundary belongs to the boundary (RFC 2046),
  // so a part's text keeps its own last line end.
  out += "--" + mail.boundary + "\r\n";
  append_part(out, "text/plain", mail.text);
  out += "\r\n--" + mail.boundary + "\r\n";
  append_part(out, "text/html", mail.html);
  out += "\r\n--" + mail.boundary + "--\r\n";
  return out;
}

}  // namespace channel_email
