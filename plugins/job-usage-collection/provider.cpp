#include "provider.h"

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

namespace usage_collection {

namespace {

using SteadyClock = std::chrono::steady_clock;
// The largest page answer read.
constexpr size_t kMaxPageBytes = 16u * 1024 * 1024;

// The end of one request's time.
class RequestDeadline {
 public:
  explicit RequestDeadline(int64_t ms) : start_(SteadyClock::now()), end_(start_ + std::chrono::milliseconds(ms)) {}
  // Time left, at least 1 ms (Poco reads 0 as "no timeout"). Throws
  // Poco::TimeoutException once the time is up.
  Poco::Timespan left() const {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(end_ - SteadyClock::now()).count();
    if (us <= 0) throw Poco::TimeoutException("the request's time is up");
    return Poco::Timespan(std::max<int64_t>(us, 1000));
  }

 private:
  SteadyClock::time_point start_, end_;
};

// A session whose connection sends at once (TCP_NODELAY), so a request in
// two segments does not wait for the server's delayed ACK.
template <class Session>
class NoDelaySession : public Session {
 public:
  using Session::Session;

 protected:
  void connect(const Poco::Net::SocketAddress& address) override {
    Session::connect(address);
    this->socket().setNoDelay(true);
  }
};

// One attempt.
struct Attempt {
  int http_status = 0;
  std::string body;
  std::string error;
  bool retryable = false;
  bool malformed = false;
};

Attempt get_once(const Poco::URI& uri, const ProviderSettings& s, const Poco::Net::Context::Ptr& tls) {
  Attempt a;
  const RequestDeadline deadline(s.timeout_ms);
  const bool https = uri.getScheme() == "https";
  const std::string address = uri.getHost() + ":" + std::to_string(uri.getPort());
  std::string stage = "connect " + address;
  try {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (https)
      session = std::make_unique<NoDelaySession<Poco::Net::HTTPSClientSession>>(uri.getHost(), uri.getPort(), tls);
    else
      session = std::make_unique<NoDelaySession<Poco::Net::HTTPClientSession>>(uri.getHost(), uri.getPort());
    session->setKeepAlive(false);
    const Poco::Timespan left = deadline.left();
    session->setTimeout(left, left, left);
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, uri.getPathAndQuery(),
                               Poco::Net::HTTPMessage::HTTP_1_1);
    req.set("User-Agent", s.user_agent);
    req.set("Accept", "application/json");
    session->sendRequest(req);
    stage = "GET " + uri.getScheme() + "://" + address + uri.getPath();
    session->socket().setReceiveTimeout(deadline.left());
    Poco::Net::HTTPResponse resp;
    std::istream& in = session->receiveResponse(resp);
    a.http_status = static_cast<int>(resp.getStatus());
    char buf[16384];
    while (a.body.size() <= kMaxPageBytes) {
      session->socket().setReceiveTimeout(deadline.left());
      in.read(buf, sizeof buf);
      const auto n = in.gcount();
      if (n <= 0) break;
      a.body.append(buf, static_cast<size_t>(n));
    }
    const std::string status_line =
        stage + ": HTTP " + std::to_string(a.http_status) + " " + printable(resp.getReason(), 100);
    if (a.http_status < 200 || a.http_status >= 300) {
      const std::string excerpt = printable(a.body, 200);
      a.error = excerpt.empty() ? status_line : status_line + ": " + excerpt;
      a.retryable = a.http_status >= 500 || a.http_status == 429;
      return a;
    }
    if (a.body.size() > kMaxPageBytes) {
      a.error = stage + ": answer body: larger than " + std::to_string(kMaxPageBytes) + " bytes";
      a.malformed = true;
    }
    return a;
  } catch (const Poco::TimeoutException&) {
    a.error = stage + ": no answer within " + std::to_string(s.timeout_ms) + " ms";
  } catch (const Poco::Net::ConnectionRefusedException&) {
    a.error = stage + ": connection refused";
  } catch (const Poco::Net::HostNotFoundException& e) {
    a.error = "resolve " + uri.getHost() + ": " + printable(e.displayText(), 300);
  } catch (const Poco::Net::NoAddressFoundException& e) {
    a.error = "resolve " + uri.getHost() + ": " + printable(e.displayText(), 300);
  } catch (const Poco::Net::NoMessageException&) {
    a.error = stage + ": the connection closed without an answer";
  } catch (const Poco::Net::MessageException& e) {
    a.error = stage + ": not an HTTP answer (" + printable(e.displayText(), 200) + ")";
    a.malformed = true;
    return a;
  } catch (const Poco::SyntaxException& e) {
    a.error = stage + ": not an HTTP answer (" + printable(e.displayText(), 200) + ")";
    a.malformed = true;
    return a;
  } catch (const Poco::Net::SSLException& e) {
    // A certificate that does not verify will not verify on a retry.
    a.error = stage + ": TLS: " + printable(e.displayText(), 300);
    return a;
  } catch (const Poco::Exception& e) {
    a.error = stage + ": " + printable(e.displayText(), 300);
  }
  a.retryable = true;
  return a;
}

// Checks that `doc` is a page; empty when it is, else what is wrong.
std::string page_shape(const opk::Json& doc) {
  if (!doc.is_object())
    return std::string("answer body: expected a JSON object {\"items\", \"next\"}, got ") + doc.type_name();
  const auto items = doc.find("items");
  if (items == doc.end()) return "answer body: items: required, an array of usage items";
  if (!items->is_array()) return std::string("answer body: items: expected an array, got ") + items->type_name();
  const auto next = doc.find("next");
  if (next != doc.end() && !next->is_null() && !next->is_string())
    return std::string("answer body: next: expected a cursor (a string) or null, got ") + next->type_name();
  if (next != doc.end() && next->is_string() && next->get<std::string>().empty())
    return "answer body: next: an empty cursor (null ends the pages)";
  return {};
}

}  // namespace

std::string printable(std::string_view in, size_t max) {
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

std::string check_provider_url(std::string_view url) {
  if (url.empty()) return "is empty";
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) return "contains white space or a control character";
  Poco::URI uri;
  try {
    uri = Poco::URI(std::string(url));
  } catch (const Poco::Exception& e) {
    return "is not a URL (" + e.message() + ")";
  }
  const std::string scheme = uri.getScheme();
  if (scheme != "http" && scheme != "https")
    return scheme.empty() ? "has no scheme (http:// or https://)"
                          : "has the scheme '" + scheme + "' (http or https only)";
  if (uri.getHost().empty()) return "has no host";
  if (!uri.getUserInfo().empty()) return "holds a user name or password";
  if (!uri.getFragment().empty()) return "has a fragment (#...)";
  return {};
}

opk::Status Provider::create(const ProviderSettings& s, Provider* out) {
  out->settings_ = s;
  if (!s.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(s.ca_file, ec))
      return opk::Status::invalid("[plugin.job-usage-collection] ca_file = \"" + s.ca_file + "\": no such file");
  }
  try {
    Poco::Net::Context::Params p;
    p.caLocation = s.ca_file;
    p.loadDefaultCAs = s.ca_file.empty();
    p.verificationMode = s.verify_tls ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE;
    p.cipherList = "HIGH:!aNULL:!MD5:!RC4";
    Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, p);
    ctx->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    ctx->enableExtendedCertificateVerification(s.verify_tls);
    out->tls_ = ctx;
  } catch (const Poco::Exception& e) {
    return opk::Status::invalid("[plugin.job-usage-collection] TLS context (ca_file = \"" + s.ca_file +
                                "\"): " + e.displayText());
  }
  return opk::Status::ok();
}

PageAnswer Provider::page(const std::string& url, const std::string& month, const std::string& cursor,
                          const RetryFn& before_retry) const {
  PageAnswer r;
  const auto start = SteadyClock::now();
  auto finish = [&]() -> PageAnswer& {
    r.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
    return r;
  };
  if (std::string bad = check_provider_url(url); !bad.empty()) {
    r.error = "usage_url " + bad;
    r.malformed = true;
    return finish();
  }
  Poco::URI uri(url);
  uri.addQueryParameter("month", month);
  if (!cursor.empty()) uri.addQueryParameter("cursor", cursor);
  int64_t pause = settings_.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    ++r.attempts;
    Attempt a = get_once(uri, settings_, tls_);
    if (a.error.empty()) {
      opk::Json doc = opk::Json::parse(a.body, nullptr, false);
      if (doc.is_discarded()) {
        r.error = "answer body: not JSON ('" + printable(a.body, 60) + "')";
        r.malformed = true;
        return finish();
      }
      if (std::string bad = page_shape(doc); !bad.empty()) {
        r.error = bad;
        r.malformed = true;
        return finish();
      }
      r.ok = true;
      r.page = std::move(doc);
      return finish();
    }
    if (!a.retryable || attempt >= settings_.retries) {
      r.error = a.error;
      if (a.retryable && settings_.retries > 0) r.error += " (after " + std::to_string(r.attempts) + " attempts)";
      r.malformed = a.malformed;
      return finish();
    }
    if (before_retry && !before_retry(a.error, pause)) {
      r.error = a.error + " (cancelled before attempt " + std::to_string(r.attempts + 1) + ")";
      return finish();
    }
    pause = std::min<int64_t>(pause * 2, 60'000);
  }
}

}  // namespace usage_collection
