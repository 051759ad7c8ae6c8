// cache_consumer: a plugin using the kernel's cache through opk::Cache as any
// plugin would, for the cache tests. Its routes (any authenticated caller):
//   PUT    /api/v1/cache-consumer/{key}?ttl_ms=N   stores the body (200, or the refusal)
//   GET    /api/v1/cache-consumer/{key}            200 with the value, 404 when not cached
//   POST   /api/v1/cache-consumer/purge?pattern=P&dry_run=1   {"count"}
#include <opskernel/opk.hpp>

#include <string>

namespace {

using opk::Json;
using opk::Status;

class CacheConsumer : public opk::Plugin {
 public:
  explicit CacheConsumer(opk::Host host) : Plugin(host) {}

  Status start() override {
    Status s = add_route("cache-consumer", "PUT", "/api/v1/cache-consumer/{key}", "Put a value",
                         [this](const opk::Request& rq, opk::Response& rs) {
                           const int64_t ttl = std::stoll(std::string(rq.query("ttl_ms").value_or("0")));
                           const Status put = opk::Cache(host()).put(rq.path_param("key").value_or(""), rq.body(), ttl);
                           if (!put) return rs.problem(put), Status::ok();
                           rs.status(200).json(Json{{"stored", true}});
                           return Status::ok();
                         });
    if (s)
      s = add_route("cache-consumer", "GET", "/api/v1/cache-consumer/{key}", "Get a value",
                    [this](const opk::Request& rq, opk::Response& rs) {
                      std::string v;
                      const Status got = opk::Cache(host()).get(rq.path_param("key").value_or(""), &v);
                      if (!got) return rs.problem(got), Status::ok();
                      rs.status(200).body(v);
                      return Status::ok();
                    });
    if (s)
      s = add_route("cache-consumer", "POST", "/api/v1/cache-consumer/purge", "Purge own keys",
                    [this](const opk::Request& rq, opk::Response& rs) {
                      uint64_t n = 0;
                      const Status p = opk::Cache(host()).purge(rq.query("pattern").value_or(""),
                                                                rq.query("dry_run").has_value(), &n);
                      if (!p) return rs.problem(p), Status::ok();
                      rs.status(200).json(Json{{"count", n}});
                      return Status::ok();
                    });
    return s;
  }
};

opk::Manifest describe() {
  opk::Manifest m("cache-consumer", "Cache consumer", "1.0.0", "Opskernel tests",
                  "Puts, gets and purges its own entries of the kernel's cache");
  m.admin_feature({.id = "cache-consumer",
                   .title = "Cache consumer",
                   .description = "Test routes",
                   .translations = {},
                   .permissions = {}});
  return m;
}

}  // namespace

OPK_PLUGIN(CacheConsumer, describe);
