#include "cli/lab/policy_lab.h"

#include <algorithm>
#include <set>

#include "cli/lab/policy_lab_routes.h"
#include "cli/lab/prefix_math.h"

namespace shadan {
namespace {

constexpr size_t kMaxName = 15;  // node names (lab.h) and interface names (IFNAMSIZ - 1)

// Address ranges tried, in order, for the lab's own links; the first that overlaps nothing the
// policy names is used. Documentation, benchmarking and shared address space first: they are
// the least likely to appear in a policy.
const std::vector<const char*>& internetV4Candidates() {
  static const std::vector<const char*> kList = {"198.51.100.0/24", "203.0.113.0/24",
                                                 "192.0.2.0/24", "198.18.0.0/15"};
  return kList;
}
const std::vector<const char*>& internetV6Candidates() {
  static const std::vector<const char*> kList = {"2001:db8:ffff::/48", "2001:db8:fffe::/48",
                                                 "3fff:fff::/32", "fdff:ffff:ffff::/48"};
  return kList;
}
std::vector<std::string> transitV4Candidates() {
  std::vector<std::string> list;
  for (int i = 64; i < 128; ++i) list.push_back("100." + std::to_string(i) + ".0.0/16");
  return list;
}
std::vector<std::string> transitV6Candidates() {
  std::vector<std::string> list;
  for (int i = 0; i < 16; ++i) list.push_back("fd00:ffff:" + std::to_string(i) + "::/48");
  for (int i = 0; i < 16; ++i) list.push_back("fdff:fffe:" + std::to_string(i) + "::/48");
  return list;
}

// Per gateway, one /24 and one /56 of the transit ranges; per link, a /30 and a /64 of them.
constexpr int kTransitV4Length = 16;
constexpr int kTransitV4Block = 24;
constexpr int kTransitV6Block = 56;

IpPrefix mustParse(std::string_view text) {
  auto prefix = IpPrefix::parse(text);
  // Only the literals of this file come here: a failure is a broken program.
  if (!prefix.ok()) detail::resultAccessFailure(prefix.error().message.c_str());
  return *prefix;
}

// `text` cut to `max` characters, without a trailing '-'.
std::string cut(std::string_view text, size_t max) {
  std::string out(text.substr(0, max));
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

// `name` (a policy name: a-z, 0-9, '-') in at most `max` characters, keeping its last word when
// that is a short number-like word ("site-gateway-12" in 9: "site-g-12"): names in a series
// differ there. Otherwise the head ("core-gw" in 5: "core").
std::string shorten(std::string_view name, size_t max) {
  if (name.size() <= max) return std::string(name);
  const size_t dash = name.rfind('-');
  if (dash != std::string_view::npos && dash > 0) {
    const std::string_view tail = name.substr(dash + 1);
    const bool numbered =
        std::any_of(tail.begin(), tail.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numbered && tail.size() + 2 <= max && tail.size() <= 4) {
      const std::string head = cut(name, max - tail.size() - 1);
      if (!head.empty()) return head + "-" + std::string(tail);
    }
  }
  return cut(name, max);
}

// What the lab (and `ip`) accept as an interface name: 1-15 of A-Za-z0-9_.-, not lo.
bool usableIfname(const std::string& name) {
  if (name.empty() || name.size() > kMaxName || name == "lo" || name == "." || name == "..") {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// Names unique within one scope (a lab's nodes, one node's interfaces), at most 15 characters.
class NameScope {
 public:
  bool reserve(const std::string& name) { return used_.insert(name).second; }
  // `base` if free (cut to 15), else the first free "base-N" (N = 2, 3, ...).
  std::string take(std::string_view base) {
    std::string name = cut(base, kMaxName);
    if (used_.insert(name).second) return name;
    for (int n = 2;; ++n) {
      const std::string suffix = "-" + std::to_string(n);
      name = cut(base, kMaxName - suffix.size()) + suffix;
      if (used_.insert(name).second) return name;
    }
  }

 private:
  std::set<std::string> used_;
};

// The host address a management rule stands for: itself, or the first usable address of a
// wider prefix.
IpPrefix ruleAddress(const IpPrefix& prefix) {
  if (prefix.isHost()) return prefix;
  return addressAt(prefix, prefix.length() >= prefix.maxLength() - 1 ? 0 : 1);
}

// The first usable addresses of `slot` that are not `skip`, as interface addresses.
std::vector<LabAddress> usableAddresses(const IpPrefix& slot, size_t count,
                                        const std::optional<IpPrefix>& skip = std::nullopt) {
  std::vector<LabAddress> addresses;
  for (uint64_t offset = 0; addresses.size() < count; ++offset) {
    const IpPrefix host = addressAt(slot, offset);
    if (isReservedAddress(slot, host) || (skip && host == *skip)) continue;
    addresses.push_back(labAddressOf(host, slot.length()));
  }
  return addresses;
}

class PolicyLabBuilder {
 public:
  PolicyLabBuilder(const Policy& policy, const PolicyLabOptions& options)
      : policy_(policy), options_(options) {}

  Result<PolicyLab> build() {
    SHADAN_RETURN_IF_ERROR(checkSize());
    for (const auto& [id, gateway] : policy_.gateways) gateway_ids_.push_back(id);
    SHADAN_RETURN_IF_ERROR(findManagement());
    assignPorts();
    SHADAN_RETURN_IF_ERROR(pickRanges());
    lab_.spec.name = policy_.name;
    lab_.spec.description = "Built from policy " + policy_.name + " (" + options_.source + ")";
    addGatewayNodes();
    addTransitLinks();
    SHADAN_RETURN_IF_ERROR(addInternet());
    for (const auto& [name, segment] : policy_.segments) {
      if (!segment.is_default) SHADAN_RETURN_IF_ERROR(addSegment(segment));
    }
    routes_.addRoutes(lab_.spec, lab_.internet_node);
    return std::move(lab_);
  }

 private:
  Error fail(const std::string& why) const {
    return makeError(ErrorCode::kInvalidArgument,
                     options_.source + ": cannot build a lab from this policy: " + why);
  }

  std::vector<size_t> bordering(const std::string& segment) const {
    std::vector<size_t> gateways;
    for (size_t i = 0; i < gateway_ids_.size(); ++i) {
      const auto& borders = policy_.gateways.at(gateway_ids_[i]).borders;
      if (std::find(borders.begin(), borders.end(), segment) != borders.end()) {
        gateways.push_back(i);
      }
    }
    return gateways;
  }

  Status checkSize() const {
    const size_t max_gateways = std::min(options_.max_gateways, kMaxPolicyLabGateways);
    if (policy_.gateways.empty()) return fail("the policy has no gateway");
    if (policy_.gateways.size() > max_gateways) {
      return fail(std::to_string(policy_.gateways.size()) + " gateways, at most " +
                  std::to_string(max_gateways) + " fit in a lab");
    }
    if (policy_.segments.size() > options_.max_segments) {
      return fail(std::to_string(policy_.segments.size()) + " segments, at most " +
                  std::to_string(options_.max_segments) + " fit in a lab");
    }
    return okStatus();
  }

  // The management segment is the protected segment that holds the first always_allow prefix
  // lying in a protected segment; the controller gets, in each of its prefixes, the address of
  // the first always_allow rule inside that prefix.
  Status findManagement() {
    for (const ManagementRule& rule : policy_.always_allow) {
      if (!lab_.management_segment.empty()) break;
      for (const auto& [name, segment] : policy_.segments) {
        const bool holds = std::any_of(segment.prefixes.begin(), segment.prefixes.end(),
                                       [&](const IpPrefix& p) { return p.contains(rule.prefix); });
        if (segment.is_protected && holds) {
          lab_.management_segment = name;
          lab_.controller_address = ruleAddress(rule.prefix).addressString();
          break;
        }
      }
    }
    if (lab_.management_segment.empty()) {
      return fail(
          "no management segment: no protected segment contains a management.always_allow "
          "prefix, so there is no place for the controller");
    }
    const Segment& management = policy_.segments.at(lab_.management_segment);
    for (const IpPrefix& prefix : management.prefixes) {
      for (const ManagementRule& rule : policy_.always_allow) {
        if (prefix.contains(rule.prefix)) {
          controller_targets_.emplace(prefix, ruleAddress(rule.prefix));
          break;
        }
      }
    }
    const std::vector<size_t> gateways = bordering(lab_.management_segment);
    if (gateways.empty()) {
      return fail("the management segment \"" + lab_.management_segment +
                  "\" is bordered by no gateway, so the controller has no path to the agents");
    }
    management_gateway_ = gateways.front();
    lab_.management_gateway = gateway_ids_[management_gateway_];
    lab_.controller_node = "controller";
    return okStatus();
  }

  // Every gateway's interfaces facing each segment it borders: the policy's names, reserved
  // before any generated name so that none is taken; the default segment's first, because
  // uplink cuts match them by name.
  void assignPorts() {
    ifnames_.resize(gateway_ids_.size());
    for (size_t i = 0; i < gateway_ids_.size(); ++i) {
      const Gateway& gateway = policy_.gateways.at(gateway_ids_[i]);
      std::vector<std::string> order = gateway.borders;
      std::stable_partition(order.begin(), order.end(), [&](const std::string& segment) {
        return policy_.segments.at(segment).is_default;
      });
      std::map<std::string, size_t> replaced;
      for (const std::string& segment : order) {
        auto names = gateway.interfaces.find(segment);
        if (names == gateway.interfaces.end()) continue;
        for (const std::string& name : names->second) {
          if (!usableIfname(name)) {
            note("gateway " + gateway.id + ": interface name \"" + name + "\" (segment " + segment +
                 ") cannot name a lab interface; a generated name stands for it");
            ++replaced[segment];
          } else if (!ifnames_[i].reserve(name)) {
            note("gateway " + gateway.id + ": interface \"" + name + "\" is named for segment " +
                 segment + " and an earlier one; a generated name stands for the second");
            ++replaced[segment];
          } else {
            ports_[{i, segment}].push_back(name);
          }
        }
      }
      for (const std::string& segment : order) {
        std::vector<std::string>& ports = ports_[{i, segment}];
        size_t missing = std::max<size_t>(replaced[segment], ports.empty() ? 1 : 0);
        for (; missing > 0; --missing)
          ports.push_back(ifnames_[i].take(shorten(segment, kMaxName)));
      }
    }
  }

  Result<IpPrefix> pickRange(const std::vector<std::string>& candidates, int needed_length,
                             const std::string& what) {
    std::vector<IpPrefix> taken = lab_.lab_ranges;
    for (const auto& [name, segment] : policy_.segments) {
      taken.insert(taken.end(), segment.prefixes.begin(), segment.prefixes.end());
    }
    for (const ManagementRule& rule : policy_.always_allow) taken.push_back(rule.prefix);
    for (const auto& [name, profile] : policy_.profiles) {
      for (const AllowRule& allow : profile.allow) taken.push_back(allow.prefix);
    }
    for (const std::string& text : candidates) {
      const IpPrefix candidate = mustParse(text);
      if (candidate.length() > needed_length) continue;
      if (std::none_of(taken.begin(), taken.end(),
                       [&](const IpPrefix& used) { return used.overlaps(candidate); })) {
        lab_.lab_ranges.push_back(candidate);
        return candidate;
      }
    }
    return fail("no free address range for " + what + ": every candidate (" + candidates.front() +
                ", ...) overlaps a prefix the policy names");
  }

  Status pickRanges() {
    const Segment* internet = policy_.defaultSegment();
    size_t uplinks = 0;
    if (internet != nullptr) {
      for (size_t i : bordering(internet->name)) uplinks += ports_.at({i, internet->name}).size();
    }
    if (uplinks > 0) {
      const int bits = ceilLog2(uplinks);
      const std::vector<std::string> v4(internetV4Candidates().begin(),
                                        internetV4Candidates().end());
      const std::vector<std::string> v6(internetV6Candidates().begin(),
                                        internetV6Candidates().end());
      SHADAN_ASSIGN_OR_RETURN(internet_v4_, pickRange(v4, 30 - bits, "the internet links (IPv4)"));
      SHADAN_ASSIGN_OR_RETURN(internet_v6_, pickRange(v6, 64 - bits, "the internet links (IPv6)"));
    }
    SHADAN_ASSIGN_OR_RETURN(transit_v4_,
                            pickRange(transitV4Candidates(), kTransitV4Length, "transit (IPv4)"));
    SHADAN_ASSIGN_OR_RETURN(transit_v6_, pickRange(transitV6Candidates(), 48, "transit (IPv6)"));
    return okStatus();
  }

  void note(std::string text) { lab_.notes.push_back(std::move(text)); }

  size_t addNode(const std::string& name, LabRole role) {
    LabNode node;
    node.name = name;
    node.role = role;
    lab_.spec.nodes.push_back(std::move(node));
    return lab_.spec.nodes.size() - 1;
  }

  void addGatewayNodes() {
    static const std::string kForeignTable =
        "table inet foreign {\n"
        "  chain input { type filter hook input priority 0; policy accept; }\n"
        "  chain forward { type filter hook forward priority 0; policy accept; }\n"
        "  chain output { type filter hook output priority 0; policy accept; }\n"
        "}\n";
    node_names_.reserve("controller");
    node_names_.reserve("internet");
    for (const std::string& id : gateway_ids_) {
      const std::string name = node_names_.take("gw-" + shorten(id, kMaxName - 3));
      lab_.gateway_nodes.emplace(id, name);
      addNode(name, LabRole::kGateway);
      if (options_.foreign_table) lab_.spec.nodes.back().nftables = kForeignTable;
    }
    routes_.setGatewayCount(gateway_ids_.size());
    block_links_.assign(gateway_ids_.size(), 0);
  }

  const std::string& gatewayNode(size_t i) const { return lab_.gateway_nodes.at(gateway_ids_[i]); }

  // Gateways that share a non-default segment are linked; then every part of the graph that
  // cannot reach the controller's gateway is linked to it (through its first gateway).
  void addTransitLinks() {
    std::set<std::pair<size_t, size_t>> pairs;
    for (const auto& [name, segment] : policy_.segments) {
      if (segment.is_default) continue;
      const std::vector<size_t> gateways = bordering(name);
      for (size_t a = 0; a < gateways.size(); ++a) {
        for (size_t b = a + 1; b < gateways.size(); ++b) pairs.emplace(gateways[a], gateways[b]);
      }
    }
    std::vector<size_t> component(gateway_ids_.size());
    for (size_t i = 0; i < component.size(); ++i) component[i] = i;
    const auto root = [&](size_t i) {
      while (component[i] != i) i = component[i];
      return i;
    };
    for (const auto& [a, b] : pairs) {
      component[root(a)] = root(b);
      addTransitLink(a, b);
    }
    for (size_t i = 0; i < gateway_ids_.size(); ++i) {
      if (root(i) == root(management_gateway_)) continue;
      component[root(i)] = root(management_gateway_);
      addTransitLink(std::min(i, management_gateway_), std::max(i, management_gateway_));
    }
    for (size_t i = 0; i < gateway_ids_.size(); ++i) {
      if (block_links_[i] == 0) continue;
      for (const IpPrefix& block : {subPrefix(transit_v4_, kTransitV4Block, i),
                                    subPrefix(transit_v6_, kTransitV6Block, i)}) {
        routes_.addGroup(block, {RouteSlot{block, i}});
      }
    }
  }

  // The link between gateways a < b takes the next /30 and /64 of a's block, so every address
  // of a block is on a link of its gateway: one route per block reaches them all.
  void addTransitLink(size_t a, size_t b) {
    const uint64_t number = block_links_[a]++;
    const IpPrefix v4 = subPrefix(subPrefix(transit_v4_, kTransitV4Block, a), 30, number);
    const IpPrefix v6 = subPrefix(subPrefix(transit_v6_, kTransitV6Block, a), 64, number);
    const std::vector<LabAddress> four = usableAddresses(v4, 2);
    const std::vector<LabAddress> six = usableAddresses(v6, 2);
    LabLink link;
    link.a = {gatewayNode(a),
              ifnames_[a].take("to-" + shorten(gateway_ids_[b], kMaxName - 3)),
              {four[0], six[0]}};
    link.b = {gatewayNode(b),
              ifnames_[b].take("to-" + shorten(gateway_ids_[a], kMaxName - 3)),
              {four[1], six[1]}};
    lab_.spec.links.push_back(std::move(link));
    routes_.addLink(a, {four[0], six[0]}, b, {four[1], six[1]});
  }

  Status addInternet() {
    const Segment* internet = policy_.defaultSegment();
    if (internet == nullptr) return okStatus();
    const std::vector<size_t> gateways = bordering(internet->name);
    if (gateways.empty()) {
      note("no gateway borders the default segment " + internet->name + ": no internet node");
      return okStatus();
    }
    lab_.internet_node = "internet";
    addNode(lab_.internet_node, LabRole::kHost);
    uint64_t number = 0;
    for (size_t i : gateways) {
      bool first = true;
      for (const std::string& ifname : ports_.at({i, internet->name})) {
        const std::vector<LabAddress> four =
            usableAddresses(subPrefix(internet_v4_, 30, number), 2);
        const std::vector<LabAddress> six = usableAddresses(subPrefix(internet_v6_, 64, number), 2);
        LabLink link;
        link.a = {gatewayNode(i), ifname, {four[0], six[0]}};
        link.b = {lab_.internet_node, "eth" + std::to_string(number), {four[1], six[1]}};
        lab_.spec.links.push_back(std::move(link));
        for (const LabAddress& address : {four[1], six[1]}) {
          lab_.hosts.push_back({lab_.internet_node, internet->name, gateway_ids_[i], address.family,
                                address.address});
        }
        if (first) routes_.addUplink(i, {four[0], six[0]}, {four[1], six[1]});
        first = false;
        ++number;
      }
    }
    return okStatus();
  }

  // One host per link facing the segment, each in its own slot of every prefix; the controller
  // takes the slot of its address in the management segment.
  Status addSegment(const Segment& segment) {
    const std::vector<size_t> gateways = bordering(segment.name);
    if (gateways.empty()) {
      note("no gateway borders segment " + segment.name + ": it has no host");
      return okStatus();
    }
    if (segment.prefixes.empty()) {
      note("segment " + segment.name + " has no prefix: it has no host");
      return okStatus();
    }
    struct Port {
      size_t gateway;
      std::string ifname;
      size_t number;
    };
    std::vector<Port> ports;
    for (size_t i : gateways) {
      const auto& names = ports_.at({i, segment.name});
      for (size_t n = 0; n < names.size(); ++n) ports.push_back({i, names[n], n});
    }
    const bool controller = segment.name == lab_.management_segment;
    const size_t slots = ports.size() + (controller ? 1 : 0);
    const int bits = ceilLog2(slots);

    std::vector<std::vector<LabAddress>> gateway_side(ports.size()), host_side(ports.size());
    LabLink controller_link;
    for (const IpPrefix& prefix : segment.prefixes) {
      const int preferred = prefix.family() == IpFamily::kV4 ? 24 : 64;
      const int length =
          std::max(prefix.length() + bits, prefix.length() <= preferred ? preferred : 0);
      if (length > prefix.maxLength() - 1 || bits > 32) {
        return fail("segment " + segment.name + ": prefix " + prefix.toCidr() +
                    " is too small to give each of its " + std::to_string(slots) +
                    " links (to its gateways" + (controller ? " and the controller" : "") +
                    ") a subnet of its own");
      }
      std::optional<uint64_t> controller_slot;
      std::optional<IpPrefix> target;
      if (controller) {
        auto found = controller_targets_.find(prefix);
        if (found != controller_targets_.end()) {
          target = found->second;
          controller_slot = subPrefixIndex(prefix, length, *target);
        } else {
          controller_slot = ports.size();
        }
      }
      RouteGroup group{prefix, {}};
      uint64_t next = 0;
      for (size_t p = 0; p < ports.size(); ++p, ++next) {
        if (controller_slot && next == *controller_slot) ++next;
        const IpPrefix slot = subPrefix(prefix, length, next);
        const std::vector<LabAddress> pair = usableAddresses(slot, 2);
        gateway_side[p].push_back(pair[0]);
        host_side[p].push_back(pair[1]);
        group.slots.push_back({slot, ports[p].gateway});
      }
      if (controller_slot) {
        const IpPrefix slot = subPrefix(prefix, length, *controller_slot);
        group.slots.push_back({slot, management_gateway_});
        addControllerAddresses(controller_link, slot, target);
      }
      routes_.addGroup(group.aggregate, group.slots);
    }
    for (size_t p = 0; p < ports.size(); ++p) {
      const Port& port = ports[p];
      const std::string base = "h-" + shorten(segment.name, 5) + "-" +
                               shorten(gateway_ids_[port.gateway], 5) + "-" +
                               std::to_string(port.number);
      const std::string host = node_names_.take(base);
      const size_t index = addNode(host, LabRole::kHost);
      addDefaultRoutes(lab_.spec.nodes[index], gateway_side[p]);
      for (const LabAddress& address : host_side[p]) {
        lab_.hosts.push_back(
            {host, segment.name, gateway_ids_[port.gateway], address.family, address.address});
      }
      lab_.spec.links.push_back({{gatewayNode(port.gateway), port.ifname, gateway_side[p]},
                                 {host, "eth0", host_side[p]}});
    }
    if (controller) {
      controller_link.a.node = gatewayNode(management_gateway_);
      controller_link.a.ifname = ifnames_[management_gateway_].take("controller");
      controller_link.b.node = lab_.controller_node;
      controller_link.b.ifname = "eth0";
      const size_t index = addNode(lab_.controller_node, LabRole::kHost);
      addDefaultRoutes(lab_.spec.nodes[index], controller_link.a.addresses);
      lab_.spec.links.push_back(std::move(controller_link));
    }
    return okStatus();
  }

  // The controller's address in `slot` is `target` when there is one. Should `target` be an
  // address Linux reserves in that slot (its network or broadcast address), the controller
  // link uses the /31 (/127) around it instead, where every address is usable.
  static void addControllerAddresses(LabLink& link, const IpPrefix& slot,
                                     const std::optional<IpPrefix>& target) {
    if (!target) {
      const std::vector<LabAddress> pair = usableAddresses(slot, 2);
      link.a.addresses.push_back(pair[0]);
      link.b.addresses.push_back(pair[1]);
      return;
    }
    if (isReservedAddress(slot, *target)) {
      const IpPrefix pair_prefix =
          IpPrefix::fromBytes(target->family(), target->bytes(), target->maxLength() - 1);
      const std::vector<LabAddress> pair = usableAddresses(pair_prefix, 1, target);
      link.a.addresses.push_back(pair[0]);
      link.b.addresses.push_back(labAddressOf(*target, pair_prefix.length()));
      return;
    }
    link.a.addresses.push_back(usableAddresses(slot, 1, target)[0]);
    link.b.addresses.push_back(labAddressOf(*target, slot.length()));
  }

  // A host's default route per family, through the first gateway address of that family.
  static void addDefaultRoutes(LabNode& node, const std::vector<LabAddress>& gateway_addresses) {
    for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
      for (const LabAddress& address : gateway_addresses) {
        if (address.family != family) continue;
        node.routes.push_back({std::nullopt, LabAddress{family, address.address,
                                                        family == IpFamily::kV4 ? 32 : 128}});
        break;
      }
    }
  }

  const Policy& policy_;
  const PolicyLabOptions& options_;
  PolicyLab lab_;
  std::vector<std::string> gateway_ids_;  // index -> policy id, in policy (map) order
  size_t management_gateway_ = 0;
  std::map<IpPrefix, IpPrefix> controller_targets_;  // management prefix -> controller address
  std::vector<NameScope> ifnames_;                   // per gateway
  std::map<std::pair<size_t, std::string>, std::vector<std::string>> ports_;
  NameScope node_names_;
  IpPrefix transit_v4_, transit_v6_, internet_v4_, internet_v6_;
  std::vector<uint64_t> block_links_;  // links so far in each gateway's transit block
  LabRouting routes_;
};

}  // namespace

std::vector<const PolicyLab::Host*> PolicyLab::find(std::string_view segment,
                                                    std::optional<std::string_view> gateway,
                                                    std::optional<IpFamily> family) const {
  std::vector<const Host*> found;
  for (const Host& host : hosts) {
    if (host.segment != segment) continue;
    if (gateway && host.gateway != *gateway) continue;
    if (family && host.family != *family) continue;
    found.push_back(&host);
  }
  return found;
}

Result<PolicyLab> labFromPolicy(const Policy& policy, const PolicyLabOptions& options) {
  return PolicyLabBuilder(policy, options).build();
}

}  // namespace shadan
