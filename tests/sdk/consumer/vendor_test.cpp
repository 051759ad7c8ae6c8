// A vendor's first test: the plugin on the SDK's test host, no kernel.
#include <opskernel/testing.hpp>

#include <cstdio>

int main() {
  opk::testing::Host host;
  if (opk::Status s = host.load(VENDOR_PLUGIN); !s) return std::printf("load: %s\n", s.message().c_str()), 1;
  auto run = host.run("vendor-check", "{}", {.target_tenant = "acme"});
  if (run.outcome != OPK_OUTCOME_NORMAL || !run.logged("vendor check ran for acme")) return 2;
  auto alerts = host.evaluate("com.example.quota");
  if (alerts.raised.size() != 1 || alerts.raised[0].related_id != "acme") return 3;
  std::printf("vendor test passed: %s\n", run.summary.c_str());
  return 0;
}
