// The metrics service (opk.metrics/1) on its own: collectors added per
// plugin and name and collected in the order they were added; one that
// fails, throws or writes something that is not the Prometheus text format
// with opskernel_ names left out while the others are kept; a plugin's
// collectors removed before it stops, after a collection inside them ends;
// the exposition check naming the line and what is wrong.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "host/metrics_service.h"

namespace opk::host {
namespace {

// user_data: the text a collector writes.
opk_status writes(void* user_data, const opk_metrics_writer* out) {
  out->append(out, static_cast<const char*>(user_data));
  return OPK_OK;
}

opk_status fails(void*, const opk_metrics_writer* out) {
  out->append(out, "opskernel_half_written 1\n");
  return OPK_ERR_UNAVAILABLE;
}

opk_status throws(void*, const opk_metrics_writer*) {
  throw std::runtime_error("collector broke");
}

struct Slow {
  std::atomic<bool> inside{false};
  std::atomic<bool> done{false};
};

opk_status slow(void* user_data, const opk_metrics_writer* out) {
  auto* s = static_cast<Slow*>(user_data);
  s->inside = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  out->append(out, "opskernel_slow 1\n");
  s->done = true;
  return OPK_OK;
}

TEST(MetricsService, CollectsEveryCollectorInOrderAndLeavesOutBrokenOnes) {
  MetricsService m;
  char good_a[] = "# HELP opskernel_a_total A.\n# TYPE opskernel_a_total counter\nopskernel_a_total 3\n";
  char good_b[] = "opskernel_b{state=\"open\",tenant=\"a \\\"b\\\"\"} 2.5\n";
  char wrong_name[] = "process_cpu_seconds 1\n";
  char no_newline[] = "opskernel_c 1";
  char not_text[] = "opskernel_d \xff\n";
  char bad_value[] = "opskernel_e one\n";
  ASSERT_TRUE(m.add("p1", "a", &writes, good_a));
  ASSERT_TRUE(m.add("p2", "failing", &fails, nullptr));
  ASSERT_TRUE(m.add("p2", "throwing", &throws, nullptr));
  ASSERT_TRUE(m.add("p3", "wrong-name", &writes, wrong_name));
  ASSERT_TRUE(m.add("p3", "no-newline", &writes, no_newline));
  ASSERT_TRUE(m.add("p3", "not-text", &writes, not_text));
  ASSERT_TRUE(m.add("p3", "bad-value", &writes, bad_value));
  ASSERT_TRUE(m.add("p4", "b", &writes, good_b));
  EXPECT_EQ(m.collect(), std::string(good_a) + good_b);
  EXPECT_EQ(m.size(), 8u) << "a broken collector stays; it is left out of each collection";
}

TEST(MetricsService, NamesAreCheckedAndUniquePerPlugin) {
  MetricsService m;
  char text[] = "opskernel_x 1\n";
  EXPECT_EQ(m.add("p", "", &writes, text).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m.add("p", "Bad Name", &writes, text).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m.add("p", "x", nullptr, text).code(), OPK_ERR_INVALID_ARGUMENT);
  ASSERT_TRUE(m.add("p", "x", &writes, text));
  EXPECT_EQ(m.add("p", "x", &writes, text).code(), OPK_ERR_CONFLICT);
  EXPECT_TRUE(m.add("q", "x", &writes, text)) << "another plugin may use the name";
  EXPECT_EQ(m.remove("p", "nosuch").code(), OPK_ERR_NOT_FOUND);
  EXPECT_TRUE(m.remove("p", "x"));
  EXPECT_EQ(m.collect(), "opskernel_x 1\n");
}

TEST(MetricsService, APluginsCollectorsGoOnceCallsIntoThemReturn) {
  MetricsService m;
  Slow s;
  ASSERT_TRUE(m.add("p", "slow", &slow, &s));
  std::string got;
  std::thread scrape([&] { got = m.collect(); });
  while (!s.inside) std::this_thread::yield();
  m.remove_plugin("p");
  EXPECT_TRUE(s.done) << "remove_plugin waited for the collection inside the collector";
  scrape.join();
  EXPECT_EQ(got, "opskernel_slow 1\n");
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.collect(), "");
}

TEST(MetricsService, TheExpositionCheckNamesTheLine) {
  EXPECT_EQ(check_exposition(""), "");
  EXPECT_EQ(check_exposition("# a free comment\n\nopskernel_x 1 1700000000000\nopskernel_y NaN\n"), "");
  EXPECT_EQ(check_exposition("opskernel_x 1\nup 1\n"), "line 2: the metric name does not start with opskernel_");
  EXPECT_EQ(check_exposition("# TYPE opskernel_x meter\n"),
            "line 1: type 'meter' is not counter, gauge, histogram, summary or untyped");
  EXPECT_EQ(check_exposition("# HELP go_goroutines x\n"),
            "line 1: names 'go_goroutines', not a metric starting opskernel_");
  EXPECT_EQ(check_exposition("opskernel_x{a=\"1} 2\n"), "line 1: an unterminated label value");
  EXPECT_EQ(check_exposition("opskernel_x{a=1} 2\n"), "line 1: a label without =\"value\"");
  EXPECT_EQ(check_exposition("opskernel_x\n"), "line 1: no value after the metric");
  EXPECT_EQ(check_exposition("opskernel_x 1\r\n"), "line 1: holds a control character");
}

}  // namespace
}  // namespace opk::host
