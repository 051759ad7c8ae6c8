#!/usr/bin/python3
"""Usage providers for the UsageCollection tests and benchmark, on 127.0.0.1.

    usage_server.py --data FILE

Listens on a free port and prints {"port": N} on one line once it accepts
connections. Every request is served on its own thread. It speaks the
provider protocol of docs/job-types/usage-collection.md:

    GET /<mode...>/<name>?month=YYYY-MM[&cursor=C]
    -> 200 {"items": [{"subscription", "quantity", "cost", "currency"}, ...],
            "next": "<cursor>" | null}

FILE is read again on every request (tests rewrite it between runs); it is
a JSON object of data sets by name:

    {"eu": {"page_size": 2, "items": [{"subscription": "s1", ...}, ...]}}

The items are served for any month, page_size (default 100) at a time; the
cursor is the offset of the next page. A name "gen-N-P" needs no data: N
items for the subscriptions "<P>1" .. "<P>N" (quantity i % 7, cost
(i % 100) / 4, currency EUR), for benchmarks. The path before the name
picks how it answers:

  /<name>              the pages
  /slow/MS/<name>      each page after MS milliseconds
  /fail/<name>         500 {"error": "provider down"}
  /flaky/K/<name>      503 to the first K requests of the name, then pages
  /malformed/<name>    200 application/json with a body that is not JSON
  /notobject/<name>    200 with a JSON array instead of a page
  /badnext/<name>      pages whose next is a number
  /stats               {"requests": N, "max_in_flight": N, "paths": {path: N},
                        "months": {month: N}}: what it served so far

SIGTERM stops it.
"""
import argparse
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

lock = threading.Lock()
stats = {"requests": 0, "max_in_flight": 0, "paths": {}, "months": {}}
flaky_seen = {}
in_flight = 0
data_file = None


def items_of(name):
    if name.startswith("gen-"):
        _, n, prefix = name.split("-", 2)
        return [{"subscription": "%s%d" % (prefix, i), "quantity": i % 7, "cost": (i % 100) / 4.0,
                 "currency": "EUR"} for i in range(1, int(n) + 1)], 1000
    with open(data_file) as f:
        text = f.read()
    data = json.loads(text) if text.strip() else {}
    entry = data.get(name, {"items": []})
    return entry.get("items", []), int(entry.get("page_size", 100))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counted = False

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))

    def answer(self, code, body, content_type="application/json"):
        global in_flight
        data = body.encode()
        # Done before the answer is written: a client that has it may send
        # its next request at once, and that one must not count this one.
        with lock:
            if self.counted:
                in_flight -= 1
                self.counted = False
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global in_flight
        url = urlsplit(self.path)
        if url.path == "/stats":
            with lock:
                body = json.dumps(stats)
            self.answer(200, body)
            return
        query = parse_qs(url.query)
        month = query.get("month", [""])[0]
        with lock:
            stats["requests"] += 1
            stats["paths"][url.path] = stats["paths"].get(url.path, 0) + 1
            stats["months"][month] = stats["months"].get(month, 0) + 1
            in_flight += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], in_flight)
            self.counted = True
        try:
            self.serve(url.path.strip("/").split("/"), query)
        finally:
            with lock:
                if self.counted:
                    in_flight -= 1
                    self.counted = False

    def serve(self, parts, query):
        mode = parts[0] if len(parts) > 1 else ""
        name = parts[-1]
        if mode == "fail":
            return self.answer(500, json.dumps({"error": "provider down"}))
        if mode == "malformed":
            return self.answer(200, '{"items": [{"subscription": ')
        if mode == "notobject":
            return self.answer(200, json.dumps([{"subscription": "s1"}]))
        if mode == "flaky":
            key = "/".join(parts)
            with lock:
                flaky_seen[key] = flaky_seen.get(key, 0) + 1
                seen = flaky_seen[key]
            if seen <= int(parts[1]):
                return self.answer(503, json.dumps({"error": "try again"}))
        if mode == "slow":
            time.sleep(int(parts[1]) / 1000.0)
        if "month" not in query:
            return self.answer(400, json.dumps({"error": "month: required"}))
        items, page_size = items_of(name)
        start = int(query.get("cursor", ["0"])[0])
        page = items[start:start + page_size]
        more = start + page_size < len(items)
        nxt = str(start + page_size) if more else None
        if mode == "badnext" and more:
            nxt = start + page_size
        self.answer(200, json.dumps({"items": page, "next": nxt}))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    global data_file
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/dev/null")
    args = ap.parse_args()
    data_file = args.data
    server = Server(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
