#include "agents/orders/order_target.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/isolation_scope.h"
#include "common/strict_json.h"

namespace shadan::agent {
namespace {

OrderRejection reject(RejectReason reason, std::string message) {
  return OrderRejection{reason, std::move(message)};
}

std::string gatewayName(std::string_view gateway_id) {
  return "gateway " + quoteForMessage(gateway_id);
}

std::optional<OrderRejection> checkSegmentKnown(const Authz& authz, const Policy& policy) {
  if (policy.findSegment(authz.segment) == nullptr) {
    return reject(RejectReason::kUnknownSegment,
                  "segment " + quoteForMessage(authz.segment) + " is not in this agent's policy");
  }
  return std::nullopt;
}

std::optional<OrderRejection> checkHosts(const Authz& authz, const Policy& policy,
                                         const Gateway* gateway, std::string_view gateway_id) {
  const bool borders = gateway != nullptr &&
                       std::find(gateway->borders.begin(), gateway->borders.end(), authz.segment) !=
                           gateway->borders.end();
  if (!borders) {
    return reject(RejectReason::kSegmentNotBordered,
                  gatewayName(gateway_id) + " does not border segment " +
                      quoteForMessage(authz.segment) + ": it cannot quarantine its hosts");
  }
  for (const IpPrefix& host : authz.hosts) {
    Result<std::string> segment = segmentOfHost(policy, host);
    if (!segment.ok()) {
      return reject(RejectReason::kHostNotInSegment, segment.error().message +
                                                         " (the order names segment " +
                                                         quoteForMessage(authz.segment) + ")");
    }
    if (*segment != authz.segment) {
      return reject(RejectReason::kHostNotInSegment,
                    "host " + host.toString() + " is in segment " + quoteForMessage(*segment) +
                        ", not in segment " + quoteForMessage(authz.segment) +
                        " that the order names");
    }
  }
  return std::nullopt;
}

std::optional<OrderRejection> checkUplink(const Authz& authz, const Policy& policy,
                                          const Gateway* gateway, std::string_view gateway_id) {
  const Segment* fallback = policy.defaultSegment();
  if (fallback == nullptr) {
    return reject(RejectReason::kNoUplinkInterfaces,
                  "the policy has no default segment, so no gateway has an uplink to cut");
  }
  const std::vector<std::string>* uplinks =
      gateway != nullptr ? uplinkInterfaces(policy, *gateway) : nullptr;
  if (uplinks == nullptr) {
    return reject(RejectReason::kNoUplinkInterfaces,
                  gatewayName(gateway_id) + " has no interfaces of the default segment " +
                      quoteForMessage(fallback->name) + " in the policy: no uplink to cut");
  }
  if (authz.link_down && gateway->link_down.empty()) {
    return reject(RejectReason::kLinkDownNotAllowed, "the policy allows no link-down on " +
                                                         gatewayName(gateway_id) +
                                                         " (its \"link_down\" list is empty)");
  }
  return std::nullopt;
}

std::optional<OrderRejection> checkIsland(const Policy& policy, const Gateway* gateway,
                                          std::string_view gateway_id) {
  const bool has_segment =
      gateway != nullptr &&
      std::any_of(gateway->borders.begin(), gateway->borders.end(), [&](const std::string& name) {
        const Segment* segment = policy.findSegment(name);
        return segment != nullptr && !segment->is_default;
      });
  if (!has_segment) {
    return reject(RejectReason::kNoIslandSegments,
                  gatewayName(gateway_id) +
                      " borders no segment other than the default one: nothing to island");
  }
  return std::nullopt;
}

}  // namespace

std::optional<OrderRejection> checkOrderTarget(const Authz& authz, const Policy& policy,
                                               std::string_view gateway_id) {
  const Gateway* gateway = policy.findGateway(gateway_id);
  std::optional<OrderRejection> rejection;
  switch (authz.scope) {
    case IsolationScope::kSegment:
      rejection = checkSegmentKnown(authz, policy);
      break;
    case IsolationScope::kHost:
      rejection = checkSegmentKnown(authz, policy);
      if (!rejection) rejection = checkHosts(authz, policy, gateway, gateway_id);
      break;
    case IsolationScope::kUplink:
      rejection = checkUplink(authz, policy, gateway, gateway_id);
      break;
    case IsolationScope::kIsland:
      rejection = checkIsland(policy, gateway, gateway_id);
      break;
  }
  if (rejection) return rejection;
  if (policy.findProfile(authz.profile) == nullptr) {
    return reject(RejectReason::kUnknownProfile,
                  "profile " + quoteForMessage(authz.profile) + " is not in this agent's policy");
  }
  return std::nullopt;
}

bool targetSegmentProtected(const Authz& authz, const Policy& policy) {
  if (authz.scope != IsolationScope::kSegment && authz.scope != IsolationScope::kHost) {
    return false;
  }
  const Segment* segment = policy.findSegment(authz.segment);
  return segment == nullptr || segment->is_protected;
}

std::optional<OrderRejection> checkAmongTargets(const Authz& authz, const Policy& policy,
                                                std::string_view gateway_id) {
  if (authz.targets_bordering) {
    const Gateway* gateway = policy.findGateway(gateway_id);
    if (gateway == nullptr || std::find(gateway->borders.begin(), gateway->borders.end(),
                                        authz.segment) == gateway->borders.end()) {
      return reject(RejectReason::kNotATarget, gatewayName(gateway_id) +
                                                   " does not border segment " +
                                                   quoteForMessage(authz.segment) +
                                                   ", and the authz targets the gateways that do");
    }
    return std::nullopt;
  }
  if (std::find(authz.targets.begin(), authz.targets.end(), gateway_id) == authz.targets.end()) {
    return reject(RejectReason::kNotATarget,
                  "agent " + quoteForMessage(gateway_id) + " is not among the authz targets");
  }
  return std::nullopt;
}

}  // namespace shadan::agent
