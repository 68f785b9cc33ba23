#pragma once

// The resolution of one isolation against the policy and the gateway: which segment, profile,
// peers, hosts, uplink interfaces or islands a rung stands for, each name checked before it can
// become part of an nft script. Internal to the planner; the public interface is
// agents/planner/planner.h.

#include <string>
#include <string_view>
#include <vector>

#include "agents/planner/planner.h"
#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent::planner_detail {

// A policy entry with the map key it is known by (the key, not the struct's copy of the name, is
// what orders and peers refer to). `value` points into the Policy the entry was resolved from.
struct NamedSegment {
  std::string name;
  const Segment* value;
};
struct NamedProfile {
  std::string name;
  const Profile* value;
};

// One rung resolved against the policy. For host isolations, every quarantined prefix of one
// profile is folded into one ResolvedIsolation (one set, one pair of drops).
struct ResolvedIsolation {
  IsolationScope scope = IsolationScope::kSegment;
  NamedSegment segment{};  // segment and host scope
  NamedProfile profile{};
  std::vector<NamedSegment> peers;      // empty: a full cut
  std::vector<IpPrefix> hosts;          // host scope
  std::vector<std::string> interfaces;  // uplink: the default segment's interfaces
  std::vector<NamedSegment> islands;    // island: every non-default segment of the policy
};

// `isolation` on `gateway` (the policy's entry for `gateway_id`) resolved against `policy`.
// Errors (kNotFound / kInvalidArgument) name what is wrong: unknown segment, profile or peer, a
// segment the gateway does not border, a host outside its segment, a rung that does not fit its
// profile, a name that cannot be used in an nft script. The result points into `policy`, which
// must outlive it.
Result<ResolvedIsolation> resolve(const Policy& policy, std::string_view gateway_id,
                                  const Gateway& gateway, const Isolation& isolation);

}  // namespace shadan::agent::planner_detail
