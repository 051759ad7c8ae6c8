// provider.h -- one region's usage provider over HTTP(S) with the SDK's
// client (opskernel/http.hpp): GET <usage_url>?month=YYYY-MM[&cursor=C],
// each request within a timeout, retried with back-off on timeouts,
// connection errors and 5xx answers, and the answer read as one page of
// usage:
//
//   {"items": [{"subscription": "s1", "quantity": 3, "cost": 12.5,
//               "currency": "EUR"}, ...],
//    "next": "<cursor>" | null}
//
// Thread-safe: a Provider is shared by the regions fetched at once, each
// request on its own connection.
#ifndef OPSKERNEL_PLUGINS_JOB_USAGE_COLLECTION_PROVIDER_H
#define OPSKERNEL_PLUGINS_JOB_USAGE_COLLECTION_PROVIDER_H

#include <opskernel/http.hpp>
#include <opskernel/opk.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace usage_collection {

// How providers are reached ([plugin.job-usage-collection]).
struct ProviderSettings {
  // Time for one request, connect to last byte.
  int64_t timeout_ms = 10'000;
  // Further attempts after a failed one that may pass on a retry.
  int retries = 3;
  // The pause before the first retry; it doubles for each further one.
  int64_t backoff_ms = 500;
  // PEM file of the CAs to trust for https instead of the system's.
  std::string ca_file;
  // False: no certificate or host name check (insecure; lab providers).
  bool verify_tls = true;
  std::string user_agent = "Opskernel-UsageCollection/1.0";
};

// What one GET of a page came to, after its retries.
struct PageAnswer {
  // True when `page` holds a well-formed page.
  bool ok = false;
  // The page: an object with an array "items" and "next" (a string, or
  // null on the last page).
  opk::Json page;
  // Why not, naming the part that was wrong ("GET http://h:1/u: HTTP 500
  // ...", "answer body: not JSON ..."); empty when ok.
  std::string error;
  // The answer was not a usable page (not HTTP, not JSON, wrong shape):
  // bad input, not an outage.
  bool malformed = false;
  int attempts = 0;
  int64_t elapsed_ms = 0;
};

class Provider {
 public:
  // Builds the TLS context; INVALID_ARGUMENT naming the setting when the
  // CA file is missing or unusable.
  static opk::Status create(const ProviderSettings& settings, Provider* out);

  // Called before a retry with what failed and the pause it waits; returns
  // false to give up (a cancel). Used for back-off on the run's clock.
  using RetryFn = std::function<bool(const std::string& why, int64_t pause_ms)>;

  // GETs page `cursor` (empty: the first) of `month`'s usage from `url`.
  PageAnswer page(const std::string& url, const std::string& month, const std::string& cursor,
                  const RetryFn& before_retry) const;

  const ProviderSettings& settings() const { return settings_; }

 private:
  ProviderSettings settings_;
  opk::http::Client client_;
};

// Empty when `url` is an http:// or https:// URL with a host and without
// a user name, password or fragment; otherwise what is wrong with it.
inline std::string check_provider_url(std::string_view url) {
  return opk::http::check_url(url);
}

// Up to `max` bytes of `in` for a log line (opk::http::printable).
using opk::http::printable;

}  // namespace usage_collection

#endif  // OPSKERNEL_PLUGINS_JOB_USAGE_COLLECTION_PROVIDER_H
