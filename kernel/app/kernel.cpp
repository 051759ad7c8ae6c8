#include "app/kernel.h"

#include <iostream>

#include <Poco/JSONString.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <set>

#include "loader/describe.h"
#include "log/logging.h"
#include "store/open.h"
#include "version.h"

namespace opk {
namespace {
int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

const char* to_string(PluginState s) {
  switch (s) {
    case PluginState::active:
      return "active";
    case PluginState::refused:
      return "refused";
    case PluginState::disabled:
      return "disabled";
    case PluginState::stopped:
      return "stopped";
  }
  return "?";
}

Kernel::Kernel(config::Config config) : config_(std::move(config)) {
  config_.store_path = config_.store_file();
  if (config_.node_name.empty()) {
    char host[256] = {0};
    config_.node_name = (gethostname(host, sizeof host - 1) == 0 && host[0]) ? host : "node";
  }
}

Kernel::~Kernel() {
  stop();
}

void Kernel::refuse(PluginRecord& p, const std::string& phase, const std::string& why) {
  p.state = PluginState::refused;
  p.reason = phase + ": " + why;
  log::kernel()->error("plugin {} ({}) refused at {}", p.id.empty() ? "?" : p.id, p.path.string(), p.reason);
}

Status Kernel::start(bool start_plugins) {
  if (started_once_) return Status::conflict("a kernel starts once; create a new one to start again");
  started_once_ = true;
  const int64_t t0 = steady_ms();
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) return Status::invalid("kernel.data_dir: cannot create '" + config_.data_dir + "': " + ec.message());
  if (!std::filesystem::is_directory(config_.plugins_dir))
    return Status::invalid("kernel.plugins_dir: '" + config_.plugins_dir + "' is not a folder");
  running_ = true;
  // The store opens before plugins initialise, so opk.store/1 serves them from init on.
  if (start_plugins) {
    Status s = open_store();
    if (!s) {
      running_ = false;
      return s;
    }
  }
  scan();
  init_in_dependency_order();
  if (start_plugins) {
    adapt_alert_sources();
    start_active();
    Status s = start_engine();
    if (!s) {
      stop();
      return s;
    }
  }
  start_ms_ = steady_ms() - t0;
  size_t active = 0, refused = 0;
  for (auto& p : plugins_) (p->state == PluginState::active ? active : refused) += (p->state != PluginState::disabled);
  log::kernel()->info("kernel ready in {} ms: {} plugin(s) active, {} refused", start_ms_, active, refused);
  return Status::ok();
}

void Kernel::scan() {
  // Every ".so" entry is a candidate, whatever it is: a symlink loop, a
  // dangling link or a folder named x.so is refused below with its reason,
  // never allowed to stop the scan (error_code overloads throughout).
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  std::filesystem::directory_iterator it(config_.plugins_dir, ec), end;
  if (ec) log::kernel()->error("plugins folder {}: cannot be read: {}", config_.plugins_dir, ec.message());
  for (; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".so") files.push_back(it->path());
  if (ec) log::kernel()->error("plugins folder {}: reading stopped: {}", config_.plugins_dir, ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> seen;  // plugin id -> path
  const std::set<std::string> disabled(config_.disabled_plugins.begin(), config_.disabled_plugins.end());
  for (const auto& f : files) {
    auto rec = std::make_unique<PluginRecord>();
    rec->path = f;
    std::error_code fec;
    const auto status = std::filesystem::status(f, fec);
    Status s;
    if (fec)
      s = Status::invalid("cannot load " + f.string() + ": " + fec.message());
    else if (!std::filesystem::is_regular_file(status))
      s = Status::invalid("cannot load " + f.string() + ": not a regular file");
    else
      s = loader::Library::open(f, &rec->library);
    if (!s) {
      refuse(*rec, "load", s.message());
    } else {
      const auto& m = rec->library->manifest();
      rec->id = m.id;
      rec->name = m.name;
      rec->version = m.version;
      rec->vendor = m.vendor;
      if (auto it = seen.find(m.id); it != seen.end()) {
        refuse(*rec, "load", "duplicate plugin id '" + m.id + "' (already loaded from " + it->second + ")");
        rec->library.reset();
      } else if (disabled.count(m.id)) {
        seen[m.id] = f.string();
        rec->state = PluginState::disabled;
        rec->reason = "listed in plugins.disabled";
        rec->library.reset();
        log::kernel()->info("plugin {} disabled by configuration", rec->id);
      } else {
        seen[m.id] = f.string();
        rec->state = PluginState::stopped;  // candidate
      }
    }
    plugins_.push_back(std::move(rec));
  }
}

PluginRecord* Kernel::find_active(const std::string& plugin_id) {
  for (auto* p : order_)
    if (p->id == plugin_id && p->state == PluginState::active) return p;
  return nullptr;
}

bool Kernel::kernel_provides(const std::string& id) const {
  return id == OPK_EXT_HTTP_ROUTES || (id == OPK_EXT_STORE && store_service_) ||
         (id == OPK_EXT_IDENTITY && identity_service_) || (id == OPK_EXT_JOBS && jobs_service_) ||
         (id == OPK_EXT_AUDIT && audit_service_) || (id == OPK_EXT_ALERTS && alerts_service_) ||
         (id == OPK_EXT_EVENTS && events_service_) || id == OPK_EXT_CHANNELS || id == OPK_EXT_METRICS ||
         id == OPK_EXT_RUN_GATES || (id == OPK_EXT_CACHE && cache_service_) ||
         (id == OPK_EXT_MIGRATIONS && migrations_service_);
}

const void* Kernel::lookup_extension(const std::string& requester, const std::string& id) {
  if (id == OPK_EXT_HTTP_ROUTES) return routes_.extension();
  if (id == OPK_EXT_STORE) return store_service_ ? store_service_->extension() : nullptr;
  if (id == OPK_EXT_IDENTITY) return identity_service_ ? identity_service_->extension() : nullptr;
  if (id == OPK_EXT_JOBS) return jobs_service_ ? jobs_service_->extension() : nullptr;
  if (id == OPK_EXT_AUDIT) return audit_service_ ? audit_service_->extension() : nullptr;
  if (id == OPK_EXT_ALERTS) return alerts_service_ ? alerts_service_->extension() : nullptr;
  if (id == OPK_EXT_EVENTS) return events_service_ ? events_service_->extension() : nullptr;
  if (id == OPK_EXT_CHANNELS) return channels_.extension();
  if (id == OPK_EXT_METRICS) return metrics_.extension();
  if (id == OPK_EXT_RUN_GATES) return run_gates_.extension();
  if (id == OPK_EXT_CACHE) return cache_service_ ? cache_service_->extension() : nullptr;
  if (id == OPK_EXT_MIGRATIONS) return migrations_service_ ? migrations_service_->extension() : nullptr;
  // Another plugin's extension only when declared: the declaration is what
  // orders init and stop, so an undeclared use could outlive its provider.
  const bool declared = std::any_of(plugins_.begin(), plugins_.end(), [&](const auto& p) {
    if (p->id != requester || !p->library) return false;
    const auto& reqs = p->library->manifest().requirements;
    return std::any_of(reqs.begin(), reqs.end(), [&](const auto& r) { return r.extension_id == id; });
  });
  if (!declared) return nullptr;
  const std::string provider = registry_.provider_of(id);
  if (provider.empty() || provider == requester) return nullptr;
  PluginRecord* p = find_active(provider);
  if (!p || !p->library->entry().get_extension) return nullptr;
  return p->library->entry().get_extension(p->instance, id.c_str());
}

void Kernel::init_in_dependency_order() {
  std::vector<PluginRecord*> pending;
  for (auto& p : plugins_)
    if (p->state == PluginState::stopped) pending.push_back(p.get());
  // A requirement is met by the kernel or an initialised provider. An optional
  // one is also met when no pending plugin could still provide it; if one
  // can, wait for it, so the provider is initialised first and stopped last.
  auto pending_provides = [&](const std::string& id) {
    return std::any_of(pending.begin(), pending.end(), [&](PluginRecord* q) {
      const auto& pr = q->library->manifest().provides;
      return std::find(pr.begin(), pr.end(), id) != pr.end();
    });
  };
  // When nothing else can move (the optional providers are themselves stuck),
  // stop waiting for optional ones and let their requirers go without them.
  bool wait_for_optional = true;
  auto satisfied = [&](const loader::Requirement& r) {
    if (kernel_provides(r.extension_id) || !registry_.provider_of(r.extension_id).empty()) return true;
    return r.optional && (!wait_for_optional || !pending_provides(r.extension_id));
  };
  bool progress = true;
  while (progress || wait_for_optional) {
    if (!progress) wait_for_optional = false;
    progress = false;
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      PluginRecord& p = **it;
      const auto& m = p.library->manifest();
      if (!std::all_of(m.requirements.begin(), m.requirements.end(), satisfied)) continue;
      pending.erase(it);
      progress = true;
      Status s = registry_.check(m);
      // Its admin features' permissions join the catalogue, unless the
      // kernel or another plugin has one of the names.
      for (const auto& f : m.admin_features)
        for (const auto& [name, description] : f.permissions)
          if (s && identity_) s = identity_->declare_permission(name, description, m.id);
      if (!s) {
        if (identity_) identity_->forget_permissions(m.id);
        refuse(p, "register", s.message());
        p.library.reset();
        break;
      }
      p.host = std::make_unique<host::PluginHost>(
          m.id, config_.plugins.count(m.id) ? config_.plugins.at(m.id) : config::PluginSettings{},
          config_.public_settings(),
          [this](const std::string& req, const std::string& id) { return lookup_extension(req, id); });
      p.host->set_routes(&routes_);
      p.host->set_store_service(store_service_.get());
      p.host->set_identity_service(identity_service_.get());
      p.host->set_jobs_service(jobs_service_.get());
      p.host->set_audit_service(audit_service_.get());
      p.host->set_abi_minor(p.library->entry().abi_minor);
      if (alerts_service_) alerts_service_->serve(p.host.get());
      if (events_service_) events_service_->serve(p.host.get());
      channels_.serve(p.host.get());
      metrics_.serve(p.host.get());
      run_gates_.serve(p.host.get());
      if (cache_service_) cache_service_->serve(p.host.get());
      if (migrations_service_) migrations_service_->serve(p.host.get());
      for (const auto& f : m.admin_features) p.host->add_feature(f.id);
      // Named and flushed before the call: a plugin that crashes the
      // process in init is then the last line of the log.
      log::kernel()->info("plugin {} {}: initialising from {}", m.id, m.version, p.path.string());
      log::kernel()->flush();
      opk_plugin* inst = nullptr;
      Status init = host::call_plugin("init", [&] { return p.library->entry().init(p.host->table(), &inst); });
      if (!init) {
        if (identity_) identity_->forget_permissions(m.id);
        refuse(p, "init", init.message());
        p.host.reset();
        p.library.reset();
        break;
      }
      p.instance = inst;
      p.host->set_instance(inst);
      registry_.add(m);
      p.state = PluginState::active;
      order_.push_back(&p);
      log::kernel()->info("plugin {} {} initialised ({} job types, {} alert sources, {} admin features)", m.id,
                          m.version, m.job_types.size(), m.alert_sources.size(), m.admin_features.size());
      break;  // restart the scan: keeps the order deterministic
    }
  }
  // What is left lacks a required extension. Name it before unloading anything:
  // satisfied() still reads the pending manifests.
  for (PluginRecord* p : pending)
    for (const auto& r : p->library->manifest().requirements)
      if (!satisfied(r)) {
        refuse(*p, "resolve", "requires extension '" + r.extension_id + "', which no active plugin provides");
        break;
      }
  for (PluginRecord* p : pending) p->library.reset();
}

void Kernel::start_active() {
  for (size_t i = 0; i < order_.size(); ++i) {
    PluginRecord* p = order_[i];
    if (p->state != PluginState::active) continue;
    const auto& entry = p->library->entry();
    Status started =
        host::call_plugin("start", [&] { return entry.start ? entry.start(p->instance) : opk_status{OPK_OK}; });
    if (started) {
      p->started = true;
      // Its channels are reachable through opk.channels/1 from now on.
      channels_.add_plugin(p->id, p->instance, p->library->manifest().channels);
      continue;
    }
    // Plugins initialised after p that use its extensions (directly or
    // through each other) go first: they may hold pointers into p.
    std::vector<PluginRecord*> gone = {p};
    for (size_t j = i + 1; j < order_.size(); ++j) {
      PluginRecord* q = order_[j];
      if (q->state != PluginState::active) continue;
      for (const auto& r : q->library->manifest().requirements) {
        const std::string provider = registry_.provider_of(r.extension_id);
        if (std::any_of(gone.begin(), gone.end(), [&](PluginRecord* g) { return g->id == provider; })) {
          gone.push_back(q);
          break;
        }
      }
    }
    for (auto it = gone.rbegin(); it != gone.rend(); ++it) {
      PluginRecord* g = *it;
      channels_.remove_plugin(g->id);
      metrics_.remove_plugin(g->id);
      run_gates_.remove_plugin(g->id);
      routes_.remove_plugin(g->id);
      g->library->entry().deinit(g->instance);
      g->instance = nullptr;
      refuse(*g, "start",
             g == p ? started.message()
                    : "an extension it requires is gone (its provider '" + p->id + "' failed to start)");
    }
    for (PluginRecord* g : gone) {
      registry_.remove(g->id);
      if (identity_) identity_->forget_permissions(g->id);
      g->host.reset();
      g->library.reset();
    }
  }
}

void Kernel::stop() {
  if (!running_) return;
  stop_escalation_checks();
  // Reads waiting for events return now, so plugins waiting in them can stop.
  if (events_) events_->stop();
  // 1. The engine stops taking runs, cancels those in flight and waits.
  if (engine_) engine_->stop(config_.shutdown_grace_ms);
  // Calls through opk.jobs/1 still using the engine return now (a stopped
  // engine refuses new runs and ends log waits); then it goes.
  if (jobs_service_) jobs_service_->set_engine(nullptr);
  engine_.reset();
  // 2. Stop in reverse order, then deinit in reverse order, then unload.
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    PluginRecord* p = *it;
    if (p->state != PluginState::active) continue;
    // Its channels and metrics collectors go first, once calls into them
    // have returned.
    channels_.remove_plugin(p->id);
    metrics_.remove_plugin(p->id);
    run_gates_.remove_plugin(p->id);
    if (p->started && p->library->entry().stop) p->library->entry().stop(p->instance);
    routes_.remove_plugin(p->id);
    p->started = false;
  }
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    PluginRecord* p = *it;
    if (p->state != PluginState::active) continue;
    p->library->entry().deinit(p->instance);
    p->instance = nullptr;
    registry_.remove(p->id);
    p->state = PluginState::stopped;
  }
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    (*it)->host.reset();
    (*it)->library.reset();
  }
  order_.clear();
  alert_jobs_.clear();
  if (store_)
    if (auto rows = refusals_.flush(jobs::now_ms()); !rows.empty()) store_->audit(rows);
  migrations_service_.reset();  // reads store_service_
  store_service_.reset();
  alerts_service_.reset();
  alerts_.reset();
  metrics_.remove_plugin("kernel");
  cache_service_.reset();
  events_service_.reset();
  events_.reset();
  jobs_service_.reset();
  audit_service_.reset();
  identity_service_.reset();
  identity_.reset();
  store_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
  running_ = false;
  log::kernel()->info("kernel stopped");
}

int Kernel::run_until_signal() {
  // The handlers are installed before start(): a supervisor may send SIGTERM
  // as soon as it reads "kernel ready", and a signal that arrives before
  // async_wait is queued by the signal_set rather than killing the process.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  Status s = start();
  if (!s) {
    log::kernel()->critical("cannot start: {}", s.message());
    return 2;
  }

  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) log::kernel()->info("signal {} received, shutting down", sig);
    io.stop();
  });
  io.run();
  stop();
  return 0;
}

jobs::TypeRef Kernel::resolve_type(const std::string& job_type) {
  const auto* entry = registry_.job_type(job_type);
  if (!entry) {
    // An alert source, adapted (the job types of plugins come first).
    auto it = alert_jobs_.find(job_type);
    if (it == alert_jobs_.end() || !it->second.started()) return {};
    return {it->second.job->type(), it->second.plugin->instance};
  }
  PluginRecord* p = find_active(entry->plugin_id);
  if (!p || !p->started) return {};
  return {entry->item, p->instance};
}

static identity::Permissions permissions(const config::Config& c) {
  identity::Permissions p = identity::default_permissions();
  for (const auto& [role, perms] : c.permissions) p[role] = perms;
  return p;
}

Status Kernel::lock_store_file() {
  const std::string lock_path = config_.store_path + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Status::invalid("store.path: cannot open " + lock_path + ": " + strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    ssize_t n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
    ::close(lock_fd_);
    lock_fd_ = -1;
    return Status::conflict("store.path: '" + config_.store_path + "' is in use by another opskernel" +
                            (n > 0 ? " (pid " + std::string(pid, strnlen(pid, sizeof pid)) + ")" : std::string()));
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, me.data(), me.size(), 0) < 0) {
    // The pid is only a hint for the message above.
  }
  return Status::ok();
}

Status Kernel::open_store() {
  // An SQLite file serves one process: a second kernel on the same file
  // would take the first one's runs for a crashed kernel's. Kernels sharing
  // a PostgreSQL database coordinate through it, so none takes the lock.
  if (config_.store_backend != "postgresql")
    if (Status l = lock_store_file(); !l) return l;
  // config_.store_path is the file already (the constructor resolved it
  // under data_dir); made absolute, store::open takes it as it is.
  config::Config store_config = config_;
  store_config.store_path = std::filesystem::absolute(config_.store_path).string();
  Status s = store::open(store_config, &store_);
  if (!s) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    return Status(s.code(), (config_.store_backend == "postgresql" ? "store: " : "store.path: ") + s.message());
  }
  store_service_ = std::make_unique<host::StoreService>(*store_);
  identity_ = std::make_unique<identity::Identity>(*store_, permissions(config_));
  if (Status b = config_.create_first_admin ? identity_->bootstrap(config_.bootstrap_token_file, &bootstrap_token_)
                                            : Status::ok();
      !b) {
    identity_.reset();
    store_service_.reset();
    store_.reset();
    ::close(lock_fd_);
    lock_fd_ = -1;
    return b;
  }
  identity_service_ = std::make_unique<host::IdentityService>(*identity_);
  audit_service_ = std::make_unique<host::AuditService>(*store_, identity_service_->principals());
  cache_service_ = std::make_unique<host::CacheService>(
      cache::Options{config_.cache_max_bytes, config_.cache_max_entry_bytes}, identity_service_->principals(),
      [this](const std::string& role, const std::string& permission) { return identity_->allowed(role, permission); });
  migrations_service_ = std::make_unique<host::MigrationsService>(
      *store_, *store_service_, identity_service_->principals(),
      [this](const std::string& role, const std::string& permission) { return identity_->allowed(role, permission); });
  metrics_.add(
      "kernel", "cache",
      [](void* user_data, const opk_metrics_writer* out) {
        out->append(out, static_cast<host::CacheService*>(user_data)->cache().metrics().c_str());
        return static_cast<opk_status>(OPK_OK);
      },
      cache_service_.get());
  events::Options eo;
  eo.retention_ms = config_.events_retention_ms;
  eo.prune_batch = config_.prune_batch;
  eo.documents.console_url = config_.events_console_url;
  eo.documents.path_of = [this](const std::string& node) { return identity_->path(node); };
  events_ = std::make_unique<events::Log>(*store_, std::move(eo));
  events_service_ = std::make_unique<host::EventsService>(*events_, *identity_, identity_service_->principals());
  alerts::Options ao;
  ao.flap_threshold = static_cast<int>(config_.alerts_flap_threshold);
  ao.flap_window_ms = config_.alerts_flap_window_ms;
  ao.expire_after_ms = config_.alerts_expire_after_ms;
  for (const auto& r : config_.alert_escalations)
    ao.rules.push_back({r.name, r.source, r.severity, r.after_ms, r.when});
  alerts_ = std::make_unique<alerts::Engine>(*store_, *identity_, std::move(ao));
  alerts_service_ = std::make_unique<host::AlertsService>(
      *alerts_, *identity_, identity_service_->principals(),
      [this](const std::string& plugin_id, const std::string& source_id) -> std::optional<alerts::SourceInfo> {
        // Any of the plugin's declared sources, started or not.
        for (const auto& p : plugins_) {
          if (p->id != plugin_id || !p->library || p->state != PluginState::active) continue;
          for (const auto& a : p->library->manifest().alert_sources)
            if (a.id == source_id)
              return alerts::SourceInfo{a.id, plugin_id, a.area, a.platform_only(), a.full_sweep(), a.clean_sweeps};
        }
        return std::nullopt;
      });
  jobs_service_ = std::make_unique<host::JobsService>(*store_, *identity_, [this] {
    std::vector<host::TypeInfo> out;
    for (const auto& [id, e] : registry_.job_types()) {
      PluginRecord* p = find_active(e.plugin_id);
      if (p && p->started) out.push_back({e.item, e.plugin_id});
    }
    for (const auto& [id, a] : alert_jobs_)
      if (a.started()) out.push_back({a.job->type(), a.job->info().plugin});
    return out;
  });
  jobs_service_->set_plugins_source([this] {
    std::string out = "[";
    for (const auto& p : plugins_) {
      if (out.size() > 1) out += ",";
      out += "{\"id\":" + Poco::toJSON(p->id, Poco::JSON_WRAP_STRINGS) +
             ",\"state\":" + Poco::toJSON(std::string(to_string(p->state)), Poco::JSON_WRAP_STRINGS) +
             ",\"version\":" + Poco::toJSON(p->version, Poco::JSON_WRAP_STRINGS) +
             ",\"file\":" + Poco::toJSON(p->path.filename().string(), Poco::JSON_WRAP_STRINGS) +
             ",\"reason\":" + Poco::toJSON(p->reason, Poco::JSON_WRAP_STRINGS) +
             ",\"manifest\":" + (p->library ? loader::to_json(p->library->manifest(), 0) : std::string("null")) + "}";
    }
    return out + "]";
  });
  routes_.set_refusal_auditor([this](const opk_http_request& rq, int status, const std::string& detail) {
    store::AuditRow a;
    a.time_ms = jobs::now_ms();
    const bool who = rq.principal && rq.principal->user_id;
    a.actor = who ? rq.principal->user_id : "anonymous";
    a.role = who && rq.principal->role ? rq.principal->role : "";
    a.action = std::string("http ") + rq.method;
    a.target = rq.path ? rq.path : "";
    a.outcome = "refused: " + std::to_string(status) + " " + detail;
    a.source = rq.remote_addr ? rq.remote_addr : "";
    // Anyone can be refused: what is kept is bounded (refusal_audit.h).
    if (store_)
      if (auto rows = refusals_.refused(std::move(a), jobs::now_ms()); !rows.empty()) store_->audit(rows);
  });
  routes_.set_authorizer(
      [this](const std::string& role, const std::string& perm) { return identity_ && identity_->allowed(role, perm); });
  routes_.set_permission_catalog(
      [this](const std::string& perm) { return identity_ && identity_->known_permission(perm); });
  if (identity_service_) routes_.set_principals(&identity_service_->principals());
  if (!bootstrap_token_.empty()) {
    // Printed by `run` only: other commands leave the first administrator
    // to it (config::Config::create_first_admin).
    std::cout << "opskernel: first start: user 'admin' (PlatformAdministrator) was created. Its API token, shown "
                 "only now:\n"
              << bootstrap_token_ << std::endl;
    log::kernel()->warn(
        "first start: created the platform administrator 'admin'; its token is printed once on "
        "standard output");
  }
  return Status::ok();
}

Status Kernel::start_engine() {
  Status s;
  jobs::EngineOptions o;
  o.node = config_.node_name;
  o.pools.clear();
  for (const auto& [name, n] : config_.pools) o.pools.push_back({name, n});
  // Scheduled slots a plugin's run gate holds are recorded as skipped.
  o.skip_slot = [this](const store::RunRow& r, std::string* reason) {
    return run_gates_.skip(r.scheduled_job_id, r.job_type, r.scope, r.slot_ms, reason);
  };
  o.stale_after_ms = int64_t{config_.stale_after_hours} * 3600000;
  o.misfire_catch_up = config_.misfire_catch_up;
  o.safety_tick_ms = int64_t{config_.safety_tick_s} * 1000;
  o.retention_days = static_cast<int>(config_.retention_days);
  o.audit_retention_days = static_cast<int>(config_.audit_retention_days);
  o.prune_batch = config_.prune_batch;
  o.timeout_grace_ms = config_.timeout_grace_ms;
  o.events = config_.events_runs ? events_.get() : nullptr;
  // Several kernels on one PostgreSQL database: runs claimed from the store,
  // leases, fencing, takeover (engine_cluster.cpp).
  o.cluster = config_.store_backend == "postgresql";
  o.lease_ms = config_.lease_ms;
  o.poll_ms = config_.claim_poll_ms;
  o.version = kOpskernelVersion;
  for (PluginRecord* p : order_)
    if (p->state == PluginState::active) o.plugins += (o.plugins.empty() ? "" : ",") + p->id;
  o.job_types = [this] {
    std::vector<std::string> types;
    for (const auto& [id, entry] : registry_.job_types()) types.push_back(id);
    for (const auto& [id, adapted] : alert_jobs_) types.push_back(id);
    return types;
  };
  engine_ = std::make_unique<jobs::Engine>(
      *store_, [this](const std::string& t) { return resolve_type(t); }, o);
  if (!(s = engine_->start())) return s;
  jobs_service_->set_engine(engine_.get());
  // Scheduled jobs from the configuration: created once, then managed through the API.
  const jobs::Actor config_actor{"config", "PlatformAdministrator", "platform", config_.file};
  for (const auto& [id, kv] : config_.jobs) {
    store::ScheduledJob existing;
    if (store_->get_scheduled_job(id, &existing)) continue;
    store::ScheduledJob j;
    j.id = id;
    auto get = [&](const char* k, const std::string& d) { return kv.count(k) ? kv.at(k) : d; };
    j.job_type = get("type", "");
    j.planning = get("planning", "automatic");
    j.cron = get("cron", "");
    j.time_zone = get("time_zone", "UTC");
    j.params_json = get("params", "{}");
    j.description = get("description", "");
    j.owner = get("owner", "");
    j.scope = get("scope", "platform");
    j.region = get("region", "");
    j.report_recipients = get("report_recipients", "");
    const std::string enabled = get("enabled", "true");
    j.enabled = enabled == "true" || enabled == "yes" || enabled == "1" || enabled == "on";
    const std::string jitter = get("jitter_minutes", "0");
    j.jitter_minutes =
        jitter.find_first_not_of("0123456789") == std::string::npos && jitter.size() <= 2 ? std::stoi(jitter) : -1;
    // [job.alerts.<source id>] reschedules an alert source's evaluation:
    // its type is the source.
    if (j.job_type.empty() && id.rfind("alerts.", 0) == 0) j.job_type = id.substr(7);
    Status d = engine_->define_job(j, config_actor);
    if (!d) log::kernel()->error("job.{}: not created: {}", id, d.message());
  }
  define_alert_jobs();
  start_escalation_checks();
  return Status::ok();
}

void Kernel::adapt_alert_sources() {
  if (!alerts_) return;
  for (PluginRecord* p : order_) {
    if (p->state != PluginState::active) continue;
    for (const auto& a : p->library->manifest().alert_sources) {
      if (registry_.job_type(a.id)) {
        log::kernel()->error("alert source {} of plugin {}: not evaluated: a job type has the same id", a.id, p->id);
        continue;
      }
      if (alert_jobs_.count(a.id)) {
        log::kernel()->error("alert source {} of plugin {}: not evaluated: another plugin's source has the id", a.id,
                             p->id);
        continue;
      }
      alerts::SourceInfo info{a.id, p->id, a.area, a.platform_only(), a.full_sweep(), a.clean_sweeps};
      alert_jobs_[a.id] = {std::make_unique<alerts::SourceJob>(*alerts_, std::move(info), a, a.timeout_ms), p};
    }
  }
}

void Kernel::define_alert_jobs() {
  const jobs::Actor kernel_actor{"kernel", "PlatformAdministrator", "platform", "alert sources"};
  for (const auto& [id, adapted] : alert_jobs_) {
    if (!adapted.started()) continue;
    const std::string job_id = "alerts." + id;
    store::ScheduledJob existing;
    if (store_->get_scheduled_job(job_id, &existing)) continue;
    store::ScheduledJob j;
    j.id = job_id;
    j.job_type = id;
    j.planning = "scheduled";
    j.cron = adapted.job->type()->default_schedule;
    j.description = "Evaluates alert source " + id;
    j.owner = adapted.job->info().plugin;
    j.scope = "platform";
    Status d = engine_->define_job(j, kernel_actor);
    if (!d) log::kernel()->error("alert source {}: scheduled job {} not created: {}", id, job_id, d.message());
  }
}

void Kernel::start_escalation_checks() {
  if (!alerts_ || (alerts_->options().rules.empty() && alerts_->options().expire_after_ms <= 0)) return;
  {
    std::lock_guard lock(escalation_mu_);
    escalation_stop_ = false;
  }
  escalation_thread_ = std::thread([this] {
    std::unique_lock lock(escalation_mu_);
    while (!escalation_stop_) {
      lock.unlock();
      int64_t n = 0;
      Status s = alerts_->check_escalations(jobs::now_ms(), &n);
      if (!s)
        log::kernel()->error("alert escalation rules: {}", s.message());
      else if (n > 0)
        log::kernel()->info("alert escalation rules escalated {} alert(s)", n);
      n = 0;
      s = alerts_->expire(jobs::now_ms(), &n);
      if (!s)
        log::kernel()->error("alert expiry: {}", s.message());
      else if (n > 0)
        log::kernel()->info("closed {} alert(s) not raised again for alerts.expire_after", n);
      lock.lock();
      escalation_cv_.wait_for(lock, std::chrono::minutes(1), [this] { return escalation_stop_; });
    }
  });
}

void Kernel::stop_escalation_checks() {
  {
    std::lock_guard lock(escalation_mu_);
    escalation_stop_ = true;
  }
  escalation_cv_.notify_all();
  if (escalation_thread_.joinable()) escalation_thread_.join();
}

}  // namespace opk
