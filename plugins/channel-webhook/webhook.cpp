// channel-webhook -- the notification channel `webhook`: each notification
// POSTed over HTTP(S) to the recipient URL, signed the Standard Webhooks way
// (headers webhook-id, webhook-timestamp, webhook-signature; one signature
// per secret of the recipient's options {"secrets": ["whsec_..."]}, so two
// secrets are valid during a rotation). The webhook-id is the delivery's
// id, the same on every retry, so a receiver drops duplicates. The HTTP
// status decides: 2xx delivered; 410 gone (disable the endpoint); other
// 4xx except 408 and 429 permanent; 408, 429, 5xx, redirects (never
// followed) and network failures transient, with Retry-After passed on.
// docs/channels.md describes it; the settings are [plugin.channel-webhook].
//
// Thread-safety: deliveries run concurrently on the kernel's worker threads,
// each on its own connection; the settings and TLS context are read-only
// after init.
#include <Poco/Net/SSLManager.h>
#include <opskernel/opk.hpp>

#include <chrono>
#include <random>

#include "delivery.h"
#include "signing.h"

namespace channel_webhook {
namespace {

struct Config {
  ClientSettings client;
  int64_t timeout_ms = 15'000;
};

opk::Status load(const opk::Host& host, Config* c) {
  opk::Settings in = host.settings();
  c->timeout_ms = in.duration_ms("timeout", c->timeout_ms, 1'000, 300'000);
  c->client.ca_file = in.text("ca_file", "");
  c->client.verify = in.boolean("verify", true);
  c->client.allow_http = in.boolean("allow_http", true);
  c->client.user_agent = in.text("user_agent", c->client.user_agent, true);
  for (char ch : c->client.user_agent)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) {
      in.invalid("user_agent", c->client.user_agent, "printable ASCII");
      break;
    }
  return in.status();
}

std::string random_hex(size_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string out;
  while (out.size() < n) {
    uint64_t v = rng();
    for (int i = 0; i < 16 && out.size() < n; ++i, v >>= 4) out += hex[v & 15];
  }
  return out;
}

// True when the kernel's opk_notification has `member` (a 1.4 field).
template <typename T>
bool has(const opk_notification& n, T opk_notification::*member) {
  const opk_notification probe{};
  const auto offset =
      static_cast<size_t>(reinterpret_cast<const char*>(&(probe.*member)) - reinterpret_cast<const char*>(&probe));
  return n.struct_size >= offset + sizeof(T);
}

// `url` quoted for a detail line, cut at 200 bytes.
std::string quoted(std::string_view url) {
  std::string out;
  for (unsigned char c : url.substr(0, 200)) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return "'" + out + (url.size() > 200 ? "...'" : "'");
}

class WebhookPlugin : public opk::Plugin {
 public:
  explicit WebhookPlugin(opk::Host host) : Plugin(host) { Poco::Net::initializeSSL(); }
  ~WebhookPlugin() override { Poco::Net::uninitializeSSL(); }

  opk::Status init() override {
    if (opk::Status s = load(host(), &config_); !s) return s;
    return WebhookClient::create(config_.client, &client_);
  }

  const Config& config() const { return config_; }
  const WebhookClient& client() const { return client_; }

 private:
  Config config_;
  WebhookClient client_;
};

class WebhookChannel : public opk::NotificationChannel {
 public:
  explicit WebhookChannel(opk::Plugin& plugin) : plugin_(static_cast<WebhookPlugin&>(plugin)) {}

  opk::Status send(const opk_notification& message) override {
    opk_delivery_result result{};
    result.struct_size = sizeof result;
    return deliver(message, result);
  }

  opk::Status deliver(const opk_notification& n, opk_delivery_result& result) override {
    const auto start = std::chrono::steady_clock::now();
    const Config& config = plugin_.config();
    if (n.recipient_count == 0 || n.recipients == nullptr) return refuse(result, "the notification has no recipient");
    std::vector<Endpoint> endpoints(n.recipient_count);
    for (uint32_t i = 0; i < n.recipient_count; ++i) {
      const std::string_view url = n.recipients[i] ? n.recipients[i] : "";
      if (const std::string why = parse_endpoint(url, config.client.allow_http, &endpoints[i]); !why.empty())
        return refuse(result, "recipient " + quoted(url) + " " + why);
    }
    Options options;
    const char* options_json = has(n, &opk_notification::options_json) ? n.options_json : nullptr;
    if (const std::string why = parse_options(options_json, &options); !why.empty()) return refuse(result, why);

    const std::string id =
        has(n, &opk_notification::id) && n.id != nullptr && *n.id != '\0' ? std::string(n.id) : "msg_" + random_hex(32);
    int64_t now_ms = plugin_.host().now_ms();
    if (now_ms <= 0)
      now_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
    const int64_t timestamp = now_ms / 1000;
    Request request;
    request.body = n.body ? n.body : "";
    if (n.content_type != nullptr && *n.content_type != '\0') request.content_type = n.content_type;
    request.headers.emplace_back("webhook-id", id);
    request.headers.emplace_back("webhook-timestamp", std::to_string(timestamp));
    if (!options.keys.empty())
      request.headers.emplace_back("webhook-signature", signature_header(options.keys, id, timestamp, request.body));
    int64_t timeout_ms = config.timeout_ms;
    if (has(n, &opk_notification::timeout_ms) && n.timeout_ms > 0) timeout_ms = n.timeout_ms;

    // One POST per recipient; the first failure ends the delivery (a retry
    // repeats the webhook-id, so the ones already served drop it).
    Report report;
    for (const Endpoint& endpoint : endpoints) {
      report = plugin_.client().post(endpoint, request, timeout_ms, now_ms);
      if (report.status != OPK_OK) break;
    }
    result.code = report.code;
    result.retry_after_ms = report.retry_after_ms;
    result.flags = (report.permanent ? OPK_DELIVERY_PERMANENT : 0) | (report.gone ? OPK_DELIVERY_GONE : 0);
    result.latency_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    opk::set_detail(result, report.detail);
    if (report.status == OPK_OK) return opk::Status::ok();
    return {report.status, report.detail};
  }

  opk::Status check_recipient(std::string_view recipient, const char* options_json,
                              opk_delivery_result& result) override {
    Endpoint endpoint;
    if (const std::string why = parse_endpoint(recipient, plugin_.config().client.allow_http, &endpoint); !why.empty())
      return refuse(result, "recipient " + quoted(recipient) + " " + why);
    Options options;
    if (const std::string why = parse_options(options_json, &options); !why.empty()) return refuse(result, why);
    return opk::Status::ok();
  }

 private:
  static opk::Status refuse(opk_delivery_result& result, const std::string& why) {
    result.flags = OPK_DELIVERY_PERMANENT;
    opk::set_detail(result, why);
    return opk::Status::invalid(why);
  }

  WebhookPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("channel-webhook", "Webhook channel", "1.0.0", "Opskernel",
                  "Delivers notifications as HTTP(S) POSTs signed the Standard Webhooks way");
  m.channel<WebhookChannel>({.id = "webhook",
                             .title = "Webhook",
                             .description = "A signed HTTP(S) POST of the event to each recipient URL (Standard "
                                            "Webhooks: webhook-id, webhook-timestamp, webhook-signature)",
                             .deliver = true,
                             .check_recipient = true});
  return m;
}

}  // namespace
}  // namespace channel_webhook

OPK_PLUGIN(channel_webhook::WebhookPlugin, channel_webhook::describe);
