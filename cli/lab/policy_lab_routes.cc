#include "cli/lab/policy_lab_routes.h"

#include <algorithm>
#include <deque>
#include <limits>

namespace shadan {
namespace {

constexpr int kUnreachable = std::numeric_limits<int>::max() / 2;

LabRoute routeVia(std::optional<IpPrefix> to, IpFamily family, const DualAddress& via) {
  const LabAddress& address = family == IpFamily::kV4 ? via.v4 : via.v6;
  return LabRoute{to, LabAddress{family, address.address, family == IpFamily::kV4 ? 32 : 128}};
}

}  // namespace

void LabRouting::setGatewayCount(size_t count) { neighbors_.resize(count); }

void LabRouting::addLink(size_t a, const DualAddress& a_side, size_t b, const DualAddress& b_side) {
  neighbors_.at(a).push_back({b, b_side});
  neighbors_.at(b).push_back({a, a_side});
}

void LabRouting::addUplink(size_t gateway, const DualAddress& gateway_side,
                           const DualAddress& internet_side) {
  uplinks_.push_back({gateway, internet_side});
  internet_hops_.push_back({gateway, gateway_side});
}

void LabRouting::addGroup(const IpPrefix& aggregate, std::vector<RouteSlot> slots) {
  groups_.push_back({aggregate, std::move(slots)});
}

std::vector<std::vector<int>> LabRouting::distances() const {
  const size_t count = neighbors_.size();
  std::vector<std::vector<int>> distance(count, std::vector<int>(count, kUnreachable));
  for (size_t from = 0; from < count; ++from) {
    std::deque<size_t> queue = {from};
    distance[from][from] = 0;
    while (!queue.empty()) {
      const size_t at = queue.front();
      queue.pop_front();
      for (const Hop& hop : neighbors_[at]) {
        if (distance[from][hop.gateway] != kUnreachable) continue;
        distance[from][hop.gateway] = distance[from][at] + 1;
        queue.push_back(hop.gateway);
      }
    }
  }
  return distance;
}

std::optional<size_t> LabRouting::nearest(const std::vector<Hop>& hops,
                                          const std::vector<size_t>& owners,
                                          const std::vector<std::vector<int>>& distance) {
  std::optional<size_t> best;
  int best_distance = kUnreachable;
  for (size_t i = 0; i < hops.size(); ++i) {
    for (size_t owner : owners) {
      const int d = distance[hops[i].gateway][owner];
      if (d < best_distance) {
        best_distance = d;
        best = i;
      }
    }
  }
  return best;
}

void LabRouting::addGroupRoutes(LabNode& node, const RouteGroup& group,
                                const std::vector<Hop>& hops, std::optional<size_t> self,
                                std::optional<size_t> covered_by_default,
                                const std::vector<std::vector<int>>& distance) {
  const IpFamily family = group.aggregate.family();
  bool has_local = false;
  std::vector<std::optional<size_t>> choices;
  for (const RouteSlot& slot : group.slots) {
    if (self && slot.owner == *self) {
      has_local = true;
      choices.push_back(std::nullopt);
    } else {
      choices.push_back(nearest(hops, {slot.owner}, distance));
    }
  }
  const auto wanted = [&](const std::optional<size_t>& choice) {
    return choice && choice != covered_by_default;
  };
  const bool one_hop = !choices.empty() && choices.front() &&
                       std::all_of(choices.begin(), choices.end(),
                                   [&](const auto& choice) { return choice == choices.front(); });
  if (!has_local && one_hop) {
    if (wanted(choices.front())) {
      node.routes.push_back(routeVia(group.aggregate, family, hops[*choices.front()].via));
    }
    return;
  }
  for (size_t i = 0; i < group.slots.size(); ++i) {
    if (wanted(choices[i])) {
      node.routes.push_back(routeVia(group.slots[i].subnet, family, hops[*choices[i]].via));
    }
  }
}

void LabRouting::addRoutes(LabSpec& spec, const std::string& internet_node) const {
  const std::vector<std::vector<int>> distance = distances();
  std::vector<size_t> uplink_gateways;
  for (const Hop& uplink : uplinks_) uplink_gateways.push_back(uplink.gateway);
  for (size_t gateway = 0; gateway < neighbors_.size(); ++gateway) {
    LabNode& node = spec.nodes.at(gateway);
    for (const RouteGroup& group : groups_) {
      addGroupRoutes(node, group, neighbors_[gateway], gateway, std::nullopt, distance);
    }
    // Unknown destinations are the default segment: out through this gateway's own uplink, or
    // towards the nearest gateway that has one.
    const auto own = std::find_if(uplinks_.begin(), uplinks_.end(),
                                  [&](const Hop& uplink) { return uplink.gateway == gateway; });
    std::optional<DualAddress> via;
    if (own != uplinks_.end()) {
      via = own->via;
    } else if (auto hop = nearest(neighbors_[gateway], uplink_gateways, distance)) {
      via = neighbors_[gateway][*hop].via;
    }
    if (via) {
      node.routes.push_back(routeVia(std::nullopt, IpFamily::kV4, *via));
      node.routes.push_back(routeVia(std::nullopt, IpFamily::kV6, *via));
    }
  }
  if (internet_node.empty() || internet_hops_.empty()) return;
  auto node = std::find_if(spec.nodes.begin(), spec.nodes.end(), [&](const LabNode& candidate) {
    return candidate.name == internet_node;
  });
  if (node == spec.nodes.end()) return;
  node->routes.push_back(routeVia(std::nullopt, IpFamily::kV4, internet_hops_.front().via));
  node->routes.push_back(routeVia(std::nullopt, IpFamily::kV6, internet_hops_.front().via));
  for (const RouteGroup& group : groups_) {
    addGroupRoutes(*node, group, internet_hops_, std::nullopt, 0, distance);
  }
}

}  // namespace shadan
