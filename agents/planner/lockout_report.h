#pragma once

// The report of the lockout check, for humans: a rule in nft syntax (best effort) for a finding.
// describeLockoutFinding() and the severity and direction names (lockout_check.h) are defined
// beside it. Internal to the lockout check; the public interface is
// agents/planner/lockout_check.h.

#include <nlohmann/json.hpp>
#include <string>

namespace shadan::agent::lockout_detail {

// A libnftables JSON rule (its "expr" statements) in nft syntax, best effort.
std::string renderRule(const nlohmann::json& rule);

}  // namespace shadan::agent::lockout_detail
