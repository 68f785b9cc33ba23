#pragma once

// `shadanctl drill run`: builds the lab of a policy, runs a scenario in it with the real
// controller and agents, writes DIR/report.json (docs/drills.md "Running a drill").
//
// Order of work, so that bad input never builds anything: options, policy, scenario, the
// scenario's check against the policy, the policy's lab (all exit 2 on a problem), the lab name,
// the report directory and the daemons' binaries (exit 3), and only then the lab.

#include <atomic>
#include <ostream>
#include <string>

#include "cli/lab/command_runner.h"
#include "cli/options.h"

namespace shadan {

struct DrillRunEnv {
  std::string self_exe;  // shadanctl's own path (/proc/self/exe): where the daemons are found
  // Set by a SIGINT/SIGTERM handler (installDrillSignalHandlers) or a test.
  const std::atomic<bool>* interrupted = nullptr;
};

// Exit codes: 0 every expectation held; 1 one did not (report.json names the step and the
// probe); 2 a usage error, or a policy or scenario that does not pass (nothing built); 3 the
// drill could not run (lab, daemons, controller, interrupted). Progress goes to `out`, or with
// --json to `err` and the report to `out`.
int runDrillRun(const CommandOptions& options, std::ostream& out, std::ostream& err,
                CommandRunner& runner, const DrillRunEnv& env);

// The process's SIGINT/SIGTERM handlers set the returned flag (and nothing else) until
// restoreDrillSignalHandlers(). Process-wide by nature: a signal has one handler.
const std::atomic<bool>& installDrillSignalHandlers();
void restoreDrillSignalHandlers();

}  // namespace shadan
