#pragma once

// The agent daemon's Prometheus metrics (docs/metrics.md lists every family and what to alert
// on), served on `run --metrics-listen ADDR` (common/metrics_server.h) from the daemon's one
// thread: each scrape reads the core's desired state and counts, the audit log and the link,
// on the thread that owns them. Nothing here counts on its own.

#include <functional>
#include <optional>
#include <string>

#include "agents/agent_core.h"
#include "common/audit_log.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace shadan::agent {

struct AgentMetricSources {
  const AgentCore& core;
  const AuditLog& audit;  // the gateway's own log
  const Clock& clock;
  // Whether the controller channel is up; absent for a standalone agent (no family then).
  std::function<bool()> controller_connected = {};
};

// Registers every agent family (and the process_* ones) in `registry`. Everything in `sources`
// must outlive the registry's renders.
void registerAgentMetrics(MetricsRegistry& registry, const AgentMetricSources& sources);

}  // namespace shadan::agent
