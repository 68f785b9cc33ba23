#include "controller/controller_metrics.h"

#include <map>
#include <string>
#include <vector>

#include "common/isolation_scope.h"
#include "common/logging.h"
#include "controller/alert_responder.h"
#include "controller/orders_service.h"

namespace shadan::controller {
namespace {

std::vector<GaugeSample> byLabel(const char* label, const std::map<std::string, int64_t>& counts) {
  std::vector<GaugeSample> out;
  for (const auto& [value, count] : counts) {
    out.push_back(GaugeSample{{{label, value}}, static_cast<double>(count)});
  }
  return out;
}

}  // namespace

const char* scopeOfGenerationKey(std::string_view key) {
  // Asked of generationKey() itself, so the key format is written in one place only.
  for (const IsolationScope scope : {IsolationScope::kUplink, IsolationScope::kIsland}) {
    if (key == generationKey(scope, "")) return isolationScopeName(scope);
  }
  if (key.starts_with(generationKey(IsolationScope::kHost, ""))) {
    return isolationScopeName(IsolationScope::kHost);
  }
  return isolationScopeName(IsolationScope::kSegment);
}

void registerControllerMetrics(MetricsRegistry& registry, const ControllerMetricSources& sources) {
  ControllerStore& store = sources.store;
  registry.gauges("shadan_controller_info", "The controller's version, as a label; always 1.", [] {
    return std::vector<GaugeSample>{{{{"version", SHADAN_VERSION}}, 1}};
  });
  registry.gauges("shadan_orders", "Orders in the store by state.", [&store] {
    auto counts = store.orderCounts();
    if (!counts.ok()) {
      logger("metrics")->warn("event=metrics_store_error error=\"{}\"", counts.error().message);
      return std::vector<GaugeSample>{};
    }
    return byLabel("state", *counts);
  });
  registry.gauges("shadan_dispatches", "Dispatches (one order to one gateway) by state.", [&store] {
    auto counts = store.dispatchCounts();
    if (!counts.ok()) return std::vector<GaugeSample>{};
    return byLabel("state", *counts);
  });
  registry.gauges("shadan_isolations_active",
                  "Isolations in force as last ordered, by rung (segment, host, uplink, island).",
                  [&store] {
                    std::map<std::string, int64_t> counts{
                        {"segment", 0}, {"host", 0}, {"uplink", 0}, {"island", 0}};
                    auto segments = store.listSegments();
                    if (!segments.ok()) return std::vector<GaugeSample>{};
                    for (const SegmentRecord& record : *segments) {
                      if (record.isolated) ++counts[scopeOfGenerationKey(record.segment)];
                    }
                    return byLabel("scope", counts);
                  });
  registry.histogramOf("shadan_dispatch_ack_seconds",
                       "Seconds from sending a dispatch to storing the gateway's verified ack.",
                       sources.orders.ackLatency());
  registry.gauge("shadan_agents_connected", "Agents connected now (hello accepted).",
                 [count = sources.connected_agents] { return static_cast<double>(count()); });
  registerAuditLogMetrics(registry, "shadan", "the controller's", sources.audit, sources.clock);
  registry.gauge("shadan_audit_alarms",
                 "Standing alarms about the gateways' shipped audit logs (broken chain, gap).",
                 [count = sources.audit_alarms] { return static_cast<double>(count()); });
  if (sources.responder != nullptr) {
    registry.counters("shadan_alert_decisions_total",
                      "Detectors' alerts by the decision taken on them.",
                      [responder = sources.responder] {
                        std::map<std::string, int64_t> decisions;
                        for (const auto& [name, count] : responder->decisionCounts()) {
                          if (name != "requests_over_limit") decisions[name] = count;
                        }
                        return byLabel("decision", decisions);
                      });
    registry.counters("shadan_alert_requests_over_limit_total",
                      "Alert requests refused (429) for a detector over its intake limit.",
                      [responder = sources.responder] {
                        const auto& counts = responder->decisionCounts();
                        const auto it = counts.find("requests_over_limit");
                        return std::vector<GaugeSample>{
                            {{}, it == counts.end() ? 0.0 : static_cast<double>(it->second)}};
                      });
  }
  registerProcessMetrics(registry);
}

}  // namespace shadan::controller
