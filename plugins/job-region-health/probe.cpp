#include "probe.h"

#include <opskernel/opk.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace region_health {

namespace {

constexpr size_t kMaxBody = 64 * 1024;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

opk::Status Prober::create(const ProberSettings& s, Prober* out) {
  out->settings_ = s;
  const opk::http::ClientOptions http{s.ca_file, s.verify_tls, s.user_agent, "[plugin.job-region-health]"};
  return opk::http::Client::create(http, &out->client_);
}

ProbeResult Prober::probe(const std::string& url, int64_t timeout_ms) const {
  ProbeResult r;
  const auto start = std::chrono::steady_clock::now();
  auto fail = [&](std::string why, bool malformed = false) {
    r.ok = false;
    r.error = std::move(why);
    r.malformed = malformed;
    r.latency_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    return r;
  };
  if (std::string bad = check_url(url); !bad.empty()) return fail("URL " + bad, true);
  const opk::http::Request request{.url = url,
                                   .headers = {{"Accept", "application/json, */*;q=0.5"}},
                                   .timeout_ms = timeout_ms,
                                   .max_body = kMaxBody};
  opk::http::Response answer;
  // An answer that is not HTTP is bad input, not an outage.
  if (const opk::Status s = client_.send(request, &answer); !s)
    return fail(s.message(), s.code() == OPK_ERR_INVALID_ARGUMENT);
  r.http_status = answer.status;
  if (answer.status < 200 || answer.status >= 300) return fail(answer.summary());
  r.latency_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  const std::string type = answer.header("Content-Type").value_or("");
  if (lower(type).find("json") != std::string::npos) {
    if (const opk::Status whole = answer.whole_body(); !whole) return fail(whole.message() + " of JSON", true);
    const opk::Json doc = opk::Json::parse(answer.body, nullptr, false);
    if (doc.is_discarded())
      return fail(
          "answer body: not JSON although Content-Type is " + clean(type, 100) + " ('" + clean(answer.body, 60) + "')",
          true);
    // A health document (status "pass"/"ok"/"up" ...) that says it fails.
    if (doc.is_object() && doc.contains("status") && doc["status"].is_string()) {
      const std::string status = lower(doc["status"].get<std::string>());
      if (status == "fail" || status == "down" || status == "unhealthy" || status == "error")
        return fail("answer body: status '" + clean(doc["status"].get<std::string>(), 60) + "'");
    }
  }
  r.ok = true;
  r.error.clear();
  return r;
}

}  // namespace region_health
