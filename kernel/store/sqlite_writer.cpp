// The embedded store's writer: group commit and the log's flusher.
//
// Group commit, as LevelDB's DBImpl::Write groups writers: a caller
// queues its write; the first in the queue writes every write queued at
// that moment in one transaction (each in a savepoint of its own, so one
// failing write does not undo the others), commits once, and hands the
// queue to the next writer. One commit then carries the claims,
// completions and new runs of every thread, and the same hot pages are
// written once per group, not once per caller.
//
// With store.synchronous = full, a group's commit does not wait for its
// fsync: the flusher thread flushes the write-ahead log while the next
// group is written, and only then wakes the group's writers (as
// PostgreSQL's WAL writer and group commit overlap). The writer
// connection is thereby busy with SQL, not with waiting for the disk.
// Readers may see a group up to one flush (1 to 3 ms) before it is
// durable; nobody it was written for has been answered by then.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "store/sqlite_internal.h"

namespace opk::store::internal {

namespace {

// Urgent writes get a commit of their own when the rest of their group
// changes at least this many rows (an fsync costs about as much as writing
// a few hundred rows here).
constexpr size_t kSplitRows = 256;
// The flusher waits at most this long for a group being written when it
// starts, so that one flush makes both durable (a group's SQL takes a
// fraction of a flush: 0.1 to 0.2 ms for 16 new runs, a flush 0.5 ms or more).
constexpr auto kShareFlushWait = std::chrono::microseconds(250);

}  // namespace

Status SqliteStore::grouped(const std::function<Status()>& write, size_t rows, bool urgent) {
  Writer w{&write, urgent, rows};
  std::unique_lock queue_lock(group_mu_);
  writers_.push_back(&w);
  for (;;) {
    while (!w.done && (w.written || &w != writers_.front())) w.cv.wait(queue_lock);
    if (w.done) return w.status;
    // The leader: everything queued now is one group. Urgent writes
    // (claims: a plugin waits for them) mixed with much other work get a
    // commit of their own first; the rest is the next group, led by its
    // first writer (this one again, if it is not urgent). Mixed with
    // little, one commit is quicker for both.
    std::vector<Writer*> group, rest;
    size_t rest_rows = 0;
    for (Writer* g : writers_) {
      (g->urgent ? group : rest).push_back(g);
      if (!g->urgent) rest_rows += g->rows;
    }
    if (group.empty() || rest.empty() || rest_rows < kSplitRows) {
      group.insert(group.end(), rest.begin(), rest.end());
      rest.clear();
    }
    const std::string failed = flush_failed_;
    queue_lock.unlock();
    const bool committed = failed.empty() && write_group(group);
    queue_lock.lock();
    for (Writer* g : group) {
      writers_.erase(std::find(writers_.begin(), writers_.end(), g));
      if (!failed.empty()) g->status = Status::unavailable(failed);
      g->written = true;
    }
    if (committed && full_) {
      unflushed_.insert(unflushed_.end(), group.begin(), group.end());
      flush_cv_.notify_one();
    } else {
      // Nothing to flush: not durable mode, or the transaction was
      // rolled back.
      for (Writer* g : group) wake(g, &w);
      if (full_) flush_cv_.notify_one();  // a flusher waiting for this group
    }
    if (!writers_.empty() && writers_.front() != &w) writers_.front()->cv.notify_one();
  }
}

void SqliteStore::wake(Writer* g, Writer* self) {
  g->done = true;
  if (g != self) g->cv.notify_one();
}

void SqliteStore::flush_loop() {
  std::unique_lock lock(group_mu_);
  for (;;) {
    flush_cv_.wait(lock, [&] { return stopping_ || !unflushed_.empty(); });
    if (unflushed_.empty()) return;  // stopping, nothing left
    // Writes queued now (another caller's claim, completions) are committed
    // within a fraction of a flush: waiting for their group lets this flush
    // make them durable too, instead of one flush after another. A lone
    // group (nothing queued) is flushed at once.
    if (!writers_.empty() && !stopping_) {
      const size_t committed = unflushed_.size();
      flush_cv_.wait_for(lock, kShareFlushWait,
                         [&] { return stopping_ || writers_.empty() || unflushed_.size() > committed; });
    }
    std::vector<Writer*> batch;
    batch.swap(unflushed_);
    lock.unlock();
    const std::string error = flush_log();
    lock.lock();
    if (!error.empty() && flush_failed_.empty()) flush_failed_ = error;
    for (Writer* g : batch) {
      if (!error.empty() && g->status) g->status = Status::unavailable(error);
      wake(g, nullptr);
    }
  }
}

std::string SqliteStore::flush_log() {
  const std::string wal = path_ + "-wal";
  struct stat named {};
  struct stat open_file {};
  if (wal_fd_ >= 0 && (::stat(wal.c_str(), &named) != 0 || ::fstat(wal_fd_, &open_file) != 0 ||
                       named.st_ino != open_file.st_ino || named.st_dev != open_file.st_dev)) {
    ::close(wal_fd_);
    wal_fd_ = -1;
  }
  if (wal_fd_ < 0) {
    wal_fd_ = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (wal_fd_ < 0) return "store: cannot open " + wal + " to flush it: " + std::strerror(errno);
    // The log's directory entry is made durable once.
    const auto dir = std::filesystem::path(path_).parent_path();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      flush_(dfd);
      ::close(dfd);
    }
  }
  if (const int err = flush_(wal_fd_))
    return "store: flushing " + wal + " failed (" + std::strerror(err) +
           "); writes are refused until the kernel restarts";
  return "";
}

bool SqliteStore::write_group(const std::vector<Writer*>& group) {
  std::lock_guard lock(write_mu_);
  // A write that throws fails alone; it must not leave the queue stuck.
  auto run = [](Writer* g) {
    try {
      g->status = (*g->write)();
    } catch (const std::exception& e) {
      g->status = Status(OPK_ERR_INTERNAL, std::string("store: ") + e.what());
    }
  };
  if (full_) sqlite3_exec(db(), "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  disk_error_.clear();
  Status s = in_transaction([&] {
    if (group.size() == 1) {
      run(group.front());
      return group.front()->status;
    }
    for (Writer* g : group) {
      if (!stmts_->savepoint.exec()) return sql_error("savepoint");
      run(g);
      // Some errors (disk full, I/O) end the whole transaction: then
      // nothing of the group is written, the rest must not run outside
      // it, and the whole group fails with that error.
      if (sqlite3_get_autocommit(db())) return g->status ? sql_error("the transaction was lost") : g->status;
      if (!g->status && !stmts_->rollback_to.exec()) return sql_error("rollback to savepoint");
      if (!stmts_->release.exec()) return sql_error("release savepoint");
    }
    return Status::ok();
  });
  {
    // The store's health (writable()): a disk error stays its fault until
    // a group commits without one.
    std::lock_guard health(health_mu_);
    if (!disk_error_.empty())
      fault_ = disk_error_;
    else if (s)
      fault_.clear();
  }
  // Every other write commits with its own fsync, as before.
  if (full_ && sqlite3_exec(db(), "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::lock_guard queue_lock(group_mu_);
    if (flush_failed_.empty())
      flush_failed_ = std::string("store: cannot restore synchronous=FULL: ") + sqlite3_errmsg(db());
  }
  if (!s)
    for (Writer* g : group)
      if (g->status) g->status = s;
  // A single write that failed rolled the transaction back too.
  return s.code() == OPK_OK;
}
}  // namespace opk::store::internal
