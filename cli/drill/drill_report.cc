#include "cli/drill/drill_report.h"

#include "common/clock.h"

namespace shadan::drill {
namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json orNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json transitionJson(const TransitionRecord& t) {
  return Json{{"step", t.step},
              {"action", t.action},
              {"order_id", t.order_id},
              {"order_sent_ms", t.order_sent_ms},
              {"dispatch_sent_ms", orNull(t.dispatch_sent_ms)},
              {"dispatch_received_ms", orNull(t.dispatch_received_ms)},
              {"applied_ms", orNull(t.applied_ms)},
              {"ack_received_ms", orNull(t.ack_received_ms)},
              {"first_dropped_probe_ms", orNull(t.first_dropped_probe_ms)},
              {"first_open_probe_ms", orNull(t.first_open_probe_ms)},
              {"state", t.state}};
}

Json probeJson(const ProbeRecord& p) {
  Json out{{"step", p.step},
           {"label", p.label},
           {"from", p.from},
           {"to", p.to},
           {"proto", p.proto},
           {"port", orNull(p.port)},
           {"family", p.family},
           {"phase", p.phase},
           {"expected", p.expected},
           {"observed", p.observed},
           {"ok", p.ok},
           {"established", p.established}};
  if (!p.error.empty()) out["error"] = p.error;
  return out;
}

}  // namespace

std::string probeFailureText(const StepRecord& step, const ProbeRecord& probe) {
  std::string text = "step " + std::to_string(step.index) + " (" + step.kind + ", " + step.phase +
                     "): " + probe.from + " -> " + probe.to + " " + probe.proto;
  if (probe.port) text += "/" + std::to_string(*probe.port);
  text += " " + probe.family;
  if (probe.established) text += " established";
  if (!probe.error.empty()) return text + ": the probe could not run: " + probe.error;
  return text + ": expected " + probe.expected + ", observed " + probe.observed;
}

nlohmann::ordered_json drillReportToJson(const DrillReport& report) {
  Json parameters = Json::object();
  for (const auto& [name, value] : report.parameters) parameters[name] = value;

  Json steps = Json::array();
  for (const StepRecord& s : report.steps) {
    steps.push_back(Json{{"index", s.index},
                         {"label", s.label},
                         {"do", s.kind},
                         {"phase", s.phase},
                         {"started_ms", s.started_ms},
                         {"ended_ms", s.ended_ms},
                         {"ok", s.ok},
                         {"detail", s.detail},
                         {"order_id", orNull(s.order_id)}});
  }
  Json gateways = Json::object();
  for (const auto& [id, g] : report.gateways) {
    Json transitions = Json::array();
    for (const TransitionRecord& t : g.transitions) transitions.push_back(transitionJson(t));
    gateways[id] = Json{{"time_to_cut_ms", orNull(g.time_to_cut_ms)},
                        {"time_to_restore_ms", orNull(g.time_to_restore_ms)},
                        {"transitions", std::move(transitions)}};
  }
  Json probes = Json::array();
  size_t management_probes = 0;
  size_t management_failures = 0;
  size_t established_checked = 0;
  size_t established_cut = 0;
  for (const ProbeRecord& p : report.probes) {
    probes.push_back(probeJson(p));
    if (p.to_controller) {
      ++management_probes;
      if (p.observed != "open") ++management_failures;
    }
    if (p.established && p.expected == "cut") {
      ++established_checked;
      if (p.observed == "cut") ++established_cut;
    }
  }
  Json faults = Json::array();
  for (const FaultRecord& f : report.faults) {
    faults.push_back(Json{{"step", f.step},
                          {"kind", f.kind},
                          {"gateway", orNull(f.gateway)},
                          {"at_ms", f.at_ms},
                          {"cut_held", orNull(f.cut_held)},
                          {"detail", f.detail}});
  }
  Json failures = Json::array();
  for (const std::string& failure : report.failures) failures.push_back(failure);
  Json continuous = nullptr;
  bool continuous_kept = true;
  if (const auto& watch = report.management_watch) {
    continuous =
        Json{{"pairs", watch->pairs},
             {"probes", watch->sent},
             {"ok", watch->ok},
             {"failed", watch->failed},
             {"first_failed_ms", orNull(watch->first_failed_ms)},
             {"excluded_because",
              watch->excluded_because.empty() ? Json(nullptr) : Json(watch->excluded_because)}};
    continuous_kept = watch->failed == 0 || !watch->excluded_because.empty();
  }

  return Json{{"report_version", kDrillReportVersion},
              {"verdict", report.passed() ? "pass" : "fail"},
              {"scenario", report.scenario},
              {"scenario_description", report.scenario_description},
              {"parameters", std::move(parameters)},
              {"policy", report.policy},
              {"policy_file", report.policy_file},
              {"policy_sha256", report.policy_sha256},
              {"lab", report.lab},
              {"started_at", formatRfc3339(report.started_at_ms)},
              {"duration_ms", report.duration_ms},
              {"steps", std::move(steps)},
              {"gateways", std::move(gateways)},
              {"probes", std::move(probes)},
              {"faults", std::move(faults)},
              // Management kept working: every expectation's probe to the controller held, and
              // the continuous watch lost nothing (unless a fault took it down on purpose).
              {"management",
               {{"kept_working", management_failures == 0 && continuous_kept},
                {"probes", management_probes},
                {"failures", management_failures},
                {"continuous", std::move(continuous)}}},
              {"established_flows", {{"checked", established_checked}, {"cut", established_cut}}},
              {"audit",
               {{"verified", report.audit.verified},
                {"entries", report.audit.entries},
                {"detail", report.audit.detail}}},
              {"failures", std::move(failures)}};
}

}  // namespace shadan::drill
