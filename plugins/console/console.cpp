// console -- the operator web console. Serves one page and its bundled
// assets (embedded at build time, see web/build.mjs) under /administration;
// the page signs in with an API token and talks only to the admin API, so
// it sees and does exactly what the token's role and scope allow there.
// The page's routes are anonymous: the page and its scripts hold no data.
// Each user's seen marks (seen.h) are kept in the plugin's own tables and
// served to their user only.
#include <opskernel/opk.hpp>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include "console_assets.h"
#include "seen.h"

namespace opk::console {
namespace {

// The page's own policy: scripts, styles and API calls from this origin
// only; nothing inline, no frames.
constexpr const char* kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// The client-side pages; each answers the same document, which routes itself.
constexpr const char* kPages[] = {"/administration",
                                  "/administration/sign-in",
                                  "/administration/jobs",
                                  "/administration/jobs/{id}",
                                  "/administration/runs",
                                  "/administration/runs/{id}",
                                  "/administration/overview",
                                  "/administration/maintenance",
                                  "/administration/alerts",
                                  "/administration/alerts/{id}",
                                  "/administration/attention",
                                  "/administration/plugins",
                                  "/administration/audit",
                                  "/administration/notifications",
                                  "/administration/notifications/{id}",
                                  "/administration/webhook-failures",
                                  "/administration/feature-flags",
                                  "/administration/rate-limit-overrides",
                                  "/administration/migrations",
                                  "/administration/caches",
                                  "/administration/workers"};

const Asset* find_asset(std::string_view name) {
  for (size_t i = 0; i < kAssetCount; ++i)
    if (name == kAssets[i].name) return &kAssets[i];
  return nullptr;
}

// True when an Accept-Encoding value allows gzip (q=0 refuses it).
bool accepts_gzip(std::string_view header) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view item = header.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    if (item.size() >= 4 && strncasecmp(item.data(), "gzip", 4) == 0 &&
        (item.size() == 4 || item[4] == ';' || item[4] == ' ')) {
      // Its weight (RFC 9110 12.4.2: q=0 to q=1, default 1); 0, 0.0, 0.000 refuse.
      const size_t q = item.find("q=");
      return q == std::string_view::npos || std::strtod(std::string(item.substr(q + 2)).c_str(), nullptr) > 0;
    }
    pos = end + 1;
  }
  return false;
}

void serve(const Asset& a, const Request& rq, Response& rs) {
  rs.header("content-security-policy", kPolicy)
      .header("cache-control", a.immutable ? "public, max-age=31536000, immutable" : "no-cache")
      .header("etag", a.etag)
      .header("vary", "accept-encoding");
  if (auto inm = rq.header("if-none-match"); inm && inm->find(a.etag) != std::string_view::npos) {
    rs.status(304);
    return;
  }
  rs.status(200).header("content-type", a.content_type);
  if (accepts_gzip(rq.header("accept-encoding").value_or(""))) {
    rs.header("content-encoding", "gzip").body({reinterpret_cast<const char*>(a.gzip), a.gzip_size});
  } else {
    rs.body({reinterpret_cast<const char*>(a.data), a.size});
  }
}

void not_found(Response& rs, const std::string& detail) {
  rs.status(404)
      .header("content-type", "application/problem+json")
      .body("{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"" + detail + "\"}");
}

class Console : public Plugin {
 public:
  explicit Console(Host host) : Plugin(host), seen_(host) {}

  Status start() override {
    Settings in = host().settings();
    const Json settings = {
        {"queue_threshold", in.integer("queue_threshold", 50, 1, 1000000)},
        {"poll_seconds", in.integer("poll_seconds", 5, 1, 3600)},
        {"failed_lookback_days", in.integer("failed_lookback_days", 7, 1, 365)},
        {"over_target_lookback_hours", in.integer("over_target_lookback_hours", 24, 1, 24 * 365)},
    };
    if (!in.ok()) return in.status();
    settings_ = settings.dump();
    Status s;
    const Asset* page = find_asset("index.html");
    if (!page) return Status::error("the console bundle has no index.html");
    for (const char* path : kPages) {
      s = add_route(
          "console", "GET", path, "The operator console (a page that signs in with an API token)",
          [page](const Request& rq, Response& rs) {
            serve(*page, rq, rs);
            return Status::ok();
          },
          OPK_ROUTE_ANONYMOUS);
      if (!s) return s;
    }
    s = add_route(
        "console", "GET", "/administration/assets/{file}", "The console's scripts, styles and icons",
        [](const Request& rq, Response& rs) {
          const auto name = rq.path_param("file").value_or("");
          const Asset* a = find_asset(name);
          if (!a || std::string_view(a->name) == "index.html")
            not_found(rs, name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                                      std::string_view::npos &&
                                  name.size() <= 100
                              ? "no console asset '" + std::string(name) + "'"
                              : std::string("no such console asset"));
          else
            serve(*a, rq, rs);
          return Status::ok();
        },
        OPK_ROUTE_ANONYMOUS);
    if (!s) return s;
    // The seen marks need the store (absent for `plugins check`): without it
    // the console serves its page and keeps no marks.
    if (Store(host()).available()) {
      if (!(s = seen_.migrate())) return s;
      s = add_route("console", "GET", "/api/v1/console/seen",
                    "The caller's seen marks: runs whose logs they read, jobs whose failures they marked seen",
                    [this](const Request& rq, Response& rs) { return seen_.get(rq, rs); });
      if (!s) return s;
      s = add_route("console", "POST", "/api/v1/console/seen",
                    "Add to the caller's seen marks ({\"runs\": [run id], \"jobs\": {job key: run id}}); 204",
                    [this](const Request& rq, Response& rs) { return seen_.post(rq, rs); });
      if (!s) return s;
    }
    return add_route(
        "console", "GET", "/administration/settings.json", "The console's settings (attention thresholds, polling)",
        [this](const Request&, Response& rs) {
          rs.status(200).header("cache-control", "no-cache").json(settings_);
          return Status::ok();
        },
        OPK_ROUTE_ANONYMOUS);
  }

 private:
  std::string settings_;
  SeenMarks seen_;
};

Manifest describe() {
  Manifest m("console", "Operator console", "1.0.0", "Opskernel",
             "The operator web console at /administration, served through the admin HTTP server");
  m.admin_feature(
      {.id = "console",
       .title = "Operator console",
       .description = "Jobs, drill-in with charts, run now, live logs, alerts, attention panel and plugins.",
       .translations = {}});
  return m;
}

}  // namespace
}  // namespace opk::console

OPK_PLUGIN(opk::console::Console, opk::console::describe);
