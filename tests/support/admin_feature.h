// admin_feature.h -- the set-up the admin-feature plugins' tests share
// (feature-flags, rate-limit-overrides, maintenance-mode, migration-status,
// cache-purge, webhook-inbox): a real kernel over admin-http and the
// feature's plugins with the hierarchy and the users of each role every
// role x action matrix uses; the admin API's OpenAPI document through
// Redocly's linter; a second kernel process on the same PostgreSQL
// database; a request from another loopback address; waiting for a
// condition; and, on the SDK's test host, calls of a feature's routes and
// its audit rows (FeatureApiTest). Not thread-safe.
#ifndef OPSKERNEL_TESTS_SUPPORT_ADMIN_FEATURE_H
#define OPSKERNEL_TESTS_SUPPORT_ADMIN_FEATURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <opskernel/json.hpp>
#include <opskernel/testing.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "plugins/admin-http/http_client.h"
#include "support/kernel_util.h"
#include "support/pg_util.h"

namespace opk::test {

// Calls `done` every 20 ms until it returns true or `ms` pass; its last
// answer.
template <typename F>
bool within(F done, int ms = 15000) {
  for (int i = 0; i < ms / 20; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// The users of the admin-feature tests, one per role, under the hierarchy
// platform > distributor:d > partner:p > tenant:t.
struct FeatureUser {
  const char* name;
  const char* role;
  const char* scope;
};
inline constexpr FeatureUser kFeatureUsers[] = {{"pat", "PlatformAdministrator", "platform"},
                                                {"dora", "DistributorAdministrator", "distributor:d"},
                                                {"paul", "PartnerAdministrator", "partner:p"},
                                                {"tess", "TenantAdministrator", "tenant:t"},
                                                {"ursula", "TenantUser", "tenant:t"}};

// Adds the hierarchy and kFeatureUsers to `k` and issues each user a token,
// kept in `tokens` under the user's name and under the role's.
inline void add_feature_users(Kernel& k, std::map<std::string, std::string>* tokens) {
  auto* id = k.identity();
  ASSERT_TRUE(id->add_node("distributor:d", "platform", "d"));
  ASSERT_TRUE(id->add_node("partner:p", "distributor:d", "p"));
  ASSERT_TRUE(id->add_node("tenant:t", "partner:p", "t"));
  for (const FeatureUser& u : kFeatureUsers) {
    ASSERT_TRUE(id->add_user({u.name, "", u.role, u.scope}));
    std::string token;
    ASSERT_TRUE(id->issue_token(u.name, 0, "test", &token));
    (*tokens)[u.name] = token;
    (*tokens)[u.role] = token;
  }
}

// A test of a real kernel over admin-http and an admin feature's plugins,
// listening on 127.0.0.1 with an SQLite store in its folder. A fixture
// derives from it, calls configure() from its SetUp, may change cfg_, then
// start()s the kernel in each test. `Base` is ::testing::Test or a
// TestWithParam.
template <typename Base = ::testing::Test>
class FeatureKernelTest : public Base {
 protected:
  // The kernel's plugins: admin-http and `plugins` (paths, as
  // test::bundled and test::fixture give them).
  void configure(std::initializer_list<std::string> plugins) {
    std::vector<std::string> files = {test::bundled("admin-http")};
    files.insert(files.end(), plugins.begin(), plugins.end());
    std::filesystem::create_directories(dir_.path() / "plugins");
    for (const auto& f : files)
      std::filesystem::create_symlink(f, dir_.path() / "plugins" / std::filesystem::path(f).filename());
    plugins_ = (dir_.path() / "plugins").string();
    port_ = test::free_port();
    cfg_ = test::quiet_config(dir_, plugins_);
    cfg_.listen = "127.0.0.1:" + std::to_string(port_);
    cfg_.log.console = false;
    cfg_.store_path = (dir_.path() / "data" / "opk.db").string();
  }
  // Stops and destroys the kernel (before a derived fixture's members, such
  // as its PostgreSQL database, go).
  void TearDown() override {
    if (kernel_) kernel_->stop();
    kernel_.reset();
  }

  // Puts the kernel's store on `backend`, after configure(): "sqlite" keeps
  // its file; "postgresql" is a database of the test's own (pg_), kept
  // across restarts.
  void use_backend(const std::string& backend) {
    const std::string e = test::use_store_backend(backend, &pg_, &cfg_);
    ASSERT_TRUE(e.empty()) << e;
  }

  // Starts the kernel with cfg_ and, the first time, adds the hierarchy and
  // the users (add_feature_users) into tokens_.
  void start() {
    kernel_ = std::make_unique<Kernel>(cfg_);
    Status s = kernel_->start();
    ASSERT_TRUE(s) << s.message();
    if (tokens_.empty()) {
      ASSERT_NO_FATAL_FAILURE(add_feature_users(*kernel_, &tokens_));
    }
  }

  // Stops the kernel and starts it again on the same store, listening on a
  // new port; the users and their tokens stay.
  void restart() {
    kernel_->stop();
    kernel_.reset();
    port_ = test::free_port();
    cfg_.listen = "127.0.0.1:" + std::to_string(port_);
    start();
  }

  // A request as `who` (a user's name or a role's; no token for an unknown
  // one) with `body` as JSON unless null.
  test::Reply http(const std::string& method, const std::string& target, const nlohmann::json& body = nullptr,
                   const std::string& who = "pat") {
    return test::http_request(port_, method, target, tokens_[who], body.is_null() ? "" : body.dump());
  }
  static nlohmann::json json(const test::Reply& r) { return nlohmann::json::parse(r.body, nullptr, false); }

  test::TempDir dir_;
  test::PgDatabase pg_;  // the store on PostgreSQL (use_backend)
  std::string plugins_;
  config::Config cfg_;
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
  std::map<std::string, std::string> tokens_;  // user or role -> a token
};

// Lints `document`, the admin API's OpenAPI document, with Redocly's linter
// (tests/plugins/admin-http/openapi-lint, installed by dist/setup.sh) in
// `dir`; fails the test with the linter's output on an error or a warning.
inline void expect_openapi_lints_clean(const std::string& document, const std::filesystem::path& dir) {
  const std::filesystem::path lint = std::filesystem::path(OPK_SOURCE_DIR) / "tests/plugins/admin-http/openapi-lint";
  const auto redocly = lint / "node_modules/.bin/redocly";
  ASSERT_TRUE(std::filesystem::exists(redocly))
      << redocly.string() << " is missing: install the linter with 'npm ci' in " << lint.string()
      << " (dist/setup.sh does)";
  const auto file = dir / "openapi.json";
  std::ofstream(file) << document;
  const std::string cmd = "REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true '" + redocly.string() +
                          "' lint '" + file.string() + "' --config '" + (lint / "redocly.yaml").string() +
                          "' --format=stylish 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_FALSE(std::regex_search(out, std::regex(R"(\d+:\d+ +(error|warning) )"))) << out;
}

// An answer read off a raw socket: the status (0: none), the head's fields
// (names in lower case) and the body.
struct RawReply {
  int status = 0;
  std::map<std::string, std::string> head;
  std::string body;
};

// GET `target` from 127.0.0.1:`port` over a connection whose local address
// is `source` (any 127.0.0.0/8 address is the loopback's on Linux), so a
// test's limited client is counted apart from its own requests.
inline RawReply get_from(const std::string& source, int port, const std::string& target) {
  RawReply out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  to.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string raw;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) == 0 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
    const std::string rq = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, rq.data(), rq.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(rq.size())) {
      char buf[8192];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return out;
  out.status = std::stoi(raw.substr(9, 3));
  out.body = raw.substr(end + 4);
  size_t at = raw.find("\r\n") + 2;
  while (at < end) {
    const size_t eol = raw.find("\r\n", at);
    const std::string line = raw.substr(at, eol - at);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t value = line.find_first_not_of(' ', colon + 1);
      out.head[name] = value == std::string::npos ? std::string() : line.substr(value);
    }
    at = eol + 2;
  }
  return out;
}

// A configuration for this process's kernel over `plugins` on PostgreSQL
// database `database` of the tests' server, listening on `port` as node
// `node`.
inline config::Config pg_kernel_config(const TempDir& dir, const std::string& plugins, int port,
                                       const std::string& database, const std::string& node = "kernel-a") {
  config::Config cfg = test::quiet_config(dir, plugins);
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  cfg.log.console = false;
  cfg.node_name = node;
  cfg.store_backend = "postgresql";
  cfg.pg_conninfo = test::pg_server();
  cfg.pg_database = database;
  return cfg;
}

// A second kernel, an opskernel process over the same plugins folder and
// PostgreSQL database, as another node sharing the store; stopped (SIGTERM,
// waited for) when destroyed.
class SecondKernel {
 public:
  SecondKernel() = default;
  SecondKernel(const SecondKernel&) = delete;
  SecondKernel& operator=(const SecondKernel&) = delete;
  ~SecondKernel() { stop(); }

  // Starts it as node kernel-b listening on `port`, with `sections` (more
  // configuration, "[plugin.x]\nkey = value\n") appended; its folder and
  // log under `dir`. Fails the test when it cannot be forked.
  void start(const TempDir& dir, int port, const std::string& plugins, const std::string& database,
             const std::string& sections = "") {
    const auto conf = dir.path() / "second.conf";
    test::write_file(conf, "[kernel]\nlisten = 127.0.0.1:" + std::to_string(port) +
                               "\nnode_name = kernel-b\n[log]\nlevel = warn\n[store]\nbackend = postgresql\n"
                               "conninfo = " +
                               test::pg_server() + "\ndatabase = " + database + "\n" + sections);
    const std::string data = (dir.path() / "data").string();
    log_ = dir.path() / "second.log";
    const std::string log = log_.string();
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "w", stderr);
      f = freopen(log.c_str(), "a", stdout);
      (void)f;
      execl(OPK_KERNEL_BINARY, "opskernel", "--config", conf.c_str(), "--plugins-dir", plugins.c_str(), "--data-dir",
            data.c_str(), "run", (char*)nullptr);
      _exit(127);
    }
  }
  // What it wrote to its console.
  std::string log() const { return test::read_file(log_); }
  // Stops it and waits for it (a no-op when it is not running).
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
};

// A test of an admin feature's routes on the SDK's test host (no kernel):
// requests under the feature's base path as a principal, what a create and
// a list answer, and the feature's audit rows. A fixture derives from it
// with the base path and the names of its record in a create's answer and
// of the records in a list's ("window", "windows"), and loads its plugins
// into host_ from SetUp.
// Parameterised by the store ("sqlite", or "postgresql": a schema of the
// Host's own on the tests' PostgreSQL server, OPK_TEST_PG), chosen in
// SetUp, which a fixture's own SetUp calls first; each fixture is
// instantiated over both with OPK_FEATURE_API_STORES.
class FeatureApiTest : public ::testing::TestWithParam<std::string> {
 protected:
  FeatureApiTest(std::string base, std::string one, std::string many)
      : base_(std::move(base)), one_(std::move(one)), many_(std::move(many)) {}
  void SetUp() override {
    const Status s = host_.use_store(GetParam());
    ASSERT_TRUE(s.is_ok()) << GetParam() << ": " << s.message();
  }

  // `method` `base` + `target` as `who`, with `body` as JSON unless null.
  testing::Response call(const std::string& method, const std::string& target, const nlohmann::json& body = nullptr,
                         const testing::Principal& who = testing::Principal::administrator()) {
    return host_.request(method, base_ + target, body.is_null() ? "" : body.dump(), who);
  }
  static nlohmann::json json(const testing::Response& r) { return nlohmann::json::parse(r.body, nullptr, false); }
  // POSTs `body` to the base path, expecting 201; the record it answers.
  nlohmann::json create(const nlohmann::json& body) {
    auto r = call("POST", "", body);
    EXPECT_EQ(r.status, 201) << body.dump() << " " << r.body;
    return json(r)[one_];
  }
  // GETs the base path with `query` ("?state=active"), expecting 200; the
  // records it answers.
  nlohmann::json list(const std::string& query = "") {
    auto r = call("GET", query);
    EXPECT_EQ(r.status, 200) << r.body;
    return json(r)[many_];
  }
  // The audit rows of `action`, oldest first.
  std::vector<testing::AuditRow> audit(const std::string& action) {
    std::vector<testing::AuditRow> out;
    for (const auto& row : host_.audit_rows())
      if (row.action == action) out.push_back(row);
    return out;
  }

  testing::Host host_;

 private:
  std::string base_, one_, many_;
};

}  // namespace opk::test

// Instantiates the FeatureApiTest fixture `fixture` on both stores.
#define OPK_FEATURE_API_STORES(fixture)                                                \
  INSTANTIATE_TEST_SUITE_P(Stores, fixture, ::testing::Values("sqlite", "postgresql"), \
                           [](const ::testing::TestParamInfo<std::string>& info) { return info.param; })

#endif  // OPSKERNEL_TESTS_SUPPORT_ADMIN_FEATURE_H
