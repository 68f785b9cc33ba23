// shadan-agent: wires the real backends (libnftables, libnl-route-3, SQLite) into the CLI.
#include <iostream>
#include <string>
#include <vector>

#include "agents/agent_audit.h"
#include "agents/agent_cli.h"
#include "agents/control_client.h"
#include "agents/daemon.h"
#include "agents/dataplane/netlink_conntrack_backend.h"
#include "agents/dataplane/netlink_route_backend.h"
#include "agents/dataplane/nftables_backend.h"
#include "agents/state/sqlite_state_store.h"

int main(int argc, char** argv) {
  using namespace shadan;
  using namespace shadan::agent;
  const std::vector<std::string> args(argv + 1, argv + argc);
  SystemClock clock;
  AgentEnvironment env;
  env.open_firewall = []() -> Result<FirewallBackendPtr> {
    auto backend = NftablesBackend::create();
    if (!backend.ok()) return backend.error();
    return FirewallBackendPtr(std::move(backend).value());
  };
  env.open_routes = []() -> Result<RouteBackendPtr> {
    auto backend = NetlinkRouteBackend::create();
    if (!backend.ok()) return backend.error();
    return RouteBackendPtr(std::move(backend).value());
  };
  env.open_conntrack = []() -> Result<ConntrackBackendPtr> {
    auto backend = NetlinkConntrackBackend::create();
    if (!backend.ok()) return backend.error();
    return ConntrackBackendPtr(std::move(backend).value());
  };
  env.open_audit = [&clock](const std::filesystem::path& dir,
                            const std::string& gateway) -> Result<AgentEnvironment::AuditHandle> {
    auto audit = AgentAudit::open(dir, gateway, clock);
    if (!audit.ok()) return audit.error();
    std::shared_ptr<AgentAudit> holder = std::move(audit).value();
    // Both handles keep the whole AgentAudit (key, file system, log) alive.
    return AgentEnvironment::AuditHandle{std::shared_ptr<AuditSink>(holder, &holder->log()),
                                         std::shared_ptr<const Signer>(holder, &holder->signer())};
  };
  env.open_state = [](const std::filesystem::path& dir) -> Result<StateStorePtr> {
    // Short wait: the CLI retries itself while a daemon that holds the lock comes up.
    auto store = SqliteStateStore::open(dir, std::chrono::milliseconds(100));
    if (!store.ok()) return store.error();
    return StateStorePtr(std::move(store).value());
  };
  env.ask_daemon = [](const std::filesystem::path& dir, const ControlRequest& request) {
    return askDaemon(controlSocketPath(dir), request);
  };
  env.run_daemon = [](const DaemonOptions& options) { return runDaemon(options, std::cerr); };
  env.clock = &clock;
  env.out = &std::cout;
  env.err = &std::cerr;
  return runAgentCli(args, env);
}
