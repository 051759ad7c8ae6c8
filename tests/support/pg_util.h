// pg_util.h -- a fresh PostgreSQL database per test, on the throwaway server
// tests/CMakeLists.txt starts (tests/support/pg-server/pg_server.sh) and
// names in OPK_TEST_PG. Each test gets a database of its own, so tests run
// in parallel without seeing each other; it is dropped at the end with the
// plugin roles the store made for it.
#ifndef OPSKERNEL_TESTS_SUPPORT_PG_UTIL_H
#define OPSKERNEL_TESTS_SUPPORT_PG_UTIL_H

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>

#include "config/config.h"
#include "store/pg_internal.h"

namespace opk::test {

// The server's connection string, or "" when OPK_TEST_PG is not set.
inline std::string pg_server() {
  const char* v = std::getenv("OPK_TEST_PG");
  return v ? v : "";
}

// What a PostgreSQL test says when OPK_TEST_PG is not set: it fails, never
// skips.
inline const char* kPgHowToRun =
    "OPK_TEST_PG is not set: run the PostgreSQL tests through ctest (its fixture starts a throwaway server, "
    "tests/support/pg-server/pg_server.sh), or start one yourself and set OPK_TEST_PG='host=127.0.0.1 port=... "
    "user=postgres dbname=postgres'";

// A database created for one test and dropped (WITH (FORCE)) with the
// plugin roles of its name when the object goes.
class PgDatabase {
 public:
  PgDatabase() = default;
  PgDatabase(const PgDatabase&) = delete;
  PgDatabase& operator=(const PgDatabase&) = delete;
  ~PgDatabase() { drop(); }

  // Creates the database; "" or what failed (including OPK_TEST_PG unset).
  std::string create() {
    server_ = pg_server();
    if (server_.empty()) return kPgHowToRun;
    static std::atomic<int> counter{0};
    name_ = "opk_t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
    if (std::string e = admin("CREATE DATABASE " + name_); !e.empty()) {
      name_.clear();
      return e;
    }
    return "";
  }
  // The connection string of the test's database.
  std::string conninfo() const { return server_ + " dbname=" + name_; }
  const std::string& name() const { return name_; }
  // Runs `sql` on the server's maintenance database; "" or the error.
  std::string admin(const std::string& sql) const {
    PGconn* c = PQconnectdb(server_.c_str());
    std::string err;
    if (PQstatus(c) != CONNECTION_OK) {
      err = PQerrorMessage(c);
    } else {
      PGresult* r = PQexec(c, sql.c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) err = PQresultErrorMessage(r);
      PQclear(r);
    }
    PQfinish(c);
    return err.empty() ? "" : sql + ": " + err;
  }

 private:
  void drop() {
    if (name_.empty()) return;
    admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    admin(R"SQL(DO $$ DECLARE r record; BEGIN
      FOR r IN SELECT rolname FROM pg_roles WHERE starts_with(rolname, ')SQL" +
          store::internal::pg_plugin_role_prefix(name_) + R"SQL(') LOOP
        EXECUTE format('DROP ROLE %I', r.rolname);
      END LOOP; END $$)SQL");
    name_.clear();
  }

  std::string server_;
  std::string name_;
};

// Points `cfg` at the store `backend` names: "sqlite" leaves it on its file;
// "postgresql" creates `db` (once: a kernel restarted on `db` finds its
// data) and configures the kernel for it. "" or what failed.
inline std::string use_store_backend(const std::string& backend, PgDatabase* db, config::Config* cfg) {
  if (backend != "postgresql") return "";
  if (db->name().empty())
    if (std::string e = db->create(); !e.empty()) return e;
  cfg->store_backend = "postgresql";
  cfg->pg_conninfo = db->conninfo();
  return "";
}

// The name gtest gives each backend of a suite instantiated over "sqlite"
// and "postgresql".
inline std::string store_backend_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace opk::test

#endif
