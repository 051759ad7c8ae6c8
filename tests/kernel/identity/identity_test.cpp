// Tenancy and identities on a real store, SQLite and PostgreSQL (a fresh
// database per test): hierarchy rules, scope containment, hierarchy import,
// users, tokens (hash only, expiry, revocation), the permission matrix and
// the first-start bootstrap (on SQLite).
#include "identity/identity.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "support/pg_util.h"
#include "support/test_util.h"

namespace opk::identity {
namespace {

class IdentityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    Status s;
    if (GetParam() == "postgresql") {
      const std::string e = db_.create();
      ASSERT_TRUE(e.empty()) << e;
      s = store::open_postgresql(db_.conninfo(), {}, &store_);
    } else {
      s = store::open_sqlite((dir_.path() / "opk.db").string(), true, &store_);
    }
    ASSERT_TRUE(s) << s.message();
    id_ = std::make_unique<Identity>(*store_, default_permissions());
    ASSERT_TRUE(id_->add_node("distributor:d1", "platform", "D1"));
    ASSERT_TRUE(id_->add_node("partner:p1", "distributor:d1", ""));
    ASSERT_TRUE(id_->add_node("tenant:acme", "partner:p1", "Acme"));
    ASSERT_TRUE(id_->add_node("subscription:s1", "tenant:acme", ""));
    ASSERT_TRUE(id_->add_node("distributor:d2", "platform", ""));
  }
  test::TempDir dir_;
  test::PgDatabase db_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Identity> id_;
};

INSTANTIATE_TEST_SUITE_P(Backends, IdentityTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(IdentityTest, APathNamesTheNodeAndItsAncestors) {
  EXPECT_EQ(id_->path("platform"), "/platform/");
  EXPECT_EQ(id_->path("subscription:s1"), "/platform/distributor:d1/partner:p1/tenant:acme/subscription:s1/");
  EXPECT_EQ(id_->path("distributor:d2"), "/platform/distributor:d2/");
  EXPECT_EQ(id_->path("tenant:nobody"), "");
}

TEST_P(IdentityTest, AdministratorsKeepTheirNotificationsAndWebhookFailuresByDefault) {
  for (const char* role : {"DistributorAdministrator", "PartnerAdministrator", "TenantAdministrator"})
    for (const char* perm :
         {"notifications.read", "notifications.manage", "webhook_failures.read", "webhook_failures.manage"})
      EXPECT_TRUE(id_->allowed(role, perm)) << role << " " << perm;
  EXPECT_FALSE(id_->allowed("TenantUser", "notifications.read"));
  EXPECT_FALSE(id_->allowed("TenantUser", "webhook_failures.read"));
}

TEST_P(IdentityTest, AlertPermissionsByDefault) {
  for (const char* role : {"DistributorAdministrator", "PartnerAdministrator", "TenantAdministrator"}) {
    EXPECT_TRUE(id_->allowed(role, "alerts.read")) << role;
    EXPECT_TRUE(id_->allowed(role, "alerts.manage")) << role;
    EXPECT_TRUE(id_->allowed(role, "alerts.create")) << role;
    EXPECT_FALSE(id_->allowed(role, "alerts.raise")) << role;
  }
  EXPECT_TRUE(id_->allowed("TenantUser", "alerts.read"));
  EXPECT_FALSE(id_->allowed("TenantUser", "alerts.manage"));
  EXPECT_TRUE(id_->allowed(kSystemRole, "alerts.raise"));
  EXPECT_TRUE(id_->known_permission("alerts.raise"));
}

TEST_P(IdentityTest, NodesGoExactlyOneLevelBelowTheirParent) {
  Status s = id_->add_node("tenant:x", "distributor:d1", "");
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("a tenant belongs under a partner"), std::string::npos) << s.message();
  EXPECT_EQ(id_->add_node("partner:p9", "distributor:nope", "").code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(id_->add_node("region:eu", "platform", "").code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(id_->add_node("tenant:a b", "partner:p1", "").code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(id_->add_node("tenant:acme", "partner:p1", "").code(), OPK_ERR_CONFLICT);
}

TEST_P(IdentityTest, ScopesContainTheirSubtreeOnly) {
  EXPECT_TRUE(id_->contains("platform", "subscription:s1"));
  EXPECT_TRUE(id_->contains("distributor:d1", "subscription:s1"));
  EXPECT_TRUE(id_->contains("partner:p1", "tenant:acme"));
  EXPECT_TRUE(id_->contains("tenant:acme", "tenant:acme"));
  EXPECT_FALSE(id_->contains("distributor:d2", "tenant:acme"));
  EXPECT_FALSE(id_->contains("tenant:acme", "partner:p1"));
  EXPECT_FALSE(id_->contains("tenant:acme", "platform"));
  EXPECT_FALSE(id_->contains("tenant:acme", "tenant:unknown"));
  // The nodes a query keeps to: the scope first, then its subtree by id.
  using Nodes = std::vector<std::string>;
  EXPECT_EQ(id_->nodes_within("distributor:d1"),
            (Nodes{"distributor:d1", "partner:p1", "subscription:s1", "tenant:acme"}));
  EXPECT_EQ(id_->nodes_within("tenant:acme"), (Nodes{"tenant:acme", "subscription:s1"}));
  EXPECT_EQ(id_->nodes_within("distributor:d2"), Nodes{"distributor:d2"});
  EXPECT_EQ(id_->nodes_within("tenant:unknown"), Nodes{"tenant:unknown"});
  EXPECT_EQ(id_->nodes_within("platform").size(), 6u);
}

TEST_P(IdentityTest, ANodeAddedByAnotherProcessIsSeen) {
  Identity other(*store_, default_permissions());  // the CLI, on the same store
  ASSERT_TRUE(other.add_node("partner:p2", "distributor:d2", ""));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the cache is re-read at most once a second
  EXPECT_TRUE(id_->contains("distributor:d2", "partner:p2"));
}

TEST_P(IdentityTest, ImportIsAllOrNothingAndIdempotent) {
  int added = -1;
  const std::string doc = R"({"nodes": [
      {"id": "tenant:t2", "parent": "partner:p2", "name": "T2"},
      {"id": "partner:p2", "parent": "distributor:d2"}]})";
  ASSERT_TRUE(id_->import_hierarchy(doc, &added));
  EXPECT_EQ(added, 2);  // parents first, whatever the order in the file
  ASSERT_TRUE(id_->import_hierarchy(doc, &added));
  EXPECT_EQ(added, 0);
  Status s = id_->import_hierarchy(R"([{"id": "tenant:t3", "parent": "partner:p1"}, {"id": "tenant:t4"}])", &added);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("nodes[1]: 'parent' is missing"), std::string::npos) << s.message();
  EXPECT_FALSE(id_->exists("tenant:t3"));
  s = id_->import_hierarchy(R"([{"id": "tenant:acme", "parent": "partner:p2"}])", &added);
  EXPECT_EQ(s.code(), OPK_ERR_CONFLICT);
  EXPECT_EQ(id_->import_hierarchy("{not json", &added).code(), OPK_ERR_INVALID_ARGUMENT);
}

TEST_P(IdentityTest, UsersNeedAKnownRoleAtTheirLevel) {
  EXPECT_TRUE(id_->add_user({"ann", "Ann", "TenantAdministrator", "tenant:acme"}));
  EXPECT_TRUE(id_->add_user({"tim", "", "TenantUser", "tenant:acme"}));
  EXPECT_TRUE(id_->add_user({"dan", "", "DistributorAdministrator", "distributor:d1"}));
  EXPECT_EQ(id_->add_user({"x", "", "Boss", "platform"}).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(id_->add_user({"y", "", "TenantAdministrator", "partner:p1"}).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(id_->add_user({"z", "", "TenantAdministrator", "tenant:nope"}).code(), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(id_->add_user({"ann", "", "TenantUser", "tenant:acme"}).code(), OPK_ERR_CONFLICT);
}

TEST_P(IdentityTest, TokensAreStoredAsHashesAndCanExpireOrBeRevoked) {
  ASSERT_TRUE(id_->add_user({"ann", "", "TenantAdministrator", "tenant:acme"}));
  std::string token, short_lived;
  ASSERT_TRUE(id_->issue_token("ann", 0, "laptop", &token));
  ASSERT_TRUE(id_->issue_token("ann", 1, "gone soon", &short_lived));
  EXPECT_EQ(token.rfind("opk_", 0), 0u);
  EXPECT_GE(token.size(), 40u);
  for (const auto& t : store_->list_tokens("ann").value()) {
    EXPECT_EQ(t.hash.size(), 64u);
    EXPECT_NE(t.hash, token);
  }
  Principal p;
  ASSERT_TRUE(id_->authenticate(token, &p));
  EXPECT_EQ(p.user_id, "ann");
  EXPECT_EQ(p.role, "TenantAdministrator");
  EXPECT_EQ(p.scope, "tenant:acme");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Status s = id_->authenticate(short_lived, &p);
  EXPECT_EQ(s.code(), OPK_ERR_PERMISSION);
  EXPECT_NE(s.message().find("expired"), std::string::npos);
  EXPECT_NE(id_->authenticate(token + "x", &p).message().find("not known"), std::string::npos);
  EXPECT_FALSE(id_->authenticate("", &p));
  int64_t revoked = 0;
  ASSERT_TRUE(id_->revoke_user("ann", &revoked));
  EXPECT_EQ(revoked, 2);
  s = id_->authenticate(token, &p);
  EXPECT_NE(s.message().find("revoked"), std::string::npos) << s.message();
  EXPECT_EQ(id_->issue_token("ann", 0, "", &token).code(), OPK_ERR_CONFLICT);  // disabled
  EXPECT_EQ(id_->revoke_user("nobody", &revoked).code(), OPK_ERR_NOT_FOUND);
}

TEST_P(IdentityTest, ConstantTimeEqualComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_EQ(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_P(IdentityTest, DefaultPermissionsLeaveActionsToPlatformAdministrators) {
  EXPECT_TRUE(id_->allowed("PlatformAdministrator", "runs.start"));
  EXPECT_TRUE(id_->allowed("PlatformAdministrator", "flags.write"));  // "*": plugins' permissions too
  for (const char* r : {"DistributorAdministrator", "PartnerAdministrator", "TenantAdministrator", "TenantUser"}) {
    EXPECT_TRUE(id_->allowed(r, "jobs.read")) << r;
    for (const char* a : {"runs.start", "runs.cancel", "runs.retry", "runs.recover", "jobs.write"})
      EXPECT_FALSE(id_->allowed(r, a)) << r << " " << a;
  }
  EXPECT_FALSE(id_->allowed("TenantUser", "audit.read"));
  EXPECT_FALSE(id_->allowed("Nobody", "jobs.read"));
  Permissions custom = default_permissions();
  custom["TenantAdministrator"].insert("runs.start");
  Identity configured(*store_, custom);
  EXPECT_TRUE(configured.allowed("TenantAdministrator", "runs.start"));
}

TEST(IdentityBootstrap, TheFirstStartCreatesOneAdministratorWithAGeneratedToken) {
  test::TempDir dir;
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open_sqlite((dir.path() / "opk.db").string(), true, &st));
  Identity id(*st, default_permissions());
  std::string token;
  ASSERT_TRUE(id.bootstrap("", &token));
  ASSERT_FALSE(token.empty());
  Principal p;
  ASSERT_TRUE(id.authenticate(token, &p));
  EXPECT_EQ(p.role, "PlatformAdministrator");
  EXPECT_EQ(p.scope, "platform");
  std::string again;
  ASSERT_TRUE(id.bootstrap("", &again));
  EXPECT_TRUE(again.empty());  // users exist: nothing is created or shown
}

TEST(IdentityBootstrap, UsersAddedBeforeTheFirstStartDoNotPreventTheAdministrator) {
  test::TempDir dir;
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open_sqlite((dir.path() / "opk.db").string(), true, &st));
  Identity id(*st, default_permissions());
  ASSERT_TRUE(id.add_node("distributor:d", "platform", ""));
  ASSERT_TRUE(id.add_node("partner:p", "distributor:d", ""));
  ASSERT_TRUE(id.add_node("tenant:acme", "partner:p", ""));
  ASSERT_TRUE(id.add_user({"tina", "", "TenantUser", "tenant:acme"}));
  std::string token;
  ASSERT_TRUE(id.bootstrap("", &token));
  ASSERT_FALSE(token.empty());
  Principal p;
  ASSERT_TRUE(id.authenticate(token, &p));
  EXPECT_EQ(p.user_id, "admin");
  EXPECT_EQ(p.role, "PlatformAdministrator");
  std::string again;
  ASSERT_TRUE(id.bootstrap("", &again));
  EXPECT_TRUE(again.empty());

  // "admin" taken by another role: no administrator is made, and no token for that user.
  test::TempDir dir2;
  std::unique_ptr<store::Store> st2;
  ASSERT_TRUE(store::open_sqlite((dir2.path() / "opk.db").string(), true, &st2));
  Identity id2(*st2, default_permissions());
  ASSERT_TRUE(id2.add_node("distributor:d", "platform", ""));
  ASSERT_TRUE(id2.add_node("partner:p", "distributor:d", ""));
  ASSERT_TRUE(id2.add_node("tenant:acme", "partner:p", ""));
  ASSERT_TRUE(id2.add_user({"admin", "", "TenantUser", "tenant:acme"}));
  ASSERT_TRUE(id2.bootstrap("", &token));
  EXPECT_TRUE(token.empty());
}

TEST(IdentityBootstrap, ATokenFileIsUsedAndAShortOneRefused) {
  test::TempDir dir;
  std::unique_ptr<store::Store> st;
  ASSERT_TRUE(store::open_sqlite((dir.path() / "opk.db").string(), true, &st));
  Identity id(*st, default_permissions());
  const auto file = (dir.path() / "token").string();
  std::ofstream(file) << "short\n";
  std::string token;
  Status s = id.bootstrap(file, &token);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("shorter than 24"), std::string::npos);
  std::ofstream(file) << "a-long-enough-bootstrap-token-from-a-secret-store\n";
  ASSERT_TRUE(id.bootstrap(file, &token));
  EXPECT_TRUE(token.empty());
  Principal p;
  EXPECT_TRUE(id.authenticate("a-long-enough-bootstrap-token-from-a-secret-store", &p));
  EXPECT_EQ(id.bootstrap(dir.str() + "/missing", &token).code(), OPK_OK);  // users exist now: not read
}

}  // namespace
}  // namespace opk::identity
