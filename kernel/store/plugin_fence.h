// plugin_fence.h -- the rules a plugin's statements (opk.store/1) are held
// to, written once for the kernel's stores and for opk::testing's test host
// (sdk/testing), so a plugin tested there meets the kernel's fence: its
// tables' names, the $1..$n parameters, and on PostgreSQL which statements
// a plugin may send, how a migration script is split and how the server's
// refusals and errors are worded, and a connection made alike. The standard
// library, status.hpp and libpq (whose types are only named here).
#ifndef OPSKERNEL_KERNEL_STORE_PLUGIN_FENCE_H
#define OPSKERNEL_KERNEL_STORE_PLUGIN_FENCE_H

#include <opskernel/status.hpp>

#include <cstddef>
#include <string>
#include <vector>

// libpq's connection and result (PGconn, PGresult in libpq-fe.h).
struct pg_conn;
struct pg_result;

namespace opk::store {

// Prefix of every table and index plugin `plugin_id` owns: "p_<id>_", with
// '-' and '.' written '_'.
std::string plugin_table_prefix(const std::string& plugin_id);

}  // namespace opk::store

namespace opk::store::internal {

// `sql` (a plugin's statement with $1..$count parameters) with each "$k"
// written "?k", SQLite's numbered parameter, outside string literals, quoted
// names and comments. INVALID_ARGUMENT naming the parameter for any other
// kind ("?", ":name", "$name"), a number outside 1..count, or a number
// left out below the highest one used (PostgreSQL could not type it).
Status numbered_parameters(const std::string& sql, size_t count, std::string* out);

// What a plugin's statement is, by its first words: `bad` when the first
// is no SQL command at all (bad SQL, as on SQLite, not a refusal).
enum class PgStatementKind { dml, ddl, refused, bad };

// Classifies a plugin's statement for PostgreSQL: DML, the DDL a plugin may
// send (CREATE/DROP TABLE and INDEX, ALTER TABLE, ANALYZE), refused (*refusal
// says why: transaction control, views, triggers, any other command) or bad.
PgStatementKind pg_classify(const std::string& sql, std::string* refusal);

// The statements of a migration script, split at ';' outside literals,
// quoted names, comments and dollar-quoted bodies.
std::vector<std::string> pg_split_script(const std::string& sql);

// A plugin statement's error on PostgreSQL (`s`, the server's message) as
// the SQLite store words it where they mean the same: a table of someone
// else's, a write in a read, a wrong count of parameters, several
// statements in one call. `owner` is the plugin ("" for the kernel's own).
Status pg_plugin_error(const std::string& owner, const Status& s);

// "store (postgresql): <what>: <the server's message> (SQLSTATE xxxxx)", with
// the code the SQLSTATE's class gives: CONFLICT for an integrity violation
// (23...), PERMISSION for insufficient privilege (42501), INVALID_ARGUMENT
// for bad SQL or data (42..., 22..., 0A..., 25001, 25P02), UNAVAILABLE for a
// lost connection or anything else. The message is the error's primary
// text, else the result's whole message, else the connection's. `res` may
// be null (then the connection's message).
Status pg_error(const std::string& what, pg_conn* conn, const pg_result* res);

// A connection to `conninfo` into *out (the caller's to PQfinish), the
// server's notices (IF EXISTS skips, a cascade's list) not printed.
// UNAVAILABLE "store (postgresql): cannot connect[ to '<shown>']: <libpq's
// message>" when it fails; `shown` is what the message names ("" for none:
// a connection string may hold a password).
Status pg_connect(const std::string& conninfo, const std::string& shown, pg_conn** out);

// `name` as a quoted SQL identifier (double quotes doubled).
std::string pg_ident(const std::string& name);

// The statement that, after a plugin's DDL, finds a relation its role ($1)
// owns that is not a table, index or sequence named with its prefix ($2):
// relname and relkind of at most one.
extern const char* const kPgForeignRelationSql;

// The refusal of relation `name`, of pg_class kind `kind`, that
// kPgForeignRelationSql found for plugin `owner`.
Status pg_foreign_relation(const std::string& owner, const std::string& name, char kind);

}  // namespace opk::store::internal

#endif
