// redis.h -- purge of one Redis server's keys by glob pattern, for the
// cache-purge plugin (docs/cache.md): SCAN MATCH walks the keyspace a batch
// at a time (never KEYS, which blocks the server) and UNLINK removes each
// batch (freed in the server's background), paced by a token bucket so a
// purge never removes more than keys_per_second keys a second and cannot
// start a thundering herd of cache misses. A dry run only counts.
#ifndef OPSKERNEL_PLUGINS_CACHE_PURGE_REDIS_H
#define OPSKERNEL_PLUGINS_CACHE_PURGE_REDIS_H

#include <opskernel/status.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace opk::cachepurge {

// One Redis server of [plugin.cache-purge].
struct RedisServer {
  std::string name;  // [a-z0-9-]{1,32}, as the API names it
  std::string address = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password_file;  // first line is the password; empty: none
  int64_t timeout_ms = 5000;  // connect and each command
};

// What a purge did (or, for a dry run, would do).
struct PurgeCounts {
  uint64_t matched = 0;  // keys SCAN returned for the pattern
  uint64_t removed = 0;  // keys UNLINK removed (0 for a dry run)
  uint64_t batches = 0;  // SCAN calls
  int64_t duration_ms = 0;
};

// Paces a purge at `rate` keys a second: take(n) returns once n more keys
// fit, the bucket holding at most `burst` keys' worth of tokens.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst);
  // Waits until `n` keys may go; false when `cancelled` became true first.
  bool take(uint64_t n, const std::function<bool()>& cancelled);

 private:
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_;
};

// Options of one purge.
struct PurgeOptions {
  std::string pattern;  // a Redis glob
  bool dry_run = false;
  double keys_per_second = 10000;
  uint32_t batch = 500;                              // SCAN's COUNT and the most keys per UNLINK
  std::function<bool()> cancelled;                   // may be empty
  std::function<void(const PurgeCounts&)> progress;  // after each batch; may be empty
};

// Purges (or counts) the keys of `server` matching options.pattern.
// UNAVAILABLE naming the server, the stage and Redis's reason when it
// cannot be reached or stops answering; FAILED with Redis's error for an
// error reply; CANCELLED when options.cancelled turned true. *counts holds
// what was done until then in every case.
Status purge_redis(const RedisServer& server, const PurgeOptions& options, PurgeCounts* counts);

// PING: OK, or why the server cannot be used (as purge_redis says it).
Status ping_redis(const RedisServer& server);

// DBSIZE: how many keys the server's database holds now, into *keys (a
// purge run's progress is the share of them SCAN has walked).
Status count_redis_keys(const RedisServer& server, uint64_t* keys);

}  // namespace opk::cachepurge

#endif  // OPSKERNEL_PLUGINS_CACHE_PURGE_REDIS_H
