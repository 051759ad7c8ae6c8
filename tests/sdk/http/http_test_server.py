#!/usr/bin/python3
"""What the HTTP client's tests need beyond the region server, on 127.0.0.1.

    http_test_server.py

Listens on a free port and prints {"port": N} on one line once it accepts
connections. Each connection is served on its own thread:

  POST|PUT|GET /echo   200 application/json {"method", "path", "headers"
                       (names in lower case), "body"}: what it received
  GET /stall           200 with Content-Length 1000, sends 10 bytes of the
                       body, then nothing until the client goes
  GET /keep            200 application/json {"connection": N, "request": K}:
                       the connection's number (1 for the server's first)
                       and the request's on that connection, which is kept
                       open (HTTP/1.1 keep-alive)
  GET /keep/close      the same, with "Connection: close"
  GET /keep/drop       the same on a connection's first request; a later
                       one on it closes the connection without an answer
                       (as a server whose idle timeout passed as it came)

SIGTERM stops it.
"""
import json
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = 0
    lock = threading.Lock()

    def setup(self):
        super().setup()
        with Handler.lock:
            Handler.connections += 1
            self.number = Handler.connections
        self.requests = 0

    def keep(self):
        self.requests += 1
        if self.path == "/keep/drop" and self.requests > 1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps({"connection": self.number, "request": self.requests}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.path == "/keep/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))

    def echo(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        data = json.dumps({"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": body}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def stall(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"first part")
        self.wfile.flush()
        self.connection.recv(1)  # nothing comes until the client closes

    def route(self):
        if self.path.startswith("/echo"):
            self.echo()
        elif self.path.startswith("/stall"):
            self.stall()
        elif self.path.startswith("/keep"):
            self.keep()
        else:
            self.send_error(404)

    do_GET = route
    do_POST = route
    do_PUT = route


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()
