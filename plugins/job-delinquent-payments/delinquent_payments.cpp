// job-delinquent-payments -- the DelinquentPaymentNotifications job type
// (delinquent-payment-notifications): moves open invoices past their due
// date to "overdue" in platform-records (opskernel.records/1 mark_overdue,
// one transaction per batch), then, when the setting allows it, sends one
// overdue reminder per invoice through the notification rules: an event
// plugin.job-delinquent-payments.invoice.overdue emitted with the
// idempotency key "invoice-overdue:<id>" (opk.events/1). The kernel keeps
// at most one event per key in its store, so reruns, retries, restarts and
// several kernels never send two; every run lists the overdue invoices it
// has no record of reminding and emits for them, so an invoice marked while
// reminders were off, or by a run that stopped before its reminders, gets
// its one reminder from the next run that sends them.
//
// Settings ([plugin.job-delinquent-payments]):
//   send_reminders  emit the overdue reminders (default false)
//   batch_size      invoices per batch, one transaction each (default 1000)
//   batch_pause     pause between batches, to bound the load (default 0)
//   emit_concurrency reminders emitted at once (default 16)
// Parameters: {"as_of": "YYYY-MM-DD", "tenant": "tenant:<n>", "max": n}.
#define OPK_REQUIRED_HOST_MINOR 4
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <thread>

namespace delinquent {
namespace {

// The event's name; its kind is plugin.job-delinquent-payments.invoice.overdue.
constexpr const char* kEventName = "invoice.overdue";
// Ids listed in the output and in a log line, at most.
constexpr size_t kMaxListedIds = 100;
// Rows of the reminders table written per statement.
constexpr size_t kRowsPerInsert = 200;

// The plugin's own record of the reminders it sent: for the run's report
// and to skip invoices already reminded. The idempotency key in the
// kernel's store, not this table, is what keeps a reminder from going
// twice (a run may stop between the emit and this row).
const char* const kSchemaV1 =
    "CREATE TABLE p_job_delinquent_payments_reminders (invoice TEXT PRIMARY KEY, tenant TEXT NOT NULL, seq BIGINT NOT "
    "NULL, run_id BIGINT NOT NULL, sent_ms BIGINT NOT NULL, duplicate BIGINT NOT NULL)";

struct Settings {
  bool send_reminders = false;
  int batch_size = 1000;
  int64_t batch_pause_ms = 0;
  int emit_concurrency = 16;
};

opk::Status load_settings(const opk::Host& h, Settings* s) {
  opk::Settings in = h.settings();
  s->send_reminders = in.boolean("send_reminders", s->send_reminders);
  s->batch_size = static_cast<int>(in.integer("batch_size", s->batch_size, 1, 10000));
  s->batch_pause_ms = in.duration_ms("batch_pause", s->batch_pause_ms, 0, 60'000);
  s->emit_concurrency = static_cast<int>(in.integer("emit_concurrency", s->emit_concurrency, 1, 64));
  return in.status();
}

// Days since 1970-01-01 of a date "YYYY-MM-DD", or nullopt when it is not one.
std::optional<int64_t> day_number(const std::string& s) {
  using namespace std::chrono;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  const year_month_day d{year(std::stoi(s.substr(0, 4))), month(static_cast<unsigned>(std::stoi(s.substr(5, 2)))),
                         day(static_cast<unsigned>(std::stoi(s.substr(8, 2))))};
  if (!d.ok()) return std::nullopt;
  return sys_days(d).time_since_epoch().count();
}

std::string invoices_text(int64_t n) {
  return std::to_string(n) + (n == 1 ? " invoice" : " invoices");
}

// The first ids of `ids`, comma-separated, with how many more there are.
std::string ids_text(const std::vector<std::string>& ids, int64_t total) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
  if (total > static_cast<int64_t>(ids.size())) out += " and " + std::to_string(total - ids.size()) + " more";
  return out;
}

void keep_id(std::vector<std::string>* ids, const std::string& id) {
  if (ids->size() < kMaxListedIds) ids->push_back(id);
}

class DelinquentPlugin : public opk::Plugin {
 public:
  explicit DelinquentPlugin(opk::Host host) : Plugin(host) {}
  // Bad settings refuse the plugin, naming the key.
  opk::Status init() override {
    if (opk::Status s = load_settings(host(), &settings_); !s) return s;
    const opk::Store store(host());
    return store.migrate({{1, "overdue reminders sent", kSchemaV1}});
  }
  const Settings& settings() const { return settings_; }

 private:
  Settings settings_;
};

// What a run found and did, for its output, summary and outcome.
struct Report {
  int64_t marked = 0, batches = 0, reminded = 0, already = 0, not_reminded = 0;
  std::vector<std::string> marked_ids, reminded_ids;
  opk::Json skipped = opk::Json::array();   // bad invoices left as they are
  opk::Json not_sent = opk::Json::array();  // reminders refused, named
  bool warned = false;
};

class DelinquentJob : public opk::Job {
 public:
  explicit DelinquentJob(opk::Plugin& p) : plugin_(static_cast<DelinquentPlugin&>(p)) {}

  opk::Status run(opk::RunContext& run) override {
    const Settings& s = plugin_.settings();
    const opk::Host& host = plugin_.host();
    const std::string today = opk::records_date(host.now_ms());
    const std::string as_of = run.param<std::string>("as_of", today);
    if (!day_number(as_of))
      return opk::Status::invalid("parameter as_of: expected a date YYYY-MM-DD, got '" + as_of + "'");
    if (as_of > today)
      return opk::Status::invalid("parameter as_of: " + as_of + " is after today (" + today +
                                  ", UTC): an invoice is not overdue before its due date has passed");
    std::string tenant = run.param<std::string>("tenant", "");
    if (tenant.empty() && !run.target_tenant().empty()) {
      tenant = std::string(run.target_tenant());
      if (tenant.rfind("tenant:", 0) != 0) tenant = "tenant:" + tenant;
    }
    if (!tenant.empty()) {
      const auto* id = host.extension<opk_identity_v1>(OPK_EXT_IDENTITY);
      if (tenant.rfind("tenant:", 0) != 0 || tenant.size() == 7)
        return opk::Status::invalid("parameter tenant: expected tenant:<name>, got '" + tenant + "'");
      if (id && opk::detail::has(id, &opk_identity_v1::node_exists) && id->node_exists &&
          !id->node_exists(host.raw(), tenant.c_str()))
        return opk::Status::invalid("parameter tenant: no tenant '" + tenant + "' in the hierarchy");
    }
    const int64_t max = run.param<int64_t>("max", 0);
    run.info("as of " + as_of + (tenant.empty() ? "" : ", tenant " + tenant) +
             (max > 0 ? ", at most " + invoices_text(max) : "") + "; reminders " +
             (s.send_reminders ? "on" : "off ([plugin.job-delinquent-payments] send_reminders = false)"));

    Report report;
    opk::Status status = mark(run, as_of, tenant, max, &report);
    if (status && !run.cancelled()) status = remind(run, as_of, tenant, max, &report);
    if (status && run.cancelled()) status = opk::Status::cancelled();

    opk::Json output = {{"as_of", as_of},
                        {"tenant", tenant.empty() ? opk::Json() : opk::Json(tenant)},
                        {"dry_run", run.dry_run()},
                        {"send_reminders", s.send_reminders},
                        {"marked", report.marked},
                        {"marked_ids", report.marked_ids},
                        {"batches", report.batches},
                        {"reminded", report.reminded},
                        {"reminded_ids", report.reminded_ids},
                        {"already_reminded", report.already},
                        {"not_reminded", report.not_sent},
                        {"skipped", report.skipped},
                        {"ids_truncated", report.marked > static_cast<int64_t>(report.marked_ids.size()) ||
                                              report.reminded > static_cast<int64_t>(report.reminded_ids.size())}};
    run.set_output(output);
    const std::string verb = run.dry_run() ? "would mark " : "marked ";
    std::string summary = (run.dry_run() ? "dry run: " : "") + verb + invoices_text(report.marked) + " overdue";
    if (s.send_reminders)
      summary += std::string(run.dry_run() ? ", would remind " : ", reminded ") + std::to_string(report.reminded);
    else
      summary += ", reminders off";
    if (report.skipped.size() > 0) summary += ", " + std::to_string(report.skipped.size()) + " skipped (bad records)";
    if (report.not_reminded > 0) summary += ", " + std::to_string(report.not_reminded) + " reminders refused";
    if (status.code() == OPK_ERR_CANCELLED) {
      run.warn("cancelled between batches: " + summary + "; every batch is whole, the rest is for the next run");
      return status;
    }
    if (!status) {
      run.set_result(opk::Outcome::error, summary + "; then: " + status.message());
      return status;
    }
    run.set_result(report.warned ? opk::Outcome::warning : opk::Outcome::normal, summary);
    return opk::Status::ok();
  }

  void cancel(opk::RunContext& run) override { run.info("cancel requested: stopping after the batch under way"); }

 private:
  // Step "mark": open invoices due before `as_of` become overdue, a batch
  // per transaction (a dry run counts them instead).
  opk::Status mark(opk::RunContext& run, const std::string& as_of, const std::string& tenant, int64_t max,
                   Report* report) const {
    const Settings& s = plugin_.settings();
    const opk::Records records(plugin_.host());
    auto step = run.step("mark");
    opk::Json request = {{"as_of", as_of}};
    if (!tenant.empty()) request["tenant"] = tenant;
    if (run.dry_run()) {
      request["dry_run"] = true;
      request["limit"] = max > 0 ? std::min<int64_t>(max, 10000) : 10000;
      opk::Json answer;
      if (opk::Status st = records.call("mark_overdue", request, &answer); !st) {
        step.end(opk::Outcome::error, st.message());
        return st;
      }
      report->marked = answer.value("count", int64_t{0});
      if (max > 0) report->marked = std::min(report->marked, max);
      for (const auto& row : answer.value("invoices", opk::Json::array()))
        keep_id(&report->marked_ids, row.value("id", ""));
      note_skipped(run, answer, report);
      const std::string done = "would mark " + invoices_text(report->marked) + " due before " + as_of;
      if (report->marked > 0) run.info("dry run: " + done + ": " + ids_text(report->marked_ids, report->marked));
      step.end(opk::Outcome::normal, done + "; nothing changed");
      return opk::Status::ok();
    }
    for (;;) {
      if (run.cancelled()) {
        step.end(opk::Outcome::error, "cancelled after " + invoices_text(report->marked));
        return opk::Status::cancelled();
      }
      int64_t limit = s.batch_size;
      if (max > 0) limit = std::min(limit, max - report->marked);
      if (limit <= 0) {
        run.info("stopped at max = " + std::to_string(max) + ": the rest is for the next run");
        break;
      }
      request["limit"] = limit;
      opk::Json answer;
      if (opk::Status st = records.call("mark_overdue", request, &answer); !st) {
        run.error("batch " + std::to_string(report->batches + 1) + " failed and changed nothing: " + st.message());
        step.end(opk::Outcome::error, "marked " + invoices_text(report->marked) + ", then a batch failed");
        return st;
      }
      ++report->batches;
      const opk::Json rows = answer.value("invoices", opk::Json::array());
      std::vector<std::string> batch_ids;
      for (const auto& row : rows) {
        keep_id(&report->marked_ids, row.value("id", ""));
        keep_id(&batch_ids, row.value("id", ""));
      }
      report->marked += static_cast<int64_t>(rows.size());
      if (!rows.empty())
        run.info("batch " + std::to_string(report->batches) + ": marked " + invoices_text(rows.size()) +
                 " overdue: " + ids_text(batch_ids, static_cast<int64_t>(rows.size())));
      note_skipped(run, answer, report);
      if (static_cast<int64_t>(rows.size()) < limit) break;                             // none left
      if (s.batch_pause_ms > 0) run.wait(std::chrono::milliseconds(s.batch_pause_ms));  // a cancel ends it
    }
    step.end(opk::Outcome::normal, "marked " + invoices_text(report->marked) + " overdue in " +
                                       std::to_string(report->batches) +
                                       (report->batches == 1 ? " batch" : " batches"));
    return opk::Status::ok();
  }

  // Open invoices whose due date is not a date: named in the log, left open.
  static void note_skipped(const opk::RunContext& run, const opk::Json& answer, Report* report) {
    for (const auto& bad : answer.value("skipped", opk::Json::array())) {
      const std::string id = bad.value("id", "");
      bool seen = false;
      for (const auto& s : report->skipped) seen |= s.value("id", "") == id;
      if (seen) continue;
      const std::string due = bad.contains("due_date") && bad["due_date"].is_string()
                                  ? bad["due_date"].get<std::string>()
                                  : bad.value("due_date", opk::Json()).dump();
      const std::string problem = "'" + due + "' is not a date YYYY-MM-DD; the invoice stays open";
      run.warn("invoice " + id + ": due_date: " + problem);
      report->skipped.push_back({{"id", id}, {"field", "due_date"}, {"problem", problem}});
      report->warned = true;
    }
  }

  // Step "remind": one event per overdue invoice not yet reminded, with the
  // invoice's key; the kernel's key decides whether it is written.
  opk::Status remind(opk::RunContext& run, const std::string& as_of, const std::string& tenant, int64_t max,
                     Report* report) const {
    const Settings& s = plugin_.settings();
    const opk::Host& host = plugin_.host();
    const opk::Records records(host);
    const opk::Store store(host);
    auto step = run.step("remind");
    if (!s.send_reminders) {
      const std::string why = "reminders are off ([plugin.job-delinquent-payments] send_reminders = false)";
      run.info(why + ": overdue invoices get their one reminder from the first run after they are turned on");
      step.end(opk::Outcome::normal, why);
      return opk::Status::ok();
    }
    const auto* events = host.extension<opk_events_v1>(OPK_EXT_EVENTS);
    if (!run.dry_run() && (events == nullptr || !events->call)) {
      step.end(opk::Outcome::error, "no event log");
      return opk::Status::unavailable("the kernel offers no event log (opk.events/1, ABI 1.4): no reminder sent");
    }
    if (run.dry_run()) {
      // What the mark step would have marked is overdue too, and would be reminded.
      report->reminded = report->marked;
      report->reminded_ids = report->marked_ids;
    }
    std::map<std::string, opk::Json> billing;  // tenant -> its billing contact, or null
    auto contact_of = [&](const std::string& t, opk::Json* contact) -> opk::Status {
      auto it = billing.find(t);
      if (it == billing.end()) {
        opk::Json found;
        opk::Status st = records.list("billing", {{"tenant", t}}, [&](const opk::Json& rows) {
          if (!rows.empty()) found = rows[0];
          return opk::Status::ok();
        });
        if (!st) return st;
        it = billing.emplace(t, std::move(found)).first;
      }
      *contact = it->second;
      return opk::Status::ok();
    };
    opk::Json filter = {{"status", "overdue"}};
    if (!tenant.empty()) filter["tenant"] = tenant;
    const int64_t as_of_day = *day_number(as_of);
    opk::Status failed = opk::Status::ok();
    bool stop = false;
    opk::Status listed = records.list(
        "invoices", filter,
        [&](const opk::Json& rows) -> opk::Status {
          if (run.cancelled()) return opk::Status::cancelled();
          // Invoices of this page reminded already (their ids are in key order).
          std::set<std::string> done;
          opk::Json have;
          if (opk::Status st = store.query(
                  "SELECT invoice FROM p_job_delinquent_payments_reminders WHERE invoice >= $1 AND invoice <= $2",
                  {rows.front().value("id", ""), rows.back().value("id", "")}, &have);
              !st)
            return st;
          for (const auto& r : have) done.insert(r[0].get<std::string>());
          // The invoices of this page to remind, with their requests.
          std::vector<std::string> ids, tenants;
          std::vector<std::string> bodies;
          for (const auto& inv : rows) {
            const std::string id = inv.value("id", "");
            if (done.count(id)) continue;
            if (max > 0 && report->reminded + report->already + static_cast<int64_t>(ids.size()) >= max) {
              stop = true;
              break;
            }
            if (run.dry_run()) {
              ++report->reminded;
              keep_id(&report->reminded_ids, id);
              continue;
            }
            const std::string inv_tenant = inv.value("tenant", "");
            const auto due_day = day_number(inv.value("due_date", ""));
            opk::Json contact;
            opk::Status st = inv_tenant.rfind("tenant:", 0) == 0 && inv_tenant.size() > 7
                                 ? contact_of(inv_tenant, &contact)
                                 : opk::Status::invalid("tenant: '" + inv_tenant + "' is not a tenant (tenant:<name>)");
            if (st.code() == OPK_ERR_INVALID_ARGUMENT) {
              not_reminded(run, id, st.message(), report);
              continue;
            }
            if (!st) {
              failed = st;
              break;
            }
            opk::Json payload = {{"invoice", inv},
                                 {"billing", contact},
                                 {"as_of", as_of},
                                 {"days_overdue", due_day ? opk::Json(as_of_day - *due_day) : opk::Json()},
                                 {"run_id", run.run_id()}};
            opk::Json request = {{"name", kEventName},
                                 {"scope", inv_tenant},
                                 {"subject", "invoice:" + id},
                                 {"payload", std::move(payload)},
                                 {"key", "invoice-overdue:" + id}};
            ids.push_back(id);
            tenants.push_back(inv_tenant);
            bodies.push_back(request.dump());
          }
          // Emitted `emit_concurrency` at a time: the kernel's store commits
          // the emits of a moment together.
          std::vector<Emitted> results = emit_all(*events, bodies, s.emit_concurrency);
          std::vector<std::vector<opk::Store::Param>> sent;
          for (size_t i = 0; i < results.size(); ++i) {
            const std::string& id = ids[i];
            const opk::Status& st = results[i].status;
            if (st.code() == OPK_ERR_INVALID_ARGUMENT) {
              not_reminded(run, id, st.message(), report);
              continue;
            }
            if (!st) {
              if (failed) failed = st;
              continue;  // not sent (or not known to be): the next run's emit decides
            }
            if (results[i].unkeyed && failed)
              failed = opk::Status::unavailable(
                  "the kernel's event log ignored the reminders' idempotency keys (emit answered without "
                  "\"duplicate\"): reminders stopped, so that none can go twice; this job type needs a kernel whose "
                  "emit keeps keys");
            const bool dup = results[i].duplicate;
            if (dup)
              ++report->already;
            else {
              ++report->reminded;
              keep_id(&report->reminded_ids, id);
            }
            sent.push_back({id, tenants[i], std::to_string(results[i].seq), std::to_string(run.run_id()),
                            std::to_string(host.now_ms()), dup ? "1" : "0"});
          }
          if (opk::Status st = record(store, sent); !st) {
            run.error("the record of " + std::to_string(sent.size()) +
                      " reminders sent was not written (they were sent; their keys keep the next run from sending "
                      "them again): " +
                      st.message());
            return st;
          }
          if (!failed) return failed;
          if (stop) return opk::Status(OPK_ERR_CANCELLED, "max");
          return opk::Status::ok();
        },
        1000);
    if (listed.code() == OPK_ERR_CANCELLED && listed.message() == "max") {
      run.info("stopped at max = " + std::to_string(max) + ": the rest is for the next run");
      listed = opk::Status::ok();
    }
    const std::string done =
        std::string(run.dry_run() ? "would remind " : "reminded ") + invoices_text(report->reminded) +
        (report->already > 0 ? " (" + std::to_string(report->already) + " more had been reminded already)" : "");
    if (report->reminded > 0) run.info(done + ": " + ids_text(report->reminded_ids, report->reminded));
    if (!listed) {
      if (listed.code() != OPK_ERR_CANCELLED) run.error("reminders stopped: " + listed.message());
      step.end(opk::Outcome::error, done + ", then " + listed.message());
      return listed;
    }
    step.end(report->not_reminded > 0 ? opk::Outcome::warning : opk::Outcome::normal,
             done + (run.dry_run() ? "; nothing emitted" : ""));
    return opk::Status::ok();
  }

  // An invoice whose record is at fault (a tenant not in the hierarchy or
  // not a tenant, an id too long for a key): named, not reminded, tried
  // again by the next run.
  static void not_reminded(const opk::RunContext& run, const std::string& id, const std::string& problem,
                           Report* report) {
    run.warn("invoice " + id + ": no reminder sent: " + problem);
    if (report->not_sent.size() < kMaxListedIds) report->not_sent.push_back({{"id", id}, {"problem", problem}});
    ++report->not_reminded;
    report->warned = true;
  }

  // What one emit answered.
  struct Emitted {
    opk::Status status;
    int64_t seq = 0;
    bool duplicate = false;
    // Written by a kernel that ignored the key (its answer has no
    // "duplicate"): sent, but nothing would stop a second one.
    bool unkeyed = false;
  };

  // Emits every request of `bodies` (JSON text), `concurrency` at a time;
  // the results in the order of `bodies`. After a failure that is not the
  // request's fault (the store, the event log) the rest are not sent and
  // answer UNAVAILABLE.
  std::vector<Emitted> emit_all(const opk_events_v1& events, const std::vector<std::string>& bodies,
                                int concurrency) const {
    std::vector<Emitted> out(bodies.size());
    std::atomic<size_t> next{0};
    std::atomic<bool> broken{false};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < bodies.size();) {
        if (broken.load()) {
          out[i].status = opk::Status::unavailable("not sent: an earlier reminder of the page failed");
          continue;
        }
        opk::Json answer;
        out[i].status = emit(events, bodies[i], &answer);
        if (out[i].status) {
          out[i].seq = answer.value("seq", int64_t{0});
          out[i].duplicate = answer.value("duplicate", false);
          if (!answer.contains("duplicate")) out[i].unkeyed = broken = true;
        } else if (out[i].status.code() != OPK_ERR_INVALID_ARGUMENT) {
          broken = true;
        }
      }
    };
    const size_t n = std::min(bodies.size(), static_cast<size_t>(std::max(concurrency, 1)));
    std::vector<std::thread> threads;
    for (size_t t = 1; t < n; ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    return out;
  }

  // Calls opk.events/1 "emit" as the plugin's system principal.
  opk::Status emit(const opk_events_v1& events, const std::string& body, opk::Json* answer) const {
    const opk::Host& host = plugin_.host();
    char* out = nullptr;
    const opk_status st =
        events.call(host.raw(), host.system_principal(), "emit", body.c_str(), "job-delinquent-payments", &out);
    opk::Json doc = out ? opk::Json::parse(out, nullptr, false) : opk::Json();
    if (out) host.free(out);
    if (st != OPK_OK)
      return opk::Status(st, doc.is_object() ? doc.value("error", "emit failed") : std::string("emit failed"));
    *answer = std::move(doc);
    return opk::Status::ok();
  }

  // Records reminders sent, in one transaction (a row already there is kept).
  static opk::Status record(const opk::Store& store, const std::vector<std::vector<opk::Store::Param>>& rows) {
    std::vector<opk::Store::Statement> statements;
    for (size_t k = 0; k < rows.size(); k += kRowsPerInsert) {
      opk::Store::Statement st;
      st.sql =
          "INSERT INTO p_job_delinquent_payments_reminders (invoice, tenant, seq, run_id, sent_ms, duplicate) VALUES ";
      const size_t n = std::min(kRowsPerInsert, rows.size() - k);
      for (size_t i = 0; i < n; ++i) {
        st.sql += i ? ", (" : "(";
        for (size_t c = 0; c < 6; ++c) {
          st.sql += (c ? ", $" : "$") + std::to_string(i * 6 + c + 1);
          st.params.push_back(rows[k + i][c]);
        }
        st.sql += ")";
      }
      st.sql += " ON CONFLICT (invoice) DO NOTHING";
      statements.push_back(std::move(st));
    }
    if (statements.empty()) return opk::Status::ok();
    opk::Json results;
    return store.transaction(statements, &results);
  }

  DelinquentPlugin& plugin_;
};

opk::Manifest describe() {
  opk::Manifest m("job-delinquent-payments", "Delinquent payment notifications", "1.0.0", "Opskernel",
                  "Marks invoices past their due date overdue and sends one overdue reminder per invoice");
  m.job<DelinquentJob>(
      {.id = "delinquent-payment-notifications",
       .title = "Delinquent payment notifications",
       .description = "Update invoice statuses and send one overdue reminder per invoice when enabled.",
       .owner = "billing-team",
       .capabilities = opk::kManualRun | opk::kCancel | opk::kDryRun | opk::kRequeue,
       .params_schema_json = R"json({"type":"object","additionalProperties":false,
          "properties":{
            "as_of":{"type":"string","pattern":"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
                     "description":"Invoices due before this date (YYYY-MM-DD, UTC) are overdue; default today, never later"},
            "tenant":{"type":"string","pattern":"^tenant:[^\\s]+$",
                      "description":"Only this tenant's invoices (tenant:<name>)"},
            "max":{"type":"integer","minimum":1,"maximum":10000000,
                   "description":"At most this many invoices marked, and this many reminders, in this run"}}})json",
       .default_schedule = "15 6 * * *",
       .target_duration_ms = 300000,
       .timeout_ms = 3600000,
       .priority = 3,
       .worker_pool = "default",
       .actions = {{"mark", "Mark invoices past their due date overdue"},
                   {"remind", "Send one overdue reminder per invoice"}}});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace
}  // namespace delinquent

OPK_PLUGIN(delinquent::DelinquentPlugin, delinquent::describe);
