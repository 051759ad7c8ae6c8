// The PostgreSQL store's calls for several kernels on one database: the
// nodes' registrations, heartbeats and leases (cluster_nodes), runs claimed
// with FOR UPDATE SKIP LOCKED by the node and epoch that hold them, the runs
// of dead nodes found for takeover, cancels recorded for the node that runs
// the run, and LISTEN/NOTIFY as a wake-up hint between kernels (never the
// source of truth: every hint stands for rows a poll also finds).
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "store/pg_internal.h"

namespace opk::store::internal {
namespace {

constexpr const char* kPgNodeColumns =
    "id, version, pools, plugins, job_types, started_ms, heartbeat_ms, lease_until_ms, status, drain_reason, epoch";

// The channels of the hints: runs created or released (the payload is the
// earliest scheduled start among them, ms), and cancels.
constexpr const char* kPgRunsChannel = "opk_runs";
constexpr const char* kPgCancelChannel = "opk_cancel";

// Runs starting later than this after their creation are left out of a hint
// when a start no later was announced (notify_due_runs).
constexpr int64_t kPgHintLeadMs = 500;

std::vector<ClusterNode> pg_nodes_of(const PGresult* r) {
  std::vector<ClusterNode> out;
  for (int i = 0; i < PQntuples(r); ++i) {
    auto v = [&](int col) { return std::string(PQgetvalue(r, i, col)); };
    auto n = [&](int col) { return std::strtoll(PQgetvalue(r, i, col), nullptr, 10); };
    ClusterNode x;
    x.id = v(0);
    x.version = v(1);
    x.pools = v(2);
    x.plugins = v(3);
    x.job_types = v(4);
    x.started_ms = n(5);
    x.heartbeat_ms = n(6);
    x.lease_until_ms = n(7);
    x.status = v(8);
    x.drain_reason = v(9);
    x.epoch = n(10);
    out.push_back(std::move(x));
  }
  return out;
}

// `items` as a text[] literal.
std::string pg_text_array(const std::vector<std::string>& items) {
  std::string s = "{";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? "," : "") + pg_array_text(items[i]);
  return s + "}";
}

std::string pg_bigint_array(const std::vector<int64_t>& ids) {
  std::string s = "{";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "}";
}

}  // namespace

Status PgStore::register_node(ClusterNode* n) {
  PgResult r;
  Status s = in_transaction("register node " + n->id, [&](PGconn* c) {
    return pg_exec(c, "register node " + n->id,
                   std::string("INSERT INTO cluster_nodes (") + kPgNodeColumns +
                       ") VALUES ($1, $2, $3, $4, $5, $6, $6, $7, 'idle', '', 1) ON CONFLICT (id) DO UPDATE SET "
                       "version = excluded.version, pools = excluded.pools, plugins = excluded.plugins, job_types = "
                       "excluded.job_types, started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms, "
                       "lease_until_ms = excluded.lease_until_ms, status = 'idle', drain_reason = '', epoch = "
                       "cluster_nodes.epoch + 1 RETURNING epoch",
                   {n->id, n->version, n->pools, n->plugins, n->job_types, std::to_string(n->started_ms),
                    std::to_string(n->lease_until_ms)},
                   &r);
  });
  if (!s) return s;
  n->epoch = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
  n->status = "idle";
  n->heartbeat_ms = n->started_ms;
  // A kernel that registers shares the database: its new runs and cancels
  // wake the others.
  clustered_.store(true, std::memory_order_release);
  return Status::ok();
}

Status PgStore::heartbeat_node(const std::string& id, int64_t epoch, const std::string& status, int64_t now,
                               int64_t lease_until_ms, ClusterNode* stored) {
  PgResult r;
  Status s = in_transaction("heartbeat of node " + id, [&](PGconn* c) {
    // A kernel stopped inside this transaction would keep its row locked,
    // and the others could never declare it dead: the server ends such a
    // transaction (and its session) after this.
    if (Status w = pg_exec(c, "heartbeat of node " + id, "SET LOCAL idle_in_transaction_session_timeout = '2s'", {});
        !w)
      return w;
    return pg_exec(c, "heartbeat of node " + id,
                   std::string("UPDATE cluster_nodes SET heartbeat_ms = $3, lease_until_ms = $4, status = CASE WHEN "
                               "status = 'draining' AND $5 = 'drained' THEN 'drained' WHEN status IN ('draining', "
                               "'drained') THEN status ELSE $5 END WHERE id = $1 AND epoch = $2 AND status <> 'dead' "
                               "RETURNING ") +
                       kPgNodeColumns,
                   {id, std::to_string(epoch), std::to_string(now), std::to_string(lease_until_ms), status}, &r);
  });
  if (!s) return s;
  auto rows = pg_nodes_of(r.get());
  if (rows.empty())
    return Status::conflict("node " + id + " at epoch " + std::to_string(epoch) +
                            " is fenced: its lease lapsed and another kernel declared it dead, or it registered again");
  if (stored) *stored = std::move(rows.front());
  return Status::ok();
}

Status PgStore::expire_nodes(int64_t now, std::vector<ClusterNode>* died) {
  PgResult r;
  Status s = in_transaction("expire nodes", [&](PGconn* c) {
    return pg_exec(c, "expire nodes",
                   std::string("UPDATE cluster_nodes SET status = 'dead' WHERE id IN (SELECT id FROM cluster_nodes "
                               "WHERE lease_until_ms < $1 AND status <> 'dead' FOR UPDATE SKIP LOCKED) RETURNING ") +
                       kPgNodeColumns,
                   {std::to_string(now)}, &r);
  });
  if (!s) return s;
  auto rows = pg_nodes_of(r.get());
  died->insert(died->end(), rows.begin(), rows.end());
  return Status::ok();
}

StatusOr<std::vector<ClusterNode>> PgStore::cluster_nodes() {
  PgPool::Lease lease;
  if (Status s = pool_.acquire(&lease); !s)
    return Status::unavailable("store (postgresql): cluster nodes: " + s.message());
  PgResult r;
  if (Status s = pg_exec(lease.get(), "cluster nodes",
                         std::string("SELECT ") + kPgNodeColumns + " FROM cluster_nodes ORDER BY id", {}, &r);
      !s)
    return Status::unavailable(s.message());
  return pg_nodes_of(r.get());
}

Status PgStore::drain_node(const std::string& id, const std::string& reason) {
  PgResult r;
  Status s = in_transaction("drain node " + id, [&](PGconn* c) {
    return pg_exec(c, "drain node " + id,
                   "WITH n AS (SELECT status FROM cluster_nodes WHERE id = $1 FOR UPDATE), u AS (UPDATE cluster_nodes "
                   "SET status = CASE WHEN status = 'drained' THEN status ELSE 'draining' END, drain_reason = $2 "
                   "WHERE id = $1 AND status <> 'dead' RETURNING id) SELECT (SELECT status FROM n), (SELECT COUNT(*) "
                   "FROM u)",
                   {id, reason}, &r);
  });
  if (!s) return s;
  if (PQgetisnull(r.get(), 0, 0)) return Status::not_found("no node '" + id + "' is registered");
  if (std::string(PQgetvalue(r.get(), 0, 1)) == "0")
    return Status::conflict("node '" + id + "' is dead; there is nothing to drain");
  return Status::ok();
}

Status PgStore::claim_runs(const ClaimRequest& q, std::vector<RunRow>* claimed,
                           const std::vector<Completion>* completed_first) {
  if (q.ids.empty() && (q.job_types.empty() || q.limit == 0))
    return completed_first ? complete_runs(*completed_first) : Status::ok();
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  const int64_t started = q.started_ms ? q.started_ms : q.now_ms;
  std::vector<RunRow> got;
  Status s = in_transaction("claim runs", [&](PGconn* c) {
    got.clear();
    // Only a live node at its epoch claims; rows another claim holds are
    // skipped, not waited for (FOR UPDATE SKIP LOCKED), and a row claimed
    // meanwhile is seen RUNNING when locked and left out.
    static const std::string kLive =
        "WITH me AS (SELECT 1 FROM cluster_nodes WHERE id = $1 AND epoch = $2 AND status NOT IN ('dead', 'draining', "
        "'drained')), ";
    static const std::string kSet =
        " UPDATE run_state s SET phase = 'RUNNING', started_ms = $3, node = $1, claim_epoch = $2 FROM pick WHERE s.id "
        "= pick.id RETURNING s.id";
    PgResult r;
    Status w;
    if (!q.ids.empty()) {
      w = pg_exec_hot(
          c, "opk_claim_by_id", "claim runs",
          kLive +
              "pick AS (SELECT id FROM run_state WHERE id = ANY($4::bigint[]) AND phase = 'PENDING' AND hold = "
              "0 AND EXISTS (SELECT 1 FROM me) ORDER BY id FOR UPDATE SKIP LOCKED)" +
              kSet,
          {q.node, std::to_string(q.epoch), std::to_string(started), pg_bigint_array(q.ids)}, &r);
    }
    if (!w) return w;
    std::vector<int64_t> ids;
    for (int i = 0; r.get() && i < PQntuples(r.get()); ++i)
      ids.push_back(std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10));
    if (q.ids.empty()) {
      // Two statements: the due runs in claim order, read without locking,
      // then those still PENDING locked by id, in that order. One statement
      // locking through the join with open_runs re-ran that join for every
      // row another claim or completion had changed since its snapshot
      // (PostgreSQL's recheck of a locked row, EvalPlanQual): quadratic in
      // the queue, one claim of 20,000 queued runs took 84 s. Candidates
      // another kernel holds are passed over and the next ones read, at most
      // three times.
      const size_t want = static_cast<size_t>(q.limit);
      const size_t batch = want * 2 + 16;
      std::vector<int64_t> tried;
      for (int pass = 0; pass < 3 && ids.size() < want; ++pass) {
        PgResult cand;
        if (Status rd = pg_exec_hot(
                c, "opk_claim_candidates", "claim runs",
                "SELECT s.id FROM run_state s JOIN runs r ON r.id = s.id WHERE s.id IN (SELECT id FROM "
                "open_runs) AND s.phase = 'PENDING' AND s.hold = 0 AND r.scheduled_ms <= $1 AND "
                "r.job_type = ANY($2::text[]) AND s.id <> ALL($3::bigint[]) ORDER BY r.priority DESC, "
                "r.scheduled_ms, r.id LIMIT $4",
                {std::to_string(q.now_ms), pg_text_array(q.job_types), pg_bigint_array(tried), std::to_string(batch)},
                &cand);
            !rd)
          return rd;
        std::vector<int64_t> candidates;
        for (int i = 0; i < PQntuples(cand.get()); ++i)
          candidates.push_back(std::strtoll(PQgetvalue(cand.get(), i, 0), nullptr, 10));
        if (candidates.empty()) break;
        tried.insert(tried.end(), candidates.begin(), candidates.end());
        PgResult locked;
        if (Status lk = pg_exec_hot(c, "opk_claim_locked", "claim runs",
                                    kLive +
                                        "pick AS (SELECT id FROM run_state WHERE id = ANY($4::bigint[]) AND phase = "
                                        "'PENDING' AND hold = 0 AND EXISTS (SELECT 1 FROM me) ORDER BY "
                                        "array_position($4::bigint[], id) LIMIT $5 FOR UPDATE SKIP LOCKED)" +
                                        kSet,
                                    {q.node, std::to_string(q.epoch), std::to_string(started),
                                     pg_bigint_array(candidates), std::to_string(want - ids.size())},
                                    &locked);
            !lk)
          return lk;
        for (int i = 0; i < PQntuples(locked.get()); ++i)
          ids.push_back(std::strtoll(PQgetvalue(locked.get(), i, 0), nullptr, 10));
        if (candidates.size() < batch) break;  // no more due runs
      }
    }
    if (!ids.empty()) {
      if (q.ids.empty()) {
        if (Status rd = runs_where_in(c, "id = ANY($1::bigint[])", {pg_bigint_array(ids)},
                                      " ORDER BY priority DESC, scheduled_ms, id", ids.size(), &got);
            !rd)
          return rd;
      } else {
        for (int64_t id : ids) got.emplace_back().id = id;
      }
    }
    if (completed_first) return complete_in(c, *completed_first);
    return Status::ok();
  });
  generation_.fetch_add(1, std::memory_order_release);
  if (!s) return s;
  events_committed(events_before);
  claimed->insert(claimed->end(), std::make_move_iterator(got.begin()), std::make_move_iterator(got.end()));
  return Status::ok();
}

StatusOr<std::vector<RunRow>> PgStore::orphaned_runs(const std::vector<std::string>& job_types, size_t limit) {
  std::vector<RunRow> out;
  if (job_types.empty()) return out;
  if (Status s = runs_where(
          "id IN (SELECT s.id FROM run_state s JOIN cluster_nodes n ON n.id = s.node WHERE s.id IN (SELECT id FROM "
          "open_runs) AND s.phase = 'RUNNING' AND (n.status = 'dead' OR n.epoch > s.claim_epoch)) AND job_type = "
          "ANY($1::text[])",
          {pg_text_array(job_types)}, " ORDER BY id", limit, &out);
      !s)
    return s;
  return out;
}

Status PgStore::request_cancel(int64_t run_id, const std::string& by, const std::string& reason) {
  int64_t n = 0;
  Status s = in_transaction("request cancel of run " + std::to_string(run_id), [&](PGconn* c) {
    PgResult r;
    if (Status w = pg_exec(c, "request cancel of run " + std::to_string(run_id),
                           "UPDATE run_state SET cancel_request_by = $2, cancel_request_reason = $3 WHERE id = $1 AND "
                           "phase = 'RUNNING'",
                           {std::to_string(run_id), by, reason}, &r);
        !w)
      return w;
    n = std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
    if (n == 0) return Status::ok();
    return pg_exec(c, "cancel hint", std::string("SELECT pg_notify('") + kPgCancelChannel + "', '')", {});
  });
  if (!s) return s;
  return n ? Status::ok() : Status::conflict("run " + std::to_string(run_id) + " is not running");
}

StatusOr<std::map<int64_t, std::pair<std::string, std::string>>> PgStore::cancel_requests(const std::string& node,
                                                                                          int64_t epoch) {
  std::vector<std::vector<std::string>> rows;
  if (Status s = text_rows("cancel requests",
                           "SELECT id, cancel_request_by, cancel_request_reason FROM run_state WHERE id IN (SELECT id "
                           "FROM open_runs) AND phase = 'RUNNING' AND node = $1 AND claim_epoch = $2 AND "
                           "cancel_request_by <> ''",
                           {node, std::to_string(epoch)}, &rows);
      !s)
    return s;
  std::map<int64_t, std::pair<std::string, std::string>> out;
  for (const auto& r : rows) out[std::stoll(r[0])] = {r[1], r[2]};
  return out;
}

bool PgStore::wait_hint(int64_t timeout_ms, Hint* hint) {
  *hint = Hint();
  std::lock_guard lock(hint_mu_);
  if (!hint_conn_ || PQstatus(hint_conn_.get()) != CONNECTION_OK) {
    hint_conn_.reset();
    PgConn c;
    Status s;
    if (options_.listen_conninfo.empty()) {
      s = pool_.connect(&c);
    } else {
      PGconn* raw = nullptr;
      s = pg_connect(options_.listen_conninfo, "", &raw);
      c = PgConn(raw);
    }
    if (!s)
      hint_unheard_ = s.message();
    else if (Status l =
                 pg_script(c.get(), "listen", std::string("LISTEN ") + kPgRunsChannel + "; LISTEN " + kPgCancelChannel);
             !l)
      hint_unheard_ = l.message();
    else
      hint_unheard_.clear();
    hint->unheard = hint_unheard_;
    if (!hint_unheard_.empty()) {
      // No hints for now: the caller's poll finds the work.
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
      return false;
    }
    hint_conn_ = std::move(c);
  }
  PGconn* c = hint_conn_.get();
  // Every notification queued is taken at once: a burst of hints is one wake.
  auto take = [&] {
    bool any = false;
    PQconsumeInput(c);
    while (PGnotify* n = PQnotifies(c)) {
      any = true;
      if (std::string(n->relname) == kPgCancelChannel) {
        hint->cancels = true;
      } else {
        // The earliest start named; a hint without one (a kernel of an
        // earlier version) stands for runs due now.
        char* end = nullptr;
        const long long due = std::strtoll(n->extra, &end, 10);
        hint->due_ms = std::min<int64_t>(hint->due_ms, end != n->extra ? due : 0);
      }
      PQfreemem(n);
    }
    return any;
  };
  if (take()) return true;
  pollfd p{PQsocket(c), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, timeout_ms))) <= 0) return false;
  return take();
}

StatusOr<int64_t> PgStore::next_due(const std::vector<std::string>& job_types, int64_t after_ms) {
  if (job_types.empty()) return int64_t{0};
  std::vector<std::vector<std::string>> rows;
  if (Status s = text_rows("next due run",
                           "SELECT COALESCE(MIN(r.scheduled_ms), 0) FROM run_state s JOIN runs r ON r.id = s.id WHERE "
                           "s.id IN (SELECT id FROM open_runs) AND s.phase = 'PENDING' AND s.hold = 0 AND "
                           "r.job_type = ANY($1::text[]) AND r.scheduled_ms > $2",
                           {pg_text_array(job_types), std::to_string(after_ms)}, &rows);
      !s)
    return s;
  return rows.empty() ? int64_t{0} : static_cast<int64_t>(std::stoll(rows[0][0]));
}

Status PgStore::notify_due_runs(PGconn* c, const std::vector<RunRow>& runs) {
  if (!clustered_.load(std::memory_order_acquire)) return Status::ok();
  int64_t earliest = kNoHintDue;
  for (const auto& r : runs)
    if (r.id != 0 && r.phase == kPending && !r.hold) earliest = std::min(earliest, r.scheduled_ms);
  if (earliest == kNoHintDue) return Status::ok();
  const int64_t now = now_ms();
  {
    std::lock_guard lock(hint_send_mu_);
    // Every kernel that heard the start announced wakes for it at the
    // latest, and then reads the store's next due run: runs starting no
    // sooner are found then without a hint of their own. The lead covers
    // this transaction's commit (a hint lost meanwhile, or one announced by
    // a transaction that failed, leaves the runs to the next poll).
    if (hint_announced_ms_ > now + kPgHintLeadMs && hint_announced_ms_ <= earliest) return Status::ok();
    if (earliest > now + kPgHintLeadMs) hint_announced_ms_ = earliest;
  }
  // One a transaction: the server folds equal notifications.
  return pg_exec(c, "runs hint", std::string("SELECT pg_notify('") + kPgRunsChannel + "', $1)",
                 {std::to_string(earliest)});
}

Status PgStore::fence_completions(PGconn* c, const std::vector<Completion>& cs, std::vector<Completion>* kept,
                                  size_t* dropped) {
  *dropped = 0;
  // Usually one node and epoch a batch: a worker's completions.
  std::map<std::pair<std::string, int64_t>, std::vector<int64_t>> fenced;
  for (const auto& x : cs)
    if (x.epoch != 0) fenced[{x.node, x.epoch}].push_back(x.run_id);
  if (fenced.empty()) return Status::ok();
  std::set<int64_t> held;  // runs whose fenced completions may be stored
  for (const auto& [who, ids] : fenced) {
    PgResult r;
    if (Status s =
            pg_exec_hot(c, "opk_fence", "fence of node " + who.first,
                        "WITH n AS (SELECT 1 FROM cluster_nodes WHERE id = $1 AND epoch = $2 AND status <> 'dead') "
                        "SELECT s.id FROM run_state s, n WHERE s.id = ANY($3::bigint[]) AND s.node = $1 AND "
                        "s.claim_epoch = $2",
                        {who.first, std::to_string(who.second), pg_bigint_array(ids)}, &r);
        !s)
      return s;
    for (int i = 0; i < PQntuples(r.get()); ++i) held.insert(std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10));
  }
  for (const auto& x : cs)
    if (x.epoch != 0 && !held.count(x.run_id)) ++*dropped;
  if (*dropped == 0) return Status::ok();
  fenced_results_.fetch_add(*dropped, std::memory_order_relaxed);
  kept->clear();
  for (const auto& x : cs)
    if (x.epoch == 0 || held.count(x.run_id)) kept->push_back(x);
  return Status::ok();
}

}  // namespace opk::store::internal
