#pragma once

// shadanctl, the operator tool: command dispatch, separate from main() so tests can drive it
// with a fake CommandRunner and string streams. Each command lives in its own *_cmd file (lab,
// drill, audit, keygen, ca, the controller commands, sign, trust) and reads its options with the
// one parser in cli/options.h.
//
// Help and usage errors, the same for every command:
//   shadanctl COMMAND [SUBCOMMAND] --help | -h   that command's usage on stdout, exit 0
//   shadanctl help COMMAND [SUBCOMMAND]          the same
//   a usage error                                 two lines on stderr, exit kExitUsage:
//       shadanctl: WHAT IS WRONG
//       see 'shadanctl COMMAND --help'
// An unknown command or subcommand names the valid ones in that first line.

#include <ostream>
#include <string>
#include <vector>

#include "cli/lab/command_runner.h"

namespace shadan {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;     // the command failed; for probes: not reachable
inline constexpr int kExitUsage = 2;       // bad arguments; nothing was done
inline constexpr int kExitProbeError = 3;  // the probe could not run (lab not up, not root)

// Runs shadanctl with `args` (argv without the program name). Normal output goes to `out`,
// errors to `err`. Returns the process exit code.
int runShadanctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                 CommandRunner& runner);

// The command names shadanctl dispatches, in the order --help lists them.
const std::vector<std::string>& shadanctlCommands();

// Prints the two-line usage error ("shadanctl: MESSAGE", "see 'shadanctl COMMAND --help'") and
// returns kExitUsage. `command` is "" for shadanctl itself, else "lab", "isolate", ...
int printUsageError(std::ostream& err, const std::string& command, const std::string& message);

// "a, b, c": how valid names are listed after an unknown one.
std::string joinNames(const std::vector<std::string>& names);

}  // namespace shadan
