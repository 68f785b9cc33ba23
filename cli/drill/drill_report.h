#pragma once

// What a drill run measured, as data, and its report.json (the contract in docs/drills.md,
// "The report": the runner writes it, the HTML renderer and people read it). Pure: no clock, no
// files; the runner fills a DrillReport as it goes and drillReportToJson() writes it.
//
// Contracts:
//   - Every time is milliseconds relative to the drill's start (started_at_ms), or nullopt
//     (JSON null) when it was not measured.
//   - The JSON has exactly the keys of report_version 1 (more may be added; readers ignore
//     unknown keys), in the contract's order.
//   - The verdict is "pass" exactly when `failures` is empty: every failed step, expectation and
//     error of the run adds one sentence there (finish() and the runner see to it).

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace shadan::drill {

inline constexpr int kDrillReportVersion = 1;

struct StepRecord {
  size_t index = 0;
  std::string label;
  std::string kind;   // stepKindName(): isolate, restore, alert, fault, wait, expect
  std::string phase;  // before, during, after
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  bool ok = true;
  std::string detail;
  std::optional<std::string> order_id;
};

// One order's way to one gateway. The continuous prober (cli/lab/prober.*, issue #17
// deliverable 4) fills first_dropped_probe_ms / first_open_probe_ms and the gateway's
// time_to_cut_ms / time_to_restore_ms; the runner fills the rest from the controller's view of
// the order (GET /v1/orders/{id}).
struct TransitionRecord {
  size_t step = 0;
  std::string action;  // isolate, restore
  std::string order_id;
  int64_t order_sent_ms = 0;
  std::optional<int64_t> dispatch_sent_ms;      // the controller sent the dispatch
  std::optional<int64_t> dispatch_received_ms;  // the agent received it (its ack says)
  std::optional<int64_t> applied_ms;            // the agent applied it (its ack says)
  std::optional<int64_t> ack_received_ms;       // the controller stored the ack
  std::optional<int64_t> first_dropped_probe_ms;
  std::optional<int64_t> first_open_probe_ms;
  std::string state;  // the controller's delivery state of this gateway ("applied", ...)
};

struct GatewayRecord {
  std::optional<int64_t> time_to_cut_ms;
  std::optional<int64_t> time_to_restore_ms;
  std::vector<TransitionRecord> transitions;
};

struct ProbeRecord {
  size_t step = 0;
  std::string label;
  std::string from;  // "SEGMENT@GATEWAY", "controller", "internet"
  std::string to;
  std::string proto;  // tcp, udp, icmp
  std::optional<uint16_t> port;
  std::string family;  // ipv4, ipv6
  std::string phase;
  std::string expected;  // open, cut
  std::string observed;  // open, cut; "error" when the probe could not run
  bool ok = false;
  bool established = false;
  bool to_controller = false;  // counts in `management` (not written as its own key)
  std::string error;           // why a probe could not run; written as "error" when set
};

struct FaultRecord {
  size_t step = 0;
  std::string kind;
  std::optional<std::string> gateway;
  int64_t at_ms = 0;
  std::optional<bool> cut_held;
  std::string detail;
};

struct AuditRecord {
  bool verified = false;
  uint64_t entries = 0;
  std::string detail;
};

// The management path watched continuously (drill_measure.cc): from each measured host to the
// controller's agent port, all through the drill.
struct ManagementWatch {
  size_t pairs = 0;
  uint64_t sent = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;  // not answered in time, refused or reset
  std::optional<int64_t> first_failed_ms;
  // Set when the scenario takes the controller or a gateway's management path down on purpose
  // (stop-controller, partition): the watch's failures are then expected and do not count.
  std::string excluded_because;
};

struct DrillReport {
  std::string scenario;
  std::string scenario_description;
  std::map<std::string, std::string> parameters;
  std::string policy;
  std::string policy_file;
  std::string policy_sha256;
  std::string lab;
  int64_t started_at_ms = 0;  // Unix milliseconds, the origin of every other time
  int64_t duration_ms = 0;
  std::vector<StepRecord> steps;
  std::map<std::string, GatewayRecord> gateways;
  std::vector<ProbeRecord> probes;
  std::vector<FaultRecord> faults;
  AuditRecord audit;
  std::optional<ManagementWatch> management_watch;  // nullopt: nothing was measured
  std::vector<std::string> failures;

  bool passed() const { return failures.empty(); }
};

// "step 4 (expect, during): lgwan@core-gw -> internet tcp/80 ipv4: expected cut, observed open".
std::string probeFailureText(const StepRecord& step, const ProbeRecord& probe);

nlohmann::ordered_json drillReportToJson(const DrillReport& report);

}  // namespace shadan::drill
