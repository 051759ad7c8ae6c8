// params.h -- checks run parameters against a job type's JSON Schema
// (valijson over Poco JSON), with errors that name the field.
#ifndef OPSKERNEL_KERNEL_JOBS_PARAMS_H
#define OPSKERNEL_KERNEL_JOBS_PARAMS_H

#include <opskernel/status.hpp>

#include <string>

namespace opk::jobs {

// Validates `params_json` (must be a JSON object) against `schema_json`
// (empty: any object). INVALID_ARGUMENT like
// "parameters: steps: Expected number less than or equal to 1000".
Status validate_params(const std::string& schema_json, const std::string& params_json);

// Compiles `schema_json` as a JSON Schema (draft 7) and keeps it for
// validate_params. INVALID_ARGUMENT naming the problem when it is not one
// ("'minimum' must be a number", "unknown type 'integr'"): a plugin whose
// schema fails here is refused at load, before any request can reach it.
Status check_schema(const std::string& schema_json);

}  // namespace opk::jobs

#endif
