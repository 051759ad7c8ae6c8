// job-usage-data-cleanup -- the UsageDataCleanup job type
// (usage-data-cleanup): deletes the usage rows of months past the retention
// from platform-records, only when the setting allows it (off by default:
// the run then says what it would delete and why it did not). Deletes in
// bounded batches through opskernel.records/1's delete_usage, each batch
// its own transaction, oldest months first; a cancel stops between
// batches. A dry run counts the rows per month and deletes nothing. A run
// that deleted rows writes one audit row (records.delete on records:usage).
//
// Settings ([plugin.job-usage-data-cleanup]):
//   allow_delete      delete expired usage rows at all (default false)
//   retention_months  months kept before the current one (default 24)
//   batch_size        rows per batch, one transaction each (default 1000)
//   batch_pause       pause between batches, to bound the load (default 0)
// Parameters: {"before": "YYYY-MM", "max_batches": 100}.
#define OPK_REQUIRED_HOST_MINOR 3
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <chrono>
#include <cstdio>
#include <map>

namespace usage_cleanup {
namespace {

struct Settings {
  bool allow_delete = false;
  int retention_months = 24;
  int batch_size = 1000;
  int64_t batch_pause_ms = 0;
};

opk::Status load_settings(const opk::Host& h, Settings* s) {
  opk::Settings in = h.settings();
  s->allow_delete = in.boolean("allow_delete", s->allow_delete);
  s->retention_months = static_cast<int>(in.integer("retention_months", s->retention_months, 1, 1200));
  s->batch_size = static_cast<int>(in.integer("batch_size", s->batch_size, 1, 10000));
  s->batch_pause_ms = in.duration_ms("batch_pause", s->batch_pause_ms, 0, 60'000);
  return in.status();
}

std::string rows_text(int64_t n) {
  return std::to_string(n) + (n == 1 ? " row" : " rows");
}

std::string months_text(const opk::Json& months) {
  std::string out;
  for (const auto& m : months) {
    if (!out.empty()) out += ", ";
    out += m.value("month", "") + ": " + std::to_string(m.value("rows", int64_t{0}));
  }
  return out;
}

class CleanupPlugin : public opk::Plugin {
 public:
  explicit CleanupPlugin(opk::Host host) : Plugin(host) {}
  // Bad settings refuse the plugin, naming the key.
  opk::Status init() override { return load_settings(host(), &settings_); }
  const Settings& settings() const { return settings_; }

 private:
  Settings settings_;
};

class CleanupJob : public opk::Job {
 public:
  explicit CleanupJob(opk::Plugin& p) : plugin_(static_cast<CleanupPlugin&>(p)) {}

  opk::Status run(opk::RunContext& run) override {
    const Settings& s = plugin_.settings();
    const opk::Host& host = plugin_.host();
    const opk::Records records(host);
    const std::string cutoff = opk::records_month(host.now_ms(), s.retention_months);
    std::string before = cutoff;
    const std::string param = run.param<std::string>("before", "");
    const int64_t max_batches = run.param<int64_t>("max_batches", 0);
    if (!param.empty()) {
      if (!opk::valid_records_month(param))
        return opk::Status::invalid("parameter before: expected a month YYYY-MM, got '" + param + "'");
      if (param > cutoff)
        return opk::Status::invalid(
            "parameter before: " + param + " is later than the retention's cutoff " + cutoff +
            " ([plugin.job-usage-data-cleanup] retention_months = " + std::to_string(s.retention_months) +
            "): a run never deletes usage the retention keeps");
      before = param;
    }

    // What is past the retention, per month.
    opk::Json months;
    int64_t total = 0;
    {
      auto step = run.step("count");
      if (opk::Status st = records.usage_months(before, &months); !st) {
        step.end(opk::Outcome::error, st.message());
        return st;
      }
      for (const auto& m : months) {
        total += m.value("rows", int64_t{0});
        run.info("usage of " + m.value("month", "") + ": " + rows_text(m.value("rows", int64_t{0})) +
                 " past the retention");
      }
      step.end(opk::Outcome::normal,
               rows_text(total) + " of " + std::to_string(months.size()) + " months before " + before);
    }
    opk::Json output = {{"dry_run", run.dry_run()},
                        {"allowed", s.allow_delete},
                        {"before", before},
                        {"retention_months", s.retention_months},
                        {"expired", total},
                        {"months", months},
                        {"deleted", 0},
                        {"batches", 0}};
    const std::string past = rows_text(total) + " of " + std::to_string(months.size()) + " months before " + before;
    if (total == 0) {
      run.set_output(output);
      run.set_result(opk::Outcome::normal, "no usage before " + before + ": nothing to delete");
      return opk::Status::ok();
    }
    if (run.dry_run()) {
      run.info("dry run: would delete " + past + " (" + months_text(months) + ")" +
               (s.allow_delete ? "" : "; deletion is off, so a real run would not either"));
      run.set_output(output);
      run.set_result(opk::Outcome::normal, "dry run: would delete " + past + "; nothing deleted");
      return opk::Status::ok();
    }
    if (!s.allow_delete) {
      const std::string why = "deletion is off ([plugin.job-usage-data-cleanup] allow_delete = false)";
      run.info(why + ": " + past + " are past the retention and stay");
      run.set_output(output);
      run.set_result(opk::Outcome::normal, "nothing deleted: " + why + "; " + past + " are past the retention");
      return opk::Status::ok();
    }

    // Batches, each its own transaction; a cancel stops between them.
    auto step = run.step("delete");
    int64_t deleted = 0, batches = 0;
    std::map<std::string, int64_t> per_month;
    opk::Status result = opk::Status::ok();
    std::string stopped;
    for (;;) {
      if (run.cancelled()) {
        result = opk::Status::cancelled();
        stopped = "cancelled";
        break;
      }
      if (max_batches > 0 && batches >= max_batches) {
        stopped = "max_batches";
        break;
      }
      opk::Json answer;
      if (opk::Status st = records.delete_usage(before, s.batch_size, &answer); !st) {
        run.error("batch " + std::to_string(batches + 1) + " failed and deleted nothing: " + st.message());
        result = st;
        stopped = "failed";
        break;
      }
      ++batches;
      const int64_t n = answer.value("deleted", int64_t{0});
      deleted += n;
      for (const auto& m : answer.value("months", opk::Json::array()))
        per_month[m.value("month", "")] += m.value("rows", int64_t{0});
      if (n > 0)
        run.info("batch " + std::to_string(batches) + ": deleted " + rows_text(n) + " (" +
                 months_text(answer.value("months", opk::Json::array())) + ")");
      run.progress(100.0 * static_cast<double>(std::min(deleted, total)) / static_cast<double>(total),
                   "deleted " + rows_text(deleted));
      if (n < s.batch_size) break;  // nothing left before the cutoff
      if (s.batch_pause_ms > 0) {
        if (run.wait(std::chrono::milliseconds(s.batch_pause_ms)).code() == OPK_ERR_CANCELLED) continue;
      }
    }
    opk::Json deleted_months = opk::Json::array();
    for (const auto& [month, n] : per_month) deleted_months.push_back({{"month", month}, {"rows", n}});
    output["deleted"] = deleted;
    output["batches"] = batches;
    output["deleted_months"] = deleted_months;
    run.set_output(output);
    if (deleted > 0) audit(run, before, deleted, deleted_months, stopped);

    const std::string done = "deleted " + rows_text(deleted) + " of months before " + before + " in " +
                             std::to_string(batches) + (batches == 1 ? " batch" : " batches");
    if (stopped == "cancelled") {
      run.warn("cancelled between batches: " + done + "; every batch is whole, the rest stays for the next run");
      step.end(opk::Outcome::error, "cancelled: " + done);
      return result;
    }
    if (stopped == "failed") {
      step.end(opk::Outcome::error, done + ", then a batch failed");
      return result;
    }
    if (stopped == "max_batches") {
      const std::string left =
          "stopped at max_batches = " + std::to_string(max_batches) + ": " + done + "; the rest stays for the next run";
      run.info(left);
      step.end(opk::Outcome::normal, left);
      run.set_result(opk::Outcome::normal, left);
      return opk::Status::ok();
    }
    step.end(opk::Outcome::normal, done);
    run.set_result(opk::Outcome::normal, done);
    return opk::Status::ok();
  }

  void cancel(opk::RunContext& run) override { run.info("cancel requested: stopping after the batch under way"); }

 private:
  // One audit row for the run's deletions, as the plugin's system identity.
  void audit(const opk::RunContext& run, const std::string& before, int64_t deleted, const opk::Json& months,
             const std::string& stopped) const {
    const opk::Host& host = plugin_.host();
    const opk::Audit audit(host);
    const opk_principal* self = host.system_principal();
    if (!audit.available() || self == nullptr) {
      run.warn("the kernel's audit service is not available: the deletion is recorded in this run only");
      return;
    }
    std::string reason = "run " + std::to_string(run.run_id()) + " of usage-data-cleanup";
    if (!run.triggered_by().empty()) reason += ", started by " + std::string(run.triggered_by());
    opk::Status st = audit.record(self, {.action = "records.delete",
                                         .target = "records:usage",
                                         .reason = reason,
                                         .after = {{"before", before},
                                                   {"deleted", deleted},
                                                   {"months", months},
                                                   {"stopped", stopped.empty() ? opk::Json() : opk::Json(stopped)}}});
    if (!st) run.warn("audit row not written: " + st.message());
  }

  CleanupPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("job-usage-data-cleanup", "Usage data cleanup", "1.0.0", "Opskernel",
                  "Deletes usage rows past the retention, when the setting allows it");
  m.job<CleanupJob>({.id = "usage-data-cleanup",
                     .title = "Usage data cleanup",
                     .description = "Deletes expired usage rows only when settings allow it.",
                     .owner = "platform-team",
                     .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun | opk::kRequeue,
                     .params_schema_json = R"json({"type":"object","additionalProperties":false,
          "properties":{
            "before":{"type":"string","pattern":"^[0-9]{4}-(0[1-9]|1[0-2])$",
                      "description":"Delete only months before this one (YYYY-MM); no later than the retention's cutoff"},
            "max_batches":{"type":"integer","minimum":1,"maximum":1000000,
                           "description":"Stop after this many batches; the rest waits for the next run"}}})json",
                     .default_schedule = "30 4 * * *",
                     .target_duration_ms = 300000,
                     .timeout_ms = 3600000,
                     .priority = 3,
                     .worker_pool = "default",
                     .actions = {{"count", "Count the expired usage per month"}, {"delete", "Delete in batches"}}});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace
}  // namespace usage_cleanup

OPK_PLUGIN(usage_cleanup::CleanupPlugin, usage_cleanup::describe);
