// cache.h -- the kernel's in-process cache behind "opk.cache/1" (docs/cache.md):
// entries by namespace (a plugin's id) and key, each with an optional expiry
// read from a clock the owner gives, under one bound on memory shared by every
// namespace: the least recently used entry goes first when a put would pass
// it, and an entry larger than the per-entry bound is refused. Hits, misses,
// evictions, expirations and purges are counted per namespace. Keys are
// purged one by one or by a Redis-style glob. Depends on the standard library
// only, so the SDK's test host serves the same cache. Thread-safe.
#ifndef OPSKERNEL_KERNEL_CACHE_CACHE_H
#define OPSKERNEL_KERNEL_CACHE_CACHE_H

#include <opskernel/status.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace opk::cache {

// True when `text` matches the Redis-style glob `pattern`: '*' any run,
// '?' one byte, [abc], [^a-c] (or [!a-c]) a set, '\' escapes the next byte.
bool glob_match(std::string_view pattern, std::string_view text);

// Bytes an entry is charged besides its key and value (list and map nodes).
inline constexpr uint64_t kEntryOverhead = 96;
// Longest key, in bytes.
inline constexpr size_t kMaxKey = 1024;

// Bounds of a cache ([cache] in the configuration).
struct Options {
  // Bytes all entries may take together (key + value + kEntryOverhead each).
  uint64_t max_bytes = 64ull << 20;
  // Bytes one entry may take; a larger put is refused. Capped at max_bytes.
  uint64_t max_entry_bytes = 1ull << 20;
};

// Counters and sizes of one namespace.
struct Stats {
  uint64_t entries = 0, bytes = 0;
  uint64_t hits = 0, misses = 0, puts = 0, evictions = 0, expirations = 0, purged = 0, refused = 0;
};

class Cache {
 public:
  // A cache reading the time (ms since the epoch) from `now_ms`.
  Cache(Options options, std::function<int64_t()> now_ms);
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // The value of `key` in namespace `ns`; NOT_FOUND when there is none or
  // it has expired (counted as a miss).
  Status get(const std::string& ns, const std::string& key, std::string* value);
  // Stores `value` under `key` in `ns`, replacing any, expiring `ttl_ms`
  // from now (0: only when evicted). Evicts the least recently used entries
  // of any namespace to stay within max_bytes. INVALID_ARGUMENT naming the
  // field for a bad key, a negative ttl or an entry above max_entry_bytes.
  Status put(const std::string& ns, const std::string& key, std::string_view value, int64_t ttl_ms);
  // Removes `key` from `ns`; NOT_FOUND when it has none.
  Status erase(const std::string& ns, const std::string& key);
  // Removes (or with `dry_run`, only counts) the live entries of `ns` whose
  // key matches glob `pattern`; *count gets how many. INVALID_ARGUMENT for
  // an empty pattern.
  Status purge(const std::string& ns, const std::string& pattern, bool dry_run, uint64_t* count);
  // Removes every entry of `ns` (a plugin that stops); its counters stay.
  void drop(const std::string& ns);

  // Every namespace that has held an entry, with its counters.
  std::map<std::string, Stats> stats() const;
  // Bytes held by all namespaces.
  uint64_t bytes() const;
  const Options& options() const { return options_; }
  // The counters as Prometheus text (opskernel_cache_*), labelled by plugin.
  std::string metrics() const;

 private:
  struct Entry {
    std::string ns, key, value;
    int64_t expires_ms = 0;  // 0: never
    uint64_t bytes = 0;
  };
  using Lru = std::list<Entry>;  // most recently used first
  struct Space {
    std::unordered_map<std::string, Lru::iterator> keys;
    Stats stats;
  };

  // Removes `it` from the LRU list and its namespace. REQUIRES: mu_ held.
  void remove_locked(Lru::iterator it);
  bool expired(const Entry& e, int64_t now) const { return e.expires_ms != 0 && e.expires_ms <= now; }

  const Options options_;
  const std::function<int64_t()> now_ms_;
  mutable std::mutex mu_;  // guards everything below
  Lru lru_;
  std::map<std::string, Space> spaces_;
  uint64_t bytes_ = 0;
};

}  // namespace opk::cache

#endif  // OPSKERNEL_KERNEL_CACHE_CACHE_H
