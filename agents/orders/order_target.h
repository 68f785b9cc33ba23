#pragma once

// Step 7's policy checks of what a verified authz targets on this gateway, for every rung of the
// ladder (common/isolation_scope.h). Shared by the dispatch and the break-glass path; pure.
//
// Checked in this order, first failure wins (reason codes in brackets):
//   segment  the segment is in the policy                                  [unknown_segment]
//   host     the segment is in the policy                                  [unknown_segment]
//            this gateway borders it                                       [segment_not_bordered]
//            every host lies in it: segmentOfHost(policy, host) == segment [host_not_in_segment]
//   uplink   the policy has a default segment and this gateway has
//            interfaces of it (`interfaces[<default>]`)                    [no_uplink_interfaces]
//            with link_down: the gateway's `link_down` list is non-empty   [link_down_not_allowed]
//   island   this gateway borders a segment other than the default one    [no_island_segments]
//   all      the profile is in the policy                                  [unknown_profile]
// The same checks hold for isolate and restore (link_down exists on isolates only): an order
// the gateway could not carry out as written is refused before anything is stored or applied.
// A gateway id the policy does not know borders nothing and has no interfaces.

#include <optional>
#include <string_view>

#include "agents/orders/order_verifier.h"
#include "common/orders.h"
#include "common/policy.h"

namespace shadan::agent {

std::optional<OrderRejection> checkOrderTarget(const Authz& authz, const Policy& policy,
                                               std::string_view gateway_id);

// Step 7's first check: this gateway is one the authz targets: in its list, or, for an authz
// that targets every gateway bordering its segment (Authz::targets_bordering), one whose policy
// says it borders the segment. [not_a_target]
std::optional<OrderRejection> checkAmongTargets(const Authz& authz, const Policy& policy,
                                                std::string_view gateway_id);

// Whether the segment an isolate of this rung lies in counts as protected when the threshold is
// chosen (TrustThresholds::needsProtectedRule): for segment and host, a protected segment or
// one the policy does not know (refused later, in checkOrderTarget); false for uplink and
// island, which name no segment (their own rule comes from the trust file).
bool targetSegmentProtected(const Authz& authz, const Policy& policy);

}  // namespace shadan::agent
