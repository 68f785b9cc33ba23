#pragma once

// Optional second enforcement layer: blackhole routes for isolated prefixes. The real
// implementation is NetlinkRouteBackend (libnl-route-3). Only routes carrying Shadan's own
// routing protocol tag are ever touched.
//
// Threading: not thread-safe; owned by the enforcement thread.

#include <cstdint>
#include <memory>
#include <vector>

#include "common/ip_prefix.h"
#include "common/result.h"

namespace shadan {

// rtm_protocol value marking routes as Shadan's (free in /etc/iproute2/rt_protos).
inline constexpr uint8_t kShadanRouteProtocol = 83;

class RouteBackend {
 public:
  virtual ~RouteBackend() = default;

  // Makes Shadan's blackhole routes exactly `desired` (main table): adds the missing ones
  // (idempotently, NLM_F_REPLACE), removes ours that are not desired, leaves everyone else's
  // alone. On error, what was changed so far is reported in the message.
  virtual Status sync(const std::vector<IpPrefix>& desired) = 0;

  // Shadan's blackhole routes currently in the kernel, sorted.
  virtual Result<std::vector<IpPrefix>> list() = 0;
};

using RouteBackendPtr = std::unique_ptr<RouteBackend>;

}  // namespace shadan
