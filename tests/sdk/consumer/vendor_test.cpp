// A vendor's first test: the plugin on the SDK's test host, no kernel.
#include <opskernel/testing.hpp>

#include <cstdio>

int main() {
  opk::testing::Host host;
  host.add_node("tenant:acme", "platform");
  if (opk::Status s = host.load(VENDOR_PLUGIN); !s) return std::printf("load: %s\n", s.message().c_str()), 1;
  auto run = host.run("vendor-check", "{}", {.target_tenant = "acme"});
  if (run.outcome != OPK_OUTCOME_NORMAL || !run.logged("vendor check ran for acme")) return 2;
  auto e = host.evaluate("acme-disk-quota");
  if (e.status != OPK_OK) return std::printf("evaluate: %s\n", e.error.c_str()), 3;
  if (e.raised.size() != 1 || e.raised[0].scope != "tenant:acme" || e.raised[0].related_id != "acme" ||
      e.raised[0].type != "acme-disk-quota" || e.raised[0].severity != OPK_SEVERITY_WARNING)
    return std::printf("evaluate: expected one warning about tenant:acme, got %zu alert(s)\n", e.raised.size()), 4;
  std::printf("vendor test passed: %s\n", run.summary.c_str());
  return 0;
}
