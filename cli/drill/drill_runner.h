#pragma once

// `shadanctl drill run`: one drill from start to end. Builds the lab of the policy, makes the
// drill's credentials (drill_pki.h), starts the real controller and agents in the lab
// (drill_fleet.h), runs the scenario's steps in order and records what happened in a
// DrillReport (drill_report.h), and tears everything down whatever happens.
//
// Contracts:
//   - The scenario was checked against the policy and the policy's lab computed BEFORE a runner
//     is made (drill_run_cmd.cc): bad input never builds anything.
//   - run() always tears down what it built: the daemons (agents first, then the controller),
//     the lab's namespaces, and the temporary credentials directory unless `keep`. It checks
//     `interrupted` between steps and while waiting, and unwinds when it is set (SIGINT/SIGTERM).
//   - Outcome: kPassed when every step and expectation held; kFailed when one did not (the
//     report's failures name the step, and the probe); kCouldNotRun when the drill itself could
//     not go on (the lab, a daemon, the controller's API, a probe that could not run, an
//     interruption): the report then says where it stopped.
//   - Every isolate is a drill order carrying the step's ttl_s; restores are signed by the drill
//     operators as `shadanctl approve` does (the exact DSSE PAE bytes of the pending authz).
//   - Times in the report are milliseconds since the drill's start on the wall clock, the clock
//     the controller and the agents stamp their records with (same machine).

#include <atomic>
#include <memory>
#include <ostream>
#include <string>

#include "cli/drill/drill_fleet.h"
#include "cli/drill/drill_report.h"
#include "cli/drill/scenario.h"
#include "cli/lab/command_runner.h"
#include "cli/lab/policy_lab.h"
#include "common/policy.h"

namespace shadan::drill {

struct DrillRunRequest {
  Scenario scenario;
  std::string scenario_source;
  Policy policy;
  std::string policy_file;  // absolute: the daemons read it
  PolicyLab policy_lab;     // labFromPolicy(policy)
  std::string lab_name;
  std::string report_dir;  // exists; daemon logs go here
  bool keep = false;       // keep the credentials directory (its path is in the progress)
  DrillBinaries binaries;
};

enum class DrillOutcome { kPassed, kFailed, kCouldNotRun };

class DrillRunner {
 public:
  // `progress` gets one line per event (steps, acks, probe results). `interrupted` is set by a
  // signal handler. All references must outlive the runner.
  DrillRunner(DrillRunRequest request, CommandRunner& runner, std::ostream& progress,
              const std::atomic<bool>& interrupted);
  ~DrillRunner();
  DrillRunner(const DrillRunner&) = delete;
  DrillRunner& operator=(const DrillRunner&) = delete;

  DrillOutcome run();
  const DrillReport& report() const { return report_; }

 private:
  class Impl;
  DrillReport report_;  // before impl_, which fills it
  std::unique_ptr<Impl> impl_;
};

}  // namespace shadan::drill
