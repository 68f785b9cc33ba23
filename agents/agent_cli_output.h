#pragma once

// What shadan-agent prints for humans: the answers of the daemon (or of the in-process core) to
// isolate / restore / apply-file, status and verify, and the plan of `plan`. Pure formatting:
// the exit code an answer means is the command runner's business. Internal to shadan-agent; the
// public entry point is agents/agent_cli.h.

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "agents/agent_cli_options.h"
#include "agents/planner/planner.h"

namespace shadan::agent {

// A change answer (isolate, restore, apply-file): what changed, the deadline of a new isolation,
// the kernel's ruleset hash; its warnings go to `err`. `options` names the subject (SEGMENT and
// --profile, or --all) and the command.
void printChangeAnswer(const nlohmann::json& answer, const AgentCliOptions& options,
                       std::ostream& out, std::ostream& err);

// A status answer: the active isolations and whether the kernel holds them.
void printStatusAnswer(const nlohmann::json& answer, std::ostream& out);

// A verify answer: the order that would be accepted, or why it would be rejected.
void printVerifyAnswer(const nlohmann::json& answer, std::ostream& out);

// The plan: the nftables document and the blackhole routes, as text or (`json`) one object.
void printPlan(const DataplanePlan& plan, const std::string& gateway, bool json, std::ostream& out);

}  // namespace shadan::agent
