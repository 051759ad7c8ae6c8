// json.hpp -- nlohmann::json for the SDK's C++ layer, with its parser and
// serializer compiled once.
//
// nlohmann::json is header-only: every translation unit that parses or dumps a
// document instantiates the whole lexer, parser and serializer again (about
// 1.5 s of compile time per file at -O2 and 8 s under AddressSanitizer). This
// header declares those instantiations extern; the SDK's library
// (Opskernel::sdk links it) defines them once, in sdk/json/instantiate.cpp.
// Behaviour is unchanged: the declarations only say where the code lives.
//
// Include this header, not <nlohmann/json.hpp>, in code built against the SDK.
// Parsing from std::string, std::string_view and C strings is covered; other
// inputs (streams, other iterators) instantiate as usual.
#ifndef OPSKERNEL_JSON_HPP
#define OPSKERNEL_JSON_HPP

#include <nlohmann/json.hpp>
#include <string>

// The declarations name nlohmann's detail classes, which are version-specific:
// they are used only with the 3.11 series the SDK is built with (the mangled
// names carry the version, so a mismatch is a link error, never wrong code).
#if NLOHMANN_JSON_VERSION_MAJOR == 3 && NLOHMANN_JSON_VERSION_MINOR == 11 && !defined(OPK_JSON_NO_EXTERN_TEMPLATES)
#define OPK_JSON_EXTERN_TEMPLATES 1
#define OPK_JSON_INSTANTIATIONS(prefix)                                                                 \
  prefix template class nlohmann::detail::serializer<nlohmann::json>;                                   \
  prefix template class nlohmann::detail::json_sax_dom_parser<nlohmann::json>;                          \
  prefix template class nlohmann::detail::json_sax_dom_callback_parser<nlohmann::json>;                 \
  prefix template class nlohmann::detail::lexer<                                                        \
      nlohmann::json, nlohmann::detail::iterator_input_adapter<std::string::const_iterator>>;           \
  prefix template class nlohmann::detail::parser<                                                       \
      nlohmann::json, nlohmann::detail::iterator_input_adapter<std::string::const_iterator>>;           \
  prefix template class nlohmann::detail::lexer<nlohmann::json,                                         \
                                                nlohmann::detail::iterator_input_adapter<const char*>>; \
  prefix template class nlohmann::detail::parser<nlohmann::json, nlohmann::detail::iterator_input_adapter<const char*>>;
OPK_JSON_INSTANTIATIONS(extern)
#endif

#endif  // OPSKERNEL_JSON_HPP
