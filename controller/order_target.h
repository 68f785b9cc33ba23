#pragma once

// What an isolate or restore request cuts, resolved against the policy before anything is
// stored: the rung (common/isolation_scope.h), the segment (for host, found from the hosts), the
// hosts in canonical form, and the gateways the order goes to. Pure: no store, no clock.
//
// Targets by rung:
//   segment, host  every gateway whose `borders` include the segment (as segment orders always
//                  did); `gateways` may not be given
//   uplink         the named gateways, or every gateway with interfaces of the policy's default
//                  segment; each must exist and have such interfaces
//   island         the named gateways, or every gateway of the policy; each must exist
//
// Refusals (nothing is stored): kNotFound for an unknown segment or gateway (the API answers
// 404, as for an unknown segment before the ladder); kInvalidArgument (400) for everything else,
// each message naming the member and the value: a host that segmentOfHost refuses (outside
// every segment, in the default segment, overlapping management, wider than /24 or /120,
// spanning two segments), hosts of two segments in one order, a `segment` that is not the one
// the hosts lie in, members that do not belong to the rung, duplicates, link_down on anything
// but an uplink isolate or on a gateway whose policy allows no link-down.

#include <string>
#include <vector>

#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/orders.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan::controller {

// The rung members of a request, as the API caller gave them.
struct TargetRequest {
  OrderAction action = OrderAction::kIsolate;
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment;                // "" when not given
  std::vector<std::string> hosts;     // as written ("10.20.0.5", "10.20.0.0/28")
  std::vector<std::string> gateways;  // uplink and island only
  bool link_down = false;
};

struct OrderTarget {
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment;          // segment and host; "" for uplink and island
  std::vector<IpPrefix> hosts;  // host only, in the order given
  std::vector<std::string> gateways;
  bool link_down = false;
  // The segment is protected (segment and host); false for uplink and island, whose approval
  // rule comes from the trust file alone (TrustThresholds::needsProtectedRule).
  bool segment_protected = false;
};

Result<OrderTarget> resolveOrderTarget(const Policy& policy, const TargetRequest& request);

}  // namespace shadan::controller
