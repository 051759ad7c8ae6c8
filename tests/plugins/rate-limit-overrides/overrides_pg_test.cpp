// Two kernels on one PostgreSQL store (the tests' throwaway server,
// tests/support/pg_util.h): this process's and a second opskernel process,
// each with admin-http and rate-limit-overrides, the address limit at 3 a
// minute. An override made through one kernel is enforced by the other's
// admin-http within the poll interval, and one ended through the other is
// no longer enforced by the first; the plugin's tables and statements run on
// PostgreSQL as on SQLite. The limited client speaks from 127.0.0.2.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <opskernel/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"
#include "support/servers.h"

namespace opk {
namespace {

using Json = nlohmann::json;

// The status of GET /healthz on 127.0.0.1:`port` from local address
// 127.0.0.2; 0 when the kernel does not answer.
int rlo_pg_status_from_second_address(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  to.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string raw;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
    const std::string rq = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, rq.data(), rq.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(rq.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return raw.rfind("HTTP/1.1 ", 0) == 0 && raw.size() > 12 ? std::stoi(raw.substr(9, 3)) : 0;
}

class OverridesTwoKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = db_.create();
    ASSERT_TRUE(why.empty()) << why;
    plugins_ = test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("rate-limit-overrides")});
  }
  void TearDown() override {
    if (kernel_) kernel_->stop();
    if (second_ > 0) {
      kill(second_, SIGTERM);
      int st = 0;
      waitpid(second_, &st, 0);
    }
  }

  test::Reply http(int port, const std::string& method, const std::string& target, const Json& body = nullptr) {
    return test::http_request(port, method, target, token_, body.is_null() ? "" : body.dump());
  }
  template <typename F>
  static bool within(F done, int ms = 15000) {
    for (int i = 0; i < ms / 20; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }
  // Requests from 127.0.0.2 to kernel `port` until one is refused (at most
  // 20); true when one was.
  static bool limited(int port) {
    for (int i = 0; i < 20; ++i)
      if (rlo_pg_status_from_second_address(port) == 429) return true;
    return false;
  }

  test::PgDatabase db_;
  test::TempDir dir_, second_dir_;
  std::string plugins_, token_;
  std::unique_ptr<Kernel> kernel_;
  pid_t second_ = -1;
};

TEST_F(OverridesTwoKernels, AnOverrideThroughOneKernelIsEnforcedByTheOther) {
  const int port_a = test::free_port(), port_b = test::free_port();
  config::Config cfg = test::quiet_config(dir_, plugins_);
  cfg.listen = "127.0.0.1:" + std::to_string(port_a);
  cfg.log.console = false;
  cfg.node_name = "kernel-a";
  cfg.store_backend = "postgresql";
  cfg.pg_conninfo = test::pg_server();
  cfg.pg_database = db_.name();
  cfg.plugins["admin-http"] = {{"rate_per_address", "3"}};
  cfg.plugins["rate-limit-overrides"] = {{"poll_interval", "200ms"}};
  kernel_ = std::make_unique<Kernel>(cfg);
  ASSERT_TRUE(kernel_->start());
  ASSERT_TRUE(kernel_->identity()->add_user({"pat", "", "PlatformAdministrator", "platform"}));
  ASSERT_TRUE(kernel_->identity()->issue_token("pat", 0, "test", &token_));
  // The test's own address first, so it can go on talking to both kernels.
  auto r = http(port_a, "POST", "/api/v1/rate-limit-overrides",
                {{"address", "127.0.0.1"}, {"limit", "unlimited"}, {"reason", "test driver"}, {"duration", "1h"}});
  ASSERT_EQ(r.status, 201) << r.body;

  // The second kernel, another process on the same database.
  const auto conf = second_dir_.path() / "second.conf";
  test::write_file(conf, "[kernel]\nlisten = 127.0.0.1:" + std::to_string(port_b) +
                             "\nnode_name = kernel-b\n[log]\nlevel = warn\n[store]\nbackend = postgresql\nconninfo = " +
                             test::pg_server() + "\ndatabase = " + db_.name() +
                             "\n[plugin.admin-http]\nrate_per_address = 3\n"
                             "[plugin.rate-limit-overrides]\npoll_interval = 200ms\n");
  const std::string data = (second_dir_.path() / "data").string(), log = (second_dir_.path() / "second.log").string();
  second_ = fork();
  ASSERT_GE(second_, 0);
  if (second_ == 0) {
    FILE* f = freopen(log.c_str(), "w", stderr);
    f = freopen(log.c_str(), "a", stdout);
    (void)f;
    execl(OPK_KERNEL_BINARY, "opskernel", "--config", conf.c_str(), "--plugins-dir", plugins_.c_str(), "--data-dir",
          data.c_str(), "run", (char*)nullptr);
    _exit(127);
  }
  ASSERT_TRUE(within(
      [&] {
        try {
          return http(port_b, "GET", "/api/v1/rate-limit-overrides").status == 200;
        } catch (const std::exception&) {
          return false;  // not listening yet
        }
      },
      30000))
      << test::read_file(log);

  // 127.0.0.2 is limited on the second kernel.
  ASSERT_TRUE(limited(port_b));
  // Lifted through the first: the second enforces it within its poll.
  r = http(port_a, "POST", "/api/v1/rate-limit-overrides",
           {{"address", "127.0.0.2/32"}, {"limit", "unlimited"}, {"reason", "backfill"}, {"duration", "2h"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = Json::parse(r.body)["override"]["id"];
  EXPECT_TRUE(within([&] { return rlo_pg_status_from_second_address(port_b) == 200; }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rlo_pg_status_from_second_address(port_b), 200);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rlo_pg_status_from_second_address(port_a), 200);
  // Ended through the second: the first limits 127.0.0.2 again.
  r = http(port_b, "DELETE", "/api/v1/rate-limit-overrides/" + id + "?reason=done");
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(within([&] { return limited(port_a); }));
  r = http(port_a, "GET", "/api/v1/rate-limit-overrides/" + id);
  EXPECT_EQ(Json::parse(r.body)["override"]["state"], "removed") << r.body;
  EXPECT_EQ(Json::parse(r.body)["override"]["removed_by"], "pat") << r.body;
}

}  // namespace
}  // namespace opk
