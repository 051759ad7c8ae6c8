// answer_cache.h -- answers to repeated reads (a console's alert list and
// counts, polled by every open page), kept while the data they were built
// from is unchanged. Internal to kernel/host.
#ifndef OPSKERNEL_KERNEL_HOST_ANSWER_CACHE_H
#define OPSKERNEL_KERNEL_HOST_ANSWER_CACHE_H

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace opk::host {

// A bounded map from a request (whoever asks, and what) to its answer, valid
// while the generation it was built at is current and for at most
// `ttl_ms`. The time limit bounds what a change the generation does not see
// (another kernel on the same store) can hide. Thread-safe.
class AnswerCache {
 public:
  // At most `max_entries` answers of `max_bytes` in all; full, it starts over.
  AnswerCache(int64_t ttl_ms, size_t max_entries, size_t max_bytes)
      : ttl_ms_(ttl_ms), max_entries_(max_entries), max_bytes_(max_bytes) {}

  // True and *answer set when `key` has an answer built at `generation`
  // less than ttl_ms before `now_ms`.
  bool find(const std::string& key, uint64_t generation, int64_t now_ms, std::string* answer) const;
  // Keeps `answer` for `key`, built from data at `generation` (read before
  // the data was) at `now_ms`.
  void put(const std::string& key, uint64_t generation, int64_t now_ms, std::string answer);
  // Answers kept now.
  size_t size() const;

 private:
  struct Entry {
    uint64_t generation = 0;
    int64_t at_ms = 0;
    std::string answer;
  };
  const int64_t ttl_ms_;
  const size_t max_entries_, max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  size_t bytes_ = 0;
};

}  // namespace opk::host

#endif
