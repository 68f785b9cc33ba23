#pragma once

// `shadanctl drill list|show|check|run`: the drill scenarios (cli/drill/), listed, shown with
// their parameters replaced, checked against a policy before anything is built, and run
// (drill_run_cmd.h: the lab, the real daemons, report.json) (docs/drills.md).

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "cli/drill/scenario.h"
#include "cli/lab/command_runner.h"
#include "cli/options.h"

namespace shadan {

// `args` is the whole command line after the program name (args[0] == "drill"). Exit codes:
// kExitOk; kExitUsage for a usage error, and for `drill check` of a scenario or policy that
// does not pass (bad input: nothing would be built); `drill run` as runDrillRun says. `runner`
// runs the lab's commands (`ip`, `nft`): only `drill run` uses it.
int runDrillCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                    CommandRunner& runner);

const char* drillUsage();

// The scenario options of `drill check` (and of a command that runs one) name:
//   --scenario FILE | --builtin NAME   the scenario; or --segment SEG alone: segment-cut for SEG
//   --segment S, --param NAME=VALUE    parameter values (--segment S is --param segment=S)
// Errors: kInvalidArgument for the options themselves (none or two of the sources, a malformed
// or repeated --param, an unknown built-in), else the scenario's own error (kParse, naming
// the file or "builtin:NAME" and the JSON path).
struct ChosenScenario {
  drill::Scenario scenario;
  std::string source;  // the file, or "builtin:NAME": what errors about it name
};
Result<ChosenScenario> scenarioFromOptions(const CommandOptions& options);

// The values of --segment and --param NAME=VALUE.
Result<std::map<std::string, std::string>> scenarioArguments(const CommandOptions& options);

}  // namespace shadan
