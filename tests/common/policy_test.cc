#include "common/policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace shadan {
namespace {

using nlohmann::json;

// A valid policy touching every feature; each bad case below breaks exactly one thing in it.
// Gateway borders are deliberately not in alphabetical order (their order must be kept).
constexpr const char* kBasePolicy = R"({
  "shadan_policy": 1,
  "name": "test-policy",
  "segments": {
    "office":   {"description": "office PCs", "prefixes": ["10.20.0.0/24", "fd00:20::/64"]},
    "servers":  {"prefixes": ["10.30.0.0/24", "fd00:30::/64"]},
    "mgmt":     {"prefixes": ["10.99.0.0/24", "fd00:99::/64"], "protected": true},
    "internet": {"description": "the rest", "default": true}
  },
  "gateways": {
    "gw": {"borders": ["office", "servers", "mgmt", "internet"],
           "interfaces": {"office": ["eth1", "eth1.10"], "internet": ["wan0"]}},
    "edge": {"borders": ["internet"]}
  },
  "management": {
    "always_allow": [
      {"description": "controller", "prefix": "10.99.0.10/32", "proto": "tcp", "port": 8443},
      {"prefix": "fd00:99::10", "proto": "udp", "port": 514},
      {"prefix": "10.99.0.0/24", "proto": "icmp"},
      {"prefix": "fd00:99::/64", "proto": "icmpv6"},
      {"prefix": "10.99.0.11"}
    ]
  },
  "profiles": {
    "full": {"description": "cut everything"},
    "internet-only": {"peers": ["internet"]},
    "east-west": {"peers": ["servers", "office"]},
    "forensic": {"allow": [{"description": "workstation", "prefix": "10.99.0.50/32"},
                           {"prefix": "fd00:99::50"}]},
    "full-blackhole": {"blackhole_routes": true}
  }
})";

json basePolicy() { return json::parse(kBasePolicy); }

class PolicyTest : public ::testing::Test {
 protected:
  static Result<LoadedPolicy> parseJson(const json& doc) {
    return parsePolicy(doc.dump(), "test.json");
  }
};

TEST_F(PolicyTest, ParsesTheModel) {
  auto loaded = parsePolicy(kBasePolicy, "test.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const Policy& policy = loaded->policy;
  EXPECT_TRUE(loaded->warnings.empty());
  EXPECT_EQ(policy.format_version, 1);
  EXPECT_EQ(policy.name, "test-policy");

  ASSERT_EQ(policy.segments.size(), 4u);
  const Segment* office = policy.findSegment("office");
  ASSERT_NE(office, nullptr);
  EXPECT_EQ(office->name, "office");
  EXPECT_EQ(office->description, "office PCs");
  ASSERT_EQ(office->prefixes.size(), 2u);
  EXPECT_EQ(office->prefixes[0].toCidr(), "10.20.0.0/24");
  EXPECT_EQ(office->prefixes[1].toCidr(), "fd00:20::/64");
  EXPECT_FALSE(office->is_protected);
  EXPECT_FALSE(office->is_default);
  EXPECT_TRUE(policy.findSegment("mgmt")->is_protected);
  EXPECT_EQ(policy.findSegment("servers")->description, "");
  EXPECT_EQ(policy.findSegment("nowhere"), nullptr);

  const Segment* internet = policy.defaultSegment();
  ASSERT_NE(internet, nullptr);
  EXPECT_EQ(internet->name, "internet");
  EXPECT_TRUE(internet->prefixes.empty());

  const Gateway* gw = policy.findGateway("gw");
  ASSERT_NE(gw, nullptr);
  EXPECT_EQ(gw->id, "gw");
  EXPECT_EQ(gw->borders, (std::vector<std::string>{"office", "servers", "mgmt", "internet"}));
  ASSERT_EQ(gw->interfaces.size(), 2u);
  EXPECT_EQ(gw->interfaces.at("office"), (std::vector<std::string>{"eth1", "eth1.10"}));
  EXPECT_EQ(gw->interfaces.at("internet"), (std::vector<std::string>{"wan0"}));
  EXPECT_TRUE(policy.findGateway("edge")->interfaces.empty());
  EXPECT_EQ(policy.findGateway("core-gw"), nullptr);

  ASSERT_EQ(policy.always_allow.size(), 5u);
  EXPECT_EQ(policy.always_allow[0].description, "controller");
  EXPECT_EQ(policy.always_allow[0].prefix.toString(), "10.99.0.10");
  EXPECT_EQ(policy.always_allow[0].proto, L4Proto::kTcp);
  EXPECT_EQ(policy.always_allow[0].port, std::optional<uint16_t>(8443));
  EXPECT_EQ(policy.always_allow[1].prefix.toCidr(), "fd00:99::10/128");
  EXPECT_EQ(policy.always_allow[1].proto, L4Proto::kUdp);
  EXPECT_EQ(policy.always_allow[1].port, std::optional<uint16_t>(514));
  EXPECT_EQ(policy.always_allow[2].proto, L4Proto::kIcmp);
  EXPECT_FALSE(policy.always_allow[2].port.has_value());
  EXPECT_EQ(policy.always_allow[3].proto, L4Proto::kIcmpv6);
  EXPECT_EQ(policy.always_allow[4].proto, L4Proto::kAny);
  EXPECT_FALSE(policy.always_allow[4].port.has_value());

  ASSERT_EQ(policy.profiles.size(), 5u);
  const Profile* full = policy.findProfile("full");
  ASSERT_NE(full, nullptr);
  EXPECT_TRUE(full->isFull());
  EXPECT_EQ(full->description, "cut everything");
  EXPECT_FALSE(full->blackhole_routes);
  const Profile* internet_only = policy.findProfile("internet-only");
  ASSERT_NE(internet_only, nullptr);
  EXPECT_FALSE(internet_only->isFull());
  EXPECT_EQ(internet_only->peers, std::vector<std::string>{"internet"});
  EXPECT_EQ(policy.findProfile("east-west")->peers,
            (std::vector<std::string>{"servers", "office"}));
  const Profile* forensic = policy.findProfile("forensic");
  ASSERT_NE(forensic, nullptr);
  EXPECT_TRUE(forensic->isFull());
  ASSERT_EQ(forensic->allow.size(), 2u);
  EXPECT_EQ(forensic->allow[0].description, "workstation");
  EXPECT_EQ(forensic->allow[0].prefix.toString(), "10.99.0.50");
  EXPECT_EQ(forensic->allow[1].prefix.toString(), "fd00:99::50");
  EXPECT_TRUE(policy.findProfile("full-blackhole")->blackhole_routes);
  EXPECT_TRUE(policy.findProfile("full-blackhole")->isFull());
  EXPECT_EQ(policy.findProfile("nothing"), nullptr);
}

TEST_F(PolicyTest, MapsAreSortedByName) {
  auto loaded = parsePolicy(kBasePolicy, "test.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  std::vector<std::string> names;
  for (const auto& [name, segment] : loaded->policy.segments) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"internet", "mgmt", "office", "servers"}));
}

TEST_F(PolicyTest, L4ProtoNames) {
  EXPECT_STREQ(l4ProtoName(L4Proto::kAny), "any");
  EXPECT_STREQ(l4ProtoName(L4Proto::kTcp), "tcp");
  EXPECT_STREQ(l4ProtoName(L4Proto::kUdp), "udp");
  EXPECT_STREQ(l4ProtoName(L4Proto::kIcmp), "icmp");
  EXPECT_STREQ(l4ProtoName(L4Proto::kIcmpv6), "icmpv6");
  EXPECT_STREQ(l4ProtoName(L4Proto::kSctp), "sctp");
}

TEST_F(PolicyTest, AcceptsOptionalPartsLeftOut) {
  json doc = basePolicy();
  doc.erase("management");
  doc["segments"].erase("internet");
  for (auto& [id, gateway] : doc["gateways"].items()) {
    auto& borders = gateway["borders"];
    borders.erase(std::remove(borders.begin(), borders.end(), "internet"), borders.end());
    gateway.erase("interfaces");
  }
  doc["gateways"]["edge"].erase("borders");
  doc["profiles"].erase("internet-only");
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->policy.defaultSegment(), nullptr);
  EXPECT_TRUE(loaded->policy.always_allow.empty());
  EXPECT_TRUE(loaded->policy.findGateway("edge")->borders.empty());
}

TEST_F(PolicyTest, DescriptionLimitCountsCharactersNotBytes) {
  json doc = basePolicy();
  std::string japanese;
  for (int i = 0; i < 256; ++i) japanese += "\xe9\x81\xae";  // 遮, 3 bytes each
  doc["segments"]["office"]["description"] = japanese;
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->policy.findSegment("office")->description, japanese);

  doc["segments"]["office"]["description"] = japanese + "x";
  auto too_long = parseJson(doc);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("/segments/office/description: description longer"),
            std::string::npos)
      << too_long.error().message;
}

TEST_F(PolicyTest, WarnsWhenNoManagementRules) {
  json doc = basePolicy();
  doc.erase("management");
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_EQ(loaded->warnings[0].pointer, "/management/always_allow");
  EXPECT_NE(loaded->warnings[0].message.find("controller"), std::string::npos);

  doc["management"] = json::object();
  loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_EQ(loaded->warnings[0].pointer, "/management/always_allow");

  doc["management"]["always_allow"] = json::array();
  loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_EQ(loaded->warnings[0].pointer, "/management/always_allow");
}

TEST_F(PolicyTest, WarnsWhenAGatewayBordersNothing) {
  json doc = basePolicy();
  doc["gateways"]["idle"] = json::object();
  doc["gateways"]["empty"] = {{"borders", json::array()}};
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->warnings.size(), 2u);
  EXPECT_EQ(loaded->warnings[0].pointer, "/gateways/empty/borders");
  EXPECT_EQ(loaded->warnings[1].pointer, "/gateways/idle/borders");
  EXPECT_NE(loaded->warnings[1].message.find("borders no segment"), std::string::npos);
}

TEST_F(PolicyTest, WarnsWhenASegmentHasNoGateway) {
  json doc = basePolicy();
  doc["segments"]["lab"] = {{"prefixes", {"10.40.0.0/24"}}};
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_EQ(loaded->warnings[0].pointer, "/segments/lab");
}

TEST_F(PolicyTest, ParsesLinkDownUplinks) {
  json doc = basePolicy();
  doc["gateways"]["gw"]["interfaces"]["internet"] = {"wan0", "wan1", "ppp0"};
  doc["gateways"]["gw"]["link_down"] = {"ppp0", "wan0"};
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_TRUE(loaded->warnings.empty());
  // Policy order is kept: it is the order the links go down in.
  EXPECT_EQ(loaded->policy.findGateway("gw")->link_down,
            (std::vector<std::string>{"ppp0", "wan0"}));
  EXPECT_TRUE(loaded->policy.findGateway("edge")->link_down.empty());
}

TEST_F(PolicyTest, LinkDownIsOptionalAndMayBeEmpty) {
  auto absent = parsePolicy(kBasePolicy, "test.json");
  ASSERT_TRUE(absent.ok()) << absent.error().message;
  EXPECT_TRUE(absent->policy.findGateway("gw")->link_down.empty());

  json doc = basePolicy();
  doc["gateways"]["edge"]["link_down"] = json::array();
  auto empty = parseJson(doc);
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty->policy.findGateway("edge")->link_down.empty());

  // Without a default segment there is no uplink, but an empty list asks for none.
  doc = basePolicy();
  doc["segments"].erase("internet");
  for (auto& [id, gateway] : doc["gateways"].items()) {
    auto& borders = gateway["borders"];
    borders.erase(std::remove(borders.begin(), borders.end(), "internet"), borders.end());
    gateway.erase("interfaces");
    gateway["link_down"] = json::array();
  }
  doc["profiles"].erase("internet-only");
  auto no_default = parseJson(doc);
  ASSERT_TRUE(no_default.ok()) << no_default.error().message;
  EXPECT_TRUE(no_default->policy.findGateway("gw")->link_down.empty());
}

TEST_F(PolicyTest, LinkDownMayPrecedeInterfacesInTheFile) {
  std::string text = kBasePolicy;
  const std::string gw = R"("gw": {)";
  text.replace(text.find(gw), gw.size(), gw + R"("link_down": ["wan0"], )");
  auto loaded = parsePolicy(text, "test.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->policy.findGateway("gw")->link_down, std::vector<std::string>{"wan0"});
}

struct BadPolicyCase {
  const char* what;
  std::function<void(json&)> mutate;
  const char* pointer;  // the JSON pointer the error must name
  const char* reason;   // a fragment of the reason
};

TEST_F(PolicyTest, RejectsBadPolicies) {
  const BadPolicyCase cases[] = {
      // Unknown keys at several depths.
      {"unknown top-level key", [](json& d) { d["extra"] = 1; }, "/extra",
       "unknown key \"extra\""},
      {"unknown segment key", [](json& d) { d["segments"]["office"]["prefix"] = "10.1.0.0/16"; },
       "/segments/office/prefix", "unknown key \"prefix\""},
      {"unknown gateway key", [](json& d) { d["gateways"]["gw"]["border"] = json::array(); },
       "/gateways/gw/border", "unknown key \"border\""},
      {"unknown management key", [](json& d) { d["management"]["rules"] = json::array(); },
       "/management/rules", "unknown key \"rules\""},
      {"unknown management rule key",
       [](json& d) { d["management"]["always_allow"][0]["ports"] = 1; },
       "/management/always_allow/0/ports", "unknown key \"ports\""},
      {"unknown profile key", [](json& d) { d["profiles"]["full"]["cut"] = true; },
       "/profiles/full/cut", "unknown key \"cut\""},
      {"unknown allow key", [](json& d) { d["profiles"]["forensic"]["allow"][1]["note"] = "x"; },
       "/profiles/forensic/allow/1/note", "unknown key \"note\""},
      {"unknown key with a slash", [](json& d) { d["segments"]["office"]["a/b"] = 1; },
       "/segments/office/a~1b", "unknown key \"a/b\""},

      // Top level.
      {"missing version", [](json& d) { d.erase("shadan_policy"); }, "/shadan_policy",
       "missing required key"},
      {"version 2", [](json& d) { d["shadan_policy"] = 2; }, "/shadan_policy",
       "unsupported policy format version 2"},
      {"version as string", [](json& d) { d["shadan_policy"] = "1"; }, "/shadan_policy",
       "expected an integer, got string"},
      {"version as bool", [](json& d) { d["shadan_policy"] = true; }, "/shadan_policy",
       "expected an integer, got boolean"},
      {"missing name", [](json& d) { d.erase("name"); }, "/name", "missing required key"},
      {"name as number", [](json& d) { d["name"] = 5; }, "/name", "expected a string, got number"},
      {"empty name", [](json& d) { d["name"] = ""; }, "/name", "policy name must be"},
      {"missing profiles", [](json& d) { d.erase("profiles"); }, "/profiles",
       "missing required key"},
      {"segments as array", [](json& d) { d["segments"] = json::array(); }, "/segments",
       "expected an object, got array"},
      {"no segments", [](json& d) { d["segments"] = json::object(); }, "/segments",
       "at least one segment"},
      {"gateways as string", [](json& d) { d["gateways"] = "gw"; }, "/gateways",
       "expected an object, got string"},
      {"profiles as array", [](json& d) { d["profiles"] = json::array(); }, "/profiles",
       "expected an object, got array"},
      {"management as array", [](json& d) { d["management"] = json::array(); }, "/management",
       "expected an object, got array"},

      // Names.
      {"upper-case segment name",
       [](json& d) { d["segments"]["Office"] = {{"prefixes", {"10.40.0.0/24"}}}; },
       "/segments/Office", "invalid segment name \"Office\""},
      {"segment name with underscore",
       [](json& d) { d["segments"]["my_seg"] = {{"prefixes", {"10.40.0.0/24"}}}; },
       "/segments/my_seg", "invalid segment name"},
      {"segment name starting with a dash",
       [](json& d) { d["segments"]["-seg"] = {{"prefixes", {"10.40.0.0/24"}}}; }, "/segments/-seg",
       "invalid segment name"},
      {"segment name of 33 characters",
       [](json& d) { d["segments"][std::string(33, 'a')] = {{"prefixes", {"10.40.0.0/24"}}}; },
       "/segments/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "invalid segment name"},
      {"gateway name with underscore", [](json& d) { d["gateways"]["gw_1"] = json::object(); },
       "/gateways/gw_1", "invalid gateway name \"gw_1\""},
      {"profile name with upper case",
       [](json& d) { d["profiles"]["Full"] = json::object(); }, "/profiles/Full",
       "invalid profile name \"Full\""},
      {"empty profile name", [](json& d) { d["profiles"][""] = json::object(); }, "/profiles/",
       "invalid profile name \"\""},

      // Segments and prefixes.
      {"invalid prefix", [](json& d) { d["segments"]["office"]["prefixes"][0] = "10.20.0/24"; },
       "/segments/office/prefixes/0", "not an IPv4 address"},
      {"invalid IPv6 prefix",
       [](json& d) { d["segments"]["office"]["prefixes"][1] = "fd00:20:::/64"; },
       "/segments/office/prefixes/1", "not an IPv6 address"},
      {"prefix length too long",
       [](json& d) { d["segments"]["office"]["prefixes"][0] = "10.20.0.0/33"; },
       "/segments/office/prefixes/0", "prefix length must be 0..32"},
      {"host bits set", [](json& d) { d["segments"]["office"]["prefixes"][0] = "10.20.0.1/24"; },
       "/segments/office/prefixes/0", "host bits set (did you mean 10.20.0.0/24?)"},
      {"prefix as number", [](json& d) { d["segments"]["office"]["prefixes"][0] = 10; },
       "/segments/office/prefixes/0", "expected a string, got number"},
      {"prefixes as string", [](json& d) { d["segments"]["office"]["prefixes"] = "10.20.0.0/24"; },
       "/segments/office/prefixes", "expected an array, got string"},
      {"overlap across segments",
       [](json& d) { d["segments"]["servers"]["prefixes"].push_back("10.20.0.128/25"); },
       "/segments/servers/prefixes/2",
       "prefix 10.20.0.128/25 overlaps 10.20.0.0/24 of segment \"office\" "
       "(/segments/office/prefixes/0)"},
      {"overlap with a wider prefix in another segment",
       [](json& d) { d["segments"]["mgmt"]["prefixes"].push_back("10.0.0.0/8"); },
       "/segments/office/prefixes/0", "overlaps 10.0.0.0/8 of segment \"mgmt\""},
      {"IPv6 overlap across segments",
       [](json& d) { d["segments"]["mgmt"]["prefixes"].push_back("fd00:20::/48"); },
       "/segments/office/prefixes/1", "overlaps fd00:20::/48 of segment \"mgmt\""},
      {"duplicate prefix across segments",
       [](json& d) { d["segments"]["servers"]["prefixes"].push_back("10.20.0.0/24"); },
       "/segments/servers/prefixes/2", "duplicates 10.20.0.0/24 of segment \"office\""},
      {"duplicate prefix within a segment",
       [](json& d) { d["segments"]["office"]["prefixes"].push_back("10.20.0.0/24"); },
       "/segments/office/prefixes/2", "duplicates 10.20.0.0/24 in the same segment"},
      {"nested prefix within a segment",
       [](json& d) { d["segments"]["office"]["prefixes"].push_back("10.20.0.0/25"); },
       "/segments/office/prefixes/2", "overlaps 10.20.0.0/24 in the same segment"},
      {"two default segments", [](json& d) { d["segments"]["other"] = {{"default", true}}; },
       "/segments/other/default", "a second default segment (the first is at /segments/internet/default)"},
      {"default segment with prefixes",
       [](json& d) { d["segments"]["internet"]["prefixes"] = {"192.0.2.0/24"}; },
       "/segments/internet/prefixes", "takes no prefixes"},
      {"segment without prefixes", [](json& d) { d["segments"]["office"].erase("prefixes"); },
       "/segments/office/prefixes", "needs at least one prefix"},
      {"segment with empty prefixes",
       [](json& d) { d["segments"]["office"]["prefixes"] = json::array(); },
       "/segments/office/prefixes", "needs at least one prefix"},
      {"non-default segment explicitly",
       [](json& d) { d["segments"]["internet"]["default"] = false; },
       "/segments/internet/prefixes", "needs at least one prefix"},
      {"protected as string", [](json& d) { d["segments"]["mgmt"]["protected"] = "yes"; },
       "/segments/mgmt/protected", "expected a boolean, got string"},
      {"default as number", [](json& d) { d["segments"]["internet"]["default"] = 1; },
       "/segments/internet/default", "expected a boolean, got number"},
      {"segment as array", [](json& d) { d["segments"]["office"] = json::array(); },
       "/segments/office", "expected an object, got array"},
      {"description too long",
       [](json& d) { d["segments"]["office"]["description"] = std::string(257, 'x'); },
       "/segments/office/description", "description longer than 256 characters"},
      {"description with a newline",
       [](json& d) { d["profiles"]["full"]["description"] = "cut\nALERT forged log line"; },
       "/profiles/full/description", "control characters"},
      {"description as number", [](json& d) { d["segments"]["office"]["description"] = 1; },
       "/segments/office/description", "expected a string, got number"},

      // Gateways.
      {"gateway bordering an unknown segment",
       [](json& d) { d["gateways"]["gw"]["borders"].push_back("offfice"); },
       "/gateways/gw/borders/4", "unknown segment \"offfice\""},
      {"gateway bordering a segment twice",
       [](json& d) { d["gateways"]["gw"]["borders"].push_back("office"); },
       "/gateways/gw/borders/4", "segment \"office\" listed twice"},
      {"borders as string", [](json& d) { d["gateways"]["gw"]["borders"] = "office"; },
       "/gateways/gw/borders", "expected an array, got string"},
      {"border as number", [](json& d) { d["gateways"]["gw"]["borders"][1] = 3; },
       "/gateways/gw/borders/1", "expected a string, got number"},
      {"gateway as array", [](json& d) { d["gateways"]["gw"] = json::array(); }, "/gateways/gw",
       "expected an object, got array"},
      {"interfaces for a segment not bordered",
       [](json& d) { d["gateways"]["edge"]["interfaces"] = {{"office", {"eth0"}}}; },
       "/gateways/edge/interfaces/office", "segment \"office\" is not in this gateway's borders"},
      {"interfaces for an unknown segment",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["nowhere"] = {"eth0"}; },
       "/gateways/gw/interfaces/nowhere", "unknown segment \"nowhere\""},
      {"empty interface list",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["servers"] = json::array(); },
       "/gateways/gw/interfaces/servers", "empty interface list"},
      {"interface list as string",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["servers"] = "eth2"; },
       "/gateways/gw/interfaces/servers", "expected an array, got string"},
      {"interfaces as array", [](json& d) { d["gateways"]["gw"]["interfaces"] = json::array(); },
       "/gateways/gw/interfaces", "expected an object, got array"},
      {"interface name of 16 characters",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["office"][1] = "abcdefghijklmnop"; },
       "/gateways/gw/interfaces/office/1", "invalid interface name \"abcdefghijklmnop\""},
      {"interface name with a slash",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["office"][0] = "eth/0"; },
       "/gateways/gw/interfaces/office/0", "invalid interface name"},
      {"interface name with a space",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["office"][0] = "eth 0"; },
       "/gateways/gw/interfaces/office/0", "invalid interface name"},
      {"interface name with a tab",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["office"][0] = "eth\t0"; },
       "/gateways/gw/interfaces/office/0", "invalid interface name"},
      {"empty interface name",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["office"][0] = ""; },
       "/gateways/gw/interfaces/office/0", "invalid interface name"},
      {"interface listed twice",
       [](json& d) { d["gateways"]["gw"]["interfaces"]["office"][1] = "eth1"; },
       "/gateways/gw/interfaces/office/1", "interface \"eth1\" listed twice"},
      {"link_down naming an interface of another segment",
       [](json& d) { d["gateways"]["gw"]["link_down"] = {"eth1"}; }, "/gateways/gw/link_down/0",
       "\"eth1\" is not an interface of the default segment \"internet\" on this gateway"},
      {"link_down naming an interface the gateway does not list",
       [](json& d) { d["gateways"]["gw"]["link_down"] = {"wan0", "eth9"}; },
       "/gateways/gw/link_down/1",
       "\"eth9\" is not an interface of the default segment \"internet\" on this gateway"},
      {"link_down on a gateway without uplink interfaces",
       [](json& d) { d["gateways"]["edge"]["link_down"] = {"wan0"}; },
       "/gateways/edge/link_down/0",
       "\"wan0\" is not an interface of the default segment \"internet\" on this gateway"},
      {"link_down without a default segment",
       [](json& d) {
         d["segments"].erase("internet");
         for (auto& [id, gateway] : d["gateways"].items()) {
           auto& borders = gateway["borders"];
           borders.erase(std::remove(borders.begin(), borders.end(), "internet"), borders.end());
         }
         d["gateways"]["gw"]["interfaces"].erase("internet");
         d["profiles"].erase("internet-only");
         d["gateways"]["gw"]["link_down"] = {"eth1"};
       },
       "/gateways/gw/link_down", "this policy has no default segment"},
      {"link_down interface listed twice",
       [](json& d) { d["gateways"]["gw"]["link_down"] = {"wan0", "wan0"}; },
       "/gateways/gw/link_down/1", "interface \"wan0\" listed twice"},
      {"link_down interface name of 16 characters",
       [](json& d) { d["gateways"]["gw"]["link_down"] = {"abcdefghijklmnop"}; },
       "/gateways/gw/link_down/0", "invalid interface name \"abcdefghijklmnop\""},
      {"link_down interface name with a colon",
       [](json& d) { d["gateways"]["gw"]["link_down"] = {"wan0:1"}; }, "/gateways/gw/link_down/0",
       "invalid interface name"},
      {"link_down as string", [](json& d) { d["gateways"]["gw"]["link_down"] = "wan0"; },
       "/gateways/gw/link_down", "expected an array, got string"},
      {"link_down entry as number", [](json& d) { d["gateways"]["gw"]["link_down"] = {0}; },
       "/gateways/gw/link_down/0", "expected a string, got number"},

      // Profiles.
      {"no full profile", [](json& d) { d["profiles"].erase("full"); }, "/profiles/full",
       "missing the \"full\" profile"},
      {"full profile with peers",
       [](json& d) { d["profiles"]["full"]["peers"] = {"internet"}; }, "/profiles/full/peers",
       "takes no peers"},
      {"full profile with allow",
       [](json& d) { d["profiles"]["full"]["allow"] = {{{"prefix", "10.99.0.50"}}}; },
       "/profiles/full/allow", "put allow exceptions in another profile"},
      {"profile with an unknown peer",
       [](json& d) { d["profiles"]["internet-only"]["peers"][0] = "internt"; },
       "/profiles/internet-only/peers/0", "unknown peer segment \"internt\""},
      {"profile with a peer listed twice",
       [](json& d) { d["profiles"]["east-west"]["peers"].push_back("servers"); },
       "/profiles/east-west/peers/2", "segment \"servers\" listed twice"},
      {"profile with empty peers",
       [](json& d) { d["profiles"]["internet-only"]["peers"] = json::array(); },
       "/profiles/internet-only/peers", "empty peers list"},
      {"peers as string", [](json& d) { d["profiles"]["internet-only"]["peers"] = "internet"; },
       "/profiles/internet-only/peers", "expected an array, got string"},
      {"profile as string", [](json& d) { d["profiles"]["forensic"] = "full"; },
       "/profiles/forensic", "expected an object, got string"},
      {"blackhole routes on a profile with peers",
       [](json& d) { d["profiles"]["internet-only"]["blackhole_routes"] = true; },
       "/profiles/internet-only/blackhole_routes", "only allowed on a profile without peers"},
      {"blackhole routes as string",
       [](json& d) { d["profiles"]["full-blackhole"]["blackhole_routes"] = "true"; },
       "/profiles/full-blackhole/blackhole_routes", "expected a boolean, got string"},
      {"allow entry without prefix", [](json& d) { d["profiles"]["forensic"]["allow"][0].erase("prefix"); },
       "/profiles/forensic/allow/0/prefix", "missing required key \"prefix\""},
      {"allow entry with host bits",
       [](json& d) { d["profiles"]["forensic"]["allow"][0]["prefix"] = "10.99.0.50/24"; },
       "/profiles/forensic/allow/0/prefix", "host bits set"},
      {"empty allow list", [](json& d) { d["profiles"]["forensic"]["allow"] = json::array(); },
       "/profiles/forensic/allow", "empty allow list"},
      {"allow entry as string", [](json& d) { d["profiles"]["forensic"]["allow"][0] = "10.99.0.50"; },
       "/profiles/forensic/allow/0", "expected an object, got string"},

      // Management rules: proto and port combinations.
      {"always_allow as object",
       [](json& d) { d["management"]["always_allow"] = json::object(); },
       "/management/always_allow", "expected an array, got object"},
      {"rule without prefix", [](json& d) { d["management"]["always_allow"][0].erase("prefix"); },
       "/management/always_allow/0/prefix", "missing required key \"prefix\""},
      {"rule with an invalid prefix",
       [](json& d) { d["management"]["always_allow"][0]["prefix"] = "controller.example"; },
       "/management/always_allow/0/prefix", "not an IPv4 address"},
      {"unknown proto", [](json& d) { d["management"]["always_allow"][0]["proto"] = "gre"; },
       "/management/always_allow/0/proto", "unknown proto \"gre\""},
      {"upper-case proto", [](json& d) { d["management"]["always_allow"][0]["proto"] = "TCP"; },
       "/management/always_allow/0/proto", "unknown proto \"TCP\""},
      {"proto as number", [](json& d) { d["management"]["always_allow"][0]["proto"] = 6; },
       "/management/always_allow/0/proto", "expected a string, got number"},
      {"port with icmp", [](json& d) { d["management"]["always_allow"][2]["port"] = 1; },
       "/management/always_allow/2/port", "port needs proto tcp, udp or sctp"},
      {"port with icmpv6", [](json& d) { d["management"]["always_allow"][3]["port"] = 1; },
       "/management/always_allow/3/port", "port needs proto tcp, udp or sctp"},
      {"port without proto", [](json& d) { d["management"]["always_allow"][4]["port"] = 22; },
       "/management/always_allow/4/port", "port needs proto tcp, udp or sctp"},
      {"port 0", [](json& d) { d["management"]["always_allow"][0]["port"] = 0; },
       "/management/always_allow/0/port", "0 is out of range 1..65535"},
      {"port 65536", [](json& d) { d["management"]["always_allow"][0]["port"] = 65536; },
       "/management/always_allow/0/port", "65536 is out of range 1..65535"},
      {"negative port", [](json& d) { d["management"]["always_allow"][0]["port"] = -1; },
       "/management/always_allow/0/port", "-1 is out of range 1..65535"},
      {"huge port",
       [](json& d) {
         d["management"]["always_allow"][0]["port"] = std::numeric_limits<uint64_t>::max();
       },
       "/management/always_allow/0/port", "out of range 1..65535"},
      {"port as string", [](json& d) { d["management"]["always_allow"][0]["port"] = "8443"; },
       "/management/always_allow/0/port", "expected an integer, got string"},
      {"port as float", [](json& d) { d["management"]["always_allow"][0]["port"] = 8443.0; },
       "/management/always_allow/0/port", "floating-point numbers are not allowed"},
      {"icmp with an IPv6 prefix",
       [](json& d) { d["management"]["always_allow"][1] = {{"prefix", "fd00:99::10"}, {"proto", "icmp"}}; },
       "/management/always_allow/1/proto", "proto icmp needs an IPv4 prefix"},
      {"icmpv6 with an IPv4 prefix",
       [](json& d) { d["management"]["always_allow"][0].erase("port");
                     d["management"]["always_allow"][0]["proto"] = "icmpv6"; },
       "/management/always_allow/0/proto", "proto icmpv6 needs an IPv6 prefix"},
      {"rule as string", [](json& d) { d["management"]["always_allow"][0] = "10.99.0.10"; },
       "/management/always_allow/0", "expected an object, got string"},
  };
  for (const auto& c : cases) {
    json doc = basePolicy();
    c.mutate(doc);
    auto loaded = parseJson(doc);
    if (loaded.ok()) {
      ADD_FAILURE() << "accepted: " << c.what;
      continue;
    }
    EXPECT_EQ(loaded.error().code, ErrorCode::kPolicy) << c.what;
    const std::string& message = loaded.error().message;
    const std::string where = std::string("test.json: ") + c.pointer + ": ";
    EXPECT_EQ(message.rfind(where, 0), 0u)
        << c.what << "\n  want pointer: " << where << "\n  got: " << message;
    EXPECT_NE(message.find(c.reason), std::string::npos)
        << c.what << "\n  want reason: " << c.reason << "\n  got: " << message;
  }
}

TEST_F(PolicyTest, AcceptsEveryPortBoundAndProto) {
  json doc = basePolicy();
  doc["management"]["always_allow"] = {
      {{"prefix", "10.99.0.10"}, {"proto", "tcp"}, {"port", 1}},
      {{"prefix", "10.99.0.10"}, {"proto", "udp"}, {"port", 65535}},
      {{"prefix", "fd00:99::10"}, {"proto", "sctp"}, {"port", 3868}},
      {{"prefix", "fd00:99::10"}, {"proto", "tcp"}},
  };
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const auto& rules = loaded->policy.always_allow;
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].port, std::optional<uint16_t>(1));
  EXPECT_EQ(rules[1].port, std::optional<uint16_t>(65535));
  EXPECT_EQ(rules[2].proto, L4Proto::kSctp);
  EXPECT_EQ(rules[3].proto, L4Proto::kTcp);
  EXPECT_FALSE(rules[3].port.has_value());
}

TEST_F(PolicyTest, AcceptsSameAddressInBothFamiliesAndAdjacentPrefixes) {
  json doc = basePolicy();
  doc["segments"]["servers"]["prefixes"] = {"10.20.1.0/24", "::ffff:10.20.0.0/120"};
  auto loaded = parseJson(doc);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
}

struct BadTextCase {
  const char* what;
  std::string text;
  const char* fragment;
};

TEST_F(PolicyTest, RejectsBadText) {
  std::string duplicate_segment = kBasePolicy;
  duplicate_segment.replace(duplicate_segment.find("\"servers\":  {"), 0,
                            "\"office\": {\"prefixes\": [\"10.40.0.0/24\"]},\n");
  std::string duplicate_port = kBasePolicy;
  duplicate_port.replace(duplicate_port.find("\"port\": 8443"), 0, "\"port\": 22, ");
  const BadTextCase cases[] = {
      {"duplicate segment", duplicate_segment, "test.json: /segments: duplicate key \"office\""},
      {"duplicate port", duplicate_port,
       "test.json: /management/always_allow/0: duplicate key \"port\""},
      {"truncated", std::string(kBasePolicy).substr(0, 200), "test.json: byte "},
      {"empty", "", "test.json: byte 1: "},
      {"root is an array", "[]", "test.json: /: expected an object, got array"},
      {"root is null", "null", "test.json: /: expected an object, got null"},
      {"too large", std::string(1024 * 1024 + 1, ' '), "test.json: 1048577 bytes exceeds"},
  };
  for (const auto& c : cases) {
    auto loaded = parsePolicy(c.text, "test.json");
    if (loaded.ok()) {
      ADD_FAILURE() << "accepted: " << c.what;
      continue;
    }
    EXPECT_EQ(loaded.error().code, ErrorCode::kPolicy) << c.what;
    EXPECT_NE(loaded.error().message.find(c.fragment), std::string::npos)
        << c.what << "\n  want: " << c.fragment << "\n  got: " << loaded.error().message;
  }
}

TEST_F(PolicyTest, ErrorMessageMatchesTheDocumentedFormat) {
  std::ifstream in(std::string(SHADAN_SOURCE_DIR) +
                   "/policies/examples/municipality-three-tier.json");
  ASSERT_TRUE(in.good());
  json doc = json::parse(in);
  doc["gateways"]["core-gw"]["borders"][2] = "lgwn";
  auto loaded = parsePolicy(doc.dump(2), "lab.json");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message,
            "lab.json: /gateways/core-gw/borders/2: unknown segment \"lgwn\"");
}

class PolicyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("shadan_policy_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& content) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(PolicyFileTest, LoadsAFile) {
  auto loaded = loadPolicyFile(write("good.json", kBasePolicy));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->policy.name, "test-policy");
}

TEST_F(PolicyFileTest, ErrorsNameThePath) {
  json doc = basePolicy();
  doc["extra"] = true;
  const auto path = write("bad.json", doc.dump());
  auto loaded = loadPolicyFile(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().code, ErrorCode::kPolicy);
  EXPECT_EQ(loaded.error().message.rfind(path.string() + ": /extra: unknown key", 0), 0u)
      << loaded.error().message;
}

TEST_F(PolicyFileTest, RejectsMissingFileDirectoryAndOversizedFile) {
  auto missing = loadPolicyFile(dir_ / "missing.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kIo);
  EXPECT_NE(missing.error().message.find("missing.json"), std::string::npos);

  auto directory = loadPolicyFile(dir_);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().code, ErrorCode::kIo);

  auto big = loadPolicyFile(write("big.json", std::string(1024 * 1024 + 1, ' ')));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, ErrorCode::kPolicy);
  EXPECT_NE(big.error().message.find("larger than the limit of 1048576 bytes"), std::string::npos)
      << big.error().message;
}

}  // namespace
}  // namespace shadan

namespace shadan {
namespace {

// agent.drill_max_ttl_s (issue #17): how long a drill isolation may last at most.
TEST(PolicyAgentOptionsTest, DrillMaxTtlDefaultsToAnHourAndIsBounded) {
  auto loaded = parsePolicy(basePolicy().dump(), "test.json");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->policy.agent.drill_max_ttl_s, 3600);

  for (int64_t ttl : {int64_t{60}, int64_t{900}, int64_t{7 * 24 * 3600}}) {
    json doc = basePolicy();
    doc["agent"] = {{"drill_max_ttl_s", ttl}};
    auto parsed = parsePolicy(doc.dump(), "test.json");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->policy.agent.drill_max_ttl_s, ttl);
  }
  struct Case {
    json value;
    const char* expected;
  };
  for (const Case& c : {Case{59,
                             "test.json: /agent/drill_max_ttl_s: 59 is out of range "
                             "60..604800"},
                        Case{604801, "/agent/drill_max_ttl_s: 604801 is out of range"},
                        Case{"3600", "/agent/drill_max_ttl_s: expected an integer"},
                        Case{3600.0, "/agent/drill_max_ttl_s"}}) {
    json doc = basePolicy();
    doc["agent"] = {{"drill_max_ttl_s", c.value}};
    auto parsed = parsePolicy(doc.dump(), "test.json");
    ASSERT_FALSE(parsed.ok()) << c.value.dump();
    EXPECT_NE(parsed.error().message.find(c.expected), std::string::npos) << parsed.error().message;
  }
}

}  // namespace
}  // namespace shadan
