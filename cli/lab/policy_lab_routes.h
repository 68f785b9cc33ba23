#pragma once

// The static routes of a lab built from a policy (cli/lab/policy_lab.h): shortest paths over the
// gateway-to-gateway links, both families, computed from what the builder records. Pure.

#include <optional>
#include <string>
#include <vector>

#include "cli/lab/lab.h"
#include "common/ip_prefix.h"

namespace shadan {

// One interface's addresses in both families (every gateway link of such a lab is dual-stack).
struct DualAddress {
  LabAddress v4;
  LabAddress v6;
};

// A subnet on a link of gateway `owner` (an index into the gateways).
struct RouteSlot {
  IpPrefix subnet;
  size_t owner = 0;
};

// Subnets carved from one prefix (a segment prefix, a transit block). A gateway that has none of
// them on-link and reaches them all through one neighbour gets one route for the whole prefix.
struct RouteGroup {
  IpPrefix aggregate;
  std::vector<RouteSlot> slots;
};

// Not thread-safe. Gateways are numbered 0..n-1 and are nodes 0..n-1 of the spec.
class LabRouting {
 public:
  void setGatewayCount(size_t count);
  // Gateways a and b share a link; each side's addresses on it.
  void addLink(size_t a, const DualAddress& a_side, size_t b, const DualAddress& b_side);
  // Gateway `gateway`'s (first) link to the internet node, both sides' addresses.
  void addUplink(size_t gateway, const DualAddress& gateway_side, const DualAddress& internet_side);
  void addGroup(const IpPrefix& aggregate, std::vector<RouteSlot> slots);

  // Appends every gateway's routes (nodes 0..n-1 of `spec`) and, when `internet_node` is not
  // empty, that node's: a default route through its first gateway plus a route for whatever a
  // nearer gateway of it serves. Gateways route unknown destinations towards the internet.
  void addRoutes(LabSpec& spec, const std::string& internet_node) const;

 private:
  struct Hop {
    size_t gateway;
    DualAddress via;  // the next hop's addresses
  };

  std::vector<std::vector<int>> distances() const;
  // The hop (index into `hops`) nearest to any of `owners`; the first of equals.
  static std::optional<size_t> nearest(const std::vector<Hop>& hops,
                                       const std::vector<size_t>& owners,
                                       const std::vector<std::vector<int>>& distance);
  static void addGroupRoutes(LabNode& node, const RouteGroup& group, const std::vector<Hop>& hops,
                             std::optional<size_t> self, std::optional<size_t> covered_by_default,
                             const std::vector<std::vector<int>>& distance);

  std::vector<std::vector<Hop>> neighbors_;  // per gateway, in link order
  std::vector<Hop> uplinks_;                 // gateway -> internet node's address on its uplink
  std::vector<Hop> internet_hops_;           // the internet node's gateways, in link order
  std::vector<RouteGroup> groups_;
};

}  // namespace shadan
