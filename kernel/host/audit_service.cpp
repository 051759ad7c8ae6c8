#include "host/audit_service.h"

#include <opskernel/json.hpp>

#include <algorithm>
#include <cstring>

#include "config/config.h"
#include "host/host.h"
#include "host/principals.h"
#include "jobs/run.h"
#include "store/store.h"

namespace opk::host {
namespace {

constexpr size_t kMaxTarget = 512;
constexpr size_t kMaxReason = 2000;
constexpr size_t kMaxDocument = 64 * 1024;

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

}  // namespace

AuditService::AuditService(store::Store& store, const Principals& principals) : store_(store), principals_(principals) {
  ext_.struct_size = sizeof ext_;
  ext_.record = &cb_record;
}

Status AuditService::row_of(const std::string& plugin_id, const opk_audit_entry& in, store::AuditRow* row) const {
  opk_audit_entry e{};
  std::memcpy(&e, &in, std::min<size_t>(in.struct_size, sizeof e));
  if (e.actor == nullptr || !principals_.issued(e.actor))
    return Status::permission("actor: not a principal the kernel issued (use the request's, or system_principal)");
  const std::string action = e.action ? e.action : "";
  if (!config::valid_permission(action))
    return Status::invalid("action: '" + action + "' is not <area>.<verb> (e.g. flags.update)");
  const std::string target = e.target ? e.target : "";
  if (target.empty() || target.size() > kMaxTarget || has_control(target))
    return Status::invalid("target: required, at most " + std::to_string(kMaxTarget) +
                           " bytes, without control characters");
  const std::string reason = e.reason ? e.reason : "";
  if (reason.size() > kMaxReason)
    return Status::invalid("reason: longer than " + std::to_string(kMaxReason) + " bytes");
  const std::string outcome = e.outcome ? e.outcome : "success";
  if (outcome != "success" && outcome != "refused" && outcome != "failed")
    return Status::invalid("outcome: '" + outcome + "' is not success, refused or failed");
  nlohmann::json details = {{"plugin", plugin_id}};
  for (auto [name, text] : {std::pair{"before", e.before_json}, std::pair{"after", e.after_json}}) {
    if (text == nullptr) continue;
    if (std::strlen(text) > kMaxDocument)
      return Status::invalid(std::string(name) + "_json: longer than " + std::to_string(kMaxDocument) + " bytes");
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded()) return Status::invalid(std::string(name) + "_json: not valid JSON");
    details[name] = std::move(doc);
  }
  std::string source = e.source ? e.source : "";
  if (source.size() > 256 || has_control(source))
    return Status::invalid("source: at most 256 bytes, no control characters");
  if (source.empty()) source = "plugin:" + plugin_id;
  row->time_ms = jobs::now_ms();
  row->actor = e.actor->user_id ? e.actor->user_id : "";
  row->role = e.actor->role ? e.actor->role : "";
  row->action = action;
  row->target = target;
  row->reason = reason;
  row->params_json = details.dump();
  row->outcome = outcome;
  row->source = source;
  return Status::ok();
}

opk_status AuditService::cb_record(const opk_host* host, const opk_audit_entry* entry) {
  auto* ph = PluginHost::from(host);
  AuditService* self = ph ? ph->audit_service() : nullptr;
  if (!self || !entry) return OPK_ERR_INVALID_ARGUMENT;
  store::AuditRow row;
  Status s = self->row_of(ph->plugin_id(), *entry, &row);
  if (s) s = self->store_.audit({row});
  if (!s) {
    report_host_error("audit: " + s.message());
    return s.code();
  }
  return OPK_OK;
}

}  // namespace opk::host
