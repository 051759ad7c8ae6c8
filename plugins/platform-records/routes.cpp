// The admin API's records routes: list, import and export one kind.
//   GET  /api/v1/records/{kind}          records.read    ?<field>=<value>&limit=&cursor=
//   POST /api/v1/records/{kind}/import   records.import  JSON array or {"rows": [...]}, or text/csv
//   GET  /api/v1/records/{kind}/export   records.read    ?format=json|csv&<field>=<value>
// Errors are problem+json; a refused import lists every problem (422).
#include <charconv>

#include "plugin.h"

namespace opk::records {
namespace {

Json problem(int status, const std::string& title, const std::string& detail) {
  return {{"type", "about:blank"}, {"title", title}, {"status", status}, {"detail", detail}};
}

void send_problem(Response& rs, int status, const std::string& title, const std::string& detail,
                  const Json& extra = Json::object()) {
  Json doc = problem(status, title, detail);
  for (const auto& [k, v] : extra.items()) doc[k] = v;
  rs.status(status).header("content-type", "application/problem+json").body(doc.dump());
}

// Answers a failed status as problem+json.
void send_status(Response& rs, const Status& s) {
  switch (s.code()) {
    case OPK_ERR_INVALID_ARGUMENT:
      return send_problem(rs, 400, "Bad Request", s.message());
    case OPK_ERR_PERMISSION:
      return send_problem(rs, 403, "Forbidden", s.message());
    case OPK_ERR_NOT_FOUND:
      return send_problem(rs, 404, "Not Found", s.message());
    default:
      return send_problem(rs, 503, "Service Unavailable", "the records cannot be read or written now: " + s.message());
  }
}

// The kind named by the path, or a 404 answer.
const Kind* kind_of(const Request& rq, Response& rs) {
  const std::string name(rq.path_param("kind").value_or(""));
  const Kind* kind = find_kind(name);
  if (kind == nullptr)
    send_problem(rs, 404, "Not Found", "no kind of records '" + name + "'; the kinds are " + kind_names());
  return kind;
}

// The query's filter, cursor and limit; `skip` names other parameters.
Status list_request(const Request& rq, ListRequest* out, std::initializer_list<std::string_view> skip = {}) {
  const opk_http_request* raw = rq.raw();
  for (uint32_t i = 0; i < raw->query_count; ++i) {
    const std::string key = raw->query[i].key ? raw->query[i].key : "";
    const std::string value = raw->query[i].value ? raw->query[i].value : "";
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    if (key == "cursor") {
      out->cursor = value;
    } else if (key == "limit") {
      int limit = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || end != value.data() + value.size() || limit < 1 || limit > 1000)
        return Status::invalid("limit: must be 1..1000, got '" + value + "'");
      out->limit = limit;
    } else {
      out->filter[key] = value;
    }
  }
  return Status::ok();
}

}  // namespace

Caller caller_of(const Request& rq) {
  return {std::string(rq.role()), std::string(rq.scope())};
}

Status RecordsPlugin::add_routes() {
  Status s = add_route(
      "records", "GET", "/api/v1/records/{kind}",
      "List one kind of records in the caller's scope: filters by field (?status=active), limit and cursor",
      [this](const Request& rq, Response& rs) {
        const Kind* kind = kind_of(rq, rs);
        if (kind == nullptr) return Status::ok();
        ListRequest request;
        Json answer;
        Status st = list_request(rq, &request);
        if (st) st = service().list(*kind, caller_of(rq), request, &answer);
        if (!st)
          send_status(rs, st);
        else
          rs.status(200).json(answer);
        return Status::ok();
      },
      0, "records.read");
  if (!s) return s;

  s = add_route(
      "records", "GET", "/api/v1/records/{kind}/export",
      "Export one kind of records in the caller's scope as JSON or CSV (?format=csv), as import reads them",
      [this](const Request& rq, Response& rs) {
        const Kind* kind = kind_of(rq, rs);
        if (kind == nullptr) return Status::ok();
        const std::string format(rq.query("format").value_or("json"));
        if (format != "json" && format != "csv") {
          send_problem(rs, 400, "Bad Request", "format: expected json or csv, got '" + format + "'");
          return Status::ok();
        }
        ListRequest request;
        Json rows;
        Status st = list_request(rq, &request, {"format"});
        if (st) st = service().all(*kind, caller_of(rq), request, &rows);
        if (!st) {
          send_status(rs, st);
          return Status::ok();
        }
        rs.status(200)
            .header("content-type", format == "csv" ? "text/csv; charset=utf-8" : "application/json")
            .header("content-disposition", "attachment; filename=\"" + kind->name + "." + format + "\"")
            .body(write_rows(*kind, format, rows));
        return Status::ok();
      },
      0, "records.read");
  if (!s) return s;

  return add_route(
      "records", "POST", "/api/v1/records/{kind}/import",
      "Import one kind of records (JSON array, or text/csv with a header row): all rows or none, upserted by key",
      [this](const Request& rq, Response& rs) {
        const Kind* kind = kind_of(rq, rs);
        if (kind == nullptr) return Status::ok();
        const std::string format = format_of_content_type(rq.header("content-type").value_or(""));
        if (format.empty()) {
          send_problem(rs, 415, "Unsupported Media Type",
                       "content-type: send application/json (an array of rows, or {\"rows\": [...]}) or text/csv");
          return Status::ok();
        }
        ImportResult result;
        Status st = service().import(*kind, caller_of(rq), format, rq.body(), true, &result);
        if (!st) {
          send_status(rs, st);
          return Status::ok();
        }
        Audit audit(host());
        const Json after = result.refused() ? result.problems_json() : result.counts();
        Status a = audit.record(rq.principal(), {.action = "records.import",
                                                 .target = "records:" + kind->name,
                                                 .reason = "",
                                                 .before = nullptr,
                                                 .after = after,
                                                 .outcome = result.refused() ? "refused" : "success",
                                                 .source = std::string(rq.remote_addr())});
        if (!a) host().error("audit row for records.import of " + kind->name + " not written: " + a.message());
        if (result.refused()) {
          send_problem(rs, 422, "Unprocessable Content",
                       std::to_string(result.problem_count) + " problem" + (result.problem_count == 1 ? "" : "s") +
                           " in the " + kind->name + "; nothing was imported",
                       result.problems_json());
          return Status::ok();
        }
        rs.status(200).json(result.counts());
        return Status::ok();
      },
      0, "records.import");
}

}  // namespace opk::records
