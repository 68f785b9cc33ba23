// shadan-agent: wires the real backends (libnftables, libnl-route-3, SQLite) into the CLI.
#include <malloc.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "agents/agent_audit.h"
#include "agents/agent_cli.h"
#include "agents/control_client.h"
#include "agents/daemon.h"
#include "agents/dataplane/gateway_owner.h"
#include "agents/dataplane/netlink_conntrack_backend.h"
#include "agents/dataplane/netlink_route_backend.h"
#include "agents/dataplane/nftables_backend.h"
#include "agents/ownership.h"
#include "agents/state/sqlite_state_store.h"

namespace {

// Whether this process holds CAP_NET_ADMIN in its effective set: the capability netlink and
// nftables check, whoever the user is (root in a container may lack it; a unit with
// AmbientCapabilities= may hold it without being root). /proc/self/status says; where it
// cannot be read, being root is the best guess.
bool hasNetAdmin() {
  constexpr int kCapNetAdmin = 12;  // linux/capability.h
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    try {
      const uint64_t effective = std::stoull(line.substr(7), nullptr, 16);
      return (effective >> kCapNetAdmin) & 1U;
    } catch (const std::exception&) {
      break;
    }
  }
  return ::geteuid() == 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The daemon is idle almost always, so what it keeps counts. glibc raises its mmap threshold
  // to the largest block freed so far; after libnftables' 2 MB output buffer was freed once,
  // such buffers came from the heap and stayed resident as the agent's own memory for good
  // (RssAnon 4.3 MB idle instead of 2). A fixed threshold keeps them mapped and given back.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  using namespace shadan;
  using namespace shadan::agent;
  const std::vector<std::string> args(argv + 1, argv + argc);
  SystemClock clock;
  AgentEnvironment env;
  env.open_firewall = []() -> Result<FirewallBackendPtr> {
    SHADAN_ASSIGN_OR_RETURN(auto backend, NftablesBackend::create());
    return FirewallBackendPtr(std::move(backend));
  };
  env.open_routes = []() -> Result<RouteBackendPtr> {
    SHADAN_ASSIGN_OR_RETURN(auto backend, NetlinkRouteBackend::create());
    return RouteBackendPtr(std::move(backend));
  };
  env.open_conntrack = []() -> Result<ConntrackBackendPtr> {
    SHADAN_ASSIGN_OR_RETURN(auto backend, NetlinkConntrackBackend::create());
    return ConntrackBackendPtr(std::move(backend));
  };
  env.open_audit = [&clock](const std::filesystem::path& dir,
                            const std::string& gateway) -> Result<AgentEnvironment::AuditHandle> {
    SHADAN_ASSIGN_OR_RETURN(auto audit, AgentAudit::open(dir, gateway, clock));
    std::shared_ptr<AgentAudit> holder = std::move(audit);
    // Both handles keep the whole AgentAudit (key, file system, log) alive.
    return AgentEnvironment::AuditHandle{std::shared_ptr<AuditSink>(holder, &holder->log()),
                                         std::shared_ptr<const Signer>(holder, &holder->signer())};
  };
  env.open_state = [](const std::filesystem::path& dir) -> Result<StateStorePtr> {
    // Short wait: the CLI retries itself while a daemon that holds the lock comes up.
    SHADAN_ASSIGN_OR_RETURN(auto store, SqliteStateStore::open(dir, std::chrono::milliseconds(100),
                                                               /*create_directory=*/false));
    return StateStorePtr(std::move(store));
  };
  env.create_state = [](const std::filesystem::path& dir) -> Result<StateStorePtr> {
    SHADAN_ASSIGN_OR_RETURN(auto store, SqliteStateStore::open(dir, std::chrono::seconds(10)));
    return StateStorePtr(std::move(store));
  };
  env.defaults.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (const char* value = std::getenv(name.c_str())) return std::string(value);
    return std::nullopt;
  };
  env.ask_daemon = [](const std::filesystem::path& dir, const ControlRequest& request) {
    return askDaemon(controlSocketPath(dir), request);
  };
  env.claim_gateway = []() -> Result<std::shared_ptr<void>> {
    // A local command holds the lock for one change; another command's change is waited for.
    SHADAN_ASSIGN_OR_RETURN(
        auto lock,
        GatewayLock::acquire(kOwnedTable, GatewayLock::Role::kCommand, std::chrono::seconds(5)));
    return std::shared_ptr<void>(std::make_shared<GatewayLock>(std::move(lock)));
  };
  env.has_net_admin = hasNetAdmin;
  env.run_daemon = [](const DaemonOptions& options) { return runDaemon(options, std::cerr); };
  env.uid = ::getuid();
  // SUDO_USER is what the environment claims; only a plain user name goes into the audit trail.
  if (const char* sudo_user = std::getenv("SUDO_USER"); sudo_user && isPlainUserName(sudo_user)) {
    env.sudo_user = sudo_user;
  }
  env.confirm = [](const std::string& question) {
    if (!::isatty(STDIN_FILENO) || !::isatty(STDERR_FILENO)) return false;
    std::cerr << question << " Type yes to go on: " << std::flush;
    std::string answer;
    return static_cast<bool>(std::getline(std::cin, answer)) && answer == "yes";
  };
  env.clock = &clock;
  env.out = &std::cout;
  env.err = &std::cerr;
  return runAgentCli(args, env);
}
