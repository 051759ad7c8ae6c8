#include "api_errors.h"

#include "http_server.h"

namespace opk::admin {

void problem(Response& rs, int status, const std::string& title, const std::string& detail) {
  rs.status(status).header("content-type", "application/problem+json").body(problem_json(status, title, detail));
}

int http_status(opk_status st, const std::string& message) {
  switch (st) {
    case OPK_ERR_INVALID_ARGUMENT:
      return message.rfind("request: ", 0) == 0 ? 400 : 422;
    case OPK_ERR_NOT_FOUND:
      return 404;
    case OPK_ERR_CONFLICT:
      return 409;
    case OPK_ERR_PERMISSION:
      return 403;
    case OPK_ERR_UNAVAILABLE:
      return 503;
    case OPK_ERR_UNSUPPORTED:
      return 501;
    default:
      return 500;
  }
}

const char* title_of(int status) {
  return problem_title(status);
}

std::string error_of(const std::string& answer) {
  const Json o = Json::parse(answer, nullptr, false);
  if (o.is_object() && o.contains("error") && o["error"].is_string()) return o["error"].get<std::string>();
  return "failed";
}

}  // namespace opk::admin
