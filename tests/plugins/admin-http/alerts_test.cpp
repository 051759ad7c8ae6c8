// The admin API's alert routes on a real kernel, over real HTTP on
// 127.0.0.1: the list's filters, sort and cursor paging (body and Link
// header) over 120 alerts, an alert's detail with its history, every
// operator action with its audit row, bad input named in problem+json, the
// caller's view (404 outside it, 403 without the permission), the
// opk_alerts gauges of /metrics and the routes' OpenAPI description; on both
// stores (a fresh PostgreSQL database per test, tests/support/pg_util.h).
#include <Poco/URI.h>
#include <gtest/gtest.h>
#include <opskernel/opk.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

using test::free_port;
using test::Reply;

class AlertsApi : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    port_ = free_port();
    const std::string plugins =
        with_probe_ ? test::plugins_dir(dir_, {test::bundled("admin-http"), test::fixture("alert_probe")})
                    : test::plugins_dir(dir_, {test::bundled("admin-http")});
    auto cfg = test::quiet_config(dir_, plugins);
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    ASSERT_TRUE(e.empty()) << e;
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    cfg.plugins["admin-http"] = {{"rate_per_user", "0"}, {"rate_per_address", "0"}};
    // The probe source reads what to raise from this file at each run.
    cfg.plugins["alert-probe"] = {{"control", control_.string()}};
    test::write_file(control_, "count=3\nscope=subscription:s1\n");
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    seed();
  }

  // Platform > d1 > p1 > t1 > s1, and d2 > p2 > t2 > s2; a user per role.
  void seed() {
    auto* id = kernel_->identity();
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"subscription:s1", "tenant:t1"},
                                                                        {"distributor:d2", "platform"},
                                                                        {"partner:p2", "distributor:d2"},
                                                                        {"tenant:t2", "partner:p2"},
                                                                        {"subscription:s2", "tenant:t2"}})
      ASSERT_TRUE(id->add_node(n, p, ""));
    struct U {
      const char *id, *role, *scope;
      std::string* token;
    } users[] = {{"pat", "PlatformAdministrator", "platform", &admin_},
                 {"ted", "TenantAdministrator", "tenant:t1", &t1_admin_},
                 {"tara", "TenantAdministrator", "tenant:t2", &t2_admin_},
                 {"tim", "TenantUser", "tenant:t1", &t1_user_}};
    for (auto& u : users) {
      ASSERT_TRUE(id->add_user({u.id, "", u.role, u.scope}));
      ASSERT_TRUE(id->issue_token(u.id, 0, "test", u.token));
    }
  }

  Reply http(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body = "", const std::map<std::string, std::string>& headers = {}) {
    return test::http_request(port_, method, target, token, body, headers);
  }

  static Json json(const Reply& r) { return Json::parse(r.body, nullptr, false); }

  // Creates a custom alert as `token`; its id.
  int64_t create(const std::string& token, const std::string& severity, const std::string& scope,
                 const std::string& title, const std::string& area = "operations") {
    const Json body = {{"severity", severity},
                       {"title", title},
                       {"message", "seen by the tests: " + title},
                       {"scope", scope},
                       {"area", area}};
    auto r = http("POST", "/api/v1/alerts", token, body.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    const Json a = json(r);
    if (!a.is_object() || !a.contains("alert")) return 0;
    return a["alert"]["id"].get<int64_t>();
  }

  // Every alert of the list at `target`, following next_cursor through the
  // pages; *pages gets how many there were.
  std::vector<Json> all_pages(const std::string& target, const std::string& token, int* pages = nullptr) {
    std::vector<Json> out;
    std::string next = target;
    int n = 0;
    while (!next.empty() && n < 100) {
      auto r = http("GET", next, token);
      EXPECT_EQ(r.status, 200) << next << " " << r.body;
      const Json page = json(r);
      if (!page.is_object()) break;
      ++n;
      for (const auto& a : page["alerts"]) out.push_back(a);
      next.clear();
      if (page["next_cursor"].is_string()) {
        std::string cursor;
        Poco::URI::encode(page["next_cursor"].get<std::string>(), "!#$&'()*+,/:;=?@[]%", cursor);
        next = target + (target.find('?') == std::string::npos ? "?" : "&") + "cursor=" + cursor;
      }
    }
    if (pages) *pages = n;
    return out;
  }

  std::set<int64_t> ids_of(const std::vector<Json>& alerts) {
    std::set<int64_t> ids;
    for (const auto& a : alerts) ids.insert(a["id"].get<int64_t>());
    return ids;
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  bool with_probe_ = false;  // also load the test alert source "probe"
  std::filesystem::path control_ = dir_.path() / "probe.control";
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_, t1_admin_, t2_admin_, t1_user_;
};

INSTANTIATE_TEST_SUITE_P(Backends, AlertsApi, ::testing::Values("sqlite", "postgresql"), test::store_backend_name);

const char* const kScopes[] = {"tenant:t1", "subscription:s1", "tenant:t2", "subscription:s2"};
const char* const kSeverities[] = {"info", "warning", "critical"};

int rank(const std::string& severity) {
  return severity == "critical" ? 2 : severity == "warning" ? 1 : 0;
}

TEST_P(AlertsApi, TheListFiltersSortsAndPagesWithACursorOver120Alerts) {
  std::map<int64_t, std::string> scope_of, severity_of;
  for (int i = 0; i < 120; ++i) {
    const std::string scope = kScopes[i % 4], severity = kSeverities[i % 3];
    const int64_t id =
        create(admin_, severity, scope, "disk " + std::to_string(i) + " full", i % 2 ? "storage" : "billing");
    ASSERT_GT(id, 0);
    scope_of[id] = scope;
    severity_of[id] = severity;
  }

  // Three pages of 50, 50 and 20, each with a Link to the next but the last;
  // the Link, followed as given, is the next page.
  auto r = http("GET", "/api/v1/alerts?limit=50", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  std::set<int64_t> seen;
  std::vector<int64_t> sizes;
  std::vector<int64_t> last_seen;
  for (int page = 0; page < 5; ++page) {
    const Json p = json(r);
    ASSERT_TRUE(p.is_object()) << r.body;
    sizes.push_back(static_cast<int64_t>(p["alerts"].size()));
    for (const auto& a : p["alerts"]) {
      EXPECT_TRUE(seen.insert(a["id"].get<int64_t>()).second) << "alert " << a["id"] << " on two pages";
      last_seen.push_back(a["last_seen_ms"].get<int64_t>());
    }
    const std::string link = r.head.get("Link", "");
    if (p["next_cursor"].is_null()) {
      EXPECT_TRUE(link.empty()) << "the last page links nowhere: " << link;
      break;
    }
    ASSERT_EQ(link.rfind("</api/v1/alerts?", 0), 0u) << link;
    ASSERT_NE(link.find(">; rel=\"next\""), std::string::npos) << link;
    EXPECT_NE(link.find("limit=50"), std::string::npos) << "the next page keeps the query: " << link;
    r = http("GET", link.substr(1, link.find('>') - 1), admin_);
    ASSERT_EQ(r.status, 200) << link << " " << r.body;
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{50, 50, 20}));
  EXPECT_EQ(seen.size(), 120u);
  // Last seen first by default.
  for (size_t i = 1; i < last_seen.size(); ++i) EXPECT_GE(last_seen[i - 1], last_seen[i]) << "at " << i;

  // Filters, alone and with paging: the filter holds on every page.
  int pages = 0;
  auto critical = all_pages("/api/v1/alerts?severity=critical&limit=15", admin_, &pages);
  EXPECT_EQ(critical.size(), 40u);
  EXPECT_EQ(pages, 3);
  for (const auto& a : critical) EXPECT_EQ(a["severity"], "critical");
  auto t1 = all_pages("/api/v1/alerts?scope=tenant:t1&limit=500", admin_);
  EXPECT_EQ(t1.size(), 60u);
  for (const auto& a : t1) EXPECT_TRUE(a["scope"] == "tenant:t1" || a["scope"] == "subscription:s1") << a.dump();
  EXPECT_EQ(all_pages("/api/v1/alerts?scope=subscription:s2&area=storage", admin_).size(), 30u);
  auto one = all_pages("/api/v1/alerts?q=disk%2017%20", admin_);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["title"], "disk 17 full");
  EXPECT_EQ(all_pages("/api/v1/alerts?source=custom&related_type=custom&limit=500", admin_).size(), 120u);
  EXPECT_EQ(all_pages("/api/v1/alerts?source=missing-usage", admin_).size(), 0u);
  const int64_t future = jobs::now_ms() + 3600000;
  EXPECT_EQ(all_pages("/api/v1/alerts?from_ms=" + std::to_string(future), admin_).size(), 0u);
  EXPECT_EQ(all_pages("/api/v1/alerts?to_ms=" + std::to_string(future) + "&limit=500", admin_).size(), 120u);

  // Sorts: first seen ascending, severity descending, across pages.
  auto by_first = all_pages("/api/v1/alerts?sort=first_seen&limit=40", admin_);
  ASSERT_EQ(by_first.size(), 120u);
  for (size_t i = 1; i < by_first.size(); ++i)
    EXPECT_LE(by_first[i - 1]["first_seen_ms"].get<int64_t>(), by_first[i]["first_seen_ms"].get<int64_t>());
  auto by_severity = all_pages("/api/v1/alerts?sort=-severity&limit=33", admin_);
  ASSERT_EQ(by_severity.size(), 120u);
  EXPECT_EQ(ids_of(by_severity).size(), 120u);
  for (size_t i = 1; i < by_severity.size(); ++i)
    EXPECT_GE(rank(by_severity[i - 1]["severity"].get<std::string>()),
              rank(by_severity[i]["severity"].get<std::string>()))
        << "at " << i;

  // Status: repeated or comma-separated; closed ones only when asked for.
  std::vector<int64_t> ids(seen.begin(), seen.end());
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(
        http("POST", "/api/v1/alerts/" + std::to_string(ids[i]) + "/acknowledge", admin_, R"({"reason": "looking"})")
            .status,
        200);
  for (int i = 5; i < 8; ++i)
    ASSERT_EQ(
        http("POST", "/api/v1/alerts/" + std::to_string(ids[i]) + "/close", admin_, R"({"reason": "done"})").status,
        200);
  EXPECT_EQ(all_pages("/api/v1/alerts?limit=500", admin_).size(), 117u) << "closed alerts are left out by default";
  EXPECT_EQ(all_pages("/api/v1/alerts?status=acknowledged", admin_).size(), 5u);
  EXPECT_EQ(all_pages("/api/v1/alerts?status=closed", admin_).size(), 3u);
  EXPECT_EQ(all_pages("/api/v1/alerts?status=acknowledged,closed", admin_).size(), 8u);
  EXPECT_EQ(all_pages("/api/v1/alerts?status=acknowledged&status=closed", admin_).size(), 8u);
  EXPECT_EQ(all_pages("/api/v1/alerts?status=open&status=closed&limit=500", admin_).size(), 115u);

  // Counts over the same alerts.
  r = http("GET", "/api/v1/alerts/counts", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json counts = json(r);
  EXPECT_EQ(counts["by_status"]["open"], 112) << r.body;
  EXPECT_EQ(counts["by_status"]["acknowledged"], 5) << r.body;
  EXPECT_EQ(counts["by_status"]["closed"], 3) << r.body;
  EXPECT_EQ(counts["by_source"]["custom"], 117) << r.body;

  // The caller's view: a tenant administrator sees the tenant's alerts and
  // its subscriptions'; a tenant user only the tenant's own.
  for (const auto& a : all_pages("/api/v1/alerts?limit=500&status=open,acknowledged,closed", t1_admin_))
    EXPECT_TRUE(a["scope"] == "tenant:t1" || a["scope"] == "subscription:s1") << a.dump();
  EXPECT_EQ(all_pages("/api/v1/alerts?limit=500&status=open,acknowledged,closed", t1_admin_).size(), 60u);
  auto user = all_pages("/api/v1/alerts?limit=500&status=open,acknowledged,closed", t1_user_);
  EXPECT_EQ(user.size(), 30u);
  for (const auto& a : user) EXPECT_EQ(a["scope"], "tenant:t1");
  r = http("GET", "/api/v1/alerts/counts", t2_admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  int64_t t2_total = 0;
  const Json t2_counts = json(r);
  for (const auto& [status, n] : t2_counts["by_status"].items()) t2_total += n.get<int64_t>();
  EXPECT_EQ(t2_total, 60) << r.body;
}

TEST_P(AlertsApi, BadQueriesAreProblemsNamingTheParameter) {
  struct Case {
    std::string target;
    int status;
    std::string words;
  } cases[] = {
      {"/api/v1/alerts?limit=many", 400, "limit: 'many' is not a whole number"},
      {"/api/v1/alerts?from_ms=-5", 400, "from_ms: '-5' is not a whole number"},
      {"/api/v1/alerts?to_ms=99999999999999999999", 400, "to_ms"},
      {"/api/v1/alerts?colour=red", 400, "unknown query parameter 'colour'"},
      {"/api/v1/alerts?severity=info&severity=warning", 400, "severity: given more than once"},
      {"/api/v1/alerts?limit=0", 422, "limit"},
      {"/api/v1/alerts?limit=501", 422, "limit"},
      {"/api/v1/alerts?status=sleepy", 422, "status"},
      {"/api/v1/alerts?status=open&status=sleepy", 422, "status"},
      {"/api/v1/alerts?sort=colour", 422, "sort"},
      {"/api/v1/alerts?severity=loud", 422, "severity"},
      {"/api/v1/alerts?cursor=not-a-cursor", 422, "cursor"},
      {"/api/v1/alerts/counts?status=open", 400, "unknown query parameter 'status'"},
      {"/api/v1/alerts/abc", 404, "no alert 'abc'"},
      {"/api/v1/alerts/999999", 404, "999999"},
  };
  for (const auto& c : cases) {
    auto r = http("GET", c.target, admin_);
    EXPECT_EQ(r.status, c.status) << c.target << " -> " << r.body;
    EXPECT_EQ(r.head.getContentType(), "application/problem+json") << c.target;
    EXPECT_NE(r.body.find(c.words), std::string::npos) << c.target << " " << r.body;
    if (c.status == 422) {
      const std::string detail = json(r)["detail"].get<std::string>();
      EXPECT_EQ(detail.rfind(c.words, 0), 0u) << "the detail starts with the field: " << detail;
    }
  }
}

TEST_P(AlertsApi, AnAlertsLifeIsInItsHistoryAndEveryActionInTheAuditTrail) {
  const int64_t id = create(admin_, "critical", "tenant:t1", "backups fail");
  ASSERT_GT(id, 0);
  const std::string at = "/api/v1/alerts/" + std::to_string(id);
  auto r = http("GET", at, admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  Json d = json(r);
  EXPECT_EQ(d["alert"]["source"], "custom");
  EXPECT_EQ(d["alert"]["custom"], true);
  EXPECT_EQ(d["alert"]["status"], "open");
  EXPECT_EQ(d["alert"]["scope"], "tenant:t1");
  EXPECT_EQ(d["alert"]["related_type"], "custom");
  ASSERT_GE(d["history"].size(), 1u) << r.body;
  EXPECT_EQ(d["history"][0]["kind"], "raised");
  EXPECT_TRUE(d["previous"].is_array());

  // Bad bodies name the field; nothing changes.
  struct Case {
    std::string action, body;
    int status;
    std::string words;
  } cases[] = {
      {"close", "{}", 422, "reason"},
      {"close", R"({"reason": ""})", 422, "reason"},
      {"close", R"({"reason": 7})", 422, "reason"},
      {"silence", R"({"until_ms": 1000})", 422, "until_ms"},
      {"silence", R"({"reason": "quiet"})", 422, "until_ms"},
      {"silence", R"({"until_ms": 9223372036854775808})", 422, "until_ms"},
      {"acknowledge", "{bad", 400, "not valid JSON"},
      {"acknowledge", "[1]", 400, "must be a JSON object"},
  };
  for (const auto& c : cases) {
    r = http("POST", at + "/" + c.action, admin_, c.body);
    EXPECT_EQ(r.status, c.status) << c.action << " " << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.words), std::string::npos) << c.action << " " << r.body;
    EXPECT_EQ(r.head.getContentType(), "application/problem+json");
  }
  r = http("POST", at + "/acknowledge", admin_, "{}", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415) << r.body;
  EXPECT_EQ(json(http("GET", at, admin_))["alert"]["status"], "open");

  r = http("POST", at + "/acknowledge", admin_, R"({"reason": "on it"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["alert"]["status"], "acknowledged");
  EXPECT_EQ(json(r)["alert"]["acknowledged_by"], "pat");
  const int64_t until = jobs::now_ms() + 3600000;
  r = http("POST", at + "/silence", admin_,
           R"({"until_ms": )" + std::to_string(until) + R"(, "reason": "maintenance window"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["alert"]["silenced_until_ms"], until);
  r = http("POST", at + "/unsilence", admin_, "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(json(r)["alert"]["silenced_until_ms"].is_null()) << r.body;
  r = http("POST", at + "/close", admin_, R"({"reason": "the backups run again"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json closed = json(r)["alert"];
  EXPECT_EQ(closed["status"], "closed");
  EXPECT_EQ(closed["close_kind"], "manual");
  EXPECT_EQ(closed["closed_by"], "pat");
  EXPECT_EQ(closed["close_reason"], "the backups run again");

  // Closed is final.
  for (const char* action : {"acknowledge", "close", "silence"}) {
    r = http("POST", at + "/" + action, admin_, R"({"reason": "again", "until_ms": )" + std::to_string(until) + "}");
    EXPECT_EQ(r.status, 409) << action << " " << r.body;
  }

  // The history, oldest first.
  d = json(http("GET", at, admin_));
  std::vector<std::string> kinds;
  for (const auto& e : d["history"]) kinds.push_back(e["kind"].get<std::string>());
  ASSERT_GE(kinds.size(), 4u) << d.dump();
  EXPECT_EQ(kinds.front(), "raised");
  EXPECT_EQ(kinds.back(), "closed");
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "acknowledged"), kinds.end()) << d.dump();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "silenced"), kinds.end()) << d.dump();
  for (const auto& e : d["history"]) {
    if (e["kind"] == "acknowledged") {
      EXPECT_EQ(e["reason"], "on it");
    }
    if (e["kind"] == "closed") {
      EXPECT_EQ(e["actor"], "pat");
      EXPECT_EQ(e["reason"], "the backups run again");
    }
  }

  // The audit trail: who, why and from where, for each action carried out.
  std::map<std::string, Json> rows;
  auto audit = json(http("GET", "/api/v1/audit?actor=pat&limit=100", admin_));
  for (const auto& row : audit["items"]) {
    const std::string action = row["action"].get<std::string>();
    if (action.rfind("alerts.", 0) == 0 && row["outcome"].get<std::string>().rfind("refused", 0) != 0) {
      EXPECT_FALSE(rows.count(action) && action != "alerts.silence") << action << " twice: " << audit.dump();
      rows[action] = row;
    }
  }
  for (const char* action : {"alerts.create", "alerts.acknowledge", "alerts.silence", "alerts.close"})
    ASSERT_TRUE(rows.count(action)) << action << " is not in the audit trail: " << audit.dump();
  EXPECT_EQ(rows["alerts.close"]["reason"], "the backups run again");
  EXPECT_EQ(rows["alerts.acknowledge"]["reason"], "on it");
  EXPECT_EQ(rows["alerts.silence"]["reason"], "maintenance window");
  EXPECT_NE(rows["alerts.close"]["source"].get<std::string>().find("127.0.0.1"), std::string::npos);
  EXPECT_NE(rows["alerts.close"]["target"].get<std::string>().find(std::to_string(id)), std::string::npos)
      << rows["alerts.close"].dump();
  // The refused closes are in the trail too: without a reason, and of the
  // closed alert.
  const Json closes = json(http("GET", "/api/v1/audit?action=alerts.close", admin_))["items"];
  int without_reason = 0, of_closed = 0;
  for (const auto& row : closes) {
    const std::string outcome = row["outcome"].get<std::string>();
    without_reason += outcome.rfind("refused: reason", 0) == 0;
    of_closed += outcome.rfind("refused: ", 0) == 0 && outcome.find("closed") != std::string::npos;
  }
  EXPECT_EQ(without_reason, 2) << closes.dump();
  EXPECT_EQ(of_closed, 1) << closes.dump();
}

TEST_P(AlertsApi, CreatedAlertsAreCustomAndCheckedBeforeTheyAreStored) {
  auto r = http("POST", "/api/v1/alerts", admin_,
                R"({"severity": "warning", "title": "Manual check", "message": "Look at the invoices",
                    "scope": "subscription:s2", "area": "billing", "related_type": "invoice",
                    "related_id": "inv-7", "details": {"amount": 12.5}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const Json a = json(r)["alert"];
  EXPECT_EQ(a["source"], "custom");
  EXPECT_EQ(a["custom"], true);
  EXPECT_EQ(a["severity"], "warning");
  EXPECT_EQ(a["area"], "billing");
  EXPECT_EQ(a["related_type"], "invoice");
  EXPECT_EQ(a["related_id"], "inv-7");
  EXPECT_EQ(a["details"]["amount"], 12.5);
  EXPECT_EQ(a["status"], "open");
  // A tenant administrator creates within their tenant only.
  EXPECT_GT(create(t1_admin_, "info", "subscription:s1", "mine"), 0);
  struct Case {
    std::string* token;
    std::string body;
    int status;
    std::string words;
  } cases[] = {
      {&admin_, R"({"severity": "loud", "title": "t", "message": "m", "scope": "tenant:t1"})", 422, "severity"},
      {&admin_, R"({"severity": "info", "message": "m", "scope": "tenant:t1"})", 422, "title"},
      {&admin_, R"({"severity": "info", "title": "t", "message": "m", "scope": "tenant:nowhere"})", 422, "scope"},
      {&admin_, R"({"severity": "info", "title": "t", "message": "m", "scope": "tenant:t1", "details": [1]})", 422,
       "details"},
      {&t1_admin_, R"({"severity": "info", "title": "t", "message": "m", "scope": "tenant:t2"})", 422, "scope"},
      {&t1_user_, R"({"severity": "info", "title": "t", "message": "m", "scope": "tenant:t1"})", 403, "alerts.create"},
      {&admin_, "{bad", 400, "not valid JSON"},
  };
  for (const auto& c : cases) {
    r = http("POST", "/api/v1/alerts", *c.token, c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.words), std::string::npos) << c.body << " " << r.body;
  }
  EXPECT_EQ(all_pages("/api/v1/alerts?limit=500", admin_).size(), 2u) << "the refused ones were not stored";
}

TEST_P(AlertsApi, AnAlertOutsideTheCallersViewIsNotFoundAndActionsNeedThePermission) {
  const int64_t t1 = create(admin_, "critical", "tenant:t1", "t1 is down");
  const int64_t s1 = create(admin_, "warning", "subscription:s1", "s1 has no usage");
  const int64_t platform = create(admin_, "info", "platform", "platform notice");
  ASSERT_GT(t1, 0);
  const std::string at = "/api/v1/alerts/" + std::to_string(t1);
  // The other tenant's administrator: 404 for reading and for every action,
  // the same answer as an id that does not exist.
  auto r = http("GET", at, t2_admin_);
  EXPECT_EQ(r.status, 404) << r.body;
  // The same answer as for an alert that does not exist.
  std::string detail = json(r)["detail"].get<std::string>();
  if (const size_t at_id = detail.find(std::to_string(t1)); at_id != std::string::npos)
    detail.replace(at_id, std::to_string(t1).size(), "999999");
  EXPECT_EQ(detail, json(http("GET", "/api/v1/alerts/999999", t2_admin_))["detail"].get<std::string>());
  for (const char* action : {"acknowledge", "close", "silence", "unsilence"}) {
    r = http("POST", at + "/" + action, t2_admin_,
             R"({"reason": "mine?", "until_ms": )" + std::to_string(jobs::now_ms() + 60000) + "}");
    EXPECT_EQ(r.status, 404) << action << " " << r.body;
  }
  EXPECT_EQ(http("GET", "/api/v1/alerts/" + std::to_string(platform), t1_admin_).status, 404);
  // Its own tenant's administrator may act; its tenant user may read the
  // tenant's alerts but not the subscription's, and may not act (403
  // naming the permission).
  EXPECT_EQ(http("GET", at, t1_admin_).status, 200);
  EXPECT_EQ(http("GET", at, t1_user_).status, 200);
  EXPECT_EQ(http("GET", "/api/v1/alerts/" + std::to_string(s1), t1_user_).status, 404);
  r = http("POST", at + "/close", t1_user_, R"({"reason": "not mine to close"})");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("alerts.manage"), std::string::npos) << r.body;
  EXPECT_EQ(json(http("GET", at, admin_))["alert"]["status"], "open") << "the refused close changed nothing";
  r = http("POST", at + "/close", t1_admin_, R"({"reason": "handled by the tenant"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r)["alert"]["closed_by"], "ted");
}

TEST_P(AlertsApi, MetricsCountAlertsBySourceSeverityAndStatus) {
  const int64_t a = create(admin_, "critical", "tenant:t1", "one");
  create(admin_, "critical", "tenant:t2", "two");
  const int64_t b = create(admin_, "warning", "subscription:s1", "three");
  const int64_t c = create(admin_, "info", "platform", "four");
  ASSERT_GT(a * b * c, 0);
  ASSERT_EQ(http("POST", "/api/v1/alerts/" + std::to_string(b) + "/acknowledge", admin_, "{}").status, 200);
  ASSERT_EQ(http("POST", "/api/v1/alerts/" + std::to_string(c) + "/close", admin_, R"({"reason": "read it"})").status,
            200);
  auto r = http("GET", "/metrics", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  for (const char* want : {"# HELP opk_alerts ", "# TYPE opk_alerts gauge\n",
                           "\nopk_alerts{source=\"custom\",severity=\"critical\",status=\"open\"} 2\n",
                           "\nopk_alerts{source=\"custom\",severity=\"warning\",status=\"acknowledged\"} 1\n",
                           "\nopk_alerts{source=\"custom\",severity=\"info\",status=\"closed\"} 1\n"})
    EXPECT_NE(r.body.find(want), std::string::npos) << want << "\n" << r.body;
  // Combinations with no alert are left out.
  EXPECT_EQ(r.body.find("opk_alerts{source=\"custom\",severity=\"warning\",status=\"open\"}"), std::string::npos)
      << r.body;
  EXPECT_EQ(r.body.find("opk_alerts{source=\"custom\",severity=\"critical\",status=\"closed\"}"), std::string::npos)
      << r.body;
  // Every alert, whoever asks: the gauges are not the caller's view.
  EXPECT_EQ(http("GET", "/metrics", t1_admin_).status, 403);
  if (access("/usr/bin/promtool", X_OK) == 0) {
    const auto file = dir_.path() / "metrics.txt";
    test::write_file(file, r.body);
    const std::string cmd = "/usr/bin/promtool check metrics < " + file.string() + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int st = pclose(p);
    EXPECT_EQ(out.find("opk_alerts"), std::string::npos) << out;
    EXPECT_EQ(out.find("error"), std::string::npos) << out;
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 1) << out;
  }
}

TEST_P(AlertsApi, TheOpenApiDocumentDescribesEveryAlertRoute) {
  auto r = http("GET", "/api/v1/openapi.json", "");
  ASSERT_EQ(r.status, 200);
  const Json doc = json(r);
  const Json& paths = doc["paths"];
  struct Want {
    const char *path, *method, *permission, *success, *answer, *body;
  } wants[] = {
      {"/api/v1/alerts", "get", "alerts.read", "200", "AlertPage", nullptr},
      {"/api/v1/alerts", "post", "alerts.create", "201", "AlertAnswer", "AlertCreate"},
      {"/api/v1/alerts/counts", "get", "alerts.read", "200", "AlertCounts", nullptr},
      {"/api/v1/alerts/{id}", "get", "alerts.read", "200", "AlertDetail", nullptr},
      {"/api/v1/alerts/{id}/acknowledge", "post", "alerts.manage", "200", "AlertAnswer", "AlertAcknowledge"},
      {"/api/v1/alerts/{id}/close", "post", "alerts.manage", "200", "AlertAnswer", "AlertClose"},
      {"/api/v1/alerts/{id}/silence", "post", "alerts.manage", "200", "AlertAnswer", "AlertSilence"},
      {"/api/v1/alerts/{id}/unsilence", "post", "alerts.manage", "200", "AlertAnswer", "AlertUnsilence"},
  };
  for (const auto& w : wants) {
    SCOPED_TRACE(std::string(w.method) + " " + w.path);
    ASSERT_TRUE(paths.contains(w.path) && paths[w.path].contains(w.method));
    const Json& op = paths[w.path][w.method];
    EXPECT_EQ(op["x-permission"], w.permission);
    EXPECT_EQ(op["responses"][w.success]["content"]["application/json"]["schema"]["$ref"],
              std::string("#/components/schemas/") + w.answer);
    if (w.body) {
      EXPECT_EQ(op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                std::string("#/components/schemas/") + w.body);
    }
    EXPECT_TRUE(op["responses"].contains("403"));
    if (std::string(w.path).find("{id}") != std::string::npos) {
      EXPECT_EQ(op["responses"]["404"]["$ref"], "#/components/responses/NotFound");
      EXPECT_EQ(op["parameters"][0]["schema"]["type"], "integer");
    }
  }
  std::set<std::string> query;
  for (const auto& p : paths["/api/v1/alerts"]["get"]["parameters"]) query.insert(p["name"].get<std::string>());
  EXPECT_EQ(query, (std::set<std::string>{"status", "severity", "area", "source", "related_type", "related_id", "scope",
                                          "q", "from_ms", "to_ms", "sort", "limit", "cursor"}));
  EXPECT_TRUE(paths["/api/v1/alerts"]["get"]["responses"]["200"]["headers"].contains("Link"));
  EXPECT_TRUE(paths["/api/v1/alerts/{id}/close"]["post"]["responses"].contains("409"));
  const Json& schemas = doc["components"]["schemas"];
  for (const char* name : {"Alert", "AlertEvent", "AlertPage", "AlertCounts", "AlertDetail"})
    EXPECT_TRUE(schemas.contains(name)) << name;
  EXPECT_EQ(schemas["AlertClose"]["required"], Json::array({"reason"}));
  EXPECT_EQ(schemas["Alert"]["properties"]["status"]["enum"],
            Json::array({"open", "acknowledged", "escalated", "closed"}));
}

// Alerts a source raised, through the API: the kernel runs the test source
// "probe" as the job alerts.probe; its alerts are listed, counted in
// /metrics, seen by the subscription's tenant administrator, closed as
// cleared when a full sweep no longer raises them, and raised again as new
// alerts naming the closed ones.
class SourceAlertsApi : public AlertsApi {
 protected:
  void SetUp() override {
    with_probe_ = true;
    AlertsApi::SetUp();
  }

  // Runs the source now through the API and waits for the run.
  void sweep() {
    auto r = http("POST", "/api/v1/jobs/alerts.probe/run", admin_, R"({"reason": "sweep now"})");
    ASSERT_EQ(r.status, 202) << r.body;
    const int64_t run = json(r)["run_ids"][0].get<int64_t>();
    ASSERT_TRUE(kernel_->engine()->wait(run, 20000)) << "run " << run << " did not complete";
    r = http("GET", "/api/v1/runs/" + std::to_string(run), admin_);
    EXPECT_EQ(json(r)["run"]["status"], "normal") << r.body;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, SourceAlertsApi, ::testing::Values("sqlite", "postgresql"),
                         test::store_backend_name);

TEST_P(SourceAlertsApi, ASourcesAlertsAreListedCountedClearedAndRaisedAgain) {
  sweep();
  auto probe = all_pages("/api/v1/alerts?source=probe&sort=-severity", admin_);
  ASSERT_EQ(probe.size(), 3u);
  EXPECT_EQ(probe[0]["severity"], "critical");
  EXPECT_EQ(probe[0]["related_id"], "obj-1");
  for (const auto& a : probe) {
    EXPECT_EQ(a["custom"], false);
    EXPECT_EQ(a["type"], "probe");
    EXPECT_EQ(a["area"], "testing");
    EXPECT_EQ(a["scope"], "subscription:s1");
    EXPECT_EQ(a["status"], "open");
  }
  // The subscription's tenant administrator sees them; its tenant user and
  // the other tenant's administrator do not.
  EXPECT_EQ(all_pages("/api/v1/alerts?source=probe", t1_admin_).size(), 3u);
  EXPECT_EQ(all_pages("/api/v1/alerts?source=probe", t1_user_).size(), 0u);
  EXPECT_EQ(all_pages("/api/v1/alerts?source=probe", t2_admin_).size(), 0u);
  const std::string obj1 = std::to_string(probe[0]["id"].get<int64_t>());
  EXPECT_EQ(http("GET", "/api/v1/alerts/" + obj1, t2_admin_).status, 404);
  auto r = http("GET", "/metrics", admin_);
  EXPECT_NE(r.body.find("\nopk_alerts{source=\"probe\",severity=\"critical\",status=\"open\"} 1\n"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("\nopk_alerts{source=\"probe\",severity=\"warning\",status=\"open\"} 2\n"), std::string::npos)
      << r.body;

  // The next sweep raises obj-1 only: obj-2 and obj-3 close as cleared.
  test::write_file(control_, "count=1\nscope=subscription:s1\n");
  sweep();
  auto closed = all_pages("/api/v1/alerts?source=probe&status=closed&sort=first_seen", admin_);
  ASSERT_EQ(closed.size(), 2u);
  for (const auto& a : closed) {
    EXPECT_EQ(a["close_kind"], "cleared") << a.dump();
    EXPECT_EQ(a["closed_by"], "system:alert-probe") << a.dump();
  }
  r = http("GET", "/metrics", admin_);
  EXPECT_NE(r.body.find("\nopk_alerts{source=\"probe\",severity=\"warning\",status=\"closed\"} 2\n"), std::string::npos)
      << r.body;
  EXPECT_EQ(r.body.find("opk_alerts{source=\"probe\",severity=\"warning\",status=\"open\"}"), std::string::npos)
      << r.body;
  const std::string obj2 = std::to_string(closed[0]["id"].get<int64_t>());
  auto d = json(http("GET", "/api/v1/alerts/" + obj2, admin_));
  ASSERT_GE(d["history"].size(), 2u) << d.dump();
  EXPECT_EQ(d["history"][0]["kind"], "raised");
  EXPECT_EQ(d["history"][d["history"].size() - 1]["kind"], "closed");
  // obj-1 was raised twice: one alert, two occurrences.
  d = json(http("GET", "/api/v1/alerts/" + obj1, admin_));
  EXPECT_EQ(d["alert"]["status"], "open");
  EXPECT_EQ(d["alert"]["occurrences"], 2) << d.dump();

  // Raised again: new alerts that name the closed ones.
  test::write_file(control_, "count=3\nscope=subscription:s1\n");
  sweep();
  auto again = all_pages("/api/v1/alerts?source=probe&related_id=obj-2", admin_);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["previous_id"], closed[0]["id"]);
  d = json(http("GET", "/api/v1/alerts/" + std::to_string(again[0]["id"].get<int64_t>()), admin_));
  EXPECT_EQ(d["previous"], Json::array({closed[0]["id"]})) << d.dump();
}

// docs/admin-api.md's endpoint table lists each alert route with the
// permission and query parameters the served document gives it.
TEST_P(AlertsApi, TheEndpointTableDocumentsEveryAlertRoute) {
  std::ifstream in(std::string(OPK_SOURCE_DIR) + "/docs/admin-api.md");
  ASSERT_TRUE(in) << "cannot read docs/admin-api.md";
  // "| METHOD | `path` | `permission` | `q1`, `q2` | ..." -> row
  std::map<std::string, std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| GET | `/api/v1/alerts", 0) != 0 && line.rfind("| POST | `/api/v1/alerts", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    for (std::string cell; std::getline(ss, cell, '|');) cells.push_back(cell);
    ASSERT_GE(cells.size(), 4u) << line;
    std::string method = cells[0].substr(1, cells[0].size() - 2);
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    rows[method + " " + cells[1].substr(2, cells[1].size() - 4)] = cells;
  }
  const Json doc = json(http("GET", "/api/v1/openapi.json", ""));
  size_t routes = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    if (path.rfind("/api/v1/alerts", 0) != 0) continue;
    for (const auto& [method, op] : item.items()) {
      ++routes;
      const std::string key = method + " " + path;
      ASSERT_TRUE(rows.count(key)) << key << " is not in docs/admin-api.md's endpoint table";
      EXPECT_EQ(rows[key][2], " `" + op["x-permission"].get<std::string>() + "` ") << key;
      std::string query;
      for (const auto& p : op.value("parameters", Json::array()))
        if (p["in"] == "query") query += (query.empty() ? "`" : ", `") + p["name"].get<std::string>() + "`";
      EXPECT_EQ(rows[key][3], query.empty() ? " " : " " + query + " ") << key;
    }
  }
  EXPECT_EQ(routes, 8u);
  EXPECT_EQ(rows.size(), 8u) << "the table lists a route the server does not serve";
}

}  // namespace
}  // namespace opk
