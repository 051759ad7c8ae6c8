// http_server.h -- the admin HTTP server: Poco Net on the configured
// address, serving every route in the kernel's route table (this plugin's and
// other admin features') without knowing them by name. It authenticates
// bearer tokens through opk.identity/1 and leaves routing, permission checks
// and 404/405 to the kernel (opk_http_routes_v1.dispatch). Around that:
// request-size and time limits, per-user and per-address rate limits (raised
// or lifted for a while by opskernel.rate-limits/1 when the
// rate-limit-overrides plugin runs; RateLimit and RateLimit-Policy header
// fields on every answer they apply to), per-tenant maintenance windows
// read through opskernel.maintenance/1 when the maintenance-mode plugin runs
// (a tenant's writes, or all its requests, refused with 503 and the banner),
// security headers, optional CORS, streaming responses and request metrics.
#ifndef OPSKERNEL_PLUGINS_ADMIN_HTTP_HTTP_SERVER_H
#define OPSKERNEL_PLUGINS_ADMIN_HTTP_HTTP_SERVER_H

#include <opskernel/maintenance.h>
#include <opskernel/rate_limits.h>
#include <opskernel/opk.hpp>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace Poco::Net {
class TCPServer;
}
namespace Poco {
class ThreadPool;
}

namespace opk::admin {

class ConnectionTable;

// Server settings ([plugin.admin-http] keys; see config/opskernel.conf).
struct ServerSettings {
  std::string listen = "127.0.0.1:8080";
  int threads = 64;  // concurrent connections served (SSE streams hold one each)
  size_t max_body_bytes = 1 << 20;
  int timeout_s = 30;  // socket read/write timeout
  int keep_alive_s = 10;
  int head_timeout_s = 5;              // a request head arrives within this
  int connections_per_address = 0;     // 0: three quarters of `threads`
  int slow_heads_per_address = 0;      // heads arriving for over 1 s; 0: an eighth of `threads`
  int rate_per_user = 600;             // requests per minute per user; 0: no limit
  int rate_per_address = 1200;         // requests per minute per client address; 0: no limit
  std::set<std::string> cors_origins;  // empty: CORS off
};

// An RFC 9457 problem document.
std::string problem_json(int status, const std::string& title, const std::string& detail);

// Reads the settings from the plugin's configuration; errors name the key.
Status read_settings(const Host& host, ServerSettings* out);

// What a bucket holds after a request, for the RateLimit header fields.
struct RateState {
  int64_t remaining = 0;  // whole requests left
  int reset_s = 0;        // seconds until the bucket is full again
  int retry_after_s = 0;  // when refused: seconds until one request passes
};

// A token bucket per key: `per_minute` requests, refilled continuously.
class RateLimiter {
 public:
  explicit RateLimiter(int per_minute) : per_minute_(per_minute) {}
  // True if the request may go on; otherwise *retry_after_s says when.
  bool allow(const std::string& key, int64_t now_ms, int* retry_after_s);
  // The same with `per_minute` (> 0) for this request: an override may
  // raise a key's limit for a while; the bucket holds at most the limit
  // of its latest request. *state says what is left.
  bool allow(const std::string& key, int64_t now_ms, int64_t per_minute, RateState* state);
  // The configured requests per minute (0: no limit).
  int per_minute() const { return per_minute_; }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_ms = 0;
  };
  int per_minute_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

// `v` as a Prometheus label value: backslash, double quote and line feed
// escaped, bytes that are not UTF-8 replaced by U+FFFD.
std::string prometheus_label(const std::string& v);

// `v` with every byte sequence that is not UTF-8 replaced by U+FFFD.
std::string valid_utf8(const std::string& v);

// True when `v` is UTF-8 throughout.
bool is_utf8(const std::string& v);

// Requests served, by method, route pattern and status code. Methods other
// than HTTP's own are counted as "other", so a client cannot add labels.
class RequestMetrics {
 public:
  void count(const std::string& method, const std::string& route, int status);
  // Prometheus text lines (opskernel_http_requests_total).
  std::string prometheus() const;

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> counts_;
};

class Server {
 public:
  Server(const Host& host, ServerSettings settings);
  ~Server();
  Status start();
  void stop();
  RequestMetrics& metrics() { return metrics_; }
  const ServerSettings& settings() const { return settings_; }

  // The route pattern that serves `method` `path`, for metrics ("-" if none).
  std::string pattern_of(const std::string& method, const std::string& path);

 private:
  friend class Handler;
  Host host_;
  ServerSettings settings_;
  RateLimiter per_user_, per_address_;
  const opk_rate_limits_v1* overrides_ = nullptr;    // opskernel.rate-limits/1, when provided
  const opk_maintenance_v1* maintenance_ = nullptr;  // opskernel.maintenance/1, when provided
  RequestMetrics metrics_;
  std::unique_ptr<ConnectionTable> connections_;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::TCPServer> server_;
  std::thread watchdog_;  // ends heads past their deadline
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool watchdog_stop_ = false;
  std::mutex routes_mu_;
  std::vector<std::pair<std::string, std::vector<std::string>>> patterns_;  // method, segments
  size_t patterns_seen_ = 0;
  int64_t patterns_read_ms_ = 0;
};

}  // namespace opk::admin

#endif
