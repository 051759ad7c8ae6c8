#!/usr/bin/python3
"""A region's endpoints for the tests and benchmarks, on 127.0.0.1.

    region_server.py [--tls --cert PEM --key PEM]

Listens on a free port and prints {"port": N} on one line once it accepts
connections. Every request is served on its own thread. What it answers
depends on the path:

  /ok...            200 application/json {"status": "pass"}
  /plain...         200 text/plain "OK"
  /slow/MS...       waits MS milliseconds, then answers as /ok
  /fail...          503 application/json {"status": "fail"}
  /down...          200 application/json {"status": "fail"} (a health
                    document that says it fails)
  /malformed...     200 application/json with a body that is not JSON
  /garbage...       bytes that are not HTTP, then closes the connection
  /redirect...      302 to /ok
  /stats            {"requests": N, "max_in_flight": N, "paths": {path: N}}:
                    what it served so far (not counted itself)

The query string is ignored.

--tls serves https with the given certificate and key. SIGTERM stops it.
"""
import argparse
import json
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

lock = threading.Lock()
stats = {"requests": 0, "max_in_flight": 0, "paths": {}}
in_flight = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out as two writes: without this, Nagle's
        # algorithm holds the body for the client's delayed ACK (40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))

    def done(self):
        # A request stops counting as in flight before its answer is
        # written: once the client has the answer it may start the next
        # request, which must not overlap this one in max_in_flight.
        global in_flight
        if getattr(self, "counted", False):
            with lock:
                in_flight -= 1
            self.counted = False

    def answer(self, code, body, content_type="application/json", headers=()):
        self.done()
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global in_flight
        path = urlsplit(self.path).path
        if path == "/stats":
            with lock:
                self.answer(200, json.dumps(stats))
            return
        with lock:
            stats["requests"] += 1
            stats["paths"][path] = stats["paths"].get(path, 0) + 1
            in_flight += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], in_flight)
        self.counted = True
        try:
            self.serve(path)
        finally:
            self.done()

    def serve(self, path):
        if path.startswith("/slow/"):
            ms = int(path.split("/")[2])
            time.sleep(ms / 1000.0)
            self.answer(200, json.dumps({"status": "pass"}))
        elif path.startswith("/plain"):
            self.answer(200, "OK", "text/plain")
        elif path.startswith("/fail"):
            self.answer(503, json.dumps({"status": "fail"}))
        elif path.startswith("/down"):
            self.answer(200, json.dumps({"status": "fail", "output": "database unreachable"}))
        elif path.startswith("/malformed"):
            self.answer(200, '{"status": "pass", ', "application/json")
        elif path.startswith("/garbage"):
            self.done()
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif path.startswith("/redirect"):
            self.answer(302, "", "text/plain", [("Location", "/ok")])
        else:
            self.answer(200, json.dumps({"status": "pass"}))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
