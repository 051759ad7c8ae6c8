// A vendor's first test: the plugin on the SDK's test host, no kernel, on
// both stores (docs/abi.md, "Write portable SQL"): SQLite, and PostgreSQL
// on the server OPK_TEST_PG names.
#include <opskernel/testing.hpp>

#include <cstdio>
#include <string>

namespace {

int test_on(const std::string& backend) {
  opk::testing::Host host;
  if (opk::Status s = host.use_store(backend); !s)
    return std::printf("%s: %s\n", backend.c_str(), s.message().c_str()), 5;
  host.add_node("tenant:acme", "platform");
  if (opk::Status s = host.load(VENDOR_PLUGIN); !s) return std::printf("load: %s\n", s.message().c_str()), 1;
  for (int i = 0; i < 2; ++i) {
    auto run = host.run("vendor-check", "{}", {.target_tenant = "acme"});
    if (run.outcome != OPK_OUTCOME_NORMAL || !run.logged("vendor check ran for acme"))
      return std::printf("%s: run: %s %s\n", backend.c_str(), run.summary.c_str(), run.error.c_str()), 2;
  }
  const auto rows = host.store_rows("SELECT runs FROM p_com_acme_alerts_checks WHERE tenant = 'acme'");
  if (rows.size() != 1 || rows[0][0] != "2")
    return std::printf("%s: the plugin's count is not 2\n", backend.c_str()), 6;
  auto e = host.evaluate("acme-disk-quota");
  if (e.status != OPK_OK) return std::printf("evaluate: %s\n", e.error.c_str()), 3;
  if (e.raised.size() != 1 || e.raised[0].scope != "tenant:acme" || e.raised[0].related_id != "acme" ||
      e.raised[0].type != "acme-disk-quota" || e.raised[0].severity != OPK_SEVERITY_WARNING)
    return std::printf("evaluate: expected one warning about tenant:acme, got %zu alert(s)\n", e.raised.size()), 4;
  return 0;
}

}  // namespace

int main() {
  for (const char* backend : {"sqlite", "postgresql"})
    if (int rc = test_on(backend); rc != 0) return rc;
  std::printf("vendor test passed on both stores: vendor ok\n");
  return 0;
}
