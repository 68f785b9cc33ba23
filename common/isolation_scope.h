#pragma once

// The escalation ladder: what one isolation cuts. Shared by the agent (planner, state, local
// CLI), the signed orders and the controller, so that every side names, checks and keys the
// four rungs the same way.
//
//   host     one or more addresses or prefixes inside one segment (given by the order, not the
//            policy); the segment is found from the policy
//   segment  a whole segment (the profile says from what)
//   uplink   everything crossing the gateway's interfaces of the default segment
//   island   every segment cut from every other and from the default segment; only
//            intra-segment traffic and management remain
//
// Management (policy `management.always_allow`) is never cut, whatever the rung.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_prefix.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan {

enum class IsolationScope { kHost, kSegment, kUplink, kIsland };

// "host", "segment", "uplink", "island".
const char* isolationScopeName(IsolationScope scope);
// The inverse; nullopt for anything else (names are case-sensitive).
std::optional<IsolationScope> parseIsolationScope(std::string_view name);

// A quarantined host prefix is at most this wide: /24 for IPv4, /120 for IPv6 (256 addresses).
inline constexpr int kMinHostPrefixLengthV4 = 24;
inline constexpr int kMinHostPrefixLengthV6 = 120;
// The shortest host prefix length of `family`: kMinHostPrefixLengthV4 or kMinHostPrefixLengthV6.
constexpr int minHostPrefixLength(IpFamily family) {
  return family == IpFamily::kV4 ? kMinHostPrefixLengthV4 : kMinHostPrefixLengthV6;
}
// One order (or one local command) quarantines at most this many prefixes; the state of a
// gateway may hold many more (the set they live in is one lookup per packet whatever its size).
inline constexpr size_t kMaxHostsPerOrder = 256;

// The segment `host` lies in. Refused (kInvalidArgument, naming the address): wider than
// kMinHostPrefixLength*, overlapping a management prefix, in no segment, in the default segment,
// or spanning two segments (or a segment and the outside of every segment).
Result<std::string> segmentOfHost(const Policy& policy, const IpPrefix& host);

// The gateway's interfaces of the default segment, what an uplink cut is about; nullptr when the
// policy has no default segment or names none of its interfaces on this gateway.
const std::vector<std::string>* uplinkInterfaces(const Policy& policy, const Gateway& gateway);

// The key under which the controller counts generations and agents remember the newest one they
// saw (PROTOCOL.md step 8): a segment's own name for `segment`; "host:<segment>" for the hosts
// of a segment; "@uplink" and "@island" for those rungs. Segment names contain neither ':' nor
// '@', so no key of one rung can be another's (a segment may well be called "uplink").
std::string generationKey(IsolationScope scope, std::string_view segment);

// How one active isolation is named in acks and status (`state_after.isolated`):
//   segment  "office:full"            host    "office/10.20.0.5/32:full"
//   uplink   "@uplink:full"           island  "@island:full"
// and, for a gateway with more quarantined hosts than an ack lists, "office/*:full".
// Segment and profile names contain neither '/', ':' nor '@'.
std::string isolationLabel(IsolationScope scope, std::string_view segment,
                           const std::optional<IpPrefix>& host, std::string_view profile);
// Whether `label` has one of the forms above (names are checked for shape, not existence).
bool isIsolationLabel(std::string_view label);

}  // namespace shadan
