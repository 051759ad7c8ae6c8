// A plugin that reads the records as an alert source would: it requires
// OPK_EXT_RECORDS and, in its job type "records-consumer", records the
// probes its parameters give, then answers with the newest probes and every
// subscription its filter selects, read page by page (opk::Records), and
// with the answers of the other calls its parameters give.
#include <opskernel/opk.hpp>
#include <opskernel/records.hpp>

namespace {

class ConsumerJob : public opk::Job {
 public:
  explicit ConsumerJob(opk::Plugin& p) : plugin_(p) {}
  opk::Status run(opk::RunContext& run) override {
    opk::Records records(plugin_.host());
    if (!records.available()) return opk::Status::unavailable("no records service");
    for (const auto& probe : run.params().value("probes", opk::Json::array()))
      if (opk::Status s = records.record_probe(probe); !s) return s;
    opk::Json latest;
    if (opk::Status s = records.latest_probes(run.param<std::string>("probe_kind", ""), &latest); !s) return s;
    opk::Json subs = opk::Json::array();
    int pages = 0;
    opk::Status s = records.list(
        "subscriptions", run.params().value("filter", opk::Json()),
        [&](const opk::Json& rows) {
          ++pages;
          for (const auto& row : rows) subs.push_back(row);
          return opk::Status::ok();
        },
        run.param<int>("page_size", 1000));
    if (!s) return s;
    // Any other operation, as given: {"op", "request"} -> {"status", "answer"|"error"}.
    opk::Json calls = opk::Json::array();
    for (const auto& c : run.params().value("calls", opk::Json::array())) {
      opk::Json answer;
      const opk::Status st = records.call(c.value("op", ""), c.value("request", opk::Json::object()), &answer);
      calls.push_back(st ? opk::Json{{"status", 0}, {"answer", answer}}
                         : opk::Json{{"status", st.code()}, {"error", st.message()}});
    }
    run.set_output({{"latest", latest}, {"subscriptions", subs}, {"pages", pages}, {"calls", calls}});
    return opk::Status::ok();
  }

 private:
  opk::Plugin& plugin_;
};

class Consumer : public opk::Plugin {
 public:
  explicit Consumer(opk::Host h) : Plugin(h) {}
};

opk::Manifest describe() {
  opk::Manifest m("records-consumer", "Records consumer", "1.0.0", "Opskernel tests");
  m.job<ConsumerJob>({.id = "records-consumer", .title = "Read the records", .capabilities = opk::kManualRun});
  m.requires_extension(OPK_EXT_RECORDS);
  return m;
}

}  // namespace

OPK_PLUGIN(Consumer, describe);
