// The instantiations json.hpp declares extern: nlohmann::json's parser and
// serializer, compiled once for every plugin, the kernel and the tests.
#include <opskernel/json.hpp>

#ifdef OPK_JSON_EXTERN_TEMPLATES
OPK_JSON_INSTANTIATIONS()
#endif
