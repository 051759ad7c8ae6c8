// opk::http::Client and Response (http.hpp), on Poco Net and NetSSL.
#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/URI.h>
#include <opskernel/http.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <filesystem>
#include <istream>
#include <ostream>

namespace opk::http {

struct Client::Tls {
  Poco::Net::Context::Ptr context;
};

namespace {

using HttpClock = std::chrono::steady_clock;

// The end of one exchange's time.
class HttpDeadline {
 public:
  explicit HttpDeadline(int64_t ms) : end_(HttpClock::now() + std::chrono::milliseconds(ms)) {}
  // Time left, at least 1 ms (Poco reads 0 as "no timeout"). Throws
  // Poco::TimeoutException once the time is up.
  Poco::Timespan left() const {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(end_ - HttpClock::now()).count();
    if (us <= 0) throw Poco::TimeoutException("the request's time is up");
    return Poco::Timespan(std::max<int64_t>(us, 1000));
  }

 private:
  HttpClock::time_point end_;
};

// A session whose connection sends at once (TCP_NODELAY): a request written
// in more than one segment (head, then body) is otherwise held back by
// Nagle's algorithm until the server's delayed ACK, 40 ms on Linux.
template <class Session>
class PromptHttpSession : public Session {
 public:
  using Session::Session;

 protected:
  void connect(const Poco::Net::SocketAddress& address) override {
    Session::connect(address);
    this->socket().setNoDelay(true);
  }
};

bool same_http_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// One exchange on `session`; throws Poco's exceptions, with `*stage` saying
// how far it came.
void exchange(Poco::Net::HTTPClientSession& session, const Request& request, const std::string& user_agent,
              const std::string& target, const std::string& name, const HttpDeadline& deadline, std::string* stage,
              Response* out) {
  session.setKeepAlive(false);
  const Poco::Timespan left = deadline.left();
  session.setTimeout(left, left, left);
  Poco::Net::HTTPRequest req(request.method, target, Poco::Net::HTTPMessage::HTTP_1_1);
  req.set("User-Agent", user_agent);
  const bool has_body = !request.content_type.empty();
  if (has_body) {
    req.setContentType(request.content_type);
    req.setContentLength(static_cast<std::streamsize>(request.body.size()));
  }
  for (const auto& [field, value] : request.headers) req.set(field, value);
  std::ostream& body_out = session.sendRequest(req);
  *stage = name;
  if (has_body) {
    session.socket().setSendTimeout(deadline.left());
    body_out.write(request.body.data(), static_cast<std::streamsize>(request.body.size()));
    body_out.flush();
  }
  session.socket().setReceiveTimeout(deadline.left());
  Poco::Net::HTTPResponse resp;
  std::istream& in = session.receiveResponse(resp);
  out->status = static_cast<int>(resp.getStatus());
  out->reason = resp.getReason();
  for (const auto& [field, value] : resp) out->headers.emplace_back(field, value);
  // The stream turns Poco's exceptions (a timeout, a reset) into its bad
  // bit, and what a read had taken before is lost with them: have them
  // thrown, and take the body as it comes (peek waits for more, readsome
  // takes what came), so a body that stops is a failure that keeps its start.
  in.exceptions(std::ios::badbit);
  char buf[16384];
  while (out->body.size() <= request.max_body) {
    session.socket().setReceiveTimeout(deadline.left());
    if (in.peek() == std::char_traits<char>::eof()) break;
    // One byte past the bound says whether there is more.
    const auto n =
        in.readsome(buf, static_cast<std::streamsize>(std::min(sizeof buf, request.max_body + 1 - out->body.size())));
    out->body.append(buf, static_cast<size_t>(n));
  }
  if (out->body.size() > request.max_body) {
    out->body.resize(request.max_body);
    out->body_cut = true;
  }
}

}  // namespace

std::optional<std::string> Response::header(std::string_view name) const {
  for (const auto& [field, value] : headers)
    if (same_http_name(field, name)) return value;
  return std::nullopt;
}

std::string Response::summary() const {
  const std::string line = "HTTP " + std::to_string(status) + " " + printable(reason, 100);
  if (status >= 300 && status < 400)
    return line + ": redirects are not followed (Location: " + printable(header("Location").value_or("none"), 200) +
           ")";
  const std::string excerpt = printable(body, 200);
  return excerpt.empty() ? line : line + ": " + excerpt;
}

opk::Status Response::whole_body() const {
  if (!body_cut) return opk::Status::ok();
  return opk::Status::invalid("answer body: larger than " + std::to_string(max_body) + " bytes");
}

opk::Status Client::create(const ClientOptions& options, Client* out) {
  out->options_ = options;
  out->tls_.reset();
  const std::string where = options.section.empty() ? "" : options.section + " ";
  if (!options.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(options.ca_file, ec))
      return opk::Status::invalid(where + "ca_file = \"" + options.ca_file + "\": no such file");
  }
  try {
    Poco::Net::Context::Params p;
    p.caLocation = options.ca_file;
    p.loadDefaultCAs = options.ca_file.empty();
    p.verificationMode = options.verify_tls ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE;
    p.cipherList = "HIGH:!aNULL:!MD5:!RC4";
    auto tls = std::make_shared<Tls>();
    tls->context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, p);
    tls->context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    tls->context->enableExtendedCertificateVerification(options.verify_tls);
    out->tls_ = std::move(tls);
  } catch (const Poco::Exception& e) {
    return opk::Status::invalid(where + "TLS context (ca_file = \"" + options.ca_file + "\"): " + e.displayText());
  }
  return opk::Status::ok();
}

opk::Status Client::send(const Request& request, Response* out) const {
  *out = Response();
  out->max_body = request.max_body;
  Url url;
  if (std::string bad = check_url(request.url, &url); !bad.empty())
    return opk::Status::invalid("URL '" + printable(request.url, 200) + "' " + bad);
  if (url.https && tls_ == nullptr) return {OPK_ERR_INTERNAL, "the client was not created (Client::create)"};
  const HttpDeadline deadline(request.timeout_ms);
  std::string stage = "connect " + url.origin.substr(url.origin.find("://") + 3);
  const std::string name = request.name.empty() ? request.method + " " + url.origin : request.name;
  try {
    const Poco::URI uri(request.url);
    std::string target = uri.getPathAndQuery();
    if (target.empty() || target[0] != '/') target.insert(0, "/");
    if (url.https) {
      PromptHttpSession<Poco::Net::HTTPSClientSession> session(url.host, url.port, tls_->context);
      exchange(session, request, options_.user_agent, target, name, deadline, &stage, out);
    } else {
      PromptHttpSession<Poco::Net::HTTPClientSession> session(url.host, url.port);
      exchange(session, request, options_.user_agent, target, name, deadline, &stage, out);
    }
    return opk::Status::ok();
  } catch (const Poco::TimeoutException&) {
    return {OPK_ERR_TIMEOUT, stage + ": no answer within " + std::to_string(request.timeout_ms) + " ms"};
  } catch (const Poco::Net::ConnectionRefusedException&) {
    return opk::Status::unavailable(stage + ": connection refused");
  } catch (const Poco::Net::HostNotFoundException& e) {
    return opk::Status::unavailable("resolve " + url.host + ": " + printable(e.displayText(), 300));
  } catch (const Poco::Net::NoAddressFoundException& e) {
    return opk::Status::unavailable("resolve " + url.host + ": " + printable(e.displayText(), 300));
  } catch (const Poco::Net::NoMessageException&) {
    return opk::Status::unavailable(stage + ": the connection closed without an answer");
  } catch (const Poco::Net::MessageException& e) {
    return opk::Status::invalid(stage + ": not an HTTP answer (" + printable(e.displayText(), 200) + ")");
  } catch (const Poco::SyntaxException& e) {
    // Poco's status line parser: the bytes are not an HTTP answer.
    return opk::Status::invalid(stage + ": not an HTTP answer (" + printable(e.displayText(), 200) + ")");
  } catch (const Poco::Net::SSLException& e) {
    // A certificate that does not verify will not verify on a retry.
    return {OPK_ERR_FAILED, stage + ": TLS: " + printable(e.displayText(), 300)};
  } catch (const Poco::Exception& e) {
    return opk::Status::unavailable(stage + ": " + printable(e.displayText(), 300));
  } catch (const std::exception& e) {
    return opk::Status::unavailable(stage + ": " + printable(e.what(), 300));
  }
}

}  // namespace opk::http
