// bundled.h -- loading the plugins the build bundles (their .so files in
// OPK_BUNDLED_PLUGIN_DIR) into the SDK's test host, for tests of plugins
// that work together. Header-only. Not thread-safe.
#ifndef OPSKERNEL_TESTS_SUPPORT_BUNDLED_H
#define OPSKERNEL_TESTS_SUPPORT_BUNDLED_H

#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace opk::test {

// Loads the bundled plugins `names`, in order, into `host`; the first that
// fails to load fails the test with its name and why. Call under
// ASSERT_NO_FATAL_FAILURE.
inline void load_bundled(testing::Host& host, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const Status s = host.load(std::string(OPK_BUNDLED_PLUGIN_DIR) + "/" + name + ".so");
    ASSERT_TRUE(s) << name << ": " << s.message();
  }
}

}  // namespace opk::test

#endif  // OPSKERNEL_TESTS_SUPPORT_BUNDLED_H
