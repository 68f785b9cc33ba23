#pragma once

// `shadanctl isolate|restore SEGMENT ...`: ask the controller for an order, and with --wait
// follow it until every gateway answered (see controllerCommandUsage("isolate")).

#include <string>

#include "cli/controller_context.h"
#include "cli/options.h"

namespace shadan {

// `action` is "isolate" or "restore"; options.positionals[0] is the SEGMENT.
// Exit codes: 0 accepted (with --wait: applied everywhere), 1 refused or not applied everywhere,
// 2 usage, 3 unreachable, 4 awaiting approval.
int runIsolateCommand(const std::string& action, const CommandOptions& options,
                      ControllerContext& ctx);

}  // namespace shadan
