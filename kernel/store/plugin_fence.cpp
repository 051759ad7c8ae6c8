// The rules a plugin's statements are held to (plugin_fence.h), shared by
// the kernel's stores and opk::testing.
#include "store/plugin_fence.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <iterator>

namespace opk::store {

std::string plugin_table_prefix(const std::string& plugin_id) {
  std::string p = "p_" + plugin_id + "_";
  for (char& c : p)
    if (c == '-' || c == '.') c = '_';
  return p;
}

}  // namespace opk::store

namespace opk::store::internal {

namespace {

// The end of the string literal or quoted name (opened by one of `quotes`;
// '[' closes with ']') or the comment ("--" to the line's end, "/*" past its
// "*/") that starts at sql[i]: past its close, or the end of `sql` when it
// is not closed; a doubled quote stays inside. `i` when none starts there.
size_t fence_skip_quoted(const std::string& sql, size_t i, const char* quotes) {
  const size_t n = sql.size();
  const char c = sql[i];
  if (c != '\0' && std::strchr(quotes, c)) {
    const char close = c == '[' ? ']' : c;
    size_t end = i + 1;
    while (end < n) {
      if (sql[end] != close) {
        ++end;
      } else if (close != ']' && end + 1 < n && sql[end + 1] == close) {
        end += 2;
      } else {
        return end + 1;
      }
    }
    return n;
  }
  if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
    const size_t end = sql.find('\n', i);
    return end == std::string::npos ? n : end;
  }
  if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
    const size_t end = sql.find("*/", i + 2);
    return end == std::string::npos ? n : end + 2;
  }
  return i;
}

}  // namespace

Status numbered_parameters(const std::string& sql, size_t count, std::string* out) {
  out->clear();
  out->reserve(sql.size());
  std::vector<bool> seen(count + 1, false);
  const size_t n = sql.size();
  auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  auto refuse = [&](size_t from, size_t to) {
    return Status::invalid("SQL: parameters must be $1..$" + std::to_string(count) + " (found '" +
                           sql.substr(from, to - from) + "')");
  };
  for (size_t i = 0; i < n;) {
    const char c = sql[i];
    size_t end = fence_skip_quoted(sql, i, "'\"`[");
    if (end > i) {
      // A literal, a quoted name or a comment: copied as it is.
    } else if (c == '$' && i + 1 < n && digit(sql[i + 1])) {
      end = i + 1;
      while (end < n && digit(sql[end])) ++end;
      if (end < n && ident(sql[end])) return refuse(i, end + 1);
      const std::string number = sql.substr(i + 1, end - i - 1);
      const size_t k = number.size() > 6 ? 0 : std::stoul(number);
      if (k == 0 || k > count) return refuse(i, end);
      seen[k] = true;
      out->push_back('?');
      out->append(number);
      i = end;
      continue;
    } else if (c == '?' || ((c == '$' || c == ':' || c == '@') && i + 1 < n && ident(sql[i + 1]))) {
      end = i + 1;
      while (end < n && ident(sql[end])) ++end;
      return refuse(i, end);
    } else {
      end = i + 1;
    }
    out->append(sql, i, end - i);
    i = end;
  }
  // A gap below the highest one used (PostgreSQL could not type it); fewer
  // used than given is the caller's count check.
  size_t highest = count;
  while (highest > 0 && !seen[highest]) --highest;
  for (size_t k = 1; k < highest; ++k)
    if (!seen[k])
      return Status::invalid("SQL: the statement uses $" + std::to_string(highest) + " but not $" + std::to_string(k));
  return Status::ok();
}

namespace {

// The first `n` words of a statement, upper-cased, after blanks, comments
// and opening parentheses.
std::vector<std::string> pg_leading_words(const std::string& sql, size_t n) {
  std::vector<std::string> words;
  size_t i = 0;
  const size_t len = sql.size();
  while (i < len && words.size() < n) {
    const char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == '(') {
      ++i;
    } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
      const size_t e = sql.find('\n', i);
      i = e == std::string::npos ? len : e + 1;
    } else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
      const size_t e = sql.find("*/", i + 2);
      i = e == std::string::npos ? len : e + 2;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::string w;
      while (i < len && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_'))
        w.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++]))));
      words.push_back(std::move(w));
    } else {
      break;
    }
  }
  return words;
}

// PostgreSQL's SQL commands, by their first word, and SQLite's own that
// reach into the database file (PRAGMA, ATTACH, DETACH): a plugin sending
// those is refused as on SQLite, not told its SQL is bad.
bool pg_is_command(const std::string& word) {
  static const char* const kCommands[] = {
      "ABORT",    "ALTER",   "ANALYZE", "BEGIN",   "CALL",       "CHECKPOINT", "CLOSE",    "CLUSTER",
      "COMMENT",  "COMMIT",  "COPY",    "CREATE",  "DEALLOCATE", "DECLARE",    "DELETE",   "DISCARD",
      "DO",       "DROP",    "END",     "EXECUTE", "EXPLAIN",    "FETCH",      "GRANT",    "IMPORT",
      "INSERT",   "LISTEN",  "LOAD",    "LOCK",    "MERGE",      "MOVE",       "NOTIFY",   "PREPARE",
      "REASSIGN", "REFRESH", "REINDEX", "RELEASE", "RESET",      "REVOKE",     "ROLLBACK", "SAVEPOINT",
      "SECURITY", "SELECT",  "SET",     "SHOW",    "START",      "TABLE",      "TRUNCATE", "UNLISTEN",
      "UPDATE",   "VACUUM",  "VALUES",  "WITH",    "PRAGMA",     "ATTACH",     "DETACH"};
  return std::any_of(std::begin(kCommands), std::end(kCommands), [&](const char* c) { return word == c; });
}

}  // namespace

PgStatementKind pg_classify(const std::string& sql, std::string* refusal) {
  const auto w = pg_leading_words(sql, 3);
  auto at = [&](size_t k) { return k < w.size() ? w[k] : std::string(); };
  const std::string first = at(0);
  if (first == "SELECT" || first == "INSERT" || first == "UPDATE" || first == "DELETE" || first == "WITH" ||
      first == "VALUES")
    return PgStatementKind::dml;
  if (first == "BEGIN" || first == "COMMIT" || first == "ROLLBACK" || first == "SAVEPOINT" || first == "RELEASE" ||
      first == "START" || first == "END" || first == "ABORT") {
    *refusal = "transaction control (one call is one transaction; use transaction for several statements)";
    return PgStatementKind::refused;
  }
  if (first == "CREATE") {
    size_t k = 1;
    if (at(k) == "TEMP" || at(k) == "TEMPORARY" || at(k) == "UNLOGGED" || at(k) == "UNIQUE") ++k;
    if (at(k) == "TABLE" || at(k) == "INDEX") return PgStatementKind::ddl;
    if (at(k) == "VIEW" || at(k) == "TRIGGER" || (at(k) == "OR" && at(k + 1) == "REPLACE")) {
      *refusal = "CREATE " + (at(k) == "OR" ? std::string("OR REPLACE") : at(k)) + " (plugins keep tables and indexes)";
      return PgStatementKind::refused;
    }
    *refusal = "CREATE " + at(k) + " is not allowed to plugins (plugins keep tables and indexes)";
    return PgStatementKind::refused;
  }
  if ((first == "DROP" && (at(1) == "TABLE" || at(1) == "INDEX")) || (first == "ALTER" && at(1) == "TABLE") ||
      first == "ANALYZE")
    return PgStatementKind::ddl;
  if (!first.empty() && !pg_is_command(first)) {
    *refusal = "syntax error at or near \"" + first + "\"";
    return PgStatementKind::bad;
  }
  *refusal = (first.empty() ? std::string("this statement") : first + (at(1).empty() ? "" : " " + at(1))) +
             " is not allowed to plugins";
  return PgStatementKind::refused;
}

std::vector<std::string> pg_split_script(const std::string& sql) {
  std::vector<std::string> out;
  std::string cur;
  const size_t n = sql.size();
  for (size_t i = 0; i < n;) {
    const char c = sql[i];
    size_t end = fence_skip_quoted(sql, i, "'\"");
    if (end > i) {
      // A literal, a quoted name or a comment: kept whole.
    } else if (c == '$' && (i == 0 || !std::isalnum(static_cast<unsigned char>(sql[i - 1])))) {
      end = i + 1;
      size_t t = i + 1;
      while (t < n && (std::isalnum(static_cast<unsigned char>(sql[t])) || sql[t] == '_')) ++t;
      if (t < n && sql[t] == '$' && !(t > i + 1 && std::isdigit(static_cast<unsigned char>(sql[i + 1])))) {
        const std::string tag = sql.substr(i, t - i + 1);
        const size_t close = sql.find(tag, t + 1);
        end = close == std::string::npos ? n : close + tag.size();
      }
    } else if (c == ';') {
      if (cur.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(cur);
      cur.clear();
      ++i;
      continue;
    }
    end = std::max(end, i + 1);
    cur.append(sql, i, end - i);
    i = end;
  }
  if (cur.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(cur);
  return out;
}

Status pg_plugin_error(const std::string& owner, const Status& s) {
  const std::string& m = s.message();
  if (s.code() == OPK_ERR_PERMISSION && !owner.empty()) {
    for (const char* kind : {"table", "sequence", "view", "relation"}) {
      const std::string denied = std::string("permission denied for ") + kind + " ";
      const size_t at = m.find(denied);
      if (at == std::string::npos) continue;
      size_t end = m.find(" (SQLSTATE", at);
      const std::string name =
          m.substr(at + denied.size(), end == std::string::npos ? std::string::npos : end - at - denied.size());
      return Status::permission("SQL: " + std::string(kind) + " '" + name + "' is not one of plugin " + owner +
                                "'s own (named " + plugin_table_prefix(owner) + "...): " + m);
    }
    if (m.find("must be owner of") != std::string::npos)
      return Status::permission("SQL: not one of plugin " + owner + "'s own (named " + plugin_table_prefix(owner) +
                                "...): " + m);
  }
  if (m.find("(SQLSTATE 25006)") != std::string::npos)
    return Status::invalid("SQL: query takes read-only statements; use execute: " + m);
  int given = 0, wanted = 0;
  const size_t b = m.find("bind message supplies ");
  if (b != std::string::npos &&
      std::sscanf(m.c_str() + b, "bind message supplies %d parameters, but prepared statement \"\" requires %d", &given,
                  &wanted) == 2)
    return Status::invalid("SQL: the statement has " + std::to_string(wanted) + " parameter(s), " +
                           std::to_string(given) + " given");
  if (m.find("cannot insert multiple commands") != std::string::npos)
    return Status::invalid("SQL: one statement per call: " + m);
  return Status(s.code(), "SQL: " + m);
}

namespace {

// libpq's messages end with a newline.
std::string pg_trimmed_text(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Status pg_error(const std::string& what, PGconn* conn, const PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = res ? pg_trimmed_text(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) : "";
  if (msg.empty()) msg = pg_trimmed_text(res ? PQresultErrorMessage(res) : nullptr);
  if (msg.empty()) msg = pg_trimmed_text(PQerrorMessage(conn));
  if (msg.empty()) msg = "no answer from the server";
  std::string text = "store (postgresql): " + what + ": " + msg;
  if (state) text += std::string(" (SQLSTATE ") + state + ")";
  const std::string code = state ? state : "";
  if (code.rfind("23", 0) == 0) return Status::conflict(std::move(text));
  if (code == "42501") return Status::permission(std::move(text));
  if (code.rfind("42", 0) == 0 || code.rfind("22", 0) == 0 || code.rfind("0A", 0) == 0 || code == "25001" ||
      code == "25P02")
    return Status::invalid(std::move(text));
  return Status::unavailable(std::move(text));
}

Status pg_connect(const std::string& conninfo, const std::string& shown, PGconn** out) {
  *out = nullptr;
  const std::string cannot = "store (postgresql): cannot connect" + (shown.empty() ? "" : " to '" + shown + "'") + ": ";
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (!c) return Status::unavailable(cannot + "out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    Status s = Status::unavailable(cannot + pg_trimmed_text(PQerrorMessage(c)));
    PQfinish(c);
    return s;
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  *out = c;
  return Status::ok();
}

std::string pg_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

const char* const kPgForeignRelationSql =
    "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner "
    "WHERE o.rolname = $1 AND c.relnamespace <> 'pg_toast'::regnamespace AND "
    "(left(c.relname, length($2)) <> $2 OR c.relkind NOT IN ('r', 'i', 'S', 'p', 'I')) LIMIT 1";

Status pg_foreign_relation(const std::string& owner, const std::string& name, char kind) {
  if (kind == 'v' || kind == 'm') return Status::permission("SQL: CREATE VIEW (plugins keep tables and indexes)");
  return Status::permission(std::string("SQL: ") + (kind == 'i' ? "index" : "table") + " '" + name +
                            "' is not one of plugin " + owner + "'s own (named " + plugin_table_prefix(owner) + "...)");
}

}  // namespace opk::store::internal
