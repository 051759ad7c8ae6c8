// cluster_util.h -- several kernels on one PostgreSQL database in this
// process, for the tests of the cluster: a fresh database (pg_util.h) and
// kernels started on it, each with its node name, a folder of its own and
// the plugins the test chooses.
#ifndef OPSKERNEL_TESTS_SUPPORT_CLUSTER_UTIL_H
#define OPSKERNEL_TESTS_SUPPORT_CLUSTER_UTIL_H

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/kernel.h"
#include "support/pg_util.h"
#include "support/test_util.h"

namespace opk::test {

// A test's PostgreSQL database and the folders of the kernels it starts on
// it. Kernels are the test's to own and stop; they must go before this.
class PgCluster {
 public:
  // Creates the database; "" or what failed (including OPK_TEST_PG unset).
  std::string create() { return db_.create(); }

  // A kernel named `node` on the database with `plugins` in one pool
  // "default" of 2 workers, `tune` given its configuration last (lease,
  // claim poll, grace...); null, the test failed naming the node, when it
  // does not start.
  std::unique_ptr<Kernel> start_node(const std::string& node, std::initializer_list<std::string> plugins,
                                     const std::function<void(config::Config&)>& tune = {}) {
    dirs_.push_back(std::make_unique<TempDir>());
    const auto& dir = *dirs_.back();
    auto cfg = quiet_config(dir, plugins_dir(dir, plugins));
    cfg.node_name = node;
    cfg.pools = {{"default", 2}};
    cfg.store_backend = "postgresql";
    cfg.pg_conninfo = db_.conninfo();
    if (tune) tune(cfg);
    auto k = std::make_unique<Kernel>(cfg);
    Status s = k->start();
    EXPECT_TRUE(s) << node << ": " << s.message();
    return s ? std::move(k) : nullptr;
  }

  // The database the kernels share.
  const PgDatabase& db() const { return db_; }

 private:
  PgDatabase db_;
  std::vector<std::unique_ptr<TempDir>> dirs_;
};

// The run `id` as stored, read through `k`'s store (the test fails if it is
// not there).
inline store::RunRow stored_run(Kernel& k, int64_t id) {
  store::RunRow r;
  EXPECT_TRUE(k.store()->get_run(id, &r)) << "run " << id;
  return r;
}

// Whether `pred` holds within `ms`, looked at every 10 ms.
inline bool holds_within(const std::function<bool()>& pred, int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace opk::test

#endif
