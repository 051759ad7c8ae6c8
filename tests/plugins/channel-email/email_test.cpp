// The e-mail channel against a real SMTP server on 127.0.0.1 (Debian's
// aiosmtpd, tests/support/smtp-server/smtp_server.py), started by each test:
// plain, STARTTLS and implicit TLS with a certificate made at test time,
// AUTH PLAIN and LOGIN, the message as Python's e-mail parser reads it,
// permanent and transient refusals, a refused connection, a server that
// never answers, and bad addresses and settings.
#include <gtest/gtest.h>
#include <opskernel/json.hpp>
#include <opskernel/testing.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "support/servers.h"

namespace {

using nlohmann::json;
using opk::test::ServerProcess;

const std::string kServer = std::string(OPK_SOURCE_DIR) + "/tests/support/smtp-server/smtp_server.py";

class EmailChannel : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = dir_.file("messages.jsonl");
    host_.set_setting("host", "127.0.0.1");
    host_.set_setting("from", "alerts@example.com");
    host_.set_setting("from_name", "Opskernel alerts");
  }

  // Starts the SMTP server with `args` and points the plugin at it.
  void serve(std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {OPK_PYTHON3, kServer, "--out", out_};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string why = server_.start(argv, dir_.file("smtp.log"));
    ASSERT_TRUE(why.empty()) << why
                             << "\n(the SMTP server needs Debian's python3-aiosmtpd; dist/setup.sh test "
                                "installs it)";
    host_.set_setting("port", std::to_string(server_.port()));
  }
  void certificate(const std::string& name = "server") {
    const std::string why = opk::test::make_certificate(dir_.path(), name);
    ASSERT_TRUE(why.empty()) << why;
  }
  std::string cert(const std::string& name = "server") { return dir_.file(name + ".pem"); }
  std::string key(const std::string& name = "server") { return dir_.file(name + ".key"); }

  void load() {
    const opk::Status s = host_.load(OPK_CHANNEL_EMAIL);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }

  // The messages the server accepted, oldest first.
  std::vector<json> received() {
    std::vector<json> out;
    std::istringstream in(opk::test::slurp(out_));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }

  static std::string crlf_to_lf(std::string s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i)
      if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
    return out;
  }

  opk::test::ScratchDir dir_;
  std::string out_;
  ServerProcess server_;
  opk::testing::Host host_;
};

TEST_F(EmailChannel, DeliversAPlainTextAndAnHtmlPartWithItsHeaders) {
  serve();
  load();
  const std::string text =
      "Run 42 of nightly-backup failed.\n"
      ".a line starting with a dot\n"
      "1 + 1 = 2, and a line longer than seventy-six characters that quoted-printable has to break somewhere\n"
      "Ärende: räksmörgås\n";
  const std::string html = "<p>Run <b>42</b> failed: r&auml;ksm&ouml;rg&aring;s</p>";
  auto r = host_.deliver("email", {.recipients = {"ops@example.com", "oncall@example.org"},
                                   .subject = "Run 42 failed ✗ (nightly-backup)",
                                   .body = text,
                                   .id = "dlv-42.1",
                                   .html_body = html});
  ASSERT_EQ(r.status, OPK_OK) << r.detail;
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.detail, "250 2.0.0 Ok: queued as 1");
  EXPECT_EQ(r.flags, 0u);
  EXPECT_GE(r.latency_ms, 0);

  auto got = received();
  ASSERT_EQ(got.size(), 1u) << server_.errors();
  const json& m = got[0];
  EXPECT_EQ(m["mail_from"], "alerts@example.com");
  EXPECT_EQ(m["rcpt_tos"], json({"ops@example.com", "oncall@example.org"}));
  EXPECT_FALSE(m["tls"].get<bool>());
  EXPECT_TRUE(m["login"].is_null());
  const json& h = m["headers"];
  EXPECT_EQ(h["From"], "Opskernel alerts <alerts@example.com>");
  EXPECT_EQ(h["To"], "ops@example.com, oncall@example.org");
  EXPECT_EQ(h["Subject"], "Run 42 failed ✗ (nightly-backup)");
  EXPECT_EQ(h["Message-ID"], "<dlv-42.1@example.com>");
  // The test host's clock: 2026-01-01T00:00:00Z.
  EXPECT_EQ(h["Date"], "Thu, 01 Jan 2026 00:00:00 +0000");
  EXPECT_EQ(h["MIME-Version"], "1.0");
  EXPECT_EQ(m["content_type"], "multipart/alternative");
  ASSERT_EQ(m["parts"].size(), 2u) << m.dump(2);
  EXPECT_EQ(m["parts"][0]["content_type"], "text/plain");
  EXPECT_EQ(m["parts"][0]["charset"], "utf-8");
  EXPECT_EQ(crlf_to_lf(m["parts"][0]["text"]), text);
  EXPECT_EQ(m["parts"][1]["content_type"], "text/html");
  EXPECT_EQ(crlf_to_lf(m["parts"][1]["text"]), html);
  EXPECT_TRUE(m["defects"].empty()) << m["defects"].dump();
  // No line of the message is longer than the 78 characters RFC 5322 asks.
  std::istringstream raw(m["raw"].get<std::string>());
  for (std::string line; std::getline(raw, line);) EXPECT_LE(line.size(), 79u) << line;
}

TEST_F(EmailChannel, KeepsTheMessageIdOnARetryAndEncodesOddIds) {
  serve();
  load();
  opk::testing::Notification n{.recipients = {"ops@example.com"}, .subject = "s", .body = "b", .id = "run:7/a b"};
  ASSERT_EQ(host_.deliver("email", n).status, OPK_OK);
  n.attempt = 2;
  ASSERT_EQ(host_.deliver("email", n).status, OPK_OK);
  n.id.clear();
  ASSERT_EQ(host_.deliver("email", n).status, OPK_OK);
  auto got = received();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["headers"]["Message-ID"], "<run=3A7/a=20b@example.com>");
  EXPECT_EQ(got[1]["headers"]["Message-ID"], got[0]["headers"]["Message-ID"]);
  // Without an id the channel makes one up.
  EXPECT_NE(got[2]["headers"]["Message-ID"], got[0]["headers"]["Message-ID"]);
  EXPECT_EQ(got[2]["headers"]["Message-ID"].get<std::string>().rfind("<opk-", 0), 0u);
  EXPECT_EQ(got[2]["content_type"], "text/plain");
}

TEST_F(EmailChannel, SendsHtmlAloneWhenTheBodyIsHtml) {
  serve();
  load();
  auto r = host_.deliver(
      "email",
      {.recipients = {"ops@example.com"}, .subject = "html", .body = "<h1>Report</h1>", .content_type = "text/html"});
  ASSERT_EQ(r.status, OPK_OK) << r.detail;
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["content_type"], "text/html");
  ASSERT_EQ(got[0]["parts"].size(), 1u);
  EXPECT_EQ(crlf_to_lf(got[0]["parts"][0]["text"]), "<h1>Report</h1>\n");
}

TEST_F(EmailChannel, StartTlsWithTheTestCaThenAuthPlain) {
  certificate();
  serve({"--tls", "starttls", "--cert", cert(), "--key", key(), "--auth", "mailer:s3cret"});
  host_.set_setting("tls", "starttls");
  host_.set_setting("ca_file", cert());
  host_.set_setting("auth", "plain");
  host_.set_setting("username", "mailer");
  host_.set_setting("password", "s3cret");
  load();
  auto r = host_.deliver("email", {.recipients = {"ops@example.com"}, .subject = "over TLS", .body = "b"});
  ASSERT_EQ(r.status, OPK_OK) << r.detail << "\n" << server_.errors();
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0]["tls"].get<bool>());
  EXPECT_EQ(got[0]["login"], "mailer");
}

TEST_F(EmailChannel, ImplicitTlsThenAuthLoginFromAPasswordFile) {
  certificate();
  serve({"--tls", "implicit", "--cert", cert(), "--key", key(), "--auth", "mailer:s3cret"});
  opk::test::ServerProcess unused;
  std::ofstream(dir_.file("password")) << "s3cret\n";
  host_.set_setting("tls", "implicit");
  host_.set_setting("ca_file", cert());
  host_.set_setting("auth", "login");
  host_.set_setting("username", "mailer");
  host_.set_setting("password_file", dir_.file("password"));
  load();
  auto r = host_.deliver("email", {.recipients = {"ops@example.com"}, .subject = "implicit", .body = "b"});
  ASSERT_EQ(r.status, OPK_OK) << r.detail << "\n" << server_.errors();
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0]["tls"].get<bool>());
  EXPECT_EQ(got[0]["login"], "mailer");
}

TEST_F(EmailChannel, AWrongPasswordIsAPermanentPermissionFailure) {
  certificate();
  serve({"--tls", "implicit", "--cert", cert(), "--key", key(), "--auth", "mailer:s3cret"});
  host_.set_setting("tls", "implicit");
  host_.set_setting("ca_file", cert());
  host_.set_setting("username", "mailer");
  host_.set_setting("password", "wrong");
  load();
  auto r = host_.deliver("email", {.recipients = {"ops@example.com"}, .subject = "s", .body = "b"});
  EXPECT_EQ(r.status, OPK_ERR_PERMISSION) << r.detail;
  EXPECT_EQ(r.code, 535);
  EXPECT_TRUE(r.permanent());
  EXPECT_NE(r.detail.find("AUTH PLAIN as mailer"), std::string::npos) << r.detail;
  EXPECT_EQ(r.detail.find("wrong"), std::string::npos) << "the password is never in the detail: " << r.detail;
  EXPECT_TRUE(received().empty());
}

TEST_F(EmailChannel, ACertificateFromAnotherCaFailsTheHandshake) {
  certificate("server");
  certificate("other");
  serve({"--tls", "starttls", "--cert", cert("server"), "--key", key("server")});
  host_.set_setting("tls", "starttls");
  host_.set_setting("ca_file", cert("other"));
  load();
  auto r = host_.deliver("email", {.recipients = {"ops@example.com"}, .subject = "s", .body = "b"});
  EXPECT_EQ(r.status, OPK_ERR_UNAVAILABLE) << r.detail;
  EXPECT_NE(r.detail.find("TLS handshake with 127.0.0.1:" + std::to_string(server_.port())), std::string::npos)
      << r.detail;
  EXPECT_NE(r.detail.find("TLS"), std::string::npos) << r.detail;
  EXPECT_FALSE(r.permanent());
  EXPECT_TRUE(received().empty());
}

TEST_F(EmailChannel, A5xxReplyIsPermanentAnd4xxTransient) {
  serve();
  load();
  auto r = host_.deliver("email", {.recipients = {"ok@example.com", "reject-permanent@example.com"}, .body = "b"});
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.code, 550);
  EXPECT_TRUE(r.permanent());
  EXPECT_NE(r.detail.find("RCPT TO:<reject-permanent@example.com>: 550 5.1.1"), std::string::npos) << r.detail;

  r = host_.deliver("email", {.recipients = {"reject-transient@example.com"}, .body = "b"});
  EXPECT_EQ(r.status, OPK_ERR_UNAVAILABLE);
  EXPECT_EQ(r.code, 451);
  EXPECT_FALSE(r.permanent());
  EXPECT_NE(r.detail.find("RCPT TO:<reject-transient@example.com>: 451 4.3.0"), std::string::npos) << r.detail;
  EXPECT_TRUE(received().empty());
}

TEST_F(EmailChannel, ARefusedConnectionIsTransient) {
  const int port = opk::test::closed_port();
  host_.set_setting("port", std::to_string(port));
  load();
  auto r = host_.deliver("email", {.recipients = {"ops@example.com"}, .body = "b"});
  EXPECT_EQ(r.status, OPK_ERR_UNAVAILABLE);
  EXPECT_EQ(r.code, 0);
  EXPECT_FALSE(r.permanent());
  EXPECT_EQ(r.detail, "connect 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST_F(EmailChannel, AServerThatNeverAnswersTimesOutWithinTheMessagesTimeout) {
  serve({"--silent"});
  load();
  const auto start = std::chrono::steady_clock::now();
  auto r = host_.deliver("email", {.recipients = {"ops@example.com"}, .body = "b", .timeout_ms = 1500});
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, OPK_ERR_TIMEOUT) << r.detail;
  EXPECT_FALSE(r.permanent());
  EXPECT_EQ(r.detail, "greeting of 127.0.0.1:" + std::to_string(server_.port()) + ": no answer within 1500 ms");
  EXPECT_GE(took, 1400);
  EXPECT_LT(took, 2500) << "the timeout bounds the whole delivery";
  EXPECT_GE(r.latency_ms, 1400);
}

TEST_F(EmailChannel, BadAddressesAreRefusedNamingWhatIsWrong) {
  serve();
  load();
  EXPECT_EQ(host_.check_recipient("email", "ops@example.com").status, OPK_OK);
  EXPECT_EQ(host_.check_recipient("email", "root@localhost").status, OPK_OK);
  struct Case {
    std::string address, says;
  } cases[] = {
      {"", "the address is empty"},
      {"ops.example.com", "'ops.example.com' has no '@'"},
      {"ops@", "'ops@' has no domain after '@'"},
      {"@example.com", "'@example.com' has nothing before '@'"},
      {"Ops <ops@example.com>", "contains white space"},
      {"ops@exa mple.com", "contains white space"},
      {"ops@example..com", "has an empty label in its domain"},
      {"ops@-example.com", "starting or ending with '-'"},
      {"o..ps@example.com", "misplaced '.'"},
      {"ops@exam_ple.com", "the character '_' in its domain"},
      {"öps@example.com", "non-ASCII"},
      {"ops@example.com\r\nBcc: x@y.z", "contains"},
  };
  for (const auto& c : cases) {
    auto r = host_.check_recipient("email", c.address);
    EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT) << c.address;
    EXPECT_NE(r.detail.find(c.says), std::string::npos) << c.address << ": " << r.detail;
    EXPECT_EQ(r.detail.rfind("recipient ", 0), 0u) << r.detail;
  }
  auto opt = host_.check_recipient("email", "ops@example.com", R"({"secrets": []})");
  EXPECT_EQ(opt.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(opt.detail, "options: the e-mail channel takes none (got 'secrets')");
  EXPECT_EQ(host_.check_recipient("email", "ops@example.com", "[1]").detail, "options: not a JSON object");

  // At delivery too, before any connection: nothing reaches the server.
  auto r = host_.deliver("email", {.recipients = {"ops@example.com", "bad address@example.com"}, .body = "b"});
  EXPECT_EQ(r.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(r.permanent());
  EXPECT_NE(r.detail.find("'bad address@example.com' contains white space"), std::string::npos) << r.detail;
  r = host_.deliver("email", {.body = "b"});
  EXPECT_EQ(r.detail, "the notification has no recipient");
  EXPECT_TRUE(received().empty());
}

TEST_F(EmailChannel, BadSettingsRefuseThePluginNamingTheKey) {
  struct Case {
    std::vector<std::pair<std::string, std::string>> settings;
    std::string says;
  } cases[] = {
      {{{"tls", "ssl"}}, "[plugin.channel-email] tls = \"ssl\": expected one of none, starttls, implicit"},
      {{{"port", "0"}}, "[plugin.channel-email] port = \"0\""},
      {{{"from", "alerts"}}, "[plugin.channel-email] from = \"alerts\": expected 'alerts' has no '@'"},
      {{{"username", "u"}, {"password", "p"}}, "[plugin.channel-email] auth = \"plain\": expected tls = starttls"},
      {{{"auth", "login"}}, "[plugin.channel-email] username = \"\": expected a user name when auth = login"},
      {{{"tls", "starttls"}, {"ca_file", "/nonexistent/ca.pem"}},
       "[plugin.channel-email] ca_file = \"/nonexistent/ca.pem\": no such file"},
      {{{"password", "p"}, {"password_file", "/etc/hostname"}}, "either password or password_file"},
      {{{"timeout", "500ms"}}, "[plugin.channel-email] timeout = \"500ms\""},
      {{{"helo", "my host"}}, "[plugin.channel-email] helo = \"my host\""},
  };
  for (const auto& c : cases) {
    opk::testing::Host host;
    for (const auto& [k, v] : c.settings) host.set_setting(k, v);
    const opk::Status s = host.load(OPK_CHANNEL_EMAIL);
    EXPECT_FALSE(s.is_ok()) << c.says;
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
  }
}

TEST_F(EmailChannel, PlainAuthNeedsInsecureAuthWithoutTls) {
  serve({"--auth", "mailer:s3cret"});
  host_.set_setting("username", "mailer");
  host_.set_setting("password", "s3cret");
  host_.set_setting("insecure_auth", "true");
  load();
  auto r = host_.deliver("email", {.recipients = {"ops@example.com"}, .body = "b"});
  ASSERT_EQ(r.status, OPK_OK) << r.detail;
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0]["tls"].get<bool>());
  EXPECT_EQ(got[0]["login"], "mailer");
}

}  // namespace
