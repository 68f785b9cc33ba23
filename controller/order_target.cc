#include "controller/order_target.h"

#include <algorithm>

#include "common/strict_json.h"

namespace shadan::controller {
namespace {

Error badTarget(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, message);
}

bool bordersSegment(const Gateway& gateway, const std::string& segment) {
  return std::find(gateway.borders.begin(), gateway.borders.end(), segment) !=
         gateway.borders.end();
}

// The members a rung does not take are refused rather than ignored: a caller who sent them
// meant something the order would not do.
Status checkMembersOfScope(const TargetRequest& request) {
  const bool has_segment =
      request.scope == IsolationScope::kSegment || request.scope == IsolationScope::kHost;
  const std::string scope = isolationScopeName(request.scope);
  if (!has_segment && !request.segment.empty()) {
    return badTarget("segment: an " + scope + " order names no segment (gateways: which ones)");
  }
  if (request.scope != IsolationScope::kHost && !request.hosts.empty()) {
    return badTarget("hosts: only a host order names hosts (scope is " + scope + ")");
  }
  if (has_segment && !request.gateways.empty()) {
    return badTarget("gateways: a " + scope +
                     " order goes to every gateway bordering its segment; only uplink and island "
                     "orders name gateways");
  }
  if (request.link_down &&
      (request.scope != IsolationScope::kUplink || request.action != OrderAction::kIsolate)) {
    return badTarget("link_down: only an uplink isolate sets links down (scope is " + scope +
                     ", action " + orderActionName(request.action) + ")");
  }
  if (request.scope == IsolationScope::kSegment && request.segment.empty()) {
    return badTarget("segment: required for a segment order");
  }
  return okStatus();
}

// Host scope: every host parsed, checked by segmentOfHost, and all in one segment (the one
// named, when one is).
Status resolveHosts(const Policy& policy, const TargetRequest& request, OrderTarget& target) {
  if (request.hosts.empty()) return badTarget("hosts: a host order names at least one host");
  if (request.hosts.size() > kMaxHostsPerOrder) {
    return badTarget("hosts: at most " + std::to_string(kMaxHostsPerOrder) + " per order, not " +
                     std::to_string(request.hosts.size()));
  }
  std::string first_host;
  for (const std::string& text : request.hosts) {
    Result<IpPrefix> host = IpPrefix::parse(text);
    if (!host.ok()) {
      return badTarget("hosts: " + quoteForMessage(text) +
                       " is not an address or prefix: " + host.error().message);
    }
    if (std::find(target.hosts.begin(), target.hosts.end(), *host) != target.hosts.end()) {
      return badTarget("hosts: " + host->toString() + " given twice");
    }
    Result<std::string> segment = segmentOfHost(policy, *host);
    if (!segment.ok()) return badTarget("hosts: " + segment.error().message);
    if (target.segment.empty()) {
      target.segment = *segment;
      first_host = host->toString();
    } else if (*segment != target.segment) {
      return badTarget("hosts: host " + host->toString() + " is in segment " + *segment + " but " +
                       first_host + " is in " + target.segment +
                       "; one order quarantines hosts of one segment");
    }
    target.hosts.push_back(*host);
  }
  if (!request.segment.empty() && request.segment != target.segment) {
    return badTarget("segment: the hosts lie in segment " + target.segment + ", not " +
                     request.segment);
  }
  return okStatus();
}

// Uplink and island: the named gateways (each once, each in the policy) or the rung's default.
Status resolveGateways(const Policy& policy, const TargetRequest& request, OrderTarget& target) {
  const bool uplink = request.scope == IsolationScope::kUplink;
  if (uplink && policy.defaultSegment() == nullptr) {
    return badTarget("scope: the policy has no default segment, so no gateway has an uplink");
  }
  for (const std::string& id : request.gateways) {
    const Gateway* gateway = policy.findGateway(id);
    if (gateway == nullptr) {
      return makeError(ErrorCode::kNotFound,
                       "gateways: unknown gateway " + quoteForMessage(id) + " (not in the policy)");
    }
    if (std::find(target.gateways.begin(), target.gateways.end(), id) != target.gateways.end()) {
      return badTarget("gateways: " + id + " given twice");
    }
    if (uplink && uplinkInterfaces(policy, *gateway) == nullptr) {
      return badTarget("gateways: gateway " + id + " has no interfaces of the default segment " +
                       policy.defaultSegment()->name +
                       " in the policy, so it has no uplink to cut");
    }
    target.gateways.push_back(id);
  }
  if (request.gateways.empty()) {
    for (const auto& [id, gateway] : policy.gateways) {
      if (!uplink || uplinkInterfaces(policy, gateway) != nullptr) target.gateways.push_back(id);
    }
  }
  if (target.gateways.empty()) {
    return badTarget(uplink ? "scope: no gateway of the policy has interfaces of the default "
                              "segment " +
                                  policy.defaultSegment()->name + " (its uplink)"
                            : std::string("scope: the policy has no gateway"));
  }
  if (request.link_down) {
    for (const std::string& id : target.gateways) {
      if (policy.findGateway(id)->link_down.empty()) {
        return badTarget("link_down: the policy allows no link-down on gateway " + id +
                         " (gateway member \"link_down\")");
      }
    }
  }
  return okStatus();
}

}  // namespace

Result<OrderTarget> resolveOrderTarget(const Policy& policy, const TargetRequest& request) {
  SHADAN_RETURN_IF_ERROR(checkMembersOfScope(request));
  OrderTarget target;
  target.scope = request.scope;
  target.link_down = request.link_down;
  if (!request.segment.empty() && policy.findSegment(request.segment) == nullptr) {
    return makeError(ErrorCode::kNotFound, "segment: unknown segment " + request.segment);
  }
  switch (request.scope) {
    case IsolationScope::kSegment:
      target.segment = request.segment;
      break;
    case IsolationScope::kHost:
      SHADAN_RETURN_IF_ERROR(resolveHosts(policy, request, target));
      break;
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      SHADAN_RETURN_IF_ERROR(resolveGateways(policy, request, target));
      return target;
  }
  target.segment_protected = policy.findSegment(target.segment)->is_protected;
  for (const auto& [id, gateway] : policy.gateways) {
    if (bordersSegment(gateway, target.segment)) target.gateways.push_back(id);
  }
  if (target.gateways.empty()) {
    return badTarget("segment: no gateway borders segment " + target.segment);
  }
  return target;
}

}  // namespace shadan::controller
