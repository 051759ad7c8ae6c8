// portable_store.h -- what both stores do alike, written once: the reads and
// the rare writes whose statements are the same on SQLite and PostgreSQL
// (portable SQL, $n parameters): tenancy nodes, users and API tokens; the
// audit trail's reads and pruning; scheduled jobs, the inventory, failure
// counts and run counts; alerts' reads. PortableStore implements them over
// two primitives each store provides (one read with every column as text;
// one write in its own transaction). What really differs stays in each
// store's files: the hot path's batched and prepared writes, locking and
// group commit, ids the database hands out, arrays and types. Internal to
// kernel/store.
#ifndef OPSKERNEL_KERNEL_STORE_PORTABLE_STORE_H
#define OPSKERNEL_KERNEL_STORE_PORTABLE_STORE_H

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace opk::store::internal {

// The part of the Store both backends share (SqliteStore, PgStore derive
// from it).
class PortableStore : public Store {
 public:
  // --- scheduled jobs (their next runs are each store's: batched writes)
  Status create_scheduled_job(ScheduledJob j) override;
  Status update_scheduled_job(const ScheduledJob& in) override;
  Status get_scheduled_job(const std::string& id, ScheduledJob* out) override;
  Status delete_scheduled_job(const std::string& id) override;
  StatusOr<std::vector<ScheduledJob>> list_scheduled_jobs() override;
  StatusOr<std::vector<InventoryRow>> inventory() override;
  StatusOr<std::map<int64_t, int64_t>> failures_per_day(const std::string& id, int64_t since_ms,
                                                        bool terminated) override;
  StatusOr<std::vector<RunCount>> run_counts() override;
  StatusOr<std::vector<RunSummaryRow>> run_summary(int64_t since_ms, int64_t now_ms) override;
  StatusOr<std::vector<FailureGroup>> failure_groups(const FailureQuery& query) override;

  // --- tenancy and identities (disable_user is each store's: one
  // transaction of two statements)
  Status add_node(const Node& n) override;
  StatusOr<std::vector<Node>> list_nodes() override;
  Status add_user(const User& u) override;
  Status get_user(const std::string& id, User* out) override;
  StatusOr<std::vector<User>> list_users() override;
  Status add_token(const TokenRow& t) override;
  Status find_token(const std::string& hash, TokenRow* out) override;
  StatusOr<std::vector<TokenRow>> list_tokens(const std::string& user_id) override;

  // --- audit (appending is each store's: batched with runs)
  StatusOr<std::vector<AuditRow>> audit_rows(size_t limit) override;
  Status prune_audit(int64_t before_ms, size_t batch, int64_t* deleted) override;

  // --- alerts' reads (saving is each store's: ids and locking differ)
  Status get_alert(int64_t id, const AlertView& view, AlertRow* out) override;
  Status find_open_alert(const std::string& source, const std::string& related_type, const std::string& related_id,
                         AlertRow* out) override;
  StatusOr<std::vector<AlertRow>> list_alerts(const AlertQuery& query) override;
  StatusOr<std::vector<AlertRow>> alert_chain(const std::string& source, const std::string& related_type,
                                              const std::string& related_id, size_t limit) override;
  StatusOr<std::vector<AlertEvent>> alert_events(int64_t alert_id) override;
  StatusOr<std::vector<AlertCount>> alert_counts(const AlertView& view) override;

 protected:
  // Text parameters of a statement ($1..$n); nullopt binds NULL.
  using SqlParams = std::vector<std::optional<std::string>>;
  // A row read with every column as text (NULL as "").
  using TextRow = std::vector<std::string>;

  // Rows of one of the store's own reads, appended to *out. UNAVAILABLE
  // naming `what` (and the store) if the store cannot be read.
  virtual Status read_text(const std::string& what, const std::string& sql, const SqlParams& params,
                           std::vector<TextRow>* out) = 0;
  // Runs one of the store's own writes in a transaction of its own (durable
  // as the store's other writes when it returns); rows changed into
  // *changed (may be null). CONFLICT for a constraint violation, otherwise
  // UNAVAILABLE naming `what` and the cause.
  virtual Status write_one(const std::string& what, const std::string& sql, const SqlParams& params,
                           int64_t* changed) = 0;

  // Scheduled jobs read with `tail` appended to "SELECT ... FROM
  // scheduled_jobs" (alias j), and `extra` columns after the job's own,
  // returned as text beside each job (a row that cannot be parsed is
  // skipped).
  Status scheduled(const std::string& tail, const std::string& extra, const SqlParams& params,
                   std::vector<std::pair<ScheduledJob, TextRow>>* out);

  // Counts a committed change to runs or scheduled jobs made through this
  // object (generation()).
  std::atomic<uint64_t> generation_{0};

  // Why scheduled job `id` was not deleted by kDeleteJobSql: CONFLICT naming
  // its open runs, or NOT_FOUND if there is no such job.
  Status job_not_deleted(const std::string& id);

 private:
  // Runs an INSERT; CONFLICT naming `what` if the row exists.
  Status insert_unique(const std::string& what, const std::string& sql, const SqlParams& params);
  // Users (tokens) read with `tail` appended to their SELECT, appended to *out.
  Status users_where(const std::string& tail, const SqlParams& params, std::vector<User>* out);
  Status tokens_where(const std::string& tail, const SqlParams& params, std::vector<TokenRow>* out);
};

// Deletes scheduled job $1 only while no run of it is PENDING or RUNNING, in
// one statement (portable).
inline constexpr const char* kDeleteJobSql =
    "DELETE FROM scheduled_jobs WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM runs r JOIN run_state s ON s.id = r.id "
    "WHERE r.scheduled_job_id = $1 AND s.phase IN ('PENDING', 'RUNNING'))";

// Whether create_runs stores `run` only while its scheduled job exists:
// every run of a job but a COMPLETED one of no slot (a record, which starts
// nothing).
inline bool needs_its_job(const RunRow& run) {
  return !run.scheduled_job_id.empty() && (run.phase != kCompleted || run.slot_ms != 0);
}

// create_runs' answer when the scheduled jobs `gone` (one at least) do not
// exist: NOT_FOUND naming the first.
inline Status jobs_gone(const std::vector<std::string>& gone) {
  return Status::not_found("scheduled job '" + gone.front() + "' was deleted" +
                           (gone.size() > 1 ? " (and " + std::to_string(gone.size() - 1) + " more)" : "") +
                           ": no run of it is created");
}

// The condition on run_rows that keeps the runs RunFilter::seen_from lets
// through, `nodes` being the SQL list of its nodes ("'a', 'b'" or "$3, $4"),
// used twice.
std::string runs_seen_from_sql(const std::string& nodes);

}  // namespace opk::store::internal

#endif
