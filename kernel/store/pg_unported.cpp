// The parts of the Store interface the PostgreSQL store does not have yet:
// runs, alerts and the event log. Each
// refuses with UNSUPPORTED naming itself, so a kernel pointed at PostgreSQL
// fails at the first such call with a clear message instead of losing work.
#include "store/pg_internal.h"

namespace opk::store::internal {

namespace {

Status pg_not_yet(const char* what) {
  return Status(OPK_ERR_UNSUPPORTED,
                std::string("store (postgresql): ") + what + " is not available yet on PostgreSQL");
}

}  // namespace

Status PgStore::create_runs(std::vector<RunRow>*, std::vector<AuditRow>*) {
  return pg_not_yet("create_runs");
}
Status PgStore::mark_running(const std::vector<int64_t>&, int64_t, const std::string&, std::vector<int64_t>*,
                             const std::vector<Completion>*) {
  return pg_not_yet("mark_running");
}
Status PgStore::complete_runs(const std::vector<Completion>&) {
  return pg_not_yet("complete_runs");
}
Status PgStore::recover_runs(const std::vector<Completion>&, std::vector<RunRow>*) {
  return pg_not_yet("recover_runs");
}
Status PgStore::complete_pending(const Completion&, bool*) {
  return pg_not_yet("complete_pending");
}
Status PgStore::append_logs(const std::vector<LogRow>&) {
  return pg_not_yet("append_logs");
}
Status PgStore::set_hold(int64_t, bool) {
  return pg_not_yet("set_hold");
}
Status PgStore::get_run(int64_t, RunRow*) {
  return pg_not_yet("get_run");
}
StatusOr<std::vector<RunRow>> PgStore::list_runs(const RunFilter&) {
  return pg_not_yet("list_runs");
}
StatusOr<std::vector<RunRow>> PgStore::runs_in_phase(const std::string&, size_t) {
  return pg_not_yet("runs_in_phase");
}
StatusOr<std::vector<LogRow>> PgStore::logs(int64_t, int64_t, size_t) {
  return pg_not_yet("logs");
}
StatusOr<std::vector<LogRow>> PgStore::last_logs(int64_t, size_t) {
  return pg_not_yet("last_logs");
}
StatusOr<std::vector<StepRow>> PgStore::steps(int64_t) {
  return pg_not_yet("steps");
}
Status PgStore::flag_stale(int64_t, int64_t*, const RunEventsOf&) {
  return pg_not_yet("flag_stale");
}
Status PgStore::prune(int64_t, size_t, int64_t*) {
  return pg_not_yet("prune");
}

Status PgStore::save_alerts(std::vector<AlertSave>*) {
  return pg_not_yet("save_alerts");
}
Status PgStore::get_alert(int64_t, const AlertView&, AlertRow*) {
  return pg_not_yet("get_alert");
}
Status PgStore::find_open_alert(const std::string&, const std::string&, const std::string&, AlertRow*) {
  return pg_not_yet("find_open_alert");
}
StatusOr<std::vector<AlertRow>> PgStore::list_alerts(const AlertQuery&) {
  return pg_not_yet("list_alerts");
}
StatusOr<std::vector<AlertRow>> PgStore::alert_chain(const std::string&, const std::string&, const std::string&,
                                                     size_t) {
  return pg_not_yet("alert_chain");
}
StatusOr<std::vector<AlertEvent>> PgStore::alert_events(int64_t) {
  return pg_not_yet("alert_events");
}
StatusOr<std::vector<AlertCount>> PgStore::alert_counts(const AlertView&) {
  return pg_not_yet("alert_counts");
}

Status PgStore::append_events(std::vector<EventRow>*) {
  return pg_not_yet("append_events");
}
Status PgStore::append_keyed_event(const std::string&, const std::string&, EventRow*, bool*) {
  return pg_not_yet("append_keyed_event");
}
StatusOr<std::vector<EventRow>> PgStore::events_after(int64_t, size_t) {
  return pg_not_yet("events_after");
}
Status PgStore::get_event(int64_t, EventRow*) {
  return pg_not_yet("get_event");
}
int64_t PgStore::last_event_seq() {
  return 0;
}
Status PgStore::ack_events(const std::string&, int64_t, int64_t) {
  return pg_not_yet("ack_events");
}
StatusOr<std::vector<EventConsumer>> PgStore::event_consumers() {
  return pg_not_yet("event_consumers");
}
Status PgStore::prune_events(int64_t, int64_t, size_t, int64_t*) {
  return pg_not_yet("prune_events");
}
void PgStore::set_event_listener(std::function<void(int64_t)>) {}
void PgStore::set_alert_events(AlertEventsOf) {}

}  // namespace opk::store::internal
