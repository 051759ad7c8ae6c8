// The console plugin on a real kernel, served by admin-http over real HTTP on
// 127.0.0.1: the page at every console path without a token, its own content
// security policy, the assets with gzip, ETags and 304, unknown assets, the
// settings and their validation. The page itself is driven in a browser by
// console_e2e.mjs.
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "support/kernel_util.h"

namespace opk {
namespace {

struct Reply {
  int status = 0;
  std::string body;
  Poco::Net::HTTPResponse head;
};

class ConsolePlugin : public ::testing::Test {
 protected:
  void start(std::map<std::string, std::string> settings = {}) {
    kernel_.reset();
    Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = s.address().port();
    s.close();
    auto cfg = test::quiet_config(dir_, plugins_);
    cfg.listen = "127.0.0.1:" + std::to_string(port_);
    cfg.plugins["console"] = settings;
    kernel_ = std::make_unique<Kernel>(cfg);
    ASSERT_TRUE(kernel_->start());
  }

  Reply get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    Poco::Net::HTTPClientSession s("127.0.0.1", static_cast<Poco::UInt16>(port_));
    s.setTimeout(Poco::Timespan(20, 0));
    Poco::Net::HTTPRequest rq("GET", target, Poco::Net::HTTPMessage::HTTP_1_1);
    for (auto& [k, v] : headers) rq.set(k, v);
    s.sendRequest(rq);
    Reply r;
    std::istream& in = s.receiveResponse(r.head);
    Poco::StreamCopier::copyToString(in, r.body);
    r.status = r.head.getStatus();
    return r;
  }

  // The script, style sheet, icon and preloaded chunks the page refers to.
  std::vector<std::string> asset_paths(const std::string& page) {
    std::vector<std::string> out;
    std::regex re("/administration/assets/[A-Za-z0-9._-]+");
    for (auto it = std::sregex_iterator(page.begin(), page.end(), re); it != std::sregex_iterator(); ++it)
      out.push_back(it->str());
    return out;
  }

  bool active(const std::string& id) {
    for (const auto& p : kernel_->plugins())
      if (p->id == id && p->state == PluginState::active && p->started) return true;
    return false;
  }

  test::TempDir dir_;
  std::string plugins_ = test::plugins_dir(dir_, {test::bundled("admin-http"), test::bundled("console")});
  std::unique_ptr<Kernel> kernel_;
  int port_ = 0;
};

TEST_F(ConsolePlugin, ServesThePageAtEveryConsolePathWithoutAToken) {
  start();
  for (const char* path : {"/administration",
                           "/administration/jobs",
                           "/administration/jobs/nightly-hello",
                           "/administration/runs/42",
                           "/administration/alerts",
                           "/administration/alerts/12",
                           "/administration/attention",
                           "/administration/plugins",
                           "/administration/audit",
                           "/administration/sign-in",
                           "/administration/notifications",
                           "/administration/notifications/ops",
                           "/administration/webhook-failures",
                           "/administration/feature-flags",
                           "/administration/rate-limit-overrides",
                           "/administration/overview",
                           "/administration/runs",
                           "/administration/maintenance",
                           "/administration/migrations",
                           "/administration/caches",
                           "/administration/workers"}) {
    auto r = get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_EQ(r.head.getContentType(), "text/html; charset=utf-8") << path;
    EXPECT_NE(r.body.find("<div id=\"app\">"), std::string::npos) << path;
    // The page's own policy replaces the API's default-src 'none', and allows nothing inline or remote.
    const std::string csp = r.head.get("Content-Security-Policy", "");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("http"), std::string::npos) << csp;
    EXPECT_EQ(r.head.get("X-Frame-Options", ""), "DENY");
    EXPECT_EQ(r.head.get("Cache-Control", ""), "no-cache");
  }
  // Every asset is local: the page names no other host.
  auto page = get("/administration/jobs").body;
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  // The API behind it still needs a token.
  EXPECT_EQ(get("/api/v1/jobs").status, 401);
}

TEST_F(ConsolePlugin, AssetsAreCacheableCompressedAndRevalidated) {
  start();
  auto paths = asset_paths(get("/administration/jobs").body);
  ASSERT_GE(paths.size(), 3u);  // icon, style sheet, script
  bool saw_js = false, saw_css = false;
  for (const auto& p : paths) {
    auto plain = get(p);
    ASSERT_EQ(plain.status, 200) << p;
    EXPECT_FALSE(plain.head.has("Content-Encoding")) << p;
    const std::string etag = plain.head.get("ETag", "");
    ASSERT_FALSE(etag.empty()) << p;
    if (p.ends_with(".js")) {
      saw_js = true;
      EXPECT_EQ(plain.head.getContentType(), "text/javascript; charset=utf-8");
      EXPECT_EQ(plain.head.get("Cache-Control", ""), "public, max-age=31536000, immutable");
    }
    if (p.ends_with(".css")) {
      saw_css = true;
      EXPECT_EQ(plain.head.getContentType(), "text/css; charset=utf-8");
    }
    auto gz = get(p, {{"Accept-Encoding", "br, gzip;q=0.8"}});
    EXPECT_EQ(gz.status, 200);
    EXPECT_EQ(gz.head.get("Content-Encoding", ""), "gzip") << p;
    ASSERT_GE(gz.body.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(gz.body[0]), 0x1f);  // gzip magic
    EXPECT_EQ(static_cast<unsigned char>(gz.body[1]), 0x8b);
    if (plain.body.size() > 1000) {
      EXPECT_LT(gz.body.size(), plain.body.size()) << p;
    }
    // A weight of zero refuses it, however it is written.
    EXPECT_FALSE(get(p, {{"Accept-Encoding", "gzip;q=0"}}).head.has("Content-Encoding")) << p;
    EXPECT_FALSE(get(p, {{"Accept-Encoding", "gzip; q=0.000"}}).head.has("Content-Encoding")) << p;
    EXPECT_TRUE(get(p, {{"Accept-Encoding", "GZIP;q=0.001"}}).head.has("Content-Encoding")) << p;
    auto again = get(p, {{"If-None-Match", etag}});
    EXPECT_EQ(again.status, 304) << p;
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(get(p, {{"If-None-Match", "\"other\""}}).status, 200);
  }
  EXPECT_TRUE(saw_js && saw_css);

  // Each page is a chunk the script imports on its first visit: served as the script is.
  std::string app;
  for (const auto& p : paths)
    if (p.find("/app-") != std::string::npos && p.ends_with(".js")) app = get(p).body;
  std::set<std::string> chunks;
  std::regex lazy(R"re(import\("\./(chunk-[A-Za-z0-9]+\.js)"\))re");
  for (auto it = std::sregex_iterator(app.begin(), app.end(), lazy); it != std::sregex_iterator(); ++it)
    chunks.insert((*it)[1].str());
  EXPECT_GE(chunks.size(), 15u) << "pages fetched on their first visit";
  for (const auto& c : chunks) {
    auto r = get("/administration/assets/" + c, {{"Accept-Encoding", "gzip"}});
    ASSERT_EQ(r.status, 200) << c;
    EXPECT_EQ(r.head.getContentType(), "text/javascript; charset=utf-8") << c;
    EXPECT_EQ(r.head.get("Cache-Control", ""), "public, max-age=31536000, immutable") << c;
    EXPECT_EQ(r.head.get("Content-Encoding", ""), "gzip") << c;
    EXPECT_NE(r.head.get("Content-Security-Policy", "").find("script-src 'self'"), std::string::npos) << c;
    const std::string etag = r.head.get("ETag", "");
    ASSERT_FALSE(etag.empty()) << c;
    EXPECT_EQ(get("/administration/assets/" + c, {{"If-None-Match", etag}}).status, 304) << c;
  }
}

TEST_F(ConsolePlugin, UnknownAssetsAreNotFoundAndNameOnlySafeText) {
  start();
  auto r = get("/administration/assets/nope.js");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.head.getContentType(), "application/problem+json");
  EXPECT_NE(r.body.find("no console asset 'nope.js'"), std::string::npos) << r.body;
  r = get("/administration/assets/%22%3Cscript%3E");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.find("<script"), std::string::npos) << r.body;
  EXPECT_EQ(get("/administration/assets/index.html").status, 404);  // the page is served at its paths only
  EXPECT_EQ(get("/administration/assets/..").status, 400);
  EXPECT_EQ(get("/administration/nowhere").status, 404);
}

TEST_F(ConsolePlugin, SettingsAreServedAndCheckedAtStart) {
  start({{"queue_threshold", "7"}, {"poll_seconds", "3"}});
  auto r = get("/administration/settings.json");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"queue_threshold\":7"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"poll_seconds\":3"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"failed_lookback_days\":7"), std::string::npos) << r.body;
  EXPECT_TRUE(active("console"));

  // A bad value refuses the plugin with the key named; the kernel and the API keep running.
  start({{"poll_seconds", "0"}});
  EXPECT_FALSE(active("console"));
  EXPECT_TRUE(active("admin-http"));
  bool named = false;
  for (const auto& p : kernel_->plugins())
    if (p->id == "console")
      named = p->reason.find(R"([plugin.console] poll_seconds = "0": expected a whole number from 1 to 3600)") !=
              std::string::npos;
  EXPECT_TRUE(named);
  EXPECT_EQ(get("/administration/jobs").status, 404);
  EXPECT_EQ(get("/healthz").status, 200);
  start({{"queue_threshold", "lots"}});
  EXPECT_FALSE(active("console"));
}

}  // namespace
}  // namespace opk
