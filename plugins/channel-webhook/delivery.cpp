#include "delivery.h"

#include <Poco/DateTime.h>
#include <Poco/DateTimeParser.h>

#include <algorithm>

namespace channel_webhook {

namespace {

constexpr int64_t kMaxRetryAfterMs = 30LL * 24 * 3600 * 1000;
// The start of a response body a detail quotes.
constexpr size_t kExcerptBytes = 200;
// Idle connections kept per receiver for the next deliveries to it (the
// outbox's workers send to one endpoint at once, two by default).
constexpr size_t kKeptPerReceiver = 4;

}  // namespace

std::string parse_endpoint(std::string_view url, bool allow_http, Endpoint* out) {
  opk::http::Url parts;
  if (std::string bad = opk::http::check_url(url, &parts); !bad.empty()) return bad;
  if (!parts.https && !allow_http) return "is http:// and [plugin.channel-webhook] allow_http = false: use https://";
  out->url = std::string(url);
  return {};
}

int64_t retry_after_ms(std::string_view value, int64_t now_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return -1;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return kMaxRetryAfterMs;
    return std::min<int64_t>(std::stoll(std::string(value)) * 1000, kMaxRetryAfterMs);
  }
  Poco::DateTime when;
  int tzd = 0;
  if (!Poco::DateTimeParser::tryParse(std::string(value), when, tzd)) return -1;
  when.makeUTC(tzd);
  const int64_t at_ms = when.timestamp().epochMicroseconds() / 1000;
  return std::clamp<int64_t>(at_ms - now_ms, 0, kMaxRetryAfterMs);
}

opk::Status WebhookClient::create(const ClientSettings& s, WebhookClient* out) {
  out->settings_ = s;
  const opk::http::ClientOptions http{s.ca_file, s.verify, s.user_agent, "[plugin.channel-webhook]", kKeptPerReceiver};
  return opk::http::Client::create(http, &out->client_);
}

Report WebhookClient::post(const Endpoint& endpoint, const Request& request, int64_t timeout_ms, int64_t now_ms) const {
  const opk::http::Request req{.method = "POST",
                               .url = endpoint.url,
                               .headers = request.headers,
                               .body = request.body,
                               .content_type = request.content_type,
                               .timeout_ms = timeout_ms,
                               .max_body = kExcerptBytes};
  opk::http::Response answer;
  Report r;
  // A body that does not come after the status only shortens the detail:
  // the status decides.
  if (const opk::Status s = client_.send(req, &answer); !s && answer.status == 0) {
    r.status = s.code() == OPK_ERR_TIMEOUT ? OPK_ERR_TIMEOUT : OPK_ERR_UNAVAILABLE;
    r.detail = s.message();
    return r;
  }
  r.code = answer.status;
  r.detail = answer.summary();
  if (const auto value = answer.header("Retry-After"))
    r.retry_after_ms = std::max<int64_t>(retry_after_ms(*value, now_ms), 0);
  const int code = r.code;
  if (code >= 200 && code < 300) {
    r.status = OPK_OK;
  } else if (code < 400 || code == 408 || code == 429 || code >= 500) {
    r.status = OPK_ERR_UNAVAILABLE;  // 1xx, 3xx (never followed), and what a retry may pass
  } else {
    r.permanent = true;
    r.gone = code == 410;
    r.status = (code == 401 || code == 403) ? OPK_ERR_PERMISSION : OPK_ERR_INVALID_ARGUMENT;
  }
  return r;
}

}  // namespace channel_webhook
