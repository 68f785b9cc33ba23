#pragma once

// shadan-agent run: the agent daemon.
//
// One process, one enforcement thread (a Boost.Asio io_context) that owns the nftables context,
// the netlink sockets and the state store. At start it applies the persisted desired state
// before it reports ready or listens anywhere (fail-closed boot), then keeps it applied:
//   - nftables events (NFNLGRP_NFTABLES): a foreign transaction that touched our table, or lost
//     events (ENOBUFS), re-applies the whole table at once (debounced briefly);
//   - route / rule / link events: our blackhole routes are synced again;
//   - a generation-id poll as a backstop, and a full re-apply every few minutes;
//   - timers for isolations with a deadline;
//   - the local control socket <state-dir>/agent.sock (root only), through which the local
//     commands hand their requests to the daemon instead of touching the kernel themselves.
// The controller conversation (signed orders, acks, audit shipping) is agents/orders_session.h
// over agents/controller_link.h; this file only wires it to the loop.
// SIGTERM/SIGINT stop the daemon and leave the kernel as it is: isolation holds without it.
// SIGHUP re-reads the policy and trust files it was started with and swaps them in whole or not
// at all (agents/policy_reload.h); a refused reload leaves the daemon running as it was.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "agents/controller_address.h"
#include "common/listen_address.h"

namespace shadan::agent {

// Where the controller is, and the agent's credentials for the mutual-TLS channel.
struct ControllerEndpoint {
  std::string host;
  uint16_t port = 0;
  std::filesystem::path tls_dir;  // ca.crt, agent.crt, agent.key (shadanctl ca issue --client)
  std::string pin;                // hex SHA-256 of the controller certificate's public key
  // Further controllers of the deployment, dialled in turn (LinkOptions::more_controllers).
  std::vector<ControllerAddress> more{};

  std::string text() const;  // "host:port" or "host:port,host:port,..."
};

struct DaemonOptions {
  std::filesystem::path policy_path;
  std::string gateway;
  std::filesystem::path state_dir;
  std::optional<std::filesystem::path> trust_path;  // needed for signed orders
  std::optional<ControllerEndpoint> controller;     // standalone without one
  // Also send every audit entry to journald or syslog: off | journald | syslog | auto.
  std::string audit_export = "off";
  // A plain-HTTP listener for Prometheus (agents/agent_metrics.h); none by default.
  std::optional<ListenAddress> metrics_listen;
  // How long the controller may be unreachable before `on_controller_loss: revert` lifts drills.
  std::chrono::milliseconds controller_loss_grace{std::chrono::minutes(5)};
  std::chrono::milliseconds generation_poll{std::chrono::seconds(1)};
  std::chrono::milliseconds full_reapply{std::chrono::minutes(5)};
  std::chrono::milliseconds debounce{std::chrono::milliseconds(2)};
  // A clean stop waits this long at most for the controller to acknowledge the last audit
  // entries and the final checkpoint.
  std::chrono::milliseconds stop_ship_timeout{std::chrono::seconds(3)};
  // How long start waits for the state directory's lock while another process (a local command,
  // a daemon that is stopping) holds it; logged, then start fails.
  std::chrono::milliseconds state_lock_wait{std::chrono::seconds(60)};
};

// Runs until SIGTERM/SIGINT (SIGHUP reloads). Returns the process exit code; startup errors are
// printed on `err` as one clear line.
int runDaemon(const DaemonOptions& options, std::ostream& err);

// Path of the control socket in a state directory.
std::filesystem::path controlSocketPath(const std::filesystem::path& state_dir);

}  // namespace shadan::agent
