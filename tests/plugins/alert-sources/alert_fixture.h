// alert_fixture.h -- a test host with platform-records and one alert-source
// plugin loaded, records imported through platform-records' own import
// route, and the clock set to a chosen day, for the alert sources' tests.
#ifndef OPSKERNEL_TESTS_PLUGINS_ALERT_FIXTURE_H
#define OPSKERNEL_TESTS_PLUGINS_ALERT_FIXTURE_H

#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace opk::test {

// Parameterised by the store: "sqlite", or "postgresql" for a schema of
// the Host's own on the tests' PostgreSQL server (OPK_TEST_PG); each
// fixture is instantiated over both with OPK_ALERT_SOURCE_STORES.
class AlertSourceTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Sets [plugin.<id>] `key` = `value` for the plugin loaded next.
  void setting(const std::string& key, const std::string& value) { host_.set_setting(key, value); }

  // Loads platform-records, then the bundled plugin `plugin`, on the
  // test's store.
  ::testing::AssertionResult load(const std::string& plugin) {
    if (!store_chosen_) {
      const Status s = host_.use_store(GetParam());
      if (!s) return ::testing::AssertionFailure() << "store " << GetParam() << ": " << s.message();
      store_chosen_ = true;
    }
    for (const std::string& name : {std::string("platform-records"), plugin}) {
      const Status s = host_.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/" + name + ".so");
      if (!s) return ::testing::AssertionFailure() << name << ": " << s.message();
    }
    return ::testing::AssertionSuccess();
  }

  // Places tenant:<name> under the platform.
  void tenant(const std::string& name) { host_.add_node("tenant:" + name, "platform"); }

  // A subscription row of tenant:<tenant>.
  static Json subscription(const std::string& id, const std::string& tenant, const std::string& status,
                           const std::string& period_start = "2026-01-01") {
    return {{"id", id},
            {"tenant", "tenant:" + tenant},
            {"product", "mail"},
            {"status", status},
            {"period_start", period_start}};
  }

  // Imports `rows` of `kind` as the platform administrator; 200 expected.
  // A subscription's node is placed under its tenant first, as the
  // hierarchy has it before its records are imported.
  ::testing::AssertionResult import(const std::string& kind, const Json& rows) {
    if (kind == "subscriptions")
      for (const auto& row : rows) host_.add_node("subscription:" + row.value("id", ""), row.value("tenant", ""));
    const auto r = host_.request("POST", "/api/v1/records/" + kind + "/import", rows.dump(),
                                 testing::Principal::administrator(), {{"content-type", "application/json"}});
    if (r.status == 200) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "import " << kind << ": " << r.status << " " << r.body;
  }

  // Sets the clock to `date` ("YYYY-MM-DD") at `hour`:00 UTC.
  void at(const std::string& date, int hour = 12) {
    int y = 0;
    unsigned m = 0, d = 0;
    ASSERT_EQ(std::sscanf(date.c_str(), "%d-%u-%u", &y, &m, &d), 3) << date;
    using namespace std::chrono;
    const sys_days day{year(y) / month(m) / std::chrono::day(d)};
    host_.clock().set(duration_cast<milliseconds>(day.time_since_epoch()).count() + hour * 3'600'000LL);
  }

  // Evaluates `source`; fails the test when the evaluation fails.
  testing::Evaluation evaluate(const std::string& source) {
    testing::Evaluation e = host_.evaluate(source);
    EXPECT_EQ(e.status, OPK_OK) << e.error;
    return e;
  }

  // The alert of `e` about (related_type, related_id), or nullptr.
  static const testing::Alert* raised(const testing::Evaluation& e, const std::string& type, const std::string& id) {
    auto it = std::find_if(e.raised.begin(), e.raised.end(),
                           [&](const testing::Alert& a) { return a.related_type == type && a.related_id == id; });
    return it == e.raised.end() ? nullptr : &*it;
  }

  // True when a line of `e`'s log contains `text`.
  static bool logged(const testing::Evaluation& e, const std::string& text) {
    return std::any_of(e.log.begin(), e.log.end(),
                       [&](const testing::LogLine& l) { return l.text.find(text) != std::string::npos; });
  }

  testing::Host host_;
  bool store_chosen_ = false;
};

// Instantiates the alert-source fixture `fixture` on both stores.
#define OPK_ALERT_SOURCE_STORES(fixture)                                               \
  INSTANTIATE_TEST_SUITE_P(Stores, fixture, ::testing::Values("sqlite", "postgresql"), \
                           [](const ::testing::TestParamInfo<std::string>& info) { return info.param; })

}  // namespace opk::test

#endif  // OPSKERNEL_TESTS_PLUGINS_ALERT_FIXTURE_H
