// The channel service and its C table: the table of started plugins'
// channels, and each call into a channel guarded (a copy of the message and
// of the result, the detail terminated, the status checked, exceptions
// caught, send-only channels adapted).
#include "host/channels_service.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "events/json_text.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "host/plugin_entries.h"
#include "host/served.h"

namespace opk::host {
namespace {

ServedBy<ChannelsService> g_channels_served;

ChannelsService* served(const opk_host* host) {
  auto* ph = PluginHost::from(host);
  return ph ? g_channels_served.find(ph) : nullptr;
}

void set_detail(opk_delivery_result* r, const std::string& text) {
  std::snprintf(r->detail, sizeof r->detail, "%s", text.c_str());
}

// The caller's result, checked: NULL or too small to hold the 1.4 result
// cannot be written.
bool writable(const opk_delivery_result* r) {
  return r && r->struct_size >= sizeof(opk_delivery_result);
}

// Runs `call` into a channel on a zeroed copy of the result, then makes the
// copy safe and hands it to the caller: detail terminated, an unknown status
// made INTERNAL, a failure without detail given one, the latency measured
// when the channel gave none.
template <typename Call>
opk_status guarded(const std::string& channel_id, opk_delivery_result* out, Call&& call) {
  opk_delivery_result r{};
  r.struct_size = sizeof r;
  clear_error();
  const auto t0 = std::chrono::steady_clock::now();
  opk_status st = OPK_ERR_INTERNAL;
  bool threw = false;
  try {
    st = call(&r);
  } catch (...) {  // a last guard only: exceptions must not cross the ABI
    threw = true;
  }
  const int64_t took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  const std::string plugin_error = take_error();
  r.struct_size = sizeof r;
  r.detail[sizeof r.detail - 1] = '\0';
  if (threw) {
    st = OPK_ERR_INTERNAL;
    set_detail(&r, "channel '" + channel_id + "' threw an exception across the ABI");
  } else if (st < OPK_OK || st > OPK_ERR_BUFFER_TOO_SMALL) {
    set_detail(&r, "channel '" + channel_id + "' returned " + std::to_string(st) + ", which is not an ABI status" +
                       (r.detail[0] ? std::string(": ") + r.detail : std::string()));
    st = OPK_ERR_INTERNAL;
  } else if (st != OPK_OK && r.detail[0] == '\0') {
    set_detail(&r, plugin_error.empty() ? "channel '" + channel_id + "' failed: " + status_name(st) : plugin_error);
  }
  if (r.latency_ms <= 0) r.latency_ms = took;
  if (r.retry_after_ms < 0) r.retry_after_ms = 0;
  std::memcpy(static_cast<void*>(out), &r, sizeof r);
  return st;
}

}  // namespace

std::string status_name(opk_status s) {
  static const char* const kNames[] = {
      "OK",      "FAILED",   "INVALID_ARGUMENT", "NOT_FOUND", "UNSUPPORTED", "INCOMPATIBLE", "CANCELLED",
      "TIMEOUT", "CONFLICT", "PERMISSION",       "NO_MEMORY", "UNAVAILABLE", "INTERNAL",     "BUFFER_TOO_SMALL"};
  if (s >= 0 && s < static_cast<opk_status>(sizeof kNames / sizeof kNames[0])) return kNames[s];
  return "status " + std::to_string(s);
}

ChannelsService::ChannelsService() {
  ext_.struct_size = sizeof ext_;
  ext_.list = &cb_list;
  ext_.deliver = &cb_deliver;
  ext_.check_recipient = &cb_check_recipient;
}

ChannelsService::~ChannelsService() {
  g_channels_served.forget(this);
}

void ChannelsService::serve(const PluginHost* host) {
  g_channels_served.serve(host, this);
}

void ChannelsService::add_plugin(const std::string& plugin_id, opk_plugin* instance,
                                 const std::vector<loader::Channel>& channels) {
  std::unique_lock lock(mu_);
  for (const auto& c : channels) {
    auto e = std::make_shared<Entry>();
    e->plugin = plugin_id;
    e->instance = instance;
    e->channel = &c;
    entries_[c.id] = std::move(e);
  }
}

void ChannelsService::remove_plugin(const std::string& plugin_id) {
  // Calls already inside a channel hold its entry: wait for them.
  remove_plugin_entries(mu_, entries_, plugin_id);
}

std::shared_ptr<ChannelsService::Entry> ChannelsService::find(const std::string& channel_id) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(channel_id);
  return it == entries_.end() ? nullptr : it->second;
}

std::string ChannelsService::list_json() const {
  std::shared_lock lock(mu_);
  std::string out = "[";
  for (const auto& [id, e] : entries_) {
    if (out.size() > 1) out += ",";
    events::ObjectWriter w(&out);
    w.text("id", id)
        .text("title", e->channel->title)
        .text("description", e->channel->description)
        .text("plugin", e->plugin)
        .boolean("deliver", e->channel->c.deliver != nullptr)
        .boolean("check_recipient", e->channel->c.check_recipient != nullptr);
  }
  return out + "]";
}

opk_status ChannelsService::deliver(const std::string& channel_id, const opk_notification* message,
                                    opk_delivery_result* result) {
  if (!writable(result)) return OPK_ERR_INVALID_ARGUMENT;
  auto e = find(channel_id);
  std::shared_lock<std::shared_mutex> hold;
  if (e) hold = std::shared_lock(e->mu);
  if (!e || e->gone) {
    opk_delivery_result r{};
    r.struct_size = sizeof r;
    set_detail(&r, "unknown channel '" + channel_id + "'");
    std::memcpy(static_cast<void*>(result), &r, sizeof r);
    return OPK_ERR_NOT_FOUND;
  }
  if (!message || message->struct_size < offsetof(opk_notification, id)) {
    return guarded(channel_id, result, [&](opk_delivery_result* r) {
      set_detail(r, message ? "message: struct_size " + std::to_string(message->struct_size) + " is too small"
                            : "message: is NULL");
      return OPK_ERR_INVALID_ARGUMENT;
    });
  }
  // The channel reads a whole 1.4 message, whatever the caller was built with.
  opk_notification m{};
  std::memcpy(static_cast<void*>(&m), message, std::min<size_t>(message->struct_size, sizeof m));
  m.struct_size = sizeof m;
  const loader::Channel& ch = *e->channel;
  return guarded(channel_id, result, [&](opk_delivery_result* r) -> opk_status {
    if (ch.c.deliver) return ch.c.deliver(e->instance, ch.self, &m, r);
    // A 1.0 channel: send says only whether it worked.
    const opk_status st = ch.c.send(e->instance, ch.self, &m);
    if (st != OPK_OK && (st == OPK_ERR_INVALID_ARGUMENT || st == OPK_ERR_PERMISSION))
      r->flags |= OPK_DELIVERY_PERMANENT;
    return st;
  });
}

opk_status ChannelsService::check_recipient(const std::string& channel_id, const char* recipient,
                                            const char* options_json, opk_delivery_result* result) {
  if (!writable(result)) return OPK_ERR_INVALID_ARGUMENT;
  auto e = find(channel_id);
  std::shared_lock<std::shared_mutex> hold;
  if (e) hold = std::shared_lock(e->mu);
  if (!e || e->gone) {
    opk_delivery_result r{};
    r.struct_size = sizeof r;
    set_detail(&r, "unknown channel '" + channel_id + "'");
    std::memcpy(static_cast<void*>(result), &r, sizeof r);
    return OPK_ERR_NOT_FOUND;
  }
  const loader::Channel& ch = *e->channel;
  return guarded(channel_id, result, [&](opk_delivery_result* r) -> opk_status {
    if (!recipient) {
      set_detail(r, "recipient: is NULL");
      return OPK_ERR_INVALID_ARGUMENT;
    }
    if (!ch.c.check_recipient) return OPK_OK;  // the channel accepts any recipient
    return ch.c.check_recipient(e->instance, ch.self, recipient, options_json, r);
  });
}

opk_status ChannelsService::cb_list(const opk_host* host, char** answer_json) {
  if (!answer_json) return OPK_ERR_INVALID_ARGUMENT;
  ChannelsService* self = served(host);
  const std::string answer = self ? self->list_json() : "[]";
  *answer_json = plugin_string(answer);
  return *answer_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

opk_status ChannelsService::cb_deliver(const opk_host* host, const char* channel_id, const opk_notification* message,
                                       opk_delivery_result* result) {
  ChannelsService* self = served(host);
  if (!self) return OPK_ERR_UNAVAILABLE;
  opk_status st = self->deliver(channel_id ? channel_id : "", message, result);
  if (st != OPK_OK && writable(result)) report_host_error(result->detail);
  return st;
}

opk_status ChannelsService::cb_check_recipient(const opk_host* host, const char* channel_id, const char* recipient,
                                               const char* options_json, opk_delivery_result* result) {
  ChannelsService* self = served(host);
  if (!self) return OPK_ERR_UNAVAILABLE;
  opk_status st = self->check_recipient(channel_id ? channel_id : "", recipient, options_json, result);
  if (st != OPK_OK && writable(result)) report_host_error(result->detail);
  return st;
}

}  // namespace opk::host
