#include "host/answer_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace opk::host {
namespace {

TEST(AnswerCacheTest, AnAnswerHoldsWhileItsGenerationIsCurrentAndForItsTimeOnly) {
  AnswerCache cache(1000, 10, 1 << 20);
  std::string a;
  EXPECT_FALSE(cache.find("k", 1, 0, &a));
  cache.put("k", 1, 100, "answer");
  ASSERT_TRUE(cache.find("k", 1, 100, &a));
  EXPECT_EQ(a, "answer");
  EXPECT_TRUE(cache.find("k", 1, 1099, &a));
  EXPECT_FALSE(cache.find("k", 1, 1100, &a)) << "older than its time to live";
  EXPECT_FALSE(cache.find("k", 2, 200, &a)) << "written since";
  EXPECT_FALSE(cache.find("k", 1, 99, &a)) << "a clock that went back";
  EXPECT_FALSE(cache.find("other", 1, 100, &a));
  cache.put("k", 2, 300, "newer");
  ASSERT_TRUE(cache.find("k", 2, 300, &a));
  EXPECT_EQ(a, "newer");
  EXPECT_EQ(cache.size(), 1u);
}

TEST(AnswerCacheTest, ItStaysWithinItsBounds) {
  AnswerCache cache(1000, 3, 100);
  for (int i = 0; i < 10; ++i) cache.put("k" + std::to_string(i), 1, 0, "x");
  EXPECT_LE(cache.size(), 3u);
  std::string a;
  EXPECT_TRUE(cache.find("k9", 1, 0, &a)) << "the newest answer is kept";
  cache.put("big", 1, 0, std::string(200, 'x'));
  EXPECT_FALSE(cache.find("big", 1, 0, &a)) << "an answer larger than the whole cache is not kept";
  for (int i = 0; i < 5; ++i) cache.put("m" + std::to_string(i), 1, 0, std::string(40, 'y'));
  EXPECT_LE(cache.size(), 2u) << "at most 100 bytes of keys and answers";
}

}  // namespace
}  // namespace opk::host
