// channel-email -- the notification channel `email`: each notification as
// one e-mail over SMTP (Poco Net), plain or with STARTTLS or implicit TLS,
// AUTH PLAIN or LOGIN, a text/plain part and, when the notification has
// one, a text/html alternative; Message-ID from the delivery's id, so a
// retried delivery keeps its Message-ID. Addresses are checked when a rule
// is saved (check_recipient) and again at delivery. docs/channels.md
// describes it; the settings are [plugin.channel-email] (below, and
// config/opskernel.conf).
//
// Thread-safety: deliveries run concurrently on the kernel's worker threads,
// each on its own connection; the settings and TLS context are read-only
// after init.
#include <Poco/Net/SSLManager.h>
#include <opskernel/opk.hpp>

#include <chrono>
#include <cstddef>
#include <fstream>
#include <random>
#include <sstream>

#include "address.h"
#include "mime.h"
#include "smtp.h"

namespace channel_email {
namespace {

// Everything the channel needs, read once at init.
struct Config {
  SmtpSettings smtp;
  std::string from = "opskernel@localhost";
  std::string from_name = "Opskernel";
  int64_t timeout_ms = 30'000;
};

bool host_name_ok(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
          c == '[' || c == ']' || c == ':'))
      return false;
  return true;
}

opk::Status load(const opk::Host& host, Config* c) {
  opk::Settings in = host.settings();
  SmtpSettings& s = c->smtp;
  s.host = in.text("host", "localhost", true);
  const std::string tls = in.choice("tls", "none", {"none", "starttls", "implicit"});
  s.tls = tls == "starttls" ? Tls::starttls : tls == "implicit" ? Tls::implicit : Tls::none;
  s.port = static_cast<uint16_t>(in.integer("port",
                                            s.tls == Tls::implicit   ? 465
                                            : s.tls == Tls::starttls ? 587
                                                                     : 25,
                                            1, 65535));
  s.username = in.text("username", "");
  const std::string auth = in.choice("auth", s.username.empty() ? "none" : "plain", {"none", "plain", "login"});
  s.auth = auth == "plain" ? Auth::plain : auth == "login" ? Auth::login : Auth::none;
  s.password = in.text("password", "");
  const std::string password_file = in.text("password_file", "");
  s.helo = in.text("helo", "localhost", true);
  s.ca_file = in.text("ca_file", "");
  s.verify = in.boolean("verify", true);
  const bool insecure_auth = in.boolean("insecure_auth", false);
  c->from = in.text("from", c->from, true);
  c->from_name = in.text("from_name", c->from_name);
  c->timeout_ms = in.duration_ms("timeout", c->timeout_ms, 1'000, 600'000);
  if (!in.ok()) return in.status();

  if (!host_name_ok(s.host)) in.invalid("host", s.host, "a host name or address");
  if (!host_name_ok(s.helo)) in.invalid("helo", s.helo, "a host name (the name this machine gives in EHLO)");
  if (const std::string why = address_problem(c->from); !why.empty()) in.invalid("from", c->from, why);
  if (!s.password.empty() && !password_file.empty())
    in.invalid("password_file", password_file, "either password or password_file, not both");
  if (!password_file.empty()) {
    std::ifstream f(password_file);
    std::stringstream text;
    if (f) text << f.rdbuf();
    if (!f) {
      in.invalid("password_file", password_file, "a readable file holding the password");
    } else {
      s.password = text.str();
      while (!s.password.empty() && (s.password.back() == '\n' || s.password.back() == '\r')) s.password.pop_back();
    }
  }
  if (s.auth != Auth::none && s.username.empty()) in.invalid("username", "", "a user name when auth = " + auth);
  if (s.auth != Auth::none && s.tls == Tls::none && !insecure_auth)
    in.invalid("auth", auth,
               "tls = starttls or implicit first (the password would cross the network in clear), or "
               "insecure_auth = true");
  return in.status();
}

// A random string of `n` hex digits.
std::string random_hex(size_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string out;
  while (out.size() < n) {
    uint64_t v = rng();
    for (int i = 0; i < 16 && out.size() < n; ++i, v >>= 4) out += hex[v & 15];
  }
  return out;
}

// True when the kernel's opk_notification has `member` (a 1.4 field).
template <typename T>
bool has(const opk_notification& n, T opk_notification::*member) {
  const opk_notification probe{};
  const auto offset =
      static_cast<size_t>(reinterpret_cast<const char*>(&(probe.*member)) - reinterpret_cast<const char*>(&probe));
  return n.struct_size >= offset + sizeof(T);
}

const char* text_or_empty(const char* s) {
  return s ? s : "";
}

class EmailPlugin : public opk::Plugin {
 public:
  explicit EmailPlugin(opk::Host host) : Plugin(host) { Poco::Net::initializeSSL(); }
  ~EmailPlugin() override { Poco::Net::uninitializeSSL(); }

  opk::Status init() override {
    if (opk::Status s = load(host(), &config_); !s) return s;
    return SmtpClient::create(config_.smtp, &client_);
  }

  const Config& config() const { return config_; }
  const SmtpClient& client() const { return client_; }

 private:
  Config config_;
  SmtpClient client_;
};

class EmailChannel : public opk::NotificationChannel {
 public:
  explicit EmailChannel(opk::Plugin& plugin) : plugin_(static_cast<EmailPlugin&>(plugin)) {}

  opk::Status send(const opk_notification& message) override {
    opk_delivery_result result{};
    result.struct_size = sizeof result;
    return deliver(message, result);
  }

  opk::Status deliver(const opk_notification& n, opk_delivery_result& result) override {
    const auto start = std::chrono::steady_clock::now();
    const Config& config = plugin_.config();
    Mail mail;
    mail.from = config.from;
    mail.from_name = config.from_name;
    if (n.recipient_count == 0 || n.recipients == nullptr) return refuse(result, "the notification has no recipient");
    for (uint32_t i = 0; i < n.recipient_count; ++i) {
      const std::string to = text_or_empty(n.recipients[i]);
      if (const std::string why = address_problem(to); !why.empty()) return refuse(result, "recipient " + why);
      mail.to.push_back(to);
    }
    mail.subject = text_or_empty(n.subject);
    mail.text = text_or_empty(n.body);
    mail.text_is_html = n.content_type != nullptr && std::string_view(n.content_type) == "text/html";
    if (has(n, &opk_notification::html_body) && n.html_body != nullptr) mail.html = n.html_body;
    if (has(n, &opk_notification::id) && n.id != nullptr && *n.id != '\0')
      mail.id = n.id;
    else
      mail.id = "opk-" + random_hex(32);
    const int64_t now = plugin_.host().now_ms();
    mail.date_ms =
        now > 0
            ? now
            : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    mail.boundary = "=_opk_" + random_hex(24);
    int64_t timeout_ms = config.timeout_ms;
    if (has(n, &opk_notification::timeout_ms) && n.timeout_ms > 0) timeout_ms = n.timeout_ms;

    const Report report = plugin_.client().send(mail, timeout_ms);
    result.code = report.code;
    result.flags = report.permanent ? OPK_DELIVERY_PERMANENT : 0;
    result.latency_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    opk::set_detail(result, report.detail);
    if (report.status == OPK_OK) return opk::Status::ok();
    return {report.status, report.detail};
  }

  opk::Status check_recipient(std::string_view recipient, const char* options_json,
                              opk_delivery_result& result) override {
    if (const std::string why = address_problem(recipient); !why.empty()) return refuse(result, "recipient " + why);
    if (options_json != nullptr && *options_json != '\0') {
      const opk::Json options = opk::Json::parse(options_json, nullptr, false);
      if (!options.is_object()) return refuse(result, "options: not a JSON object");
      if (!options.empty())
        return refuse(result, "options: the e-mail channel takes none (got '" + options.begin().key() + "')");
    }
    return opk::Status::ok();
  }

 private:
  // A message that can never be delivered as it is.
  static opk::Status refuse(opk_delivery_result& result, const std::string& why) {
    result.flags = OPK_DELIVERY_PERMANENT;
    opk::set_detail(result, why);
    return opk::Status::invalid(why);
  }

  EmailPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("channel-email", "E-mail channel", "1.0.0", "Opskernel",
                  "Delivers notifications as e-mail over SMTP (STARTTLS or implicit TLS, AUTH PLAIN or LOGIN)");
  m.channel<EmailChannel>({.id = "email",
                           .title = "E-mail",
                           .description = "An e-mail to each recipient address, with a plain text part and an "
                                          "HTML part when the notification has one",
                           .deliver = true,
                           .check_recipient = true});
  return m;
}

}  // namespace
}  // namespace channel_email

OPK_PLUGIN(channel_email::EmailPlugin, channel_email::describe);
