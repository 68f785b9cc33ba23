#pragma once

// The local commands' side of the daemon's control socket (see control_protocol.h).

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "agents/control_protocol.h"
#include "common/result.h"

namespace shadan::agent {

// Sends `request` to the daemon listening on `socket_path` and returns its answer.
// nullopt: nobody listens there (no socket file, or connection refused) — no daemon runs.
// An error: a daemon is there but the exchange failed (timeout, malformed answer).
Result<std::optional<nlohmann::json>> askDaemon(
    const std::filesystem::path& socket_path, const ControlRequest& request,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace shadan::agent
