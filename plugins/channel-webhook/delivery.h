// delivery.h -- one webhook delivery with the SDK's HTTP client
// (opskernel/http.hpp): an HTTP(S) POST of the body to the endpoint with the
// Standard Webhooks headers, within one deadline, redirects not followed;
// the outcome as a status, the HTTP status, Retry-After, the flags
// (permanent, gone) and a detail with the start of the response body. Thread-safe: a WebhookClient is shared by
// concurrent deliveries, each on its own connection.
#ifndef OPSKERNEL_PLUGINS_CHANNEL_WEBHOOK_DELIVERY_H
#define OPSKERNEL_PLUGINS_CHANNEL_WEBHOOK_DELIVERY_H

#include <opskernel/opk_abi.h>
#include <opskernel/http.hpp>
#include <opskernel/status.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace channel_webhook {

// How endpoints are reached ([plugin.channel-webhook]).
struct ClientSettings {
  // PEM file of the CAs to trust for https instead of the system's; empty:
  // the system's.
  std::string ca_file;
  // False: no certificate or host name check (insecure; tests, lab servers).
  bool verify = true;
  // False: only https:// endpoints.
  bool allow_http = true;
  std::string user_agent = "Opskernel-Webhooks/1.0";
};

// An endpoint URL, checked.
struct Endpoint {
  std::string url;
};

// Empty when `url` is an endpoint the channel posts to (http or https, a
// host, no user name or password, no fragment); otherwise what is wrong.
std::string parse_endpoint(std::string_view url, bool allow_http, Endpoint* out);

// One request to send.
struct Request {
  std::string body;
  std::string content_type = "application/json";
  // Extra headers (the webhook-* ones), in order.
  std::vector<std::pair<std::string, std::string>> headers;
};

// What one delivery came to.
struct Report {
  // OK (2xx); UNAVAILABLE or TIMEOUT (a retry may help: no connection, 408,
  // 429, 5xx, 3xx); INVALID_ARGUMENT (another 4xx, 410 included);
  // PERMISSION (401, 403).
  opk_status status = OPK_OK;
  int code = 0;
  bool permanent = false;
  bool gone = false;
  int64_t retry_after_ms = 0;
  std::string detail;
};

// The delay a Retry-After value asks for, in ms from `now_ms`: whole
// seconds, or an HTTP date; 0 for a date in the past; -1 when unreadable.
int64_t retry_after_ms(std::string_view value, int64_t now_ms);

class WebhookClient {
 public:
  // Checks the settings and builds the TLS context (reads ca_file).
  static opk::Status create(const ClientSettings& settings, WebhookClient* out);

  // POSTs `request` to `endpoint` within `timeout_ms`. `now_ms` (the
  // kernel's clock) dates a Retry-After given as an HTTP date.
  Report post(const Endpoint& endpoint, const Request& request, int64_t timeout_ms, int64_t now_ms) const;

  const ClientSettings& settings() const { return settings_; }

 private:
  ClientSettings settings_;
  opk::http::Client client_;
};

}  // namespace channel_webhook

#endif  // OPSKERNEL_PLUGINS_CHANNEL_WEBHOOK_DELIVERY_H
