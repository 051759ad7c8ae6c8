#!/usr/bin/python3
"""A real SMTP server for the tests, on 127.0.0.1: Debian's aiosmtpd.

    smtp_server.py --out FILE [--tls none|starttls|implicit --cert PEM --key PEM]
                   [--auth USER:PASSWORD] [--silent]

Listens on a free port and prints {"port": N} on one line once it accepts
connections. Each message it accepts is appended to FILE as one JSON line:
the envelope (mail_from, rcpt_tos), whether the session was encrypted and
who logged in, the raw message, and the message as Python's e-mail parser
reads it (headers decoded, every leaf part with its type and decoded text,
and the parser's defects).

What it answers depends on the recipient's local part:
  reject-permanent...  RCPT TO gets 550 5.1.1 (a permanent failure)
  reject-transient...  RCPT TO gets 451 4.3.0 (a transient failure)
  anything else        accepted; the message gets "250 2.0.0 Ok: queued as N"

--tls starttls offers STARTTLS and AUTH only after it (aiosmtpd's default);
--tls implicit speaks TLS from the first byte. --auth enables AUTH PLAIN and
LOGIN with that one user. --silent accepts connections and never says a word
(a server that hangs). SIGTERM stops it.
"""
import argparse
import asyncio
import email
import email.policy
import json
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject-permanent"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: mailbox unavailable"
        if local.startswith("reject-transient"):
            return f"451 4.3.0 <{address}>: Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({
                "content_type": part.get_content_type(),
                "charset": part.get_content_charset(),
                "transfer_encoding": part.get("Content-Transfer-Encoding"),
                "text": part.get_content(),
            })
        auth = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "parts": parts,
            "defects": [repr(d) for d in msg.defects] + [repr(d) for p in msg.walk() for d in p.defects],
            "raw": raw.decode("utf-8", "replace"),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return f"250 2.0.0 Ok: queued as {self.count}"


class Silent(asyncio.Protocol):
    """Takes the connection and never answers."""

    def connection_made(self, transport):
        self.transport = transport


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth")
    ap.add_argument("--silent", action="store_true")
    args = ap.parse_args()

    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    authenticator = None
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, data):
            ok = (isinstance(data, LoginPassword) and data.login.decode() == user
                  and data.password.decode() == password)
            # handled=False: aiosmtpd answers 535 itself.
            return AuthResult(success=ok, handled=False, auth_data=data)

    handler = Recorder(args.out)

    def factory():
        if args.silent:
            return Silent()
        return SMTP(handler,
                    hostname="smtp.test",
                    tls_context=context if args.tls == "starttls" else None,
                    authenticator=authenticator,
                    auth_require_tls=args.tls == "starttls",
                    timeout=60)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, "127.0.0.1", 0, ssl=context if args.tls == "implicit" else None))
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    server.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
