// engine_intake.cpp -- the intake of new runs from run now: the runs and
// audit rows of concurrent callers are stored by one store call and then
// queued, so a group of callers shares one write and one flush (as LevelDB's
// writers share a log write). The caller at the head of the queue writes for
// everyone queued behind it; before it does, it waits briefly (at most
// kIntakeGatherUs) for as many callers as the last write carried, as those
// are usually on their way back with their next request: were it to write at
// once, they would miss that flush and wait for the next one, and callers
// would settle in two halves taking turns.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <iterator>

#include "jobs/engine_internal.h"

namespace opk::jobs {
namespace {

// The futex of Linux on an atomic int: std::atomic's wait spins and yields
// the CPU several times before it sleeps, which on a busy machine costs
// more than the wait it saves.
static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free);

// Sleeps while `word` is `seen` (it may return early: the caller looks again).
void intake_futex_wait(std::atomic<int>& word, int seen) {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}

// Wakes every thread sleeping in intake_futex_wait on `word`.
void intake_futex_wake_all(std::atomic<int>& word) {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

// A caller's runs waiting to be stored with those of other callers.
struct Engine::Intake {
  std::vector<store::RunRow>* rows;
  const std::vector<TypeRef>* refs;
  std::vector<store::AuditRow>* audit;
  std::vector<int64_t>* run_ids;
  Status status;
  // Set by a head (then intake_gen_ moves on): the caller's runs are
  // stored and queued (status holds the outcome), or the caller leads the
  // next group. Read without intake_mu_: a caller answered returns without
  // taking the lock again.
  std::atomic<bool> done{false}, lead{false};
  std::condition_variable cv;  // the head's, while it gathers (intake_mu_)
};

Status Engine::store_and_queue(std::vector<store::RunRow>* rows, const std::vector<TypeRef>& refs,
                               std::vector<store::AuditRow>* audit, std::vector<int64_t>* run_ids) {
  Intake self{rows, &refs, audit, run_ids};
  std::unique_lock lock(intake_mu_);
  intake_.push_back(&self);
  // The head gathering callers: wake it once the ones it waits for are here.
  if (intake_want_ && intake_.size() >= intake_want_) intake_.front()->cv.notify_one();
  if (&self != intake_.front()) {
    // Wait to be answered, or to lead the next group: a head tells every
    // waiting caller at once (one wake for its whole group, which then
    // need not take the lock again), and each looks at its own flags.
    lock.unlock();
    for (;;) {
      const int seen = intake_gen_.load(std::memory_order_acquire);
      if (self.done.load(std::memory_order_acquire)) return self.status;
      if (self.lead.load(std::memory_order_acquire)) break;
      intake_futex_wait(intake_gen_, seen);
    }
    lock.lock();
  }

  // The head: gather, then write for every caller queued.
  if (intake_.size() < intake_last_) {
    intake_want_ = intake_last_;
    self.cv.wait_for(lock, std::chrono::microseconds(kIntakeGatherUs), [&] { return intake_.size() >= intake_want_; });
    intake_want_ = 0;
  }
  std::vector<Intake*> group(intake_.begin(), intake_.end());
  lock.unlock();

  if (group.size() == 1) {
    self.status = store_.create_runs(rows, audit);
  } else {
    std::vector<store::RunRow> all_rows;
    std::vector<store::AuditRow> all_audit;
    for (Intake* g : group) {
      std::move(g->rows->begin(), g->rows->end(), std::back_inserter(all_rows));
      std::move(g->audit->begin(), g->audit->end(), std::back_inserter(all_audit));
    }
    Status s = store_.create_runs(&all_rows, &all_audit);
    // Back to their callers (with their run numbers if stored).
    size_t r = 0, a = 0;
    for (Intake* g : group) {
      for (auto& row : *g->rows) row = std::move(all_rows[r++]);
      for (auto& row : *g->audit) row = std::move(all_audit[a++]);
    }
    if (s) {
      for (Intake* g : group) g->status = s;
    } else {
      // Nothing of the group was stored: each caller's runs are tried on
      // their own, so a caller's outcome is its own.
      for (Intake* g : group) {
        for (auto& row : *g->rows) row.id = 0;
        g->status = store_.create_runs(g->rows, g->audit);
      }
    }
  }

  {
    // Queued by the head, under one lock, before their callers are answered.
    std::lock_guard engine_lock(mu_);
    for (Intake* g : group) {
      if (!g->status) continue;
      for (size_t i = 0; i < g->rows->size(); ++i) {
        if (g->run_ids) g->run_ids->push_back((*g->rows)[i].id);
        enqueue_locked(std::move((*g->rows)[i]), (*g->refs)[i]);
      }
    }
  }
  lock.lock();
  intake_.erase(intake_.begin(), intake_.begin() + static_cast<std::ptrdiff_t>(group.size()));
  intake_last_ = group.size();
  if (!intake_.empty()) intake_.front()->lead.store(true, std::memory_order_release);
  // A caller told it is done may return at once: its Intake is not touched
  // after this.
  for (Intake* g : group)
    if (g != &self) g->done.store(true, std::memory_order_release);
  intake_gen_.fetch_add(1, std::memory_order_release);
  lock.unlock();
  intake_futex_wake_all(intake_gen_);
  return self.status;
}

}  // namespace opk::jobs
