// http.hpp -- opk::http, the HTTP(S) client of plugins that call remote
// endpoints (usage providers, health probes, webhooks): the check of an
// endpoint's URL, one request at a time on its own connection (or one kept
// from an earlier request to the same origin) within one deadline, TLS verified against the system's CAs or a CA file,
// the answer's body read up to a bound, redirects never followed, and a remote answer's text made printable and short
// for a message.
//
//   opk::http::Client client;
//   opk::Status s = opk::http::Client::create({.ca_file = "", .user_agent = "Acme/1.0"}, &client);
//   opk::http::Request request{.url = "https://status.example.com/health", .timeout_ms = 5'000};
//   opk::http::Response answer;
//   if (s) s = client.send(request, &answer);
//   if (s && answer.status != 200) log(answer.summary());   // "HTTP 503 Service Unavailable: down"
//
// Built on Poco Net and NetSSL, which stay out of this header. Link
// Opskernel::http; out of the tree, find_package(Opskernel COMPONENTS http).
// docs/sdk-http.md.
#ifndef OPSKERNEL_HTTP_HPP
#define OPSKERNEL_HTTP_HPP

#include <opskernel/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace opk::http {

// Up to `max` bytes of `in` for a message or a log line: valid UTF-8 kept,
// control characters as spaces, anything else as '?'; never a cut UTF-8
// sequence, no trailing spaces.
std::string printable(std::string_view in, size_t max);

// An http:// or https:// URL, split.
struct Url {
  // True for https://.
  bool https = false;
  // The host name or address (an IPv6 address without its brackets).
  std::string host;
  // The port; the scheme's default when the URL names none.
  uint16_t port = 0;
  // The path, without the query; may be empty.
  std::string path;
  // "scheme://host:port": the endpoint named in messages without its path
  // and query (which may hold a token).
  std::string origin;
};

// Empty when `url` is an http:// or https:// URL with a host and without a
// user name, password or fragment (which are never sent); otherwise what is
// wrong with it, to follow the URL's name in a message ("has no host").
// Fills `*out` when `url` is good and `out` is not null.
std::string check_url(std::string_view url, Url* out = nullptr);

// How a Client reaches endpoints.
struct ClientOptions {
  // PEM file of the CAs to trust for https instead of the system's; empty:
  // the system's.
  std::string ca_file;
  // False: no certificate or host name check (insecure; lab servers).
  bool verify_tls = true;
  // The User-Agent header of every request.
  std::string user_agent = "Opskernel/1.0";
  // Where the options come from, naming them in errors: "[plugin.x]" gives
  // "[plugin.x] ca_file = ...".
  std::string section;
  // Connections kept open after an answer for the next request to the same
  // origin (HTTP/1.1 keep-alive), at most this many idle per origin; 0:
  // every request on a connection of its own, closed after the answer. A
  // connection is not kept when the server answers "Connection: close",
  // when the body was not read whole (max_body) or after any failure, and
  // is closed once idle for 4 s. A request on a kept connection that the
  // server closed meanwhile (nothing of an answer came) is sent once more
  // on a new connection, within the same timeout: the caller sees one
  // request.
  size_t keep_alive = 0;
};

// One request.
struct Request {
  // The method: "GET", "POST" ...
  std::string method = "GET";
  // An http:// or https:// URL that check_url accepts.
  std::string url;
  // Header fields besides User-Agent, Content-Type and Content-Length, in
  // order; one named User-Agent replaces the client's.
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent with its Content-Length when `content_type` is not empty.
  std::string body;
  // The Content-Type of `body`; empty: no body (a GET).
  std::string content_type;
  // The time of the whole exchange: connect, TLS, send, answer and body.
  int64_t timeout_ms = 10'000;
  // The most of the answer's body read; the rest is left unread.
  size_t max_body = 64 * 1024;
  // How errors name the request once it is sent; empty: "<method> <origin>"
  // ("GET https://h:443"), without the path, which may hold a token.
  std::string name;
};

// An answer.
struct Response {
  // The HTTP status; 0 when no answer came.
  int status = 0;
  // The reason phrase as the server sent it (printable() it for a message).
  std::string reason;
  // The header fields, in the order they came.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body, its first max_body bytes at most.
  std::string body;
  // True when the body was longer than max_body.
  bool body_cut = false;
  // The request's max_body.
  size_t max_body = 0;

  // The value of header field `name` (any case); nullopt when absent.
  std::optional<std::string> header(std::string_view name) const;
  // The answer for a message: "HTTP 503 Service Unavailable", then for a
  // redirect ": redirects are not followed (Location: /x)", else ": " and the
  // body's start, printable, when there is a body.
  std::string summary() const;
  // OK when the body was read whole; INVALID_ARGUMENT "answer body: larger
  // than <max_body> bytes" when it was cut.
  opk::Status whole_body() const;
};

// Sends requests, each on a connection of its own that it closes after the
// answer, or on one kept from an earlier request (ClientOptions::keep_alive).
// Thread-safe; cheap to copy (the copies share the TLS context and the kept
// connections).
class Client {
 public:
  // Keeps `options` and builds the TLS context (TLS 1.2 at least, the
  // certificate and host name checked unless verify_tls is false).
  // INVALID_ARGUMENT naming ca_file when it is missing or unusable
  // ("[plugin.x] ca_file = \"/etc/x.pem\": no such file").
  static opk::Status create(const ClientOptions& options, Client* out);

  // Sends `request` and reads the answer into `*out`, all within
  // request.timeout_ms; a redirect is not followed (it is the answer). OK
  // when an answer came, whatever its status. Otherwise the error names the
  // stage ("connect h:80: connection refused", "GET http://h:80: no answer
  // within 500 ms", "resolve h: ..."), its code saying whether a retry may
  // help: TIMEOUT (no answer in time) and UNAVAILABLE (no connection, a host
  // not resolved, the connection closed without an answer) may pass on a
  // retry; INVALID_ARGUMENT (the URL is not usable, or the answer is not
  // HTTP) and FAILED ("TLS: ...": the handshake or the certificate) will
  // not. When the failure comes while the body is read, `*out` holds the
  // status, the headers and the body read so far.
  opk::Status send(const Request& request, Response* out) const;

  // The options the client was created with.
  const ClientOptions& options() const { return options_; }

  // How many connections the client (and its copies) opened so far.
  uint64_t connections() const;

 private:
  struct Tls;
  struct Kept;
  ClientOptions options_;
  std::shared_ptr<const Tls> tls_;
  std::shared_ptr<Kept> kept_;
};

}  // namespace opk::http

#endif  // OPSKERNEL_HTTP_HPP
