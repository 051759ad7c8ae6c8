// license-validity-refresh in a real kernel with platform-records and the
// admin API: the run opens the license-validity source's alerts through the
// alert engine (platform-only, the expired one critical and escalated
// once), a rerun changes nothing, and a renewal closes them as cleared.
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk {
namespace {

using Json = nlohmann::json;

// "YYYY-MM-DD" of today (UTC) plus `days`.
std::string license_day(int days) {
  using namespace std::chrono;
  const year_month_day d{floor<std::chrono::days>(system_clock::now()) + std::chrono::days(days)};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return buf;
}

// On both stores: the embedded SQLite file and a fresh PostgreSQL database
// (the plugins' tables and statements unchanged).
class LicenseValidityJobKernel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    port_ = test::free_port();
    auto cfg = test::quiet_config(
        dir_, test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("platform-records"),
                                       test::bundled("alert-license-validity")}));
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    const std::string e = test::use_store_backend(GetParam(), &db_, &cfg);
    ASSERT_TRUE(e.empty()) << e;
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
    ASSERT_TRUE(kernel_->identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
    ASSERT_TRUE(kernel_->identity()->issue_token("pat", 0, "test", &admin_));
  }
  void TearDown() override { kernel_->stop(); }

  test::Reply http(const std::string& method, const std::string& target, const std::string& body = "") {
    return test::http_request(port_, method, target, admin_, body);
  }
  void licenses(const Json& rows) {
    auto r = http("POST", "/api/v1/records/licenses/import", rows.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  Json refresh() {
    jobs::RunView v = test::run_and_wait(*kernel_, test::manual("license-validity-refresh"));
    EXPECT_EQ(v.row.outcome, "NORMAL") << v.row.summary;
    std::vector<std::string> steps;
    for (const auto& s : v.steps) steps.push_back(s.step_id);
    EXPECT_EQ(steps, (std::vector<std::string>{"licenses", "alerts"}));
    return Json::parse(v.row.output_json, nullptr, false);
  }
  Json alerts(const std::string& query) {
    auto r = http("GET", "/api/v1/alerts?" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false).value("alerts", Json::array());
  }
  static std::string counts(const Json& o) {
    return std::to_string(o.value("opened", -1)) + " " + std::to_string(o.value("escalated", -1)) + " " +
           std::to_string(o.value("closed", -1)) + " " + std::to_string(o.value("unchanged", -1));
  }

  test::TempDir dir_;
  test::PgDatabase db_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::string admin_;
};

INSTANTIATE_TEST_SUITE_P(Backends, LicenseValidityJobKernel, ::testing::Values("sqlite", "postgresql"),
                         test::store_backend_name);

TEST_P(LicenseValidityJobKernel, OpensEscalatesOnceAndClosesAfterRenewal) {
  licenses(Json::array({{{"id", "soon"}, {"product", "Mail"}, {"expires_on", license_day(30)}},
                        {{"id", "gone"}, {"product", "Chat"}, {"expires_on", license_day(-3)}},
                        {{"id", "fine"}, {"product", "Docs"}, {"expires_on", license_day(400)}}}));
  EXPECT_EQ(counts(refresh()), "2 1 0 0");
  Json open = alerts("source=license-validity");
  ASSERT_EQ(open.size(), 2u) << open.dump();
  for (const auto& a : open) {
    EXPECT_TRUE(a["platform_only"].get<bool>());
    if (a["related_id"] == "gone") {
      EXPECT_EQ(a["severity"], "critical");
      EXPECT_EQ(a["escalation_level"], 1);
    } else {
      EXPECT_EQ(a["related_id"], "soon");
      EXPECT_EQ(a["severity"], "warning");
    }
  }
  EXPECT_EQ(counts(refresh()), "0 0 0 2");
  EXPECT_EQ(alerts("source=license-validity&related_id=gone")[0]["escalation_level"], 1);

  licenses(Json::array(
      {{{"id", "soon"}, {"product", "Mail"}, {"expires_on", license_day(30)}, {"renewed_on", license_day(0)}},
       {{"id", "gone"}, {"product", "Chat"}, {"expires_on", license_day(362)}}}));
  EXPECT_EQ(counts(refresh()), "0 0 2 0");
  EXPECT_TRUE(alerts("source=license-validity").empty());
  Json closed = alerts("source=license-validity&status=closed");
  ASSERT_EQ(closed.size(), 2u) << closed.dump();
  EXPECT_EQ(closed[0]["close_kind"], "cleared");
}

}  // namespace
}  // namespace opk
