// config.h -- the kernel's configuration: defaults < config file < environment
// < command line, validated as a whole with errors that name the key.
#ifndef OPSKERNEL_KERNEL_CONFIG_CONFIG_H
#define OPSKERNEL_KERNEL_CONFIG_CONFIG_H

#include <opskernel/status.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "log/logging.h"

namespace opk::config {

// Settings of one plugin: key -> value (the [plugin.<id>] section).
using PluginSettings = std::map<std::string, std::string>;

// An [alert_escalation.<name>] section: escalate, once, the alerts of
// `source` ("*": any) with `severity` (empty: any) that have been `when`
// ("open": not closed, or "unacknowledged") for `after_ms` since first seen.
struct AlertEscalation {
  std::string name;
  std::string source = "*";
  std::string severity;
  int64_t after_ms = 0;
  std::string when = "open";
};

// "90s", "15m", "4h", "2d" (or plain seconds) in ms; false if malformed.
bool parse_duration(const std::string& text, int64_t* ms);

// The validated configuration.
struct Config {
  std::string file;  // the file it came from; empty when none
  std::string plugins_dir = "/usr/lib/opskernel/plugins";
  std::string data_dir = "/var/lib/opskernel";
  std::string listen = "127.0.0.1:8080";
  std::string node_name;  // default: the host name
  uint32_t shutdown_grace_ms = 10000;
  log::Settings log;
  std::vector<std::string> disabled_plugins;
  std::map<std::string, PluginSettings> plugins;  // plugin id -> its settings

  // The store.
  std::string store_path = "opskernel.db";  // relative paths are under data_dir (resolved by the kernel)
  bool store_sync_full = true;
  std::string store_check = "quick";     // how the store file is checked at start: quick | full | off
  std::string store_backend = "sqlite";  // sqlite | postgresql
  // The PostgreSQL store (store.backend = postgresql): a libpq connection
  // string and its parts (a part set here overrides the string's), the
  // pool's size, and where the password is read from when the store opens
  // (a file's first line, or an environment variable); the password itself
  // is never held in the configuration, so it is never logged or shown.
  std::string pg_conninfo;
  std::string pg_host, pg_port, pg_database, pg_user, pg_sslmode;
  uint32_t pg_pool_size = 8;
  // The hot path's statements prepared once per connection; false for a
  // pooler that moves a client between server sessions (PgBouncer < 1.21 in
  // transaction pooling).
  bool pg_prepared_statements = true;
  std::string pg_password_file;  // relative paths are under data_dir
  std::string pg_password_env;   // the name of an environment variable
  // Key=value pairs that override the connection string's for the one
  // connection that LISTENs for other kernels' hints (a server of its own
  // when the store goes through a transaction-pooling PgBouncer). Empty:
  // the store's.
  std::string pg_listen_conninfo;

  // The job engine.
  std::vector<std::pair<std::string, int>> pools = {{"default", 4}};
  uint32_t stale_after_hours = 24;
  bool misfire_catch_up = true;
  uint32_t safety_tick_s = 600;
  uint32_t retention_days = 90;
  uint32_t audit_retention_days = 365;
  uint32_t prune_batch = 1000;
  uint32_t timeout_grace_ms = 30000;
  // Several kernels on one PostgreSQL store: a node's lease (renewed every
  // third of it; a node that misses it is dead and its runs are taken over)
  // and how often idle workers look for due runs in the store.
  uint32_t lease_ms = 15000;
  uint32_t claim_poll_ms = 1000;

  // Identities.
  std::string bootstrap_token_file;  // empty: the first start prints a new token
  // Whether opening a store without a platform administrator creates one
  // (not a file key: `run` does; `jobs invoke` and `jobs run` leave it to
  // the next `run`, so the token is never printed into their output).
  bool create_first_admin = true;
  uint32_t token_ttl_days = 90;  // lifetime of tokens made by `users add|token`; 0: no expiry
  // Role -> permissions, for the roles the file sets (permissions.<role>).
  std::map<std::string, std::set<std::string>> permissions;

  // Scheduled jobs defined here: [job.<id>] sections, key -> value.
  std::map<std::string, std::map<std::string, std::string>> jobs;

  // Alerts: an alert that closed and reopened flap_threshold times within
  // the window opens as flapping; escalation rules by name.
  uint32_t alerts_flap_threshold = 3;
  int64_t alerts_flap_window_ms = 3600 * 1000;
  // Alerts not raised again for this long close as expired; 0: never.
  int64_t alerts_expire_after_ms = 30LL * 24 * 3600 * 1000;
  std::vector<AlertEscalation> alert_escalations;

  // The event log: events older than the retention are pruned (kept while
  // an active consumer has not acknowledged them); links in events start
  // with the console's URL (empty: paths only).
  int64_t events_retention_ms = 7LL * 24 * 3600 * 1000;
  std::string events_console_url;
  // Whether the job engine writes each run's end event (in its completion's
  // transaction). Not read from the configuration file: only benchmarks
  // turn it off, to measure what the event log costs the engine (without
  // them no run is notified).
  bool events_runs = true;

  // The kernel's cache (opk.cache/1, docs/cache.md): the bytes all plugins'
  // entries may take together, and the bytes one entry may take.
  uint64_t cache_max_bytes = 64ull << 20;
  uint64_t cache_max_entry_bytes = 1ull << 20;

  // The store file: store_path, under data_dir when relative.
  std::string store_file() const {
    return !store_path.empty() && store_path.front() == '/' ? store_path : data_dir + "/" + store_path;
  }

  // The PostgreSQL store's libpq connection string from store.conninfo and
  // its parts, without the password (store.password_file or
  // store.password_env give it; store.conninfo refuses one).
  std::string postgresql_conninfo() const;
  // store.password_file, under data_dir when relative; empty if not set.
  std::string postgresql_password_file() const;

  // Public kernel settings a plugin may read as "kernel.<key>": the listen
  // address, folders, node name and the store (kernel.store_backend; the
  // SQLite file as kernel.store_path; on PostgreSQL kernel.store_conninfo,
  // without the password, and where the password is read from,
  // kernel.store_password_file or kernel.store_password_env, never the
  // password itself).
  std::map<std::string, std::string> public_settings() const;
};

// Where the configuration comes from.
struct Sources {
  std::string file;                                // empty: no file
  std::map<std::string, std::string> environment;  // name -> value (all of it; non-OPSKERNEL_ ignored)
  std::map<std::string, std::string> overrides;    // key ("kernel.listen") -> value, from the CLI
};

// Reads and validates. On error returns INVALID_ARGUMENT with a message of the
// form "<origin>: <key>: <what is wrong>" and leaves *out untouched.
Status load(const Sources& sources, Config* out);

// Every known key with its one-line description, in file order.
std::vector<std::pair<std::string, std::string>> keys();

// The process environment as a map.
std::map<std::string, std::string> process_environment();

// True if `id` is a valid plugin/job/extension-less identifier:
// [a-z0-9][a-z0-9._-]*, at most 64 bytes.
bool valid_id(const std::string& id);

// True if `name` is a valid permission name, "<area>.<verb>":
// [a-z][a-z0-9_-]* '.' [a-z][a-z0-9_.-]*, at most 64 bytes ("flags.write").
bool valid_permission(const std::string& name);

// `value` as a libpq connection-string value: quoted, with quotes and
// backslashes escaped.
std::string libpq_quoted(const std::string& value);

}  // namespace opk::config

#endif
