// rate_limit_probe: a plugin reading the rate-limit overrides through
// opskernel.rate-limits/1 as admin-http does, for the rate-limit-overrides
// tests on the SDK's test host. It offers
//   job rate-lookup  {"address"?, "scope"?}: the output is
//                    {"available", "address", "address_until_ms", "scope",
//                     "scope_until_ms"} (limits per minute; -1 none; 0 no
//                    override)
//   job rate-bench   {"address", "scope", "lookups"}: times `lookups` pairs
//                    of lookups (the address's and the scope's, as
//                    admin-http makes per request); the output is
//                    {"ns_per_request", "sum"}
#include <opskernel/rate_limits.h>

#include <chrono>
#include <opskernel/opk.hpp>

namespace {

using opk::Json;
using opk::Status;

const char* const kProbeSchema = R"json({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "address": {"type": "string"},
    "scope": {"type": "string"},
    "lookups": {"type": "integer", "minimum": 1, "maximum": 1000000000}
  }
})json";

class Probe : public opk::Plugin {
 public:
  explicit Probe(opk::Host host) : Plugin(host) {}
};

class Lookup : public opk::Job {
 public:
  explicit Lookup(opk::Plugin& p) : p_(p) {}
  Status run(opk::RunContext& run) override {
    const auto* ext = p_.host().extension<opk_rate_limits_v1>(OPK_EXT_RATE_LIMITS);
    Json out = {{"available", ext != nullptr}};
    if (ext) {
      int64_t until = -7;
      const std::string address = run.param<std::string>("address", "");
      if (!address.empty()) {
        out["address"] = ext->for_address(p_.host().raw(), address.c_str(), &until);
        out["address_until_ms"] = until;
      }
      const std::string scope = run.param<std::string>("scope", "");
      if (!scope.empty()) {
        until = -7;
        out["scope"] = ext->for_scope(p_.host().raw(), scope.c_str(), &until);
        out["scope_until_ms"] = until;
      }
    }
    run.set_output(out);
    return Status::ok();
  }

 private:
  opk::Plugin& p_;
};

class Bench : public opk::Job {
 public:
  explicit Bench(opk::Plugin& p) : p_(p) {}
  Status run(opk::RunContext& run) override {
    const auto* ext = p_.host().extension<opk_rate_limits_v1>(OPK_EXT_RATE_LIMITS);
    if (!ext) return Status::unavailable("no rate-limit overrides");
    const std::string address = run.param<std::string>("address", "127.0.0.1");
    const std::string scope = run.param<std::string>("scope", "platform");
    const int64_t lookups = run.param<int64_t>("lookups", 1000000);
    int64_t sum = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < lookups; ++i)
      sum += ext->for_address(p_.host().raw(), address.c_str(), nullptr) +
             ext->for_scope(p_.host().raw(), scope.c_str(), nullptr);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
    run.set_output(
        Json{{"ns_per_request", static_cast<double>(ns.count()) / static_cast<double>(lookups)}, {"sum", sum}});
    return Status::ok();
  }

 private:
  opk::Plugin& p_;
};

opk::Manifest describe() {
  opk::Manifest m("rate-limit-probe", "Rate-limit probe", "1.0.0", "Opskernel tests",
                  "Reads the rate-limit overrides as admin-http does");
  m.job<Lookup>({.id = "rate-lookup",
                 .title = "rate-lookup",
                 .capabilities = opk::kManualRun,
                 .params_schema_json = kProbeSchema});
  m.job<Bench>(
      {.id = "rate-bench", .title = "rate-bench", .capabilities = opk::kManualRun, .params_schema_json = kProbeSchema});
  m.requires_extension(OPK_EXT_RATE_LIMITS, true);
  return m;
}

}  // namespace

OPK_PLUGIN(Probe, describe);
