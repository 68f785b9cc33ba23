#pragma once

// The controller's Prometheus metrics (docs/metrics.md lists every family and what to alert
// on): read from the store, the hub, the audit log and the alert responder at each scrape, on
// the core thread (GET /metrics is routed there; the separate `metrics_listen` listener runs on
// the core io_context too). Nothing here counts on its own: the components keep their counts,
// this only names them.
//
// A store that cannot be read at a scrape leaves its families without samples (logged); the
// scrape itself still answers, so Prometheus sees the gap rather than a stale number.

#include <cstddef>
#include <functional>
#include <string_view>

#include "common/audit_log.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "controller/store.h"

namespace shadan::controller {

class AlertResponder;
class OrdersService;

struct ControllerMetricSources {
  ControllerStore& store;
  const OrdersService& orders;  // its dispatch → ack histogram
  const AuditLog& audit;        // the controller's own log
  const Clock& clock;
  std::function<size_t()> connected_agents;   // WebSocketAgentHub::connectedCount
  std::function<size_t()> audit_alarms;       // AuditMirror::alarms().size()
  const AlertResponder* responder = nullptr;  // none: no alert family
};

// The rung ("segment", "host", "uplink", "island") of a key of the store's segments table
// (generationKey() in common/isolation_scope.h: "@uplink", "host:office", "office").
const char* scopeOfGenerationKey(std::string_view key);

// Registers every controller family (and the process_* ones) in `registry`. Everything in
// `sources` must outlive the registry's renders.
void registerControllerMetrics(MetricsRegistry& registry, const ControllerMetricSources& sources);

}  // namespace shadan::controller
