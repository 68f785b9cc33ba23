#include "cli/lab/policy_lab.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "cli/lab/lab_spec_writer.h"
#include "cli/lab/prefix_math.h"
#include "tests/cli/fake_command_runner.h"

namespace shadan {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> examplePolicies() {
  std::vector<fs::path> paths;
  for (const auto& entry :
       fs::directory_iterator(fs::path(SHADAN_SOURCE_DIR) / "policies/examples")) {
    if (entry.path().extension() == ".json") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

IpPrefix prefixOf(const LabAddress& address) {
  auto host = IpPrefix::parse(address.address);
  EXPECT_TRUE(host.ok()) << address.address;
  return IpPrefix::fromBytes(address.family, host->bytes(), address.length);
}

IpPrefix hostPrefix(const std::string& address) {
  auto host = IpPrefix::parse(address);
  EXPECT_TRUE(host.ok()) << address;
  return *host;
}

// Follows packets hop by hop through the spec the way the kernel would: longest prefix match
// over each node's connected subnets and static routes; gateways forward, hosts do not.
class PacketWalk {
 public:
  explicit PacketWalk(const LabSpec& spec) : spec_(spec) {}

  // The node that owns `address`, or "" if none.
  std::string owner(const std::string& address) const {
    for (const LabLink& link : spec_.links) {
      for (const LabEndpoint* end : {&link.a, &link.b}) {
        for (const LabAddress& own : end->addresses) {
          if (own.address == address) return end->node;
        }
      }
    }
    return "";
  }

  // The address `node` sends from towards `destination` (that of the interface of its first
  // hop), or "" when it has no route.
  std::string sourceFor(const std::string& node, const std::string& destination) const {
    auto hop = nextHop(node, hostPrefix(destination));
    if (!hop) return "";
    for (const LabAddress& own : hop->out->addresses) {
      if (own.family == hostPrefix(destination).family() && own.onLink(hop->gateway)) {
        return own.address;
      }
    }
    return "";
  }

  // "" if a packet from `node` reaches the owner of `destination`; else what went wrong.
  std::string walk(const std::string& from, const std::string& destination) const {
    const IpPrefix target = hostPrefix(destination);
    const std::string wanted = owner(destination);
    if (wanted.empty()) return "nobody owns " + destination;
    std::string at = from;
    std::string path = from;
    for (int hops = 0; hops < 64; ++hops) {
      if (at == wanted) return "";
      if (hops > 0 && spec_.findNode(at)->role != LabRole::kGateway) {
        return "host " + at + " would have to forward (" + path + ")";
      }
      auto hop = nextHop(at, target);
      if (!hop) return "no route at " + at + " to " + destination + " (" + path + ")";
      at = hop->peer;
      path += " -> " + at;
    }
    return "loop: " + path;
  }

 private:
  struct Hop {
    const LabEndpoint* out;
    LabAddress gateway;  // the address the packet is handed to
    std::string peer;
  };

  std::optional<Hop> nextHop(const std::string& node, const IpPrefix& target) const {
    int best_length = -1;
    std::optional<Hop> best;
    const LabAddress target_address{target.family(), target.addressString(), target.maxLength()};
    // Connected subnets.
    for (const LabLink& link : spec_.links) {
      for (auto [end, peer] : {std::pair{&link.a, &link.b}, std::pair{&link.b, &link.a}}) {
        if (end->node != node) continue;
        for (const LabAddress& own : end->addresses) {
          if (own.onLink(target_address) && own.length > best_length) {
            best_length = own.length;
            best = Hop{end, target_address, peer->node};
          }
        }
      }
    }
    for (const LabRoute& route : spec_.findNode(node)->routes) {
      if (route.via.family != target.family()) continue;
      const int length = route.to ? route.to->length() : 0;
      if ((route.to && !route.to->contains(target)) || length <= best_length) continue;
      for (const LabLink& link : spec_.links) {
        for (auto [end, peer] : {std::pair{&link.a, &link.b}, std::pair{&link.b, &link.a}}) {
          if (end->node != node) continue;
          const bool on_link =
              std::any_of(end->addresses.begin(), end->addresses.end(),
                          [&](const LabAddress& own) { return own.onLink(route.via); });
          if (!on_link) continue;
          best_length = length;
          best = Hop{end, route.via, peer->node};
        }
      }
    }
    return best;
  }

  const LabSpec& spec_;
};

// The endpoints a drill probes: hosts (internet included) and the controller.
std::vector<std::pair<std::string, std::string>> endpoints(const PolicyLab& lab) {
  std::vector<std::pair<std::string, std::string>> all;
  for (const PolicyLab::Host& host : lab.hosts) all.emplace_back(host.node, host.address);
  for (const LabAddress& address : [&] {
         std::vector<LabAddress> addresses;
         for (const LabEndpoint* end : lab.spec.endpointsOf(lab.controller_node)) {
           addresses.insert(addresses.end(), end->addresses.begin(), end->addresses.end());
         }
         return addresses;
       }()) {
    all.emplace_back(lab.controller_node, address.address);
  }
  return all;
}

Result<LoadedPolicy> loadExample(const std::string& name) {
  return loadPolicyFile(fs::path(SHADAN_SOURCE_DIR) / "policies/examples" / name);
}

// Checks every property a lab built from `policy` must have; `all_pairs`: walk packets between
// every two endpoints (else from every endpoint to the controller and the internet and back).
void checkLab(const Policy& policy, const PolicyLab& lab, bool all_pairs) {
  // The spec is valid: it survives a round trip through its JSON form and the strict parser.
  auto parsed = parseLabSpec(formatLabSpec(lab.spec), "round trip");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, lab.spec);

  // One gateway node per gateway, with the interfaces the policy names.
  ASSERT_EQ(lab.gateway_nodes.size(), policy.gateways.size());
  for (const auto& [id, gateway] : policy.gateways) {
    ASSERT_TRUE(lab.gateway_nodes.contains(id)) << id;
    const std::string& node = lab.gateway_nodes.at(id);
    ASSERT_NE(lab.spec.findNode(node), nullptr) << node;
    EXPECT_EQ(lab.spec.findNode(node)->role, LabRole::kGateway);
    std::set<std::string> ifnames;
    for (const LabEndpoint* end : lab.spec.endpointsOf(node)) ifnames.insert(end->ifname);
    for (const auto& [segment, names] : gateway.interfaces) {
      for (const std::string& name : names) {
        EXPECT_TRUE(ifnames.contains(name)) << id << " lacks " << name << " (" << segment << ")";
      }
    }
    // Every segment it borders has at least one host behind it (or the internet node).
    for (const std::string& segment : gateway.borders) {
      EXPECT_FALSE(lab.find(segment, id).empty()) << id << " / " << segment;
    }
  }

  // Hosts lie in their segment's prefixes, on a link of their gateway, on-link with it.
  for (const PolicyLab::Host& host : lab.hosts) {
    const Segment* segment = policy.findSegment(host.segment);
    ASSERT_NE(segment, nullptr) << host.segment;
    const IpPrefix address = hostPrefix(host.address);
    EXPECT_EQ(address.family(), host.family);
    if (segment->is_default) {
      EXPECT_EQ(host.node, lab.internet_node);
      EXPECT_TRUE(std::any_of(lab.lab_ranges.begin(), lab.lab_ranges.end(),
                              [&](const IpPrefix& range) { return range.contains(address); }))
          << host.address;
    } else {
      EXPECT_TRUE(std::any_of(segment->prefixes.begin(), segment->prefixes.end(),
                              [&](const IpPrefix& prefix) { return prefix.contains(address); }))
          << host.address << " not in " << host.segment;
    }
    bool found = false;
    for (const LabLink& link : lab.spec.links) {
      if (link.a.node != lab.gateway_nodes.at(host.gateway) || link.b.node != host.node) continue;
      for (const LabAddress& mine : link.b.addresses) {
        if (mine.address != host.address) continue;
        for (const LabAddress& gateway : link.a.addresses) {
          if (gateway.onLink(LabAddress{host.family, host.address, address.maxLength()})) {
            found = true;
            // The whole subnet lies inside the segment (or the lab's range).
            const IpPrefix subnet = prefixOf(mine);
            if (!segment->is_default) {
              EXPECT_TRUE(
                  std::any_of(segment->prefixes.begin(), segment->prefixes.end(),
                              [&](const IpPrefix& prefix) { return prefix.contains(subnet); }))
                  << subnet.toCidr();
            }
          }
        }
      }
    }
    EXPECT_TRUE(found) << host.node << " " << host.address << " not on-link with " << host.gateway;
  }

  // No two links share or overlap a subnet; the two ends of a link share theirs.
  std::vector<std::pair<IpPrefix, size_t>> subnets;
  for (size_t i = 0; i < lab.spec.links.size(); ++i) {
    for (const LabAddress& address : lab.spec.links[i].a.addresses) {
      subnets.emplace_back(prefixOf(address), i);
    }
  }
  for (size_t i = 0; i < subnets.size(); ++i) {
    for (size_t j = i + 1; j < subnets.size(); ++j) {
      EXPECT_FALSE(subnets[i].first.overlaps(subnets[j].first))
          << subnets[i].first.toCidr() << " and " << subnets[j].first.toCidr();
    }
  }

  // The controller sits in the management segment at the always_allow address.
  ASSERT_FALSE(lab.controller_node.empty());
  ASSERT_NE(lab.spec.findNode(lab.controller_node), nullptr);
  const IpPrefix controller = hostPrefix(lab.controller_address);
  EXPECT_TRUE(
      std::any_of(policy.always_allow.begin(), policy.always_allow.end(),
                  [&](const ManagementRule& rule) { return rule.prefix.contains(controller); }))
      << lab.controller_address;
  EXPECT_TRUE(policy.findSegment(lab.management_segment)->is_protected);
  PacketWalk walk(lab.spec);
  EXPECT_EQ(walk.owner(lab.controller_address), lab.controller_node);

  // The lab's own ranges overlap nothing the policy names, and every address outside the
  // policy's prefixes is in them.
  for (const IpPrefix& range : lab.lab_ranges) {
    for (const auto& [name, segment] : policy.segments) {
      for (const IpPrefix& prefix : segment.prefixes) {
        EXPECT_FALSE(range.overlaps(prefix)) << range.toCidr() << " overlaps " << name;
      }
    }
    for (const ManagementRule& rule : policy.always_allow) {
      EXPECT_FALSE(range.overlaps(rule.prefix)) << range.toCidr();
    }
  }
  for (const LabLink& link : lab.spec.links) {
    for (const LabEndpoint* end : {&link.a, &link.b}) {
      for (const LabAddress& address : end->addresses) {
        const IpPrefix host = hostPrefix(address.address);
        const bool in_policy =
            std::any_of(policy.segments.begin(), policy.segments.end(), [&](const auto& segment) {
              return std::any_of(segment.second.prefixes.begin(), segment.second.prefixes.end(),
                                 [&](const IpPrefix& prefix) { return prefix.contains(host); });
            });
        const bool in_lab =
            std::any_of(lab.lab_ranges.begin(), lab.lab_ranges.end(),
                        [&](const IpPrefix& range) { return range.contains(host); });
        EXPECT_NE(in_policy, in_lab) << address.address;
      }
    }
  }

  // Every endpoint reaches every other before any cut, and every agent reaches the controller
  // from the address it would send from, both ways.
  const auto endpoint_list = endpoints(lab);
  std::vector<std::pair<std::string, std::string>> targets;
  for (const auto& endpoint : endpoint_list) {
    if (all_pairs || endpoint.first == lab.controller_node || endpoint.first == lab.internet_node) {
      targets.push_back(endpoint);
    }
  }
  for (const auto& [from, from_address] : endpoint_list) {
    for (const auto& [to, to_address] : targets) {
      if (from == to || hostPrefix(from_address).family() != hostPrefix(to_address).family()) {
        continue;
      }
      const std::string source = walk.sourceFor(from, to_address);
      ASSERT_FALSE(source.empty()) << from << " has no route to " << to_address;
      EXPECT_EQ(walk.walk(from, to_address), "") << from << " -> " << to_address;
      EXPECT_EQ(walk.walk(to, source), "") << to << " -> " << source << " (reply)";
    }
  }
  for (const auto& [id, node] : lab.gateway_nodes) {
    for (const LabAddress& address : lab.spec.endpointsOf(lab.controller_node).front()->addresses) {
      const std::string source = walk.sourceFor(node, address.address);
      if (walk.owner(address.address) == node) continue;
      ASSERT_FALSE(source.empty()) << node << " has no route to the controller";
      EXPECT_EQ(walk.walk(node, address.address), "") << node;
      EXPECT_EQ(walk.walk(lab.controller_node, source), "") << "controller -> " << source;
    }
  }
}

TEST(PolicyLabTest, EveryExamplePolicyBuildsACompleteReachableLab) {
  const auto paths = examplePolicies();
  ASSERT_GE(paths.size(), 4u);
  for (const fs::path& path : paths) {
    SCOPED_TRACE(path.filename().string());
    auto loaded = loadPolicyFile(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    auto lab = labFromPolicy(loaded->policy, {.source = path.string()});
    ASSERT_TRUE(lab.ok()) << lab.error().message;
    EXPECT_TRUE(lab->notes.empty()) << lab->notes.front();
    checkLab(loaded->policy, *lab, true);
  }
}

TEST(PolicyLabTest, MunicipalityLabHasItsGatewaysHostsControllerAndInternet) {
  auto loaded = loadExample("municipality-three-tier.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto lab = labFromPolicy(loaded->policy);
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  EXPECT_EQ(lab->gateway_nodes, (std::map<std::string, std::string>{{"core-gw", "gw-core-gw"},
                                                                    {"inet-gw", "gw-inet-gw"}}));
  EXPECT_EQ(lab->management_segment, "mgmt");
  EXPECT_EQ(lab->management_gateway, "core-gw");
  EXPECT_EQ(lab->controller_node, "controller");
  EXPECT_EQ(lab->controller_address, "10.99.0.10");
  EXPECT_EQ(lab->internet_node, "internet");
  // The policy's uplink name faces the internet node.
  bool uplink = false;
  for (const LabLink& link : lab->spec.links) {
    uplink |= link.a.node == "gw-inet-gw" && link.a.ifname == "eth0" && link.b.node == "internet";
  }
  EXPECT_TRUE(uplink);
  // lgwan (IPv4 and IPv6) behind core-gw; internet-zone behind both gateways, in two subnets.
  ASSERT_EQ(lab->find("lgwan").size(), 2u);
  EXPECT_EQ(lab->find("lgwan", std::string_view("core-gw"), IpFamily::kV6).size(), 1u);
  EXPECT_TRUE(lab->find("lgwan", std::string_view("inet-gw")).empty());
  const auto zone_core = lab->find("internet-zone", std::string_view("core-gw"));
  const auto zone_inet = lab->find("internet-zone", std::string_view("inet-gw"));
  ASSERT_EQ(zone_core.size(), 1u);
  ASSERT_EQ(zone_inet.size(), 1u);
  EXPECT_NE(zone_core[0]->node, zone_inet[0]->node);
  EXPECT_EQ(lab->find("internet", std::nullopt, IpFamily::kV4).size(), 1u);
  EXPECT_EQ(lab->find("internet").front()->node, "internet");
  EXPECT_TRUE(lab->find("nowhere").empty());
  // A /28 bordered by one gateway keeps it whole.
  ASSERT_EQ(lab->find("juki-cs").size(), 1u);
  EXPECT_EQ(lab->find("juki-cs")[0]->address, "10.11.0.2");
}

TEST(PolicyLabTest, InternetRangeMovesAsideWhenThePolicyUsesIt) {
  auto loaded = loadExample("enterprise.json");  // its dmz is 198.51.100.0/26
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto lab = labFromPolicy(loaded->policy);
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  const auto internet = lab->find("internet", std::nullopt, IpFamily::kV4);
  ASSERT_EQ(internet.size(), 2u);  // hq-edge names two uplinks, wan0 and wan1
  for (const PolicyLab::Host* host : internet) {
    EXPECT_TRUE(IpPrefix::parse("203.0.113.0/24")->contains(hostPrefix(host->address)));
  }
  EXPECT_EQ(lab->controller_address, "10.255.0.10");
}

// A policy with `gateways` gateways and `segments` segments: segment i is bordered by gateways
// i and i+1 (a ring, so gateways share segments), every fifth gateway borders the internet, the
// first borders the management segment. Segments have an IPv4 /24 and an IPv6 /64 each.
std::string syntheticPolicy(size_t gateways, size_t segments) {
  std::map<size_t, std::vector<std::string>> borders;
  std::string segment_json;
  for (size_t i = 0; i < segments; ++i) {
    const std::string name = "seg-" + std::to_string(i);
    segment_json += "\"" + name + "\": {\"prefixes\": [\"10." + std::to_string(i / 256) + "." +
                    std::to_string(i % 256) + ".0/24\", \"fd10:" + std::to_string(i) +
                    "::/64\"]},\n";
    borders[i % gateways].push_back(name);
    borders[(i + 1) % gateways].push_back(name);
  }
  std::string gateway_json;
  for (size_t g = 0; g < gateways; ++g) {
    std::vector<std::string>& list = borders[g];
    if (g == 0) list.push_back("mgmt");
    if (g % 5 == 0) list.push_back("internet");
    std::string names;
    for (const std::string& name : list) names += (names.empty() ? "\"" : ", \"") + name + "\"";
    gateway_json += std::string(g == 0 ? "" : ",\n") + "\"site-gateway-" + std::to_string(g) +
                    "\": {\"borders\": [" + names + "]" +
                    (g % 5 == 0 ? ", \"interfaces\": {\"internet\": [\"wan0\"]}" : "") + "}";
  }
  return R"({"shadan_policy": 1, "name": "synthetic", "segments": {)" + segment_json +
         R"("mgmt": {"prefixes": ["10.250.0.0/24", "fd99::/64"], "protected": true},
             "internet": {"default": true}},
           "gateways": {)" +
         gateway_json + R"(},
           "management": {"always_allow": [{"prefix": "10.250.0.10/32", "proto": "tcp", "port": 8443}]},
           "profiles": {"full": {}}})";
}

TEST(PolicyLabTest, FiftyGatewaysAndTwoHundredSegmentsBuild) {
  auto loaded = parsePolicy(syntheticPolicy(50, 198), "synthetic.json");  // + mgmt, internet
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->policy.gateways.size(), 50u);
  ASSERT_EQ(loaded->policy.segments.size(), 200u);
  auto lab = labFromPolicy(loaded->policy, {.source = "synthetic.json"});
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  EXPECT_EQ(lab->gateway_nodes.size(), 50u);
  // Two gateways per segment, one IPv4 and one IPv6 prefix each, plus mgmt and the internet.
  EXPECT_EQ(lab->find("seg-7").size(), 4u);
  EXPECT_EQ(lab->find("seg-7", std::string_view("site-gateway-8"), IpFamily::kV6).size(), 1u);
  // Names stay readable where they are cut: the number of a series survives.
  EXPECT_EQ(lab->gateway_nodes.at("site-gateway-12"), "gw-site-gate-12");
  EXPECT_EQ(lab->find("seg-7", std::string_view("site-gateway-8")).front()->node,
            "h-seg-7-sit-8-0");
  for (const LabNode& node : lab->spec.nodes) EXPECT_LE(node.name.size(), 15u) << node.name;
  checkLab(loaded->policy, *lab, false);
}

TEST(PolicyLabTest, TooManyGatewaysOrSegmentsAreRefusedNamingThePolicy) {
  auto loaded = parsePolicy(syntheticPolicy(4, 10), "synthetic.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto gateways = labFromPolicy(loaded->policy, {.source = "/etc/p.json", .max_gateways = 3});
  ASSERT_FALSE(gateways.ok());
  EXPECT_EQ(gateways.error().message,
            "/etc/p.json: cannot build a lab from this policy: 4 gateways, at most 3 fit in a lab");
  auto segments = labFromPolicy(loaded->policy, {.source = "/etc/p.json", .max_segments = 11});
  ASSERT_FALSE(segments.ok());
  EXPECT_NE(segments.error().message.find("12 segments, at most 11"), std::string::npos);
}

Result<PolicyLab> labFromText(const std::string& json) {
  auto loaded = parsePolicy(json, "test.json");
  if (!loaded.ok()) return loaded.error();
  return labFromPolicy(loaded->policy, {.source = "test.json"});
}

// A small policy with room for variations: `segments`, `gateways`, `management` are JSON members.
std::string smallPolicy(const std::string& segments, const std::string& gateways,
                        const std::string& management) {
  return R"({"shadan_policy": 1, "name": "small", "segments": {)" + segments +
         R"(}, "gateways": {)" + gateways + R"(}, "management": {"always_allow": [)" + management +
         R"(]}, "profiles": {"full": {}}})";
}

TEST(PolicyLabTest, WhatCannotBeBuiltIsAnErrorThatSaysWhy) {
  const std::string mgmt =
      R"("mgmt": {"prefixes": ["10.99.0.0/24"], "protected": true}, "internet": {"default": true})";
  const std::string rule = R"({"prefix": "10.99.0.10/32"})";
  struct Case {
    std::string policy;
    std::string error;
  };
  const std::vector<Case> cases = {
      // The always_allow address is in no protected segment.
      {smallPolicy(
           R"("office": {"prefixes": ["10.20.0.0/24"]}, "mgmt": {"prefixes": ["10.99.0.0/24"]})",
           R"("gw": {"borders": ["office", "mgmt"]})", rule),
       "no management segment"},
      {smallPolicy(R"("office": {"prefixes": ["10.20.0.0/24"]}, )" + mgmt,
                   R"("gw": {"borders": ["office", "internet"]})", rule),
       "the management segment \"mgmt\" is bordered by no gateway"},
      // A /30 shared by four gateways: four /32 subnets are not enough for two addresses each.
      {smallPolicy(R"("office": {"prefixes": ["10.20.0.0/30"]}, )" + mgmt,
                   R"("a": {"borders": ["office", "mgmt"]}, "b": {"borders": ["office"]},
                      "c": {"borders": ["office"]}, "d": {"borders": ["office"]})",
                   rule),
       "segment office: prefix 10.20.0.0/30 is too small to give each of its 4 links"},
      // The management /31 cannot hold the controller and a host link.
      {smallPolicy(R"("mgmt": {"prefixes": ["10.99.0.0/31"], "protected": true})",
                   R"("gw": {"borders": ["mgmt"]})", R"({"prefix": "10.99.0.1/32"})"),
       "prefix 10.99.0.0/31 is too small"},
      // Every candidate transit range is the policy's.
      {smallPolicy(R"("cgnat": {"prefixes": ["100.64.0.0/10", "198.18.0.0/15"]}, )" + mgmt,
                   R"("gw": {"borders": ["cgnat", "mgmt"]})", rule),
       "no free address range for transit (IPv4)"},
  };
  for (const Case& c : cases) {
    auto lab = labFromText(c.policy);
    ASSERT_FALSE(lab.ok()) << c.error;
    EXPECT_EQ(lab.error().message.rfind("test.json: cannot build a lab from this policy: ", 0), 0u)
        << lab.error().message;
    EXPECT_NE(lab.error().message.find(c.error), std::string::npos) << lab.error().message;
  }
}

TEST(PolicyLabTest, ControllerAddressThatLinuxReservesGetsAPointToPointLink) {
  // Two slots (/25): the controller's address 10.99.0.128 is the network address of the second.
  auto lab = labFromText(smallPolicy(
      R"("office": {"prefixes": ["10.20.0.0/24"]}, "mgmt": {"prefixes": ["10.99.0.0/24"], "protected": true})",
      R"("gw": {"borders": ["office", "mgmt"]})", R"({"prefix": "10.99.0.128/32"})"));
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  EXPECT_EQ(lab->controller_address, "10.99.0.128");
  const LabEndpoint* controller = lab->spec.endpointsOf("controller").front();
  EXPECT_EQ(controller->addresses, (std::vector<LabAddress>{{IpFamily::kV4, "10.99.0.128", 31}}));
  auto loaded = parsePolicy(
      smallPolicy(
          R"("office": {"prefixes": ["10.20.0.0/24"]}, "mgmt": {"prefixes": ["10.99.0.0/24"], "protected": true})",
          R"("gw": {"borders": ["office", "mgmt"]})", R"({"prefix": "10.99.0.128/32"})"),
      "t");
  ASSERT_TRUE(loaded.ok());
  checkLab(loaded->policy, *lab, true);
}

TEST(PolicyLabTest, WideManagementRuleGivesTheControllerItsFirstAddress) {
  auto lab = labFromText(
      smallPolicy(R"("mgmt": {"prefixes": ["10.99.0.0/24", "fd99::/64"], "protected": true})",
                  R"("gw": {"borders": ["mgmt"]})",
                  R"({"prefix": "10.99.0.32/28", "proto": "tcp", "port": 22})"));
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  EXPECT_EQ(lab->controller_address, "10.99.0.33");
  // No internet: no internet node, no default route anywhere.
  EXPECT_EQ(lab->internet_node, "");
  // The IPv6 prefix, without a rule, still gives the controller an address.
  EXPECT_TRUE(lab->spec.firstAddress("controller", IpFamily::kV6).has_value());
}

TEST(PolicyLabTest, InterfaceNamesTheLabCannotUseAreReplacedAndNoted) {
  auto lab = labFromText(smallPolicy(
      R"("office": {"prefixes": ["10.20.0.0/24"]}, "lab": {"prefixes": ["10.21.0.0/24"]},
         "mgmt": {"prefixes": ["10.99.0.0/24"], "protected": true}, "internet": {"default": true})",
      R"("gw": {"borders": ["office", "lab", "mgmt", "internet"],
                "interfaces": {"office": ["eth0"], "internet": ["eth0"], "lab": ["eth@1", "lo"]}})",
      R"({"prefix": "10.99.0.10/32"})"));
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  // The default segment keeps its name (uplink cuts match it); office's eth0 is renamed.
  bool uplink_eth0 = false;
  for (const LabLink& link : lab->spec.links) {
    if (link.a.ifname == "eth0") uplink_eth0 = link.b.node == "internet";
  }
  EXPECT_TRUE(uplink_eth0);
  ASSERT_EQ(lab->notes.size(), 3u);
  EXPECT_NE(lab->notes[0].find("\"eth0\" is named for segment office"), std::string::npos)
      << lab->notes[0];
  // Two names for lab -> two hosts behind gw, each in its own subnet.
  EXPECT_EQ(lab->find("lab").size(), 2u);
}

TEST(PolicyLabTest, DisconnectedGatewaysAreLinkedToTheControllersGateway) {
  auto loaded = loadExample("enterprise.json");  // osaka, fukuoka and factory share nothing
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto lab = labFromPolicy(loaded->policy);
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  std::set<std::pair<std::string, std::string>> transit;
  for (const LabLink& link : lab->spec.links) {
    if (lab->spec.findNode(link.b.node)->role == LabRole::kGateway) {
      transit.emplace(link.a.node, link.b.node);
    }
  }
  EXPECT_EQ(transit,
            (std::set<std::pair<std::string, std::string>>{{"gw-hq-core", "gw-hq-edge"},
                                                           {"gw-factory-gw", "gw-hq-core"},
                                                           {"gw-fukuoka-gw", "gw-hq-core"},
                                                           {"gw-hq-core", "gw-osaka-gw"}}));
}

TEST(PolicyLabTest, TheLabBuildsThroughTheRunnerWithOneNamespacePerNode) {
  auto loaded = loadExample("fleet.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto lab = labFromPolicy(loaded->policy);
  ASSERT_TRUE(lab.ok()) << lab.error().message;
  FakeCommandRunner runner;
  Lab running(lab->spec, "t1", runner);
  ASSERT_TRUE(running.up().ok());
  EXPECT_EQ(runner.namespaces.size(), lab->spec.nodes.size());
  EXPECT_TRUE(runner.namespaces.contains("sd-t1-gw-core-gw"));
  EXPECT_TRUE(runner.namespaces.contains("sd-t1-controller"));
  EXPECT_TRUE(runner.namespaces.contains("sd-t1-internet"));
  ASSERT_TRUE(running.down().ok());
  EXPECT_TRUE(runner.namespaces.empty());
}

TEST(PrefixMathTest, CarvesAndCountsInBothFamilies) {
  const IpPrefix v4 = *IpPrefix::parse("10.20.0.0/16");
  EXPECT_EQ(subPrefix(v4, 24, 3).toCidr(), "10.20.3.0/24");
  EXPECT_EQ(subPrefixIndex(v4, 24, *IpPrefix::parse("10.20.7.9")), 7u);
  EXPECT_EQ(addressAt(*IpPrefix::parse("10.20.0.252/30"), 2).addressString(), "10.20.0.254");
  EXPECT_EQ(addressAt(*IpPrefix::parse("10.20.0.0/16"), 300).addressString(), "10.20.1.44");
  const IpPrefix v6 = *IpPrefix::parse("fd00:20::/48");
  EXPECT_EQ(subPrefix(v6, 64, 0x1ff).toCidr(), "fd00:20:0:1ff::/64");
  EXPECT_EQ(subPrefix(v6, 49, 1).toCidr(), "fd00:20:0:8000::/49");
  EXPECT_EQ(ceilLog2(1), 0);
  EXPECT_EQ(ceilLog2(2), 1);
  EXPECT_EQ(ceilLog2(5), 3);
  const IpPrefix slot = *IpPrefix::parse("10.99.0.128/25");
  EXPECT_TRUE(isReservedAddress(slot, *IpPrefix::parse("10.99.0.128")));
  EXPECT_TRUE(isReservedAddress(slot, *IpPrefix::parse("10.99.0.255")));
  EXPECT_FALSE(isReservedAddress(slot, *IpPrefix::parse("10.99.0.129")));
  EXPECT_FALSE(isReservedAddress(*IpPrefix::parse("10.99.0.0/31"), *IpPrefix::parse("10.99.0.0")));
  EXPECT_TRUE(isReservedAddress(*IpPrefix::parse("fd00::/64"), *IpPrefix::parse("fd00::")));
  EXPECT_FALSE(isReservedAddress(*IpPrefix::parse("fd00::/64"), *IpPrefix::parse("fd00::ffff")));
}

}  // namespace
}  // namespace shadan
