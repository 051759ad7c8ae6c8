#include "host/refusal_audit.h"

namespace opk::host {

std::string cut_text(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  size_t at = max;
  // Back to the start of a character: never half of one.
  while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
  return text.substr(0, at) + "... (" + std::to_string(text.size()) + " bytes)";
}

namespace {
// The address without its port: "127.0.0.1:5000" -> "127.0.0.1",
// "[::1]:5000" -> "[::1]".
std::string address_of(const std::string& source) {
  const size_t colon = source.rfind(':');
  if (colon == std::string::npos) return source;
  if (source.front() == '[') return source.substr(0, source.rfind(']') + 1);
  if (source.find(':') != colon) return source;  // bare IPv6, no port
  return source.substr(0, colon);
}

// "401 the token is not known" -> "401".
std::string status_of(const std::string& outcome) {
  static const std::string kPrefix = "refused: ";
  const std::string rest = outcome.rfind(kPrefix, 0) == 0 ? outcome.substr(kPrefix.size()) : outcome;
  return rest.substr(0, rest.find(' '));
}
}  // namespace

store::AuditRow RefusalAudit::summary(const std::string& address, const Window& w, int64_t now_ms) {
  store::AuditRow a;
  a.time_ms = now_ms;
  a.actor = w.last.actor;
  a.role = w.last.role;
  a.action = "http refused";
  a.target = address;
  std::string counts;
  for (const auto& [status, n] : w.by_outcome)
    counts += (counts.empty() ? "" : ", ") + status + " x" + std::to_string(n);
  a.outcome = "refused: " + std::to_string(w.unrecorded) + " more request(s) from " + address + " within " +
              std::to_string((now_ms - w.start_ms + 999) / 1000) + " s, not recorded one by one (" + counts + ")";
  a.source = w.last.source;
  return a;
}

void RefusalAudit::close_ended(int64_t now_ms, std::vector<store::AuditRow>* out) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (now_ms - it->second.start_ms < limits_.window_ms) {
      ++it;
      continue;
    }
    if (it->second.unrecorded > 0) out->push_back(summary(it->first, it->second, now_ms));
    it = windows_.erase(it);
  }
}

std::vector<store::AuditRow> RefusalAudit::refused(store::AuditRow row, int64_t now_ms) {
  std::vector<store::AuditRow> out;
  row.target = cut_text(row.target, limits_.max_field_bytes);
  row.outcome = cut_text(row.outcome, limits_.max_field_bytes);
  row.actor = cut_text(row.actor, limits_.max_field_bytes);
  row.action = cut_text(row.action, 64);
  const std::string address = address_of(row.source);
  std::lock_guard lock(mu_);
  close_ended(now_ms, &out);
  if (windows_.size() >= limits_.max_addresses && !windows_.count(address)) {
    // A flood from many addresses: their counts are written now, memory
    // stays bounded.
    for (const auto& [addr, w] : windows_)
      if (w.unrecorded > 0) out.push_back(summary(addr, w, now_ms));
    windows_.clear();
  }
  auto [it, fresh] = windows_.try_emplace(address);
  Window& w = it->second;
  if (fresh) w.start_ms = now_ms;
  if (w.rows < limits_.rows_per_window) {
    ++w.rows;
    out.push_back(std::move(row));
  } else {
    ++w.unrecorded;
    ++w.by_outcome[status_of(row.outcome)];
    w.last = std::move(row);
  }
  return out;
}

std::vector<store::AuditRow> RefusalAudit::flush(int64_t now_ms) {
  std::vector<store::AuditRow> out;
  std::lock_guard lock(mu_);
  for (const auto& [addr, w] : windows_)
    if (w.unrecorded > 0) out.push_back(summary(addr, w, now_ms));
  windows_.clear();
  return out;
}

}  // namespace opk::host
