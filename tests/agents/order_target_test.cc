// The order verifier and the escalation ladder: what each rung (host, segment, uplink, island)
// must find in the policy on this gateway, which approval rule it needs, and how its generations
// are keyed. The checks themselves are agents/orders/order_target.h.

#include "agents/orders/order_target.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agents/orders/order_verifier.h"
#include "tests/agents/order_verifier_fixture.h"

namespace shadan::agent {
namespace {

// The fixture's policy plus a segment core-gw does not border (office), one smaller than a /24
// (lab), uplink interfaces, an IPv6 prefix in lgwan, and a management address inside lgwan.
constexpr const char* kLadderPolicy = R"({
  "shadan_policy": 1,
  "name": "ladder-test",
  "segments": {
    "lgwan":    {"prefixes": ["10.20.0.0/24", "fd00:20::/64"]},
    "lab":      {"prefixes": ["10.40.0.0/25"]},
    "office":   {"prefixes": ["10.30.0.0/24"]},
    "mgmt":     {"prefixes": ["10.99.0.0/24"], "protected": true},
    "internet": {"default": true}
  },
  "gateways": {"core-gw": {"borders": ["lgwan", "lab", "mgmt", "internet"],
                           "interfaces": {"internet": ["wan0", "wan1"], "lgwan": ["lan0"]}},
               "inet-gw": {"borders": ["internet"]},
               "office-gw": {"borders": ["office", "internet"]}},
  "management": {"always_allow": [{"prefix": "10.99.0.10/32"}, {"prefix": "10.20.0.250/32"}]},
  "profiles": {"full": {}, "internet-only": {"peers": ["internet"]}}
})";

class OrderTargetTest : public OrderVerifierTest {
 protected:
  OrderTargetTest() {
    policy_ = parsePolicy(kLadderPolicy, "policy.json").value().policy;
    // The policy parser of link_down is not this test's subject: set the field directly.
    policy_.gateways.at("core-gw").link_down = {"wan1"};
  }

  // An order of `scope` by op:sato, like the fixture's segment isolate otherwise.
  static json rungDoc(const char* scope, const std::vector<std::string>& hosts = {}) {
    json doc = authzDoc();
    doc["scope"] = scope;
    if (std::string(scope) == "host") {
      doc["hosts"] = hosts.empty() ? std::vector<std::string>{"10.20.0.5"} : hosts;
    } else if (std::string(scope) != "segment") {
      doc.erase("segment");
    }
    return doc;
  }

  static json restoreOf(json doc) {
    doc["action"] = "restore";
    doc["reason"] = "all clear";
    return doc;
  }

  void useTrustThresholds(const json& thresholds) {
    json doc = trustDoc();
    doc["thresholds"] = thresholds;
    trust_ = parseTrust(doc.dump(), "trust.json").value();
  }

  // The verdict's code ("ok" when accepted), and the message of a rejection.
  std::string codeOf(const json& authz, const Signers& signers) const {
    auto result = verify(dispatchBytes(authz, signers));
    return result.ok() ? "ok" : result.rejection().code();
  }
  std::string messageOf(const json& authz, const Signers& signers) const {
    auto result = verify(dispatchBytes(authz, signers));
    return result.ok() ? "" : result.rejection().message;
  }
};

TEST_F(OrderTargetTest, HostIsolateInABorderedSegmentIsAccepted) {
  const json authz = rungDoc("host", {"10.20.0.5", "10.20.0.64/26", "fd00:20::7"});
  auto result = verify(dispatchBytes(authz, {&sato_}));
  ASSERT_TRUE(result.ok()) << result.rejection().code() << ": " << result.rejection().message;
  const Authz& verified = result.order().authz;
  EXPECT_EQ(verified.scope, IsolationScope::kHost);
  EXPECT_EQ(verified.segment, "lgwan");
  EXPECT_EQ(verified.hosts, (std::vector<IpPrefix>{IpPrefix::parse("10.20.0.5").value(),
                                                   IpPrefix::parse("10.20.0.64/26").value(),
                                                   IpPrefix::parse("fd00:20::7").value()}));
  EXPECT_EQ(result.order().signer_identities, std::vector<std::string>{"op:sato"});
  // The hosts of an unprotected segment, like the segment itself, may come from a detector.
  const json on_behalf = edited(authz, [](json& d) {
    d["on_behalf_of"] = "detector:ids-1";
    d["requested_by"] = "detector:ids-1";
  });
  EXPECT_EQ(codeOf(on_behalf, {&controller_}), "ok");
}

TEST_F(OrderTargetTest, BorderingTargetsTakeAGatewayOnlyWhereItsPolicyBordersTheSegment) {
  // core-gw borders lgwan: a bordering authz is its order, for a segment and for hosts.
  for (const char* scope : {"segment", "host"}) {
    const json authz = edited(rungDoc(scope), [](json& d) { d["targets"] = "bordering"; });
    EXPECT_EQ(codeOf(authz, {&sato_}), "ok") << scope << ": " << messageOf(authz, {&sato_});
  }
  // office is not bordered by core-gw: not a target, whatever the segment check would say.
  const json office = edited(rungDoc("segment"), [](json& d) {
    d["segment"] = "office";
    d["targets"] = "bordering";
  });
  EXPECT_EQ(codeOf(office, {&sato_}), "not_a_target");
  EXPECT_NE(messageOf(office, {&sato_}).find("does not border segment \"office\""),
            std::string::npos)
      << messageOf(office, {&sato_});
}

TEST_F(OrderTargetTest, HostOutsideTheNamedSegmentIsRefusedNamingTheAddress) {
  struct Case {
    const char* name;
    json authz;
    const char* code;
    const char* message;  // substring
  };
  const std::vector<Case> cases = {
      {"in another segment", rungDoc("host", {"10.20.0.5", "10.30.0.5"}), "host_not_in_segment",
       "host 10.30.0.5 is in segment \"office\", not in segment \"lgwan\""},
      {"in a protected segment the order does not name", rungDoc("host", {"10.99.0.20"}),
       "host_not_in_segment", "host 10.99.0.20 is in segment \"mgmt\""},
      {"in the default segment", rungDoc("host", {"192.0.2.7"}), "host_not_in_segment",
       "host 192.0.2.7: is in the default segment \"internet\""},
      {"a management address", rungDoc("host", {"10.20.0.250"}), "host_not_in_segment",
       "host 10.20.0.250: overlaps the management prefix 10.20.0.250"},
      {"a prefix holding a management address", rungDoc("host", {"10.20.0.128/25"}),
       "host_not_in_segment", "host 10.20.0.128/25: overlaps the management prefix"},
      {"next to the segment, in the default one", rungDoc("host", {"10.20.1.0/24"}),
       "host_not_in_segment", "host 10.20.1.0/24: is in the default segment"},
      {"spanning a segment and its outside",
       edited(rungDoc("host", {"10.40.0.0/24"}), [](json& d) { d["segment"] = "lab"; }),
       "host_not_in_segment", "host 10.40.0.0/24: spans segment \"lab\" and addresses outside it"},
      {"IPv6 outside the segment", rungDoc("host", {"fd00:21::1"}), "host_not_in_segment",
       "host fd00:21::1"},
      {"in a segment this gateway does not border",
       edited(rungDoc("host", {"10.30.0.5"}), [](json& d) { d["segment"] = "office"; }),
       "segment_not_bordered", "gateway \"core-gw\" does not border segment \"office\""},
      {"in a segment the policy does not have",
       edited(rungDoc("host"), [](json& d) { d["segment"] = "nope"; }), "unknown_segment",
       "segment \"nope\" is not in this agent's policy"},
  };
  for (const Case& c : cases) {
    // Enough signers for any rule: what is refused is the target, not the approval.
    auto result = verify(dispatchBytes(c.authz, {&sato_, &tanaka_}));
    ASSERT_FALSE(result.ok()) << c.name << ": accepted";
    EXPECT_EQ(result.rejection().code(), c.code) << c.name << ": " << result.rejection().message;
    EXPECT_NE(result.rejection().message.find(c.message), std::string::npos)
        << c.name << ": " << result.rejection().message;
  }
  // The host check holds for a restore too: it names what the gateway would lift.
  EXPECT_EQ(codeOf(restoreOf(rungDoc("host", {"10.30.0.5"})), {&sato_, &tanaka_}),
            "host_not_in_segment");
  EXPECT_EQ(codeOf(restoreOf(rungDoc("host")), {&sato_, &tanaka_}), "ok");
}

TEST_F(OrderTargetTest, HostsOfAProtectedSegmentNeedTheProtectedRule) {
  const json authz =
      edited(rungDoc("host", {"10.99.0.20"}), [](json& d) { d["segment"] = "mgmt"; });
  auto one = verify(dispatchBytes(authz, {&sato_}));
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.rejection().reason, RejectReason::kThresholdNotMet);
  EXPECT_NE(one.rejection().message.find("isolate of hosts in protected segment mgmt needs 2"),
            std::string::npos)
      << one.rejection().message;
  const json on_behalf = edited(authz, [](json& d) {
    d["on_behalf_of"] = "detector:ids-1";
    d["requested_by"] = "detector:ids-1";
  });
  EXPECT_EQ(codeOf(on_behalf, {&controller_}), "threshold_not_met");
  EXPECT_EQ(codeOf(authz, {&sato_, &tanaka_}), "ok");
}

TEST_F(OrderTargetTest, UplinkAndIslandNeedTheProtectedRuleByDefault) {
  for (const char* scope : {"uplink", "island"}) {
    const json authz = rungDoc(scope);
    auto one = verify(dispatchBytes(authz, {&sato_}));
    ASSERT_FALSE(one.ok()) << scope;
    EXPECT_EQ(one.rejection().reason, RejectReason::kThresholdNotMet) << scope;
    EXPECT_NE(one.rejection().message.find(std::string("isolate of ") + scope +
                                           " (trust thresholds.scopes: isolate_protected) needs 2"),
              std::string::npos)
        << one.rejection().message;
    const json on_behalf = edited(authz, [](json& d) {
      d["on_behalf_of"] = "detector:ids-1";
      d["requested_by"] = "detector:ids-1";
    });
    EXPECT_EQ(codeOf(on_behalf, {&controller_}), "threshold_not_met") << scope;

    auto two = verify(dispatchBytes(authz, {&sato_, &tanaka_}));
    ASSERT_TRUE(two.ok()) << scope << ": " << two.rejection().message;
    EXPECT_EQ(two.order().authz.scope, *parseIsolationScope(scope));
    EXPECT_EQ(two.order().authz.segment, "");
    EXPECT_EQ(two.order().signer_identities, (std::vector<std::string>{"op:sato", "op:tanaka"}));
    // A restore needs the restore rule, as for every rung.
    EXPECT_EQ(codeOf(restoreOf(authz), {&sato_}), "threshold_not_met") << scope;
    EXPECT_EQ(codeOf(restoreOf(authz), {&sato_, &tanaka_}), "ok") << scope;
  }
}

TEST_F(OrderTargetTest, TrustScopesChooseTheRuleOfEachRung) {
  useTrustThresholds({{"scopes", {{"uplink", "as_segment"}, {"host", "isolate_protected"}}}});
  // uplink now counts like a segment isolate: one operator, or the controller on behalf.
  EXPECT_EQ(codeOf(rungDoc("uplink"), {&sato_}), "ok");
  const json on_behalf = edited(rungDoc("uplink"), [](json& d) {
    d["on_behalf_of"] = "detector:ids-1";
    d["requested_by"] = "detector:ids-1";
  });
  EXPECT_EQ(codeOf(on_behalf, {&controller_}), "ok");
  // island keeps its default.
  EXPECT_EQ(codeOf(rungDoc("island"), {&sato_}), "threshold_not_met");
  // host now needs two operators even in an unprotected segment.
  EXPECT_EQ(codeOf(rungDoc("host"), {&sato_}), "threshold_not_met");
  EXPECT_NE(messageOf(rungDoc("host"), {&sato_})
                .find("isolate of host (trust thresholds.scopes: isolate_protected)"),
            std::string::npos);
  EXPECT_EQ(codeOf(rungDoc("host"), {&sato_, &tanaka_}), "ok");

  // A segment scope put under isolate_protected changes the segment isolate itself.
  useTrustThresholds({{"scopes", {{"segment", "isolate_protected"}}}});
  EXPECT_EQ(codeOf(authzDoc(), {&sato_}), "threshold_not_met");
  EXPECT_EQ(codeOf(authzDoc(), {&sato_, &tanaka_}), "ok");
  // and the isolate_protected count is what it needs.
  useTrustThresholds({{"isolate_protected", {{"operators", 3}}}});
  EXPECT_EQ(codeOf(rungDoc("island"), {&sato_, &tanaka_}), "threshold_not_met");
  EXPECT_EQ(codeOf(rungDoc("island"), {&sato_, &tanaka_, &suzuki_}), "ok");
}

TEST_F(OrderTargetTest, UplinkNeedsUplinkInterfacesAndLinkDownItsPolicy) {
  const Signers two = {&sato_, &tanaka_};
  const json link_down = edited(rungDoc("uplink"), [](json& d) { d["link_down"] = true; });
  auto accepted = verify(dispatchBytes(link_down, two));
  ASSERT_TRUE(accepted.ok()) << accepted.rejection().message;
  EXPECT_TRUE(accepted.order().authz.link_down);

  Gateway& gateway = policy_.gateways.at("core-gw");
  gateway.link_down.clear();
  EXPECT_EQ(codeOf(link_down, two), "link_down_not_allowed");
  EXPECT_NE(messageOf(link_down, two).find("the policy allows no link-down on gateway \"core-gw\""),
            std::string::npos)
      << messageOf(link_down, two);
  // Without link_down the uplink cut itself is still allowed.
  EXPECT_EQ(codeOf(rungDoc("uplink"), two), "ok");

  // Interfaces of other segments are no uplink.
  gateway.interfaces.erase("internet");
  EXPECT_EQ(codeOf(rungDoc("uplink"), two), "no_uplink_interfaces");
  EXPECT_NE(messageOf(rungDoc("uplink"), two)
                .find("gateway \"core-gw\" has no interfaces of the default segment \"internet\""),
            std::string::npos)
      << messageOf(rungDoc("uplink"), two);
  EXPECT_EQ(codeOf(restoreOf(rungDoc("uplink")), two), "no_uplink_interfaces");

  // A policy without a default segment has no uplink anywhere.
  policy_ = parsePolicy(kPolicy, "policy.json").value().policy;
  policy_.segments.at("internet").is_default = false;
  EXPECT_EQ(codeOf(rungDoc("uplink"), two), "no_uplink_interfaces");
  EXPECT_NE(messageOf(rungDoc("uplink"), two).find("the policy has no default segment"),
            std::string::npos);
}

TEST_F(OrderTargetTest, IslandNeedsASegmentBesideTheDefaultOne) {
  const Signers two = {&sato_, &tanaka_};
  EXPECT_EQ(codeOf(rungDoc("island"), two), "ok");
  policy_.gateways.at("core-gw").borders = {"internet"};
  EXPECT_EQ(codeOf(rungDoc("island"), two), "no_island_segments");
  EXPECT_NE(messageOf(rungDoc("island"), two)
                .find("gateway \"core-gw\" borders no segment other than the default one"),
            std::string::npos);
  // A gateway the policy does not know borders nothing.
  policy_.gateways.erase("core-gw");
  EXPECT_EQ(codeOf(rungDoc("island"), two), "no_island_segments");
  EXPECT_EQ(codeOf(rungDoc("uplink"), two), "no_uplink_interfaces");
  EXPECT_EQ(codeOf(rungDoc("host"), two), "segment_not_bordered");
}

TEST_F(OrderTargetTest, TheProfileIsCheckedForEveryRung) {
  for (const char* scope : {"host", "uplink", "island"}) {
    const json authz = edited(rungDoc(scope), [](json& d) { d["profile"] = "nope"; });
    EXPECT_EQ(codeOf(authz, {&sato_, &tanaka_}), "unknown_profile") << scope;
  }
}

TEST_F(OrderTargetTest, EachRungCountsItsOwnGenerations) {
  const Signers two = {&sato_, &tanaka_};
  // The fixture's replay state holds lgwan at 57: a host order of lgwan at 1 is not older.
  ASSERT_EQ(replay_.segment_gens.at("lgwan"), 57);
  const json host = edited(rungDoc("host"), [](json& d) { d["segment_gen"] = 1; });
  EXPECT_EQ(codeOf(host, two), "ok");
  replay_.segment_gens["host:lgwan"] = 1;
  EXPECT_EQ(codeOf(host, two), "old_segment_gen");
  EXPECT_NE(messageOf(host, two).find("segment_gen 1 of the hosts of segment \"lgwan\""),
            std::string::npos)
      << messageOf(host, two);
  // ... and does not touch the segment's own generation.
  EXPECT_EQ(codeOf(authzDoc(), {&sato_}), "ok");

  for (const char* scope : {"uplink", "island"}) {
    const json authz = edited(rungDoc(scope), [](json& d) { d["segment_gen"] = 3; });
    EXPECT_EQ(codeOf(authz, two), "ok") << scope;
    replay_.segment_gens[std::string("@") + scope] = 3;
    EXPECT_EQ(codeOf(authz, two), "old_segment_gen") << scope;
    EXPECT_NE(messageOf(authz, two).find(std::string("segment_gen 3 of ") + scope + " is not"),
              std::string::npos)
        << messageOf(authz, two);
    replay_.segment_gens[std::string("@") + scope] = 2;
    EXPECT_EQ(codeOf(authz, two), "ok") << scope;
  }
}

TEST_F(OrderTargetTest, BreakglassAppliesToEveryRungWithTheSameTargetChecks) {
  const auto file = [this](json authz) {
    authz["command_id"] = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    return verifyBreakglass(
        envelopeJson(kAuthzPayloadType, authz.dump(), {&sato_, &tanaka_}).dump(), trust_, policy_,
        clock_, replay_.seen_command_ids, "core-gw");
  };
  for (const char* scope : {"host", "uplink", "island"}) {
    auto result = file(rungDoc(scope));
    ASSERT_TRUE(result.ok()) << scope << ": " << result.rejection().message;
    EXPECT_TRUE(result.order().breakglass);
    EXPECT_EQ(result.order().authz.scope, *parseIsolationScope(scope));
  }
  auto link_down = file(edited(rungDoc("uplink"), [](json& d) { d["link_down"] = true; }));
  EXPECT_TRUE(link_down.ok());
  auto outside = file(rungDoc("host", {"10.30.0.5"}));
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.rejection().reason, RejectReason::kHostNotInSegment);
  policy_.gateways.at("core-gw").link_down.clear();
  auto refused = file(edited(rungDoc("uplink"), [](json& d) { d["link_down"] = true; }));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.rejection().reason, RejectReason::kLinkDownNotAllowed);
  // Still isolate only.
  auto restore = file(restoreOf(rungDoc("island")));
  ASSERT_FALSE(restore.ok());
  EXPECT_EQ(restore.rejection().reason, RejectReason::kBreakglassNotIsolate);
}

TEST_F(OrderTargetTest, TargetSegmentProtectedFollowsTheRung) {
  Authz authz = parseAuthz(rungDoc("host").dump()).value();
  EXPECT_FALSE(targetSegmentProtected(authz, policy_));
  authz.segment = "mgmt";
  EXPECT_TRUE(targetSegmentProtected(authz, policy_));
  authz.segment = "nope";
  EXPECT_TRUE(targetSegmentProtected(authz, policy_));  // unknown: counted as protected
  authz.scope = IsolationScope::kUplink;
  authz.segment = "";
  EXPECT_FALSE(targetSegmentProtected(authz, policy_));
  authz.scope = IsolationScope::kIsland;
  EXPECT_FALSE(targetSegmentProtected(authz, policy_));
}

}  // namespace
}  // namespace shadan::agent
