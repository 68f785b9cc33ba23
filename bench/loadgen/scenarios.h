#pragma once

// The load generator's scenarios (shadan-loadgen SCENARIO). Each sets up a FleetRun, acts, and
// returns one JSON report; the CLI prints it or a human summary of it.
//
//   fanout  one isolate of the segment every agent borders, then its restore (two operators
//           sign): request -> each verified ack. The top-level p50/p99/max are the isolate's.
//           With several controllers (on a three-member etcd cluster) the agents are spread
//           over them; with kill_leader the isolate is requested on a follower and the leading
//           controller is killed (SIGKILL) the moment the first agent has handled it: its
//           agents move to the others, and failover_ms is the kill -> the first of them that
//           still lacked the order handling it (the restore then goes to a survivor). With
//           kill_etcd_member the first etcd member (every controller's first endpoint) is
//           killed at that moment instead: the two others carry the fan-out and the restore.
//   storm   the controller is killed (SIGKILL) and started again while every agent is
//           connected; an isolate is requested the moment its API answers, while the agents
//           are still dialling back: time until all are back, and until every agent acked that
//           order, each exactly once.
//   churn   agents drop and reconnect at a rate while an isolate and a restore flow.
//   soak    N idle agents for a duration: the controller's CPU and memory.

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/loadgen/fleet_run.h"
#include "common/result.h"

namespace shadan::loadgen {

struct ScenarioOptions {
  RunOptions run;
  std::chrono::seconds duration{60};  // soak, churn
  double churn_per_s = 20;            // churn: agents dropped per second
  bool kill_leader = false;           // fanout with several controllers
  bool kill_etcd_member = false;      // ... the etcd member every controller talks to first
};

inline constexpr const char* kScenarioNames[] = {"fanout", "storm", "churn", "soak"};

// kInvalidArgument for an unknown scenario.
Result<nlohmann::json> runScenario(const std::string& name, const ScenarioOptions& options);

// Whether the report says every order reached every agent exactly once (the exit status).
bool reportComplete(const nlohmann::json& report);

}  // namespace shadan::loadgen
