#pragma once

// shadanctl, the operator tool: command dispatch, separate from main() so tests can drive it
// with a fake CommandRunner and string streams. Each command lives in its own *_cmd file (lab,
// audit, keygen, ca, the controller commands, sign, trust) and reads its options with the one
// parser in cli/options.h.

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
// errors and usage help for errors to `err`. Returns the process exit code.
int runShadanctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                 CommandRunner& runner);

}  // namespace shadan
