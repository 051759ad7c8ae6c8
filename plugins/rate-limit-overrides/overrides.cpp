// rate-limit-overrides: addresses and blocks, the overrides' rules, the
// plugin, its snapshot and poller, the extension opskernel.rate-limits/1 and
// its manifest (overrides.h). Store transactions, plugin permissions and
// the audit service need ABI 1.2; a node's ancestors (opk.identity/1
// node_path) need 1.6, and without it a node's override applies to the
// users scoped at that node alone.
#define OPK_REQUIRED_HOST_MINOR 2
#include "overrides.h"

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>

namespace opk::rlo {

// ------------------------------------------------------ addresses, blocks

namespace {

// `n` with the bits past its prefix cleared, as a lookup key.
std::string rlo_key(const Network& n) {
  const int size = n.v6 ? 16 : 4;
  std::string out(reinterpret_cast<const char*>(n.bytes.data()), static_cast<size_t>(size));
  for (int i = 0; i < size; ++i) {
    const int keep = std::clamp(n.prefix - i * 8, 0, 8);
    out[static_cast<size_t>(i)] =
        static_cast<char>(static_cast<uint8_t>(out[static_cast<size_t>(i)]) & static_cast<uint8_t>(0xFF00 >> keep));
  }
  return out;
}

bool rlo_v4_mapped(const std::array<uint8_t, 16>& b) {
  for (int i = 0; i < 10; ++i)
    if (b[static_cast<size_t>(i)] != 0) return false;
  return b[10] == 0xFF && b[11] == 0xFF;
}

// Parses a bare address into `out` (prefix: the whole address).
bool rlo_parse_host(const std::string& text, Network* out) {
  Network n;
  if (inet_pton(AF_INET, text.c_str(), n.bytes.data()) == 1) {
    n.prefix = 32;
  } else if (inet_pton(AF_INET6, text.c_str(), n.bytes.data()) == 1) {
    n.v6 = true;
    n.prefix = 128;
  } else {
    return false;
  }
  *out = n;
  return true;
}

// An IPv4-mapped IPv6 network as IPv4 (prefix 96 and longer).
void rlo_unmap(Network* n) {
  if (!n->v6 || n->prefix < 96 || !rlo_v4_mapped(n->bytes)) return;
  std::array<uint8_t, 16> b{};
  std::memcpy(b.data(), n->bytes.data() + 12, 4);
  n->bytes = b;
  n->v6 = false;
  n->prefix -= 96;
}

}  // namespace

std::string Network::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

Status parse_network(const std::string& field, const std::string& text, Network* out) {
  const auto bad = [&](const std::string& why) {
    return Status::invalid(field + ": '" + text.substr(0, 100) + "' " + why);
  };
  if (text.empty()) return Status::invalid(field + ": must be an IPv4 or IPv6 address or CIDR block");
  const size_t slash = text.find('/');
  Network n;
  if (!rlo_parse_host(text.substr(0, slash), &n))
    return bad("is not an IPv4 or IPv6 address or CIDR block (192.0.2.7, 10.0.0.0/8, 2001:db8::/32)");
  if (slash != std::string::npos) {
    const std::string digits = text.substr(slash + 1);
    const int most = n.v6 ? 128 : 32;
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(digits) > most)
      return bad("has a bad prefix length (0 to " + std::to_string(most) + " after the '/')");
    n.prefix = std::stoi(digits);
    Network masked = n;
    const std::string key = rlo_key(n);
    std::memcpy(masked.bytes.data(), key.data(), key.size());
    if (masked.bytes != n.bytes) return bad("has bits set past its prefix; the block is " + masked.text());
  }
  rlo_unmap(&n);
  *out = n;
  return Status::ok();
}

bool parse_address(const char* text, Network* out) {
  if (text == nullptr || !rlo_parse_host(text, out)) return false;
  rlo_unmap(out);
  return true;
}

// ---------------------------------------------------------- the overrides

std::string Override::state(int64_t now_ms) const {
  if (removed_ms != 0) return "removed";
  return now_ms < expires_ms ? "active" : "expired";
}

Json Override::to_json(int64_t now_ms) const {
  const std::string st = state(now_ms);
  return Json{{"id", id},
              {"kind", kind},
              {"target", target},
              {"limit", per_minute == OPK_RATE_UNLIMITED ? Json("unlimited") : Json(per_minute)},
              {"reason", reason},
              {"created_by", created_by},
              {"created_ms", created_ms},
              {"expires_ms", expires_ms},
              {"state", st},
              {"ends_ms", removed_ms != 0 ? std::min(removed_ms, expires_ms) : expires_ms},
              {"remaining_ms", st == "active" ? Json(expires_ms - now_ms) : Json(0)},
              {"removed_by", removed_ms != 0 ? Json(removed_by) : Json()},
              {"removed_ms", removed_ms != 0 ? Json(removed_ms) : Json()},
              {"removed_reason", removed_ms != 0 ? Json(removed_reason) : Json()}};
}

namespace {

// True when grant `a` is more generous than `b` (no limit beats any).
bool rlo_better(int64_t a, int64_t b) {
  if (b == OPK_RATE_UNLIMITED) return false;
  return a == OPK_RATE_UNLIMITED || a > b;
}

void rlo_pick(const std::vector<Grant>& grants, int64_t now_ms, int64_t* best, int64_t* until_ms) {
  for (const Grant& g : grants) {
    if (now_ms >= g.expires_ms) continue;
    if (*best == 0 || rlo_better(g.per_minute, *best) || (g.per_minute == *best && g.expires_ms > *until_ms)) {
      *best = g.per_minute;
      *until_ms = g.expires_ms;
    }
  }
}

}  // namespace

int64_t Snapshot::for_network(const Network& address, int64_t now_ms, int64_t* until_ms) const {
  int64_t best = 0, until = 0;
  for (const Blocks& b : blocks) {
    if (b.v6 != address.v6) continue;
    Network probe = address;
    probe.prefix = b.prefix;
    auto it = b.by_network.find(rlo_key(probe));
    if (it != b.by_network.end()) rlo_pick(it->second, now_ms, &best, &until);
  }
  if (until_ms) *until_ms = until;
  return best;
}

int64_t Snapshot::for_nodes(const std::vector<std::string>& nodes, int64_t now_ms, int64_t* until_ms) const {
  int64_t best = 0, until = 0;
  for (const auto& node : nodes) {
    auto it = by_node.find(node);
    if (it != by_node.end()) rlo_pick(it->second, now_ms, &best, &until);
  }
  if (until_ms) *until_ms = until;
  return best;
}

// -------------------------------------------------------------- the plugin

namespace {

// The started plugin, for the extension's calls. A consumer's calls end
// before the plugin stops: the kernel stops a provider after its users.
std::atomic<OverridesPlugin*> g_rlo_plugin{nullptr};

int64_t rlo_ext_for_address(const opk_host* /*host*/, const char* address, int64_t* until_ms) noexcept {
  if (until_ms) *until_ms = 0;
  OverridesPlugin* p = g_rlo_plugin.load(std::memory_order_acquire);
  if (p == nullptr) return 0;
  const Snapshot& snap = p->thread_snapshot();
  if (snap.blocks.empty()) return 0;
  Network n;
  if (!parse_address(address, &n)) return 0;
  return snap.for_network(n, p->host().now_ms(), until_ms);
}

int64_t rlo_ext_for_scope(const opk_host* /*host*/, const char* scope, int64_t* until_ms) noexcept {
  if (until_ms) *until_ms = 0;
  OverridesPlugin* p = g_rlo_plugin.load(std::memory_order_acquire);
  if (p == nullptr || scope == nullptr || *scope == '\0') return 0;
  const Snapshot& snap = p->thread_snapshot();
  if (snap.by_node.empty()) return 0;
  try {
    return snap.for_nodes(p->ancestry(scope), p->host().now_ms(), until_ms);
  } catch (...) {
    return 0;
  }
}

const opk_rate_limits_v1 kRateLimitsExtension = {sizeof(opk_rate_limits_v1), &rlo_ext_for_address, &rlo_ext_for_scope};

}  // namespace

OverridesPlugin::~OverridesPlugin() {
  stop();
}

Status OverridesPlugin::init() {
  Settings in = host().settings();
  max_duration_ms_ = in.duration_ms("max_duration", max_duration_ms_, 60'000, 365 * 86'400'000LL);
  poll_ms_ = in.duration_ms("poll_interval", poll_ms_, 100, 300'000);
  keep_history_ms_ = in.duration_ms("keep_history", keep_history_ms_, 86'400'000LL, 3650 * 86'400'000LL);
  if (Status s = in.status(); !s) return s;
  // Without a store (plugins list, plugins check) there is nothing to serve.
  if (!Store(host()).available()) return Status::ok();
  if (Status s = migrate_overrides(host()); !s) return s;
  snapshot_.set_source({.read_counter = [this](int64_t* counter) { return read_override_counter(host(), counter); },
                        .load = [this](Snapshot* out) { return load(out); }});
  if (Status s = refresh(true); !s) return s;
  g_rlo_plugin.store(this, std::memory_order_release);
  return Status::ok();
}

Status OverridesPlugin::start() {
  if (Status s = add_routes(); !s) return s;
  snapshot_.start(
      poll_ms_,
      [this](const Status& s) { host().warn("rate-limit-overrides: overrides not reloaded: " + s.message()); },
      [this] { prune_if_due(); });
  return Status::ok();
}

void OverridesPlugin::stop() {
  snapshot_.stop();
  OverridesPlugin* self = this;
  g_rlo_plugin.compare_exchange_strong(self, nullptr);
}

const void* OverridesPlugin::extension(std::string_view id) {
  return id == OPK_EXT_RATE_LIMITS ? &kRateLimitsExtension : nullptr;
}

void OverridesPlugin::prune_if_due() {
  // Ended overrides past keep_history go, checked once a minute.
  const int64_t now = host().now_ms();
  if (now - pruned_at_ms_ < 60'000) return;
  pruned_at_ms_ = now;
  int64_t pruned = 0;
  if (Status s = prune(now - keep_history_ms_, &pruned); !s)
    host().warn("rate-limit-overrides: ended overrides not pruned: " + s.message());
  else if (pruned > 0)
    host().info("rate-limit-overrides: pruned " + std::to_string(pruned) + " overrides ended before keep_history");
}

Status OverridesPlugin::load(Snapshot* out) const {
  std::vector<Override> live;
  if (Status s = read_all(true, host().now_ms(), &live); !s) return s;
  out->count = live.size();
  std::map<std::pair<bool, int>, Snapshot::Blocks> blocks;
  for (const auto& o : live) {
    const Grant g{o.per_minute, o.expires_ms};
    if (o.kind == "tenant") {
      out->by_node[o.target].push_back(g);
      continue;
    }
    Network n;
    if (!parse_network("target", o.target, &n)) {
      host().warn("rate-limit-overrides: override " + o.id + ": stored target '" + o.target + "' is not a network");
      continue;
    }
    auto& b = blocks[{n.v6, -n.prefix}];
    b.v6 = n.v6;
    b.prefix = n.prefix;
    b.by_network[rlo_key(n)].push_back(g);
  }
  for (auto& [key, b] : blocks) out->blocks.push_back(std::move(b));
  return Status::ok();
}

void OverridesPlugin::audit(const opk_principal* actor, const std::string& action, const std::string& id,
                            const std::string& reason, const Json& before, const Json& after,
                            const std::string& source) const {
  Audit a(host());
  Status s = a.record(actor, {.action = action,
                              .target = "rate-limit-override:" + id,
                              .reason = reason,
                              .before = before,
                              .after = after,
                              .outcome = "success",
                              .source = source});
  if (!s)
    host().error("rate-limit-overrides: audit row for " + action + " on rate-limit-override:" + id +
                 " not written: " + s.message());
}

}  // namespace opk::rlo

namespace {

opk::Manifest describe() {
  opk::Manifest m("rate-limit-overrides", "Rate-limit overrides", "1.0.0", "Opskernel",
                  "Lifts or raises the admin API's request rate limits for a client address or CIDR block or a "
                  "tenant's users, with a reason and an expiry, enforced by admin-http");
  m.admin_feature(
      {.id = "rate-limit-overrides",
       .title = "Rate-limit overrides",
       .description = "Lift or raise the admin API's rate limits for an address, a CIDR block or a tenant until an "
                      "expiry; end an override early",
       .translations = {},
       .permissions = {{"rate_limits.read", "List and read the admin API's rate-limit overrides, ended ones included"},
                       {"rate_limits.manage",
                        "Create and end rate-limit overrides (they lift the limits protecting the whole admin API)"}}});
  m.provides(OPK_EXT_RATE_LIMITS);
  return m;
}

}  // namespace

OPK_PLUGIN(opk::rlo::OverridesPlugin, describe);
