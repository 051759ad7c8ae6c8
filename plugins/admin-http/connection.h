// connection.h -- the admin server's HTTP/1.1 connections, in place of
// Poco's HTTPServerConnection. Poco's answers framing errors with a page
// that has no body or with no answer at all, sends "100 Continue" before the
// handler has checked the body's size, echoes whatever HTTP version it is
// sent and gives the request head no deadline, so a few clients that send
// their heads slowly hold every thread. Here:
// - every answer the connection layer writes itself is problem+json;
// - ambiguous framing (Transfer-Encoding with Content-Length, repeated or
//   malformed Content-Length, a GET or HEAD with a body) gets one 400 and the
//   connection is closed, so no body is ever read as a request;
// - a request head must arrive within a deadline, and one client address
//   holds at most so many connections: a new one evicts the address's oldest
//   connection that is idle or still sending its head, or is refused with 503.
#ifndef OPSKERNEL_PLUGINS_ADMIN_HTTP_CONNECTION_H
#define OPSKERNEL_PLUGINS_ADMIN_HTTP_CONNECTION_H

#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace Poco::Net {
class HTTPServerRequest;
class HTTPServerResponse;
}  // namespace Poco::Net

namespace opk::admin {

// Limits on the connections of one server.
struct ConnectionLimits {
  int64_t head_deadline_ms = 5000;  // a request head arrives within this
  int per_address = 48;             // connections held by one client address
  // Connections of one address whose head has been arriving for longer than
  // slow_after_ms; beyond this many, the oldest are closed.
  int slow_heads_per_address = 8;
  int64_t slow_after_ms = 1000;
};

// The live connections of one server, each in one of three states: sending
// its request head, being served, or idle between kept-alive requests.
// Thread-safe; the acceptor, the connections' threads and a watchdog share it.
class ConnectionTable {
 public:
  explicit ConnectionTable(ConnectionLimits limits) : limits_(limits) {}

  // A connection was accepted and waits for a thread, sending its head.
  // If its address is at its limit, that address's oldest connection that
  // is idle or sending its head is shut down to make room; if all are being
  // served, returns false and the new connection is to be refused.
  bool accepted(const Poco::Net::StreamSocket& s, int64_t now_ms);
  // A connection's thread took it over (it is forgotten at closed()).
  void claimed(const Poco::Net::StreamSocket& s);
  // The next request's head started arriving on a kept-alive connection.
  void head_started(const Poco::Net::StreamSocket& s, int64_t now_ms);
  // The head arrived whole: the request is being served.
  void head_done(const Poco::Net::StreamSocket& s);
  // The answer went out: idle until the next request.
  void idle(const Poco::Net::StreamSocket& s);
  // The connection ended.
  void closed(const Poco::Net::StreamSocket& s);
  // Why the table cut the connection's reading ("" if it did not).
  std::string cut_reason(const Poco::Net::StreamSocket& s) const;
  // Stops reading on connections whose head is past its deadline, and on
  // the oldest slow heads of an address beyond slow_heads_per_address;
  // forgets those no thread took (a full accept queue dropped them).
  // Returns how many were cut.
  size_t expire(int64_t now_ms);
  // Shuts every connection down; connections accepted later are refused.
  void shutdown_all();
  bool stopping() const;
  // Connections known, for tests and metrics.
  size_t size() const;

 private:
  enum class State { head, busy, idle };
  struct Entry {
    Poco::Net::StreamSocket socket;
    std::string address;
    State state = State::head;
    int64_t since_ms = 0;  // when the current state began
    bool claimed = false;
    std::string cut;  // why reading was stopped
  };
  void cut_locked(Entry& e, const std::string& why);

  const ConnectionLimits limits_;
  mutable std::mutex mu_;
  bool stopping_ = false;
  std::map<const void*, Entry> live_;  // by socket implementation
};

// What a connection does with a well-framed request, and with the answers
// the connection layer writes itself (for metrics).
struct ConnectionHooks {
  std::function<void(Poco::Net::HTTPServerRequest&, Poco::Net::HTTPServerResponse&)> serve;
  std::function<void(int status)> refused;
};

// Creates the connections of one server; also its accept filter.
class ConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  ConnectionFactory(ConnectionTable& table, Poco::Net::HTTPServerParams::Ptr params, ConnectionHooks hooks)
      : table_(table), params_(std::move(params)), hooks_(std::move(hooks)) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override;

 private:
  ConnectionTable& table_;
  Poco::Net::HTTPServerParams::Ptr params_;
  ConnectionHooks hooks_;
};

// Records each accepted connection in the table; a connection over its
// address's limit is answered 503 and closed.
class ConnectionFilter : public Poco::Net::TCPServerConnectionFilter {
 public:
  ConnectionFilter(ConnectionTable& table, std::function<void(int status)> refused)
      : table_(table), refused_(std::move(refused)) {}
  bool accept(const Poco::Net::StreamSocket& socket) override;

 private:
  ConnectionTable& table_;
  std::function<void(int status)> refused_;
};

// The steady clock in milliseconds.
int64_t steady_now_ms();

// Writes a whole problem+json answer straight to `socket` and asks to close
// the connection; for answers given before a request could be read.
void send_raw_problem(Poco::Net::StreamSocket& socket, int status, const std::string& title, const std::string& detail);

}  // namespace opk::admin

#endif
