#pragma once

// The scenarios shipped in shadanctl (`shadanctl drill list`), as scenario JSON text
// (docs/drills.md). Each parses with parseScenario() once its parameters without a default are
// given, and passes checkScenarioAgainstPolicy() for the policy it is written for.

#include <string_view>
#include <vector>

namespace shadan::drill {

struct BuiltinScenario {
  std::string_view name;
  // The example policy (policies/examples/<file>) it is written for; "" when any policy with
  // the right segments will do.
  std::string_view written_for;
  std::string_view text;
};

// In the order `drill list` shows them.
const std::vector<BuiltinScenario>& builtinScenarios();

// nullptr when there is none of that name.
const BuiltinScenario* findBuiltinScenario(std::string_view name);

}  // namespace shadan::drill
