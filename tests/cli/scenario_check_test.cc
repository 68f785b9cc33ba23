// Scenarios against policies (checkScenarioAgainstPolicy, expandProbe), the built-in scenarios
// and the example scenarios in policies/scenarios/ against the policies they are written for.

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "cli/drill/builtin_scenarios.h"
#include "cli/drill/scenario.h"
#include "common/policy.h"

namespace shadan::drill {
namespace {

const std::filesystem::path kSourceDir(SHADAN_SOURCE_DIR);

Policy examplePolicy(const std::string& file) {
  auto loaded = loadPolicyFile(kSourceDir / "policies" / "examples" / file);
  EXPECT_TRUE(loaded.ok()) << loaded.error().message;
  return loaded.ok() ? loaded->policy : Policy{};
}

std::string withSteps(const std::string& steps, const std::string& extra = "") {
  return R"({"shadan_scenario": 1, "name": "t", "description": "a test")" + extra +
         R"(, "steps": [)" + steps + "]}";
}

std::string probeStep(const std::string& probe) {
  return R"({"do": "expect", "probes": [)" + probe + "]}";
}

// The error of checking `steps` against `policy`, or "" when it passes.
std::string checkError(const std::string& text, const Policy& policy) {
  auto scenario = parseScenario(text, "scenario.json");
  EXPECT_TRUE(scenario.ok()) << scenario.error().message;
  if (!scenario.ok()) return "(does not parse)";
  Status checked = checkScenarioAgainstPolicy(*scenario, policy, "scenario.json");
  if (checked.ok()) return "";
  EXPECT_EQ(checked.error().code, ErrorCode::kPolicy);
  return checked.error().message;
}

class ScenarioCheckTest : public ::testing::Test {
 protected:
  const Policy lab_ = examplePolicy("lab.json");
  const Policy municipality_ = examplePolicy("municipality-three-tier.json");
  const Policy fleet_ = examplePolicy("fleet.json");
  const Policy enterprise_ = examplePolicy("enterprise.json");
};

struct CheckCase {
  std::string name;
  std::string text;
  const Policy* policy;
  std::string message;
};

TEST_F(ScenarioCheckTest, NamesWhatThePolicyLacksByItsPath) {
  const std::vector<CheckCase> cases = {
      {"unknown segment", withSteps(R"({"do": "isolate", "segment": "lgwn", "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/segment: unknown segment \"lgwn\" in policy "
       "\"municipality-three-tier\""},
      {"protected segment", withSteps(R"({"do": "isolate", "segment": "juki-cs", "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/segment: segment juki-cs is protected: it is never isolated"},
      {"default segment", withSteps(R"({"do": "isolate", "segment": "internet", "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/segment: segment internet is the default segment: it is never "
       "isolated (cut the uplink)"},
      {"host in a protected segment",
       withSteps(R"({"do": "isolate", "scope": "host", "hosts": ["10.11.0.5"], "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/hosts/0: segment juki-cs is protected: it is never isolated"},
      {"hosts of two segments",
       withSteps(
           R"({"do": "isolate", "scope": "host", "hosts": ["10.20.0.5", "10.10.0.5"], "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/hosts/1: lies in segment mynumber, not lgwan: one order "
       "quarantines hosts of one segment"},
      {"unknown profile",
       withSteps(R"({"do": "isolate", "segment": "lgwan", "profile": "gentle", "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/profile: unknown profile \"gentle\" in policy "
       "\"municipality-three-tier\""},
      {"unknown gateway of a fault",
       withSteps(R"({"do": "fault", "kind": "kill-agent", "gateway": "edge-gw"})"), &municipality_,
       "scenario.json: /steps/0/gateway: unknown gateway \"edge-gw\" in policy "
       "\"municipality-three-tier\""},
      {"unknown gateway of an uplink",
       withSteps(
           R"({"do": "isolate", "scope": "uplink", "gateways": ["inet-gw", "x-gw"], "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/gateways/1: unknown gateway \"x-gw\" in policy "
       "\"municipality-three-tier\""},
      {"uplink of a gateway without one",
       withSteps(R"({"do": "isolate", "scope": "uplink", "gateways": ["core-gw"], "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/gateways/0: gateway core-gw has no interfaces of the default "
       "segment in the policy, so it has no uplink to cut"},
      {"link down where none is allowed",
       withSteps(R"({"do": "isolate", "scope": "uplink", "link_down": true, "ttl_s": 5})"),
       &municipality_,
       "scenario.json: /steps/0/link_down: the policy allows no link-down on gateway inet-gw "
       "(gateway member \"link_down\")"},
      {"an endpoint's gateway does not border it",
       withSteps(probeStep(R"({"from": {"segment": "lgwan", "gateway": "inet-gw"},
                               "to": {"node": "internet"}, "proto": "tcp", "expected": "open"})")),
       &municipality_,
       "scenario.json: /steps/0/probes/0/from/gateway: gateway inet-gw does not border segment "
       "lgwan"},
      {"ipv6 endpoint on an ipv4-only segment",
       withSteps(probeStep(R"({"from": {"segment": "lgwan"}, "to": {"segment": "mynumber"},
                               "proto": "tcp", "family": "ipv6", "expected": "cut"})")),
       &municipality_,
       "scenario.json: /steps/0/probes/0/to/segment: segment mynumber has no IPv6 prefix"},
      {"ipv6 to a controller without IPv6",
       withSteps(probeStep(R"({"from": {"segment": "lgwan"}, "to": {"node": "controller"},
                               "proto": "tcp", "family": "ipv6", "expected": "open"})")),
       &municipality_,
       "scenario.json: /steps/0/probes/0/to/node: the lab's controller has no IPv6 address (no "
       "IPv6 prefix in management.always_allow)"},
      {"ipv6 alert source on an ipv4-only segment",
       withSteps(R"({"do": "alert", "detector": "d", "format": "zeek", "note": "n",
                     "src": {"segment": "mynumber"}, "family": "ipv6"})"),
       &municipality_, "scenario.json: /steps/0/src/segment: segment mynumber has no IPv6 prefix"},
      {"the default segment as an endpoint",
       withSteps(probeStep(R"({"from": {"segment": "internet"}, "to": {"segment": "lgwan"},
                               "proto": "icmp", "expected": "open"})")),
       &municipality_,
       "scenario.json: /steps/0/probes/0/from/segment: segment internet is the default segment: "
       "use {\"node\": \"internet\"}"},
      {"a wait for an unknown segment",
       withSteps(R"({"do": "wait", "until": "segment-isolated", "segment": "x", "timeout_ms": 5})"),
       &lab_, "scenario.json: /steps/0/segment: unknown segment \"x\" in policy \"lab\""},
      {"a response rule naming a detector no alert uses",
       withSteps(
           R"({"do": "alert", "detector": "ids-1", "format": "zeek", "note": "n", "src": "10.20.0.5"})",
           R"(, "response": {"rules": [{"name": "r", "match": {"detector": "ids-2"}, "action": "record"}]})"),
       &lab_,
       "scenario.json: /response/rules/0/match/detector: no detector token is named \"ids-2\""},
      {"a response rule isolating a protected segment",
       withSteps(
           R"({"do": "wait", "ms": 1})",
           R"(, "response": {"rules": [{"name": "r", "match": {"segments": ["mgmt"]}, "action": "isolate-segment"}]})"),
       &lab_,
       "scenario.json: /response/rules/0/match/segments/0: segment mgmt is protected: it is never "
       "isolated automatically"},
  };
  for (const CheckCase& c : cases) {
    EXPECT_EQ(checkError(c.text, *c.policy), c.message) << c.name;
  }
}

TEST_F(ScenarioCheckTest, AcceptsWhatThePolicyHas) {
  // A restore of a protected segment lifts nothing harmful; the host endpoint's families exist.
  EXPECT_EQ(checkError(withSteps(R"({"do": "restore", "segment": "juki-cs"},
      {"do": "isolate", "scope": "host", "hosts": [{"segment": "lgwan"}], "family": "ipv6", "ttl_s": 5},
      {"do": "isolate", "scope": "island", "gateways": ["core-gw"], "ttl_s": 5},
      {"do": "alert", "detector": "ids-1", "format": "eve", "signature_id": 1,
       "src": {"segment": "lgwan"}, "dst": {"node": "internet"}, "family": "ipv6"},)" +
                                 probeStep(R"({"from": {"segment": "mynumber"},
                                   "to": {"segment": "lgwan"}, "proto": "tcp", "family": "all",
                                   "expected": "open"})")),
                       municipality_),
            "");
}

TEST_F(ScenarioCheckTest, RefusesTheInternetNodeWithoutADefaultSegment) {
  auto policy = parsePolicy(R"({"shadan_policy": 1, "name": "closed",
      "segments": {"a": {"prefixes": ["10.1.0.0/24"]}, "b": {"prefixes": ["fd00:2::/64"]}},
      "gateways": {"gw": {"borders": ["a", "b"]}},
      "management": {"always_allow": [{"prefix": "10.9.0.1/32", "proto": "tcp", "port": 8443}]},
      "profiles": {"full": {}}})",
                            "closed.json");
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  EXPECT_EQ(checkError(withSteps(probeStep(R"({"from": {"segment": "a"}, "to": {"node": "internet"},
                                                "proto": "tcp", "expected": "cut"})")),
                       policy->policy),
            "scenario.json: /steps/0/probes/0/to/node: the policy has no default segment, so the "
            "lab has no internet node");
  // `all` needs one family both ends have: a is IPv4 only, b IPv6 only.
  EXPECT_EQ(checkError(withSteps(probeStep(R"({"from": {"segment": "a"}, "to": {"segment": "b"},
                                                "proto": "tcp", "family": "all", "expected": "cut"})")),
                       policy->policy),
            "scenario.json: /steps/0/probes/0/family: from and to have no address family in "
            "common");
}

Probe probeOf(const std::string& json) {
  auto scenario = parseScenario(withSteps(probeStep(json)), "scenario.json");
  EXPECT_TRUE(scenario.ok()) << scenario.error().message;
  return scenario.ok() ? std::get<ExpectStep>(scenario->steps[0].action).probes[0] : Probe{};
}

TEST_F(ScenarioCheckTest, ExpandsEverySegmentGatewaysAndFamilies) {
  // lab: office -> * is servers and mgmt (not the default segment, not office), both families,
  // behind the one gateway.
  const auto to_every =
      expandProbe(probeOf(R"({"from": {"segment": "office"}, "to": {"segment": "*"},
      "proto": "tcp", "port": 22, "family": "all", "expected": "cut", "established": true})"),
                  lab_);
  ASSERT_EQ(to_every.size(), 4u);
  std::set<std::pair<std::string, IpFamily>> seen;
  for (const ConcreteProbe& p : to_every) {
    EXPECT_EQ(p.from, (ConcreteEndpoint{Endpoint::Kind::kSegment, "office", "gw"}));
    EXPECT_EQ(p.to.gateway, "gw");
    EXPECT_EQ(p.port, 22);
    EXPECT_TRUE(p.established);
    EXPECT_EQ(p.expected, Reachability::kCut);
    seen.insert({p.to.segment, p.family});
  }
  EXPECT_EQ(seen, (std::set<std::pair<std::string, IpFamily>>{{"mgmt", IpFamily::kV4},
                                                              {"mgmt", IpFamily::kV6},
                                                              {"servers", IpFamily::kV4},
                                                              {"servers", IpFamily::kV6}}));

  // fleet: office is behind two gateways; a segment end without a gateway is both hosts.
  const auto both_floors = expandProbe(
      probeOf(R"({"from": {"segment": "office"}, "to": {"node": "internet"}, "proto": "icmp",
                  "expected": "open"})"),
      fleet_);
  ASSERT_EQ(both_floors.size(), 2u);
  EXPECT_EQ(both_floors[0].from.gateway, "core-gw");
  EXPECT_EQ(both_floors[1].from.gateway, "edge-gw");
  EXPECT_EQ(both_floors[0].to.kind, Endpoint::Kind::kInternet);
  EXPECT_EQ(both_floors[0].family, IpFamily::kV4);

  // Within one segment: every pair of its hosts but a host with itself.
  const auto floors = expandProbe(probeOf(R"({"from": {"segment": "office"},
      "to": {"segment": "office"}, "proto": "tcp", "expected": "open"})"),
                                  fleet_);
  ASSERT_EQ(floors.size(), 2u);
  EXPECT_NE(floors[0].from, floors[0].to);

  // all with an IPv4-only end: the IPv4 probe only.
  const auto v4_only = expandProbe(probeOf(R"({"from": {"segment": "lgwan"},
      "to": {"segment": "mynumber"}, "proto": "tcp", "family": "all", "expected": "open"})"),
                                   municipality_);
  ASSERT_EQ(v4_only.size(), 1u);
  EXPECT_EQ(v4_only[0].family, IpFamily::kV4);
}

// Every built-in passes on the policies it is written for (or, for the generic ones, on every
// example policy with a segment it can cut).
struct BuiltinCase {
  std::string scenario;
  std::string policy;
  std::map<std::string, std::string> args;
};

TEST_F(ScenarioCheckTest, BuiltinsParseAndPassTheirPolicies) {
  const std::vector<BuiltinCase> cases = {
      {"segment-cut", "lab.json", {{"segment", "office"}}},
      {"segment-cut", "lab.json", {{"segment", "servers"}}},
      {"segment-cut", "municipality-three-tier.json", {{"segment", "lgwan"}}},
      {"segment-cut", "municipality-three-tier.json", {{"segment", "mynumber"}}},
      {"segment-cut", "fleet.json", {{"segment", "office"}}},
      {"segment-cut", "enterprise.json", {{"segment", "hq-office"}}},
      {"segment-cut", "enterprise.json", {{"segment", "guest-wifi"}}},
      {"controller-loss", "lab.json", {{"segment", "office"}}},
      {"controller-loss", "municipality-three-tier.json", {{"segment", "lgwan"}}},
      {"controller-loss", "fleet.json", {{"segment", "servers"}}},
      {"ueda-2015", "municipality-three-tier.json", {}},
      {"worm-containment", "fleet.json", {}},
  };
  std::set<std::string> covered;
  for (const BuiltinCase& c : cases) {
    const BuiltinScenario* builtin = findBuiltinScenario(c.scenario);
    ASSERT_NE(builtin, nullptr) << c.scenario;
    if (!builtin->written_for.empty()) {
      EXPECT_EQ(builtin->written_for, c.policy) << c.scenario;
    }
    auto scenario = parseScenario(builtin->text, "builtin:" + c.scenario, c.args);
    ASSERT_TRUE(scenario.ok()) << scenario.error().message;
    EXPECT_EQ(scenario->name, c.scenario);
    Status checked =
        checkScenarioAgainstPolicy(*scenario, examplePolicy(c.policy), "builtin:" + c.scenario);
    EXPECT_TRUE(checked.ok()) << c.scenario << " on " << c.policy << ": "
                              << checked.error().message;
    covered.insert(c.scenario);
  }
  EXPECT_EQ(covered.size(), builtinScenarios().size());
  // The issue's four, by name.
  for (const char* name : {"segment-cut", "ueda-2015", "worm-containment", "controller-loss"}) {
    EXPECT_NE(findBuiltinScenario(name), nullptr) << name;
  }
  EXPECT_EQ(findBuiltinScenario("nope"), nullptr);
}

TEST_F(ScenarioCheckTest, SegmentCutRefusesAProtectedSegment) {
  auto scenario = parseScenario(findBuiltinScenario("segment-cut")->text, "builtin:segment-cut",
                                {{"segment", "mgmt"}});
  ASSERT_TRUE(scenario.ok()) << scenario.error().message;
  Status checked = checkScenarioAgainstPolicy(*scenario, lab_, "builtin:segment-cut");
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().message,
            "builtin:segment-cut: /steps/1/segment: segment mgmt is protected: it is never "
            "isolated");
}

// policies/scenarios/*.json, each against the example policy it names in its description.
TEST_F(ScenarioCheckTest, ExampleScenariosPassTheirPolicies) {
  const std::map<std::string, std::string> written_for = {
      {"lab-agent-faults.json", "lab.json"},
      {"enterprise-ladder.json", "enterprise.json"},
  };
  size_t seen = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(kSourceDir / "policies" / "scenarios")) {
    if (entry.path().extension() != ".json") continue;
    const std::string file = entry.path().filename().string();
    ASSERT_TRUE(written_for.contains(file)) << "add " << file << " to this table";
    auto scenario = loadScenarioFile(entry.path().string());
    ASSERT_TRUE(scenario.ok()) << scenario.error().message;
    EXPECT_EQ(scenario->name + ".json", file);
    Status checked =
        checkScenarioAgainstPolicy(*scenario, examplePolicy(written_for.at(file)), file);
    EXPECT_TRUE(checked.ok()) << file << ": " << checked.error().message;
    ++seen;
  }
  EXPECT_EQ(seen, written_for.size());
}

TEST_F(ScenarioCheckTest, AMissingFileIsNamed) {
  auto missing = loadScenarioFile("/nonexistent/drill.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "/nonexistent/drill.json: cannot open for reading");
}

}  // namespace
}  // namespace shadan::drill
