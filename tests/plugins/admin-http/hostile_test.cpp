// The admin HTTP server against hostile clients, over raw sockets on
// 127.0.0.1 to a real kernel: framing that could desync a proxy, heads sent
// slowly, label injection into /metrics, bytes that are not UTF-8, numbers
// past int64 and control characters in text. Each answer is checked, and
// that the server goes on serving. What reaches the store (the audit trail,
// a revocation by another process) runs on both stores (a fresh PostgreSQL
// database per test, tests/support/pg_util.h); what the HTTP layer refuses
// before the store runs on SQLite.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <sstream>
#include <thread>

#include "http_client.h"
#include "store/open.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

using test::free_port;
using test::Reply;

// RFC 3629 UTF-8, checked byte by byte.
bool utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0, n = s.size(); i < n;) {
    const unsigned char c = p[i];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return false;
    if (len == 3 && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F))) return false;
    if (len == 4 && ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F))) return false;
    i += len;
  }
  return true;
}

// One parsed answer out of raw bytes.
struct RawAnswer {
  int status = 0;
  std::string head, body;
};

class Hostile : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { start({}); }

  // The kernel's configuration on the test's store.
  config::Config base_config() {
    auto cfg = test::quiet_config(dir_, plugins_);
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    EXPECT_TRUE(e.empty()) << e;
    return cfg;
  }

  void start(std::map<std::string, std::string> settings) {
    kernel_.reset();
    port_ = free_port();
    auto cfg = base_config();
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    cfg.plugins["admin-http"] = settings;
    kernel_ = std::make_unique<Kernel>(cfg);
    Status s = kernel_->start();
    ASSERT_TRUE(s) << s.message();
    if (admin_.empty()) {
      auto* id = kernel_->identity();
      ASSERT_TRUE(id->add_user({"pat", "", "PlatformAdministrator", "platform"}));
      ASSERT_TRUE(id->issue_token("pat", 0, "test", &admin_));
    }
  }

  Poco::Net::StreamSocket connect() {
    Poco::Net::StreamSocket s(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_)));
    s.setReceiveTimeout(Poco::Timespan(5, 0));
    return s;
  }

  // Reads what the server sends on `s` until it closes or `ms` pass quietly.
  static std::string read_all(Poco::Net::StreamSocket& s, int ms = 5000) {
    s.setReceiveTimeout(Poco::Timespan(ms / 1000, (ms % 1000) * 1000));
    std::string out;
    char buf[8192];
    try {
      for (int n; (n = s.receiveBytes(buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    } catch (const Poco::Exception&) {
      // a timeout: the server left the connection open
    }
    return out;
  }

  // Sends `bytes` on a new connection; everything the server answers.
  std::string raw(const std::string& bytes, int ms = 5000) {
    auto s = connect();
    s.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
    return read_all(s, ms);
  }

  // The answers in `bytes`, in order (Content-Length framed).
  static std::vector<RawAnswer> answers(const std::string& bytes) {
    std::vector<RawAnswer> out;
    size_t at = 0;
    while (at < bytes.size()) {
      const size_t end = bytes.find("\r\n\r\n", at);
      if (end == std::string::npos) break;
      RawAnswer a;
      a.head = bytes.substr(at, end - at);
      if (a.head.rfind("HTTP/1.", 0) != 0) break;
      a.status = std::stoi(a.head.substr(9, 3));
      size_t length = 0;
      std::smatch m;
      if (std::regex_search(a.head, m, std::regex("\\r\\n[Cc]ontent-[Ll]ength: *([0-9]+)"))) length = std::stoul(m[1]);
      a.body = bytes.substr(end + 4, length);
      at = end + 4 + length;
      out.push_back(a);
    }
    return out;
  }

  static Poco::JSON::Object::Ptr json(const std::string& text) {
    Poco::JSON::Parser p;
    return p.parse(text).extract<Poco::JSON::Object::Ptr>();
  }

  Reply http(const std::string& method, const std::string& target, const std::string& token = "",
             const std::string& body = "") {
    return test::http_request(port_, method, target, token, body);
  }

  // Expects one problem+json answer with `status` whose detail holds `words`.
  void expect_one_problem(const std::string& bytes, int status, const std::string& words, const std::string& what) {
    auto got = answers(bytes);
    ASSERT_EQ(got.size(), 1u) << what << ":\n" << bytes;
    EXPECT_EQ(got[0].status, status) << what << ":\n" << bytes;
    EXPECT_NE(got[0].head.find("Content-Type: application/problem+json"), std::string::npos) << what << ":\n" << bytes;
    auto p = json(got[0].body);
    EXPECT_EQ(p->getValue<int>("status"), status) << what;
    EXPECT_NE(p->getValue<std::string>("detail").find(words), std::string::npos) << what << ": " << got[0].body;
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  std::string plugins_ = test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("hello")});
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_;
};

INSTANTIATE_TEST_SUITE_P(Backends, Hostile, ::testing::Values("sqlite"), test::store_backend_name);

// Hostile requests whose traces reach the store: on both.
class HostileStore : public Hostile {};

INSTANTIATE_TEST_SUITE_P(Backends, HostileStore, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(Hostile, FramingThatCouldDesyncAProxyGetsOneAnswerAndTheConnectionCloses) {
  // A GET with a chunked body was answered twice (200, then 400 for the
  // body read as a request).
  expect_one_problem(raw("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "1c\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n0\r\n\r\n"),
                     400, "carries no body", "GET with a chunked body");
  expect_one_problem(raw("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"), 400, "carries no body",
                     "GET with a body");
  // Content-Length: abc closed the connection with no answer.
  expect_one_problem(raw("POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"), 400,
                     "Content-Length header is not a whole number", "Content-Length: abc");
  expect_one_problem(raw("POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}"), 400,
                     "Content-Length header is not a whole number", "Content-Length: +2");
  expect_one_problem(raw("POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
                     400, "repeated", "two Content-Length headers");
  expect_one_problem(raw("POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: "
                         "chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
                     400, "ambiguous", "Transfer-Encoding with Content-Length");
  expect_one_problem(raw("POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), 501,
                     "chunked transfer coding", "an unknown transfer coding");
  // A chunked POST is read whole: one answer, and the connection serves on.
  auto s = connect();
  const std::string two = "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
                          "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\n{bad \r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  s.sendBytes(two.data(), static_cast<int>(two.size()));
  auto got = answers(read_all(s));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].status, 400);
  EXPECT_NE(got[0].body.find("not valid JSON"), std::string::npos) << got[0].body;
  EXPECT_EQ(got[1].status, 200);
}

TEST_P(Hostile, ABodyRefusedUnreadIsNeverReadAsTheNextRequest) {
  // A POST refused before its body was read (no token: 401) left the body
  // on a kept-alive connection, to be parsed as the next request.
  auto s = connect();
  const std::string smuggled = "GET /api/v1/audit HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string two =
      "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled +
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  s.sendBytes(two.data(), static_cast<int>(two.size()));
  auto got = answers(read_all(s));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].status, 401);
  EXPECT_EQ(got[1].status, 200);
  EXPECT_NE(got[1].body.find("ok"), std::string::npos) << got[1].body;
}

TEST_P(Hostile, EveryErrorTheServerWritesIsProblemJson) {
  // HTTP/9.9 was echoed back.
  auto bytes = raw("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n");
  expect_one_problem(bytes, 505, "only HTTP/1.1 and HTTP/1.0", "HTTP/9.9");
  EXPECT_EQ(bytes.find("9.9"), std::string::npos) << bytes;
  expect_one_problem(raw("GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"), 414, "too long",
                     "a 20,000-byte target");
  expect_one_problem(raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n"), 431,
                     "header field", "a 20,000-byte header");
  expect_one_problem(raw(std::string(100, 'A') + " / HTTP/1.1\r\n\r\n"), 400, "malformed", "a 100-byte method");
  // HEAD is GET without the body.
  auto head = answers(raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  ASSERT_EQ(head.size(), 1u);
  EXPECT_EQ(head[0].status, 200) << head[0].head;
  EXPECT_NE(head[0].head.find("Content-Length: "), std::string::npos) << head[0].head;
  EXPECT_TRUE(head[0].body.empty() || head[0].body.find("{") == std::string::npos);
  // '100 Continue' only for a body that will be accepted.
  bytes = raw("POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
              "\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(bytes.find("100 Continue"), std::string::npos) << bytes;
  expect_one_problem(bytes, 413, "at most", "an oversize body announced with Expect");
  auto s = connect();
  const std::string ask = "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
                          "\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
                          "Connection: close\r\n\r\n";
  s.sendBytes(ask.data(), static_cast<int>(ask.size()));
  std::string first = read_all(s, 2000);
  EXPECT_EQ(first.rfind("HTTP/1.1 100 Continue", 0), 0u) << first;
  s.sendBytes("{}", 2);
  auto rest = answers(read_all(s));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].status, 422) << rest[0].body;  // read, then judged: no job type
}

TEST_P(Hostile, MetricsLabelsCannotBeInjected) {
  // The method went unescaped into a label: one request made /metrics
  // unparseable for every scraper.
  raw("X\"} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  raw("G\\ET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  raw("GET /api/v1/jobs/%22%7D%0A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto r = http("GET", "/metrics", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(utf8(r.body));
  // Every sample line in the text exposition format.
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? [-+0-9.eEInfa]+$)");
  std::istringstream lines(r.body);
  int samples = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    ++samples;
  }
  EXPECT_GT(samples, 3);
  EXPECT_NE(r.body.find("method=\"other\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("X\\\""), std::string::npos) << "an unknown method is not a label value";
  // Prometheus's own parser, where installed (.ci/run installs it).
  if (access("/usr/bin/promtool", X_OK) == 0) {
    const auto file = dir_.path() / "metrics.txt";
    test::write_file(file, r.body);
    const std::string cmd = "/usr/bin/promtool check metrics < " + file.string() + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int st = pclose(p);
    EXPECT_EQ(out.find("error"), std::string::npos) << out;
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 1) << out;
  }
}

TEST_P(HostileStore, BytesThatAreNotUtf8NeverReachAnAnswerOrTheAuditTrail) {
  for (const char* target : {"/api/v1/jobs/%FF", "/api/v1/jobs/%C0%AF", "/api/v1/jobs?text=%ED%A0%80"}) {
    auto r = http("GET", target, admin_);
    EXPECT_EQ(r.status, 400) << target << " " << r.body;
    EXPECT_TRUE(utf8(r.body)) << target;
    EXPECT_NO_THROW(json(r.body)) << target;
  }
  // Refused non-GET requests are audited: the trail stays readable.
  auto r = http("POST", "/api/v1/jobs/%FF%FE/run", "", "{}");
  EXPECT_EQ(r.status, 400) << r.body;
  r = http("POST", "/api/v1/runs", admin_, "{\"job_type\": \"hello\", \"reason\": \"\xff\xfe\"}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("not valid UTF-8"), std::string::npos) << r.body;
  r = http("POST", "/api/v1/nowhere/%E2%82", admin_, "{}");
  r = http("GET", "/api/v1/audit?limit=100", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(utf8(r.body));
  EXPECT_NO_THROW(json(r.body));
}

TEST_P(Hostile, NumbersPastInt64AndControlCharactersAreNamed) {
  struct Case {
    std::string target, body, words;
  } cases[] = {
      {"/api/v1/runs", R"({"job_type": "hello", "reason": "x", "start_at_ms": 9223372036854775808})", "start_at_ms"},
      {"/api/v1/runs", R"({"job_type": "hello", "reason": "x", "range_start_ms": 18446744073709551615})",
       "range_start_ms"},

      {"/api/v1/jobs",
       R"({"id": "j", "job_type": "hello", "planning": "disabled", "jitter_minutes": 9223372036854775808})",
       "jitter_minutes"},
      {"/api/v1/runs", R"({"job_type": "hello", "reason": "\u0000"})", "reason: contains a control character"},
      {"/api/v1/runs", R"({"job_type": "hello", "reason": "fine\u0000hidden"})",
       "reason: contains a control character"},
      {"/api/v1/runs", R"({"job_type": "hello", "reason": "bell\u0007"})", "reason: contains a control character"},
  };
  for (const auto& c : cases) {
    auto r = http("POST", c.target, admin_, c.body);
    EXPECT_EQ(r.status, 422) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.words), std::string::npos) << c.body << " -> " << r.body;
  }
  // Past what the JSON reader holds: refused as JSON, the number named.
  auto big = http("POST", "/api/v1/runs", admin_,
                  R"({"job_type": "hello", "reason": "x", "range_end_ms": 99999999999999999999999})");
  EXPECT_EQ(big.status, 400) << big.body;
  EXPECT_NE(big.body.find("99999999999999999999999"), std::string::npos) << big.body;
  // Line breaks and tabs in a reason are meant.
  auto r = http("POST", "/api/v1/runs", admin_, R"({"job_type": "hello", "reason": "two\nlines\tand a tab"})");
  EXPECT_EQ(r.status, 202) << r.body;
}

TEST_P(HostileStore, RefusedRequestsCannotFloodTheAuditTrail) {
  // 300 anonymous POSTs with a 15,000-character path added 300 rows and
  // 12 MB before.
  const std::string path = "/api/v1/" + std::string(15000, 'p');
  for (int i = 0; i < 300; ++i) ASSERT_EQ(http("POST", path, "", "{}").status, 404) << i;
  auto rows = kernel_->store()->audit_rows(1000).value();
  size_t bytes = 0, refused = 0;
  for (const auto& r : rows) {
    bytes += r.target.size() + r.outcome.size();
    refused += r.action == "http POST";
  }
  EXPECT_LE(refused, 20u);
  EXPECT_LT(bytes, 20u * 1024) << "each row's fields are cut";
  // What was only counted is summed up when the kernel stops.
  kernel_.reset();
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open(base_config(), &st, {.check = false}));
  bool summed = false;
  for (const auto& r : st->audit_rows(1000).value())
    summed |= r.action == "http refused" &&
              r.outcome.find(std::to_string(300 - refused) + " more request(s)") != std::string::npos &&
              r.outcome.find("404 x") != std::string::npos;
  EXPECT_TRUE(summed);
}

TEST_P(HostileStore, ARevocationByAnotherProcessAppliesWithinItsBound) {
  // `users revoke` opens the store beside the running kernel; requests were
  // accepted for up to a second after it returned.
  auto* id = kernel_->identity();
  std::string token;
  ASSERT_TRUE(id->add_user({"rob", "", "PlatformAdministrator", "platform"}));
  ASSERT_TRUE(id->issue_token("rob", 0, "test", &token));
  for (int round = 0; round < 20; ++round) ASSERT_EQ(http("GET", "/api/v1/jobs", token).status, 200);
  std::unique_ptr<store::Store> other;
  ASSERT_TRUE(store::open(base_config(), &other, {.check = false}));
  int64_t revoked = 0;
  ASSERT_TRUE(other->disable_user("rob", 1, &revoked));
  EXPECT_EQ(revoked, 1);
  // The documented bound (identity::kTokenRecheckMs), not a speed target.
  std::this_thread::sleep_for(std::chrono::milliseconds(identity::kTokenRecheckMs + 20));
  auto r = http("GET", "/api/v1/jobs", token);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("the token was revoked"), std::string::npos) << r.body;
}

TEST_P(Hostile, SlowHeadsCannotStarveHealthChecks) {
  // With 8 threads, 20 clients that send their heads slowly held every
  // thread; health checks timed out for 45 s.
  start({{"threads", "8"}, {"head_timeout_s", "1"}});
  std::vector<Poco::Net::StreamSocket> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(connect());
    const std::string part = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    slow.back().sendBytes(part.data(), static_cast<int>(part.size()));
  }
  for (int i = 0; i < 3; ++i) {
    auto r = http("GET", "/healthz");
    EXPECT_EQ(r.status, 200) << r.body;
  }
  // The slow ones were closed with a 408 (deadline or eviction), not held.
  int timed_out = 0;
  for (auto& s : slow) {
    const std::string bytes = read_all(s, 4000);
    auto got = answers(bytes);
    if (!got.empty() && got[0].status == 408)
      ++timed_out;
    else
      ADD_FAILURE() << bytes;
  }
  EXPECT_EQ(timed_out, 20);
  EXPECT_EQ(http("GET", "/readyz").status, 200);
}

}  // namespace
}  // namespace opk
