#pragma once

// The errors for a segment or profile name the policy does not define. They list the names it
// does define, so that a typo is answered with the word that was meant; the agent core, the
// CLI and `shadan-agent policy` all word them the same way.

#include <string_view>

#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent {

// kNotFound: `unknown segment "NAME" (segments: a, b, c)`.
Error unknownSegmentError(const Policy& policy, std::string_view name);

// kNotFound: `unknown profile "NAME" (profiles: a, b, c)`.
Error unknownProfileError(const Policy& policy, std::string_view name);

}  // namespace shadan::agent
