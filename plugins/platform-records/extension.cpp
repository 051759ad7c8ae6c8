// opskernel.records/1: other plugins' reads of the records and their probes,
// probes recorded, the upserts of usage, billing lines and commissions for
// the usage collection, the bounded deletes of old usage (usage_months,
// delete_usage) for the usage cleanup, and the batches of invoices marked
// overdue (mark_overdue) for the delinquent payments; as the platform (no caller's scope
// applies: plugins are trusted code).
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "plugin.h"

namespace opk::records {
namespace {

// The instance the table serves. Calls hold the lock shared, so the
// instance is not destroyed under a call.
std::shared_mutex g_mu;
RecordsPlugin* g_plugin = nullptr;

char* copy(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// "YYYY-MM-DD" of `ms` since the epoch, UTC.
std::string date_of(int64_t ms) {
  using namespace std::chrono;
  const year_month_day d{floor<days>(sys_time<milliseconds>(milliseconds(ms)))};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return buf;
}

// "YYYY-MM" of `ms` since the epoch, UTC.
std::string month_of(int64_t ms) {
  using namespace std::chrono;
  const year_month_day d{floor<days>(sys_time<milliseconds>(milliseconds(ms)))};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()));
  return buf;
}

// The request's "before": a month YYYY-MM no later than the current month
// (usage of the current month is still being collected, and a later month
// would reach it).
Status usage_cutoff(const RecordsPlugin& plugin, const Json& request, std::string* before) {
  if (!request.contains("before") || !request["before"].is_string())
    return Status::invalid("before: required, a month YYYY-MM");
  *before = request["before"].get<std::string>();
  const std::string& b = *before;
  const bool shape = b.size() == 7 && b[4] == '-' &&
                     std::all_of(b.begin(), b.begin() + 4, [](char c) { return c >= '0' && c <= '9'; }) &&
                     std::isdigit(static_cast<unsigned char>(b[5])) && std::isdigit(static_cast<unsigned char>(b[6]));
  const int month = shape ? (b[5] - '0') * 10 + (b[6] - '0') : 0;
  if (!shape || month < 1 || month > 12 || b.substr(0, 4) == "0000")
    return Status::invalid("before: expected a month YYYY-MM, got '" + b + "'");
  const std::string current = month_of(plugin.host().now_ms());
  if (b > current)
    return Status::invalid("before: " + b + " is after the current month " + current +
                           ": usage of the current month is still being collected");
  return Status::ok();
}

Status run(const RecordsPlugin& plugin, const std::string& op, const Json& request, Json* answer) {
  const Service& service = plugin.service();
  if (op == "list") {
    const std::string kind_name = request.value("kind", std::string());
    const Kind* kind = find_kind(kind_name);
    if (kind == nullptr) {
      if (!request.contains("kind") || !request["kind"].is_string())
        return Status::invalid("kind: required, one of " + kind_names());
      return Status::not_found("kind: no kind '" + kind_name + "'; the kinds are " + kind_names());
    }
    ListRequest list;
    list.limit = 1000;
    if (request.contains("filter") && !request["filter"].is_null()) list.filter = request["filter"];
    if (request.contains("limit")) {
      if (!request["limit"].is_number_integer()) return Status::invalid("limit: expected a whole number 1..10000");
      const auto limit = request["limit"].get<int64_t>();
      if (limit < 1 || limit > kMaxLimit)
        return Status::invalid("limit: must be 1..10000, got " + std::to_string(limit));
      list.limit = static_cast<int>(limit);
    }
    if (request.contains("after") && !request["after"].is_null()) {
      if (!request["after"].is_string()) return Status::invalid("after: expected the previous answer's next");
      list.cursor = request["after"].get<std::string>();
    }
    return service.list(*kind, Caller::system(), list, answer);
  }
  if (op == "latest_probes") {
    if (request.contains("kind") && !request["kind"].is_null() && !request["kind"].is_string())
      return Status::invalid("kind: expected api or identity");
    Json rows;
    Status s = service.latest_probes(request.value("kind", std::string()), &rows);
    if (s) *answer = {{"rows", std::move(rows)}};
    return s;
  }
  if (op == "record_probe") {
    Status s = service.record_probe(request, plugin.probe_retention_ms());
    if (s) *answer = {{"recorded", true}};
    return s;
  }
  if (op == "record_probes") {
    if (!request.contains("probes") || !request["probes"].is_array() || request["probes"].empty())
      return Status::invalid("probes: required, an array of 1 to 1000 probes");
    if (request["probes"].size() > 1000)
      return Status::invalid("probes: at most 1000 a call, got " + std::to_string(request["probes"].size()));
    Status s = service.record_probes(request["probes"], plugin.probe_retention_ms());
    if (s) *answer = {{"recorded", request["probes"].size()}};
    return s;
  }
  if (op == "upsert") {
    const std::string kind_name = request.value("kind", std::string());
    if (kind_name != "usage" && kind_name != "billing_lines" && kind_name != "commissions")
      return Status::invalid("kind: expected usage, billing_lines or commissions, got '" + kind_name + "'");
    if (!request.contains("rows") || !request["rows"].is_array() || request["rows"].empty())
      return Status::invalid("rows: required, an array of 1 to 1000 rows");
    if (request["rows"].size() > 1000)
      return Status::invalid("rows: at most 1000 a call, got " + std::to_string(request["rows"].size()));
    return service.upsert(*find_kind(kind_name), request["rows"], answer);
  }
  if (op == "usage_months" || op == "delete_usage") {
    std::string before;
    if (Status s = usage_cutoff(plugin, request, &before); !s) return s;
    if (op == "usage_months") {
      Json months;
      Status s = service.usage_months(before, &months);
      if (s) *answer = {{"months", std::move(months)}};
      return s;
    }
    if (!request.contains("limit") || !request["limit"].is_number_integer())
      return Status::invalid("limit: required, a whole number 1..10000");
    const auto limit = request["limit"].get<int64_t>();
    if (limit < 1 || limit > kMaxLimit) return Status::invalid("limit: must be 1..10000, got " + std::to_string(limit));
    return service.delete_usage(before, static_cast<int>(limit), answer);
  }
  if (op == "mark_overdue") {
    if (!request.contains("as_of") || !request["as_of"].is_string())
      return Status::invalid("as_of: required, a date YYYY-MM-DD");
    const std::string as_of = request["as_of"].get<std::string>();
    Json typed;
    if (Status s = check_value(*find_kind("invoices")->field("due_date"), as_of, false, &typed); !s)
      return Status::invalid("as_of: expected a date YYYY-MM-DD, got '" + as_of + "'");
    const std::string today = date_of(plugin.host().now_ms());
    if (as_of > today)
      return Status::invalid("as_of: " + as_of + " is after today (" + today +
                             "): an invoice is not overdue before its due date has passed");
    if (!request.contains("limit") || !request["limit"].is_number_integer())
      return Status::invalid("limit: required, a whole number 1..10000");
    const auto limit = request["limit"].get<int64_t>();
    if (limit < 1 || limit > kMaxLimit) return Status::invalid("limit: must be 1..10000, got " + std::to_string(limit));
    std::string tenant;
    if (request.contains("tenant") && !request["tenant"].is_null()) {
      if (!request["tenant"].is_string() || request["tenant"].get<std::string>().rfind("tenant:", 0) != 0)
        return Status::invalid("tenant: expected tenant:<name>");
      tenant = request["tenant"].get<std::string>();
    }
    bool dry_run = false;
    if (request.contains("dry_run") && !request["dry_run"].is_null()) {
      if (!request["dry_run"].is_boolean()) return Status::invalid("dry_run: expected true or false");
      dry_run = request["dry_run"].get<bool>();
    }
    return service.mark_overdue(as_of, static_cast<int>(limit), tenant, dry_run, answer);
  }
  return {OPK_ERR_UNSUPPORTED,
          "operation: no operation '" + op +
              "'; the operations are list, latest_probes, record_probe, record_probes, upsert, usage_months, "
              "delete_usage, mark_overdue"};
}

opk_status call(const opk_host* /*host*/, const char* operation, const char* request_json, char** answer_json) {
  if (answer_json == nullptr) return OPK_ERR_INVALID_ARGUMENT;
  *answer_json = nullptr;
  Status s;
  Json answer;
  try {
    std::shared_lock lock(g_mu);
    Json request = request_json ? Json::parse(request_json, nullptr, false) : Json::object();
    if (g_plugin == nullptr)
      s = Status::unavailable("platform-records is stopping");
    else if (operation == nullptr)
      s = Status::invalid("operation: required");
    else if (!request.is_object())
      s = Status::invalid("request: expected a JSON object");
    else
      s = run(*g_plugin, operation, request, &answer);
  } catch (const std::exception& e) {
    s = {OPK_ERR_INTERNAL, std::string("records: ") + e.what()};
  }
  if (!s) {
    // A store failure keeps its status; any other status is as run gave it.
    *answer_json = copy(Json({{"error", s.message()}}).dump());
    return s.code();
  }
  *answer_json = copy(answer.dump());
  return *answer_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

void free_answer(char* answer_json) {
  std::free(answer_json);
}

const opk_records_v1 kTable = {sizeof(opk_records_v1), &call, &free_answer};

}  // namespace

const opk_records_v1* serve_extension(RecordsPlugin* plugin) {
  std::unique_lock lock(g_mu);
  g_plugin = plugin;
  return &kTable;
}

}  // namespace opk::records
