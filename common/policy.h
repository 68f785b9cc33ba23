#pragma once

// The policy model of ../shared/design/POLICY.md and its strict loader.
//
// A Policy is immutable once loaded and identical on the controller and every agent. Loading
// validates everything POLICY.md names; an error names the source (file), the JSON pointer of
// the offending value and the reason.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_prefix.h"
#include "common/result.h"

namespace shadan {

inline constexpr int kPolicyFormatVersion = 1;

struct Segment {
  std::string name;
  std::string description;
  std::vector<IpPrefix> prefixes;  // empty for the default segment
  bool is_protected = false;
  bool is_default = false;  // "every address not in another segment"
};

struct Gateway {
  std::string id;
  std::vector<std::string> borders;  // segment names, in policy order
  // segment name -> interface names facing it (optional; for interface-level cuts).
  std::map<std::string, std::vector<std::string>> interfaces;
  // Interfaces an `uplink --link-down` isolation may set administratively down (gateway member
  // "link_down"); each is one of the gateway's interfaces of the default segment. Empty: the
  // policy allows no link-down on this gateway.
  std::vector<std::string> link_down;
};

enum class L4Proto { kAny, kTcp, kUdp, kIcmp, kIcmpv6, kSctp };

const char* l4ProtoName(L4Proto proto);

// One flow that no isolation cuts: traffic to or from `prefix`, optionally limited to a
// protocol and (tcp/udp/sctp only) a port on the `prefix` side.
struct ManagementRule {
  std::string description;
  IpPrefix prefix;
  L4Proto proto = L4Proto::kAny;
  std::optional<uint16_t> port;
};

// A destination kept reachable during a cut (profile `allow`).
struct AllowRule {
  std::string description;
  IpPrefix prefix;
};

struct Profile {
  std::string name;
  std::string description;
  std::vector<std::string> peers;  // empty: cut from everything
  std::vector<AllowRule> allow;
  bool blackhole_routes = false;  // also install blackhole routes for the segment (full cuts only)
  bool isFull() const { return peers.empty(); }
};

// How the agents of this policy behave (the optional top-level "agent" object).
enum class LockoutCheckMode { kWarn, kRefuse };
enum class ConntrackOnIsolate { kIfNat, kAlways, kNever };
enum class ControllerLossMode { kKeep, kRevert };

inline constexpr int64_t kDefaultDrillMaxTtlS = 3600;
inline constexpr int64_t kMinDrillTtlS = 60;
inline constexpr int64_t kMaxDrillTtlS = 7 * 24 * 3600;

struct AgentOptions {
  // Before applying an isolation, foreign rules that would drop a management flow are looked
  // for; kRefuse refuses the isolation when one certainly would (a "may drop" only warns).
  LockoutCheckMode lockout_check = LockoutCheckMode::kWarn;
  // Delete the isolated segment's conntrack entries: where NAT is configured (so NAT'd flows
  // cannot live on in their translated form), always, or never.
  ConntrackOnIsolate conntrack_on_isolate = ConntrackOnIsolate::kIfNat;
  // Flush the restored segment's conntrack entries, so old sessions do not resume.
  bool conntrack_flush_on_restore = false;
  // What an agent does when the controller is unreachable: keep every isolation (default), or
  // revert drill isolations (real ones are always kept).
  ControllerLossMode on_controller_loss = ControllerLossMode::kKeep;
  // The longest a drill isolation lasts (`drill_max_ttl_s`, kMinDrillTtlS..kMaxDrillTtlS): a
  // signed drill order with a longer ttl_s is applied with its ttl capped to this, and the
  // agent's audit entry and ack say so. The controller's view of a drill order caps the same way.
  int64_t drill_max_ttl_s = kDefaultDrillMaxTtlS;
};

struct Policy {
  int format_version = kPolicyFormatVersion;
  std::string name;
  // Hex SHA-256 of the bytes the policy was parsed from: tells two files apart (one agent, one
  // policy) where names and paths cannot.
  std::string source_sha256;
  std::map<std::string, Segment> segments;
  std::map<std::string, Gateway> gateways;
  std::vector<ManagementRule> always_allow;
  std::map<std::string, Profile> profiles;
  AgentOptions agent;

  const Segment* findSegment(std::string_view name) const;
  const Gateway* findGateway(std::string_view id) const;
  const Profile* findProfile(std::string_view name) const;
  // The default segment, if the policy has one.
  const Segment* defaultSegment() const;
};

// Non-fatal findings of the loader (e.g. a gateway whose path to the controller is not covered
// by management.always_allow). Each names a JSON pointer.
struct PolicyWarning {
  std::string pointer;
  std::string message;
};

struct LoadedPolicy {
  Policy policy;
  std::vector<PolicyWarning> warnings;
};

// Parses and validates policy JSON. `source` names the input in errors ("policy.json").
// Rejects: malformed JSON, duplicate object keys, unknown keys, wrong types, invalid or
// overlapping prefixes, gateways bordering unknown segments, profiles naming unknown peers,
// a missing `full` profile, more than one default segment, invalid names.
Result<LoadedPolicy> parsePolicy(std::string_view json_text, std::string_view source);

// Reads `path` (size-capped) and parses it; errors name the path.
Result<LoadedPolicy> loadPolicyFile(const std::filesystem::path& path);

}  // namespace shadan
