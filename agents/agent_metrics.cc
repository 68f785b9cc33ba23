#include "agents/agent_metrics.h"

#include <algorithm>
#include <map>
#include <vector>

#include "common/isolation_scope.h"

namespace shadan::agent {

void registerAgentMetrics(MetricsRegistry& registry, const AgentMetricSources& sources) {
  const AgentCore& core = sources.core;
  registry.gauges("shadan_agent_info", "The agent's version and gateway, as labels; always 1.",
                  [&core] {
                    return std::vector<GaugeSample>{
                        {{{"version", SHADAN_VERSION}, {"gateway", core.gatewayId()}}, 1}};
                  });
  registry.gauges(
      "shadan_agent_isolations_active",
      "Isolations this gateway holds, by rung (segment, host, uplink, island); drills included.",
      [&core] {
        std::map<std::string, double> counts{
            {"segment", 0}, {"host", 0}, {"uplink", 0}, {"island", 0}};
        for (const ActiveIsolation& active : core.desired().isolations) {
          counts[isolationScopeName(active.isolation.scope)] += 1;
        }
        std::vector<GaugeSample> out;
        for (const auto& [scope, count] : counts) out.push_back({{{"scope", scope}}, count});
        return out;
      });
  registry.gauge("shadan_agent_drills_active", "Of those, drills (each ends on its own).", [&core] {
    return static_cast<double>(
        std::count_if(core.desired().isolations.begin(), core.desired().isolations.end(),
                      [](const ActiveIsolation& active) { return active.drill; }));
  });
  registry.counters(
      "shadan_agent_repairs_total",
      "Times the kernel did not hold this agent's table and it was applied again.", [&core] {
        return std::vector<GaugeSample>{{{}, static_cast<double>(core.repairCount())}};
      });
  registry.counters("shadan_agent_orders_total",
                    "Signed orders from the controller by the result of their ack.", [&core] {
                      std::vector<GaugeSample> out;
                      for (const auto& [result, count] : core.orderResults()) {
                        out.push_back({{{"result", result}}, static_cast<double>(count)});
                      }
                      return out;
                    });
  if (sources.controller_connected) {
    registry.gauge("shadan_agent_controller_connected",
                   "1 while the channel to the controller is up, else 0.",
                   [connected = sources.controller_connected] { return connected() ? 1.0 : 0.0; });
  }
  registerAuditLogMetrics(registry, "shadan_agent", "this gateway's", sources.audit, sources.clock);
  registerProcessMetrics(registry);
}

}  // namespace shadan::agent
