// Integration: the real lab in network namespaces, with real packets. Needs root; skipped
// otherwise. Every lab here is named for this process and torn down by Lab's destructor.

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <sstream>

#include "cli/lab/command_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/probe.h"
#include "cli/shadanctl.h"

namespace shadan {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kShouldSucceed(3000);
constexpr milliseconds kShouldFail(400);

const std::vector<std::string> kHosts = {"office", "servers", "mgmt", "inet"};

std::string uniqueLabName(char tag) {
  return std::string(1, tag) + std::to_string(::getpid() % 10000000);
}

class LabProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    lab_ = std::make_unique<Lab>(standardLabSpec(), uniqueLabName('i'), runner_);
    Status up = lab_->up();
    ASSERT_TRUE(up.ok()) << up.error().message;
  }

  std::string ns(const std::string& node) const { return lab_->nsName(node); }
  std::string address(const std::string& node, IpFamily family) const {
    return lab_->spec().firstAddress(node, family)->address;
  }
  bool tcp(const std::string& from, const std::string& to, IpFamily family, milliseconds timeout) {
    auto reachable = tcpConnect(ns(from), ns(to), address(to, family), 0, timeout);
    EXPECT_TRUE(reachable.ok()) << reachable.error().message;
    return reachable.ok() && *reachable;
  }
  bool udp(const std::string& from, const std::string& to, IpFamily family, milliseconds timeout,
           uint16_t port = 0) {
    auto reachable = udpRoundTrip(ns(from), ns(to), address(to, family), port, timeout);
    EXPECT_TRUE(reachable.ok()) << reachable.error().message;
    return reachable.ok() && *reachable;
  }
  bool icmp(const std::string& from, const std::string& to, IpFamily family, milliseconds timeout) {
    auto reachable = icmpEcho(ns(from), address(to, family), timeout);
    EXPECT_TRUE(reachable.ok()) << reachable.error().message;
    return reachable.ok() && *reachable;
  }
  void nft(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip", "netns", "exec", ns("gw"), "nft"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = runChecked(runner_, argv);
    ASSERT_TRUE(result.ok()) << result.error().message;
  }

  ProcessCommandRunner runner_;
  std::unique_ptr<Lab> lab_;
};

TEST_F(LabProbeTest, GatewayIsConfiguredInsideItsOwnNamespace) {
  auto forward = runChecked(runner_, {"ip", "netns", "exec", ns("gw"), "sysctl", "-n",
                                      "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"});
  ASSERT_TRUE(forward.ok()) << forward.error().message;
  EXPECT_EQ(forward->out, "1\n1\n");
  auto foreign = runChecked(
      runner_, {"ip", "netns", "exec", ns("gw"), "nft", "list", "table", "inet", "foreign"});
  ASSERT_TRUE(foreign.ok()) << foreign.error().message;
  EXPECT_NE(foreign->out.find("hook forward priority filter; policy accept;"), std::string::npos)
      << foreign->out;
  auto host_forward = runChecked(
      runner_, {"ip", "netns", "exec", ns("office"), "sysctl", "-n", "net.ipv4.ip_forward"});
  ASSERT_TRUE(host_forward.ok());
  EXPECT_EQ(host_forward->out, "0\n");
}

TEST_F(LabProbeTest, EveryHostReachesEveryOtherHostByTcpAndIcmpInBothFamilies) {
  for (const std::string& from : kHosts) {
    for (const std::string& to : kHosts) {
      if (from == to) continue;
      for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
        const std::string path = from + " -> " + to + (family == IpFamily::kV4 ? " v4" : " v6");
        EXPECT_TRUE(tcp(from, to, family, kShouldSucceed)) << path;
        EXPECT_TRUE(icmp(from, to, family, kShouldSucceed)) << path;
        EXPECT_TRUE(udp(from, to, family, kShouldSucceed)) << path;
      }
    }
    EXPECT_TRUE(tcp(from, "gw", IpFamily::kV4, kShouldSucceed)) << from << " -> gw";
  }
}

TEST_F(LabProbeTest, AProbeToAnAddressNobodyHasFails) {
  // 10.30.0.77 is on the servers link but unassigned: no ARP answer, no echo reply.
  auto echo = icmpEcho(ns("office"), "10.30.0.77", kShouldFail);
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_FALSE(*echo);
}

TEST_F(LabProbeTest, ForwardDropCutsNewAndEstablishedFlowsOfThatSegmentOnly) {
  EstablishedFlow flow_v4(ns("office"), ns("servers"), address("servers", IpFamily::kV4));
  EstablishedFlow flow_v6(ns("office"), ns("servers"), address("servers", IpFamily::kV6));
  EstablishedFlow control(ns("mgmt"), ns("office"), address("office", IpFamily::kV4));
  for (EstablishedFlow* flow : {&flow_v4, &flow_v6, &control}) {
    Status opened = flow->open(kShouldSucceed);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto echoed = flow->roundTrip(kShouldSucceed);
    ASSERT_TRUE(echoed.ok() && *echoed);
  }

  // A cut by hand, in the gateway's namespace only: IPv4 to and from 10.30.0.0/24.
  nft({"add", "table", "inet", "t"});
  nft({"add", "chain", "inet", "t", "cut",
       "{ type filter hook forward priority -150; policy accept; }"});
  nft({"add", "rule", "inet", "t", "cut", "ip", "daddr", "10.30.0.0/24", "drop"});
  nft({"add", "rule", "inet", "t", "cut", "ip", "saddr", "10.30.0.0/24", "drop"});

  EXPECT_FALSE(tcp("office", "servers", IpFamily::kV4, kShouldFail));
  EXPECT_FALSE(icmp("office", "servers", IpFamily::kV4, kShouldFail));
  EXPECT_FALSE(tcp("servers", "inet", IpFamily::kV4, kShouldFail));
  EXPECT_FALSE(icmp("mgmt", "servers", IpFamily::kV4, kShouldFail));
  EXPECT_FALSE(udp("office", "servers", IpFamily::kV4, kShouldFail, 53));
  EXPECT_FALSE(udp("servers", "inet", IpFamily::kV4, kShouldFail));
  auto cut = flow_v4.roundTrip(milliseconds(500));
  ASSERT_TRUE(cut.ok());
  EXPECT_FALSE(*cut) << "an established flow must stop at once";

  // What the rule does not cover still flows: the probes are not just failing.
  EXPECT_TRUE(tcp("office", "servers", IpFamily::kV6, kShouldSucceed));
  EXPECT_TRUE(icmp("office", "servers", IpFamily::kV6, kShouldSucceed));
  EXPECT_TRUE(udp("office", "servers", IpFamily::kV6, kShouldSucceed, 53));
  EXPECT_TRUE(tcp("office", "inet", IpFamily::kV4, kShouldSucceed));
  auto v6 = flow_v6.roundTrip(kShouldSucceed);
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(*v6);
  auto unaffected = control.roundTrip(kShouldSucceed);
  ASSERT_TRUE(unaffected.ok());
  EXPECT_TRUE(*unaffected);

  // A reject answers at once (ICMP port unreachable): the UDP probe reports it as cut too.
  nft({"add", "rule", "inet", "t", "cut", "ip6", "daddr", address("servers", IpFamily::kV6), "udp",
       "dport", "53", "reject"});
  EXPECT_FALSE(udp("office", "servers", IpFamily::kV6, kShouldSucceed, 53));
  EXPECT_TRUE(udp("office", "servers", IpFamily::kV6, kShouldSucceed, 54));

  // Lifting the cut brings the same connection back (TCP retransmits what was dropped).
  nft({"delete", "table", "inet", "t"});
  EXPECT_TRUE(tcp("office", "servers", IpFamily::kV4, kShouldSucceed));
  auto restored = flow_v4.roundTrip(std::chrono::seconds(10));
  ASSERT_TRUE(restored.ok());
  EXPECT_TRUE(*restored);
}

TEST_F(LabProbeTest, ShadanctlProbeExitCodesFollowReachability) {
  const std::string name = lab_->name();
  std::ostringstream out, err;
  EXPECT_EQ(runShadanctl({"lab", "probe", "--name", name, "--from", "office", "--to", "mgmt",
                          "--tcp", "8443"},
                         out, err, runner_),
            kExitOk)
      << err.str();
  EXPECT_EQ(runShadanctl({"lab", "probe", "--name", name, "--from", "inet", "--to", "mgmt",
                          "--icmp", "-6", "--json"},
                         out, err, runner_),
            kExitOk)
      << err.str();
  EXPECT_NE(out.str().find("\"reachable\":true"), std::string::npos) << out.str();

  nft({"add", "table", "inet", "t"});
  nft({"add", "chain", "inet", "t", "cut",
       "{ type filter hook forward priority -150; policy drop; }"});
  EXPECT_EQ(runShadanctl({"lab", "probe", "--name", name, "--from", "office", "--to", "mgmt",
                          "--tcp", "8443", "--timeout", "400"},
                         out, err, runner_),
            kExitFailure);
  EXPECT_NE(out.str().find("NOT reachable: office -> mgmt 10.99.0.10 tcp port 8443"),
            std::string::npos)
      << out.str();
}

std::vector<std::string> labNamespaces(CommandRunner& runner, const std::string& prefix) {
  auto listing = runChecked(runner, {"ip", "netns", "list"});
  EXPECT_TRUE(listing.ok());
  std::vector<std::string> found;
  std::istringstream lines(listing.ok() ? listing->out : "");
  std::string name;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) found.push_back(line);
  }
  return found;
}

TEST(LabLifecycleTest, TeardownLeavesNoNamespaceOfTheLab) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  ProcessCommandRunner runner;
  const std::string name = uniqueLabName('l');
  {
    Lab lab(standardLabSpec(), name, runner);
    ASSERT_TRUE(lab.up().ok());
    EXPECT_EQ(labNamespaces(runner, lab.prefix()).size(), 5u);
  }
  EXPECT_TRUE(labNamespaces(runner, labNetnsPrefix(name)).empty());
}

TEST(LabLifecycleTest, KernelRefusalMidwayTearsDownWhatWasBuilt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  auto spec = parseLabSpec(R"({"name": "broken", "nodes": [
      {"name": "gw", "role": "gateway", "nftables": ["table inet broken {", "  chain c { nonsense; }", "}"]},
      {"name": "h", "role": "host"}],
    "links": [{"a": {"node": "gw", "addresses": ["10.0.0.1/24"]},
               "b": {"node": "h", "addresses": ["10.0.0.2/24"]}}]})",
                           "test");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  ProcessCommandRunner runner;
  const std::string name = uniqueLabName('k');
  Lab lab(*spec, name, runner);
  Status up = lab.up();
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.error().message.find("nft -f -"), std::string::npos) << up.error().message;
  EXPECT_TRUE(labNamespaces(runner, labNetnsPrefix(name)).empty());
}

TEST(LabLifecycleTest, TwoGatewaySpecRoutesAcrossBothGateways) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  auto spec = loadLabSpecFile(SHADAN_SOURCE_DIR "/cli/lab/specs/two-gateways.json");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  ProcessCommandRunner runner;
  Lab lab(*spec, uniqueLabName('g'), runner);
  Status up = lab.up();
  ASSERT_TRUE(up.ok()) << up.error().message;
  for (IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
    const std::string servers = spec->firstAddress("servers", family)->address;
    auto reachable =
        tcpConnect(lab.nsName("office"), lab.nsName("servers"), servers, 0, kShouldSucceed);
    ASSERT_TRUE(reachable.ok()) << reachable.error().message;
    EXPECT_TRUE(*reachable) << servers;
    auto echo = icmpEcho(lab.nsName("office"), servers, kShouldSucceed);
    ASSERT_TRUE(echo.ok());
    EXPECT_TRUE(*echo) << servers;
  }
  auto branch =
      tcpConnect(lab.nsName("branch"), lab.nsName("servers"), "10.30.0.2", 0, kShouldSucceed);
  ASSERT_TRUE(branch.ok());
  EXPECT_TRUE(*branch);
}

}  // namespace
}  // namespace shadan
