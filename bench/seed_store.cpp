// Fills a fresh store for the admin API benchmark: N scheduled jobs and M
// completed runs spread over them (one log line each), written in batches.
// Usage: opk_seed_store STORE_FILE JOBS RUNS
#include <cstdio>
#include <cstdlib>
#include <string>

#include "store/store.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: opk_seed_store STORE_FILE JOBS RUNS\n");
    return 2;
  }
  const int jobs = std::atoi(argv[2]), runs = std::atoi(argv[3]);
  std::unique_ptr<opk::store::Store> st;
  opk::Status s = opk::store::open_sqlite(argv[1], false, &st);
  if (!s) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  const int64_t day = 86400000, t0 = 1795000000000;
  for (int j = 0; j < jobs; ++j) {
    opk::store::ScheduledJob job;
    job.id = "job-" + std::to_string(j);
    job.job_type = "hello";
    job.planning = "disabled";
    job.description = "benchmark job " + std::to_string(j);
    job.scope = "platform";
    if (!(s = st->create_scheduled_job(job))) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return 1;
    }
  }
  for (int done = 0; done < runs;) {
    std::vector<opk::store::RunRow> rows;
    for (int i = 0; i < 1000 && done + i < runs; ++i) {
      opk::store::RunRow r;
      r.job_type = "hello";
      r.scheduled_job_id = "job-" + std::to_string((done + i) % jobs);
      r.slot_ms = t0 + (done + i) * 60000LL;
      r.trigger = "schedule";
      r.created_ms = r.scheduled_ms = r.slot_ms;
      rows.push_back(r);
    }
    if (!(s = st->create_runs(&rows))) break;
    std::vector<int64_t> ids;
    std::vector<opk::store::Completion> cs;
    for (auto& r : rows) {
      ids.push_back(r.id);
      opk::store::Completion c;
      c.run_id = r.id;
      c.outcome = (r.id % 17 == 0) ? opk::store::kError : opk::store::kNormal;
      c.finished_ms = r.created_ms + 1500;
      c.logs.push_back({r.id, 1, r.created_ms, 2, "", "done"});
      cs.push_back(std::move(c));
    }
    if (!(s = st->mark_running(ids, t0, "bench", nullptr)) || !(s = st->complete_runs(cs))) break;
    done += static_cast<int>(rows.size());
  }
  if (!s) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  std::printf("seeded %d scheduled jobs and %d runs into %s (%lld days of history)\n", jobs, runs, argv[1],
              static_cast<long long>(runs * 60000LL / day));
  return 0;
}
