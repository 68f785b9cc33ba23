// The prober's plan checks and its refusals, none of which needs root or a namespace. The probes
// themselves are exercised in tests/integration/prober_lab_test.cc.

#include "cli/lab/prober.h"

#include <gtest/gtest.h>

namespace shadan {
namespace {

using std::chrono::milliseconds;

ProbePair tcpPair(std::string id) {
  return ProbePair{std::move(id), "sd-x-office", "sd-x-servers", "10.30.0.2", ProbeProto::kTcp, 0,
                   true};
}
ProbePair icmpPair(std::string id) {
  return ProbePair{std::move(id), "sd-x-office", "", "fd00:30::2", ProbeProto::kIcmp, 0, true};
}
ProbeFlow flow(std::string id) {
  return ProbeFlow{std::move(id), "sd-x-office", "sd-x-inet", "203.0.113.2", 0};
}

std::string planError(const std::vector<ProbePair>& pairs, const std::vector<ProbeFlow>& flows,
                      const ProberOptions& options = {}) {
  Status status = validateProbePlan(pairs, flows, options);
  if (status.ok()) return "ok";
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  return status.error().message;
}

TEST(ProberPlanTest, AcceptsTcpUdpIcmpPairsAndFlows) {
  ProbePair udp = tcpPair("udp");
  udp.proto = ProbeProto::kUdp;
  ProbePair controller = tcpPair("controller");
  controller.listen = false;
  controller.to_netns = "";
  controller.port = 8443;
  EXPECT_EQ(planError({tcpPair("a"), icmpPair("b"), udp, controller}, {flow("f")}), "ok");
  EXPECT_EQ(planError({}, {flow("f")}), "ok");
}

TEST(ProberPlanTest, RejectsBadPairsNamingThePairAndTheField) {
  ProbePair empty_id = tcpPair("");
  EXPECT_EQ(planError({tcpPair("a"), empty_id}, {}), "pair 1 (''): id is empty");
  EXPECT_EQ(planError({tcpPair("a"), icmpPair("a")}, {}), "pair 1 ('a'): id is used twice");
  EXPECT_EQ(planError({tcpPair("a")}, {flow("a")}), "flow 0 ('a'): id is used twice");

  ProbePair bad_address = tcpPair("a");
  bad_address.to_address = "10.30.0.256";
  EXPECT_EQ(planError({bad_address}, {}),
            "pair 0 ('a'): to_address '10.30.0.256' is not an IP address");
  ProbePair bad_from = tcpPair("a");
  bad_from.from_netns = "../etc";
  EXPECT_EQ(planError({bad_from}, {}), "pair 0 ('a'): from_netns '../etc' is not a netns name");
  ProbePair no_listener_netns = tcpPair("a");
  no_listener_netns.to_netns = "";
  EXPECT_EQ(planError({no_listener_netns}, {}), "pair 0 ('a'): to_netns '' is not a netns name");
  ProbePair icmp_port = icmpPair("a");
  icmp_port.port = 7;
  EXPECT_EQ(planError({icmp_port}, {}), "pair 0 ('a'): port must be 0 for icmp");
  ProbePair no_port = tcpPair("a");
  no_port.listen = false;
  EXPECT_EQ(planError({no_port}, {}),
            "pair 0 ('a'): port must be set when the prober does not listen");

  ProbeFlow no_server = flow("f");
  no_server.to_netns = "";
  EXPECT_EQ(planError({}, {no_server}), "flow 0 ('f'): to_netns '' is not a netns name");
}

TEST(ProberPlanTest, RejectsAnEmptyPlanAndOptionsOutOfRange) {
  EXPECT_EQ(planError({}, {}), "nothing to probe: no pairs and no flows");
  ProberOptions options;
  options.interval = std::chrono::microseconds(0);
  EXPECT_EQ(planError({tcpPair("a")}, {}, options), "prober interval must be in (0, 1 s]");
  options = {};
  options.timeout = milliseconds(0);
  EXPECT_EQ(planError({tcpPair("a")}, {}, options), "prober timeout must be in [1 ms, 10 s]");
  options = {};
  options.flow_connect_timeout = milliseconds(61000);
  EXPECT_EQ(planError({tcpPair("a")}, {}, options),
            "prober flow_connect_timeout must be in [1 ms, 60 s]");
}

TEST(ContinuousProberTest, StartFailsOnABadPlanAndLeavesNothingRunning) {
  ContinuousProber prober;
  Status status = prober.start({icmpPair("")});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "pair 0 (''): id is empty");
  EXPECT_FALSE(prober.running());
  EXPECT_TRUE(prober.results().pairs.empty());
}

TEST(ContinuousProberTest, StartFailsOnAMissingNamespaceNamingIt) {
  ContinuousProber prober;
  ProbePair pair = icmpPair("gone");
  pair.from_netns = "sd-no-such-netns-here";
  Status status = prober.start({pair});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(status.error().message,
            "pair 0 ('gone'): netns 'sd-no-such-netns-here' does not exist");
  EXPECT_FALSE(prober.running());
  EXPECT_TRUE(prober.results().pairs.empty());
  EXPECT_FALSE(prober.firstChangeAfter("gone", ProbeClock::now(), PathState::kCut).has_value());
  prober.stop();  // idempotent, also when nothing ran
}

TEST(ContinuousProberTest, MarksAreKeptInOrderWithTheirTimes) {
  ContinuousProber prober;
  const ProbeTime first = prober.mark("isolate sent");
  const ProbeTime second = prober.mark("restore sent");
  EXPECT_LE(first, second);
  const ProberResults results = prober.results();
  ASSERT_EQ(results.marks.size(), 2u);
  EXPECT_EQ(results.marks[0].label, "isolate sent");
  EXPECT_EQ(results.marks[0].at, first);
  EXPECT_EQ(results.marks[1].label, "restore sent");
  EXPECT_EQ(results.marks[1].at, second);
}

TEST(ProbeProtoTest, HasTheScenarioNames) {
  EXPECT_STREQ(probeProtoName(ProbeProto::kTcp), "tcp");
  EXPECT_STREQ(probeProtoName(ProbeProto::kUdp), "udp");
  EXPECT_STREQ(probeProtoName(ProbeProto::kIcmp), "icmp");
}

}  // namespace
}  // namespace shadan
