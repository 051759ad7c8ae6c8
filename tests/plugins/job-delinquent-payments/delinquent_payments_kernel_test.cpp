// delinquent-payment-notifications in a real kernel (admin-http,
// platform-records, job-delinquent-payments, channel-webhook,
// notifications) with a notification rule on the reminder's event kind
// delivering to the Standard Webhooks receiver
// (tests/support/webhook-receiver, which verifies every signature): a run
// with reminders off marks and sends nothing; once they are turned on (a
// restart with the setting changed) each overdue invoice is delivered once,
// verified, with its payload, across a second run, a kernel restart, and a
// run that lost the plugin's own record of the reminders it sent (the
// kernel's key decides).
#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <set>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/servers.h"
#include "support/webhook_kernel.h"

namespace opk {
namespace {

using Json = nlohmann::json;

constexpr const char* kType = "delinquent-payment-notifications";

class DelinquentPaymentsKernel : public test::WebhookKernelTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(set_up({test::bundled("admin-http"), test::bundled("platform-records"),
                                    test::bundled("job-delinquent-payments"), test::bundled("channel-webhook"),
                                    test::bundled("notifications")}));
    cfg_.plugins["job-delinquent-payments"] = {{"send_reminders", "false"}};
  }

  // The invoice ids of the reminders the receiver got, in order.
  std::vector<std::string> delivered() {
    std::vector<std::string> out;
    for (const Json& g : received(requests_)) {
      const Json body = Json::parse(g["body"].get<std::string>(), nullptr, false);
      EXPECT_EQ(body.value("type", ""), "plugin.job-delinquent-payments.invoice.overdue");
      EXPECT_EQ(g["verified"], Json({true})) << g.dump();
      out.push_back(body["data"]["invoice"].value("id", ""));
    }
    return out;
  }

  std::string run() {
    const auto v = test::run_and_wait(*kernel_, test::manual(kType));
    EXPECT_EQ(v.row.outcome, store::kNormal) << v.row.summary;
    return v.row.summary;
  }
};

TEST_F(DelinquentPaymentsKernel, EachOverdueInvoiceIsDeliveredOnceAcrossRerunsAndRestarts) {
  start();
  auto* id = kernel_->identity();
  ASSERT_TRUE(id->add_node("distributor:d", "platform", "D"));
  ASSERT_TRUE(id->add_node("partner:p", "distributor:d", "P"));
  ASSERT_TRUE(id->add_node("tenant:acme", "partner:p", "Acme"));
  auto r = test::http_request(port_, "POST", "/api/v1/notifications/groups", admin_,
                              Json({{"id", "billing"}, {"name", "Billing"}, {"scope", "platform"}}).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  r = test::http_request(port_, "POST", "/api/v1/notifications/groups/billing/rules", admin_,
                         Json({{"events", {"plugin.job-delinquent-payments.invoice.overdue"}},
                               {"channel", "webhook"},
                               {"recipients", {{{"to", url("/dunning")}, {"options", {{"secrets", {kSecret}}}}}}}})
                             .dump());
  ASSERT_EQ(r.status, 201) << r.body;
  // Two invoices long past due, one not due for years, one paid.
  int64_t changed = 0;
  ASSERT_TRUE(kernel_->store()->execute(
      "INSERT INTO p_platform_records_invoices (id, tenant, subscription, amount, currency, due_date, status) VALUES "
      "('inv-1', 'tenant:acme', NULL, 120.5, 'EUR', '2020-01-31', 'open'), "
      "('inv-2', 'tenant:acme', NULL, 80, 'EUR', '2020-02-29', 'open'), "
      "('inv-3', 'tenant:acme', NULL, 99, 'EUR', '2999-01-01', 'open'), "
      "('inv-4', 'tenant:acme', NULL, 10, 'EUR', '2020-01-01', 'paid')",
      {}, &changed));
  ASSERT_EQ(changed, 4);

  // Reminders off: marked, nothing sent.
  EXPECT_EQ(run(), "marked 2 invoices overdue, reminders off");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(received(requests_).empty());
  // Turned on: the invoices left overdue are reminded once.
  kernel_->stop();
  cfg_.plugins["job-delinquent-payments"]["send_reminders"] = "true";
  start();
  EXPECT_EQ(run(), "marked 0 invoices overdue, reminded 2");
  ASSERT_TRUE(eventually([&] { return received(requests_).size() >= 2; })) << receiver_.errors();
  EXPECT_EQ(run(), "marked 0 invoices overdue, reminded 0");

  // The kernel restarts; a run that lost the plugin's own record emits
  // again, and the kernel's key writes no second event.
  kernel_->stop();
  start();
  ASSERT_TRUE(kernel_->store()->execute("DELETE FROM p_job_delinquent_payments_reminders", {}, &changed));
  EXPECT_EQ(changed, 2);
  EXPECT_EQ(run(), "marked 0 invoices overdue, reminded 0");
  EXPECT_EQ(run(), "marked 0 invoices overdue, reminded 0");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // time for a second delivery, were there one

  const auto got = delivered();
  EXPECT_EQ(got.size(), 2u) << "one delivery per invoice";
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), (std::set<std::string>{"inv-1", "inv-2"}));
  const Json first = Json::parse(received(requests_)[0]["body"].get<std::string>());
  EXPECT_EQ(first["data"]["invoice"]["tenant"], "tenant:acme");
  EXPECT_EQ(first["data"]["invoice"]["status"], "overdue");
  int events = 0;
  for (const auto& e : kernel_->store()->events_after(0, 100000).value())
    events += e.kind == "plugin.job-delinquent-payments.invoice.overdue";
  EXPECT_EQ(events, 2);
}

}  // namespace
}  // namespace opk
