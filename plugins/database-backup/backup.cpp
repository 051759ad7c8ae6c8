// database-backup -- the DatabaseBackup job type: an online, consistent copy
// of the kernel's store, kept per tier (hourly x24, daily x7 ...) with older
// copies of the tier deleted. On SQLite: SQLite's backup API (runs keep
// being written meanwhile), verified with PRAGMA integrity_check, a ".db"
// file. On PostgreSQL: pg_dump --format=custom (one consistent snapshot),
// verified by reading its table of contents with pg_restore --list, a
// ".dump" file; pg_dump missing, or of an older major version than the
// server, is refused naming what to install. The password reaches pg_dump
// in its environment (PGPASSWORD), never on its command line or in a log.
// The plugin learns the store from the kernel's public settings
// (kernel.store_backend, kernel.store_path or kernel.store_conninfo and
// where the password is read from). Each run writes its own partial file,
// locked while it writes; partial files nobody holds are removed when the
// plugin starts.
//
// Settings ([plugin.database-backup]):
//   dir            where copies go; relative to kernel.data_dir (default "backups")
//   tiers          NAME:KEEP,... (default hourly:24,daily:7,weekly:4,monthly:12)
//   pages_per_step SQLite: pages copied between cancellation checks (default 256)
//   step_pause_ms  SQLite: pause between steps, to bound the I/O a backup takes (default 0)
//   pg_dump        PostgreSQL: the pg_dump program, a path or a name on PATH (default "pg_dump")
//   pg_restore     PostgreSQL: the pg_restore program that verifies a dump (default "pg_restore")
// Parameters: {"tier": "daily"}.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <opskernel/opk.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;

namespace {

struct Settings {
  fs::path dir;
  std::map<std::string, int> tiers;  // tier -> copies kept
  int pages_per_step = 256;
  int step_pause_ms = 0;
  std::string store;
  // PostgreSQL (backend "postgresql"): the kernel's connection string
  // without the password, where the password is read, and the tools.
  std::string backend = "sqlite";
  std::string conninfo, password_file, password_env;
  std::string pg_dump = "pg_dump", pg_restore = "pg_restore";
  bool postgresql() const { return backend == "postgresql"; }
  // The copies' file extension.
  std::string extension() const { return postgresql() ? ".dump" : ".db"; }
};

opk::Status load_settings(const opk::Host& h, Settings* s) {
  const std::string data = h.config_or("kernel.data_dir", ".");
  s->store = h.config_or("kernel.store_path", data + "/opskernel.db");
  s->backend = h.config_or("kernel.store_backend", "sqlite");
  s->conninfo = h.config_or("kernel.store_conninfo", "");
  s->password_file = h.config_or("kernel.store_password_file", "");
  s->password_env = h.config_or("kernel.store_password_env", "");
  s->pg_dump = h.config_or("pg_dump", "pg_dump");
  s->pg_restore = h.config_or("pg_restore", "pg_restore");
  fs::path dir = h.config_or("dir", "backups");
  s->dir = dir.is_absolute() ? dir : fs::path(data) / dir;
  opk::Settings in = h.settings();
  for (const std::string& item : in.list("tiers", {"hourly:24", "daily:7", "weekly:4", "monthly:12"})) {
    const auto colon = item.find(':');
    const std::string name = item.substr(0, colon);
    int keep = -1;
    if (colon != std::string::npos) {
      const std::string n = item.substr(colon + 1);
      auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), keep);
      if (ec != std::errc() || end != n.data() + n.size()) keep = -1;
    }
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos ||
        keep < 1 || keep > 10000)
      in.invalid("tiers", item, "NAME:KEEP items separated by commas (NAME a-z0-9-, KEEP 1..10000)");
    else
      s->tiers[name] = keep;
  }
  if (in.ok() && s->tiers.empty()) in.invalid("tiers", "", "at least one NAME:KEEP tier");
  s->pages_per_step = static_cast<int>(in.integer("pages_per_step", s->pages_per_step, 1, 1000000));
  s->step_pause_ms = static_cast<int>(in.integer("step_pause_ms", s->step_pause_ms, 0, 60000));
  for (const auto& [key, value] :
       {std::pair<const char*, const std::string&>{"pg_dump", s->pg_dump}, {"pg_restore", s->pg_restore}})
    if (value.empty()) in.invalid(key, value, "a program: a path, or a name found on PATH");
  return in.status();
}

// "20261125T031500.123Z": sorts by time; milliseconds keep quick runs apart.
std::string utc_stamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ",
                static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000));
  return std::string(buf) + ms;
}

// Copies of one tier, oldest first (names sort by their UTC stamp): SQLite
// files (.db) and PostgreSQL dumps (.dump) alike, so a tier keeps its
// number of copies across a move of the store.
std::vector<fs::path> copies(const fs::path& dir, const std::string& tier) {
  std::vector<fs::path> out;
  std::error_code ec;
  const std::string prefix = "opskernel-" + tier + "-";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    // The stamp starts with a digit: "hourly" must not take "hourly-eu"'s copies.
    if (name.rfind(prefix, 0) == 0 && name.size() > prefix.size() &&
        std::isdigit(static_cast<unsigned char>(name[prefix.size()])) &&
        (e.path().extension() == ".db" || e.path().extension() == ".dump"))
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What a program run to its end gave.
struct ToolRun {
  int exit_code = -1;    // -1: stopped by a signal
  std::string out, err;  // its standard output and error, the first kToolKeep bytes of each
};
constexpr size_t kToolKeep = 16u << 20;

// Runs `argv` (argv[0] a path, or a name looked up on PATH) with the
// process's environment and `extra_env` ("NAME=value", replacing a
// variable of that name; never on the command line), reading its output
// until it exits. While it runs, `cancelled` (may be empty) is asked every
// 50 ms: once it says so the program gets SIGTERM (SIGKILL 5 s later) and
// CANCELLED is returned. NOT_FOUND if the program does not exist, ERROR if
// it cannot be started.
opk::Status run_tool(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                     const std::function<bool()>& cancelled, ToolRun* out) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv(*e);
    const std::string name = kv.substr(0, kv.find('=') + 1);
    if (std::none_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) { return x.rfind(name, 0) == 0; }))
      env.push_back(kv);
  }
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return opk::Status::error(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return opk::Status::error(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  pid_t pid = 0;
  const int rc = argv[0].find('/') != std::string::npos
                     ? posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, cargv.data(), cenv.data())
                     : posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    if (rc == ENOENT) return opk::Status::not_found(argv[0] + ": not found");
    return opk::Status::error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* into[2] = {&out->out, &out->err};
  bool stopped = false;
  auto kill_at = std::chrono::steady_clock::time_point::max();
  for (int open = 2; open > 0;) {
    if (!stopped && cancelled && cancelled()) {
      ::kill(pid, SIGTERM);
      stopped = true;
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    if (std::chrono::steady_clock::now() >= kill_at) {
      ::kill(pid, SIGKILL);
      kill_at = std::chrono::steady_clock::time_point::max();
    }
    if (::poll(fds, 2, 50) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (into[i]->size() < kToolKeep) into[i]->append(buf, std::min<size_t>(n, kToolKeep - into[i]->size()));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return stopped ? opk::Status::cancelled() : opk::Status::ok();
}

// The last non-empty line of `text` (a program's error output), or "".
std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) return "";
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

// The major version in "pg_dump (PostgreSQL) 15.18 (Debian ...)" (15; 9 for
// 9.6), or 0 if there is none.
int tool_major_version(const std::string& version_line) {
  const auto at = version_line.find(") ");
  if (at == std::string::npos) return 0;
  int major = 0;
  const char* begin = version_line.data() + at + 2;
  std::from_chars(begin, version_line.data() + version_line.size(), major);
  return major;
}

// The password the kernel connects with, from where its settings say; ""
// if none. Never logged.
opk::Status store_password(const Settings& s, std::string* out) {
  out->clear();
  if (!s.password_file.empty()) {
    std::ifstream in(s.password_file);
    if (!in) return opk::Status::error("cannot read the store's password file " + s.password_file);
    std::getline(in, *out);
    while (!out->empty() && (out->back() == '\r' || out->back() == ' ')) out->pop_back();
  } else if (!s.password_env.empty()) {
    const char* v = std::getenv(s.password_env.c_str());
    if (!v) return opk::Status::error("the store's password variable " + s.password_env + " is not set");
    *out = v;
  }
  return opk::Status::ok();
}

constexpr std::string_view kPartial = ".partial";

// A copy being written: a file of its own, created exclusively and locked
// (flock) while it is written, so a partial file whose lock is free belongs
// to nobody (the lock ends with its process). Removed, with SQLite's files
// beside it, unless kept().
class PartialFile {
 public:
  PartialFile() = default;
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  ~PartialFile() {
    if (fd_ < 0) return;
    if (!kept_) remove_with_journals(path_);
    ::close(fd_);
  }

  // Creates "<target>.<pid>-<n>.partial" beside `target`, with a name no
  // other run of any process has.
  opk::Status create(const fs::path& target) {
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      const fs::path path =
          target.string() + "." + std::to_string(::getpid()) + "-" + std::to_string(++counter) + std::string(kPartial);
      const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && errno == EEXIST) continue;
      if (fd < 0) return opk::Status::error("cannot create " + path.string() + ": " + std::strerror(errno));
      if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const std::string msg = "cannot lock " + path.string() + ": " + std::strerror(errno);
        ::close(fd);
        std::error_code ec;
        fs::remove(path, ec);
        return opk::Status::error(msg);
      }
      fd_ = fd;
      path_ = path;
      return opk::Status::ok();
    }
    return opk::Status::error("cannot find a free name for a partial copy beside " + target.string());
  }
  const fs::path& path() const { return path_; }
  // The copy was renamed to its final name: nothing is removed.
  void kept() { kept_ = true; }

  // Removes `path` and the journal files SQLite may have left beside it.
  static void remove_with_journals(const fs::path& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(path.string() + suffix, ec);
  }

 private:
  int fd_ = -1;
  fs::path path_;
  bool kept_ = false;
};

// Whether no process holds the partial file at `path` (or it is gone).
bool abandoned(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return free;
}

// Removes the partial copies in `dir` that no backup is writing (left by a
// process that was killed mid-copy), with their journal files; logs each.
void remove_abandoned_partials(const opk::Host& host, const fs::path& dir) {
  std::map<fs::path, std::vector<fs::path>> partials;  // partial file -> it and its journal files
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const auto at = name.rfind(kPartial);
    if (name.rfind("opskernel-", 0) != 0 || at == std::string::npos) continue;
    const std::string rest = name.substr(at + kPartial.size());
    if (rest.empty() || rest == "-journal" || rest == "-wal" || rest == "-shm")
      partials[dir / name.substr(0, at + kPartial.size())].push_back(e.path());
  }
  for (const auto& [partial, files] : partials) {
    if (!abandoned(partial)) continue;
    uintmax_t bytes = 0;
    for (const auto& f : files) {
      const auto size = fs::file_size(f, ec);
      if (!ec) bytes += size;
    }
    PartialFile::remove_with_journals(partial);
    host.warn("removed " + partial.filename().string() + " (" + std::to_string(bytes) +
              " bytes), the partial copy of a backup that was stopped before it finished");
  }
}

class BackupJob : public opk::Job {
 public:
  explicit BackupJob(opk::Plugin& p) : plugin_(p) {}

  opk::Status run(opk::RunContext& run) override {
    Settings s;
    opk::Status st = load_settings(plugin_.host(), &s);
    if (!st) return st;
    const std::string tier = run.param<std::string>("tier", "daily");
    if (!s.tiers.count(tier))
      return opk::Status::invalid("tier '" + tier + "' is not configured (plugin.database-backup.tiers)");
    const int keep = s.tiers[tier];
    // The run id keeps apart the copies of runs started in the same millisecond.
    const fs::path target =
        s.dir / ("opskernel-" + tier + "-" + utc_stamp() + "-" + std::to_string(run.run_id()) + s.extension());
    auto existing = copies(s.dir, tier);

    auto backup = run.step("backup");
    if (run.dry_run()) {
      run.info(s.postgresql() ? "dry run: would dump the PostgreSQL store with " + s.pg_dump + " to " + target.string()
                              : "dry run: would copy " + s.store + " to " + target.string());
      const size_t after = existing.size() + 1;
      for (size_t i = 0; after > static_cast<size_t>(keep) && i < after - keep; ++i)
        run.info("dry run: would delete " + existing[i].string());
      run.info("dry run: would keep the newest " + std::to_string(keep) + " " + tier + " copies");
      run.set_result(opk::Outcome::normal, "dry run: nothing written or deleted");
      return opk::Status::ok();
    }
    std::error_code ec;
    fs::create_directories(s.dir, ec);
    if (ec) return opk::Status::error("cannot create " + s.dir.string() + ": " + ec.message());
    // A cancelled or failed backup leaves no file: the partial one is
    // removed when this goes out of scope, unless it became the copy.
    PartialFile partial;
    if (st = partial.create(target); !st) {
      backup.end(opk::Outcome::error, st.message());
      return st;
    }
    const auto t0 = std::chrono::steady_clock::now();
    st = s.postgresql() ? dump(run, plugin_.host(), s, partial.path()) : copy(run, s, partial.path());
    if (!st) {
      backup.end(opk::Outcome::error, st.message());
      return st;
    }
    backup.end(opk::Outcome::normal);

    auto verify = run.step("verify");
    st = s.postgresql() ? verify_dump(run, s, partial.path()) : integrity_check(partial.path());
    if (!st) {
      verify.end(opk::Outcome::error, st.message());
      return st;
    }
    fs::rename(partial.path(), target, ec);
    if (ec) {
      const std::string msg = "cannot rename the copy to " + target.string() + ": " + ec.message();
      verify.end(opk::Outcome::error, msg);
      return opk::Status::error(msg);
    }
    partial.kept();
    verify.end(opk::Outcome::normal);

    auto cleanup = run.step("cleanup");
    existing = copies(s.dir, tier);
    int deleted = 0;
    for (size_t i = 0; existing.size() > static_cast<size_t>(keep) && i < existing.size() - keep; ++i) {
      // Another run of the tier may delete the same copy at the same time.
      if (fs::remove(existing[i], ec)) {
        run.info("deleted " + existing[i].filename().string());
        ++deleted;
      } else if (ec) {
        run.warn("could not delete " + existing[i].string() + ": " + ec.message());
      }
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    const auto size = fs::file_size(target, ec);
    run.info("backup " + target.filename().string() + ": " + std::to_string(size) + " bytes in " + std::to_string(ms) +
             " ms, verified");
    run.set_output({{"file", target.string()}, {"bytes", size}, {"duration_ms", ms}, {"deleted", deleted}});
    run.set_result(opk::Outcome::normal, tier + " backup of " + std::to_string(size) + " bytes in " +
                                             std::to_string(ms) + " ms; " + std::to_string(deleted) +
                                             " old copies deleted");
    return opk::Status::ok();
  }

  void cancel(opk::RunContext& run) override {
    run.info("cancel requested: stopping the copy, removing the partial file");
  }

 private:
  // Online copy with the backup API, checking for cancellation between steps.
  static opk::Status copy(opk::RunContext& run, const Settings& s, const fs::path& to) {
    sqlite3 *src = nullptr, *dst = nullptr;
    auto close = [&] {
      sqlite3_close(dst);
      sqlite3_close(src);
    };
    if (sqlite3_open_v2(s.store.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK ||
        sqlite3_open(to.c_str(), &dst) != SQLITE_OK) {
      std::string msg = std::string("cannot open: ") + sqlite3_errmsg(src ? src : dst);
      close();
      return opk::Status::error(msg);
    }
    sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
      std::string msg = std::string("backup_init: ") + sqlite3_errmsg(dst);
      close();
      return opk::Status::error(msg);
    }
    int rc = SQLITE_OK;
    // A write by another connection restarts an online backup. After a few
    // restarts, copy the rest in one step so a busy kernel cannot starve it.
    int restarts = 0, last_left = -1, step = s.pages_per_step;
    while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      if (run.cancelled()) {
        sqlite3_backup_finish(b);
        close();
        return opk::Status::cancelled();
      }
      rc = sqlite3_backup_step(b, step);
      const int total = sqlite3_backup_pagecount(b), left = sqlite3_backup_remaining(b);
      if (last_left >= 0 && left > last_left && ++restarts >= 3) step = -1;
      last_left = left;
      if (total > 0) run.progress(90.0 * (total - left) / total, "copying pages");
      if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED || (rc == SQLITE_OK && s.step_pause_ms > 0))
        (void)run.wait(std::chrono::milliseconds(std::max(s.step_pause_ms, 5)));  // a cancel ends it at the loop's top
    }
    sqlite3_backup_finish(b);
    std::string err = rc == SQLITE_DONE ? "" : sqlite3_errstr(rc);
    // The copy inherits WAL mode; make it one self-contained file.
    if (err.empty() && sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr) != SQLITE_OK)
      err = std::string("cannot switch the copy to a single file: ") + sqlite3_errmsg(dst);
    close();
    return err.empty() ? opk::Status::ok() : opk::Status::error("backup failed: " + err);
  }

  // pg_dump of the store's database, in custom format (compressed, one
  // consistent snapshot, restorable table by table), into `to`.
  static opk::Status dump(opk::RunContext& run, const opk::Host& host, const Settings& s, const fs::path& to) {
    if (s.conninfo.empty()) return opk::Status::error("the kernel did not say how to reach its PostgreSQL store");
    // Refused before anything is written when pg_dump is missing or older
    // than the server: it would refuse the server anyway, less clearly.
    int server = 0;
    opk::Json rows;
    if (opk::Status q = opk::Store(host).query("SELECT current_setting('server_version_num')", {}, &rows);
        q && rows.is_array() && !rows.empty() && rows[0].is_array() && !rows[0].empty()) {
      const std::string num = rows[0][0].is_string() ? rows[0][0].get<std::string>() : rows[0][0].dump();
      server = std::atoi(num.c_str()) / 10000;
    }
    ToolRun version;
    opk::Status st = run_tool({s.pg_dump, "--version"}, {}, {}, &version);
    const std::string install = "install Debian's postgresql-client" +
                                (server ? "-" + std::to_string(server) : std::string()) +
                                " or set plugin.database-backup.pg_dump";
    if (st.code() == OPK_ERR_NOT_FOUND)
      return opk::Status::error("pg_dump: " + s.pg_dump + " was not found: " + install);
    if (!st) return st;
    const int client = tool_major_version(version.out);
    if (version.exit_code != 0 || client == 0)
      return opk::Status::error("pg_dump: " + s.pg_dump + " --version did not give a version (" +
                                last_line(version.out + version.err) + ")");
    if (server && client < server)
      return opk::Status::error("pg_dump: " + s.pg_dump + " is version " + std::to_string(client) +
                                ", older than the server's " + std::to_string(server) + ": " + install);
    run.info("dumping with " + last_line(version.out));
    std::string password;
    if (st = store_password(s, &password); !st) return st;
    std::vector<std::string> env;
    if (!password.empty()) env.push_back("PGPASSWORD=" + password);
    run.progress(10, "dumping the database");
    ToolRun d;
    st = run_tool(
        {s.pg_dump, "--format=custom", "--no-password", "--file=" + to.string(), "--dbname=" + s.conninfo}, env,
        [&run] { return run.cancelled(); }, &d);
    if (!st) return st;
    if (d.exit_code != 0)
      return opk::Status::error("pg_dump failed (exit " + std::to_string(d.exit_code) + "): " + last_line(d.err));
    run.progress(80, "dumped");
    return opk::Status::ok();
  }

  // Reads the dump's table of contents with pg_restore --list: it must
  // list the data of the kernel's runs table.
  static opk::Status verify_dump(opk::RunContext& run, const Settings& s, const fs::path& file) {
    ToolRun list;
    opk::Status st = run_tool(
        {s.pg_restore, "--list", file.string()}, {}, [&run] { return run.cancelled(); }, &list);
    if (st.code() == OPK_ERR_NOT_FOUND)
      return opk::Status::error("pg_restore: " + s.pg_restore +
                                " was not found: install Debian's postgresql-client or set "
                                "plugin.database-backup.pg_restore");
    if (!st) return st;
    if (list.exit_code != 0)
      return opk::Status::error("the dump failed pg_restore --list (exit " + std::to_string(list.exit_code) +
                                "): " + last_line(list.err));
    size_t entries = 0;
    bool runs = false;
    std::istringstream lines(list.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty() || line[0] == ';') continue;
      ++entries;
      if (line.find(" TABLE DATA ") != std::string::npos && line.find(" runs ") != std::string::npos) runs = true;
    }
    if (!runs)
      return opk::Status::error("the dump's table of contents (" + std::to_string(entries) +
                                " entries) has no data of the kernel's runs table");
    run.info("verified: pg_restore --list reads " + std::to_string(entries) + " entries");
    return opk::Status::ok();
  }

  static opk::Status integrity_check(const fs::path& file) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return opk::Status::error("cannot open the copy to verify it");
    }
    sqlite3_stmt* q = nullptr;
    std::string result = "no result";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, nullptr) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
      result = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return result == "ok" ? opk::Status::ok() : opk::Status::error("the copy failed integrity_check: " + result);
  }

  opk::Plugin& plugin_;
};

class BackupPlugin : public opk::Plugin {
 public:
  explicit BackupPlugin(opk::Host host) : Plugin(host) {}

  // Bad settings refuse the plugin at init, naming the key.
  opk::Status init() override {
    Settings s;
    return load_settings(host(), &s);
  }

  // Removes the partial copies of backups that were stopped mid-copy,
  // before any run of this start (a re-queued one, say) begins.
  opk::Status start() override {
    Settings s;
    if (opk::Status st = load_settings(host(), &s); !st) return st;
    remove_abandoned_partials(host(), s.dir);
    return opk::Status::ok();
  }
};

opk::Manifest describe() {
  static const opk_translation sv[] = {{"sv", "Databassäkerhetskopia", "Säkerhetskopierar kärnans databas per nivå."}};
  opk::Manifest m("database-backup", "Database backup", "1.0.0", "Opskernel",
                  "Online, verified backups of the kernel's store (SQLite or PostgreSQL), kept per tier");
  m.job<BackupJob>(
      {.id = "database-backup",
       .title = "Database backup",
       .description = "Runs the configured backup tier and applies its cleanup.",
       .owner = "platform-team",
       .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun | opk::kRequeue,
       .params_schema_json = R"json({"type":"object","additionalProperties":false,
                      "properties":{"tier":{"type":"string","pattern":"^[a-z0-9-]+$","default":"daily",
                      "description":"Backup tier (plugin.database-backup.tiers)"}
}
})json",
       .default_schedule = "15 3 * * *",
       .target_duration_ms = 60000,
       .timeout_ms = 3600000,
       .priority = 5,
       .worker_pool = "default",
       .actions = {{"backup", "Copy the store"}, {"verify", "Check the copy"}, {"cleanup", "Apply retention"}},
       .translations = {sv[0]}});
  return m;
}

}  // namespace

OPK_PLUGIN(BackupPlugin, describe);
