#pragma once

// The planner: pure, no kernel, no root. Turns (policy, gateway, active isolations) into the
// complete desired dataplane of that gateway: one nftables script that replaces the table
// `inet shadan` whole in one transaction, and the blackhole routes to hold.
//
// Rule order in every base chain (input, output, forward; filter hooks, priority -150, policy
// accept, so packets we do not drop continue to other tables):
//   1. loopback accept; IPv6 neighbour discovery with the gateway itself (input/output only)
//   2. management.always_allow accepts, stateless, both directions
//   3. per isolation, drops built from per-segment prefix sets (IPv4 and IPv6); host
//      quarantines of one profile share a hash set of single addresses `host_<profile>_v4|_v6`
//      (one O(1) lookup per packet however many hosts) and an interval set of the wider ones
//      `hostnet_<profile>_v4|_v6` (its lookup grows with the log of its size); uplink drops match
//      the default segment's interfaces by name
//      (`iifname`/`oifname`); island drops every segment's traffic with anything outside it and
//      the default segment's with itself
// The script is deterministic: same inputs, same bytes (golden-tested in
// tests/golden/planner/). The isolations are a set: order and repetition do not matter.
//
// Sets: `seg_<segment>_v4|_v6` (a segment's prefixes), `allow_<profile>_v4|_v6` (a profile's
// allow list, negated inside the drops so that a second isolation still cuts those addresses),
// and `known_v4|_v6`: every non-default segment plus ranges that are never "the internet"
// (unspecified, loopback, link-local, multicast, broadcast). The default segment is matched as
// `!= @known_*`. Only referenced, non-empty sets are declared; a family in which a drop has no
// prefix on one side produces no rule. Drops carry `counter` (compare listings statelessly).

#include <compare>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/policy.h"
#include "common/result.h"

namespace shadan::agent {

// One active isolation: a rung of the ladder (common/isolation_scope.h) with its profile.
//   segment  {segment, profile}                       (Isolation{"office", "full"})
//   host     {segment, profile, kHost, prefix}        one quarantined prefix of that segment;
//                                                     an order for N hosts is N isolations, so
//                                                     each is restored on its own
//   uplink   {"", profile, kUplink}                   island  {"", profile, kIsland}
// Uplink and island take only profiles without peers (they say what they cut themselves);
// every rung honours the profile's allow list. Blackhole routes are for segment isolations only.
struct Isolation {
  std::string segment;
  std::string profile;
  IsolationScope scope = IsolationScope::kSegment;
  std::optional<IpPrefix> host = std::nullopt;
  friend auto operator<=>(const Isolation&, const Isolation&) = default;
  friend bool operator==(const Isolation&, const Isolation&) = default;
};

// How `isolation` is named in acks, status and audit (isolationLabel in common/isolation_scope.h).
std::string isolationLabel(const Isolation& isolation);

struct DataplanePlan {
  // nft script. With no isolation it only removes our table (`add table …; delete table …`),
  // so a gateway with nothing isolated carries no Shadan rules at all.
  std::string nft_script;
  // Blackhole routes for profiles that ask for them; never covering a management prefix.
  std::vector<IpPrefix> blackhole_routes;
};

// Errors (kNotFound / kInvalidArgument) name what is wrong: unknown gateway, unknown segment or
// profile, a segment the gateway does not border. A non-empty `owner_mark` (ownerMark below)
// becomes the table's comment.
Result<DataplanePlan> planGateway(const Policy& policy, std::string_view gateway_id,
                                  const std::vector<Isolation>& isolations,
                                  std::string_view owner_mark = {});

// The owner mark: which agent wrote the table, as `nft list table inet shadan` shows it
// (`comment "shadan-agent gateway=gw state=/var/lib/shadan"`). One gateway, one owner: an agent
// refuses to replace a table that carries another agent's mark (agents/dataplane/gateway_owner.h
// is the live half). The state directory is shown as-is when it is short and made of
// [A-Za-z0-9/._+-]; otherwise as `state-sha256=<16 hex>` of its text, so that nothing a path
// contains can break out of the nft string.
std::string ownerMark(std::string_view gateway_id, std::string_view state_dir);

// The owner mark in a listing of our table; "" when the table has none (absent, or written by
// an agent that predates the mark).
std::string ownerMarkOf(std::string_view table_listing);

}  // namespace shadan::agent
