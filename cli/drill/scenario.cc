// The strict scenario reader (contract in cli/drill/scenario.h).

#include "cli/drill/scenario.h"

#include <algorithm>
#include <set>

#include "cli/drill/scenario_internal.h"
#include "common/orders.h"
#include "common/strict_json.h"

namespace shadan::drill {
namespace {

using Json = nlohmann::json;
using internal::isPolicyName;
using Keys = std::vector<std::string_view>;

constexpr StringRules kDescription{.non_empty = true, .max_bytes = 512, .no_control = true};
constexpr StringRules kLabel{.non_empty = true, .max_bytes = 128, .no_control = true};
constexpr StringRules kReason{.non_empty = true, .max_bytes = kMaxReasonChars, .no_control = true};
constexpr StringRules kTicket{.non_empty = true, .max_bytes = 128, .no_control = true};
constexpr StringRules kWord{.non_empty = true, .max_bytes = 64, .no_control = true};
constexpr StringRules kAlertText{
    .non_empty = true, .max_bytes = controller::kAlertTextMaxBytes, .no_control = true};

std::string listed(const Keys& keys) {
  std::string out;
  for (std::string_view key : keys) out += (out.empty() ? "" : ", ") + std::string(key);
  return out;
}

// checkMembers() with lists built at run time, and an unknown key answered with what the object
// takes (`what`: "an isolate of scope segment"), since the valid keys depend on other members.
Status checkKeys(const StrictObjectReader& r, const Keys& required, const Keys& optional,
                 const std::string& what) {
  if (!r.value().is_object()) return r.error("must be an object");
  for (const auto& [key, unused] : r.value().items()) {
    const bool known = std::find(required.begin(), required.end(), key) != required.end() ||
                       std::find(optional.begin(), optional.end(), key) != optional.end();
    if (!known) {
      Keys all = required;
      all.insert(all.end(), optional.begin(), optional.end());
      return r.error(key, "unknown field " + quoteForMessage(key) + " (" + what +
                              " takes: " + listed(all) + ")");
    }
  }
  for (std::string_view key : required) {
    if (!r.has(key)) return r.error(key, "is required");
  }
  return okStatus();
}

bool isScenarioName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool isDetectorName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

template <typename T>
Result<T> readEnum(const StrictObjectReader& r, std::string_view name,
                   std::optional<T> (*named)(std::string_view), std::string_view choices) {
  SHADAN_ASSIGN_OR_RETURN(auto text, r.string(name));
  if (auto value = named(text)) return *value;
  return r.error(name, "must be one of " + std::string(choices));
}

template <typename T>
Result<std::optional<T>> readOptionalEnum(const StrictObjectReader& r, std::string_view name,
                                          std::optional<T> (*named)(std::string_view),
                                          std::string_view choices) {
  if (!r.has(name)) return std::optional<T>();
  SHADAN_ASSIGN_OR_RETURN(auto value, readEnum(r, name, named, choices));
  return std::optional<T>(value);
}

Result<std::string> readPolicyName(const StrictObjectReader& r, std::string_view name,
                                   std::string_view what) {
  SHADAN_ASSIGN_OR_RETURN(auto text, r.string(name));
  if (!isPolicyName(text)) {
    return r.error(name, "invalid " + std::string(what) + " name " + quoteForMessage(text) +
                             ": must match ^[a-z0-9][a-z0-9-]{0,31}$");
  }
  return text;
}

// Where an endpoint is used decides which forms it may take.
enum class EndpointUse { kProbe, kAlert, kHost };

class ScenarioReader {
 public:
  explicit ScenarioReader(std::string_view source) : source_(source) {}

  Result<Scenario> read(const Json& root, std::map<std::string, ScenarioParameter> parameters,
                        std::map<std::string, std::string> arguments) {
    const StrictObjectReader r(root, source_, "", StrictJsonWording::kFields);
    SHADAN_RETURN_IF_ERROR(checkKeys(r, {"shadan_scenario", "name", "description", "steps"},
                                     {"parameters", "response"}, "a scenario"));
    SHADAN_ASSIGN_OR_RETURN(auto version, r.integer("shadan_scenario"));
    if (version != kScenarioFormatVersion) {
      return r.error("shadan_scenario", "must be " + std::to_string(kScenarioFormatVersion));
    }
    Scenario out;
    SHADAN_ASSIGN_OR_RETURN(out.name, r.string("name"));
    if (!isScenarioName(out.name)) {
      return r.error("name", "invalid scenario name " + quoteForMessage(out.name) +
                                 ": must match ^[a-z0-9][a-z0-9-]{0,63}$");
    }
    SHADAN_ASSIGN_OR_RETURN(out.description, r.string("description", kDescription));
    out.parameters = std::move(parameters);
    out.arguments = std::move(arguments);
    SHADAN_ASSIGN_OR_RETURN(auto response, r.optionalObject("response"));
    if (response) {
      SHADAN_ASSIGN_OR_RETURN(auto config, controller::parseResponseConfig(*response));
      out.response = std::move(config);
      out.response_json = response->value();
    }
    SHADAN_ASSIGN_OR_RETURN(auto steps, r.array("steps", 1, kScenarioMaxSteps,
                                                "must be an array of 1 to " +
                                                    std::to_string(kScenarioMaxSteps) + " steps"));
    for (size_t i = 0; i < steps.size(); ++i) {
      SHADAN_ASSIGN_OR_RETURN(auto step_reader, steps.object(i));
      SHADAN_ASSIGN_OR_RETURN(auto step, readStep(step_reader));
      out.steps.push_back(std::move(step));
    }
    return out;
  }

 private:
  Result<Step> readStep(const StrictObjectReader& r) {
    if (!r.has("do")) return r.error("do", "is required");
    SHADAN_ASSIGN_OR_RETURN(auto kind, r.string("do"));
    Step step;
    if (r.has("label")) {
      SHADAN_ASSIGN_OR_RETURN(step.label, r.string("label", kLabel));
    }
    if (kind == "isolate" || kind == "restore") {
      const bool isolate = kind == "isolate";
      SHADAN_ASSIGN_OR_RETURN(auto rung, readRung(r, isolate));
      SHADAN_ASSIGN_OR_RETURN(auto reason, r.optionalString("reason", kReason));
      SHADAN_ASSIGN_OR_RETURN(auto ticket, r.optionalString("ticket", kTicket));
      SHADAN_ASSIGN_OR_RETURN(auto approvers,
                              r.optionalInteger("approvers", 1, kScenarioMaxApprovers));
      std::optional<int> count;
      if (approvers) count = static_cast<int>(*approvers);
      if (isolate) {
        SHADAN_ASSIGN_OR_RETURN(auto ttl, r.integer("ttl_s", 1, kScenarioMaxTtlSeconds));
        step.action =
            IsolateStep{std::move(rung), ttl, std::move(reason), std::move(ticket), count};
      } else {
        step.action = RestoreStep{std::move(rung), std::move(reason), std::move(ticket), count};
      }
    } else if (kind == "alert") {
      SHADAN_ASSIGN_OR_RETURN(step.action, readAlert(r));
    } else if (kind == "fault") {
      SHADAN_ASSIGN_OR_RETURN(step.action, readFault(r));
    } else if (kind == "wait") {
      SHADAN_ASSIGN_OR_RETURN(step.action, readWait(r));
    } else if (kind == "expect") {
      SHADAN_ASSIGN_OR_RETURN(step.action, readExpect(r));
    } else {
      return r.error("do", "must be one of isolate, restore, alert, fault, wait, expect");
    }
    return step;
  }

  // The members of an isolate or restore, by rung, as `shadanctl isolate|restore` takes them.
  Result<Rung> readRung(const StrictObjectReader& r, bool isolate) {
    Rung rung;
    if (r.has("scope")) {
      SHADAN_ASSIGN_OR_RETURN(auto name, r.string("scope"));
      auto scope = parseIsolationScope(name);
      if (!scope) return r.error("scope", "must be one of segment, host, uplink, island");
      rung.scope = *scope;
    }
    Keys required = {"do"};
    Keys optional = {"label", "scope", "reason", "ticket", "approvers"};
    if (isolate) required.push_back("ttl_s");
    switch (rung.scope) {
      case IsolationScope::kSegment:
        required.push_back("segment");
        optional.push_back("profile");
        break;
      case IsolationScope::kHost:
        required.push_back("hosts");
        optional.insert(optional.end(), {"family", "profile"});
        break;
      case IsolationScope::kUplink:
        optional.push_back("gateways");
        if (isolate) optional.push_back("link_down");
        break;
      case IsolationScope::kIsland:
        optional.push_back("gateways");
        break;
    }
    const std::string what = std::string(isolate ? "an isolate" : "a restore") + " of scope " +
                             isolationScopeName(rung.scope);
    SHADAN_RETURN_IF_ERROR(checkKeys(r, required, optional, what));
    if (r.has("segment")) {
      SHADAN_ASSIGN_OR_RETURN(rung.segment, readPolicyName(r, "segment", "segment"));
    }
    if (r.has("profile")) {
      SHADAN_ASSIGN_OR_RETURN(rung.profile, readPolicyName(r, "profile", "profile"));
    }
    if (r.has("hosts")) {
      SHADAN_ASSIGN_OR_RETURN(
          auto hosts, r.array("hosts", 1, kMaxHostsPerOrder,
                              "must be an array of 1 to " + std::to_string(kMaxHostsPerOrder) +
                                  " addresses or endpoints"));
      for (size_t i = 0; i < hosts.size(); ++i) {
        SHADAN_ASSIGN_OR_RETURN(auto host,
                                readEndpoint(hosts.at(i), hosts.pointerOf(i), EndpointUse::kHost));
        if (std::find(rung.hosts.begin(), rung.hosts.end(), host) != rung.hosts.end()) {
          return hosts.error(i, "given twice");
        }
        rung.hosts.push_back(std::move(host));
      }
      SHADAN_ASSIGN_OR_RETURN(
          auto family,
          readOptionalEnum(r, "family", &internal::probeFamilyNamed, "ipv4, ipv6, all"));
      rung.hosts_family = family.value_or(ProbeFamily::kAll);
    }
    if (r.has("gateways")) {
      SHADAN_ASSIGN_OR_RETURN(auto gateways, r.array("gateways", 1));
      for (size_t i = 0; i < gateways.size(); ++i) {
        SHADAN_ASSIGN_OR_RETURN(auto name, gateways.string(i));
        if (!isPolicyName(name)) {
          return gateways.error(i, "invalid gateway name " + quoteForMessage(name) +
                                       ": must match ^[a-z0-9][a-z0-9-]{0,31}$");
        }
        if (std::find(rung.gateways.begin(), rung.gateways.end(), name) != rung.gateways.end()) {
          return gateways.error(i, "gateway " + quoteForMessage(name) + " given twice");
        }
        rung.gateways.push_back(std::move(name));
      }
    }
    if (r.has("link_down")) {
      SHADAN_ASSIGN_OR_RETURN(rung.link_down, r.boolean("link_down"));
    }
    return rung;
  }

  Result<AlertStep> readAlert(const StrictObjectReader& r) {
    AlertStep alert;
    SHADAN_ASSIGN_OR_RETURN(
        alert.format, readEnum(r, "format", &controller::parseAlertFormat, "shadan, eve, zeek"));
    Keys required = {"do", "detector", "format"};
    Keys optional = {"label", "title", "src", "dst", "family"};
    switch (alert.format) {
      case controller::AlertFormat::kShadan:
        required.push_back("rule");
        optional.push_back("severity");
        break;
      case controller::AlertFormat::kEve:
        required.push_back("signature_id");
        optional.push_back("severity");
        break;
      case controller::AlertFormat::kZeek:
        required.push_back("note");  // Zeek notices have no severity
        break;
    }
    SHADAN_RETURN_IF_ERROR(
        checkKeys(r, required, optional,
                  std::string("an alert of format ") + controller::alertFormatName(alert.format)));
    SHADAN_ASSIGN_OR_RETURN(alert.detector, r.string("detector"));
    if (!isDetectorName(alert.detector)) {
      return r.error("detector", "invalid detector token name " + quoteForMessage(alert.detector) +
                                     ": 1-64 of a-z, 0-9, _, ., -");
    }
    if (r.has("rule")) {
      SHADAN_ASSIGN_OR_RETURN(alert.rule, r.string("rule", kAlertText));
    }
    if (r.has("note")) {
      SHADAN_ASSIGN_OR_RETURN(alert.note, r.string("note", kAlertText));
    }
    if (r.has("signature_id")) {
      SHADAN_ASSIGN_OR_RETURN(alert.signature_id, r.integer("signature_id", 0, 4294967295LL));
    }
    SHADAN_ASSIGN_OR_RETURN(alert.title, r.optionalString("title", kAlertText));
    if (r.has("severity")) {
      SHADAN_ASSIGN_OR_RETURN(
          alert.severity,
          readEnum(r, "severity", &controller::parseAlertSeverity, "low, medium, high, critical"));
      // Suricata's priorities say low, medium or high; nothing in EVE says critical.
      if (alert.format == controller::AlertFormat::kEve &&
          *alert.severity == controller::AlertSeverity::kCritical) {
        return r.error("severity", "must be one of low, medium, high (an EVE alert)");
      }
    }
    for (std::string_view side : {"src", "dst"}) {
      if (!r.has(side)) continue;
      SHADAN_ASSIGN_OR_RETURN(auto endpoint,
                              readEndpoint(r.at(side), r.pointerOf(side), EndpointUse::kAlert));
      (side == "src" ? alert.src : alert.dst) = std::move(endpoint);
    }
    if (!alert.src && !alert.dst) return r.error("src", "is required (or dst, or both)");
    SHADAN_ASSIGN_OR_RETURN(
        auto family, readOptionalEnum(r, "family", &internal::probeFamilyNamed, "ipv4, ipv6"));
    if (family == ProbeFamily::kAll) return r.error("family", "must be one of ipv4, ipv6");
    alert.family = family == ProbeFamily::kIpv6 ? IpFamily::kV6 : IpFamily::kV4;
    return alert;
  }

  Result<FaultStep> readFault(const StrictObjectReader& r) {
    FaultStep fault;
    SHADAN_ASSIGN_OR_RETURN(fault.kind,
                            readEnum(r, "kind", &internal::faultKindNamed,
                                     "kill-agent, restart-agent, flush-ruleset, stop-controller, "
                                     "start-controller, partition, heal, reboot"));
    const bool gateway = faultNeedsGateway(fault.kind);
    const Keys required = gateway ? Keys{"do", "kind", "gateway"} : Keys{"do", "kind"};
    SHADAN_RETURN_IF_ERROR(checkKeys(r, required, {"label"},
                                     std::string("a fault of kind ") + faultKindName(fault.kind)));
    if (gateway) {
      SHADAN_ASSIGN_OR_RETURN(fault.gateway, readPolicyName(r, "gateway", "gateway"));
    }
    return fault;
  }

  Result<WaitStep> readWait(const StrictObjectReader& r) {
    WaitStep wait;
    if (r.has("ms") == r.has("until")) {
      return r.error("needs exactly one of \"ms\" and \"until\"");
    }
    if (r.has("ms")) {
      SHADAN_RETURN_IF_ERROR(checkKeys(r, {"do", "ms"}, {"label"}, "a wait of ms"));
      SHADAN_ASSIGN_OR_RETURN(wait.ms, r.integer("ms", 1, kScenarioMaxWaitMs));
      return wait;
    }
    SHADAN_ASSIGN_OR_RETURN(wait.until,
                            readEnum(r, "until", &internal::waitConditionNamed,
                                     "acked, applied, connected, segment-isolated, lapsed"));
    const bool segment = wait.until == WaitCondition::kSegmentIsolated;
    const Keys required =
        segment ? Keys{"do", "until", "timeout_ms", "segment"} : Keys{"do", "until", "timeout_ms"};
    SHADAN_RETURN_IF_ERROR(checkKeys(
        r, required, {"label"}, std::string("a wait until ") + waitConditionName(*wait.until)));
    SHADAN_ASSIGN_OR_RETURN(wait.timeout_ms, r.integer("timeout_ms", 1, kScenarioMaxWaitMs));
    if (segment) {
      SHADAN_ASSIGN_OR_RETURN(wait.segment, readPolicyName(r, "segment", "segment"));
    }
    return wait;
  }

  Result<ExpectStep> readExpect(const StrictObjectReader& r) {
    SHADAN_RETURN_IF_ERROR(checkKeys(r, {"do", "probes"}, {"label", "phase"}, "an expect step"));
    ExpectStep expect;
    SHADAN_ASSIGN_OR_RETURN(expect.phase, readOptionalEnum(r, "phase", &internal::probePhaseNamed,
                                                           "before, during, after"));
    SHADAN_ASSIGN_OR_RETURN(auto probes,
                            r.array("probes", 1, kScenarioMaxProbesPerStep,
                                    "must be an array of 1 to " +
                                        std::to_string(kScenarioMaxProbesPerStep) + " probes"));
    for (size_t i = 0; i < probes.size(); ++i) {
      SHADAN_ASSIGN_OR_RETURN(auto probe_reader, probes.object(i));
      SHADAN_ASSIGN_OR_RETURN(auto probe, readProbe(probe_reader));
      expect.probes.push_back(std::move(probe));
    }
    return expect;
  }

  Result<Probe> readProbe(const StrictObjectReader& r) {
    SHADAN_RETURN_IF_ERROR(checkKeys(r, {"from", "to", "proto", "expected"},
                                     {"port", "family", "established"}, "a probe"));
    Probe probe;
    SHADAN_ASSIGN_OR_RETURN(probe.from,
                            readEndpoint(r.at("from"), r.pointerOf("from"), EndpointUse::kProbe));
    SHADAN_ASSIGN_OR_RETURN(probe.to,
                            readEndpoint(r.at("to"), r.pointerOf("to"), EndpointUse::kProbe));
    const bool from_every =
        probe.from.kind == Endpoint::Kind::kSegment && probe.from.segment == kEverySegment;
    const bool to_every =
        probe.to.kind == Endpoint::Kind::kSegment && probe.to.segment == kEverySegment;
    if (from_every && to_every) return r.error("to", "from and to cannot both be \"*\"");
    if (probe.from == probe.to && probe.from.kind != Endpoint::Kind::kSegment) {
      return r.error("to", "is the same place as from");
    }
    SHADAN_ASSIGN_OR_RETURN(probe.proto,
                            readEnum(r, "proto", &internal::probeProtoNamed, "tcp, udp, icmp"));
    SHADAN_ASSIGN_OR_RETURN(probe.expected,
                            readEnum(r, "expected", &internal::reachabilityNamed, "open, cut"));
    if (r.has("port")) {
      if (probe.proto == ProbeProto::kIcmp) return r.error("port", "goes with tcp or udp only");
      SHADAN_ASSIGN_OR_RETURN(auto port, r.integer("port", 1, 65535));
      probe.port = static_cast<uint16_t>(port);
    }
    SHADAN_ASSIGN_OR_RETURN(
        auto family, readOptionalEnum(r, "family", &internal::probeFamilyNamed, "ipv4, ipv6, all"));
    probe.family = family.value_or(ProbeFamily::kIpv4);
    if (r.has("established")) {
      SHADAN_ASSIGN_OR_RETURN(probe.established, r.boolean("established"));
      if (probe.established && probe.proto != ProbeProto::kTcp) {
        return r.error("established", "goes with tcp only (a flow opened before the cut)");
      }
    }
    return probe;
  }

  // {"segment": S, "gateway"?: G} | {"node": "controller" | "internet"} | "ADDRESS".
  Result<Endpoint> readEndpoint(const Json& value, const std::string& pointer, EndpointUse use) {
    const StrictObjectReader r(value, source_, pointer, StrictJsonWording::kFields);
    Endpoint endpoint;
    if (value.is_string() && use != EndpointUse::kProbe) {
      const std::string& text = value.get_ref<const std::string&>();
      auto address = IpPrefix::parse(text);
      if (!address.ok()) {
        return r.error("not an address: " + quoteForMessage(text) + " (" + address.error().message +
                       ")");
      }
      if (use == EndpointUse::kAlert && !address->isHost()) {
        return r.error("must be one address, not the prefix " + address->toString());
      }
      if (use == EndpointUse::kHost && address->length() < minHostPrefixLength(address->family())) {
        return r.error(address->toString() + " is wider than /" +
                       std::to_string(minHostPrefixLength(address->family())) +
                       " (isolate the segment instead)");
      }
      endpoint.kind = Endpoint::Kind::kAddress;
      endpoint.address = *address;
      return endpoint;
    }
    if (!value.is_object()) {
      return r.error(
          use == EndpointUse::kProbe
              ? "must be an object ({\"segment\": ...} or {\"node\": ...})"
              : "must be an address or an object ({\"segment\": ...} or {\"node\": ...})");
    }
    if (r.has("segment") == r.has("node")) {
      return r.error("needs exactly one of \"segment\" and \"node\"");
    }
    if (r.has("node")) {
      if (use == EndpointUse::kHost) {
        return r.error("node", "a host quarantine names segment hosts or addresses, not a node");
      }
      SHADAN_RETURN_IF_ERROR(checkKeys(r, {"node"}, {}, "a node endpoint"));
      SHADAN_ASSIGN_OR_RETURN(auto node, r.string("node"));
      if (node == "controller") {
        endpoint.kind = Endpoint::Kind::kController;
      } else if (node == "internet") {
        endpoint.kind = Endpoint::Kind::kInternet;
      } else {
        return r.error("node", "must be one of controller, internet");
      }
      return endpoint;
    }
    SHADAN_RETURN_IF_ERROR(checkKeys(r, {"segment"}, {"gateway"}, "a segment endpoint"));
    SHADAN_ASSIGN_OR_RETURN(endpoint.segment, r.string("segment"));
    if (endpoint.segment == kEverySegment) {
      if (use != EndpointUse::kProbe) {
        return r.error("segment", "\"*\" (every segment) is for probes only");
      }
      if (r.has("gateway")) return r.error("gateway", "does not go with \"*\" (every segment)");
    } else if (!isPolicyName(endpoint.segment)) {
      return r.error("segment", "invalid segment name " + quoteForMessage(endpoint.segment) +
                                    ": must match ^[a-z0-9][a-z0-9-]{0,31}$ or be \"*\"");
    }
    if (r.has("gateway")) {
      SHADAN_ASSIGN_OR_RETURN(endpoint.gateway, readPolicyName(r, "gateway", "gateway"));
    }
    return endpoint;
  }

  std::string_view source_;
};

Result<Json> parseRoot(std::string_view text, std::string_view source) {
  SHADAN_ASSIGN_OR_RETURN(auto root, parseStrictJson(text, source, kScenarioMaxBytes));
  if (!root.is_object()) {
    return makeError(ErrorCode::kParse, std::string(source) + ": /: must be an object");
  }
  return root;
}

}  // namespace

Result<Scenario> parseScenario(std::string_view text, std::string_view source,
                               const std::map<std::string, std::string>& arguments) {
  SHADAN_ASSIGN_OR_RETURN(auto root, parseRoot(text, source));
  SHADAN_ASSIGN_OR_RETURN(auto parameters, internal::readParameters(root, source));
  SHADAN_ASSIGN_OR_RETURN(auto values,
                          internal::substituteParameters(root, source, parameters, arguments));
  return ScenarioReader(source).read(root, std::move(parameters), std::move(values));
}

Result<std::map<std::string, ScenarioParameter>> scenarioParameters(std::string_view text,
                                                                    std::string_view source) {
  SHADAN_ASSIGN_OR_RETURN(auto root, parseRoot(text, source));
  return internal::readParameters(root, source);
}

}  // namespace shadan::drill
