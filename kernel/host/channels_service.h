// channels_service.h -- "opk.channels/1": the notification channels of the
// started plugins, for the plugin that sends notifications (docs/abi.md,
// "The channel service"). Calls are routed by channel id to the channel's
// plugin and guarded as the kernel guards job runs: the plugin works on a
// copy of the result whose detail the kernel terminates, a status that is
// not one of the ABI's becomes OPK_ERR_INTERNAL, an exception is caught, and
// a 1.0 channel that has only `send` is called through it, its status mapped
// into the result. A plugin's channels are removed before it stops, after
// the calls into them have returned. Thread-safe.
#ifndef OPSKERNEL_KERNEL_HOST_CHANNELS_SERVICE_H
#define OPSKERNEL_KERNEL_HOST_CHANNELS_SERVICE_H

#include <opskernel/opk_abi.h>

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "loader/manifest.h"

namespace opk::host {

class PluginHost;

// The name of an ABI status ("UNAVAILABLE"), or "status <n>" for another.
std::string status_name(opk_status status);

class ChannelsService {
 public:
  ChannelsService();
  ~ChannelsService();
  ChannelsService(const ChannelsService&) = delete;
  ChannelsService& operator=(const ChannelsService&) = delete;

  // Calls through `host`'s table reach this service (until it is destroyed).
  void serve(const PluginHost* host);

  // Makes the channels of started plugin `plugin_id` (instance `instance`)
  // reachable. REQUIRES: `channels` and the plugin outlive remove_plugin.
  void add_plugin(const std::string& plugin_id, opk_plugin* instance, const std::vector<loader::Channel>& channels);
  // Makes them unreachable, waiting for the calls into them to return. Call
  // before the plugin stops.
  void remove_plugin(const std::string& plugin_id);

  // [{"id", "title", "description", "plugin", "deliver", "check_recipient"}],
  // ordered by id.
  std::string list_json() const;
  // Delivers `message` through channel `channel_id` into *result (see the
  // header comment); NOT_FOUND with detail "unknown channel 'x'".
  opk_status deliver(const std::string& channel_id, const opk_notification* message, opk_delivery_result* result);
  // The channel's recipient check; OK for a channel without one.
  opk_status check_recipient(const std::string& channel_id, const char* recipient, const char* options_json,
                             opk_delivery_result* result);

  // The C table served as "opk.channels/1".
  const opk_channels_v1* extension() const { return &ext_; }

 private:
  // One channel; `mu` is held shared by each call into it, exclusively to
  // remove it.
  struct Entry {
    std::string plugin;
    opk_plugin* instance = nullptr;
    const loader::Channel* channel = nullptr;
    std::shared_mutex mu;
    bool gone = false;
  };
  std::shared_ptr<Entry> find(const std::string& channel_id) const;

  static opk_status cb_list(const opk_host* host, char** answer_json);
  static opk_status cb_deliver(const opk_host* host, const char* channel_id, const opk_notification* message,
                               opk_delivery_result* result);
  static opk_status cb_check_recipient(const opk_host* host, const char* channel_id, const char* recipient,
                                       const char* options_json, opk_delivery_result* result);

  mutable std::shared_mutex mu_;  // guards entries_
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  opk_channels_v1 ext_{};
};

}  // namespace opk::host

#endif
