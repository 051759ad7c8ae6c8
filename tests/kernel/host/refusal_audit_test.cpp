// What the audit trail keeps of refused requests: long fields cut, a quota
// of rows per address and window, the rest summed up in one row.
#include "host/refusal_audit.h"

#include <gtest/gtest.h>

namespace opk::host {
namespace {

store::AuditRow refusal(const std::string& source, const std::string& target, int status = 401) {
  store::AuditRow a;
  a.actor = "anonymous";
  a.action = "http POST";
  a.target = target;
  a.outcome = "refused: " + std::to_string(status) + " no token";
  a.source = source;
  return a;
}

TEST(RefusalAudit, LongFieldsAreCutAtACharacterBoundary) {
  RefusalAudit audit;
  auto rows = audit.refused(refusal("10.0.0.1:5000", "/" + std::string(15000, 'x')), 0);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_LE(rows[0].target.size(), 256u + 32u);
  EXPECT_NE(rows[0].target.find("(15001 bytes)"), std::string::npos) << rows[0].target;
  // A cut never splits a character: "é" is two bytes.
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "\xc3\xa9";
  const std::string cut = cut_text(accents, 255);
  EXPECT_EQ(cut.substr(0, 254), accents.substr(0, 254));
  EXPECT_EQ(cut.substr(254, 4), "... ");
}

TEST(RefusalAudit, PastTheQuotaRefusalsAreCountedAndSummedUpOnce) {
  RefusalLimits limits;
  limits.rows_per_window = 5;
  limits.window_ms = 60000;
  RefusalAudit audit(limits);
  size_t written = 0;
  for (int i = 0; i < 300; ++i)
    written += audit.refused(refusal("10.0.0.1:" + std::to_string(4000 + i), "/x"), i).size();
  EXPECT_EQ(written, 5u);
  // Another address has its own quota.
  EXPECT_EQ(audit.refused(refusal("10.0.0.2:1", "/y"), 400).size(), 1u);
  // The window ends: the next refusal brings the summary of the last one.
  auto rows = audit.refused(refusal("10.0.0.1:9", "/x", 404), 60001);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].action, "http refused");
  EXPECT_EQ(rows[0].target, "10.0.0.1");
  EXPECT_NE(rows[0].outcome.find("295 more request(s) from 10.0.0.1"), std::string::npos) << rows[0].outcome;
  EXPECT_NE(rows[0].outcome.find("401 x295"), std::string::npos) << rows[0].outcome;
  EXPECT_EQ(rows[1].target, "/x");  // the new window's first row
  // At shutdown, open windows with counted refusals are summed up.
  for (int i = 0; i < 10; ++i) audit.refused(refusal("10.0.0.3:1", "/z", 403), 61000);
  auto left = audit.flush(62000);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_NE(left[0].outcome.find("5 more request(s) from 10.0.0.3"), std::string::npos) << left[0].outcome;
  EXPECT_TRUE(audit.flush(63000).empty());
}

TEST(RefusalAudit, ManyAddressesKeepMemoryBounded) {
  RefusalLimits limits;
  limits.rows_per_window = 1;
  limits.max_addresses = 100;
  RefusalAudit audit(limits);
  size_t summaries = 0;
  for (int i = 0; i < 1000; ++i)
    for (int k = 0; k < 2; ++k)
      for (const auto& r : audit.refused(refusal("10.1." + std::to_string(i) + ".1:1", "/"), 0))
        summaries += r.action == "http refused";
  for (const auto& r : audit.flush(1)) summaries += r.action == "http refused";
  EXPECT_EQ(summaries, 1000u) << "each address's second refusal is summed up once";
}

}  // namespace
}  // namespace opk::host
