#pragma once

// Optional second enforcement layer: blackhole routes for isolated prefixes. The real
// implementation is NetlinkRouteBackend (libnl-route-3).
//
// The blackholes live in a routing table of Shadan's own (kShadanRouteTable), consulted through
// one FIB rule per family (priority kShadanRulePriority) ahead of the main table. They cannot
// live in main: an isolated segment is usually directly connected to the gateway, and the
// kernel's connected route for the same prefix (metric 0) either occupies the key our route
// would need or outranks it, so the blackhole would never take effect. A rule is consulted
// before main regardless of metrics; a lookup that finds nothing in our table falls through to
// the next rule, so only the isolated prefixes are affected. Only routes and rules carrying
// Shadan's own protocol tag are ever touched.
//
// Threading: not thread-safe; owned by the enforcement thread.

#include <cstdint>
#include <memory>
#include <vector>

#include "common/ip_prefix.h"
#include "common/result.h"

namespace shadan::agent {

// rtm_protocol / FRA_PROTOCOL value marking routes and FIB rules as Shadan's (free in
// /etc/iproute2/rt_protos).
inline constexpr uint8_t kShadanRouteProtocol = 83;

// Routing table holding Shadan's blackhole routes and nothing else. 0x5348 ("SH"): far from the
// small ids (1-252) administrators and tools usually assign by hand in /etc/iproute2/rt_tables,
// and from the reserved ones (253 default, 254 main, 255 local).
inline constexpr uint32_t kShadanRouteTable = 0x5348;  // 21320

// Priority of the FIB rule `lookup kShadanRouteTable`. After the local table's rule (0), so the
// gateway's own addresses are still delivered locally; before main (32766) and the rules that
// policy-routing tools usually install (VRF l3mdev 1000, Tailscale 5210-5270, wg-quick
// 32764-32765), so an isolated prefix cannot be routed around the blackhole.
inline constexpr uint32_t kShadanRulePriority = 83;

class RouteBackend {
 public:
  virtual ~RouteBackend() = default;

  // Makes Shadan's blackhole routes exactly `desired` (in kShadanRouteTable, with the FIB rule
  // of a family present exactly while the table holds routes of that family): adds the missing
  // ones, removes ours that are not desired, leaves everyone else's routes and rules alone. On
  // error, what was changed so far is reported in the message.
  virtual Status sync(const std::vector<IpPrefix>& desired) = 0;

  // Shadan's blackhole routes currently in kShadanRouteTable, sorted.
  virtual Result<std::vector<IpPrefix>> list() = 0;
};

using RouteBackendPtr = std::unique_ptr<RouteBackend>;

}  // namespace shadan::agent
