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
#include <atomic>
#include <cctype>
#include <chrono>
#include <deque>
#include <exception>
#include <filesystem>
#include <istream>
#include <memory>
#include <mutex>
#include <ostream>
#include <vector>

namespace opk::http {

struct Client::Tls {
  Poco::Net::Context::Ptr context;
};

namespace {

using HttpClock = std::chrono::steady_clock;

// How long a kept connection may stay idle: under the 5 s after which
// common servers (Node.js) close an idle one.
constexpr auto kKeptIdle = std::chrono::seconds(4);
// The most idle connections kept in all, whatever the origins.
constexpr size_t kMaxKept = 64;

}  // namespace

// Connections kept for the next request to their origin, newest last.
struct Client::Kept {
  struct Idle {
    std::string origin;
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    HttpClock::time_point since;
  };
  std::mutex mu;
  std::deque<Idle> idle;  // guarded by mu
  std::atomic<uint64_t> opened{0};

  // A kept connection to `origin` idle for less than kKeptIdle, or null.
  // Older ones are closed on the way.
  std::unique_ptr<Poco::Net::HTTPClientSession> take(const std::string& origin) {
    std::unique_ptr<Poco::Net::HTTPClientSession> found;
    std::vector<std::unique_ptr<Poco::Net::HTTPClientSession>> stale;
    {
      std::lock_guard lock(mu);
      const auto now = HttpClock::now();
      while (!idle.empty() && now - idle.front().since >= kKeptIdle) {
        stale.push_back(std::move(idle.front().session));
        idle.pop_front();
      }
      for (auto it = idle.rbegin(); it != idle.rend(); ++it)
        if (it->origin == origin) {
          found = std::move(it->session);
          idle.erase(std::next(it).base());
          break;
        }
    }
    return found;  // the stale ones are closed here, outside the lock
  }

  // Keeps `session` for `origin` when fewer than `per_origin` are kept for
  // it; otherwise it is closed.
  void give_back(const std::string& origin, std::unique_ptr<Poco::Net::HTTPClientSession> session, size_t per_origin) {
    std::unique_ptr<Poco::Net::HTTPClientSession> dropped;
    std::lock_guard lock(mu);
    const auto same =
        static_cast<size_t>(std::count_if(idle.begin(), idle.end(), [&](const Idle& i) { return i.origin == origin; }));
    if (same >= per_origin) return;  // closed as `session` goes
    if (idle.size() >= kMaxKept) {
      dropped = std::move(idle.front().session);
      idle.pop_front();
    }
    idle.push_back({origin, std::move(session), HttpClock::now()});
  }
};

namespace {

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
  // Kept only when the server keeps it and the body was read to its end.
  if (session.getKeepAlive() && (!resp.getKeepAlive() || out->body_cut)) session.setKeepAlive(false);
}

// A new session to `url`'s host (TLS with `tls` for https), kept alive
// after its answer when `keep`.
std::unique_ptr<Poco::Net::HTTPClientSession> new_session(const Url& url, const Poco::Net::Context::Ptr& tls,
                                                          bool keep) {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (url.https)
    session = std::make_unique<PromptHttpSession<Poco::Net::HTTPSClientSession>>(url.host, url.port, tls);
  else
    session = std::make_unique<PromptHttpSession<Poco::Net::HTTPClientSession>>(url.host, url.port);
  session->setKeepAlive(keep);
  session->setKeepAliveTimeout(
      Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(kKeptIdle).count()));
  return session;
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

uint64_t Client::connections() const {
  return kept_ ? kept_->opened.load(std::memory_order_relaxed) : 0;
}

opk::Status Client::create(const ClientOptions& options, Client* out) {
  out->options_ = options;
  out->tls_.reset();
  out->kept_ = std::make_shared<Kept>();
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
  const bool keep = options_.keep_alive > 0 && kept_ != nullptr;
  try {
    const Poco::URI uri(request.url);
    std::string target = uri.getPathAndQuery();
    if (target.empty() || target[0] != '/') target.insert(0, "/");
    const Poco::Net::Context::Ptr tls = url.https ? tls_->context : Poco::Net::Context::Ptr();
    std::unique_ptr<Poco::Net::HTTPClientSession> session = keep ? kept_->take(url.origin) : nullptr;
    bool fresh = session == nullptr;
    if (fresh) {
      session = new_session(url, tls, keep);
      if (kept_) kept_->opened.fetch_add(1, std::memory_order_relaxed);
    }
    try {
      exchange(*session, request, options_.user_agent, target, name, deadline, &stage, out);
    } catch (const Poco::TimeoutException&) {
      throw;
    } catch (const Poco::Exception&) {
      // A kept connection the server closed meanwhile (its idle timeout
      // passing as the request went): nothing of an answer came, so the
      // request is sent once more, on a new connection.
      if (fresh || out->status != 0) throw;
      *out = Response();
      out->max_body = request.max_body;
      stage = "connect " + url.origin.substr(url.origin.find("://") + 3);
      session = new_session(url, tls, keep);
      kept_->opened.fetch_add(1, std::memory_order_relaxed);
      fresh = true;
      exchange(*session, request, options_.user_agent, target, name, deadline, &stage, out);
    }
    if (keep && session->getKeepAlive() && session->connected())
      kept_->give_back(url.origin, std::move(session), options_.keep_alive);
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
