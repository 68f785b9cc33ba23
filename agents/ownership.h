#pragma once

// One gateway, one owner: the names both halves of ownership use. The live half is the
// gateway lock (agents/dataplane/gateway_owner.h), the recorded half the owner mark the table
// carries (ownerMark in agents/planner/planner.h).

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "agents/dataplane/gateway_owner.h"
#include "agents/state/sqlite_state_store.h"
#include "common/result.h"

namespace shadan::agent {

// The nftables table one agent owns per network namespace (the gateway lock's name).
inline constexpr std::string_view kOwnedTable = "inet shadan";

// The owner mark of the agent for `gateway` on `state_dir`, with the directory made absolute
// and normal, so that `state`, `./state` and `/x/state` are one owner.
std::string agentOwnerMark(const std::string& gateway, const std::filesystem::path& state_dir);

// Takes the connections that ask who holds `lock` (GatewayLock::holder) off its queue on `io`,
// so that the queue never fills; the kernel has already told the asker our pid. The handle
// keeps it going; drop it before `io`.
std::shared_ptr<void> serveOwnerQueries(boost::asio::io_context& io, const GatewayLock& lock);

// What a starting daemon holds for its life: its state directory and its gateway.
struct DaemonClaim {
  std::unique_ptr<SqliteStateStore> store;
  GatewayLock gateway;
};

// Takes the state directory's lock, then the gateway lock. A local command (status, isolate)
// holding either for a moment is waited for, up to `wait`, logged, rather than failing the
// start and leaving the isolation unguarded. A daemon already serving the state directory, or
// owning the gateway from another one, is a refusal at once (kUnavailable, naming it): two
// daemons would undo each other's rules as foreign changes.
Result<DaemonClaim> claimForDaemon(const std::filesystem::path& state_dir,
                                   std::chrono::milliseconds wait);

}  // namespace shadan::agent
