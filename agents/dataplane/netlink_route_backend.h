#pragma once

// RouteBackend over libnl-route-3. Shadan's blackhole routes live in table kShadanRouteTable,
// tagged with routing protocol kShadanRouteProtocol; per family, one FIB rule
// `pref kShadanRulePriority lookup kShadanRouteTable protocol kShadanRouteProtocol` sends every
// lookup through that table before main (see route_backend.h for why not main itself).
//
// What is ours:
//   - a route in kShadanRouteTable that is a blackhole carrying our protocol tag;
//   - a FIB rule carrying our protocol tag that looks up kShadanRouteTable (one with another
//     priority, e.g. left by an older build, is ours and stale: it is removed);
//   - a blackhole carrying our protocol tag in the MAIN table: what builds before the own table
//     installed. Such a route is ours and never desired there, so sync() removes it (an
//     "un-isolate" must not leave an old blackhole behind); list() does not report it.
// Every other route and rule (any other table, protocol, type) is never modified.
//
// Invariants after a successful sync(), per family (IPv4, IPv6 independently):
//   - the table holds exactly the desired prefixes of that family as our blackholes;
//   - our rule exists iff the table holds at least one of them. It is added after the routes
//     are in place and removed before the last of them is deleted; if it cannot be removed, the
//     routes of that family are kept (and the failure reported) rather than leave the rule
//     alone in front of an empty table that the next sync would still have to clean up.
//
// A foreign route in kShadanRouteTable (not a blackhole with our tag) means someone else uses
// our table id. Our rule would then steer every lookup of that family, ahead of main, into a
// table we do not control (a foreign default route there would capture all traffic), and our
// routes would change that other user's routing. So for that family sync() adds no route, adds
// no rule and removes our rule if present (the nftables layer still enforces the isolation),
// reports the conflict naming the foreign route and the prefixes not installed, and never
// deletes the foreign route. Our own routes already in the table are left as they are.
//
// Since the table is ours, routes are added with NLM_F_REPLACE (idempotent if one appeared since
// the dump). sync() reads the kernel state first and sends nothing for what is already in place,
// so a steady-state sync emits no route or rule events.
//
// Links and lookups: setLinkUp()/isLinkUp() read and change only IFF_UP of a named interface;
// outputInterfaceTo() asks the kernel's FIB as `ip route get` does. Neither touches routes,
// rules or any other flag.
//
// Threading: not thread-safe; owned by the enforcement thread. The netlink socket is bound to
// the network namespace of the thread that called create(): links and lookups are those of
// that namespace.

#include <memory>
#include <string>
#include <vector>

#include "agents/dataplane/route_backend.h"
#include "common/ip_prefix.h"
#include "common/result.h"

struct nl_sock;

namespace shadan::agent {

class NetlinkRouteBackend final : public RouteBackend {
 public:
  static Result<std::unique_ptr<NetlinkRouteBackend>> create();

  NetlinkRouteBackend(const NetlinkRouteBackend&) = delete;
  NetlinkRouteBackend& operator=(const NetlinkRouteBackend&) = delete;
  ~NetlinkRouteBackend() override;

  // Order: add missing routes (isolation is the fail-safe direction), add missing rules, remove
  // rules no longer backed by desired routes, remove our routes that are no longer desired.
  // Every step is attempted; the error names each failed prefix or rule and lists what was
  // changed.
  Status sync(const std::vector<IpPrefix>& desired) override;

  Result<std::vector<IpPrefix>> list() override;

  // rtnl_link_get_kernel by name, then rtnl_link_change with IFF_UP alone in the change mask.
  Status setLinkUp(const std::string& ifname, bool up) override;
  Result<bool> isLinkUp(const std::string& ifname) override;
  // One RTM_GETROUTE on this backend's socket (see route_backend.h for the contract).
  Result<std::string> outputInterfaceTo(const IpPrefix& destination) override;

 private:
  struct SockDeleter {
    void operator()(nl_sock* sock) const;
  };
  using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;

  explicit NetlinkRouteBackend(SockPtr sock);

  SockPtr sock_;
};

}  // namespace shadan::agent
