// identity_cli.h -- `opskernel users ...` and `opskernel tenants ...`: manage
// the hierarchy, users and tokens in the store, also while a kernel runs on it.
#ifndef OPSKERNEL_KERNEL_APP_IDENTITY_CLI_H
#define OPSKERNEL_KERNEL_APP_IDENTITY_CLI_H

#include <boost/program_options/variables_map.hpp>
#include <string>
#include <vector>

#include "config/config.h"

namespace opk::cli {

// Runs `cmd` ("users add ID", "tenants list", ...) if it is an identity
// command; returns the exit code, or -1 when `cmd` is not one.
int identity_command(const config::Config& cfg, const boost::program_options::variables_map& vm,
                     const std::vector<std::string>& cmd);

}  // namespace opk::cli

#endif
