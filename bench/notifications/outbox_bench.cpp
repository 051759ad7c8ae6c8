// Notifications outbox benchmark: a kernel (store at synchronous = FULL, as
// it runs) with admin-http, hello, channel-webhook and notifications; one
// rule sends every failed run to the Standard Webhooks receiver
// (tests/support/webhook-receiver, which verifies each signature). N runs
// fail as fast as the engine takes them; prints how long the runs took, how
// long until every delivery was received, and deliveries per second.
//
// With "none" as the third argument no rule is made: the runs' time then
// shows what the outbox costs the engine.
//
//   opk_notify_outbox_bench [runs] [workers] [none]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include <opskernel/json.hpp>

#include "app/kernel.h"
#include "plugins/admin-http/http_client.h"
#include "support/servers.h"
#include "support/test_util.h"

using Json = nlohmann::json;

namespace {

size_t lines(const std::string& file) {
  std::ifstream in(file);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 1000;
  const std::string workers = argc > 2 ? argv[2] : "2";
  const bool rule = !(argc > 3 && std::string(argv[3]) == "none");
  opk::test::ScratchDir scratch;
  const std::string out = scratch.file("requests.jsonl");
  opk::test::ServerProcess receiver;
  const std::string why =
      receiver.start({OPK_NODE, std::string(OPK_SOURCE_DIR) + "/tests/support/webhook-receiver/receiver.mjs", "--out",
                      out, "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                     scratch.file("receiver.err"));
  if (!why.empty()) {
    std::fprintf(stderr, "%s\n", why.c_str());
    return 1;
  }
  opk::test::TempDir dir;
  const auto plugins = opk::test::plugins_dir(
      dir, {std::string(OPK_BUNDLED_PLUGIN_DIR) + "/admin-http.so", std::string(OPK_BUNDLED_PLUGIN_DIR) + "/hello.so",
            std::string(OPK_BUNDLED_PLUGIN_DIR) + "/channel-webhook.so",
            std::string(OPK_BUNDLED_PLUGIN_DIR) + "/notifications.so"});
  auto cfg = opk::test::quiet_config(dir, plugins);
  cfg.log.console = false;
  const int port = opk::test::free_port();
  cfg.listen = "127.0.0.1:" + std::to_string(port);
  cfg.plugins["notifications"] = {{"workers", workers}, {"poll_wait", "200ms"}};
  opk::Kernel k(cfg);
  if (!k.start()) return 1;
  std::string token;
  k.identity()->add_user({"pat", "", "PlatformAdministrator", "platform"});
  k.identity()->issue_token("pat", 0, "bench", &token);
  auto api = [&](const std::string& path, const Json& body) {
    return opk::test::http_request(port, "POST", "/api/v1/notifications" + path, token, body.dump()).status;
  };
  api("/groups", {{"id", "ops"}, {"name", "Ops"}, {"scope", "platform"}});
  const int st =
      !rule ? 0
            : api("/groups/ops/rules", {{"events", {"run.failed"}},
                                        {"channel", "webhook"},
                                        {"recipients",
                                         {{{"to", "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook"},
                                           {"options", {{"secrets", {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}}}}}});
  if (rule && st != 201) {
    std::fprintf(stderr, "the rule was refused (%d)\n", st);
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  // The runs are created 100 at a time (as the admin API's batch run-now
  // does), so the engine, not the wait for each creation's flush, sets the
  // pace: one at a time, the runs' time was mostly 1,000 flushes in a row.
  std::vector<int64_t> ids;
  for (int i = 0; i < runs; i += 100) {
    std::vector<opk::jobs::RunNow> batch;
    for (int j = i; j < std::min(runs, i + 100); ++j) {
      opk::jobs::RunNow r;
      r.job_type = "hello";
      r.params_json = R"({"fail": true, "steps": 1, "step_ms": 0})";
      r.reason = "bench";
      r.actor = {"pat", "PlatformAdministrator", "platform", "bench"};
      batch.push_back(std::move(r));
    }
    std::vector<int64_t> created;
    if (opk::Status s = k.engine()->run_now_batch(batch, &created); !s) {
      std::fprintf(stderr, "runs not created: %s\n", s.message().c_str());
      return 1;
    }
    ids.insert(ids.end(), created.begin(), created.end());
  }
  for (int64_t id : ids) k.engine()->wait(id, 120000);
  const double runs_s = seconds_since(t0);
  while (rule && lines(out) < static_cast<size_t>(runs) && seconds_since(t0) < 600)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double all_s = seconds_since(t0);
  std::printf(
      "%d failed runs in %.2f s; %zu deliveries received %.2f s after the first run: %.0f deliveries/s "
      "(%s workers)\n",
      runs, runs_s, lines(out), all_s, lines(out) / all_s, workers.c_str());
  k.stop();
  return 0;
}
