// mime.h -- the e-mail message the channel sends (RFC 5322 + MIME): headers
// Date, From, To, Subject, Message-ID, MIME-Version, Auto-Submitted, and a
// text/plain part, a text/html part, or both as multipart/alternative;
// bodies quoted-printable in UTF-8. Pure functions; thread-safe.
#ifndef OPSKERNEL_PLUGINS_CHANNEL_EMAIL_MIME_H
#define OPSKERNEL_PLUGINS_CHANNEL_EMAIL_MIME_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace channel_email {

// What a message says. Addresses are ones address_problem() accepts.
struct Mail {
  std::string from;       // "ops@example.com"
  std::string from_name;  // "Opskernel"; empty: none
  std::vector<std::string> to;
  std::string subject;
  // The plain text; with `html` empty and `text_is_html`, the body is HTML.
  std::string text;
  bool text_is_html = false;
  // An HTML alternative to `text`; empty: none.
  std::string html;
  // The delivery's idempotency key (Message-ID's left part); not empty.
  std::string id;
  // Date header, ms since the epoch (UTC).
  int64_t date_ms = 0;
  // Multipart boundary; the caller makes it unique (random).
  std::string boundary;
};

// The Message-ID of `mail`, with angle brackets: "<id@from-domain>". Bytes of
// the id that may not appear there are written =XX ('=' itself too), so two
// ids never share one Message-ID.
std::string message_id(const Mail& mail);

// An RFC 5322 date, "Thu, 01 Jan 2026 00:00:00 +0000".
std::string rfc5322_date(int64_t ms);

// The whole message, lines ending in CRLF, before SMTP dot-stuffing.
std::string compose(const Mail& mail);

// `text` as quoted-printable (RFC 2045), line ends as CRLF; a last line
// without a line end stays without one.
std::string quoted_printable(std::string_view text);

// `text` as an RFC 2047 header value: as is when it is printable ASCII,
// else UTF-8 base64 encoded-words folded onto continuation lines. CR and LF
// become spaces.
std::string header_text(std::string_view text);

// `bytes` in base64 (RFC 4648), on one line.
std::string base64(std::string_view bytes);

}  // namespace channel_email

#endif  // OPSKERNEL_PLUGINS_CHANNEL_EMAIL_MIME_H
