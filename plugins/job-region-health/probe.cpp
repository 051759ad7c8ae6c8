#include "probe.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/URI.h>
#include <opskernel/opk.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <memory>

namespace region_health {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr size_t kMaxBody = 64 * 1024;

// The end of a probe's time.
class Deadline {
 public:
  explicit Deadline(int64_t ms) : start_(SteadyClock::now()), end_(start_ + std::chrono::milliseconds(ms)) {}
  // Time left, at least 1 ms (Poco reads 0 as "no timeout"). Throws
  // Poco::TimeoutException once the time is up.
  Poco::Timespan left() const {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(end_ - SteadyClock::now()).count();
    if (us <= 0) throw Poco::TimeoutException("the probe's time is up");
    return Poco::Timespan(std::max<int64_t>(us, 1000));
  }
  int64_t elapsed_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start_).count();
  }

 private:
  SteadyClock::time_point start_, end_;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A session whose connection sends at once (TCP_NODELAY): a request
// written in more than one segment is otherwise held back by Nagle's
// algorithm until the server's delayed ACK, 40 ms a probe on Linux.
template <class Session>
class PromptSession : public Session {
 public:
  using Session::Session;

 protected:
  void connect(const Poco::Net::SocketAddress& address) override {
    Session::connect(address);
    this->socket().setNoDelay(true);
  }
};

}  // namespace

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

std::string check_url(std::string_view url) {
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

opk::Status Prober::create(const ProberSettings& s, Prober* out) {
  out->settings_ = s;
  if (!s.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(s.ca_file, ec))
      return opk::Status::invalid("[plugin.job-region-health] ca_file = \"" + s.ca_file + "\": no such file");
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
    return opk::Status::invalid("[plugin.job-region-health] TLS context (ca_file = \"" + s.ca_file +
                                "\"): " + e.displayText());
  }
  return opk::Status::ok();
}

ProbeResult Prober::probe(const std::string& url, int64_t timeout_ms) const {
  ProbeResult r;
  const Deadline deadline(timeout_ms);
  auto fail = [&](std::string why, bool malformed = false) {
    r.ok = false;
    r.error = std::move(why);
    r.malformed = malformed;
    r.latency_ms = deadline.elapsed_ms();
    return r;
  };
  if (std::string bad = check_url(url); !bad.empty()) return fail("URL " + bad, true);
  const Poco::URI uri(url);
  const bool https = uri.getScheme() == "https";
  const std::string address = uri.getHost() + ":" + std::to_string(uri.getPort());
  std::string stage = "connect " + address;
  try {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (https)
      session = std::make_unique<PromptSession<Poco::Net::HTTPSClientSession>>(uri.getHost(), uri.getPort(), tls_);
    else
      session = std::make_unique<PromptSession<Poco::Net::HTTPClientSession>>(uri.getHost(), uri.getPort());
    session->setKeepAlive(false);
    const Poco::Timespan left = deadline.left();
    session->setTimeout(left, left, left);
    std::string target = uri.getPathAndQuery();
    if (target.empty()) target = "/";
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, target, Poco::Net::HTTPMessage::HTTP_1_1);
    req.set("User-Agent", settings_.user_agent);
    req.set("Accept", "application/json, */*;q=0.5");
    session->sendRequest(req);
    stage = "GET " + uri.getScheme() + "://" + address;
    session->socket().setReceiveTimeout(deadline.left());
    Poco::Net::HTTPResponse resp;
    std::istream& in = session->receiveResponse(resp);
    r.http_status = static_cast<int>(resp.getStatus());
    std::string body;
    char buf[4096];
    while (body.size() <= kMaxBody) {
      session->socket().setReceiveTimeout(deadline.left());
      in.read(buf, sizeof buf);
      const auto n = in.gcount();
      if (n <= 0) break;
      body.append(buf, static_cast<size_t>(n));
    }
    r.latency_ms = deadline.elapsed_ms();
    const std::string status_line = "HTTP " + std::to_string(r.http_status) + " " + clean(resp.getReason(), 100);
    if (r.http_status >= 300 && r.http_status < 400)
      return fail(status_line + ": redirects are not followed (Location: " + clean(resp.get("Location", "none"), 200) +
                  ")");
    if (r.http_status < 200 || r.http_status >= 300) {
      const std::string excerpt = clean(body, 200);
      return fail(excerpt.empty() ? status_line : status_line + ": " + excerpt);
    }
    const std::string type = lower(resp.getContentType());
    const bool json = type.find("json") != std::string::npos;
    if (json) {
      if (body.size() > kMaxBody)
        return fail("answer body: larger than " + std::to_string(kMaxBody) + " bytes of JSON", true);
      const opk::Json doc = opk::Json::parse(body, nullptr, false);
      if (doc.is_discarded())
        return fail("answer body: not JSON although Content-Type is " + clean(resp.getContentType(), 100) + " ('" +
                        clean(body, 60) + "')",
                    true);
      // A health document (status "pass"/"ok"/"up" ...) that says it fails.
      if (doc.is_object() && doc.contains("status") && doc["status"].is_string()) {
        const std::string status = lower(doc["status"].get<std::string>());
        if (status == "fail" || status == "down" || status == "unhealthy" || status == "error")
          return fail("answer body: status '" + clean(doc["status"].get<std::string>(), 60) + "'");
      }
    }
    r.ok = true;
    r.error.clear();
    return r;
  } catch (const Poco::TimeoutException&) {
    return fail(stage + ": no answer within " + std::to_string(timeout_ms) + " ms");
  } catch (const Poco::Net::ConnectionRefusedException&) {
    return fail(stage + ": connection refused");
  } catch (const Poco::Net::HostNotFoundException& e) {
    return fail("resolve " + uri.getHost() + ": " + clean(e.displayText(), 300));
  } catch (const Poco::Net::NoAddressFoundException& e) {
    return fail("resolve " + uri.getHost() + ": " + clean(e.displayText(), 300));
  } catch (const Poco::Net::NoMessageException&) {
    return fail(stage + ": the connection closed without an answer");
  } catch (const Poco::Net::MessageException& e) {
    return fail(stage + ": not an HTTP answer (" + clean(e.displayText(), 200) + ")", true);
  } catch (const Poco::SyntaxException& e) {
    // Poco's status line parser: the bytes are not an HTTP answer.
    return fail(stage + ": not an HTTP answer (" + clean(e.displayText(), 200) + ")", true);
  } catch (const Poco::Net::SSLException& e) {
    return fail(stage + ": TLS: " + clean(e.displayText(), 300));
  } catch (const Poco::Exception& e) {
    return fail(stage + ": " + clean(e.displayText(), 300));
  }
}

}  // namespace region_health
