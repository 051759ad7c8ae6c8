#include "app/kernel.h"

#include <Poco/JSON/Parser.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <condition_variable>
#include <set>

#include "log/logging.h"

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

Kernel::Kernel(config::Config config) : config_(std::move(config)) {}

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
  scan();
  init_in_dependency_order();
  if (start_plugins) {
    start_active();
    std::lock_guard lock(runs_mu_);
    accepting_runs_ = true;
  }
  start_ms_ = steady_ms() - t0;
  size_t active = 0, refused = 0;
  for (auto& p : plugins_) (p->state == PluginState::active ? active : refused) += (p->state != PluginState::disabled);
  log::kernel()->info("kernel ready in {} ms: {} plugin(s) active, {} refused", start_ms_, active, refused);
  return Status::ok();
}

void Kernel::scan() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(config_.plugins_dir)) {
    if (e.path().extension() == ".so" && (e.is_regular_file() || e.is_symlink())) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> seen;  // plugin id -> path
  const std::set<std::string> disabled(config_.disabled_plugins.begin(), config_.disabled_plugins.end());
  for (const auto& f : files) {
    auto rec = std::make_unique<PluginRecord>();
    rec->path = f;
    Status s = loader::Library::open(f, &rec->library);
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

const void* Kernel::lookup_extension(const std::string& requester, const std::string& id) {
  if (id == OPK_EXT_HTTP_ROUTES) return routes_.extension();
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
    if (r.extension_id == OPK_EXT_HTTP_ROUTES || !registry_.provider_of(r.extension_id).empty()) return true;
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
      if (!s) {
        refuse(p, "register", s.message());
        p.library.reset();
        break;
      }
      p.host = std::make_unique<host::PluginHost>(
          m.id, config_.plugins.count(m.id) ? config_.plugins.at(m.id) : config::PluginSettings{},
          config_.public_settings(),
          [this](const std::string& req, const std::string& id) { return lookup_extension(req, id); });
      p.host->set_routes(&routes_);
      for (const auto& f : m.admin_features) p.host->add_feature(f.id);
      host::clear_error();
      opk_plugin* inst = nullptr;
      opk_status st = OPK_ERR_INTERNAL;
      try {
        st = p.library->entry().init(p.host->table(), &inst);
      } catch (...) {
        host::set_error_text("init threw an exception across the ABI");
        st = OPK_ERR_FAILED;
      }
      std::string err = host::take_error();
      if (st != OPK_OK) {
        refuse(p, "init", "init failed with status " + std::to_string(st) + (err.empty() ? "" : ": " + err));
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
    host::clear_error();
    opk_status st = OPK_OK;
    try {
      if (p->library->entry().start) st = p->library->entry().start(p->instance);
    } catch (...) {  // a last guard only: exceptions must not cross the ABI
      st = OPK_ERR_FAILED;
      host::set_error_text("start threw an exception across the ABI");
    }
    std::string err = host::take_error();
    if (st == OPK_OK) {
      p->started = true;
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
      routes_.remove_plugin(g->id);
      g->library->entry().deinit(g->instance);
      g->instance = nullptr;
      refuse(*g, "start",
             g == p ? "start failed with status " + std::to_string(st) + (err.empty() ? "" : ": " + err)
                    : "an extension it requires is gone (its provider '" + p->id + "' failed to start)");
    }
    for (PluginRecord* g : gone) {
      registry_.remove(g->id);
      g->host.reset();
      g->library.reset();
    }
  }
}

void Kernel::stop() {
  if (!running_) return;
  // 1. Refuse new runs, tell every run to stop, wait up to the grace period.
  {
    std::unique_lock lock(runs_mu_);
    accepting_runs_ = false;
    for (auto& [id, r] : runs_)
      if (r->run->request_cancel() && r->in_plugin && r->type->c.cancel)
        r->type->c.cancel(r->plugin->instance, r->type->self, r->run->context());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.shutdown_grace_ms);
    auto all_done = [&] { return std::all_of(runs_.begin(), runs_.end(), [](auto& kv) { return kv.second->done; }); };
    if (!runs_cv_.wait_until(lock, deadline, all_done)) {
      log::kernel()->warn("runs still in flight after {} ms; waiting for them to end before unloading",
                          config_.shutdown_grace_ms);
      runs_cv_.wait(lock, all_done);
    }
    for (auto& [id, r] : runs_)
      if (r->thread.joinable()) r->thread.join();
    runs_.clear();
  }
  // 2. Stop in reverse order, then deinit in reverse order, then unload.
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    PluginRecord* p = *it;
    if (p->state != PluginState::active) continue;
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
  running_ = false;
  log::kernel()->info("kernel stopped");
}

int Kernel::run_until_signal() {
  Status s = start();
  if (!s) {
    log::kernel()->critical("cannot start: {}", s.message());
    return 2;
  }
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) log::kernel()->info("signal {} received, shutting down", sig);
    io.stop();
  });
  io.run();
  stop();
  return 0;
}

void Kernel::reap_finished_locked() {
  // Finished runs leave the table (callers keep their Run through shared_ptr).
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (!it->second->done) {
      ++it;
      continue;
    }
    if (it->second->thread.joinable()) it->second->thread.join();
    it = runs_.erase(it);
  }
}

Status Kernel::start_run(const std::string& job_type, jobs::RunRequest req, std::shared_ptr<jobs::Run>* out) {
  const auto* entry = registry_.job_type(job_type);
  if (!entry) return Status::not_found("no job type '" + job_type + "' is registered");
  const loader::JobType& type = *entry->item;
  const bool by_hand = req.trigger == OPK_TRIGGER_MANUAL || req.trigger == OPK_TRIGGER_RETRY;
  if (by_hand && !type.manual_run())
    return Status::conflict("job type '" + job_type + "' does not allow manual runs (manual_run=false)");
  if (req.dry_run && !type.dry_run()) return Status::invalid("job type '" + job_type + "' does not support dry-run");
  if (req.params_json.empty()) req.params_json = "{}";
  try {
    Poco::JSON::Parser parser;
    if (parser.parse(req.params_json).type() != typeid(Poco::JSON::Object::Ptr))
      return Status::invalid("parameters: must be a JSON object");
  } catch (const Poco::Exception& e) {
    return Status::invalid("parameters: not valid JSON (" + e.displayText() + ")");
  }
  PluginRecord* plugin = find_active(entry->plugin_id);
  if (!plugin || !plugin->started) return Status::unavailable("plugin '" + entry->plugin_id + "' is not started");

  std::lock_guard lock(runs_mu_);
  if (!accepting_runs_) return Status::unavailable("kernel is not running");
  reap_finished_locked();
  auto ar = std::make_unique<ActiveRun>();
  ar->run = std::make_shared<jobs::Run>(next_run_id_++, job_type, std::move(req));
  ar->type = &type;
  ar->plugin = plugin;
  ActiveRun* raw = ar.get();
  *out = ar->run;
  runs_[raw->run->id()] = std::move(ar);
  raw->thread = std::thread([this, raw] {
    raw->run->mark_running(jobs::now_ms());
    {
      std::lock_guard l(runs_mu_);
      raw->in_plugin = true;  // from here until run returns, cancel may be called
    }
    opk_status st = OPK_ERR_FAILED;
    try {
      st = raw->type->c.run(raw->plugin->instance, raw->type->self, raw->run->context());
    } catch (...) {  // a last guard only: exceptions must not cross the ABI
      raw->run->context()->log(raw->run->context(), OPK_LOG_ERROR, "run threw an exception across the ABI");
    }
    {
      std::lock_guard l(runs_mu_);
      raw->in_plugin = false;
    }
    raw->run->mark_completed(jobs::now_ms(), st);
    std::lock_guard l(runs_mu_);
    raw->done = true;
    runs_cv_.notify_all();
  });
  return Status::ok();
}

Status Kernel::cancel_run(int64_t run_id) {
  std::lock_guard lock(runs_mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end() || it->second->done)
    return Status::not_found("run " + std::to_string(run_id) + " is not in flight");
  auto& r = *it->second;
  if (!r.type->cancellable())
    return Status::conflict("job type '" + r.type->id + "' has no cancel hook; its runs cannot be cancelled safely");
  // The hook runs under runs_mu_ while the plugin is inside run(), so it is
  // never called before run starts or after it returned.
  if (r.run->request_cancel() && r.in_plugin) r.type->c.cancel(r.plugin->instance, r.type->self, r.run->context());
  return Status::ok();
}

bool Kernel::wait_run(int64_t run_id, int64_t timeout_ms) {
  std::unique_lock lock(runs_mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return true;  // finished and reaped
  // Look the run up again on each wake: another caller may reap it meanwhile.
  return runs_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    auto i = runs_.find(run_id);
    return i == runs_.end() || i->second->done;
  });
}

}  // namespace opk
