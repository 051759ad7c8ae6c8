#include "host/answer_cache.h"

namespace opk::host {

bool AnswerCache::find(const std::string& key, uint64_t generation, int64_t now_ms, std::string* answer) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.generation != generation || now_ms - it->second.at_ms >= ttl_ms_ ||
      now_ms < it->second.at_ms)
    return false;
  *answer = it->second.answer;
  return true;
}

void AnswerCache::put(const std::string& key, uint64_t generation, int64_t now_ms, std::string answer) {
  const size_t size = key.size() + answer.size();
  if (size > max_bytes_) return;
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    bytes_ -= key.size() + it->second.answer.size();
    entries_.erase(it);
  }
  // Full: start over. The answers are cheap to rebuild and the keys that
  // matter (the pages being polled) come back at once.
  if (entries_.size() >= max_entries_ || bytes_ + size > max_bytes_) {
    entries_.clear();
    bytes_ = 0;
  }
  bytes_ += size;
  entries_.emplace(key, Entry{generation, now_ms, std::move(answer)});
}

size_t AnswerCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace opk::host
