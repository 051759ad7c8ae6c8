// The operation table of opk.jobs/1 against what docs/abi.md and
// docs/admin-api.md promise: the same operations, each with the documented
// permission, the documented actions audited under the action names the
// audit trail uses, and the table actually driving dispatch and audit.
#include "host/jobs_operations.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "support/test_util.h"

namespace opk::host {
namespace {

std::string read_doc(const std::string& name) {
  std::ifstream in(std::string(OPK_SOURCE_DIR) + "/docs/" + name);
  EXPECT_TRUE(in) << "cannot read docs/" << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The `quoted` names in `text`.
std::vector<std::string> backticked(const std::string& text) {
  std::vector<std::string> out;
  for (size_t at = text.find('`'); at != std::string::npos; at = text.find('`', at)) {
    const size_t end = text.find('`', at + 1);
    if (end == std::string::npos) break;
    out.push_back(text.substr(at + 1, end - at - 1));
    at = end + 1;
  }
  return out;
}

// The text of docs/abi.md's job service section.
std::string jobs_section() {
  const std::string abi = read_doc("abi.md");
  const size_t start = abi.find("## The job service: `opk.jobs/1`");
  EXPECT_NE(start, std::string::npos) << "docs/abi.md has no job service section";
  if (start == std::string::npos) return "";
  const size_t end = abi.find("\n## ", start + 1);
  return abi.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Operation -> permission, from the section's "| Operation | Permission |" table.
std::map<std::string, std::string> documented_permissions() {
  std::map<std::string, std::string> out;
  std::istringstream in(jobs_section());
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("| Operation | Permission |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (!in_table || line.rfind("|---", 0) == 0) continue;
    if (line.rfind("| `", 0) != 0) break;
    // | `hold`, `release` | `runs.hold` | ...
    const size_t first = line.find(" | ");
    const size_t second = line.find(" | ", first + 3);
    EXPECT_NE(second, std::string::npos) << line;
    if (second == std::string::npos) continue;
    const auto perms = backticked(line.substr(first + 3, second - first - 3));
    EXPECT_EQ(perms.size(), 1u) << line;
    for (const auto& name : backticked(line.substr(0, first))) out[name] = perms.empty() ? "" : perms[0];
  }
  return out;
}

// The `names` between `opening` and the next ')' in `text`.
std::set<std::string> listed_after(const std::string& text, const std::string& opening) {
  const size_t at = text.find(opening);
  EXPECT_NE(at, std::string::npos) << "the docs no longer say: " << opening;
  if (at == std::string::npos) return {};
  const size_t end = text.find(')', at);
  const auto names = backticked(text.substr(at + opening.size(), end - at - opening.size()));
  return {names.begin(), names.end()};
}

TEST(JobsOperations, EveryOperationIsDocumentedWithItsPermissionAndNoOther) {
  const auto documented = documented_permissions();
  ASSERT_GE(documented.size(), 10u) << "the operations table of docs/abi.md was not found";
  std::set<std::string> in_table;
  for (const auto& op : jobs_operations()) {
    EXPECT_TRUE(in_table.insert(op.name).second) << op.name << " is declared twice";
    auto it = documented.find(op.name);
    if (it == documented.end()) {
      ADD_FAILURE() << "operation '" << op.name << "' is not documented in docs/abi.md";
      continue;
    }
    EXPECT_EQ(it->second, op.permission) << "operation '" << op.name << "'";
    EXPECT_NE(std::find(identity::kPermissions.begin(), identity::kPermissions.end(), op.permission),
              identity::kPermissions.end())
        << op.name << ": '" << op.permission << "' is not a kernel permission";
  }
  for (const auto& [name, permission] : documented)
    EXPECT_TRUE(in_table.count(name)) << "docs/abi.md documents '" << name << "', which the service lacks";
}

TEST(JobsOperations, TheDocumentedActionsAndOnlyThemAreAudited) {
  const auto audited = listed_after(jobs_section(), "Every action (");
  ASSERT_FALSE(audited.empty());
  // The action values a client may filter the audit trail by.
  const auto actions = listed_after(read_doc("admin-api.md"), "`action` are exact values (");
  ASSERT_FALSE(actions.empty());
  for (const auto& op : jobs_operations()) {
    EXPECT_EQ(op.audit_action != nullptr, audited.count(op.name) == 1)
        << "operation '" << op.name << "': docs/abi.md and the table disagree on whether it is audited";
    if (op.audit_action) {
      EXPECT_TRUE(actions.count(op.audit_action))
          << op.name << ": audit action '" << op.audit_action << "' is not listed in docs/admin-api.md";
    }
  }
}

TEST(JobsOperations, TheServiceDispatchesByTheTable) {
  std::vector<std::string> names;
  for (const auto& op : jobs_operations()) {
    names.push_back(op.name);
    EXPECT_EQ(find_jobs_operation(op.name), &op);
    EXPECT_NE(op.handler, nullptr) << op.name;
  }
  EXPECT_EQ(JobsService::operations(), names);
  EXPECT_EQ(find_jobs_operation("explode"), nullptr);
  EXPECT_EQ(find_jobs_operation(""), nullptr);
}

// Without an engine every operation is refused before it: each action leaves
// one row under its table's audit action, each read none.
TEST(JobsOperations, ARefusedActionIsAuditedUnderItsTablesActionName) {
  test::TempDir dir;
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open_sqlite((dir.path() / "s.db").string(), true, &st));
  identity::Identity id(*st, identity::default_permissions());
  JobsService svc(*st, id, [] { return std::vector<TypeInfo>{}; });
  const identity::Principal admin{"pat", "PlatformAdministrator", "platform"};
  size_t rows = 0;
  for (const auto& op : jobs_operations()) {
    std::string out;
    EXPECT_EQ(svc.call(admin, op.name, R"({"run_id": 7})", "test", &out).code(), OPK_ERR_UNAVAILABLE) << op.name;
    const auto trail = st->audit_rows(100).value();
    if (!op.audit_action) {
      EXPECT_EQ(trail.size(), rows) << op.name << " is a read and must not be audited";
      continue;
    }
    ASSERT_EQ(trail.size(), ++rows) << op.name;
    EXPECT_EQ(trail.front().action, op.audit_action);
    EXPECT_EQ(trail.front().target, "run 7");
    EXPECT_EQ(trail.front().outcome.rfind("refused: ", 0), 0u) << trail.front().outcome;
  }
}

}  // namespace
}  // namespace opk::host
