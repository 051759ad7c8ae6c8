// The run history and the overview at scale on a real kernel over real HTTP,
// on both stores: GET /api/v1/runs a page at a time through its cursors
// (every run once, in order, pages that stay put while runs are added, the
// page before), its filters (job, type, state, trigger, time range) and a
// tenant's scope; GET /api/v1/overview's counts over more runs than a list
// holds, against the lists, and a tenant's. The runs are written through the
// store (completed imports, and runs of a type no plugin provides), not run.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include <set>

#include "jobs/run.h"
#include "support/admin_feature.h"

namespace opk {
namespace {

using Poco::JSON::Object;

class RunsPage : public test::FeatureKernelTest<::testing::TestWithParam<std::string>> {
 protected:
  void SetUp() override {
    configure({test::bundled("hello")});
    ASSERT_NO_FATAL_FAILURE(use_backend(GetParam()));
    ASSERT_NO_FATAL_FAILURE(start());
    admin_ = tokens_["pat"];
    tenant_ = tokens_["ursula"];  // a TenantUser of tenant:t
  }

  // Writes `n` completed runs created `age_ms` ago (1 ms apart), every
  // `retry_every`th by retry, the others by schedule; of type `type`, for
  // `tenant` if given. Their ids, oldest first.
  std::vector<int64_t> add_runs(int n, int64_t age_ms, const std::string& type = "hello",
                                const std::string& tenant = "", const std::string& outcome = "NORMAL",
                                int retry_every = 10) {
    std::vector<store::RunRow> rows(static_cast<size_t>(n));
    const int64_t now = jobs::now_ms();
    for (int i = 0; i < n; ++i) {
      auto& r = rows[static_cast<size_t>(i)];
      r.job_type = type;
      r.target_tenant = tenant;
      r.trigger = i % retry_every == 0 ? "retry" : "schedule";
      r.phase = store::kCompleted;
      r.outcome = outcome;
      r.created_ms = r.scheduled_ms = now - age_ms + i;
      r.started_ms = r.created_ms;
      r.finished_ms = r.created_ms + 10;
    }
    EXPECT_TRUE(kernel_->store()->create_runs(&rows));
    std::vector<int64_t> ids;
    for (auto& r : rows) ids.push_back(r.id);
    return ids;
  }

  // One page: its ids in the order listed, and its cursors ("" when absent).
  struct Page {
    std::vector<int64_t> ids;
    std::string next, prev;
  };
  Page page(const std::string& query, const std::string& token = "") {
    auto r = test::http_request(port_, "GET", "/api/v1/runs?" + query, token.empty() ? admin_ : token);
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    Page p;
    if (r.status != 200) return p;
    auto o = r.json();
    auto items = o->getArray("items");
    for (size_t i = 0; i < items->size(); ++i) p.ids.push_back(items->getObject(i)->getValue<int64_t>("id"));
    if (o->has("next_cursor")) p.next = o->getValue<std::string>("next_cursor");
    if (o->has("prev_cursor")) p.prev = o->getValue<std::string>("prev_cursor");
    return p;
  }

  // Every page of `query` from the first, following next_cursor; the ids.
  std::vector<int64_t> all_pages(const std::string& query, const std::string& token = "", int* pages = nullptr) {
    std::vector<int64_t> ids;
    Page p = page(query, token);
    int n = 1;
    for (;; ++n) {
      ids.insert(ids.end(), p.ids.begin(), p.ids.end());
      if (p.next.empty() || n > 100) break;
      p = page(query + "&cursor=" + p.next, token);
    }
    if (pages) *pages = n;
    return ids;
  }

  std::string admin_, tenant_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RunsPage, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

TEST_P(RunsPage, CursorsPageEveryRunOnceAndFiltersNarrowThem) {
  const int64_t hour = 3600000;
  const auto old = add_runs(60, 48 * hour, "hello", "t");  // two days ago, for the tenant
  const auto recent = add_runs(70, hour);                  // an hour ago
  std::vector<int64_t> newest_first(old.begin(), old.end());
  newest_first.insert(newest_first.end(), recent.begin(), recent.end());
  std::reverse(newest_first.begin(), newest_first.end());

  // Every run once, newest first, in three pages of at most 50.
  int pages = 0;
  EXPECT_EQ(all_pages("limit=50", "", &pages), newest_first);
  EXPECT_EQ(pages, 3);
  Page first = page("limit=50");
  EXPECT_TRUE(first.prev.empty()) << first.prev;
  ASSERT_FALSE(first.next.empty());

  // Runs added after the first page was read shift nothing: the second page
  // is the same, and the page before it is the first page again.
  Page second = page("limit=50&cursor=" + first.next);
  const auto added = add_runs(5, 0);
  Page again = page("limit=50&cursor=" + first.next);
  EXPECT_EQ(again.ids, second.ids);
  EXPECT_EQ(std::vector<int64_t>(newest_first.begin() + 50, newest_first.begin() + 100), second.ids);
  ASSERT_FALSE(second.prev.empty());
  Page back = page("limit=50&cursor=" + second.prev);
  EXPECT_EQ(back.ids, first.ids);
  // Before that come the runs added meanwhile, and nothing before them.
  ASSERT_FALSE(back.prev.empty());
  Page newer = page("limit=50&cursor=" + back.prev);
  EXPECT_EQ(newer.ids, std::vector<int64_t>(added.rbegin(), added.rend()));
  EXPECT_TRUE(newer.prev.empty());
  EXPECT_FALSE(newer.next.empty());
  // The last page says nothing follows.
  Page last = page("limit=50&cursor=" + second.next);
  EXPECT_EQ(last.ids.size(), 30u);
  EXPECT_TRUE(last.next.empty());

  // Filters: trigger, type, time range; and paged with them.
  std::vector<int64_t> retried;
  for (auto id : newest_first)
    if ((std::find(old.begin(), old.end(), id) != old.end() && (id - old.front()) % 10 == 0) ||
        (std::find(recent.begin(), recent.end(), id) != recent.end() && (id - recent.front()) % 10 == 0))
      retried.push_back(id);
  retried.insert(retried.begin(), added.front());  // the first of the added is a retry too
  EXPECT_EQ(all_pages("limit=3&trigger=retry"), retried);
  EXPECT_TRUE(page("job_type=echo").ids.empty());
  const int64_t now = jobs::now_ms();
  EXPECT_EQ(all_pages("limit=20&since_ms=" + std::to_string(now - 72 * hour) +
                      "&until_ms=" + std::to_string(now - 24 * hour)),
            std::vector<int64_t>(old.rbegin(), old.rend()));
  EXPECT_EQ(page("limit=1000&status=error").ids.size(), 0u);

  // A tenant's user pages through its tenant's runs only.
  EXPECT_EQ(all_pages("limit=7", tenant_), std::vector<int64_t>(old.rbegin(), old.rend()));

  // Among 600 more runs, one in twenty is the tenant's: by its target
  // tenant, by a job scoped to it, or started in its scope; a job scoped to
  // the platform hides its runs for the tenant even when they target it.
  store::ScheduledJob job;
  job.job_type = "hello";
  job.planning = "disabled";
  job.enabled = false;
  job.id = "acme-report";
  job.scope = "tenant:t";
  ASSERT_TRUE(kernel_->store()->create_scheduled_job(job));
  job.id = "platform-report";
  job.scope = "platform";
  ASSERT_TRUE(kernel_->store()->create_scheduled_job(job));
  std::vector<store::RunRow> rows(600);
  for (int i = 0; i < 600; ++i) {
    auto& r = rows[static_cast<size_t>(i)];
    r.job_type = "hello";
    r.trigger = "manual";
    r.phase = store::kCompleted;
    r.outcome = store::kNormal;
    r.created_ms = r.scheduled_ms = r.started_ms = now - 2 * hour + i;
    r.finished_ms = r.created_ms + 10;
    r.target_tenant = i % 60 == 0 || i % 60 == 30 ? "t" : i % 60 != 40 && i % 7 == 0 ? "globex" : "";
    r.scheduled_job_id = i % 60 == 20 ? "acme-report" : i % 60 == 30 || i % 60 == 50 ? "platform-report" : "";
    r.scope = i % 60 == 40 ? "tenant:t" : i % 2 ? "partner:p" : "";
  }
  ASSERT_TRUE(kernel_->store()->create_runs(&rows));
  std::vector<int64_t> seen;  // the tenant's, newest first
  for (int i = 599; i >= 0; --i)
    if (i % 20 == 0) seen.push_back(rows[static_cast<size_t>(i)].id);
  seen.insert(seen.end(), old.rbegin(), old.rend());
  ASSERT_EQ(seen.size(), 90u);
  // Full pages of seven, the last with the six left and no Next; the page
  // before a page is the one read before it.
  std::vector<int64_t> listed;
  std::vector<Page> read;
  Page p = page("limit=7", tenant_);
  for (int n = 0; n < 20; ++n) {
    read.push_back(p);
    listed.insert(listed.end(), p.ids.begin(), p.ids.end());
    if (p.next.empty()) break;
    EXPECT_EQ(p.ids.size(), 7u) << "page " << n;
    p = page("limit=7&cursor=" + p.next, tenant_);
  }
  EXPECT_EQ(listed, seen);
  ASSERT_EQ(read.size(), 13u);
  EXPECT_EQ(read.back().ids.size(), 6u);
  ASSERT_FALSE(read[5].prev.empty());
  EXPECT_EQ(page("limit=7&cursor=" + read[5].prev, tenant_).ids, read[4].ids);
  // Filtered as well: the tenant's runs of the job scoped to it.
  EXPECT_EQ(all_pages("limit=4&job_id=acme-report", tenant_).size(), 10u);
  EXPECT_TRUE(all_pages("limit=4&job_id=platform-report", tenant_).empty());
  // A partner's user sees the partner's and its tenant's (all 600 started in
  // the partner's scope but those of a job or a tenant elsewhere).
  ASSERT_TRUE(kernel_->identity()->add_user({"paula", "", "PartnerAdministrator", "partner:p"}));
  std::string partner;
  ASSERT_TRUE(kernel_->identity()->issue_token("paula", 0, "test", &partner));
  size_t expected = 0;
  for (const auto& r : rows)
    expected +=
        r.scheduled_job_id == "acme-report" ||
        (r.scheduled_job_id.empty() && (r.target_tenant == "t" || (r.target_tenant.empty() && r.scope == "partner:p") ||
                                        (r.target_tenant.empty() && r.scope == "tenant:t")));
  EXPECT_EQ(all_pages("limit=1000&since_ms=" + std::to_string(now - 3 * hour), partner).size(), expected);

  // Bad input is named.
  for (auto [q, field] : std::vector<std::pair<const char*, const char*>>{{"cursor=x12", "cursor"},
                                                                          {"cursor=o", "cursor"},
                                                                          {"cursor=n0", "cursor"},
                                                                          {"cursor=o99999999999999999999", "cursor"},
                                                                          {"trigger=cron", "trigger"},
                                                                          {"since_ms=10&until_ms=5", "until_ms"}}) {
    auto r = test::http_request(port_, "GET", std::string("/api/v1/runs?") + q, admin_);
    EXPECT_EQ(r.status, 422) << q << ": " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << r.body;
  }
}

// `n` runs written through the store: completed `finished_ago_ms` ago (1 ms
// apart) with `outcome` and `summary`, or PENDING (phase) and scheduled
// `finished_ago_ms` ago (negative: later). Their ids.
std::vector<int64_t> write_runs(Kernel& k, int n, const std::string& phase, int64_t finished_ago_ms,
                                const std::string& outcome = store::kNormal, const std::string& job_id = "",
                                const std::string& type = "hello", const std::string& tenant = "",
                                const std::string& summary = "", bool hold = false) {
  std::vector<store::RunRow> rows(static_cast<size_t>(n));
  const int64_t now = jobs::now_ms();
  for (int i = 0; i < n; ++i) {
    auto& r = rows[static_cast<size_t>(i)];
    r.job_type = type;
    r.scheduled_job_id = job_id;
    r.target_tenant = tenant;
    r.phase = phase;
    r.outcome = outcome;
    r.summary = summary;
    r.hold = hold;
    if (phase == store::kCompleted) {
      r.finished_ms = now - finished_ago_ms + i;
      r.created_ms = r.scheduled_ms = r.started_ms = r.finished_ms - 10;
    } else {
      r.created_ms = now;
      r.scheduled_ms = now - finished_ago_ms + i;
    }
  }
  EXPECT_TRUE(k.store()->create_runs(&rows));
  std::vector<int64_t> ids;
  for (auto& r : rows) ids.push_back(r.id);
  return ids;
}

TEST_P(RunsPage, TheOverviewCountsMoreRunsThanAListHoldsAsTheListsDo) {
  const int64_t hour = 3600000;
  // 1,250 runs completed half an hour ago, 100 failures 30 hours ago.
  write_runs(*kernel_, 700, store::kCompleted, hour / 2);
  const auto nightly =
      write_runs(*kernel_, 350, store::kCompleted, hour / 2, store::kError, "nightly", "hello", "", "disk full");
  write_runs(*kernel_, 100, store::kCompleted, hour / 2, store::kWarning);
  const auto acme = write_runs(*kernel_, 60, store::kCompleted, hour / 2, store::kError, "", "echo", "t", "timeout");
  const auto cancelled = write_runs(*kernel_, 40, store::kCompleted, hour / 2, store::kError);
  ASSERT_TRUE(kernel_->store()->execute(
      "UPDATE run_state SET end_cause = 'operator', end_by = 'pat', cancelled_by = 'pat' WHERE id >= $1 AND id <= $2",
      {std::to_string(cancelled.front()), std::to_string(cancelled.back())}, nullptr));
  const auto nightly_old = write_runs(*kernel_, 100, store::kCompleted, 30 * hour, store::kError, "nightly");
  // Waiting runs of a type no plugin provides (so none starts): due, later, held.
  const auto due = write_runs(*kernel_, 20, store::kPending, 60000, "", "", "not-loaded");
  write_runs(*kernel_, 7, store::kPending, -hour, "", "", "not-loaded");
  write_runs(*kernel_, 3, store::kPending, 120000, "", "", "not-loaded", "", "", true);

  auto r = test::http_request(port_, "GET", "/api/v1/overview", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = r.json();
  auto day = o->getObject("day");
  EXPECT_EQ(day->getValue<int64_t>("normal"), 700);
  EXPECT_EQ(day->getValue<int64_t>("warning"), 100);
  EXPECT_EQ(day->getValue<int64_t>("error"), 410);
  EXPECT_EQ(day->getValue<int64_t>("cancelled"), 40);
  int64_t per_hour = 0;
  auto hours = o->getArray("per_hour");
  ASSERT_EQ(hours->size(), 24u);
  for (size_t i = 0; i < hours->size(); ++i) per_hour += hours->getObject(i)->getValue<int64_t>("completed");
  EXPECT_EQ(per_hour, 1250);
  EXPECT_EQ(o->getObject("now")->getValue<int64_t>("pending"), 30);
  EXPECT_EQ(o->getObject("now")->getValue<int64_t>("running"), 0);
  auto pools = o->getArray("pools");
  ASSERT_GE(pools->size(), 1u) << r.body;
  auto pool = pools->getObject(0);
  EXPECT_EQ(pool->getValue<std::string>("pool"), "default");
  EXPECT_EQ(pool->getValue<int64_t>("queued"), 20);
  EXPECT_EQ(pool->getValue<int64_t>("delayed"), 7);
  EXPECT_EQ(pool->getValue<int64_t>("held"), 3);
  store::RunRow oldest;
  ASSERT_TRUE(kernel_->store()->get_run(due.front(), &oldest));
  EXPECT_EQ(pool->getValue<int64_t>("oldest_waiting_ms"), oldest.scheduled_ms);
  auto failures = o->getArray("failures");
  ASSERT_EQ(failures->size(), 2u) << r.body;
  EXPECT_EQ(failures->getObject(0)->getValue<std::string>("job_id"), "nightly");
  EXPECT_EQ(failures->getObject(0)->getValue<int64_t>("count"), 350);
  EXPECT_EQ(failures->getObject(0)->getObject("last")->getValue<int64_t>("id"), nightly.back());
  EXPECT_EQ(failures->getObject(0)->getObject("last")->getValue<std::string>("summary"), "disk full");
  EXPECT_EQ(failures->getObject(1)->getValue<std::string>("job_type"), "echo");
  EXPECT_EQ(failures->getObject(1)->getValue<int64_t>("count"), 60);
  // Every group's last failure, read in one go, with its finish and summary.
  store::RunRow last_acme;
  ASSERT_TRUE(kernel_->store()->get_run(acme.back(), &last_acme));
  auto acme_last = failures->getObject(1)->getObject("last");
  EXPECT_EQ(acme_last->getValue<int64_t>("id"), acme.back());
  EXPECT_EQ(acme_last->getValue<int64_t>("finished_ms"), last_acme.finished_ms);
  EXPECT_EQ(acme_last->getValue<std::string>("summary"), "timeout");

  // The same counts as the lists, read a page at a time.
  const std::string since = "&since_ms=" + std::to_string((jobs::now_ms() / hour - 23) * hour);
  EXPECT_EQ(static_cast<int64_t>(all_pages("limit=1000&status=error" + since).size()), 410);
  EXPECT_EQ(static_cast<int64_t>(all_pages("limit=1000&status=normal" + since).size()), 700);
  EXPECT_EQ(static_cast<int64_t>(all_pages("limit=1000&status=pending").size()), 30);

  // A tenant's user counts only what they may see.
  r = test::http_request(port_, "GET", "/api/v1/overview", tenant_);
  ASSERT_EQ(r.status, 200) << r.body;
  o = r.json();
  EXPECT_EQ(o->getObject("day")->getValue<int64_t>("error"), 60);
  EXPECT_EQ(o->getObject("day")->getValue<int64_t>("normal"), 0);
  EXPECT_EQ(o->getObject("now")->getValue<int64_t>("pending"), 0);
  failures = o->getArray("failures");
  ASSERT_EQ(failures->size(), 1u) << r.body;
  EXPECT_EQ(failures->getObject(0)->getObject("last")->getValue<int64_t>("id"), acme.back());
  EXPECT_EQ(static_cast<int64_t>(all_pages("limit=1000&status=error" + since, tenant_).size()), 60);

  // The failures not yet seen, per job, counted past any list's 1,000: over
  // two days, after a run per job and without runs seen one by one.
  const auto bulk = write_runs(*kernel_, 1200, store::kCompleted, hour, store::kError, "bulk");
  auto groups = [&](const std::string& body, const std::string& token) {
    std::map<std::string, std::pair<int64_t, int64_t>> out;  // key -> count, last id
    auto g = test::http_request(port_, "POST", "/api/v1/failure-groups", token, body);
    EXPECT_EQ(g.status, 200) << body << ": " << g.body;
    if (g.status != 200) return out;
    auto items = g.json()->getArray("groups");
    int64_t total = 0, newest = INT64_MAX;
    for (size_t i = 0; i < items->size(); ++i) {
      auto o = items->getObject(i);
      const int64_t last = o->getObject("last")->getValue<int64_t>("id");
      EXPECT_LT(last, newest) << "newest last failure first";
      newest = last;
      out[o->getValue<std::string>("key")] = {o->getValue<int64_t>("count"), last};
      total += o->getValue<int64_t>("count");
    }
    EXPECT_EQ(g.json()->getValue<int64_t>("total"), total);
    return out;
  };
  const std::string two_days = "\"since_ms\": " + std::to_string(jobs::now_ms() - 48 * hour);
  using Groups = std::map<std::string, std::pair<int64_t, int64_t>>;
  EXPECT_EQ(groups("{" + two_days + "}", admin_), (Groups{{"bulk", {1200, bulk.back()}},
                                                          {"nightly", {450, nightly_old.back()}},
                                                          {"type:echo", {60, acme.back()}}}));
  EXPECT_EQ(
      groups("{" + two_days + ", \"stopped\": true, \"after\": {\"nightly\": " + std::to_string(nightly.back()) +
                 ", \"bulk\": " + std::to_string(bulk.back()) + "}, \"seen_runs\": [" + std::to_string(acme.back()) +
                 ", " + std::to_string(acme.front()) + ", " + std::to_string(bulk.front()) + "]}",
             admin_),
      (Groups{{"nightly", {100, nightly_old.back()}},
              {"type:echo", {58, acme.back() - 1}},
              {"type:hello", {40, cancelled.back()}}}));
  EXPECT_EQ(groups("{" + two_days + "}", tenant_), (Groups{{"type:echo", {60, acme.back()}}}));
  for (auto [body, field] : std::vector<std::pair<std::string, const char*>>{
           {"{}", "since_ms"},
           {"{" + two_days + ", \"after\": {\"nightly\": \"x\"}}", "after.nightly"},
           {"{" + two_days + ", \"after\": []}", "after"},
           {"{" + two_days + ", \"seen_runs\": [1, 0]}", "seen_runs[1]"},
           {"{" + two_days + ", \"seen_runs\": 3}", "seen_runs"}}) {
    auto g = test::http_request(port_, "POST", "/api/v1/failure-groups", admin_, body);
    EXPECT_EQ(g.status, 422) << body << ": " << g.body;
    EXPECT_NE(g.body.find(field), std::string::npos) << g.body;
  }
}

}  // namespace
}  // namespace opk
