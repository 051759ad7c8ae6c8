// database-backup -- the DatabaseBackup job type: an online, consistent copy
// of the kernel's SQLite store (SQLite's backup API, so runs keep being
// written meanwhile), verified with PRAGMA integrity_check, kept per tier
// (hourly x24, daily x7 ...) with older copies of the tier deleted. Each run
// writes its own partial file, locked while it writes; partial files nobody
// holds are removed when the plugin starts.
//
// Settings ([plugin.database-backup]):
//   dir            where copies go; relative to kernel.data_dir (default "backups")
//   tiers          NAME:KEEP,... (default hourly:24,daily:7,weekly:4,monthly:12)
//   pages_per_step pages copied between cancellation checks (default 256)
//   step_pause_ms  pause between steps, to bound the I/O a backup takes (default 0)
// Parameters: {"tier": "daily"}.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
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
#include <map>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace {

struct Settings {
  fs::path dir;
  std::map<std::string, int> tiers;  // tier -> copies kept
  int pages_per_step = 256;
  int step_pause_ms = 0;
  std::string store;
};

opk::Status load_settings(const opk::Host& h, Settings* s) {
  const std::string data = h.config_or("kernel.data_dir", ".");
  s->store = h.config_or("kernel.store_path", data + "/opskernel.db");
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

// Copies of one tier, oldest first (names sort by their UTC stamp).
std::vector<fs::path> copies(const fs::path& dir, const std::string& tier) {
  std::vector<fs::path> out;
  std::error_code ec;
  const std::string prefix = "opskernel-" + tier + "-";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    // The stamp starts with a digit: "hourly" must not take "hourly-eu"'s copies.
    if (name.rfind(prefix, 0) == 0 && name.size() > prefix.size() &&
        std::isdigit(static_cast<unsigned char>(name[prefix.size()])) && e.path().extension() == ".db")
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
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
        s.dir / ("opskernel-" + tier + "-" + utc_stamp() + "-" + std::to_string(run.run_id()) + ".db");
    auto existing = copies(s.dir, tier);

    auto backup = run.step("backup");
    if (run.dry_run()) {
      run.info("dry run: would copy " + s.store + " to " + target.string());
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
    st = copy(run, s, partial.path());
    if (!st) {
      backup.end(opk::Outcome::error, st.message());
      return st;
    }
    backup.end(opk::Outcome::normal);

    auto verify = run.step("verify");
    st = integrity_check(partial.path());
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
                  "Online, verified backups of the kernel's store, kept per tier");
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
