// status.hpp -- opk::Status, the result type of the C++ layer (LevelDB style).
// Shared by plugins (through opk.hpp) and the kernel. Header-only; not part of
// the C ABI: across the boundary only the numeric opk_status travels.
#ifndef OPSKERNEL_STATUS_HPP
#define OPSKERNEL_STATUS_HPP

#include <opskernel/opk_abi.h>

#include <string>
#include <utility>

namespace opk {

// The result of an operation: OPK_OK, or an error code with a message that
// says what is wrong. Cheap to copy when OK.
class Status {
 public:
  Status() = default;
  Status(opk_status code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status error(std::string message) { return {OPK_ERR_FAILED, std::move(message)}; }
  static Status invalid(std::string message) { return {OPK_ERR_INVALID_ARGUMENT, std::move(message)}; }
  static Status not_found(std::string message) { return {OPK_ERR_NOT_FOUND, std::move(message)}; }
  static Status conflict(std::string message) { return {OPK_ERR_CONFLICT, std::move(message)}; }
  static Status incompatible(std::string message) { return {OPK_ERR_INCOMPATIBLE, std::move(message)}; }
  static Status unavailable(std::string message) { return {OPK_ERR_UNAVAILABLE, std::move(message)}; }
  static Status permission(std::string message) { return {OPK_ERR_PERMISSION, std::move(message)}; }
  static Status cancelled() { return {OPK_ERR_CANCELLED, "cancelled"}; }

  bool is_ok() const { return code_ == OPK_OK; }
  explicit operator bool() const { return is_ok(); }
  opk_status code() const { return code_; }
  // What went wrong; empty when OK.
  const std::string& message() const { return message_; }

 private:
  opk_status code_ = OPK_OK;
  std::string message_;
};

}  // namespace opk

#endif  // OPSKERNEL_STATUS_HPP
