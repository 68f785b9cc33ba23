#pragma once

// The per-gateway state of an order as the controller reports it, and the table operators read
// it in: `shadanctl status --order ID` and `shadanctl isolate --wait` print the same table.

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace shadan {

struct GatewayRow {
  std::string gateway;
  std::string state;
  std::string applied_at = "-";
  std::string ruleset = "-";
  std::string reason = "-";
  // The controller's clock: when the dispatch went out, and when its ack (or expiry) came.
  std::optional<int64_t> sent_ms;
  std::optional<int64_t> updated_ms;
};

// The gateway answered (or its dispatch expired): the state will not change any more.
bool isFinalGatewayState(const std::string& state);
// The gateway applied the order (now or before).
bool isAppliedGatewayState(const std::string& state);

// Per-gateway rows of an order answer: {"gateways":{id:{...}}} or {"gateways":[{"gateway"|
// "agent_id"|"id":..., ...}]}, possibly under "order". Empty when the answer names none.
std::vector<GatewayRow> gatewayRows(const nlohmann::json& order);

// GATEWAY STATE APPLIED_AT ACK_MS RULESET REASON, then the dispatch -> last ack time once
// every gateway answered.
void printGatewayTable(std::ostream& out, const std::vector<GatewayRow>& rows);

}  // namespace shadan
