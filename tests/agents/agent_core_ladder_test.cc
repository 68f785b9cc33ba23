// The escalation ladder through AgentCore over fakes: host quarantine, uplink (and link-down),
// island, and how restoring one rung leaves the others. No kernel, no root.

#include <gtest/gtest.h>

#include <algorithm>

#include "agents/agent_core.h"
#include "agents/control_protocol.h"
#include "tests/fakes/fake_backends.h"

namespace shadan::agent {
namespace {

using testing::FakeAuditSink;
using testing::FakeClock;
using testing::FakeConntrackBackend;
using testing::FakeFirewallBackend;
using testing::FakeRouteBackend;
using testing::FakeStateStore;

constexpr const char* kLadderPolicy = R"({
  "shadan_policy": 1,
  "name": "ladder",
  "segments": {
    "office":   {"description": "desks", "prefixes": ["10.20.0.0/24", "fd00:20::/64"]},
    "servers":  {"description": "servers", "prefixes": ["10.30.0.0/24"]},
    "mgmt":     {"description": "controller", "prefixes": ["10.99.0.0/24"], "protected": true},
    "internet": {"description": "the rest", "default": true}
  },
  "gateways": {
    "gw":   {"borders": ["office", "servers", "mgmt", "internet"],
             "interfaces": {"internet": ["wan0"]}, "link_down": ["wan0"]},
    "core": {"borders": ["office", "servers"]}
  },
  "management": {"always_allow": [
    {"description": "agent channel", "prefix": "10.99.0.10/32", "proto": "tcp", "port": 8443}]},
  "profiles": {
    "full": {"description": "everything"},
    "internet-only": {"description": "from the internet", "peers": ["internet"]}
  }
})";

IpPrefix prefix(std::string_view text) {
  Result<IpPrefix> parsed = IpPrefix::parse(text);
  if (!parsed.ok()) ADD_FAILURE() << parsed.error().message;
  return parsed.ok() ? *parsed : IpPrefix{};
}

class AgentCoreLadderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = parsePolicy(kLadderPolicy, "ladder.json");
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    policy_ = std::move(loaded).value().policy;
    routes_.links = {{"wan0", true}};
    core_ = std::make_unique<AgentCore>(
        policy_, gateway_,
        AgentCoreDeps{store_, firewall_, routes_, conntrack_, audit_, clock_, "host1", "0.1.0"});
    ASSERT_TRUE(core_->start().ok());
  }

  static IsolateRequest hosts(std::vector<std::string_view> addresses) {
    IsolateRequest request;
    request.scope = IsolationScope::kHost;
    for (std::string_view address : addresses) request.hosts.push_back(prefix(address));
    return request;
  }
  static IsolateRequest rung(IsolationScope scope) {
    IsolateRequest request;
    request.scope = scope;
    return request;
  }
  static RestoreRequest lift(IsolationScope scope, std::vector<std::string_view> addresses = {}) {
    RestoreRequest request;
    request.scope = scope;
    for (std::string_view address : addresses) request.hosts.push_back(prefix(address));
    request.reason = "done";
    return request;
  }
  std::vector<std::string> labels() const {
    std::vector<std::string> out;
    for (const ActiveIsolation& active : store_.state.isolations) {
      out.push_back(isolationLabel(active.isolation));
    }
    return out;
  }

  std::string gateway_ = "gw";
  Policy policy_;
  FakeFirewallBackend firewall_;
  FakeRouteBackend routes_;
  FakeStateStore store_;
  FakeClock clock_;
  FakeConntrackBackend conntrack_;
  FakeAuditSink audit_;
  std::unique_ptr<AgentCore> core_;
};

TEST_F(AgentCoreLadderTest, HostsOfOneOrderAreOneTransactionAndShareTheirSets) {
  const size_t applies = firewall_.scripts.size();
  auto result = core_->isolate(hosts({"10.20.0.5", "fd00:20::5", "10.20.0.64/26"}));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(firewall_.scripts.size(), applies + 1);
  EXPECT_EQ(labels(),
            (std::vector<std::string>{"office/10.20.0.5/32:full", "office/10.20.0.64/26:full",
                                      "office/fd00:20::5/128:full"}));
  // Single addresses in a hash set, prefixes in an interval set: one lookup each per packet.
  EXPECT_NE(firewall_.table.find("set host_full_v4 {\n\t\ttype ipv4_addr\n\t\telements = { "
                                 "10.20.0.5 }"),
            std::string::npos)
      << firewall_.table;
  EXPECT_NE(firewall_.table.find("flags interval\n\t\telements = { 10.20.0.64/26 }"),
            std::string::npos);
  EXPECT_NE(firewall_.table.find("ip saddr @host_full_v4 counter drop"), std::string::npos);
  // The audit trail names the rung and every host.
  const AuditEvent& applied = audit_.events.back();
  ASSERT_TRUE(applied.what.has_value());
  EXPECT_EQ(applied.what->scope, "host");
  EXPECT_EQ(applied.what->segment, "office");
  ASSERT_TRUE(applied.what->hosts.has_value());
  EXPECT_EQ(applied.what->hosts->size(), 3u);
}

TEST_F(AgentCoreLadderTest, RestoringOneRungNeverLiftsAnother) {
  IsolateRequest segment;
  segment.segment = "office";
  ASSERT_TRUE(core_->isolate(segment).ok());
  ASSERT_TRUE(core_->isolate(hosts({"10.20.0.5", "10.20.0.6"})).ok());
  ASSERT_TRUE(core_->isolate(rung(IsolationScope::kUplink)).ok());
  ASSERT_TRUE(core_->isolate(rung(IsolationScope::kIsland)).ok());

  ASSERT_TRUE(core_->restore(lift(IsolationScope::kHost, {"10.20.0.5"})).ok());
  EXPECT_EQ(labels(), (std::vector<std::string>{"@uplink:full", "@island:full",
                                                "office/10.20.0.6/32:full", "office:full"}));
  RestoreRequest by_segment;
  by_segment.segment = "office";
  by_segment.reason = "done";
  ASSERT_TRUE(core_->restore(by_segment).ok());
  EXPECT_EQ(labels(),
            (std::vector<std::string>{"@uplink:full", "@island:full", "office/10.20.0.6/32:full"}));
  ASSERT_TRUE(core_->restore(lift(IsolationScope::kIsland)).ok());
  EXPECT_EQ(labels(), (std::vector<std::string>{"@uplink:full", "office/10.20.0.6/32:full"}));
  EXPECT_NE(firewall_.table.find("oifname \"wan0\" counter drop"), std::string::npos);
  EXPECT_EQ(firewall_.table.find("@seg_servers_v4 ip daddr != @seg_servers_v4"), std::string::npos);
}

TEST_F(AgentCoreLadderTest, HostileHostsAreRefusedAndChangeNothing) {
  const size_t applies = firewall_.scripts.size();
  const DesiredState before = store_.state;
  const std::vector<std::pair<std::vector<std::string_view>, std::string>> cases = {
      {{"10.99.0.10"}, "management"},      // the management path is never cut
      {{"192.0.2.7"}, "default segment"},  // the internet is the uplink's rung
      {{"10.20.0.0/23"}, "too wide"},      // wider than /24
      {{"fd00:20::/119"}, "too wide"},     // wider than /120
      {{"10.20.0.5", "10.30.0.5"}, "one host order names hosts of one segment"},
  };
  for (const auto& [addresses, needle] : cases) {
    auto result = core_->isolate(hosts(addresses));
    ASSERT_FALSE(result.ok()) << addresses.front();
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
    EXPECT_EQ(audit_.events.back().event, "rejected");
  }
  // Outside the segment the order names.
  IsolateRequest named = hosts({"10.30.0.5"});
  named.segment = "office";
  EXPECT_FALSE(core_->isolate(named).ok());
  EXPECT_EQ(firewall_.scripts.size(), applies);
  EXPECT_EQ(store_.state, before);
}

TEST_F(AgentCoreLadderTest, UplinkAndIslandTakeOnlyProfilesWithoutPeers) {
  IsolateRequest uplink = rung(IsolationScope::kUplink);
  uplink.profile = "internet-only";
  auto refused = core_->isolate(uplink);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("has peers"), std::string::npos);
  IsolateRequest named = rung(IsolationScope::kIsland);
  named.segment = "office";
  EXPECT_FALSE(core_->isolate(named).ok());
}

TEST_F(AgentCoreLadderTest, LinkDownHoldsTheLinkDownAndRestoreBringsItBack) {
  IsolateRequest uplink = rung(IsolationScope::kUplink);
  uplink.link_down = true;
  auto result = core_->isolate(uplink);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_FALSE(routes_.links["wan0"]);
  EXPECT_TRUE(audit_.has("links"));
  ASSERT_EQ(store_.state.isolations.size(), 1u);
  EXPECT_TRUE(store_.state.isolations[0].link_down);

  // A foreign `ip link set wan0 up`: the next link event puts it down again, on record.
  routes_.links["wan0"] = true;
  const size_t events = audit_.events.size();
  ASSERT_TRUE(core_->resyncRoutes("link event").ok());
  EXPECT_FALSE(routes_.links["wan0"]);
  ASSERT_GT(audit_.events.size(), events);
  EXPECT_EQ(audit_.events[events].event, "links");
  EXPECT_EQ(audit_.events[events].reason, "link event");

  ASSERT_TRUE(core_->restore(lift(IsolationScope::kUplink)).ok());
  EXPECT_TRUE(routes_.links["wan0"]);
  EXPECT_TRUE(store_.state.isolations.empty());
}

TEST_F(AgentCoreLadderTest, LinkDownIsRefusedWhenManagementIsRoutedThroughIt) {
  routes_.kernel_routes[prefix("10.99.0.0/24")] = "wan0";
  IsolateRequest uplink = rung(IsolationScope::kUplink);
  uplink.link_down = true;
  const size_t applies = firewall_.scripts.size();
  auto refused = core_->isolate(uplink);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("leaves through wan0"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(routes_.link_calls.empty());
  EXPECT_TRUE(routes_.links["wan0"]);
  EXPECT_EQ(firewall_.scripts.size(), applies);
  // Without --link-down the uplink cut itself is fine: nft never drops management.
  EXPECT_TRUE(core_->isolate(rung(IsolationScope::kUplink)).ok());
}

TEST_F(AgentCoreLadderTest, AnUplinkAlreadyCutGainsTheLinkDownAndKeepsIt) {
  ASSERT_TRUE(core_->isolate(rung(IsolationScope::kUplink)).ok());
  EXPECT_TRUE(routes_.links["wan0"]);
  IsolateRequest down = rung(IsolationScope::kUplink);
  down.link_down = true;
  auto result = core_->isolate(down);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->changed);
  EXPECT_FALSE(routes_.links["wan0"]);
  // Isolating the uplink again without --link-down does not bring the link up.
  ASSERT_TRUE(core_->isolate(rung(IsolationScope::kUplink)).ok());
  EXPECT_FALSE(routes_.links["wan0"]);
}

TEST_F(AgentCoreLadderTest, ManyHostsStayOneSetAndAreRestoredOneByOne) {
  IsolateRequest many;
  many.scope = IsolationScope::kHost;
  for (int i = 1; i <= 200; ++i) many.hosts.push_back(prefix("10.20.0." + std::to_string(i)));
  ASSERT_TRUE(core_->isolate(many).ok());
  EXPECT_EQ(store_.state.isolations.size(), 200u);
  ASSERT_TRUE(core_->restore(lift(IsolationScope::kHost, {"10.20.0.7", "10.20.0.200"})).ok());
  EXPECT_EQ(store_.state.isolations.size(), 198u);
  EXPECT_FALSE(store_.state.contains(
      Isolation{"office", "full", IsolationScope::kHost, prefix("10.20.0.7")}));
  EXPECT_TRUE(store_.state.contains(
      Isolation{"office", "full", IsolationScope::kHost, prefix("10.20.0.8")}));
}

TEST(AgentCoreLadderAckTest, AckLabelsSumUpHostsBeyondTheCap) {
  DesiredState state;
  for (int i = 1; i <= 3; ++i) {
    ActiveIsolation active;
    active.isolation =
        Isolation{"office", "full", IsolationScope::kHost, prefix("10.20.0." + std::to_string(i))};
    state.isolations.push_back(active);
  }
  ActiveIsolation segment;
  segment.isolation = Isolation{"servers", "full"};
  state.isolations.push_back(segment);
  EXPECT_EQ(ackLabels(state, 3).size(), 4u);
  EXPECT_EQ(ackLabels(state, 2), (std::vector<std::string>{"office/*:full", "servers:full"}));
  for (const std::string& label : ackLabels(state, 2)) EXPECT_TRUE(isIsolationLabel(label));
}

}  // namespace
}  // namespace shadan::agent
