// The route table: pattern matching, conflicts, error answers, and the
// opk.http-routes/1 service as a plugin reaches it.
#include "host/routes.h"

#include <gtest/gtest.h>

#include "app/kernel.h"
#include "host/host.h"
#include "support/test_util.h"

namespace opk::host {
namespace {

opk_status say(opk_plugin*, void* data, const opk_http_request* rq, const opk_http_response* rs) {
  std::string body = static_cast<const char*>(data);
  for (uint32_t i = 0; i < rq->path_param_count; ++i)
    body += std::string(" ") + rq->path_params[i].key + "=" + rq->path_params[i].value;
  rs->append_body(rs, body.data(), body.size());
  return OPK_OK;
}
opk_status fail(opk_plugin*, void*, const opk_http_request*, const opk_http_response*) {
  return OPK_ERR_FAILED;
}

opk_http_route route(const char* method, const char* path, const char* tag, decltype(&say) fn = &say) {
  opk_http_route r{};
  r.struct_size = sizeof r;
  r.feature_id = "f";
  r.method = method;
  r.path = path;
  r.route_data = const_cast<char*>(tag);
  r.handle = fn;
  return r;
}

class Routes : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.add_feature("f");
    host_.set_instance(reinterpret_cast<opk_plugin*>(&instance_));
  }
  int instance_ = 0;
  PluginHost host_{"p", {}, {}, nullptr};
  RouteTable table_;
  opk_principal admin_{sizeof(opk_principal), "ann", "PlatformAdministrator", "platform"};
  HttpResponse get(const std::string& method, const std::string& path, const opk_principal* who = nullptr) {
    HttpRequest rq;
    rq.method = method;
    rq.path = path;
    rq.principal = who ? who : &admin_;
    return table_.dispatch(rq);
  }
};

TEST_F(Routes, MatchesLiteralsBeforeParameters) {
  ASSERT_TRUE(table_.add(host_, route("GET", "/api/v1/jobs/{id}", "param")));
  ASSERT_TRUE(table_.add(host_, route("GET", "/api/v1/jobs/summary", "literal")));
  EXPECT_EQ(get("GET", "/api/v1/jobs/summary").body, "literal");
  EXPECT_EQ(get("GET", "/api/v1/jobs/42").body, "param id=42");
  EXPECT_EQ(get("GET", "/api/v1/jobs/42/").body, "param id=42");
}

TEST_F(Routes, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  ASSERT_TRUE(table_.add(host_, route("GET", "/a", "a")));
  auto r = get("GET", "/b");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  r = get("DELETE", "/a");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET");
}

TEST_F(Routes, ConflictsAndMalformedRoutesAreRefused) {
  ASSERT_TRUE(table_.add(host_, route("GET", "/x/{a}", "1")));
  Status s = table_.add(host_, route("GET", "/x/{b}", "2"));
  EXPECT_EQ(s.code(), OPK_ERR_CONFLICT);
  EXPECT_NE(s.message().find("already served by plugin 'p'"), std::string::npos) << s.message();
  EXPECT_EQ(table_.add(host_, route("FETCH", "/y", "")).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(table_.add(host_, route("GET", "no-slash", "")).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(table_.add(host_, route("GET", "/a/../b", "")).code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(table_.add(host_, route("GET", "/a/{x}/{x}", "")).code(), OPK_ERR_INVALID_ARGUMENT);
  auto foreign = route("GET", "/z", "");
  foreign.feature_id = "not-mine";
  s = table_.add(host_, foreign);
  EXPECT_EQ(s.code(), OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("is not an admin feature of plugin 'p'"), std::string::npos) << s.message();
}

TEST_F(Routes, AFailingHandlerGivesA500ProblemWithoutDetailLeak) {
  ASSERT_TRUE(table_.add(host_, route("GET", "/boom", "", &fail)));
  auto r = get("GET", "/boom");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("\"status\":500"), std::string::npos) << r.body;
}

TEST_F(Routes, RemovingAPluginRemovesItsRoutes) {
  ASSERT_TRUE(table_.add(host_, route("GET", "/a", "a")));
  table_.remove_plugin("p");
  EXPECT_EQ(get("GET", "/a").status, 404);
  EXPECT_TRUE(table_.list().empty());
}

TEST_F(Routes, AuthenticationAndPermissionAreCheckedBeforeTheHandler) {
  auto guarded = route("GET", "/api/v1/secret", "secret");
  guarded.permission = "secrets.read";
  ASSERT_TRUE(table_.add(host_, guarded));
  auto open = route("GET", "/healthz", "ok");
  open.flags = OPK_ROUTE_ANONYMOUS;
  ASSERT_TRUE(table_.add(host_, open));
  table_.set_authorizer([](const std::string& role, const std::string& perm) {
    return role == "PlatformAdministrator" || perm != "secrets.read";
  });
  HttpRequest anon;
  anon.method = "GET";
  anon.path = "/api/v1/secret";
  auto r = table_.dispatch(anon);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("www-authenticate"), "Bearer");
  anon.path = "/healthz";
  EXPECT_EQ(table_.dispatch(anon).body, "ok");
  const opk_principal user{sizeof(opk_principal), "tim", "TenantUser", "tenant:acme"};
  r = get("GET", "/api/v1/secret", &user);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  EXPECT_NE(r.body.find("lacks the permission 'secrets.read'"), std::string::npos) << r.body;
  EXPECT_EQ(get("GET", "/api/v1/secret").body, "secret");
  EXPECT_NE(table_.list_json().find("\"permission\":\"secrets.read\""), std::string::npos) << table_.list_json();
}

}  // namespace
}  // namespace opk::host
