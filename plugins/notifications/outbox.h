// outbox.h -- the durable outbox: a consumer thread that reads the kernel's
// events (opk.events/1) after its cursor, matches the rules and inserts one
// delivery per (rule, recipient) in the same store transaction as its
// cursor's move, then acknowledges the events; and a small pool of delivery
// workers that take due deliveries, send them through opk.channels/1 and
// record each attempt, retrying on the schedule with jitter, honouring
// Retry-After, disabling an endpoint that answers 410 Gone and holding an
// endpoint's deliveries behind an open circuit until a probe succeeds.
// Thread-safety: start and stop on the control thread; wake from any thread.
#ifndef OPSKERNEL_PLUGINS_NOTIFICATIONS_OUTBOX_H
#define OPSKERNEL_PLUGINS_NOTIFICATIONS_OUTBOX_H

#include <opskernel/opk.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model.h"
#include "repo.h"

namespace opk::notify {

class NotifyPlugin;

// The consumer's id: its cursor row and the consumer it acknowledges as.
inline constexpr const char* kConsumer = "notifications";

class Outbox {
 public:
  explicit Outbox(NotifyPlugin& plugin);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Starts the consumer and the workers. UNAVAILABLE naming the service
  // when the kernel lacks opk.events/1 or opk.channels/1.
  Status start();
  // Stops them; an attempt in flight and a read in progress end first.
  void stop();
  // Wakes the workers: something may be due now.
  void wake();

 private:
  void consume_loop();
  // One read of the events after the cursor (waiting up to `wait_ms` for
  // one), matched and written with the cursor's move; *got gets how many.
  Status consume_once(int64_t wait_ms, size_t* got);
  // Reads the groups, rules and scheduled jobs' groups into rules_, as of
  // change counter `counter`.
  Status load_rules(int64_t counter);
  // Acknowledges the events up to `seq` to the event log: at once when
  // `now`, else at most once every kAckEveryMs (acknowledgements only hold
  // the log's retention; the cursor is the plugin's own row).
  void ack(int64_t seq, bool now);
  Status events_call(const char* operation, const Json& request, Json* answer) const;
  // The report recipients of scheduled job `job` for run event `e`
  // (comma-separated; "" for none): the event's own, else the job's
  // (opk.jobs/1), looked up once per batch through `seen`.
  std::string report_recipients(const Event& e, const std::string& job, std::map<std::string, std::string>* seen) const;
  // Delivery worker `index` (0 .. workers - 1) until stopped.
  void worker_loop(int index, unsigned seed);
  // One attempt of claimed delivery `d`, recorded.
  void attempt(const Delivery& d, unsigned* seed);
  // Sleeps up to `ms` or until woken or stopping.
  void nap(int64_t ms);

  NotifyPlugin& p_;
  const opk_events_v1* events_ = nullptr;
  const opk_channels_v1* channels_ = nullptr;
  std::string node_;  // kernel.node_name: whose leases are ours
  std::atomic<bool> running_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t wakes_ = 0;                      // guarded by mu_
  std::atomic<int64_t> last_expiry_ms_{0};  // when ended suppressions were last lifted
  // The consumer thread's own: what events are matched against.
  struct RuleSet {
    int64_t counter = -1;  // the change counter read with them; -1 not read
    std::vector<Group> groups;
    std::vector<Rule> rules;
    std::map<std::string, const Group*> by_id;  // into groups
    Bindings bindings;
  };
  RuleSet rules_;
  bool cursor_made_ = false;  // the cursor row exists (made at the first read)
  int64_t acked_ = 0;         // the last seq acknowledged
  int64_t acked_ms_ = 0;      // when
  std::thread consumer_;
  std::vector<std::thread> workers_;
};

}  // namespace opk::notify

#endif  // OPSKERNEL_PLUGINS_NOTIFICATIONS_OUTBOX_H
