#include "smtp.h"

#include <Poco/Exception.h>
#include <Poco/Net/DialogSocket.h>
#include <Poco/Net/MailStream.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SMTPClientSession.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/SocketStream.h>
#include <Poco/Net/StreamSocket.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>

namespace channel_email {

namespace {

using SteadyClock = std::chrono::steady_clock;

// The end of a delivery's time.
class Deadline {
 public:
  explicit Deadline(int64_t ms) : end_(SteadyClock::now() + std::chrono::milliseconds(ms)) {}
  // Time left, at least 1 ms (Poco reads 0 as "no timeout"). Throws
  // Poco::TimeoutException once the time is up.
  Poco::Timespan left() const {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(end_ - SteadyClock::now()).count();
    if (us <= 0) throw Poco::TimeoutException("the delivery's time is up");
    return Poco::Timespan(std::max<int64_t>(us, 1000));
  }

 private:
  SteadyClock::time_point end_;
};

// SMTPClientSession with access to its socket, for STARTTLS on our own
// terms (the host name to verify) and the reply to the message's data.
class Session : public Poco::Net::SMTPClientSession {
 public:
  explicit Session(const Poco::Net::StreamSocket& socket) : SMTPClientSession(socket) {}
  Poco::Net::DialogSocket& dialog() { return socket(); }
};

// A reply on one line: CR/LF as spaces, at most 400 bytes.
std::string one_line(const std::string& text) {
  std::string out;
  for (char c : text) out += (c == '\r' || c == '\n') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > 400) out = out.substr(0, 400) + "...";
  return out;
}

// A reply that is not the one expected at `stage`.
Report refused(const std::string& stage, int code, const std::string& reply, bool login) {
  Report r;
  r.code = code;
  r.detail = stage + ": " + one_line(reply);
  if (code >= 500) {
    r.permanent = true;
    r.status = login ? OPK_ERR_PERMISSION : OPK_ERR_INVALID_ARGUMENT;
  } else {
    r.status = OPK_ERR_UNAVAILABLE;
  }
  return r;
}

Report failed(opk_status status, std::string detail) {
  Report r;
  r.status = status;
  r.detail = std::move(detail);
  return r;
}

// True when EHLO's answer lists `keyword` (e.g. "STARTTLS", "AUTH") as an
// extension; `args` gets the words after it.
bool offers(const std::string& ehlo, const std::string& keyword, std::string* args = nullptr) {
  std::istringstream in(ehlo);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() < 4) continue;
    std::string ext = line.substr(4);
    std::string word = ext.substr(0, ext.find(' '));
    std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::toupper(c); });
    if (word == keyword) {
      if (args) *args = ext.size() > word.size() ? ext.substr(word.size() + 1) : std::string();
      return true;
    }
  }
  return false;
}

const char* tls_name(Tls t) {
  return t == Tls::implicit ? "implicit" : t == Tls::starttls ? "starttls" : "none";
}

}  // namespace

opk::Status SmtpClient::create(const SmtpSettings& s, SmtpClient* out) {
  out->settings_ = s;
  out->tls_ = nullptr;
  if (s.tls == Tls::none) return opk::Status::ok();
  if (!s.ca_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(s.ca_file, ec))
      return opk::Status::invalid("[plugin.channel-email] ca_file = \"" + s.ca_file + "\": no such file");
  }
  try {
    Poco::Net::Context::Params p;
    p.caLocation = s.ca_file;
    p.loadDefaultCAs = s.ca_file.empty();
    p.verificationMode = s.verify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE;
    p.cipherList = "HIGH:!aNULL:!MD5:!RC4";
    Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, p);
    ctx->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    ctx->enableExtendedCertificateVerification(s.verify);
    out->tls_ = ctx;
  } catch (const Poco::Exception& e) {
    return opk::Status::invalid("[plugin.channel-email] TLS context (ca_file = \"" + s.ca_file +
                                "\"): " + e.displayText());
  }
  return opk::Status::ok();
}

Report SmtpClient::send(const Mail& mail, int64_t timeout_ms) const {
  const SmtpSettings& s = settings_;
  const Deadline deadline(timeout_ms);
  const std::string where = s.host + ":" + std::to_string(s.port);
  std::string stage = "connect " + where;
  Poco::Net::StreamSocket plain;
  std::unique_ptr<Session> session;
  bool dialogue_ok = false;
  // After a failure the session's destructor still says QUIT: give it a
  // millisecond, not the delivery's time again.
  struct Hurry {
    Poco::Net::StreamSocket& plain;
    std::unique_ptr<Session>& session;
    const bool& ok;
    ~Hurry() {
      if (ok) return;
      try {
        const Poco::Timespan ms(0, 1000);
        plain.setReceiveTimeout(ms);
        plain.setSendTimeout(ms);
        if (session) session->setTimeout(ms);
      } catch (...) {
      }
    }
  } hurry{plain, session, dialogue_ok};
  auto arm = [&] {
    const Poco::Timespan left = deadline.left();
    plain.setReceiveTimeout(left);
    plain.setSendTimeout(left);
    if (session) session->setTimeout(left);
  };
  Report r;
  try {
    const Poco::Net::SocketAddress address(s.host, s.port);
    plain.connect(address, deadline.left());
    arm();
    Poco::Net::StreamSocket link = plain;
    if (s.tls == Tls::implicit) {
      stage = "TLS handshake with " + where;
      link = Poco::Net::SecureStreamSocket::attach(plain, s.host, tls_);
    }
    session = std::make_unique<Session>(link);
    stage = "greeting of " + where;
    arm();
    session->open();

    std::string reply;
    int code = 0;
    auto ehlo = [&]() -> bool {
      stage = "EHLO " + s.helo;
      arm();
      code = session->sendCommand("EHLO", s.helo, reply);
      if (code / 100 == 5) {
        stage = "HELO " + s.helo;
        arm();
        code = session->sendCommand("HELO", s.helo, reply);
      }
      if (code / 100 == 2) return true;
      r = refused(stage, code, reply, false);
      return false;
    };
    if (!ehlo()) return r;
    if (s.tls == Tls::starttls) {
      if (!offers(reply, "STARTTLS"))
        return failed(OPK_ERR_UNAVAILABLE, "EHLO: " + where + " does not offer STARTTLS (tls = starttls)");
      stage = "STARTTLS";
      arm();
      code = session->sendCommand("STARTTLS", reply);
      if (code / 100 != 2) return refused(stage, code, reply, false);
      stage = "TLS handshake with " + where;
      arm();
      session->dialog() = Poco::Net::SecureStreamSocket::attach(plain, s.host, tls_);
      if (!ehlo()) return r;
    }
    if (s.auth != Auth::none) {
      const std::string mechanism = s.auth == Auth::plain ? "PLAIN" : "LOGIN";
      std::string mechanisms;
      if (!offers(reply, "AUTH", &mechanisms))
        return failed(OPK_ERR_UNAVAILABLE,
                      "EHLO: " + where + " does not offer AUTH (with tls = " + tls_name(s.tls) + ")");
      if ((" " + mechanisms + " ").find(" " + mechanism + " ") == std::string::npos)
        return failed(OPK_ERR_UNAVAILABLE,
                      "EHLO: " + where + " does not offer AUTH " + mechanism + " (it offers " + mechanisms + ")");
      // Not Poco's logins: its LOGIN sends nothing when the server's prompt
      // is not "Username:" (aiosmtpd's is "User Name"), and its base64 breaks
      // long lines. These are the steps of RFC 4616 and the LOGIN draft.
      stage = "AUTH " + mechanism + " as " + s.username;
      arm();
      code = 0;
      if (s.auth == Auth::plain) {
        code =
            session->sendCommand("AUTH PLAIN " + base64(std::string(1, '\0') + s.username + '\0' + s.password), reply);
      } else {
        code = session->sendCommand("AUTH LOGIN", reply);
        if (code == 334) {
          arm();
          code = session->sendCommand(base64(s.username), reply);
        }
        if (code == 334) {
          arm();
          code = session->sendCommand(base64(s.password), reply);
        }
      }
      if (code / 100 != 2) return refused(stage, code, reply, true);
    }
    stage = "MAIL FROM:<" + mail.from + ">";
    arm();
    code = session->sendCommand("MAIL FROM:<" + mail.from + ">", reply);
    if (code / 100 != 2) return refused(stage, code, reply, false);
    for (const std::string& to : mail.to) {
      stage = "RCPT TO:<" + to + ">";
      arm();
      code = session->sendCommand("RCPT TO:<" + to + ">", reply);
      if (code / 100 != 2) return refused(stage, code, reply, false);
    }
    stage = "DATA";
    arm();
    code = session->sendCommand("DATA", reply);
    if (code / 100 != 3) return refused(stage, code, reply, false);
    stage = "end of data";
    arm();
    {
      Poco::Net::SocketOutputStream socket_out(session->dialog());
      Poco::Net::MailOutputStream mail_out(socket_out);
      mail_out << compose(mail);
      mail_out.close();
      socket_out.flush();
    }
    code = session->dialog().receiveStatusMessage(reply);
    if (code / 100 != 2) return refused(stage, code, reply, false);
    r.code = code;
    r.detail = one_line(reply);
    dialogue_ok = true;
    try {
      arm();
      session->close();
    } catch (const Poco::Exception&) {
      // The message is accepted; a QUIT left unanswered changes nothing.
    }
    return r;
  } catch (const Poco::TimeoutException&) {
    r = failed(OPK_ERR_TIMEOUT, stage + ": no answer within " + std::to_string(timeout_ms) + " ms");
  } catch (const Poco::Net::ConnectionRefusedException&) {
    r = failed(OPK_ERR_UNAVAILABLE, stage + ": connection refused");
  } catch (const Poco::Net::HostNotFoundException& e) {
    r = failed(OPK_ERR_UNAVAILABLE, "resolve " + s.host + ": " + e.displayText());
  } catch (const Poco::Net::NoAddressFoundException& e) {
    r = failed(OPK_ERR_UNAVAILABLE, "resolve " + s.host + ": " + e.displayText());
  } catch (const Poco::Net::SMTPException& e) {
    r = refused(stage, e.code(), e.message(), false);
  } catch (const Poco::Net::SSLException& e) {
    r = failed(OPK_ERR_UNAVAILABLE, stage + ": TLS: " + one_line(e.displayText()));
  } catch (const Poco::Exception& e) {
    r = failed(OPK_ERR_UNAVAILABLE, stage + ": " + one_line(e.displayText()));
  }
  return r;
}

}  // namespace channel_email
