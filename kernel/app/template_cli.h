// template_cli.h -- `opskernel template render FILE [--data JSON_FILE]`:
// renders a Liquid template (opk::liquid, as notifications render their
// bodies) to stdout, so a template can be tried before a channel uses it.
#ifndef OPSKERNEL_KERNEL_APP_TEMPLATE_CLI_H
#define OPSKERNEL_KERNEL_APP_TEMPLATE_CLI_H

#include <boost/program_options/variables_map.hpp>
#include <string>
#include <vector>

namespace opk::cli {

// Runs `cmd` if it is a template command ("template render FILE") and
// returns its exit code: 0 rendered; 1 the template does not parse or render
// (stderr: "FILE:line:column: message"); 2 a file missing or unreadable, bad
// JSON or a usage error. Returns -1 when `cmd` is not a template command.
int template_command(const boost::program_options::variables_map& vm, const std::vector<std::string>& cmd);

}  // namespace opk::cli

#endif
