#pragma once

// Watches routes, FIB rules and links for changes made by anyone (ARCHITECTURE.md
// "Reconciliation"): a NETLINK_ROUTE socket subscribed to RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE,
// RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE and RTNLGRP_LINK. drain() returns one RouteChangeEvent per
// notification; `ours` marks Shadan's blackhole routes and FIB rules (route_backend.h).
//
// Contract with the daemon:
//   - fd() is non-blocking; put it in the event loop and call drain() when it is readable. No
//     threads, no callbacks; drain() never blocks.
//   - Re-sync routes when one of ours is deleted, a rule of ours is deleted, on link events (a
//     link going away takes its routes along), and on a `lost` event (ENOBUFS: notifications were
//     dropped, or unreadable).
//   - Unlike nf_tables' NEWGEN, rtnetlink notifications do not name the process that made the
//     change (the header's nlmsg_pid is the requester's netlink port id only when it asked for an
//     echo, 0 otherwise), so a repair can be audited as "route changed" but not "by whom".
//   - The daemon's own sync() produces events too (ours, kRouteAdded / kRouteDeleted...); it should
//     drain them right after a sync it made and discard them, or ignore ours-and-expected ones.
//
// Threading: not thread-safe; owned by the enforcement thread. The socket is bound to the network
// namespace of the thread that called open().

#include <cstdint>
#include <memory>
#include <vector>

#include "agents/dataplane/netlink_parse.h"
#include "agents/dataplane/route_backend.h"
#include "common/result.h"

struct mnl_socket;

namespace shadan::agent {

struct RouteMonitorOptions {
  RouteOwnership ours{kShadanRouteProtocol, kShadanRouteTable};
  // Receive buffer of the socket (SO_RCVBUFFORCE with CAP_NET_ADMIN, else SO_RCVBUF): a link
  // going down can withdraw thousands of routes at once. Tests make it tiny to provoke ENOBUFS.
  int receive_buffer_bytes = 8 << 20;
};

class RouteMonitor {
 public:
  static Result<std::unique_ptr<RouteMonitor>> open(const RouteMonitorOptions& options);

  RouteMonitor(const RouteMonitor&) = delete;
  RouteMonitor& operator=(const RouteMonitor&) = delete;
  ~RouteMonitor();

  // The socket, for the event loop's readiness wait. Owned by the monitor.
  int fd() const;

  // Reads the pending notifications (a bounded number of datagrams per call; the fd then stays
  // readable) and returns them in order. Fails only when the socket itself fails (not for EAGAIN
  // or ENOBUFS).
  Result<std::vector<RouteChangeEvent>> drain();

 private:
  struct SocketCloser {
    void operator()(mnl_socket* socket) const;
  };
  using SocketPtr = std::unique_ptr<mnl_socket, SocketCloser>;

  RouteMonitor(SocketPtr socket, RouteOwnership ours);

  SocketPtr socket_;
  RouteOwnership ours_;
  // 4-byte aligned (nlmsghdr), large enough for any notification datagram.
  std::vector<uint32_t> buffer_;
};

}  // namespace shadan::agent
