#include "config/config.h"

#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <fstream>
#include <sstream>

extern char** environ;

namespace po = boost::program_options;

namespace opk::config {
namespace {

constexpr const char* kEnvPrefix = "OPSKERNEL_";

// One key: name, description. Types live in describe().
const std::vector<std::pair<std::string, std::string>> kKeys = {
    {"kernel.plugins_dir", "folder scanned for plugin libraries (*.so)"},
    {"kernel.data_dir", "folder for the kernel's data (store, backups); created if missing"},
    {"kernel.listen", "address the admin HTTP plugin serves on, HOST:PORT"},
    {"kernel.node_name", "this kernel's name among several sharing a store (default: host name)"},
    {"kernel.shutdown_grace_ms", "how long stop waits for cancelled runs to end (ms)"},
    {"log.level", "trace | debug | info | warn | error | critical | off"},
    {"log.console", "log to standard error (true/false)"},
    {"log.file", "rotating log file; empty for none; relative paths are under kernel.data_dir"},
    {"log.max_size_mb", "size at which the log file rotates (MiB, >= 1)"},
    {"log.max_files", "rotated log files kept (>= 1)"},
    {"plugins.disabled", "comma-separated plugin ids not to load"},
    {"store.path", "the embedded SQLite store file; relative paths are under kernel.data_dir"},
    {"store.synchronous", "full (a RUNNING run survives power loss) | normal (survives a process crash)"},
    {"store.check_at_start", "quick | full | off: how the store file is checked for damage when the kernel starts"},
    {"store.backend", "sqlite (the embedded store file) | postgresql (a PostgreSQL database: the keys below)"},
    {"store.conninfo", "PostgreSQL: a libpq connection string, key=value ... (not a URI); no password in it"},
    {"store.host", "PostgreSQL: the server's host name or address (overrides conninfo's)"},
    {"store.port", "PostgreSQL: the server's port (overrides conninfo's)"},
    {"store.database", "PostgreSQL: the database (overrides conninfo's dbname)"},
    {"store.user", "PostgreSQL: the role to connect as (overrides conninfo's)"},
    {"store.sslmode", "PostgreSQL: disable | allow | prefer | require | verify-ca | verify-full (TLS)"},
    {"store.pool_size", "PostgreSQL: connections the store opens at most (1..256)"},
    {"store.prepared_statements",
     "PostgreSQL: true | false: the hot path's statements prepared once per connection (false for PgBouncer < "
     "1.21 in transaction pooling)"},
    {"store.password_file",
     "PostgreSQL: a file whose first line is the password; relative paths are under "
     "kernel.data_dir"},
    {"store.password_env", "PostgreSQL: the name of an environment variable holding the password"},
    {"store.listen_conninfo",
     "PostgreSQL: key=value pairs overriding the connection string's for the connection that LISTENs for hints"},
    {"jobs.pools", "worker pools and their concurrency, NAME:N,NAME:N (default:4)"},
    {"jobs.stale_after_hours", "runs RUNNING longer than this are flagged stale (hours, >= 1)"},
    {"jobs.misfire", "after downtime: once (one catch-up run per scheduled job) | skip"},
    {"jobs.safety_tick_s", "the scheduler re-checks at least this often (s); it wakes exactly when a job is due"},
    {"jobs.retention_days", "runs and logs older than this are pruned (days; 0 keeps everything)"},
    {"jobs.prune_batch", "runs (or audit rows) deleted per pruning transaction (>= 1)"},
    {"jobs.audit_retention_days", "audit rows older than this are pruned (days; 0 keeps everything)"},
    {"jobs.timeout_grace_ms", "after a run's timeout cancels it, how long before it is marked ERROR (ms)"},
    {"jobs.lease_ms", "several kernels on PostgreSQL: a node's lease; missed, its runs are taken over (ms)"},
    {"jobs.claim_poll_ms", "several kernels on PostgreSQL: idle workers look for due runs this often (ms)"},
    {"identity.bootstrap_token_file",
     "file with the first platform administrator's token, read at the first start; empty: a token is printed once"},
    {"identity.token_ttl_days", "lifetime of tokens made with `opskernel users add|token` (days; 0: no expiry)"},
    {"permissions.platform_administrator", "permissions of PlatformAdministrator: comma-separated names, or *"},
    {"permissions.distributor_administrator", "permissions of DistributorAdministrator"},
    {"permissions.partner_administrator", "permissions of PartnerAdministrator"},
    {"permissions.tenant_administrator", "permissions of TenantAdministrator"},
    {"permissions.tenant_user", "permissions of TenantUser"},
    {"alerts.flap_threshold",
     "an alert that closed and reopened this many times within flap_window is flapping (>= 1)"},
    {"alerts.flap_window", "the window of alerts.flap_threshold: 90s, 15m, 1h, 2d"},
    {"alerts.expire_after", "an alert not raised again for this long closes as expired: 30d, 12h; 0 never"},
    {"events.retention",
     "events older than this are pruned (1h, 7d ...), unless a consumer that acknowledged within twice this has not "
     "acknowledged them"},
    {"events.console_url",
     "put before the console's paths in event links (https://ops.example.com); empty: links are paths"},
    {"cache.max_bytes", "bytes all plugins' entries in the kernel's cache may take together: 64MiB, 1GiB, 65536"},
    {"cache.max_entry_bytes", "bytes one entry of the kernel's cache may take (a larger put is refused): 1MiB"},
};

// Keys of an [alert_escalation.<name>] section.
const std::vector<std::string> kEscalationKeys = {"source", "severity", "after", "when"};

// permissions.<key> -> role name.
const std::map<std::string, std::string> kRoleKeys = {
    {"permissions.platform_administrator", "PlatformAdministrator"},
    {"permissions.distributor_administrator", "DistributorAdministrator"},
    {"permissions.partner_administrator", "PartnerAdministrator"},
    {"permissions.tenant_administrator", "TenantAdministrator"},
    {"permissions.tenant_user", "TenantUser"}};

// Keys of a [job.<id>] section.
const std::vector<std::string> kJobKeys = {"type",           "planning", "cron",    "time_zone",
                                           "jitter_minutes", "params",   "enabled", "description",
                                           "owner",          "scope",    "region",  "report_recipients"};

po::options_description describe() {
  po::options_description d("opskernel configuration");
  // All values are read as text and converted in validate(), so every error
  // message has the same shape and names the key.
  for (const auto& [key, help] : kKeys) d.add_options()(key.c_str(), po::value<std::string>(), help.c_str());
  return d;
}

std::string env_name(const std::string& key) {
  std::string n = kEnvPrefix;
  for (char c : key) n += (c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return n;
}

// "a, b,,c " -> {"a", "b", "c"}: comma-separated, trimmed, empty items dropped.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

Status bad(const std::string& origin, const std::string& key, const std::string& what) {
  return Status::invalid(origin + ": " + key + ": " + what);
}

// A size in bytes: digits, optionally followed by KiB, MiB or GiB.
bool parse_cache_bytes(const std::string& text, uint64_t* out) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 13) return false;
  const std::string unit = text.substr(digits);
  const uint64_t mult = unit.empty()    ? 1
                        : unit == "KiB" ? 1ull << 10
                        : unit == "MiB" ? 1ull << 20
                        : unit == "GiB" ? 1ull << 30
                                        : 0;
  if (mult == 0) return false;
  *out = std::stoull(text.substr(0, digits)) * mult;
  return true;
}

Status parse_uint(const std::string& origin, const std::string& key, const std::string& text, uint64_t lo, uint64_t hi,
                  uint64_t* out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    return bad(origin, key, "'" + text + "' is not a whole number");
  if (text.size() > 18) return bad(origin, key, "'" + text + "' is too large (at most " + std::to_string(hi) + ")");
  uint64_t v = std::stoull(text);
  if (v < lo || v > hi)
    return bad(origin, key, "'" + text + "' is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  *out = v;
  return Status::ok();
}

Status parse_bool(const std::string& origin, const std::string& key, const std::string& text, bool* out) {
  if (text == "true" || text == "yes" || text == "on" || text == "1") {
    *out = true;
    return Status::ok();
  }
  if (text == "false" || text == "no" || text == "off" || text == "0") {
    *out = false;
    return Status::ok();
  }
  return bad(origin, key, "'" + text + "' is not a boolean (true/false)");
}

// Applies one key's text value to the config, validating it.
Status apply(const std::string& origin, const std::string& key, const std::string& v, Config* c) {
  if (key == "kernel.plugins_dir" || key == "kernel.data_dir") {
    if (v.empty()) return bad(origin, key, "must not be empty");
    (key == "kernel.plugins_dir" ? c->plugins_dir : c->data_dir) = v;
  } else if (key == "kernel.listen") {
    auto colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return bad(origin, key, "'" + v + "' is not HOST:PORT (e.g. 127.0.0.1:8080)");
    uint64_t port = 0;
    Status s = parse_uint(origin, key + " (port)", v.substr(colon + 1), 1, 65535, &port);
    if (!s) return s;
    c->listen = v;
  } else if (key == "kernel.node_name") {
    if (v.empty() || v.size() > 64) return bad(origin, key, "must be 1 to 64 characters");
    c->node_name = v;
  } else if (key == "kernel.shutdown_grace_ms") {
    uint64_t n = 0;
    Status s = parse_uint(origin, key, v, 0, 3600000, &n);
    if (!s) return s;
    c->shutdown_grace_ms = static_cast<uint32_t>(n);
  } else if (key == "log.level") {
    int lvl = 0;
    if (!log::parse_level(v, &lvl))
      return bad(origin, key, "'" + v + "' is not one of trace, debug, info, warn, error, critical, off");
    c->log.level = v;
  } else if (key == "log.console") {
    return parse_bool(origin, key, v, &c->log.console);
  } else if (key == "log.file") {
    c->log.file = v;
  } else if (key == "log.max_size_mb" || key == "log.max_files") {
    uint64_t n = 0;
    Status s = parse_uint(origin, key, v, 1, 100000, &n);
    if (!s) return s;
    (key == "log.max_size_mb" ? c->log.max_size_mb : c->log.max_files) = n;
  } else if (key == "plugins.disabled") {
    c->disabled_plugins.clear();
    for (const auto& id : split_list(v)) {
      if (!valid_id(id)) return bad(origin, key, "'" + id + "' is not a valid plugin id");
      c->disabled_plugins.push_back(id);
    }
  } else if (key == "store.path") {
    if (v.empty()) return bad(origin, key, "must not be empty");
    c->store_path = v;
  } else if (key == "store.synchronous") {
    if (v != "full" && v != "normal") return bad(origin, key, "'" + v + "' is not full or normal");
    c->store_sync_full = v == "full";
  } else if (key == "store.check_at_start") {
    if (v != "quick" && v != "full" && v != "off") return bad(origin, key, "'" + v + "' is not quick, full or off");
    c->store_check = v;
  } else if (key == "store.backend") {
    if (v != "sqlite" && v != "postgresql") return bad(origin, key, "'" + v + "' is not sqlite or postgresql");
    c->store_backend = v;
  } else if (key == "store.conninfo" || key == "store.listen_conninfo") {
    if (v.find("://") != std::string::npos)
      return bad(origin, key, "a URI is not taken: write key=value pairs (host=... dbname=...)");
    if (v.find("password") != std::string::npos)
      return bad(origin, key, "holds a password: use store.password_file or store.password_env");
    (key == "store.conninfo" ? c->pg_conninfo : c->pg_listen_conninfo) = v;
  } else if (key == "store.host" || key == "store.database" || key == "store.user") {
    if (v.empty()) return bad(origin, key, "must not be empty");
    (key == "store.host" ? c->pg_host : key == "store.database" ? c->pg_database : c->pg_user) = v;
  } else if (key == "store.port") {
    uint64_t n = 0;
    if (Status s = parse_uint(origin, key, v, 1, 65535, &n); !s) return s;
    c->pg_port = std::to_string(n);
  } else if (key == "store.sslmode") {
    if (v != "disable" && v != "allow" && v != "prefer" && v != "require" && v != "verify-ca" && v != "verify-full")
      return bad(origin, key, "'" + v + "' is not disable, allow, prefer, require, verify-ca or verify-full");
    c->pg_sslmode = v;
  } else if (key == "store.pool_size") {
    uint64_t n = 0;
    if (Status s = parse_uint(origin, key, v, 1, 256, &n); !s) return s;
    c->pg_pool_size = static_cast<uint32_t>(n);
  } else if (key == "store.prepared_statements") {
    return parse_bool(origin, key, v, &c->pg_prepared_statements);
  } else if (key == "store.password_file") {
    c->pg_password_file = v;
  } else if (key == "store.password_env") {
    if (!v.empty() &&
        v.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
      return bad(origin, key, "'" + v + "' is not an environment variable's name");
    c->pg_password_env = v;
  } else if (key == "jobs.pools") {
    c->pools.clear();
    for (const auto& item : split_list(v)) {
      auto colon = item.find(':');
      if (colon == std::string::npos) return bad(origin, key, "'" + item + "' is not NAME:CONCURRENCY");
      const std::string name = item.substr(0, colon);
      if (!valid_id(name)) return bad(origin, key, "'" + name + "' is not a valid pool name");
      uint64_t n = 0;
      Status s = parse_uint(origin, key + " (" + name + ")", item.substr(colon + 1), 1, 256, &n);
      if (!s) return s;
      c->pools.emplace_back(name, static_cast<int>(n));
    }
    if (c->pools.empty()) return bad(origin, key, "at least one pool is needed");
  } else if (key == "jobs.misfire") {
    if (v != "once" && v != "skip") return bad(origin, key, "'" + v + "' is not once or skip");
    c->misfire_catch_up = v == "once";
  } else if (key == "jobs.stale_after_hours" || key == "jobs.safety_tick_s" || key == "jobs.retention_days" ||
             key == "jobs.audit_retention_days" || key == "jobs.prune_batch" || key == "jobs.timeout_grace_ms") {
    struct Range {
      uint64_t lo, hi;
      uint32_t* field;
    };
    const Range r = key == "jobs.stale_after_hours"      ? Range{1, 24 * 365, &c->stale_after_hours}
                    : key == "jobs.safety_tick_s"        ? Range{1, 86400, &c->safety_tick_s}
                    : key == "jobs.retention_days"       ? Range{0, 36500, &c->retention_days}
                    : key == "jobs.audit_retention_days" ? Range{0, 36500, &c->audit_retention_days}
                    : key == "jobs.prune_batch"          ? Range{1, 1000000, &c->prune_batch}
                                                         : Range{0, 3600000, &c->timeout_grace_ms};
    uint64_t n = 0;
    Status s = parse_uint(origin, key, v, r.lo, r.hi, &n);
    if (!s) return s;
    *r.field = static_cast<uint32_t>(n);
  } else if (key == "jobs.lease_ms" || key == "jobs.claim_poll_ms") {
    uint64_t n = 0;
    Status s = key == "jobs.lease_ms" ? parse_uint(origin, key, v, 300, 3600000, &n)
                                      : parse_uint(origin, key, v, 10, 600000, &n);
    if (!s) return s;
    (key == "jobs.lease_ms" ? c->lease_ms : c->claim_poll_ms) = static_cast<uint32_t>(n);
  } else if (key == "alerts.flap_threshold") {
    uint64_t n = 0;
    Status s = parse_uint(origin, key, v, 1, 1000, &n);
    if (!s) return s;
    c->alerts_flap_threshold = static_cast<uint32_t>(n);
  } else if (key == "alerts.flap_window") {
    int64_t ms = 0;
    if (!parse_duration(v, &ms) || ms <= 0)
      return bad(origin, key, "'" + v + "' is not a duration such as 90s, 15m, 1h or 2d");
    c->alerts_flap_window_ms = ms;
  } else if (key == "alerts.expire_after") {
    int64_t ms = 0;
    if (v == "0") {
      c->alerts_expire_after_ms = 0;
    } else if (!parse_duration(v, &ms) || ms < 60 * 1000) {
      return bad(origin, key, "'" + v + "' is not 0 (never) or a duration of at least 1m such as 12h or 30d");
    } else {
      c->alerts_expire_after_ms = ms;
    }
  } else if (key == "events.retention") {
    int64_t ms = 0;
    if (!parse_duration(v, &ms) || ms < 3600 * 1000)
      return bad(origin, key, "'" + v + "' is not a duration of at least 1h such as 12h, 7d or 30d");
    c->events_retention_ms = ms;
  } else if (key == "events.console_url") {
    std::string url = v;
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      return bad(origin, key, "'" + v + "' is not an http:// or https:// URL");
    if (url.find_first_of(" \t\r\n\"<>") != std::string::npos)
      return bad(origin, key, "'" + v + "' has blanks or characters a URL cannot hold");
    c->events_console_url = url;
  } else if (key == "cache.max_bytes" || key == "cache.max_entry_bytes") {
    uint64_t n = 0;
    if (!parse_cache_bytes(v, &n) || n < 1024 || n > (1ull << 40))
      return bad(origin, key, "'" + v + "' is not a size from 1KiB to 1TiB such as 65536, 512KiB, 64MiB or 1GiB");
    (key == "cache.max_bytes" ? c->cache_max_bytes : c->cache_max_entry_bytes) = n;
  } else if (key == "identity.bootstrap_token_file") {
    c->bootstrap_token_file = v;
  } else if (key == "identity.token_ttl_days") {
    uint64_t n = 0;
    Status s = parse_uint(origin, key, v, 0, 36500, &n);
    if (!s) return s;
    c->token_ttl_days = static_cast<uint32_t>(n);
  } else if (kRoleKeys.count(key)) {
    std::set<std::string> perms;
    for (const auto& item : split_list(v)) {
      const bool ok =
          item == "*" || std::all_of(item.begin(), item.end(), [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
          });
      if (!ok)
        return bad(origin, key, "'" + item + "' is not a permission name (lower case, digits, '.', '_', '-') or *");
      perms.insert(item);
    }
    c->permissions[kRoleKeys.at(key)] = std::move(perms);
  } else {
    return bad(origin, key, "unknown key");
  }
  return Status::ok();
}

// Splits "<prefix><id>.<key>" (prefix "plugin." or "job.") at the last dot;
// ids may contain dots, keys may not.
bool split_section_key(const std::string& prefix, const std::string& full, std::string* id, std::string* key) {
  if (full.rfind(prefix, 0) != 0) return false;
  auto rest = full.substr(prefix.size());
  auto dot = rest.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) return false;
  *id = rest.substr(0, dot);
  *key = rest.substr(dot + 1);
  return true;
}

}  // namespace

bool parse_duration(const std::string& text, int64_t* ms) {
  if (text.empty() || text.size() > 12) return false;
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return false;
  const std::string unit = text.substr(digits);
  const int64_t n = std::stoll(text.substr(0, digits));
  const int64_t scale = unit.empty() || unit == "s" ? 1000
                        : unit == "m"               ? 60 * 1000
                        : unit == "h"               ? 3600 * 1000
                        : unit == "d"               ? 86400 * 1000
                                                    : 0;
  if (scale == 0 || n > INT64_MAX / scale) return false;
  *ms = n * scale;
  return true;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  auto ok0 = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  if (!ok0(id[0])) return false;
  for (char ch : id)
    if (!ok0(ch) && ch != '.' && ch != '_' && ch != '-') return false;
  return true;
}

bool valid_permission(const std::string& name) {
  const auto dot = name.find('.');
  if (name.size() > 64 || dot == std::string::npos) return false;
  auto part_ok = [](std::string_view part, std::string_view more) {
    if (part.empty() || part[0] < 'a' || part[0] > 'z') return false;
    for (char ch : part)
      if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
            more.find(ch) != std::string_view::npos))
        return false;
    return true;
  };
  return part_ok(std::string_view(name).substr(0, dot), "") && part_ok(std::string_view(name).substr(dot + 1), ".");
}

std::vector<std::pair<std::string, std::string>> keys() {
  return kKeys;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

std::string libpq_quoted(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string Config::postgresql_conninfo() const {
  std::string info = pg_conninfo;
  auto add = [&](const char* key, const std::string& value) {
    if (!value.empty()) info += (info.empty() ? "" : " ") + std::string(key) + "=" + libpq_quoted(value);
  };
  add("host", pg_host);
  add("port", pg_port);
  add("dbname", pg_database);
  add("user", pg_user);
  add("sslmode", pg_sslmode);
  add("application_name", "opskernel " + node_name);
  return info;
}

std::string Config::postgresql_password_file() const {
  if (pg_password_file.empty() || pg_password_file.front() == '/') return pg_password_file;
  return data_dir + "/" + pg_password_file;
}

std::map<std::string, std::string> Config::public_settings() const {
  std::map<std::string, std::string> out = {
      {"kernel.listen", listen},       {"kernel.data_dir", data_dir},       {"kernel.plugins_dir", plugins_dir},
      {"kernel.node_name", node_name}, {"kernel.store_path", store_file()}, {"kernel.store_backend", store_backend}};
  if (store_backend == "postgresql") {
    out["kernel.store_conninfo"] = postgresql_conninfo();
    if (!pg_password_file.empty()) out["kernel.store_password_file"] = postgresql_password_file();
    if (!pg_password_env.empty()) out["kernel.store_password_env"] = pg_password_env;
  }
  return out;
}

Status load(const Sources& src, Config* out) {
  Config c;
  char host[256] = {0};
  c.node_name = (gethostname(host, sizeof host - 1) == 0 && host[0]) ? host : "node";
  const po::options_description desc = describe();

  // 1. The file (lowest precedence after the defaults).
  if (!src.file.empty()) {
    std::ifstream in(src.file);
    if (!in) return Status::invalid(src.file + ": cannot open the configuration file");
    c.file = src.file;
    po::parsed_options parsed(&desc);
    try {
      parsed = po::parse_config_file(in, desc, /*allow_unregistered=*/true);
    } catch (const po::error& e) {
      return Status::invalid(src.file + ": " + e.what());
    }
    std::map<std::string, int> seen;
    for (const auto& o : parsed.options) {
      const std::string& key = o.string_key;
      if (++seen[key] > 1) return bad(src.file, key, "given more than once");
      const std::string value = o.value.empty() ? std::string() : o.value.front();
      std::string id, pkey;
      if (o.unregistered && split_section_key("job.", key, &id, &pkey)) {
        if (!valid_id(id)) return bad(src.file, key, "'" + id + "' is not a valid scheduled job id");
        if (std::find(kJobKeys.begin(), kJobKeys.end(), pkey) == kJobKeys.end())
          return bad(src.file, key,
                     "unknown key of a scheduled job (known: type, planning, cron, time_zone, "
                     "jitter_minutes, params, enabled, description, owner, scope, region, "
                     "report_recipients)");
        c.jobs[id][pkey] = value;
        continue;
      }
      if (o.unregistered && split_section_key("alert_escalation.", key, &id, &pkey)) {
        if (!valid_id(id)) return bad(src.file, key, "'" + id + "' is not a valid rule name");
        if (std::find(kEscalationKeys.begin(), kEscalationKeys.end(), pkey) == kEscalationKeys.end())
          return bad(src.file, key, "unknown key of an escalation rule (known: source, severity, after, when)");
        auto rule = std::find_if(c.alert_escalations.begin(), c.alert_escalations.end(),
                                 [&](const AlertEscalation& r) { return r.name == id; });
        if (rule == c.alert_escalations.end()) {
          c.alert_escalations.push_back({});
          rule = std::prev(c.alert_escalations.end());
          rule->name = id;
        }
        if (pkey == "source") {
          if (value != "*" && !valid_id(value)) return bad(src.file, key, "'" + value + "' is not * or a source id");
          rule->source = value;
        } else if (pkey == "severity") {
          if (value != "info" && value != "warning" && value != "critical" && value != "*")
            return bad(src.file, key, "'" + value + "' is not info, warning, critical or *");
          rule->severity = value == "*" ? "" : value;
        } else if (pkey == "after") {
          if (!parse_duration(value, &rule->after_ms) || rule->after_ms < 0)
            return bad(src.file, key, "'" + value + "' is not a duration such as 30m, 4h or 2d");
        } else {
          if (value != "open" && value != "unacknowledged")
            return bad(src.file, key, "'" + value + "' is not open or unacknowledged");
          rule->when = value;
        }
        continue;
      }
      if (o.unregistered) {
        if (!split_section_key("plugin.", key, &id, &pkey))
          return bad(src.file, key, "unknown key (see config/opskernel.conf for the keys)");
        if (!valid_id(id)) return bad(src.file, key, "'" + id + "' is not a valid plugin id");
        c.plugins[id][pkey] = value;
        continue;
      }
      Status s = apply(src.file, key, value, &c);
      if (!s) return s;
    }
  }

  // 2. The environment: OPSKERNEL_<SECTION>_<KEY>; an unknown OPSKERNEL_ name is
  // an error (a typo would otherwise be silently ignored).
  for (const auto& [name, value] : src.environment) {
    if (name.rfind(kEnvPrefix, 0) != 0 || name == "OPSKERNEL_CONFIG") continue;
    bool known = false;
    for (const auto& [key, help] : kKeys) {
      if (env_name(key) != name) continue;
      known = true;
      Status s = apply("environment " + name, key, value, &c);
      if (!s) return s;
    }
    if (!known) return Status::invalid("environment: " + name + ": unknown variable (no such configuration key)");
  }

  // 3. Command-line overrides.
  for (const auto& [key, value] : src.overrides) {
    Status s = apply("command line", key, value, &c);
    if (!s) return s;
  }

  for (const auto& r : c.alert_escalations)
    if (r.after_ms <= 0)
      return bad(src.file, "alert_escalation." + r.name + ".after", "is required (a duration such as 4h)");
  if (!c.log.file.empty() && c.log.file.front() != '/') c.log.file = c.data_dir + "/" + c.log.file;
  *out = std::move(c);
  return Status::ok();
}

}  // namespace opk::config
