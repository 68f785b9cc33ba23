// The strict scenario reader (cli/drill/scenario.h): every step kind, parameters, the JSON
// written back, and every refusal naming the JSON path.

#include "cli/drill/scenario.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shadan::drill {
namespace {

std::string withSteps(const std::string& steps, const std::string& extra = "") {
  return R"({"shadan_scenario": 1, "name": "t", "description": "a test")" + extra +
         R"(, "steps": [)" + steps + "]}";
}

Scenario parsed(const std::string& text, const std::map<std::string, std::string>& args = {}) {
  auto scenario = parseScenario(text, "scenario.json", args);
  EXPECT_TRUE(scenario.ok()) << scenario.error().message;
  return scenario.ok() ? std::move(scenario).value() : Scenario{};
}

template <typename T>
const T& stepAs(const Scenario& scenario, size_t index) {
  return std::get<T>(scenario.steps.at(index).action);
}

class ScenarioTest : public ::testing::Test {};

TEST_F(ScenarioTest, ReadsIsolateAndRestoreAtEveryRung) {
  const Scenario s = parsed(withSteps(R"(
    {"do": "isolate", "label": "cut", "segment": "office", "profile": "forensic", "ttl_s": 600,
     "reason": "drill", "ticket": "INC-1", "approvers": 1},
    {"do": "isolate", "scope": "host", "hosts": ["10.20.0.5", {"segment": "office", "gateway": "gw"}],
     "family": "ipv6", "ttl_s": 60},
    {"do": "isolate", "scope": "uplink", "gateways": ["gw"], "link_down": true, "ttl_s": 30},
    {"do": "isolate", "scope": "island", "ttl_s": 30},
    {"do": "restore", "segment": "office", "approvers": 2},
    {"do": "restore", "scope": "uplink", "gateways": ["gw", "edge"]})"));
  ASSERT_EQ(s.steps.size(), 6u);
  EXPECT_EQ(s.steps[0].label, "cut");
  const auto& segment = stepAs<IsolateStep>(s, 0);
  EXPECT_EQ(segment.rung.scope, IsolationScope::kSegment);
  EXPECT_EQ(segment.rung.segment, "office");
  EXPECT_EQ(segment.rung.profile, "forensic");
  EXPECT_EQ(segment.ttl_s, 600);
  EXPECT_EQ(segment.reason, "drill");
  EXPECT_EQ(segment.ticket, "INC-1");
  EXPECT_EQ(segment.approvers, 1);
  const auto& host = stepAs<IsolateStep>(s, 1);
  ASSERT_EQ(host.rung.hosts.size(), 2u);
  EXPECT_EQ(host.rung.hosts[0].kind, Endpoint::Kind::kAddress);
  EXPECT_EQ(host.rung.hosts[0].address->toString(), "10.20.0.5");
  EXPECT_EQ(host.rung.hosts[1].kind, Endpoint::Kind::kSegment);
  EXPECT_EQ(host.rung.hosts[1].gateway, "gw");
  EXPECT_EQ(host.rung.hosts_family, ProbeFamily::kIpv6);
  EXPECT_FALSE(host.approvers.has_value());
  const auto& uplink = stepAs<IsolateStep>(s, 2);
  EXPECT_EQ(uplink.rung.scope, IsolationScope::kUplink);
  EXPECT_TRUE(uplink.rung.link_down);
  EXPECT_EQ(uplink.rung.gateways, std::vector<std::string>{"gw"});
  EXPECT_EQ(stepAs<IsolateStep>(s, 3).rung.scope, IsolationScope::kIsland);
  EXPECT_EQ(stepAs<RestoreStep>(s, 4).approvers, 2);
  EXPECT_EQ(stepAs<RestoreStep>(s, 5).rung.gateways.size(), 2u);
  EXPECT_STREQ(stepKindName(s.steps[4]), "restore");
}

TEST_F(ScenarioTest, ReadsAlertsOfEveryFormat) {
  const Scenario s = parsed(withSteps(R"(
    {"do": "alert", "detector": "f2b", "format": "shadan", "rule": "sshd", "severity": "critical",
     "src": {"segment": "office"}, "dst": "10.30.0.2"},
    {"do": "alert", "detector": "ids-1", "format": "eve", "signature_id": 2024897, "title": "ET x",
     "severity": "high", "src": {"segment": "office", "gateway": "gw"}, "dst": {"node": "internet"},
     "family": "ipv6"},
    {"do": "alert", "detector": "zeek", "format": "zeek", "note": "Scan::Port_Scan", "dst": "fd00:20::9"})"));
  const auto& shadan = stepAs<AlertStep>(s, 0);
  EXPECT_EQ(shadan.format, controller::AlertFormat::kShadan);
  EXPECT_EQ(shadan.rule, "sshd");
  EXPECT_EQ(shadan.severity, controller::AlertSeverity::kCritical);
  EXPECT_EQ(shadan.dst->kind, Endpoint::Kind::kAddress);
  EXPECT_EQ(shadan.family, IpFamily::kV4);
  const auto& eve = stepAs<AlertStep>(s, 1);
  EXPECT_EQ(eve.signature_id, 2024897);
  EXPECT_EQ(eve.title, "ET x");
  EXPECT_EQ(eve.dst->kind, Endpoint::Kind::kInternet);
  EXPECT_EQ(eve.family, IpFamily::kV6);
  const auto& zeek = stepAs<AlertStep>(s, 2);
  EXPECT_EQ(zeek.note, "Scan::Port_Scan");
  EXPECT_FALSE(zeek.src.has_value());
}

TEST_F(ScenarioTest, ReadsFaultsWaitsAndExpectations) {
  const Scenario s = parsed(withSteps(R"(
    {"do": "fault", "kind": "kill-agent", "gateway": "gw"},
    {"do": "fault", "kind": "restart-agent", "gateway": "gw"},
    {"do": "fault", "kind": "flush-ruleset", "gateway": "gw"},
    {"do": "fault", "kind": "stop-controller"},
    {"do": "fault", "kind": "start-controller"},
    {"do": "fault", "kind": "partition", "gateway": "gw"},
    {"do": "fault", "kind": "heal", "gateway": "gw"},
    {"do": "fault", "kind": "reboot", "gateway": "gw"},
    {"do": "wait", "ms": 250},
    {"do": "wait", "until": "acked", "timeout_ms": 5000},
    {"do": "wait", "until": "segment-isolated", "segment": "office", "timeout_ms": 5000},
    {"do": "expect", "label": "during", "phase": "during", "probes": [
      {"from": {"segment": "office"}, "to": {"segment": "*"}, "proto": "tcp", "port": 443,
       "family": "all", "expected": "cut", "established": true},
      {"from": {"node": "internet"}, "to": {"segment": "office", "gateway": "gw"}, "proto": "udp",
       "expected": "open"},
      {"from": {"segment": "office"}, "to": {"node": "controller"}, "proto": "icmp",
       "family": "ipv6", "expected": "open"}]})"));
  const std::vector<FaultKind> kinds = {
      FaultKind::kKillAgent,      FaultKind::kRestartAgent,    FaultKind::kFlushRuleset,
      FaultKind::kStopController, FaultKind::kStartController, FaultKind::kPartition,
      FaultKind::kHeal,           FaultKind::kReboot};
  for (size_t i = 0; i < kinds.size(); ++i) {
    EXPECT_EQ(stepAs<FaultStep>(s, i).kind, kinds[i]) << i;
    EXPECT_EQ(stepAs<FaultStep>(s, i).gateway.empty(), !faultNeedsGateway(kinds[i])) << i;
  }
  EXPECT_EQ(stepAs<WaitStep>(s, 8).ms, 250);
  EXPECT_EQ(stepAs<WaitStep>(s, 9).until, WaitCondition::kAcked);
  EXPECT_EQ(stepAs<WaitStep>(s, 9).timeout_ms, 5000);
  EXPECT_EQ(stepAs<WaitStep>(s, 10).segment, "office");
  const auto& expect = stepAs<ExpectStep>(s, 11);
  EXPECT_EQ(expect.phase, ProbePhase::kDuring);
  ASSERT_EQ(expect.probes.size(), 3u);
  EXPECT_EQ(expect.probes[0].to.segment, "*");
  EXPECT_EQ(expect.probes[0].port, 443);
  EXPECT_EQ(expect.probes[0].family, ProbeFamily::kAll);
  EXPECT_EQ(expect.probes[0].expected, Reachability::kCut);
  EXPECT_TRUE(expect.probes[0].established);
  EXPECT_EQ(expect.probes[1].proto, ProbeProto::kUdp);
  EXPECT_FALSE(expect.probes[1].port.has_value());
  EXPECT_EQ(expect.probes[1].family, ProbeFamily::kIpv4);  // the default
  EXPECT_EQ(expect.probes[1].from.kind, Endpoint::Kind::kInternet);
  EXPECT_EQ(expect.probes[2].to.kind, Endpoint::Kind::kController);
  EXPECT_EQ(expect.probes[2].proto, ProbeProto::kIcmp);
}

TEST_F(ScenarioTest, ReplacesParametersInEveryStringButKeepsThePathsOfErrors) {
  const std::string text = withSteps(
      R"({"do": "isolate", "segment": "${segment}", "ttl_s": 60, "reason": "drill of ${segment} by ${who}"})",
      R"(, "parameters": {"segment": {"description": "to cut"},
                          "who": {"description": "operator", "default": "sato"}})");
  const Scenario s = parsed(text, {{"segment", "lgwan"}});
  EXPECT_EQ(stepAs<IsolateStep>(s, 0).rung.segment, "lgwan");
  EXPECT_EQ(stepAs<IsolateStep>(s, 0).reason, "drill of lgwan by sato");
  EXPECT_EQ(s.arguments.at("who"), "sato");
  EXPECT_EQ(s.parameters.at("segment").description, "to cut");
  const Scenario given = parsed(text, {{"segment", "office"}, {"who", "kato"}});
  EXPECT_EQ(stepAs<IsolateStep>(given, 0).reason, "drill of office by kato");

  // A value that is no segment name is refused where it was used.
  auto bad = parseScenario(text, "scenario.json", {{"segment", "Bad Name"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("scenario.json: /steps/0/segment: invalid segment name", 0),
            0u)
      << bad.error().message;
}

TEST_F(ScenarioTest, WritesBackWhatItReads) {
  const std::string text = withSteps(
      R"({"do": "expect", "probes": [{"from": {"segment": "${segment}"}, "to": {"node": "internet"},
          "proto": "tcp", "expected": "open"}]},
         {"do": "isolate", "scope": "host", "hosts": [{"segment": "${segment}"}, "10.20.0.0/28"], "ttl_s": 60},
         {"do": "isolate", "scope": "uplink", "link_down": true, "ttl_s": 60, "approvers": 2},
         {"do": "alert", "detector": "ids-1", "format": "eve", "signature_id": 7, "src": "10.20.0.5"},
         {"do": "fault", "kind": "stop-controller", "label": "down"},
         {"do": "wait", "until": "segment-isolated", "segment": "${segment}", "timeout_ms": 10},
         {"do": "restore", "segment": "${segment}", "profile": "full", "approvers": 2})",
      R"(, "parameters": {"segment": {"description": "s"}},
          "response": {"rules": [{"name": "r", "action": "record"}]})");
  const Scenario first = parsed(text, {{"segment", "office"}});
  const auto json = scenarioToJson(first);
  EXPECT_FALSE(json.contains("parameters"));
  EXPECT_EQ(json["steps"][1]["hosts"][0]["segment"], "office");
  const Scenario second = parsed(json.dump());
  EXPECT_EQ(second.steps, first.steps);
  EXPECT_EQ(second.name, first.name);
  EXPECT_EQ(scenarioToJson(second), json);
  ASSERT_TRUE(second.response.has_value());
  EXPECT_EQ(second.response->rules.at(0).name, "r");
}

TEST_F(ScenarioTest, PhasesFollowTheCutsUnlessNamed) {
  const Scenario s = parsed(withSteps(R"(
    {"do": "expect", "probes": [{"from": {"node": "internet"}, "to": {"segment": "a"}, "proto": "icmp", "expected": "open"}]},
    {"do": "restore", "segment": "a"},
    {"do": "isolate", "segment": "a", "ttl_s": 5},
    {"do": "wait", "ms": 5},
    {"do": "restore", "segment": "a"},
    {"do": "alert", "detector": "d", "format": "zeek", "note": "n", "src": "10.0.0.1"},
    {"do": "restore", "segment": "a"})"));
  const std::vector<ProbePhase> want = {
      ProbePhase::kBefore, ProbePhase::kBefore, ProbePhase::kBefore, ProbePhase::kDuring,
      ProbePhase::kDuring, ProbePhase::kAfter,  ProbePhase::kDuring, ProbePhase::kAfter};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(defaultPhase(s, i), want[i]) << i;
  }
}

struct RefusalCase {
  std::string name;
  std::string text;
  std::string message;  // the whole message, or its start when it ends in "..."
  std::map<std::string, std::string> args = {};
};

TEST_F(ScenarioTest, RefusalsNameTheJsonPath) {
  const std::string probe = R"({"from": {"segment": "a"}, "to": {"node": "internet"}, )";
  const std::string params = R"(, "parameters": {"segment": {"description": "s"}})";
  const std::vector<RefusalCase> cases = {
      {"bad proto",
       withSteps(R"({"do": "wait", "ms": 1}, {"do": "expect", "probes": [)" + probe +
                 R"("proto": "sctp", "expected": "open"}]})"),
       "scenario.json: /steps/1/probes/0/proto: must be one of tcp, udp, icmp"},
      {"unknown key", withSteps(R"({"do": "wait", "ms": 1, "colour": "red"})"),
       "scenario.json: /steps/0/colour: unknown field \"colour\" (a wait of ms takes: do, ms, "
       "label)"},
      {"unknown root key", withSteps(R"({"do": "wait", "ms": 1})", R"(, "extra": 1)"),
       "scenario.json: /extra: unknown field \"extra\"..."},
      {"duplicate key", withSteps(R"({"do": "wait", "ms": 1, "ms": 2})"),
       "scenario.json: /steps/0: duplicate key \"ms\""},
      {"isolate without ttl_s", withSteps(R"({"do": "isolate", "segment": "a"})"),
       "scenario.json: /steps/0/ttl_s: is required"},
      {"ttl over the max", withSteps(R"({"do": "isolate", "segment": "a", "ttl_s": 31622401})"),
       "scenario.json: /steps/0/ttl_s: must be between 1 and 31622400"},
      {"ttl zero", withSteps(R"({"do": "isolate", "segment": "a", "ttl_s": 0})"),
       "scenario.json: /steps/0/ttl_s: must be between 1 and 31622400"},
      {"ttl on a restore", withSteps(R"({"do": "restore", "segment": "a", "ttl_s": 5})"),
       "scenario.json: /steps/0/ttl_s: unknown field \"ttl_s\" (a restore of scope segment..."},
      {"link_down on a restore",
       withSteps(R"({"do": "restore", "scope": "uplink", "link_down": true})"),
       "scenario.json: /steps/0/link_down: unknown field \"link_down\"..."},
      {"segment on an island",
       withSteps(R"({"do": "isolate", "scope": "island", "segment": "a", "ttl_s": 5})"),
       "scenario.json: /steps/0/segment: unknown field \"segment\" (an isolate of scope island..."},
      {"bad scope", withSteps(R"({"do": "isolate", "scope": "planet", "ttl_s": 5})"),
       "scenario.json: /steps/0/scope: must be one of segment, host, uplink, island"},
      {"missing parameter",
       withSteps(R"({"do": "isolate", "segment": "${segment}", "ttl_s": 5})", params),
       "scenario.json: /steps/0/segment: parameter \"segment\" has no value (give one; it has no "
       "default)"},
      {"undeclared parameter", withSteps(R"({"do": "isolate", "segment": "${seg}", "ttl_s": 5})"),
       "scenario.json: /steps/0/segment: unknown parameter \"seg\" (declare it under /parameters)"},
      {"malformed reference",
       withSteps(R"({"do": "isolate", "segment": "${segment", "ttl_s": 5})", params),
       "scenario.json: /steps/0/segment: malformed parameter reference..."},
      {"value for an undeclared parameter",
       withSteps(R"({"do": "wait", "ms": 1})"),
       "scenario.json: /parameters: no parameter \"segment\" in this scenario (parameters: none)",
       {{"segment", "a"}}},
      {"unknown fault kind", withSteps(R"({"do": "fault", "kind": "unplug", "gateway": "gw"})"),
       "scenario.json: /steps/0/kind: must be one of kill-agent, restart-agent, flush-ruleset, "
       "stop-controller, start-controller, partition, heal, reboot"},
      {"fault without its gateway", withSteps(R"({"do": "fault", "kind": "kill-agent"})"),
       "scenario.json: /steps/0/gateway: is required"},
      {"controller fault with a gateway",
       withSteps(R"({"do": "fault", "kind": "stop-controller", "gateway": "gw"})"),
       "scenario.json: /steps/0/gateway: unknown field \"gateway\"..."},
      {"empty steps", withSteps(""), "scenario.json: /steps: must be an array of 1 to 512 steps"},
      {"unknown step kind", withSteps(R"({"do": "pray"})"),
       "scenario.json: /steps/0/do: must be one of isolate, restore, alert, fault, wait, expect"},
      {"step without do", withSteps(R"({"ms": 5})"), "scenario.json: /steps/0/do: is required"},
      {"port on icmp",
       withSteps(R"({"do": "expect", "probes": [)" + probe +
                 R"("proto": "icmp", "port": 1, "expected": "open"}]})"),
       "scenario.json: /steps/0/probes/0/port: goes with tcp or udp only"},
      {"port out of range",
       withSteps(R"({"do": "expect", "probes": [)" + probe +
                 R"("proto": "tcp", "port": 65536, "expected": "open"}]})"),
       "scenario.json: /steps/0/probes/0/port: must be between 1 and 65535"},
      {"established udp",
       withSteps(R"({"do": "expect", "probes": [)" + probe +
                 R"("proto": "udp", "established": true, "expected": "cut"}]})"),
       "scenario.json: /steps/0/probes/0/established: goes with tcp only..."},
      {"bad expected",
       withSteps(R"({"do": "expect", "probes": [)" + probe +
                 R"("proto": "tcp", "expected": "closed"}]})"),
       "scenario.json: /steps/0/probes/0/expected: must be one of open, cut"},
      {"bad family",
       withSteps(R"({"do": "expect", "probes": [)" + probe +
                 R"("proto": "tcp", "family": "ipx", "expected": "cut"}]})"),
       "scenario.json: /steps/0/probes/0/family: must be one of ipv4, ipv6, all"},
      {"no probes", withSteps(R"({"do": "expect", "probes": []})"),
       "scenario.json: /steps/0/probes: must be an array of 1 to 1024 probes"},
      {"unknown node",
       withSteps(R"({"do": "expect", "probes": [{"from": {"node": "moon"}, "to": {"segment": "a"},
                 "proto": "tcp", "expected": "cut"}]})"),
       "scenario.json: /steps/0/probes/0/from/node: must be one of controller, internet"},
      {"segment and node",
       withSteps(R"({"do": "expect", "probes": [{"from": {"node": "internet", "segment": "a"},
                 "to": {"segment": "a"}, "proto": "tcp", "expected": "cut"}]})"),
       "scenario.json: /steps/0/probes/0/from: needs exactly one of \"segment\" and \"node\""},
      {"address as a probe end",
       withSteps(R"({"do": "expect", "probes": [{"from": "10.0.0.1", "to": {"segment": "a"},
                 "proto": "tcp", "expected": "cut"}]})"),
       "scenario.json: /steps/0/probes/0/from: must be an object..."},
      {"every segment at both ends",
       withSteps(R"({"do": "expect", "probes": [{"from": {"segment": "*"}, "to": {"segment": "*"},
                 "proto": "tcp", "expected": "cut"}]})"),
       "scenario.json: /steps/0/probes/0/to: from and to cannot both be \"*\""},
      {"every segment in a quarantine",
       withSteps(R"({"do": "isolate", "scope": "host", "hosts": [{"segment": "*"}], "ttl_s": 5})"),
       "scenario.json: /steps/0/hosts/0/segment: \"*\" (every segment) is for probes only"},
      {"a quarantine too wide",
       withSteps(R"({"do": "isolate", "scope": "host", "hosts": ["10.0.0.0/16"], "ttl_s": 5})"),
       "scenario.json: /steps/0/hosts/0: 10.0.0.0/16 is wider than /24 (isolate the segment "
       "instead)"},
      {"a host twice",
       withSteps(
           R"({"do": "isolate", "scope": "host", "hosts": ["10.0.0.1", "10.0.0.1"], "ttl_s": 5})"),
       "scenario.json: /steps/0/hosts/1: given twice"},
      {"alert without src or dst",
       withSteps(R"({"do": "alert", "detector": "d", "format": "zeek", "note": "n"})"),
       "scenario.json: /steps/0/src: is required (or dst, or both)"},
      {"alert prefix", withSteps(R"({"do": "alert", "detector": "d", "format": "zeek", "note": "n",
                                     "src": "10.0.0.0/24"})"),
       "scenario.json: /steps/0/src: must be one address, not the prefix 10.0.0.0/24"},
      {"critical EVE alert",
       withSteps(R"({"do": "alert", "detector": "d", "format": "eve", "signature_id": 1,
                    "severity": "critical", "src": "10.0.0.1"})"),
       "scenario.json: /steps/0/severity: must be one of low, medium, high (an EVE alert)"},
      {"zeek severity", withSteps(R"({"do": "alert", "detector": "d", "format": "zeek", "note": "n",
                    "severity": "high", "src": "10.0.0.1"})"),
       "scenario.json: /steps/0/severity: unknown field \"severity\" (an alert of format zeek..."},
      {"eve without signature",
       withSteps(R"({"do": "alert", "detector": "d", "format": "eve", "src": "10.0.0.1"})"),
       "scenario.json: /steps/0/signature_id: is required"},
      {"bad detector name",
       withSteps(
           R"({"do": "alert", "detector": "ID S", "format": "zeek", "note": "n", "src": "10.0.0.1"})"),
       "scenario.json: /steps/0/detector: invalid detector token name..."},
      {"wait with ms and until",
       withSteps(R"({"do": "wait", "ms": 1, "until": "acked", "timeout_ms": 1})"),
       "scenario.json: /steps/0: needs exactly one of \"ms\" and \"until\""},
      {"wait without timeout", withSteps(R"({"do": "wait", "until": "acked"})"),
       "scenario.json: /steps/0/timeout_ms: is required"},
      {"wait too long", withSteps(R"({"do": "wait", "ms": 600001})"),
       "scenario.json: /steps/0/ms: must be between 1 and 600000"},
      {"too many approvers", withSteps(R"({"do": "restore", "segment": "a", "approvers": 6})"),
       "scenario.json: /steps/0/approvers: must be between 1 and 5"},
      {"bad segment name", withSteps(R"({"do": "restore", "segment": "Office"})"),
       "scenario.json: /steps/0/segment: invalid segment name \"Office\"..."},
      {"a float", withSteps(R"({"do": "wait", "ms": 1.5})"), "scenario.json: /steps/0/ms: ..."},
      {"wrong version",
       R"({"shadan_scenario": 2, "name": "t", "description": "d", "steps": [{"do": "wait", "ms": 1}]})",
       "scenario.json: /shadan_scenario: must be 1"},
      {"wrong type", withSteps(R"({"do": "wait", "ms": "5"})"),
       "scenario.json: /steps/0/ms: must be an integer"},
      {"bad response",
       withSteps(R"({"do": "wait", "ms": 1})",
                 R"(, "response": {"rules": [{"name": "r", "action": "nuke"}]})"),
       "scenario.json: /response/rules/0/action: must be \"quarantine-host\", \"isolate-segment\" "
       "or "
       "\"record\""},
      {"not an object", "[1]", "scenario.json: /: must be an object"},
  };
  for (const RefusalCase& c : cases) {
    auto result = parseScenario(c.text, "scenario.json", c.args);
    ASSERT_FALSE(result.ok()) << c.name;
    EXPECT_EQ(result.error().code, ErrorCode::kParse) << c.name;
    const std::string& got = result.error().message;
    if (c.message.size() > 3 && c.message.ends_with("...")) {
      const std::string start = c.message.substr(0, c.message.size() - 3);
      EXPECT_EQ(got.rfind(start, 0), 0u) << c.name << "\n  got:  " << got << "\n  want: " << start;
    } else {
      EXPECT_EQ(got, c.message) << c.name;
    }
  }
}

TEST_F(ScenarioTest, ListsParametersWithoutReplacingThem) {
  auto parameters = scenarioParameters(
      withSteps(R"({"do": "isolate", "segment": "${segment}", "ttl_s": 5})",
                R"(, "parameters": {"segment": {"description": "to cut", "default": "a"}})"),
      "scenario.json");
  ASSERT_TRUE(parameters.ok()) << parameters.error().message;
  EXPECT_EQ(parameters->at("segment").default_value, "a");
  auto bad = scenarioParameters(
      withSteps(R"({"do": "wait", "ms": 1})", R"(, "parameters": {"Seg": {"description": "x"}})"),
      "scenario.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("scenario.json: /parameters/Seg: invalid parameter name", 0),
            0u)
      << bad.error().message;
}

}  // namespace
}  // namespace shadan::drill
