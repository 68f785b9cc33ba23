#pragma once

// How much each active isolation's drop rules have dropped, for `status`.
//
// Attribution rule: a counted rule of our table belongs to the isolation (segment, profile) when
// it is, word for word, one of the drops the planner writes for that isolation planned alone
// (planGateway(policy, gateway, {isolation})). Set names depend on nothing but the segment and
// profile names (`seg_<segment>_v4|_v6`, `known_v4|_v6` for the default segment,
// `allow_<profile>_v4|_v6`), so an isolation's drops read the same alone as beside others, and
// the planner's output stays as it is: no marker is added to the rules. An isolation's count is
// the sum over those rules in every chain (input, output, forward; a packet passes one of them).
// What follows from it (docs/agent-cli.md says the same to operators):
//   - counters start at zero whenever the agent writes the table: every apply replaces it whole
//     (isolate, restore, repair, policy reload, daemon start);
//   - a drop that two isolations share (the planner writes it once, e.g. A isolated from its peer
//     B and B from its peer A) counts for both;
//   - a packet is counted once, by the first drop it meets: when two isolations would both drop
//     it, it counts for the one whose drops come first in the chain (isolations are in
//     (segment, profile) order);
//   - quarantined hosts of one profile share their set and so their drops: each host's count is
//     that of every host quarantined with the same profile (and family);
//   - a rule someone else changed equals no plan line and counts for nobody (`status` reports
//     the drift itself).

#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include "agents/dataplane/firewall_backend.h"
#include "agents/planner/planner.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent {

struct DropCount {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  friend bool operator==(const DropCount&, const DropCount&) = default;
};

// One entry per isolation asked about: its count, or why there is none.
using DropCounts = std::map<Isolation, Result<DropCount>>;

// Pure. An isolation that cannot be planned under `policy` (its segment or profile left the
// policy) carries the planner's error.
DropCounts attributeDrops(const Policy& policy, std::string_view gateway_id,
                          const std::vector<Isolation>& isolations,
                          const std::vector<RuleCounter>& counters);

// Reads the counters from `firewall` and attributes them. When they cannot be read (no table,
// a kernel error, a backend without counters), every isolation carries that error.
DropCounts readDropCounts(FirewallBackend& firewall, const Policy& policy,
                          std::string_view gateway_id, const std::vector<Isolation>& isolations);

}  // namespace shadan::agent
