// DelinquentPaymentNotifications benchmark: the job type
// delinquent-payment-notifications (plugin job-delinquent-payments) over
// 100,000 invoices stored in platform-records, half of them open and past
// their due date, across 1,000 tenants (hierarchy nodes under one partner, a
// third with a billing contact), reminders on, in a kernel of its own process per
// round (WAL store, synchronous=FULL, as the kernel runs it), each round on
// a fresh copy of the seeded store. Prints min / median / max of 3 rounds
// of the run's wall time (run now -> stored completion) with its mark step
// (50,000 invoices marked, a batch of 1,000 per transaction) and its remind
// step (50,000 events emitted with their keys, and the plugin's record of
// them), then the rerun's (nothing to mark, every invoice reminded), and
// the kernel process's peak RSS (getrusage ru_maxrss) after both.
//   opk_delinquent_payments_bench [--invoices N] [--tenants N] [--emit-concurrency N]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "app/kernel.h"
#include "log/logging.h"
#include "store/store.h"
#include "support/bench_util.h"

namespace {

namespace fs = std::filesystem;
using opk::bench::check;
using opk::bench::die;
using opk::bench::now_us;
using opk::bench::peak_rss_mib;
using opk::bench::print;
using opk::bench::run_child;

// The plugin's emit_concurrency (--emit-concurrency).
std::string g_concurrency = "16";

opk::config::Config config(const std::string& dir) {
  opk::config::Config c;
  c.plugins_dir = dir + "/plugins";
  c.data_dir = dir;
  c.store_path = dir + "/opskernel.db";
  c.create_first_admin = false;
  c.plugins["job-delinquent-payments"] = {{"send_reminders", "true"}, {"emit_concurrency", g_concurrency}};
  c.log.level = "error";
  c.log.file.clear();
  return c;
}

// "YYYY-MM-DD" of the day `days` from today (UTC).
std::string day_from_today(int days) {
  using namespace std::chrono;
  const year_month_day d{floor<std::chrono::days>(system_clock::now()) + std::chrono::days(days)};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return buf;
}

// The seeded folder: the two plugins, `tenants` tenants, `n` invoices
// (even ones past due by 1..60 days, odd ones due in 1..60 days).
void seed(const std::string& dir, int n, int tenants) {
  fs::create_directories(dir + "/plugins");
  for (const char* p : {"platform-records.so", "job-delinquent-payments.so"})
    fs::copy_file(std::string(OPK_BENCH_BUNDLED_PLUGIN_DIR) + "/" + p, dir + "/plugins/" + p,
                  fs::copy_options::overwrite_existing);
  {
    // A first start creates the tables; the tenants are the kernel's nodes.
    opk::config::Config c = config(dir);
    opk::log::setup(c.log);
    opk::Kernel k(c);
    check(k.start(), "kernel start");
    check(k.identity()->add_node("distributor:d", "platform", "D"), "distributor");
    check(k.identity()->add_node("partner:p", "distributor:d", "P"), "partner");
    for (int t = 0; t < tenants; ++t)
      check(k.identity()->add_node("tenant:t" + std::to_string(t), "partner:p", "T" + std::to_string(t)),
            "tenant " + std::to_string(t));
  }
  sqlite3* db = nullptr;
  if (sqlite3_open((dir + "/opskernel.db").c_str(), &db) != SQLITE_OK) die("open the store to seed it");
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO p_platform_records_invoices (id, tenant, subscription, amount, currency, due_date, "
                     "status) VALUES (?1, ?2, NULL, ?3, 'EUR', ?4, 'open')",
                     -1, &st, nullptr);
  if (!st) die(std::string("prepare the seed: ") + sqlite3_errmsg(db));
  std::vector<std::string> past(60), future(60);
  for (int d = 0; d < 60; ++d) {
    past[d] = day_from_today(-1 - d);
    future[d] = day_from_today(1 + d);
  }
  for (int i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "inv-%07d", i);
    const std::string tenant = "tenant:t" + std::to_string(i % tenants);
    const std::string& due = i % 2 == 0 ? past[(i / 2) % 60] : future[(i / 2) % 60];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, tenant.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 3, 100.0 + i % 900);
    sqlite3_bind_text(st, 4, due.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) die(std::string("invoice ") + id + ": " + sqlite3_errmsg(db));
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "INSERT INTO p_platform_records_billing (tenant, contact, email) VALUES (?1, ?2, ?3)", -1, &st,
                     nullptr);
  for (int t = 0; t < tenants; t += 3) {
    const std::string tenant = "tenant:t" + std::to_string(t), mail = "billing@t" + std::to_string(t) + ".example";
    sqlite3_bind_text(st, 1, tenant.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, "Billing", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, mail.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) die("billing " + tenant + ": " + sqlite3_errmsg(db));
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

// Runs the job once in `k`; its wall time, outcome, summary and step times.
struct Timed {
  double ms = 0;
  std::string outcome, summary;
  int64_t mark_ms = 0, remind_ms = 0;
};
Timed run_once(opk::Kernel& k) {
  opk::jobs::RunNow r;
  r.job_type = "delinquent-payment-notifications";
  r.params_json = "{}";
  r.reason = "benchmark";
  r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
  int64_t id = 0;
  const int64_t t0 = now_us();
  check(k.engine()->run_now(r, &id), "run delinquent-payment-notifications");
  while (!k.engine()->wait(id, 100)) {
  }
  Timed t;
  t.ms = (now_us() - t0) / 1000.0;
  opk::jobs::RunView v;
  if (!k.engine()->get(id, &v)) die("run " + std::to_string(id));
  t.outcome = v.row.outcome;
  t.summary = v.row.summary;
  for (const auto& s : v.steps) {
    if (s.step_id == "mark") t.mark_ms += s.end_ms - s.start_ms;
    if (s.step_id == "remind") t.remind_ms += s.end_ms - s.start_ms;
  }
  return t;
}

// In a process of its own: starts the kernel on `dir`, runs the job twice,
// prints "run <ms> <outcome> <mark ms> <remind ms> <rerun ms> <peak MiB>".
int round_child(const std::string& dir) {
  opk::config::Config c = config(dir);
  opk::log::setup(c.log);
  opk::Kernel k(c);
  check(k.start(), "kernel start");
  const Timed first = run_once(k);
  const Timed again = run_once(k);
  std::printf("run %.1f %s %lld %lld %.1f %.1f\n", first.ms, first.outcome.c_str(),
              static_cast<long long>(first.mark_ms), static_cast<long long>(first.remind_ms), again.ms, peak_rss_mib());
  std::fprintf(stderr, "  %s | rerun: %s\n", first.summary.c_str(), again.summary.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_delinquent_payments_bench";
  if (argc == 4 && std::string(argv[1]) == "round-child") {
    g_concurrency = argv[3];
    return round_child(argv[2]);
  }
  int invoices = 100000, tenants = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--invoices")
      invoices = std::stoi(argv[i + 1]);
    else if (a == "--tenants")
      tenants = std::stoi(argv[i + 1]);
    else if (a == "--emit-concurrency")
      g_concurrency = argv[i + 1];
    else
      die("unknown option " + a + " (--invoices N, --tenants N, --emit-concurrency N)");
  }
  char tmpl[] = "/tmp/opk-delinquent-bench-XXXXXX";
  const std::string scratch = mkdtemp(tmpl);
  const std::string self = fs::canonical("/proc/self/exe").string();
  const std::string seeded = scratch + "/seeded";
  seed(seeded, invoices, tenants);
  std::printf(
      "delinquent-payment-notifications over %d invoices (%d past due) of %d tenants, reminders on, emit_concurrency "
      "%s, 3 rounds\n",
      invoices, (invoices + 1) / 2, tenants, g_concurrency.c_str());
  std::vector<double> ms, mark_ms, remind_ms, rerun_ms, rss;
  for (int round = 0; round < 3; ++round) {
    const std::string dir = scratch + "/round";
    fs::remove_all(dir);
    fs::copy(seeded, dir, fs::copy_options::recursive);
    std::istringstream in(run_child(self, {"round-child", dir, g_concurrency}, "the round's kernel process"));
    std::string word, outcome;
    double t = 0, mark = 0, remind = 0, rerun = 0, peak = 0;
    in >> word >> t >> outcome >> mark >> remind >> rerun >> peak;
    if (word != "run") die("unexpected output from a round");
    if (outcome != "NORMAL") std::fprintf(stderr, "  round %d ended %s\n", round + 1, outcome.c_str());
    ms.push_back(t);
    mark_ms.push_back(mark);
    remind_ms.push_back(remind);
    rerun_ms.push_back(rerun);
    rss.push_back(peak);
  }
  print("run (run now -> completed)", ms, "ms");
  print("  of which marking", mark_ms, "ms");
  print("  of which reminding", remind_ms, "ms");
  print("rerun (nothing left to do)", rerun_ms, "ms");
  print("kernel peak RSS", rss, "MiB");
  fs::remove_all(scratch);
  return 0;
}
