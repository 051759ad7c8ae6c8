// The embedded store's runs: create (with their audit rows), claim (mark
// running), complete, recover after a crash, hold; read runs, their log lines
// and steps; flag stale runs and prune old ones. The open runs are found from
// a low-water mark (migration 5), which this file moves.
#include <algorithm>
#include <cstdio>

#include "store/sqlite_internal.h"

namespace opk::store::internal {

using namespace Poco::Data::Keywords;

namespace {

// A run's lines are kept in its state row when it logged at most this many,
// of at most this much text, all at its completion.
constexpr size_t kInlineLines = 8;
constexpr size_t kInlineBytes = 2048;
// The open-runs mark moves every this many new runs; a run still open this
// many ids behind the newest is listed as lingering (migration 5). Reading
// the open runs then reads at most about the sum of both.
constexpr int64_t kMarkEvery = 4096;
constexpr int64_t kLingerIds = 10000;

}  // namespace

Status SqliteStore::create_runs(std::vector<RunRow>* runs, std::vector<AuditRow>* audit,
                                std::vector<std::string>* gone) {
  const Changed changed_after(generation_);
  if (runs->empty()) return Status::ok();
  if (audit && audit->size() != runs->size()) return Status(OPK_ERR_INTERNAL, "create_runs: one audit row per run");

  return grouped([&] { return create_runs_locked(runs, audit, gone); }, runs->size() * (audit ? 2 : 1));
}

Status SqliteStore::missing_jobs_locked(const std::vector<RunRow>& runs, std::vector<std::string>* missing) {
  const std::string* last = nullptr;  // runs of one job usually come together
  for (const RunRow& r : runs) {
    if (!needs_its_job(r) || (last && *last == r.scheduled_job_id)) continue;
    last = &r.scheduled_job_id;
    if (std::find(missing->begin(), missing->end(), r.scheduled_job_id) != missing->end()) continue;
    auto& st = stmts_->job_exists;
    st.bind_all(r.scheduled_job_id);
    const int rc = st.step();
    st.reset();
    if (rc == SQLITE_DONE) {
      missing->push_back(r.scheduled_job_id);
    } else if (rc != SQLITE_ROW) {
      return sql_error(("scheduled job '" + r.scheduled_job_id + "'").c_str());
    }
  }
  return Status::ok();
}

Status SqliteStore::create_runs_locked(std::vector<RunRow>* runs, std::vector<AuditRow>* audit,
                                       std::vector<std::string>* gone) {
  if (runs->empty()) return Status::ok();
  // Nothing of a deleted scheduled job is stored: the single writer makes
  // the check and the inserts one step against a delete.
  {
    std::vector<std::string> missing;
    if (Status s = missing_jobs_locked(*runs, &missing); !s) return s;
    if (!missing.empty()) {
      for (auto& r : *runs) r.id = 0;
      if (gone) *gone = missing;
      return jobs_gone(missing);
    }
  }
  auto& ss = stmts_->insert_state;
  auto bind_run = [](Stmt& st, int first, const RunRow& r) {
    st.bind_at(first, r.job_type, r.scheduled_job_id, r.slot_ms, r.trigger, r.params_json, r.target_tenant, r.dry_run,
               r.range_start_ms, r.range_end_ms, r.user_id, r.role, r.scope, r.reason, r.parent_run_id, r.priority,
               r.pool, r.scheduled_ms, r.created_ms);
  };
  bool fresh = true;
  for (size_t k = 0; k < runs->size();) {
    RunRow* r = &(*runs)[k];
    // Runs that fire no schedule slot cannot conflict: up to
    // kRunsPerInsert of them go in one statement (their ids are
    // consecutive), which measured a fifth cheaper per run than one
    // statement each; a run with a slot goes alone.
    size_t n = 0;
    while (n < kRunsPerInsert && k + n < runs->size() && r[n].slot_ms == 0) ++n;
    n = n ? insert_size_for(n) : 1;
    for (size_t i = 0; i < n; ++i) {
      if (r[i].created_ms == 0) r[i].created_ms = now_ms();
      // A completed run always has a finish time.
      if (r[i].phase == kCompleted && r[i].finished_ms <= 0) r[i].finished_ms = std::max<int64_t>(r[i].created_ms, 1);
    }
    Stmt& st = stmts_->insert_runs_of(n);
    for (size_t i = 0; i < n; ++i) bind_run(st, static_cast<int>(i * kRunColumns) + 1, r[i]);
    int rc = st.step();
    st.reset();
    if (rc != SQLITE_DONE) return sql_error("insert run");
    // No RETURNING: it measured 2 to 3 times the cost of the insert itself.
    // No change means the slot was taken (ON CONFLICT DO NOTHING).
    const int64_t last = sqlite3_changes(db()) ? sqlite3_last_insert_rowid(db()) : 0;
    if (n > 1 && sqlite3_changes(db()) != static_cast<int>(n))
      return Status(OPK_ERR_INTERNAL, "store: insert runs: fewer rows than runs");
    for (size_t i = 0; i < n; ++i, ++k) {
      RunRow& x = (*runs)[k];
      x.id = last ? last - static_cast<int64_t>(n - 1 - i) : 0;
      fresh = fresh && x.id != 0 && (k == 0 || x.id == (*runs)[k - 1].id + 1) && is_new_pending(x);
      if (audit) (*audit)[k].outcome = "ok: run " + std::to_string(x.id);
    }
  }
  // New PENDING runs with ids in one unbroken range (every run now,
  // and scheduled runs whose slots were all free) get their state
  // rows from one statement.
  if (fresh) {
    if (!stmts_->insert_states.bind_all(runs->front().id, runs->back().id).exec()) return sql_error("insert run state");
  } else {
    for (const RunRow& r : *runs) {
      if (!r.id) continue;
      // A new run starts with its phase, outcome and hold; the rest of
      // its state is kept only for a completed run (an import).
      const bool done = r.phase == kCompleted;
      static const std::string kNone;
      ss.bind_all(r.id, r.phase, r.outcome, r.hold, done && r.terminated, done ? r.started_ms : 0,
                  done ? r.finished_ms : 0, done ? r.exit_code : 0, done ? r.summary : kNone, done ? r.progress : 0.0,
                  done ? r.progress_message : kNone, done ? r.output_json : kNone);
      const int rc = ss.step();
      ss.reset();
      if (rc != SQLITE_DONE) return sql_error("insert run state");
    }
  }
  if (audit) {
    // The audit rows of one request repeated for many runs (a batch
    // of the same job) differ only in their run: one statement
    // writes them all, as the state rows above.
    const bool alike = fresh && std::all_of(audit->begin(), audit->end(), [&](const AuditRow& a) {
                         const AuditRow& f = audit->front();
                         return a.time_ms == f.time_ms && a.actor == f.actor && a.role == f.role &&
                                a.action == f.action && a.target == f.target && a.reason == f.reason &&
                                a.params_json == f.params_json && a.source == f.source;
                       });
    if (alike && audit->size() > 1) {
      const AuditRow& f = audit->front();
      if (!stmts_->insert_audit_range
               .bind_all(f.time_ms ? f.time_ms : now_ms(), f.actor, f.role, f.action, f.target, f.reason, f.params_json,
                         f.source, runs->front().id, runs->back().id)
               .exec())
        return sql_error("audit");
    } else if (Status a = insert_audit_locked(*audit); !a) {
      return a;
    }
  }
  // Every kMarkEvery new runs, the open-runs mark moves up (in this
  // transaction: it moves back with it if this write is undone).
  const int64_t last = runs->back().id;
  if (last >= next_mark_at_) {
    if (Status a = advance_open_mark(); !a) return a;
    next_mark_at_ = last + kMarkEvery;
  }
  return Status::ok();
}

Status SqliteStore::mark_running(const std::vector<int64_t>& ids, int64_t now, const std::string& node,
                                 std::vector<int64_t>* skipped, const std::vector<Completion>* completed_first) {
  const Changed changed_after(generation_);
  if (ids.empty()) return completed_first ? complete_runs(*completed_first) : Status::ok();

  // One statement for the whole claim (measured 40% cheaper than one per
  // run); if any run could not be claimed, it is undone and the runs are
  // claimed one by one to learn which.
  std::string id_list = "[";
  for (int64_t id : ids) id_list += std::to_string(id) + ",";
  id_list.back() = ']';
  const auto first_inline = completed_first ? inline_logs_of(*completed_first) : std::vector<std::string>();
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  Status claimed = grouped(
      [&] {
        if (completed_first)
          if (Status s = complete_locked(*completed_first, first_inline); !s) return s;

        if (!stmts_->claim_savepoint.exec()) return sql_error("mark running");
        // A failure that ends the transaction (disk full, I/O) is reported
        // as itself, not as the savepoint it leaves undefined.
        const bool claimed = stmts_->mark_running_all.bind_all(now, node, id_list).exec();
        if (!claimed && sqlite3_get_autocommit(db())) return sql_error("mark running");
        const bool every = claimed && sqlite3_changes(db()) == static_cast<int>(ids.size());
        if (!every) stmts_->claim_rollback.exec();
        stmts_->claim_release.exec();
        if (sqlite3_get_autocommit(db())) return sql_error("mark running");  // the transaction was lost
        if (every) return Status::ok();
        for (int64_t id : ids) {
          if (!stmts_->mark_running.bind_all(now, node, id).exec()) return sql_error("mark running");
          if (sqlite3_changes(db()) == 0 && skipped) skipped->push_back(id);
        }
        return Status::ok();
      },
      ids.size() + (completed_first ? completed_first->size() : 0), /*urgent=*/true);
  if (claimed) events_committed(events_before);
  return claimed;
}

Status SqliteStore::complete_runs(const std::vector<Completion>& cs) {
  const Changed changed_after(generation_);
  if (cs.empty()) return Status::ok();

  const auto inline_logs = inline_logs_of(cs);
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  Status s = grouped([&] { return complete_locked(cs, inline_logs); }, cs.size());
  if (s) events_committed(events_before);
  return s;
}

Status SqliteStore::recover_runs(const std::vector<Completion>& closed, std::vector<RunRow>* requeued) {
  const Changed changed_after(generation_);
  if (closed.empty() && requeued->empty()) return Status::ok();

  const auto inline_logs = inline_logs_of(closed);
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  Status s = grouped(
      [&] {
        if (Status w = complete_locked(closed, inline_logs); !w) return w;
        // A repeat of a run of a deleted scheduled job is not created.
        std::vector<std::string> missing;
        if (Status w = missing_jobs_locked(*requeued, &missing); !w) return w;
        if (missing.empty()) return create_runs_locked(requeued, nullptr);
        std::vector<RunRow> kept;
        std::vector<size_t> kept_at;
        for (size_t i = 0; i < requeued->size(); ++i) {
          RunRow& r = (*requeued)[i];
          r.id = 0;
          if (needs_its_job(r) && std::find(missing.begin(), missing.end(), r.scheduled_job_id) != missing.end())
            continue;
          kept.push_back(r);
          kept_at.push_back(i);
        }
        if (Status w = create_runs_locked(&kept, nullptr); !w) return w;
        for (size_t i = 0; i < kept.size(); ++i) (*requeued)[kept_at[i]].id = kept[i].id;
        return Status::ok();
      },
      closed.size() + requeued->size());
  if (s) events_committed(events_before);
  return s;
}

Status SqliteStore::complete_pending(const Completion& c, bool* changed) {
  const Changed changed_after(generation_);
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  Status s;
  {
    std::lock_guard lock(write_mu_);
    Completion v = c;
    int terminated = v.terminated ? 1 : 0;
    s = in_transaction([&] {
      try {
        Poco::Data::Statement st(*writer_);
        st << "UPDATE run_state SET phase = 'COMPLETED', outcome = $1, terminated = $2, finished_ms = MAX($3, 1), "
              "exit_code = $4, summary = $5, cancelled_by = $6, end_cause = $7, end_by = $8, end_reason = $9, "
              "end_limit_ms = $10 WHERE id = $11 AND phase = 'PENDING'",
            use(v.outcome), use(terminated), use(v.finished_ms), use(v.exit_code), use(v.summary), use(v.cancelled_by),
            use(v.end_cause), use(v.end_by), use(v.end_reason), use(v.end_limit_ms), use(v.run_id);
        *changed = st.execute() > 0;
      } catch (const Poco::Exception& e) {
        return Status::unavailable("store: " + e.displayText());
      }
      // Its events only if this call completed it.
      std::vector<const EventRow*> events;
      if (*changed)
        for (const auto& e : c.events) events.push_back(&e);
      return insert_events_locked(events);
    });
  }
  if (s) events_committed(events_before);
  return s;
}

Status SqliteStore::append_logs(const std::vector<LogRow>& logs) {
  if (logs.empty()) return Status::ok();

  return grouped([&] { return insert_logs_locked(logs); }, logs.size());
}

Status SqliteStore::set_hold(int64_t run_id, bool hold) {
  const Changed changed_after(generation_);
  std::lock_guard lock(write_mu_);
  int h = hold ? 1 : 0;
  size_t n = 0;
  try {
    Poco::Data::Statement st(*writer_);
    st << "UPDATE run_state SET hold = $1 WHERE id = $2 AND phase = 'PENDING'", use(h), use(run_id);
    n = st.execute();
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: " + e.displayText());
  }
  return n ? Status::ok() : Status::conflict("run " + std::to_string(run_id) + " is not pending");
}

Status SqliteStore::get_run(int64_t id, RunRow* out) {
  std::vector<RunRow> rows;
  if (Status s = runs_where("id = " + std::to_string(id), "", 1, &rows); !s) return s;
  if (rows.empty()) return Status::not_found("no run " + std::to_string(id));
  *out = rows.front();
  return Status::ok();
}

StatusOr<std::vector<RunRow>> SqliteStore::list_runs(const RunFilter& f) {
  std::string where = "1=1";
  if (!f.job_type.empty()) where += " AND job_type = '" + escape(f.job_type) + "'";
  if (!f.scheduled_job_id.empty())
    where += " AND scheduled_job_id = '" + escape(f.scheduled_job_id) + "' AND scheduled_job_id <> ''";
  if (!f.phase.empty()) where += " AND phase = '" + escape(f.phase) + "'";
  if (!f.outcome.empty()) where += " AND outcome = '" + escape(f.outcome) + "' AND phase = 'COMPLETED'";
  if (f.cancelled) where += *f.cancelled ? " AND cancelled_by <> '' AND phase = 'COMPLETED'" : " AND cancelled_by = ''";
  if (f.end_causes) {
    std::string in;
    for (const auto& c : *f.end_causes) in += (in.empty() ? "'" : ", '") + escape(c) + "'";
    where += " AND end_cause IN (" + (in.empty() ? std::string("''") : in) + ")";
  }
  if (!f.trigger.empty()) where += " AND trigger = '" + escape(f.trigger) + "'";
  if (f.since_ms) where += " AND created_ms >= " + std::to_string(f.since_ms);
  if (f.until_ms) where += " AND created_ms < " + std::to_string(f.until_ms);
  if (f.before_id) where += " AND id < " + std::to_string(f.before_id);
  if (f.after_id) where += " AND id > " + std::to_string(f.after_id);
  if (f.seen_from) {
    std::string in;
    for (const auto& n : *f.seen_from) in += (in.empty() ? "'" : ", '") + escape(n) + "'";
    where += " AND " + runs_seen_from_sql(in.empty() ? std::string("''") : in);
  }
  if (f.ids) {
    std::string in;
    for (int64_t id : *f.ids) in += (in.empty() ? "" : ", ") + std::to_string(id);
    where += " AND id IN (" + (in.empty() ? std::string("0") : in) + ")";
  }
  std::vector<RunRow> out;
  if (Status s = runs_where(where, f.after_id ? " ORDER BY id" : " ORDER BY id DESC", f.limit, &out); !s) return s;
  return out;
}

StatusOr<std::vector<RunRow>> SqliteStore::runs_in_phase(const std::string& phase, size_t limit) {
  const std::string open = phase == kCompleted ? "finished_ms <> 0" : "id IN (SELECT id FROM open_runs)";
  std::vector<RunRow> out;
  if (Status s = runs_where(open + " AND phase = '" + escape(phase) + "'", " ORDER BY priority DESC, scheduled_ms, id",
                            limit, &out);
      !s)
    return s;
  return out;
}

StatusOr<std::vector<LogRow>> SqliteStore::logs(int64_t run_id, int64_t after_seq, size_t limit) {
  std::vector<LogRow> out;
  if (Status s = log_rows(
          run_id, " AND seq > " + std::to_string(after_seq) + " ORDER BY seq LIMIT " + std::to_string(limit), &out);
      !s)
    return s;
  return out;
}

StatusOr<std::vector<LogRow>> SqliteStore::last_logs(int64_t run_id, size_t n) {
  std::vector<LogRow> out;
  if (Status s = log_rows(run_id, " ORDER BY seq DESC LIMIT " + std::to_string(n), &out); !s) return s;
  std::reverse(out.begin(), out.end());
  return out;
}

Status SqliteStore::log_rows(int64_t run_id, const std::string& rest, std::vector<LogRow>* out) {
  std::vector<std::vector<std::string>> rows;
  if (Status s = read_rows("log lines",
                           "SELECT run_id, seq, time_ms, level, step, message FROM run_log_rows WHERE run_id = " +
                               std::to_string(run_id) + rest,
                           &rows);
      !s)
    return s;
  for (auto& r : rows)
    out->push_back({std::stoll(r[0]), std::stoll(r[1]), std::stoll(r[2]), std::stoi(r[3]), r[4], r[5]});
  return Status::ok();
}

StatusOr<std::vector<StepRow>> SqliteStore::steps(int64_t run_id) {
  std::vector<std::vector<std::string>> rs;
  if (Status s = read_rows("steps",
                           "SELECT run_id, seq, step_id, start_ms, end_ms, outcome, summary FROM run_steps WHERE "
                           "run_id = " +
                               std::to_string(run_id) + " ORDER BY seq",
                           &rs);
      !s)
    return s;
  std::vector<StepRow> out;
  for (auto& r : rs)
    out.push_back({std::stoll(r[0]), std::stoi(r[1]), r[2], std::stoll(r[3]), std::stoll(r[4]), r[5], r[6]});
  return out;
}

Status SqliteStore::flag_stale(int64_t before_ms, int64_t* count, const RunEventsOf& events) {
  const Changed changed_after(generation_);
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  // The runs to flag, read before the writer's lock (no other writer flags
  // runs; a run that completes meanwhile is not flagged below).
  const std::string which = "id IN (SELECT id FROM open_runs) AND phase = 'RUNNING' AND stale = 0 AND started_ms < " +
                            std::to_string(before_ms);
  std::vector<RunRow> candidates;
  if (events)
    if (Status r = runs_where(which, " ORDER BY id", 100000, &candidates); !r) return r;
  Status s;
  {
    std::lock_guard lock(write_mu_);
    try {
      Stmt all(db(), ("UPDATE run_state SET stale = 1 WHERE " + which).c_str());
      Stmt flag(db(), "UPDATE run_state SET stale = 1 WHERE id = $1 AND phase = 'RUNNING' AND stale = 0");
      s = in_transaction([&] {
        if (!events) {
          if (!all.exec()) return sql_error("flag stale");
          *count = static_cast<int64_t>(sqlite3_changes(db()));
          return Status::ok();
        }
        // Each run flagged here gets its event in the same transaction.
        std::vector<EventRow> rows;
        *count = 0;
        for (RunRow& r : candidates) {
          if (!flag.bind(1, r.id).exec()) return sql_error("flag stale");
          if (sqlite3_changes(db()) == 0) continue;
          ++*count;
          r.stale = true;
          events(r, &rows);
        }
        std::vector<const EventRow*> ptrs;
        for (const auto& e : rows) ptrs.push_back(&e);
        return insert_events_locked(ptrs);
      });
      // Housekeeping moves the mark too, so the open runs stay few to read
      // whether or not runs are being created.
      if (s) s = in_transaction([&] { return advance_open_mark(); });
    } catch (const std::exception& e) {
      s = Status::unavailable(std::string("store: flag stale: ") + e.what());
    }
  }
  if (s) events_committed(events_before);
  return s;
}

Status SqliteStore::prune(int64_t before_ms, size_t batch, int64_t* deleted) {
  const Changed changed_after(generation_);
  std::lock_guard lock(write_mu_);
  // Only runs created before `before_ms` can have finished before it. Run
  // ids grow with creation time, so the last of them is found by a binary
  // search on ids (a few primary-key lookups), and the candidates are read
  // from the oldest id up: no index of finish times is kept up to date on
  // the hot path for this. The newest run is kept: run ids come from the
  // rowid, and keeping the largest one stops job numbers from being handed
  // out again.
  const int64_t bound = last_created_before(before_ms);
  const std::string ids = "SELECT id FROM run_state WHERE id <= " + std::to_string(bound) +
                          " AND finished_ms <> 0 AND finished_ms < " + std::to_string(before_ms) +
                          " AND id < (SELECT MAX(id) FROM runs) ORDER BY id LIMIT " + std::to_string(batch);
  const std::string sql =
      "BEGIN IMMEDIATE; CREATE TEMP TABLE IF NOT EXISTS prune_ids (id INTEGER PRIMARY KEY); "
      "DELETE FROM prune_ids; INSERT INTO prune_ids " +
      ids +
      "; DELETE FROM run_logs WHERE run_id IN (SELECT id FROM prune_ids); "
      "DELETE FROM run_steps WHERE run_id IN (SELECT id FROM prune_ids); "
      "DELETE FROM run_state WHERE id IN (SELECT id FROM prune_ids); "
      "DELETE FROM runs WHERE id IN (SELECT id FROM prune_ids); COMMIT;";
  char* err = nullptr;
  if (sqlite3_exec(db(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    sqlite3_exec(db(), "ROLLBACK", nullptr, nullptr, nullptr);
    return Status::unavailable("store: prune: " + msg);
  }
  int64_t n = 0;
  try {
    *writer_ << "SELECT COUNT(*) FROM prune_ids", into(n), now;
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store: prune: " + e.displayText());
  }
  *deleted = n;
  return Status::ok();
}

int64_t SqliteStore::last_created_before(int64_t before_ms) {
  try {
    Stmt max_id(db(), "SELECT COALESCE(MAX(id), 0) FROM runs");
    Stmt first_from(db(), "SELECT id, created_ms FROM runs WHERE id >= ? ORDER BY id LIMIT 1");
    // Invariant: ids <= lo were created before; ids >= hi were not (or do not exist).
    int64_t lo = 0, hi = (max_id.step() == SQLITE_ROW ? max_id.column_int(0) : 0) + 1;
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      // The first run at or after `mid`.
      const bool found = first_from.bind(1, mid).step() == SQLITE_ROW;
      const int64_t id = found ? first_from.column_int(0) : 0, created = found ? first_from.column_int(1) : 0;
      first_from.reset();
      if (found && id < hi && created < before_ms)
        lo = id;
      else
        hi = mid;
    }
    return lo;
  } catch (const std::exception&) {
    return 0;  // nothing is pruned this time
  }
}

Status SqliteStore::complete_locked(const std::vector<Completion>& cs, const std::vector<std::string>& inline_logs) {
  std::vector<const EventRow*> events;  // of the runs completed here, written in one statement per 32
  for (size_t k = 0; k < cs.size(); ++k) {
    const Completion& c = cs[k];
    const bool keep_inline = !inline_logs[k].empty();
    auto& st = stmts_->complete;
    st.bind_all(c.outcome, c.terminated, c.finished_ms, c.exit_code, c.summary, c.progress, c.progress_message,
                c.output_json, inline_logs[k], c.run_id);
    int rc = st.step();
    st.reset();
    if (rc != SQLITE_DONE) return sql_error("complete run");
    const bool completed_now = sqlite3_changes(db()) > 0;
    if (completed_now)
      for (const auto& e : c.events) events.push_back(&e);
    // Who cancelled it and why it was terminated, only for a terminated run
    // (few): the completion of every other run keeps to the one statement
    // above.
    if (completed_now && (!c.cancelled_by.empty() || !c.end_cause.empty())) {
      try {
        Stmt by(db(),
                "UPDATE run_state SET cancelled_by = ?, end_cause = ?, end_by = ?, end_reason = ?, end_limit_ms = ? "
                "WHERE id = ?");
        if (!by.bind_all(c.cancelled_by, c.end_cause, c.end_by, c.end_reason, c.end_limit_ms, c.run_id).exec())
          return sql_error("complete run: cancelled by");
      } catch (const std::exception& e) {
        return Status::unavailable(std::string("store: complete run: cancelled by: ") + e.what());
      }
    }
    if (!keep_inline) {
      if (Status s = insert_logs_locked(c.logs); !s) return s;
    } else if (!completed_now) {
      // Already completed (the watchdog gave up on it): its lines go to the
      // log table, but not again those its first completion kept inline.
      auto& mx = stmts_->inline_max_seq;
      mx.bind_all(c.run_id);
      const int64_t kept = mx.step() == SQLITE_ROW ? mx.column_int(0) : 0;
      mx.reset();
      std::vector<LogRow> rest;
      for (const auto& l : c.logs)
        if (l.seq > kept) rest.push_back(l);
      if (Status s = insert_logs_locked(rest); !s) return s;
    }
    for (const auto& step : c.steps) {
      auto& ss = stmts_->insert_step;
      ss.bind_all(step.run_id, step.seq, step.step_id, step.start_ms, step.end_ms, step.outcome, step.summary);
      rc = ss.step();
      ss.reset();
      if (rc != SQLITE_DONE) return sql_error("insert step");
    }
  }
  return insert_events_locked(events);
}

std::vector<std::string> SqliteStore::inline_logs_of(const std::vector<Completion>& cs) {
  std::vector<std::string> out(cs.size());
  for (size_t k = 0; k < cs.size(); ++k) inline_logs_of(cs[k].logs, &out[k]);
  return out;
}

void SqliteStore::inline_logs_of(const std::vector<LogRow>& logs, std::string* out) {
  if (logs.empty() || logs.size() > kInlineLines) return;
  size_t bytes = 0;
  for (size_t i = 0; i < logs.size(); ++i) {
    if (logs[i].seq != static_cast<int64_t>(i) + 1) return;
    bytes += logs[i].message.size() + logs[i].step.size();
  }
  if (bytes > kInlineBytes) return;
  out->assign("[");
  for (const auto& l : logs) {
    if (out->size() > 1) out->push_back(',');
    *out += "[" + std::to_string(l.seq) + "," + std::to_string(l.time_ms) + "," + std::to_string(l.level) + ",";
    append_json_string(l.step, out);
    out->push_back(',');
    append_json_string(l.message, out);
    out->push_back(']');
  }
  out->push_back(']');
}

void SqliteStore::append_json_string(const std::string& text, std::string* out) {
  out->push_back('"');
  for (unsigned char ch : text) {
    if (ch == '"' || ch == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(ch));
    } else if (ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      *out += buf;
    } else {
      out->push_back(static_cast<char>(ch));
    }
  }
  out->push_back('"');
}

Status SqliteStore::advance_open_mark() {
  try {
    Stmt get(db(), "SELECT value FROM store_marks WHERE name = 'open_from'");
    Stmt newest(db(), "SELECT COALESCE(MAX(id), 0) FROM run_state");
    Stmt first_open(db(), "SELECT id FROM run_state WHERE id >= ? AND finished_ms = 0 ORDER BY id LIMIT 1");
    Stmt linger(db(), "INSERT OR IGNORE INTO lingering_runs (id) VALUES (?)");
    Stmt set(db(), "UPDATE store_marks SET value = ? WHERE name = 'open_from'");
    Stmt forget(db(),
                "DELETE FROM lingering_runs WHERE NOT EXISTS (SELECT 1 FROM run_state s WHERE s.id = "
                "lingering_runs.id AND s.finished_ms = 0)");
    if (get.step() != SQLITE_ROW || newest.step() != SQLITE_ROW) return sql_error("open-runs mark");
    const int64_t from = get.column_int(0), max_id = newest.column_int(0);
    int64_t mark = from;
    for (;;) {
      first_open.reset();
      if (first_open.bind(1, mark).step() != SQLITE_ROW) {
        mark = std::max(mark, max_id + 1);
        break;
      }
      const int64_t id = first_open.column_int(0);
      if (id >= max_id - kLingerIds) {
        mark = id;
        break;
      }
      if (!linger.bind(1, id).exec()) return sql_error("lingering run");
      mark = id + 1;
    }
    if (mark != from && !set.bind(1, mark).exec()) return sql_error("open-runs mark");
    if (!forget.exec()) return sql_error("lingering runs");
  } catch (const std::exception& e) {
    return Status::unavailable(std::string("store: open-runs mark: ") + e.what());
  }
  return Status::ok();
}

bool SqliteStore::is_new_pending(const RunRow& r) {
  return r.phase == kPending && r.outcome == kNormal && !r.hold;
}

Status SqliteStore::insert_logs_locked(const std::vector<LogRow>& logs) {
  auto& st = stmts_->insert_log;
  for (const auto& l : logs) {
    st.bind_all(l.run_id, l.seq, l.time_ms, l.level, l.step, l.message);
    int rc = st.step();
    st.reset();
    if (rc != SQLITE_DONE) return sql_error("insert log");
  }
  return Status::ok();
}

Status SqliteStore::runs_where(const std::string& where, const std::string& order, size_t limit,
                               std::vector<RunRow>* out) {
  std::vector<std::vector<std::string>> rs;
  Status s = read_rows(
      "runs",
      "SELECT id, job_type, scheduled_job_id, slot_ms, phase, outcome, trigger, params_json, target_tenant, "
      "dry_run, range_start_ms, range_end_ms, user_id, role, scope, reason, parent_run_id, hold, terminated, "
      "stale, priority, pool, scheduled_ms, created_ms, started_ms, finished_ms, exit_code, summary, progress, "
      "progress_message, output_json, node, cancelled_by, end_cause, end_by, end_reason, end_limit_ms FROM run_rows "
      "WHERE " +
          where + order + " LIMIT " + std::to_string(limit),
      &rs);
  if (!s) return s;
  for (auto& c : rs) try {
      RunRow r;
      int i = 0;
      r.id = std::stoll(c[i++]);
      r.job_type = c[i++];
      r.scheduled_job_id = c[i++];
      r.slot_ms = std::stoll(c[i++]);
      r.phase = c[i++];
      r.outcome = c[i++];
      r.trigger = c[i++];
      r.params_json = c[i++];
      r.target_tenant = c[i++];
      r.dry_run = c[i++] == "1";
      r.range_start_ms = std::stoll(c[i++]);
      r.range_end_ms = std::stoll(c[i++]);
      r.user_id = c[i++];
      r.role = c[i++];
      r.scope = c[i++];
      r.reason = c[i++];
      r.parent_run_id = std::stoll(c[i++]);
      r.hold = c[i++] == "1";
      r.terminated = c[i++] == "1";
      r.stale = c[i++] == "1";
      r.priority = std::stoi(c[i++]);
      r.pool = c[i++];
      r.scheduled_ms = std::stoll(c[i++]);
      r.created_ms = std::stoll(c[i++]);
      r.started_ms = std::stoll(c[i++]);
      r.finished_ms = std::stoll(c[i++]);
      r.exit_code = std::stoi(c[i++]);
      r.summary = c[i++];
      r.progress = std::stod(c[i++]);
      r.progress_message = c[i++];
      r.output_json = c[i++];
      r.node = c[i++];
      r.cancelled_by = c[i++];
      r.end_cause = c[i++];
      r.end_by = c[i++];
      r.end_reason = c[i++];
      r.end_limit_ms = std::stoll(c[i++]);
      out->push_back(std::move(r));
    } catch (const std::exception&) {
      // A row another writer left unparsable (e.g. text in a number column) is skipped.
    }
  return Status::ok();
}

}  // namespace opk::store::internal
