#pragma once

// Drill scenarios (issue #17, docs/drills.md "Writing a scenario"): what a drill does, step by
// step, as data. Pure: no lab, no clock, no files; the runner executes a Scenario, the lab
// (cli/lab/policy_lab.h) resolves its endpoints to hosts.
//
// Contracts:
//   - parseScenario() is strict, like every format Shadan reads (common/strict_json.h):
//     duplicate keys, unknown keys, floats, wrong types and values out of range are errors, and
//     every error reads `<source>: <JSON pointer>: <reason>`
//     ("scenario.json: /steps/3/probes/0/proto: must be one of tcp, udp, icmp"). A scenario that
//     parses is well-formed on its own; whether its names exist is checkScenarioAgainstPolicy().
//   - Parameters: a scenario declares them ("parameters": {"segment": {...}}); every "${name}"
//     in a string value (never in a key, never inside "parameters") is replaced by the given
//     value, or the declared default, before anything else is read, so errors about the result
//     name the path of the string that held the reference. A reference to an undeclared
//     parameter, a declared parameter without a value or default that a string uses, and a value
//     given for a parameter the scenario does not declare are errors naming the path.
//   - scenarioToJson() writes what parseScenario() reads, with every parameter already replaced
//     (no "parameters" member): parse(toJson(s)) has the same name, description, response and
//     steps as s, and no parameters.
//   - Drills always carry a TTL: an isolate step needs ttl_s (1 s .. kScenarioMaxTtlSeconds, the
//     controller's bound for any order) and is always sent as a drill order.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/ip_prefix.h"
#include "common/isolation_scope.h"
#include "common/policy.h"
#include "common/result.h"
#include "controller/alerts/alert_formats.h"
#include "controller/alerts/response_config.h"

namespace shadan::drill {

inline constexpr int kScenarioFormatVersion = 1;
inline constexpr size_t kScenarioMaxBytes = 1024 * 1024;
inline constexpr size_t kScenarioMaxSteps = 512;
inline constexpr size_t kScenarioMaxProbesPerStep = 1024;
// The controller refuses any ttl_s above 366 days (controller/order_commands.cc, common/orders.cc).
inline constexpr int64_t kScenarioMaxTtlSeconds = 366LL * 24 * 3600;
// Waits and their timeouts: at most 10 minutes each (a drill is minutes long, not hours).
inline constexpr int64_t kScenarioMaxWaitMs = 600000;
// An order signed by more operators than this is not a drill anyone runs.
inline constexpr int kScenarioMaxApprovers = 5;

// Where a probe starts or ends, or an address an alert or a host quarantine names.
//   kSegment   a lab host in `segment` (behind `gateway` when given; without it: one behind each
//              gateway bordering the segment, and in an alert the one behind the first bordering
//              gateway by id). `segment` "*" (probes only): every non-default segment of the
//              policy except the other end's segment.
//   kController, kInternet   the lab's controller host (its families: those of the policy's
//              management rules); the lab's node of the default segment (both families).
//   kAddress   a literal address or prefix (alerts and host quarantines only).
struct Endpoint {
  enum class Kind { kSegment, kController, kInternet, kAddress };
  Kind kind = Kind::kSegment;
  std::string segment;              // kSegment
  std::string gateway;              // kSegment: "" for every bordering gateway
  std::optional<IpPrefix> address;  // kAddress

  bool operator==(const Endpoint&) const = default;
};
inline constexpr std::string_view kEverySegment = "*";

// A probe's address family; kAll: each family both ends have (at least one).
enum class ProbeFamily { kIpv4, kIpv6, kAll };
const char* probeFamilyName(ProbeFamily family);  // "ipv4" | "ipv6" | "all"

enum class ProbeProto { kTcp, kUdp, kIcmp };
const char* probeProtoName(ProbeProto proto);  // "tcp" | "udp" | "icmp"

enum class Reachability { kOpen, kCut };
const char* reachabilityName(Reachability value);  // "open" | "cut"

struct Probe {
  Endpoint from;
  Endpoint to;
  ProbeProto proto = ProbeProto::kTcp;
  // tcp/udp: the port on `to`; nullopt: the runner's choice (to the controller, the port its
  // agents connect to; elsewhere a port the probe listens on). Never set for icmp.
  std::optional<uint16_t> port;
  ProbeFamily family = ProbeFamily::kIpv4;
  Reachability expected = Reachability::kOpen;
  // tcp only: the connection is opened before the latest isolate step before this probe and
  // kept; `expected` says whether it still carries data (an established flow must be cut).
  bool established = false;

  bool operator==(const Probe&) const = default;
};

// The rung of an isolate or restore step, as `shadanctl isolate` takes it.
struct Rung {
  IsolationScope scope = IsolationScope::kSegment;
  std::string segment;          // segment scope
  std::vector<Endpoint> hosts;  // host scope: kAddress or kSegment (not "*") endpoints
  ProbeFamily hosts_family = ProbeFamily::kAll;  // which addresses a kSegment host stands for
  std::vector<std::string> gateways;             // uplink, island: "" = the rung's default gateways
  std::optional<std::string> profile;            // segment, host: nullopt = "full"
  bool link_down = false;                        // uplink isolate only

  bool operator==(const Rung&) const = default;
};

struct IsolateStep {
  Rung rung;
  int64_t ttl_s = 0;
  std::optional<std::string> reason;  // nullopt: the runner writes one naming the drill and step
  std::optional<std::string> ticket;
  // Distinct operators who sign the order (the requester first); nullopt: as many as the
  // controller asks for. Fewer than it asks leaves the order awaiting approval.
  std::optional<int> approvers;

  bool operator==(const IsolateStep&) const = default;
};

struct RestoreStep {
  Rung rung;
  std::optional<std::string> reason;
  std::optional<std::string> ticket;
  std::optional<int> approvers;  // as IsolateStep; a two-operator restore is 2

  bool operator==(const RestoreStep&) const = default;
};

// One alert record a detector posts (controller/alerts/alert_formats.h). The runner writes the
// record in `format` with the endpoints' addresses in `family`.
struct AlertStep {
  std::string detector;  // the detector token's name ([a-z0-9_.-], 1-64)
  controller::AlertFormat format = controller::AlertFormat::kShadan;
  std::string rule;                     // shadan: rule (required)
  std::optional<int64_t> signature_id;  // eve: alert.signature_id (required)
  std::string note;                     // zeek: note (required)
  std::optional<std::string> title;     // shadan detail, eve alert.signature, zeek msg
  std::optional<controller::AlertSeverity> severity;  // shadan, eve (not critical); not zeek
  std::optional<Endpoint> src;                        // at least one of src, dst; no "*"
  std::optional<Endpoint> dst;
  IpFamily family = IpFamily::kV4;

  bool operator==(const AlertStep&) const = default;
};

enum class FaultKind {
  kKillAgent,        // kill -9 the gateway's agent
  kRestartAgent,     // stop it cleanly and start it again
  kFlushRuleset,     // a foreign `nft flush ruleset` on the gateway
  kStopController,   // stop the controller
  kStartController,  // start it again (same state)
  kPartition,        // cut the gateway's path to the controller
  kHeal,             // undo kPartition
  kReboot,           // simulated reboot of the gateway: ruleset and agent gone, agent started
};
const char* faultKindName(FaultKind kind);  // "kill-agent", ..., "reboot"
bool faultNeedsGateway(FaultKind kind);     // every kind but stop/start-controller

struct FaultStep {
  FaultKind kind = FaultKind::kKillAgent;
  std::string gateway;  // "" for stop-controller and start-controller

  bool operator==(const FaultStep&) const = default;
};

enum class WaitCondition {
  kAcked,            // every target gateway of the latest order answered it
  kApplied,          // every target gateway of the latest order applied it
  kConnected,        // every gateway's agent has a live session with the controller
  kSegmentIsolated,  // the controller reports `segment` isolated and applied everywhere
  kLapsed,           // the latest isolate's TTL has passed on every gateway that applied it
};
const char* waitConditionName(WaitCondition condition);  // "acked", ..., "segment-isolated"

struct WaitStep {
  std::optional<int64_t> ms;  // a plain wait; else `until` and timeout_ms
  std::optional<WaitCondition> until;
  int64_t timeout_ms = 0;
  std::string segment;  // kSegmentIsolated only

  bool operator==(const WaitStep&) const = default;
};

// Which part of the report an expect step belongs to.
enum class ProbePhase { kBefore, kDuring, kAfter };
const char* probePhaseName(ProbePhase phase);  // "before" | "during" | "after"

struct ExpectStep {
  // nullopt: defaultPhase() of the step.
  std::optional<ProbePhase> phase;
  std::vector<Probe> probes;  // 1 .. kScenarioMaxProbesPerStep

  bool operator==(const ExpectStep&) const = default;
};

struct Step {
  std::optional<std::string> label;  // names the step in progress and the report
  std::variant<IsolateStep, RestoreStep, AlertStep, FaultStep, WaitStep, ExpectStep> action;

  bool operator==(const Step&) const = default;
};
// "isolate", "restore", "alert", "fault", "wait", "expect".
const char* stepKindName(const Step& step);

struct ScenarioParameter {
  std::string description;
  std::optional<std::string> default_value;

  bool operator==(const ScenarioParameter&) const = default;
};

struct Scenario {
  std::string name;         // ^[a-z0-9][a-z0-9-]{0,63}$
  std::string description;  // at most 512 bytes, no control characters
  // What was declared; the values used are in `arguments`.
  std::map<std::string, ScenarioParameter> parameters;
  // The value every declared parameter had (given or default); absent when it had none and no
  // string used it.
  std::map<std::string, std::string> arguments;
  // The controller's `response` section for the drill (controller/alerts/response_config.h):
  // what the controller does with the alert steps. Its JSON is kept as written, for the
  // runner's controller config.
  std::optional<controller::ResponseConfig> response;
  nlohmann::json response_json;  // null when absent
  std::vector<Step> steps;       // 1 .. kScenarioMaxSteps
};

// Parses a scenario. `arguments` are the parameter values given (e.g. {"segment": "lgwan"} from
// --segment). `source` names the input in errors ("scenario.json", "builtin:segment-cut").
Result<Scenario> parseScenario(std::string_view text, std::string_view source,
                               const std::map<std::string, std::string>& arguments = {});

// Reads `path` (at most kScenarioMaxBytes) and parses it with `path` as the source. Errors name
// the path.
Result<Scenario> loadScenarioFile(const std::string& path,
                                  const std::map<std::string, std::string>& arguments = {});

// The parameters a scenario declares, read without replacing anything (for `drill list`).
Result<std::map<std::string, ScenarioParameter>> scenarioParameters(std::string_view text,
                                                                    std::string_view source);

// The scenario as JSON, parameters replaced (see the contract above), members in the order
// docs/drills.md lists them.
nlohmann::ordered_json scenarioToJson(const Scenario& scenario);

// The phase of steps[index] when its expect step names none: `before` until the first isolate
// or alert step, `after` once the latest isolate, alert or restore step is a restore, `during`
// otherwise.
ProbePhase defaultPhase(const Scenario& scenario, size_t index);

// Checks the scenario against the policy it will run on. Errors (kPolicy) read
// `<source>: <JSON pointer>: <reason>` and name the first problem: a segment, gateway or profile
// the policy lacks; a protected or default segment isolated (or hosts in one); a gateway that
// does not border the segment of an endpoint; a probe family that an endpoint's segment has no
// prefix of (or, to the controller, no management rule of); the internet node without a
// default segment; an uplink isolate on a gateway without default-segment interfaces; link_down
// where the policy allows none; a response section that names unknown segments, profiles or
// detectors (checkResponseConfig, with the alert steps' detectors as the lab's tokens).
Status checkScenarioAgainstPolicy(const Scenario& scenario, const Policy& policy,
                                  std::string_view source);

// One probe between two concrete lab places, as the runner sends it.
struct ConcreteEndpoint {
  Endpoint::Kind kind = Endpoint::Kind::kSegment;  // kSegment, kController or kInternet
  std::string segment;
  std::string gateway;  // kSegment: the bordering gateway the host is behind

  bool operator==(const ConcreteEndpoint&) const = default;
};
struct ConcreteProbe {
  ConcreteEndpoint from;
  ConcreteEndpoint to;
  ProbeProto proto = ProbeProto::kTcp;
  std::optional<uint16_t> port;
  IpFamily family = IpFamily::kV4;
  Reachability expected = Reachability::kOpen;
  bool established = false;

  bool operator==(const ConcreteProbe&) const = default;
};

// The probes one Probe stands for on `policy`: "*" and gateway-less segment endpoints expanded
// (policy order), `all` split into the families both ends have. REQUIRES: the scenario passed
// checkScenarioAgainstPolicy for `policy`. May be empty ("*" in a policy with one segment).
std::vector<ConcreteProbe> expandProbe(const Probe& probe, const Policy& policy);

}  // namespace shadan::drill
