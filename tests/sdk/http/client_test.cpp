// opk::http::Client (sdk/http/client.cpp) against real servers on
// 127.0.0.1: the region server (tests/support/region-server/), plain and
// https with a private CA (verified with the CA, refused without it),
// http_test_server.py (an echo of what was sent, a body that stops coming),
// a listening socket that never answers (the timeout), a closed port; the
// body bound, the answer's summary and header fields, and each failure
// named with its stage and a code saying whether a retry may help.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <opskernel/http.hpp>
#include <opskernel/json.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/servers.h"

namespace opk::http {
namespace {

using opk::test::ServerProcess;
using Json = nlohmann::json;

class HttpClient : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(start(server_), "") << "region server";
    ASSERT_TRUE(Client::create({.user_agent = "Opskernel-HttpTest/1.0"}, &client_)) << "client";
  }

  std::string start(ServerProcess& server, const std::vector<std::string>& extra = {},
                    const std::string& script = "/tests/support/region-server/region_server.py") {
    std::vector<std::string> argv = {OPK_PYTHON3, std::string(OPK_SOURCE_DIR) + script};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return server.start(argv, dir_.file("server-" + std::to_string(++servers_) + ".err"));
  }
  std::string origin(int port = 0) const { return "http://127.0.0.1:" + std::to_string(port ? port : server_.port()); }
  Status get(const std::string& url, Response* out, size_t max_body = 64 * 1024, int64_t timeout_ms = 10'000) const {
    return client_.send({.url = url, .timeout_ms = timeout_ms, .max_body = max_body}, out);
  }

  opk::test::ScratchDir dir_;
  ServerProcess server_;
  int servers_ = 0;
  Client client_;
};

TEST_F(HttpClient, AnAnswerWithItsStatusHeadersAndBody) {
  Response r;
  ASSERT_TRUE(get(origin() + "/ok", &r)) << "GET /ok";
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reason, "OK");
  EXPECT_EQ(r.body, R"({"status": "pass"})");
  EXPECT_FALSE(r.body_cut);
  EXPECT_TRUE(r.whole_body());
  EXPECT_EQ(r.header("content-type"), "application/json");  // any case
  EXPECT_EQ(r.header("Content-Length"), "18");
  EXPECT_EQ(r.header("X-Not-Sent"), std::nullopt);
  EXPECT_EQ(r.summary(), R"(HTTP 200 OK: {"status": "pass"})");
  // A failing status is an answer too; the summary quotes the body's start.
  ASSERT_TRUE(get(origin() + "/fail", &r));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.summary(), R"(HTTP 503 Service Unavailable: {"status": "fail"})");
}

TEST_F(HttpClient, ARequestSendsItsMethodBodyAndHeaders) {
  ServerProcess echo;
  ASSERT_EQ(start(echo, {}, "/tests/sdk/http/http_test_server.py"), "");
  Response r;
  Status s = client_.send({.method = "POST",
                           .url = origin(echo.port()) + "/echo?x=1",
                           .headers = {{"X-Trace", "t1"}},
                           .body = R"({"a": "é"})",
                           .content_type = "application/json"},
                          &r);
  ASSERT_TRUE(s) << s.message();
  ASSERT_EQ(r.status, 200) << r.body;
  nlohmann::json got = nlohmann::json::parse(r.body);
  EXPECT_EQ(got["method"], "POST");
  EXPECT_EQ(got["path"], "/echo?x=1");
  EXPECT_EQ(got["body"], R"({"a": "é"})");
  EXPECT_EQ(got["headers"]["content-type"], "application/json");
  EXPECT_EQ(got["headers"]["content-length"], "11");  // bytes, é is two
  EXPECT_EQ(got["headers"]["user-agent"], "Opskernel-HttpTest/1.0");
  EXPECT_EQ(got["headers"]["x-trace"], "t1");
  // Without a content type no body goes; a User-Agent field replaces the client's.
  s = client_.send({.url = origin(echo.port()) + "/echo", .headers = {{"User-Agent", "Other/2"}}}, &r);
  ASSERT_TRUE(s) << s.message();
  got = nlohmann::json::parse(r.body);
  EXPECT_EQ(got["method"], "GET");
  EXPECT_FALSE(got["headers"].contains("content-length")) << got;
  EXPECT_FALSE(got["headers"].contains("content-type")) << got;
  EXPECT_EQ(got["headers"]["user-agent"], "Other/2");
}

TEST_F(HttpClient, ABodyThatStopsComingEndsInTheTimeoutWithTheAnswerSoFar) {
  ServerProcess stall;
  ASSERT_EQ(start(stall, {}, "/tests/sdk/http/http_test_server.py"), "");
  Response r;
  const Status s = get(origin(stall.port()) + "/stall", &r, 64 * 1024, 500);
  EXPECT_EQ(s.code(), OPK_ERR_TIMEOUT);
  EXPECT_EQ(s.message(), "GET " + origin(stall.port()) + ": no answer within 500 ms");
  // The status and headers came, and the start of the body.
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length"), "1000");
  EXPECT_EQ(r.body, "first part");
}

TEST_F(HttpClient, RedirectsAreNotFollowed) {
  Response r;
  ASSERT_TRUE(get(origin() + "/redirect", &r));
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "/ok");
  EXPECT_EQ(r.summary(), "HTTP 302 Found: redirects are not followed (Location: /ok)");
  // The server saw the redirect asked for and nothing else.
  ASSERT_TRUE(get(origin() + "/stats", &r));
  EXPECT_EQ(r.body.find("\"/ok\""), std::string::npos) << r.body;
}

TEST_F(HttpClient, TheBodyIsReadUpToItsBound) {
  Response r;
  ASSERT_TRUE(get(origin() + "/ok", &r, 5));
  EXPECT_EQ(r.body, R"({"sta)");
  EXPECT_TRUE(r.body_cut);
  const Status whole = r.whole_body();
  EXPECT_EQ(whole.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(whole.message(), "answer body: larger than 5 bytes");
  // A body of exactly the bound is whole.
  ASSERT_TRUE(get(origin() + "/ok", &r, 18));
  EXPECT_EQ(r.body, R"({"status": "pass"})");
  EXPECT_FALSE(r.body_cut);
  EXPECT_TRUE(r.whole_body());
}

TEST_F(HttpClient, NoAnswerWithinTheTimeout) {
  // A server that accepts connections (the kernel's backlog) and never answers.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  Response r;
  const auto start = std::chrono::steady_clock::now();
  const Status s = get(origin(port) + "/x", &r, 1024, 300);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  EXPECT_EQ(s.code(), OPK_ERR_TIMEOUT);
  EXPECT_EQ(s.message(), "GET " + origin(port) + ": no answer within 300 ms");
  EXPECT_EQ(r.status, 0);
  EXPECT_GE(ms, 250);
  EXPECT_LT(ms, 20'000);  // bounded by the timeout, not hanging
  // A slow answer: the deadline holds for the whole exchange.
  const Status slow = client_.send({.url = origin() + "/slow/3000", .timeout_ms = 300, .name = "probe"}, &r);
  EXPECT_EQ(slow.code(), OPK_ERR_TIMEOUT);
  EXPECT_EQ(slow.message(), "probe: no answer within 300 ms");  // the request named as asked
}

TEST_F(HttpClient, FailuresNameTheStageAndWhetherARetryMayHelp) {
  Response r;
  const int closed = opk::test::closed_port();
  Status s = get(origin(closed) + "/ok", &r);
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_EQ(s.message(), "connect 127.0.0.1:" + std::to_string(closed) + ": connection refused");
  s = get(origin() + "/garbage", &r);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message().rfind("GET " + origin() + ": not an HTTP answer (", 0), 0u) << s.message();
  s = get("ftp://127.0.0.1/x", &r);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message(), "URL 'ftp://127.0.0.1/x' has the scheme 'ftp' (http or https only)");
  s = get("http://no-such-host.invalid/x", &r);
  EXPECT_EQ(s.code(), OPK_ERR_UNAVAILABLE);
  EXPECT_EQ(s.message().rfind("resolve no-such-host.invalid: ", 0), 0u) << s.message();
}

// Keep-alive (ClientOptions::keep_alive) against http_test_server.py,
// which numbers its connections and the requests on each: requests to one
// origin share a connection; "Connection: close" and a connection the
// server closed meanwhile are not used again, the request on the latter
// sent once more on a new connection as one request of the caller's; and a
// client without keep-alive opens a connection per request, as before.
TEST_F(HttpClient, KeptConnectionsAreUsedAgainAndDroppedWhenTheServerCloses) {
  ServerProcess server;
  ASSERT_EQ(start(server, {}, "/tests/sdk/http/http_test_server.py"), "");
  Client kept;
  ASSERT_TRUE(Client::create({.user_agent = "Opskernel-HttpTest/1.0", .keep_alive = 2}, &kept));
  auto send = [&](const Client& c, const std::string& path, Json* answer) {
    Response r;
    const Status s = c.send({.url = origin(server.port()) + path, .timeout_ms = 10'000}, &r);
    EXPECT_TRUE(s) << path << ": " << s.message();
    EXPECT_EQ(r.status, 200) << path;
    *answer = Json::parse(r.body, nullptr, false);
  };
  Json a;
  for (int i = 1; i <= 3; ++i) {
    send(kept, "/keep", &a);
    EXPECT_EQ(a["request"], i) << a.dump();
  }
  const Json first = a["connection"];
  EXPECT_EQ(kept.connections(), 1u);
  // The server says it closes: the next request goes on a new connection.
  send(kept, "/keep/close", &a);
  EXPECT_EQ(a["connection"], first);
  EXPECT_EQ(a["request"], 4);
  send(kept, "/keep", &a);
  EXPECT_NE(a["connection"], first);
  EXPECT_EQ(a["request"], 1);
  EXPECT_EQ(kept.connections(), 2u);
  // The server drops the kept connection as the request comes: the request
  // is answered on a new connection, one send of the caller's.
  const Json second = a["connection"];
  send(kept, "/keep/drop", &a);
  EXPECT_NE(a["connection"], second);
  EXPECT_EQ(a["request"], 1) << a.dump();
  EXPECT_EQ(kept.connections(), 3u);
  // A drop on a new connection is an error, not sent again.
  Client once;
  ASSERT_TRUE(Client::create({.user_agent = "Opskernel-HttpTest/1.0"}, &once));
  for (int i = 0; i < 2; ++i) {
    send(once, "/keep", &a);
    EXPECT_EQ(a["request"], 1) << "no keep-alive: a connection per request";
  }
  EXPECT_EQ(once.connections(), 2u);
}

TEST_F(HttpClient, HttpsWithAPrivateCaAndWithout) {
  ASSERT_EQ(opk::test::make_certificate(dir_.path(), "ca"), "");
  ServerProcess tls;
  ASSERT_EQ(start(tls, {"--tls", "--cert", dir_.file("ca.pem"), "--key", dir_.file("ca.key")}), "");
  const std::string address = "localhost:" + std::to_string(tls.port());
  Response r;
  // The system's CAs: the private one is not among them.
  Status s = client_.send({.url = "https://" + address + "/ok"}, &r);
  EXPECT_EQ(s.code(), OPK_ERR_FAILED);
  EXPECT_EQ(s.message().rfind("connect " + address + ": TLS: ", 0), 0u) << s.message();
  // Trusting the private CA: verified, certificate and host name.
  Client trusting;
  ASSERT_TRUE(Client::create({.ca_file = dir_.file("ca.pem")}, &trusting));
  s = trusting.send({.url = "https://" + address + "/ok"}, &r);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status": "pass"})");
  // Without verification (insecure) the unknown CA passes.
  Client lax;
  ASSERT_TRUE(Client::create({.verify_tls = false}, &lax));
  s = lax.send({.url = "https://" + address + "/ok"}, &r);
  EXPECT_TRUE(s) << s.message();
}

TEST_F(HttpClient, AMissingOrUnusableCaFileIsNamed) {
  Client c;
  Status s = Client::create({.ca_file = dir_.file("none.pem"), .section = "[plugin.acme]"}, &c);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message(), "[plugin.acme] ca_file = \"" + dir_.file("none.pem") + "\": no such file");
  {
    std::ofstream junk(dir_.file("junk.pem"));
    junk << "not a certificate\n";
  }
  s = Client::create({.ca_file = dir_.file("junk.pem")}, &c);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(s.message().rfind("TLS context (ca_file = \"" + dir_.file("junk.pem") + "\"): ", 0), 0u) << s.message();
}

}  // namespace
}  // namespace opk::http
