// A test plugin standing in for the webhook failures inbox: it requires
// opskernel.notifications/1 and serves POST /api/v1/inbox-probe/{operation},
// calling the extension as the request's principal with the body as the
// request and answering {"status": <opk_status>, "answer": <the answer>}.
#include <opskernel/notifications.h>
#include <opskernel/opk.hpp>

namespace {

class InboxProbe : public opk::Plugin {
 public:
  explicit InboxProbe(opk::Host host) : Plugin(host) {}

  opk::Status start() override {
    return add_route(
        "inbox-probe", "POST", "/api/v1/inbox-probe/{operation}", "Call opskernel.notifications/1",
        [this](const opk::Request& rq, opk::Response& rs) {
          const auto* ext = host().extension<opk_notifications_v1>(OPK_EXT_NOTIFICATIONS);
          if (ext == nullptr) return opk::Status::unavailable("no opskernel.notifications/1");
          const std::string op(rq.path_param("operation").value_or(""));
          const std::string body(rq.body());
          const std::string source(rq.remote_addr());
          char* answer = nullptr;
          const opk_status st = ext->call(host().raw(), rq.principal(), op.c_str(),
                                          body.empty() ? nullptr : body.c_str(), source.c_str(), &answer);
          opk::Json doc = {{"status", st}, {"answer", opk::Json::parse(answer ? answer : "null", nullptr, false)}};
          ext->free(answer);
          rs.status(200).json(doc);
          return opk::Status::ok();
        });
  }
};

opk::Manifest describe() {
  opk::Manifest m("inbox-probe", "Inbox probe", "1.0.0", "Opskernel tests", "Calls opskernel.notifications/1");
  m.admin_feature({.id = "inbox-probe", .title = "Inbox probe", .description = "Test routes", .translations = {}});
  m.requires_extension(OPK_EXT_NOTIFICATIONS);
  return m;
}

}  // namespace

OPK_PLUGIN(InboxProbe, describe);
