// error_answer.h -- the JSON answer of a kernel service's call that failed,
// shared by the services whose C tables answer in JSON (opk.jobs/1,
// opk.alerts/1, opk.events/1).
#ifndef OPSKERNEL_KERNEL_HOST_ERROR_ANSWER_H
#define OPSKERNEL_KERNEL_HOST_ERROR_ANSWER_H

#include <opskernel/json.hpp>
#include <opskernel/status.hpp>

#include <string>

namespace opk::host {

// {"error": s.message()}, with bytes that are not UTF-8 replaced, so a
// message quoting bad input is still a JSON answer.
inline std::string error_answer(const Status& s) {
  return nlohmann::json({{"error", s.message()}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace opk::host

#endif
