// address.h -- e-mail addresses as the e-mail channel accepts them: a plain
// addr-spec (local@domain) in ASCII, no display name, no quoted local part,
// the domain a host name or an IPv4 literal in brackets. Pure functions;
// thread-safe.
#ifndef OPSKERNEL_PLUGINS_CHANNEL_EMAIL_ADDRESS_H
#define OPSKERNEL_PLUGINS_CHANNEL_EMAIL_ADDRESS_H

#include <string>
#include <string_view>

namespace channel_email {

// Empty when `address` is acceptable; otherwise what is wrong with it, e.g.
// "'bob@' has no domain after '@'".
std::string address_problem(std::string_view address);

// The domain of an address that address_problem() accepts ("example.com").
std::string_view domain_of(std::string_view address);

}  // namespace channel_email

#endif  // OPSKERNEL_PLUGINS_CHANNEL_EMAIL_ADDRESS_H
