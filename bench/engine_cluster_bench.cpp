// Job engine benchmark on PostgreSQL with 1, 2 and 3 kernels, each kernel a
// process of its own (forked, with its own node name and data folder), on a
// throwaway server it starts (tests/support/pg-server/pg_server.sh: fsync on,
// synchronous_commit on, the server's defaults otherwise) or on the one
// --pg names; and, through the same harness, one kernel on SQLite (WAL,
// synchronous=FULL) for comparison. Prints min / median / max of 3 rounds,
// each on a fresh database:
//   throughput  20,000 no-op runs end to end (each kernel creates its share
//               through the batch call, 1,000 per call, at the same instant;
//               created -> RUNNING -> COMPLETED with one log line and the end
//               event, durable): from the start signal to the last
//               completion stored; the kernels' CPU per run and the
//               PostgreSQL server's (its postmaster and the processes it
//               started, when the server runs on this machine);
//               the largest kernel's RSS afterwards;
//   lag         100 one-shot runs due 100 ms apart on an idle cluster, run i
//               created by kernel i mod K: due time -> plugin entry, p50 /
//               p99 / max, and the share run by a kernel other than the one
//               that created it; and (lag-across, 2 and 3 kernels) the
//               same runs all created by the first kernel, drained, so the
//               others claim every one from the store;
//   recovery    (2 and 3 kernels) 2 sleeping runs in flight on each kernel;
//               one kernel is killed (SIGKILL): the time until its runs are
//               closed as taken over by a survivor, and until their re-queued
//               copies (the sleep type has the requeue capability) run on a
//               survivor; with the lease the kernels are configured with.
// Usage: opk_engine_cluster_bench [--quick] [--pg CONNINFO] [--lease-ms N]
//          [--only throughput|lag|lag-across|recovery] [--kernels 1,2,3] [--no-sqlite]
//          [--pool N] [--runs N] [--claim-poll-ms N] [--no-prepared]
// --claim-poll-ms N: how often an idle kernel looks for due runs in the
// store ([jobs] claim_poll_ms, default 1,000).
// --runs N: the throughput rounds' runs (20,000; 2,000 with --quick).
// --no-prepared: the kernels send every statement unprepared ([store]
// prepared_statements = false, as behind PgBouncer < 1.21).
// --pg CONNINFO: a server to use instead of starting one (the benchmark
// creates and drops databases opk_bench_*; the connection must be allowed to).
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "app/kernel.h"
#include "log/logging.h"
#include "store/pg_internal.h"
#include "support/bench_util.h"

namespace {

using opk::Kernel;
using opk::bench::free_port;
using opk::bench::percentile;
using opk::bench::stats;
using opk::jobs::RunNow;

int64_t cb_now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

// RSS of a process, MiB.
double cb_rss_mib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// CPU time (user + system) of a process, seconds; 0 if it is gone.
double cb_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(all.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The parent process id of a process; 0 if it is gone.
pid_t cb_parent(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(all.substr(close + 2));
  std::string state;
  pid_t parent = 0;
  rest >> state >> parent;
  return parent;
}

// CPU time of a PostgreSQL server: its postmaster and every process it
// started (the backends of the kernels' connections live through a round).
double cb_server_cpu_seconds(pid_t postmaster) {
  if (postmaster <= 0) return 0;
  double total = cb_cpu_seconds(postmaster);
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    const pid_t pid = std::stoi(name);
    if (cb_parent(pid) == postmaster) total += cb_cpu_seconds(pid);
  }
  return total;
}

std::string cb_shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Reads a store while the kernels run: PostgreSQL through libpq, SQLite
// read-only. Every value as text.
class Probe {
 public:
  Probe(const std::string& backend, const std::string& where) {
    if (backend == "postgresql") {
      pg_ = PQconnectdb(where.c_str());
      if (PQstatus(pg_) != CONNECTION_OK) fail("cannot connect to " + where + ": " + PQerrorMessage(pg_));
    } else if (sqlite3_open_v2(where.c_str(), &lite_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      fail("cannot open " + where);
    } else {
      sqlite3_busy_timeout(lite_, 5000);
    }
  }
  ~Probe() {
    if (pg_) PQfinish(pg_);
    if (lite_) sqlite3_close(lite_);
  }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    if (pg_) {
      PGresult* r = PQexec(pg_, sql.c_str());
      if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail(sql + ": " + PQresultErrorMessage(r));
      for (int i = 0; i < PQntuples(r); ++i) {
        out.emplace_back();
        for (int j = 0; j < PQnfields(r); ++j) out.back().push_back(PQgetvalue(r, i, j));
      }
      PQclear(r);
      return out;
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(lite_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) fail(sql + ": " + sqlite3_errmsg(lite_));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      out.emplace_back();
      for (int j = 0; j < sqlite3_column_count(st); ++j) {
        const auto* t = sqlite3_column_text(st, j);
        out.back().push_back(t ? reinterpret_cast<const char*>(t) : "");
      }
    }
    if (rc != SQLITE_DONE) fail(sql + ": " + sqlite3_errmsg(lite_));
    sqlite3_finalize(st);
    return out;
  }
  int64_t number(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() || r[0].empty() || r[0][0].empty() ? 0 : std::stoll(r[0][0]);
  }

 private:
  [[noreturn]] static void fail(const std::string& what) { throw std::runtime_error("probe: " + what); }
  PGconn* pg_ = nullptr;
  sqlite3* lite_ = nullptr;
};

// What a kernel process is told through its command pipe.
struct Command {
  char op = 0;      // 'G' go, 'S' stop
  int64_t arg = 0;  // the lag's first due time (ms)
};

enum class Mode { kThroughput, kLag, kLagAcross, kRecovery };

struct Setup {
  std::string backend;   // sqlite | postgresql
  std::string conninfo;  // PostgreSQL: the round's database
  std::string data_dir;  // the round's folder (SQLite: the store's)
  std::string plugins_dir;
  int kernels = 1;
  int pool = 2;
  uint32_t lease_ms = 15000;
  uint32_t claim_poll_ms = 1000;  // the product's default
  int runs = 20000;               // throughput
  int lag_runs = 100;             // lag
  int sleepers = 2;               // recovery, per kernel
  pid_t postmaster = 0;           // the server's, when it runs on this machine
  bool prepared = true;           // [store] prepared_statements
};

RunNow cb_request(const char* type, const std::string& params, int64_t start_at_ms = 0) {
  RunNow r;
  r.job_type = type;
  r.params_json = params;
  r.reason = "bench";
  r.actor = {"bench", "PlatformAdministrator", "platform", "bench"};
  r.start_at_ms = start_at_ms;
  return r;
}

void cb_write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    const ssize_t w = write(fd, c, n);
    if (w <= 0) return;
    c += w;
    n -= static_cast<size_t>(w);
  }
}

bool cb_read_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n) {
    const ssize_t r = read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// A kernel process: starts, says 'R', creates its share of the runs on 'G'
// and says 'E', stops on 'S' (or when the benchmark goes away).
[[noreturn]] void kernel_process(const Setup& s, Mode mode, int index, int ready_fd, int command_fd) {
  opk::config::Config c;
  c.plugins_dir = s.plugins_dir;
  c.data_dir = s.data_dir + "/node" + std::to_string(index);
  std::filesystem::create_directories(c.data_dir);
  c.store_path = s.data_dir + "/opk.db";
  c.log.level = "warn";
  c.log.file.clear();
  c.log.console = false;
  c.pools = {{"default", s.pool}};
  c.node_name = "n" + std::to_string(index);
  if (s.backend == "postgresql") {
    c.store_backend = "postgresql";
    c.pg_conninfo = s.conninfo;
    c.lease_ms = s.lease_ms;
    c.claim_poll_ms = s.claim_poll_ms;
    c.pg_prepared_statements = s.prepared;
  }
  opk::log::setup(c.log);
  Kernel k(c);
  if (opk::Status st = k.start(); !st) {
    std::cerr << "kernel " << c.node_name << " cannot start: " << st.message() << "\n";
    _exit(3);
  }
  cb_write_all(ready_fd, "R", 1);
  Command cmd;
  while (cb_read_all(command_fd, &cmd, sizeof cmd) && cmd.op == 'G') {
    std::vector<int64_t> ids;
    if (mode == Mode::kThroughput) {
      const int mine = s.runs / s.kernels + (index < s.runs % s.kernels ? 1 : 0);
      for (int done = 0; done < mine; done += 1000) {
        std::vector<RunNow> part(std::min(1000, mine - done), cb_request("noop", "{}"));
        if (!k.engine()->run_now_batch(part, &ids)) std::cerr << "kernel " << c.node_name << ": a batch failed\n";
      }
    } else if (mode == Mode::kLagAcross) {
      // The first kernel drains itself, then creates every run: the others
      // claim them from the store.
      if (index == 0) {
        if (!k.engine()->drain(c.node_name, cb_request("noop", "{}").actor, "bench: runs for the others"))
          std::cerr << "kernel " << c.node_name << ": the drain failed\n";
        std::vector<RunNow> part;
        for (int i = 0; i < s.lag_runs; ++i) part.push_back(cb_request("noop", "{}", cmd.arg + i * 100));
        if (!k.engine()->run_now_batch(part, &ids)) std::cerr << "kernel " << c.node_name << ": the lag runs failed\n";
      }
    } else if (mode == Mode::kLag) {
      std::vector<RunNow> part;
      for (int i = index; i < s.lag_runs; i += s.kernels) part.push_back(cb_request("noop", "{}", cmd.arg + i * 100));
      if (!k.engine()->run_now_batch(part, &ids)) std::cerr << "kernel " << c.node_name << ": the lag runs failed\n";
    } else {
      std::vector<RunNow> part(s.sleepers, cb_request("sleep", R"({"ms":600000})"));
      for (auto& r : part)
        if (int64_t id = 0; !k.engine()->run_now(r, &id)) std::cerr << "kernel " << c.node_name << ": a sleep failed\n";
    }
    cb_write_all(ready_fd, "E", 1);
  }
  k.stop();
  _exit(0);
}

// The kernel processes of one round.
class Cluster {
 public:
  Cluster(const Setup& s, Mode mode) {
    std::cout.flush();
    std::cerr.flush();
    for (int i = 0; i < s.kernels; ++i) {
      int ready[2], command[2];
      if (pipe(ready) != 0 || pipe(command) != 0) std::exit(1);
      const pid_t pid = fork();
      if (pid == 0) {
        // The kernel's first-start notice (an API token) is not wanted here.
        if (FILE* null = std::freopen("/dev/null", "w", stdout); !null) _exit(4);
        close(ready[0]);
        close(command[1]);
        for (const auto& n : nodes_) {
          close(n.ready);
          close(n.command);
        }
        kernel_process(s, mode, i, ready[1], command[0]);
      }
      close(ready[1]);
      close(command[0]);
      nodes_.push_back({pid, ready[0], command[1]});
    }
    for (size_t i = 0; i < nodes_.size(); ++i) expect(i, 'R', "start");
  }
  ~Cluster() {
    for (size_t i = 0; i < nodes_.size(); ++i) stop(i);
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Tells every kernel to create its runs, at once or (one_by_one) each
  // after the one before has; returns when all have.
  void go(int64_t arg = 0, bool one_by_one = false) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      Command c{'G', arg};
      cb_write_all(nodes_[i].command, &c, sizeof c);
      if (one_by_one) expect(i, 'E', "create its runs");
    }
    if (!one_by_one)
      for (size_t i = 0; i < nodes_.size(); ++i) expect(i, 'E', "create its runs");
  }
  pid_t pid(size_t i) const { return nodes_[i].pid; }
  size_t size() const { return nodes_.size(); }
  // SIGKILL, at once.
  void kill_now(size_t i) {
    if (nodes_[i].pid <= 0) return;
    ::kill(nodes_[i].pid, SIGKILL);
    waitpid(nodes_[i].pid, nullptr, 0);
    nodes_[i].pid = -1;
  }
  // A clean stop, killed if it takes more than 30 s.
  void stop(size_t i) {
    auto& n = nodes_[i];
    if (n.pid > 0) {
      Command c{'S', 0};
      cb_write_all(n.command, &c, sizeof c);
      bool gone = false;
      for (int t = 0; t < 1500 && !gone; ++t) {
        gone = waitpid(n.pid, nullptr, WNOHANG) == n.pid;
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!gone) kill_now(i);
    }
    if (n.ready >= 0) close(n.ready);
    if (n.command >= 0) close(n.command);
    n = {-1, -1, -1};
  }

 private:
  struct Node {
    pid_t pid;
    int ready, command;
  };
  void expect(size_t i, char what, const char* doing) {
    char c = 0;
    if (!cb_read_all(nodes_[i].ready, &c, 1) || c != what) {
      for (size_t j = 0; j < nodes_.size(); ++j) kill_now(j);
      throw std::runtime_error("kernel n" + std::to_string(i) + " did not " + doing);
    }
  }
  std::vector<Node> nodes_;
};

// The figures of one configuration (backend and kernel count).
struct Figures {
  std::vector<double> throughput, kernel_cpu_us, server_cpu_us, rss;
  struct Lag {
    std::vector<double> p50, p99, max, elsewhere;
  } own, across;                                    // runs created by every kernel; by a drained kernel for the others
  int lag_listed_twice = 0, lag_entered_twice = 0;  // over every round
  std::vector<double> closed_ms, restarted_ms;
};

void cb_wait(const std::function<bool()>& done, int64_t limit_ms, const char* what) {
  const int64_t until = cb_now_us() + limit_ms * 1000;
  while (!done()) {
    if (cb_now_us() > until)
      throw std::runtime_error("gave up waiting for " + std::string(what) + " after " + std::to_string(limit_ms) +
                               " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void throughput_round(const Setup& s, const std::string& probe_at, Figures* f) {
  Cluster cl(s, Mode::kThroughput);
  Probe p(s.backend, probe_at);
  double cpu0 = 0;
  for (size_t i = 0; i < cl.size(); ++i) cpu0 += cb_cpu_seconds(cl.pid(i));
  const double server0 = s.backend == "postgresql" ? cb_server_cpu_seconds(s.postmaster) : 0;
  const int64_t t0 = cb_now_us();
  cl.go();
  int64_t last_ms = 0;
  cb_wait(
      [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        auto r = p.rows("SELECT COUNT(*), MAX(finished_ms) FROM run_state WHERE phase = 'COMPLETED'");
        if (std::stoll(r[0][0]) < s.runs) return false;
        last_ms = std::stoll(r[0][1]);
        return true;
      },
      600000, "the throughput runs");
  double cpu = 0, rss = 0;
  for (size_t i = 0; i < cl.size(); ++i) {
    cpu += cb_cpu_seconds(cl.pid(i));
    rss = std::max(rss, cb_rss_mib(cl.pid(i)));
  }
  const double secs = (last_ms * 1000 - t0) / 1e6;
  f->throughput.push_back(s.runs / secs);
  f->kernel_cpu_us.push_back((cpu - cpu0) * 1e6 / s.runs);
  if (s.backend == "postgresql" && s.postmaster > 0)
    f->server_cpu_us.push_back((cb_server_cpu_seconds(s.postmaster) - server0) * 1e6 / s.runs);
  f->rss.push_back(rss);
}

void lag_round(const Setup& s, const std::string& probe_at, bool across, Figures* f) {
  ::sync();  // the earlier rounds' writes on disk first
  Cluster cl(s, across ? Mode::kLagAcross : Mode::kLag);
  Probe p(s.backend, probe_at);
  // Every kernel idle for a moment after its start (its first claims and
  // heartbeats done).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int64_t first = cb_now_us() / 1000 + 1000;
  cl.go(first);
  cb_wait([&] { return p.number("SELECT COUNT(*) FROM run_state WHERE phase = 'COMPLETED'") >= s.lag_runs; },
          s.lag_runs * 100 + 60000, "the lag runs");
  // Each run's first entry; a second line of the same run is counted (the
  // same line listed twice, or the run entered twice).
  std::map<int64_t, std::pair<int64_t, std::string>> entered;  // id -> due ms, node
  std::map<int64_t, std::string> first_line;
  std::vector<double> lags;
  int elsewhere = 0;
  for (const auto& r :
       p.rows("SELECT r.id, r.scheduled_ms, r.node, l.message FROM run_rows r JOIN run_log_rows l ON l.run_id = r.id "
              "WHERE l.message LIKE 'entry_us=%' ORDER BY r.id, l.seq")) {
    const int64_t id = std::stoll(r[0]);
    if (first_line.count(id)) {
      ++(first_line[id] == r[3] ? f->lag_listed_twice : f->lag_entered_twice);
      continue;
    }
    first_line[id] = r[3];
    const int64_t due_ms = std::stoll(r[1]);
    const int64_t entry = std::stoll(r[3].substr(r[3].find('=') + 1));
    lags.push_back((entry - due_ms * 1000) / 1000.0);
    // Run i was created by kernel i mod K (across: by kernel 0).
    const int64_t i = (due_ms - first) / 100;
    if (r[2] != "n" + std::to_string(across ? 0 : i % s.kernels)) ++elsewhere;
  }
  if (lags.size() != static_cast<size_t>(s.lag_runs))
    throw std::runtime_error("lag: " + std::to_string(lags.size()) + " runs entered of " + std::to_string(s.lag_runs));
  auto& g = across ? f->across : f->own;
  g.p50.push_back(percentile(lags, 0.5));
  g.p99.push_back(percentile(lags, 0.99));
  g.max.push_back(*std::max_element(lags.begin(), lags.end()));
  g.elsewhere.push_back(100.0 * elsewhere / s.lag_runs);
}

void recovery_round(const Setup& s, const std::string& probe_at, Figures* f) {
  Cluster cl(s, Mode::kRecovery);
  Probe p(s.backend, probe_at);
  // One kernel after the other: a run created while another kernel's
  // creation is not yet committed can be left out of open_runs (bench/README.md,
  // "Several kernels on PostgreSQL"), and then is never taken over.
  cl.go(0, true);
  const int total = s.sleepers * s.kernels;
  cb_wait([&] { return p.number("SELECT COUNT(*) FROM run_state WHERE phase = 'RUNNING'") >= total; }, 60000,
          "the sleeping runs to start");
  // The kernel running the most of them dies.
  std::map<std::string, int64_t> per_node;
  for (const auto& r : p.rows("SELECT node, COUNT(*) FROM run_state WHERE phase = 'RUNNING' GROUP BY node"))
    per_node[r[0]] = std::stoll(r[1]);
  auto victim = std::max_element(per_node.begin(), per_node.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
  const std::string node = victim->first;
  const int64_t held = victim->second;
  const int64_t t0 = cb_now_us();
  cl.kill_now(static_cast<size_t>(std::stoi(node.substr(1))));
  const std::string open_there = "SELECT COUNT(*) FROM run_state WHERE phase = 'RUNNING' AND node = '" + node + "'";
  cb_wait([&] { return p.number(open_there) == 0; }, s.lease_ms * 4 + 60000, "the dead kernel's runs to be closed");
  f->closed_ms.push_back((cb_now_us() - t0) / 1000.0);
  const std::string again =
      "SELECT COUNT(*) FROM run_rows WHERE trigger = 'recovery' AND phase = 'RUNNING' AND node <> '" + node + "'";
  cb_wait([&] { return p.number(again) >= held; }, s.lease_ms * 4 + 60000, "the re-queued runs to start");
  f->restarted_ms.push_back((cb_now_us() - t0) / 1000.0);
  // The sleeping runs are not waited for.
  for (size_t i = 0; i < cl.size(); ++i) cl.kill_now(i);
}

// A PostgreSQL server for the benchmark: started (and stopped at the end) or
// given.
class Server {
 public:
  explicit Server(std::string given) : conninfo_(std::move(given)) {
    if (!conninfo_.empty()) return;
    dir_ = "/tmp/opk-bench-pg-" + std::to_string(getpid());
    const int port = free_port();
    const std::string cmd = "bash " +
                            cb_shell_quoted(std::string(OPK_SOURCE_DIR) + "/tests/support/pg-server/pg_server.sh") +
                            " start " + dir_ + " " + std::to_string(port) + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      std::cerr << "cannot start PostgreSQL (" << cmd << ")\n";
      std::exit(1);
    }
    conninfo_ = "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=postgres";
  }
  ~Server() {
    if (!dir_.empty())
      std::system(("bash " + cb_shell_quoted(std::string(OPK_SOURCE_DIR) + "/tests/support/pg-server/pg_server.sh") +
                   " stop " + dir_)
                      .c_str());
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  const std::string& conninfo() const { return conninfo_; }
  // A fresh database's connection string.
  std::string fresh_database() {
    const std::string name = "opk_bench_" + std::to_string(getpid()) + "_" + std::to_string(count_++);
    Probe(kPg, conninfo_).rows("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    Probe(kPg, conninfo_).rows("CREATE DATABASE " + name);
    made_.push_back(name);
    return conninfo_ + " dbname=" + name;
  }
  void drop_databases() {
    for (const auto& n : made_) {
      Probe(kPg, conninfo_).rows("DROP DATABASE IF EXISTS " + n + " WITH (FORCE)");
      // The plugin roles the store made for the database.
      Probe(kPg, conninfo_)
          .rows("DO $$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE starts_with(rolname, '" +
                opk::store::internal::pg_plugin_role_prefix(n) +
                "') LOOP EXECUTE format('DROP ROLE %I', r.rolname); END LOOP; END $$");
    }
    made_.clear();
  }

 private:
  static constexpr const char* kPg = "postgresql";
  std::string conninfo_, dir_;
  std::vector<std::string> made_;
  int count_ = 0;
};

struct TempFolder {
  std::string path;
  TempFolder() {
    char tmpl[] = "/tmp/opk-cluster-bench-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempFolder() { std::filesystem::remove_all(path); }
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, with_sqlite = true;
  int runs_given = 0;
  std::string only, pg, kernel_list = "1,2,3";
  Setup base;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << ": a value is required\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick")
      quick = true;
    else if (a == "--only")
      only = next();
    else if (a == "--pg")
      pg = next();
    else if (a == "--claim-poll-ms")
      base.claim_poll_ms = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--lease-ms")
      base.lease_ms = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--kernels")
      kernel_list = next();
    else if (a == "--pool")
      base.pool = std::stoi(next());
    else if (a == "--runs")
      runs_given = std::stoi(next());
    else if (a == "--no-prepared")
      base.prepared = false;
    else if (a == "--no-sqlite")
      with_sqlite = false;
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  auto part = [&](const char* name) { return only.empty() || only == name; };
  const int rounds = quick ? 1 : 3;
  if (quick) {
    base.runs = 2000;
    base.lag_runs = 30;
  }
  if (runs_given > 0) base.runs = runs_given;
  std::vector<int> counts;
  for (std::stringstream in(kernel_list); in.good();) {
    std::string c;
    std::getline(in, c, ',');
    if (!c.empty()) counts.push_back(std::stoi(c));
  }
  TempFolder plugins;
  std::filesystem::copy_file(std::string(OPK_BENCH_PLUGIN_DIR) + "/bench_noop.so", plugins.path + "/bench_noop.so");
  base.plugins_dir = plugins.path;

  Server server(pg);
  std::string settings;
  {
    Probe p("postgresql", server.conninfo());
    for (const char* k : {"server_version", "synchronous_commit", "fsync", "shared_buffers", "wal_level"})
      settings += std::string(settings.empty() ? "" : ", ") + k + "=" + p.rows(std::string("SHOW ") + k)[0][0];
  }
  // The server's postmaster, if its data folder is readable here (its CPU
  // is then measured).
  {
    Probe p("postgresql", server.conninfo());
    std::ifstream pidfile(p.rows("SHOW data_directory")[0][0] + "/postmaster.pid");
    pidfile >> base.postmaster;
  }
  struct Config {
    std::string label, backend;
    int kernels;
    Figures f;
  };
  std::vector<Config> configs;
  if (with_sqlite) configs.push_back({"SQLite, 1 kernel", "sqlite", 1, {}});
  for (int k : counts)
    configs.push_back({"PostgreSQL, " + std::to_string(k) + " kernel" + (k > 1 ? "s" : ""), "postgresql", k, {}});

  // Rounds interleaved across configurations, so a machine whose speed drifts
  // affects each alike.
  try {
    for (int round = 0; round < rounds; ++round)
      for (auto& c : configs)
        for (const char* what : {"throughput", "lag", "lag-across", "recovery"}) {
          if (!part(what)) continue;
          const bool recovery = std::string(what) == "recovery";
          const bool several = recovery || std::string(what) == "lag-across";
          if (several && (c.backend != "postgresql" || c.kernels < 2)) continue;
          Setup s = base;
          s.backend = c.backend;
          s.kernels = c.kernels;
          if (recovery) s.pool = std::max(base.pool, 2 * s.sleepers);
          TempFolder data;
          s.data_dir = data.path;
          std::string probe_at = data.path + "/opk.db";
          if (c.backend == "postgresql") probe_at = s.conninfo = server.fresh_database();
          std::cerr << "round " << round + 1 << ": " << c.label << ", " << what << "\n";
          if (std::string(what) == "throughput")
            throughput_round(s, probe_at, &c.f);
          else if (std::string(what) == "lag")
            lag_round(s, probe_at, false, &c.f);
          else if (std::string(what) == "lag-across")
            lag_round(s, probe_at, true, &c.f);
          else
            recovery_round(s, probe_at, &c.f);
          server.drop_databases();
        }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }

  std::cout << "opskernel job engine benchmark, several kernels (" << rounds << " round(s), "
            << std::thread::hardware_concurrency() << " cores; kernels as processes, " << base.pool
            << " workers each, claim_poll_ms " << base.claim_poll_ms << (base.prepared ? "" : ", statements unprepared")
            << "; SQLite WAL synchronous=FULL; PostgreSQL " << settings << ")\n";
  for (const auto& c : configs) {
    const Figures& f = c.f;
    std::cout << "  " << c.label << "\n";
    std::cout << "    throughput, " << base.runs << " no-op runs end to end: " << stats(f.throughput, "runs/s") << "\n";
    std::cout << "      kernels' CPU per run:               " << stats(f.kernel_cpu_us, "us", 1) << "\n";
    if (c.backend == "postgresql")
      std::cout << "      PostgreSQL's CPU per run:           " << stats(f.server_cpu_us, "us", 1) << "\n";
    std::cout << "      largest kernel's RSS afterwards:    " << stats(f.rss, "MiB", 1) << "\n";
    auto lag = [&](const Figures::Lag& g, const std::string& what) {
      if (g.p50.empty()) return;
      std::cout << "    dispatch lag, " << what << " (" << base.lag_runs << " runs 100 ms apart)\n";
      std::cout << "      p50: " << stats(g.p50, "ms", 2) << "\n";
      std::cout << "      p99: " << stats(g.p99, "ms", 2) << "\n";
      std::cout << "      max: " << stats(g.max, "ms", 2) << "\n";
      if (c.kernels > 1)
        std::cout << "      run by another kernel than their creator: " << stats(g.elsewhere, "%") << "\n";
    };
    lag(f.own, "each kernel its share");
    lag(f.across, "all created by a drained kernel, run by the others");
    if (f.lag_listed_twice || f.lag_entered_twice)
      std::cout << "    runs whose entry line is listed twice: " << f.lag_listed_twice
                << ", runs entered twice: " << f.lag_entered_twice << "\n";
    if (c.backend == "postgresql" && c.kernels > 1) {
      std::cout << "    recovery after a SIGKILL (lease " << base.lease_ms
                << " ms), runs closed: " << stats(f.closed_ms, "ms") << "\n";
      std::cout << "      re-queued copies running on a survivor: " << stats(f.restarted_ms, "ms") << "\n";
    }
  }
  return 0;
}
