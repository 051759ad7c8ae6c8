// opk.hpp -- the header-only C++20 layer over opk_abi.h that plugin authors use.
//
// It never changes the ABI: everything here compiles down to the C structs of
// opk_abi.h. It gives
//   - opk::Status, a small result type (LevelDB style);
//   - opk::Host, opk::RunContext, opk::AlertContext, opk::Request/Response:
//     thin views over the C tables;
//   - base classes opk::Plugin, opk::Job, opk::AlertSource,
//     opk::NotificationChannel to derive from;
//   - opk::Manifest, a builder for the manifest, and OPK_PLUGIN(Class, fn),
//     the one macro that emits the exported C entry;
//   - opk::Json (nlohmann::json) for parameters, outputs, bodies and rows,
//     and opk::Settings (settings.hpp) for typed, validated settings;
//   - opk::Audit, audit rows through the kernel (opk.audit/1).
// Calls that need a newer kernel than 1.0 check the kernel's ABI minor and
// table sizes and fail with UNSUPPORTED, naming the minor, instead of
// silently doing less (a route's permission is never dropped).
// Every call from the kernel goes through a noexcept trampoline that turns an
// exception into a status plus message: no exception ever reaches the kernel.
//
// Thread-safety: a Job or AlertSource object is shared by all runs of its
// type, so run() may be called on several worker threads at once; keep per-run
// state on the stack. Host and RunContext methods are safe from any thread.
#ifndef OPSKERNEL_OPK_HPP
#define OPSKERNEL_OPK_HPP

#include <opskernel/opk_abi.h>
#include <opskernel/settings.hpp>
#include <opskernel/status.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <opskernel/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace opk {

// JSON documents of the C++ layer: parameters, outputs, request and response
// bodies, typed store rows. The C ABI carries them as text.
using Json = nlohmann::json;

// Log severities.
enum class Level : opk_log_level {
  trace = OPK_LOG_TRACE,
  debug = OPK_LOG_DEBUG,
  info = OPK_LOG_INFO,
  warn = OPK_LOG_WARN,
  error = OPK_LOG_ERROR,
  critical = OPK_LOG_CRITICAL,
};

// Completion outcome of a run or step.
enum class Outcome : opk_outcome {
  normal = OPK_OUTCOME_NORMAL,
  warning = OPK_OUTCOME_WARNING,
  error = OPK_OUTCOME_ERROR,
};

// Job type capabilities (combine with |).
inline constexpr uint64_t kManualRun = OPK_JOB_CAP_MANUAL_RUN;
inline constexpr uint64_t kCancel = OPK_JOB_CAP_CANCEL;
inline constexpr uint64_t kDryRun = OPK_JOB_CAP_DRY_RUN;
inline constexpr uint64_t kRequeue = OPK_JOB_CAP_REQUEUE;

namespace detail {
// Reads a host-provided struct member only when the kernel's struct has it.
template <typename T, typename M>
inline bool has(const T* s, M T::*member) {
  if (s == nullptr) return false;
  const T probe{};
  const auto off =
      static_cast<size_t>(reinterpret_cast<const char*>(&(probe.*member)) - reinterpret_cast<const char*>(&probe));
  return s->struct_size >= off + sizeof(M);
}
inline std::string_view sv(const char* s) {
  return s ? std::string_view(s) : std::string_view();
}
}  // namespace detail

// ---------------------------------------------------------------------- Host

// The kernel as a plugin sees it. Valid from init until deinit.
class Host {
 public:
  explicit Host(const opk_host* host) : host_(host) {}

  // Writes to this plugin's logger.
  void log(Level level, std::string_view message) const {
    if (detail::has(host_, &opk_host::log) && host_->log) {
      std::string m(message);
      host_->log(host_, static_cast<opk_log_level>(level), m.c_str());
    }
  }
  void info(std::string_view m) const { log(Level::info, m); }
  void warn(std::string_view m) const { log(Level::warn, m); }
  void error(std::string_view m) const { log(Level::error, m); }

  // Current time, ms since the epoch (UTC), from the kernel's clock.
  int64_t now_ms() const { return detail::has(host_, &opk_host::now_ms) && host_->now_ms ? host_->now_ms(host_) : 0; }

  // A setting from this plugin's configuration section, if set.
  std::optional<std::string> config(std::string_view key) const {
    if (!detail::has(host_, &opk_host::config_value) || !host_->config_value) return std::nullopt;
    std::string k(key);
    const char* v = host_->config_value(host_, k.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }
  // A setting, or `fallback` when not set.
  std::string config_or(std::string_view key, std::string_view fallback) const {
    auto v = config(key);
    return v ? *v : std::string(fallback);
  }

  // Typed, validated reads of this plugin's settings (settings.hpp).
  Settings settings() const;

  // This plugin's system identity, for work no request asked for (1.2
  // kernels; nullptr before). Pass it as the actor of kernel services.
  const opk_principal* system_principal() const {
    const auto* id = extension<opk_identity_v1>(OPK_EXT_IDENTITY);
    if (id == nullptr || !detail::has(id, &opk_identity_v1::system_principal) || !id->system_principal) return nullptr;
    return id->system_principal(host_);
  }

  // A kernel service or another plugin's extension table, or nullptr.
  // REQUIRES: T is the struct documented for `id`.
  template <typename T>
  const T* extension(const char* id) const {
    if (!detail::has(host_, &opk_host::get_extension) || !host_->get_extension) return nullptr;
    return static_cast<const T*>(host_->get_extension(host_, id));
  }

  // Records the detail of a failure being returned to the kernel.
  void set_error(std::string_view message) const {
    if (detail::has(host_, &opk_host::set_error) && host_->set_error) {
      std::string m(message);
      host_->set_error(host_, m.c_str());
    }
  }

  // Frees memory the kernel handed over ("OWNERSHIP: free with opk_host.free").
  void free(void* ptr) const {
    if (ptr && detail::has(host_, &opk_host::free) && host_->free) host_->free(host_, ptr);
  }

  // Why the most recent failed kernel call on this thread failed, or ""
  // (kernels before 1.2 do not say).
  std::string last_error() const {
    if (!detail::has(host_, &opk_host::last_error) || !host_->last_error) return {};
    const char* e = host_->last_error(host_);
    return e ? std::string(e) : std::string();
  }

  uint32_t abi_minor() const { return host_ ? host_->abi_minor : 0; }
  std::string_view kernel_version() const { return detail::sv(host_->kernel_version); }
  const opk_host* raw() const { return host_; }

 private:
  const opk_host* host_;
};

// --------------------------------------------------------------------- Store

// This plugin's own tables in the kernel's store ("opk.store/1"). Not
// available where the kernel runs without a store (plugins list/check).
// Failures carry the status; the kernel logs the database's message to the
// plugin's logger.
class Store {
 public:
  using Param = std::optional<std::string>;
  explicit Store(const Host& host) : host_(host), s_(host.extension<opk_store_v1>(OPK_EXT_STORE)) {}

  bool available() const { return s_ != nullptr; }
  std::string_view dialect() const { return s_ ? detail::sv(s_->dialect(host_.raw())) : std::string_view(); }

  // Applies migrations not yet applied (versions 1, 2, 3 ...).
  Status migrate(const std::vector<opk_store_migration>& migrations) const {
    if (!s_) return unavailable();
    opk_status st = s_->migrate(host_.raw(), migrations.data(), static_cast<uint32_t>(migrations.size()));
    return result(st, "migrate");
  }
  // Runs one statement with $1..$n bound to `params`.
  Status execute(const std::string& sql, const std::vector<Param>& params = {}, int64_t* changed = nullptr) const {
    if (!s_) return unavailable();
    auto p = pointers(params);
    return result(s_->execute(host_.raw(), sql.c_str(), p.data(), static_cast<uint32_t>(p.size()), changed), "execute");
  }
  // Runs one query; rows as arrays of typed values (numbers, strings, null).
  // 1.2 kernels type the values; 1.1 kernels give every value as text.
  Status query(const std::string& sql, const std::vector<Param>& params, Json* rows) const {
    if (!s_) return unavailable();
    auto p = pointers(params);
    char* out = nullptr;
    const bool typed = detail::has(s_, &opk_store_v1::query_typed) && s_->query_typed;
    Status s = result(typed ? s_->query_typed(host_.raw(), sql.c_str(), p.data(), static_cast<uint32_t>(p.size()), &out)
                            : s_->query(host_.raw(), sql.c_str(), p.data(), static_cast<uint32_t>(p.size()), &out),
                      "query");
    return take(s, out, rows);
  }
  // One statement of a transaction.
  struct Statement {
    std::string sql;
    std::vector<Param> params;
  };
  // Runs `statements` in one transaction (all or nothing); *results gets
  // [{"changed": n, "rows": [...]}] per statement, RETURNING rows included.
  // UNSUPPORTED before ABI 1.2.
  Status transaction(const std::vector<Statement>& statements, Json* results) const {
    if (!s_) return unavailable();
    if (!detail::has(s_, &opk_store_v1::transaction) || !s_->transaction)
      return {OPK_ERR_UNSUPPORTED, "store transactions need a kernel with ABI 1.2"};
    std::vector<std::vector<const char*>> ptrs;
    std::vector<opk_store_statement> c;
    ptrs.reserve(statements.size());
    for (const auto& st : statements) {
      ptrs.push_back(pointers(st.params));
      c.push_back({st.sql.c_str(), ptrs.back().data(), static_cast<uint32_t>(ptrs.back().size())});
    }
    char* out = nullptr;
    Status s = result(s_->transaction(host_.raw(), c.data(), static_cast<uint32_t>(c.size()), &out), "transaction");
    return take(s, out, results);
  }
  // Runs one query; rows as a JSON array of arrays of strings and nulls.
  Status query_json(const std::string& sql, const std::vector<Param>& params, std::string* rows_json) const {
    if (!s_) return unavailable();
    auto p = pointers(params);
    char* out = nullptr;
    Status s = result(s_->query(host_.raw(), sql.c_str(), p.data(), static_cast<uint32_t>(p.size()), &out), "query");
    if (out) {
      *rows_json = out;
      host_.raw()->free(host_.raw(), out);
    }
    return s;
  }

 private:
  static std::vector<const char*> pointers(const std::vector<Param>& params) {
    std::vector<const char*> p;
    for (const auto& v : params) p.push_back(v ? v->c_str() : nullptr);
    return p;
  }
  static Status unavailable() { return {OPK_ERR_UNAVAILABLE, "the kernel's store is not available here"}; }
  // Parses the kernel's answer into *doc (also on failure, when it holds
  // {"error": ...}, whose message then replaces the generic one) and frees it.
  Status take(Status s, char* out, Json* doc) const {
    if (out == nullptr) return s;
    Json parsed = Json::parse(out, nullptr, false);
    host_.raw()->free(host_.raw(), out);
    if (parsed.is_discarded()) return s.is_ok() ? Status(OPK_ERR_INTERNAL, "store answer is not JSON") : s;
    if (!s.is_ok() && parsed.is_object() && parsed.contains("error") && parsed["error"].is_string())
      return {s.code(), "store: " + parsed["error"].get<std::string>()};
    if (doc) *doc = std::move(parsed);
    return s;
  }
  Status result(opk_status st, const char* what) const {
    if (st == OPK_OK) return Status::ok();
    const std::string why = host_.last_error();
    if (!why.empty()) return {st, std::string("store ") + what + ": " + why};
    return {st, std::string("store ") + what + " failed with status " + std::to_string(st) +
                    " (the plugin's log has the database's message)"};
  }
  const Host& host_;
  const opk_store_v1* s_;
};

// ----------------------------------------------------------------- RunContext

// One run of a job type. Valid during Job::run (and Job::cancel).
class RunContext {
 public:
  explicit RunContext(const opk_run_context* ctx) : c_(ctx) {}

  int64_t run_id() const { return c_->run_id; }
  int64_t parent_run_id() const { return c_->parent_run_id; }
  std::string_view job_type() const { return detail::sv(c_->job_type_id); }
  std::string_view scheduled_job() const { return detail::sv(c_->scheduled_job_id); }
  // Parameters as JSON text, validated against the type's schema.
  std::string_view params_json() const {
    return c_->params_json ? std::string_view(c_->params_json) : std::string_view("{}");
  }
  // Target tenant, empty for the whole installation.
  std::string_view target_tenant() const { return detail::sv(c_->target_tenant); }
  bool dry_run() const { return c_->dry_run != 0; }
  opk_trigger trigger() const { return c_->trigger; }
  int64_t range_start_ms() const { return c_->range_start_ms; }
  int64_t range_end_ms() const { return c_->range_end_ms; }
  std::string_view triggered_by() const {
    return c_->triggered_by ? detail::sv(c_->triggered_by->user_id) : std::string_view();
  }
  std::string_view reason() const { return detail::sv(c_->reason); }

  // The parameters as a document (validated against the type's schema by
  // the kernel before the run starts); an object, {} when none.
  const Json& params() const {
    if (!params_) {
      Json p = Json::parse(params_json(), nullptr, false);
      params_ = p.is_object() ? std::move(p) : Json::object();
    }
    return *params_;
  }
  // Parameter `key` as T, or `fallback` when absent or null. Throws
  // std::invalid_argument naming the key when it has another type (the
  // run then fails with that message).
  template <typename T>
  T param(std::string_view key, T fallback) const {
    const Json& p = params();
    auto it = p.find(std::string(key));
    if (it == p.end() || it->is_null()) return fallback;
    try {
      return it->get<T>();
    } catch (const Json::exception& e) {
      throw std::invalid_argument("parameter '" + std::string(key) + "': " + e.what());
    }
  }

  // Appends a line to the run's log.
  void log(Level level, std::string_view message) const {
    std::string m(message);
    if (c_->log) c_->log(c_, static_cast<opk_log_level>(level), m.c_str());
  }
  void info(std::string_view m) const { log(Level::info, m); }
  void warn(std::string_view m) const { log(Level::warn, m); }
  void error(std::string_view m) const { log(Level::error, m); }

  // Reports progress (0..100).
  void progress(double percent, std::string_view message = {}) const {
    std::string m(message);
    if (c_->progress) c_->progress(c_, percent, m.empty() ? nullptr : m.c_str());
  }
  // Sets the outcome the run completes with.
  void set_result(Outcome outcome, std::string_view summary = {}, int32_t exit_code = 0) const {
    std::string s(summary);
    if (c_->set_result)
      c_->set_result(c_, static_cast<opk_outcome>(outcome), exit_code, s.empty() ? nullptr : s.c_str());
  }
  // Attaches a JSON result document.
  void set_output_json(std::string_view json) const {
    std::string j(json);
    if (detail::has(c_, &opk_run_context::set_output_json) && c_->set_output_json) c_->set_output_json(c_, j.c_str());
  }
  // Attaches the run's result document (an object).
  void set_output(const Json& doc) const { set_output_json(doc.dump()); }
  // True once the run was asked to stop.
  bool cancelled() const { return c_->is_cancelled && c_->is_cancelled(c_) != 0; }

  // Waits `d` on the kernel's clock; returns Status::cancelled() at once
  // when the run is cancelled. Use it for pauses and back-off. Kernels
  // before 1.2 lack the call: then it sleeps in 50 ms slices, polling.
  Status wait(std::chrono::milliseconds d) const {
    if (detail::has(c_, &opk_run_context::wait) && c_->wait) {
      const opk_status st = c_->wait(c_, d.count());
      return st == OPK_OK ? Status::ok() : Status(st, st == OPK_ERR_CANCELLED ? "cancelled" : "wait failed");
    }
    const auto end = std::chrono::steady_clock::now() + d;
    while (!cancelled()) {
      const auto left = end - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) return Status::ok();
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
    }
    return Status::cancelled();
  }

  // Marks a named step; the step ends when the guard is destroyed (NORMAL)
  // or when end() is called.
  // A step of the run, begun when made. end() records its outcome. A step
  // destroyed without end() is never recorded as a success it may not have
  // been: left by an exception it ends ERROR; otherwise it stays open, and
  // the kernel ends it with the run's outcome (ERROR for a failed or
  // cancelled run), or NORMAL when the run begins its next step.
  class Step {
   public:
    Step(const opk_run_context* c, std::string_view id) : c_(c), exceptions_(std::uncaught_exceptions()) {
      std::string s(id);
      if (c_->step_begin) c_->step_begin(c_, s.c_str());
    }
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;
    ~Step() {
      if (!done_ && std::uncaught_exceptions() > exceptions_) end(Outcome::error, "ended by an exception");
    }
    void end(Outcome outcome, std::string_view summary = {}) {
      if (done_) return;
      done_ = true;
      std::string s(summary);
      if (c_->step_end) c_->step_end(c_, static_cast<opk_outcome>(outcome), s.empty() ? nullptr : s.c_str());
    }

   private:
    const opk_run_context* c_;
    int exceptions_;  // uncaught when the step began
    bool done_ = false;
  };
  [[nodiscard]] Step step(std::string_view id) const { return Step(c_, id); }

  const opk_run_context* raw() const { return c_; }

 private:
  const opk_run_context* c_;
  mutable std::optional<Json> params_;
};

// --------------------------------------------------------------- AlertContext

// Raise/clear alerts during AlertSource::evaluate.
class AlertContext {
 public:
  explicit AlertContext(const opk_alert_context* ctx) : c_(ctx) {}

  // Fields of one alert; empty strings are sent as NULL.
  struct Alert {
    opk_severity severity = OPK_SEVERITY_WARNING;
    std::string area, title, message, related_type, related_id, scope, details_json;
    std::string type;  // (ABI 1.3) kind of alert; empty = the source id
  };

  int64_t now_ms() const { return c_->now_ms; }
  Status raise(const Alert& a) const {
    auto z = [](const std::string& s) { return s.empty() ? nullptr : s.c_str(); };
    opk_alert c{};
    c.struct_size = sizeof c;
    c.severity = a.severity;
    c.area = z(a.area);
    c.title = z(a.title);
    c.message = z(a.message);
    c.related_type = z(a.related_type);
    c.related_id = z(a.related_id);
    c.scope = z(a.scope);
    c.details_json = z(a.details_json);
    c.type = z(a.type);
    opk_status s = c_->raise ? c_->raise(c_, &c) : OPK_ERR_UNSUPPORTED;
    return s == OPK_OK ? Status::ok() : Status(s, "raise refused");
  }
  Status clear(std::string_view related_type, std::string_view related_id) const {
    std::string t(related_type), i(related_id);
    opk_status s = c_->clear ? c_->clear(c_, t.c_str(), i.c_str()) : OPK_ERR_UNSUPPORTED;
    return s == OPK_OK ? Status::ok() : Status(s, "clear refused");
  }
  // (ABI 1.3) Raises the open alert's escalation level by one; UNSUPPORTED
  // on an older kernel.
  Status escalate(std::string_view related_type, std::string_view related_id, std::string_view reason) const {
    std::string t(related_type), i(related_id), r(reason);
    if (!detail::has(c_, &opk_alert_context::escalate) || !c_->escalate)
      return Status(OPK_ERR_UNSUPPORTED, "escalate: the kernel is older than ABI 1.3");
    opk_status s = c_->escalate(c_, t.c_str(), i.c_str(), r.c_str());
    return s == OPK_OK ? Status::ok() : Status(s, "escalate refused");
  }
  void log(Level level, std::string_view message) const {
    std::string m(message);
    if (c_->log) c_->log(c_, static_cast<opk_log_level>(level), m.c_str());
  }
  bool cancelled() const { return c_->is_cancelled && c_->is_cancelled(c_) != 0; }

 private:
  const opk_alert_context* c_;
};

// ---------------------------------------------------------- Request/Response

// An HTTP request lent to a route handler.
class Request {
 public:
  explicit Request(const opk_http_request* r) : r_(r) {}
  std::string_view method() const { return detail::sv(r_->method); }
  std::string_view path() const { return detail::sv(r_->path); }
  std::optional<std::string_view> path_param(std::string_view name) const {
    return find(r_->path_params, r_->path_param_count, name);
  }
  std::optional<std::string_view> query(std::string_view name) const { return find(r_->query, r_->query_count, name); }
  // REQUIRES: `name` in lower case.
  std::optional<std::string_view> header(std::string_view name) const {
    return find(r_->headers, r_->header_count, name);
  }
  std::string_view body() const {
    return r_->body.data ? std::string_view(reinterpret_cast<const char*>(r_->body.data), r_->body.size)
                         : std::string_view();
  }
  std::string_view user_id() const { return r_->principal ? detail::sv(r_->principal->user_id) : std::string_view(); }
  std::string_view role() const { return r_->principal ? detail::sv(r_->principal->role) : std::string_view(); }
  std::string_view scope() const { return r_->principal ? detail::sv(r_->principal->scope) : std::string_view(); }
  std::string_view remote_addr() const { return detail::sv(r_->remote_addr); }
  // The caller as the kernel issued it: pass it as the actor of kernel
  // services (opk.jobs/1, opk.audit/1). nullptr on anonymous routes.
  const opk_principal* principal() const { return r_->principal; }
  // Parses the body as JSON into *doc; INVALID_ARGUMENT saying where it is
  // malformed (the handler answers 400 with it).
  Status json_body(Json* doc) const {
    try {
      *doc = Json::parse(body());
      return Status::ok();
    } catch (const Json::parse_error& e) {
      return Status::invalid(std::string("request body is not valid JSON: ") + e.what());
    }
  }
  const opk_http_request* raw() const { return r_; }

 private:
  static std::optional<std::string_view> find(const opk_kv* kv, uint32_t n, std::string_view name) {
    for (uint32_t i = 0; i < n; ++i)
      if (kv[i].key && name == kv[i].key) return detail::sv(kv[i].value);
    return std::nullopt;
  }
  const opk_http_request* r_;
};

// The title of an HTTP error status in a problem answer: its reason phrase
// for 400, 403, 404, 409, 415, 422, 501 and 503, else "Internal Server Error".
inline const char* problem_title(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

// The HTTP status a plugin's API answers the failed status `s` with:
// INVALID_ARGUMENT `invalid` (400 or 422; 400 whatever `invalid` when the
// message starts with "request: ", a malformed request), PERMISSION 403,
// NOT_FOUND 404, CONFLICT 409, UNAVAILABLE 503, anything else 500.
inline int problem_status(const Status& s, int invalid = 400) {
  switch (s.code()) {
    case OPK_ERR_INVALID_ARGUMENT:
      return s.message().rfind("request: ", 0) == 0 ? 400 : invalid;
    case OPK_ERR_PERMISSION:
      return 403;
    case OPK_ERR_NOT_FOUND:
      return 404;
    case OPK_ERR_CONFLICT:
      return 409;
    case OPK_ERR_UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

// The response a route handler fills.
class Response {
 public:
  explicit Response(const opk_http_response* r) : r_(r) {}
  Response& status(int32_t code) {
    r_->set_status(r_, code);
    return *this;
  }
  Response& header(std::string_view name, std::string_view value) {
    std::string n(name), v(value);
    r_->add_header(r_, n.c_str(), v.c_str());
    return *this;
  }
  Response& body(std::string_view data) {
    r_->append_body(r_, data.data(), data.size());
    return *this;
  }
  // Sets content-type application/json and the body.
  Response& json(std::string_view data) { return header("content-type", "application/json").body(data); }
  // Sets content-type application/json and the document as the body.
  template <typename J>
  requires std::same_as<J, Json> Response& json(const J& doc) { return json(std::string_view(doc.dump())); }
  // Sends what was written so far and keeps streaming (Server-Sent Events).
  // CANCELLED once the client has gone; UNSUPPORTED where the server cannot
  // stream (ABI 1.0 kernels).
  Status flush() {
    if (!detail::has(r_, &opk_http_response::flush) || !r_->flush) return {OPK_ERR_UNSUPPORTED, "no streaming"};
    const opk_status st = r_->flush(r_);
    return st == OPK_OK ? Status::ok() : Status(st, "the client has gone");
  }

  // Answers an RFC 9457 problem: `code`, content-type
  // application/problem+json and the body {"type": "about:blank", "title":
  // problem_title(code), "status": code, "detail": detail} with the members
  // of `extra` (a JSON object, e.g. {"errors": [...]}) added.
  template <typename J = Json>
  requires std::same_as<J, Json> Response& problem(int32_t code, std::string_view detail,
                                                   const J& extra = J::object()) {
    J doc = {{"type", "about:blank"}, {"title", problem_title(code)}, {"status", code}, {"detail", detail}};
    for (const auto& [k, v] : extra.items()) doc[k] = v;
    return status(code).header("content-type", "application/problem+json").body(doc.dump());
  }
  // Answers the failed status `s` as a problem: problem_status(s, invalid)
  // and its message as the detail.
  Response& problem(const Status& s, int invalid = 400) { return problem(problem_status(s, invalid), s.message()); }

 private:
  const opk_http_response* r_;
};

// ------------------------------------------------------------ base classes

// Base of one kind of job. One object per type per plugin instance.
class Job {
 public:
  virtual ~Job() = default;
  // Does the work; return Status::cancelled() when stopping on request.
  virtual Status run(RunContext& run) = 0;
  // Called on another thread when the run is asked to stop; the default
  // relies on run() polling RunContext::cancelled().
  virtual void cancel(RunContext& /*run*/) {}
};

// Base of an alert source.
class AlertSource {
 public:
  virtual ~AlertSource() = default;
  virtual Status evaluate(AlertContext& ctx) = 0;
};

// Base of a notification channel.
class NotificationChannel {
 public:
  virtual ~NotificationChannel() = default;
  virtual Status send(const opk_notification& message) = 0;
  // (ABI 1.4; called when ChannelInfo::deliver is set) Delivers `message`
  // and says how it went in `result` (code, latency, retry_after_ms, flags,
  // detail; see opk_delivery_result). A failed Status whose `result` has no
  // detail gets the Status's message as its detail. The default calls send().
  virtual Status deliver(const opk_notification& message, opk_delivery_result& result) {
    (void)result;
    return send(message);
  }
  // (ABI 1.4; called when ChannelInfo::check_recipient is set) Checks a
  // recipient and its options (JSON; nullptr for none) without sending:
  // OK, or INVALID_ARGUMENT saying what is wrong (in the Status or in
  // result.detail).
  virtual Status check_recipient(std::string_view recipient, const char* options_json, opk_delivery_result& result) {
    (void)recipient, (void)options_json, (void)result;
    return Status::ok();
  }
};

// Writes `text` into a delivery result's detail, NUL-terminated, cut to fit
// on a UTF-8 character boundary.
inline void set_detail(opk_delivery_result& result, std::string_view text) {
  size_t n = std::min(text.size(), sizeof result.detail - 1);
  if (n < text.size())
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  text.copy(result.detail, n);
  result.detail[n] = '\0';
}

// Route handler signature.
using Handler = std::function<Status(const Request&, Response&)>;

// Base of a plugin instance: created at init with the host, destroyed at deinit.
class Plugin {
 public:
  explicit Plugin(Host host) : host_(host) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // Prepares the instance: read settings, check them, migrate tables.
  // A non-OK status refuses the plugin with its message (the kernel logs
  // it and goes on); start() is then not called. Called once, right after
  // the constructor and before the job, alert and channel objects exist.
  virtual Status init() { return Status::ok(); }
  // Starts serving (add routes here). Called once after all jobs exist.
  virtual Status start() { return Status::ok(); }
  // Stops serving; no run of this plugin is in flight.
  virtual void stop() {}
  // Returns an extension table this plugin provides to others, or nullptr.
  virtual const void* extension(std::string_view /*id*/) { return nullptr; }

  const Host& host() const { return host_; }

  // Adds an HTTP route for admin feature `feature`; call from start().
  // The pattern may contain {name} segments.
  // `permission` (e.g. "flags.write"): what the caller's role needs; the
  // kernel checks it (403). Empty: any authenticated caller.
  Status add_route(std::string_view feature, std::string_view method, std::string_view path, std::string_view summary,
                   Handler handler, uint64_t flags = 0, std::string_view permission = {}) {
    const auto* routes = host_.extension<opk_http_routes_v1>(OPK_EXT_HTTP_ROUTES);
    if (routes == nullptr || !routes->add_route) return {OPK_ERR_UNSUPPORTED, "no route service"};
    // A kernel before 1.1 would ignore the permission and serve the route
    // to every caller: refuse instead.
    if (!permission.empty() && host_.abi_minor() < 1)
      return {OPK_ERR_UNSUPPORTED, "route " + std::string(method) + " " + std::string(path) +
                                       " needs permission checks, which need a kernel with ABI 1.1"};
    handlers_.push_back(std::make_unique<Handler>(std::move(handler)));
    std::string f(feature), m(method), p(path), s(summary);
    opk_http_route r{};
    r.struct_size = sizeof r;
    r.feature_id = f.c_str();
    r.method = m.c_str();
    r.path = p.c_str();
    r.summary = s.c_str();
    r.flags = flags;
    r.route_data = handlers_.back().get();
    r.handle = &Plugin::handle_trampoline;
    std::string perm(permission);
    r.permission = perm.empty() ? nullptr : perm.c_str();
    opk_status st = routes->add_route(host_.raw(), &r);
    if (st != OPK_OK) {
      const std::string why = host_.last_error();
      return {st, why.empty() ? "route " + m + " " + p + " refused" : why};
    }
    return Status::ok();
  }

  // One route of an API object's table for add_api_routes: the method, the
  // path after the table's base, the summary, the permission it needs ("":
  // any authenticated caller) and the member function of `Api` answering it.
  template <typename Api>
  struct MemberRoute {
    const char* method;
    const char* path;
    const char* summary;
    const char* permission;
    Status (Api::*handler)(const Request&, Response&) const;
  };

  // Adds each of `routes` as add_route does, at `base` + its path, answered
  // by that member function of `api` (which the handlers keep alive); stops
  // at the first route refused and returns why. Call from start().
  template <typename Api>
  Status add_api_routes(std::string_view feature, const std::string& base, std::shared_ptr<const Api> api,
                        std::initializer_list<MemberRoute<Api>> routes) {
    for (const auto& r : routes) {
      auto handler = r.handler;
      Status s = add_route(
          feature, r.method, base + r.path, r.summary,
          [api, handler](const Request& rq, Response& rs) { return ((*api).*handler)(rq, rs); }, 0, r.permission);
      if (!s) return s;
    }
    return Status::ok();
  }

 private:
  static opk_status handle_trampoline(opk_plugin*, void* data, const opk_http_request* req,
                                      const opk_http_response* resp) noexcept;
  Host host_;
  std::vector<std::unique_ptr<Handler>> handlers_;
};

// ---------------------------------------------------------------- Manifest

// Describes a job type for Manifest::job().
struct JobInfo {
  std::string id, title, description, owner;
  uint64_t capabilities = 0;
  std::string params_schema_json;  // empty: no parameters
  std::string default_schedule;    // empty: on demand only
  uint64_t target_duration_ms = 0;
  uint64_t timeout_ms = 0;
  int32_t priority = 0;
  std::string worker_pool;                                   // empty: "default"
  std::vector<std::pair<std::string, std::string>> actions;  // step id, title
  std::vector<opk_translation> translations;                 // strings must be static
};

// Describes an alert source for Manifest::alert_source().
struct AlertSourceInfo {
  std::string id, title, description, area;
  uint64_t flags = 0;  // OPK_ALERT_PLATFORM_ONLY, OPK_ALERT_FULL_SWEEP
  std::string default_schedule;
  std::vector<opk_translation> translations;
  uint32_t clean_sweeps = 0;  // (ABI 1.3) full sweeps without an alert before it clears; 0 = 1
  int64_t timeout_ms = 0;     // (ABI 1.3) longest evaluation; 0 = the engine's default
};

// Describes an admin feature for Manifest::admin_feature().
struct FeatureInfo {
  std::string id, title, description;
  std::vector<opk_translation> translations;
  // Permissions the feature introduces (ABI 1.2): name, description.
  std::vector<std::pair<std::string, std::string>> permissions;
};

// Describes a notification channel.
struct ChannelInfo {
  std::string id, title, description;
  // (ABI 1.4) The channel implements deliver() / check_recipient(): the C
  // table gets them (a kernel before 1.4 calls send() only).
  bool deliver = false;
  bool check_recipient = false;
};

class Manifest;
namespace detail {
// What one plugin instance holds: the author's Plugin and one object per
// declared job type / alert source / channel.
struct Instance {
  std::unique_ptr<Plugin> plugin;
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<std::unique_ptr<AlertSource>> alerts;
  std::vector<std::unique_ptr<NotificationChannel>> channels;
};
template <typename T>
T* self_of(opk_plugin* p) {
  return reinterpret_cast<T*>(p);
}
}  // namespace detail

// Builds the manifest. Strings are copied into the builder, which lives for
// the life of the library, so the C structs point at stable memory.
class Manifest {
 public:
  Manifest(std::string id, std::string name, std::string version, std::string vendor, std::string description = {})
      : id_(std::move(id)),
        name_(std::move(name)),
        version_(std::move(version)),
        vendor_(std::move(vendor)),
        description_(std::move(description)) {}
  Manifest(Manifest&&) = default;

  // Declares a job type implemented by J (default-constructible or
  // constructible from Plugin&).
  template <typename J>
  Manifest& job(JobInfo info) {
    auto slot = std::make_unique<JobSlot>();
    slot->info = std::move(info);
    slot->make = [](Plugin& p) -> std::unique_ptr<Job> {
      if constexpr (std::is_constructible_v<J, Plugin&>)
        return std::make_unique<J>(p);
      else
        return std::make_unique<J>();
    };
    jobs_.push_back(std::move(slot));
    return *this;
  }
  template <typename A>
  Manifest& alert_source(AlertSourceInfo info) {
    auto slot = std::make_unique<AlertSlot>();
    slot->info = std::move(info);
    slot->make = [](Plugin& p) -> std::unique_ptr<AlertSource> {
      if constexpr (std::is_constructible_v<A, Plugin&>)
        return std::make_unique<A>(p);
      else
        return std::make_unique<A>();
    };
    alerts_.push_back(std::move(slot));
    return *this;
  }
  template <typename C>
  Manifest& channel(ChannelInfo info) {
    auto slot = std::make_unique<ChannelSlot>();
    slot->info = std::move(info);
    slot->make = [](Plugin& p) -> std::unique_ptr<NotificationChannel> {
      if constexpr (std::is_constructible_v<C, Plugin&>)
        return std::make_unique<C>(p);
      else
        return std::make_unique<C>();
    };
    channels_.push_back(std::move(slot));
    return *this;
  }
  Manifest& admin_feature(FeatureInfo info) {
    auto slot = std::make_unique<FeatureSlot>();
    slot->info = std::move(info);
    features_.push_back(std::move(slot));
    return *this;
  }
  // Declares an extension this plugin offers (returned by Plugin::extension).
  Manifest& provides(std::string extension_id) {
    provides_.push_back(std::move(extension_id));
    return *this;
  }
  // Declares an extension this plugin needs.
  Manifest& requires_extension(std::string extension_id, bool optional = false) {
    requires_.push_back({std::move(extension_id), optional});
    return *this;
  }

  // The C view; valid while this object lives. Built once.
  const opk_manifest* c_manifest();
  // The plugin id.
  const std::string& id() const { return id_; }

  // Creates the per-instance objects for `plugin`.
  Status populate(detail::Instance& inst) {
    for (auto& j : jobs_) inst.jobs.push_back(j->make(*inst.plugin));
    for (auto& a : alerts_) inst.alerts.push_back(a->make(*inst.plugin));
    for (auto& c : channels_) inst.channels.push_back(c->make(*inst.plugin));
    return Status::ok();
  }

 private:
  static const char* z(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

  struct JobSlot {
    JobInfo info;
    std::function<std::unique_ptr<Job>(Plugin&)> make;
    std::vector<opk_action> actions;
    opk_job_type c{};
  };
  struct AlertSlot {
    AlertSourceInfo info;
    std::function<std::unique_ptr<AlertSource>(Plugin&)> make;
    opk_alert_source c{};
  };
  struct ChannelSlot {
    ChannelInfo info;
    std::function<std::unique_ptr<NotificationChannel>(Plugin&)> make;
    opk_notification_channel c{};
  };
  struct FeatureSlot {
    FeatureInfo info;
    std::vector<opk_permission> permissions;
    opk_admin_feature c{};
  };
  template <typename Vec, typename C>
  static size_t index_of(const Vec& v, const C* self) {
    for (size_t i = 0; i < v.size(); ++i)
      if (&v[i]->c == self) return i;
    return v.size();
  }

  static opk_status report(opk_plugin* p, const Status& s) noexcept;
  static opk_status run_trampoline(opk_plugin* p, const opk_job_type* self, const opk_run_context* run) noexcept;
  static void cancel_trampoline(opk_plugin* p, const opk_job_type* self, const opk_run_context* run) noexcept;
  static opk_status evaluate_trampoline(opk_plugin* p, const opk_alert_source* self,
                                        const opk_alert_context* ctx) noexcept;
  static opk_status send_trampoline(opk_plugin* p, const opk_notification_channel* self,
                                    const opk_notification* n) noexcept;
  static opk_status deliver_trampoline(opk_plugin* p, const opk_notification_channel* self, const opk_notification* n,
                                       opk_delivery_result* result) noexcept;
  static opk_status check_recipient_trampoline(opk_plugin* p, const opk_notification_channel* self,
                                               const char* recipient, const char* options_json,
                                               opk_delivery_result* result) noexcept;

  std::string id_, name_, version_, vendor_, description_;
  std::vector<std::unique_ptr<JobSlot>> jobs_;
  std::vector<std::unique_ptr<AlertSlot>> alerts_;
  std::vector<std::unique_ptr<ChannelSlot>> channels_;
  std::vector<std::unique_ptr<FeatureSlot>> features_;
  std::vector<std::string> provides_;
  std::vector<std::pair<std::string, bool>> requires_;
  // C arrays handed to the kernel.
  std::vector<const opk_job_type*> job_ptrs_;
  std::vector<const opk_alert_source*> alert_ptrs_;
  std::vector<const opk_notification_channel*> channel_ptrs_;
  std::vector<const opk_admin_feature*> feature_ptrs_;
  std::vector<const char*> provides_ptrs_;
  std::vector<opk_requirement> requires_c_;
  opk_manifest c_{};
  bool built_ = false;

 public:
  // The single manifest of this library (set by OPK_PLUGIN).
  static Manifest*& current() {
    static Manifest* m = nullptr;
    return m;
  }
};

inline const opk_manifest* Manifest::c_manifest() {
  if (built_) return &c_;
  for (auto& j : jobs_) {
    for (auto& [id, title] : j->info.actions) j->actions.push_back({id.c_str(), title.c_str()});
    auto& c = j->c;
    c.struct_size = sizeof c;
    c.id = z(j->info.id);
    c.title = z(j->info.title);
    c.description = z(j->info.description);
    c.owner = z(j->info.owner);
    c.capabilities = j->info.capabilities;
    c.params_schema_json = z(j->info.params_schema_json);
    c.default_schedule = z(j->info.default_schedule);
    c.target_duration_ms = j->info.target_duration_ms;
    c.timeout_ms = j->info.timeout_ms;
    c.priority = j->info.priority;
    c.worker_pool = z(j->info.worker_pool);
    c.actions = j->actions.empty() ? nullptr : j->actions.data();
    c.action_count = static_cast<uint32_t>(j->actions.size());
    c.translations = j->info.translations.empty() ? nullptr : j->info.translations.data();
    c.translation_count = static_cast<uint32_t>(j->info.translations.size());
    c.run = &Manifest::run_trampoline;
    c.cancel = (j->info.capabilities & OPK_JOB_CAP_CANCEL) ? &Manifest::cancel_trampoline : nullptr;
    job_ptrs_.push_back(&c);
  }
  for (auto& a : alerts_) {
    auto& c = a->c;
    c.struct_size = sizeof c;
    c.id = z(a->info.id);
    c.title = z(a->info.title);
    c.description = z(a->info.description);
    c.area = z(a->info.area);
    c.flags = a->info.flags;
    c.default_schedule = z(a->info.default_schedule);
    c.translations = a->info.translations.empty() ? nullptr : a->info.translations.data();
    c.translation_count = static_cast<uint32_t>(a->info.translations.size());
    c.evaluate = &Manifest::evaluate_trampoline;
    c.clean_sweeps = a->info.clean_sweeps;
    c.timeout_ms = a->info.timeout_ms;
    alert_ptrs_.push_back(&c);
  }
  for (auto& ch : channels_) {
    auto& c = ch->c;
    c.struct_size = sizeof c;
    c.id = z(ch->info.id);
    c.title = z(ch->info.title);
    c.description = z(ch->info.description);
    c.send = &Manifest::send_trampoline;
    c.deliver = ch->info.deliver ? &Manifest::deliver_trampoline : nullptr;
    c.check_recipient = ch->info.check_recipient ? &Manifest::check_recipient_trampoline : nullptr;
    channel_ptrs_.push_back(&c);
  }
  for (auto& f : features_) {
    auto& c = f->c;
    c.struct_size = sizeof c;
    c.id = z(f->info.id);
    c.title = z(f->info.title);
    c.description = z(f->info.description);
    c.translations = f->info.translations.empty() ? nullptr : f->info.translations.data();
    c.translation_count = static_cast<uint32_t>(f->info.translations.size());
    for (auto& [name, description] : f->info.permissions) f->permissions.push_back({name.c_str(), description.c_str()});
    c.permissions = f->permissions.empty() ? nullptr : f->permissions.data();
    c.permission_count = static_cast<uint32_t>(f->permissions.size());
    feature_ptrs_.push_back(&c);
  }
  for (auto& p : provides_) provides_ptrs_.push_back(p.c_str());
  for (auto& [id, optional] : requires_) requires_c_.push_back({id.c_str(), optional ? 1u : 0u});

  c_.struct_size = sizeof c_;
  c_.id = z(id_);
  c_.name = z(name_);
  c_.version = z(version_);
  c_.vendor = z(vendor_);
  c_.description = z(description_);
  c_.job_types = job_ptrs_.empty() ? nullptr : job_ptrs_.data();
  c_.job_type_count = static_cast<uint32_t>(job_ptrs_.size());
  c_.alert_sources = alert_ptrs_.empty() ? nullptr : alert_ptrs_.data();
  c_.alert_source_count = static_cast<uint32_t>(alert_ptrs_.size());
  c_.admin_features = feature_ptrs_.empty() ? nullptr : feature_ptrs_.data();
  c_.admin_feature_count = static_cast<uint32_t>(feature_ptrs_.size());
  c_.notification_channels = channel_ptrs_.empty() ? nullptr : channel_ptrs_.data();
  c_.notification_channel_count = static_cast<uint32_t>(channel_ptrs_.size());
  c_.provides = provides_ptrs_.empty() ? nullptr : provides_ptrs_.data();
  c_.provides_count = static_cast<uint32_t>(provides_ptrs_.size());
  c_.requirements = requires_c_.empty() ? nullptr : requires_c_.data();
  c_.requirement_count = static_cast<uint32_t>(requires_c_.size());
  built_ = true;
  return &c_;
}

inline Settings Host::settings() const {
  const Manifest* m = Manifest::current();
  return Settings(*this, m ? m->id() : std::string("?"));
}

// ---------------------------------------------------------------- Audit

// One row of the audit trail written by a plugin (opk.audit/1).
struct AuditEntry {
  std::string action;  // "<area>.<verb>", e.g. "flags.update"
  std::string target;  // "flag:checkout-v2"
  std::string reason;  // the operator's reason, if any
  Json before;         // the target before and after; null when not applicable
  Json after;
  std::string outcome = "success";  // "success", "refused" or "failed"
  std::string source;               // client address, if any
};

// The kernel's audit trail, for admin features (kernels with ABI 1.2).
class Audit {
 public:
  explicit Audit(const Host& host) : host_(host), a_(host.extension<opk_audit_v1>(OPK_EXT_AUDIT)) {}
  bool available() const { return a_ != nullptr && a_->record != nullptr; }
  // Appends a row for `actor` (a request's principal or the plugin's
  // system principal), durable when it returns.
  Status record(const opk_principal* actor, const AuditEntry& e) const {
    if (!available()) return {OPK_ERR_UNSUPPORTED, "the audit service needs a kernel with ABI 1.2"};
    const std::string before = e.before.is_null() ? std::string() : e.before.dump();
    const std::string after = e.after.is_null() ? std::string() : e.after.dump();
    opk_audit_entry c{};
    c.struct_size = sizeof c;
    c.actor = actor;
    c.action = e.action.c_str();
    c.target = e.target.c_str();
    c.reason = e.reason.empty() ? nullptr : e.reason.c_str();
    c.before_json = before.empty() ? nullptr : before.c_str();
    c.after_json = after.empty() ? nullptr : after.c_str();
    c.outcome = e.outcome.empty() ? nullptr : e.outcome.c_str();
    c.source = e.source.empty() ? nullptr : e.source.c_str();
    const opk_status st = a_->record(host_.raw(), &c);
    if (st == OPK_OK) return Status::ok();
    const std::string why = host_.last_error();
    return {st, why.empty() ? "audit row for " + e.action + " on " + e.target + " refused" : why};
  }

 private:
  const Host& host_;
  const opk_audit_v1* a_;
};

// ---------------------------------------------------------------- Metrics

// A plugin's Prometheus metrics through opk.metrics/1 (kernels with ABI
// 1.5): collectors added in start() give the current values of the plugin's
// own metrics (names starting "opskernel_") to every scrape of /metrics.
// Keep the Metrics object as long as the plugin (a member): the kernel
// calls its collectors until remove() or until the plugin stops.
// Thread-safety: add and remove from start/stop; collectors run on any
// thread, possibly at once.
class Metrics {
 public:
  // Appends whole lines of the Prometheus text format to *text.
  using Collector = std::function<Status(std::string* text)>;

  explicit Metrics(const Host& host) : host_(host), m_(host.extension<opk_metrics_v1>(OPK_EXT_METRICS)) {}
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  bool available() const { return m_ != nullptr && m_->add_collector != nullptr; }

  // Adds collector `name` ([a-z0-9_-]{1,64}, unique within the plugin).
  Status add(std::string_view name, Collector collector) {
    if (!available()) return {OPK_ERR_UNSUPPORTED, "the metrics service needs a kernel with ABI 1.5"};
    collectors_.push_back(std::make_unique<Entry>(Entry{host_, std::move(collector)}));
    const std::string n(name);
    const opk_status st = m_->add_collector(host_.raw(), n.c_str(), &Metrics::trampoline, collectors_.back().get());
    if (st == OPK_OK) return Status::ok();
    collectors_.pop_back();
    const std::string why = host_.last_error();
    return {st, why.empty() ? "metrics collector " + n + " refused" : why};
  }
  // Removes collector `name`, once the calls into it have returned.
  Status remove(std::string_view name) {
    if (!available()) return {OPK_ERR_UNSUPPORTED, "the metrics service needs a kernel with ABI 1.5"};
    const std::string n(name);
    const opk_status st = m_->remove_collector(host_.raw(), n.c_str());
    return st == OPK_OK ? Status::ok() : Status(st, "metrics collector " + n + " not removed");
  }
  // Every plugin's collectors' text (for the plugin that serves /metrics).
  Status collect(std::string* text) const {
    if (!available()) return {OPK_ERR_UNSUPPORTED, "the metrics service needs a kernel with ABI 1.5"};
    char* out = nullptr;
    const opk_status st = m_->collect(host_.raw(), &out);
    if (st != OPK_OK) return {st, "metrics not collected"};
    *text = out ? out : "";
    if (out) host_.free(out);
    return Status::ok();
  }

  // One sample line: name{k="v",...} value, the label values escaped.
  static std::string sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
                            double value) {
    std::string line(name);
    if (!labels.empty()) {
      line += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        line += (i ? "," : "") + labels[i].first + "=\"";
        for (char c : labels[i].second) {
          if (c == '\n') {
            line += "\\n";
            continue;
          }
          if (c == '"' || c == '\\') line += '\\';
          line += c;
        }
        line += '"';
      }
      line += '}';
    }
    char number[32];
    std::snprintf(number, sizeof number, "%.17g", value);
    return line + " " + number + "\n";
  }

 private:
  struct Entry {
    Host host;
    Collector fn;
  };
  static opk_status trampoline(void* user_data, const opk_metrics_writer* out) noexcept;

  Host host_;
  const opk_metrics_v1* m_;
  std::vector<std::unique_ptr<Entry>> collectors_;
};

// ---------------------------------------------------------------- Cache

// The kernel's in-process cache through opk.cache/1 (kernels with ABI 1.7):
// the plugin's own namespace of keys, each value expiring after a TTL on the
// kernel's clock, all plugins under one memory bound (docs/cache.md).
// Thread-safe; cheap to copy.
class Cache {
 public:
  explicit Cache(const Host& host) : host_(host), c_(host.extension<opk_cache_v1>(OPK_EXT_CACHE)) {}

  bool available() const { return c_ != nullptr && OPK_HAS_MEMBER(opk_cache_v1, c_->struct_size, purge_plugin); }

  // The value of `key`; NOT_FOUND when there is none or it expired.
  Status get(std::string_view key, std::string* value) const {
    if (!available()) return unsupported();
    char* out = nullptr;
    size_t size = 0;
    const std::string k(key);
    const opk_status st = c_->get(host_.raw(), k.c_str(), &out, &size);
    if (st != OPK_OK) return {st, st == OPK_ERR_NOT_FOUND ? "key '" + k + "' is not cached" : why("get")};
    if (value) value->assign(out ? out : "", size);
    if (out) host_.free(out);
    return Status::ok();
  }
  // Stores `value` under `key` for `ttl_ms` (0: until evicted).
  Status put(std::string_view key, std::string_view value, int64_t ttl_ms) const {
    if (!available()) return unsupported();
    const std::string k(key);
    const opk_status st = c_->put(host_.raw(), k.c_str(), value.data(), value.size(), ttl_ms);
    return st == OPK_OK ? Status::ok() : Status(st, why("put"));
  }
  // Removes `key`; NOT_FOUND when there is none.
  Status remove(std::string_view key) const {
    if (!available()) return unsupported();
    const std::string k(key);
    const opk_status st = c_->remove(host_.raw(), k.c_str());
    return st == OPK_OK ? Status::ok() : Status(st, "key '" + k + "' is not cached");
  }
  // Removes (or with `dry_run` counts) the plugin's keys matching glob
  // `pattern`; *count gets how many.
  Status purge(std::string_view pattern, bool dry_run, uint64_t* count) const {
    if (!available()) return unsupported();
    const std::string p(pattern);
    const opk_status st = c_->purge(host_.raw(), p.c_str(), dry_run ? 1 : 0, count);
    return st == OPK_OK ? Status::ok() : Status(st, why("purge"));
  }
  // For an admin feature: every namespace's counters as JSON, for `actor`
  // holding cache.read.
  Status stats(const opk_principal* actor, std::string* json) const {
    if (!available()) return unsupported();
    char* out = nullptr;
    const opk_status st = c_->stats(host_.raw(), actor, &out);
    if (st != OPK_OK) return {st, why("stats")};
    if (json) *json = out ? out : "";
    if (out) host_.free(out);
    return Status::ok();
  }
  // For an admin feature: purge (or count) in plugin `plugin_id`'s
  // namespace, for `actor` holding cache.purge.
  Status purge_plugin(const opk_principal* actor, std::string_view plugin_id, std::string_view pattern, bool dry_run,
                      uint64_t* count) const {
    if (!available()) return unsupported();
    const std::string id(plugin_id), p(pattern);
    const opk_status st = c_->purge_plugin(host_.raw(), actor, id.c_str(), p.c_str(), dry_run ? 1 : 0, count);
    return st == OPK_OK ? Status::ok() : Status(st, why("purge"));
  }

 private:
  static Status unsupported() { return {OPK_ERR_UNSUPPORTED, "the cache service needs a kernel with ABI 1.7"}; }
  std::string why(const char* what) const {
    std::string w = host_.last_error();
    return w.empty() ? std::string("cache ") + what + " failed" : w;
  }

  Host host_;
  const opk_cache_v1* c_;
};

namespace detail {
// Runs `fn`, turning any exception into a status and a message for the kernel.
template <typename Fn>
opk_status guarded(const Host& host, Fn&& fn) noexcept {
  try {
    Status s = fn();
    if (!s.is_ok()) {
      host.set_error(s.message());
      return s.code() == OPK_OK ? OPK_ERR_FAILED : s.code();
    }
    return OPK_OK;
  } catch (const std::exception& e) {
    host.set_error(std::string("exception: ") + e.what());
  } catch (...) {
    host.set_error("unknown exception");
  }
  return OPK_ERR_FAILED;
}
}  // namespace detail

inline opk_status Manifest::run_trampoline(opk_plugin* p, const opk_job_type* self,
                                           const opk_run_context* run) noexcept {
  auto* inst = detail::self_of<detail::Instance>(p);
  Manifest* m = current();
  size_t i = index_of(m->jobs_, self);
  if (i >= inst->jobs.size()) return OPK_ERR_INTERNAL;
  RunContext ctx(run);
  try {
    Status s = inst->jobs[i]->run(ctx);
    if (!s.is_ok() && s.code() != OPK_ERR_CANCELLED) ctx.error(s.message());
    return s.is_ok() ? OPK_OK : s.code();
  } catch (const std::exception& e) {
    ctx.error(std::string("exception: ") + e.what());
  } catch (...) {
    ctx.error("unknown exception");
  }
  return OPK_ERR_FAILED;
}

inline void Manifest::cancel_trampoline(opk_plugin* p, const opk_job_type* self, const opk_run_context* run) noexcept {
  auto* inst = detail::self_of<detail::Instance>(p);
  size_t i = index_of(current()->jobs_, self);
  if (i >= inst->jobs.size()) return;
  RunContext ctx(run);
  try {
    inst->jobs[i]->cancel(ctx);
  } catch (...) {
    // A cancel hook must not fail; the run's is_cancelled flag is already set.
  }
}

inline opk_status Manifest::evaluate_trampoline(opk_plugin* p, const opk_alert_source* self,
                                                const opk_alert_context* c) noexcept {
  auto* inst = detail::self_of<detail::Instance>(p);
  size_t i = index_of(current()->alerts_, self);
  if (i >= inst->alerts.size()) return OPK_ERR_INTERNAL;
  AlertContext ctx(c);
  return detail::guarded(inst->plugin->host(), [&] { return inst->alerts[i]->evaluate(ctx); });
}

inline opk_status Manifest::send_trampoline(opk_plugin* p, const opk_notification_channel* self,
                                            const opk_notification* n) noexcept {
  auto* inst = detail::self_of<detail::Instance>(p);
  size_t i = index_of(current()->channels_, self);
  if (i >= inst->channels.size() || n == nullptr) return OPK_ERR_INTERNAL;
  return detail::guarded(inst->plugin->host(), [&] { return inst->channels[i]->send(*n); });
}

namespace detail {
// Runs a channel call that reports in `result`: an exception or a failed
// Status without a detail leaves its message there too.
template <typename Fn>
opk_status reported(const Host& host, opk_delivery_result* result, Fn&& fn) noexcept {
  std::string message;
  const opk_status st = guarded(host, [&] {
    Status s = fn();
    if (!s.is_ok()) message = s.message();
    return s;
  });
  if (st != OPK_OK && result->detail[0] == '\0')
    set_detail(*result, message.empty() ? std::string_view("the channel failed without a detail") : message);
  return st;
}
}  // namespace detail

inline opk_status Manifest::deliver_trampoline(opk_plugin* p, const opk_notification_channel* self,
                                               const opk_notification* n, opk_delivery_result* result) noexcept {
  auto* inst = detail::self_of<detail::Instance>(p);
  size_t i = index_of(current()->channels_, self);
  if (i >= inst->channels.size() || n == nullptr || result == nullptr) return OPK_ERR_INTERNAL;
  return detail::reported(inst->plugin->host(), result, [&] { return inst->channels[i]->deliver(*n, *result); });
}

inline opk_status Manifest::check_recipient_trampoline(opk_plugin* p, const opk_notification_channel* self,
                                                       const char* recipient, const char* options_json,
                                                       opk_delivery_result* result) noexcept {
  auto* inst = detail::self_of<detail::Instance>(p);
  size_t i = index_of(current()->channels_, self);
  if (i >= inst->channels.size() || result == nullptr) return OPK_ERR_INTERNAL;
  return detail::reported(inst->plugin->host(), result, [&] {
    return inst->channels[i]->check_recipient(recipient ? recipient : "", options_json, *result);
  });
}

inline opk_status Metrics::trampoline(void* user_data, const opk_metrics_writer* out) noexcept {
  auto* e = static_cast<Entry*>(user_data);
  return detail::guarded(e->host, [&] {
    std::string text;
    Status s = e->fn(&text);
    if (s && out && out->append) out->append(out, text.c_str());
    return s;
  });
}

inline opk_status Plugin::handle_trampoline(opk_plugin* p, void* data, const opk_http_request* req,
                                            const opk_http_response* resp) noexcept {
  auto* inst = detail::self_of<detail::Instance>(p);
  auto* handler = static_cast<Handler*>(data);
  Request rq(req);
  Response rs(resp);
  return detail::guarded(inst->plugin->host(), [&] { return (*handler)(rq, rs); });
}

namespace detail {
// The C entry functions for plugin class P.
template <typename P>
struct Entry {
  static opk_status init(const opk_host* host, opk_plugin** out) noexcept {
    Host h(host);
    if (out == nullptr) return OPK_ERR_INVALID_ARGUMENT;
    auto inst = std::make_unique<Instance>();
    opk_status s = guarded(h, [&] {
      inst->plugin = std::make_unique<P>(h);
      Status s = inst->plugin->init();
      if (!s) return s;
      return Manifest::current()->populate(*inst);
    });
    if (s != OPK_OK) return s;
    *out = reinterpret_cast<opk_plugin*>(inst.release());
    return OPK_OK;
  }
  static opk_status start(opk_plugin* p) noexcept {
    auto* inst = self_of<Instance>(p);
    return guarded(inst->plugin->host(), [&] { return inst->plugin->start(); });
  }
  static void stop(opk_plugin* p) noexcept {
    auto* inst = self_of<Instance>(p);
    try {
      inst->plugin->stop();
    } catch (const std::exception& e) {
      inst->plugin->host().error(std::string("stop threw: ") + e.what());
    } catch (...) {
      inst->plugin->host().error("stop threw");
    }
  }
  static void deinit(opk_plugin* p) noexcept {
    auto* inst = self_of<Instance>(p);
    try {
      inst->jobs.clear();
      inst->alerts.clear();
      inst->channels.clear();
      inst->plugin.reset();
    } catch (...) {
    }
    delete inst;
  }
  static const void* extension(opk_plugin* p, const char* id) noexcept {
    auto* inst = self_of<Instance>(p);
    try {
      return id ? inst->plugin->extension(id) : nullptr;
    } catch (...) {
      return nullptr;
    }
  }
  static const opk_manifest* manifest(Manifest (*describe)()) noexcept {
    // A static object, not a heap one: it is destroyed when the library is
    // unloaded, so nothing leaks across load/unload cycles.
    static std::optional<Manifest> m = [&]() -> std::optional<Manifest> {
      try {
        return describe();
      } catch (...) {
        return std::nullopt;
      }
    }();
    if (!m) return nullptr;
    Manifest::current() = &*m;
    return m->c_manifest();
  }
};
}  // namespace detail

}  // namespace opk

#ifndef OPK_REQUIRED_HOST_MINOR
// Lowest kernel ABI minor the plugin needs; raise it when using newer calls.
#define OPK_REQUIRED_HOST_MINOR 0
#endif

// Emits the library's exported entry. `PluginClass` derives from opk::Plugin
// and is constructible from opk::Host; `describe` is a function returning the
// opk::Manifest. Use once per library.
#define OPK_PLUGIN(PluginClass, describe)                              \
  namespace {                                                          \
  const opk_manifest* opk_get_manifest_() noexcept {                   \
    return ::opk::detail::Entry<PluginClass>::manifest(&describe);     \
  }                                                                    \
  opk_status opk_init_(const opk_host* h, opk_plugin** out) noexcept { \
    if (opk_get_manifest_() == nullptr) return OPK_ERR_INTERNAL;       \
    return ::opk::detail::Entry<PluginClass>::init(h, out);            \
  }                                                                    \
  }                                                                    \
  extern "C" OPK_EXPORT const opk_plugin_entry opk_plugin_entry_v1 = { \
      OPK_ABI_MAJOR,                                                   \
      OPK_ABI_MINOR,                                                   \
      sizeof(opk_plugin_entry),                                        \
      OPK_REQUIRED_HOST_MINOR,                                         \
      &opk_get_manifest_,                                              \
      &opk_init_,                                                      \
      &::opk::detail::Entry<PluginClass>::start,                       \
      &::opk::detail::Entry<PluginClass>::stop,                        \
      &::opk::detail::Entry<PluginClass>::deinit,                      \
      &::opk::detail::Entry<PluginClass>::extension,                   \
  }

#endif  // OPSKERNEL_OPK_HPP
