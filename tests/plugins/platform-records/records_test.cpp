// platform-records on opk::testing's host: every kind of bad row named by
// line and field, all-or-nothing imports, idempotent re-imports, CSV and
// JSON round trips, lists by scope with cursors, the job types, and the
// extension as a consumer plugin sees it.
#include <opskernel/records.hpp>
#include <opskernel/testing.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "support/test_util.h"

namespace opk {
namespace {

using testing::Principal;

const char* const kSubsCsv =
    "id,tenant,product,status,period_start,period_end\r\n"
    "s1,tenant:t1,mail,active,2026-01-01,\r\n"
    "s2,tenant:t1,\"web, \"\"pro\"\"\",suspended,2026-02-01,2026-12-31\r\n"
    "s3,tenant:t2,mail,active,2026-03-01,\r\n";

// On both stores: the plugin's tables and statements in SQLite, and in a
// schema of the Host's own on the tests' PostgreSQL server (OPK_TEST_PG).
class Records : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << s.message();
    for (auto [n, p] : std::vector<std::pair<const char*, const char*>>{{"distributor:d1", "platform"},
                                                                        {"partner:p1", "distributor:d1"},
                                                                        {"tenant:t1", "partner:p1"},
                                                                        {"tenant:t2", "partner:p1"},
                                                                        {"distributor:d2", "platform"},
                                                                        {"partner:p2", "distributor:d2"},
                                                                        {"tenant:t3", "partner:p2"},
                                                                        {"subscription:s1", "tenant:t1"},
                                                                        {"subscription:s2", "tenant:t1"},
                                                                        {"subscription:s3", "tenant:t2"},
                                                                        {"subscription:s9", "tenant:t3"}})
      host_.add_node(n, p);
    host_.grant("TenantAdministrator", "records.read");
    host_.grant("TenantAdministrator", "records.import");
    host_.grant("PartnerAdministrator", "records.read");
    ASSERT_TRUE(host_.load(test::bundled("platform-records")).is_ok());
  }

  testing::Response import(const std::string& kind, const std::string& body, const std::string& type = "text/csv",
                           const Principal& who = Principal::administrator()) {
    return host_.request("POST", "/api/v1/records/" + kind + "/import", body, who, {{"content-type", type}});
  }
  Json json(const testing::Response& r) { return Json::parse(r.body); }
  // The (line, field) of every problem of a refused import.
  std::set<std::pair<int64_t, std::string>> problems(const testing::Response& r) {
    std::set<std::pair<int64_t, std::string>> out;
    const Json doc = json(r);
    for (const auto& p : doc["problems"]) out.insert({p["line"].get<int64_t>(), p["field"].get<std::string>()});
    return out;
  }
  std::string table(const std::string& kind) {
    std::string s;
    for (const auto& row : host_.store_rows("SELECT * FROM p_platform_records_" + kind + " ORDER BY 1, 2")) {
      for (const auto& v : row) s += (v ? *v : "NULL") + "|";
      s += "\n";
    }
    return s;
  }

  testing::Host host_;
  const Principal tenant_admin_{"ted", "TenantAdministrator", "tenant:t1"};
  const Principal partner_admin_{"pam", "PartnerAdministrator", "partner:p1"};
};

INSTANTIATE_TEST_SUITE_P(Stores, Records, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(Records, ImportsCsvAndSaysWhatChanged) {
  auto r = import("subscriptions", kSubsCsv);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r), Json::parse(R"({"inserted": 3, "updated": 0, "unchanged": 0})"));
  EXPECT_EQ(table("subscriptions"),
            "s1|tenant:t1|mail|active|2026-01-01|NULL|NULL|\n"
            "s2|tenant:t1|web, \"pro\"|suspended|2026-02-01|2026-12-31|NULL|\n"
            "s3|tenant:t2|mail|active|2026-03-01|NULL|NULL|\n");
  // The same file again changes nothing and says so.
  r = import("subscriptions", kSubsCsv);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r), Json::parse(R"({"inserted": 0, "updated": 0, "unchanged": 3})"));
  // One row changed, one new.
  r = import("subscriptions", R"([{"id": "s1", "tenant": "tenant:t1", "product": "mail", "status": "cancelled",
      "period_start": "2026-01-01", "period_end": "2026-06-30"}])",
             "application/json");
  EXPECT_EQ(json(r), Json::parse(R"({"inserted": 0, "updated": 1, "unchanged": 0})"));
  // Audited with the counts.
  auto audit = host_.audit_rows();
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].action, "records.import");
  EXPECT_EQ(audit[0].target, "records:subscriptions");
  EXPECT_EQ(audit[0].user_id, "admin");
  EXPECT_EQ(audit[0].outcome, "success");
  EXPECT_EQ(Json::parse(audit[1].after_json), Json::parse(R"({"inserted": 0, "updated": 0, "unchanged": 3})"));
}

TEST_P(Records, ASmallImportIntoALargerTableComparesByKey) {
  ASSERT_EQ(import("subscriptions", kSubsCsv).status, 200);
  Json usage = Json::array(), invoices = Json::array();
  for (int m = 1; m <= 12; ++m) {
    char month[8];
    std::snprintf(month, sizeof month, "2026-%02d", m);
    usage.push_back({{"subscription", "s1"}, {"month", month}, {"quantity", m}, {"cost", m * 1.5}});
    invoices.push_back({{"id", "i" + std::to_string(m)},
                        {"tenant", "tenant:t1"},
                        {"amount", m},
                        {"currency", "EUR"},
                        {"due_date", "2026-01-31"},
                        {"status", "open"}});
  }
  ASSERT_EQ(json(import("usage", usage.dump(), "application/json"))["inserted"], 12);
  ASSERT_EQ(json(import("invoices", invoices.dump(), "application/json"))["inserted"], 12);
  // Two rows of twelve: one as stored, one changed, each found by its key.
  usage = Json::array({usage[2], usage[3]});
  usage[1]["cost"] = 99.5;
  EXPECT_EQ(json(import("usage", usage.dump(), "application/json")),
            Json::parse(R"({"inserted": 0, "updated": 1, "unchanged": 1})"));
  invoices = Json::array({invoices[4], invoices[5]});
  invoices[0]["status"] = "paid";
  EXPECT_EQ(json(import("invoices", invoices.dump(), "application/json")),
            Json::parse(R"({"inserted": 0, "updated": 1, "unchanged": 1})"));
  // The test reads the rows as text: SQLite writes a whole DOUBLE
  // PRECISION as "4.0", PostgreSQL as "4".
  const std::string whole = GetParam() == "postgresql" ? "" : ".0";
  EXPECT_NE(table("usage").find("s1|2026-04|4" + whole + "|99.5|"), std::string::npos) << table("usage");
  EXPECT_NE(table("invoices").find("i5|tenant:t1|NULL|5" + whole + "|EUR|2026-01-31|paid|"), std::string::npos)
      << table("invoices");
}

TEST_P(Records, EveryBadRowIsNamedByLineAndFieldAndNothingIsStored) {
  ASSERT_EQ(import("subscriptions", kSubsCsv).status, 200);
  ASSERT_EQ(import("regions", "id,name,api_url,identity_url\neu,Europe,https://api.eu.example,https://id.eu.example\n")
                .status,
            200);
  const std::string before = table("subscriptions");

  auto r = import("subscriptions",
                  "id,tenant,product,status,period_start,period_end\n"
                  "s1,tenant:t1,mail,active,2026-01-01,\n"            // 2: fine
                  "bad id,tenant:t1,mail,active,2026-01-01,\n"        // 3: id
                  "s4,acme,mail,active,2026-01-01,\n"                 // 4: tenant not a node id
                  "s4,tenant:nope,mail,active,2026-01-01,\n"          // 5: tenant does not exist
                  "s5,tenant:t1,,active,2026-01-01,\n"                // 6: product required
                  "s6,tenant:t1,mail,paused,2026-01-01,\n"            // 7: status enum
                  "s7,tenant:t1,mail,active,2026-13-01,\n"            // 8: period_start date
                  "s2,tenant:t1,mail,active,2026-01-01,2025-01-01\n"  // 9: period_end before start
                  "s3,tenant:t1,mail,active,2026-01-01,\n"            // 10: s3 lies under t2
                  "s1,tenant:t1,mail,active,2026-01-01,\n");          // 11: s1 again
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  EXPECT_EQ(problems(r), (std::set<std::pair<int64_t, std::string>>{{3, "id"},
                                                                    {4, "tenant"},
                                                                    {5, "tenant"},
                                                                    {6, "product"},
                                                                    {7, "status"},
                                                                    {8, "period_start"},
                                                                    {9, "period_end"},
                                                                    {10, "id"},
                                                                    {11, "id"}}));
  EXPECT_EQ(json(r)["problem_count"], 9);
  EXPECT_NE(r.body.find("expected one of active, suspended, cancelled, got 'paused'"), std::string::npos) << r.body;
  EXPECT_EQ(table("subscriptions"), before);
  EXPECT_EQ(host_.audit_rows().back().outcome, "refused");

  // Every other kind's checks.
  struct Case {
    std::string kind, body;
    std::set<std::pair<int64_t, std::string>> want;
  } cases[] = {
      {"usage",
       R"([{"subscription": "s1", "month": "2026-1", "quantity": 1, "cost": 2},
           {"subscription": "nope", "month": "2026-01", "quantity": 1, "cost": 2},
           {"subscription": "s1", "month": "2026-02", "quantity": -1, "cost": "x"},
           {"subscription": "s1", "month": "2026-03", "quantity": 1, "cost": 1, "colour": "red"}])",
       {{1, "month"}, {2, "subscription"}, {3, "quantity"}, {3, "cost"}, {4, "colour"}}},
      {"billing",
       R"([{"tenant": "tenant:t1", "contact": "Ann", "email": "not-an-address"},
           {"tenant": "tenant:t1", "email": "a@b.example"}])",
       {{1, "email"}, {2, "contact"}}},
      {"invoices",
       R"([{"id": "i1", "tenant": "tenant:t1", "subscription": "s3", "amount": 5, "currency": "EUR",
            "due_date": "2026-02-01", "status": "open"},
           {"id": "i2", "tenant": "tenant:t1", "amount": 5, "currency": "euro", "due_date": "2026-02-01",
            "status": "late"}])",
       {{1, "subscription"}, {2, "currency"}, {2, "status"}}},
      {"budgets",
       R"([{"id": "b1", "tenant": "tenant:t1", "amount": 100, "warning_percent": 0},
           {"id": "b2", "tenant": "tenant:t1", "amount": 100, "warning_percent": 50.5}])",
       {{1, "warning_percent"}, {2, "warning_percent"}}},
      {"licenses", R"([{"id": "l1", "product": "db", "expires_on": "2026-02-29"}])", {{1, "expires_on"}}},
      {"regions",
       R"([{"id": "us", "name": "US", "api_url": "ftp://api.us", "identity_url": "https://"}])",
       {{1, "api_url"}, {1, "identity_url"}}},
      {"probes",
       R"([{"region": "mars", "kind": "api", "time_ms": 1, "ok": true},
           {"region": "eu", "kind": "db", "time_ms": 1.5, "ok": "yes"}])",
       {{1, "region"}, {2, "kind"}, {2, "time_ms"}, {2, "ok"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.kind);
    auto rr = import(c.kind, c.body, "application/json");
    ASSERT_EQ(rr.status, 422) << rr.body;
    EXPECT_EQ(problems(rr), c.want) << rr.body;
  }
  EXPECT_EQ(table("usage"), "");
  EXPECT_EQ(table("invoices"), "");
}

TEST_P(Records, MalformedFilesAreRefusedWhole) {
  struct Case {
    std::string body, type;
    int64_t line;
    std::string field, words;
  } cases[] = {
      {"id,tenant,product,status,period_start\ns1,tenant:t1,\"mail,active,2026-01-01\n", "text/csv", 2, "",
       "never closed"},
      {"id,tenant,product,status,period_start\ns1,tenant:t1,ma\"il,active,2026-01-01\n", "text/csv", 2, "",
       "malformed CSV"},
      {"id,tenant,product,status\ns1,tenant:t1,mail,active\n", "text/csv", 1, "period_start", "no such column"},
      {"id,tenant,product,status,period_start,colour\n", "text/csv", 1, "colour", "not a field of subscriptions"},
      {"id,tenant,product,status,period_start\ns1,tenant:t1,mail\n", "text/csv", 2, "", "has 3 fields, the header 5"},
      {"[{\"id\": ", "application/json", 0, "", "not valid JSON"},
      {"{\"id\": \"s1\"}", "application/json", 0, "", "expected a JSON array"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto r = import("subscriptions", c.body, c.type);
    ASSERT_EQ(r.status, 422) << r.body;
    const Json p = json(r)["problems"][0];
    EXPECT_EQ(p["line"], c.line);
    EXPECT_EQ(p["field"], c.field);
    EXPECT_NE(p["problem"].get<std::string>().find(c.words), std::string::npos) << r.body;
  }
  EXPECT_EQ(table("subscriptions"), "");
  EXPECT_EQ(import("subscriptions", "<xml/>", "application/xml").status, 415);

  // A quoted line break keeps its record on the line it starts on; blank
  // lines are skipped but counted.
  auto r = import("subscriptions",
                  "id,tenant,product,status,period_start\r\n"
                  "s1,tenant:t1,\"mail\r\nplus\",active,2026-01-01\r\n"
                  "\r\n"
                  "s2,tenant:t1,web,on,2026-01-01\r\n");
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(problems(r), (std::set<std::pair<int64_t, std::string>>{{5, "status"}}));
  r = import("subscriptions",
             "id,tenant,product,status,period_start\n"
             "\"s 1\nx\",tenant:t1,web,active,2026-01-01\n");
  EXPECT_EQ(problems(r), (std::set<std::pair<int64_t, std::string>>{{2, "id"}}));
  EXPECT_EQ(import("kittens", "[]", "application/json").status, 404);
}

TEST_P(Records, ExportReadsBackAsTheSameRecords) {
  ASSERT_EQ(import("subscriptions", kSubsCsv).status, 200);
  ASSERT_EQ(import("usage",
                   R"({"rows": [{"subscription": "s1", "month": "2026-01", "quantity": 3, "cost": 12.25},
                                {"subscription": "s2", "month": "2026-01", "quantity": 0.5, "cost": 0}]})",
                   "application/json")
                .status,
            200);
  for (const std::string kind : {"subscriptions", "usage"}) {
    for (const std::string format : {"csv", "json"}) {
      SCOPED_TRACE(kind + " as " + format);
      auto out = host_.request("GET", "/api/v1/records/" + kind + "/export?format=" + format);
      ASSERT_EQ(out.status, 200) << out.body;
      auto again = import(kind, out.body, format == "csv" ? "text/csv" : "application/json");
      ASSERT_EQ(again.status, 200) << again.body;
      EXPECT_EQ(json(again)["inserted"], 0);
      EXPECT_EQ(json(again)["updated"], 0);
      EXPECT_GE(json(again)["unchanged"].get<int>(), 2);
    }
  }
  auto csv = host_.request("GET", "/api/v1/records/usage/export?format=csv");
  EXPECT_EQ(csv.header("content-type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body, "subscription,month,quantity,cost\r\ns1,2026-01,3.0,12.25\r\ns2,2026-01,0.5,0.0\r\n");
  auto js = json(host_.request("GET", "/api/v1/records/usage/export"));
  EXPECT_EQ(js[0]["cost"], 12.25);
  EXPECT_TRUE(js[0]["quantity"].is_number());
}

TEST_P(Records, ListsFollowTheCallersScopeWithCursors) {
  ASSERT_EQ(import("subscriptions", kSubsCsv).status, 200);
  auto ids = [&](const Principal& who, const std::string& query) {
    std::vector<std::string> out;
    std::string next;
    for (int page = 0; page < 10; ++page) {
      auto r = host_.request(
          "GET", "/api/v1/records/subscriptions?limit=1" + query + (next.empty() ? "" : "&cursor=" + next), "", who);
      EXPECT_EQ(r.status, 200) << r.body;
      const Json doc = Json::parse(r.body);
      for (const auto& row : doc["rows"]) out.push_back(row["id"]);
      if (!doc["next"].is_string()) break;
      next = doc["next"];
    }
    return out;
  };
  EXPECT_EQ(ids(Principal::administrator(), ""), (std::vector<std::string>{"s1", "s2", "s3"}));
  EXPECT_EQ(ids(tenant_admin_, ""), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(ids(partner_admin_, ""), (std::vector<std::string>{"s1", "s2", "s3"}));
  EXPECT_EQ(ids(Principal::administrator(), "&status=active"), (std::vector<std::string>{"s1", "s3"}));
  EXPECT_EQ(ids(Principal::administrator(), "&period_end="), (std::vector<std::string>{"s1", "s3"}));
  // A distributor elsewhere sees none of them.
  EXPECT_TRUE(ids({"dora", "PartnerAdministrator", "partner:p2"}, "").empty());

  EXPECT_EQ(host_.request("GET", "/api/v1/records/subscriptions?colour=red").status, 400);
  EXPECT_EQ(host_.request("GET", "/api/v1/records/subscriptions?limit=0").status, 400);
  EXPECT_EQ(host_.request("GET", "/api/v1/records/subscriptions?cursor=%%%").status, 400);
  // Platform-wide kinds are the platform's alone; permissions are the kernel's.
  EXPECT_EQ(host_.request("GET", "/api/v1/records/regions", "", tenant_admin_).status, 403);
  EXPECT_EQ(host_.request("GET", "/api/v1/records/subscriptions", "", {"tim", "TenantUser", "tenant:t1"}).status, 403);
  EXPECT_EQ(host_.request("GET", "/api/v1/records/subscriptions", "", Principal::none()).status, 401);
}

TEST_P(Records, ATenantImportsOnlyInsideItsScope) {
  ASSERT_EQ(import("subscriptions", kSubsCsv).status, 200);
  // t1's administrator may not write t2's rows, nor take a key t2 holds.
  auto r = import("invoices",
                  R"([{"id": "i1", "tenant": "tenant:t1", "amount": 5, "currency": "EUR", "due_date": "2026-02-01",
                       "status": "open"},
                      {"id": "i2", "tenant": "tenant:t2", "amount": 5, "currency": "EUR", "due_date": "2026-02-01",
                       "status": "open"}])",
                  "application/json", tenant_admin_);
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(problems(r), (std::set<std::pair<int64_t, std::string>>{{2, "tenant"}}));
  ASSERT_EQ(import("invoices",
                   R"([{"id": "i2", "tenant": "tenant:t2", "amount": 5, "currency": "EUR", "due_date": "2026-02-01",
                        "status": "open"}])",
                   "application/json")
                .status,
            200);
  r = import("invoices",
             R"([{"id": "i2", "tenant": "tenant:t1", "amount": 1, "currency": "EUR", "due_date": "2026-02-01",
                  "status": "void"}])",
             "application/json", tenant_admin_);
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(problems(r), (std::set<std::pair<int64_t, std::string>>{{1, "id"}}));
  EXPECT_EQ(import("regions", "[]", "application/json", tenant_admin_).status, 403);
}

TEST_P(Records, TheJobTypesImportAndExportFiles) {
  test::TempDir dir;
  test::write_file(dir.path() / "subs.csv", kSubsCsv);
  const std::string subs = (dir.path() / "subs.csv").string(), out = (dir.path() / "out.json").string();
  auto dry = host_.run("records-import", R"({"kind": "subscriptions", "path": ")" + subs + "\"}", {.dry_run = true});
  EXPECT_EQ(dry.outcome, OPK_OUTCOME_NORMAL) << dry.summary;
  EXPECT_EQ(table("subscriptions"), "");
  auto r = host_.run("records-import", R"({"kind": "subscriptions", "path": ")" + subs + "\"}");
  EXPECT_EQ(r.outcome, OPK_OUTCOME_NORMAL) << r.summary;
  EXPECT_NE(r.summary.find("3 inserted, 0 updated, 0 unchanged"), std::string::npos) << r.summary;
  r = host_.run("records-import", R"({"kind": "subscriptions", "path": ")" + subs + "\"}");
  EXPECT_NE(r.summary.find("0 inserted, 0 updated, 3 unchanged"), std::string::npos) << r.summary;

  auto e = host_.run("records-export", R"({"kind": "subscriptions", "path": ")" + out + "\"}");
  EXPECT_EQ(e.outcome, OPK_OUTCOME_NORMAL) << e.summary;
  EXPECT_EQ(Json::parse(test::read_file(out)).size(), 3u);
  e = host_.run("records-export", R"({"kind": "subscriptions", "path": ")" + out + "\"}");
  EXPECT_EQ(e.outcome, OPK_OUTCOME_ERROR);
  EXPECT_NE(e.summary.find("exists"), std::string::npos) << e.summary;

  test::write_file(dir.path() / "bad.csv", "id,tenant,product,status,period_start\ns9,tenant:t1,x,active,2026-01-01\n");
  auto bad =
      host_.run("records-import", R"({"kind": "subscriptions", "path": ")" + (dir.path() / "bad.csv").string() + "\"}");
  EXPECT_EQ(bad.outcome, OPK_OUTCOME_ERROR);
  EXPECT_TRUE(bad.logged("line 2, id: hierarchy node 'subscription:s9' does not lie under tenant:t1"));
  EXPECT_NE(bad.summary.find("1 problems; nothing was imported"), std::string::npos) << bad.summary;
  EXPECT_EQ(host_.run("records-import", R"({"kind": "subscriptions", "path": "/nonexistent.txt"})").outcome,
            OPK_OUTCOME_ERROR);
}

// --- The extension, as a consumer plugin sees it ------------------------------

class RecordsExtension : public Records {
 protected:
  void SetUp() override {
    Records::SetUp();
    ASSERT_TRUE(host_.load(test::fixture("records_consumer")).is_ok());
    ASSERT_EQ(import("subscriptions", kSubsCsv).status, 200);
    ASSERT_EQ(import("regions",
                     "id,name,api_url,identity_url\neu,Europe,https://api.eu.example,https://id.eu.example\n"
                     "us,America,http://api.us.example:8080/v1,https://id.us.example\n")
                  .status,
              200);
  }
  Json consume(const std::string& params, testing::RunResult* result = nullptr) {
    auto r = host_.run("records-consumer", params);
    if (result) *result = r;
    EXPECT_EQ(r.status, result ? r.status : OPK_OK) << r.summary << r.error;
    return r.output_json.empty() ? Json() : Json::parse(r.output_json);
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, RecordsExtension, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST_P(RecordsExtension, ListsPageByPageWithTypedValues) {
  Json out = consume(R"({"page_size": 2})");
  ASSERT_EQ(out["subscriptions"].size(), 3u);
  EXPECT_EQ(out["pages"], 2);
  EXPECT_EQ(out["subscriptions"][1],
            Json::parse(R"({"id": "s2", "tenant": "tenant:t1", "product": "web, \"pro\"", "status": "suspended",
                            "period_start": "2026-02-01", "period_end": "2026-12-31", "region": null})"));
  EXPECT_TRUE(out["subscriptions"][0]["period_end"].is_null());
  out = consume(R"({"filter": {"tenant": "tenant:t2"}})");
  ASSERT_EQ(out["subscriptions"].size(), 1u);
  EXPECT_EQ(out["subscriptions"][0]["id"], "s3");
  testing::RunResult bad;
  consume(R"({"filter": {"colour": "red"}})", &bad);
  EXPECT_NE(bad.status, OPK_OK);
  EXPECT_TRUE(bad.logged("records list: colour: not a field of subscriptions")) << bad.summary;
}

TEST_P(RecordsExtension, RecordsProbesAndAnswersTheNewestPerRegionAndKind) {
  Json out = consume(R"({"probes": [
      {"region": "eu", "kind": "api", "time_ms": 1000, "ok": true, "latency_ms": 40},
      {"region": "eu", "kind": "api", "time_ms": 2000, "ok": false, "detail": "HTTP 503"},
      {"region": "eu", "kind": "identity", "time_ms": 1500, "ok": true},
      {"region": "us", "kind": "api", "time_ms": 900, "ok": true, "latency_ms": 80}]})");
  EXPECT_EQ(out["latest"], Json::parse(R"([
      {"region": "eu", "kind": "api", "time_ms": 2000, "ok": false, "latency_ms": null, "detail": "HTTP 503"},
      {"region": "eu", "kind": "identity", "time_ms": 1500, "ok": true, "latency_ms": null, "detail": null},
      {"region": "us", "kind": "api", "time_ms": 900, "ok": true, "latency_ms": 80, "detail": null}])"));
  out = consume(R"({"probe_kind": "identity"})");
  ASSERT_EQ(out["latest"].size(), 1u);
  EXPECT_EQ(out["latest"][0]["region"], "eu");

  testing::RunResult bad;
  consume(R"({"probes": [{"region": "mars", "kind": "api", "time_ms": 1, "ok": true}]})", &bad);
  EXPECT_EQ(bad.status, OPK_ERR_NOT_FOUND);
  EXPECT_TRUE(bad.logged("records record_probe: region: no region 'mars'")) << bad.summary;
  consume(R"({"probes": [{"region": "eu", "kind": "api", "time_ms": 1}]})", &bad);
  EXPECT_EQ(bad.status, OPK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(bad.logged("records record_probe: ok: required")) << bad.summary;
}

TEST_P(RecordsExtension, RecordsProbesInOneCallAllOrNothing) {
  auto calls = [&](const Json& list) { return consume(Json({{"calls", list}}).dump())["calls"]; };
  const Json good = {{"region", "eu"}, {"kind", "api"}, {"time_ms", 1000}, {"ok", true}, {"latency_ms", 12}};
  const Json mars = {{"region", "mars"}, {"kind", "api"}, {"time_ms", 1000}, {"ok", true}};
  const Json no_ok = {{"region", "us"}, {"kind", "identity"}, {"time_ms", 1000}};
  Json out = calls(Json::array({{{"op", "record_probes"}, {"request", {{"probes", Json::array({good, mars})}}}},
                                {{"op", "record_probes"}, {"request", {{"probes", Json::array({good, no_ok})}}}},
                                {{"op", "record_probes"}, {"request", {{"probes", Json::array()}}}}}));
  EXPECT_EQ(out[0]["status"], OPK_ERR_NOT_FOUND);
  EXPECT_NE(out[0]["error"].get<std::string>().find("records record_probes: probes[1].region: no region 'mars'"),
            std::string::npos)
      << out[0];
  EXPECT_EQ(out[1]["status"], OPK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(out[1]["error"].get<std::string>().find("probes[1].ok: required"), std::string::npos) << out[1];
  EXPECT_EQ(out[2]["error"], "records record_probes: probes: required, an array of 1 to 1000 probes");
  EXPECT_EQ(*host_.store_rows("SELECT COUNT(*) FROM p_platform_records_probes")[0][0], "0");  // none of them
  Json second = good;
  second["kind"] = "identity";
  out = calls(Json::array({{{"op", "record_probes"}, {"request", {{"probes", Json::array({good, second})}}}}}));
  EXPECT_EQ(out[0]["answer"], Json::parse(R"({"recorded": 2})"));
  EXPECT_EQ(consume("{}")["latest"].size(), 2u);
}

TEST_P(RecordsExtension, UpsertsUsageBillingLinesAndCommissionsByKeyAllOrNothing) {
  // Version 2's fields: a subscription's region, a region's provider and currency.
  ASSERT_EQ(import("regions",
                   "id,name,api_url,identity_url,usage_url,currency\n"
                   "eu,Europe,https://api.eu.example,https://id.eu.example,http://usage.eu.example/v1,EUR\n")
                .status,
            200);
  auto r = import("subscriptions",
                  "id,tenant,product,status,period_start,region\ns1,tenant:t1,mail,active,2026-01-01,eu\n"
                  "s3,tenant:t2,mail,active,2026-03-01,mars\n");
  EXPECT_EQ(problems(r), (std::set<std::pair<int64_t, std::string>>{{3, "region"}}));
  ASSERT_EQ(
      import("subscriptions", "id,tenant,product,status,period_start,region\ns1,tenant:t1,mail,active,2026-01-01,eu\n")
          .status,
      200);
  Json subs = consume(R"({"filter": {"region": "eu"}})")["subscriptions"];
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0]["id"], "s1");
  auto calls = [&](const Json& list) { return consume(Json({{"calls", list}}).dump())["calls"]; };
  auto count = [&](const std::string& table) {
    return std::stoll(*host_.store_rows("SELECT COUNT(*) FROM p_platform_records_" + table)[0][0]);
  };
  const Json usage = Json::parse(R"([{"subscription": "s1", "month": "2026-01", "quantity": 3, "cost": 12.5},
                                     {"subscription": "s3", "month": "2026-01", "quantity": 1, "cost": 2}])");
  Json out = calls(Json::array({{{"op", "upsert"}, {"request", {{"kind", "usage"}, {"rows", usage}}}},
                                {{"op", "upsert"}, {"request", {{"kind", "usage"}, {"rows", usage}}}}}));
  EXPECT_EQ(out[0]["answer"], Json::parse(R"({"inserted": 2, "updated": 0, "unchanged": 0})")) << out;
  EXPECT_EQ(out[1]["answer"], Json::parse(R"({"inserted": 0, "updated": 0, "unchanged": 2})")) << out;
  Json changed = usage;
  changed[0]["cost"] = 13;
  changed[1]["quantity"] = -1;
  Json unknown = usage;
  unknown[1]["subscription"] = "s7";
  out = calls(Json::array({{{"op", "upsert"}, {"request", {{"kind", "usage"}, {"rows", changed}}}},
                           {{"op", "upsert"}, {"request", {{"kind", "usage"}, {"rows", unknown}}}},
                           {{"op", "upsert"}, {"request", {{"kind", "regions"}, {"rows", usage}}}},
                           {{"op", "upsert"}, {"request", {{"kind", "usage"}, {"rows", Json::array()}}}}}));
  EXPECT_EQ(out[0]["status"], OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(out[0]["error"], "records upsert: rows[1].quantity: must be 0 or more, got '-1' (nothing was written)");
  EXPECT_EQ(out[1]["error"],
            "records upsert: rows[1].subscription: no subscription 's7' is stored (import subscriptions first) "
            "(nothing was written)");
  EXPECT_EQ(out[2]["error"], "records upsert: kind: expected usage, billing_lines or commissions, got 'regions'");
  EXPECT_EQ(out[3]["error"], "records upsert: rows: required, an array of 1 to 1000 rows");
  EXPECT_EQ(*host_.store_rows("SELECT cost FROM p_platform_records_usage WHERE subscription = 's1'")[0][0], "12.5");
  EXPECT_EQ(count("usage"), 2);

  const Json line = {{"subscription", "s1"}, {"month", "2026-01"}, {"tenant", "tenant:t1"}, {"region", "eu"},
                     {"quantity", 3},        {"amount", 12.5},     {"currency", "EUR"},     {"run_id", 7}};
  Json commission = {{"subscription", "s1"},  {"month", "2026-01"},    {"role", "partner"},
                     {"party", "partner:p1"}, {"tenant", "tenant:t1"}, {"percent", 10},
                     {"base", 12.5},          {"amount", 1.25},        {"currency", "EUR"}};
  Json wrong_tenant = line;
  wrong_tenant["tenant"] = "tenant:t2";
  Json no_party = commission;
  no_party["party"] = "partner:nobody";
  out = calls(Json::array({{{"op", "upsert"}, {"request", {{"kind", "billing_lines"}, {"rows", {line}}}}},
                           {{"op", "upsert"}, {"request", {{"kind", "commissions"}, {"rows", {commission}}}}},
                           {{"op", "upsert"}, {"request", {{"kind", "billing_lines"}, {"rows", {wrong_tenant}}}}},
                           {{"op", "upsert"}, {"request", {{"kind", "commissions"}, {"rows", {no_party}}}}}}));
  EXPECT_EQ(out[0]["answer"]["inserted"], 1) << out;
  EXPECT_EQ(out[1]["answer"]["inserted"], 1) << out;
  EXPECT_EQ(out[2]["error"],
            "records upsert: rows[0].subscription: subscription 's1' belongs to tenant:t1, not tenant:t2 (nothing was "
            "written)");
  EXPECT_EQ(out[3]["error"],
            "records upsert: rows[0].party: 'partner:nobody' does not exist or lies outside your scope (nothing was "
            "written)");
  commission["amount"] = 1.5;
  out = calls(Json::array({{{"op", "upsert"}, {"request", {{"kind", "commissions"}, {"rows", {commission}}}}}}));
  EXPECT_EQ(out[0]["answer"], Json::parse(R"({"inserted": 0, "updated": 1, "unchanged": 0})")) << out;
  EXPECT_EQ(count("billing_lines"), 1);
  EXPECT_EQ(count("commissions"), 1);
  // Listed and exported as the other kinds; commissions are the platform's.
  auto lines = json(host_.request("GET", "/api/v1/records/billing_lines", "", tenant_admin_));
  ASSERT_EQ(lines["rows"].size(), 1u);
  EXPECT_EQ(lines["rows"][0]["amount"], 12.5);
  EXPECT_EQ(host_.request("GET", "/api/v1/records/commissions", "", tenant_admin_).status, 403);
  auto csv = host_.request("GET", "/api/v1/records/commissions/export?format=csv");
  EXPECT_EQ(csv.body,
            "subscription,month,role,party,tenant,percent,base,amount,currency,run_id\r\n"
            "s1,2026-01,partner,partner:p1,tenant:t1,10.0,12.5,1.5,EUR,\r\n");
}

TEST_P(RecordsExtension, CountsAndDeletesOldUsageInBoundedBatchesNeverTheCurrentMonth) {
  host_.clock().set(1796126400000);  // 2026-12-01T12:00:00Z
  ASSERT_EQ(import("usage",
                   "subscription,month,quantity,cost\n"
                   "s1,2024-01,1,1\ns2,2024-01,1,1\ns3,2024-01,1,1\n"
                   "s1,2024-02,1,1\ns2,2024-02,1,1\n"
                   "s1,2026-11,1,1\ns1,2026-12,1,1\n")
                .status,
            200);
  auto calls = [&](const Json& list) { return consume(Json({{"calls", list}}).dump())["calls"]; };
  auto rows = [&] { return std::stoll(*host_.store_rows("SELECT COUNT(*) FROM p_platform_records_usage")[0][0]); };
  Json out = calls(Json::array({{{"op", "usage_months"}, {"request", {{"before", "2026-11"}}}}}));
  EXPECT_EQ(out[0]["answer"], Json::parse(R"({"months": [{"month": "2024-01", "rows": 3},
                                                       {"month": "2024-02", "rows": 2}]})"));
  // Oldest first, at most `limit` a call, each call whole.
  out = calls(Json::array({{{"op", "delete_usage"}, {"request", {{"before", "2026-11"}, {"limit", 4}}}},
                           {{"op", "delete_usage"}, {"request", {{"before", "2026-11"}, {"limit", 4}}}},
                           {{"op", "delete_usage"}, {"request", {{"before", "2026-11"}, {"limit", 4}}}}}));
  EXPECT_EQ(out[0]["answer"], Json::parse(R"({"deleted": 4, "months": [{"month": "2024-01", "rows": 3},
                                                                     {"month": "2024-02", "rows": 1}]})"));
  EXPECT_EQ(out[1]["answer"], Json::parse(R"({"deleted": 1, "months": [{"month": "2024-02", "rows": 1}]})"));
  EXPECT_EQ(out[2]["answer"], Json::parse(R"({"deleted": 0, "months": []})"));
  EXPECT_EQ(rows(), 2);
  // The current month is out of reach; bad requests are named.
  out = calls(Json::array({{{"op", "delete_usage"}, {"request", {{"before", "2027-01"}, {"limit", 10}}}},
                           {{"op", "delete_usage"}, {"request", {{"before", "2026-13"}, {"limit", 10}}}},
                           {{"op", "delete_usage"}, {"request", {{"before", "2026-12"}}}},
                           {{"op", "delete_usage"}, {"request", {{"before", "2026-12"}, {"limit", 10001}}}},
                           {{"op", "usage_months"}, {"request", Json::object()}},
                           {{"op", "delete_all"}, {"request", Json::object()}}}));
  EXPECT_EQ(out[0]["status"], OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(out[0]["error"],
            "records delete_usage: before: 2027-01 is after the current month 2026-12: usage of the current month is "
            "still being collected");
  EXPECT_EQ(out[1]["error"], "records delete_usage: before: expected a month YYYY-MM, got '2026-13'");
  EXPECT_EQ(out[2]["error"], "records delete_usage: limit: required, a whole number 1..10000");
  EXPECT_EQ(out[3]["error"], "records delete_usage: limit: must be 1..10000, got 10001");
  EXPECT_EQ(out[4]["error"], "records usage_months: before: required, a month YYYY-MM");
  EXPECT_EQ(out[5]["status"], OPK_ERR_UNSUPPORTED);
  EXPECT_EQ(rows(), 2);
  out = calls(Json::array({{{"op", "delete_usage"}, {"request", {{"before", "2026-12"}, {"limit", 10}}}}}));
  EXPECT_EQ(out[0]["answer"]["deleted"], 1);  // 2026-11; 2026-12 stays
  EXPECT_EQ(*host_.store_rows("SELECT month FROM p_platform_records_usage")[0][0], "2026-12");
}

TEST_P(RecordsExtension, MarksOpenInvoicesPastTheirDueDateOverdueInBatchesOldestFirst) {
  host_.clock().set(1797336000000);  // 2026-12-15T12:00:00Z
  ASSERT_EQ(import("invoices",
                   "id,tenant,subscription,amount,currency,due_date,status\n"
                   "a,tenant:t1,s1,10.5,EUR,2026-12-01,open\n"
                   "b,tenant:t2,,20,EUR,2026-11-01,open\n"
                   "c,tenant:t1,,30,EUR,2026-12-14,open\n"
                   "d,tenant:t1,,40,EUR,2026-12-15,open\n"
                   "e,tenant:t1,,50,EUR,2026-10-01,paid\n"
                   "f,tenant:t2,,60,EUR,2026-09-01,overdue\n")
                .status,
            200);
  // A row written behind the import's checks.
  host_.store_rows(
      "INSERT INTO p_platform_records_invoices (id, tenant, subscription, amount, currency, due_date, status) VALUES "
      "('g', 'tenant:t1', NULL, 70, 'EUR', '2026-1-5', 'open')");
  auto calls = [&](const Json& list) { return consume(Json({{"calls", list}}).dump())["calls"]; };
  auto status = [&](const std::string& id) {
    return *host_.store_rows("SELECT status FROM p_platform_records_invoices WHERE id = '" + id + "'")[0][0];
  };
  auto ids = [](const Json& answer) {
    std::vector<std::string> out;
    for (const auto& row : answer["invoices"]) out.push_back(row["id"]);
    return out;
  };
  using Ids = std::vector<std::string>;
  // A dry run counts and changes nothing.
  Json out = calls(
      Json::array({{{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 2}, {"dry_run", true}}}}}));
  EXPECT_EQ(ids(out[0]["answer"]), (Ids{"b", "a"}));
  EXPECT_EQ(out[0]["answer"]["count"], 3);
  EXPECT_EQ(status("b"), "open");
  // Oldest due first, at most `limit` a call, the rows as changed.
  out = calls(Json::array({{{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 2}}}},
                           {{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 2}}}},
                           {{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 2}}}}}));
  EXPECT_EQ(ids(out[0]["answer"]), (Ids{"b", "a"}));
  EXPECT_EQ(out[0]["answer"]["invoices"][1],
            Json::parse(R"({"id": "a", "tenant": "tenant:t1", "subscription": "s1", "amount": 10.5, "currency": "EUR",
                            "due_date": "2026-12-01", "status": "overdue"})"));
  EXPECT_TRUE(out[0]["answer"]["skipped"].empty()) << "a full batch does not look";
  EXPECT_EQ(ids(out[1]["answer"]), (Ids{"c"}));
  EXPECT_EQ(out[1]["answer"]["skipped"],
            Json::parse(R"([{"id": "g", "tenant": "tenant:t1", "due_date": "2026-1-5"}])"));
  EXPECT_TRUE(ids(out[2]["answer"]).empty());
  EXPECT_EQ(status("d"), "open") << "due today";
  EXPECT_EQ(status("e"), "paid");
  EXPECT_EQ(status("g"), "open");
  // One tenant's; bad requests are named and change nothing.
  host_.store_rows("UPDATE p_platform_records_invoices SET status = 'open' WHERE id IN ('a', 'b')");
  out = calls(Json::array(
      {{{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 10}, {"tenant", "tenant:t2"}}}},
       {{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-16"}, {"limit", 10}}}},
       {{"op", "mark_overdue"}, {"request", {{"as_of", "2026-02-30"}, {"limit", 10}}}},
       {{"op", "mark_overdue"}, {"request", {{"limit", 10}}}},
       {{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 0}}}},
       {{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 10}, {"tenant", "t1"}}}},
       {{"op", "mark_overdue"}, {"request", {{"as_of", "2026-12-15"}, {"limit", 10}, {"dry_run", "yes"}}}}}));
  EXPECT_EQ(ids(out[0]["answer"]), (Ids{"b"}));
  EXPECT_EQ(out[1]["status"], OPK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(out[1]["error"],
            "records mark_overdue: as_of: 2026-12-16 is after today (2026-12-15): an invoice is not overdue before "
            "its due date has passed");
  EXPECT_EQ(out[2]["error"], "records mark_overdue: as_of: expected a date YYYY-MM-DD, got '2026-02-30'");
  EXPECT_EQ(out[3]["error"], "records mark_overdue: as_of: required, a date YYYY-MM-DD");
  EXPECT_EQ(out[4]["error"], "records mark_overdue: limit: must be 1..10000, got 0");
  EXPECT_EQ(out[5]["error"], "records mark_overdue: tenant: expected tenant:<name>");
  EXPECT_EQ(out[6]["error"], "records mark_overdue: dry_run: expected true or false");
  EXPECT_EQ(status("a"), "open");
}

}  // namespace
}  // namespace opk
