#pragma once

// `shadanctl isolate|restore (SEGMENT | --host ... | --uplink | --island) ...`: ask the
// controller for an order on one rung of the escalation ladder, and with --wait follow it until
// every gateway answered (see controllerCommandUsage("isolate")).

#include <string>

#include "cli/controller_context.h"
#include "cli/options.h"

namespace shadan {

// `action` is "isolate" or "restore"; options.positionals[0], when given, is the SEGMENT.
// Exactly one of SEGMENT, --host, --uplink, --island names the rung; --link-down (isolate only)
// goes with --uplink, --gateways with --uplink or --island. Addresses are checked for shape and
// width here; which segment they lie in is the controller's check.
// Exit codes: 0 accepted (with --wait: applied everywhere), 1 refused or not applied everywhere,
// 2 usage, 3 unreachable, 4 awaiting approval.
int runIsolateCommand(const std::string& action, const CommandOptions& options,
                      ControllerContext& ctx);

}  // namespace shadan
