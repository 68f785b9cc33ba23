#pragma once

// `shadanctl forward eve FILE` and `shadanctl forward zeek-notice FILE`: follow a detector's
// log and post its alerts to the controller's alert intake (alert_forwarder.h says how).
// Connection options as for the controller commands (controller_context.h); the token must
// have the role detector.
//
// Exit codes: 0 done (--once: everything up to the end acknowledged; otherwise stopped by
// SIGINT/SIGTERM with the last batch acknowledged), 1 the controller refused (401, 403, other
// 4xx), the log or the state file failed, or a stop came before the last batch was
// acknowledged, 2 usage (nothing was read or sent).

#include <iosfwd>
#include <string>
#include <vector>

#include "cli/alert_forwarder.h"
#include "cli/controller_cmd.h"

namespace shadan {

struct ForwardCmdEnv {
  ControllerCmdEnv controller;  // the transport and the environment (SHADAN_TOKEN, HOME)
  ForwarderEnv forwarder;       // time, sleeping, jitter, the stop flag
};

// The real environment: defaultControllerCmdEnv(), steady_clock, a sleep that wakes up on a
// stop, a seeded jitter, and SIGINT/SIGTERM handlers (installed here) that raise the stop flag.
ForwardCmdEnv defaultForwardCmdEnv();

// `args` is the command line after the program name (args[0] is "forward").
int runForwardCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                      const ForwardCmdEnv& env);

std::string forwardCommandUsage();

}  // namespace shadan
