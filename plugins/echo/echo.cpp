// echo -- the reference admin feature for plugin authors: HTTP routes added
// through the kernel's route service, answering with what they were sent.
#include <opskernel/opk.hpp>

#include <Poco/JSON/Object.h>

#include <sstream>

namespace {

class EchoPlugin : public opk::Plugin {
 public:
  explicit EchoPlugin(opk::Host host) : Plugin(host) {}

  opk::Status start() override {
    opk::Status s = add_route("echo", "GET", "/api/v1/echo/{word}", "Echo a word and the query parameters",
                              [](const opk::Request& rq, opk::Response& rs) { return get(rq, rs); });
    if (!s) return s;
    return add_route("echo", "POST", "/api/v1/echo", "Echo the request body",
                     [](const opk::Request& rq, opk::Response& rs) {
                       rs.status(200)
                           .header("content-type", std::string(rq.header("content-type").value_or("text/plain")))
                           .body(rq.body());
                       return opk::Status::ok();
                     });
  }

 private:
  static opk::Status get(const opk::Request& rq, opk::Response& rs) {
    Poco::JSON::Object out(Poco::JSON_PRESERVE_KEY_ORDER);
    out.set("word", std::string(rq.path_param("word").value_or("")));
    Poco::JSON::Object query(Poco::JSON_PRESERVE_KEY_ORDER);
    for (uint32_t i = 0; i < rq.raw()->query_count; ++i) query.set(rq.raw()->query[i].key, rq.raw()->query[i].value);
    out.set("query", query);
    out.set("user", std::string(rq.user_id()));
    std::ostringstream s;
    out.stringify(s);
    rs.status(200).json(s.str());
    return opk::Status::ok();
  }
};

opk::Manifest describe() {
  opk::Manifest m("echo", "Echo", "1.0.0", "Opskernel", "Reference admin feature for plugin authors");
  m.admin_feature({.id = "echo", .title = "Echo", .description = "Answers with what it was sent.", .translations = {}});
  return m;
}

}  // namespace

OPK_PLUGIN(EchoPlugin, describe);
