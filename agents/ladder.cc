#include "agents/ladder.h"

#include <algorithm>

#include "agents/policy_names.h"

namespace shadan::agent {
namespace {

Error invalid(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, message);
}

Status checkBorders(const Policy& policy, const std::string& gateway_id,
                    const std::string& segment) {
  if (!policy.findSegment(segment)) return unknownSegmentError(policy, segment);
  const Gateway* gateway = policy.findGateway(gateway_id);
  if (!gateway) {
    return makeError(ErrorCode::kNotFound, "gateway \"" + gateway_id + "\" is not in the policy");
  }
  if (std::find(gateway->borders.begin(), gateway->borders.end(), segment) ==
      gateway->borders.end()) {
    return invalid("gateway \"" + gateway_id + "\" does not border segment \"" + segment + "\"");
  }
  return okStatus();
}

// Every host of `hosts` in one segment (and in `expected` when not empty); that segment.
Result<std::string> segmentOfHosts(const Policy& policy, const std::vector<IpPrefix>& hosts,
                                   const std::string& expected) {
  if (hosts.empty()) return invalid("a host isolation names at least one host");
  std::string segment = expected;
  for (const IpPrefix& host : hosts) {
    SHADAN_ASSIGN_OR_RETURN(std::string inside, segmentOfHost(policy, host));
    if (segment.empty()) segment = inside;
    if (inside != segment) {
      return invalid("host " + host.toString() + " is in segment \"" + inside + "\", not \"" +
                     segment + "\" (one host order names hosts of one segment)");
    }
  }
  return segment;
}

std::string hostsLabel(const std::string& segment, const std::vector<IpPrefix>& hosts,
                       const std::string& profile) {
  if (hosts.empty()) return isolationLabel(IsolationScope::kHost, segment, std::nullopt, profile);
  std::string label = isolationLabel(IsolationScope::kHost, segment, hosts.front(), profile);
  if (hosts.size() > 1) label += " +" + std::to_string(hosts.size() - 1);
  return label;
}

}  // namespace

Result<std::vector<Isolation>> isolationsFor(const Policy& policy, const std::string& gateway_id,
                                             const IsolateRequest& request) {
  const Profile* profile = policy.findProfile(request.profile);
  if (!profile) return unknownProfileError(policy, request.profile);
  if (request.link_down && request.scope != IsolationScope::kUplink) {
    return invalid("--link-down goes with an uplink isolation only");
  }
  if (request.scope != IsolationScope::kHost && !request.hosts.empty()) {
    return invalid("only a host isolation names hosts");
  }
  const Gateway* gateway = policy.findGateway(gateway_id);
  if (!gateway) {
    return makeError(ErrorCode::kNotFound, "gateway \"" + gateway_id + "\" is not in the policy");
  }
  std::vector<Isolation> out;
  switch (request.scope) {
    case IsolationScope::kSegment:
      SHADAN_RETURN_IF_ERROR(checkBorders(policy, gateway_id, request.segment));
      out.push_back(Isolation{request.segment, request.profile});
      return out;
    case IsolationScope::kHost: {
      SHADAN_ASSIGN_OR_RETURN(std::string segment,
                              segmentOfHosts(policy, request.hosts, request.segment));
      SHADAN_RETURN_IF_ERROR(checkBorders(policy, gateway_id, segment));
      for (const IpPrefix& host : request.hosts) {
        out.push_back(Isolation{segment, request.profile, IsolationScope::kHost, host});
      }
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
      return out;
    }
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      break;
  }
  const std::string rung = isolationScopeName(request.scope);
  if (!request.segment.empty()) return invalid("an " + rung + " isolation names no segment");
  if (!profile->isFull()) {
    return invalid("profile \"" + request.profile + "\" has peers; an " + rung +
                   " isolation takes a profile without peers");
  }
  if (request.scope == IsolationScope::kUplink) {
    if (uplinkInterfaces(policy, *gateway) == nullptr) {
      return invalid("gateway \"" + gateway_id +
                     "\" has no uplink: the policy names no interfaces of the default segment "
                     "for it");
    }
    if (request.link_down && gateway->link_down.empty()) {
      return invalid("the policy allows no link-down on gateway \"" + gateway_id +
                     "\" (gateway member \"link_down\")");
    }
  }
  out.push_back(Isolation{"", request.profile, request.scope});
  return out;
}

bool restoreLifts(const RestoreRequest& request, const Isolation& isolation) {
  if (request.profile && isolation.profile != *request.profile) return false;
  if (!request.scope) {
    if (!request.segment) return true;
    return isolation.scope == IsolationScope::kSegment && isolation.segment == *request.segment;
  }
  if (isolation.scope != *request.scope) return false;
  switch (*request.scope) {
    case IsolationScope::kSegment:
      return !request.segment || isolation.segment == *request.segment;
    case IsolationScope::kHost:
      if (request.segment && isolation.segment != *request.segment) return false;
      return isolation.host && std::find(request.hosts.begin(), request.hosts.end(),
                                         *isolation.host) != request.hosts.end();
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      return true;
  }
  return false;
}

const ActiveIsolation* firstNotReleasable(const DesiredState& state, const RestoreRequest& request,
                                          int64_t now_ms) {
  for (const ActiveIsolation& active : state.isolations) {
    const bool in_force = !active.expires_unix_ms || *active.expires_unix_ms > now_ms;
    if (in_force && !active.automatic && restoreLifts(request, active.isolation)) return &active;
  }
  return nullptr;
}

Status checkRestoreRequest(const Policy& policy, const RestoreRequest& request) {
  const bool host = request.scope == IsolationScope::kHost;
  if (!host && !request.hosts.empty()) return invalid("only a host restore names hosts");
  if (host) {
    if (request.hosts.empty()) return invalid("a host restore names at least one host");
    // The same checks as the isolate: a malformed, too wide or management address is a mistake
    // worth saying, not a silent no-op.
    Result<std::string> segment =
        segmentOfHosts(policy, request.hosts, request.segment.value_or(""));
    if (!segment.ok()) return segment.error();
  }
  if ((request.scope == IsolationScope::kUplink || request.scope == IsolationScope::kIsland) &&
      request.segment) {
    return invalid(std::string("an ") + isolationScopeName(*request.scope) +
                   " restore names no segment");
  }
  return okStatus();
}

std::string describeIsolate(const IsolateRequest& request) {
  if (request.scope == IsolationScope::kHost) {
    return hostsLabel(request.segment, request.hosts, request.profile);
  }
  return isolationLabel(request.scope, request.segment, std::nullopt, request.profile);
}

std::string describeRestore(const RestoreRequest& request) {
  const std::string profile = request.profile.value_or("*");
  if (!request.scope) return request.segment ? *request.segment + ":" + profile : "*";
  if (*request.scope == IsolationScope::kHost) {
    return hostsLabel(request.segment.value_or("*"), request.hosts, profile);
  }
  return isolationLabel(*request.scope, request.segment.value_or("*"), std::nullopt, profile);
}

std::vector<IpPrefix> conntrackPrefixes(const Policy& policy,
                                        const std::vector<Isolation>& isolations) {
  std::vector<IpPrefix> prefixes;
  const auto add_segment = [&](const std::string& name) {
    const Segment* segment = policy.findSegment(name);
    if (segment)
      prefixes.insert(prefixes.end(), segment->prefixes.begin(), segment->prefixes.end());
  };
  for (const Isolation& isolation : isolations) {
    switch (isolation.scope) {
      case IsolationScope::kSegment:
        add_segment(isolation.segment);
        break;
      case IsolationScope::kHost:
        if (isolation.host) prefixes.push_back(*isolation.host);
        break;
      case IsolationScope::kIsland:
        for (const auto& [name, segment] : policy.segments) add_segment(name);
        break;
      case IsolationScope::kUplink:
        break;
    }
  }
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  return prefixes;
}

bool mergeIsolations(DesiredState& state, const std::vector<Isolation>& wanted,
                     const ActiveIsolation& fields) {
  bool changed = false;
  std::vector<ActiveIsolation> added;
  for (const Isolation& isolation : wanted) {
    auto* existing = const_cast<ActiveIsolation*>(state.find(isolation));
    if (existing == nullptr) {
      ActiveIsolation active = fields;
      active.isolation = isolation;
      added.push_back(std::move(active));
      continue;
    }
    if (existing->automatic && !fields.automatic) {
      // Confirmed: whoever ordered it again without `automatic` made it theirs.
      existing->automatic = false;
      changed = true;
    }
    if (fields.link_down && !existing->link_down) {
      // The last rung of an uplink already cut: the link goes down too, until restored.
      existing->link_down = true;
      changed = true;
    }
    if (existing->drill && !fields.drill) {
      // A real order for what a drill isolated: it is real from now on, and holds until restored.
      existing->drill = false;
      existing->expires_unix_ms = fields.expires_unix_ms;
      existing->origin = fields.origin;
      changed = true;
    } else if (existing->expires_unix_ms) {
      if (!fields.expires_unix_ms) {
        existing->expires_unix_ms.reset();
        changed = true;
      } else if (*fields.expires_unix_ms > *existing->expires_unix_ms) {
        existing->expires_unix_ms = fields.expires_unix_ms;
        changed = true;
      }
    }
  }
  if (!added.empty()) {
    for (ActiveIsolation& active : added) state.isolations.push_back(std::move(active));
    std::sort(state.isolations.begin(), state.isolations.end(),
              [](const auto& a, const auto& b) { return a.isolation < b.isolation; });
    changed = true;
  }
  return changed;
}

std::vector<std::string> ackLabels(const DesiredState& state, size_t max_hosts) {
  size_t hosts = 0;
  for (const ActiveIsolation& active : state.isolations) {
    if (active.isolation.scope == IsolationScope::kHost) ++hosts;
  }
  std::vector<std::string> labels;
  for (const ActiveIsolation& active : state.isolations) {
    const Isolation& isolation = active.isolation;
    if (isolation.scope != IsolationScope::kHost || hosts <= max_hosts) {
      labels.push_back(isolationLabel(isolation));
      continue;
    }
    std::string summary = shadan::isolationLabel(IsolationScope::kHost, isolation.segment,
                                                 std::nullopt, isolation.profile);
    if (labels.empty() || labels.back() != summary) labels.push_back(std::move(summary));
  }
  return labels;
}

std::string confirmationNeeded(const Policy& policy, IsolationScope scope,
                               const std::string& segment, const std::vector<IpPrefix>& hosts) {
  switch (scope) {
    case IsolationScope::kUplink:
      return "the UPLINK (everything through the default segment's interfaces)";
    case IsolationScope::kIsland:
      return "the ISLAND (every segment from every other and from the default segment)";
    case IsolationScope::kHost: {
      if (hosts.empty()) return "";
      Result<std::string> inside = segmentOfHost(policy, hosts.front());
      const Segment* found = inside.ok() ? policy.findSegment(*inside) : nullptr;
      if (found && found->is_protected) return "hosts in PROTECTED segment \"" + *inside + "\"";
      return "";
    }
    case IsolationScope::kSegment: {
      const Segment* found = policy.findSegment(segment);
      if (found && found->is_protected) return "PROTECTED segment \"" + segment + "\"";
      return "";
    }
  }
  return "";
}

std::vector<std::string> linksHeldDown(const Policy& policy, const std::string& gateway_id,
                                       bool uplink_link_down_active) {
  if (!uplink_link_down_active) return {};
  const Gateway* gateway = policy.findGateway(gateway_id);
  return gateway ? gateway->link_down : std::vector<std::string>{};
}

}  // namespace shadan::agent
