#pragma once

// The operator's side of automated response (the controller's AlertResponder):
//
//   shadanctl alerts [--limit N] [--json]             GET /v1/alerts?limit=N
//   shadanctl confirm ACTION_ID --reason TEXT [--json] POST /v1/orders/{id}/confirm
//   shadanctl release ACTION_ID --reason TEXT [--json] POST /v1/orders/{id}/release
//   shadanctl breaker [--json]                         GET /v1/breaker
//   shadanctl breaker open|close --reason TEXT [--json] POST /v1/breaker/open|close
//
// The open actions themselves are listed by `shadanctl approvals` (approval_cmd) and counted by
// `shadanctl status` (status_cmd), both through response_view.h.
//
// Exit codes as every controller command's: 0 done, 1 refused (403 not an operator, 404 no
// such action, 409 already closed / breaker already in that state), 2 usage (nothing sent),
// 3 unreachable, 4 a confirmation whose order awaits operator approval.

#include <string>

#include "cli/controller_context.h"
#include "cli/options.h"

namespace shadan {

// Each command's lines of the usage text; controller_cmd.cc puts them in its table so
// `--help` prints them with the connection options.
extern const char* const kAlertsUsage;
extern const char* const kConfirmUsage;
extern const char* const kReleaseUsage;
extern const char* const kBreakerUsage;

int runAlertsCommand(const CommandOptions& options, ControllerContext& ctx);

// `action` is "confirm" or "release"; options.positionals[0] is the ACTION_ID.
int runAutoActionCommand(const std::string& action, const CommandOptions& options,
                         ControllerContext& ctx);

// options.positionals: none (show), or "open" / "close".
int runBreakerCommand(const CommandOptions& options, ControllerContext& ctx);

}  // namespace shadan
