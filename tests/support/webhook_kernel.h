// webhook_kernel.h -- a real kernel whose notifications plugin delivers to
// the Standard Webhooks receiver (tests/support/webhook-receiver), the
// fixture the notifications and webhook-inbox tests share: the receiver
// started with a known secret, the kernel configured over bundled plugins
// with a fast retry schedule, a platform administrator's token, and waiting
// for what the receiver recorded. Not thread-safe.
#ifndef OPSKERNEL_TESTS_SUPPORT_WEBHOOK_KERNEL_H
#define OPSKERNEL_TESTS_SUPPORT_WEBHOOK_KERNEL_H

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/servers.h"

namespace opk::test {

// A kernel test delivering webhooks to the receiver.
class WebhookKernelTest : public ::testing::Test {
 protected:
  // The signing secret the receiver verifies every request with.
  static constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

  // The requests the receiver recorded in `file`, oldest first.
  static std::vector<nlohmann::json> received(const std::string& file) {
    std::vector<nlohmann::json> out;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(nlohmann::json::parse(line, nullptr, false));
    return out;
  }

  // Waits until `done` holds, looking every 20 ms, up to `ms`; whether it held.
  template <typename F>
  static bool eventually(F done, int ms = 15000) {
    for (int i = 0; i < ms / 20; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }

  // Starts the receiver (recording into requests_) and configures the kernel
  // over the plugin `files` on a free port, with notifications making four
  // attempts 300 ms apart (a delivery dies in about a second). Call from
  // SetUp, under ASSERT_NO_FATAL_FAILURE.
  void set_up(std::initializer_list<std::string> files) {
    requests_ = scratch_.file("requests.jsonl");
    const std::string why =
        receiver_.start({OPK_NODE, std::string(OPK_SOURCE_DIR) + "/tests/support/webhook-receiver/receiver.mjs",
                         "--out", requests_, "--secret", kSecret},
                        scratch_.file("receiver.err"));
    ASSERT_TRUE(why.empty()) << why;
    port_ = free_port();
    cfg_ = quiet_config(dir_, plugins_dir(dir_, files));
    cfg_.listen = "127.0.0.1:" + std::to_string(port_);
    cfg_.log.console = false;
    cfg_.store_path = (dir_.path() / "data" / "opk.db").string();
    cfg_.plugins["notifications"] = {{"retry_schedule", "0, 300ms, 300ms, 300ms"},
                                     {"retry_jitter", "0"},
                                     {"poll_wait", "200ms"},
                                     {"circuit_failures", "100"}};
  }

  void TearDown() override {
    if (kernel_) kernel_->stop();
  }

  // Starts the kernel; the first time, adds the platform administrator pat
  // and keeps a token of theirs in admin_.
  void start() {
    kernel_ = std::make_unique<Kernel>(cfg_);
    ASSERT_TRUE(kernel_->start());
    if (admin_.empty()) {
      auto* id = kernel_->identity();
      ASSERT_TRUE(id->add_user({"pat", "", "PlatformAdministrator", "platform"}));
      ASSERT_TRUE(id->issue_token("pat", 0, "test", &admin_));
    }
  }

  // The receiver's URL for `path`.
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(receiver_.port()) + path;
  }

  ScratchDir scratch_;
  ServerProcess receiver_;
  std::string requests_;  // the receiver's record, one JSON request a line
  TempDir dir_;
  config::Config cfg_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_;  // a platform administrator's token once started
};

}  // namespace opk::test

#endif  // OPSKERNEL_TESTS_SUPPORT_WEBHOOK_KERNEL_H
