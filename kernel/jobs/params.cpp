#include "jobs/params.h"

#include <Poco/JSON/Parser.h>

#include <valijson/adapters/poco_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace opk::jobs {

Status validate_params(const std::string& schema_json, const std::string& params_json) {
  Poco::Dynamic::Var params;
  try {
    Poco::JSON::Parser parser;
    params = parser.parse(params_json.empty() ? "{}" : params_json);
  } catch (const Poco::Exception& e) {
    return Status::invalid("parameters: not valid JSON (" + e.displayText() + ")");
  }
  if (params.type() != typeid(Poco::JSON::Object::Ptr)) return Status::invalid("parameters: must be a JSON object");
  if (schema_json.empty()) return Status::ok();
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var schema_doc = parser.parse(schema_json);
    valijson::Schema schema;
    valijson::SchemaParser schema_parser;
    valijson::adapters::PocoJsonAdapter schema_adapter(schema_doc);
    schema_parser.populateSchema(schema_adapter, schema);
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::PocoJsonAdapter target(params);
    if (validator.validate(schema, target, &results)) return Status::ok();
    // Report the most specific error: the first one with a field path.
    valijson::ValidationResults::Error e, chosen;
    bool have = false;
    while (results.popError(e)) {
      if (!have || (chosen.context.size() <= 1 && e.context.size() > 1)) {
        chosen = e;
        have = true;
      }
    }
    std::string field;
    for (size_t i = 1; i < chosen.context.size(); ++i) {
      std::string c = chosen.context[i];
      if (c.size() >= 2 && c.front() == '[' && c.back() == ']') c = c.substr(1, c.size() - 2);
      if (c.size() >= 2 && c.front() == '"' && c.back() == '"') c = c.substr(1, c.size() - 2);
      field += (field.empty() ? "" : ".") + c;
    }
    return Status::invalid("parameters: " + (field.empty() ? std::string() : field + ": ") + chosen.description);
  } catch (const std::exception& e) {
    return Status::invalid(std::string("parameters: the job type's schema cannot be used: ") + e.what());
  }
}

}  // namespace opk::jobs
