// A webhook receiver for the tests, on 127.0.0.1: every request's signature
// is checked with the Standard Webhooks reference library (npm
// "standardwebhooks"), once per secret it was given.
//
//   node receiver.mjs --out FILE [--secret whsec_...]... [--cert PEM --key PEM]
//
// Listens on a free port (HTTPS with --cert and --key) and prints
// {"port": N} on one line once it accepts connections. Each request is
// appended to FILE as one JSON line before it is answered: method, path,
// headers (lower case), body, and for each secret in order whether the
// library verified the request with it ("verified": [true, false]) and, if
// not, the library's error ("errors").
//
// What it answers depends on the path:
//   /status/CODE[?retry_after=VALUE]  that status (and a Retry-After header)
//   /sleep/MS                         200 after MS milliseconds
//   /flaky/N                          500 for the first N requests with one
//                                     webhook-id, then 200
//   /redirect                         301 to /ok
//   anything else                     200 {"ok":true}
// SIGTERM stops it.
import { appendFileSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { Webhook } from "standardwebhooks";

const args = { secrets: [] };
for (let i = 2; i < process.argv.length; i += 2) {
  const [key, value] = [process.argv[i], process.argv[i + 1]];
  if (value === undefined) throw new Error(`${key} needs a value`);
  if (key === "--out") args.out = value;
  else if (key === "--secret") args.secrets.push(value);
  else if (key === "--cert") args.cert = value;
  else if (key === "--key") args.key = value;
  else throw new Error(`unknown option ${key}`);
}
if (!args.out) throw new Error("--out FILE is required");

const attempts = new Map();

function answer(req, res, body) {
  const url = new URL(req.url, "http://receiver");
  const parts = url.pathname.split("/").filter(Boolean);
  const reply = (status, text, headers = {}) => {
    res.writeHead(status, { "content-type": "text/plain", ...headers });
    res.end(text);
  };
  if (parts[0] === "status") {
    const status = Number(parts[1]);
    const retryAfter = url.searchParams.get("retry_after");
    return reply(status, `status ${status} on purpose`, retryAfter === null ? {} : { "retry-after": retryAfter });
  }
  if (parts[0] === "sleep") {
    return setTimeout(() => reply(200, "slept"), Number(parts[1]));
  }
  if (parts[0] === "flaky") {
    const id = req.headers["webhook-id"] || "";
    const seen = (attempts.get(id) || 0) + 1;
    attempts.set(id, seen);
    return seen <= Number(parts[1]) ? reply(500, `failing attempt ${seen}`) : reply(200, `ok at attempt ${seen}`);
  }
  if (parts[0] === "redirect") return reply(301, "moved", { location: "/ok" });
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ ok: true, length: body.length }));
}

function handle(req, res) {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const verified = [];
    const errors = [];
    for (const secret of args.secrets) {
      try {
        new Webhook(secret).verify(body, req.headers);
        verified.push(true);
        errors.push(null);
      } catch (e) {
        verified.push(false);
        errors.push(String(e.message || e));
      }
    }
    const record = {
      method: req.method,
      path: req.url,
      headers: req.headers,
      body,
      verified,
      errors,
      time_ms: Date.now(),
    };
    appendFileSync(args.out, JSON.stringify(record) + "\n");
    answer(req, res, body);
  });
}

const server = args.cert
  ? https.createServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) }, handle)
  : http.createServer(handle);
server.keepAliveTimeout = 5000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
process.on("SIGTERM", () => {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
});
