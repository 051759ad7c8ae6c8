// smtp.h -- one SMTP delivery with Poco Net: connect (plain or implicit
// TLS), greeting, EHLO, STARTTLS, AUTH PLAIN or LOGIN, MAIL FROM, RCPT TO,
// DATA, QUIT, all within one deadline; the outcome as a status, the deciding
// reply code and a detail for operators. Thread-safe: an SmtpClient is shared
// by concurrent deliveries, each on its own connection.
#ifndef OPSKERNEL_PLUGINS_CHANNEL_EMAIL_SMTP_H
#define OPSKERNEL_PLUGINS_CHANNEL_EMAIL_SMTP_H

#include <Poco/Net/Context.h>
#include <opskernel/opk_abi.h>
#include <opskernel/status.hpp>

#include <cstdint>
#include <string>

#include "mime.h"

namespace channel_email {

// How the connection is protected.
enum class Tls { none, starttls, implicit };
// How the client logs in.
enum class Auth { none, plain, login };

// The server and how to reach it ([plugin.channel-email]).
struct SmtpSettings {
  std::string host = "localhost";
  uint16_t port = 25;
  Tls tls = Tls::none;
  Auth auth = Auth::none;
  std::string username;
  std::string password;
  // The name given in EHLO.
  std::string helo = "localhost";
  // PEM file of the CAs to trust instead of the system's; empty: the system's.
  std::string ca_file;
  // False: no certificate or host name check (insecure; tests, lab servers).
  bool verify = true;
};

// What one delivery came to.
struct Report {
  // OK; UNAVAILABLE or TIMEOUT (a retry may help); INVALID_ARGUMENT (a 5xx
  // reply to the message or a recipient); PERMISSION (the login refused).
  opk_status status = OPK_OK;
  // The deciding SMTP reply code; 0 when none came.
  int code = 0;
  // Retrying cannot help.
  bool permanent = false;
  // The reply, or what failed and where: "RCPT TO:<a@b.c>: 550 5.1.1 unknown".
  std::string detail;
};

class SmtpClient {
 public:
  // Checks the settings and builds the TLS context (reads ca_file). Non-OK
  // names the setting at fault.
  static opk::Status create(const SmtpSettings& settings, SmtpClient* out);

  // Delivers `mail` to every address of mail.to within `timeout_ms`.
  // REQUIRES: the addresses are valid (address_problem).
  Report send(const Mail& mail, int64_t timeout_ms) const;

  const SmtpSettings& settings() const { return settings_; }

 private:
  SmtpSettings settings_;
  Poco::Net::Context::Ptr tls_;
};

}  // namespace channel_email

#endif  // OPSKERNEL_PLUGINS_CHANNEL_EMAIL_SMTP_H
