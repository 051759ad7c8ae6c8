// platform-records: the plugin, its manifest and its two job types,
// records-import and records-export (files on the kernel's machine).
// Store transactions and plugin permissions need ABI 1.2.
#define OPK_REQUIRED_HOST_MINOR 2
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "plugin.h"

namespace fs = std::filesystem;

namespace opk::records {
namespace {

// Largest file records-import reads.
constexpr uintmax_t kMaxFileBytes = 512ull * 1024 * 1024;

std::string kinds_enum() {
  std::string s;
  for (const auto& k : kinds()) s += (s.empty() ? "\"" : ", \"") + k.name + "\"";
  return s;
}

std::string import_schema() {
  return R"J({"type": "object", "additionalProperties": false, "required": ["kind", "path"], "properties": {
    "kind": {"type": "string", "enum": [)J" +
         kinds_enum() + R"J(], "description": "The kind of records in the file"},
    "path": {"type": "string", "minLength": 1, "description": "The file to import, on the kernel's machine"},
    "format": {"type": "string", "enum": ["json", "csv"], "description": "Default: from the file's extension"}}})J";
}

std::string export_schema() {
  return R"J({"type": "object", "additionalProperties": false, "required": ["kind", "path"], "properties": {
    "kind": {"type": "string", "enum": [)J" +
         kinds_enum() + R"J(], "description": "The kind of records to write"},
    "path": {"type": "string", "minLength": 1, "description": "The file to write, on the kernel's machine"},
    "format": {"type": "string", "enum": ["json", "csv"], "description": "Default: from the file's extension"},
    "overwrite": {"type": "boolean", "description": "Replace an existing file; default false"}}})J";
}

// The kind, path and format of a run's parameters.
Status file_params(const RunContext& run, const Kind** kind, fs::path* path, std::string* format) {
  const std::string name = run.param<std::string>("kind", "");
  *kind = find_kind(name);
  if (*kind == nullptr) return Status::invalid("kind: no kind '" + name + "'; the kinds are " + kind_names());
  *path = run.param<std::string>("path", "");
  *format = run.param<std::string>("format", "");
  if (format->empty()) *format = format_of_path(path->string());
  if (*format != "json" && *format != "csv")
    return Status::invalid("format: give json or csv (the path '" + path->string() +
                           "' ends neither in .json nor in .csv)");
  return Status::ok();
}

std::string who(const RunContext& run) {
  std::string s = "run " + std::to_string(run.run_id());
  if (!run.triggered_by().empty()) s += " by " + std::string(run.triggered_by());
  if (!run.reason().empty()) s += ": " + std::string(run.reason());
  return s;
}

class ImportJob : public Job {
 public:
  explicit ImportJob(Plugin& p) : plugin_(static_cast<RecordsPlugin&>(p)) {}

  Status run(RunContext& run) override {
    const Kind* kind = nullptr;
    fs::path path;
    std::string format;
    if (Status s = file_params(run, &kind, &path, &format); !s) return s;
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) return Status::invalid("path: cannot read '" + path.string() + "': " + ec.message());
    if (size > kMaxFileBytes)
      return Status::invalid("path: '" + path.string() + "' has " + std::to_string(size) + " bytes, over the " +
                             std::to_string(kMaxFileBytes) + " imported at once");
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return Status::invalid("path: cannot read '" + path.string() + "'");

    ImportResult result;
    auto check = run.step("check");
    Status s = plugin_.service().import(*kind, Caller::system(), format, text.str(), !run.dry_run(), &result);
    if (!s) return s;
    if (result.refused()) {
      for (const auto& p : result.problems)
        run.error("line " + std::to_string(p.line) + (p.field.empty() ? "" : ", " + p.field) + ": " + p.problem);
      if (result.problem_count > static_cast<int64_t>(result.problems.size()))
        run.error("... and " + std::to_string(result.problem_count - static_cast<int64_t>(result.problems.size())) +
                  " more problems");
      audit(run, *kind, path, "refused", result.problems_json());
      check.end(Outcome::error, std::to_string(result.problem_count) + " problems");
      return Status::invalid(path.string() + ": " + std::to_string(result.problem_count) +
                             " problems; nothing was imported");
    }
    check.end(Outcome::normal);
    const Json counts = result.counts();
    run.set_output(counts);
    const std::string summary = std::string(run.dry_run() ? "dry run, would import " : "imported ") + kind->name +
                                " from " + path.string() + ": " + std::to_string(result.inserted) + " inserted, " +
                                std::to_string(result.updated) + " updated, " + std::to_string(result.unchanged) +
                                " unchanged";
    run.info(summary);
    if (!run.dry_run()) audit(run, *kind, path, "success", counts);
    run.set_result(Outcome::normal, summary);
    return Status::ok();
  }

 private:
  void audit(const RunContext& run, const Kind& kind, const fs::path& path, const std::string& outcome,
             const Json& after) {
    Audit audit(plugin_.host());
    Status s = audit.record(plugin_.host().system_principal(), {.action = "records.import",
                                                                .target = "records:" + kind.name,
                                                                .reason = who(run) + " (" + path.string() + ")",
                                                                .before = nullptr,
                                                                .after = after,
                                                                .outcome = outcome,
                                                                .source = ""});
    if (!s) run.warn("audit row not written: " + s.message());
  }
  RecordsPlugin& plugin_;
};

class ExportJob : public Job {
 public:
  explicit ExportJob(Plugin& p) : plugin_(static_cast<RecordsPlugin&>(p)) {}

  Status run(RunContext& run) override {
    const Kind* kind = nullptr;
    fs::path path;
    std::string format;
    if (Status s = file_params(run, &kind, &path, &format); !s) return s;
    std::error_code ec;
    if (fs::exists(path, ec) && !run.param<bool>("overwrite", false))
      return Status::invalid("path: '" + path.string() + "' exists; give \"overwrite\": true to replace it");
    Json rows;
    if (Status s = plugin_.service().all(*kind, Caller::system(), {}, &rows); !s) return s;
    const std::string text = write_rows(*kind, format, rows);
    const std::string summary = std::string(run.dry_run() ? "dry run, would write " : "wrote ") +
                                std::to_string(rows.size()) + " " + kind->name + " to " + path.string();
    if (!run.dry_run()) {
      // Written beside it and renamed: a reader never sees half a file.
      const fs::path tmp = path.string() + ".partial";
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        out.close();
        if (!out) {
          fs::remove(tmp, ec);
          return Status::error("path: cannot write '" + tmp.string() + "'");
        }
      }
      fs::rename(tmp, path, ec);
      if (ec) {
        fs::remove(tmp, ec);
        return Status::error("path: cannot write '" + path.string() + "': " + ec.message());
      }
    }
    run.set_output({{"rows", rows.size()}, {"path", path.string()}, {"format", format}});
    run.info(summary);
    run.set_result(Outcome::normal, summary);
    return Status::ok();
  }

 private:
  RecordsPlugin& plugin_;
};

}  // namespace

RecordsPlugin::RecordsPlugin(Host host) : Plugin(host) {}

RecordsPlugin::~RecordsPlugin() {
  serve_extension(nullptr);
}

Status RecordsPlugin::init() {
  Settings in = host().settings();
  probe_retention_ms_ = in.duration_ms("probe_retention", probe_retention_ms_, 3'600'000, 3650LL * 86'400'000);
  if (Status s = in.status(); !s) return s;
  service_ = std::make_unique<Service>(host());
  // Without a store (plugins list, plugins check) there is nothing to
  // migrate; every call then answers UNAVAILABLE.
  if (Store(host()).available())
    if (Status s = service_->migrate(); !s) return s;
  serve_extension(this);
  return Status::ok();
}

Status RecordsPlugin::start() {
  return add_routes();
}

const void* RecordsPlugin::extension(std::string_view id) {
  return id == OPK_EXT_RECORDS && service_ ? serve_extension(this) : nullptr;
}

}  // namespace opk::records

namespace {

opk::Manifest describe() {
  using namespace opk::records;
  opk::Manifest m("platform-records", "Platform records", "1.0.0", "Opskernel",
                  "Subscriptions, usage, billing, invoices, budgets, licenses, regions and probes: imported, "
                  "exported, listed by scope, and offered to other plugins as opskernel.records/1");
  m.admin_feature({.id = "records",
                   .title = "Records",
                   .description = "Import, export and list the platform's business records",
                   .translations = {},
                   .permissions = {{"records.read", "List and export business records (within the caller's scope)"},
                                   {"records.import", "Import business records (within the caller's scope)"}}});
  m.job<ImportJob>({.id = "records-import",
                    .title = "Import records",
                    .description = "Imports a JSON or CSV file of one kind of records: all rows or none, upserted "
                                   "by key",
                    .owner = "platform",
                    .capabilities = opk::kManualRun | opk::kDryRun,
                    .params_schema_json = import_schema(),
                    .timeout_ms = 30 * 60 * 1000,
                    .actions = {{"check", "Check and store the rows"}}});
  m.job<ExportJob>({.id = "records-export",
                    .title = "Export records",
                    .description = "Writes every record of one kind to a JSON or CSV file that records-import reads",
                    .owner = "platform",
                    .capabilities = opk::kManualRun | opk::kDryRun,
                    .params_schema_json = export_schema(),
                    .timeout_ms = 30 * 60 * 1000});
  m.provides(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::records::RecordsPlugin, describe);
