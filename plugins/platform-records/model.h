// model.h -- the kinds of business records platform-records keeps, their
// fields, and the checks every row passes before it is stored.
//
// A row is checked field by field against its kind (types, formats, enums,
// ranges) and against the world it refers to (tenants and subscriptions in
// the kernel's hierarchy, subscriptions and regions among the records);
// every problem is reported with the row's line and the field's name.
// Thread-safety: the kind tables are immutable; check_row is reentrant.
#ifndef OPSKERNEL_PLUGINS_PLATFORM_RECORDS_MODEL_H
#define OPSKERNEL_PLUGINS_PLATFORM_RECORDS_MODEL_H

#include <opskernel/opk.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace opk::records {

// What a field holds and how it is checked.
enum class Type {
  kText,          // any non-empty text
  kId,            // letters, digits, '-', '_' and '.' (1-128), as hierarchy node names
  kTenant,        // "tenant:<name>", an existing node in the caller's scope
  kNode,          // "<kind>:<name>" ("partner:p1"), an existing node in the caller's scope
  kSubscription,  // the id of a stored subscription
  kRegion,        // the id of a stored region
  kDate,          // "YYYY-MM-DD", a calendar date
  kMonth,         // "YYYY-MM"
  kNumber,        // a number >= 0
  kInteger,       // an integer >= 0 (milliseconds, counts)
  kPercent,       // an integer 1..100
  kEnum,          // one of `values`
  kUrl,           // an http:// or https:// URL with a host
  kEmail,         // local@domain
  kCurrency,      // three capital letters (ISO 4217)
  kBool,          // true or false
};

// One field of a kind.
struct Field {
  std::string name;
  Type type = Type::kText;
  // False: the field may be absent or null (then `fallback`).
  bool required = true;
  // The allowed values of a kEnum field.
  std::vector<std::string> values;
  // The value an absent optional field takes (null unless given).
  Json fallback;
};

// Whose a record is, for the caller's scope.
enum class Reach {
  kTenant,        // its `tenant` field's node
  kSubscription,  // its subscription's node, "subscription:<id>"
  kPlatform,      // the whole platform: PlatformAdministrator and System only
};

// One kind of record and its table.
struct Kind {
  std::string name;   // "subscriptions", the {kind} of the API
  std::string table;  // "p_platform_records_subscriptions"
  std::vector<Field> fields;
  // The fields that identify a record (upsert key, list order).
  std::vector<std::string> key;
  Reach reach = Reach::kTenant;

  const Field* field(std::string_view name) const;
  // The hierarchy node `row` (a checked row) belongs to; "platform" for
  // platform-wide kinds.
  std::string node_of(const Json& row) const;
};

// Every kind, in a fixed order.
const std::vector<Kind>& kinds();
// The kind named `name`, or nullptr.
const Kind* find_kind(std::string_view name);
// "subscriptions, usage, ..." for messages.
std::string kind_names();

// One thing wrong with one row: its line (1 is a CSV file's header, 2 its
// first row; a JSON array's first element is line 1), the field ("" for
// the row as a whole) and what is wrong.
struct Problem {
  int64_t line = 0;
  std::string field;
  std::string problem;
};

// What a row's references are checked against.
class World {
 public:
  virtual ~World() = default;
  // True if hierarchy node `node` exists and lies in the caller's scope.
  virtual bool visible_node(const std::string& node) const = 0;
  // True if node `node` lies at or under `scope` in the hierarchy.
  virtual bool contains(const std::string& scope, const std::string& node) const = 0;
  // The tenant of stored subscription `id`, if any.
  virtual std::optional<std::string> subscription_tenant(const std::string& id) const = 0;
  // True if region `id` is stored.
  virtual bool region_exists(const std::string& id) const = 0;
};

// Checks `in` (a JSON object; from CSV every value is a string or null when
// `from_text`) as a row of `kind` at `line`. Returns the row with every
// field of the kind, typed (numbers as numbers, absent optional fields as
// their fallback), or null when a problem was found; problems are appended
// to *problems. References are checked only when `world` is given.
Json check_row(const Kind& kind, const Json& in, bool from_text, int64_t line, const World* world,
               std::vector<Problem>* problems);

// Checks one field value alone (no references): the typed value, or an
// INVALID_ARGUMENT status whose message starts with the field's name. Used
// for list filters and record_probe.
Status check_value(const Field& field, const Json& value, bool from_text, Json* out);

// A checked row's key as a JSON array of its key fields' values.
Json key_of(const Kind& kind, const Json& row);

}  // namespace opk::records

#endif  // OPSKERNEL_PLUGINS_PLATFORM_RECORDS_MODEL_H
