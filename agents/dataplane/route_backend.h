#pragma once

// The agent's routing side of the kernel: the optional second enforcement layer (blackhole routes
// for isolated prefixes), the administrative state of links (the link-down rung of the ladder)
// and the kernel's route lookup (which interface a destination leaves through, to keep a
// link-down off the management path). The real implementation is NetlinkRouteBackend
// (libnl-route-3).
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
#include <string>
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

  // Sets the administrative state (IFF_UP) of interface `ifname`, as `ip link set dev IFNAME
  // up|down` does; the carrier is not touched. Sends nothing when the link is already in that
  // state, so holding a link down emits no events. Errors: kNotFound naming the interface when
  // none has that name; kInvalidArgument for a name no interface can have (empty, over 15
  // bytes); kKernel when the kernel refuses.
  // Setting a link down first sets its net.ipv6.conf.IF.keep_addr_on_down, so that its IPv6
  // addresses survive and setting it up again brings it back as it was.
  virtual Status setLinkUp(const std::string& ifname, bool up) = 0;

  // Whether `ifname` is administratively up (IFF_UP), whatever its carrier. Errors as setLinkUp.
  virtual Result<bool> isLinkUp(const std::string& ifname) = 0;

  // The name of the interface the kernel's route lookup for the first address of `destination`
  // leaves through: the answer of `ip route get ADDR` (RTM_GETROUTE with RTA_DST only), i.e. a
  // packet this host sends, with no source address, mark or input interface given. "lo" for the
  // host's own addresses. "" when the kernel has no route there: no matching route (ENETUNREACH),
  // an unreachable or prohibit route. A blackhole is an error, not "": the kernel reports it as
  // EINVAL, which a refused request shares, and a caller asking "does this path use interface X"
  // must not read a failure as "no". The answer is the kernel's now: routes through a link that
  // is down are gone (ask before setting a link down), and a multipath route answers with the
  // one next hop the kernel's hash picks for this lookup.
  virtual Result<std::string> outputInterfaceTo(const IpPrefix& destination) = 0;
};

using RouteBackendPtr = std::unique_ptr<RouteBackend>;

}  // namespace shadan::agent
