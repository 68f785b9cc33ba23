#include "cli/lab/lab.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/cli/fake_command_runner.h"

namespace shadan {
namespace {

using Argv = std::vector<std::string>;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Did `runner` set `setting` ("key=value") inside `ns` (one sysctl run per node)?
bool ranSysctl(const FakeCommandRunner& runner, const std::string& ns, const std::string& setting) {
  for (const auto& call : runner.calls) {
    const Argv& argv = call.argv;
    if (argv.size() > 7 &&
        Argv(argv.begin(), argv.begin() + 7) ==
            Argv{"ip", "netns", "exec", ns, "sysctl", "-q", "-w"} &&
        std::find(argv.begin() + 7, argv.end(), setting) != argv.end()) {
      return true;
    }
  }
  return false;
}

// Did `runner` add the route `line` ("route add TO via VIA") inside `ns` (one `ip -batch` per
// node and family, `family` "-4" or "-6")?
bool ranRoute(const FakeCommandRunner& runner, const std::string& ns, const std::string& family,
              const std::string& line) {
  for (const auto& call : runner.calls) {
    if (call.argv == Argv{"ip", "-n", ns, family, "-batch", "-"} &&
        contains("\n" + call.stdin_data, "\n" + line + "\n")) {
      return true;
    }
  }
  return false;
}

class LabTest : public ::testing::Test {
 protected:
  FakeCommandRunner runner_;
};

TEST_F(LabTest, UpCreatesOneNamespacePerNodeWithTheLabPrefix) {
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  EXPECT_EQ(runner_.namespaces, (std::set<std::string>{"sd-t1-gw", "sd-t1-office", "sd-t1-servers",
                                                       "sd-t1-mgmt", "sd-t1-inet"}));
  EXPECT_EQ(lab.nsName("office"), "sd-t1-office");
  EXPECT_EQ(lab.prefix(), "sd-t1-");
}

TEST_F(LabTest, EveryCommandIsAnArgvForIpWithoutAShell) {
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  ASSERT_FALSE(runner_.calls.empty());
  for (const auto& call : runner_.calls) {
    ASSERT_FALSE(call.argv.empty());
    EXPECT_EQ(call.argv[0], "ip") << formatArgv(call.argv);
    for (const std::string& arg : call.argv) EXPECT_NE(arg, "sh") << formatArgv(call.argv);
  }
}

TEST_F(LabTest, GatewayForwardsBothFamiliesInsideItsNamespaceAndHostsDoNot) {
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  EXPECT_TRUE(ranSysctl(runner_, "sd-t1-gw", "net.ipv4.ip_forward=1"));
  EXPECT_TRUE(ranSysctl(runner_, "sd-t1-gw", "net.ipv6.conf.all.forwarding=1"));
  for (const auto& call : runner_.calls) {
    const std::string text = formatArgv(call.argv);
    if (contains(text, "forward")) {
      EXPECT_TRUE(contains(text, "sd-t1-gw")) << text;
    }
  }
}

TEST_F(LabTest, DuplicateAddressDetectionIsOffEverywhere) {
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  for (const std::string node : {"gw", "office", "servers", "mgmt", "inet"}) {
    EXPECT_TRUE(ranSysctl(runner_, "sd-t1-" + node, "net.ipv6.conf.default.accept_dad=0")) << node;
  }
  int v6_addresses = 0;
  for (const auto& call : runner_.callsStartingWith({"ip", "-n"})) {
    if (call.argv.size() > 5 && call.argv[3] == "addr" && contains(call.argv[5], ":")) {
      ++v6_addresses;
      EXPECT_EQ(call.argv.back(), "nodad") << formatArgv(call.argv);
    }
  }
  EXPECT_EQ(v6_addresses, 8);
}

TEST_F(LabTest, VethPairsAreMadeInsideTheNamespacesWithShortNames) {
  Lab lab(standardLabSpec(), "longname", runner_);
  ASSERT_TRUE(lab.up().ok());
  std::set<std::pair<std::string, std::string>> interfaces;  // (netns, ifname)
  int veths = 0;
  for (const auto& call : runner_.callsStartingWith({"ip", "-n"})) {
    const Argv& argv = call.argv;
    if (argv.size() < 5 || argv[3] != "link" || argv[4] != "add") continue;
    ++veths;
    // ip -n NS_A link add name IF_A type veth peer name IF_B netns NS_B
    ASSERT_EQ(argv.size(), 14u) << formatArgv(argv);
    EXPECT_EQ(argv[5], "name");
    EXPECT_EQ(argv[7], "type");
    EXPECT_EQ(argv[8], "veth");
    EXPECT_EQ(argv[10], "name");
    EXPECT_EQ(argv[12], "netns");
    EXPECT_LE(argv[6].size(), 15u);
    EXPECT_LE(argv[11].size(), 15u);
    EXPECT_TRUE(argv[2].starts_with("sd-longname-"));
    EXPECT_TRUE(argv[13].starts_with("sd-longname-"));
    EXPECT_TRUE(interfaces.emplace(argv[2], argv[6]).second) << "duplicate " << argv[6];
    EXPECT_TRUE(interfaces.emplace(argv[13], argv[11]).second) << "duplicate " << argv[11];
  }
  EXPECT_EQ(veths, 4);
  EXPECT_TRUE(runner_.ran({"ip", "-n", "sd-longname-gw", "link", "add", "name", "office", "type",
                           "veth", "peer", "name", "eth0", "netns", "sd-longname-office"}));
}

TEST_F(LabTest, AddressesAndRoutesMatchTheLabPolicy) {
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  const std::vector<Argv> expected = {
      {"ip", "-n", "sd-t1-gw", "addr", "add", "10.20.0.1/24", "dev", "office"},
      {"ip", "-n", "sd-t1-office", "addr", "add", "10.20.0.2/24", "dev", "eth0"},
      {"ip", "-n", "sd-t1-office", "addr", "add", "fd00:20::2/64", "dev", "eth0", "nodad"},
      {"ip", "-n", "sd-t1-servers", "addr", "add", "10.30.0.2/24", "dev", "eth0"},
      {"ip", "-n", "sd-t1-mgmt", "addr", "add", "10.99.0.10/24", "dev", "eth0"},
      {"ip", "-n", "sd-t1-mgmt", "addr", "add", "fd00:99::10/64", "dev", "eth0", "nodad"},
      {"ip", "-n", "sd-t1-inet", "addr", "add", "203.0.113.2/24", "dev", "eth0"},
      {"ip", "-n", "sd-t1-gw", "addr", "add", "2001:db8:113::1/64", "dev", "inet", "nodad"},
      {"ip", "-n", "sd-t1-servers", "link", "set", "dev", "eth0", "up"},
      {"ip", "-n", "sd-t1-gw", "link", "set", "lo", "up"},
  };
  for (const Argv& argv : expected) EXPECT_TRUE(runner_.ran(argv)) << formatArgv(argv);
  EXPECT_TRUE(ranRoute(runner_, "sd-t1-office", "-4", "route add default via 10.20.0.1"));
  EXPECT_TRUE(ranRoute(runner_, "sd-t1-office", "-6", "route add default via fd00:20::1"));
  EXPECT_TRUE(ranRoute(runner_, "sd-t1-mgmt", "-4", "route add default via 10.99.0.1"));
  EXPECT_TRUE(ranRoute(runner_, "sd-t1-inet", "-6", "route add default via 2001:db8:113::1"));
}

TEST_F(LabTest, GatewayGetsTheForeignAcceptAllTable) {
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  const auto nft = runner_.callsStartingWith({"ip", "netns", "exec", "sd-t1-gw", "nft"});
  ASSERT_EQ(nft.size(), 1u);
  EXPECT_EQ(nft[0].argv, (Argv{"ip", "netns", "exec", "sd-t1-gw", "nft", "-f", "-"}));
  EXPECT_TRUE(contains(nft[0].stdin_data, "table inet foreign {"));
  for (const std::string hook : {"input", "forward", "output"}) {
    EXPECT_TRUE(contains(nft[0].stdin_data, "chain " + hook + " { type filter hook " + hook +
                                                " priority 0; policy accept; }"))
        << hook;
  }
  // Only the gateway has a ruleset.
  int rulesets = 0;
  for (const auto& call : runner_.calls) {
    rulesets += std::find(call.argv.begin(), call.argv.end(), "nft") != call.argv.end() ? 1 : 0;
  }
  EXPECT_EQ(rulesets, 1);
}

TEST_F(LabTest, RoutesComeAfterTheAddressesTheyNeed) {
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  size_t last_address = 0;
  size_t first_route = runner_.calls.size();
  for (size_t i = 0; i < runner_.calls.size(); ++i) {
    const Argv& argv = runner_.calls[i].argv;
    if (argv.size() > 4 && argv[3] == "addr") last_address = i;
    if (argv.size() > 4 && argv[4] == "-batch") first_route = std::min(first_route, i);
  }
  EXPECT_LT(last_address, first_route);
}

TEST_F(LabTest, FailureMidwayReturnsTheCommandAndTearsEverythingDown) {
  runner_.fail_when = [](const Argv& argv) {
    return argv.size() > 5 && argv[2] == "sd-t1-servers" && argv[3] == "addr";
  };
  {
    Lab lab(standardLabSpec(), "t1", runner_);
    Status status = lab.up();
    ASSERT_FALSE(status.ok());
    EXPECT_TRUE(contains(status.error().message, "ip -n sd-t1-servers addr add 10.30.0.2/24"))
        << status.error().message;
    EXPECT_TRUE(contains(status.error().message, "Operation not supported"));
    EXPECT_TRUE(contains(status.error().message, "torn down"));
    EXPECT_TRUE(runner_.namespaces.empty());
    EXPECT_EQ(runner_.callsStartingWith({"ip", "netns", "del"}).size(), 5u);
    // Nothing after the failed command was attempted.
    EXPECT_TRUE(runner_.callsStartingWith({"ip", "netns", "exec", "sd-t1-gw", "nft"}).empty());
  }
  EXPECT_EQ(runner_.callsStartingWith({"ip", "netns", "del"}).size(), 5u);
}

TEST_F(LabTest, FailureWhileCreatingNamespacesDeletesOnlyThoseCreated) {
  runner_.fail_when = [](const Argv& argv) {
    return argv == Argv{"ip", "netns", "add", "sd-t1-mgmt"};
  };
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_FALSE(lab.up().ok());
  EXPECT_TRUE(runner_.namespaces.empty());
  EXPECT_EQ(runner_.callsStartingWith({"ip", "netns", "del"}).size(), 3u);
}

TEST_F(LabTest, UpRefusesALabThatExistsAndLeavesItAlone) {
  runner_.namespaces = {"sd-t1-gw", "sd-other-gw"};
  Lab lab(standardLabSpec(), "t1", runner_);
  Status status = lab.up();
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(contains(status.error().message, "already exists")) << status.error().message;
  EXPECT_TRUE(runner_.callsStartingWith({"ip", "netns", "add"}).empty());
  lab.detach();
  EXPECT_EQ(runner_.namespaces, (std::set<std::string>{"sd-t1-gw", "sd-other-gw"}));
}

TEST_F(LabTest, DownIsIdempotentAndTouchesNoOtherLab) {
  runner_.namespaces = {"sd-other-gw"};
  Lab lab(standardLabSpec(), "t1", runner_);
  ASSERT_TRUE(lab.up().ok());
  ASSERT_TRUE(lab.down().ok());
  EXPECT_EQ(runner_.namespaces, std::set<std::string>{"sd-other-gw"});
  const size_t deletes = runner_.callsStartingWith({"ip", "netns", "del"}).size();
  EXPECT_EQ(deletes, 5u);
  ASSERT_TRUE(lab.down().ok());
  EXPECT_EQ(runner_.callsStartingWith({"ip", "netns", "del"}).size(), deletes);
}

TEST_F(LabTest, DestructorTearsDownUnlessDetached) {
  {
    Lab lab(standardLabSpec(), "t1", runner_);
    ASSERT_TRUE(lab.up().ok());
  }
  EXPECT_TRUE(runner_.namespaces.empty());
  {
    Lab lab(standardLabSpec(), "t2", runner_);
    ASSERT_TRUE(lab.up().ok());
    lab.detach();
  }
  EXPECT_EQ(runner_.namespaces.size(), 5u);
  // Another process (shadanctl lab down) can take it down by name.
  Lab by_name(standardLabSpec(), "t2", runner_);
  ASSERT_TRUE(by_name.down().ok());
  EXPECT_TRUE(runner_.namespaces.empty());
}

TEST_F(LabTest, TwoLabsNeverShareANamespace) {
  Lab first(standardLabSpec(), "a", runner_);
  Lab second(standardLabSpec(), "a-1", runner_);
  ASSERT_TRUE(first.up().ok());
  ASSERT_TRUE(second.up().ok());
  EXPECT_EQ(runner_.namespaces.size(), 10u);
}

TEST(LabNameTest, AcceptsOnlyShortLowercaseNames) {
  for (const std::string good : {"a", "t1", "p4194304", "drill-1", "0"}) {
    EXPECT_TRUE(validateLabName(good).ok()) << good;
  }
  for (const std::string bad : {"", "toolongname", "Upper", "a_b", "a b", "a/b", "ä", "a.b"}) {
    Status status = validateLabName(bad);
    ASSERT_FALSE(status.ok()) << bad;
    EXPECT_TRUE(contains(status.error().message, "'" + bad + "'"));
  }
  EXPECT_TRUE(validateLabName(defaultLabName()).ok());
}

// ---- specs ----

TEST(LabSpecTest, StandardSpecMatchesTheDataFile) {
  auto file = loadLabSpecFile(SHADAN_SOURCE_DIR "/cli/lab/specs/segments.json");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(*file, standardLabSpec());
  const LabSpec& spec = standardLabSpec();
  ASSERT_EQ(spec.nodes.size(), 5u);
  EXPECT_EQ(spec.findNode("gw")->role, LabRole::kGateway);
  EXPECT_EQ(spec.findNode("mgmt")->role, LabRole::kHost);
  EXPECT_EQ(spec.firstAddress("mgmt", IpFamily::kV4)->address, "10.99.0.10");
  EXPECT_EQ(spec.firstAddress("mgmt", IpFamily::kV6)->address, "fd00:99::10");
  EXPECT_EQ(spec.firstAddress("inet", IpFamily::kV6)->toCidr(), "2001:db8:113::2/64");
  EXPECT_EQ(spec.findNode("nope"), nullptr);
}

TEST(LabSpecTest, TwoGatewaySpecBuildsGatewayToGatewayAndDualHomedLinks) {
  auto spec = loadLabSpecFile(SHADAN_SOURCE_DIR "/cli/lab/specs/two-gateways.json");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  FakeCommandRunner runner;
  Lab lab(*spec, "t2", runner);
  ASSERT_TRUE(lab.up().ok());
  EXPECT_TRUE(runner.ran({"ip", "-n", "sd-t2-gw1", "link", "add", "name", "gw2", "type", "veth",
                          "peer", "name", "gw1", "netns", "sd-t2-gw2"}));
  // Default interface names: the node at the other end.
  EXPECT_TRUE(runner.ran({"ip", "-n", "sd-t2-gw1", "link", "add", "name", "branch", "type", "veth",
                          "peer", "name", "eth0", "netns", "sd-t2-branch"}));
  EXPECT_TRUE(
      runner.ran({"ip", "-n", "sd-t2-branch", "addr", "add", "10.41.0.2/24", "dev", "eth1"}));
  EXPECT_TRUE(ranRoute(runner, "sd-t2-gw1", "-4", "route add 10.30.0.0/24 via 10.255.0.2"));
  EXPECT_TRUE(ranSysctl(runner, "sd-t2-gw2", "net.ipv4.ip_forward=1"));
  EXPECT_FALSE(ranSysctl(runner, "sd-t2-branch", "net.ipv4.ip_forward=1"));
}

TEST(LabSpecTest, MissingFileIsNotFound) {
  auto spec = loadLabSpecFile("/nonexistent/lab.json");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.error().code, ErrorCode::kNotFound);
}

struct BadSpec {
  const char* label;
  const char* json;
  const char* expected;  // part of the error message
};

// Readable test names in ctest instead of a byte dump.
void PrintTo(const BadSpec& bad, std::ostream* os) { *os << bad.label; }

class LabSpecErrorTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(LabSpecErrorTest, IsRejectedWithAMessageNamingTheProblem) {
  auto spec = parseLabSpec(GetParam().json, "lab.json");
  ASSERT_FALSE(spec.ok()) << GetParam().label;
  EXPECT_EQ(spec.error().code, ErrorCode::kParse);
  EXPECT_TRUE(contains(spec.error().message, "lab.json"));
  EXPECT_TRUE(contains(spec.error().message, GetParam().expected))
      << GetParam().label << ": " << spec.error().message;
}

// Two valid nodes and a link template to vary one thing at a time.
#define NODES R"("nodes": [{"name": "gw", "role": "gateway"}, {"name": "h", "role": "host"}])"

INSTANTIATE_TEST_SUITE_P(
    Table, LabSpecErrorTest,
    ::testing::Values(
        BadSpec{"syntax", R"({"name": "x", )", "not valid JSON"},
        BadSpec{"not an object", R"([1])", "must be an object"},
        BadSpec{"unknown top key", R"({"name": "x", )" NODES R"(, "hosts": []})",
                "/hosts: unknown key"},
        BadSpec{"missing nodes", R"({"name": "x"})", "/nodes: is required"},
        BadSpec{"empty nodes", R"({"name": "x", "nodes": []})", "/nodes: must be a non-empty"},
        BadSpec{"duplicate key", R"({"name": "x", "name": "y", )" NODES "}",
                "duplicate key 'name'"},
        BadSpec{"bad node name", R"({"name": "x", "nodes": [{"name": "GW", "role": "host"}]})",
                "/nodes/0/name: 'GW' is not a node name"},
        BadSpec{"long node name",
                R"({"name": "x", "nodes": [{"name": "abcdefghijklmnop", "role": "host"}]})",
                "/nodes/0/name"},
        BadSpec{"bad role", R"({"name": "x", "nodes": [{"name": "a", "role": "router"}]})",
                "/nodes/0/role: must be \"host\" or \"gateway\""},
        BadSpec{
            "duplicate node",
            R"({"name": "x", "nodes": [{"name": "a", "role": "host"}, {"name": "a", "role": "host"}]})",
            "/nodes/1/name: duplicate node 'a'"},
        BadSpec{"unknown node key",
                R"({"name": "x", "nodes": [{"name": "a", "role": "host", "forward": true}]})",
                "/nodes/0/forward: unknown key"},
        BadSpec{"nftables not strings",
                R"({"name": "x", "nodes": [{"name": "a", "role": "host", "nftables": [1]}]})",
                "/nodes/0/nftables/0: must be a string"},
        BadSpec{"link to unknown node",
                R"({"name": "x", )" NODES
                R"(, "links": [{"a": {"node": "gw"}, "b": {"node": "hx"}}]})",
                "/links/0/b/node: unknown node 'hx'"},
        BadSpec{"link to itself",
                R"({"name": "x", )" NODES
                R"(, "links": [{"a": {"node": "h"}, "b": {"node": "h"}}]})",
                "/links/0: both ends"},
        BadSpec{
            "ifname too long",
            R"({"name": "x", )" NODES
            R"(, "links": [{"a": {"node": "gw", "ifname": "sixteen-chars-xx"}, "b": {"node": "h"}}]})",
            "/links/0/a/ifname"},
        BadSpec{"ifname lo",
                R"({"name": "x", )" NODES
                R"(, "links": [{"a": {"node": "gw", "ifname": "lo"}, "b": {"node": "h"}}]})",
                "/links/0/a/ifname"},
        BadSpec{
            "duplicate ifname",
            R"({"name": "x", )" NODES
            R"(, "links": [{"a": {"node": "gw"}, "b": {"node": "h"}}, {"a": {"node": "gw"}, "b": {"node": "h", "ifname": "x"}}]})",
            "/links/1/a/ifname: node 'gw' already has an interface 'h'"},
        BadSpec{
            "address without length",
            R"({"name": "x", )" NODES
            R"(, "links": [{"a": {"node": "gw", "addresses": ["10.0.0.1"]}, "b": {"node": "h"}}]})",
            "/links/0/a/addresses/0: '10.0.0.1' needs a prefix length"},
        BadSpec{
            "bad length",
            R"({"name": "x", )" NODES
            R"(, "links": [{"a": {"node": "gw", "addresses": ["10.0.0.1/33"]}, "b": {"node": "h"}}]})",
            "invalid prefix length"},
        BadSpec{
            "not an address",
            R"({"name": "x", )" NODES
            R"(, "links": [{"a": {"node": "gw", "addresses": ["gw.example/24"]}, "b": {"node": "h"}}]})",
            "is not an IPv4 or IPv6 address"},
        BadSpec{
            "duplicate address",
            R"({"name": "x", )" NODES
            R"(, "links": [{"a": {"node": "gw", "addresses": ["10.0.0.1/24"]}, "b": {"node": "h", "addresses": ["10.0.0.1/24"]}}]})",
            "/links/0/b/addresses/0: address 10.0.0.1 is already used at /links/0/a/addresses/0"},
        BadSpec{"missing link end",
                R"({"name": "x", )" NODES R"(, "links": [{"a": {"node": "gw"}}]})",
                "/links/0/b: is required"},
        BadSpec{
            "route via off-link",
            R"({"name": "x", "nodes": [{"name": "gw", "role": "gateway"}, {"name": "h", "role": "host", "routes": [{"to": "default", "via": "10.1.0.1"}]}],
                   "links": [{"a": {"node": "gw", "addresses": ["10.0.0.1/24"]}, "b": {"node": "h", "addresses": ["10.0.0.2/24"]}}]})",
            "/nodes/1/routes/0/via: 10.1.0.1 is not on any link of node 'h'"},
        BadSpec{
            "route family mismatch",
            R"({"name": "x", "nodes": [{"name": "h", "role": "host", "routes": [{"to": "10.1.0.0/16", "via": "fd00::1"}]}]})",
            "/nodes/0/routes/0/via: address family differs"},
        BadSpec{
            "route to host bits",
            R"({"name": "x", "nodes": [{"name": "h", "role": "host", "routes": [{"to": "10.1.0.1/16", "via": "10.0.0.1"}]}]})",
            "/nodes/0/routes/0/to"},
        BadSpec{
            "duplicate default route",
            R"({"name": "x", "nodes": [{"name": "gw", "role": "gateway"}, {"name": "h", "role": "host", "routes": [{"to": "default", "via": "10.0.0.1"}, {"to": "default", "via": "10.0.0.3"}]}],
                   "links": [{"a": {"node": "gw", "addresses": ["10.0.0.1/24"]}, "b": {"node": "h", "addresses": ["10.0.0.2/24"]}}]})",
            "/nodes/1/routes/1/to: duplicate route to default"},
        BadSpec{"wrong type", R"({"name": 5, )" NODES "}", "/name: must be a string"}),
    [](const ::testing::TestParamInfo<BadSpec>& param_info) {
      std::string name = param_info.param.label;
      std::replace_if(
          name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
      return name;
    });

#undef NODES

TEST(LabAddressTest, ParsesAndKnowsItsLink) {
  auto address = LabAddress::parse("fd00:20:0::2/64");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->address, "fd00:20::2");  // canonical form
  EXPECT_EQ(address->family, IpFamily::kV6);
  EXPECT_EQ(address->toCidr(), "fd00:20::2/64");
  auto gateway = LabAddress::parse("fd00:20::1/64");
  auto elsewhere = LabAddress::parse("fd00:30::1/64");
  auto v4 = LabAddress::parse("10.20.0.1/24");
  ASSERT_TRUE(gateway.ok() && elsewhere.ok() && v4.ok());
  EXPECT_TRUE(address->onLink(*gateway));
  EXPECT_FALSE(address->onLink(*elsewhere));
  EXPECT_FALSE(address->onLink(*v4));
}

}  // namespace
}  // namespace shadan
