#include "host/principals.h"

#include <mutex>

namespace opk::host {

std::unique_ptr<Principals::Entry> Principals::make(const std::string& user_id, const std::string& role,
                                                    const std::string& scope) {
  auto e = std::make_unique<Entry>();
  e->user_id = user_id;
  e->role = role;
  e->scope = scope;
  e->c.struct_size = sizeof e->c;
  e->c.user_id = e->user_id.c_str();
  e->c.role = e->role.c_str();
  e->c.scope = e->scope.c_str();
  return e;
}

const opk_principal* Principals::issue(const std::string& user_id, const std::string& role, const std::string& scope) {
  auto e = make(user_id, role, scope);
  const opk_principal* p = &e->c;
  std::unique_lock lock(mu_);
  live_.emplace(p, std::move(e));
  return p;
}

void Principals::release(const opk_principal* p) {
  if (p == nullptr) return;
  std::unique_ptr<Entry> gone;  // freed outside the lock
  std::unique_lock lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end() || it->second->role == kSystemRole) return;  // system ones live as long as the kernel
  gone = std::move(it->second);
  live_.erase(it);
}

const opk_principal* Principals::system(const std::string& plugin_id) {
  std::unique_lock lock(mu_);
  auto it = system_.find(plugin_id);
  if (it != system_.end()) return it->second;
  auto e = make("system:" + plugin_id, kSystemRole, "platform");
  const opk_principal* p = &e->c;
  live_.emplace(p, std::move(e));
  system_.emplace(plugin_id, p);
  return p;
}

bool Principals::issued(const opk_principal* p) const {
  if (p == nullptr) return false;
  std::shared_lock lock(mu_);
  return live_.count(p) > 0;
}

size_t Principals::live() const {
  std::shared_lock lock(mu_);
  return live_.size();
}

}  // namespace opk::host
