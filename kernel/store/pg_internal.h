// pg_internal.h -- the PostgreSQL store's class, PgStore, and the libpq
// wrappers its files share; internal to kernel/store (store.h is the public
// interface). The layout mirrors the SQLite store's, file by file:
//   pg_store.cpp       the connections (libpq, pooled), health, open_postgresql
//   pg_schema.cpp      the kernel's schema (PostgreSQL DDL, the SQLite store's
//                      version numbers) and the migrations
//   pg_plugin_sql.cpp  plugins' own SQL (opk.store/1), fenced by a role per
//                      plugin, and the kernel's unfenced statements
//   pg_jobs.cpp        scheduled jobs, next runs, the inventory
//   pg_identities.cpp  tenancy nodes, users, API tokens
//   pg_audit.cpp       the audit trail
//   pg_runs.cpp        runs: create, claim, complete, recover, read, prune
//   pg_alerts.cpp      alerts and their history
//   pg_events.cpp      the event log: events written with runs and alerts,
//                      plugins' events, reads, acks, pruning
//
// libpq directly, not Poco Data: parameters travel as text with
// PQexecParams (the same $1..$n a plugin writes), results are read by
// column type OID (plugin_query_typed), and the server's SQLSTATE and
// message reach every Status.
//
// SQL in these files is the PostgreSQL dialect; no other file of the kernel
// has it.
#ifndef OPSKERNEL_KERNEL_STORE_PG_INTERNAL_H
#define OPSKERNEL_KERNEL_STORE_PG_INTERNAL_H

#include <libpq-fe.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/plugin_fence.h"
#include "store/portable_store.h"
#include "store/store.h"
// The helpers both stores share (now_ms, escape, column_int,
// numbered_parameters) and the SQLite store's migrations, whose versions and
// names the PostgreSQL schema keeps.
#include "store/sqlite_internal.h"

namespace opk::store::internal {

// Owners of libpq's objects.
struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;
struct PgConnFinish {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnFinish>;

// The advisory lock of run ids ("opkr"): every transaction that takes ids
// from the runs' sequence holds it shared to its commit; the open-runs mark
// moves only under it held exclusively, so no id below the mark is still
// being written by a transaction the mover cannot see.
inline constexpr int64_t kPgRunIdsLock = 0x6f706b72;

// Text parameters of a statement ($1..$n); nullopt binds NULL.
using PgParams = std::vector<std::optional<std::string>>;

// Runs one statement with text parameters; the result (rows or a command's
// count) into *out if not null. The error as pg_error (plugin_fence.h)
// names `what`.
Status pg_exec(PGconn* conn, const std::string& what, const std::string& sql, const PgParams& params,
               PgResult* out = nullptr);

// Runs one of the store's hot statements (fixed text for `name`, a name of
// its own) as pg_exec does. On a connection of a pool that prepares them
// (PgPool, PostgresOptions::prepared_statements) it is prepared once, under
// `name`, the first time the connection runs it, and executed by name from
// then on, so the server parses and plans it once per connection; on any
// other connection it is sent as pg_exec sends it.
Status pg_exec_hot(PGconn* conn, const char* name, const std::string& what, const std::string& sql,
                   const PgParams& params, PgResult* out = nullptr);

// Runs statements separated by ';' without parameters (a migration script).
Status pg_script(PGconn* conn, const std::string& what, const std::string& sql);

// The name of the role that owns plugin `plugin_id`'s tables in database
// `database`: "opkp_", 8 hex digits of the database's name, "_", the plugin's
// table prefix without its "p_" (truncated to PostgreSQL's 63 bytes, with a
// hash of the id when truncated). Two databases on one cluster never share a
// role; pg_plugin_role_prefix(database) starts every role of one database.
std::string pg_plugin_role(const std::string& database, const std::string& plugin_id);
std::string pg_plugin_role_prefix(const std::string& database);

// `text` as an element of an array literal ('{...}'): quoted, with
// backslashes and double quotes escaped.
std::string pg_array_text(const std::string& text);

// Rows as one array parameter per column, for statements that read them
// with unnest($1::bigint[], $2::text[], ...): the statement's text, and so
// the server's parse and plan, are the same for any number of rows, where a
// VALUES list of $n parameters is parsed and planned anew for each row.
class PgColumns {
 public:
  explicit PgColumns(size_t columns) : arrays_(columns, "{") {}
  // Appends one value to column `col` (0-based): a number, a float with all
  // its digits, a text quoted (never NULL).
  void number(size_t col, int64_t v);
  void real(size_t col, double v);
  void text(size_t col, const std::string& v);
  // The columns as array literals, in order.
  PgParams params() const;

 private:
  void sep(size_t col) {
    if (arrays_[col].size() > 1) arrays_[col] += ',';
  }
  std::vector<std::string> arrays_;
};

// A fixed-size pool of connections to one database. A connection found
// broken is closed and replaced on its next use. With `prepared`, each
// connection it opens keeps the names of the hot statements prepared on it
// (pg_exec_hot).
class PgPool {
 public:
  PgPool(std::string conninfo, size_t size, bool prepared = false);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // A connection of the pool, returned when the lease ends.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept : pool_(o.pool_), conn_(o.conn_) { o.pool_ = nullptr, o.conn_ = nullptr; }
    Lease& operator=(Lease&& o) noexcept;
    ~Lease() { release(); }
    PGconn* get() const { return conn_; }

   private:
    friend class PgPool;
    void release();
    PgPool* pool_ = nullptr;
    PGconn* conn_ = nullptr;
  };

  // Leases an idle connection, opening one if fewer than the pool's size
  // are open, else waiting for one. UNAVAILABLE with libpq's message if a
  // connection cannot be opened.
  Status acquire(Lease* out);
  // Opens a connection outside the pool (the caller owns it).
  Status connect(PgConn* out) const;

 private:
  void put_back(PGconn* conn);

  const std::string conninfo_;
  const size_t size_;
  const bool prepared_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PGconn*> idle_;
  size_t open_ = 0;
};

// The PostgreSQL store. What it does as the SQLite store does is
// PortableStore's (portable_store.h); this class has what differs.
class PgStore final : public PortableStore {
 public:
  PgStore(std::string conninfo, const PostgresOptions& options);
  ~PgStore() override;

  // Connects, learns the database's name and the connecting role, and
  // applies the kernel's migrations.
  Status open();

  // --- schema (pg_schema.cpp)
  Status migrate(const std::string& owner, const std::vector<Migration>& migrations) override;
  StatusOr<std::vector<AppliedMigration>> applied_migrations() override;
  StatusOr<std::vector<MigrationAttempt>> migration_attempts() override;

  // --- scheduled jobs (pg_jobs.cpp)
  Status set_next_run(const std::string& id, int64_t next_run_ms) override;
  Status set_next_runs(const std::vector<std::pair<std::string, int64_t>>& next_runs) override;
  Status delete_scheduled_job(const std::string& id) override;

  // --- runs (pg_runs.cpp)
  Status create_runs(std::vector<RunRow>* runs, std::vector<AuditRow>* audit, std::vector<std::string>* gone) override;
  Status mark_running(const std::vector<int64_t>& ids, int64_t now, const std::string& node,
                      std::vector<int64_t>* skipped, const std::vector<Completion>* completed_first) override;
  Status complete_runs(const std::vector<Completion>& cs) override;
  Status recover_runs(const std::vector<Completion>& closed, std::vector<RunRow>* requeued) override;
  Status complete_pending(const Completion& c, bool* changed) override;
  Status append_logs(const std::vector<LogRow>& logs) override;
  Status set_hold(int64_t run_id, bool hold) override;
  Status get_run(int64_t id, RunRow* out) override;
  StatusOr<std::vector<RunRow>> list_runs(const RunFilter& f) override;
  StatusOr<std::vector<RunRow>> runs_in_phase(const std::string& phase, size_t limit) override;
  Status repair_open_runs(int64_t max_ids, int64_t* repaired) override;
  StatusOr<std::vector<LogRow>> logs(int64_t run_id, int64_t after_seq, size_t limit) override;
  StatusOr<std::vector<LogRow>> last_logs(int64_t run_id, size_t n) override;
  StatusOr<std::vector<StepRow>> steps(int64_t run_id) override;
  Status flag_stale(int64_t before_ms, int64_t* count, const RunEventsOf& events) override;
  Status prune(int64_t before_ms, size_t batch, int64_t* deleted) override;

  // --- several kernels on one database (pg_cluster.cpp)
  Status register_node(ClusterNode* node) override;
  Status heartbeat_node(const std::string& id, int64_t epoch, const std::string& status, int64_t now_ms,
                        int64_t lease_until_ms, ClusterNode* stored) override;
  Status expire_nodes(int64_t now_ms, std::vector<ClusterNode>* died) override;
  StatusOr<std::vector<ClusterNode>> cluster_nodes() override;
  Status drain_node(const std::string& id, const std::string& reason) override;
  Status claim_runs(const ClaimRequest& request, std::vector<RunRow>* claimed,
                    const std::vector<Completion>* completed_first) override;
  StatusOr<std::vector<RunRow>> orphaned_runs(const std::vector<std::string>& job_types, size_t limit) override;
  Status request_cancel(int64_t run_id, const std::string& by, const std::string& reason) override;
  StatusOr<std::map<int64_t, std::pair<std::string, std::string>>> cancel_requests(const std::string& node,
                                                                                   int64_t epoch) override;
  bool wait_hint(int64_t timeout_ms, Hint* hint) override;
  StatusOr<int64_t> next_due(const std::vector<std::string>& job_types, int64_t after_ms) override;

  // --- health and housekeeping (pg_store.cpp)
  Status writable() override;
  void checkpoint() override;
  const char* dialect() const override;
  uint64_t generation() const override;

  // --- plugins' own tables (pg_plugin_sql.cpp)
  Status execute(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                 int64_t* changed) override;
  Status query(const std::string& sql, const std::vector<std::optional<std::string>>& params,
               std::vector<std::vector<std::optional<std::string>>>* rows) override;
  Status plugin_execute(const std::string& owner, const std::string& sql,
                        const std::vector<std::optional<std::string>>& params, int64_t* changed) override;
  Status plugin_query(const std::string& owner, const std::string& sql,
                      const std::vector<std::optional<std::string>>& params,
                      std::vector<std::vector<std::optional<std::string>>>* rows) override;
  Status plugin_query_typed(const std::string& owner, const std::string& sql,
                            const std::vector<std::optional<std::string>>& params,
                            std::vector<TypedRow>* rows) override;
  Status plugin_transaction(const std::string& owner, const std::vector<PluginStatement>& statements,
                            std::vector<PluginResult>* results, size_t* failed) override;

  // --- identities (pg_identities.cpp)
  Status disable_user(const std::string& id, int64_t now, int64_t* revoked) override;

  // --- audit (pg_audit.cpp)
  Status audit(const std::vector<AuditRow>& rows) override;

  // --- alerts (pg_alerts.cpp)
  Status save_alerts(std::vector<AlertSave>* saves) override;

  // --- the event log (pg_events.cpp)
  Status append_events(std::vector<EventRow>* events) override;
  Status append_keyed_event(const std::string& owner, const std::string& key, EventRow* event,
                            bool* duplicate) override;
  StatusOr<std::vector<EventRow>> events_after(int64_t after_seq, size_t limit) override;
  Status get_event(int64_t seq, EventRow* out) override;
  int64_t last_event_seq() override;
  Status ack_events(const std::string& consumer, int64_t seq, int64_t now_ms) override;
  StatusOr<std::vector<EventConsumer>> event_consumers() override;
  Status prune_events(int64_t before_ms, int64_t max_seq, size_t batch, int64_t* deleted) override;
  void set_event_listener(std::function<void(int64_t last_seq)> fn) override;
  void set_alert_events(AlertEventsOf fn) override;

 private:
  // --- the connections (pg_store.cpp)
  // Runs `fn(conn)` inside a transaction on a pooled connection: commits if
  // it succeeds, else rolls back. The first error is returned.
  template <typename Fn>
  Status in_transaction(const std::string& what, Fn&& fn) {
    PgPool::Lease lease;
    if (Status s = pool_.acquire(&lease); !s) return s;
    PGconn* c = lease.get();
    if (Status s = pg_exec(c, what + ": begin", "BEGIN", {}); !s) return s;
    Status s = fn(c);
    if (s) s = pg_exec(c, what + ": commit", "COMMIT", {});
    if (!s) pg_exec(c, what + ": rollback", "ROLLBACK", {});
    return s;
  }

  // Rows of one of the store's own reads, every column as text (NULL as
  // ""), appended to *out. UNAVAILABLE naming `what` if the store cannot be
  // read.
  Status text_rows(const std::string& what, const std::string& sql, const PgParams& params,
                   std::vector<std::vector<std::string>>* out);
  // Runs one of the store's own writes in a transaction of its own; rows
  // changed into *changed (may be null). Errors name `what`.
  Status write_rows(const std::string& what, const std::string& sql, const PgParams& params, int64_t* changed);
  // PortableStore's primitives: text_rows, and write_rows with the
  // store's own writes' errors other than CONFLICT as UNAVAILABLE.
  Status read_text(const std::string& what, const std::string& sql, const SqlParams& params,
                   std::vector<TextRow>* out) override;
  Status write_one(const std::string& what, const std::string& sql, const SqlParams& params, int64_t* changed) override;

  // --- audit (pg_audit.cpp)
  // Appends audit rows inside the caller's transaction.
  Status insert_audit(PGconn* conn, const std::vector<AuditRow>& rows);

  // --- runs (pg_runs.cpp); the *_in calls run inside the caller's
  // transaction on `conn`.
  // Inserts runs (ids from the runs' sequence, 0 for a slot taken) with
  // their state rows and audit rows (create_runs), holding kPgRunIdsLock
  // shared to the commit. *last_id gets the largest id taken (0 if none),
  // for advance_open_mark_after.
  // The scheduled jobs the runs need (needs_its_job) are locked FOR KEY
  // SHARE to the commit, so a delete of one (delete_scheduled_job) waits
  // for the runs or they for it. One that does not exist: NOT_FOUND with
  // nothing written (*gone, if given, gets them), or, with `drop_gone`, its
  // runs are not created (id 0).
  Status create_runs_in(PGconn* conn, std::vector<RunRow>* runs, std::vector<AuditRow>* audit, int64_t* last_id,
                        bool drop_gone = false, std::vector<std::string>* gone = nullptr);
  // Once the transaction that took ids up to `last_id` has committed: every
  // kPgMarkEvery new runs, moves the open-runs mark in a transaction of its
  // own. A failure is left to the next creation or housekeeping (the runs
  // are stored either way).
  void advance_open_mark_after(int64_t last_id);
  // Stores completions with their lines, steps, and the events of those
  // that complete their run; events last.
  Status complete_in(PGconn* conn, const std::vector<Completion>& cs);
  // Stores log lines in run_logs (a line already stored is kept).
  Status insert_logs(PGconn* conn, const std::vector<LogRow>& logs);
  // Moves the open-runs mark of migration 5 as the SQLite store does
  // (SqliteStore::advance_open_mark), its row locked to the commit. Takes
  // kPgRunIdsLock exclusively first, so it waits for every transaction still
  // writing runs: it must run in a transaction of its own, never one that
  // created runs (it would wait for itself).
  Status advance_open_mark(PGconn* conn);
  // The largest run id created before `before_ms`; 0 if none or unknown.
  int64_t last_created_before(int64_t before_ms);
  // Once a kernel of this store registered as a node, tells the kernels
  // (NOTIFY opk_runs, delivered at the commit of `conn`'s transaction) the
  // earliest scheduled start among the PENDING runs of `runs` not held, so
  // idle ones claim at that time; left out while a start this process
  // announced has not come and is no later (pg_cluster.cpp).
  Status notify_due_runs(PGconn* conn, const std::vector<RunRow>& runs);
  // Of completions fenced to a node and epoch (Completion::epoch), those
  // whose node is no longer live at that epoch, or whose run it no longer
  // holds, are dropped: *kept gets the others when any is (*dropped > 0),
  // else it is left alone. The run rows the completions update serialise
  // them with a takeover (recover_runs locks the same rows) (pg_cluster.cpp).
  Status fence_completions(PGconn* conn, const std::vector<Completion>& cs, std::vector<Completion>* kept,
                           size_t* dropped);
  // Runs matching the SQL condition `where` (with its $n parameters), in
  // `order`, at most `limit`, appended to *out (a row that cannot be
  // parsed is skipped). runs_where reads on a pooled connection.
  Status runs_where(const std::string& where, const PgParams& params, const std::string& order, size_t limit,
                    std::vector<RunRow>* out);
  Status runs_where_in(PGconn* conn, const std::string& where, const PgParams& params, const std::string& order,
                       size_t limit, std::vector<RunRow>* out);
  // A run's log lines, with `rest` after "WHERE run_id = $1" (its
  // parameters from $2 in `more`), appended to *out.
  Status log_rows(int64_t run_id, const std::string& rest, const PgParams& more, std::vector<LogRow>* out);

  // --- alerts (pg_alerts.cpp)
  // save_alerts inside the caller's transaction.
  Status save_alerts_in(PGconn* conn, std::vector<AlertSave>* saves);

  // --- the event log (pg_events.cpp)
  // Inserts `events` numbered after the largest seq stored, under the event
  // log's advisory lock (held to the commit); *first_seq (may be null)
  // gets the first seq (the next one when `events` is empty).
  Status insert_events(PGconn* conn, const std::vector<const EventRow*>& events, int64_t* first_seq = nullptr);
  // Calls the event listener if events were written since the last seq
  // was `before` (read before the write began).
  void events_committed(int64_t before);

  // --- the change count other kernels see (pg_store.cpp)
  // The publisher thread: every few milliseconds, if generation_ moved
  // since it last looked, adds one to the shared count (store_changes'
  // row, made at open) in a write of its own; once more as the
  // store closes. generation() adds that count to generation_, so a change
  // made through another kernel moves it too. Published after the commit,
  // never before it: a reader that sees the new count reads the change. A
  // kernel that dies between its commit and the next tick leaves that
  // change unpublished until any kernel's next one (the engine's inventory
  // re-reads within its TTL regardless).
  void publish_loop();

  // --- plugins' SQL (pg_plugin_sql.cpp)
  // What one statement of a plugin may do: `owner` empty runs unfenced;
  // `read_only` refuses writes; rows as text, typed, or not wanted.
  struct PluginCall {
    std::string owner;
    bool read_only = false;
    std::vector<std::vector<std::optional<std::string>>>* text_rows = nullptr;
    std::vector<TypedRow>* typed_rows = nullptr;
    int64_t* changed = nullptr;
  };
  // Runs one statement of a plugin inside the caller's transaction, after
  // SET LOCAL ROLE to the plugin's role (created on first use), then checks
  // that anything it created is named with the plugin's prefix.
  Status run_plugin_sql(PGconn* conn, const std::string& sql, const PgParams& params, const PluginCall& call);
  // Makes `owner`'s role if this store has not seen it yet (in a
  // transaction of its own, on a connection of the pool).
  Status plugin_role(const std::string& owner);
  // Makes `owner`'s role if it does not exist yet: NOLOGIN, the connecting
  // role a member of it, allowed to create tables in the public schema.
  // REQUIRES: inside a transaction.
  Status ensure_plugin_role(PGconn* conn, const std::string& owner);
  // Runs a plugin's migration script (statements separated by ';') fenced
  // to `owner`'s tables, inside the caller's transaction.
  Status exec_plugin_script(PGconn* conn, const std::string& owner, const std::string& sql);
  // PERMISSION naming the first relation owned by `owner`'s role whose name
  // does not start with its prefix (a CREATE of a table not its own).
  // REQUIRES: inside a transaction.
  Status check_plugin_relations(PGconn* conn, const std::string& owner);

  const std::string conninfo_;
  const PostgresOptions options_;
  PgPool pool_;
  std::string database_;  // the database connected to
  std::string kernel_role_;
  std::mutex publish_mu_;  // guards publish_stop_
  std::condition_variable publish_cv_;
  bool publish_stop_ = false;
  std::thread publisher_;
  mutable std::atomic<uint64_t> unread_{0};  // generation()'s failed reads
  std::atomic<int64_t> next_mark_at_{0};     // create_runs moves the open-runs mark once ids reach this
  // The event log: the largest seq this store wrote or read, and who is
  // told about new events.
  std::atomic<int64_t> last_event_seq_{0};
  std::function<void(int64_t)> event_listener_;
  AlertEventsOf alert_events_;
  std::mutex roles_mu_;
  std::vector<std::string> roles_made_;  // plugins whose role exists; roles_mu_
  // Several kernels: set once a node registered (notify_due_runs), and the
  // connection that LISTENs for hints (wait_hint).
  std::atomic<bool> clustered_{false};
  std::atomic<uint64_t> fenced_results_{0};
  std::mutex hint_mu_;
  PgConn hint_conn_;
  std::string hint_unheard_;  // why hint_conn_ could not LISTEN (hint_mu_)
  // The earliest start notify_due_runs announced more than kPgHintLeadMs
  // ahead, while it has not come; 0: none (hint_send_mu_).
  std::mutex hint_send_mu_;
  int64_t hint_announced_ms_ = 0;
};

}  // namespace opk::store::internal

#endif
