// opskernel -- the command line: run the kernel, inspect plugins, invoke a
// job type, check the configuration.
#include <utility>  // before Asio: Boost 1.74 Asio with GCC 12 in C++20 needs std::exchange declared

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/program_options.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "app/identity_cli.h"
#include "app/kernel.h"
#include "app/template_cli.h"
#include "config/config.h"
#include "host/host.h"
#include "jobs/cron.h"
#include "loader/describe.h"
#include "loader/library.h"
#include "log/logging.h"
#include "store/open.h"
#include "version.h"

namespace po = boost::program_options;

namespace {

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2;

const char* kUsage = R"(usage: opskernel [--version] [--help] <command> [options]

commands:
  run                   start the kernel; serve until SIGINT or SIGTERM
  plugins list          load the plugins folder; list active and refused plugins
  plugins check PATH    print a plugin's manifest, or exactly why it would be refused
  jobs list             list scheduled jobs with their last and next run
  jobs run ID           run scheduled job ID now (--reason required) and print its log
  jobs invoke TYPE      run one job type once in a kernel and print its log
  runs show N           print run N with its log and steps
  config check          validate the configuration and print the effective values
  cron next EXPR        print the next fire times of a cron expression (UTC, one per line)
  users add ID          add a user (--role, --scope, --name) and print its API token once
  users token ID        print a new API token for a user, once
  users list            list users with their role, scope and live tokens
  users revoke ID       disable a user and revoke all of their tokens
  tenants add NODE      add a hierarchy node, e.g. tenant:acme (--parent, --name)
  tenants list          list the hierarchy nodes
  tenants import FILE   add the nodes of a JSON file ({"nodes": [{"id", "parent", "name"}]})
  template render FILE  render a Liquid template (--data JSON_FILE) to stdout; errors as FILE:line:column

options:)";

po::options_description common_options() {
  po::options_description d;
  auto add = d.add_options();
  add("help,h", "show this help");
  add("version", "print the kernel and ABI versions");
  add("config,c", po::value<std::string>(), "configuration file (default: $OPSKERNEL_CONFIG, else none)");
  add("plugins-dir", po::value<std::string>(), "override kernel.plugins_dir");
  add("data-dir", po::value<std::string>(), "override kernel.data_dir");
  add("listen", po::value<std::string>(), "override kernel.listen (HOST:PORT)");
  add("log-level", po::value<std::string>(), "override log.level");
  add("params", po::value<std::string>(), "jobs invoke/run: parameters as a JSON object");
  add("dry-run", "jobs invoke/run: report what would be done, change nothing");
  add("tenant", po::value<std::string>(), "jobs invoke/run: target tenant");
  add("reason", po::value<std::string>(), "jobs invoke/run: why it is run (required for jobs run)");
  add("timeout", po::value<int64_t>(), "jobs invoke/run: cancel after this many seconds");
  add("tz", po::value<std::string>()->default_value("UTC"), "cron next: IANA time zone the expression is read in");
  add("after", po::value<std::string>(), "cron next: start after this ISO-8601 instant (default: now)");
  add("count,n", po::value<int>()->default_value(5), "cron next: how many fire times (1..1000)");
  add("role", po::value<std::string>(),
      "users add: PlatformAdministrator | DistributorAdministrator | "
      "PartnerAdministrator | TenantAdministrator | TenantUser");
  add("scope", po::value<std::string>(), "users add: the node the role applies to (platform, tenant:acme ...)");
  add("name", po::value<std::string>(), "users add, tenants add: display name");
  add("parent", po::value<std::string>(), "tenants add: the parent node (platform, distributor:d1 ...)");
  add("data", po::value<std::string>(), "template render: a JSON file holding the template's data (an object)");
  add("escape-html", "template render: HTML-escape every {{ }} output, as an HTML e-mail channel does");
  add("strict-variables", "template render: an undefined variable is an error");
  return d;
}

// Builds the configuration from the file, the environment and the flags.
opk::Status load_config(const po::variables_map& vm, bool quiet, opk::config::Config* out) {
  opk::config::Sources src;
  src.environment = opk::config::process_environment();
  if (vm.count("config"))
    src.file = vm["config"].as<std::string>();
  else if (auto it = src.environment.find("OPSKERNEL_CONFIG"); it != src.environment.end())
    src.file = it->second;
  if (vm.count("plugins-dir")) src.overrides["kernel.plugins_dir"] = vm["plugins-dir"].as<std::string>();
  if (vm.count("data-dir")) src.overrides["kernel.data_dir"] = vm["data-dir"].as<std::string>();
  if (vm.count("listen")) src.overrides["kernel.listen"] = vm["listen"].as<std::string>();
  if (vm.count("log-level")) src.overrides["log.level"] = vm["log-level"].as<std::string>();
  opk::Status s = opk::config::load(src, out);
  if (!s) return s;
  // Inspection commands keep the console quiet unless asked (the flag or
  // OPSKERNEL_LOG_LEVEL).
  if (quiet && !vm.count("log-level") && !src.environment.count("OPSKERNEL_LOG_LEVEL")) out->log.level = "warn";
  if (quiet) out->log.file.clear();
  return s;
}

int cmd_run(const opk::config::Config& cfg) {
  opk::log::setup(cfg.log);
  opk::log::kernel()->info("opskernel {} (plugin ABI {}.{}) node {} starting; plugins from {}", opk::kOpskernelVersion,
                           OPK_ABI_MAJOR, OPK_ABI_MINOR, cfg.node_name, cfg.plugins_dir);
  opk::Kernel kernel(cfg);
  return kernel.run_until_signal();
}

int cmd_plugins_list(const opk::config::Config& cfg) {
  opk::log::setup(cfg.log);
  opk::Kernel kernel(cfg);
  opk::Status s = kernel.start(/*start_plugins=*/false);
  if (!s) {
    std::cerr << "opskernel: " << s.message() << "\n";
    return kExitUsage;
  }
  int refused = 0;
  for (const auto& p : kernel.plugins()) {
    std::cout << opk::to_string(p->state) << "\t" << (p->id.empty() ? "-" : p->id) << "\t"
              << (p->version.empty() ? "-" : p->version) << "\t" << p->path.string();
    if (!p->reason.empty()) std::cout << "\t" << p->reason;
    std::cout << "\n";
    refused += p->state == opk::PluginState::refused;
  }
  return refused ? kExitFailed : kExitOk;
}

int cmd_plugins_check(const opk::config::Config& cfg, const std::string& path) {
  opk::log::setup(cfg.log);
  std::unique_ptr<opk::loader::Library> lib;
  opk::Status s = opk::loader::Library::open(path, &lib);
  if (!s) {
    std::cerr << "refused: " << path << ": " << s.message() << "\n";
    return kExitFailed;
  }
  const auto& m = lib->manifest();
  // Init and deinit once, with only the kernel's own services reachable.
  opk::host::RouteTable routes;
  auto settings = cfg.plugins.count(m.id) ? cfg.plugins.at(m.id) : opk::config::PluginSettings{};
  opk::host::PluginHost host(m.id, settings, cfg.public_settings(),
                             [&](const std::string&, const std::string& id) -> const void* {
                               return id == OPK_EXT_HTTP_ROUTES ? routes.extension() : nullptr;
                             });
  opk_plugin* inst = nullptr;
  opk::Status init = opk::host::call_plugin("init", [&] { return lib->entry().init(host.table(), &inst); });
  if (!init) {
    std::cerr << "refused: " << path << ": init: " << init.message() << "\n";
    return kExitFailed;
  }
  lib->entry().deinit(inst);
  std::cout << opk::loader::to_json(m) << "\n";
  std::cerr << "ok: " << m.id << " " << m.version << " would be loaded";
  if (!m.requirements.empty()) std::cerr << " (if the extensions it requires are provided)";
  std::cerr << "\n";
  if (!m.alert_sources.empty())
    std::cerr << "note: it declares " << m.alert_sources.size()
              << " alert source(s); the kernel evaluates each as the scheduled job alerts.<source id>\n";
  return kExitOk;
}

std::string iso_ms(int64_t ms) {
  return ms ? opk::cron::format_instant(opk::cron::Instant(std::chrono::seconds(ms / 1000))) : "-";
}

// Prints a run with its log and steps.
void print_log_line(const opk::store::LogRow& l) {
  static const char* levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRIT"};
  std::cout << levels[std::clamp(l.level, 0, 5)] << "\t" << (l.step.empty() ? "-" : l.step) << "\t" << l.message
            << "\n";
}

// A run as `runs show` and `jobs invoke` print it; its log unless already
// printed line by line.
void print_run(const opk::jobs::RunView& v, bool with_log = true) {
  if (with_log)
    for (const auto& l : v.logs) print_log_line(l);
  for (const auto& st : v.steps)
    std::cout << "step " << st.step_id << " " << st.outcome << " in " << (st.end_ms - st.start_ms) << " ms"
              << (st.summary.empty() ? "" : ": " + st.summary) << "\n";
  const auto& r = v.row;
  std::cout << "run " << r.id << " " << r.job_type << " " << r.phase;
  if (r.phase == opk::store::kCompleted)
    std::cout << " " << r.outcome << (r.terminated ? " terminated" : "") << " exit=" << r.exit_code << " in "
              << (r.finished_ms - r.started_ms) << " ms";
  std::cout << " trigger=" << r.trigger << (r.user_id.empty() ? "" : " by " + r.user_id)
            << (r.summary.empty() ? "" : ": " + r.summary) << "\n";
  if (r.phase != opk::store::kCompleted || r.progress > 0)
    std::cout << "progress " << r.progress << "%" << (r.progress_message.empty() ? "" : ": " + r.progress_message)
              << "\n";
  if (!r.output_json.empty()) std::cout << "output " << r.output_json << "\n";
}

// Set by SIGINT/SIGTERM while `jobs invoke` waits for its run.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) {
  g_interrupted = 1;
}

// Starts a kernel, runs one manual run, prints it, stops.
int cmd_jobs_run(opk::config::Config cfg, const po::variables_map& vm, const std::string& type,
                 const std::string& scheduled_job) {
  opk::log::setup(cfg.log);
  cfg.create_first_admin = false;  // `run` creates it and shows its token
  opk::Kernel kernel(cfg);
  opk::Status s = kernel.start();
  if (!s) {
    std::cerr << "opskernel: " << s.message() << "\n";
    return kExitUsage;
  }
  opk::jobs::RunNow req;
  req.job_type = type;
  req.scheduled_job_id = scheduled_job;
  req.actor = {"cli:" + std::string(getenv("USER") ? getenv("USER") : "root"), "PlatformAdministrator", "platform",
               "command line"};
  if (vm.count("params")) req.params_json = vm["params"].as<std::string>();
  if (vm.count("tenant")) req.target_tenant = vm["tenant"].as<std::string>();
  req.reason = vm.count("reason") ? vm["reason"].as<std::string>()
                                  : (type.empty() ? std::string() : "opskernel jobs invoke from the command line");
  req.dry_run = vm.count("dry-run") > 0;
  int64_t id = 0;
  s = kernel.engine()->run_now(req, &id);
  if (!s) {
    std::cerr << "refused: " << s.message() << "\n";
    return kExitFailed;
  }
  const int64_t limit_ms = vm.count("timeout") ? vm["timeout"].as<int64_t>() * 1000 : -1;
  const int64_t t0 = opk::jobs::now_ms();
  bool cancelled = false;
  // Ctrl-C cancels the run cooperatively (its cancel hook, its stored
  // outcome) instead of leaving it RUNNING; a second one stops waiting.
  g_interrupted = 0;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  int64_t printed = 0;  // the log is printed as it is written
  auto print_new_lines = [&] {
    for (const auto& l : kernel.engine()->log_tail(id, printed, 1000)) {
      print_log_line(l);
      printed = l.seq;
    }
    std::cout << std::flush;
  };
  for (bool done = false; !done;) {
    done = kernel.engine()->wait(id, 100);
    print_new_lines();
    if (done) break;
    std::string why;
    if (!cancelled && limit_ms >= 0 && opk::jobs::now_ms() - t0 > limit_ms) why = "--timeout reached";
    if (g_interrupted && !cancelled) why = "interrupted on the command line";
    if (!why.empty()) {
      opk::Status c = kernel.engine()->cancel(id, req.actor, why);
      std::cerr << why << ": " << (c ? "cancel requested; Ctrl-C again to stop waiting" : c.message()) << "\n";
      cancelled = true;
      g_interrupted = 0;
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
    }
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  opk::jobs::RunView v;
  kernel.engine()->get(id, &v);
  for (const auto& l : v.logs)  // lines kept at completion, not yet printed
    if (l.seq > printed) print_log_line(l);
  print_run(v, /*with_log=*/false);
  kernel.stop();
  return v.row.outcome == opk::store::kError ? kExitFailed : kExitOk;
}

// Opens the store alone (no plugins) for read-only commands.
opk::Status open_store(const opk::config::Config& cfg, std::unique_ptr<opk::store::Store>* out) {
  if (!std::filesystem::exists(cfg.store_file()))
    return opk::Status::not_found("no store at " + cfg.store_file() + " (kernel.data_dir / store.path)");
  return opk::store::open(cfg, out, {.check = false});
}

int cmd_jobs_list(const opk::config::Config& cfg) {
  std::unique_ptr<opk::store::Store> st;
  opk::Status s = open_store(cfg, &st);
  if (!s) {
    std::cerr << "opskernel: " << s.message() << "\n";
    return kExitFailed;
  }
  std::cout << "ID\tTYPE\tPLANNING\tSCHEDULE\tENABLED\tLAST RUN\tLAST STATUS\tNEXT RUN\tSCOPE\tDESCRIPTION\n";
  for (const auto& j : st->list_scheduled_jobs().value()) {
    opk::store::RunFilter f;
    f.scheduled_job_id = j.id;
    f.limit = 1;
    auto last = st->list_runs(f).value();
    std::string status = last.empty() ? "-" : last[0].phase == opk::store::kCompleted ? last[0].outcome : last[0].phase;
    std::cout << j.id << "\t" << j.job_type << "\t" << j.planning << "\t"
              << (j.planning == "scheduled"   ? j.cron + " " + j.time_zone
                  : j.planning == "automatic" ? "(type default)"
                                              : "-")
              << "\t" << (j.enabled ? "yes" : "no") << "\t" << (last.empty() ? "-" : iso_ms(last[0].created_ms)) << "\t"
              << status << "\t" << iso_ms(j.next_run_ms) << "\t" << j.scope << "\t" << j.description << "\n";
  }
  return kExitOk;
}

int cmd_runs_show(const opk::config::Config& cfg, const std::string& id_text) {
  if (id_text.empty() || id_text.find_first_not_of("0123456789") != std::string::npos || id_text.size() > 18) {
    std::cerr << "opskernel: '" << id_text << "' is not a run number\n";
    return kExitUsage;
  }
  std::unique_ptr<opk::store::Store> st;
  opk::Status s = open_store(cfg, &st);
  if (!s) {
    std::cerr << "opskernel: " << s.message() << "\n";
    return kExitFailed;
  }
  opk::jobs::RunView v;
  const int64_t id = std::stoll(id_text);
  if (!(s = st->get_run(id, &v.row))) {
    std::cerr << "opskernel: " << s.message() << "\n";
    return kExitFailed;
  }
  v.logs = st->logs(id, 0, 1000000).value();
  v.steps = st->steps(id).value();
  print_run(v);
  return kExitOk;
}

int cmd_config_check(const opk::config::Config& cfg) {
  std::cout << "# effective configuration" << (cfg.file.empty() ? "" : " from " + cfg.file) << "\n";
  std::cout << "kernel.plugins_dir = " << cfg.plugins_dir << "\nkernel.data_dir = " << cfg.data_dir
            << "\nkernel.listen = " << cfg.listen << "\nkernel.node_name = " << cfg.node_name
            << "\nkernel.shutdown_grace_ms = " << cfg.shutdown_grace_ms << "\nlog.level = " << cfg.log.level
            << "\nlog.console = " << (cfg.log.console ? "true" : "false") << "\nlog.file = " << cfg.log.file
            << "\nlog.max_size_mb = " << cfg.log.max_size_mb << "\nlog.max_files = " << cfg.log.max_files
            << "\nplugins.disabled = ";
  for (size_t i = 0; i < cfg.disabled_plugins.size(); ++i) std::cout << (i ? "," : "") << cfg.disabled_plugins[i];
  std::cout << "\n";
  std::cout << "store.path = " << cfg.store_file()
            << "\nstore.synchronous = " << (cfg.store_sync_full ? "full" : "normal")
            << "\nstore.check_at_start = " << cfg.store_check << "\njobs.pools = ";
  for (size_t i = 0; i < cfg.pools.size(); ++i)
    std::cout << (i ? "," : "") << cfg.pools[i].first << ":" << cfg.pools[i].second;
  std::cout << "\njobs.stale_after_hours = " << cfg.stale_after_hours
            << "\njobs.misfire = " << (cfg.misfire_catch_up ? "once" : "skip")
            << "\njobs.safety_tick_s = " << cfg.safety_tick_s << "\njobs.retention_days = " << cfg.retention_days
            << "\njobs.audit_retention_days = " << cfg.audit_retention_days
            << "\njobs.prune_batch = " << cfg.prune_batch << "\njobs.timeout_grace_ms = " << cfg.timeout_grace_ms
            << "\n";
  for (const auto& [id, kv] : cfg.jobs)
    for (const auto& [k, v] : kv) std::cout << "job." << id << "." << k << " = " << v << "\n";
  for (const auto& [id, kv] : cfg.plugins)
    for (const auto& [k, v] : kv) std::cout << "plugin." << id << "." << k << " = " << v << "\n";
  return kExitOk;
}

int cmd_cron_next(const po::variables_map& vm, const std::string& expr) {
  opk::cron::Instant after = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (vm.count("after")) {
    opk::Status s = opk::cron::parse_instant(vm["after"].as<std::string>(), &after);
    if (!s) {
      std::cerr << "opskernel: --after: " << s.message() << "\n";
      return kExitUsage;
    }
  }
  const int n = vm["count"].as<int>();
  if (n < 1 || n > 1000) {
    std::cerr << "opskernel: -n: " << n << " is out of range 1..1000\n";
    return kExitUsage;
  }
  std::vector<opk::cron::Instant> times;
  opk::Status s = opk::cron::next_fire_times(expr, vm["tz"].as<std::string>(), after, static_cast<size_t>(n), &times);
  if (!s) {
    std::cerr << "opskernel: " << s.message() << "\n";
    return kExitUsage;
  }
  for (const auto& t : times) std::cout << opk::cron::format_instant(t) << "\n";
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description opts = common_options();
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::vector<std::string>>(), "");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("command", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "opskernel: " << e.what() << "\n" << kUsage << opts << "\n";
    return kExitUsage;
  }
  if (vm.count("version")) {
    std::cout << "opskernel " << opk::kOpskernelVersion << " (plugin ABI " << OPK_ABI_MAJOR << "." << OPK_ABI_MINOR
              << ")\n";
    return kExitOk;
  }
  std::vector<std::string> cmd =
      vm.count("command") ? vm["command"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (vm.count("help") || cmd.empty()) {
    std::cout << kUsage << opts << "\n";
    return cmd.empty() && !vm.count("help") ? kExitUsage : kExitOk;
  }
  auto is = [&](std::initializer_list<const char*> words, size_t extra) {
    if (cmd.size() != words.size() + extra) return false;
    size_t i = 0;
    for (const char* w : words)
      if (cmd[i++] != w) return false;
    return true;
  };
  if (is({"cron", "next"}, 1)) return cmd_cron_next(vm, cmd[2]);
  if (int rc = opk::cli::template_command(vm, cmd); rc >= 0) return rc;
  // `config check` shows the configuration `run` would use, log keys included.
  const bool quiet = !(is({"run"}, 0) || is({"config", "check"}, 0));
  opk::config::Config cfg;
  opk::Status s = load_config(vm, quiet, &cfg);
  if (!s) {
    std::cerr << "opskernel: configuration error: " << s.message() << "\n";
    return kExitUsage;
  }
  try {
    if (is({"run"}, 0)) return cmd_run(cfg);
    if (is({"plugins", "list"}, 0)) return cmd_plugins_list(cfg);
    if (is({"plugins", "check"}, 1)) return cmd_plugins_check(cfg, cmd[2]);
    if (is({"jobs", "invoke"}, 1)) return cmd_jobs_run(cfg, vm, cmd[2], "");
    if (is({"jobs", "run"}, 1)) return cmd_jobs_run(cfg, vm, "", cmd[2]);
    if (is({"jobs", "list"}, 0)) return cmd_jobs_list(cfg);
    if (is({"runs", "show"}, 1)) return cmd_runs_show(cfg, cmd[2]);
    if (is({"config", "check"}, 0)) return cmd_config_check(cfg);
    if (int rc = opk::cli::identity_command(cfg, vm, cmd); rc >= 0) return rc;
  } catch (const std::exception& e) {
    std::cerr << "opskernel: " << e.what() << "\n";
    return kExitFailed;
  }
  std::string joined;
  for (auto& c : cmd) joined += (joined.empty() ? "" : " ") + c;
  std::cerr << "opskernel: unknown command '" << joined << "'\n" << kUsage << opts << "\n";
  return kExitUsage;
}
