#pragma once

// shadan-agent policy: the policy file as the administrator reads it, offline.
//
//   shadan-agent policy check FILE [--gateway ID] [--json]
//       like `nft -c`: loads FILE with the agent's own strict loader and prints its warnings;
//       with --gateway, also plans every (segment, profile) isolation that gateway borders.
//       Exit 0 valid, 3 invalid (the message names the file, the JSON pointer and the reason).
//   shadan-agent policy show --policy FILE [--json]
//       the segments (prefixes, protected, default), profiles and gateways (borders).
//
// Both read only the policy file: no root, no state directory, no daemon, no kernel. Internal
// to shadan-agent; agents/agent_cli.cc dispatches `policy` here.

#include <ostream>
#include <string>

#include "agents/agent_cli_options.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent {

// Plans every (segment, profile) isolation `gateway_id` borders, one at a time; the first that
// does not plan is the error, located by its border's JSON pointer in `file`. Returns how many
// planned. (policy check --gateway, and check-config.)
Result<size_t> checkGatewayPlans(const Policy& policy, const std::string& file,
                                 const std::string& gateway_id);

// Runs `policy check` or `policy show` (the subcommand is options.positional[0]). Output on
// `out`, errors and warnings on `err`. Returns the process exit code (AgentExitCode).
int runPolicyCommand(const AgentCliOptions& options, std::ostream& out, std::ostream& err);

}  // namespace shadan::agent
