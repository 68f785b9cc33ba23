#pragma once

// RouteBackend over libnl-route-3: Shadan's blackhole routes in the main table, tagged with
// routing protocol kShadanRouteProtocol. A route is Shadan's when it is a blackhole carrying that
// tag; every other route (any other protocol or type, any other table) is never modified.
//
// Threading: not thread-safe; owned by the enforcement thread. The netlink socket is bound to
// the network namespace of the thread that called create().

#include <memory>
#include <vector>

#include "agents/dataplane/route_backend.h"
#include "common/ip_prefix.h"
#include "common/result.h"

struct nl_sock;

namespace shadan {

class NetlinkRouteBackend final : public RouteBackend {
 public:
  static Result<std::unique_ptr<NetlinkRouteBackend>> create();

  NetlinkRouteBackend(const NetlinkRouteBackend&) = delete;
  NetlinkRouteBackend& operator=(const NetlinkRouteBackend&) = delete;
  ~NetlinkRouteBackend() override;

  // Adds missing routes first (isolation is the fail-safe direction), then removes ours that are
  // no longer desired. Routes already in place are not re-sent, so a steady-state sync changes
  // nothing and emits no route events. A desired prefix already held by a foreign route with
  // the same key (table, prefix, metric) is left alone and reported as an error: replacing it
  // would modify someone else's route. Every step is attempted; the error lists what failed and
  // what was changed.
  Status sync(const std::vector<IpPrefix>& desired) override;

  Result<std::vector<IpPrefix>> list() override;

 private:
  struct SockDeleter {
    void operator()(nl_sock* sock) const;
  };
  using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;

  explicit NetlinkRouteBackend(SockPtr sock);

  SockPtr sock_;
};

}  // namespace shadan
