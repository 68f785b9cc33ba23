// A scenario against the policy it runs on, and its probes expanded to lab places.

#include <algorithm>
#include <set>

#include "cli/drill/scenario.h"
#include "common/strict_json.h"

namespace shadan::drill {
namespace {

bool hasFamily(const Segment& segment, IpFamily family) {
  return std::any_of(segment.prefixes.begin(), segment.prefixes.end(),
                     [family](const IpPrefix& p) { return p.family() == family; });
}

// The lab's controller host has an address of a family when the policy's management rules
// name one (the lab puts the controller on the management path they describe).
bool controllerHasFamily(const Policy& policy, IpFamily family) {
  return std::any_of(policy.always_allow.begin(), policy.always_allow.end(),
                     [family](const ManagementRule& r) { return r.prefix.family() == family; });
}

bool borders(const Gateway& gateway, const std::string& segment) {
  return std::find(gateway.borders.begin(), gateway.borders.end(), segment) !=
         gateway.borders.end();
}

std::vector<std::string> borderingGateways(const Policy& policy, const std::string& segment) {
  std::vector<std::string> out;
  for (const auto& [id, gateway] : policy.gateways) {
    if (borders(gateway, segment)) out.push_back(id);
  }
  return out;
}

const char* familyText(IpFamily family) { return family == IpFamily::kV4 ? "IPv4" : "IPv6"; }

std::vector<IpFamily> familiesOf(ProbeFamily family) {
  switch (family) {
    case ProbeFamily::kIpv4:
      return {IpFamily::kV4};
    case ProbeFamily::kIpv6:
      return {IpFamily::kV6};
    case ProbeFamily::kAll:
      break;
  }
  return {IpFamily::kV4, IpFamily::kV6};
}

// Whether a concrete (not "*", not an address) endpoint has an address of `family` in the lab.
bool endpointHasFamily(const Policy& policy, const Endpoint& endpoint, IpFamily family) {
  switch (endpoint.kind) {
    case Endpoint::Kind::kController:
      return controllerHasFamily(policy, family);
    case Endpoint::Kind::kInternet:
      return policy.defaultSegment() != nullptr;
    case Endpoint::Kind::kAddress:
      return endpoint.address->family() == family;
    case Endpoint::Kind::kSegment:
      break;
  }
  const Segment* segment = policy.findSegment(endpoint.segment);
  return segment != nullptr && hasFamily(*segment, family);
}

class ScenarioChecker {
 public:
  ScenarioChecker(const Policy& policy, std::string_view source)
      : policy_(policy), source_(source) {}

  Status check(const Scenario& scenario) {
    std::vector<std::string> detectors;
    for (size_t i = 0; i < scenario.steps.size(); ++i) {
      const std::string pointer = jsonPointerAppend("/steps", i);
      SHADAN_RETURN_IF_ERROR(
          std::visit([&](const auto& action) { return checkStep(action, pointer); },
                     scenario.steps[i].action));
      if (const auto* alert = std::get_if<AlertStep>(&scenario.steps[i].action)) {
        detectors.push_back(alert->detector);
      }
    }
    if (scenario.response) {
      auto checked =
          controller::checkResponseConfig(*scenario.response, policy_, detectors, source_);
      if (!checked.ok()) return makeError(ErrorCode::kPolicy, checked.error().message);
    }
    return okStatus();
  }

 private:
  Error fail(const std::string& pointer, const std::string& reason) const {
    return makeError(ErrorCode::kPolicy,
                     std::string(source_) + ": " + jsonPointerDisplay(pointer) + ": " + reason);
  }

  Result<const Segment*> segmentNamed(const std::string& name, const std::string& pointer) const {
    const Segment* segment = policy_.findSegment(name);
    if (segment == nullptr) {
      return fail(pointer, "unknown segment " + quoteForMessage(name) + " in policy " +
                               quoteForMessage(policy_.name));
    }
    return segment;
  }

  Result<const Gateway*> gatewayNamed(const std::string& id, const std::string& pointer) const {
    const Gateway* gateway = policy_.findGateway(id);
    if (gateway == nullptr) {
      return fail(pointer, "unknown gateway " + quoteForMessage(id) + " in policy " +
                               quoteForMessage(policy_.name));
    }
    return gateway;
  }

  // A segment an order cuts: known, not the default one, bordered, and (isolate) unprotected.
  Status checkCutSegment(const std::string& name, const std::string& pointer, bool isolate) const {
    SHADAN_ASSIGN_OR_RETURN(auto segment, segmentNamed(name, pointer));
    if (segment->is_default) {
      return fail(pointer, "segment " + name +
                               " is the default segment: it is never isolated (cut the uplink)");
    }
    if (isolate && segment->is_protected) {
      return fail(pointer, "segment " + name + " is protected: it is never isolated");
    }
    if (borderingGateways(policy_, name).empty()) {
      return fail(pointer, "no gateway of the policy borders segment " + name);
    }
    return okStatus();
  }

  // A lab place: its segment and gateway exist, the gateway borders the segment, and it has an
  // address of every family in `families` (the endpoint's segment member is named for a
  // missing family).
  Status checkPlace(const Endpoint& endpoint, const std::string& pointer,
                    const std::vector<IpFamily>& families) const {
    if (endpoint.kind == Endpoint::Kind::kAddress) return okStatus();
    if (endpoint.kind == Endpoint::Kind::kInternet && policy_.defaultSegment() == nullptr) {
      return fail(jsonPointerAppend(pointer, "node"),
                  "the policy has no default segment, so the lab has no internet node");
    }
    if (endpoint.kind == Endpoint::Kind::kSegment && endpoint.segment != kEverySegment) {
      const std::string segment_pointer = jsonPointerAppend(pointer, "segment");
      SHADAN_ASSIGN_OR_RETURN(auto segment, segmentNamed(endpoint.segment, segment_pointer));
      if (segment->is_default) {
        return fail(segment_pointer, "segment " + endpoint.segment +
                                         " is the default segment: use {\"node\": \"internet\"}");
      }
      if (!endpoint.gateway.empty()) {
        const std::string gateway_pointer = jsonPointerAppend(pointer, "gateway");
        SHADAN_ASSIGN_OR_RETURN(auto gateway, gatewayNamed(endpoint.gateway, gateway_pointer));
        if (!borders(*gateway, endpoint.segment)) {
          return fail(gateway_pointer, "gateway " + endpoint.gateway + " does not border segment " +
                                           endpoint.segment);
        }
      } else if (borderingGateways(policy_, endpoint.segment).empty()) {
        return fail(segment_pointer, "no gateway of the policy borders segment " +
                                         endpoint.segment + ", so the lab has no host in it");
      }
      for (IpFamily family : families) {
        if (!hasFamily(*segment, family)) {
          return fail(segment_pointer,
                      "segment " + endpoint.segment + " has no " + familyText(family) + " prefix");
        }
      }
      return okStatus();
    }
    if (endpoint.kind == Endpoint::Kind::kController) {
      for (IpFamily family : families) {
        if (!controllerHasFamily(policy_, family)) {
          return fail(jsonPointerAppend(pointer, "node"),
                      std::string("the lab's controller has no ") + familyText(family) +
                          " address (no " + familyText(family) +
                          " prefix in management.always_allow)");
        }
      }
    }
    return okStatus();
  }

  Status checkRung(const Rung& rung, const std::string& pointer, bool isolate) const {
    if (rung.profile && policy_.findProfile(*rung.profile) == nullptr) {
      return fail(jsonPointerAppend(pointer, "profile"),
                  "unknown profile " + quoteForMessage(*rung.profile) + " in policy " +
                      quoteForMessage(policy_.name));
    }
    switch (rung.scope) {
      case IsolationScope::kSegment:
        return checkCutSegment(rung.segment, jsonPointerAppend(pointer, "segment"), isolate);
      case IsolationScope::kHost:
        return checkHosts(rung, pointer, isolate);
      case IsolationScope::kUplink:
      case IsolationScope::kIsland:
        break;
    }
    const bool uplink = rung.scope == IsolationScope::kUplink;
    std::vector<std::string> targets = rung.gateways;
    for (size_t i = 0; i < rung.gateways.size(); ++i) {
      const std::string gateway_pointer =
          jsonPointerAppend(jsonPointerAppend(pointer, "gateways"), i);
      SHADAN_ASSIGN_OR_RETURN(auto gateway, gatewayNamed(rung.gateways[i], gateway_pointer));
      if (uplink && uplinkInterfaces(policy_, *gateway) == nullptr) {
        return fail(gateway_pointer, "gateway " + gateway->id +
                                         " has no interfaces of the default segment in the "
                                         "policy, so it has no uplink to cut");
      }
    }
    if (targets.empty()) {
      for (const auto& [id, gateway] : policy_.gateways) {
        if (!uplink || uplinkInterfaces(policy_, gateway) != nullptr) targets.push_back(id);
      }
      if (targets.empty()) {
        return fail(jsonPointerAppend(pointer, "scope"),
                    uplink ? "no gateway of the policy has interfaces of a default segment (an "
                             "uplink)"
                           : "the policy has no gateway");
      }
    }
    if (rung.link_down) {
      for (const std::string& id : targets) {
        if (policy_.findGateway(id)->link_down.empty()) {
          return fail(jsonPointerAppend(pointer, "link_down"),
                      "the policy allows no link-down on gateway " + id +
                          " (gateway member \"link_down\")");
        }
      }
    }
    return okStatus();
  }

  // Hosts of one segment, as the controller takes them: addresses must lie in a segment
  // (segmentOfHost), endpoints name one; all the same segment.
  Status checkHosts(const Rung& rung, const std::string& pointer, bool isolate) const {
    std::string first_segment;
    const std::vector<IpFamily> families = rung.hosts_family == ProbeFamily::kAll
                                               ? std::vector<IpFamily>{}
                                               : familiesOf(rung.hosts_family);
    for (size_t i = 0; i < rung.hosts.size(); ++i) {
      const Endpoint& host = rung.hosts[i];
      const std::string host_pointer = jsonPointerAppend(jsonPointerAppend(pointer, "hosts"), i);
      std::string segment;
      if (host.kind == Endpoint::Kind::kAddress) {
        auto found = segmentOfHost(policy_, *host.address);
        if (!found.ok()) return fail(host_pointer, found.error().message);
        segment = *found;
      } else {
        SHADAN_RETURN_IF_ERROR(checkPlace(host, host_pointer, families));
        segment = host.segment;
      }
      SHADAN_RETURN_IF_ERROR(checkCutSegment(segment, host_pointer, isolate));
      if (first_segment.empty()) first_segment = segment;
      if (segment != first_segment) {
        return fail(host_pointer, "lies in segment " + segment + ", not " + first_segment +
                                      ": one order quarantines hosts of one segment");
      }
    }
    return okStatus();
  }

  Status checkStep(const IsolateStep& step, const std::string& pointer) const {
    return checkRung(step.rung, pointer, true);
  }
  Status checkStep(const RestoreStep& step, const std::string& pointer) const {
    return checkRung(step.rung, pointer, false);
  }
  Status checkStep(const AlertStep& step, const std::string& pointer) const {
    for (const auto& [name, side] : {std::pair{"src", &step.src}, std::pair{"dst", &step.dst}}) {
      if (!*side) continue;
      const std::string side_pointer = jsonPointerAppend(pointer, name);
      if ((*side)->kind == Endpoint::Kind::kAddress) {
        if ((*side)->address->family() != step.family) {
          return fail(side_pointer, std::string("is not an ") + familyText(step.family) +
                                        " address (the alert's family)");
        }
        continue;
      }
      SHADAN_RETURN_IF_ERROR(checkPlace(**side, side_pointer, {step.family}));
    }
    return okStatus();
  }
  Status checkStep(const FaultStep& step, const std::string& pointer) const {
    if (step.gateway.empty()) return okStatus();
    SHADAN_ASSIGN_OR_RETURN(auto gateway,
                            gatewayNamed(step.gateway, jsonPointerAppend(pointer, "gateway")));
    (void)gateway;
    return okStatus();
  }
  Status checkStep(const WaitStep& step, const std::string& pointer) const {
    if (step.until != WaitCondition::kSegmentIsolated) return okStatus();
    return checkCutSegment(step.segment, jsonPointerAppend(pointer, "segment"), false);
  }
  Status checkStep(const ExpectStep& step, const std::string& pointer) const {
    for (size_t i = 0; i < step.probes.size(); ++i) {
      const Probe& probe = step.probes[i];
      const std::string probe_pointer = jsonPointerAppend(jsonPointerAppend(pointer, "probes"), i);
      // An explicit family is required of both ends; `all` of neither, as long as they share one.
      const std::vector<IpFamily> required =
          probe.family == ProbeFamily::kAll ? std::vector<IpFamily>{} : familiesOf(probe.family);
      SHADAN_RETURN_IF_ERROR(
          checkPlace(probe.from, jsonPointerAppend(probe_pointer, "from"), required));
      SHADAN_RETURN_IF_ERROR(
          checkPlace(probe.to, jsonPointerAppend(probe_pointer, "to"), required));
      if (probe.family == ProbeFamily::kAll) {
        const std::vector<IpFamily> families = familiesOf(ProbeFamily::kAll);
        const bool shared = std::any_of(families.begin(), families.end(), [&](IpFamily family) {
          const auto usable = [&](const Endpoint& e) {
            return (e.kind == Endpoint::Kind::kSegment && e.segment == kEverySegment) ||
                   endpointHasFamily(policy_, e, family);
          };
          return usable(probe.from) && usable(probe.to);
        });
        if (!shared) {
          return fail(jsonPointerAppend(probe_pointer, "family"),
                      "from and to have no address family in common");
        }
      }
    }
    return okStatus();
  }

  const Policy& policy_;
  std::string_view source_;
};

// The lab places an endpoint stands for in `family`; `other` is the probe's other end.
std::vector<ConcreteEndpoint> placesOf(const Policy& policy, const Endpoint& endpoint,
                                       const Endpoint& other, IpFamily family) {
  std::vector<ConcreteEndpoint> out;
  if (endpoint.kind == Endpoint::Kind::kController || endpoint.kind == Endpoint::Kind::kInternet) {
    if (endpointHasFamily(policy, endpoint, family)) out.push_back({endpoint.kind, "", ""});
    return out;
  }
  if (endpoint.kind != Endpoint::Kind::kSegment) return out;
  std::vector<std::string> segments;
  if (endpoint.segment == kEverySegment) {
    const bool other_is_segment =
        other.kind == Endpoint::Kind::kSegment && other.segment != kEverySegment;
    for (const auto& [name, segment] : policy.segments) {
      if (segment.is_default || (other_is_segment && name == other.segment)) continue;
      segments.push_back(name);
    }
  } else {
    segments.push_back(endpoint.segment);
  }
  for (const std::string& name : segments) {
    const Segment* segment = policy.findSegment(name);
    if (segment == nullptr || !hasFamily(*segment, family)) continue;
    const std::vector<std::string> gateways = endpoint.gateway.empty()
                                                  ? borderingGateways(policy, name)
                                                  : std::vector<std::string>{endpoint.gateway};
    for (const std::string& gateway : gateways) {
      out.push_back({Endpoint::Kind::kSegment, name, gateway});
    }
  }
  return out;
}

}  // namespace

Status checkScenarioAgainstPolicy(const Scenario& scenario, const Policy& policy,
                                  std::string_view source) {
  return ScenarioChecker(policy, source).check(scenario);
}

std::vector<ConcreteProbe> expandProbe(const Probe& probe, const Policy& policy) {
  std::vector<ConcreteProbe> out;
  for (IpFamily family : familiesOf(probe.family)) {
    for (const ConcreteEndpoint& from : placesOf(policy, probe.from, probe.to, family)) {
      for (const ConcreteEndpoint& to : placesOf(policy, probe.to, probe.from, family)) {
        if (from == to) continue;
        out.push_back(ConcreteProbe{from, to, probe.proto, probe.port, family, probe.expected,
                                    probe.established});
      }
    }
  }
  return out;
}

}  // namespace shadan::drill
