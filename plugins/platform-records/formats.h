// formats.h -- the two formats records are imported and exported in: JSON
// (an array of objects, or {"rows": [...]}) and CSV (RFC 4180, a header row
// naming the fields). What export writes, import reads back unchanged.
// Thread-safety: pure functions.
#ifndef OPSKERNEL_PLUGINS_PLATFORM_RECORDS_FORMATS_H
#define OPSKERNEL_PLUGINS_PLATFORM_RECORDS_FORMATS_H

#include <opskernel/opk.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "model.h"

namespace opk::records {

// Rows read from a file or body, before they are checked.
struct Input {
  // One JSON object per row; from CSV every value is a string, or null
  // for an empty cell.
  std::vector<Json> rows;
  // The line of each row (CSV: its record's number, the header being 1;
  // JSON: its index in the array, from 1).
  std::vector<int64_t> lines;
  // True when values are text (CSV) and numbers and booleans are parsed.
  bool from_text = false;
};

// "json" or "csv" for a content type or file name, or "" when neither.
std::string format_of_content_type(std::string_view content_type);
std::string format_of_path(std::string_view path);

// Reads `text` in `format` ("json" or "csv") as rows of `kind`. Problems of
// the file itself (not JSON, a malformed CSV record, an unknown or repeated
// column, a row of the wrong width) are appended to *problems.
Input read_rows(const Kind& kind, std::string_view format, std::string_view text, std::vector<Problem>* problems);

// Writes `rows` (checked rows of `kind`) in `format`: a JSON array of
// objects, or CSV with a header naming every field of the kind.
std::string write_rows(const Kind& kind, std::string_view format, const Json& rows);

}  // namespace opk::records

#endif  // OPSKERNEL_PLUGINS_PLATFORM_RECORDS_FORMATS_H
