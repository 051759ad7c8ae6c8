// polled_snapshot.hpp -- opk::PolledSnapshot<T>, an in-memory snapshot of a
// plugin's table reloaded when a change counter moves, polled so every
// kernel sharing the store sees changes; and opk::NodeAncestry<Tag>, a
// hierarchy node's ancestors kept by each thread, for lookups by scope.
//
// Header-only, over the C ABI's store and identity services (no ABI of its
// own). A plugin whose hot path (an extension other plugins call on every
// request, a run gate) must not read the store keeps its rows in a table
// and a change counter in a second table, moved in the transaction of every
// change of the rows:
//
//   struct Windows { std::unordered_map<std::string, std::vector<Slot>> by_tenant; };
//   opk::PolledSnapshot<Windows> windows_;
//
//   // init(): what the snapshot is made of, then the first load.
//   windows_.set_source({.read_counter = [this](int64_t* c) { return read_counter(host(), c); },
//                        .load = [this](Windows* out) { return load_windows(out); }});
//   if (Status s = windows_.refresh(true); !s) return s;
//   // start(): the poller; stop(): windows_.stop().
//   windows_.start(poll_ms, [this](const Status& s) { host().warn("windows not reloaded: " + s.message()); });
//   // a lookup, from any thread, with no lock and no reference count:
//   const Windows& now = windows_.thread_view();
//
// A write through this kernel's API calls refresh(true) after its commit, so
// its own next lookup sees it; other kernels see it at their next poll.
// Thread-safety: every call may be made from any thread; refreshes are
// serialized; the snapshot is swapped whole and never changed in place.
#ifndef OPSKERNEL_POLLED_SNAPSHOT_HPP
#define OPSKERNEL_POLLED_SNAPSHOT_HPP

#include <opskernel/opk.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace opk {

// An immutable T read from a plugin's table, swapped whole when the table's
// change counter moved. T must be default-constructible (the empty snapshot
// before the first load).
template <typename T>
class PolledSnapshot {
 public:
  // What the snapshot is made of.
  struct Source {
    // Reads the change counter every change of the table moves.
    std::function<Status(int64_t* counter)> read_counter;
    // Reads the table into `out` (a fresh T).
    std::function<Status(T* out)> load;
  };

  // An empty snapshot. Threads' views are taken again: one of an instance
  // gone from this address is not this one's.
  PolledSnapshot() { generation_.fetch_add(1, std::memory_order_acq_rel); }
  ~PolledSnapshot() { stop(); }
  PolledSnapshot(const PolledSnapshot&) = delete;
  PolledSnapshot& operator=(const PolledSnapshot&) = delete;

  // Sets what the snapshot is made of; call before the first refresh.
  void set_source(Source source) {
    std::lock_guard lock(refresh_mu_);
    source_ = std::move(source);
  }

  // The snapshot now (never null: an empty T before the first load).
  std::shared_ptr<const T> current() const { return snap_.load(std::memory_order_acquire); }

  // The snapshot now as the calling thread last took it, taken again only
  // when a snapshot was swapped since (by any PolledSnapshot<T>): a lookup
  // then costs no lock and no reference count. Valid until the thread's
  // next call. glibc keeps the plugin's library loaded while a thread that
  // holds one lives, so its release never runs unloaded code.
  const T& thread_view() const {
    ThreadView& t = t_view_;
    const uint64_t generation = generation_.load(std::memory_order_acquire);
    if (t.owner != this || t.generation != generation) {
      t.snap = current();
      t.owner = this;
      t.generation = generation;
    }
    return *t.snap;
  }

  // The change counter the snapshot was read at (-1 before the first load).
  int64_t counter() const { return counter_.load(std::memory_order_acquire); }

  // Reads the counter and, when it moved since the last load (or `force`),
  // loads the table and swaps the snapshot. On an error the snapshot stays
  // as it was.
  Status refresh(bool force) {
    std::lock_guard lock(refresh_mu_);
    if (!source_.read_counter || !source_.load) return {OPK_ERR_INTERNAL, "the snapshot has no source"};
    int64_t counter = 0;
    if (Status s = source_.read_counter(&counter); !s) return s;
    if (!force && counter == counter_.load(std::memory_order_acquire)) return Status::ok();
    auto next = std::make_shared<T>();
    if (Status s = source_.load(next.get()); !s) return s;
    snap_.store(std::shared_ptr<const T>(std::move(next)), std::memory_order_release);
    counter_.store(counter, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return Status::ok();
  }

  // Starts the poller: every `interval_ms`, refresh(false), a failure given
  // to `on_error` (the snapshot stays), then `each_poll` if set (a plugin's
  // housekeeping, such as pruning ended rows). Call from start(), once.
  void start(int64_t interval_ms, std::function<void(const Status&)> on_error, std::function<void()> each_poll = {}) {
    stop();
    {
      std::lock_guard lock(mu_);
      stopping_ = false;
    }
    poller_ = std::thread([this, interval_ms, on_error = std::move(on_error), each_poll = std::move(each_poll)] {
      std::unique_lock lock(mu_);
      while (!stopping_) {
        cv_.wait_for(lock, std::chrono::milliseconds(interval_ms), [this] { return stopping_; });
        if (stopping_) break;
        lock.unlock();
        if (Status s = refresh(false); !s && on_error) on_error(s);
        if (each_poll) each_poll();
        lock.lock();
      }
    });
  }

  // Stops the poller and waits for it (a no-op when it is not running).
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (poller_.joinable()) poller_.join();
  }

 private:
  struct ThreadView {
    const PolledSnapshot* owner = nullptr;
    uint64_t generation = 0;
    std::shared_ptr<const T> snap;
  };
  static inline thread_local ThreadView t_view_;
  // Moved after every swap of any PolledSnapshot<T> and when one is made,
  // so a thread's view is never taken for a newer one, nor for another
  // instance's (one made where a destroyed one was included).
  static inline std::atomic<uint64_t> generation_{1};

  Source source_;  // guarded by refresh_mu_
  std::atomic<std::shared_ptr<const T>> snap_{std::make_shared<const T>()};
  std::atomic<int64_t> counter_{-1};
  std::mutex refresh_mu_;  // one refresh at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread poller_;
};

// A hierarchy node and the nodes above it, root first, as the kernel's
// identity service says (opk.identity/1 node_path, ABI 1.6; before it, the
// node alone), kept by each calling thread for a minute: a lookup by scope
// on a hot path asks the kernel once a minute per scope and thread. `Tag`
// keeps one plugin's cache apart from another's (the plugin's snapshot
// type will do). Bounded: at most 10,000 scopes per thread.
template <typename Tag>
class NodeAncestry {
 public:
  explicit NodeAncestry(const Host& host) : host_(host) {}

  // `scope` and the nodes above it, root first. Valid until the thread's
  // next call.
  const std::vector<std::string>& of(std::string_view scope) const {
    Cache& t = t_cache_;
    if (t.owner != this) {
      t.nodes.clear();
      t.owner = this;
    }
    const int64_t now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    auto it = t.nodes.find(scope);
    if (it != t.nodes.end() && now - it->second.read_ms < 60'000) return it->second.nodes;
    std::vector<std::string> nodes = {std::string(scope)};
    const auto* id = host_.extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    if (id && OPK_HAS_MEMBER(opk_identity_v1, id->struct_size, node_path) && id->node_path) {
      char* path = nullptr;
      if (id->node_path(host_.raw(), std::string(scope).c_str(), &path) == OPK_OK && path) {
        const Json doc = Json::parse(path, nullptr, false);
        if (doc.is_array()) {
          nodes.clear();
          for (const auto& n : doc)
            if (n.is_string()) nodes.push_back(n.get<std::string>());
        }
      }
      if (path) host_.free(path);
    }
    if (it == t.nodes.end()) {
      if (t.nodes.size() >= 10'000) t.nodes.clear();  // scopes are few
      it = t.nodes.emplace(std::string(scope), Entry{}).first;
    }
    it->second = {std::move(nodes), now};
    return it->second.nodes;
  }

 private:
  struct Entry {
    std::vector<std::string> nodes;
    int64_t read_ms = 0;  // steady clock
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Cache {
    const NodeAncestry* owner = nullptr;
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> nodes;
  };
  static inline thread_local Cache t_cache_;

  Host host_;
};

}  // namespace opk

#endif  // OPSKERNEL_POLLED_SNAPSHOT_HPP
