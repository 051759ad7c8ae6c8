#include "delivery.h"

#include <Poco/DateTime.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/URI.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

namespace channel_webhook {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr int64_t kMaxRetryAfterMs = 30LL * 24 * 3600 * 1000;

// The end of a delivery's time.
class Deadline {
 public:
  explicit Deadline(int64_t ms) : end_(SteadyClock::now() + std::chrono::milliseconds(ms)) {}
  // Time left, at least 1 ms (Poco reads 0 as "no timeout"). Throws
  // Poco::TimeoutException once the time is up.
  Poco::Timespan left() const {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(end_ - SteadyClock::now()).count();
    if (us <= 0) throw Poco::TimeoutException("the delivery's time is up");
    return Poco::Timespan(std::max<int64_t>(us, 1000));
  }

 private:
  SteadyClock::time_point end_;
};

// Up to `max` bytes of `in` for a detail line: valid UTF-8 kept, control
// characters as spaces, anything else as '?'; never a cut sequence.
std::string clean(std::string_view in, size_t max) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = len > 0 && i + len <= in.size();
    for (size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    if (!valid) len = 1;
    if (out.size() + (valid ? len : 1) > max) break;
    if (!valid)
      out += '?';
    else if (len == 1 && (c < 0x20 || c == 0x7f))
      out += ' ';
    else
      out.append(in.substr(i, len));
    i += len;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

Report failed(opk_status status, std::string detail) {
  Report r;
  r.status = status;
  r.detail = std::move(detail);
  return r;
}

}  // namespace

std::string parse_endpoint(std::string_view url, bool allow_http, Endpoint* out) {
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) return "contains white space or a control character";
  if (url.empty()) return "is empty";
  Poco::URI uri;
  try {
    uri = Poco::URI(std::string(url));
  } catch (const Poco::Exception& e) {
    return "is not a URL (" + e.message() + ")";
  }
  std::string scheme = uri.getScheme();
  if (scheme != "http" && scheme != "https")
    return scheme.empty() ? "has no scheme (http:// or https://)"
                          : "has the scheme '" + scheme + "' (http or https only)";
  if (scheme == "http" && !allow_http)
    return "is http:// and [plugin.channel-webhook] allow_http = false: use https://";
  if (uri.getHost().empty()) return "has no host";
  if (!uri.getUserInfo().empty()) return "holds a user name or password, which the channel does not send";
  if (!uri.getFragment().empty()) return "has a fragment (#...), which is never sent: remove it";
  out->https = scheme == "https";
  out->host = uri.getHost();
  out->port = uri.getPort();
  out->target = uri.getPathAndQuery();
  if (out->target.empty()) out->target = "/";
  const std::string host = out->host.find(':') != std::string::npos ? "[" + out->host + "]" : out->host;
  out->origin = scheme + "://" + host + ":" + std::to_string(out->port);
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
  if (!s.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(s.ca_file, ec))
      return opk::Status::invalid("[plugin.channel-webhook] ca_file = \"" + s.ca_file + "\": no such file");
  }
  try {
    Poco::Net::Context::Params p;
    p.caLocation = s.ca_file;
    p.loadDefaultCAs = s.ca_file.empty();
    p.verificationMode = s.verify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE;
    p.cipherList = "HIGH:!aNULL:!MD5:!RC4";
    Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, p);
    ctx->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    ctx->enableExtendedCertificateVerification(s.verify);
    out->tls_ = ctx;
  } catch (const Poco::Exception& e) {
    return opk::Status::invalid("[plugin.channel-webhook] TLS context (ca_file = \"" + s.ca_file +
                                "\"): " + e.displayText());
  }
  return opk::Status::ok();
}

Report WebhookClient::post(const Endpoint& endpoint, const Request& request, int64_t timeout_ms, int64_t now_ms) const {
  const Deadline deadline(timeout_ms);
  const std::string address = endpoint.origin.substr(endpoint.origin.find("://") + 3);
  std::string stage = "connect " + address;
  try {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (endpoint.https)
      session = std::make_unique<Poco::Net::HTTPSClientSession>(endpoint.host, endpoint.port, tls_);
    else
      session = std::make_unique<Poco::Net::HTTPClientSession>(endpoint.host, endpoint.port);
    session->setKeepAlive(false);
    const Poco::Timespan left = deadline.left();
    session->setTimeout(left, left, left);

    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, endpoint.target, Poco::Net::HTTPMessage::HTTP_1_1);
    req.setContentType(request.content_type);
    req.setContentLength(static_cast<std::streamsize>(request.body.size()));
    req.set("User-Agent", settings_.user_agent);
    for (const auto& [name, value] : request.headers) req.set(name, value);
    std::ostream& body = session->sendRequest(req);
    stage = "POST " + endpoint.origin;
    session->socket().setSendTimeout(deadline.left());
    body.write(request.body.data(), static_cast<std::streamsize>(request.body.size()));
    body.flush();
    session->socket().setReceiveTimeout(deadline.left());
    Poco::Net::HTTPResponse resp;
    std::istream& in = session->receiveResponse(resp);

    Report r;
    r.code = static_cast<int>(resp.getStatus());
    std::string excerpt;
    try {
      session->socket().setReceiveTimeout(deadline.left());
      char buf[200];
      in.read(buf, sizeof buf);
      excerpt.assign(buf, static_cast<size_t>(in.gcount()));
    } catch (const Poco::Exception&) {
      // The status decides; a body that does not come only shortens the detail.
    }
    excerpt = clean(excerpt, 200);
    r.detail = "HTTP " + std::to_string(r.code) + " " + clean(resp.getReason(), 100);
    if (resp.has("Retry-After")) {
      const int64_t ms = retry_after_ms(resp.get("Retry-After"), now_ms);
      if (ms >= 0) r.retry_after_ms = ms;
    }
    const int code = r.code;
    if (code >= 200 && code < 300) {
      r.status = OPK_OK;
    } else if (code >= 300 && code < 400) {
      r.status = OPK_ERR_UNAVAILABLE;
      r.detail += ": redirects are not followed (Location: " + clean(resp.get("Location", "none"), 200) + ")";
      excerpt.clear();
    } else if (code == 408 || code == 429 || code >= 500 || code < 200) {
      r.status = OPK_ERR_UNAVAILABLE;
    } else {
      r.permanent = true;
      r.gone = code == 410;
      r.status = (code == 401 || code == 403) ? OPK_ERR_PERMISSION : OPK_ERR_INVALID_ARGUMENT;
    }
    if (!excerpt.empty()) r.detail += ": " + excerpt;
    return r;
  } catch (const Poco::TimeoutException&) {
    return failed(OPK_ERR_TIMEOUT, stage + ": no answer within " + std::to_string(timeout_ms) + " ms");
  } catch (const Poco::Net::ConnectionRefusedException&) {
    return failed(OPK_ERR_UNAVAILABLE, stage + ": connection refused");
  } catch (const Poco::Net::HostNotFoundException& e) {
    return failed(OPK_ERR_UNAVAILABLE, "resolve " + endpoint.host + ": " + clean(e.displayText(), 300));
  } catch (const Poco::Net::NoAddressFoundException& e) {
    return failed(OPK_ERR_UNAVAILABLE, "resolve " + endpoint.host + ": " + clean(e.displayText(), 300));
  } catch (const Poco::Net::NoMessageException&) {
    return failed(OPK_ERR_UNAVAILABLE, stage + ": the connection closed without a response");
  } catch (const Poco::Net::SSLException& e) {
    return failed(OPK_ERR_UNAVAILABLE, stage + ": TLS: " + clean(e.displayText(), 300));
  } catch (const Poco::Exception& e) {
    return failed(OPK_ERR_UNAVAILABLE, stage + ": " + clean(e.displayText(), 300));
  }
}

}  // namespace channel_webhook
