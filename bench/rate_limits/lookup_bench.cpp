// Rate-limit lookup benchmark: what the overrides cost admin-http per
// request. On the SDK's test host, rate-limit-overrides and the probe
// plugin of its tests (tests/plugins/rate-limit-overrides/
// rate_limit_probe.cpp) run the probe's job rate-bench, which makes the two
// lookups admin-http makes per request (the client address's, the user
// scope's) through opskernel.rate-limits/1 `lookups` times on one thread.
// Two cases: no override, and 1,000 active overrides (990 address
// overrides over /32, /24, /16 and IPv6 /64 and /128 blocks that miss the
// client, 10 on the platform node that raise the user's limit, so the scope
// lookup walks the node's ancestry). Prints, per case, min / median / max
// of 3 rounds in ns per request, and the process's peak RSS.
//   opk_rate_limit_lookup_bench [--lookups N]
#include <opskernel/json.hpp>
#include <opskernel/opk.hpp>
#include <opskernel/testing.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "support/bench_util.h"

namespace {

using opk::Json;
using opk::bench::die;
using opk::bench::peak_rss_mib;
using opk::bench::print;

// The target of override `i` of the 1,000.
std::string bench_target(int i) {
  char buf[64];
  switch (i % 5) {
    case 0:
      std::snprintf(buf, sizeof buf, "10.%d.%d.7/32", i / 250, i % 250);
      break;
    case 1:
      std::snprintf(buf, sizeof buf, "10.%d.%d.0/24", i / 250, i % 250);
      break;
    case 2:
      std::snprintf(buf, sizeof buf, "172.%d.0.0/16", 16 + i % 16);
      break;
    case 3:
      std::snprintf(buf, sizeof buf, "2001:db8:%x::/64", i);
      break;
    default:
      std::snprintf(buf, sizeof buf, "2001:db8::%x/128", i);
  }
  return buf;
}

// One round: a fresh host with `overrides` active; ns per request.
double bench_round(int overrides, int64_t lookups) {
  opk::testing::Host host;
  opk::Status s = host.load(std::string(OPK_BENCH_BUNDLED_PLUGIN_DIR) + "/rate-limit-overrides.so");
  if (s) s = host.load(std::string(OPK_BENCH_PLUGIN_DIR) + "/bench_rate_limit_probe.so");
  if (!s) die("loading the plugins: " + s.message());
  for (int i = 0; i < overrides; ++i) {
    Json body = {{"limit", 5000}, {"reason", "bench"}, {"duration", "6h"}};
    if (i < 10) {
      body["tenant"] = "platform";
      body["limit"] = 2000000;
    } else {
      body["address"] = bench_target(i);
    }
    const auto r = host.request("POST", "/api/v1/rate-limit-overrides", body.dump());
    if (r.status != 201) die("override " + std::to_string(i) + ": " + r.body);
  }
  const auto r =
      host.run("rate-bench", Json{{"address", "127.0.0.1"}, {"scope", "platform"}, {"lookups", lookups}}.dump());
  if (r.status != OPK_OK) die("rate-bench: " + r.error);
  const Json out = Json::parse(r.output_json);
  const int64_t want = overrides ? 2000000 * lookups : 0;
  if (out["sum"].get<int64_t>() != want) die("the lookups did not see the overrides: " + r.output_json);
  return out["ns_per_request"].get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  opk::bench::program_name = "opk_rate_limit_lookup_bench";
  int64_t lookups = 2'000'000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--lookups") == 0 && i + 1 < argc)
      lookups = std::atoll(argv[++i]);
    else
      die(std::string("unknown argument ") + argv[i] + " (usage: opk_rate_limit_lookup_bench [--lookups N])");
  }
  std::printf("rate-limit lookups per request (address and scope), %lld requests a round, 3 rounds:\n",
              static_cast<long long>(lookups));
  std::vector<double> none, thousand;
  for (int round = 0; round < 3; ++round) {
    none.push_back(bench_round(0, lookups));
    thousand.push_back(bench_round(1000, lookups));
  }
  print("no override", none, "ns/request");
  print("1,000 active overrides", thousand, "ns/request");
  std::printf("  peak RSS %.1f MiB\n", peak_rss_mib());
  return 0;
}
