// opk.store/1 as a plugin uses it: its migrations recorded under its id,
// parameters bound, rows back as JSON, errors as statuses.
#include <gtest/gtest.h>

#include "support/kernel_util.h"

namespace opk {
namespace {

TEST(StoreService, APluginKeepsItsOwnTables) {
  test::TempDir d;
  auto cfg = test::quiet_config(d, test::plugins_dir(d, {test::fixture("store_user")}));
  Kernel k(cfg);
  ASSERT_TRUE(k.start());
  ASSERT_EQ(k.plugins()[0]->state, PluginState::active) << k.plugins()[0]->reason;
  bool recorded = false;
  for (const auto& m : k.store()->applied_migrations().value()) recorded |= m.owner == "store-user" && m.version == 2;
  EXPECT_TRUE(recorded);
  auto a = test::run_and_wait(k, [] {
    auto r = test::manual("store-job");
    r.reason = "first";
    return r;
  }());
  auto b = test::run_and_wait(k, [] {
    auto r = test::manual("store-job");
    r.reason = "second";
    return r;
  }());
  EXPECT_EQ(a.row.summary, R"([["1","first"]])");
  EXPECT_EQ(b.row.summary, R"([["2","second"]])");
  ASSERT_EQ(b.logs.size(), 2u);
  EXPECT_EQ(b.logs[0].message, "duplicate insert: status " + std::to_string(OPK_ERR_CONFLICT));
  EXPECT_EQ(b.logs[1].message, "bad sql: status " + std::to_string(OPK_ERR_INVALID_ARGUMENT));
}

TEST(StoreService, NotOfferedWithoutAStore) {
  // plugins list runs without a store: the plugin's start is not called, and
  // the extension is absent rather than broken.
  test::TempDir d;
  Kernel k(test::quiet_config(d, test::plugins_dir(d, {test::fixture("store_user")})));
  ASSERT_TRUE(k.start(/*start_plugins=*/false));
  EXPECT_EQ(k.plugins()[0]->state, PluginState::active);
  EXPECT_EQ(k.store(), nullptr);
}

}  // namespace
}  // namespace opk
