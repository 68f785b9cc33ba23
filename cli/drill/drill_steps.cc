// The wait, fault and alert steps of DrillRunner (drill_runner.h).

#include <algorithm>
#include <chrono>
#include <thread>

#include "cli/controller_context.h"
#include "cli/drill/drill_run_internal.h"
#include "cli/gateway_table.h"
#include "common/clock.h"

namespace shadan::drill {
namespace {

using Json = nlohmann::json;

constexpr auto kWaitPoll = std::chrono::milliseconds(20);
constexpr auto kControllerStart = std::chrono::seconds(20);

// A stand-in for the side of an EVE alert the step does not name (EVE needs both).
std::string documentationAddress(IpFamily family) {
  return family == IpFamily::kV4 ? "192.0.2.1" : "2001:db8::1";
}

int eveSeverity(controller::AlertSeverity severity) {
  switch (severity) {
    case controller::AlertSeverity::kLow:
      return 3;
    case controller::AlertSeverity::kMedium:
      return 2;
    default:
      return 1;
  }
}

}  // namespace

Status DrillRunner::Impl::runWait(const WaitStep& wait, StepRecord& record) {
  if (wait.ms) {
    if (!sleepFor(Ms(*wait.ms))) return makeError(ErrorCode::kUnavailable, "interrupted");
    record.detail = "waited " + std::to_string(*wait.ms) + " ms";
    return okStatus();
  }
  const auto deadline = std::chrono::steady_clock::now() + Ms(wait.timeout_ms);
  std::string detail;
  for (;;) {
    if (interrupted_) return makeError(ErrorCode::kUnavailable, "interrupted");
    detail.clear();
    auto holds = waitHolds(wait, detail);
    if (holds.ok() && *holds) break;
    // A definite no (an order rejected on a gateway): no point in waiting on.
    if (!holds.ok() && holds.error().code == ErrorCode::kState) {
      fail(record, holds.error().message);
      record.detail = holds.error().message;
      return okStatus();
    }
    if (!holds.ok()) detail = holds.error().message;
    if (std::chrono::steady_clock::now() >= deadline) {
      fail(record, std::string(waitConditionName(*wait.until)) + " did not hold within " +
                       std::to_string(wait.timeout_ms) + " ms: " + detail);
      record.detail = detail;
      return okStatus();
    }
    std::this_thread::sleep_for(kWaitPoll);
  }
  record.detail = std::string(waitConditionName(*wait.until)) + ": " + detail;
  say("  " + record.detail);
  return okStatus();
}

Result<bool> DrillRunner::Impl::waitHolds(const WaitStep& wait, std::string& detail) {
  switch (*wait.until) {
    case WaitCondition::kAcked:
    case WaitCondition::kApplied: {
      if (!latest_order_) return makeError(ErrorCode::kState, "no order was made before");
      SHADAN_ASSIGN_OR_RETURN(auto order, getOrder(latest_order_->order_id));
      const std::vector<GatewayRow> rows = gatewayRows(order);
      const bool all_final = !rows.empty() && std::all_of(rows.begin(), rows.end(), [](auto& r) {
        return isFinalGatewayState(r.state);
      });
      if (!all_final) {
        detail = "order " + latest_order_->order_id + ": " + orderFactsText(rows);
        return false;
      }
      SHADAN_ASSIGN_OR_RETURN(detail, refreshOrder(*latest_order_));
      detail = "order " + latest_order_->order_id + ": " + detail;
      const bool all_applied = std::all_of(rows.begin(), rows.end(),
                                           [](auto& r) { return isAppliedGatewayState(r.state); });
      if (*wait.until == WaitCondition::kApplied && !all_applied) {
        return makeError(ErrorCode::kState, "not applied on every gateway: " + detail);
      }
      return true;
    }
    case WaitCondition::kConnected: {
      SHADAN_ASSIGN_OR_RETURN(bool connected, fleet_->agentsAre("approved"));
      detail = connected ? "every agent connected" : "not every agent is connected";
      return connected;
    }
    case WaitCondition::kSegmentIsolated: {
      SHADAN_ASSIGN_OR_RETURN(auto answer, fleet_->api(kDrillOperators[0], "GET", "/v1/status"));
      if (!answer.ok()) {
        return makeError(ErrorCode::kUnavailable, "GET /v1/status: " + answer.errorSummary());
      }
      Json segment;
      if (answer.body.contains("segments") && answer.body["segments"].is_object() &&
          answer.body["segments"].contains(wait.segment)) {
        segment = answer.body["segments"][wait.segment];
      }
      const bool isolated = segment.is_object() && segment.value("isolated", false);
      const int64_t applied = segment.is_object() ? segment.value("applied", int64_t{0}) : 0;
      const int64_t gateways = segment.is_object() ? segment.value("gateways", int64_t{0}) : 0;
      detail = wait.segment + (isolated ? " isolated" : " not isolated") + ", applied on " +
               std::to_string(applied) + " of " + std::to_string(gateways) + " gateways";
      return isolated && gateways > 0 && applied >= gateways;
    }
    case WaitCondition::kLapsed: {
      if (!latest_isolate_) return makeError(ErrorCode::kState, "no isolate was made before");
      SHADAN_ASSIGN_OR_RETURN(auto order, getOrder(latest_isolate_->order_id));
      size_t with_ttl = 0;
      size_t lapsed = 0;
      const Json gateways = order.contains("gateways") && order["gateways"].is_object()
                                ? order["gateways"]
                                : Json::object();
      for (const Json& entry : gateways) {
        if (!entry.is_object() || !entry.contains("lapsed")) continue;
        ++with_ttl;
        if (entry.value("lapsed", false)) ++lapsed;
      }
      detail = "order " + latest_isolate_->order_id + " lapsed on " + std::to_string(lapsed) +
               " of " + std::to_string(with_ttl) + " gateways";
      return with_ttl > 0 && lapsed == with_ttl;
    }
  }
  return false;
}

Status DrillRunner::Impl::runFault(size_t index, const FaultStep& fault, StepRecord& record) {
  FaultRecord out;
  out.step = index;
  out.kind = faultKindName(fault.kind);
  if (!fault.gateway.empty()) out.gateway = fault.gateway;
  out.at_ms = nowMs();
  const std::string ns = fault.gateway.empty() ? "" : fleet_->gatewayNetns(fault.gateway);
  const auto flush = [&]() -> Status {
    auto ran = runChecked(runner_, {"ip", "netns", "exec", ns, "nft", "flush", "ruleset"});
    if (!ran.ok()) return ran.error();
    return okStatus();
  };
  const auto blackholes = [&](const char* verb) -> Status {
    for (const std::string& address : controller_addresses_) {
      const std::string host = address + (address.find(':') == std::string::npos ? "/32" : "/128");
      auto ran = runChecked(runner_, {"ip", "-n", ns, "route", verb, "blackhole", host});
      if (!ran.ok()) return ran.error();
    }
    return okStatus();
  };
  switch (fault.kind) {
    case FaultKind::kKillAgent:
      SHADAN_RETURN_IF_ERROR(fleet_->stopAgent(fault.gateway, SIGKILL));
      out.detail = "kill -9 shadan-agent on " + fault.gateway;
      break;
    case FaultKind::kRestartAgent:
      SHADAN_RETURN_IF_ERROR(fleet_->stopAgent(fault.gateway, SIGTERM));
      SHADAN_RETURN_IF_ERROR(fleet_->startAgent(fault.gateway));
      out.detail = "shadan-agent on " + fault.gateway + " stopped (SIGTERM) and started again";
      break;
    case FaultKind::kFlushRuleset:
      SHADAN_RETURN_IF_ERROR(flush());
      out.detail = "nft flush ruleset on " + fault.gateway;
      break;
    case FaultKind::kStopController:
      SHADAN_RETURN_IF_ERROR(fleet_->stopController());
      out.detail = "shadan-controller stopped (SIGTERM)";
      break;
    case FaultKind::kStartController:
      SHADAN_RETURN_IF_ERROR(fleet_->startController(kControllerStart));
      out.detail = "shadan-controller started again with its state";
      break;
    case FaultKind::kPartition:
      SHADAN_RETURN_IF_ERROR(blackholes("add"));
      partitioned_.push_back(fault.gateway);
      out.detail = "blackhole routes to the controller on " + fault.gateway;
      break;
    case FaultKind::kHeal:
      if (std::find(partitioned_.begin(), partitioned_.end(), fault.gateway) !=
          partitioned_.end()) {
        SHADAN_RETURN_IF_ERROR(blackholes("del"));
        std::erase(partitioned_, fault.gateway);
      }
      out.detail = "routes to the controller restored on " + fault.gateway;
      break;
    case FaultKind::kReboot:
      SHADAN_RETURN_IF_ERROR(fleet_->stopAgent(fault.gateway, SIGKILL));
      SHADAN_RETURN_IF_ERROR(flush());
      SHADAN_RETURN_IF_ERROR(fleet_->startAgent(fault.gateway));
      out.detail = "reboot of " + fault.gateway +
                   ": shadan-agent killed, ruleset flushed, shadan-agent started";
      break;
  }
  // cut_held stays null: the continuous prober (cli/lab/prober.*) says whether the cut held
  // through the fault; the expect steps after it say so for their probes.
  record.detail = out.detail;
  say("  " + out.detail);
  report_.faults.push_back(std::move(out));
  return okStatus();
}

Status DrillRunner::Impl::runAlert(size_t index, const AlertStep& alert, StepRecord& record) {
  const auto address = [&](const std::optional<Endpoint>& end) -> std::optional<std::string> {
    if (!end) return std::nullopt;
    const ProbeFamily family =
        alert.family == IpFamily::kV4 ? ProbeFamily::kIpv4 : ProbeFamily::kIpv6;
    auto addresses = addressesOf(*end, family);
    if (addresses.empty()) return std::nullopt;
    std::string first = addresses.front();
    if (const size_t slash = first.find('/'); slash != std::string::npos) first.resize(slash);
    return first;
  };
  const std::optional<std::string> src = address(alert.src);
  const std::optional<std::string> dst = address(alert.dst);
  if (!src && !dst) return makeError(ErrorCode::kNotFound, "the lab has no address for the alert");
  const int64_t now_unix = toUnixMillis(std::chrono::system_clock::now());
  Json record_json;
  RawApiRequest request;
  switch (alert.format) {
    case controller::AlertFormat::kShadan:
      record_json = {
          {"source", alert.detector}, {"rule", alert.rule}, {"time", formatRfc3339(now_unix)}};
      if (src) record_json["src_ip"] = *src;
      if (dst) record_json["dst_ip"] = *dst;
      if (alert.severity) record_json["severity"] = controller::alertSeverityName(*alert.severity);
      if (alert.title) record_json["detail"] = *alert.title;
      request.path = "/v1/alerts?format=shadan";
      request.content_type = "application/vnd.shadan.alert+json";
      break;
    case controller::AlertFormat::kEve: {
      std::string timestamp = formatRfc3339(now_unix);
      timestamp.back() = '+';  // Suricata writes "...123+0000", not "Z"
      timestamp += "0000";
      record_json = {
          {"timestamp", timestamp},
          {"event_type", "alert"},
          {"src_ip", src.value_or(documentationAddress(alert.family))},
          {"dest_ip", dst.value_or(documentationAddress(alert.family))},
          {"proto", "TCP"},
          {"alert",
           {{"signature_id", alert.signature_id.value_or(0)},
            {"signature", alert.title.value_or("drill alert")},
            {"severity", eveSeverity(alert.severity.value_or(controller::AlertSeverity::kHigh))}}}};
      request.path = "/v1/alerts?format=eve";
      request.content_type = "application/vnd.suricata.eve+json";
      break;
    }
    case controller::AlertFormat::kZeek:
      record_json = {{"ts", static_cast<double>(now_unix) / 1000.0},
                     {"note", alert.note},
                     {"msg", alert.title.value_or("drill alert")}};
      if (src) record_json["src"] = *src;
      if (dst) record_json["dst"] = *dst;
      request.path = "/v1/alerts?format=zeek";
      request.content_type = "application/vnd.zeek.notice+json";
      break;
  }
  request.body = record_json.dump() + "\n";
  const int64_t sent = nowMs();
  SHADAN_ASSIGN_OR_RETURN(auto answer, fleet_->apiRaw(alert.detector, request));
  if (!answer.response.ok()) {
    fail(record, "the controller refused the alert: " + answer.response.errorSummary());
    return okStatus();
  }
  const Json results = answer.response.body.value("results", Json::array());
  const Json first = results.empty() ? Json::object() : results[0];
  const std::string decision = jsonText(first, "decision");
  record.detail =
      "alert from " + alert.detector + ": " + decision + " (" + jsonText(first, "reason") + ")";
  const std::string order_id = jsonText(first, "order_id");
  if (isSafePathSegment(order_id)) {
    record.order_id = order_id;
    TrackedOrder tracked{order_id, index, "isolate", sent};
    orders_.push_back(tracked);
    latest_order_ = tracked;
    latest_isolate_ = tracked;
  }
  say("  " + record.detail);
  return okStatus();
}

}  // namespace shadan::drill
