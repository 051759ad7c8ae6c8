// job-usage-collection -- the UsageCollection job type (usage-collection):
// collects a month's usage of the active subscriptions region by region
// from each region's usage provider (the region record's usage_url, an
// HTTP(S) endpoint answering pages of JSON; provider.h), a few regions at
// once; stores it in platform-records as usage rows, one transaction per
// provider page, upserted by (subscription, month) so a rerun updates and
// never adds; then generates a billing line per subscription and month and
// the commissions of the tenant's partner and distributor at the configured
// rates, both upserted by their key (no double billing). Each region is a
// step of its own ("collect-usage: eu-1"), so a provider that fails fails
// only its region's step, with the reason. A cancel stops between pages and
// between batches; a dry run collects and reports and writes nothing.
//
// Settings ([plugin.job-usage-collection]):
//   timeout              time for one request, connect to last byte (default 10s)
//   retries              further attempts of a request that timed out, could
//                        not connect or got a 5xx/429 answer (default 3)
//   retry_backoff        pause before the first retry, doubling (default 500ms)
//   concurrency          regions fetched at once (default 4)
//   max_pages            pages read from one provider in a run (default 10000)
//   currency             the platform's currency, for regions without one (EUR)
//   partner_percent      the partner's commission on a billed amount (default 0)
//   distributor_percent  the distributor's commission (default 0)
//   ca_file, verify_tls  https as for job-region-health
// Parameters: {"month": "YYYY-MM", "region": "eu-1", "tenant": "tenant:acme"}.
#define OPK_REQUIRED_HOST_MINOR 6
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "provider.h"

namespace usage_collection {
namespace {

// The largest page a provider may answer, and the most rows one records
// call takes.
constexpr size_t kMaxPageItems = 1000;
// Warnings kept in the output; the log has them all.
constexpr size_t kMaxOutputWarnings = 100;

struct Settings {
  ProviderSettings provider;
  int concurrency = 4;
  int64_t max_pages = 10'000;
  std::string currency = "EUR";
  double partner_percent = 0;
  double distributor_percent = 0;
};

opk::Status load_settings(const opk::Host& h, Settings* s) {
  opk::Settings in = h.settings();
  s->provider.timeout_ms = in.duration_ms("timeout", s->provider.timeout_ms, 100, 300'000);
  s->provider.retries = static_cast<int>(in.integer("retries", s->provider.retries, 0, 10));
  s->provider.backoff_ms = in.duration_ms("retry_backoff", s->provider.backoff_ms, 0, 60'000);
  s->provider.ca_file = in.text("ca_file", "");
  s->provider.verify_tls = in.boolean("verify_tls", true);
  s->concurrency = static_cast<int>(in.integer("concurrency", s->concurrency, 1, 64));
  s->max_pages = in.integer("max_pages", s->max_pages, 1, 1'000'000);
  s->currency = in.text("currency", s->currency, true);
  s->partner_percent = in.number("partner_percent", s->partner_percent, 0, 100);
  s->distributor_percent = in.number("distributor_percent", s->distributor_percent, 0, 100);
  if (!in.status()) return in.status();
  const std::string& c = s->currency;
  if (c.size() != 3 || !std::all_of(c.begin(), c.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
    return opk::Status::invalid("[plugin.job-usage-collection] currency = \"" + c +
                                "\": expected a currency code of three capital letters (EUR)");
  return opk::Status::ok();
}

double cents(double v) {
  return std::round(v * 100.0) / 100.0;
}

// A number for a summary: at most two decimals, no trailing zeros.
std::string amount_text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string count_text(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// A stored subscription, as collection needs it.
struct Subscription {
  std::string tenant, status, region;
};

// A region to collect.
struct Region {
  std::string id, url, currency;
  size_t active = 0;  // active subscriptions in scope
};

// What a region's fetcher reports to the run's thread, in order.
struct FetchEvent {
  enum class Kind { kNote, kPage, kEnd };
  Kind kind = Kind::kNote;
  std::string text;    // kNote: a warning line; kEnd: the error (empty: all pages read)
  int64_t number = 0;  // kPage: 1, 2, ...
  opk::Json page;
  int attempts = 0;
  int64_t elapsed_ms = 0;
  bool malformed = false;
};

// One region's fetched pages, handed from its fetcher to the run's thread.
class Feed {
 public:
  void push(FetchEvent e) {
    {
      std::lock_guard lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }
  FetchEvent pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !events_.empty(); });
    FetchEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
  }
  // Asks the fetcher to stop before its next request.
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<FetchEvent> events_;
  std::atomic<bool> stopped_{false};
};

// What collecting one region came to.
struct RegionResult {
  std::string status = "collected";  // collected, failed, skipped, cancelled
  int64_t pages = 0, items = 0, stored = 0, refused = 0, ignored = 0, unreported = 0;
  double quantity = 0, cost = 0;
  std::string error;
  // The usage rows it collected (stored unless a dry run), for billing.
  std::vector<opk::Json> rows;
};

class CollectionPlugin : public opk::Plugin {
 public:
  explicit CollectionPlugin(opk::Host host) : Plugin(host) {}
  // Bad settings refuse the plugin, naming the key.
  opk::Status init() override {
    if (opk::Status s = load_settings(host(), &settings_); !s) return s;
    return Provider::create(settings_.provider, &provider_);
  }
  const Settings& settings() const { return settings_; }
  const Provider& provider() const { return provider_; }

 private:
  Settings settings_;
  Provider provider_;
};

// One run: its parameters, what it read and what it found.
class Collector {
 public:
  explicit Collector(const CollectionPlugin& plugin) : plugin_(plugin) {}

  opk::Status run(const opk::RunContext& run) {
    const Settings& s = plugin_.settings();
    const opk::Host& host = plugin_.host();
    const opk::Records records(host);
    const std::string current = opk::records_month(host.now_ms());
    month_ = run.param<std::string>("month", current);
    if (!opk::valid_records_month(month_))
      return opk::Status::invalid("parameter month: expected a month YYYY-MM, got '" + month_ + "'");
    if (month_ > current)
      return opk::Status::invalid("parameter month: " + month_ + " is after the current month " + current +
                                  ": there is no usage to collect yet");
    const std::string only_region = run.param<std::string>("region", "");
    tenant_ = run.param<std::string>("tenant", std::string(run.target_tenant()));

    // The regions and subscriptions, from platform-records.
    std::vector<Region> regions;
    {
      auto step = run.step("read-records");
      opk::Status st = read_records(run, records, only_region, &regions);
      if (!st) {
        step.end(opk::Outcome::error, st.message());
        return st;
      }
      size_t active = 0;
      for (const auto& r : regions) active += r.active;
      step.end(unplaced_ ? opk::Outcome::warning : opk::Outcome::normal,
               count_text(regions.size(), "region", "regions") + " to collect, " +
                   count_text(active, "active subscription", "active subscriptions") +
                   (unplaced_ ? ", " + std::to_string(unplaced_) + " without a region left out" : ""));
    }
    run.info("collecting the usage of " + month_ + (tenant_.empty() ? "" : " for " + tenant_) + " from " +
             count_text(regions.size(), "region", "regions") + ", " + std::to_string(s.concurrency) + " at a time" +
             (run.dry_run() ? " (dry run: nothing is written)" : ""));

    // The providers, `concurrency` regions at a time; the pages are checked
    // and stored on this thread, one region's step after the other.
    std::vector<RegionResult> results(regions.size());
    std::vector<std::unique_ptr<Feed>> feeds;
    for (size_t i = 0; i < regions.size(); ++i) feeds.push_back(std::make_unique<Feed>());
    std::atomic<size_t> next{0};
    auto fetcher = [&] {
      for (;;) {
        const size_t i = next.fetch_add(1);
        if (i >= regions.size()) return;
        try {
          fetch_region(run, regions[i], *feeds[i]);
        } catch (const std::exception& e) {
          // The region's step must still end: its feed gets its end.
          FetchEvent end;
          end.kind = FetchEvent::Kind::kEnd;
          end.text = std::string("reading the provider failed: ") + e.what();
          feeds[i]->push(std::move(end));
        }
      }
    };
    std::vector<std::thread> threads;
    const size_t n = std::min<size_t>(static_cast<size_t>(s.concurrency), regions.size());
    for (size_t i = 0; i < n; ++i) threads.emplace_back(fetcher);
    bool cancelled = false;
    for (size_t i = 0; i < regions.size(); ++i) {
      if (!cancelled) cancelled = !collect_region(run, records, regions[i], *feeds[i], &results[i]);
      if (cancelled) {
        for (size_t k = i; k < regions.size(); ++k) feeds[k]->stop();
        if (results[i].status == "collected") results[i].status = "cancelled";
        for (size_t k = i + 1; k < regions.size(); ++k) results[k].status = "cancelled";
        break;
      }
      run.progress(70.0 * static_cast<double>(i + 1) / static_cast<double>(regions.size()),
                   "collected " + std::to_string(i + 1) + " of " + std::to_string(regions.size()) + " regions");
    }
    for (auto& t : threads) t.join();

    opk::Json billing = {{"lines", 0}, {"amount", opk::Json::object()}};
    opk::Json commissions = {{"rows", 0}, {"amount", opk::Json::object()}};
    bool write_failed = false;
    if (!cancelled) {
      std::vector<opk::Json> lines;
      cancelled = !generate_billing(run, records, regions, results, &lines, &billing, &write_failed);
      run.progress(85, "billing generated");
      if (!cancelled && !write_failed)
        cancelled = !generate_commissions(run, records, lines, &commissions, &write_failed);
    }

    // The output and the outcome.
    opk::Json out_regions = opk::Json::array();
    int failed = 0;
    opk::Json cost = opk::Json::object();
    int64_t stored = 0;
    for (size_t i = 0; i < regions.size(); ++i) {
      const RegionResult& r = results[i];
      failed += r.status == "failed" ? 1 : 0;
      stored += r.stored;
      if (r.status == "collected") cost[regions[i].currency] = cents(cost.value(regions[i].currency, 0.0) + r.cost);
      out_regions.push_back({{"region", regions[i].id},
                             {"status", r.status},
                             {"currency", regions[i].currency},
                             {"pages", r.pages},
                             {"items", r.items},
                             {"stored", r.stored},
                             {"refused", r.refused},
                             {"ignored", r.ignored},
                             {"unreported", r.unreported},
                             {"quantity", r.quantity},
                             {"cost", cents(r.cost)},
                             {"error", r.error.empty() ? opk::Json() : opk::Json(r.error)}});
    }
    opk::Json output = {{"month", month_},
                        {"dry_run", run.dry_run()},
                        {"tenant", tenant_.empty() ? opk::Json() : opk::Json(tenant_)},
                        {"regions", out_regions},
                        {"totals",
                         {{"regions", regions.size()},
                          {"failed_regions", failed},
                          {"usage_rows", stored},
                          {"cost", cost},
                          {"billing_lines", billing["lines"]},
                          {"billed", billing["amount"]},
                          {"commissions", commissions["rows"]},
                          {"commission_amount", commissions["amount"]}}},
                        {"warnings", warnings_},
                        {"warning_count", warning_count_}};
    run.set_output(output);
    std::string summary = std::string(run.dry_run() ? "dry run: " : "") + month_ + ": " +
                          count_text(static_cast<size_t>(stored), "usage row", "usage rows") + " from " +
                          count_text(regions.size() - static_cast<size_t>(failed), "region", "regions");
    if (failed) summary += ", " + std::to_string(failed) + " failed";
    summary += "; " + count_text(billing["lines"].get<size_t>(), "billing line", "billing lines") + ", " +
               count_text(commissions["rows"].get<size_t>(), "commission", "commissions");
    if (warning_count_) summary += "; " + count_text(warning_count_, "warning", "warnings");
    if (run.dry_run()) summary += "; nothing written";
    if (cancelled) {
      run.warn("cancelled: every page and batch written before the cancel is whole; the rest waits for the next run");
      run.set_result(opk::Outcome::error, "cancelled; " + summary);
      return opk::Status::cancelled();
    }
    const opk::Outcome outcome = (failed || write_failed)            ? opk::Outcome::error
                                 : (warning_count_ > 0 || unplaced_) ? opk::Outcome::warning
                                                                     : opk::Outcome::normal;
    run.set_result(outcome, summary);
    return opk::Status::ok();
  }

 private:
  void warn(const opk::RunContext& run, const std::string& line) {
    run.warn(line);
    ++warning_count_;
    if (warnings_.size() < kMaxOutputWarnings) warnings_.push_back(line);
  }

  // Reads the regions (one, with `only`) and every subscription; keeps the
  // regions that have a provider or active subscriptions in scope.
  opk::Status read_records(const opk::RunContext& run, const opk::Records& records, const std::string& only,
                           std::vector<Region>* out) {
    subscriptions_.clear();
    unplaced_ = 0;
    std::map<std::string, size_t> active;  // region -> active subscriptions in scope
    std::vector<std::string> unplaced;
    opk::Status st = records.list("subscriptions", opk::Json(), [&](const opk::Json& rows) {
      for (const auto& row : rows) {
        Subscription sub{row.value("tenant", ""), row.value("status", ""),
                         row.contains("region") && row["region"].is_string() ? row["region"].get<std::string>() : ""};
        const bool in_scope = sub.status == "active" && (tenant_.empty() || sub.tenant == tenant_);
        if (in_scope && sub.region.empty()) {
          ++unplaced_;
          if (unplaced.size() < 10) unplaced.push_back(row.value("id", ""));
        } else if (in_scope) {
          ++active[sub.region];
        }
        subscriptions_[row.value("id", "")] = std::move(sub);
      }
      return opk::Status::ok();
    });
    if (!st) return st;
    if (unplaced_) {
      std::string ids;
      for (const auto& id : unplaced) ids += (ids.empty() ? "" : ", ") + id;
      warn(run, std::to_string(unplaced_) + " active subscriptions have no region, so no provider reports their " +
                    "usage (" + ids + (unplaced_ > unplaced.size() ? ", ..." : "") +
                    "): set their region field in platform-records");
    }
    const Settings& s = plugin_.settings();
    st = records.list("regions", only.empty() ? opk::Json() : opk::Json{{"id", only}}, [&](const opk::Json& rows) {
      for (const auto& row : rows) {
        Region r;
        r.id = row.value("id", "");
        r.url = row.contains("usage_url") && row["usage_url"].is_string() ? row["usage_url"].get<std::string>() : "";
        r.currency =
            row.contains("currency") && row["currency"].is_string() ? row["currency"].get<std::string>() : s.currency;
        r.active = active.count(r.id) ? active[r.id] : 0;
        if (r.url.empty() && r.active == 0) continue;                     // nothing to collect, nobody to bill
        if (!tenant_.empty() && r.active == 0 && only.empty()) continue;  // not the tenant's region
        out->push_back(std::move(r));
      }
      return opk::Status::ok();
    });
    if (!st) return st;
    if (!only.empty() && out->empty()) {
      bool stored = false;
      st = records.list("regions", opk::Json{{"id", only}}, [&](const opk::Json& rows) {
        stored = !rows.empty();
        return opk::Status::ok();
      });
      if (!st) return st;
      if (!stored)
        return opk::Status::invalid("parameter region: no region '" + only + "' is stored in platform-records");
    }
    return opk::Status::ok();
  }

  // Reads every page of `r`'s provider into `feed`, on a fetcher thread;
  // ends with one kEnd event.
  void fetch_region(const opk::RunContext& run, const Region& r, Feed& feed) const {
    FetchEvent end;
    end.kind = FetchEvent::Kind::kEnd;
    if (r.url.empty()) {
      feed.push(std::move(end));
      return;
    }
    const Settings& s = plugin_.settings();
    std::string cursor;
    std::set<std::string> seen;
    for (int64_t number = 1;; ++number) {
      if (run.cancelled() || feed.stopped()) {
        end.text = "stopped before page " + std::to_string(number);
        break;
      }
      if (number > s.max_pages) {
        end.text = "more than " + std::to_string(s.max_pages) +
                   " pages ([plugin.job-usage-collection] max_pages); the rest was not read";
        break;
      }
      auto before_retry = [&](const std::string& why, int64_t pause_ms) {
        FetchEvent note;
        note.text = "page " + std::to_string(number) + ": " + why + "; retrying in " + std::to_string(pause_ms) + " ms";
        feed.push(std::move(note));
        return !feed.stopped() && run.wait(std::chrono::milliseconds(pause_ms)).is_ok();
      };
      PageAnswer a = plugin_.provider().page(r.url, month_, cursor, before_retry);
      if (!a.ok) {
        end.text = "page " + std::to_string(number) + ": " + a.error;
        end.malformed = a.malformed;
        break;
      }
      const opk::Json next = a.page.value("next", opk::Json());
      FetchEvent page;
      page.kind = FetchEvent::Kind::kPage;
      page.number = number;
      page.attempts = a.attempts;
      page.elapsed_ms = a.elapsed_ms;
      page.page = std::move(a.page);
      feed.push(std::move(page));
      if (!next.is_string()) break;
      cursor = next.get<std::string>();
      if (!seen.insert(cursor).second) {
        end.text = "page " + std::to_string(number) + ": next: the cursor '" + printable(cursor, 60) +
                   "' came before (the pages loop)";
        end.malformed = true;
        break;
      }
    }
    feed.push(std::move(end));
  }

  // Checks and stores `r`'s pages as its fetcher hands them over, in the
  // region's own step. False when the run was cancelled.
  bool collect_region(const opk::RunContext& run, const opk::Records& records, const Region& r, Feed& feed,
                      RegionResult* out) {
    auto step = run.step("collect-usage: " + r.id);
    const auto start = std::chrono::steady_clock::now();
    const std::string where = "region " + r.id;
    if (r.url.empty()) {
      out->status = "skipped";
      out->unreported = static_cast<int64_t>(r.active);
      const std::string why = where + ": no usage_url in its region record, so the usage of its " +
                              count_text(r.active, "active subscription", "active subscriptions") + " is not collected";
      warn(run, why);
      feed.pop();
      step.end(opk::Outcome::warning,
               "no provider: " + count_text(r.active, "subscription", "subscriptions") + " not collected");
      return true;
    }
    if (std::string bad = check_provider_url(r.url); !bad.empty()) {
      feed.stop();
      feed.pop();
      out->status = "failed";
      out->error = "usage_url '" + printable(r.url, 200) + "' " + bad;
      run.error(where + ", usage_url: '" + printable(r.url, 200) + "' " + bad);
      step.end(opk::Outcome::error, out->error);
      return true;
    }
    run.info(where + ": GET " + printable(r.url, 200) + "?month=" + month_ + ", currency " + r.currency + ", " +
             count_text(r.active, "active subscription", "active subscriptions"));
    std::map<std::string, int64_t> first_page;  // subscription -> page it came on
    bool cancelled = false;
    for (;;) {
      FetchEvent e = feed.pop();
      if (e.kind == FetchEvent::Kind::kNote) {
        run.warn(where + ", " + e.text);
        continue;
      }
      if (e.kind == FetchEvent::Kind::kEnd) {
        if (!e.text.empty() && out->status == "collected") {
          if (run.cancelled()) {
            cancelled = true;
            out->status = "cancelled";
          } else {
            out->status = "failed";
            out->error = e.text;
            run.error(where + ", " + e.text + (e.malformed ? " (a malformed answer)" : "") + "; " +
                      count_text(static_cast<size_t>(out->pages), "page", "pages") + " before it are stored and stay");
          }
        }
        break;
      }
      if (out->status != "collected") continue;  // draining after a failure
      if (run.cancelled()) {
        cancelled = true;
        out->status = "cancelled";
        feed.stop();
        continue;
      }
      if (!store_page(run, records, r, e, &first_page, out)) {
        feed.stop();
        continue;
      }
    }
    for (const auto& [id, sub] : subscriptions_)
      if (sub.region == r.id && sub.status == "active" && (tenant_.empty() || sub.tenant == tenant_) &&
          !first_page.count(id))
        ++out->unreported;
    if (out->unreported && out->status == "collected")
      run.info(where + ": " +
               count_text(static_cast<size_t>(out->unreported), "active subscription", "active subscriptions") +
               " reported no usage for " + month_);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    const std::string counts = count_text(static_cast<size_t>(out->stored), "subscription", "subscriptions") +
                               (run.dry_run() ? " collected (dry run)" : " stored") + " from " +
                               count_text(static_cast<size_t>(out->pages), "page", "pages") + " in " +
                               std::to_string(ms) + " ms, cost " + amount_text(out->cost) + " " + r.currency +
                               (out->refused ? ", " + std::to_string(out->refused) + " items refused" : "");
    if (cancelled) {
      step.end(opk::Outcome::error, "cancelled after " + counts);
      return false;
    }
    if (out->status == "failed") {
      step.end(opk::Outcome::error, out->error + " (" + counts + ")");
      return true;
    }
    step.end(out->refused ? opk::Outcome::warning : opk::Outcome::normal, counts);
    return true;
  }

  // Checks one page's items and stores the good ones in one transaction.
  // False when the page could not be stored (the region then fails).
  bool store_page(const opk::RunContext& run, const opk::Records& records, const Region& r, const FetchEvent& e,
                  std::map<std::string, int64_t>* first_page, RegionResult* out) {
    const std::string at = "region " + r.id + ", page " + std::to_string(e.number);
    const opk::Json& items = e.page["items"];
    if (items.size() > kMaxPageItems) {
      out->status = "failed";
      out->error = "page " + std::to_string(e.number) + ": items: " + std::to_string(items.size()) +
                   " items, more than the " + std::to_string(kMaxPageItems) + " a page may hold";
      run.error("region " + r.id + ", " + out->error + "; the page is not stored");
      return false;
    }
    ++out->pages;
    opk::Json rows = opk::Json::array();
    double quantity = 0, cost = 0;
    for (size_t j = 0; j < items.size(); ++j) {
      const opk::Json& item = items[j];
      ++out->items;
      std::string field = at + ", items[" + std::to_string(j) + "]";
      auto refuse = [&](const std::string& why) {
        ++out->refused;
        warn(run, field + why + "; not stored");
      };
      if (!item.is_object()) {
        refuse(std::string(": expected an object, got ") + item.type_name());
        continue;
      }
      const auto sub_it = item.find("subscription");
      if (sub_it == item.end() || !sub_it->is_string() || sub_it->get<std::string>().empty()) {
        refuse(".subscription: required, a subscription id");
        continue;
      }
      const std::string id = sub_it->get<std::string>();
      field += " (subscription " + printable(id, 128) + ")";
      const auto known = subscriptions_.find(id);
      if (known == subscriptions_.end()) {
        refuse(".subscription: unknown subscription: platform-records has no subscription '" + printable(id, 128) +
               "'");
        continue;
      }
      const Subscription& sub = known->second;
      if (!tenant_.empty() && sub.tenant != tenant_) {
        ++out->ignored;  // another tenant's: not this run's
        continue;
      }
      if (sub.region != r.id) {
        refuse(".subscription: belongs to " + (sub.region.empty() ? std::string("no region") : "region " + sub.region) +
               ", not " + r.id);
        continue;
      }
      if (sub.status != "active") {
        refuse(".subscription: the subscription is " + sub.status + ", not active");
        continue;
      }
      auto number = [&](const char* name, double* v) {
        const auto it = item.find(name);
        if (it == item.end() || !it->is_number()) {
          refuse("." + std::string(name) + ": expected a number, got " +
                 (it == item.end() ? std::string("nothing") : printable(it->dump(), 60)));
          return false;
        }
        *v = it->get<double>();
        if (!std::isfinite(*v) || *v < 0) {
          refuse("." + std::string(name) + ": must be 0 or more, got " + printable(it->dump(), 60));
          return false;
        }
        return true;
      };
      double q = 0, c = 0;
      if (!number("quantity", &q) || !number("cost", &c)) continue;
      const auto cur = item.find("currency");
      if (cur != item.end() && !cur->is_null() && (!cur->is_string() || cur->get<std::string>() != r.currency)) {
        refuse(".currency: " + printable(cur->is_string() ? "'" + cur->get<std::string>() + "'" : cur->dump(), 60) +
               " does not match the region's currency " + r.currency);
        continue;
      }
      if (auto [it, fresh] = first_page->emplace(id, e.number); !fresh) {
        refuse(".subscription: reported again (first on page " + std::to_string(it->second) +
               "); the first report is kept");
        continue;
      }
      rows.push_back({{"subscription", id}, {"month", month_}, {"quantity", q}, {"cost", c}});
      quantity += q;
      cost += c;
    }
    if (!rows.empty() && !run.dry_run()) {
      opk::Json answer;
      if (opk::Status st = records.upsert("usage", rows, &answer); !st) {
        out->status = "failed";
        out->error = "page " + std::to_string(e.number) + " not stored: " + st.message();
        run.error(at + ": not stored (" + st.message() + "); the pages before it are stored and stay");
        return false;
      }
      run.info(at + ": " + count_text(rows.size(), "item", "items") + " of " + std::to_string(items.size()) +
               " stored (" + std::to_string(answer.value("inserted", 0)) + " new, " +
               std::to_string(answer.value("updated", 0)) + " updated, " +
               std::to_string(answer.value("unchanged", 0)) + " unchanged) in " + std::to_string(e.elapsed_ms) + " ms" +
               (e.attempts > 1 ? " after " + std::to_string(e.attempts) + " attempts" : ""));
    } else {
      run.info(at + ": " + count_text(rows.size(), "item", "items") + " of " + std::to_string(items.size()) +
               (run.dry_run() ? " would be stored" : " to store") + " (read in " + std::to_string(e.elapsed_ms) +
               " ms)");
    }
    out->stored += static_cast<int64_t>(rows.size());
    out->quantity += quantity;
    out->cost += cost;
    for (auto& row : rows) out->rows.push_back(std::move(row));
    return true;
  }

  // Upserts `rows` of `kind` 1000 at a time, each batch one transaction,
  // checking for a cancel between them. False when cancelled; *failed on
  // a refused batch (the batches before it stay).
  bool write_batches(const opk::RunContext& run, const opk::Records& records, const char* kind,
                     const std::vector<opk::Json>& rows, bool* failed, std::string* why) {
    for (size_t start = 0; start < rows.size(); start += kMaxPageItems) {
      if (run.cancelled()) return false;
      opk::Json batch = opk::Json::array();
      for (size_t k = start; k < rows.size() && k < start + kMaxPageItems; ++k) batch.push_back(rows[k]);
      if (opk::Status st = records.upsert(kind, batch, nullptr); !st) {
        *failed = true;
        *why = st.message() + " (rows " + std::to_string(start) + ".." + std::to_string(start + batch.size() - 1) +
               "; the " + std::to_string(start) + " before are written)";
        return true;
      }
    }
    return true;
  }

  // One billing line per subscription collected whole this run. False when
  // cancelled.
  bool generate_billing(const opk::RunContext& run, const opk::Records& records, const std::vector<Region>& regions,
                        const std::vector<RegionResult>& results, std::vector<opk::Json>* lines, opk::Json* summary,
                        bool* failed) {
    auto step = run.step("generate-billing");
    opk::Json amount = opk::Json::object();
    std::vector<std::string> left_out;
    for (size_t i = 0; i < regions.size(); ++i) {
      const RegionResult& r = results[i];
      if (r.status != "collected") {
        if (r.status == "failed") left_out.push_back(regions[i].id);
        continue;
      }
      for (const auto& row : r.rows) {
        const std::string id = row["subscription"].get<std::string>();
        const double cost = cents(row["cost"].get<double>());
        lines->push_back({{"subscription", id},
                          {"month", month_},
                          {"tenant", subscriptions_[id].tenant},
                          {"region", regions[i].id},
                          {"quantity", row["quantity"]},
                          {"amount", cost},
                          {"currency", regions[i].currency},
                          {"run_id", run.run_id()}});
        amount[regions[i].currency] = cents(amount.value(regions[i].currency, 0.0) + cost);
      }
    }
    for (const auto& id : left_out)
      warn(run, "region " + id + ": no billing lines: its usage was not collected whole this run");
    std::string totals;
    for (const auto& [currency, v] : amount.items())
      totals += (totals.empty() ? "" : ", ") + amount_text(v.get<double>()) + " " + currency;
    const std::string done = count_text(lines->size(), "billing line", "billing lines") + " for " + month_ +
                             (totals.empty() ? "" : " (" + totals + ")");
    if (run.dry_run()) {
      run.info("dry run: would write " + done);
    } else {
      std::string why;
      if (!write_batches(run, records, "billing_lines", *lines, failed, &why)) {
        step.end(opk::Outcome::error, "cancelled while writing " + done);
        return false;
      }
      if (*failed) {
        run.error("billing lines not written: " + why);
        step.end(opk::Outcome::error, "not written: " + why);
        lines->clear();
        return true;
      }
      run.info("wrote " + done + ", each keyed by subscription and month (a rerun replaces them)");
    }
    *summary = {{"lines", lines->size()}, {"amount", amount}};
    step.end(left_out.empty() ? opk::Outcome::normal : opk::Outcome::warning,
             (run.dry_run() ? "would write " : "") + done +
                 (left_out.empty() ? "" : "; " + std::to_string(left_out.size()) + " failed regions left out"));
    return true;
  }

  // The partner's and distributor's commission on each billing line. False
  // when cancelled.
  bool generate_commissions(const opk::RunContext& run, const opk::Records& records,
                            const std::vector<opk::Json>& lines, opk::Json* summary, bool* failed) {
    auto step = run.step("generate-commissions");
    const Settings& s = plugin_.settings();
    if (s.partner_percent <= 0 && s.distributor_percent <= 0) {
      run.info(
          "no commission rates are configured ([plugin.job-usage-collection] partner_percent and "
          "distributor_percent are 0)");
      step.end(opk::Outcome::normal, "no rates configured: no commissions");
      return true;
    }
    const auto* identity = plugin_.host().extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    if (identity == nullptr || !opk::detail::has(identity, &opk_identity_v1::node_path) ||
        identity->node_path == nullptr) {
      *failed = true;
      run.error("the kernel's identity service cannot name a tenant's ancestors (opk.identity/1 node_path, ABI 1.6)");
      step.end(opk::Outcome::error, "no hierarchy: no commissions");
      return true;
    }
    // tenant -> {partner, distributor}, "" where it has none; nullopt: unknown.
    std::map<std::string, std::optional<std::pair<std::string, std::string>>> parties;
    std::vector<opk::Json> rows;
    opk::Json amount = opk::Json::object();
    for (const auto& line : lines) {
      const std::string tenant = line["tenant"].get<std::string>();
      auto it = parties.find(tenant);
      if (it == parties.end()) {
        char* path = nullptr;
        const opk_status st = identity->node_path(plugin_.host().raw(), tenant.c_str(), &path);
        const opk::Json doc = path ? opk::Json::parse(path, nullptr, false) : opk::Json();
        if (path) plugin_.host().free(path);
        std::optional<std::pair<std::string, std::string>> found;
        if (st == OPK_OK && doc.is_array()) {
          found.emplace();
          for (const auto& node : doc) {
            const std::string n = node.is_string() ? node.get<std::string>() : "";
            if (n.rfind("partner:", 0) == 0) found->first = n;
            if (n.rfind("distributor:", 0) == 0) found->second = n;
          }
          if (found->first.empty() && s.partner_percent > 0)
            run.info(tenant + " has no partner above it: no partner commission on its lines");
          if (found->second.empty() && s.distributor_percent > 0)
            run.info(tenant + " has no distributor above it: no distributor commission on its lines");
        } else {
          warn(run, tenant + ": not in the kernel's hierarchy (status " + std::to_string(st) +
                        "): no commissions on its billing lines");
        }
        it = parties.emplace(tenant, found).first;
      }
      if (!it->second) continue;
      const double base = line["amount"].get<double>();
      for (const auto& [role, party, percent] :
           {std::tuple{"partner", it->second->first, s.partner_percent},
            std::tuple{"distributor", it->second->second, s.distributor_percent}}) {
        if (party.empty() || percent <= 0) continue;
        const double v = cents(base * percent / 100.0);
        rows.push_back({{"subscription", line["subscription"]},
                        {"month", month_},
                        {"role", role},
                        {"party", party},
                        {"tenant", tenant},
                        {"percent", percent},
                        {"base", base},
                        {"amount", v},
                        {"currency", line["currency"]},
                        {"run_id", run.run_id()}});
        amount[line["currency"].get<std::string>()] = cents(amount.value(line["currency"].get<std::string>(), 0.0) + v);
      }
    }
    std::string totals;
    for (const auto& [currency, v] : amount.items())
      totals += (totals.empty() ? "" : ", ") + amount_text(v.get<double>()) + " " + currency;
    const std::string done = count_text(rows.size(), "commission", "commissions") + " at " +
                             amount_text(s.partner_percent) + "% (partner) and " + amount_text(s.distributor_percent) +
                             "% (distributor)" + (totals.empty() ? "" : ": " + totals);
    if (run.dry_run()) {
      run.info("dry run: would write " + done);
    } else {
      std::string why;
      if (!write_batches(run, records, "commissions", rows, failed, &why)) {
        step.end(opk::Outcome::error, "cancelled while writing " + done);
        return false;
      }
      if (*failed) {
        run.error("commissions not written: " + why);
        step.end(opk::Outcome::error, "not written: " + why);
        return true;
      }
      run.info("wrote " + done + ", each keyed by subscription, month and role (a rerun replaces them)");
    }
    *summary = {{"rows", rows.size()}, {"amount", amount}};
    step.end(opk::Outcome::normal, (run.dry_run() ? "would write " : "") + done);
    return true;
  }

  const CollectionPlugin& plugin_;
  std::string month_, tenant_;
  // Every stored subscription, by id.
  std::map<std::string, Subscription> subscriptions_;
  // Active subscriptions in scope without a region.
  size_t unplaced_ = 0;
  // The first warnings, for the output; warning_count_ counts them all.
  opk::Json warnings_ = opk::Json::array();
  size_t warning_count_ = 0;
};

class CollectionJob : public opk::Job {
 public:
  explicit CollectionJob(opk::Plugin& p) : plugin_(static_cast<CollectionPlugin&>(p)) {}

  // Each run has its own Collector, so runs never share state.
  opk::Status run(opk::RunContext& run) override { return Collector(plugin_).run(run); }

  void cancel(opk::RunContext& run) override {
    run.info("cancel requested: stopping after the page or batch under way");
  }

 private:
  CollectionPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("job-usage-collection", "Usage collection", "1.0.0", "Opskernel",
                  "Collects the month's usage from each region's provider, generates billing and commissions");
  m.job<CollectionJob>({.id = "usage-collection",
                        .title = "Usage collection",
                        .description = "Collects current-month usage, generates billing, and generates commissions.",
                        .owner = "platform-team",
                        .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun | opk::kRequeue,
                        .params_schema_json = R"json({"type":"object","additionalProperties":false,
          "properties":{
            "month":{"type":"string","pattern":"^[0-9]{4}-(0[1-9]|1[0-2])$",
                     "description":"The month to collect (YYYY-MM); default the current month (UTC)"},
            "region":{"type":"string","pattern":"^[A-Za-z0-9._-]{1,128}$",
                      "description":"Collect only this region (its id in platform-records)"},
            "tenant":{"type":"string","pattern":"^tenant:[A-Za-z0-9._-]{1,128}$",
                      "description":"Collect and bill only this tenant's subscriptions"}}})json",
                        .default_schedule = "15 * * * *",
                        .target_duration_ms = 120000,
                        .timeout_ms = 3600000,
                        .priority = 5,
                        .worker_pool = "default",
                        .actions = {{"read-records", "Read the regions and subscriptions"},
                                    {"collect-usage",
                                     "Collect one region's usage (one step per region: "
                                     "collect-usage: <region>)"},
                                    {"generate-billing", "Generate billing lines"},
                                    {"generate-commissions", "Generate partner and distributor commissions"}}});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace
}  // namespace usage_collection

OPK_PLUGIN(usage_collection::CollectionPlugin, usage_collection::describe);
