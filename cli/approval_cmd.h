#pragma once

// `shadanctl approvals` lists the orders waiting for operator signatures; `shadanctl approve
// APPROVAL_ID --key FILE [--yes]` shows one and signs it (the exact DSSE PAE bytes).

#include "cli/controller_context.h"
#include "cli/options.h"

namespace shadan {

int runApprovalsCommand(const CommandOptions& options, ControllerContext& ctx);

// options.positionals[0] is the APPROVAL_ID. Reads the confirmation from ctx.env().in unless
// --yes; signs nothing after the authz expired (ctx.env().clock).
int runApproveCommand(const CommandOptions& options, ControllerContext& ctx);

}  // namespace shadan
