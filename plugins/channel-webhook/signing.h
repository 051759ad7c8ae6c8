// signing.h -- Standard Webhooks signatures (https://www.standardwebhooks.com):
// secrets "whsec_" + base64 of 24 to 64 bytes, and the webhook-signature
// header "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>", one
// signature per secret separated by spaces, so a receiver that knows either
// secret verifies during a rotation. Pure functions; thread-safe.
#ifndef OPSKERNEL_PLUGINS_CHANNEL_WEBHOOK_SIGNING_H
#define OPSKERNEL_PLUGINS_CHANNEL_WEBHOOK_SIGNING_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace channel_webhook {

// Empty when `secret` is a valid signing secret; otherwise what is wrong
// with it, never quoting the secret.
std::string secret_problem(std::string_view secret);

// The key bytes of a secret secret_problem() accepts.
std::string secret_key(std::string_view secret);

// "v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>".
std::string sign(std::string_view key, std::string_view id, int64_t timestamp_s, std::string_view body);

// The webhook-signature header value for every key, in order.
std::string signature_header(const std::vector<std::string>& keys, std::string_view id, int64_t timestamp_s,
                             std::string_view body);

// A recipient's options (opk_notification.options_json).
struct Options {
  // Key bytes of each secret, in the order given.
  std::vector<std::string> keys;
};

// Reads `options_json` (NULL or empty: no options) into `out`. Empty when
// valid; otherwise what is wrong, naming the field ("options: secrets[1]:
// does not start with whsec_").
std::string parse_options(const char* options_json, Options* out);

// `bytes` in base64 (RFC 4648, with padding).
std::string base64(std::string_view bytes);

}  // namespace channel_webhook

#endif  // OPSKERNEL_PLUGINS_CHANNEL_WEBHOOK_SIGNING_H
