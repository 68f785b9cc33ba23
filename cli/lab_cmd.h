#pragma once

// `shadanctl lab up|down|probe`: build, probe and remove a network-namespace lab (cli/lab/).

#include <ostream>
#include <string>
#include <vector>

#include "cli/lab/command_runner.h"

namespace shadan {

// `args` is the whole command line after the program name (args[0] == "lab"). The lab's
// commands (ip, nft, ...) run through `runner`. Exit codes: kExitOk, kExitFailure (for probes:
// not reachable), kExitUsage, kExitProbeError (the probe could not run).
int runLabCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  CommandRunner& runner);

const char* labUsage();

}  // namespace shadan
