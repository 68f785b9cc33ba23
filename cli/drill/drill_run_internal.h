#pragma once

// The inside of DrillRunner (drill_runner.h), shared by drill_runner.cc (lifecycle, orders,
// waits, faults, alerts) and drill_probes.cc (endpoints, probes, established flows). Internal.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/drill/drill_runner.h"
#include "cli/lab/lab.h"
#include "cli/lab/policy_lab.h"
#include "cli/lab/probe.h"
#include "cli/lab/prober.h"

namespace shadan::drill {

// A probe's end in the lab: the namespace to run in, the address, and the report's text.
struct ProbePlace {
  std::string ns;
  std::string address;
  std::string text;  // "SEGMENT@GATEWAY", "controller", "internet"
  bool controller = false;
};

// An order the drill made (or an alert made), followed for the report's transitions.
struct TrackedOrder {
  std::string order_id;
  size_t step = 0;
  std::string action;  // isolate, restore
  int64_t sent_ms = 0;
};

// A step that failed in a way the drill cannot go on from (kCouldNotRun).
struct Abort {
  std::string message;
};

class DrillRunner::Impl {
 public:
  Impl(DrillRunRequest request, CommandRunner& runner, std::ostream& progress,
       const std::atomic<bool>& interrupted, DrillReport& report);
  DrillOutcome run();

 private:
  using Ms = std::chrono::milliseconds;

  // --- lifecycle (drill_runner.cc)
  Status setUp();
  void tearDown();
  void verifyAudit();
  int64_t nowMs() const;  // since the drill's start
  void say(const std::string& line);
  void fail(StepRecord& step, const std::string& why);

  // --- steps (drill_runner.cc)
  // Each fills `record` (ok, detail, order_id); an error aborts the drill.
  Status runStep(size_t index, StepRecord& record);
  Status runOrder(size_t index, const Rung& rung, bool isolate, const nlohmann::json& extra,
                  std::optional<int> approvers, StepRecord& record);
  Result<nlohmann::json> rungJson(const Rung& rung, bool isolate) const;
  Status signApproval(const std::string& approval_id, const std::string& order_id,
                      const std::string& operator_name);
  Status runWait(const WaitStep& wait, StepRecord& record);
  Result<bool> waitHolds(const WaitStep& wait, std::string& detail);
  Status runFault(size_t index, const FaultStep& fault, StepRecord& record);
  Status runAlert(size_t index, const AlertStep& alert, StepRecord& record);
  // Reads the order's per-gateway view into the report's transitions; the progress line.
  Result<std::string> refreshOrder(const TrackedOrder& order);
  Result<nlohmann::json> getOrder(const std::string& order_id);
  // Sleeps up to `duration` in short slices; false when interrupted.
  bool sleepFor(Ms duration);

  // --- time to cut and restore (drill_measure.cc)
  // Starts the continuous prober on the pairs the scenario's isolate steps cut (after setUp).
  void startMeasuring();
  // Stops it and fills the transitions' first dropped / first open probe and the gateways'
  // time to cut / restore (after the steps, once the transitions are read).
  void finishMeasuring();
  // Stops the management watch and records it in the report (by finishMeasuring).
  void finishManagementWatch();
  std::vector<const PolicyLab::Host*> peersOf(const Rung& rung, const std::string& gateway,
                                              IpFamily family) const;
  // Which pairs measure step `step_index`'s orders ("" for a step that gives none).
  std::string measureKey(size_t step_index) const;
  std::vector<std::string> hostAddresses(const Rung& rung) const;  // a host rung's, no length
  const PolicyLab::Host* internalHost(const std::string& address) const;
  bool isInside(const PolicyLab::Host& host) const;  // not default, not management
  std::vector<const PolicyLab::Host*> insideHosts(const std::string& gateway,
                                                  IpFamily family) const;
  int64_t relativeMs(ProbeTime at) const;  // a prober time on the report's clock

  // --- probes (drill_probes.cc)
  Result<ProbePlace> place(const ConcreteEndpoint& end, IpFamily family,
                           const ConcreteEndpoint& other) const;
  std::vector<std::string> addressesOf(const Endpoint& endpoint, ProbeFamily family) const;
  Status runExpect(size_t index, const ExpectStep& expect, StepRecord& record);
  // Before step `index` (an isolate or alert): opens the established flows of the expect steps
  // up to the next such step.
  void openEstablishedFlows(size_t index);
  Result<bool> probeOnce(size_t index, size_t probe_index, const ConcreteProbe& probe,
                         const ProbePlace& from, const ProbePlace& to);

  DrillRunRequest request_;
  CommandRunner& runner_;
  std::ostream& progress_;
  const std::atomic<bool>& interrupted_;
  DrillReport& report_;
  std::chrono::system_clock::time_point started_;
  std::string default_segment_;
  std::string work_dir_;                           // the temporary credentials directory
  std::vector<std::string> controller_addresses_;  // the agent channel's first
  std::unique_ptr<Lab> lab_;
  std::unique_ptr<DrillPki> pki_;
  std::unique_ptr<DrillFleet> fleet_;
  std::vector<std::vector<ConcreteProbe>> concrete_;  // per step (expect steps only)
  std::map<std::pair<size_t, size_t>, std::unique_ptr<EstablishedFlow>> flows_;
  std::map<std::pair<size_t, size_t>, std::string> flow_errors_;
  std::vector<TrackedOrder> orders_;
  std::optional<TrackedOrder> latest_order_;
  std::optional<TrackedOrder> latest_isolate_;
  std::vector<std::string> partitioned_;  // gateways cut from the controller (partition)
  // A measured pair: which gateway and which steps' orders (measureKey) it measures.
  struct Measure {
    std::string pair_id;
    std::string gateway;
    std::string key;
  };
  std::unique_ptr<ContinuousProber> prober_;
  std::unique_ptr<ContinuousProber> management_prober_;  // the management watch
  std::vector<Measure> measures_;
  int64_t measure_origin_ms_ = 0;  // nowMs() when the prober started...
  ProbeTime measure_origin_;       // ...and the prober's clock then
};

}  // namespace shadan::drill
