#include "provider.h"

#include <Poco/URI.h>

#include <algorithm>
#include <chrono>

namespace usage_collection {

namespace {

using SteadyClock = std::chrono::steady_clock;
// The largest page answer read.
constexpr size_t kMaxPageBytes = 16u * 1024 * 1024;

// One attempt.
struct Attempt {
  std::string body;
  std::string error;
  bool retryable = false;
  bool malformed = false;
};

Attempt get_once(const opk::http::Client& client, const std::string& url, int64_t timeout_ms) {
  Attempt a;
  opk::http::Url parts;
  opk::http::check_url(url, &parts);
  const opk::http::Request request{.url = url,
                                   .headers = {{"Accept", "application/json"}},
                                   .timeout_ms = timeout_ms,
                                   .max_body = kMaxPageBytes,
                                   .name = "GET " + parts.origin + parts.path};
  opk::http::Response answer;
  if (const opk::Status s = client.send(request, &answer); !s) {
    // A timeout or a lost connection may pass on a retry; an answer that is
    // not HTTP, or a certificate that does not verify, will not.
    a.error = s.message();
    a.retryable = s.code() == OPK_ERR_TIMEOUT || s.code() == OPK_ERR_UNAVAILABLE;
    a.malformed = s.code() == OPK_ERR_INVALID_ARGUMENT;
    return a;
  }
  if (answer.status < 200 || answer.status >= 300) {
    a.error = request.name + ": " + answer.summary();
    a.retryable = answer.status >= 500 || answer.status == 429;
  } else if (const opk::Status whole = answer.whole_body(); !whole) {
    a.error = request.name + ": " + whole.message();
    a.malformed = true;
  } else {
    a.body = std::move(answer.body);
  }
  return a;
}

// Checks that `doc` is a page; empty when it is, else what is wrong.
std::string page_shape(const opk::Json& doc) {
  if (!doc.is_object())
    return std::string("answer body: expected a JSON object {\"items\", \"next\"}, got ") + doc.type_name();
  const auto items = doc.find("items");
  if (items == doc.end()) return "answer body: items: required, an array of usage items";
  if (!items->is_array()) return std::string("answer body: items: expected an array, got ") + items->type_name();
  const auto next = doc.find("next");
  if (next != doc.end() && !next->is_null() && !next->is_string())
    return std::string("answer body: next: expected a cursor (a string) or null, got ") + next->type_name();
  if (next != doc.end() && next->is_string() && next->get<std::string>().empty())
    return "answer body: next: an empty cursor (null ends the pages)";
  return {};
}

}  // namespace

opk::Status Provider::create(const ProviderSettings& s, Provider* out) {
  out->settings_ = s;
  const opk::http::ClientOptions http{s.ca_file, s.verify_tls, s.user_agent, "[plugin.job-usage-collection]"};
  return opk::http::Client::create(http, &out->client_);
}

PageAnswer Provider::page(const std::string& url, const std::string& month, const std::string& cursor,
                          const RetryFn& before_retry) const {
  PageAnswer r;
  const auto start = SteadyClock::now();
  auto finish = [&]() -> PageAnswer& {
    r.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
    return r;
  };
  if (std::string bad = check_provider_url(url); !bad.empty()) {
    r.error = "usage_url " + bad;
    r.malformed = true;
    return finish();
  }
  Poco::URI uri(url);
  uri.addQueryParameter("month", month);
  if (!cursor.empty()) uri.addQueryParameter("cursor", cursor);
  int64_t pause = settings_.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    ++r.attempts;
    Attempt a = get_once(client_, uri.toString(), settings_.timeout_ms);
    if (a.error.empty()) {
      opk::Json doc = opk::Json::parse(a.body, nullptr, false);
      if (doc.is_discarded()) {
        r.error = "answer body: not JSON ('" + printable(a.body, 60) + "')";
        r.malformed = true;
        return finish();
      }
      if (std::string bad = page_shape(doc); !bad.empty()) {
        r.error = bad;
        r.malformed = true;
        return finish();
      }
      r.ok = true;
      r.page = std::move(doc);
      return finish();
    }
    if (!a.retryable || attempt >= settings_.retries) {
      r.error = a.error;
      if (a.retryable && settings_.retries > 0) r.error += " (after " + std::to_string(r.attempts) + " attempts)";
      r.malformed = a.malformed;
      return finish();
    }
    if (before_retry && !before_retry(a.error, pause)) {
      r.error = a.error + " (cancelled before attempt " + std::to_string(r.attempts + 1) + ")";
      return finish();
    }
    pause = std::min<int64_t>(pause * 2, 60'000);
  }
}

}  // namespace usage_collection
