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
// SIGTERM/SIGINT stop the daemon and leave the kernel as it is: isolation holds without it.

#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

namespace shadan {

struct DaemonOptions {
  std::filesystem::path policy_path;
  std::string gateway;
  std::filesystem::path state_dir;
  std::optional<std::filesystem::path> trust_path;  // needed for signed orders
  std::chrono::milliseconds generation_poll{std::chrono::seconds(1)};
  std::chrono::milliseconds full_reapply{std::chrono::minutes(5)};
  std::chrono::milliseconds debounce{std::chrono::milliseconds(2)};
};

// Runs until SIGTERM/SIGINT. Returns the process exit code; startup errors are printed on `err`
// as one clear line.
int runDaemon(const DaemonOptions& options, std::ostream& err);

// Path of the control socket in a state directory.
std::filesystem::path controlSocketPath(const std::filesystem::path& state_dir);

}  // namespace shadan
