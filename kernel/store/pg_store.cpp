// The PostgreSQL store's connections: libpq's results and errors as Status,
// the pool of connections, opening the store (open_postgresql) and its
// health.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include <libpq-events.h>

#include "store/pg_internal.h"

namespace opk::store::internal {

namespace {

// FNV-1a, 32 bits: a short, stable tag of a name for role names.
uint32_t pg_name_hash(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string pg_hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// libpq's messages end with a newline.
std::string pg_trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Status pg_exec(PGconn* conn, const std::string& what, const std::string& sql, const PgParams& params, PgResult* out) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult r(
      PQexecParams(conn, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr, nullptr, 0));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_error(what, conn, r.get());
  if (out) *out = std::move(r);
  return Status::ok();
}

namespace {

// libpq's event procedure of the connections that prepare hot statements:
// their instance data is the set of names prepared on them, freed with the
// connection. Every other event is let through.
int pg_prepared_names(PGEventId id, void* info, void* /*pass*/) {
  if (id == PGEVT_CONNDESTROY) {
    PGconn* conn = static_cast<PGEventConnDestroy*>(info)->conn;
    delete static_cast<std::unordered_set<std::string>*>(PQinstanceData(conn, pg_prepared_names));
  }
  return 1;
}

}  // namespace

Status pg_exec_hot(PGconn* conn, const char* name, const std::string& what, const std::string& sql,
                   const PgParams& params, PgResult* out) {
  auto* names = static_cast<std::unordered_set<std::string>*>(PQinstanceData(conn, pg_prepared_names));
  if (!names) return pg_exec(conn, what, sql, params, out);
  // A statement stays prepared whatever becomes of the transaction it was
  // prepared in, until the connection closes.
  if (!names->count(name)) {
    PgResult p(PQprepare(conn, name, sql.c_str(), static_cast<int>(params.size()), nullptr));
    if (!p || PQresultStatus(p.get()) != PGRES_COMMAND_OK) return pg_error(what, conn, p.get());
    names->insert(name);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& v : params) values.push_back(v ? v->c_str() : nullptr);
  PgResult r(PQexecPrepared(conn, name, static_cast<int>(params.size()), values.data(), nullptr, nullptr, 0));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_error(what, conn, r.get());
  if (out) *out = std::move(r);
  return Status::ok();
}

Status pg_script(PGconn* conn, const std::string& what, const std::string& sql) {
  PgResult r(PQexec(conn, sql.c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) return pg_error(what, conn, r.get());
  return Status::ok();
}

std::string pg_plugin_role_prefix(const std::string& database) {
  return "opkp_" + pg_hex8(pg_name_hash(database)) + "_";
}

std::string pg_plugin_role(const std::string& database, const std::string& plugin_id) {
  std::string role = pg_plugin_role_prefix(database) + plugin_table_prefix(plugin_id).substr(2);
  role.pop_back();  // the prefix's trailing '_'
  constexpr size_t kMaxName = 63;
  if (role.size() > kMaxName) role = role.substr(0, kMaxName - 9) + "_" + pg_hex8(pg_name_hash(plugin_id));
  return role;
}

std::string pg_array_text(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void PgColumns::number(size_t col, int64_t v) {
  sep(col);
  arrays_[col] += std::to_string(v);
}

void PgColumns::real(size_t col, double v) {
  sep(col);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  arrays_[col] += buf;
}

void PgColumns::text(size_t col, const std::string& v) {
  sep(col);
  arrays_[col] += pg_array_text(v);
}

PgParams PgColumns::params() const {
  PgParams p;
  p.reserve(arrays_.size());
  for (const auto& a : arrays_) p.emplace_back(a + "}");
  return p;
}

// --- the pool

PgPool::PgPool(std::string conninfo, size_t size, bool prepared)
    : conninfo_(std::move(conninfo)), size_(size == 0 ? 1 : size), prepared_(prepared) {}

PgPool::~PgPool() {
  for (PGconn* c : idle_) PQfinish(c);
}

PgPool::Lease& PgPool::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    pool_ = o.pool_;
    conn_ = o.conn_;
    o.pool_ = nullptr;
    o.conn_ = nullptr;
  }
  return *this;
}

void PgPool::Lease::release() {
  if (pool_ && conn_) pool_->put_back(conn_);
  pool_ = nullptr;
  conn_ = nullptr;
}

Status PgPool::connect(PgConn* out) const {
  PGconn* raw = nullptr;
  if (Status s = pg_connect(conninfo_, "", &raw); !s) return s;
  PgConn c(raw);
  // The kernel's transactions never wait on their client between statements
  // for more than milliseconds. A kernel stopped inside one (SIGSTOP, a
  // frozen VM) would hold its rows' locks, and block the kernels taking over
  // its runs, for as long as it is stopped: the server ends such a
  // transaction, and its session, after this.
  PgResult r(PQexec(c.get(), "SET idle_in_transaction_session_timeout = '3s'"));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
    return Status::unavailable("store (postgresql): cannot set up a connection: " +
                               pg_trimmed(PQerrorMessage(c.get())));
  *out = std::move(c);
  return Status::ok();
}

Status PgPool::acquire(Lease* out) {
  std::unique_lock lock(mu_);
  for (;;) {
    while (!idle_.empty()) {
      PGconn* c = idle_.back();
      idle_.pop_back();
      if (PQstatus(c) == CONNECTION_OK) {
        out->pool_ = this;
        out->conn_ = c;
        return Status::ok();
      }
      PQfinish(c);  // broken: replaced below
      --open_;
    }
    if (open_ < size_) break;
    cv_.wait(lock);
  }
  ++open_;
  lock.unlock();
  PgConn c;
  if (Status s = connect(&c); !s) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return s;
  }
  if (prepared_) {
    // Without its set of names a connection sends its statements unprepared.
    auto* names = new std::unordered_set<std::string>;
    if (!PQregisterEventProc(c.get(), pg_prepared_names, "opk prepared statements", nullptr) ||
        !PQsetInstanceData(c.get(), pg_prepared_names, names))
      delete names;
  }
  out->pool_ = this;
  out->conn_ = c.release();
  return Status::ok();
}

void PgPool::put_back(PGconn* conn) {
  std::lock_guard lock(mu_);
  // A connection left inside a transaction (an error between BEGIN and
  // ROLLBACK that lost the connection) is not handed out again.
  if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
    PQfinish(conn);
    --open_;
  } else {
    idle_.push_back(conn);
  }
  cv_.notify_one();
}

// --- the store

namespace {
// The advisory lock every migration takes (pg_schema.cpp's "opkm"), also
// held while the migrations' table is made.
constexpr int64_t kPgOpenMigrationLock = 0x6f706b6d;
// How often the publisher looks whether this store changed runs or
// scheduled jobs (PgStore::publish_loop): other kernels see a change this
// much later at most, plus a round trip.
constexpr auto kPgPublishEvery = std::chrono::milliseconds(10);
// generation()'s answers when the count cannot be read: this bit and a
// count of such answers, above any sum of changes, each one new.
constexpr uint64_t kUnknownChanges = uint64_t{1} << 63;
}  // namespace

PgStore::PgStore(std::string conninfo, const PostgresOptions& options)
    : conninfo_(std::move(conninfo)),
      options_(options),
      pool_(conninfo_, options.pool_size, options.prepared_statements) {}

PgStore::~PgStore() {
  {
    std::lock_guard lock(publish_mu_);
    publish_stop_ = true;
  }
  publish_cv_.notify_all();
  if (publisher_.joinable()) publisher_.join();
}

Status PgStore::open() {
  {
    PgPool::Lease lease;
    if (Status s = pool_.acquire(&lease); !s) return s;
    PgResult r;
    if (Status s = pg_exec(lease.get(), "open", "SELECT current_database(), current_user", {}, &r); !s) return s;
    database_ = PQgetvalue(r.get(), 0, 0);
    kernel_role_ = PQgetvalue(r.get(), 0, 1);
    // Stores opening a fresh database at once would race on the CREATE (IF
    // NOT EXISTS does not keep two creators of one table from colliding in
    // the catalog: "type already exists"), so it is made under the
    // migrations' advisory lock: the later ones wait and find it made.
    PGconn* c = lease.get();
    Status s = pg_exec(c, "open", "BEGIN", {});
    if (s) s = pg_exec(c, "open", "SELECT pg_advisory_xact_lock($1)", {std::to_string(kPgOpenMigrationLock)});
    if (s)
      s = pg_exec(c, "open",
                  "CREATE TABLE IF NOT EXISTS schema_migrations (owner TEXT NOT NULL, version INTEGER NOT "
                  "NULL, name TEXT NOT NULL, applied_ms BIGINT NOT NULL, PRIMARY KEY (owner, version))",
                  {});
    // The count of changes every kernel on the database publishes
    // (publish_loop): the PostgreSQL store's own, as the migrations' table
    // is, since the embedded store, one process per file, has no use for it.
    if (s)
      s = pg_exec(c, "open",
                  "CREATE TABLE IF NOT EXISTS store_changes (id INTEGER PRIMARY KEY, changes BIGINT NOT NULL)", {});
    if (s)
      s = pg_exec(c, "open", "INSERT INTO store_changes (id, changes) VALUES (1, 0) ON CONFLICT (id) DO NOTHING", {});
    if (s) s = pg_exec(c, "open", "COMMIT", {});
    if (!s) {
      (void)pg_exec(c, "open", "ROLLBACK", {});
      return s;
    }
  }
  if (Status s = migrate("kernel", postgresql_kernel_migrations()); !s) return s;
  publisher_ = std::thread([this] { publish_loop(); });
  return Status::ok();
}

void PgStore::publish_loop() {
  uint64_t published = generation_.load(std::memory_order_acquire);
  std::unique_lock lock(publish_mu_);
  for (bool last = false; !last;) {
    publish_cv_.wait_for(lock, kPgPublishEvery);
    last = publish_stop_;  // the changes made until the store closes are published too
    const uint64_t changes = generation_.load(std::memory_order_acquire);
    if (changes == published) continue;
    lock.unlock();
    // The count only has to move: one UPDATE for any number of changes.
    const Status s =
        write_rows("publish changes", "UPDATE store_changes SET changes = changes + 1 WHERE id = 1", {}, nullptr);
    lock.lock();
    if (s) published = changes;  // else tried again at the next tick
  }
}

const char* PgStore::dialect() const {
  return "postgresql";
}

uint64_t PgStore::generation() const {
  // This object's changes at once, other kernels' once they publish them
  // (publish_loop): the sum moves when either count does.
  std::vector<std::vector<std::string>> rows;
  // text_rows only reads (a pooled connection): const in all but name.
  if (!const_cast<PgStore*>(this)->text_rows("the change count", "SELECT changes FROM store_changes WHERE id = 1", {},
                                             &rows) ||
      rows.empty() || rows[0].empty())
    return kUnknownChanges | unread_.fetch_add(1, std::memory_order_relaxed);  // never seen before: read again
  return generation_.load(std::memory_order_acquire) + std::strtoull(rows[0][0].c_str(), nullptr, 10);
}

// The server checkpoints on its own.
void PgStore::checkpoint() {}

Status PgStore::writable() {
  return in_transaction("test write", [](PGconn* c) {
    PgResult r;
    if (Status s = pg_exec(c, "test write", "SELECT pg_is_in_recovery()", {}, &r); !s) return s;
    if (std::strcmp(PQgetvalue(r.get(), 0, 0), "t") == 0)
      return Status::unavailable("store (postgresql): the server is a standby in recovery: it takes no writes");
    return Status::ok();
  });
}

Status PgStore::text_rows(const std::string& what, const std::string& sql, const PgParams& params,
                          std::vector<std::vector<std::string>>* out) {
  PgPool::Lease lease;
  Status s = pool_.acquire(&lease);
  PgResult r;
  if (s) s = pg_exec(lease.get(), "read " + what, sql, params, &r);
  // The statement is the store's own: whatever fails is the store's.
  if (!s) return Status::unavailable("store (postgresql): cannot read " + what + ": " + s.message());
  const int rows = PQntuples(r.get()), cols = PQnfields(r.get());
  out->reserve(out->size() + static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    std::vector<std::string> row;
    row.reserve(static_cast<size_t>(cols));
    for (int c = 0; c < cols; ++c)
      row.emplace_back(PQgetvalue(r.get(), i, c), static_cast<size_t>(PQgetlength(r.get(), i, c)));
    out->push_back(std::move(row));
  }
  return Status::ok();
}

Status PgStore::read_text(const std::string& what, const std::string& sql, const SqlParams& params,
                          std::vector<TextRow>* out) {
  return text_rows(what, sql, params, out);
}

Status PgStore::write_one(const std::string& what, const std::string& sql, const SqlParams& params, int64_t* changed) {
  Status s = write_rows(what, sql, params, changed);
  // The statement is the store's own: whatever fails but a constraint is
  // the store's.
  if (!s && s.code() != OPK_ERR_CONFLICT && s.code() != OPK_ERR_UNAVAILABLE)
    return Status::unavailable("store (postgresql): " + s.message());
  return s;
}

Status PgStore::write_rows(const std::string& what, const std::string& sql, const PgParams& params, int64_t* changed) {
  PgPool::Lease lease;
  if (Status s = pool_.acquire(&lease); !s) return s;
  PgResult r;
  if (Status s = pg_exec(lease.get(), what, sql, params, &r); !s) return s;
  if (changed) *changed = std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
  return Status::ok();
}

}  // namespace opk::store::internal

namespace opk::store {

Status open_postgresql(const std::string& conninfo, const PostgresOptions& options, std::unique_ptr<Store>* out) {
  auto s = std::make_unique<internal::PgStore>(conninfo, options);
  if (Status st = s->open(); !st) return st;
  *out = std::move(s);
  return Status::ok();
}

}  // namespace opk::store
