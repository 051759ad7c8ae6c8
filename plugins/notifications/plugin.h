// plugin.h -- notifications: groups of rules that turn the kernel's events
// (opk.events/1) into messages through the notification channels
// (opk.channels/1), kept in a durable outbox in the kernel's store and
// delivered with retries; an admin API to manage them
// (/api/v1/notifications/...) and the extension opskernel.notifications/1
// for the failures inbox. docs/notifications.md describes it.
//
// Settings ([plugin.notifications]; docs/notifications.md):
//   default_group      group for runs of job types without one of their own
//   job_type_groups    "type=group, type=group": a job type's group
//   workers            delivery threads (1..16, default 2)
//   retry_schedule     each attempt's delay after the previous one (the
//                      first's after the event), default 0, 5s, 5m, 30m, 2h,
//                      5h, 10h, 10h: eight attempts
//   retry_jitter       fraction each delay varies by at random (0..0.5, default 0.2)
//   circuit_failures   consecutive failures that open an endpoint's circuit (default 5)
//   circuit_open       how long it stays open before a probe (default 60s)
//   timeout            one attempt's limit (default 15s)
//   poll_wait          longest wait for new events in one read (default 2s)
//   locale             locale of the scheduled jobs' report mails (en, sv)
// Thread-safety: routes, the consumer and the workers run at once; the
// settings are immutable after init, the rest is in the store.
#ifndef OPSKERNEL_PLUGINS_NOTIFICATIONS_PLUGIN_H
#define OPSKERNEL_PLUGINS_NOTIFICATIONS_PLUGIN_H

#include <opskernel/opk.hpp>

#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "repo.h"

namespace opk::notify {

// The plugin's settings, read and checked at init.
struct Config {
  std::string default_group;
  std::map<std::string, std::string> job_type_groups;
  int workers = 2;
  std::vector<int64_t> retry_schedule_ms = {0,         5'000,      300'000,    1'800'000,
                                            7'200'000, 18'000'000, 36'000'000, 36'000'000};
  double retry_jitter = 0.2;
  int64_t circuit_failures = 5;
  int64_t circuit_open_ms = 60'000;
  int64_t timeout_ms = 15'000;
  int64_t poll_wait_ms = 2'000;
  std::string locale = "en";
};

// Reads the settings through `settings`; INVALID_ARGUMENT naming the key.
Status read_config(Settings& settings, Config* out);

class Outbox;

class NotifyPlugin : public Plugin {
 public:
  explicit NotifyPlugin(Host host);
  ~NotifyPlugin() override;

  // Reads the settings and migrates the tables.
  Status init() override;
  // Adds the API's routes and starts the event consumer and the workers.
  Status start() override;
  // Stops the consumer and the workers (an attempt in flight ends first).
  void stop() override;
  const void* extension(std::string_view id) override;

  const Config& config() const { return config_; }
  const Repo& repo() const { return *repo_; }
  // Whether `node` is `scope` or lies under it (opk.identity/1).
  bool contains(const std::string& scope, const std::string& node) const;
  // Whether hierarchy node `node` exists.
  bool node_exists(const std::string& node) const;
  // Wakes the delivery workers (a replay, an enabled endpoint).
  void wake() const;
  // *id gets the active suppression holding delivery `d` at `now_ms` (its
  // endpoint suppressed at or above its scope), "" when none.
  Status suppressed_by(const Delivery& d, int64_t now_ms, std::string* id) const;
  // Puts `endpoint`'s held deliveries that no active suppression covers
  // any more back to pending now, and wakes the workers.
  Status resume_endpoint(const std::string& endpoint) const;
  // Lifts the suppressions whose until_ms has passed and resumes their
  // endpoints (audited as the plugin's system principal).
  void expire_suppressions() const;

 private:
  Status add_routes();  // routes.cpp

  Config config_;
  std::unique_ptr<Repo> repo_;
  std::unique_ptr<Outbox> outbox_;
  const opk_identity_v1* identity_ = nullptr;
};

}  // namespace opk::notify

#endif  // OPSKERNEL_PLUGINS_NOTIFICATIONS_PLUGIN_H
