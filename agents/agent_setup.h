#pragma once

// What an installed gateway needs no flags for: the defaults of shadan-agent's options, and
// `shadan-agent init`, the one local command besides `run` that creates a state directory.
//
// Defaults (the paths of the systemd unit, systemd/shadan-agent.service):
//   --policy     CONFIG/policy.json, when it exists
//   --gateway    $SHADAN_GATEWAY, else SHADAN_GATEWAY=… in CONFIG/agent.env (the unit's
//                EnvironmentFile)
//   --state-dir  /var/lib/shadan (for `plan` only when it exists: plan creates nothing)
//   --trust      CONFIG/trust.json, when it exists (run, verify, apply-file)
// where CONFIG is /etc/shadan. A flag always wins.

#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "agents/agent_cli_options.h"
#include "agents/daemon.h"
#include "common/result.h"

namespace shadan::agent {

// Empty paths: no such default (the unit tests' environment).
struct AgentDefaults {
  std::filesystem::path config_dir = "/etc/shadan";
  std::filesystem::path state_dir = "/var/lib/shadan";
  // The process environment (getenv); empty: none is consulted.
  std::function<std::optional<std::string>(const std::string& name)> getenv;
};

// Fills the options the command line left out, from `defaults`.
void applyAgentDefaults(AgentCliOptions& options, const AgentDefaults& defaults);

// The gateway id an agent.env file names (`SHADAN_GATEWAY=gw`, optionally quoted); nullopt
// when the file is missing or names none.
std::optional<std::string> gatewayFromEnvFile(const std::filesystem::path& path);

// Where a missing required option could have come from, for its error message.
std::string defaultHint(const std::string& option, const AgentDefaults& defaults);

// `run`'s flags as DaemonOptions (policy, gateway and state directory must be set; the trust
// file is checked by the caller). kInvalidArgument names the flag that is wrong.
Result<DaemonOptions> daemonOptionsFrom(const AgentCliOptions& options);

}  // namespace shadan::agent
