// Store benchmark: the job engine's hot-path writes alone, without the
// engine, so a change to the store can be measured by itself. Prints, for
// 20,000 runs on a fresh store (WAL, synchronous=FULL and NORMAL), the time
// of each phase: create (batches of 1,000 with one audit row per request),
// RUNNING (batches of 256) and COMPLETED with one log line (batches of 256).
// Usage: opk_store_bench [--runs N]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "store/store.h"

namespace {

int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

void round(bool full, int n) {
  char tmpl[] = "/tmp/opk-store-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::unique_ptr<opk::store::Store> st;
  if (opk::Status s = opk::store::open_sqlite(dir + "/opk.db", full, &st); !s) {
    std::fprintf(stderr, "open: %s\n", s.message().c_str());
    std::exit(1);
  }
  std::vector<int64_t> ids;
  int64_t t0 = now_us();
  for (int i = 0; i < n; i += 1000) {
    std::vector<opk::store::RunRow> rows(1000);
    std::vector<opk::store::AuditRow> audit(1000);
    for (auto& r : rows) {
      r.job_type = "noop";
      r.reason = "bench";
      r.user_id = "bench";
      r.role = "PlatformAdministrator";
      r.scope = "platform";
    }
    for (auto& a : audit) a = {0, 0, "bench", "PlatformAdministrator", "run-now", "noop", "bench", "", "", "bench"};
    st->create_runs(&rows, &audit);
    for (auto& r : rows) ids.push_back(r.id);
  }
  const int64_t t1 = now_us();
  std::vector<int64_t> skipped;
  for (size_t i = 0; i < ids.size(); i += 256) {
    std::vector<int64_t> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 256));
    st->mark_running(part, 1, "node", &skipped);
  }
  const int64_t t2 = now_us();
  for (size_t i = 0; i < ids.size(); i += 256) {
    std::vector<opk::store::Completion> cs;
    for (size_t k = i; k < std::min(ids.size(), i + 256); ++k) {
      opk::store::Completion c;
      c.run_id = ids[k];
      c.finished_ms = 2;
      c.logs = {{ids[k], 1, 2, 2, "", "entered at 1234567890123456"}};
      cs.push_back(std::move(c));
    }
    st->complete_runs(cs);
  }
  const int64_t t3 = now_us();
  const auto wal = std::filesystem::file_size(dir + "/opk.db-wal");
  std::printf(
      "  %-6s create %6.1f us/run  running %5.1f us/run  complete %5.1f us/run  total %6.0f runs/s  WAL %.0f B/run\n",
      full ? "FULL" : "NORMAL", double(t1 - t0) / n, double(t2 - t1) / n, double(t3 - t2) / n, n / ((t3 - t0) / 1e6),
      double(wal) / n);
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  int n = 20000;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--runs") n = std::stoi(argv[i + 1]);
  std::printf("opskernel store benchmark: %d runs, hot-path writes only\n", n);
  for (int r = 0; r < 3; ++r) {
    round(true, n);
    round(false, n);
  }
}
