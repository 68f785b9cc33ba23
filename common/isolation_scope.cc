#include "common/isolation_scope.h"

#include <algorithm>

namespace shadan {
namespace {

Error hostError(const IpPrefix& host, const std::string& why) {
  return makeError(ErrorCode::kInvalidArgument, "host " + host.toString() + ": " + why);
}

// Names as the policy allows them: letters, digits, '_' and '-'.
bool isName(std::string_view text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

}  // namespace

const char* isolationScopeName(IsolationScope scope) {
  switch (scope) {
    case IsolationScope::kHost:
      return "host";
    case IsolationScope::kSegment:
      return "segment";
    case IsolationScope::kUplink:
      return "uplink";
    case IsolationScope::kIsland:
      return "island";
  }
  return "segment";
}

std::optional<IsolationScope> parseIsolationScope(std::string_view name) {
  for (IsolationScope scope : {IsolationScope::kHost, IsolationScope::kSegment,
                               IsolationScope::kUplink, IsolationScope::kIsland}) {
    if (name == isolationScopeName(scope)) return scope;
  }
  return std::nullopt;
}

Result<std::string> segmentOfHost(const Policy& policy, const IpPrefix& host) {
  const int min_length = minHostPrefixLength(host.family());
  if (host.length() < min_length) {
    return hostError(host, "too wide for a host quarantine (at most /" +
                               std::to_string(min_length) + "); isolate the segment instead");
  }
  for (const ManagementRule& rule : policy.always_allow) {
    if (rule.prefix.overlaps(host)) {
      return hostError(host, "overlaps the management prefix " + rule.prefix.toString() +
                                 " (management is never cut)");
    }
  }
  std::string inside;
  for (const auto& [name, segment] : policy.segments) {
    if (segment.is_default) continue;
    for (const IpPrefix& prefix : segment.prefixes) {
      if (prefix.contains(host)) {
        inside = name;
      } else if (prefix.overlaps(host)) {
        return hostError(host, "spans segment \"" + name + "\" and addresses outside it");
      }
    }
  }
  if (!inside.empty()) return inside;
  if (const Segment* fallback = policy.defaultSegment()) {
    return hostError(host, "is in the default segment \"" + fallback->name +
                               "\", which has no hosts to quarantine (cut the uplink instead)");
  }
  return hostError(host, "is in no segment of the policy");
}

const std::vector<std::string>* uplinkInterfaces(const Policy& policy, const Gateway& gateway) {
  const Segment* fallback = policy.defaultSegment();
  if (fallback == nullptr) return nullptr;
  const auto found = gateway.interfaces.find(fallback->name);
  if (found == gateway.interfaces.end() || found->second.empty()) return nullptr;
  return &found->second;
}

std::string generationKey(IsolationScope scope, std::string_view segment) {
  switch (scope) {
    case IsolationScope::kHost:
      return "host:" + std::string(segment);
    case IsolationScope::kSegment:
      return std::string(segment);
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      return "@" + std::string(isolationScopeName(scope));
  }
  return std::string(segment);
}

std::string isolationLabel(IsolationScope scope, std::string_view segment,
                           const std::optional<IpPrefix>& host, std::string_view profile) {
  switch (scope) {
    case IsolationScope::kHost:
      return std::string(segment) + "/" + (host ? host->toCidr() : std::string("*")) + ":" +
             std::string(profile);
    case IsolationScope::kSegment:
      return std::string(segment) + ":" + std::string(profile);
    case IsolationScope::kUplink:
    case IsolationScope::kIsland:
      return "@" + std::string(isolationScopeName(scope)) + ":" + std::string(profile);
  }
  return std::string(segment) + ":" + std::string(profile);
}

bool isIsolationLabel(std::string_view label) {
  const size_t colon = label.rfind(':');
  if (colon == std::string_view::npos || !isName(label.substr(colon + 1))) return false;
  const std::string_view target = label.substr(0, colon);
  if (target == "@uplink" || target == "@island") return true;
  const size_t slash = target.find('/');
  if (slash == std::string_view::npos) return isName(target);
  if (!isName(target.substr(0, slash))) return false;
  const std::string_view host = target.substr(slash + 1);
  return host == "*" || IpPrefix::parse(host).ok();
}

}  // namespace shadan
