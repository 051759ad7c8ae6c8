#include "connection.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/String.h>
#include <Poco/Timestamp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "http_server.h"

namespace opk::admin {

int64_t steady_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

namespace {

// HTTP's reason phrase for `status` (Poco's table).
std::string reason_of(int status) {
  return Poco::Net::HTTPResponse::getReasonForStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
}

// A refusal decided before or while reading a request.
struct Refusal {
  int status = 0;  // 0: none
  std::string detail;
};

// Poco's words for a head it could not read, as a status and detail.
Refusal head_error(const std::string& what) {
  if (what.find("URI") != std::string::npos) return {414, "the request target is too long"};
  if (what.find("header fields") != std::string::npos) return {431, "the request has too many header fields"};
  if (what.find("Field") != std::string::npos) return {431, "a header field is too long or malformed (" + what + ")"};
  if (what.find("version") != std::string::npos) return {400, "the request line's HTTP version is malformed"};
  if (what.find("method") != std::string::npos) return {400, "the request method is malformed or too long"};
  return {400, "the request head is malformed (" + what + ")"};
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// How the request's body is framed, checked before anything reads it.
Refusal check_framing(const Poco::Net::HTTPServerRequest& rq) {
  const std::string& version = rq.getVersion();
  if (version != Poco::Net::HTTPMessage::HTTP_1_1 && version != Poco::Net::HTTPMessage::HTTP_1_0)
    return {505, "only HTTP/1.1 and HTTP/1.0 are served"};
  int lengths = 0;
  std::string length, coding;
  bool has_coding = false;
  for (const auto& [k, v] : rq) {
    if (Poco::icompare(k, std::string("Content-Length")) == 0) {
      ++lengths;
      length = Poco::trim(v);
    } else if (Poco::icompare(k, std::string("Transfer-Encoding")) == 0) {
      if (has_coding) return {400, "the Transfer-Encoding header is repeated"};
      has_coding = true;
      coding = Poco::toLower(Poco::trim(v));
    }
  }
  if (lengths > 1) return {400, "the Content-Length header is repeated: the body's length is ambiguous"};
  if (lengths == 1 && !all_digits(length)) return {400, "the Content-Length header is not a whole number"};
  if (has_coding && lengths)
    return {400, "both Transfer-Encoding and Content-Length are sent: the body's length is ambiguous"};
  if (has_coding && version == Poco::Net::HTTPMessage::HTTP_1_0)
    return {400, "Transfer-Encoding is not part of HTTP/1.0"};
  if (has_coding && coding != "chunked") return {501, "only the chunked transfer coding is accepted"};
  const bool body = has_coding || (lengths == 1 && length.find_first_not_of('0') != std::string::npos);
  const std::string& method = rq.getMethod();
  if (body && (method == "GET" || method == "HEAD")) return {400, "a " + method + " request carries no body"};
  return {};
}

class Connection : public Poco::Net::TCPServerConnection {
 public:
  Connection(const Poco::Net::StreamSocket& socket, ConnectionTable& table, Poco::Net::HTTPServerParams::Ptr params,
             const ConnectionHooks& hooks)
      : TCPServerConnection(socket), table_(table), params_(std::move(params)), hooks_(hooks) {}

  void run() override {
    Poco::Net::StreamSocket& sock = socket();
    table_.claimed(sock);
    struct Forget {
      ConnectionTable& t;
      Poco::Net::StreamSocket& s;
      ~Forget() { t.closed(s); }
    } forget{table_, sock};
    Poco::Net::HTTPServerSession session(sock, params_);
    for (bool first = true; !table_.stopping(); first = false) {
      if (!session.hasMoreRequests()) break;  // the first: at once; later: within the keep-alive time
      if (!first) table_.head_started(sock, steady_now_ms());
      if (!serve_one(session)) break;
      table_.idle(sock);
    }
  }

 private:
  // Serves one request; false when the connection is to close.
  bool serve_one(Poco::Net::HTTPServerSession& session) {
    Poco::Net::StreamSocket& sock = socket();
    Poco::Net::HTTPServerResponseImpl response(session);
    std::unique_ptr<Poco::Net::HTTPServerRequestImpl> request;
    Refusal refusal;
    try {
      request = std::make_unique<Poco::Net::HTTPServerRequestImpl>(response, session, params_.get());
    } catch (const Poco::Net::NoMessageException&) {
      refusal = {-1, ""};  // closed between requests: nothing to answer
    } catch (const Poco::Net::MessageException& e) {
      refusal = head_error(e.message());
    } catch (const Poco::SyntaxException&) {
      refusal = {400, "the Content-Length header is not a whole number"};
    } catch (const Poco::TimeoutException&) {
      refusal = {408, "the request head did not arrive in time"};
    } catch (const Poco::Exception&) {
      refusal = {-1, ""};  // reset, or its reading stopped (below)
    }
    if (!request) {
      // The response object still points at the request that failed to
      // construct: it is not used again, the answer goes straight out.
      const std::string cut = table_.cut_reason(sock);
      if (!cut.empty()) refusal = {408, cut};
      if (refusal.status > 0) refuse_raw(refusal);
      return false;
    }
    // Reading was stopped (deadline, eviction): Poco takes the end of input
    // for the end of the head, so what was read is no request at all.
    if (const std::string cut = table_.cut_reason(sock); !cut.empty()) {
      refuse_raw({408, cut});
      return false;
    }
    table_.head_done(sock);
    refusal = check_framing(*request);
    response.setDate(Poco::Timestamp());
    response.setVersion(refusal.status == 505 ? std::string(Poco::Net::HTTPMessage::HTTP_1_1) : request->getVersion());
    response.set("Server", params_->getSoftwareVersion());
    if (refusal.status > 0) {
      refuse(response, refusal);
      return false;
    }
    response.setKeepAlive(params_->getKeepAlive() && request->getKeepAlive() && session.canKeepAlive());
    try {
      hooks_.serve(*request, response);
    } catch (const std::exception&) {
      if (!response.sent()) {
        try {
          refuse(response, {500, "the request could not be served"});
        } catch (const std::exception&) {
        }
      }
      return false;
    }
    session.setKeepAlive(params_->getKeepAlive() && response.getKeepAlive() && session.canKeepAlive());
    // A body the handler did not read (a request refused before it, such
    // as a 401) would be read as the next request: it is read and dropped
    // here, up to kDrainBytes; a larger one closes the connection.
    if (session.getKeepAlive() && (request->getChunkedTransferEncoding() || request->getContentLength64() > 0)) {
      constexpr std::streamsize kDrainBytes = 1 << 20;
      std::istream& in = request->stream();
      char buf[8192];
      std::streamsize left = kDrainBytes;
      try {
        while (left > 0 && in.read(buf, std::min<std::streamsize>(left, sizeof buf))) left -= in.gcount();
        left -= in.gcount();
      } catch (const std::exception&) {
        left = 0;
      }
      if (!in.eof()) session.setKeepAlive(false);
    }
    return response.sent() && session.getKeepAlive();
  }

  void refuse(Poco::Net::HTTPServerResponse& rs, const Refusal& r) {
    const std::string body = problem_json(r.status, reason_of(r.status), r.detail);
    rs.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status), reason_of(r.status));
    rs.setContentType("application/problem+json");
    rs.set("X-Content-Type-Options", "nosniff");
    rs.set("Cache-Control", "no-store");
    rs.setKeepAlive(false);
    rs.setContentLength64(static_cast<Poco::Int64>(body.size()));
    rs.sendBuffer(body.data(), body.size());
    if (hooks_.refused) hooks_.refused(r.status);
  }

  void refuse_raw(const Refusal& r) {
    send_raw_problem(socket(), r.status, reason_of(r.status), r.detail);
    if (hooks_.refused) hooks_.refused(r.status);
  }

  ConnectionTable& table_;
  Poco::Net::HTTPServerParams::Ptr params_;
  const ConnectionHooks& hooks_;
};

}  // namespace

void send_raw_problem(Poco::Net::StreamSocket& socket, int status, const std::string& title,
                      const std::string& detail) {
  const std::string body = problem_json(status, title, detail);
  const std::string answer =
      "HTTP/1.1 " + std::to_string(status) + " " + title +
      "\r\nContent-Type: application/problem+json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: "
      "close\r\n\r\n" +
      body;
  try {
    socket.setSendTimeout(Poco::Timespan(1, 0));
    socket.sendBytes(answer.data(), static_cast<int>(answer.size()));
    socket.shutdownSend();
  } catch (const Poco::Exception&) {
    // The client is gone: nothing more to tell it.
  }
}

// ------------------------------------------------------------------ table

bool ConnectionTable::accepted(const Poco::Net::StreamSocket& s, int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  std::string address;
  try {
    address = s.peerAddress().host().toString();
  } catch (const Poco::Exception&) {
    return false;  // already gone
  }
  if (limits_.per_address > 0) {
    int held = 0;
    Entry* oldest = nullptr;
    for (auto& [k, e] : live_) {
      if (e.address != address || !e.cut.empty()) continue;
      ++held;
      if (e.state != State::busy && (!oldest || e.since_ms < oldest->since_ms)) oldest = &e;
    }
    if (held >= limits_.per_address) {
      if (!oldest) return false;
      cut_locked(*oldest, "evicted: the client address holds too many connections");
    }
  }
  live_[s.impl()] = Entry{s, address, State::head, now_ms, false, {}};
  return true;
}

void ConnectionTable::claimed(const Poco::Net::StreamSocket& s) {
  std::lock_guard lock(mu_);
  if (auto it = live_.find(s.impl()); it != live_.end()) it->second.claimed = true;
}

void ConnectionTable::head_started(const Poco::Net::StreamSocket& s, int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (auto it = live_.find(s.impl()); it != live_.end()) {
    it->second.state = State::head;
    it->second.since_ms = now_ms;
  }
}

void ConnectionTable::head_done(const Poco::Net::StreamSocket& s) {
  std::lock_guard lock(mu_);
  if (auto it = live_.find(s.impl()); it != live_.end()) it->second.state = State::busy;
}

void ConnectionTable::idle(const Poco::Net::StreamSocket& s) {
  std::lock_guard lock(mu_);
  if (auto it = live_.find(s.impl()); it != live_.end()) {
    it->second.state = State::idle;
    it->second.since_ms = steady_now_ms();
  }
}

void ConnectionTable::closed(const Poco::Net::StreamSocket& s) {
  std::lock_guard lock(mu_);
  live_.erase(s.impl());
}

std::string ConnectionTable::cut_reason(const Poco::Net::StreamSocket& s) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(s.impl());
  return it == live_.end() ? std::string() : it->second.cut;
}

void ConnectionTable::cut_locked(Entry& e, const std::string& why) {
  if (!e.cut.empty()) return;
  e.cut = why;
  try {
    // Reading stops; the connection's thread still writes its answer.
    e.socket.shutdownReceive();
  } catch (const Poco::Exception&) {
  }
}

size_t ConnectionTable::expire(int64_t now_ms) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  // Slow heads per address, oldest first: those beyond the limit go.
  std::map<std::string, std::vector<Entry*>> slow;
  for (auto& [k, e] : live_)
    if (e.state == State::head && e.cut.empty() && now_ms - e.since_ms > limits_.slow_after_ms)
      slow[e.address].push_back(&e);
  for (auto& [address, heads] : slow) {
    if (static_cast<int>(heads.size()) <= limits_.slow_heads_per_address) continue;
    std::sort(heads.begin(), heads.end(), [](const Entry* a, const Entry* b) { return a->since_ms < b->since_ms; });
    for (size_t i = 0; i + limits_.slow_heads_per_address < heads.size(); ++i) {
      cut_locked(*heads[i], "the request head is arriving too slowly, and this client address sends others as slowly");
      ++n;
    }
  }
  for (auto it = live_.begin(); it != live_.end();) {
    Entry& e = it->second;
    if (e.state == State::head && e.cut.empty() && now_ms - e.since_ms > limits_.head_deadline_ms) {
      cut_locked(e, "the request head did not arrive within " + std::to_string(limits_.head_deadline_ms / 1000) + " s");
      ++n;
    }
    // Never taken by a thread long after its deadline: the accept queue
    // dropped it. Forgetting it closes the socket.
    if (!e.claimed && !e.cut.empty() && now_ms - e.since_ms > 2 * limits_.head_deadline_ms + 1000)
      it = live_.erase(it);
    else
      ++it;
  }
  return n;
}

void ConnectionTable::shutdown_all() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  for (auto& [k, e] : live_) {
    if (e.cut.empty()) e.cut = "the server is stopping";
    try {
      e.socket.shutdown();
    } catch (const Poco::Exception&) {
    }
  }
}

bool ConnectionTable::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

size_t ConnectionTable::size() const {
  std::lock_guard lock(mu_);
  return live_.size();
}

// ---------------------------------------------------------------- factory

Poco::Net::TCPServerConnection* ConnectionFactory::createConnection(const Poco::Net::StreamSocket& socket) {
  return new Connection(socket, table_, params_, hooks_);
}

bool ConnectionFilter::accept(const Poco::Net::StreamSocket& socket) {
  if (table_.accepted(socket, steady_now_ms())) return true;
  if (table_.stopping()) return false;
  Poco::Net::StreamSocket s(socket);
  send_raw_problem(s, 503, "Service Unavailable",
                   "this client address holds too many connections that are being served; retry later");
  if (refused_) refused_(503);
  return false;
}

}  // namespace opk::admin
