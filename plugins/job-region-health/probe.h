// probe.h -- one health probe of a region's endpoint over HTTP(S) with the
// SDK's client (opskernel/http.hpp): a GET within a deadline, redirects not
// followed, the answer judged healthy or not with the reason, and the
// latency measured.
// Thread-safe: a Prober is shared by concurrent probes, each on its own
// connection.
#ifndef OPSKERNEL_PLUGINS_JOB_REGION_HEALTH_PROBE_H
#define OPSKERNEL_PLUGINS_JOB_REGION_HEALTH_PROBE_H

#include <opskernel/http.hpp>
#include <opskernel/status.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace region_health {

// How endpoints are reached ([plugin.job-region-health]).
struct ProberSettings {
  // PEM file of the CAs to trust for https instead of the system's; empty:
  // the system's.
  std::string ca_file;
  // False: no certificate or host name check (insecure; lab regions).
  bool verify_tls = true;
  std::string user_agent = "Opskernel-RegionHealth/1.0";
};

// What one probe found.
struct ProbeResult {
  // Healthy: a 2xx answer within the time, and a JSON answer that is well
  // formed and does not report itself failing.
  bool ok = false;
  // The answer's HTTP status; 0 when no answer came.
  int http_status = 0;
  // From the start of the connection to the end of the answer (or the failure).
  int64_t latency_ms = 0;
  // Why the probe failed, naming the part that was wrong ("answer body: not
  // JSON ..."); empty when healthy.
  std::string error;
  // True when the endpoint answered something that is not a usable answer
  // (not HTTP, or JSON that does not parse): bad input, not an outage.
  bool malformed = false;
};

class Prober {
 public:
  // Builds the TLS context; INVALID_ARGUMENT naming the setting when the
  // CA file is missing or unusable.
  static opk::Status create(const ProberSettings& settings, Prober* out);

  // GETs `url` and judges the answer within `timeout_ms` (the whole probe:
  // connect, send, answer). The answer body is read up to 64 KiB.
  ProbeResult probe(const std::string& url, int64_t timeout_ms) const;

 private:
  ProberSettings settings_;
  opk::http::Client client_;
};

// Empty when `url` is an http:// or https:// URL with a host and without
// a user name, password or fragment; otherwise what is wrong with it.
inline std::string check_url(std::string_view url) {
  return opk::http::check_url(url);
}

// Up to `max` bytes of `in` for a log line (opk::http::printable).
inline std::string clean(std::string_view in, size_t max) {
  return opk::http::printable(in, max);
}

}  // namespace region_health

#endif  // OPSKERNEL_PLUGINS_JOB_REGION_HEALTH_PROBE_H
