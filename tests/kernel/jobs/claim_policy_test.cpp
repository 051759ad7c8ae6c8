// The claim policy's rules, one test each: the queue's order, what is short,
// and how many runs one claim takes.
#include "jobs/claim_policy.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace opk::jobs::claim {
namespace {

// `n` queued runs of one type declaring `target_ms`, numbered from `first_id`.
std::vector<Queued> runs(size_t n, int64_t target_ms, int64_t first_id = 1) {
  std::vector<Queued> out;
  for (size_t i = 0; i < n; ++i) out.push_back({first_id + static_cast<int64_t>(i), 0, 1000, target_ms});
  return out;
}

std::vector<Queued> operator+(std::vector<Queued> a, const std::vector<Queued>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Limits that leave one rule alone in force.
Limits unbounded() {
  Limits l;
  l.max_runs = 1000000;
  l.min_runs = 0;
  l.min_work_ms = 0;
  l.budget_ms = 1000000000;
  return l;
}

TEST(ClaimPolicy, HigherPriorityFirst) {
  EXPECT_TRUE(before({9, 5, 2000, 0}, {1, 1, 1000, 0}));
  EXPECT_FALSE(before({1, 1, 1000, 0}, {9, 5, 2000, 0}));
}

TEST(ClaimPolicy, ThenTheEarlierScheduledStart) {
  EXPECT_TRUE(before({9, 1, 1000, 0}, {1, 1, 2000, 0}));
  EXPECT_FALSE(before({1, 1, 2000, 0}, {9, 1, 1000, 0}));
}

TEST(ClaimPolicy, ThenTheLowerRunNumber) {
  EXPECT_TRUE(before({1, 1, 1000, 0}, {2, 1, 1000, 0}));
  EXPECT_FALSE(before({2, 1, 1000, 0}, {1, 1, 1000, 0}));
  EXPECT_FALSE(before({1, 1, 1000, 0}, {1, 1, 1000, 0}));  // a strict order
}

TEST(ClaimPolicy, QueueOrderAsAWhole) {
  std::vector<Queued> q = {{1, 0, 3000, 0}, {2, 5, 9000, 0}, {3, 0, 1000, 0}, {4, 5, 9000, 0}, {5, 0, 1000, 0}};
  std::sort(q.begin(), q.end(), before);
  std::vector<int64_t> ids;
  for (const auto& r : q) ids.push_back(r.run_id);
  EXPECT_EQ(ids, (std::vector<int64_t>{2, 4, 3, 5, 1}));
}

TEST(ClaimPolicy, ShortIsADeclaredTargetUpTo100Ms) {
  EXPECT_FALSE(is_short(0));  // no target declared
  EXPECT_TRUE(is_short(1));
  EXPECT_TRUE(is_short(100));
  EXPECT_FALSE(is_short(101));
  EXPECT_FALSE(is_short(-1));
  Limits l;
  l.short_ms = 10;
  EXPECT_FALSE(is_short(11, l));
}

TEST(ClaimPolicy, WorkCountsEachRunsTargetAtLeastOneMs) {
  Taken t = add({}, {1, 0, 0, 0});
  EXPECT_EQ(t.runs, 1u);
  EXPECT_EQ(t.work_ms, 1);
  EXPECT_FALSE(t.short_head);
  t = add({}, {1, 0, 0, 40});
  t = add(t, {2, 0, 0, 500});
  EXPECT_EQ(t.runs, 2u);
  EXPECT_EQ(t.work_ms, 540);
  EXPECT_TRUE(t.short_head);  // the first run decides
}

TEST(ClaimPolicy, NothingQueuedNothingClaimed) {
  EXPECT_EQ(claim_size({}, 4), 0u);
}

TEST(ClaimPolicy, TheHeadIsAlwaysClaimed) {
  EXPECT_EQ(claim_size(runs(1, 5000), 4), 1u);
  EXPECT_EQ(claim_size(runs(1, 1), 4), 1u);
}

TEST(ClaimPolicy, ALongRunIsClaimedAlone) {
  EXPECT_EQ(claim_size(runs(1, 5000) + runs(50, 1, 2), 1), 1u);
  EXPECT_EQ(claim_size(runs(10, 101), 1), 1u);
  EXPECT_EQ(claim_size(runs(1, 200) + runs(50, 1, 2), 1), 1u);  // short runs behind it wait
}

TEST(ClaimPolicy, ARunWithoutATargetIsClaimedAlone) {
  EXPECT_EQ(claim_size(runs(10, 0), 1), 1u);
  EXPECT_EQ(claim_size(runs(1, 0) + runs(10, 1, 2), 1), 1u);
}

TEST(ClaimPolicy, AGroupOfShortRunsStopsAtTheFirstLongOne) {
  EXPECT_EQ(claim_size(runs(3, 1) + runs(1, 5000, 4) + runs(5, 1, 5), 1), 3u);
  EXPECT_EQ(claim_size(runs(3, 1) + runs(1, 0, 4) + runs(5, 1, 5), 1), 3u);
}

TEST(ClaimPolicy, AGroupStopsAtMaxRuns) {
  Limits l = unbounded();
  l.max_runs = 50;
  EXPECT_EQ(claim_size(runs(5000, 1), 1, l), 50u);
  EXPECT_TRUE(takes({49, 49, true}, {50, 0, 0, 1}, 5000, 1, l));
  EXPECT_FALSE(takes({50, 50, true}, {51, 0, 0, 1}, 5000, 1, l));
}

TEST(ClaimPolicy, AGroupStopsAtTheWorkBudget) {
  // 1,000 ms of declared work at most: ten runs of 100 ms, twenty of 50.
  EXPECT_EQ(claim_size(runs(50, 100), 1), 10u);
  EXPECT_EQ(claim_size(runs(50, 50), 1), 20u);
  // With the defaults, runs of 1 ms stop there too (before max_runs, 1,024).
  EXPECT_EQ(claim_size(runs(5000, 1), 1), 1000u);
}

TEST(ClaimPolicy, AGroupTakesAFairShareOfTheQueue) {
  // Runs left behind / workers + 1: with 1,000 queued and 4 workers, 201
  // (200 < 800 / 4 + 1, then 201 >= 799 / 4 + 1).
  EXPECT_EQ(claim_size(runs(1000, 1), 4, unbounded()), 201u);
  EXPECT_EQ(claim_size(runs(1000, 1), 1, unbounded()), 501u);
  EXPECT_EQ(claim_size(runs(1000, 1), 4), 201u);  // the defaults: not the budget nor the minimum
  // Two queued for two workers: each takes one.
  EXPECT_EQ(claim_size(runs(2, 1), 2, unbounded()), 1u);
}

TEST(ClaimPolicy, AGroupTakesAMinimumWhileItsWorkIsSmall) {
  // 200 runs of 1 ms for 8 workers: a fair share alone would be 23; the
  // minimum takes them while they hold under 100 ms of work: 100.
  EXPECT_EQ(claim_size(runs(200, 1), 8, unbounded()), 23u);
  EXPECT_EQ(claim_size(runs(200, 1), 8), 100u);
  // The minimum's count: 128 runs when their work does not bound it first.
  Limits l;
  l.min_work_ms = 1000000;
  l.budget_ms = 1000000;
  EXPECT_EQ(claim_size(runs(1000, 1), 8, l), 128u);
  // The minimum's work: 200 runs of 2 ms for 8 workers, 50 (100 ms).
  EXPECT_EQ(claim_size(runs(200, 2), 8), 50u);
}

TEST(ClaimPolicy, TheMinimumDoesNotPassTheBudgetOrALongRun) {
  Limits l;
  l.min_runs = 2000;
  l.min_work_ms = 1000000;
  EXPECT_EQ(claim_size(runs(5000, 1), 1, l), 1000u);  // the budget, 1,000 ms
  EXPECT_EQ(claim_size(runs(10, 1) + runs(1, 5000, 11) + runs(10, 1, 12), 8, l), 10u);
}

}  // namespace
}  // namespace opk::jobs::claim
