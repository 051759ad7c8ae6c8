// open.h -- opening the store a configuration names: the one way the kernel
// and its command-line tools open a store.
#ifndef OPSKERNEL_KERNEL_STORE_OPEN_H
#define OPSKERNEL_KERNEL_STORE_OPEN_H

#include <opskernel/status.hpp>

#include <memory>

#include "config/config.h"
#include "store/store.h"

namespace opk::store {

// How store::open treats the file beyond what the configuration says.
struct OpenOptions {
  // Whether the file is checked for damage as store.check_at_start says
  // (quick | full | off); without, it is not checked (tools that read a few
  // rows or add one do not pay for a check of the whole file).
  bool check = true;
};

// Opens (creating if needed) the store `config` names. With store.backend =
// sqlite: the embedded SQLite store at config.store_file(), flushed to disk
// at every write with store.synchronous = full, checked at open as
// options.check says; the folder that holds it must exist; errors name the
// file. With postgresql: the database postgresql_conninfo names, with a
// pool of store.pool_size connections; errors name the server's message.
Status open(const config::Config& config, std::unique_ptr<Store>* out, const OpenOptions& options = {});

// The libpq connection string of the PostgreSQL store `config` names:
// store.conninfo, then the parts set (host, port, database, user, sslmode),
// the node's name as application_name, and the password read from
// store.password_file or store.password_env. INVALID_ARGUMENT naming the
// key when the password cannot be read. The result holds the password:
// never log it.
Status postgresql_conninfo(const config::Config& config, std::string* out);

}  // namespace opk::store

#endif
