// JSON and CSV rows in and out. CSV is read with libcsv (Debian's
// libcsv-dev; RFC 4180 quoting, strict about stray quotes) and written here.
#include "formats.h"

#include <csv.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace opk::records {
namespace {

// What libcsv's callbacks build: records of cells, each with the line it
// started on.
struct CsvState {
  std::vector<std::vector<Json>> records;
  std::vector<int64_t> lines;
  std::vector<Json> current;
  int64_t chunk_line = 1;   // line of the chunk being fed
  int64_t record_line = 0;  // line the record being read started on (0: none yet)
};

void on_field(void* data, size_t size, void* ctx) {
  auto* st = static_cast<CsvState*>(ctx);
  if (st->record_line == 0) st->record_line = st->chunk_line;
  if (data == nullptr)
    st->current.emplace_back(nullptr);
  else
    st->current.emplace_back(std::string(static_cast<const char*>(data), size));
}

void on_record(int /*terminator*/, void* ctx) {
  auto* st = static_cast<CsvState*>(ctx);
  st->records.push_back(std::move(st->current));
  st->lines.push_back(st->record_line == 0 ? st->chunk_line : st->record_line);
  st->current.clear();
  st->record_line = 0;
}

// Every character belongs to the field: RFC 4180 keeps spaces.
int no_space(unsigned char) {
  return 0;
}

bool blank(std::string_view chunk) {
  return chunk == "\n" || chunk == "\r\n";
}

// Parses `text` as CSV records, feeding libcsv one physical line at a time
// so each record knows the line it starts on.
bool parse_csv(std::string_view text, CsvState* st, std::vector<Problem>* problems) {
  csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL) != 0) {
    problems->push_back({0, "", "the CSV reader could not start"});
    return false;
  }
  csv_set_space_func(&p, &no_space);
  bool ok = true;
  size_t pos = 0;
  while (ok && pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    const std::string_view chunk = text.substr(pos, end - pos);
    if (st->record_line == 0 && st->current.empty() && blank(chunk)) {
      ++st->chunk_line;
      pos = end;
      continue;
    }
    // A record starts on this line unless one is still open (a quoted
    // field with a line break goes on).
    if (st->record_line == 0 && st->current.empty()) st->record_line = st->chunk_line;
    if (csv_parse(&p, chunk.data(), chunk.size(), &on_field, &on_record, st) != chunk.size()) {
      problems->push_back({st->chunk_line, "",
                           std::string("malformed CSV: ") + csv_strerror(csv_error(&p)) +
                               " (a quote inside an unquoted field, or after a closing quote)"});
      ok = false;
    }
    ++st->chunk_line;
    pos = end;
  }
  if (ok && csv_fini(&p, &on_field, &on_record, st) != 0) {
    problems->push_back(
        {st->record_line ? st->record_line : st->chunk_line, "", "malformed CSV: a quoted field is never closed"});
    ok = false;
  }
  csv_free(&p);
  return ok;
}

Input read_csv(const Kind& kind, std::string_view text, std::vector<Problem>* problems) {
  Input in;
  in.from_text = true;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a byte order mark
  try {
    (void)Json(std::string(text)).dump();
  } catch (const Json::exception&) {
    problems->push_back({0, "", "the CSV is not valid UTF-8"});
    return in;
  }
  CsvState st;
  if (!parse_csv(text, &st, problems)) return in;
  if (st.records.empty()) {
    problems->push_back({1, "", "the CSV has no header row naming the fields"});
    return in;
  }
  const int64_t header_line = st.lines[0];
  std::vector<std::string> columns;
  std::map<std::string, size_t> seen;
  for (const auto& cell : st.records[0]) {
    const std::string name = cell.is_string() ? cell.get<std::string>() : std::string();
    if (name.empty())
      problems->push_back({header_line, "", "column " + std::to_string(columns.size() + 1) + " has no name"});
    else if (kind.field(name) == nullptr)
      problems->push_back({header_line, name, "not a field of " + kind.name});
    else if (seen.count(name))
      problems->push_back({header_line, name, "named by two columns"});
    seen[name] = columns.size();
    columns.push_back(name);
  }
  for (const auto& field : kind.fields)
    if (field.required && !seen.count(field.name))
      problems->push_back({header_line, field.name, "required, and the header has no such column"});
  if (!problems->empty()) return in;
  for (size_t r = 1; r < st.records.size(); ++r) {
    const auto& cells = st.records[r];
    if (cells.size() != columns.size()) {
      problems->push_back(
          {st.lines[r], "",
           "has " + std::to_string(cells.size()) + " fields, the header " + std::to_string(columns.size())});
      continue;
    }
    Json row = Json::object();
    for (size_t c = 0; c < cells.size(); ++c) row[columns[c]] = cells[c];
    in.rows.push_back(std::move(row));
    in.lines.push_back(st.lines[r]);
  }
  return in;
}

Input read_json(std::string_view text, std::vector<Problem>* problems) {
  Input in;
  Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    try {
      Json again = Json::parse(text);
    } catch (const Json::parse_error& e) {
      problems->push_back({0, "", std::string("not valid JSON: ") + e.what()});
      return in;
    }
  }
  if (doc.is_object() && doc.contains("rows")) doc = doc["rows"];
  if (!doc.is_array()) {
    problems->push_back({0, "", "expected a JSON array of rows, or {\"rows\": [...]}"});
    return in;
  }
  int64_t line = 0;
  for (auto& row : doc) {
    in.rows.push_back(std::move(row));
    in.lines.push_back(++line);
  }
  return in;
}

// One CSV cell: quoted when it holds a comma, a quote, a line break or
// spaces at its ends.
std::string cell(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  const std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  const bool quote = s.find_first_of(",\"\r\n") != std::string::npos ||
                     (!s.empty() && (std::isspace(static_cast<unsigned char>(s.front())) ||
                                     std::isspace(static_cast<unsigned char>(s.back()))));
  if (!quote) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string format_of_content_type(std::string_view content_type) {
  std::string t(content_type);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t.find("csv") != std::string::npos) return "csv";
  if (t.empty() || t.find("json") != std::string::npos) return "json";
  return "";
}

std::string format_of_path(std::string_view path) {
  auto ends = [&](std::string_view x) { return path.size() >= x.size() && path.substr(path.size() - x.size()) == x; };
  if (ends(".csv") || ends(".CSV")) return "csv";
  if (ends(".json") || ends(".JSON")) return "json";
  return "";
}

Input read_rows(const Kind& kind, std::string_view format, std::string_view text, std::vector<Problem>* problems) {
  if (format == "csv") return read_csv(kind, text, problems);
  return read_json(text, problems);
}

std::string write_rows(const Kind& kind, std::string_view format, const Json& rows) {
  if (format != "csv") return rows.dump(2) + "\n";
  std::string out;
  for (size_t i = 0; i < kind.fields.size(); ++i) out += (i ? "," : "") + kind.fields[i].name;
  out += "\r\n";
  for (const auto& row : rows) {
    for (size_t i = 0; i < kind.fields.size(); ++i) {
      auto it = row.find(kind.fields[i].name);
      out += (i ? "," : "") + cell(it == row.end() ? Json() : *it);
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace opk::records
