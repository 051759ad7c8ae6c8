// flag_consumer: a plugin reading global flags through
// opskernel.feature-flags/1 as any plugin would (feature_flags.hpp), for the
// feature-flags tests and benchmark. It declares the flags of its setting
// `declare` (a JSON array) at start, and offers
//   job flag-declare  {"flags_json", "cpp"?}: declares those through the
//                     C table, or with "cpp" through opk::FeatureFlags
//                     (each flag's id, default, description and owner);
//                     the output is {"status", "message"}
//   job flag-read     {"id"}: the output is the flag as a plugin sees it
//                     {"enabled", "number", "string", "evaluate"}
//   job flag-bench    {"id", "checks"}: times `checks` boolean checks; the
//                     output is {"ns_per_check", "on"}
//   GET /api/v1/flag-consumer/{id}  the same as flag-read, for a kernel
#include <opskernel/feature_flags.hpp>
#include <opskernel/opk.hpp>

#include <chrono>

namespace {

using opk::Json;
using opk::Status;

const char* const kConsumerSchema = R"json({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "id": {"type": "string"},
    "flags_json": {"type": "string"},
    "checks": {"type": "integer", "minimum": 1, "maximum": 1000000000},
    "cpp": {"type": "boolean"}
  }
})json";

// What a plugin sees of flag `id`.
Json seen(const opk::Host& host, const std::string& id) {
  opk::FeatureFlags flags(host);
  Json out = {{"available", flags.available()},
              {"enabled", flags.enabled(id.c_str(), false)},
              {"enabled_fallback_true", flags.enabled(id.c_str(), true)},
              {"number", flags.number(id.c_str(), -1)},
              {"string", flags.string(id.c_str(), "<fallback>")}};
  const auto* ext = host.extension<opk_feature_flags_v1>(OPK_EXT_FEATURE_FLAGS);
  if (ext) {
    char* answer = nullptr;
    const opk_status st = ext->evaluate(host.raw(), id.c_str(), &answer);
    out["evaluate_status"] = st;
    out["evaluate"] = answer ? Json::parse(answer, nullptr, false) : Json();
    ext->free(answer);
  }
  return out;
}

class Consumer : public opk::Plugin {
 public:
  explicit Consumer(opk::Host host) : Plugin(host) {}

  Status start() override {
    if (auto d = host().config("declare")) {
      Json flags = Json::parse(*d, nullptr, false);
      Status s = declare(flags);
      if (!s) host().error("declare failed: " + s.message());
    }
    return add_route("flag-consumer", "GET", "/api/v1/flag-consumer/{id}", "What the consumer sees of a flag",
                     [this](const opk::Request& rq, opk::Response& rs) {
                       rs.status(200).json(seen(host(), std::string(rq.path_param("id").value_or(""))));
                       return Status::ok();
                     });
  }

  // Declares `flags` (a JSON array) through the C table.
  Status declare(const Json& flags) const {
    const auto* ext = host().extension<opk_feature_flags_v1>(OPK_EXT_FEATURE_FLAGS);
    if (!ext) return Status::unavailable("no feature flags");
    char* answer = nullptr;
    const std::string text = flags.dump();
    const opk_status st = ext->declare(host().raw(), text.c_str(), &answer);
    Json doc = answer ? Json::parse(answer, nullptr, false) : Json();
    ext->free(answer);
    if (st == OPK_OK) return Status::ok();
    return Status(st, doc.value("error", std::string("?")));
  }
};

class Declare : public opk::Job {
 public:
  explicit Declare(opk::Plugin& p) : p_(static_cast<Consumer&>(p)) {}
  Status run(opk::RunContext& run) override {
    Json flags = Json::parse(run.param<std::string>("flags_json", "[]"), nullptr, false);
    Status s;
    if (run.param<bool>("cpp", false)) {
      std::vector<opk::FlagDeclaration> decl;
      for (const auto& f : flags)
        decl.push_back(
            {f.value("id", ""), f.value("default", Json()), f.value("description", ""), f.value("owner", "")});
      s = opk::FeatureFlags(p_.host()).declare(decl);
    } else {
      s = p_.declare(flags.is_discarded() ? Json("not json") : flags);
    }
    run.set_output(Json{{"status", s.code()}, {"message", s.message()}});
    return Status::ok();
  }

 private:
  Consumer& p_;
};

class Read : public opk::Job {
 public:
  explicit Read(opk::Plugin& p) : p_(p) {}
  Status run(opk::RunContext& run) override {
    run.set_output(seen(p_.host(), run.param<std::string>("id", "")));
    return Status::ok();
  }

 private:
  opk::Plugin& p_;
};

class Bench : public opk::Job {
 public:
  explicit Bench(opk::Plugin& p) : p_(p) {}
  Status run(opk::RunContext& run) override {
    const std::string id = run.param<std::string>("id", "");
    const int64_t checks = run.param<int64_t>("checks", 1000000);
    opk::FeatureFlags flags(p_.host());
    int64_t on = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < checks; ++i) on += flags.enabled(id.c_str()) ? 1 : 0;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
    run.set_output(Json{{"ns_per_check", static_cast<double>(ns.count()) / static_cast<double>(checks)}, {"on", on}});
    return Status::ok();
  }

 private:
  opk::Plugin& p_;
};

opk::Manifest describe() {
  opk::Manifest m("flag-consumer", "Flag consumer", "1.0.0", "Opskernel tests", "Reads global feature flags");
  for (const char* id : {"flag-declare", "flag-read", "flag-bench"}) {
    opk::JobInfo info{.id = id, .title = id, .capabilities = opk::kManualRun, .params_schema_json = kConsumerSchema};
    if (std::string(id) == "flag-declare")
      m.job<Declare>(info);
    else if (std::string(id) == "flag-read")
      m.job<Read>(info);
    else
      m.job<Bench>(info);
  }
  m.admin_feature({.id = "flag-consumer", .title = "Flag consumer"});
  m.requires_extension(OPK_EXT_FEATURE_FLAGS, true);
  return m;
}

}  // namespace

OPK_PLUGIN(Consumer, describe);
