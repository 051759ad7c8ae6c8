// The webhook channel against a real receiver on 127.0.0.1
// (tests/support/webhook-receiver/receiver.mjs), started by each test, that
// verifies every signature with the Standard Webhooks reference library
// (npm "standardwebhooks"): signatures, two secrets during a rotation, the
// same webhook-id on a retry, what each answer means (410, 429 with
// Retry-After, 400, 500, redirects), a timeout, a refused connection, HTTPS
// with a certificate made at test time, and bad URLs, secrets and settings.
#include <gtest/gtest.h>
#include <opskernel/json.hpp>
#include <opskernel/testing.hpp>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "support/servers.h"

namespace {

using nlohmann::json;

const std::string kReceiverDir = std::string(OPK_SOURCE_DIR) + "/tests/support/webhook-receiver";
// Secrets of 24, 32 and 24 bytes.
const std::string kSecret1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string kSecret2 = "whsec_ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";
const std::string kSecret3 = "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcY";
const std::string kEvent = R"({"kind":"run.failed","run":{"id":42,"job":"nightly-backup","outcome":"ERROR"}})";

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string secrets(std::initializer_list<std::string> list) {
  json j = json::object();
  j["secrets"] = json::array();
  for (const auto& s : list) j["secrets"].push_back(s);
  return j.dump();
}

class WebhookChannel : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = dir_.file("requests.jsonl");
    // The receiver checks webhook-timestamp against its own clock.
    host_.clock().set(wall_ms());
  }

  // Starts the receiver, verifying with `verify_with`, over HTTPS when
  // `https`.
  void serve(std::vector<std::string> verify_with = {}, bool https = false) {
    ASSERT_TRUE(std::filesystem::exists(kReceiverDir + "/node_modules/standardwebhooks"))
        << "the receiver's packages are missing: run 'npm ci' in " << kReceiverDir << " (dist/setup.sh test does)";
    std::vector<std::string> argv = {OPK_NODE, kReceiverDir + "/receiver.mjs", "--out", out_};
    for (const auto& s : verify_with) argv.insert(argv.end(), {"--secret", s});
    if (https) {
      const std::string why = opk::test::make_certificate(dir_.path(), "receiver");
      ASSERT_TRUE(why.empty()) << why;
      argv.insert(argv.end(), {"--cert", dir_.file("receiver.pem"), "--key", dir_.file("receiver.key")});
    }
    const std::string why = receiver_.start(argv, dir_.file("receiver.log"));
    ASSERT_TRUE(why.empty()) << why;
  }
  std::string url(const std::string& path, const std::string& scheme = "http", const std::string& host = "127.0.0.1") {
    return scheme + "://" + host + ":" + std::to_string(receiver_.port()) + path;
  }

  void load(opk::testing::Host& host) {
    const opk::Status s = host.load(OPK_CHANNEL_WEBHOOK);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  void load() { load(host_); }

  opk::testing::Notification to(const std::string& target, const std::string& options = "") {
    return {.recipients = {target},
            .subject = "Run 42 failed",
            .body = kEvent,
            .content_type = "application/json",
            .id = "dlv-42-1",
            .options_json = options};
  }

  // The requests the receiver got, oldest first.
  std::vector<json> received() {
    std::vector<json> out;
    std::istringstream in(opk::test::slurp(out_));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }

  opk::test::ScratchDir dir_;
  std::string out_;
  opk::test::ServerProcess receiver_;
  opk::testing::Host host_;
};

TEST_F(WebhookChannel, TheLibraryVerifiesTheSignature) {
  serve({kSecret1, kSecret3});
  load();
  auto r = host_.deliver("webhook", to(url("/hook"), secrets({kSecret1})));
  ASSERT_EQ(r.status, OPK_OK) << r.detail << receiver_.errors();
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.detail.rfind("HTTP 200 OK", 0), 0u) << r.detail;
  EXPECT_EQ(r.flags, 0u);
  auto got = received();
  ASSERT_EQ(got.size(), 1u) << receiver_.errors();
  const json& q = got[0];
  EXPECT_EQ(q["method"], "POST");
  EXPECT_EQ(q["path"], "/hook");
  EXPECT_EQ(q["body"], kEvent);
  EXPECT_EQ(q["headers"]["content-type"], "application/json");
  EXPECT_EQ(q["headers"]["user-agent"], "Opskernel-Webhooks/1.0");
  EXPECT_EQ(q["headers"]["webhook-id"], "dlv-42-1");
  EXPECT_EQ(q["headers"]["webhook-timestamp"], std::to_string(host_.clock().now_ms() / 1000));
  // Verified with the secret it was signed with, not with another one.
  EXPECT_EQ(q["verified"], json({true, false})) << q["errors"].dump();
  EXPECT_EQ(q["errors"][1], "No matching signature found");
}

TEST_F(WebhookChannel, TwoSecretsDuringARotationBothVerify) {
  serve({kSecret1, kSecret2, kSecret3});
  load();
  auto r = host_.deliver("webhook", to(url("/hook"), secrets({kSecret1, kSecret2})));
  ASSERT_EQ(r.status, OPK_OK) << r.detail;
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["verified"], json({true, true, false})) << got[0]["errors"].dump();
  const std::string signature = got[0]["headers"]["webhook-signature"];
  ASSERT_NE(signature.find(' '), std::string::npos) << signature;
  EXPECT_EQ(signature.rfind("v1,", 0), 0u) << signature;
  EXPECT_EQ(signature.substr(signature.find(' ') + 1).rfind("v1,", 0), 0u) << signature;
}

TEST_F(WebhookChannel, ATimestampFarFromTheReceiversClockIsRefusedByTheLibrary) {
  serve({kSecret1});
  load();
  host_.clock().set(wall_ms() - 10 * 60 * 1000);
  ASSERT_EQ(host_.deliver("webhook", to(url("/hook"), secrets({kSecret1}))).status, OPK_OK);
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["verified"], json({false}));
  EXPECT_EQ(got[0]["errors"][0], "Message timestamp too old");
}

TEST_F(WebhookChannel, ARetryKeepsTheWebhookId) {
  serve({kSecret1});
  load();
  auto n = to(url("/flaky/1"), secrets({kSecret1}));
  auto first = host_.deliver("webhook", n);
  EXPECT_EQ(first.status, OPK_ERR_UNAVAILABLE);
  EXPECT_EQ(first.code, 500);
  EXPECT_FALSE(first.permanent());
  EXPECT_EQ(first.detail, "HTTP 500 Internal Server Error: failing attempt 1");
  host_.clock().advance(5000);
  n.attempt = 2;
  auto second = host_.deliver("webhook", n);
  ASSERT_EQ(second.status, OPK_OK) << second.detail;
  auto got = received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["headers"]["webhook-id"], "dlv-42-1");
  EXPECT_EQ(got[1]["headers"]["webhook-id"], "dlv-42-1");
  EXPECT_NE(got[0]["headers"]["webhook-timestamp"], got[1]["headers"]["webhook-timestamp"]);
  EXPECT_EQ(got[0]["verified"], json({true}));
  EXPECT_EQ(got[1]["verified"], json({true}));
}

TEST_F(WebhookChannel, WithoutAnIdTheChannelMakesOneUp) {
  serve({kSecret1});
  load();
  auto n = to(url("/hook"), secrets({kSecret1}));
  n.id.clear();
  ASSERT_EQ(host_.deliver("webhook", n).status, OPK_OK);
  ASSERT_EQ(host_.deliver("webhook", n).status, OPK_OK);
  auto got = received();
  ASSERT_EQ(got.size(), 2u);
  const std::string id = got[0]["headers"]["webhook-id"];
  EXPECT_EQ(id.rfind("msg_", 0), 0u) << id;
  EXPECT_NE(got[1]["headers"]["webhook-id"], id);
  EXPECT_EQ(got[0]["verified"], json({true}));
}

TEST_F(WebhookChannel, WhatEachAnswerMeans) {
  serve();
  load();
  struct Case {
    std::string path;
    opk_status status;
    int code;
    uint32_t flags;
    int64_t retry_after_ms;
    std::string detail;
  } cases[] = {
      {"/status/204", OPK_OK, 204, 0, 0, "HTTP 204 No Content"},
      {"/status/410", OPK_ERR_INVALID_ARGUMENT, 410, OPK_DELIVERY_PERMANENT | OPK_DELIVERY_GONE, 0,
       "HTTP 410 Gone: status 410 on purpose"},
      {"/status/429?retry_after=7", OPK_ERR_UNAVAILABLE, 429, 0, 7000,
       "HTTP 429 Too Many Requests: status 429 on purpose"},
      {"/status/503?retry_after=120", OPK_ERR_UNAVAILABLE, 503, 0, 120000,
       "HTTP 503 Service Unavailable: status 503 on purpose"},
      {"/status/400", OPK_ERR_INVALID_ARGUMENT, 400, OPK_DELIVERY_PERMANENT, 0,
       "HTTP 400 Bad Request: status 400 on purpose"},
      {"/status/404", OPK_ERR_INVALID_ARGUMENT, 404, OPK_DELIVERY_PERMANENT, 0,
       "HTTP 404 Not Found: status 404 on purpose"},
      {"/status/401", OPK_ERR_PERMISSION, 401, OPK_DELIVERY_PERMANENT, 0,
       "HTTP 401 Unauthorized: status 401 on purpose"},
      {"/status/408", OPK_ERR_UNAVAILABLE, 408, 0, 0, "HTTP 408 Request Timeout: status 408 on purpose"},
      {"/status/500", OPK_ERR_UNAVAILABLE, 500, 0, 0, "HTTP 500 Internal Server Error: status 500 on purpose"},
      {"/redirect", OPK_ERR_UNAVAILABLE, 301, 0, 0,
       "HTTP 301 Moved Permanently: redirects are not followed (Location: /ok)"},
  };
  for (const auto& c : cases) {
    auto r = host_.deliver("webhook", to(url(c.path)));
    EXPECT_EQ(r.status, c.status) << c.path << ": " << r.detail;
    EXPECT_EQ(r.code, c.code) << c.path;
    EXPECT_EQ(r.flags, c.flags) << c.path;
    EXPECT_EQ(r.retry_after_ms, c.retry_after_ms) << c.path;
    EXPECT_EQ(r.detail, c.detail) << c.path;
  }
  // A redirect is not followed: the receiver saw one request per case.
  EXPECT_EQ(received().size(), std::size(cases));
}

TEST_F(WebhookChannel, RetryAfterAsAnHttpDateCountsFromTheKernelsClock) {
  serve();
  load();
  const std::time_t later = static_cast<std::time_t>(host_.clock().now_ms() / 1000 + 90);
  std::tm tm{};
  gmtime_r(&later, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a,%%20%d%%20%b%%20%Y%%20%H:%M:%S%%20GMT", &tm);
  auto r = host_.deliver("webhook", to(url(std::string("/status/429?retry_after=") + date)));
  EXPECT_EQ(r.status, OPK_ERR_UNAVAILABLE) << r.detail;
  // Whole seconds: the clock's milliseconds are cut from the date.
  EXPECT_GT(r.retry_after_ms, 89000) << date;
  EXPECT_LE(r.retry_after_ms, 90000) << date;
}

TEST_F(WebhookChannel, AReceiverThatDoesNotAnswerTimesOut) {
  serve();
  load();
  auto n = to(url("/sleep/5000"));
  n.timeout_ms = 1000;
  const auto start = std::chrono::steady_clock::now();
  auto r = host_.deliver("webhook", n);
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, OPK_ERR_TIMEOUT) << r.detail;
  EXPECT_FALSE(r.permanent());
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.detail, "POST http://127.0.0.1:" + std::to_string(receiver_.port()) + ": no answer within 1000 ms");
  EXPECT_GE(took, 900);
  EXPECT_LT(took, 2000);
}

TEST_F(WebhookChannel, ARefusedConnectionIsTransient) {
  load();
  const int port = opk::test::closed_port();
  auto r = host_.deliver("webhook", to("http://127.0.0.1:" + std::to_string(port) + "/hook"));
  EXPECT_EQ(r.status, OPK_ERR_UNAVAILABLE);
  EXPECT_FALSE(r.permanent());
  EXPECT_EQ(r.detail, "connect 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST_F(WebhookChannel, HttpsWithTheTestCa) {
  serve({kSecret1}, true);
  host_.set_setting("ca_file", dir_.file("receiver.pem"));
  load();
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto r = host_.deliver("webhook", to(url("/hook", "https", host), secrets({kSecret1})));
    EXPECT_EQ(r.status, OPK_OK) << host << ": " << r.detail << receiver_.errors();
  }
  auto got = received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["verified"], json({true}));

  // Without the test's CA the certificate is not trusted: a TLS failure,
  // and nothing reaches the receiver.
  opk::testing::Host other;
  other.clock().set(wall_ms());
  load(other);
  auto r = other.deliver("webhook", to(url("/hook", "https"), secrets({kSecret1})));
  EXPECT_EQ(r.status, OPK_ERR_UNAVAILABLE);
  EXPECT_NE(r.detail.find("TLS"), std::string::npos) << r.detail;
  EXPECT_FALSE(r.permanent());
  EXPECT_EQ(received().size(), 2u);
}

TEST_F(WebhookChannel, BadUrlsAndSecretsAreRefusedNamingWhatIsWrong) {
  serve();
  load();
  EXPECT_EQ(host_.check_recipient("webhook", "https://hooks.example.com/x?a=1").status, OPK_OK);
  EXPECT_EQ(host_.check_recipient("webhook", "http://127.0.0.1:9/x", secrets({kSecret1, kSecret2})).status, OPK_OK);
  struct Case {
    std::string url, options, says;
  } cases[] = {
      {"", "", "recipient '' is empty"},
      {"hooks.example.com/x", "", "recipient 'hooks.example.com/x' has no scheme (http:// or https://)"},
      {"ftp://hooks.example.com/x", "", "has the scheme 'ftp' (http or https only)"},
      {"https:///x", "", "has no host"},
      {"https://user:pw@hooks.example.com/x", "", "holds a user name or password"},
      {"https://hooks.example.com/x#part", "", "has a fragment"},
      {"https://hooks.example.com/a b", "", "contains white space"},
      {"https://hooks.example.com:99999/x", "", "is not a URL"},
      {"https://h.example.com/", "{", "options: not JSON"},
      {"https://h.example.com/", "[]", "options: not a JSON object"},
      {"https://h.example.com/", R"({"secret": "x"})", "options: unknown field 'secret'"},
      {"https://h.example.com/", R"({"secrets": "whsec_x"})", "options: secrets: not an array of strings"},
      {"https://h.example.com/", R"({"secrets": [1]})", "options: secrets[0]: not a string"},
      {"https://h.example.com/", secrets({"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
       "options: secrets[0]: does not start with whsec_"},
      {"https://h.example.com/", secrets({kSecret1, "whsec_MfKQ9r8G!YqrTwjUPD8ILPZIo2LaLaSw"}),
       "options: secrets[1]: not base64 after whsec_ (character 15)"},
      {"https://h.example.com/", secrets({"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"}),
       "options: secrets[0]: not base64 after whsec_ (its length is not a multiple of 4)"},
      {"https://h.example.com/", secrets({"whsec_AAECAwQFBgc="}),
       "options: secrets[0]: 8 bytes after whsec_; a secret has 24 to 64"},
      {"https://h.example.com/", secrets({"whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
       "options: secrets[0]: an asymmetric (ed25519) key"},
  };
  for (const auto& c : cases) {
    auto r = host_.check_recipient("webhook", c.url, c.options);
    EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT) << c.url << " " << c.options;
    EXPECT_NE(r.detail.find(c.says), std::string::npos) << c.url << " " << c.options << ": " << r.detail;
    // A secret is never repeated in a detail.
    EXPECT_EQ(r.detail.find("MfKQ9r8G"), std::string::npos) << r.detail;
  }

  // At delivery too, before any connection.
  auto r = host_.deliver("webhook", to(url("/hook"), secrets({"whsec_AAECAwQFBgc="})));
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(r.permanent());
  EXPECT_NE(r.detail.find("options: secrets[0]: 8 bytes"), std::string::npos) << r.detail;
  r = host_.deliver("webhook", to("mailto:ops@example.com"));
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.detail, "recipient 'mailto:ops@example.com' has the scheme 'mailto' (http or https only)");
  EXPECT_TRUE(received().empty());
}

TEST_F(WebhookChannel, SettingsAreCheckedAndHttpCanBeRefused) {
  struct Case {
    std::string key, value, says;
  } cases[] = {
      {"timeout", "0s", "[plugin.channel-webhook] timeout = \"0s\""},
      {"verify", "maybe", "[plugin.channel-webhook] verify = \"maybe\": expected true or false"},
      {"ca_file", "/nonexistent/ca.pem", "[plugin.channel-webhook] ca_file = \"/nonexistent/ca.pem\": no such file"},
      {"user_agent", "", "[plugin.channel-webhook] user_agent = \"\""},
  };
  for (const auto& c : cases) {
    opk::testing::Host host;
    host.set_setting(c.key, c.value);
    const opk::Status s = host.load(OPK_CHANNEL_WEBHOOK);
    EXPECT_FALSE(s.is_ok()) << c.key;
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
  }
  host_.set_setting("allow_http", "false");
  load();
  auto r = host_.check_recipient("webhook", "http://hooks.example.com/x");
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.detail,
            "recipient 'http://hooks.example.com/x' is http:// and [plugin.channel-webhook] allow_http = false: use "
            "https://");
  EXPECT_EQ(host_.check_recipient("webhook", "https://hooks.example.com/x").status, OPK_OK);
}

}  // namespace
