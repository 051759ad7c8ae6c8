// Opening the store a configuration names (open.h).
#include "store/open.h"

#include <cstdlib>
#include <fstream>

namespace opk::store {

Status postgresql_conninfo(const config::Config& config, std::string* out) {
  std::string info = config.postgresql_conninfo();
  std::string password;
  if (!config.pg_password_file.empty()) {
    const std::string path = config.postgresql_password_file();
    std::ifstream in(path);
    if (!in) return Status::invalid("store.password_file: cannot read " + path);
    std::getline(in, password);
    while (!password.empty() && (password.back() == '\r' || password.back() == ' ')) password.pop_back();
    if (password.empty()) return Status::invalid("store.password_file: " + path + " is empty");
  } else if (!config.pg_password_env.empty()) {
    const char* v = std::getenv(config.pg_password_env.c_str());
    if (!v || !*v)
      return Status::invalid("store.password_env: the environment variable " + config.pg_password_env + " is not set");
    password = v;
  }
  if (!password.empty()) info += (info.empty() ? "" : " ") + std::string("password=") + config::libpq_quoted(password);
  *out = std::move(info);
  return Status::ok();
}

Status open(const config::Config& config, std::unique_ptr<Store>* out, const OpenOptions& options) {
  if (config.store_backend == "postgresql") {
    std::string conninfo;
    if (Status s = postgresql_conninfo(config, &conninfo); !s) return s;
    PostgresOptions po;
    po.pool_size = config.pg_pool_size;
    // libpq takes the last of a key given twice: these override the store's.
    if (!config.pg_listen_conninfo.empty()) po.listen_conninfo = conninfo + " " + config.pg_listen_conninfo;
    po.prepared_statements = config.pg_prepared_statements;
    return open_postgresql(conninfo, po, out);
  }
  OpenCheck check = OpenCheck::none;
  if (options.check && config.store_check == "full")
    check = OpenCheck::full;
  else if (options.check && config.store_check == "quick")
    check = OpenCheck::quick;
  return open_sqlite(config.store_file(), config.store_sync_full, out, {}, check);
}

}  // namespace opk::store
