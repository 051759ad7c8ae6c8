// bench_util.h -- what the benchmarks share: fatal errors, the clock, peak
// RSS, a child round of the same program and its output, min / median / max
// lines, percentiles, a free port, and seeding the kernel's hierarchy nodes
// by SQL. Header-only. Not thread-safe.
#ifndef OPSKERNEL_BENCH_SUPPORT_BENCH_UTIL_H
#define OPSKERNEL_BENCH_SUPPORT_BENCH_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <opskernel/status.hpp>

extern char** environ;

namespace opk::bench {

// The name that starts each message of die(); main sets it first.
inline const char* program_name = "opk_bench";

// Prints "<program_name>: <why>" on standard error and exits with 1.
[[noreturn]] inline void die(const std::string& why) {
  std::cerr << program_name << ": " << why << "\n";
  std::exit(1);
}

// Dies with "<what>: <the status's message>" unless `s` is OK.
inline void check(const opk::Status& s, const std::string& what) {
  if (!s) die(what + ": " + s.message());
}

// Microseconds on the steady clock, for intervals.
inline int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// Peak resident set of this process so far (getrusage ru_maxrss), MiB.
inline double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// Runs the program `self` with the arguments `args` in a process of its
// own and returns what it printed on standard output (standard error goes
// through). Dies with "<what> failed" if it does not exit with 0.
inline std::string run_child(const std::string& self, const std::vector<std::string>& args, const std::string& what) {
  int out[2];
  if (pipe(out) != 0) die("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::vector<std::string> all{self};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, self.c_str(), &fa, nullptr, argv.data(), environ) != 0) die("spawn " + self);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t got; (got = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(got));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die(what + " failed");
  return text;
}

// Prints the line "  <what> min <m>  median <m>  max <m> <unit>" of the
// figures `v` (one a round, at least one), `what` padded to `width`.
inline void print(const char* what, std::vector<double> v, const char* unit, int width = 30) {
  std::sort(v.begin(), v.end());
  std::printf("  %-*s min %8.1f  median %8.1f  max %8.1f %s\n", width, what, v.front(), v[v.size() / 2], v.back(),
              unit);
}

// "min <m>  median <m>  max <m> <unit>" of the figures `v` with
// `precision` decimals; "(not run)" when there are none.
inline std::string stats(std::vector<double> v, const char* unit, int precision = 0) {
  if (v.empty()) return "(not run)";
  std::sort(v.begin(), v.end());
  char buf[160];
  std::snprintf(buf, sizeof buf, "min %.*f  median %.*f  max %.*f %s", precision, v.front(), precision, v[v.size() / 2],
                precision, v.back(), unit);
  return buf;
}

// The `p` quantile (0..1) of the figures `v` (at least one), by the
// nearest rank.
inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

// A free TCP port on 127.0.0.1 (free when asked: another process may take
// it before it is bound).
inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Runs `sql` on `db`; dies with the statement and SQLite's message if it
// fails.
inline void exec(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) die(sql + ": " + sqlite3_errmsg(db));
}

// Inserts hierarchy nodes straight into the kernel's nodes table of an open
// store, to seed it (in the caller's transaction). Destroy it before
// closing `db`.
class NodeWriter {
 public:
  // Dies if the insert cannot be prepared (no nodes table).
  explicit NodeWriter(sqlite3* db) : db_(db) {
    sqlite3_prepare_v2(db_, "INSERT INTO nodes (id, kind, name, parent, created_ms) VALUES (?1, ?2, '', ?3, 0)", -1,
                       &insert_, nullptr);
    if (!insert_) die(std::string("prepare the seed: ") + sqlite3_errmsg(db_));
  }
  ~NodeWriter() { sqlite3_finalize(insert_); }
  NodeWriter(const NodeWriter&) = delete;
  NodeWriter& operator=(const NodeWriter&) = delete;

  // Adds the node `id` of `kind` under `parent`; dies naming it if that
  // fails.
  void add(const std::string& id, const char* kind, const std::string& parent) {
    sqlite3_bind_text(insert_, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert_, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(insert_, 3, parent.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(insert_) != SQLITE_DONE) die("node " + id + ": " + sqlite3_errmsg(db_));
    sqlite3_reset(insert_);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* insert_ = nullptr;
};

}  // namespace opk::bench

#endif  // OPSKERNEL_BENCH_SUPPORT_BENCH_UTIL_H
