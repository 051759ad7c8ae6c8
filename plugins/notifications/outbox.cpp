// The durable outbox (outbox.h): the event consumer and the delivery workers.
#include "outbox.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <set>

#include "plugin.h"
#include "render.h"

namespace opk::notify {
namespace {

constexpr int kReadLimit = 200;        // events per read
constexpr int kDueBatch = 16;          // deliveries a worker looks at per pass (the list: this per worker)
constexpr size_t kClaimBatch = 4;      // deliveries a worker claims in one transaction
constexpr int64_t kMaxNapMs = 1000;    // the longest a worker sleeps without looking (other kernels enqueue too)
constexpr int64_t kAckEveryMs = 1000;  // acknowledgements while events keep coming (retention only)
constexpr int64_t kGatherMs = 20;      // the pause after a read of fewer events than kReadLimit
constexpr int64_t kDueListMs = 1000;   // how long a worker claims from one read of the due list

// The event of one item of a read's answer, its payload moved out of it
// (a document is often most of the event's bytes).
Event event_of(Json& e) {
  Event ev;
  ev.seq = e.value("seq", int64_t{0});
  ev.time_ms = e.value("time_ms", int64_t{0});
  ev.kind = e.value("kind", "");
  ev.scope = e.value("scope", "");
  ev.subject = e.value("subject", "");
  auto payload = e.find("payload");
  ev.payload = payload != e.end() ? std::move(*payload) : Json::object();
  return ev;
}

std::string run_field(const Event& e, const char* field) {
  if (!e.payload.is_object() || !e.payload.contains("run") || !e.payload["run"].is_object()) return {};
  const Json& v = e.payload["run"].contains(field) ? e.payload["run"][field] : Json();
  return v.is_string() ? v.get<std::string>() : std::string();
}

// True when `e` is about an alert an operator silenced past the event's time:
// its changes notify no one until the silence ends (the silencing itself,
// alert.silenced, still does, for the rules that ask for it).
bool silenced(const Event& e) {
  if (e.kind.rfind("alert.", 0) != 0 || e.kind == "alert.silenced") return false;
  if (!e.payload.is_object() || !e.payload.contains("alert") || !e.payload["alert"].is_object()) return false;
  const Json& alert = e.payload["alert"];
  const Json& until = alert.contains("silenced_until_ms") ? alert["silenced_until_ms"] : Json();
  return until.is_number_integer() && until.get<int64_t>() > e.time_ms;
}

double unit_random(unsigned* seed) {
  std::minstd_rand r(*seed);
  *seed = static_cast<unsigned>(r());
  return static_cast<double>(*seed % 1'000'000) / 1'000'000.0;
}

}  // namespace

Outbox::Outbox(NotifyPlugin& plugin) : p_(plugin) {}

Outbox::~Outbox() {
  stop();
}

Status Outbox::start() {
  events_ = p_.host().extension<opk_events_v1>(OPK_EXT_EVENTS);
  channels_ = p_.host().extension<opk_channels_v1>(OPK_EXT_CHANNELS);
  if (events_ == nullptr || !events_->call)
    return Status::unavailable("the kernel offers no event log (opk.events/1, ABI 1.4): nothing would be notified");
  if (channels_ == nullptr || !channels_->deliver)
    return Status::unavailable("the kernel offers no notification channels (opk.channels/1, ABI 1.4)");
  // A host whose event log only takes emits (the SDK's test host) cannot be
  // consumed: say so once instead of failing every read.
  Json probe;
  if (Status s = events_call("read", {{"after", 0}, {"limit", 1}, {"wait_ms", 0}}, &probe);
      s.code() == OPK_ERR_UNSUPPORTED)
    return Status::unavailable("the event log cannot be read (" + s.message() + "): nothing would be notified");
  node_ = p_.host().config_or("kernel.node_name", "");
  int64_t recovered = 0;
  if (Status s = p_.repo().recover(node_, p_.host().now_ms(), &recovered); !s)
    p_.host().warn("notifications: deliveries in flight at the last stop not recovered: " + s.message());
  else if (recovered > 0)
    p_.host().info("notifications: " + std::to_string(recovered) +
                   " deliveries in flight when the kernel last stopped are sent again (the same ids)");
  running_ = true;
  consumer_ = std::thread([this] { consume_loop(); });
  for (int i = 0; i < p_.config().workers; ++i)
    workers_.emplace_back([this, i] { worker_loop(i, static_cast<unsigned>(std::random_device{}()) + i); });
  return Status::ok();
}

void Outbox::stop() {
  if (!running_.exchange(false)) return;
  wake();
  if (consumer_.joinable()) consumer_.join();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  workers_.clear();
}

void Outbox::wake() {
  {
    std::lock_guard lock(mu_);
    ++wakes_;
  }
  cv_.notify_all();
}

void Outbox::nap(int64_t ms) {
  std::unique_lock lock(mu_);
  const uint64_t seen = wakes_;
  cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, ms)), [&] { return wakes_ != seen || !running_; });
}

Status Outbox::events_call(const char* operation, const Json& request, Json* answer) const {
  char* out = nullptr;
  const std::string body = request.dump();
  const opk_status st =
      events_->call(p_.host().raw(), p_.host().system_principal(), operation, body.c_str(), "notifications", &out);
  Json doc = out ? Json::parse(out, nullptr, false) : Json();
  if (out) p_.host().free(out);
  if (st != OPK_OK)
    return Status(st, std::string("opk.events/1 ") + operation + ": " +
                          (doc.is_object() ? doc.value("error", "failed") : std::string("failed")));
  *answer = std::move(doc);
  return Status::ok();
}

// ------------------------------------------------------------------ consumer

std::string Outbox::report_recipients(const Event& e, const std::string& job,
                                      std::map<std::string, std::string>* seen) const {
  // The run event's own copy (run.report_recipients: an array of addresses
  // or one comma-separated text), when the kernel writes one.
  const Json& run = e.payload.is_object() && e.payload.contains("run") ? e.payload["run"] : Json();
  if (run.is_object() && run.contains("report_recipients")) {
    const Json& r = run["report_recipients"];
    if (r.is_string()) return r.get<std::string>();
    std::string s;
    if (r.is_array())
      for (const auto& a : r)
        if (a.is_string()) s += (s.empty() ? "" : ",") + a.get<std::string>();
    return s;
  }
  // Otherwise the scheduled job's, as stored now (opk.jobs/1), once a batch.
  if (auto it = seen->find(job); it != seen->end()) return it->second;
  std::string list;
  const auto* jobs = p_.host().extension<opk_jobs_v1>(OPK_EXT_JOBS);
  if (jobs != nullptr && jobs->call) {
    const std::string request = Json{{"id", job}, {"last_n", 1}}.dump();
    char* answer = nullptr;
    const opk_status st =
        jobs->call(p_.host().raw(), p_.host().system_principal(), "job", request.c_str(), "notifications", &answer);
    const Json doc = answer ? Json::parse(answer, nullptr, false) : Json();
    if (answer) p_.host().free(answer);
    if (st == OPK_OK && doc.is_object() && doc.contains("job") && doc["job"].is_object()) {
      const Json& r = doc["job"].contains("report_recipients") ? doc["job"]["report_recipients"] : Json();
      if (r.is_array())
        for (const auto& a : r)
          if (a.is_string()) list += (list.empty() ? "" : ",") + a.get<std::string>();
    }
  }
  (*seen)[job] = list;
  return list;
}

void Outbox::consume_loop() {
  int64_t backoff = 0;
  while (running_) {
    size_t got = 0;
    Status s = consume_once(p_.config().poll_wait_ms, &got);
    if (s) {
      backoff = 0;
      // Less than a full read: events come one by one. Waiting a moment
      // lets them gather, so a busy engine's events are matched and written
      // in a few transactions, not one each (a notification waits that
      // much longer).
      if (got > 0 && got < static_cast<size_t>(kReadLimit) && running_)
        std::this_thread::sleep_for(std::chrono::milliseconds(kGatherMs));
      continue;
    }
    backoff = std::min<int64_t>(backoff == 0 ? 500 : backoff * 2, 30'000);
    p_.host().warn("notifications: events not handled (retrying in " + std::to_string(backoff) +
                   " ms): " + s.message());
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff);
    while (running_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status Outbox::load_rules(int64_t counter) {
  const Repo& repo = p_.repo();
  RuleSet next;
  std::vector<Repo::JobGroup> jobs;
  if (Status s = repo.groups(&next.groups); !s) return s;
  if (Status s = repo.rules("", &next.rules); !s) return s;
  if (Status s = repo.job_groups(&jobs); !s) return s;
  next.bindings.default_group = p_.config().default_group;
  next.bindings.job_type_groups = p_.config().job_type_groups;
  for (const auto& j : jobs) next.bindings.scheduled_job_groups[j.scheduled_job_id] = j.group_id;
  next.counter = counter;
  rules_ = std::move(next);
  // After the move: the pointers are into rules_'s own vector.
  rules_.by_id.clear();
  for (const auto& g : rules_.groups) rules_.by_id[g.id] = &g;
  return Status::ok();
}

void Outbox::ack(int64_t seq, bool now) {
  const int64_t t = p_.host().now_ms();
  if (seq <= acked_ || (!now && t - acked_ms_ < kAckEveryMs)) return;
  Json acked;
  if (Status s = events_call("ack", {{"consumer", kConsumer}, {"seq", seq}}, &acked); !s) {
    p_.host().warn("notifications: " + s.message());  // the cursor is ours; retention just keeps more
    return;
  }
  acked_ = seq;
  acked_ms_ = t;
}

Status Outbox::consume_once(int64_t wait_ms, size_t* got) {
  const Repo& repo = p_.repo();
  int64_t cursor = 0, since_ms = 0;
  Status cs = cursor_made_ ? repo.read_cursor(kConsumer, &cursor, &since_ms)
                           : Status::not_found("the cursor is made at the first read");
  if (cs.code() == OPK_ERR_NOT_FOUND) {
    cs = repo.cursor(kConsumer, p_.host().now_ms(), &cursor, &since_ms);
    cursor_made_ = cs.is_ok();
  }
  if (!cs) return cs;
  Json answer;
  if (Status s = events_call("read", {{"after", cursor}, {"limit", kReadLimit}, {"wait_ms", wait_ms}}, &answer); !s)
    return s;
  if (!answer.is_object() || !answer.contains("events") || !answer["events"].is_array())
    return Status(OPK_ERR_INTERNAL, "opk.events/1 read: the answer has no events");
  Json& list = answer["events"];
  *got = list.size();
  if (list.empty()) {
    ack(cursor, true);  // idle: what was handled is acknowledged now
    return Status::ok();
  }

  // Groups, rules and bindings are kept in memory and read again when the
  // change counter moved (a change through either kernel's API moves it in
  // its own transaction): a rule saved meanwhile applies from the next
  // batch on. The counter is read once the events are here: a change made
  // while the read waited is seen by them.
  int64_t changes = 0;
  if (Status s = repo.changes(&changes); !s) return s;
  if (rules_.counter != changes)
    if (Status s = load_rules(changes); !s) return s;
  const std::vector<Rule>& rules = rules_.rules;
  const std::map<std::string, const Group*>& by_id = rules_.by_id;
  const Bindings& bindings = rules_.bindings;
  const Contains contains = [this](const std::string& scope, const std::string& node) {
    return p_.contains(scope, node);
  };

  std::map<std::string, std::string> jobs_seen;  // scheduled job -> its report recipients, this batch
  std::map<std::string, std::string> endpoints;  // recipient -> its endpoint id, this batch
  std::vector<Delivery> out;
  int64_t last = cursor;
  const int64_t now = p_.host().now_ms();
  const int64_t first_ms = now + (p_.config().retry_schedule_ms.empty() ? 0 : p_.config().retry_schedule_ms[0]);
  // The rules an event matched, with the scope of each.
  std::vector<std::pair<const Rule*, std::string>> matched;
  std::optional<Rule> report;
  for (auto& item : list) {
    Event e = event_of(item);
    last = std::max(last, e.seq);
    if (e.time_ms < since_ms) continue;  // before this plugin's first start
    if (silenced(e)) continue;
    matched.clear();
    for (const auto& rule : rules) {
      auto g = by_id.find(rule.group_id);
      if (g == by_id.end() || !group_applies(bindings, rule.group_id, e)) continue;
      if (matches(rule, g->second->scope, e, contains)) matched.emplace_back(&rule, g->second->scope);
    }
    const std::string job = run_field(e, "scheduled_job_id");
    report.reset();
    if (!job.empty() && e.kind.rfind("run.", 0) == 0)
      if ((report = report_rule(job, report_recipients(e, job, &jobs_seen), p_.config().locale)))
        if (matches(*report, "platform", e, contains))
          matched.emplace_back(&*report, e.scope.empty() ? "platform" : e.scope);
    if (matched.empty()) continue;
    // The event's document is written once and moved into the templates'
    // data, for all its rules and recipients.
    Rendering r = rendering_of(std::move(e));
    const std::string event_json = event_json_of(r);
    for (const auto& [rule, scope] : matched) {
      bool envelope = false;
      const Message m = render(r, *rule, &envelope);
      if (!m.render_error.empty())
        p_.host().warn("notifications: rule " + rule->id + ", event " + std::to_string(r.event.seq) +
                       ": the default template was used: " + m.render_error);
      for (const auto& x : rule->recipients) {
        Delivery d;
        d.id = delivery_id(rule->id, r.event.seq, rule->channel, x.to);
        d.rule_id = rule->id;
        d.group_id = rule->group_id;
        d.scope = scope;
        d.event_seq = r.event.seq;
        d.event_kind = r.event.kind;
        d.event_subject = r.event.subject;
        d.channel = rule->channel;
        d.recipient = x.to;
        auto ep = endpoints.find(rule->channel + '\n' + x.to);
        if (ep == endpoints.end())
          ep = endpoints.emplace(rule->channel + '\n' + x.to, endpoint_id(rule->channel, x.to)).first;
        d.endpoint = ep->second;
        d.message_text =
            stored_message(m, envelope, event_json, x.options.dump(-1, ' ', false, Json::error_handler_t::replace));
        d.state = kPending;
        d.next_attempt_ms = first_ms;
        d.created_ms = d.updated_ms = now;
        d.render_error = m.render_error;
        out.push_back(std::move(d));
      }
    }
  }
  if (answer.contains("last") && answer["last"].is_number_integer())
    last = std::max(last, answer["last"].get<int64_t>());
  if (Status s = repo.enqueue(kConsumer, out, last); !s) return s;
  ack(last, false);
  // The workers are woken for what is due before their next look anyway.
  if (std::any_of(out.begin(), out.end(), [&](const Delivery& d) { return d.next_attempt_ms <= now + kMaxNapMs; }))
    wake();
  return Status::ok();
}

// ------------------------------------------------------------------- workers

void Outbox::worker_loop(int index, unsigned seed) {
  const int workers = std::max(1, p_.config().workers);
  while (running_) {
    const int64_t now = p_.host().now_ms();
    // Suppressions that ended are lifted once a second, by one worker.
    int64_t last = last_expiry_ms_.load();
    if (now - last >= 1000 && last_expiry_ms_.compare_exchange_strong(last, now)) p_.expire_suppressions();
    std::vector<std::string> ids;
    Status s = p_.repo().due(now, kDueBatch * workers, &ids);
    if (!s) {
      p_.host().warn("notifications: due deliveries not read: " + s.message());
      nap(kMaxNapMs);
      continue;
    }
    if (ids.empty()) {
      int64_t next = 0;
      int64_t wait = kMaxNapMs;
      if (p_.repo().next_due(&next) && next > now) wait = std::min(wait, next - now);
      nap(wait);
      continue;
    }
    // Workers look at the same due list, each starting at its own share of
    // it (at a random place when the list is short), and go on down the
    // list, claiming a few at a time in one transaction (their leases cover
    // them all), while the list is young: a claim takes only what is still
    // due, so what another worker took meanwhile is skipped, one worker
    // held up by a slow endpoint leaves its share to the others, and the
    // list is read once for several claims.
    const size_t start = ids.size() > static_cast<size_t>(kDueBatch)
                             ? ids.size() / static_cast<size_t>(workers) * static_cast<size_t>(index % workers)
                             : seed % ids.size();
    std::rotate(ids.begin(), ids.begin() + static_cast<long>(start), ids.end());
    const Config& c = p_.config();
    for (size_t from = 0; from < ids.size() && running_;) {
      const int64_t at = p_.host().now_ms();
      if (from > 0 && at - now > kDueListMs) break;  // read it again
      const size_t n = std::min(kClaimBatch, ids.size() - from);
      const std::vector<std::string> some(ids.begin() + static_cast<long>(from),
                                          ids.begin() + static_cast<long>(from + n));
      from += n;
      std::vector<Delivery> claimed;
      const int64_t lease = at + static_cast<int64_t>(n) * c.timeout_ms + 30'000;
      if (Status cs = p_.repo().claim_many(some, at, lease, node_, &claimed); !cs) {
        p_.host().warn("notifications: deliveries not claimed: " + cs.message());
        nap(kMaxNapMs);
        break;
      }
      for (auto& d : claimed) {
        if (!running_) {
          p_.repo().release(d.id, d.next_attempt_ms);  // not attempted: back as it was
          continue;
        }
        attempt(d, &seed);
      }
    }
  }
}

void Outbox::attempt(const Delivery& d, unsigned* seed) {
  const Config& c = p_.config();
  const Repo& repo = p_.repo();
  int64_t now = p_.host().now_ms();
  // An endpoint suppressed for the delivery's scope (the failures inbox):
  // held, unattempted, until the suppression is lifted or ends.
  std::string suppression;
  if (Status s = p_.suppressed_by(d, now, &suppression); !s) {
    repo.release(d.id, now + 1000);
    return;
  }
  if (!suppression.empty()) {
    repo.hold(d.id, "endpoint suppressed (" + suppression + ")", now);
    return;
  }
  Endpoint ep;
  const bool known = repo.endpoint(d.endpoint, &ep).is_ok();
  if (known && ep.disabled) {
    repo.skip(d.id, "endpoint disabled: " + ep.disabled_reason, now);
    return;
  }
  if (known && ep.failures >= c.circuit_failures) {
    // The circuit opened: one delivery probes it, the others wait for it.
    bool won = false;
    repo.take_probe(d.endpoint, now, now + c.timeout_ms + 5'000, &won);
    if (!won) {
      repo.release(d.id, std::max(d.next_attempt_ms, now));
      return;
    }
  }

  const Json& m = d.message;
  const std::string subject = m.value("subject", ""), body = m.value("body", ""), html = m.value("html_body", "");
  const std::string type = m.value("content_type", "text/plain"), event_json = m.value("event_json", "");
  const std::string options = m.contains("options") && m["options"].is_object() ? m["options"].dump() : "";
  const char* recipients[] = {d.recipient.c_str()};
  opk_notification n{};
  n.struct_size = sizeof n;
  n.recipients = recipients;
  n.recipient_count = 1;
  n.subject = subject.c_str();
  n.body = body.c_str();
  n.content_type = type.c_str();
  n.event_json = event_json.empty() ? nullptr : event_json.c_str();
  n.id = d.id.c_str();
  n.attempt = static_cast<uint32_t>(d.attempts);
  n.html_body = html.empty() ? nullptr : html.c_str();
  n.options_json = options.empty() ? nullptr : options.c_str();
  n.timeout_ms = c.timeout_ms;
  opk_delivery_result r{};
  r.struct_size = sizeof r;
  const auto started = std::chrono::steady_clock::now();
  const opk_status st = channels_->deliver(p_.host().raw(), d.channel.c_str(), &n, &r);
  r.detail[sizeof r.detail - 1] = '\0';
  now = p_.host().now_ms();

  Repo::Outcome o;
  o.attempt.attempt = d.attempts;
  o.attempt.time_ms = now;
  o.attempt.code = r.code;
  o.attempt.latency_ms =
      r.latency_ms > 0
          ? r.latency_ms
          : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  o.attempt.detail = r.detail;
  o.circuit_failures = c.circuit_failures;
  // A success resets the endpoint's row only when there is something to
  // reset (its first delivery makes it): one write less per delivery.
  o.endpoint_clean = known && ep.failures == 0 && ep.open_until_ms == 0;
  // An unknown channel (NOT_FOUND: its plugin stopped or is disabled) is
  // retried on the schedule: it may be back before the last attempt.
  const bool permanent =
      (r.flags & OPK_DELIVERY_PERMANENT) != 0 || st == OPK_ERR_INVALID_ARGUMENT || st == OPK_ERR_PERMISSION;
  if (st == OPK_OK) {
    o.attempt.outcome = kDelivered;
    o.state = kDelivered;
    o.success = true;
  } else if (r.flags & OPK_DELIVERY_GONE) {
    o.attempt.outcome = "gone";
    o.state = kFailed;
    o.disable = true;
    o.reason = "gone (" + std::to_string(r.code) + ") at attempt " + std::to_string(d.attempts) + " of " + d.id + ": " +
               o.attempt.detail;
  } else if (permanent) {
    o.attempt.outcome = "refused";
    o.state = kFailed;
  } else {
    o.attempt.outcome = "failed";
    o.count_failure = true;
    o.open_until_ms = now + c.circuit_open_ms;
    const int64_t delay =
        retry_delay_ms(c.retry_schedule_ms, d.attempts, c.retry_jitter, unit_random(seed), r.retry_after_ms);
    if (delay < 0) {
      o.state = kDead;
    } else {
      o.state = kPending;
      o.next_ms = now + delay;
    }
  }
  if (o.attempt.detail.empty() && st != OPK_OK) o.attempt.detail = "failed with status " + std::to_string(st);
  // The endpoint was suppressed while this attempt ran: the delivery is
  // held instead of failing into the inbox (the attempt is kept).
  if ((o.state == kDead || o.state == kFailed) && !o.disable) {
    std::string suppression;
    if (p_.suppressed_by(d, now, &suppression) && !suppression.empty()) {
      o.state = kSuppressed;
      o.next_ms = 0;
    }
  }
  if (Status s = repo.record(d, o); !s) {
    // The lease runs out and the delivery is tried again: at least once.
    p_.host().error("notifications: attempt " + std::to_string(d.attempts) + " of " + d.id +
                    " not recorded: " + s.message());
    return;
  }
  if (o.success && known && ep.failures > 0) repo.wake_endpoint(d.endpoint, now);
  if (o.disable) {
    Audit audit(p_.host());
    Status a = audit.record(p_.host().system_principal(),
                            {.action = "notifications.endpoint.disable",
                             .target = "endpoint:" + d.endpoint,
                             .reason = o.reason,
                             .before = {{"disabled", false}},
                             .after = {{"disabled", true}, {"channel", d.channel}, {"recipient", d.recipient}},
                             .outcome = "success",
                             .source = ""});
    if (!a) p_.host().error("notifications: audit row of the disabled endpoint not written: " + a.message());
    p_.host().warn("notifications: endpoint " + d.endpoint + " (" + d.channel + " " + d.recipient +
                   ") disabled: " + o.reason);
  }
}

}  // namespace opk::notify
