#pragma once

// A namespace lab (cli/lab/lab.h) built from a policy (common/policy.h): the replica of an
// operator's network that drills run the real controller and agents in. Pure: this only
// computes a LabSpec and the metadata to use it; Lab(spec, name, runner).up() builds it.
//
// What the lab holds:
//   - one gateway node per policy gateway (`gw-<id>`, forwarding, with the foreign accept-all
//     `table inet foreign` of the standard lab, standing for firewalld, unless turned off);
//   - behind each gateway, for each non-default segment it borders, one host node per interface
//     facing that segment (`h-<segment>-<gateway>-<n>`, each shortened to 5 characters). The
//     gateway's end of that link carries the interface name the policy gives (gateway
//     `interfaces`); without one, a generated name. The host has one address in every prefix of the
//     segment (IPv4 and IPv6): each prefix is carved into as many sub-prefixes (slots) as the
//     segment has such links, plus one for the controller in the management segment, so every
//     subnet lies inside its segment's prefix and no two collide. Gateway and host take the first
//     two usable addresses of their slot;
//   - the controller node `controller` in the management segment (the protected segment holding
//     the first management.always_allow prefix that lies in a protected segment), on its own link
//     to the first gateway bordering it; its address is the always_allow host address (or the
//     first usable address of a wider always_allow prefix), so the agent channel rule covers it;
//   - the internet node `internet` for the default segment, linked to every gateway bordering it
//     (one link per interface the policy names for the default segment, so uplink cuts, which
//     match those names, act on the lab's uplinks), with addresses from a range outside every
//     policy prefix;
//   - gateway-to-gateway (transit) links: every two gateways that share a non-default segment are
//     linked; components still apart are linked to the gateway of the controller. Addresses come
//     from ranges outside every policy prefix (so the planner counts them as the default segment,
//     as a real transit network would be), one /24 + /56 block per gateway;
//   - static routes (shortest path over the transit links, both families) so that every host, the
//     controller and the internet node reach each other before any cut; hosts and the controller
//     route by default through their gateway, gateways send unknown destinations to the internet.
//
// A segment's host links all face one gateway each; sharing a segment between gateways is what
// links them. When a segment has several prefixes of one family, its host carries an address in
// each and originates traffic from the first (the one its default route is on-link with).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/lab/lab.h"
#include "common/ip_prefix.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan {

struct PolicyLabOptions {
  // Names the policy in error messages and the spec's description (its path, usually).
  std::string source = "policy";
  // Larger policies are refused: every node is a namespace and every route a command. The
  // addressing supports at most kMaxPolicyLabGateways gateways whatever this says.
  size_t max_gateways = 50;
  size_t max_segments = 200;
  // Load the standard lab's accept-all `table inet foreign` on every gateway.
  bool foreign_table = true;
};

inline constexpr size_t kMaxPolicyLabGateways = 64;

struct PolicyLab {
  LabSpec spec;  // ready for Lab(spec, name, runner).up()

  // One probe endpoint: an address of `node` inside `segment`, reached through `gateway`.
  // One per (gateway bordering the segment, segment, prefix, interface facing it); for the
  // default segment, the internet node's address on each of its links.
  struct Host {
    std::string node;
    std::string segment;
    std::string gateway;  // policy gateway id
    IpFamily family = IpFamily::kV4;
    std::string address;  // canonical text, no length
    friend bool operator==(const Host&, const Host&) = default;
  };
  std::vector<Host> hosts;
  std::map<std::string, std::string> gateway_nodes;  // policy gateway id -> lab node name
  std::string management_segment;
  std::string management_gateway;  // policy gateway id the controller is linked to
  std::string controller_node;
  std::string controller_address;  // the agent channel's address (always_allow)
  std::string internet_node;       // "" when the policy has no default segment behind a gateway
  // Address ranges the lab chose outside every policy prefix (transit and internet links).
  std::vector<IpPrefix> lab_ranges;
  // Where the lab differs from the policy, one sentence each (e.g. a segment no gateway
  // borders has no host; an interface name the lab cannot use was replaced).
  std::vector<std::string> notes;

  // Hosts of `segment`, optionally only those behind `gateway` (a policy gateway id) and of one
  // family, in the order of `hosts`. The pointers live as long as this PolicyLab.
  std::vector<const Host*> find(std::string_view segment,
                                std::optional<std::string_view> gateway = std::nullopt,
                                std::optional<IpFamily> family = std::nullopt) const;
};

// Builds the lab of `policy` (a policy loadPolicyFile accepted). Errors name options.source and
// what cannot be built: too many gateways or segments, no management segment, a management
// segment no gateway borders, a prefix too small to give every facing link its own subnet,
// no free address range. Deterministic: the same policy gives the same lab.
Result<PolicyLab> labFromPolicy(const Policy& policy, const PolicyLabOptions& options = {});

}  // namespace shadan
