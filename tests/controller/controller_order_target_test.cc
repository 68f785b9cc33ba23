#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/order_target.h"
#include "tests/controller/controller_test_support.h"

namespace shadan::controller {
namespace {

using Strings = std::vector<std::string>;

class OrderTargetTest : public ::testing::Test {
 protected:
  OrderTargetTest() {
    policy_ = parsePolicy(testing::kLadderTestPolicy, "policy.json").value().policy;
  }

  static TargetRequest request(IsolationScope scope, std::string segment = "", Strings hosts = {},
                               Strings gateways = {}, bool link_down = false,
                               OrderAction action = OrderAction::kIsolate) {
    return TargetRequest{action,   scope, std::move(segment), std::move(hosts), std::move(gateways),
                         link_down};
  }

  Policy policy_;
};

TEST_F(OrderTargetTest, SegmentGoesToEveryBorderingGateway) {
  auto target = resolveOrderTarget(policy_, request(IsolationScope::kSegment, "lgwan"));
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_EQ(target->gateways, (Strings{"core-gw", "edge-gw"}));
  EXPECT_FALSE(target->segment_protected);

  auto mgmt = resolveOrderTarget(policy_, request(IsolationScope::kSegment, "mgmt"));
  ASSERT_TRUE(mgmt.ok());
  EXPECT_TRUE(mgmt->segment_protected);
  EXPECT_EQ(mgmt->gateways, (Strings{"core-gw"}));
}

TEST_F(OrderTargetTest, HostSegmentIsFoundFromThePolicy) {
  auto target = resolveOrderTarget(
      policy_, request(IsolationScope::kHost, "", {"10.20.0.5", "10.20.0.16/28", "fd00:20::7"}));
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_EQ(target->segment, "lgwan");
  ASSERT_EQ(target->hosts.size(), 3u);
  EXPECT_EQ(target->hosts[1].toString(), "10.20.0.16/28");
  EXPECT_EQ(target->gateways, (Strings{"core-gw", "edge-gw"}));

  // A segment named with the hosts must be theirs.
  auto named =
      resolveOrderTarget(policy_, request(IsolationScope::kHost, "kiosk", {"10.20.0.200"}));
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->gateways, (Strings{"edge-gw"}));

  auto protected_host =
      resolveOrderTarget(policy_, request(IsolationScope::kHost, "", {"10.99.0.5"}));
  ASSERT_TRUE(protected_host.ok());
  EXPECT_TRUE(protected_host->segment_protected);
}

TEST_F(OrderTargetTest, UplinkGoesToGatewaysWithInterfacesOfTheDefaultSegment) {
  auto target = resolveOrderTarget(policy_, request(IsolationScope::kUplink));
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_EQ(target->gateways, (Strings{"core-gw", "edge-gw"}));  // not lab-gw
  EXPECT_EQ(target->segment, "");
  EXPECT_FALSE(target->segment_protected);

  auto named = resolveOrderTarget(policy_, request(IsolationScope::kUplink, "", {}, {"edge-gw"}));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->gateways, (Strings{"edge-gw"}));
}

TEST_F(OrderTargetTest, IslandGoesToEveryGatewayOrTheNamedOnes) {
  auto target = resolveOrderTarget(policy_, request(IsolationScope::kIsland));
  ASSERT_TRUE(target.ok()) << target.error().message;
  EXPECT_EQ(target->gateways, (Strings{"core-gw", "edge-gw", "lab-gw"}));

  auto named =
      resolveOrderTarget(policy_, request(IsolationScope::kIsland, "", {}, {"lab-gw", "core-gw"}));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->gateways, (Strings{"lab-gw", "core-gw"}));  // as given
}

TEST_F(OrderTargetTest, LinkDownNeedsTheGatewaysPolicyToAllowIt) {
  auto refused = resolveOrderTarget(policy_, request(IsolationScope::kUplink, "", {}, {}, true));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("allows no link-down on gateway core-gw"),
            std::string::npos)
      << refused.error().message;

  policy_.gateways["core-gw"].link_down = {"eth0"};
  auto allowed =
      resolveOrderTarget(policy_, request(IsolationScope::kUplink, "", {}, {"core-gw"}, true));
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;
  EXPECT_TRUE(allowed->link_down);
  // The default targets include edge-gw, whose policy allows none.
  auto all = resolveOrderTarget(policy_, request(IsolationScope::kUplink, "", {}, {}, true));
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.error().message.find("edge-gw"), std::string::npos) << all.error().message;
}

struct Refusal {
  const char* name;
  TargetRequest request;
  ErrorCode code;
  const char* message;  // a part of the error message
};

TEST_F(OrderTargetTest, RefusesWithAClearMessage) {
  using enum IsolationScope;
  std::vector<std::string> too_many;
  for (int i = 0; i < 257; ++i) too_many.push_back("fd00:20::" + std::to_string(i + 1));
  const std::vector<Refusal> refusals = {
      {"host in the default segment", request(kHost, "", {"8.8.8.8"}), ErrorCode::kInvalidArgument,
       "host 8.8.8.8: is in the default segment \"internet\""},
      {"host overlapping management", request(kHost, "", {"10.30.0.100"}),
       ErrorCode::kInvalidArgument, "overlaps the management prefix 10.30.0.100"},
      {"host too wide", request(kHost, "", {"10.30.0.0/16"}), ErrorCode::kInvalidArgument,
       "host 10.30.0.0/16: too wide"},
      {"host spanning two segments", request(kHost, "", {"10.20.0.0/24"}),
       ErrorCode::kInvalidArgument, "host 10.20.0.0/24: spans segment"},
      {"hosts of two segments", request(kHost, "", {"10.20.0.5", "10.30.0.5"}),
       ErrorCode::kInvalidArgument,
       "host 10.30.0.5 is in segment office but 10.20.0.5 is in lgwan; one order quarantines "
       "hosts of one segment"},
      {"host not an address", request(kHost, "", {"10.20.0.999"}), ErrorCode::kInvalidArgument,
       "hosts: \"10.20.0.999\" is not an address or prefix"},
      {"host twice", request(kHost, "", {"10.20.0.5", "10.20.0.5/32"}), ErrorCode::kInvalidArgument,
       "hosts: 10.20.0.5 given twice"},
      {"no host", request(kHost), ErrorCode::kInvalidArgument, "at least one host"},
      {"too many hosts", request(kHost, "", too_many), ErrorCode::kInvalidArgument,
       "at most 256 per order, not 257"},
      {"hosts outside the named segment", request(kHost, "office", {"10.20.0.5"}),
       ErrorCode::kInvalidArgument, "segment: the hosts lie in segment lgwan, not office"},
      {"host with an unknown segment", request(kHost, "nope", {"10.20.0.5"}), ErrorCode::kNotFound,
       "segment: unknown segment nope"},
      {"unknown segment", request(kSegment, "nope"), ErrorCode::kNotFound,
       "segment: unknown segment nope"},
      {"segment scope without a segment", request(kSegment), ErrorCode::kInvalidArgument,
       "segment: required"},
      {"segment scope with hosts", request(kSegment, "lgwan", {"10.20.0.5"}),
       ErrorCode::kInvalidArgument, "hosts: only a host order names hosts"},
      {"segment scope with gateways", request(kSegment, "lgwan", {}, {"core-gw"}),
       ErrorCode::kInvalidArgument, "only uplink and island orders name gateways"},
      {"host scope with gateways", request(kHost, "", {"10.20.0.5"}, {"core-gw"}),
       ErrorCode::kInvalidArgument, "only uplink and island orders name gateways"},
      {"uplink with a segment", request(kUplink, "lgwan"), ErrorCode::kInvalidArgument,
       "segment: an uplink order names no segment"},
      {"uplink on an unknown gateway", request(kUplink, "", {}, {"nope-gw"}), ErrorCode::kNotFound,
       "gateways: unknown gateway \"nope-gw\""},
      {"island on an unknown gateway", request(kIsland, "", {}, {"core-gw", "nope-gw"}),
       ErrorCode::kNotFound, "gateways: unknown gateway \"nope-gw\""},
      {"uplink on a gateway without one", request(kUplink, "", {}, {"lab-gw"}),
       ErrorCode::kInvalidArgument,
       "gateway lab-gw has no interfaces of the default segment internet"},
      {"gateway twice", request(kIsland, "", {}, {"core-gw", "core-gw"}),
       ErrorCode::kInvalidArgument, "gateways: core-gw given twice"},
      {"link_down on an island", request(kIsland, "", {}, {}, true), ErrorCode::kInvalidArgument,
       "link_down: only an uplink isolate sets links down (scope is island"},
      {"link_down on a segment", request(kSegment, "lgwan", {}, {}, true),
       ErrorCode::kInvalidArgument, "link_down: only an uplink isolate"},
      {"link_down on an uplink restore", request(kUplink, "", {}, {}, true, OrderAction::kRestore),
       ErrorCode::kInvalidArgument, "action restore"},
  };
  for (const Refusal& refusal : refusals) {
    auto target = resolveOrderTarget(policy_, refusal.request);
    ASSERT_FALSE(target.ok()) << refusal.name;
    EXPECT_EQ(target.error().code, refusal.code) << refusal.name;
    EXPECT_NE(target.error().message.find(refusal.message), std::string::npos)
        << refusal.name << ": " << target.error().message;
  }
}

TEST_F(OrderTargetTest, HostInNoSegmentWhenThePolicyHasNoDefault) {
  policy_.segments.erase("internet");
  auto target = resolveOrderTarget(policy_, request(IsolationScope::kHost, "", {"8.8.8.8"}));
  ASSERT_FALSE(target.ok());
  EXPECT_NE(target.error().message.find("host 8.8.8.8: is in no segment of the policy"),
            std::string::npos)
      << target.error().message;
  // Without a default segment no gateway has an uplink.
  auto uplink = resolveOrderTarget(policy_, request(IsolationScope::kUplink));
  ASSERT_FALSE(uplink.ok());
  EXPECT_NE(uplink.error().message.find("the policy has no default segment"), std::string::npos)
      << uplink.error().message;
}

TEST_F(OrderTargetTest, UplinkIsRefusedWhenNoGatewayHasOne) {
  for (auto& [id, gateway] : policy_.gateways) gateway.interfaces.clear();
  auto target = resolveOrderTarget(policy_, request(IsolationScope::kUplink));
  ASSERT_FALSE(target.ok());
  EXPECT_EQ(target.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(target.error().message.find("no gateway of the policy has interfaces of the default "
                                        "segment internet"),
            std::string::npos)
      << target.error().message;
}

}  // namespace
}  // namespace shadan::controller
