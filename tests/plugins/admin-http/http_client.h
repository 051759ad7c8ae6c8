// http_client.h -- what the admin-http tests share: a free port on
// 127.0.0.1 and one HTTP request through Poco's client, its answer kept whole.
#ifndef OPSKERNEL_TESTS_PLUGINS_ADMIN_HTTP_HTTP_CLIENT_H
#define OPSKERNEL_TESTS_PLUGINS_ADMIN_HTTP_HTTP_CLIENT_H

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <map>
#include <string>

namespace opk::test {

// A port on 127.0.0.1 that was free a moment ago.
inline int free_port() {
  Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
  return s.address().port();
}

// An answer: status, body and head.
struct Reply {
  int status = 0;
  std::string body;
  Poco::Net::HTTPResponse head;
  Poco::JSON::Object::Ptr json() const {
    Poco::JSON::Parser p;
    return p.parse(body).extract<Poco::JSON::Object::Ptr>();
  }
};

// One request to 127.0.0.1:`port`, with a bearer `token` if given; a body
// (or a POST or PATCH) is sent as application/json unless a Content-Type
// is among `headers`.
inline Reply http_request(int port, const std::string& method, const std::string& target, const std::string& token = "",
                          const std::string& body = "", const std::map<std::string, std::string>& headers = {}) {
  Poco::Net::HTTPClientSession s("127.0.0.1", static_cast<Poco::UInt16>(port));
  s.setTimeout(Poco::Timespan(20, 0));
  Poco::Net::HTTPRequest rq(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!token.empty()) rq.set("Authorization", "Bearer " + token);
  for (auto& [k, v] : headers) rq.set(k, v);
  if (!body.empty() || method == "POST" || method == "PATCH") {
    if (!rq.has("Content-Type")) rq.setContentType("application/json");
    rq.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  s.sendRequest(rq) << body;
  Reply r;
  std::istream& in = s.receiveResponse(r.head);
  Poco::StreamCopier::copyToString(in, r.body);
  r.status = r.head.getStatus();
  return r;
}

}  // namespace opk::test

#endif
