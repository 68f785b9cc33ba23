// The self-lockout check over real `nft -j list ruleset` listings (tests/golden/lockout/NAME.json,
// made from NAME.nft by regenerate.sh in a throwaway namespace) and small hand-written documents.

#include "agents/planner/lockout_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/ip_prefix.h"
#include "common/policy.h"

namespace shadan::agent {
namespace {

using nlohmann::json;

const std::filesystem::path kGoldenDir =
    std::filesystem::path(SHADAN_SOURCE_DIR) / "tests" / "golden" / "lockout";

json loadFixture(const std::string& name) {
  std::ifstream in(kGoldenDir / (name + ".json"));
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

ManagementRule rule(const std::string& description, const char* prefix, L4Proto proto,
                    std::optional<uint16_t> port) {
  auto parsed = IpPrefix::parse(prefix);
  EXPECT_TRUE(parsed.ok()) << prefix;
  return ManagementRule{description, parsed.ok() ? parsed.value() : IpPrefix{}, proto, port};
}

// The agent's channel to the controller, IPv4 and IPv6.
std::vector<ManagementRule> controller() {
  return {rule("controller v4", "10.99.0.10/32", L4Proto::kTcp, 8443),
          rule("controller v6", "fd00:99::10/128", L4Proto::kTcp, 8443)};
}

std::vector<LockoutFinding> check(const json& ruleset, const std::vector<ManagementRule>& mgmt) {
  auto findings = checkManagementPath(ruleset, mgmt);
  EXPECT_TRUE(findings.ok()) << findings.error().message;
  return findings.ok() ? findings.value() : std::vector<LockoutFinding>{};
}

std::string describeAll(const std::vector<LockoutFinding>& findings) {
  std::string out;
  for (const LockoutFinding& finding : findings) out += describeLockoutFinding(finding) + "\n";
  return out;
}

// A ruleset document around `items` (each one `{"table": ...}`, `{"chain": ...}`, ...).
json document(const std::string& items) {
  return json::parse(R"({"nftables": [{"metainfo": {"json_schema_version": 1}}, )" + items + "]}");
}

// One table `family name` with one base chain `c` (hook, policy) holding `rules` (expr arrays).
json oneChain(const std::string& family, const std::string& name, const std::string& hook,
              const std::string& policy, const std::vector<std::string>& rules) {
  std::string items = R"({"table": {"family": ")" + family + R"(", "name": ")" + name +
                      R"(", "handle": 1}}, {"chain": {"family": ")" + family + R"(", "table": ")" +
                      name + R"(", "name": "c", "handle": 1, "type": "filter", "hook": ")" + hook +
                      R"(", "prio": 0, "policy": ")" + policy + R"("}})";
  int handle = 2;
  for (const std::string& expr : rules) {
    items += R"(, {"rule": {"family": ")" + family + R"(", "table": ")" + name +
             R"(", "chain": "c", "handle": )" + std::to_string(handle++) + R"(, "expr": )" + expr +
             "}}";
  }
  return document(items);
}

TEST(LockoutCheckTest, FirewalldLikeAcceptAllHasNoFinding) {
  const auto findings = check(loadFixture("firewalld_accept_all"), controller());
  EXPECT_TRUE(findings.empty()) << describeAll(findings);
}

TEST(LockoutCheckTest, DropOfTheControllerPortIsADefiniteFinding) {
  const auto findings = check(loadFixture("drop_controller_port"), controller());
  ASSERT_EQ(findings.size(), 1u) << describeAll(findings);
  const LockoutFinding& finding = findings[0];
  EXPECT_EQ(finding.family, "ip");
  EXPECT_EQ(finding.table, "blocker");
  EXPECT_EQ(finding.base_chain, "output");
  EXPECT_EQ(finding.chain, "output");
  EXPECT_EQ(finding.hook, "output");
  EXPECT_EQ(finding.rule_index, 0);
  ASSERT_TRUE(finding.handle.has_value());
  EXPECT_EQ(*finding.handle, 2u);
  EXPECT_EQ(finding.rule, "ip daddr 10.99.0.10 tcp dport 8443 counter drop");
  EXPECT_EQ(finding.direction, FlowDirection::kToManagement);
  EXPECT_EQ(finding.flow, "tcp to 10.99.0.10 port 8443");
  EXPECT_EQ(finding.management, "controller v4");
  EXPECT_EQ(finding.severity, LockoutSeverity::kDrops);
  const std::string line = describeLockoutFinding(finding);
  EXPECT_NE(line.find("ip blocker output rule 0 handle 2"), std::string::npos) << line;
  EXPECT_NE(line.find(" drops tcp to 10.99.0.10 port 8443"), std::string::npos) << line;
}

TEST(LockoutCheckTest, PolicyDropWithoutManagementAcceptIsAFinding) {
  const auto findings = check(loadFixture("policy_drop_input"), controller());
  // Input sees the flow coming from the controller, for both families (inet table). The
  // `ct state established,related accept` may save it, so the policy is "may_drop".
  ASSERT_EQ(findings.size(), 2u) << describeAll(findings);
  for (const LockoutFinding& finding : findings) {
    EXPECT_EQ(finding.rule_index, -1);
    EXPECT_FALSE(finding.handle.has_value());
    EXPECT_EQ(finding.rule, "policy drop");
    EXPECT_EQ(finding.direction, FlowDirection::kFromManagement);
    EXPECT_EQ(finding.severity, LockoutSeverity::kMayDrop);
  }
  EXPECT_EQ(findings[0].flow, "tcp from 10.99.0.10 port 8443");
  EXPECT_EQ(findings[1].flow, "tcp from fd00:99::10 port 8443");
}

TEST(LockoutCheckTest, PolicyDropWithOnlyOtherAcceptsCertainlyDrops) {
  json ruleset = loadFixture("policy_drop_input");
  // Drop the ct state rule: nothing can accept the flow any more.
  auto& items = ruleset["nftables"];
  items.erase(std::remove_if(items.begin(), items.end(),
                             [](const json& item) {
                               return item.contains("rule") && item["rule"]["expr"].dump().find(
                                                                   "\"ct\"") != std::string::npos;
                             }),
              items.end());
  const auto findings = check(ruleset, controller());
  ASSERT_EQ(findings.size(), 2u) << describeAll(findings);
  for (const LockoutFinding& finding : findings) {
    EXPECT_EQ(finding.severity, LockoutSeverity::kDrops) << describeLockoutFinding(finding);
  }
}

TEST(LockoutCheckTest, EarlierManagementAcceptPreventsTheFinding) {
  const auto findings = check(loadFixture("policy_drop_with_mgmt_accept"), controller());
  EXPECT_TRUE(findings.empty()) << describeAll(findings);
  // A management rule the accepts do not cover still hits the policy.
  const auto other = check(loadFixture("policy_drop_with_mgmt_accept"),
                           {rule("backup server", "10.99.0.20/32", L4Proto::kTcp, 8443)});
  ASSERT_EQ(other.size(), 1u) << describeAll(other);
  EXPECT_EQ(other[0].rule, "policy drop");
}

TEST(LockoutCheckTest, DropBehindAJumpIsFound) {
  const auto findings = check(loadFixture("jump_to_drop"), controller());
  ASSERT_EQ(findings.size(), 1u) << describeAll(findings);
  EXPECT_EQ(findings[0].base_chain, "input");
  EXPECT_EQ(findings[0].chain, "mgmt_check");
  EXPECT_EQ(findings[0].rule_index, 0);
  EXPECT_EQ(findings[0].rule, "tcp sport 8443 drop");
  EXPECT_EQ(findings[0].direction, FlowDirection::kFromManagement);
  EXPECT_EQ(findings[0].severity, LockoutSeverity::kDrops);
  // The jump is taken only for 10.99.0.0/16: a controller elsewhere is untouched.
  EXPECT_TRUE(check(loadFixture("jump_to_drop"), {rule("c", "10.98.0.10/32", L4Proto::kTcp, 8443)})
                  .empty());
}

TEST(LockoutCheckTest, CtStateDropIsMayDrop) {
  const auto findings = check(loadFixture("ct_state_drop"), controller());
  // forward: both directions, both families.
  ASSERT_EQ(findings.size(), 4u) << describeAll(findings);
  for (const LockoutFinding& finding : findings) {
    EXPECT_EQ(finding.severity, LockoutSeverity::kMayDrop);
    EXPECT_EQ(finding.rule, "ct state invalid drop");
    EXPECT_EQ(finding.hook, "forward");
  }
}

TEST(LockoutCheckTest, DropsOfOtherPortsAndProtocolsAreNoFinding) {
  const auto findings = check(loadFixture("other_port_drop"), controller());
  EXPECT_TRUE(findings.empty()) << describeAll(findings);
  // ... but the same table does cut ssh to a management host.
  const auto ssh = check(loadFixture("other_port_drop"),
                         {rule("jump host", "192.0.2.22/32", L4Proto::kTcp, 22)});
  ASSERT_EQ(ssh.size(), 1u) << describeAll(ssh);
  EXPECT_EQ(ssh[0].rule, "ip daddr 192.0.2.0/24 drop");
  EXPECT_EQ(ssh[0].severity, LockoutSeverity::kDrops);
}

TEST(LockoutCheckTest, Ip6TableDropsOnlyTheV6Flow) {
  const auto findings = check(loadFixture("ip6_drop"), controller());
  ASSERT_EQ(findings.size(), 1u) << describeAll(findings);
  EXPECT_EQ(findings[0].family, "ip6");
  EXPECT_EQ(findings[0].management, "controller v6");
  EXPECT_EQ(findings[0].flow, "tcp to fd00:99::10 port 8443");
  EXPECT_EQ(findings[0].severity, LockoutSeverity::kDrops);
  EXPECT_EQ(findings[0].rule, "ip6 daddr fd00:99::/64 tcp dport { 443, 8443 } drop");
}

TEST(LockoutCheckTest, NamedSetsRangesNegationAndVerdictMaps) {
  const auto findings = check(loadFixture("sets_ranges_vmap"), controller());
  ASSERT_EQ(findings.size(), 3u) << describeAll(findings);
  // output: `ip daddr != 10.0.0.0/8 ...` spares 10.99.0.10; the named interval set and the
  // port range catch it.
  EXPECT_EQ(findings[0].chain, "output");
  EXPECT_EQ(findings[0].rule_index, 1);
  EXPECT_EQ(findings[0].rule,
            "ip daddr @controllers tcp dport 8000-9000 reject with icmp port-unreachable");
  EXPECT_EQ(findings[0].severity, LockoutSeverity::kDrops);
  // input: the vmap element 8443 : drop, for both families.
  for (size_t i : {1u, 2u}) {
    EXPECT_EQ(findings[i].chain, "input");
    EXPECT_EQ(findings[i].rule, "tcp sport vmap { 22 : accept, 8443 : drop }");
    EXPECT_EQ(findings[i].severity, LockoutSeverity::kDrops);
    EXPECT_EQ(findings[i].direction, FlowDirection::kFromManagement);
  }
  // Port 22: the vmap accepts it, the range misses it.
  const auto ssh =
      check(loadFixture("sets_ranges_vmap"), {rule("ssh", "10.99.0.10/32", L4Proto::kTcp, 22)});
  EXPECT_TRUE(ssh.empty()) << describeAll(ssh);
  // Outside 10/8 the negated prefix matches: 192.0.2.5 is in the set too, so the first rule
  // drops it.
  const auto outside = check(loadFixture("sets_ranges_vmap"),
                             {rule("outside", "192.0.2.5/32", L4Proto::kTcp, 8443)});
  ASSERT_FALSE(outside.empty());
  EXPECT_EQ(outside[0].rule_index, 0);
  EXPECT_EQ(outside[0].severity, LockoutSeverity::kDrops);
}

TEST(LockoutCheckTest, NatDetection) {
  EXPECT_TRUE(rulesetHasNat(loadFixture("nat_masquerade")));
  EXPECT_TRUE(check(loadFixture("nat_masquerade"), controller()).empty());
  for (const char* name : {"firewalld_accept_all", "drop_controller_port", "sets_ranges_vmap"}) {
    EXPECT_FALSE(rulesetHasNat(loadFixture(name))) << name;
  }
  EXPECT_FALSE(rulesetHasNat(json::parse("[1, 2]")));
  EXPECT_FALSE(rulesetHasFlowtable(loadFixture("nat_masquerade")));
  EXPECT_TRUE(rulesetHasFlowtable(document(
      R"({"table": {"family": "inet", "name": "f", "handle": 1}}, {"flowtable": {"family": "inet",
       "name": "ft", "table": "f", "handle": 2, "hook": "ingress", "prio": 0, "dev": "lo"}})")));
}

TEST(LockoutCheckTest, OwnTableIsSkipped) {
  const std::string drop =
      R"([{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
          "right": 8443}}, {"drop": null}])";
  EXPECT_TRUE(check(oneChain("inet", "shadan", "output", "accept", {drop}), controller()).empty());
  // Same table name in another family, or another name: foreign.
  EXPECT_EQ(check(oneChain("ip", "shadan", "output", "accept", {drop}), controller()).size(), 1u);
  auto named = checkManagementPath(oneChain("inet", "mine", "output", "accept", {drop}),
                                   controller(), "mine");
  ASSERT_TRUE(named.ok());
  EXPECT_TRUE(named->empty());
}

TEST(LockoutCheckTest, PartialPrefixOverlapAndAnyProtocolAreMayDrop) {
  const std::string host_drop =
      R"([{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
          "right": "10.99.0.5"}}, {"drop": null}])";
  const json ruleset = oneChain("ip", "t", "output", "accept", {host_drop});
  const auto net = check(ruleset, {rule("mgmt net", "10.99.0.0/24", L4Proto::kAny, {})});
  ASSERT_EQ(net.size(), 1u);
  EXPECT_EQ(net[0].severity, LockoutSeverity::kMayDrop);
  EXPECT_EQ(net[0].flow, "any to 10.99.0.0/24");
  EXPECT_TRUE(check(ruleset, {rule("other", "10.99.0.6/32", L4Proto::kAny, {})}).empty());

  const std::string tcp_drop =
      R"([{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}},
          "right": "tcp"}}, {"drop": null}])";
  const json by_proto = oneChain("ip", "t", "output", "accept", {tcp_drop});
  const auto any = check(by_proto, {rule("any", "10.99.0.10/32", L4Proto::kAny, {})});
  ASSERT_EQ(any.size(), 1u);
  EXPECT_EQ(any[0].severity, LockoutSeverity::kMayDrop);
  EXPECT_TRUE(check(by_proto, {rule("udp", "10.99.0.10/32", L4Proto::kUdp, 53)}).empty());
  const auto tcp = check(by_proto, controller());
  ASSERT_EQ(tcp.size(), 1u);
  EXPECT_EQ(tcp[0].severity, LockoutSeverity::kDrops);
}

TEST(LockoutCheckTest, PortComparisonsAndEphemeralSide) {
  // `tcp dport >= 1024 drop` on input: the flow from the controller arrives at our ephemeral
  // port, so it certainly drops; `tcp dport < 1024` never does.
  const std::string high =
      R"([{"match": {"op": ">=", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
          "right": 1024}}, {"drop": null}])";
  const std::string low =
      R"([{"match": {"op": "<", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
          "right": 1024}}, {"drop": null}])";
  const auto high_findings = check(oneChain("ip", "t", "input", "accept", {high}), controller());
  ASSERT_EQ(high_findings.size(), 1u);
  EXPECT_EQ(high_findings[0].severity, LockoutSeverity::kDrops);
  EXPECT_EQ(high_findings[0].rule, "tcp dport >= 1024 drop");
  EXPECT_TRUE(check(oneChain("ip", "t", "input", "accept", {low}), controller()).empty());
}

TEST(LockoutCheckTest, AcceptThatMayNotApplyLowersLaterDropsToMayDrop) {
  const std::string iif_accept =
      R"([{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
          {"accept": null}])";
  const std::string port_drop =
      R"([{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "sport"}},
          "right": 8443}}, {"drop": null}])";
  const auto findings =
      check(oneChain("ip", "t", "input", "accept", {iif_accept, port_drop}), controller());
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].severity, LockoutSeverity::kMayDrop);
  EXPECT_EQ(findings[0].rule_index, 1);
}

TEST(LockoutCheckTest, JumpCyclesAndDeepChainsTerminate) {
  // a -> b -> a: the kernel refuses this, the check must not loop on a crafted document.
  const json ruleset = document(R"(
    {"table": {"family": "ip", "name": "t", "handle": 1}},
    {"chain": {"family": "ip", "table": "t", "name": "in", "handle": 1, "type": "filter",
               "hook": "input", "prio": 0, "policy": "drop"}},
    {"chain": {"family": "ip", "table": "t", "name": "a", "handle": 2}},
    {"chain": {"family": "ip", "table": "t", "name": "b", "handle": 3}},
    {"rule": {"family": "ip", "table": "t", "chain": "in", "handle": 4,
              "expr": [{"jump": {"target": "a"}}]}},
    {"rule": {"family": "ip", "table": "t", "chain": "a", "handle": 5,
              "expr": [{"jump": {"target": "b"}}]}},
    {"rule": {"family": "ip", "table": "t", "chain": "b", "handle": 6,
              "expr": [{"goto": {"target": "a"}}]}})");
  const auto findings = check(ruleset, controller());
  ASSERT_EQ(findings.size(), 1u) << describeAll(findings);
  EXPECT_EQ(findings[0].rule, "policy drop");
}

TEST(LockoutCheckTest, GotoDoesNotComeBackJumpDoes) {
  // input (policy drop): `<verb> sub`, then an accept of the controller; sub is empty. After a
  // jump the accept is reached; after a goto the base chain's policy decides.
  auto ruleset = [](const std::string& verb) {
    return document(R"(
      {"table": {"family": "ip", "name": "t", "handle": 1}},
      {"chain": {"family": "ip", "table": "t", "name": "in", "handle": 1, "type": "filter",
                 "hook": "input", "prio": 0, "policy": "drop"}},
      {"chain": {"family": "ip", "table": "t", "name": "sub", "handle": 2}},
      {"rule": {"family": "ip", "table": "t", "chain": "in", "handle": 3,
                "expr": [{")" +
                    verb + R"(": {"target": "sub"}}]}},
      {"rule": {"family": "ip", "table": "t", "chain": "in", "handle": 4,
                "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip",
                          "field": "saddr"}}, "right": "10.99.0.10"}}, {"accept": null}]}})");
  };
  EXPECT_TRUE(check(ruleset("jump"), controller()).empty());
  const auto after_goto = check(ruleset("goto"), controller());
  ASSERT_EQ(after_goto.size(), 1u) << describeAll(after_goto);
  EXPECT_EQ(after_goto[0].rule, "policy drop");
  EXPECT_EQ(after_goto[0].severity, LockoutSeverity::kDrops);
}

TEST(LockoutCheckTest, PreroutingIsCheckedIngressIsNot) {
  const std::string drop =
      R"([{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "sport"}},
          "right": 8443}}, {"drop": null}])";
  const auto prerouting =
      check(oneChain("ip", "raw", "prerouting", "accept", {drop}), controller());
  ASSERT_EQ(prerouting.size(), 2u) << describeAll(prerouting);  // both directions
  EXPECT_EQ(prerouting[1].direction, FlowDirection::kFromManagement);
  EXPECT_EQ(prerouting[1].severity, LockoutSeverity::kDrops);
  EXPECT_EQ(prerouting[0].severity, LockoutSeverity::kMayDrop);  // our ephemeral port
  EXPECT_TRUE(check(oneChain("netdev", "n", "ingress", "accept", {drop}), controller()).empty());
}

TEST(LockoutCheckTest, MalformedDocumentsAreParseErrors) {
  for (const char* text :
       {R"([])", R"({"nft": []})", R"({"nftables": {}})", R"({"nftables": [42]})",
        R"({"nftables": [{"chain": {"family": "ip", "table": "missing", "name": "c"}}]})",
        R"({"nftables": [{"table": {"family": "ip"}}]})",
        R"({"nftables": [{"table": {"family": "ip", "name": "t"}},
            {"rule": {"family": "ip", "table": "t", "chain": "nope", "expr": []}}]})"}) {
    auto result = checkManagementPath(json::parse(text), controller());
    ASSERT_FALSE(result.ok()) << text;
    EXPECT_EQ(result.error().code, ErrorCode::kParse) << text;
  }
}

}  // namespace
}  // namespace shadan::agent
