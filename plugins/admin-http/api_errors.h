// api_errors.h -- what the admin API's handlers share for answering a
// failure: the problem answer, the HTTP status of a kernel service's
// failure status and the message in its {"error": ...} answer.
// Thread-safety: plain functions without state.
#ifndef OPSKERNEL_PLUGINS_ADMIN_HTTP_API_ERRORS_H
#define OPSKERNEL_PLUGINS_ADMIN_HTTP_API_ERRORS_H

#include <opskernel/opk.hpp>

#include <string>

namespace opk::admin {

// Writes an RFC 9457 problem answer with `status`, `title` and `detail`.
void problem(Response& rs, int status, const std::string& title, const std::string& detail);

// The HTTP status for a failure of a kernel service (opk.jobs/1,
// opk.alerts/1): INVALID_ARGUMENT 422 (400 when `message` starts with
// "request: ", a malformed request), NOT_FOUND 404, CONFLICT 409,
// PERMISSION 403, UNAVAILABLE 503, UNSUPPORTED 501, anything else 500.
int http_status(opk_status st, const std::string& message);

// The reason phrase of an HTTP error status this API answers.
const char* title_of(int status);

// The message of a service's failure answer {"error": message}; "failed"
// when the answer holds none.
std::string error_of(const std::string& answer);

}  // namespace opk::admin

#endif
