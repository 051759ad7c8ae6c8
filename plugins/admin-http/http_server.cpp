#include "http_server.h"

#include <opskernel/rate_limits.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSONString.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/String.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "connection.h"

namespace opk::admin {
namespace {

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(path);
  std::string seg;
  while (std::getline(ss, seg, '/'))
    if (!seg.empty()) out.push_back(seg);
  return out;
}

// The response a route handler writes through: buffered, or streamed once
// the handler flushes.
struct PocoResponse {
  opk_http_response c{};
  Poco::Net::HTTPServerResponse* r = nullptr;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::ostream* out = nullptr;  // set once streaming
  bool gone = false;
  bool head_only = false;  // a HEAD request: the answer's head, no body
  bool head_sent = false;

  static PocoResponse* of(const opk_http_response* p) { return reinterpret_cast<PocoResponse*>(p->host_data); }
  static void set_status(const opk_http_response* self, int32_t status) { of(self)->status = status; }
  static void add_header(const opk_http_response* self, const char* name, const char* value) {
    auto* s = of(self);
    if (s->out) return;  // fixed once streaming
    std::string n(name);
    if (n == "content-type") std::erase_if(s->headers, [](auto& h) { return h.first == "content-type"; });
    s->headers.emplace_back(n, value);
  }
  static void append_body(const opk_http_response* self, const void* data, size_t size) {
    of(self)->body.append(static_cast<const char*>(data), size);
  }
  static opk_status flush(const opk_http_response* self) {
    auto* s = of(self);
    if (s->gone) return OPK_ERR_CANCELLED;
    if (s->head_only) {
      // A stream's head is all a HEAD request gets; the stream ends there.
      s->apply_head();
      s->r->setChunkedTransferEncoding(true);
      s->r->send();
      s->head_sent = true;
      s->gone = true;
      return OPK_ERR_CANCELLED;
    }
    try {
      if (!s->out) {
        s->apply_head();
        s->r->setChunkedTransferEncoding(true);
        s->out = &s->r->send();
      }
      s->out->write(s->body.data(), static_cast<std::streamsize>(s->body.size()));
      s->out->flush();
      s->body.clear();
      if (!s->out->good()) s->gone = true;
    } catch (const std::exception&) {
      s->gone = true;
    }
    return s->gone ? OPK_ERR_CANCELLED : OPK_OK;
  }
  void apply_head() {
    r->setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    for (auto& [k, v] : headers) r->set(k, v);
  }
  // Sends what the handler wrote, when it did not stream.
  void finish() {
    if (head_sent) return;
    if (out) {
      if (!body.empty()) flush(&c);
      return;
    }
    apply_head();
    r->setContentLength64(static_cast<Poco::Int64>(body.size()));
    r->sendBuffer(body.data(), body.size());
  }
};

}  // namespace

std::string problem_json(int status, const std::string& title, const std::string& detail) {
  // The detail may quote the client's own bytes: the answer stays UTF-8.
  return "{\"type\":\"about:blank\",\"title\":" + Poco::toJSON(valid_utf8(title), Poco::JSON_WRAP_STRINGS) +
         ",\"status\":" + std::to_string(status) +
         ",\"detail\":" + Poco::toJSON(valid_utf8(detail), Poco::JSON_WRAP_STRINGS) + "}";
}

namespace {
// The length of the UTF-8 character at v[i] by RFC 3629's grammar, or 0 if
// the bytes there are not one. Poco's UTF-8 reading accepts overlong forms
// and surrogates; this does not, so every answer parses as JSON.
size_t utf8_char_at(const std::string& v, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  const unsigned char c = p[i];
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80)
    return 1;
  else if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  }
  if (len == 0 || i + len > v.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = p[i + k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}
}  // namespace

bool is_utf8(const std::string& v) {
  for (size_t i = 0, len; i < v.size(); i += len)
    if ((len = utf8_char_at(v, i)) == 0) return false;
  return true;
}

std::string valid_utf8(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size();) {
    if (const size_t len = utf8_char_at(v, i)) {
      out.append(v, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

std::string prometheus_label(const std::string& v) {
  std::string out;
  for (char c : valid_utf8(v)) {
    if (c == '\\' || c == '"')
      out += {'\\', c};
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

Status read_settings(const Host& host, ServerSettings* out) {
  ServerSettings s;
  if (auto v = host.config("listen"); v && !v->empty())
    s.listen = std::string(*v);
  else if (auto k = host.config("kernel.listen"); k && !k->empty())
    s.listen = std::string(*k);
  Settings in = host.settings();
  auto int_in = [&in](const char* key, int fallback, int lo, int hi) {
    return static_cast<int>(in.integer(key, fallback, lo, hi));
  };
  s.threads = int_in("threads", s.threads, 4, 1024);
  s.max_body_bytes =
      static_cast<size_t>(int_in("max_body_kb", static_cast<int>(s.max_body_bytes / 1024), 1, 1024 * 1024)) * 1024;
  s.timeout_s = int_in("timeout_s", s.timeout_s, 1, 3600);
  s.keep_alive_s = int_in("keep_alive_s", s.keep_alive_s, 1, 3600);
  s.head_timeout_s = int_in("head_timeout_s", s.head_timeout_s, 1, 300);
  s.connections_per_address = int_in("connections_per_address", s.connections_per_address, 0, 100000);
  s.slow_heads_per_address = int_in("slow_heads_per_address", s.slow_heads_per_address, 0, 100000);
  s.rate_per_user = int_in("rate_per_user", s.rate_per_user, 0, 1000000);
  s.rate_per_address = int_in("rate_per_address", s.rate_per_address, 0, 1000000);
  for (const std::string& o : in.list("cors_origins", {})) {
    if (o.rfind("http://", 0) != 0 && o.rfind("https://", 0) != 0)
      in.invalid("cors_origins", o, "http(s) origins separated by commas");
    else
      s.cors_origins.insert(o);
  }
  if (!in.ok()) return in.status();
  *out = std::move(s);
  return Status::ok();
}

bool RateLimiter::allow(const std::string& key, int64_t now, int* retry_after_s) {
  if (per_minute_ <= 0) return true;
  RateState state;
  const bool ok = allow(key, now, per_minute_, &state);
  if (!ok) *retry_after_s = state.retry_after_s;
  return ok;
}

bool RateLimiter::allow(const std::string& key, int64_t now, int64_t per_minute, RateState* state) {
  const double limit = static_cast<double>(per_minute);
  std::lock_guard lock(mu_);
  if (buckets_.size() > 100000) buckets_.clear();  // bounded memory under an address flood
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{limit, now});
  Bucket& b = it->second;
  b.tokens = std::min<double>(limit, b.tokens + static_cast<double>(now - b.last_ms) * limit / 60000.0);
  b.last_ms = now;
  const bool ok = b.tokens >= 1;
  if (ok) b.tokens -= 1;
  state->remaining = static_cast<int64_t>(b.tokens);
  state->reset_s = static_cast<int>((limit - b.tokens) * 60.0 / limit + 0.999);
  state->retry_after_s = ok ? 0 : std::max(1, static_cast<int>((1 - b.tokens) * 60.0 / limit + 0.999));
  return ok;
}

void RequestMetrics::count(const std::string& method, const std::string& route, int status) {
  static const std::set<std::string> known = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  std::lock_guard lock(mu_);
  ++counts_[{known.count(method) ? method : std::string("other"), route, status}];
}

std::string RequestMetrics::prometheus() const {
  std::lock_guard lock(mu_);
  std::string out =
      "# HELP opskernel_http_requests_total HTTP requests served, by route pattern and status code.\n"
      "# TYPE opskernel_http_requests_total counter\n";
  for (const auto& [key, n] : counts_) {
    const auto& [method, route, status] = key;
    out += "opskernel_http_requests_total{method=\"" + prometheus_label(method) + "\",route=\"" +
           prometheus_label(route) + "\",code=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

// ------------------------------------------------------------------ handler

// Serves one well-framed request (the connection layer checked its framing).
class Handler {
 public:
  explicit Handler(Server& server) : server_(server) {}

  void handleRequest(Poco::Net::HTTPServerRequest& rq, Poco::Net::HTTPServerResponse& rs) {
    std::string method = rq.getMethod(), path = "-";
    int status = 500;
    try {
      status = serve(rq, rs, &path);
    } catch (const std::exception& e) {
      server_.host_.error(std::string("request failed: ") + e.what());
      if (!rs.sent()) status = send_problem(rs, 500, "Internal Server Error", "the request could not be served");
    }
    server_.metrics_.count(method, server_.pattern_of(method, path), status);
  }

 private:
  static void security_headers(Poco::Net::HTTPServerResponse& rs) {
    rs.set("X-Content-Type-Options", "nosniff");
    rs.set("X-Frame-Options", "DENY");
    rs.set("Referrer-Policy", "no-referrer");
    rs.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    rs.set("Cache-Control", "no-store");
  }

  int send_problem(Poco::Net::HTTPServerResponse& rs, int status, const std::string& title, const std::string& detail,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    const std::string body = problem_json(status, title, detail);
    rs.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    rs.setContentType("application/problem+json");
    for (auto& [k, v] : headers) rs.set(k, v);
    rs.setContentLength64(static_cast<Poco::Int64>(body.size()));
    rs.sendBuffer(body.data(), body.size());
    return status;
  }

  // The RateLimit-Policy and RateLimit fields of an answer (IETF
  // draft-ietf-httpapi-ratelimit-headers: lists of policies named by a
  // string, q the quota, w the window in seconds, r what is left, t the
  // seconds until the quota is whole again), and the refusal's wait.
  struct RateFields {
    std::string policy, state;
    int retry_after_s = 0;
  };

  // Takes a request from `bucket`'s `key` at `per_minute`, adding policy
  // `name` to `fields`; false when the limit is reached.
  static bool limit(RateLimiter& bucket, const char* name, const std::string& key, int64_t now, int64_t per_minute,
                    RateFields* fields) {
    RateState state;
    const bool ok = bucket.allow(key, now, per_minute, &state);
    const std::string sep = fields->policy.empty() ? "" : ", ";
    fields->policy += sep + "\"" + name + "\";q=" + std::to_string(per_minute) + ";w=60";
    fields->state += sep + "\"" + name + "\";r=" + std::to_string(state.remaining) +
                     ";t=" + std::to_string(ok ? state.reset_s : state.retry_after_s);
    fields->retry_after_s = state.retry_after_s;
    return ok;
  }

  int send_limited(Poco::Net::HTTPServerResponse& rs, const RateFields& fields) {
    const std::string retry = std::to_string(fields.retry_after_s);
    return send_problem(rs, 429, "Too Many Requests", "the request rate limit is reached; retry after " + retry + " s",
                        {{"Retry-After", retry}, {"RateLimit-Policy", fields.policy}, {"RateLimit", fields.state}});
  }

  // True when a window of opskernel.maintenance/1 refuses `method` on
  // `path` for `principal`: offline refuses every request scoped to the
  // tenant, read-only its writes (all but GET, HEAD and the reads that take
  // a body, POST /api/v1/failure-groups). PlatformAdministrators and the
  // kernel's System principals are never refused. No store read.
  bool refused_for_maintenance(const opk_principal& principal, const std::string& method, const std::string& path,
                               opk_maintenance_state* state) {
    const std::string_view role = principal.role ? principal.role : "";
    if (role == "PlatformAdministrator" || role == "System" || !principal.scope) return false;
    state->struct_size = sizeof *state;
    const int32_t mode = server_.maintenance_->for_scope(server_.host_.raw(), principal.scope, state);
    if (mode == OPK_MAINTENANCE_OFFLINE) return true;
    const bool read = method == "GET" || method == "HEAD" || (method == "POST" && path == "/api/v1/failure-groups");
    return mode == OPK_MAINTENANCE_READ_ONLY && !read;
  }

  // 503 with window `m`'s banner in the problem's "maintenance" member and
  // Retry-After when its end is known.
  int send_maintenance(Poco::Net::HTTPServerResponse& rs, const opk_maintenance_state& m) {
    const bool offline = m.mode == OPK_MAINTENANCE_OFFLINE;
    const std::string tenant = valid_utf8(m.tenant), banner = valid_utf8(m.banner);
    std::string body =
        problem_json(503, "Service Unavailable",
                     tenant + (offline ? " is offline for maintenance: " : " is read-only for maintenance: ") + banner);
    body.pop_back();  // the closing brace: the maintenance member follows
    body += ",\"maintenance\":{\"tenant\":" + Poco::toJSON(tenant, Poco::JSON_WRAP_STRINGS) + ",\"mode\":\"" +
            (offline ? "offline" : "read-only") + "\",\"banner\":" + Poco::toJSON(banner, Poco::JSON_WRAP_STRINGS) +
            ",\"until_ms\":" + (m.until_ms ? std::to_string(m.until_ms) : "null") +
            ",\"window_id\":" + Poco::toJSON(valid_utf8(m.window_id), Poco::JSON_WRAP_STRINGS) + "}}";
    rs.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_SERVICE_UNAVAILABLE);
    rs.setContentType("application/problem+json");
    if (m.until_ms) {
      const int64_t wait_ms = m.until_ms - server_.host_.now_ms();
      rs.set("Retry-After", std::to_string(std::max<int64_t>(1, (wait_ms + 999) / 1000)));
    }
    rs.setContentLength64(static_cast<Poco::Int64>(body.size()));
    rs.sendBuffer(body.data(), body.size());
    return 503;
  }

  // Reads and drops up to `limit` bytes of a refused body, so closing the
  // connection does not reset it before the client has read the answer.
  static void drain(std::istream& in, Poco::Int64 limit) {
    char buf[16384];
    try {
      while (limit > 0 && in.read(buf, std::min<Poco::Int64>(limit, sizeof buf))) limit -= in.gcount();
    } catch (const std::exception&) {
    }
  }

  int serve(Poco::Net::HTTPServerRequest& rq, Poco::Net::HTTPServerResponse& rs, std::string* path_out) {
    security_headers(rs);
    const auto& st = server_.settings_;
    const std::string remote = rq.clientAddress().toString();
    const std::string remote_host = rq.clientAddress().host().toString();
    // The target: decoded path and query; no dot segments, no NUL.
    std::string path;
    std::vector<std::pair<std::string, std::string>> query;
    try {
      Poco::URI uri(rq.getURI());
      path = uri.getPath();
      query = uri.getQueryParameters();
    } catch (const Poco::Exception& e) {
      return send_problem(rs, 400, "Bad Request", "the request target is malformed: " + e.message());
    }
    // Paths and queries reach handlers, answers and the audit trail: UTF-8
    // only, or every JSON page that quotes them would break.
    if (!is_utf8(path)) return send_problem(rs, 400, "Bad Request", "the request path is not valid UTF-8");
    for (const auto& [k, v] : query)
      if (!is_utf8(k) || !is_utf8(v))
        return send_problem(rs, 400, "Bad Request", "a query parameter is not valid UTF-8");
    const auto segs = segments(path);
    if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos ||
        std::any_of(segs.begin(), segs.end(), [](const std::string& s) { return s == ".." || s == "."; }))
      return send_problem(rs, 400, "Bad Request", "the path may not contain '.' or '..' segments");
    *path_out = path;

    // CORS: off unless origins are configured.
    const std::string origin = rq.get("Origin", "");
    const bool cors = !origin.empty() && st.cors_origins.count(origin);
    if (cors) {
      rs.set("Access-Control-Allow-Origin", origin);
      rs.set("Vary", "Origin");
    }
    if (rq.getMethod() == "OPTIONS") {
      if (!cors) return send_problem(rs, 403, "Forbidden", "cross-origin requests are not allowed from this origin");
      rs.set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE");
      rs.set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
      rs.set("Access-Control-Max-Age", "600");
      rs.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NO_CONTENT);
      rs.setContentLength(0);
      rs.send();
      return 204;
    }

    // The address limit first, so guessing tokens is limited too. An
    // override may raise or lift it (opskernel.rate-limits/1).
    const int64_t now = steady_now_ms();
    RateFields fields;
    const auto* overrides = server_.overrides_;
    int64_t address_limit = st.rate_per_address;
    if (address_limit > 0 && overrides) {
      const int64_t o = overrides->for_address(server_.host_.raw(), remote_host.c_str(), nullptr);
      address_limit = o == OPK_RATE_UNLIMITED ? 0 : std::max(address_limit, o);
    }
    if (address_limit > 0 && !limit(server_.per_address_, "address", remote_host, now, address_limit, &fields))
      return send_limited(rs, fields);

    // The caller, if a token is sent. A bad token is refused here; no token
    // at all is the kernel's to judge (anonymous routes exist).
    // The principal is the kernel's (issued for this request, released when
    // it ends): kernel services accept no other.
    const auto* identity = server_.host_.extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    const opk_principal* principal = nullptr;
    struct Release {
      const opk_host* host;
      const opk_identity_v1* identity;
      const opk_principal*& p;
      ~Release() {
        if (p) identity->release_principal(host, p);
      }
    } release{server_.host_.raw(), identity, principal};
    std::string user_id;
    if (rq.has("Authorization")) {
      const std::string auth = rq.get("Authorization");
      // The scheme is case-insensitive (RFC 9110, section 11.1).
      if (auth.size() < 7 || Poco::icompare(auth.substr(0, 7), std::string("bearer ")) != 0)
        return send_problem(rs, 401, "Unauthorized", "the Authorization header must be 'Bearer <token>'",
                            {{"WWW-Authenticate", "Bearer"}});
      if (!identity || !OPK_HAS_MEMBER(opk_identity_v1, identity->struct_size, principal_for_token))
        return send_problem(rs, 503, "Service Unavailable", "identities are not available");
      const std::string token = auth.substr(7);
      const opk_status checked = identity->principal_for_token(server_.host_.raw(), token.c_str(), &principal);
      if (checked == OPK_ERR_UNAVAILABLE) {
        // The token could not be checked: not the client's fault.
        principal = nullptr;
        return send_problem(rs, 503, "Service Unavailable",
                            "the token cannot be checked now: " + server_.host_.last_error());
      }
      if (checked != OPK_OK || !principal) {
        principal = nullptr;
        // Why (unknown, expired, revoked, disabled), for the client.
        const std::string why = server_.host_.last_error();
        return send_problem(rs, 401, "Unauthorized", why.empty() ? std::string("the token is not valid") : why,
                            {{"WWW-Authenticate", "Bearer error=\"invalid_token\""}});
      }
      user_id = principal->user_id ? principal->user_id : "";
    }
    const bool authenticated = principal != nullptr;

    // The per-user limit (all of a user's tokens together), which an
    // override on the user's scope node or a node above it may raise.
    int64_t user_limit = authenticated ? st.rate_per_user : 0;
    if (user_limit > 0 && overrides && principal->scope) {
      const int64_t o = overrides->for_scope(server_.host_.raw(), principal->scope, nullptr);
      user_limit = o == OPK_RATE_UNLIMITED ? 0 : std::max(user_limit, o);
    }
    if (user_limit > 0 && !limit(server_.per_user_, "user", user_id, now, user_limit, &fields))
      return send_limited(rs, fields);
    if (!fields.policy.empty()) {
      rs.set("RateLimit-Policy", fields.policy);
      rs.set("RateLimit", fields.state);
    }
    opk_maintenance_state maintenance{};
    if (authenticated && server_.maintenance_ &&
        refused_for_maintenance(*principal, rq.getMethod(), path, &maintenance))
      return send_maintenance(rs, maintenance);

    // The body, within the size limit. A client that waits for "100
    // Continue" is told to send it only once its size is accepted.
    std::string body;
    const Poco::Int64 declared = rq.getContentLength64();
    const bool expects_continue = rq.getExpectContinue();
    if (declared > static_cast<Poco::Int64>(st.max_body_bytes)) {
      rs.setKeepAlive(false);
      const int code = send_problem(rs, 413, "Content Too Large",
                                    "the body is " + std::to_string(declared) + " bytes; at most " +
                                        std::to_string(st.max_body_bytes) + " are accepted");
      if (!expects_continue) drain(rq.stream(), std::min<Poco::Int64>(declared, 8 << 20));
      return code;
    }
    if (declared > 0 || rq.getChunkedTransferEncoding()) {
      if (expects_continue) rs.sendContinue();
      std::istream& in = rq.stream();
      char buf[8192];
      while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        body.append(buf, static_cast<size_t>(in.gcount()));
        if (body.size() > st.max_body_bytes) {
          rs.setKeepAlive(false);
          const int code =
              send_problem(rs, 413, "Content Too Large",
                           "the body is larger than the " + std::to_string(st.max_body_bytes) + " bytes accepted");
          drain(in, 8 << 20);
          return code;
        }
      }
    }

    const std::string content_type = Poco::toLower(rq.get("Content-Type", ""));
    if (!body.empty() && content_type.find("json") != std::string::npos && !is_utf8(body))
      return send_problem(rs, 400, "Bad Request", "the JSON body is not valid UTF-8");

    // Into the kernel's route table.
    std::vector<std::string> keys, values;
    for (const auto& [k, v] : rq) {
      std::string n = k;
      std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
      if (n == "authorization") continue;  // handlers never see the token
      keys.push_back(std::move(n));
      values.push_back(valid_utf8(v));
    }
    std::vector<opk_kv> hs, qs;
    for (size_t i = 0; i < keys.size(); ++i) hs.push_back({keys[i].c_str(), values[i].c_str()});
    for (const auto& [k, v] : query) qs.push_back({k.c_str(), v.c_str()});
    // HEAD is served as GET; Poco sends the head of the answer alone.
    const bool head_only = rq.getMethod() == "HEAD";
    const std::string method = head_only ? std::string("GET") : rq.getMethod();
    opk_http_request c{};
    c.struct_size = sizeof c;
    c.method = method.c_str();
    c.path = path.c_str();
    c.query = qs.data();
    c.query_count = static_cast<uint32_t>(qs.size());
    c.headers = hs.data();
    c.header_count = static_cast<uint32_t>(hs.size());
    c.body = {reinterpret_cast<const uint8_t*>(body.data()), body.size()};
    c.principal = principal;
    c.remote_addr = remote.c_str();

    PocoResponse out;
    out.c.struct_size = sizeof out.c;
    out.c.host_data = reinterpret_cast<opk_host_data*>(&out);
    out.c.set_status = &PocoResponse::set_status;
    out.c.add_header = &PocoResponse::add_header;
    out.c.append_body = &PocoResponse::append_body;
    out.c.flush = &PocoResponse::flush;
    out.r = &rs;
    out.head_only = head_only;
    const auto* routes = server_.host_.extension<opk_http_routes_v1>(OPK_EXT_HTTP_ROUTES);
    if (!routes || !routes->dispatch) return send_problem(rs, 503, "Service Unavailable", "no route service");
    routes->dispatch(server_.host_.raw(), &c, &out.c);
    out.finish();
    return out.status;
  }

  Server& server_;
};

// ------------------------------------------------------------------- server

Server::Server(const Host& host, ServerSettings settings)
    : host_(host),
      settings_(std::move(settings)),
      per_user_(settings_.rate_per_user),
      per_address_(settings_.rate_per_address) {}

Server::~Server() {
  stop();
}

Status Server::start() {
  overrides_ = host_.extension<opk_rate_limits_v1>(OPK_EXT_RATE_LIMITS);
  maintenance_ = host_.extension<opk_maintenance_v1>(OPK_EXT_MAINTENANCE);
  try {
    Poco::Net::SocketAddress addr(settings_.listen);
    // Poco's ServerSocket(address) also sets SO_REUSEPORT, with which a
    // second process binds the same address and silently takes a share of
    // the connections (another kernel, with other tokens). Reuse the address
    // (a restart while old connections linger), never the port.
    Poco::Net::ServerSocket socket;
    socket.bind(addr, /*reuseAddress=*/true, /*reusePort=*/false);
    socket.listen(256);
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(settings_.threads);
    params->setMaxQueued(1024);
    params->setTimeout(Poco::Timespan(settings_.timeout_s, 0));
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(settings_.keep_alive_s, 0));
    params->setMaxKeepAliveRequests(10000);
    params->setServerName("opskernel");
    // Poco's own pool (16 threads by default) would starve keep-alive
    // connections beyond it silently: one thread per connection we promise.
    pool_ = std::make_unique<Poco::ThreadPool>(2, settings_.threads, 60);
    ConnectionLimits limits;
    limits.head_deadline_ms = int64_t{settings_.head_timeout_s} * 1000;
    limits.per_address = settings_.connections_per_address > 0 ? settings_.connections_per_address
                                                               : std::max(2, settings_.threads * 3 / 4);
    limits.slow_heads_per_address =
        settings_.slow_heads_per_address > 0 ? settings_.slow_heads_per_address : std::max(2, settings_.threads / 8);
    connections_ = std::make_unique<ConnectionTable>(limits);
    auto refused = [this](int status) { metrics_.count("other", "unmatched", status); };
    ConnectionHooks hooks{[this](Poco::Net::HTTPServerRequest& rq, Poco::Net::HTTPServerResponse& rs) {
                            Handler(*this).handleRequest(rq, rs);
                          },
                          refused};
    server_ = std::make_unique<Poco::Net::TCPServer>(new ConnectionFactory(*connections_, params, std::move(hooks)),
                                                     *pool_, socket, params);
    server_->setConnectionFilter(new ConnectionFilter(*connections_, refused));
    server_->start();
  } catch (const Poco::Exception& e) {
    server_.reset();
    pool_.reset();
    connections_.reset();
    return Status::unavailable("cannot serve on " + settings_.listen + ": " + e.displayText());
  }
  watchdog_stop_ = false;
  watchdog_ = std::thread([this] {
    std::unique_lock lock(watchdog_mu_);
    while (!watchdog_cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return watchdog_stop_; }))
      connections_->expire(steady_now_ms());
  });
  host_.info("admin API serving on http://" + settings_.listen);
  return Status::ok();
}

void Server::stop() {
  if (watchdog_.joinable()) {
    {
      std::lock_guard lock(watchdog_mu_);
      watchdog_stop_ = true;
    }
    watchdog_cv_.notify_all();
    watchdog_.join();
  }
  if (server_) {
    server_->stop();               // no new connections
    connections_->shutdown_all();  // ends kept-alive and streaming ones
  }
  if (pool_) pool_->joinAll();
  server_.reset();
  pool_.reset();
  connections_.reset();
}

std::string Server::pattern_of(const std::string& method, const std::string& path) {
  std::lock_guard lock(routes_mu_);
  const int64_t now = steady_now_ms();
  if (now - patterns_read_ms_ > 5000) {
    patterns_read_ms_ = now;
    const auto* routes = host_.extension<opk_http_routes_v1>(OPK_EXT_HTTP_ROUTES);
    char* json = nullptr;
    if (routes && routes->list && routes->list(host_.raw(), &json) == OPK_OK && json) {
      patterns_.clear();
      try {
        Poco::JSON::Parser parser;
        auto arr = parser.parse(json).extract<Poco::JSON::Array::Ptr>();
        for (size_t i = 0; i < arr->size(); ++i) {
          auto o = arr->getObject(static_cast<unsigned>(i));
          patterns_.emplace_back(o->getValue<std::string>("method"), segments(o->getValue<std::string>("path")));
        }
      } catch (const Poco::Exception&) {
      }
      host_.free(json);
    }
  }
  const auto segs = segments(path);
  const std::vector<std::string>* best = nullptr;
  size_t best_params = 0;
  for (const auto& [m, pat] : patterns_) {
    if (m != method || pat.size() != segs.size()) continue;
    size_t params = 0;
    bool ok = true;
    for (size_t i = 0; i < pat.size() && ok; ++i) {
      if (pat[i].size() > 2 && pat[i].front() == '{')
        ++params;
      else
        ok = pat[i] == segs[i];
    }
    if (ok && (!best || params < best_params)) {
      best = &pat;
      best_params = params;
    }
  }
  if (!best) return "unmatched";
  std::string out;
  for (const auto& s : *best) out += "/" + s;
  return out.empty() ? "/" : out;
}

}  // namespace opk::admin
