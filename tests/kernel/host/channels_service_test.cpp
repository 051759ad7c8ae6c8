// The channel service (opk.channels/1) in a real kernel: channels of started
// plugins listed and reached by id, a 1.4 channel's deliver and recipient
// check, a 1.0 (send-only) channel of a 1.3 plugin adapted, every way a
// channel can break its contract contained (unterminated detail, a status
// that is not the ABI's, an exception, a failure without detail), unknown
// channels named, a channel with neither send nor deliver refused at load,
// and a plugin's channels removed before it stops, after calls into them end.
#include <opskernel/json.hpp>

#include <cstring>
#include <thread>

#include "host/channels_service.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

class ChannelsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto plugins = test::plugins_dir(
        dir_, {test::fixture("channel_probe"), test::fixture("legacy_channel"), test::fixture("channel_none")});
    kernel_ = std::make_unique<Kernel>(test::quiet_config(dir_, plugins));
    ASSERT_TRUE(kernel_->start());
  }
  void TearDown() override {
    if (kernel_) kernel_->stop();
  }

  // Delivers to `recipient` through `channel`; *r gets the result.
  opk_status deliver(const std::string& channel, const char* recipient, opk_delivery_result* r,
                     const char* options = nullptr) {
    const char* to[] = {recipient};
    opk_notification m{};
    m.struct_size = sizeof m;
    m.recipients = to;
    m.recipient_count = 1;
    m.subject = "Run 12 failed";
    m.body = "{}";
    m.content_type = "application/json";
    m.id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    m.attempt = 3;
    m.html_body = "<p>x</p>";
    m.options_json = options;
    m.timeout_ms = 5000;
    std::memset(static_cast<void*>(r), 0, sizeof *r);
    r->struct_size = sizeof *r;
    return kernel_->channels().deliver(channel, &m, r);
  }

  test::TempDir dir_;
  std::unique_ptr<Kernel> kernel_;
};

TEST_F(ChannelsServiceTest, ListsTheStartedPluginsChannelsAndRefusesOneWithNeitherSendNorDeliver) {
  Json list = Json::parse(kernel_->channels().list_json());
  ASSERT_EQ(list.size(), 3u) << list.dump();
  EXPECT_EQ(list[0]["id"], "legacy");
  EXPECT_EQ(list[0]["plugin"], "legacy-channel");
  EXPECT_EQ(list[0]["deliver"], false);
  EXPECT_EQ(list[1]["id"], "probe");
  EXPECT_EQ(list[1]["deliver"], true);
  EXPECT_EQ(list[1]["check_recipient"], true);
  EXPECT_EQ(list[2]["id"], "probe-nocheck");
  EXPECT_EQ(list[2]["check_recipient"], false);
  bool refused = false;
  for (const auto& p : kernel_->plugins())
    if (p->path.filename() == "channel_none.so") {  // refused at load: before its id was read
      refused = p->state == PluginState::refused;
      EXPECT_NE(p->reason.find("has neither send nor deliver"), std::string::npos) << p->reason;
    }
  EXPECT_TRUE(refused);
}

TEST_F(ChannelsServiceTest, DeliversThroughA14ChannelWithEveryField) {
  opk_delivery_result r;
  ASSERT_EQ(deliver("probe", "ok@example.com", &r, R"({"secrets":["whsec_x"]})"), OPK_OK) << r.detail;
  EXPECT_EQ(r.code, 250);
  EXPECT_STREQ(r.detail,
               "250 ok id=msg_2KWPBgLlAfxdpx2AI54pPJ85f4W attempt=3 html=yes options={\"secrets\":[\"whsec_x\"]} "
               "timeout=5000");
  EXPECT_EQ(deliver("probe", "gone", &r), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.code, 410);
  EXPECT_EQ(r.flags, OPK_DELIVERY_GONE | OPK_DELIVERY_PERMANENT);
  EXPECT_STREQ(r.detail, "410 Gone");

  // The recipient check: the channel's, and none (every recipient accepted).
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  EXPECT_EQ(kernel_->channels().check_recipient("probe", "ann@example.com", nullptr, &r), OPK_OK);
  EXPECT_EQ(kernel_->channels().check_recipient("probe", "nobody", "{}", &r), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(r.detail, "recipient: 'nobody' has no @ (options {})");
  EXPECT_EQ(kernel_->channels().check_recipient("probe-nocheck", "anything", nullptr, &r), OPK_OK);
  EXPECT_EQ(kernel_->channels().check_recipient("probe", nullptr, nullptr, &r), OPK_ERR_INVALID_ARGUMENT);
}

TEST_F(ChannelsServiceTest, ASendOnlyChannelOfA13PluginIsAdapted) {
  opk_delivery_result r;
  EXPECT_EQ(deliver("legacy", "ann@example.com", &r), OPK_OK);
  EXPECT_EQ(r.flags, 0u);
  EXPECT_EQ(deliver("legacy", "bad", &r), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(r.flags, OPK_DELIVERY_PERMANENT);
  EXPECT_STREQ(r.detail, "channel 'legacy' failed: INVALID_ARGUMENT");
  EXPECT_EQ(deliver("legacy", "down", &r), OPK_ERR_UNAVAILABLE);
  EXPECT_EQ(r.flags, 0u) << "a retry may help";
  // A 1.0 channel checks no recipient.
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  EXPECT_EQ(kernel_->channels().check_recipient("legacy", "whatever", nullptr, &r), OPK_OK);
}

TEST_F(ChannelsServiceTest, AChannelBreakingItsContractHarmsNobody) {
  opk_delivery_result r;
  // Detail filled to the last byte without NUL, struct_size trampled and a
  // status the ABI does not have.
  EXPECT_EQ(deliver("probe", "garbage", &r), OPK_ERR_INTERNAL);
  EXPECT_EQ(r.struct_size, sizeof r);
  EXPECT_LT(std::strlen(r.detail), sizeof r.detail);
  EXPECT_EQ(std::string(r.detail).rfind("channel 'probe' returned 77, which is not an ABI status", 0), 0u) << r.detail;
  // An exception thrown out of the channel.
  EXPECT_EQ(deliver("probe", "throw", &r), OPK_ERR_INTERNAL);
  EXPECT_STREQ(r.detail, "channel 'probe' threw an exception across the ABI");
  // A failure without a detail gets one.
  EXPECT_EQ(deliver("probe", "silent", &r), OPK_ERR_UNAVAILABLE);
  EXPECT_STREQ(r.detail, "channel 'probe' failed: UNAVAILABLE");
  EXPECT_GE(r.latency_ms, 0);
  // An unknown channel; a result the caller did not size; no message.
  EXPECT_EQ(deliver("sms", "ok@example.com", &r), OPK_ERR_NOT_FOUND);
  EXPECT_STREQ(r.detail, "unknown channel 'sms'");
  opk_delivery_result small{};
  small.struct_size = 8;
  EXPECT_EQ(kernel_->channels().deliver("probe", nullptr, &small), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(kernel_->channels().deliver("probe", nullptr, nullptr), OPK_ERR_INVALID_ARGUMENT);
  std::memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  EXPECT_EQ(kernel_->channels().deliver("probe", nullptr, &r), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(r.detail, "message: is NULL");
  // The channel still works.
  EXPECT_EQ(deliver("probe", "ok@example.com", &r), OPK_OK);
}

TEST_F(ChannelsServiceTest, APluginsChannelsGoBeforeItStopsAfterCallsIntoThemEnd) {
  opk_delivery_result slow;
  opk_status slow_status = OPK_ERR_FAILED;
  std::thread caller([&] { slow_status = deliver("probe", "slow", &slow); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // inside the channel now
  kernel_->channels().remove_plugin("channel-probe");           // waits for the call
  caller.join();
  EXPECT_EQ(slow_status, OPK_OK);
  EXPECT_STREQ(slow.detail, "slow but delivered");
  opk_delivery_result r;
  EXPECT_EQ(deliver("probe", "ok@example.com", &r), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(Json::parse(kernel_->channels().list_json()).size(), 1u);
  kernel_->stop();
  EXPECT_EQ(Json::parse(kernel_->channels().list_json()).size(), 0u);
}

}  // namespace
}  // namespace opk
