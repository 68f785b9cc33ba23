#pragma once

// `shadanctl agents [approve AGENT_ID --reason TEXT]`: enrolled and pending agents, and the
// operator's approval of a pending one (no trust on first use).

#include "cli/controller_context.h"
#include "cli/options.h"

namespace shadan {

// options.positionals: empty (list) or {"approve", AGENT_ID}.
int runAgentsCommand(const CommandOptions& options, ControllerContext& ctx);

}  // namespace shadan
