#pragma once

// Deletes connection-tracking entries of isolated segments. The real implementation is
// NetlinkConntrackBackend (libmnl, ctnetlink).
//
// Filter chains see every packet, so an isolation stops established flows without touching
// conntrack. Where NAT or flowtables are in play it does not: a NATed flow keeps its translation
// (and an offloaded flow skips the forward hook) as long as its entry lives, so the agent deletes
// the segment's entries when it isolates (see rulesetHasNat in agents/planner/lockout_check.h).
//
// An entry "matches" a list of prefixes when the source or destination address of its original
// or its reply tuple lies inside any of them (IPv4 and IPv6). Only the current network namespace
// is seen; every zone is.
//
// Threading: not thread-safe; owned by the enforcement thread.

#include <cstddef>
#include <memory>
#include <vector>

#include "common/ip_prefix.h"
#include "common/result.h"

namespace shadan::agent {

class ConntrackBackend {
 public:
  virtual ~ConntrackBackend() = default;

  // Deletes every matching entry; returns how many this call deleted. An entry that vanishes
  // between listing and deletion (expired, deleted by someone else) is not an error and not
  // counted. An empty `prefixes` deletes nothing. On error, the message says how many entries
  // were deleted before it.
  virtual Result<size_t> deleteMatching(const std::vector<IpPrefix>& prefixes) = 0;

  // How many entries match now.
  virtual Result<size_t> count(const std::vector<IpPrefix>& prefixes) = 0;
};

using ConntrackBackendPtr = std::unique_ptr<ConntrackBackend>;

}  // namespace shadan::agent
