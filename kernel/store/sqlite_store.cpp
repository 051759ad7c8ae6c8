// The embedded store's connections: the writer connection and the pool of
// readers, opened and checked at start and closed at the end; the store's
// health (writable, checkpoint); and the text reads the other files build
// on. Opening a store from outside kernel/store: open_sqlite (store.h).
#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "store/sqlite_internal.h"

namespace opk::store::internal {

using namespace Poco::Data::Keywords;

namespace {

constexpr int kWriterCacheKiB = 8192;  // the writer's page cache
constexpr int kReaderCacheKiB = 1024;  // each reader's page cache
constexpr size_t kMaxReaders = 64;
// writable() writes a test row at most this often while the store is healthy.
constexpr int64_t kProbeEveryMs = 1000;
// With less room than this left on its file system, or within the size
// limit SQLite was given, the store counts as full (writable()).
constexpr uint64_t kMinFreeBytes = 1 << 20;
// Problems a check at open reports at most.
constexpr int kCheckProblems = 5;

// The name of a SQLite error of the disk or the file (full, I/O, damaged,
// read-only), or nullptr for other errors (constraints, SQL, busy).
const char* disk_error_name(int extended_code) {
  switch (extended_code & 0xff) {
    case SQLITE_FULL:
      return "SQLITE_FULL";
    case SQLITE_IOERR:
      return "SQLITE_IOERR";
    case SQLITE_CORRUPT:
      return "SQLITE_CORRUPT";
    case SQLITE_NOTADB:
      return "SQLITE_NOTADB";
    case SQLITE_READONLY:
      return "SQLITE_READONLY";
    case SQLITE_CANTOPEN:
      return "SQLITE_CANTOPEN";
    case SQLITE_NOMEM:
      return "SQLITE_NOMEM";
    default:
      return nullptr;
  }
}

// The pool of read connections; each new one gets a bounded page cache and
// the plugins' fence. A connection once made stays open until the store
// closes (its least number of sessions is its most, so the pool's janitor
// closes none when idle): plugins' statements stay prepared on it
// (SqliteStore::reader_cache), and a connection closed under them would
// leave them to a handle SQLite frees only with them.
class ReaderPool final : public Poco::Data::SessionPool {
 public:
  explicit ReaderPool(const std::string& path) : SessionPool("SQLite", path, kMaxReaders, kMaxReaders, 60) {}

 protected:
  void customizeSession(Poco::Data::Session& session) override {
    session << "PRAGMA cache_size=-" + std::to_string(kReaderCacheKiB), Poco::Data::Keywords::now;
    install_plugin_fence(Poco::Data::SQLite::Utility::dbHandle(session));
  }
};

}  // namespace

SqliteStore::SqliteStore(std::string path, bool full, FlushFile flush, OpenCheck check)
    : path_(std::move(path)),
      full_(full),
      flush_(flush ? std::move(flush) : [](int fd) { return ::fdatasync(fd) == 0 ? 0 : errno; }),
      check_(check) {}

SqliteStore::~SqliteStore() {
  if (flusher_.joinable()) {
    {
      std::lock_guard lock(group_mu_);
      stopping_ = true;
    }
    flush_cv_.notify_one();
    flusher_.join();
  }
  if (wal_fd_ >= 0) ::close(wal_fd_);
  {
    // Before the pool closes the readers.
    std::lock_guard lock(reader_stmts_mu_);
    reader_stmts_.clear();
  }
  std::lock_guard lock(write_mu_);
  stmts_.reset();
}

Status SqliteStore::open() {
  try {
    configure_sqlite();
    Poco::Data::SQLite::Connector::registerConnector();
    // Poco retries a failing open until its login timeout (60 s by default):
    // check the folder first so a wrong path fails at once, and keep the
    // timeout short.
    const auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir))
      return Status::unavailable("store " + path_ + ": folder " + dir.string() + " does not exist");
    writer_ = std::make_unique<Poco::Data::Session>("SQLite", path_, 5);
    db_ = Poco::Data::SQLite::Utility::dbHandle(*writer_);
    install_plugin_fence(db_);
    *writer_ << "PRAGMA journal_mode=WAL", now;
    *writer_ << (full_ ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"), now;
    *writer_ << "PRAGMA busy_timeout=5000", now;
    if (Status c = check_file(); !c) return c;
    // The writer's pages stay valid between its transactions: a larger
    // cache keeps the hot pages of a group commit in memory.
    *writer_ << "PRAGMA cache_size=-" + std::to_string(kWriterCacheKiB), now;
    // Checkpoints run from checkpoint(), off the commit path.
    *writer_ << "PRAGMA wal_autocheckpoint=0", now;
    *writer_ << "PRAGMA foreign_keys=ON", now;
    *writer_ << "CREATE TABLE IF NOT EXISTS schema_migrations (owner TEXT NOT NULL, version INTEGER NOT NULL, "
                "name TEXT NOT NULL, applied_ms INTEGER NOT NULL, PRIMARY KEY (owner, version))",
        now;
    readers_ = std::make_unique<ReaderPool>(path_);
  } catch (const Poco::Exception& e) {
    return Status::unavailable("store " + path_ + ": " + e.displayText());
  }
  Status s = migrate("kernel", kKernelMigrations);
  if (!s) return s;
  try {
    stmts_ = std::make_unique<Statements>(db());
  } catch (const std::exception& e) {
    return Status(OPK_ERR_INTERNAL, e.what());
  }
  if (Status e = load_event_seq(); !e) return e;
  if (full_) flusher_ = std::thread([this] { flush_loop(); });
  return Status::ok();
}

Status SqliteStore::check_file() {
  if (check_ == OpenCheck::none) return Status::ok();
  const char* what = check_ == OpenCheck::full ? "integrity_check" : "quick_check";
  const std::string sql = std::string("PRAGMA ") + what + "(" + std::to_string(kCheckProblems) + ")";
  static constexpr const char* kHeading = "*** in database main ***\n";
  sqlite3_stmt* st = nullptr;
  std::string problems;
  int rc = sqlite3_prepare_v2(db(), sql.c_str(), -1, &st, nullptr);
  if (rc == SQLITE_OK)
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      std::string line = text ? text : "";
      if (line == "ok") continue;
      // One line per problem, without the heading of the (only) database.
      if (line.rfind(kHeading, 0) == 0) line.erase(0, std::strlen(kHeading));
      std::replace(line.begin(), line.end(), '\n', ' ');
      problems += (problems.empty() ? "" : "; ") + line;
    }
  const int code = sqlite3_extended_errcode(db());
  const std::string error = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db());
  sqlite3_finalize(st);
  if (problems.empty() && error.empty()) return Status::ok();
  if (problems.empty() && (code & 0xff) != SQLITE_CORRUPT && (code & 0xff) != SQLITE_NOTADB)
    return Status::unavailable("store " + path_ + ": cannot check the file (" + what + "): " + error);
  return Status::unavailable("store " + path_ + " is corrupted: " + what +
                             " found: " + (problems.empty() ? error : problems) + "; restore it from a backup copy");
}

const char* SqliteStore::dialect() const {
  return "sqlite";
}

uint64_t SqliteStore::generation() const {
  return generation_.load(std::memory_order_acquire);
}

void SqliteStore::checkpoint() {
  try {
    Poco::Data::Session s = readers_->get();
    sqlite3_wal_checkpoint_v2(Poco::Data::SQLite::Utility::dbHandle(s), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
  } catch (const Poco::Exception&) {
    // The next call tries again; the log only grows meanwhile.
  }
}

Status SqliteStore::writable() {
  {
    std::lock_guard lock(group_mu_);
    if (!flush_failed_.empty()) return Status::unavailable(flush_failed_);
  }
  const int64_t now = now_ms();
  {
    std::lock_guard lock(health_mu_);
    if (fault_.empty() && now - probed_ms_ < kProbeEveryMs) return Status::ok();
  }
  if (Status room = disk_room(); !room) return room;
  // The test write goes through the writer's queue like any other, and
  // its commit clears a fault once the store takes writes again.
  Status s = grouped([&] { return probe_locked(); }, 1);
  std::lock_guard lock(health_mu_);
  if (!s) return s;
  if (!fault_.empty()) return Status::unavailable(fault_);
  probed_ms_ = now;
  return Status::ok();
}

Status SqliteStore::disk_room() const {
  const auto dir = std::filesystem::path(path_).parent_path();
  struct statvfs fs {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) != 0) return Status::ok();  // the test write decides
  const uint64_t blocks = ::geteuid() == 0 ? fs.f_bfree : fs.f_bavail;
  const uint64_t free_bytes = blocks * fs.f_frsize;
  if (free_bytes >= kMinFreeBytes) return Status::ok();
  return Status::unavailable("store: the disk of " + path_ + " is full (" + std::to_string(free_bytes) +
                             " bytes free)");
}

Status SqliteStore::probe_locked() {
  auto count = [&](Stmt& st) {
    const int64_t n = st.step() == SQLITE_ROW ? st.column_int(0) : 0;
    st.reset();
    return n;
  };
  const int64_t pages = count(stmts_->page_count), limit = count(stmts_->max_page_count),
                free_pages = count(stmts_->freelist_count), page_size = count(stmts_->page_size);
  const int64_t room = (std::max<int64_t>(limit - pages, 0) + free_pages) * page_size;
  if (room < static_cast<int64_t>(kMinFreeBytes)) {
    std::string msg = "store: database or disk is full (SQLITE_FULL, " + path_ + "): " + std::to_string(room) +
                      " bytes left within its size limit of " + std::to_string(limit) + " pages";
    if (disk_error_.empty()) disk_error_ = msg;
    return Status::unavailable(std::move(msg));
  }
  if (!stmts_->write_probe.bind_all(now_ms()).exec()) return sql_error("test write");
  return Status::ok();
}

Status SqliteStore::sql_error(const char* what) {
  std::string msg = std::string("store: ") + what + ": " + sqlite3_errmsg(db());
  if (const char* name = disk_error_name(sqlite3_extended_errcode(db()))) {
    msg += std::string(" (") + name + ", " + path_ + ")";
    if (disk_error_.empty()) disk_error_ = msg;
  }
  return Status::unavailable(std::move(msg));
}

Status SqliteStore::read_text(const std::string& what, const std::string& sql, const SqlParams& params,
                              std::vector<TextRow>* out) {
  std::vector<std::vector<std::optional<std::string>>> rows;
  // The statement is the store's own: whatever fails is the store's.
  if (Status s = query(sql, params, &rows); !s)
    return Status::unavailable("store: cannot read " + what + " (" + path_ + "): " + s.message());
  out->reserve(out->size() + rows.size());
  for (auto& r : rows) {
    TextRow row;
    row.reserve(r.size());
    for (auto& v : r) row.push_back(v ? std::move(*v) : std::string());
    out->push_back(std::move(row));
  }
  return Status::ok();
}

Status SqliteStore::write_one(const std::string& what, const std::string& sql, const SqlParams& params,
                              int64_t* changed) {
  Status s = execute(sql, params, changed);
  if (!s && s.code() != OPK_ERR_CONFLICT && s.code() != OPK_ERR_UNAVAILABLE)
    return Status::unavailable("store: " + what + " (" + path_ + "): " + s.message());
  return s;
}

Status SqliteStore::read_rows(const char* what, const std::string& sql, std::vector<std::vector<std::string>>* out) {
  try {
    Poco::Data::Session s = readers_->get();
    Poco::Data::Statement st(s);
    st << sql;
    st.execute();
    Poco::Data::RecordSet rs(st);
    for (size_t r = 0; r < rs.rowCount(); ++r) {
      std::vector<std::string> row;
      for (size_t c = 0; c < rs.columnCount(); ++c) {
        const auto& v = rs.value(c, r);
        row.push_back(v.isEmpty() ? std::string() : v.convert<std::string>());
      }
      out->push_back(std::move(row));
    }
  } catch (const Poco::Exception& e) {
    return Status::unavailable(std::string("store: cannot read ") + what + " (" + path_ + "): " + e.displayText());
  }
  return Status::ok();
}
}  // namespace opk::store::internal

namespace opk::store {

// Process-wide SQLite settings, made once before the first connection opens
// (sqlite3_config refuses them afterwards, harmlessly: then the defaults
// stay). Multi-thread mode: no connection is used by two threads at once
// here (the writer is guarded by a mutex, each pooled reader belongs to one
// caller at a time), so the per-call connection mutexes are pure cost. No
// memory statistics: their global mutex is taken on every allocation. The
// two measured 25-35% of the store's hot-path CPU on this machine
// (bench/store_bench.cpp). Reader caches are bounded per connection instead
// (ReaderPool), since the soft heap limit needs the statistics.
void configure_sqlite() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

Status open_sqlite(const std::string& path, bool durable_full, std::unique_ptr<Store>* out, FlushFile flush,
                   OpenCheck check) {
  auto s = std::make_unique<internal::SqliteStore>(path, durable_full, std::move(flush), check);
  Status st = s->open();
  if (!st) return st;
  *out = std::move(s);
  return Status::ok();
}

}  // namespace opk::store
