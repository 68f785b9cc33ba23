#pragma once

// The operator's commands against the controller's HTTPS API (issue3 contract):
//
//   shadanctl isolate (SEGMENT | --host ADDR[,ADDR...] | --uplink [--link-down] | --island)
//                     [--gateways GW[,GW...]] [--profile P] --reason TEXT [--ticket T]
//                     [--ttl DURATION] [--drill] [--wait SECONDS] [--json]
//   shadanctl restore (SEGMENT | --host ADDR[,ADDR...] | --uplink | --island)
//                     [--gateways GW[,GW...]] [--profile P] --reason TEXT [--ticket T] [--json]
//   shadanctl status [--order ID] [--json]
//   shadanctl approvals [--json]
//   shadanctl approve APPROVAL_ID --key FILE [--yes] [--json]
//   shadanctl agents [--json] | shadanctl agents approve AGENT_ID --reason TEXT
//   shadanctl alerts [--limit N] [--json]
//   shadanctl confirm|release ACTION_ID --reason TEXT [--json]
//   shadanctl breaker [--json] | shadanctl breaker open|close --reason TEXT [--json]
//
// Connection options for all of them: --controller https://HOST:PORT, --ca FILE,
// --token-file FILE (or SHADAN_TOKEN), --config FILE (default ~/.config/shadan/shadanctl.json,
// {"controller","ca","token_file"}; relative paths in it are relative to the file),
// --timeout SECONDS (per request, default 10).
//
// Exit codes: 0 done, 1 the controller refused or the order failed, 2 usage (nothing was
// done), 3 the controller could not be reached or TLS failed, 4 the order awaits approval.
//
// Side effects (the network, stdin, sleeping, time) come in through ControllerCmdEnv so tests
// drive the commands with a fake transport.
//
// Layout: this file dispatches; each command lives in its own file (isolate_cmd: isolate and
// restore; status_cmd; approval_cmd: approvals and approve; agents_cmd; alerts_cmd: alerts,
// confirm, release, breaker) on top of controller_context.h (exits, connection settings,
// display helpers), gateway_table.h and response_view.h.

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "common/clock.h"
#include "common/orders.h"  // validateReason
#include "common/result.h"

namespace shadan {

inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitAwaitingApproval = 4;

struct ControllerCmdEnv {
  // Builds the transport for resolved connection settings (default: an ApiClient).
  std::function<std::unique_ptr<ApiTransport>(const ApiClientOptions&)> make_transport;
  // Environment lookup (SHADAN_TOKEN, HOME); nullopt when unset.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  std::istream* in = nullptr;  // answers to the approve prompt
  bool stdin_is_tty = false;
  // Time for --wait: a monotonic "now" and a sleep; tests pass a fake pair that moves together.
  std::function<std::chrono::steady_clock::time_point()> monotonic_now;
  std::function<void(std::chrono::milliseconds)> sleep;
  const Clock* clock = nullptr;  // wall time, for approval expiry
  std::chrono::milliseconds poll_interval{500};
};

// The real environment: ApiClient, ::getenv, std::cin, isatty(0), steady_clock, a system clock.
ControllerCmdEnv defaultControllerCmdEnv();

// True for the command names runControllerCommand handles.
bool isControllerCommand(const std::string& name);

// `args` is the command line after the program name (args[0] is the command).
int runControllerCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                         const ControllerCmdEnv& env);

// The usage of every controller command, and of one (with the connection options both times).
std::string controllerCommandsUsage();
std::string controllerCommandUsage(const std::string& name);

}  // namespace shadan
