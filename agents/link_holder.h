#pragma once

// The last rung of the ladder: `uplink --link-down` also sets the policy's `link_down`
// interfaces administratively down (IFF_UP cleared, through RouteBackend / libnl-route-3) and
// holds them there: a foreign `ip link set up` is undone on the next link event and audited.
// A restore sets up again exactly the links this agent held down, nothing else.
//
// Safety rule 1 holds here too: a link-down is refused when the route the kernel would take to
// any management prefix leaves through one of those interfaces.

#include <string>
#include <vector>

#include "agents/dataplane/route_backend.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent {

// Refuses (kInvalidArgument, naming the prefix and the interface) when a
// management prefix is routed through one of the gateway's link_down interfaces, or when the
// routes cannot be read (then nobody can say the path is safe).
Status checkLinkDownSafe(RouteBackend& routes, const Policy& policy, const std::string& gateway_id);

struct LinkChange {
  std::string ifname;
  bool up = false;  // the state it was set to
  friend bool operator==(const LinkChange&, const LinkChange&) = default;
};

struct LinkHoldResult {
  std::vector<LinkChange> changed;  // what had to be set
  std::vector<std::string> errors;  // "<ifname>: <why>", one per link that could not be set
};

// Sets every interface of `down` down where it is up, and every interface of `release` (held
// down before, no longer) up where it is down. Tries every link even when one fails.
LinkHoldResult holdLinks(RouteBackend& routes, const std::vector<std::string>& down,
                         const std::vector<std::string>& release);

}  // namespace shadan::agent
