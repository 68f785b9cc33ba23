#pragma once

// Pieces shared by the scenario's parser, writer and policy check (cli/drill/scenario*.cc); not
// an interface of the drill library.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/drill/scenario.h"
#include "common/result.h"

namespace shadan::drill::internal {

// A policy name (segment, gateway, profile): ^[a-z0-9][a-z0-9-]{0,31}$, as the policy loader.
bool isPolicyName(std::string_view name);

// The "parameters" member of the scenario's root object (nothing replaced in it), or an empty
// map when there is none. `root` need not be an object (then: no parameters).
Result<std::map<std::string, ScenarioParameter>> readParameters(const nlohmann::json& root,
                                                                std::string_view source);

// Replaces every "${name}" in the string values of `root` (except inside its "parameters") with
// the given value or the declared default, and returns the value of every declared parameter
// that has one. Errors name the path of the string, or "/parameters" for a value given for a
// parameter that is not declared.
Result<std::map<std::string, std::string>> substituteParameters(
    nlohmann::json& root, std::string_view source,
    const std::map<std::string, ScenarioParameter>& declared,
    const std::map<std::string, std::string>& given);

// Enum tables shared by reader and writer: each returns nullopt for a name it does not know.
std::optional<ProbeProto> probeProtoNamed(std::string_view name);
std::optional<ProbeFamily> probeFamilyNamed(std::string_view name);
std::optional<Reachability> reachabilityNamed(std::string_view name);
std::optional<FaultKind> faultKindNamed(std::string_view name);
std::optional<WaitCondition> waitConditionNamed(std::string_view name);
std::optional<ProbePhase> probePhaseNamed(std::string_view name);

}  // namespace shadan::drill::internal
