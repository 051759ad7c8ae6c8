// Principals the kernel issued are the only ones its services accept;
// admin features declare their permissions; plugins refuse themselves with
// a status from init.
#include "host/principals.h"

#include <gtest/gtest.h>

#include "host/identity_service.h"
#include "host/routes.h"
#include "support/kernel_util.h"

namespace opk {
namespace {

TEST(Principals, OnlyIssuedOnesAreKnownAndReleasedOnesAreNot) {
  host::Principals ps;
  const opk_principal* p = ps.issue("alice", "TenantUser", "tenant:acme");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(ps.issued(p));
  EXPECT_STREQ(p->user_id, "alice");
  EXPECT_STREQ(p->role, "TenantUser");
  EXPECT_STREQ(p->scope, "tenant:acme");
  EXPECT_EQ(p->struct_size, sizeof(opk_principal));
  // The same fields in a struct of the caller's own are not a principal.
  const opk_principal copy = *p;
  EXPECT_FALSE(ps.issued(&copy));
  EXPECT_FALSE(ps.issued(nullptr));
  ps.release(p);
  EXPECT_FALSE(ps.issued(p));
  ps.release(p);  // twice: ignored
  ps.release(&copy);
  EXPECT_EQ(ps.live(), 0u);
}

TEST(Principals, ASystemPrincipalIsOnePerPluginAndOutlivesRelease) {
  host::Principals ps;
  const opk_principal* a = ps.system("flags");
  EXPECT_EQ(ps.system("flags"), a);
  EXPECT_NE(ps.system("other"), a);
  EXPECT_STREQ(a->user_id, "system:flags");
  EXPECT_STREQ(a->role, host::kSystemRole);
  EXPECT_STREQ(a->scope, "platform");
  ps.release(a);
  EXPECT_TRUE(ps.issued(a));
}

struct Gadgets : ::testing::Test {
  test::TempDir d;
  std::unique_ptr<Kernel> k;
  void start(std::initializer_list<std::string> files) {
    k = std::make_unique<Kernel>(test::quiet_config(d, test::plugins_dir(d, files)));
    ASSERT_TRUE(k->start());
  }
  const PluginRecord* plugin(const std::string& id) {
    for (auto& p : k->plugins())
      if (p->id == id) return p.get();
    return nullptr;
  }
};

TEST_F(Gadgets, AuditRowsNeedAnIssuedActorAndAWellFormedEntry) {
  start({test::fixture("audit_user")});
  ASSERT_EQ(plugin("audit-user")->state, PluginState::active) << plugin("audit-user")->reason;
  auto v = test::run_and_wait(*k, test::manual("audit-job"));
  EXPECT_EQ(v.row.summary, "system=0 forged=" + std::to_string(OPK_ERR_PERMISSION) +
                               " none=" + std::to_string(OPK_ERR_PERMISSION) +
                               " action=" + std::to_string(OPK_ERR_INVALID_ARGUMENT) +
                               " outcome=" + std::to_string(OPK_ERR_INVALID_ARGUMENT));
  int sweeps = 0;
  for (const auto& row : k->store()->audit_rows(100).value()) {
    if (row.action != "gadgets.sweep") continue;
    ++sweeps;
    EXPECT_EQ(row.actor, "system:audit-user");
    EXPECT_EQ(row.role, "System");
    EXPECT_EQ(row.target, "gadget:*");
    EXPECT_EQ(row.outcome, "success");
    EXPECT_EQ(row.source, "plugin:audit-user");
    EXPECT_EQ(row.params_json, R"({"after":{"swept":3},"plugin":"audit-user"})");
  }
  EXPECT_EQ(sweeps, 1);  // the refused ones wrote nothing
}

TEST_F(Gadgets, ARouteServesOnlyPrincipalsTheKernelIssued) {
  start({test::fixture("audit_user")});
  ASSERT_EQ(plugin("audit-user")->state, PluginState::active) << plugin("audit-user")->reason;
  auto& ps = k->identity_service()->principals();
  host::HttpRequest rq;
  rq.method = "POST";
  rq.path = "/api/v1/gadgets/g1";
  rq.remote_addr = "127.0.0.1:5000";
  // Made up by the caller, even with a role that would be allowed: 401.
  const opk_principal forged{sizeof(opk_principal), "mallory", "PlatformAdministrator", "platform"};
  rq.principal = &forged;
  EXPECT_EQ(k->routes().dispatch(rq).status, 401);
  // Issued, but the role lacks the declared permission: 403.
  const opk_principal* user = ps.issue("tina", "TenantUser", "platform");
  rq.principal = user;
  EXPECT_EQ(k->routes().dispatch(rq).status, 403);
  // Issued with the permission: served, and audited as the caller.
  const opk_principal* admin = ps.issue("alice", "PlatformAdministrator", "platform");
  rq.principal = admin;
  auto r = k->routes().dispatch(rq);
  EXPECT_EQ(r.status, 204) << r.body;
  bool found = false;
  for (const auto& row : k->store()->audit_rows(100).value())
    found |= row.action == "gadgets.update" && row.actor == "alice" && row.target == "gadget:g1" &&
             row.source == "127.0.0.1:5000";
  EXPECT_TRUE(found);
  // Released at the end of its request: no longer accepted.
  ps.release(admin);
  EXPECT_EQ(k->routes().dispatch(rq).status, 401);
  ps.release(user);
}

TEST_F(Gadgets, NodePathNamesANodeAndItsAncestorsRootFirst) {
  start({test::fixture("audit_user")});
  const PluginRecord* p = plugin("audit-user");
  ASSERT_EQ(p->state, PluginState::active) << p->reason;
  ASSERT_TRUE(k->identity()->add_node("distributor:d1", "platform", "D1").is_ok());
  ASSERT_TRUE(k->identity()->add_node("partner:p1", "distributor:d1", "P1").is_ok());
  ASSERT_TRUE(k->identity()->add_node("tenant:acme", "partner:p1", "Acme").is_ok());
  const opk_host* host = p->host->table();
  const auto* identity = static_cast<const opk_identity_v1*>(host->get_extension(host, OPK_EXT_IDENTITY));
  ASSERT_TRUE(OPK_HAS_MEMBER(opk_identity_v1, identity->struct_size, node_path));  // 1.6
  auto path = [&](const char* node, std::string* out) {
    char* json = reinterpret_cast<char*>(1);
    const opk_status st = identity->node_path(host, node, &json);
    *out = json ? json : "";
    host->free(host, json);
    return st;
  };
  std::string out;
  EXPECT_EQ(path("tenant:acme", &out), OPK_OK);
  EXPECT_EQ(out, R"(["platform","distributor:d1","partner:p1","tenant:acme"])");
  EXPECT_EQ(path("partner:p1", &out), OPK_OK);
  EXPECT_EQ(out, R"(["platform","distributor:d1","partner:p1"])");
  EXPECT_EQ(path("platform", &out), OPK_OK);
  EXPECT_EQ(out, R"(["platform"])");
  EXPECT_EQ(path("tenant:nobody", &out), OPK_ERR_NOT_FOUND);
  EXPECT_EQ(out, "");  // and *path_json set to NULL
  EXPECT_EQ(identity->node_path(host, nullptr, nullptr), OPK_ERR_INVALID_ARGUMENT);
}

TEST_F(Gadgets, TheJobServiceActsOnlyForIssuedPrincipals) {
  start({test::fixture("audit_user")});
  const PluginRecord* p = plugin("audit-user");
  ASSERT_EQ(p->state, PluginState::active) << p->reason;
  const opk_host* host = p->host->table();
  const opk_jobs_v1* jobs = k->jobs_service()->extension();
  auto call = [&](const opk_principal* actor, std::string* answer) {
    char* out = nullptr;
    const opk_status st = jobs->call(host, actor, "queues", "{}", "test", &out);
    *answer = out ? out : "";
    host->free(host, out);
    return st;
  };
  std::string answer;
  const opk_principal forged{sizeof(opk_principal), "mallory", "PlatformAdministrator", "platform"};
  EXPECT_EQ(call(&forged, &answer), OPK_ERR_PERMISSION);
  EXPECT_NE(answer.find("not a principal the kernel issued"), std::string::npos) << answer;
  EXPECT_STREQ(host->last_error(host),
               "actor: not a principal the kernel issued (pass the request's principal, or "
               "system_principal)");
  const auto* identity = static_cast<const opk_identity_v1*>(host->get_extension(host, OPK_EXT_IDENTITY));
  const opk_principal* system = identity->system_principal(host);
  EXPECT_STREQ(system->user_id, "system:audit-user");
  EXPECT_EQ(call(system, &answer), OPK_OK) << answer;
  // A token's principal, issued and released through opk.identity/1.
  std::string token;
  ASSERT_TRUE(k->identity()->issue_token("admin", 0, "t", &token));
  const opk_principal* admin = nullptr;
  ASSERT_EQ(identity->principal_for_token(host, token.c_str(), &admin), OPK_OK);
  EXPECT_STREQ(admin->user_id, "admin");
  EXPECT_EQ(call(admin, &answer), OPK_OK) << answer;
  identity->release_principal(host, admin);
  const opk_principal* none = nullptr;
  EXPECT_EQ(identity->principal_for_token(host, "opk_not_a_token", &none), OPK_ERR_PERMISSION);
  EXPECT_EQ(none, nullptr);
  EXPECT_NE(std::string(host->last_error(host)).find("token"), std::string::npos) << host->last_error(host);
}

TEST_F(Gadgets, DeclaredPermissionsJoinTheCatalogue) {
  start({test::fixture("audit_user")});
  ASSERT_EQ(plugin("audit-user")->state, PluginState::active) << plugin("audit-user")->reason;
  EXPECT_TRUE(k->identity()->known_permission("gadgets.write"));
  EXPECT_TRUE(k->identity()->known_permission("jobs.read"));
  EXPECT_FALSE(k->identity()->known_permission("widgets.read"));
  bool owned = false;
  for (const auto& p : k->identity()->permission_catalog())
    owned |= p.name == "gadgets.read" && p.owner == "audit-user" && p.description == "See gadgets";
  EXPECT_TRUE(owned);
  // Through opk.identity/1, with the roles granted each.
  const auto* ext = k->identity_service()->extension();
  ASSERT_TRUE(OPK_HAS_MEMBER(opk_identity_v1, ext->struct_size, permissions));
}

TEST_F(Gadgets, ANameTakenOrAnUndeclaredRoutePermissionRefusesThePlugin) {
  start({test::fixture("permission_clash"), test::fixture("undeclared_permission")});
  const PluginRecord* clash = plugin("permission-clash");
  ASSERT_NE(clash, nullptr);
  EXPECT_EQ(clash->state, PluginState::refused);
  EXPECT_NE(clash->reason.find("permission 'jobs.read' is already declared by the kernel"), std::string::npos)
      << clash->reason;
  const PluginRecord* undeclared = plugin("undeclared-permission");
  ASSERT_NE(undeclared, nullptr);
  EXPECT_EQ(undeclared->state, PluginState::refused);
  EXPECT_NE(undeclared->reason.find("permission 'widgets.read' is not declared"), std::string::npos)
      << undeclared->reason;
  // The refused plugin's own declarations are gone with it.
  EXPECT_FALSE(k->identity()->known_permission("gadgets.write"));
}

TEST_F(Gadgets, InitReturnsAStatusThatRefusesThePlugin) {
  test::TempDir d2;
  auto cfg = test::quiet_config(d2, test::plugins_dir(d2, {test::fixture("init_status")}));
  cfg.plugins["init-status"]["threads"] = "many";
  Kernel kk(cfg);
  ASSERT_TRUE(kk.start());
  ASSERT_EQ(kk.plugins().size(), 1u);
  EXPECT_EQ(kk.plugins()[0]->state, PluginState::refused);
  EXPECT_NE(
      kk.plugins()[0]->reason.find(R"([plugin.init-status] threads = "many": expected a whole number from 1 to 64)"),
      std::string::npos)
      << kk.plugins()[0]->reason;
}

}  // namespace
}  // namespace opk
