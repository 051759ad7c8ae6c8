// Redis through hiredis's blocking API: one connection per purge (AUTH and
// SELECT first), SCAN cursor MATCH pattern COUNT batch, UNLINK of each batch
// after the token bucket lets it go.
#include "redis.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

namespace opk::cachepurge {
namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisConnection = std::unique_ptr<redisContext, ContextFree>;
using RedisReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

std::string server_label(const RedisServer& s) {
  return "redis server '" + s.name + "' (" + s.address + ":" + std::to_string(s.port) + ")";
}

// Sends argv; a NULL reply (connection gone) is UNAVAILABLE, an error
// reply FAILED, each naming the server and `stage`.
Status redis_call(redisContext* c, const RedisServer& s, const std::string& stage, const std::vector<std::string>& args,
                  RedisReplyPtr* out) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (r == nullptr)
    return Status::unavailable(server_label(s) + ": " + stage + ": " + (c->errstr[0] ? c->errstr : "no answer"));
  out->reset(r);
  if (r->type == REDIS_REPLY_ERROR)
    return Status::error(server_label(s) + ": " + stage + ": Redis answered " + std::string(r->str, r->len));
  return Status::ok();
}

Status redis_connect(const RedisServer& s, RedisConnection* out) {
  timeval tv{};
  tv.tv_sec = s.timeout_ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>((s.timeout_ms % 1000) * 1000);
  RedisConnection c(redisConnectWithTimeout(s.address.c_str(), s.port, tv));
  if (!c) return Status::unavailable(server_label(s) + ": connect: out of memory");
  if (c->err) return Status::unavailable(server_label(s) + ": connect: " + c->errstr);
  if (redisSetTimeout(c.get(), tv) != REDIS_OK)
    return Status::unavailable(server_label(s) + ": connect: cannot set the timeout");
  RedisReplyPtr r;
  if (!s.password_file.empty()) {
    std::ifstream in(s.password_file);
    std::string password;
    if (!in || !std::getline(in, password) || password.empty())
      return Status::unavailable(server_label(s) + ": password_file " + s.password_file +
                                 ": cannot be read or its first line is empty");
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (Status st = redis_call(c.get(), s, "AUTH", {"AUTH", password}, &r); !st) return st;
  }
  if (s.db != 0)
    if (Status st = redis_call(c.get(), s, "SELECT", {"SELECT", std::to_string(s.db)}, &r); !st) return st;
  *out = std::move(c);
  return Status::ok();
}

}  // namespace

TokenBucket::TokenBucket(double rate, double burst)
    : rate_(rate),
      burst_(std::max(burst, 1.0)),
      tokens_(std::max(burst, 1.0)),
      last_(std::chrono::steady_clock::now()) {}

bool TokenBucket::take(uint64_t n, const std::function<bool()>& cancelled) {
  // Tokens may go below zero: the debt is waited off before returning, so
  // over any stretch the keys let through stay within rate * time + burst.
  const auto now = std::chrono::steady_clock::now();
  tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
  last_ = now;
  tokens_ -= static_cast<double>(n);
  while (tokens_ < 0) {
    if (cancelled && cancelled()) return false;
    const double wait_s = std::min(-tokens_ / rate_, 0.05);
    std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
    const auto t = std::chrono::steady_clock::now();
    tokens_ += std::chrono::duration<double>(t - last_).count() * rate_;
    last_ = t;
  }
  return !(cancelled && cancelled());
}

Status ping_redis(const RedisServer& server) {
  RedisConnection c;
  if (Status s = redis_connect(server, &c); !s) return s;
  RedisReplyPtr r;
  return redis_call(c.get(), server, "PING", {"PING"}, &r);
}

Status count_redis_keys(const RedisServer& server, uint64_t* keys) {
  *keys = 0;
  RedisConnection c;
  if (Status s = redis_connect(server, &c); !s) return s;
  RedisReplyPtr r;
  if (Status s = redis_call(c.get(), server, "DBSIZE", {"DBSIZE"}, &r); !s) return s;
  if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
    return Status::error(server_label(server) + ": DBSIZE: an answer that is not a count");
  *keys = static_cast<uint64_t>(r->integer);
  return Status::ok();
}

Status purge_redis(const RedisServer& server, const PurgeOptions& o, PurgeCounts* counts) {
  *counts = {};
  const auto started = std::chrono::steady_clock::now();
  auto finish = [&](Status s) {
    counts->duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    return s;
  };
  RedisConnection c;
  if (Status s = redis_connect(server, &c); !s) return finish(s);
  TokenBucket bucket(o.keys_per_second, std::min<double>(o.batch, o.keys_per_second));
  std::string cursor = "0";
  const std::string count = std::to_string(o.batch);
  do {
    if (o.cancelled && o.cancelled()) return finish(Status::cancelled());
    RedisReplyPtr r;
    if (Status s = redis_call(c.get(), server, "SCAN", {"SCAN", cursor, "MATCH", o.pattern, "COUNT", count}, &r); !s)
      return finish(s);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
      return finish(Status::error(server_label(server) + ": SCAN: an answer that is not [cursor, keys]"));
    cursor.assign(r->element[0]->str, r->element[0]->len);
    ++counts->batches;
    const redisReply* keys = r->element[1];
    counts->matched += keys->elements;
    if (!o.dry_run && keys->elements > 0) {
      if (!bucket.take(keys->elements, o.cancelled)) return finish(Status::cancelled());
      std::vector<std::string> args{"UNLINK"};
      for (size_t i = 0; i < keys->elements; ++i) args.emplace_back(keys->element[i]->str, keys->element[i]->len);
      RedisReplyPtr u;
      if (Status s = redis_call(c.get(), server, "UNLINK", args, &u); !s) return finish(s);
      if (u->type == REDIS_REPLY_INTEGER) counts->removed += static_cast<uint64_t>(u->integer);
    }
    if (o.progress) o.progress(*counts);
  } while (cursor != "0");
  return finish(Status::ok());
}

}  // namespace opk::cachepurge
