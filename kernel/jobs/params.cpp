#include "jobs/params.h"

#include <Poco/JSON/Parser.h>

#include <map>
#include <memory>
#include <mutex>

#include <valijson/adapters/poco_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace opk::jobs {

namespace {
// Parsed schemas by their text: parsing one per run costs more than the run.
std::mutex g_mu;
std::map<std::string, std::shared_ptr<const valijson::Schema>> g_schemas;

// Throws (std::exception or Poco::Exception) when the text is not a usable
// schema; valijson is built with VALIJSON_USE_EXCEPTIONS, so no schema a
// plugin supplies can reach its abort() paths. A failed text is not kept.
std::shared_ptr<const valijson::Schema> compiled(const std::string& schema_json) {
  std::lock_guard lock(g_mu);
  if (auto it = g_schemas.find(schema_json); it != g_schemas.end()) return it->second;
  Poco::JSON::Parser parser;
  Poco::Dynamic::Var doc = parser.parse(schema_json);
  auto schema = std::make_shared<valijson::Schema>();
  valijson::SchemaParser schema_parser;
  valijson::adapters::PocoJsonAdapter adapter(doc);
  schema_parser.populateSchema(adapter, *schema);
  return g_schemas[schema_json] = std::move(schema);
}
}  // namespace

Status check_schema(const std::string& schema_json) {
  try {
    compiled(schema_json);
    return Status::ok();
  } catch (const Poco::Exception& e) {
    return Status::invalid("not a usable JSON Schema: " + e.displayText());
  } catch (const std::exception& e) {
    return Status::invalid(std::string("not a usable JSON Schema: ") + e.what());
  }
}

Status validate_params(const std::string& schema_json, const std::string& params_json) {
  if (schema_json.empty() && (params_json.empty() || params_json == "{}")) return Status::ok();
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
    auto schema = compiled(schema_json);
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::PocoJsonAdapter target(params);
    if (validator.validate(*schema, target, &results)) return Status::ok();
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
  } catch (const Poco::Exception& e) {
    return Status::invalid("parameters: the job type's schema cannot be used: " + e.displayText());
  } catch (const std::exception& e) {
    return Status::invalid(std::string("parameters: the job type's schema cannot be used: ") + e.what());
  }
}

}  // namespace opk::jobs
