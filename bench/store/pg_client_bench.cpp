// The PostgreSQL client for the store's hot path, measured: libpq (what the
// store uses, kernel/store/pg_*.cpp) against Poco Data's PostgreSQL connector
// on the same statements, the same server and the same rows. Three shapes,
// each a batch of runs in one transaction as the engine writes them:
//   - insert: a batch of 500 rows (id, job type, parameters, time);
//   - update: each row of the batch set COMPLETED by its id;
//   - read: a batch's rows read back by a range of ids.
// Poco binds a vector of values and runs the statement once per row (it has
// no array or pipeline form of its own); both are measured row by row
// (libpq prepared once, PQexecPrepared per row) and as the store writes, one
// statement over arrays (unnest; Poco binding the array literals as text). Prints min / median / max of 3 rounds of
// 20,000 rows each, in rows per second, and the client process's CPU per row.
//
//   opk_pg_client_bench [CONNINFO]
//
// Without CONNINFO it starts a throwaway server with
// tests/support/pg-server/pg_server.sh (fsync and synchronous_commit on).
#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/Session.h>
#include <libpq-fe.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "support/bench_util.h"

namespace {

constexpr int kRows = 20000;
constexpr int kBatch = 500;

double pcb_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void pcb_exec(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::cerr << "opk_pg_client_bench: " << sql.substr(0, 60) << ": " << PQerrorMessage(c);
    std::exit(1);
  }
  PQclear(r);
}

void pcb_check(PGconn* c, PGresult* r, const char* what) {
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::cerr << "opk_pg_client_bench: " << what << ": " << PQerrorMessage(c);
    std::exit(1);
  }
  PQclear(r);
}

const char* kCreate =
    "DROP TABLE IF EXISTS pcb_runs; CREATE TABLE pcb_runs (id BIGINT PRIMARY KEY, job_type TEXT NOT NULL, "
    "params TEXT NOT NULL, scheduled_ms BIGINT NOT NULL, phase TEXT NOT NULL DEFAULT 'PENDING')";

std::string pcb_params(int i) {
  return "{\"tenant\":\"t" + std::to_string(i % 50) + "\",\"dry_run\":false}";
}

// One round through libpq, row by row (each statement prepared once).
void pcb_libpq_rows(PGconn* c, int64_t base) {
  static bool prepared = false;
  if (!prepared) {
    pcb_check(c,
              PQprepare(c, "ins", "INSERT INTO pcb_runs (id, job_type, params, scheduled_ms) VALUES ($1, $2, $3, $4)",
                        0, nullptr),
              "prepare insert");
    pcb_check(c, PQprepare(c, "upd", "UPDATE pcb_runs SET phase = 'COMPLETED' WHERE id = $1", 0, nullptr),
              "prepare update");
    pcb_check(c,
              PQprepare(c, "sel", "SELECT id, job_type, params, scheduled_ms FROM pcb_runs WHERE id >= $1 AND id < $2",
                        0, nullptr),
              "prepare select");
    prepared = true;
  }
  for (int b = 0; b < kRows; b += kBatch) {
    pcb_exec(c, "BEGIN");
    for (int i = b; i < b + kBatch; ++i) {
      const std::string id = std::to_string(base + i), type = "hello", p = pcb_params(i), t = std::to_string(1000 + i);
      const char* v[] = {id.c_str(), type.c_str(), p.c_str(), t.c_str()};
      pcb_check(c, PQexecPrepared(c, "ins", 4, v, nullptr, nullptr, 0), "insert");
    }
    pcb_exec(c, "COMMIT");
    pcb_exec(c, "BEGIN");
    for (int i = b; i < b + kBatch; ++i) {
      const std::string id = std::to_string(base + i);
      const char* v[] = {id.c_str()};
      pcb_check(c, PQexecPrepared(c, "upd", 1, v, nullptr, nullptr, 0), "update");
    }
    pcb_exec(c, "COMMIT");
    const std::string lo = std::to_string(base + b), hi = std::to_string(base + b + kBatch);
    const char* v[] = {lo.c_str(), hi.c_str()};
    pcb_check(c, PQexecPrepared(c, "sel", 2, v, nullptr, nullptr, 0), "select");
  }
}

// A PostgreSQL array literal of the values (quoted, escaped).
std::string pcb_array(const std::vector<std::string>& xs) {
  std::string out = "{";
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : xs[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// The batch starting at row `b` as the four array literals the store's
// insert binds: ids, job types, parameters, scheduled times.
std::array<std::string, 4> pcb_batch_arrays(int64_t base, int b) {
  std::vector<std::string> ids, types, ps, ts;
  for (int i = b; i < b + kBatch; ++i) {
    ids.push_back(std::to_string(base + i));
    types.push_back("hello");
    ps.push_back(pcb_params(i));
    ts.push_back(std::to_string(1000 + i));
  }
  return {pcb_array(ids), pcb_array(types), pcb_array(ps), pcb_array(ts)};
}

// One round through libpq as the store writes: one statement per batch.
void pcb_libpq_arrays(PGconn* c, int64_t base) {
  for (int b = 0; b < kRows; b += kBatch) {
    const auto [a, t, p, s] = pcb_batch_arrays(base, b);
    const char* v[] = {a.c_str(), t.c_str(), p.c_str(), s.c_str()};
    pcb_exec(c, "BEGIN");
    pcb_check(c,
              PQexecParams(c,
                           "INSERT INTO pcb_runs (id, job_type, params, scheduled_ms) SELECT * FROM "
                           "unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])",
                           4, nullptr, v, nullptr, nullptr, 0),
              "insert arrays");
    pcb_exec(c, "COMMIT");
    const char* u[] = {a.c_str()};
    pcb_exec(c, "BEGIN");
    pcb_check(c,
              PQexecParams(c,
                           "UPDATE pcb_runs r SET phase = 'COMPLETED' FROM unnest($1::bigint[]) AS x(id) WHERE r.id = "
                           "x.id",
                           1, nullptr, u, nullptr, nullptr, 0),
              "update arrays");
    pcb_exec(c, "COMMIT");
    const std::string lo = std::to_string(base + b), hi = std::to_string(base + b + kBatch);
    const char* w[] = {lo.c_str(), hi.c_str()};
    pcb_check(c,
              PQexecParams(c, "SELECT id, job_type, params, scheduled_ms FROM pcb_runs WHERE id >= $1 AND id < $2", 2,
                           nullptr, w, nullptr, nullptr, 0),
              "select");
  }
}

// One round through Poco Data: vectors bound, the statement run per row.
void pcb_poco(Poco::Data::Session& s, int64_t base) {
  using Poco::Data::Keywords::into;
  using Poco::Data::Keywords::now;
  using Poco::Data::Keywords::use;
  for (int b = 0; b < kRows; b += kBatch) {
    std::vector<Poco::Int64> ids, ts;
    std::vector<std::string> types, ps;
    for (int i = b; i < b + kBatch; ++i) {
      ids.push_back(base + i);
      types.push_back("hello");
      ps.push_back(pcb_params(i));
      ts.push_back(1000 + i);
    }
    s.begin();
    s << "INSERT INTO pcb_runs (id, job_type, params, scheduled_ms) VALUES ($1, $2, $3, $4)", use(ids), use(types),
        use(ps), use(ts), now;
    s.commit();
    s.begin();
    s << "UPDATE pcb_runs SET phase = 'COMPLETED' WHERE id = $1", use(ids), now;
    s.commit();
    Poco::Int64 lo = base + b, hi = base + b + kBatch;
    std::vector<Poco::Int64> rid, rts;
    std::vector<std::string> rtype, rps;
    s << "SELECT id, job_type, params, scheduled_ms FROM pcb_runs WHERE id >= $1 AND id < $2", use(lo), use(hi),
        into(rid), into(rtype), into(rps), into(rts), now;
  }
}

// One round through Poco Data with the store's statements over arrays (the
// array literals bound as text, cast by the statement).
void pcb_poco_arrays(Poco::Data::Session& s, int64_t base) {
  using Poco::Data::Keywords::into;
  using Poco::Data::Keywords::now;
  using Poco::Data::Keywords::use;
  for (int b = 0; b < kRows; b += kBatch) {
    auto [a, t, p, u] = pcb_batch_arrays(base, b);
    s.begin();
    s << "INSERT INTO pcb_runs (id, job_type, params, scheduled_ms) SELECT * FROM unnest($1::bigint[], $2::text[], "
         "$3::text[], $4::bigint[])",
        use(a), use(t), use(p), use(u), now;
    s.commit();
    s.begin();
    s << "UPDATE pcb_runs r SET phase = 'COMPLETED' FROM unnest($1::bigint[]) AS x(id) WHERE r.id = x.id", use(a), now;
    s.commit();
    Poco::Int64 lo = base + b, hi = base + b + kBatch;
    std::vector<Poco::Int64> rid, rts;
    std::vector<std::string> rtype, rps;
    s << "SELECT id, job_type, params, scheduled_ms FROM pcb_runs WHERE id >= $1 AND id < $2", use(lo), use(hi),
        into(rid), into(rtype), into(rps), into(rts), now;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string conninfo = argc > 1 ? argv[1] : "";
  std::string dir;
  if (conninfo.empty()) {
    dir = "/tmp/opk-pcb-pg-" + std::to_string(getpid());
    const int port = opk::bench::free_port();
    const std::string script = std::string(OPK_SOURCE_DIR) + "/tests/support/pg-server/pg_server.sh";
    if (std::system(("bash '" + script + "' start " + dir + " " + std::to_string(port) + " >/dev/null").c_str()) != 0) {
      std::cerr << "opk_pg_client_bench: cannot start PostgreSQL with " << script << "\n";
      return 1;
    }
    conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=postgres";
  }
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::cerr << "opk_pg_client_bench: " << PQerrorMessage(c);
    return 1;
  }
  pcb_exec(c, kCreate);
  Poco::Data::PostgreSQL::Connector::registerConnector();
  Poco::Data::Session poco("postgresql", conninfo);

  struct Way {
    const char* name;
    std::function<void(int64_t)> round;
    std::vector<double> rate, cpu;
  };
  std::vector<Way> ways = {
      {"libpq, one statement over arrays (the store's)", [&](int64_t b) { pcb_libpq_arrays(c, b); }},
      {"libpq, prepared, row by row", [&](int64_t b) { pcb_libpq_rows(c, b); }},
      {"Poco Data PostgreSQL, one statement over arrays", [&](int64_t b) { pcb_poco_arrays(poco, b); }},
      {"Poco Data PostgreSQL, vectors bound, row by row", [&](int64_t b) { pcb_poco(poco, b); }}};
  int64_t base = 1;
  for (int round = 0; round < 3; ++round)
    for (auto& w : ways) {
      const double cpu0 = pcb_cpu_s();
      const auto t0 = std::chrono::steady_clock::now();
      w.round(base);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      w.rate.push_back(kRows / secs);
      w.cpu.push_back((pcb_cpu_s() - cpu0) / kRows * 1e6);
      base += kRows;
    }
  std::printf(
      "PostgreSQL client for the store's hot path: %d rows a round in batches of %d (insert, update by id, "
      "read back), 3 rounds interleaved, min / median / max\n",
      kRows, kBatch);
  for (auto& w : ways) {
    std::printf("  %s\n", w.name);
    std::printf("    rows/s:             %s\n", opk::bench::stats(w.rate, "", 0).c_str());
    std::printf("    client CPU per row: %s\n", opk::bench::stats(w.cpu, "us", 1).c_str());
  }
  PQfinish(c);
  if (!dir.empty())
    std::system(
        ("bash '" + std::string(OPK_SOURCE_DIR) + "/tests/support/pg-server/pg_server.sh' stop " + dir).c_str());
  return 0;
}
