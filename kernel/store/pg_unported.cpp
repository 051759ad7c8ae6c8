// The parts of the Store interface the PostgreSQL store does not have yet:
// alerts. Each
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

}  // namespace opk::store::internal
