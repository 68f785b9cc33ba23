#include "agents/planner/scope.h"

#include <algorithm>
#include <cctype>

namespace shadan::agent::planner_detail {
namespace {

// Names become nft identifiers inside the script; refuse anything that could change its meaning
// rather than trusting every caller to have validated the policy.
Status checkIdentifier(std::string_view what, std::string_view name) {
  const bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
      });
  if (!ok) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string(what) + " name \"" + std::string(name) +
                         "\" cannot be used in nftables set names (letters, digits, '_', '-'; "
                         "at most 64)");
  }
  return okStatus();
}

Status checkBorders(std::string_view gateway_id, const Gateway& gateway,
                    const std::string& segment) {
  if (std::find(gateway.borders.begin(), gateway.borders.end(), segment) == gateway.borders.end()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "gateway \"" + std::string(gateway_id) + "\" does not border segment \"" + segment + "\"");
  }
  return okStatus();
}

// Interface names go into the script between quotes; refuse any that could end the string.
Status checkInterfaceName(const std::string& name) {
  const bool ok =
      !name.empty() && name.size() < 16 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
               c == '@';
      });
  if (!ok) {
    return makeError(ErrorCode::kInvalidArgument,
                     "interface name \"" + name + "\" cannot be used in an nftables rule");
  }
  return okStatus();
}

// The rung-specific half of resolve(): what the scope itself needs from policy and gateway.
Status resolveScope(const Policy& policy, std::string_view gateway_id, const Gateway& gateway,
                    const Isolation& isolation, ResolvedIsolation& resolved) {
  const bool has_segment =
      isolation.scope == IsolationScope::kSegment || isolation.scope == IsolationScope::kHost;
  if (has_segment) {
    const auto segment_it = policy.segments.find(isolation.segment);
    if (segment_it == policy.segments.end()) {
      return makeError(ErrorCode::kNotFound, "unknown segment \"" + isolation.segment + "\"");
    }
    SHADAN_RETURN_IF_ERROR(checkBorders(gateway_id, gateway, isolation.segment));
    SHADAN_RETURN_IF_ERROR(checkIdentifier("segment", isolation.segment));
    resolved.segment = {isolation.segment, &segment_it->second};
  } else if (!isolation.segment.empty()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        std::string("an ") + isolationScopeName(isolation.scope) + " isolation names no segment");
  }
  if ((isolation.scope == IsolationScope::kHost) != isolation.host.has_value()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "a host isolation, and only a host isolation, names a host");
  }
  if (!has_segment && !resolved.profile.value->isFull()) {
    return makeError(ErrorCode::kInvalidArgument, "profile \"" + resolved.profile.name +
                                                      "\" has peers; an " +
                                                      isolationScopeName(isolation.scope) +
                                                      " isolation takes a profile without peers");
  }
  switch (isolation.scope) {
    case IsolationScope::kSegment:
      break;
    case IsolationScope::kHost: {
      // The order was checked; the planner checks again, because a policy reload may have moved
      // the address out of the segment since.
      SHADAN_ASSIGN_OR_RETURN(std::string inside, segmentOfHost(policy, *isolation.host));
      if (inside != isolation.segment) {
        return makeError(ErrorCode::kInvalidArgument, "host " + isolation.host->toString() +
                                                          " is in segment \"" + inside +
                                                          "\", not \"" + isolation.segment + "\"");
      }
      resolved.hosts.push_back(*isolation.host);
      break;
    }
    case IsolationScope::kUplink: {
      const std::vector<std::string>* interfaces = uplinkInterfaces(policy, gateway);
      if (interfaces == nullptr) {
        return makeError(ErrorCode::kInvalidArgument,
                         "gateway \"" + std::string(gateway_id) +
                             "\" has no uplink: the policy names no interfaces of the default "
                             "segment for it");
      }
      for (const std::string& name : *interfaces) {
        SHADAN_RETURN_IF_ERROR(checkInterfaceName(name));
      }
      resolved.interfaces = *interfaces;
      break;
    }
    case IsolationScope::kIsland:
      for (const auto& [name, segment] : policy.segments) {
        if (segment.is_default) continue;
        SHADAN_RETURN_IF_ERROR(checkIdentifier("segment", name));
        resolved.islands.push_back({name, &segment});
      }
      break;
  }
  return okStatus();
}

}  // namespace

Result<ResolvedIsolation> resolve(const Policy& policy, std::string_view gateway_id,
                                  const Gateway& gateway, const Isolation& isolation) {
  const auto profile_it = policy.profiles.find(isolation.profile);
  if (profile_it == policy.profiles.end()) {
    return makeError(ErrorCode::kNotFound, "unknown profile \"" + isolation.profile + "\"");
  }
  SHADAN_RETURN_IF_ERROR(checkIdentifier("profile", isolation.profile));
  const Profile& profile = profile_it->second;
  if (profile.blackhole_routes && !profile.isFull()) {
    // A blackhole route cuts everything, not just the peers: refuse rather than over-cut.
    return makeError(ErrorCode::kInvalidArgument, "profile \"" + isolation.profile +
                                                      "\" asks for blackhole routes but has peers");
  }
  ResolvedIsolation resolved;
  resolved.scope = isolation.scope;
  resolved.profile = {isolation.profile, &profile};
  SHADAN_RETURN_IF_ERROR(resolveScope(policy, gateway_id, gateway, isolation, resolved));
  for (const std::string& peer : profile.peers) {
    const auto peer_it = policy.segments.find(peer);
    if (peer_it == policy.segments.end()) {
      return makeError(ErrorCode::kNotFound, "profile \"" + isolation.profile +
                                                 "\" names unknown peer segment \"" + peer + "\"");
    }
    SHADAN_RETURN_IF_ERROR(checkIdentifier("segment", peer));
    resolved.peers.push_back({peer, &peer_it->second});
  }
  return resolved;
}

}  // namespace shadan::agent::planner_detail
