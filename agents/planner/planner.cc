#include "agents/planner/planner.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "agents/planner/scope.h"
#include "common/sha256.h"

namespace shadan::agent {
namespace {

using planner_detail::NamedProfile;
using planner_detail::NamedSegment;
using planner_detail::ResolvedIsolation;

// Addresses that are never "the internet": the default segment's complement always excludes
// them, so cutting the default segment never cuts loopback, link-local (ARP-less IPv4LL, NDP,
// DHCPv6), multicast, broadcast or the unspecified source address used by DHCP and DAD.
constexpr std::string_view kNeverInternetV4[] = {"0.0.0.0/32", "127.0.0.0/8", "169.254.0.0/16",
                                                 "224.0.0.0/4", "255.255.255.255/32"};
constexpr std::string_view kNeverInternetV6[] = {"::/128", "::1/128", "fe80::/10", "ff00::/8"};

constexpr IpFamily kFamilies[] = {IpFamily::kV4, IpFamily::kV6};

// nft keyword of the address match and set type of a family.
std::string_view ipKeyword(IpFamily family) { return family == IpFamily::kV4 ? "ip" : "ip6"; }
std::string_view setType(IpFamily family) {
  return family == IpFamily::kV4 ? "ipv4_addr" : "ipv6_addr";
}
std::string_view familySuffix(IpFamily family) { return family == IpFamily::kV4 ? "_v4" : "_v6"; }

// Sorted, and without any prefix contained in another: nftables interval sets reject
// overlapping elements, and two CIDR prefixes either nest or are disjoint. Linear after the sort
// (ten thousand quarantined hosts must not cost a quadratic pass): prefixes sort by (family,
// network address, length), so a prefix that some earlier kept one contains is contained in the
// last kept one (anything kept after a prefix starts beyond its end).
std::vector<IpPrefix> normalize(std::vector<IpPrefix> prefixes) {
  std::sort(prefixes.begin(), prefixes.end());
  std::vector<IpPrefix> out;
  out.reserve(prefixes.size());
  for (const IpPrefix& prefix : prefixes) {
    if (!out.empty() && (out.back() == prefix || out.back().contains(prefix))) continue;
    out.push_back(prefix);
  }
  return out;
}

// nft's name of a layer-4 protocol; kAny has none (no protocol match at all).
std::string_view nftProtoName(L4Proto proto) {
  switch (proto) {
    case L4Proto::kTcp:
      return "tcp";
    case L4Proto::kUdp:
      return "udp";
    case L4Proto::kIcmp:
      return "icmp";
    case L4Proto::kIcmpv6:
      return "icmpv6";
    case L4Proto::kSctp:
      return "sctp";
    case L4Proto::kAny:
      break;
  }
  return "";
}

std::vector<IpPrefix> ofFamily(const std::vector<IpPrefix>& prefixes, IpFamily family) {
  std::vector<IpPrefix> out;
  for (const IpPrefix& prefix : prefixes) {
    if (prefix.family() == family) out.push_back(prefix);
  }
  return out;
}

// One side of a drop rule in one family: a named set, matched positively or negated
// (`!= @known_v4` is "the default segment").
struct SetMatch {
  std::string set;
  bool negated = false;
};

// Collects the named sets the script uses, so only referenced, non-empty sets are declared.
class SetTable {
 public:
  explicit SetTable(const Policy& policy) : policy_(policy) {}

  // The match for `segment` in `family`; nullopt when the segment has no prefix of that family
  // (then no rule in that family can involve it). The default segment is the complement of
  // every other segment plus the never-internet ranges, so it exists in both families.
  std::optional<SetMatch> segment(const NamedSegment& segment, IpFamily family) {
    if (segment.value->is_default) {
      return SetMatch{use("known", family, knownPrefixes(family)), true};
    }
    std::vector<IpPrefix> prefixes = normalize(ofFamily(segment.value->prefixes, family));
    if (prefixes.empty()) return std::nullopt;
    return SetMatch{use("seg_" + segment.name, family, std::move(prefixes)), false};
  }

  // The negated match of a profile's allow list, nullopt when it has no prefix of `family`.
  std::optional<SetMatch> allow(const NamedProfile& profile, IpFamily family) {
    std::vector<IpPrefix> all;
    for (const AllowRule& rule : profile.value->allow) all.push_back(rule.prefix);
    std::vector<IpPrefix> prefixes = normalize(ofFamily(all, family));
    if (prefixes.empty()) return std::nullopt;
    return SetMatch{use("allow_" + profile.name, family, std::move(prefixes)), true};
  }

  // The matches for the quarantined hosts of `profile` in `family`: single addresses in a hash
  // set `host_<profile>` (one O(1) lookup per packet however many), prefixes in an interval set
  // `hostnet_<profile>` (a lookup whose cost grows with the log of its size, so it only holds
  // what cannot be a single address). Empty when no host of the profile is of `family`.
  std::vector<SetMatch> hosts(const std::string& profile, IpFamily family,
                              const std::vector<IpPrefix>& all) {
    std::vector<IpPrefix> prefixes = normalize(ofFamily(all, family));
    std::vector<IpPrefix> addresses;
    std::vector<IpPrefix> networks;
    for (IpPrefix& prefix : prefixes) {
      (prefix.isHost() ? addresses : networks).push_back(std::move(prefix));
    }
    std::vector<SetMatch> matches;
    if (!addresses.empty()) {
      matches.push_back(SetMatch{use("host_" + profile, family, std::move(addresses), false)});
    }
    if (!networks.empty()) {
      matches.push_back(SetMatch{use("hostnet_" + profile, family, std::move(networks))});
    }
    return matches;
  }

  // The default segment's match in `family` (`!= @known_*`), whether or not the policy names one.
  SetMatch outside(IpFamily family) {
    return SetMatch{use("known", family, knownPrefixes(family)), true};
  }

  // `set <name> { … }` declarations, in name order.
  std::string render() const {
    std::string out;
    for (const auto& [name, entry] : sets_) {
      out += "\tset " + name + " {\n";
      out += "\t\ttype " + std::string(setType(entry.family)) + "\n";
      if (entry.interval) out += "\t\tflags interval\n";
      out += "\t\telements = { ";
      for (size_t i = 0; i < entry.prefixes.size(); ++i) {
        if (i > 0) out += ", ";
        out += entry.prefixes[i].toString();
      }
      out += " }\n";
      out += "\t}\n";
    }
    return out;
  }

 private:
  struct Entry {
    IpFamily family;
    std::vector<IpPrefix> prefixes;
    bool interval = true;  // false: single addresses only, a hash set
  };

  std::string use(const std::string& base, IpFamily family, std::vector<IpPrefix> prefixes,
                  bool interval = true) {
    std::string name = base + std::string(familySuffix(family));
    sets_.try_emplace(name, Entry{family, std::move(prefixes), interval});
    return name;
  }

  std::vector<IpPrefix> knownPrefixes(IpFamily family) const {
    std::vector<IpPrefix> prefixes;
    for (const auto& [name, segment] : policy_.segments) {
      if (segment.is_default) continue;
      for (const IpPrefix& prefix : segment.prefixes) prefixes.push_back(prefix);
    }
    const auto add_constants = [&](const auto& texts) {
      for (std::string_view text : texts) {
        Result<IpPrefix> prefix = IpPrefix::parse(text);
        if (!prefix.ok()) detail::resultAccessFailure("bad built-in prefix");
        prefixes.push_back(*prefix);
      }
    };
    if (family == IpFamily::kV4) {
      add_constants(kNeverInternetV4);
    } else {
      add_constants(kNeverInternetV6);
    }
    return normalize(ofFamily(prefixes, family));
  }

  const Policy& policy_;
  std::map<std::string, Entry> sets_;
};

std::string matchText(IpFamily family, std::string_view direction, const SetMatch& match) {
  return std::string(ipKeyword(family)) + " " + std::string(direction) +
         (match.negated ? " != @" : " @") + match.set;
}

// The accept rules of one management.always_allow entry: both directions, stateless.
Result<std::vector<std::string>> managementRules(const ManagementRule& rule) {
  const IpFamily family = rule.prefix.family();
  const std::string ip = std::string(ipKeyword(family));
  const std::string prefix = rule.prefix.toString();
  const bool has_ports =
      rule.proto == L4Proto::kTcp || rule.proto == L4Proto::kUdp || rule.proto == L4Proto::kSctp;
  if (rule.port && !has_ports) {
    return makeError(ErrorCode::kInvalidArgument,
                     "management rule for " + prefix + ": a port needs proto tcp, udp or sctp");
  }
  std::string to_suffix;    // traffic towards the management prefix
  std::string from_suffix;  // traffic coming from it
  if (rule.port) {
    const std::string proto(nftProtoName(rule.proto));
    const std::string port = std::to_string(*rule.port);
    to_suffix = " " + proto + " dport " + port;
    from_suffix = " " + proto + " sport " + port;
  } else if (rule.proto != L4Proto::kAny) {
    to_suffix = from_suffix = " meta l4proto " + std::string(nftProtoName(rule.proto));
  }
  return std::vector<std::string>{ip + " daddr " + prefix + to_suffix + " accept",
                                  ip + " saddr " + prefix + from_suffix + " accept"};
}

// Appends `line` unless an identical rule is already there (two isolations can produce the same
// drop, e.g. A peers B and B peers A); the first occurrence keeps its place.
void appendUnique(std::vector<std::string>& rules, std::string line) {
  if (std::find(rules.begin(), rules.end(), line) == rules.end()) rules.push_back(std::move(line));
}

// The two drops (leaving `self`, entering `self`) against `other` (nullopt: anything) in one
// family, with the profile's allowed destinations negated inside each drop instead of accepted
// up front, so that another isolation that does cut them still wins.
void addDropPair(std::vector<std::string>& rules, IpFamily family, const SetMatch& self,
                 const std::optional<SetMatch>& other, const std::optional<SetMatch>& allow) {
  std::string out = matchText(family, "saddr", self);
  if (other) out += " " + matchText(family, "daddr", *other);
  if (allow) out += " " + matchText(family, "daddr", *allow);
  std::string in;
  if (allow) in = matchText(family, "saddr", *allow) + " ";
  if (other) in += matchText(family, "saddr", *other) + " ";
  in += matchText(family, "daddr", self);
  appendUnique(rules, out + " counter drop");
  appendUnique(rules, in + " counter drop");
}

// `{ "eth0", "eth1" }` (or `"eth0"`) for an nft interface-name match.
std::string interfaceList(const std::vector<std::string>& names) {
  if (names.size() == 1) return "\"" + names.front() + "\"";
  std::string out = "{ ";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", \"" : "\"") + names[i] + "\"";
  return out + " }";
}

// Uplink: everything leaving or entering through the default segment's interfaces. Without an
// allow list one family-less pair of drops; with one, a pair per family that negates the allowed
// addresses (the outside end of the flow), and `meta nfproto` where a family has nothing allowed.
void uplinkRules(const ResolvedIsolation& isolation, SetTable& sets,
                 std::vector<std::string>& rules) {
  const std::string ifs = interfaceList(isolation.interfaces);
  const std::optional<SetMatch> allow_v4 = sets.allow(isolation.profile, IpFamily::kV4);
  const std::optional<SetMatch> allow_v6 = sets.allow(isolation.profile, IpFamily::kV6);
  if (!allow_v4 && !allow_v6) {
    appendUnique(rules, "oifname " + ifs + " counter drop");
    appendUnique(rules, "iifname " + ifs + " counter drop");
    return;
  }
  for (IpFamily family : kFamilies) {
    const std::optional<SetMatch>& allow = family == IpFamily::kV4 ? allow_v4 : allow_v6;
    if (allow) {
      appendUnique(rules,
                   "oifname " + ifs + " " + matchText(family, "daddr", *allow) + " counter drop");
      appendUnique(rules,
                   "iifname " + ifs + " " + matchText(family, "saddr", *allow) + " counter drop");
    } else {
      const std::string nfproto = family == IpFamily::kV4 ? "ipv4" : "ipv6";
      appendUnique(rules, "meta nfproto " + nfproto + " oifname " + ifs + " counter drop");
      appendUnique(rules, "meta nfproto " + nfproto + " iifname " + ifs + " counter drop");
    }
  }
}

// The drops of one isolation, for all families, in the order: per family (v4, v6), per peer
// (policy order), traffic leaving the segment (or hosts) then traffic entering it.
std::vector<std::string> isolationRules(const ResolvedIsolation& isolation, SetTable& sets) {
  std::vector<std::string> rules;
  if (isolation.scope == IsolationScope::kUplink) {
    uplinkRules(isolation, sets, rules);
    return rules;
  }
  for (IpFamily family : kFamilies) {
    const std::optional<SetMatch> allow = sets.allow(isolation.profile, family);
    if (isolation.scope == IsolationScope::kIsland) {
      // Each segment from everything outside it, then the default segment from itself: what is
      // left is traffic inside one segment, and management (accepted above).
      for (const NamedSegment& island : isolation.islands) {
        const std::optional<SetMatch> self = sets.segment(island, family);
        if (!self) continue;
        addDropPair(rules, family, *self, SetMatch{self->set, true}, allow);
      }
      const SetMatch outside = sets.outside(family);
      std::string line =
          matchText(family, "saddr", outside) + " " + matchText(family, "daddr", outside);
      if (allow) line += " " + matchText(family, "daddr", *allow);
      appendUnique(rules, line + " counter drop");
      continue;
    }
    std::vector<SetMatch> selves;
    if (isolation.scope == IsolationScope::kHost) {
      selves = sets.hosts(isolation.profile.name, family, isolation.hosts);
    } else if (std::optional<SetMatch> self = sets.segment(isolation.segment, family)) {
      selves.push_back(*self);
    }
    for (const SetMatch& self : selves) {
      if (isolation.peers.empty()) {
        addDropPair(rules, family, self, std::nullopt, allow);
        continue;
      }
      for (const NamedSegment& peer : isolation.peers) {
        const std::optional<SetMatch> other = sets.segment(peer, family);
        if (other) addDropPair(rules, family, self, other, allow);
      }
    }
  }
  return rules;
}

// Routes for one blackholed isolation: the segment minus every management prefix and every
// allowed destination, so no route ever sits on the management path.
std::vector<IpPrefix> blackholeRoutes(const Policy& policy, const ResolvedIsolation& isolation) {
  std::vector<IpPrefix> routes = isolation.segment.value->prefixes;
  const auto punch = [&](const IpPrefix& hole) {
    std::vector<IpPrefix> next;
    for (const IpPrefix& route : routes) {
      for (IpPrefix& piece : route.subtract(hole)) next.push_back(std::move(piece));
    }
    routes = std::move(next);
  };
  for (const ManagementRule& rule : policy.always_allow) punch(rule.prefix);
  for (const AllowRule& rule : isolation.profile.value->allow) punch(rule.prefix);
  return routes;
}

// IPv6 neighbour discovery between the gateway and hosts on its links, the IPv6 counterpart
// of ARP (which inet tables never see). Cutting it gains nothing — it carries no data and is
// never forwarded — but a host that loses its router's neighbour entry during a cut marks the
// router unreachable and comes back up to a minute after the restore. Hop limit 255 proves the
// packet was not routed (RFC 4861 7.1.1).
constexpr std::string_view kNeighbourDiscovery =
    "ip6 hoplimit 255 icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
    "nd-neighbor-advert } accept";

std::string renderChain(std::string_view name, std::string_view loopback,
                        const std::vector<std::string>& rules) {
  std::string out = "\tchain " + std::string(name) + " {\n";
  out += "\t\ttype filter hook " + std::string(name) + " priority -150; policy accept;\n";
  if (!loopback.empty()) {
    out += "\t\t" + std::string(loopback) + " accept\n";
    out += "\t\t" + std::string(kNeighbourDiscovery) + "\n";
  }
  for (const std::string& rule : rules) out += "\t\t" + rule + "\n";
  out += "\t}\n";
  return out;
}

}  // namespace

Result<DataplanePlan> planGateway(const Policy& policy, std::string_view gateway_id,
                                  const std::vector<Isolation>& isolations,
                                  std::string_view owner_mark) {
  const auto gateway_it = policy.gateways.find(std::string(gateway_id));
  if (gateway_it == policy.gateways.end()) {
    return makeError(ErrorCode::kNotFound, "unknown gateway \"" + std::string(gateway_id) + "\"");
  }
  const Gateway& gateway = gateway_it->second;

  // The active isolations are a set: order and repetition of the input change nothing.
  const std::set<Isolation> unique(isolations.begin(), isolations.end());
  std::vector<ResolvedIsolation> resolved;
  std::map<std::string, size_t> host_groups;  // profile -> its entry in `resolved`
  for (const Isolation& isolation : unique) {
    Result<ResolvedIsolation> one = planner_detail::resolve(policy, gateway_id, gateway, isolation);
    if (!one.ok()) {
      return one.error().withContext("isolation " + isolationLabel(isolation) + " on gateway \"" +
                                     std::string(gateway_id) + "\"");
    }
    if (isolation.scope == IsolationScope::kHost) {
      const auto [group, added] = host_groups.try_emplace(isolation.profile, resolved.size());
      if (!added) {
        resolved[group->second].hosts.push_back(*isolation.host);
        continue;
      }
    }
    resolved.push_back(std::move(*one));
  }

  DataplanePlan plan;
  // `add` first so that `delete` never fails on a gateway where the table is absent.
  plan.nft_script = "add table inet shadan\ndelete table inet shadan\n";
  if (resolved.empty()) return plan;

  std::vector<std::string> rules;
  for (const ManagementRule& rule : policy.always_allow) {
    SHADAN_ASSIGN_OR_RETURN(std::vector<std::string> accepts, managementRules(rule));
    for (std::string& line : accepts) appendUnique(rules, std::move(line));
  }
  SetTable sets(policy);
  std::vector<IpPrefix> routes;
  for (const ResolvedIsolation& isolation : resolved) {
    for (std::string& line : isolationRules(isolation, sets)) appendUnique(rules, std::move(line));
    if (isolation.scope == IsolationScope::kSegment && isolation.profile.value->blackhole_routes &&
        !isolation.segment.value->is_default) {
      for (const IpPrefix& route : blackholeRoutes(policy, isolation)) routes.push_back(route);
    }
  }
  plan.blackhole_routes = normalize(std::move(routes));

  std::string& out = plan.nft_script;
  out += "table inet shadan {\n";
  if (!owner_mark.empty()) out += "\tcomment \"" + std::string(owner_mark) + "\"\n";
  out += sets.render();
  out += renderChain("input", "iif \"lo\"", rules);
  out += renderChain("output", "oif \"lo\"", rules);
  out += renderChain("forward", "", rules);
  out += "}\n";
  return plan;
}

std::string isolationLabel(const Isolation& isolation) {
  return shadan::isolationLabel(isolation.scope, isolation.segment, isolation.host,
                                isolation.profile);
}

std::string ownerMark(std::string_view gateway_id, std::string_view state_dir) {
  constexpr size_t kMaxShownPath = 160;  // nft keeps at most 256 bytes of comment
  const bool shown = !state_dir.empty() && state_dir.size() <= kMaxShownPath &&
                     std::all_of(state_dir.begin(), state_dir.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' ||
                              c == '_' || c == '+' || c == '-';
                     });
  const std::string state = shown ? "state=" + std::string(state_dir)
                                  : "state-sha256=" + sha256Hex(state_dir).substr(0, 16);
  // Gateway ids are policy names ([a-z0-9_-]), safe inside the string.
  return "shadan-agent gateway=" + std::string(gateway_id) + " " + state;
}

std::string ownerMarkOf(std::string_view listing) {
  // `nft list table` prints the comment on the line after the table's opening brace.
  constexpr std::string_view kPrefix = "\tcomment \"";
  const size_t brace = listing.find("{\n");
  if (brace == std::string_view::npos) return "";
  const std::string_view rest = listing.substr(brace + 2);
  if (rest.substr(0, kPrefix.size()) != kPrefix) return "";
  const std::string_view value = rest.substr(kPrefix.size());
  const size_t end = value.find("\"\n");
  if (end == std::string_view::npos) return "";
  return std::string(value.substr(0, end));
}

}  // namespace shadan::agent
