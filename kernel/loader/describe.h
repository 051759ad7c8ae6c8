// describe.h -- a manifest as JSON text, for `opskernel plugins check/list`
// and (later) the admin API.
#ifndef OPSKERNEL_KERNEL_LOADER_DESCRIBE_H
#define OPSKERNEL_KERNEL_LOADER_DESCRIBE_H

#include <string>

#include "loader/manifest.h"

namespace opk::loader {

// Pretty-printed JSON of everything the manifest declares.
std::string to_json(const Manifest& m, int indent = 2);

}  // namespace opk::loader

#endif
