// The migrations service's C table: each call checks the actor, then reads
// the store's records and the declarations into one JSON answer.
#include "host/migrations_service.h"

#include <opskernel/json.hpp>

#include <cstring>

#include "clock/clock.h"
#include "host/host.h"
#include "host/identity_service.h"
#include "host/principals.h"
#include "host/served.h"
#include "host/store_service.h"
#include "store/store.h"

namespace opk::host {
namespace {

ServedBy<MigrationsService> g_migrations_served;

opk_status migrations_answer(const Status& s) {
  if (!s) report_host_error(s.message());
  return s.code();
}

}  // namespace

MigrationsService::MigrationsService(store::Store& store, const StoreService& declared, const Principals& principals,
                                     std::function<bool(const std::string&, const std::string&)> allowed)
    : store_(store),
      declared_(declared),
      principals_(principals),
      allowed_(std::move(allowed)),
      opened_ms_(clock::now_ms()) {
  ext_.struct_size = sizeof ext_;
  ext_.status = &cb_status;
}

MigrationsService::~MigrationsService() {
  g_migrations_served.forget(this);
}

void MigrationsService::serve(const PluginHost* host) {
  g_migrations_served.serve(host, this);
}

Status MigrationsService::check_actor(const opk_principal* actor) const {
  if (actor == nullptr || !principals_.issued(actor))
    return Status::permission("actor: not a principal the kernel issued (use the request's)");
  const std::string role = actor->role ? actor->role : kSystemRole;
  if (!allowed_ || !allowed_(role, "migrations.read"))
    return Status::permission("actor: role '" + role + "' does not hold migrations.read");
  return Status::ok();
}

Status MigrationsService::status_json(std::string* out) const {
  auto applied = store_.applied_migrations();
  if (!applied) return Status::unavailable("migrations: " + applied.status().message());
  auto attempts = store_.migration_attempts();
  if (!attempts) return Status::unavailable("migration attempts: " + attempts.status().message());
  nlohmann::json a = nlohmann::json::array();
  for (const auto& m : applied.value())
    a.push_back({{"owner", m.owner}, {"version", m.version}, {"name", m.name}, {"applied_ms", m.applied_ms}});
  nlohmann::json t = nlohmann::json::array();
  for (const auto& m : attempts.value())
    t.push_back({{"owner", m.owner},
                 {"version", m.version},
                 {"name", m.name},
                 {"started_ms", m.started_ms},
                 {"duration_us", m.duration_us},
                 {"outcome", m.applied ? "applied" : "failed"},
                 {"error", m.error}});
  nlohmann::json d = nlohmann::json::array();
  const auto& kernel = std::strcmp(store_.dialect(), "postgresql") == 0 ? store::postgresql_kernel_migrations()
                                                                        : store::sqlite_kernel_migrations();
  nlohmann::json km = nlohmann::json::array();
  for (const auto& m : kernel) km.push_back({{"version", m.version}, {"name", m.name}});
  d.push_back({{"owner", "kernel"}, {"declared_ms", opened_ms_}, {"migrations", km}});
  for (const auto& o : declared_.declared()) {
    nlohmann::json pm = nlohmann::json::array();
    for (const auto& [version, name] : o.migrations) pm.push_back({{"version", version}, {"name", name}});
    d.push_back({{"owner", o.owner}, {"declared_ms", o.declared_ms}, {"migrations", pm}});
  }
  *out =
      nlohmann::json{
          {"dialect", store_.dialect()}, {"now_ms", clock::now_ms()}, {"applied", a}, {"attempts", t}, {"declared", d}}
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return Status::ok();
}

opk_status MigrationsService::cb_status(const opk_host* host, const opk_principal* actor, char** status_json) {
  if (!status_json) return migrations_answer(Status::invalid("status_json: is NULL"));
  *status_json = nullptr;
  auto* ph = PluginHost::from(host);
  MigrationsService* self = ph ? g_migrations_served.find(ph) : nullptr;
  if (!self) return OPK_ERR_UNAVAILABLE;
  if (Status s = self->check_actor(actor); !s) return migrations_answer(s);
  std::string text;
  if (Status s = self->status_json(&text); !s) return migrations_answer(s);
  *status_json = plugin_string(text);
  return *status_json ? OPK_OK : OPK_ERR_NO_MEMORY;
}

}  // namespace opk::host
