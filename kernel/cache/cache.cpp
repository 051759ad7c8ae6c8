// The cache: one LRU list across namespaces (so the memory bound is shared),
// each namespace a map from key to its list node. Expired entries are
// dropped when met (a get, a purge) or evicted as the least recently used.
#include "cache/cache.h"

#include <algorithm>
#include <vector>

namespace opk::cache {
namespace {

// Matches the set at pattern[*p] ('[' already consumed) against byte c,
// leaving *p after the closing ']'.
bool cache_glob_set(std::string_view pattern, size_t* p, unsigned char c) {
  size_t i = *p;
  bool negate = false;
  if (i < pattern.size() && (pattern[i] == '^' || pattern[i] == '!')) {
    negate = true;
    ++i;
  }
  bool hit = false;
  bool first = true;
  while (i < pattern.size() && (first || pattern[i] != ']')) {
    first = false;
    unsigned char lo = static_cast<unsigned char>(pattern[i]);
    if (lo == '\\' && i + 1 < pattern.size()) lo = static_cast<unsigned char>(pattern[++i]);
    unsigned char hi = lo;
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      hi = static_cast<unsigned char>(pattern[i + 2]);
      if (hi == '\\' && i + 3 < pattern.size()) hi = static_cast<unsigned char>(pattern[++i + 2]);
      i += 2;
      if (lo > hi) std::swap(lo, hi);
    }
    if (c >= lo && c <= hi) hit = true;
    ++i;
  }
  *p = i < pattern.size() ? i + 1 : i;  // past ']' (an unclosed set ends the pattern)
  return hit != negate;
}

std::string cache_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matching with one backtrack point for the last '*'.
  size_t p = 0, t = 0, star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        star_p = ++p;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        size_t q = p + 1;
        if (cache_glob_set(pattern, &q, static_cast<unsigned char>(text[t]))) {
          p = q;
          ++t;
          continue;
        }
      } else {
        size_t q = p;
        char want = pc;
        if (pc == '\\' && p + 1 < pattern.size()) want = pattern[++q];
        if (want == text[t]) {
          p = q + 1;
          ++t;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Cache::Cache(Options options, std::function<int64_t()> now_ms) : options_(options), now_ms_(std::move(now_ms)) {}

Status Cache::get(const std::string& ns, const std::string& key, std::string* value) {
  const int64_t now = now_ms_();
  std::lock_guard lock(mu_);
  auto& space = spaces_[ns];
  auto it = space.keys.find(key);
  if (it == space.keys.end()) {
    ++space.stats.misses;
    return Status::not_found("key '" + key + "' is not cached");
  }
  if (expired(*it->second, now)) {
    ++space.stats.misses;
    ++space.stats.expirations;
    remove_locked(it->second);
    return Status::not_found("key '" + key + "' has expired");
  }
  ++space.stats.hits;
  lru_.splice(lru_.begin(), lru_, it->second);
  if (value) *value = it->second->value;
  return Status::ok();
}

Status Cache::put(const std::string& ns, const std::string& key, std::string_view value, int64_t ttl_ms) {
  if (key.empty() || key.size() > kMaxKey)
    return Status::invalid("key: required, at most " + std::to_string(kMaxKey) + " bytes");
  if (ttl_ms < 0) return Status::invalid("ttl_ms: " + std::to_string(ttl_ms) + " is negative");
  const uint64_t size = key.size() + value.size() + kEntryOverhead;
  const uint64_t bound = std::min(options_.max_entry_bytes, options_.max_bytes);
  const int64_t now = now_ms_();
  std::lock_guard lock(mu_);
  auto& space = spaces_[ns];
  if (size > bound) {
    ++space.stats.refused;
    return Status::invalid("value: the entry takes " + std::to_string(size) + " bytes, above the bound of " +
                           std::to_string(bound) + " ([cache] max_entry_bytes)");
  }
  if (auto it = space.keys.find(key); it != space.keys.end()) remove_locked(it->second);
  while (!lru_.empty() && bytes_ + size > options_.max_bytes) {
    auto victim = std::prev(lru_.end());
    auto& vs = spaces_[victim->ns].stats;
    if (expired(*victim, now))
      ++vs.expirations;
    else
      ++vs.evictions;
    remove_locked(victim);
  }
  lru_.push_front(Entry{ns, key, std::string(value), ttl_ms == 0 ? 0 : now + ttl_ms, size});
  space.keys[key] = lru_.begin();
  space.stats.entries++;
  space.stats.bytes += size;
  space.stats.puts++;
  bytes_ += size;
  return Status::ok();
}

Status Cache::erase(const std::string& ns, const std::string& key) {
  std::lock_guard lock(mu_);
  auto sp = spaces_.find(ns);
  if (sp == spaces_.end()) return Status::not_found("key '" + key + "' is not cached");
  auto it = sp->second.keys.find(key);
  if (it == sp->second.keys.end()) return Status::not_found("key '" + key + "' is not cached");
  remove_locked(it->second);
  return Status::ok();
}

Status Cache::purge(const std::string& ns, const std::string& pattern, bool dry_run, uint64_t* count) {
  if (pattern.empty()) return Status::invalid("pattern: required (a key or a glob such as 'user:*')");
  const int64_t now = now_ms_();
  uint64_t n = 0;
  std::lock_guard lock(mu_);
  auto sp = spaces_.find(ns);
  if (sp != spaces_.end()) {
    std::vector<Lru::iterator> hits;
    std::vector<Lru::iterator> stale;
    for (const auto& [key, it] : sp->second.keys) {
      if (expired(*it, now))
        stale.push_back(it);
      else if (glob_match(pattern, key))
        hits.push_back(it);
    }
    n = hits.size();
    if (!dry_run) {
      for (auto it : stale) {
        ++sp->second.stats.expirations;
        remove_locked(it);
      }
      for (auto it : hits) remove_locked(it);
      sp->second.stats.purged += n;
    }
  }
  if (count) *count = n;
  return Status::ok();
}

void Cache::drop(const std::string& ns) {
  std::lock_guard lock(mu_);
  auto sp = spaces_.find(ns);
  if (sp == spaces_.end()) return;
  std::vector<Lru::iterator> all;
  for (const auto& [key, it] : sp->second.keys) all.push_back(it);
  for (auto it : all) remove_locked(it);
}

void Cache::remove_locked(Lru::iterator it) {
  auto& space = spaces_[it->ns];
  space.keys.erase(it->key);
  space.stats.entries--;
  space.stats.bytes -= it->bytes;
  bytes_ -= it->bytes;
  lru_.erase(it);
}

std::map<std::string, Stats> Cache::stats() const {
  std::lock_guard lock(mu_);
  std::map<std::string, Stats> out;
  for (const auto& [ns, space] : spaces_) out[ns] = space.stats;
  return out;
}

uint64_t Cache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

std::string Cache::metrics() const {
  const auto all = stats();
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, uint64_t Stats::*field) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& [ns, s] : all)
      out += std::string(name) + "{plugin=\"" + cache_label(ns) + "\"} " + std::to_string(s.*field) + "\n";
  };
  family("opskernel_cache_hits_total", "counter", "Cache gets that found a live entry.", &Stats::hits);
  family("opskernel_cache_misses_total", "counter", "Cache gets that found no entry or an expired one.",
         &Stats::misses);
  family("opskernel_cache_evictions_total", "counter", "Entries evicted to stay within [cache] max_bytes.",
         &Stats::evictions);
  family("opskernel_cache_expirations_total", "counter", "Entries dropped after their TTL.", &Stats::expirations);
  family("opskernel_cache_purged_total", "counter", "Entries removed by a purge.", &Stats::purged);
  family("opskernel_cache_refused_total", "counter", "Puts refused for an entry above [cache] max_entry_bytes.",
         &Stats::refused);
  family("opskernel_cache_entries", "gauge", "Entries held.", &Stats::entries);
  family("opskernel_cache_bytes", "gauge", "Bytes held (keys, values and overhead).", &Stats::bytes);
  out += "# HELP opskernel_cache_max_bytes The bound on the bytes all namespaces hold ([cache] max_bytes).\n";
  out +=
      "# TYPE opskernel_cache_max_bytes gauge\nopskernel_cache_max_bytes " + std::to_string(options_.max_bytes) + "\n";
  return out;
}

}  // namespace opk::cache
