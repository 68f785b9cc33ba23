#pragma once

// `shadanctl status [--order ID]`: segments, gateways (and, from a controller that reports it,
// each gateway's escalation ladder), recent orders and (when the controller runs automatic
// response) its breaker and open automatic actions; or one order's per-gateway state.

#include "cli/controller_context.h"
#include "cli/options.h"

namespace shadan {

int runStatusCommand(const CommandOptions& options, ControllerContext& ctx);

}  // namespace shadan
