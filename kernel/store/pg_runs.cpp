// The PostgreSQL store's runs: create (with their audit rows), claim (mark
// running), complete, recover after a crash, hold; read runs, their log
// lines and steps; flag stale runs and prune old ones. Each call writes its
// whole vector in one transaction, each statement taking its rows as one
// array per column (PgColumns), so its plan does not grow with them. The open runs
// are found from the low-water mark of migration 5, which this file moves
// as the SQLite store does. Log lines always go to run_logs (the SQLite
// store's inline lines save it a row write; PostgreSQL reads both alike
// through run_log_rows).
#include <algorithm>
#include <cstdio>
#include <set>

#include "store/pg_internal.h"

namespace opk::store::internal {

namespace {

// The open-runs mark moves every this many new runs; a run still open this
// many ids behind the newest is listed as lingering (migration 5).
constexpr int64_t kPgMarkEvery = 4096;
constexpr int64_t kPgLingerIds = 10000;

constexpr const char* kPgRunColumns =
    "id, job_type, scheduled_job_id, slot_ms, phase, outcome, trigger, params_json, target_tenant, dry_run, "
    "range_start_ms, range_end_ms, user_id, role, scope, reason, parent_run_id, hold, terminated, stale, priority, "
    "pool, scheduled_ms, created_ms, started_ms, finished_ms, exit_code, summary, progress, progress_message, "
    "output_json, node, cancelled_by, end_cause, end_by, end_reason, end_limit_ms";

// `ids` as a bigint[] literal.
std::string pg_id_array(const std::vector<int64_t>& ids) {
  std::string s = "{";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "}";
}

std::string pg_bool(bool b) {
  return b ? "1" : "0";
}

}  // namespace

Status PgStore::create_runs(std::vector<RunRow>* runs, std::vector<AuditRow>* audit, std::vector<std::string>* gone) {
  if (runs->empty()) return Status::ok();
  if (audit && audit->size() != runs->size()) return Status(OPK_ERR_INTERNAL, "create_runs: one audit row per run");
  int64_t last = 0;
  Status s = in_transaction(
      "create runs", [&](PGconn* c) { return create_runs_in(c, runs, audit, &last, /*drop_gone=*/false, gone); });
  generation_.fetch_add(1, std::memory_order_release);
  if (!s)
    for (auto& r : *runs) r.id = 0;
  if (s) advance_open_mark_after(last);
  return s;
}

void PgStore::advance_open_mark_after(int64_t last_id) {
  if (last_id == 0 || last_id < next_mark_at_.load(std::memory_order_acquire)) return;
  if (in_transaction("open-runs mark", [&](PGconn* c) { return advance_open_mark(c); }))
    next_mark_at_.store(last_id + kPgMarkEvery, std::memory_order_release);
}

Status PgStore::create_runs_in(PGconn* c, std::vector<RunRow>* runs, std::vector<AuditRow>* audit, int64_t* last_id,
                               bool drop_gone, std::vector<std::string>* gone) {
  *last_id = 0;
  std::vector<bool> skip(runs->size(), false);
  {
    // Nothing of a deleted scheduled job is stored. The jobs are locked FOR
    // KEY SHARE (not their updates, only a delete waits) to the commit: a
    // delete locks its job FOR UPDATE before its conditional DELETE, so it
    // waits for these runs and then sees them, or these wait for it and
    // then find the job gone (READ COMMITTED skips a row deleted meanwhile).
    std::set<std::string> needed;
    for (const auto& r : *runs)
      if (needs_its_job(r)) needed.insert(r.scheduled_job_id);
    if (!needed.empty()) {
      std::string jobs = "{";
      for (const auto& j : needed) jobs += (jobs.size() > 1 ? "," : "") + pg_array_text(j);
      PgResult t;
      if (Status s = pg_exec(c, "create runs: their scheduled jobs",
                             "SELECT id FROM scheduled_jobs WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE",
                             {jobs + "}"}, &t);
          !s)
        return s;
      for (int i = 0; i < PQntuples(t.get()); ++i) needed.erase(PQgetvalue(t.get(), i, 0));
      if (!needed.empty() && !drop_gone) {
        for (auto& r : *runs) r.id = 0;
        std::vector<std::string> missing(needed.begin(), needed.end());
        if (gone) *gone = missing;
        return jobs_gone(missing);
      }
      for (size_t k = 0; k < runs->size(); ++k)
        skip[k] = needs_its_job((*runs)[k]) && needed.count((*runs)[k].scheduled_job_id);
    }
  }
  // A run whose schedule slot is taken (stored, or earlier in this batch)
  // is not inserted and gets 0; it takes no id, so job numbers have no gaps
  // (but for a slot another kernel takes at the same moment: ON CONFLICT
  // below).
  {
    std::string jobs = "{", slots = "{";
    bool any = false;
    for (const auto& r : *runs)
      if (r.slot_ms != 0) {
        jobs += (any ? "," : "") + pg_array_text(r.scheduled_job_id);
        slots += (any ? "," : "") + std::to_string(r.slot_ms);
        any = true;
      }
    if (any) {
      PgResult t;
      if (Status s =
              pg_exec_hot(c, "opk_slots_taken", "create runs",
                          "SELECT r.scheduled_job_id, r.slot_ms FROM runs r JOIN unnest($1::text[], $2::bigint[]) "
                          "AS w(job, slot) ON r.scheduled_job_id = w.job AND r.slot_ms = w.slot",
                          {jobs + "}", slots + "}"}, &t);
          !s)
        return s;
      std::set<std::pair<std::string, int64_t>> taken_slots;
      for (int i = 0; i < PQntuples(t.get()); ++i)
        taken_slots.emplace(PQgetvalue(t.get(), i, 0), std::strtoll(PQgetvalue(t.get(), i, 1), nullptr, 10));
      for (size_t k = 0; k < runs->size(); ++k) {
        const RunRow& r = (*runs)[k];
        if (r.slot_ms == 0 || skip[k]) continue;
        skip[k] = !taken_slots.emplace(r.scheduled_job_id, r.slot_ms).second;
      }
    }
  }
  const size_t wanted = static_cast<size_t>(std::count(skip.begin(), skip.end(), false));
  // Ids are taken from the sequence first, in order, so each run knows its
  // own. The run ids' lock, shared, is held from before the first id to the
  // commit: the open-runs mark cannot pass an id this transaction has taken
  // but not yet committed (advance_open_mark).
  std::vector<int64_t> taken;
  if (wanted > 0) {
    if (Status s = pg_exec_hot(c, "opk_run_ids_lock", "run ids lock", "SELECT pg_advisory_xact_lock_shared($1)",
                               {std::to_string(kPgRunIdsLock)});
        !s)
      return s;
    PgResult ids;
    if (Status s = pg_exec_hot(c, "opk_run_ids", "create runs",
                               "WITH q AS MATERIALIZED (SELECT pg_get_serial_sequence('runs', 'id')::regclass AS seq) "
                               "SELECT nextval(q.seq) FROM q, generate_series(1, $1)",
                               {std::to_string(wanted)}, &ids);
        !s)
      return s;
    for (int i = 0; i < PQntuples(ids.get()); ++i)
      taken.push_back(std::strtoll(PQgetvalue(ids.get(), i, 0), nullptr, 10));
    std::sort(taken.begin(), taken.end());
  }
  std::vector<RunRow*> todo;
  for (size_t k = 0, next = 0; k < runs->size(); ++k) {
    RunRow& r = (*runs)[k];
    r.id = skip[k] ? 0 : taken.at(next++);
    if (r.created_ms == 0) r.created_ms = now_ms();
    // A completed run always has a finish time.
    if (r.phase == kCompleted && r.finished_ms <= 0) r.finished_ms = std::max<int64_t>(r.created_ms, 1);
    if (r.id) todo.push_back(&r);
  }
  // One statement for the runs and one for their state rows, whatever their
  // number: the rows travel as one array per column (PgColumns).
  std::vector<int64_t> inserted;
  if (!todo.empty()) {
    PgColumns col(19);
    for (const RunRow* r : todo) {
      col.number(0, r->id);
      col.text(1, r->job_type);
      col.text(2, r->scheduled_job_id);
      col.number(3, r->slot_ms);
      col.text(4, r->trigger);
      col.text(5, r->params_json);
      col.text(6, r->target_tenant);
      col.number(7, r->dry_run ? 1 : 0);
      col.number(8, r->range_start_ms);
      col.number(9, r->range_end_ms);
      col.text(10, r->user_id);
      col.text(11, r->role);
      col.text(12, r->scope);
      col.text(13, r->reason);
      col.number(14, r->parent_run_id);
      col.number(15, r->priority);
      col.text(16, r->pool);
      col.number(17, r->scheduled_ms);
      col.number(18, r->created_ms);
    }
    PgResult res;
    if (Status s = pg_exec_hot(c, "opk_insert_runs", "insert runs",
                               "INSERT INTO runs (id, job_type, scheduled_job_id, slot_ms, trigger, params_json, "
                               "target_tenant, dry_run, range_start_ms, range_end_ms, user_id, role, scope, reason, "
                               "parent_run_id, priority, pool, scheduled_ms, created_ms) SELECT * FROM "
                               "unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], "
                               "$7::text[], $8::integer[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], "
                               "$13::text[], $14::text[], $15::bigint[], $16::integer[], $17::text[], $18::bigint[], "
                               "$19::bigint[]) ON CONFLICT DO NOTHING RETURNING id",
                               col.params(), &res);
        !s)
      return s;
    for (int i = 0; i < PQntuples(res.get()); ++i)
      inserted.push_back(std::strtoll(PQgetvalue(res.get(), i, 0), nullptr, 10));
  }
  std::sort(inserted.begin(), inserted.end());
  for (auto& r : *runs)
    if (!std::binary_search(inserted.begin(), inserted.end(), r.id)) r.id = 0;  // the slot fired already
  // Their state rows: a new run starts with its phase, outcome and hold; the
  // rest of its state is kept only for a completed run (an import).
  if (!inserted.empty()) {
    PgColumns col(12);
    for (const auto& r : *runs) {
      if (!r.id) continue;
      const bool done = r.phase == kCompleted;
      col.number(0, r.id);
      col.text(1, r.phase);
      col.text(2, r.outcome);
      col.number(3, r.hold ? 1 : 0);
      col.number(4, done && r.terminated ? 1 : 0);
      col.number(5, done ? r.started_ms : 0);
      col.number(6, done ? r.finished_ms : 0);
      col.number(7, done ? r.exit_code : 0);
      col.text(8, done ? r.summary : std::string());
      col.real(9, done ? r.progress : 0.0);
      col.text(10, done ? r.progress_message : std::string());
      col.text(11, done ? r.output_json : std::string());
    }
    if (Status s =
            pg_exec_hot(c, "opk_insert_run_state", "insert run state",
                        "INSERT INTO run_state (id, phase, outcome, hold, terminated, started_ms, finished_ms, "
                        "exit_code, summary, progress, progress_message, output_json) SELECT * FROM "
                        "unnest($1::bigint[], $2::text[], $3::text[], $4::integer[], $5::integer[], $6::bigint[], "
                        "$7::bigint[], $8::integer[], $9::text[], $10::double precision[], $11::text[], "
                        "$12::text[])",
                        col.params());
        !s)
      return s;
  }
  if (audit) {
    for (size_t k = 0; k < runs->size(); ++k) (*audit)[k].outcome = "ok: run " + std::to_string((*runs)[k].id);
    if (Status s = insert_audit(c, *audit); !s) return s;
  }
  if (Status s = notify_due_runs(c, *runs); !s) return s;
  // Every kPgMarkEvery new runs, the open-runs mark moves up, after the
  // commit (advance_open_mark_after).
  *last_id = taken.empty() ? 0 : taken.back();
  return Status::ok();
}

Status PgStore::mark_running(const std::vector<int64_t>& ids, int64_t now, const std::string& node,
                             std::vector<int64_t>* skipped, const std::vector<Completion>* completed_first) {
  if (ids.empty()) return completed_first ? complete_runs(*completed_first) : Status::ok();
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  std::vector<int64_t> missed;
  Status s = in_transaction("mark running", [&](PGconn* c) {
    missed.clear();
    // The claim before the completions: their events take the event log's
    // lock, which is taken last (pg_events.cpp).
    PgResult r;
    if (Status w = pg_exec_hot(
            c, "opk_mark_running", "mark running",
            "UPDATE run_state SET phase = 'RUNNING', started_ms = $1, node = $2 WHERE id = ANY($3::bigint[]) "
            "AND phase = 'PENDING' AND hold = 0 RETURNING id",
            {std::to_string(now), node, pg_id_array(ids)}, &r);
        !w)
      return w;
    std::vector<int64_t> got;
    for (int i = 0; i < PQntuples(r.get()); ++i) got.push_back(std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10));
    std::sort(got.begin(), got.end());
    for (int64_t id : ids)
      if (!std::binary_search(got.begin(), got.end(), id)) missed.push_back(id);
    if (completed_first) return complete_in(c, *completed_first);
    return Status::ok();
  });
  generation_.fetch_add(1, std::memory_order_release);
  if (!s) return s;
  if (skipped) skipped->insert(skipped->end(), missed.begin(), missed.end());
  events_committed(events_before);
  return Status::ok();
}

Status PgStore::complete_runs(const std::vector<Completion>& cs) {
  if (cs.empty()) return Status::ok();
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  Status s = in_transaction("complete runs", [&](PGconn* c) { return complete_in(c, cs); });
  generation_.fetch_add(1, std::memory_order_release);
  if (s) events_committed(events_before);
  return s;
}

Status PgStore::recover_runs(const std::vector<Completion>& closed, std::vector<RunRow>* requeued) {
  if (closed.empty() && requeued->empty()) return Status::ok();
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  int64_t last = 0;
  // The new runs first: the completions' events take the event log's lock last.
  Status s = in_transaction("recover runs", [&](PGconn* c) {
    // Only runs still open are closed and repeated: kernels taking over a
    // dead node's runs may race for them (the rows are locked to the commit;
    // one another transaction holds, such as a stalled node's, is left for
    // the next try).
    std::vector<int64_t> ids;
    for (const auto& x : closed) ids.push_back(x.run_id);
    PgResult open;
    if (Status w = pg_exec(c, "recover runs",
                           "SELECT id FROM run_state WHERE id = ANY($1::bigint[]) AND phase <> 'COMPLETED' ORDER BY id "
                           "FOR UPDATE SKIP LOCKED",
                           {pg_id_array(ids)}, &open);
        !w)
      return w;
    std::set<int64_t> still;
    for (int i = 0; i < PQntuples(open.get()); ++i)
      still.insert(std::strtoll(PQgetvalue(open.get(), i, 0), nullptr, 10));
    std::vector<Completion> closing;
    for (const auto& x : closed)
      if (still.count(x.run_id)) closing.push_back(x);
    std::vector<RunRow> again;
    std::vector<size_t> again_at;
    for (size_t i = 0; i < requeued->size(); ++i)
      if ((*requeued)[i].parent_run_id == 0 || still.count((*requeued)[i].parent_run_id)) {
        again.push_back((*requeued)[i]);
        again_at.push_back(i);
      }
    for (auto& r : *requeued) r.id = 0;
    if (!again.empty()) {
      // A repeat of a run of a deleted scheduled job is not created.
      if (Status w = create_runs_in(c, &again, nullptr, &last, /*drop_gone=*/true); !w) return w;
      for (size_t i = 0; i < again.size(); ++i) (*requeued)[again_at[i]].id = again[i].id;
    }
    return complete_in(c, closing);
  });
  generation_.fetch_add(1, std::memory_order_release);
  if (!s)
    for (auto& r : *requeued) r.id = 0;
  if (s) events_committed(events_before);
  if (s) advance_open_mark_after(last);
  return s;
}

Status PgStore::complete_pending(const Completion& c, bool* changed) {
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  Status s = in_transaction("complete run " + std::to_string(c.run_id), [&](PGconn* conn) {
    PgResult r;
    if (Status w = pg_exec(conn, "complete pending run",
                           "UPDATE run_state SET phase = 'COMPLETED', outcome = $1, terminated = $2, finished_ms = "
                           "GREATEST($3::bigint, 1), exit_code = $4, summary = $5, cancelled_by = $6, end_cause = "
                           "$7, end_by = $8, end_reason = $9, end_limit_ms = $10 WHERE id = $11 AND phase = 'PENDING'",
                           {c.outcome, pg_bool(c.terminated), std::to_string(c.finished_ms),
                            std::to_string(c.exit_code), c.summary, c.cancelled_by, c.end_cause, c.end_by, c.end_reason,
                            std::to_string(c.end_limit_ms), std::to_string(c.run_id)},
                           &r);
        !w)
      return w;
    *changed = std::strtoll(PQcmdTuples(r.get()), nullptr, 10) > 0;
    // Its events only if this call completed it.
    std::vector<const EventRow*> events;
    if (*changed)
      for (const auto& e : c.events) events.push_back(&e);
    return insert_events(conn, events);
  });
  generation_.fetch_add(1, std::memory_order_release);
  if (s) events_committed(events_before);
  return s;
}

Status PgStore::append_logs(const std::vector<LogRow>& logs) {
  if (logs.empty()) return Status::ok();
  return in_transaction("append logs", [&](PGconn* c) { return insert_logs(c, logs); });
}

Status PgStore::set_hold(int64_t run_id, bool hold) {
  int64_t n = 0;
  const std::string what = (hold ? "hold run " : "release run ") + std::to_string(run_id);
  Status s = in_transaction(what, [&](PGconn* c) {
    PgResult r;
    if (Status w = pg_exec(c, what,
                           "UPDATE run_state s SET hold = $1 FROM runs r WHERE s.id = $2 AND r.id = s.id AND s.phase = "
                           "'PENDING' RETURNING r.scheduled_ms",
                           {pg_bool(hold), std::to_string(run_id)}, &r);
        !w)
      return w;
    n = PQntuples(r.get());
    if (hold || n == 0) return Status::ok();
    // Released and due: the kernels that may claim it are woken as for a
    // new run (a hint only; their polls find it too).
    RunRow released;
    released.id = run_id;
    released.scheduled_ms = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
    return notify_due_runs(c, {released});
  });
  generation_.fetch_add(1, std::memory_order_release);
  if (!s) return s;
  return n ? Status::ok() : Status::conflict("run " + std::to_string(run_id) + " is not pending");
}

Status PgStore::get_run(int64_t id, RunRow* out) {
  std::vector<RunRow> rows;
  if (Status s = runs_where("id = $1", {std::to_string(id)}, "", 1, &rows); !s) return s;
  if (rows.empty()) return Status::not_found("no run " + std::to_string(id));
  *out = rows.front();
  return Status::ok();
}

StatusOr<std::vector<RunRow>> PgStore::list_runs(const RunFilter& f) {
  std::string where = "TRUE";
  PgParams p;
  auto param = [&](const std::string& v) {
    p.emplace_back(v);
    return "$" + std::to_string(p.size());
  };
  if (!f.job_type.empty()) where += " AND job_type = " + param(f.job_type);
  if (!f.scheduled_job_id.empty())
    where += " AND scheduled_job_id = " + param(f.scheduled_job_id) + " AND scheduled_job_id <> ''";
  if (!f.phase.empty()) where += " AND phase = " + param(f.phase);
  if (!f.outcome.empty()) where += " AND outcome = " + param(f.outcome) + " AND phase = 'COMPLETED'";
  if (f.cancelled) where += *f.cancelled ? " AND cancelled_by <> '' AND phase = 'COMPLETED'" : " AND cancelled_by = ''";
  if (f.end_causes) {
    std::string in;
    for (const auto& c : *f.end_causes) in += (in.empty() ? "" : ", ") + param(c);
    where += " AND end_cause IN (" + (in.empty() ? std::string("''") : in) + ")";
  }
  if (!f.trigger.empty()) where += " AND trigger = " + param(f.trigger);
  if (f.since_ms) where += " AND created_ms >= " + param(std::to_string(f.since_ms));
  if (f.until_ms) where += " AND created_ms < " + param(std::to_string(f.until_ms));
  if (f.before_id) where += " AND id < " + param(std::to_string(f.before_id));
  if (f.after_id) where += " AND id > " + param(std::to_string(f.after_id));
  if (f.seen_from) {
    std::string in;
    for (const auto& n : *f.seen_from) in += (in.empty() ? "" : ", ") + param(n);
    where += " AND " + runs_seen_from_sql(in.empty() ? std::string("''") : in);
  }
  if (f.ids) {
    std::string in;
    for (int64_t id : *f.ids) in += (in.empty() ? "" : ", ") + std::to_string(id);
    where += " AND id IN (" + (in.empty() ? std::string("0") : in) + ")";
  }
  std::vector<RunRow> out;
  if (Status s = runs_where(where, p, f.after_id ? " ORDER BY id" : " ORDER BY id DESC", f.limit, &out); !s) return s;
  return out;
}

StatusOr<std::vector<RunRow>> PgStore::runs_in_phase(const std::string& phase, size_t limit) {
  const std::string open = phase == kCompleted ? "finished_ms <> 0" : "id IN (SELECT id FROM open_runs)";
  std::vector<RunRow> out;
  if (Status s =
          runs_where(open + " AND phase = $1", {phase}, " ORDER BY priority DESC, scheduled_ms, id", limit, &out);
      !s)
    return s;
  return out;
}

StatusOr<std::vector<LogRow>> PgStore::logs(int64_t run_id, int64_t after_seq, size_t limit) {
  std::vector<LogRow> out;
  if (Status s = log_rows(run_id, " AND seq > $2 ORDER BY seq LIMIT $3",
                          {std::to_string(after_seq), std::to_string(limit)}, &out);
      !s)
    return s;
  return out;
}

StatusOr<std::vector<LogRow>> PgStore::last_logs(int64_t run_id, size_t n) {
  std::vector<LogRow> out;
  if (Status s = log_rows(run_id, " ORDER BY seq DESC LIMIT $2", {std::to_string(n)}, &out); !s) return s;
  std::reverse(out.begin(), out.end());
  return out;
}

Status PgStore::log_rows(int64_t run_id, const std::string& rest, const PgParams& more, std::vector<LogRow>* out) {
  PgParams p = {std::to_string(run_id)};
  p.insert(p.end(), more.begin(), more.end());
  std::vector<std::vector<std::string>> rows;
  if (Status s = text_rows(
          "log lines", "SELECT run_id, seq, time_ms, level, step, message FROM run_log_rows WHERE run_id = $1" + rest,
          p, &rows);
      !s)
    return s;
  for (auto& r : rows)
    out->push_back({std::stoll(r[0]), std::stoll(r[1]), std::stoll(r[2]), std::stoi(r[3]), r[4], r[5]});
  return Status::ok();
}

StatusOr<std::vector<StepRow>> PgStore::steps(int64_t run_id) {
  std::vector<std::vector<std::string>> rs;
  if (Status s = text_rows("steps",
                           "SELECT run_id, seq, step_id, start_ms, end_ms, outcome, summary FROM run_steps WHERE "
                           "run_id = $1 ORDER BY seq",
                           {std::to_string(run_id)}, &rs);
      !s)
    return s;
  std::vector<StepRow> out;
  for (auto& r : rs)
    out.push_back({std::stoll(r[0]), std::stoi(r[1]), r[2], std::stoll(r[3]), std::stoll(r[4]), r[5], r[6]});
  return out;
}

Status PgStore::flag_stale(int64_t before_ms, int64_t* count, const RunEventsOf& events) {
  const int64_t events_before = last_event_seq_.load(std::memory_order_acquire);
  const std::string which = "id IN (SELECT id FROM open_runs) AND phase = 'RUNNING' AND stale = 0 AND started_ms < $1";
  Status s = in_transaction("flag stale", [&](PGconn* c) {
    PgResult r;
    if (Status w = pg_exec(c, "flag stale", "UPDATE run_state SET stale = 1 WHERE " + which + " RETURNING id",
                           {std::to_string(before_ms)}, &r);
        !w)
      return w;
    *count = PQntuples(r.get());
    if (events && *count > 0) {
      // Each run flagged here gets its event in the same transaction.
      std::vector<int64_t> ids;
      for (int i = 0; i < PQntuples(r.get()); ++i) ids.push_back(std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10));
      std::vector<RunRow> flagged;
      if (Status w =
              runs_where_in(c, "id = ANY($1::bigint[])", {pg_id_array(ids)}, " ORDER BY id", ids.size(), &flagged);
          !w)
        return w;
      std::vector<EventRow> rows;
      for (const RunRow& run : flagged) events(run, &rows);
      std::vector<const EventRow*> ptrs;
      for (const auto& e : rows) ptrs.push_back(&e);
      if (Status w = insert_events(c, ptrs); !w) return w;
    }
    return Status::ok();
  });
  // Housekeeping moves the mark too, so the open runs stay few to read
  // whether or not runs are being created.
  if (s) s = in_transaction("open-runs mark", [&](PGconn* c) { return advance_open_mark(c); });
  generation_.fetch_add(1, std::memory_order_release);
  if (s) events_committed(events_before);
  return s;
}

Status PgStore::prune(int64_t before_ms, size_t batch, int64_t* deleted) {
  // Only runs created before `before_ms` can have finished before it; the
  // newest run is kept, as the SQLite store does.
  const int64_t bound = last_created_before(before_ms);
  PgPool::Lease lease;
  if (Status s = pool_.acquire(&lease); !s) return s;
  PgResult r;
  Status s = pg_exec(lease.get(), "prune",
                     "WITH ids AS (SELECT id FROM run_state WHERE id <= $1 AND finished_ms <> 0 AND finished_ms < $2 "
                     "AND id < (SELECT MAX(id) FROM runs) ORDER BY id LIMIT $3), "
                     "l AS (DELETE FROM run_logs WHERE run_id IN (SELECT id FROM ids)), "
                     "st AS (DELETE FROM run_steps WHERE run_id IN (SELECT id FROM ids)), "
                     "s AS (DELETE FROM run_state WHERE id IN (SELECT id FROM ids)), "
                     "r AS (DELETE FROM runs WHERE id IN (SELECT id FROM ids) RETURNING id) "
                     "SELECT COUNT(*) FROM r",
                     {std::to_string(bound), std::to_string(before_ms), std::to_string(batch)}, &r);
  generation_.fetch_add(1, std::memory_order_release);
  if (!s) return s;
  *deleted = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
  return Status::ok();
}

int64_t PgStore::last_created_before(int64_t before_ms) {
  // Run ids grow with creation time (up to clock steps): a binary search on
  // ids, a few primary-key lookups, instead of an index of creation times.
  PgPool::Lease lease;
  if (!pool_.acquire(&lease)) return 0;
  PgResult r;
  if (!pg_exec(lease.get(), "prune", "SELECT COALESCE(MAX(id), 0) FROM runs", {}, &r)) return 0;
  // Invariant: ids <= lo were created before; ids >= hi were not (or do not exist).
  int64_t lo = 0, hi = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10) + 1;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    PgResult f;
    if (!pg_exec(lease.get(), "prune", "SELECT id, created_ms FROM runs WHERE id >= $1 ORDER BY id LIMIT 1",
                 {std::to_string(mid)}, &f))
      return 0;  // nothing is pruned this time
    const bool found = PQntuples(f.get()) > 0;
    const int64_t id = found ? std::strtoll(PQgetvalue(f.get(), 0, 0), nullptr, 10) : 0;
    const int64_t created = found ? std::strtoll(PQgetvalue(f.get(), 0, 1), nullptr, 10) : 0;
    if (found && id < hi && created < before_ms)
      lo = id;
    else
      hi = mid;
  }
  return lo;
}

Status PgStore::complete_in(PGconn* c, const std::vector<Completion>& all) {
  // A fenced node's results are dropped (pg_cluster.cpp).
  std::vector<Completion> kept;
  size_t dropped = 0;
  if (Status s = fence_completions(c, all, &kept, &dropped); !s) return s;
  const std::vector<Completion>& cs = dropped ? kept : all;
  std::vector<const EventRow*> events;  // of the runs completed here
  std::vector<LogRow> logs;
  std::vector<const StepRow*> steps;
  // One UPDATE for the batch, its values as arrays; a run completed twice in
  // one batch (the first one wins, as on SQLite) goes one by one instead.
  std::vector<int64_t> ids;
  for (const Completion& x : cs) ids.push_back(x.run_id);
  std::vector<int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  const bool distinct = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  std::vector<int64_t> completed;
  static const std::string kComplete =
      "UPDATE run_state s SET phase = 'COMPLETED', outcome = c.outcome, terminated = c.terminated, finished_ms = "
      "GREATEST(c.finished_ms, 1), exit_code = c.exit_code, summary = c.summary, progress = c.progress, "
      "progress_message = c.progress_message, output_json = c.output_json, cancelled_by = CASE WHEN c.cancelled_by "
      "<> '' THEN c.cancelled_by ELSE s.cancelled_by END FROM unnest($1::bigint[], $2::text[], $3::integer[], "
      "$4::bigint[], $5::integer[], $6::text[], $7::double precision[], $8::text[], $9::text[], $10::text[]) AS "
      "c(id, outcome, terminated, finished_ms, exit_code, summary, progress, progress_message, output_json, "
      "cancelled_by) WHERE s.id = c.id AND s.phase <> 'COMPLETED' RETURNING s.id";
  for (size_t k = 0; k < cs.size();) {
    const size_t n = distinct ? cs.size() : 1;
    PgColumns col(10);
    for (size_t i = 0; i < n; ++i) {
      const Completion& x = cs[k + i];
      col.number(0, x.run_id);
      col.text(1, x.outcome);
      col.number(2, x.terminated ? 1 : 0);
      col.number(3, x.finished_ms);
      col.number(4, x.exit_code);
      col.text(5, x.summary);
      col.real(6, x.progress);
      col.text(7, x.progress_message);
      col.text(8, x.output_json);
      col.text(9, x.cancelled_by);
    }
    PgResult r;
    if (Status s = pg_exec_hot(c, "opk_complete_runs", "complete runs", kComplete, col.params(), &r); !s) return s;
    for (int i = 0; i < PQntuples(r.get()); ++i)
      completed.push_back(std::strtoll(PQgetvalue(r.get(), i, 0), nullptr, 10));
    k += n;
  }
  std::sort(completed.begin(), completed.end());
  for (const Completion& x : cs) {
    // The events of a run only from the completion that completed it.
    auto it = std::lower_bound(completed.begin(), completed.end(), x.run_id);
    if (it != completed.end() && *it == x.run_id) {
      for (const auto& e : x.events) events.push_back(&e);
      completed.erase(it);
      // Why it was terminated, only for a terminated run (few).
      if (!x.end_cause.empty())
        if (Status s = pg_exec(
                c, "complete runs: end cause",
                "UPDATE run_state SET end_cause = $1, end_by = $2, end_reason = $3, end_limit_ms = $4 "
                "WHERE id = $5",
                {x.end_cause, x.end_by, x.end_reason, std::to_string(x.end_limit_ms), std::to_string(x.run_id)});
            !s)
          return s;
    }
    // A line already stored (by the watchdog) is kept.
    logs.insert(logs.end(), x.logs.begin(), x.logs.end());
    for (const auto& st : x.steps) steps.push_back(&st);
  }
  if (Status s = insert_logs(c, logs); !s) return s;
  if (!steps.empty()) {
    PgColumns col(7);
    for (const StepRow* st : steps) {
      col.number(0, st->run_id);
      col.number(1, st->seq);
      col.text(2, st->step_id);
      col.number(3, st->start_ms);
      col.number(4, st->end_ms);
      col.text(5, st->outcome);
      col.text(6, st->summary);
    }
    // A step stored again replaces the first (as the SQLite store's INSERT OR REPLACE).
    if (Status s =
            pg_exec_hot(c, "opk_insert_steps", "insert steps",
                        "INSERT INTO run_steps (run_id, seq, step_id, start_ms, end_ms, outcome, summary) SELECT * "
                        "FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::bigint[], $5::bigint[], "
                        "$6::text[], $7::text[]) ON CONFLICT (run_id, seq) DO UPDATE SET step_id = "
                        "excluded.step_id, start_ms = excluded.start_ms, end_ms = excluded.end_ms, outcome = "
                        "excluded.outcome, summary = excluded.summary",
                        col.params());
        !s)
      return s;
  }
  return insert_events(c, events);
}

Status PgStore::insert_logs(PGconn* c, const std::vector<LogRow>& logs) {
  if (logs.empty()) return Status::ok();
  PgColumns col(6);
  for (const LogRow& l : logs) {
    col.number(0, l.run_id);
    col.number(1, l.seq);
    col.number(2, l.time_ms);
    col.number(3, l.level);
    col.text(4, l.step);
    col.text(5, l.message);
  }
  return pg_exec_hot(c, "opk_insert_logs", "insert log lines",
                     "INSERT INTO run_logs (run_id, seq, time_ms, level, step, message) SELECT * FROM "
                     "unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::integer[], $5::text[], $6::text[]) ON "
                     "CONFLICT DO NOTHING",
                     col.params());
}

Status PgStore::advance_open_mark(PGconn* c) {
  // An id is taken from the sequence before its run is committed, so a run
  // with a smaller id than one seen may still be on its way: the run ids'
  // lock, exclusive, is granted once every transaction that took ids has
  // ended (they hold it shared), and the statements below (READ COMMITTED)
  // then see all their runs. Taken first, with no other lock held; runs
  // created meanwhile wait for it, briefly.
  if (Status s = pg_exec(c, "run ids lock", "SELECT pg_advisory_xact_lock($1)", {std::to_string(kPgRunIdsLock)}); !s)
    return s;
  // The mark's row is locked to the commit: kernels move it one at a time.
  PgResult r;
  if (Status s = pg_exec(c, "open-runs mark",
                         "SELECT (SELECT value FROM store_marks WHERE name = 'open_from' FOR UPDATE), "
                         "(SELECT COALESCE(MAX(id), 0) FROM run_state)",
                         {}, &r);
      !s)
    return s;
  const int64_t from = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
  const int64_t max_id = std::strtoll(PQgetvalue(r.get(), 0, 1), nullptr, 10);
  int64_t mark = from;
  for (;;) {
    PgResult f;
    if (Status s = pg_exec(c, "open-runs mark",
                           "SELECT id FROM run_state WHERE id >= $1 AND finished_ms = 0 ORDER BY id LIMIT 1",
                           {std::to_string(mark)}, &f);
        !s)
      return s;
    if (PQntuples(f.get()) == 0) {
      mark = std::max(mark, max_id + 1);
      break;
    }
    const int64_t id = std::strtoll(PQgetvalue(f.get(), 0, 0), nullptr, 10);
    if (id >= max_id - kPgLingerIds) {
      mark = id;
      break;
    }
    if (Status s = pg_exec(c, "lingering run", "INSERT INTO lingering_runs (id) VALUES ($1) ON CONFLICT DO NOTHING",
                           {std::to_string(id)});
        !s)
      return s;
    mark = id + 1;
  }
  if (mark != from)
    if (Status s = pg_exec(c, "open-runs mark", "UPDATE store_marks SET value = $1 WHERE name = 'open_from'",
                           {std::to_string(mark)});
        !s)
      return s;
  return pg_exec(c, "lingering runs",
                 "DELETE FROM lingering_runs l WHERE NOT EXISTS (SELECT 1 FROM run_state s WHERE s.id = l.id AND "
                 "s.finished_ms = 0)",
                 {});
}

Status PgStore::repair_open_runs(int64_t max_ids, int64_t* repaired) {
  *repaired = 0;
  // Before the mark waited for the runs being written (kPgRunIdsLock, in
  // advance_open_mark), it could pass a run committed after a later one:
  // open, below the mark and not lingering, that run was lost to every
  // reader of open_runs (never claimed, taken over or cancelled). Every id
  // below the mark is looked at once, in order, from where the last look
  // ended (store_marks 'open_checked', its row locked to the commit: one
  // kernel at a time, and a kernel that finds it locked leaves this look to
  // the one holding it rather than wait for its scan, as the housekeeping
  // that calls this fires the schedules too); an open run found there is
  // listed as lingering, as the mark lists an open run it passes. A range of
  // the primary key, at most `max_ids` long.
  int64_t found = 0;
  Status s = in_transaction("repair open runs", [&](PGconn* c) {
    if (Status w = pg_exec(c, "repair open runs",
                           "INSERT INTO store_marks (name, value) VALUES ('open_checked', 0) ON CONFLICT (name) DO "
                           "NOTHING",
                           {});
        !w)
      return w;
    PgResult m;
    if (Status w = pg_exec(c, "repair open runs",
                           "SELECT (SELECT value FROM store_marks WHERE name = 'open_checked' FOR UPDATE SKIP LOCKED), "
                           "(SELECT value FROM store_marks WHERE name = 'open_from')",
                           {}, &m);
        !w)
      return w;
    if (PQgetisnull(m.get(), 0, 0)) return Status::ok();  // another kernel is looking
    const int64_t from = std::strtoll(PQgetvalue(m.get(), 0, 0), nullptr, 10);
    const int64_t mark = std::strtoll(PQgetvalue(m.get(), 0, 1), nullptr, 10);
    const int64_t to = std::min(mark, from + std::max<int64_t>(max_ids, 1));
    if (to <= from) return Status::ok();
    PgResult listed;
    if (Status w = pg_exec(c, "repair open runs",
                           "INSERT INTO lingering_runs (id) SELECT id FROM run_state WHERE id >= $1 AND id < $2 AND "
                           "finished_ms = 0 ORDER BY id ON CONFLICT DO NOTHING RETURNING id",
                           {std::to_string(from), std::to_string(to)}, &listed);
        !w)
      return w;
    found = PQntuples(listed.get());
    return pg_exec(c, "repair open runs", "UPDATE store_marks SET value = $1 WHERE name = 'open_checked'",
                   {std::to_string(to)});
  });
  if (!s) return s;
  *repaired = found;
  if (found) generation_.fetch_add(1, std::memory_order_release);
  return Status::ok();
}

Status PgStore::runs_where(const std::string& where, const PgParams& params, const std::string& order, size_t limit,
                           std::vector<RunRow>* out) {
  PgPool::Lease lease;
  Status s = pool_.acquire(&lease);
  if (s) s = runs_where_in(lease.get(), where, params, order, limit, out);
  if (!s) return Status::unavailable("store (postgresql): cannot read runs: " + s.message());
  return s;
}

Status PgStore::runs_where_in(PGconn* c, const std::string& where, const PgParams& params, const std::string& order,
                              size_t limit, std::vector<RunRow>* out) {
  PgResult r;
  if (Status s = pg_exec(c, "runs",
                         std::string("SELECT ") + kPgRunColumns + " FROM run_rows WHERE " + where + order + " LIMIT " +
                             std::to_string(limit),
                         params, &r);
      !s)
    return s;
  for (int row = 0; row < PQntuples(r.get()); ++row) try {
      auto v = [&](int col) { return std::string(PQgetvalue(r.get(), row, col)); };
      auto i64 = [&](int col) { return std::stoll(v(col)); };
      RunRow x;
      int i = 0;
      x.id = i64(i++);
      x.job_type = v(i++);
      x.scheduled_job_id = v(i++);
      x.slot_ms = i64(i++);
      x.phase = v(i++);
      x.outcome = v(i++);
      x.trigger = v(i++);
      x.params_json = v(i++);
      x.target_tenant = v(i++);
      x.dry_run = v(i++) == "1";
      x.range_start_ms = i64(i++);
      x.range_end_ms = i64(i++);
      x.user_id = v(i++);
      x.role = v(i++);
      x.scope = v(i++);
      x.reason = v(i++);
      x.parent_run_id = i64(i++);
      x.hold = v(i++) == "1";
      x.terminated = v(i++) == "1";
      x.stale = v(i++) == "1";
      x.priority = static_cast<int32_t>(i64(i++));
      x.pool = v(i++);
      x.scheduled_ms = i64(i++);
      x.created_ms = i64(i++);
      x.started_ms = i64(i++);
      x.finished_ms = i64(i++);
      x.exit_code = static_cast<int32_t>(i64(i++));
      x.summary = v(i++);
      x.progress = std::stod(v(i++));
      x.progress_message = v(i++);
      x.output_json = v(i++);
      x.node = v(i++);
      x.cancelled_by = v(i++);
      x.end_cause = v(i++);
      x.end_by = v(i++);
      x.end_reason = v(i++);
      x.end_limit_ms = i64(i++);
      out->push_back(std::move(x));
    } catch (const std::exception&) {
      // An unparsable row is skipped, as the SQLite store does.
    }
  return Status::ok();
}

}  // namespace opk::store::internal
