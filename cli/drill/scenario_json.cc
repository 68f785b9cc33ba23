// The scenario's names and its JSON form (what parseScenario reads, parameters replaced).

#include <type_traits>

#include "cli/drill/scenario.h"
#include "cli/drill/scenario_internal.h"

namespace shadan::drill {
namespace {

// Members in the order docs/drills.md describes them ("do" first), for people who read and edit
// the output of `drill show`.
using Json = nlohmann::ordered_json;

template <typename Enum, size_t N>
std::optional<Enum> named(std::string_view name, const Enum (&values)[N],
                          const char* (*nameOf)(Enum)) {
  for (Enum value : values) {
    if (name == nameOf(value)) return value;
  }
  return std::nullopt;
}

constexpr FaultKind kFaultKinds[] = {
    FaultKind::kKillAgent,      FaultKind::kRestartAgent,    FaultKind::kFlushRuleset,
    FaultKind::kStopController, FaultKind::kStartController, FaultKind::kPartition,
    FaultKind::kHeal,           FaultKind::kReboot};

Json endpointJson(const Endpoint& endpoint) {
  switch (endpoint.kind) {
    case Endpoint::Kind::kController:
      return {{"node", "controller"}};
    case Endpoint::Kind::kInternet:
      return {{"node", "internet"}};
    case Endpoint::Kind::kAddress:
      return endpoint.address->toString();
    case Endpoint::Kind::kSegment:
      break;
  }
  Json out = {{"segment", endpoint.segment}};
  if (!endpoint.gateway.empty()) out["gateway"] = endpoint.gateway;
  return out;
}

void putRung(Json& out, const Rung& rung, bool isolate) {
  out["scope"] = isolationScopeName(rung.scope);
  if (rung.scope == IsolationScope::kSegment) out["segment"] = rung.segment;
  if (rung.scope == IsolationScope::kHost) {
    Json hosts = Json::array();
    for (const Endpoint& host : rung.hosts) hosts.push_back(endpointJson(host));
    out["hosts"] = std::move(hosts);
    out["family"] = probeFamilyName(rung.hosts_family);
  }
  if (rung.profile) out["profile"] = *rung.profile;
  if (!rung.gateways.empty()) out["gateways"] = rung.gateways;
  if (isolate && rung.link_down) out["link_down"] = true;
}

template <typename T>
void putOptional(Json& out, const char* name, const std::optional<T>& value) {
  if (value) out[name] = *value;
}

Json probeJson(const Probe& probe) {
  Json out = {{"from", endpointJson(probe.from)},
              {"to", endpointJson(probe.to)},
              {"proto", probeProtoName(probe.proto)},
              {"family", probeFamilyName(probe.family)},
              {"expected", reachabilityName(probe.expected)}};
  putOptional(out, "port", probe.port);
  if (probe.established) out["established"] = true;
  return out;
}

Json stepJson(const Step& step) {
  Json out = {{"do", stepKindName(step)}};
  putOptional(out, "label", step.label);
  std::visit(
      [&out](const auto& action) {
        using T = std::decay_t<decltype(action)>;
        if constexpr (std::is_same_v<T, IsolateStep> || std::is_same_v<T, RestoreStep>) {
          constexpr bool isolate = std::is_same_v<T, IsolateStep>;
          putRung(out, action.rung, isolate);
          if constexpr (isolate) out["ttl_s"] = action.ttl_s;
          putOptional(out, "reason", action.reason);
          putOptional(out, "ticket", action.ticket);
          putOptional(out, "approvers", action.approvers);
        } else if constexpr (std::is_same_v<T, AlertStep>) {
          out["detector"] = action.detector;
          out["format"] = controller::alertFormatName(action.format);
          if (action.format == controller::AlertFormat::kShadan) out["rule"] = action.rule;
          if (action.format == controller::AlertFormat::kZeek) out["note"] = action.note;
          putOptional(out, "signature_id", action.signature_id);
          putOptional(out, "title", action.title);
          if (action.severity) out["severity"] = controller::alertSeverityName(*action.severity);
          if (action.src) out["src"] = endpointJson(*action.src);
          if (action.dst) out["dst"] = endpointJson(*action.dst);
          out["family"] = action.family == IpFamily::kV4 ? "ipv4" : "ipv6";
        } else if constexpr (std::is_same_v<T, FaultStep>) {
          out["kind"] = faultKindName(action.kind);
          if (!action.gateway.empty()) out["gateway"] = action.gateway;
        } else if constexpr (std::is_same_v<T, WaitStep>) {
          putOptional(out, "ms", action.ms);
          if (action.until) {
            out["until"] = waitConditionName(*action.until);
            out["timeout_ms"] = action.timeout_ms;
            if (*action.until == WaitCondition::kSegmentIsolated) out["segment"] = action.segment;
          }
        } else {
          static_assert(std::is_same_v<T, ExpectStep>);
          if (action.phase) out["phase"] = probePhaseName(*action.phase);
          Json probes = Json::array();
          for (const Probe& probe : action.probes) probes.push_back(probeJson(probe));
          out["probes"] = std::move(probes);
        }
      },
      step.action);
  return out;
}

}  // namespace

const char* probeFamilyName(ProbeFamily family) {
  switch (family) {
    case ProbeFamily::kIpv4:
      return "ipv4";
    case ProbeFamily::kIpv6:
      return "ipv6";
    case ProbeFamily::kAll:
      return "all";
  }
  return "?";
}

const char* probeProtoName(ProbeProto proto) {
  switch (proto) {
    case ProbeProto::kTcp:
      return "tcp";
    case ProbeProto::kUdp:
      return "udp";
    case ProbeProto::kIcmp:
      return "icmp";
  }
  return "?";
}

const char* reachabilityName(Reachability value) {
  return value == Reachability::kOpen ? "open" : "cut";
}

const char* faultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillAgent:
      return "kill-agent";
    case FaultKind::kRestartAgent:
      return "restart-agent";
    case FaultKind::kFlushRuleset:
      return "flush-ruleset";
    case FaultKind::kStopController:
      return "stop-controller";
    case FaultKind::kStartController:
      return "start-controller";
    case FaultKind::kPartition:
      return "partition";
    case FaultKind::kHeal:
      return "heal";
    case FaultKind::kReboot:
      return "reboot";
  }
  return "?";
}

bool faultNeedsGateway(FaultKind kind) {
  return kind != FaultKind::kStopController && kind != FaultKind::kStartController;
}

const char* waitConditionName(WaitCondition condition) {
  switch (condition) {
    case WaitCondition::kAcked:
      return "acked";
    case WaitCondition::kApplied:
      return "applied";
    case WaitCondition::kConnected:
      return "connected";
    case WaitCondition::kSegmentIsolated:
      return "segment-isolated";
    case WaitCondition::kLapsed:
      return "lapsed";
  }
  return "?";
}

const char* probePhaseName(ProbePhase phase) {
  switch (phase) {
    case ProbePhase::kBefore:
      return "before";
    case ProbePhase::kDuring:
      return "during";
    case ProbePhase::kAfter:
      return "after";
  }
  return "?";
}

const char* stepKindName(const Step& step) {
  static constexpr const char* kNames[] = {"isolate", "restore", "alert",
                                           "fault",   "wait",    "expect"};
  return kNames[step.action.index()];
}

namespace internal {

std::optional<ProbeProto> probeProtoNamed(std::string_view name) {
  static constexpr ProbeProto kValues[] = {ProbeProto::kTcp, ProbeProto::kUdp, ProbeProto::kIcmp};
  return named(name, kValues, &probeProtoName);
}

std::optional<ProbeFamily> probeFamilyNamed(std::string_view name) {
  static constexpr ProbeFamily kValues[] = {ProbeFamily::kIpv4, ProbeFamily::kIpv6,
                                            ProbeFamily::kAll};
  return named(name, kValues, &probeFamilyName);
}

std::optional<Reachability> reachabilityNamed(std::string_view name) {
  static constexpr Reachability kValues[] = {Reachability::kOpen, Reachability::kCut};
  return named(name, kValues, &reachabilityName);
}

std::optional<FaultKind> faultKindNamed(std::string_view name) {
  return named(name, kFaultKinds, &faultKindName);
}

std::optional<WaitCondition> waitConditionNamed(std::string_view name) {
  static constexpr WaitCondition kValues[] = {
      WaitCondition::kAcked, WaitCondition::kApplied, WaitCondition::kConnected,
      WaitCondition::kSegmentIsolated, WaitCondition::kLapsed};
  return named(name, kValues, &waitConditionName);
}

std::optional<ProbePhase> probePhaseNamed(std::string_view name) {
  static constexpr ProbePhase kValues[] = {ProbePhase::kBefore, ProbePhase::kDuring,
                                           ProbePhase::kAfter};
  return named(name, kValues, &probePhaseName);
}

}  // namespace internal

Json scenarioToJson(const Scenario& scenario) {
  Json out = {{"shadan_scenario", kScenarioFormatVersion},
              {"name", scenario.name},
              {"description", scenario.description}};
  if (scenario.response) out["response"] = Json::parse(scenario.response_json.dump());
  Json steps = Json::array();
  for (const Step& step : scenario.steps) steps.push_back(stepJson(step));
  out["steps"] = std::move(steps);
  return out;
}

ProbePhase defaultPhase(const Scenario& scenario, size_t index) {
  ProbePhase phase = ProbePhase::kBefore;
  for (size_t i = 0; i < index && i < scenario.steps.size(); ++i) {
    const auto& action = scenario.steps[i].action;
    if (std::holds_alternative<IsolateStep>(action) || std::holds_alternative<AlertStep>(action)) {
      phase = ProbePhase::kDuring;
    } else if (std::holds_alternative<RestoreStep>(action) && phase != ProbePhase::kBefore) {
      phase = ProbePhase::kAfter;
    }
  }
  return phase;
}

}  // namespace shadan::drill
