#include "app/identity_cli.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "identity/identity.h"
#include "store/open.h"
#include "store/store.h"

namespace opk::cli {
namespace {

namespace po = boost::program_options;

std::string opt(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

int fail(const Status& s) {
  std::cerr << "opskernel: " << s.message() << "\n";
  return s.code() == OPK_ERR_INVALID_ARGUMENT ? 2 : 1;
}

// Prints a new token the only time it can be seen.
void print_token(const std::string& user, const std::string& token, uint32_t ttl_days) {
  std::cerr << "token for '" << user << "'"
            << (ttl_days ? ", valid " + std::to_string(ttl_days) + " days" : std::string(", without expiry"))
            << "; it is shown only now and stored only as a hash:\n";
  std::cout << token << "\n";
}

}  // namespace

int identity_command(const config::Config& cfg, const po::variables_map& vm, const std::vector<std::string>& cmd) {
  if (cmd.empty() || (cmd[0] != "users" && cmd[0] != "tenants")) return -1;
  const std::string verb = cmd.size() > 1 ? cmd[1] : "";
  const std::string arg = cmd.size() > 2 ? cmd[2] : "";
  auto usage = [&](const std::string& what) {
    std::cerr << "opskernel: usage: opskernel " << what << "\n";
    return 2;
  };
  const bool needs_arg = verb == "add" || verb == "revoke" || verb == "token" || verb == "import";
  if (cmd.size() != (needs_arg ? 3u : 2u)) {
    return usage(cmd[0] == "users" ? "users add ID --role ROLE --scope NODE [--name NAME] | users token ID | users "
                                     "list | users revoke ID"
                                   : "tenants add NODE --parent NODE [--name NAME] | tenants list | tenants import "
                                     "FILE");
  }
  // The store is opened without the kernel's lock: SQLite serialises the
  // writers, and a running kernel sees new users and nodes at once.
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  std::unique_ptr<store::Store> st;
  Status s = store::open(cfg, &st, {.check = false});
  if (!s) return fail(s);
  identity::Permissions perms = identity::default_permissions();
  for (const auto& [role, p] : cfg.permissions) perms[role] = p;
  identity::Identity id(*st, perms);
  const int64_t ttl_ms = int64_t{cfg.token_ttl_days} * 86400000;

  if (cmd[0] == "users") {
    if (verb == "add") {
      store::User u;
      u.id = arg;
      u.name = opt(vm, "name");
      u.role = opt(vm, "role");
      u.scope = opt(vm, "scope");
      if (u.role.empty() || u.scope.empty()) return usage("users add ID --role ROLE --scope NODE [--name NAME]");
      if (!(s = id.add_user(u))) return fail(s);
      std::string token;
      if (!(s = id.issue_token(u.id, ttl_ms, "created with the user", &token))) return fail(s);
      std::cerr << "user '" << u.id << "' added: " << u.role << " at " << u.scope << "\n";
      print_token(u.id, token, cfg.token_ttl_days);
      return 0;
    }
    if (verb == "token") {
      std::string token;
      if (!(s = id.issue_token(arg, ttl_ms, "opskernel users token", &token))) return fail(s);
      print_token(arg, token, cfg.token_ttl_days);
      return 0;
    }
    if (verb == "revoke") {
      int64_t n = 0;
      if (!(s = id.revoke_user(arg, &n))) return fail(s);
      std::cerr << "user '" << arg << "' disabled; " << n << " token(s) revoked\n";
      return 0;
    }
    if (verb == "list") {
      std::cout << "ID\tROLE\tSCOPE\tSTATE\tTOKENS\tNAME\n";
      const int64_t now =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      for (const auto& u : st->list_users().value()) {
        int live = 0;
        for (const auto& t : st->list_tokens(u.id).value())
          live += !t.revoked_ms && (!t.expires_ms || t.expires_ms > now);
        std::cout << u.id << "\t" << u.role << "\t" << u.scope << "\t" << (u.disabled ? "disabled" : "active") << "\t"
                  << live << "\t" << u.name << "\n";
      }
      return 0;
    }
    return usage("users add|token|list|revoke");
  }
  if (verb == "add") {
    const std::string parent = opt(vm, "parent");
    if (!(s = id.add_node(arg, parent, opt(vm, "name")))) return fail(s);
    std::cerr << "node '" << arg << "' added under '" << parent << "'\n";
    return 0;
  }
  if (verb == "import") {
    std::ifstream in(arg);
    if (!in) return fail(Status::invalid("cannot read " + arg));
    std::stringstream text;
    text << in.rdbuf();
    int added = 0;
    if (!(s = id.import_hierarchy(text.str(), &added))) return fail(s);
    std::cerr << added << " node(s) added from " << arg << "\n";
    return 0;
  }
  if (verb == "list") {
    std::cout << "ID\tPARENT\tNAME\n";
    for (const auto& n : id.nodes()) std::cout << n.id << "\t" << n.parent << "\t" << n.name << "\n";
    return 0;
  }
  return usage("tenants add|list|import");
}

}  // namespace opk::cli
