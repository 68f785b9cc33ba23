#pragma once

// The per-gateway state of an order as the controller reports it, and the table operators read
// it in: `shadanctl status --order ID` and `shadanctl isolate --wait` print the same table, and
// `shadanctl isolate` and `status` name the gateways that have not applied an order the same
// way ("edge-gw queued (gateway offline)"). Also what an order cuts, in words, and the
// escalation ladder of each gateway (`shadanctl status`).

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/orders.h"

namespace shadan {

struct GatewayRow {
  std::string gateway;
  // What the gateway's acks say: the controller's "delivery" (queued, pending, applied, ...),
  // or its stored dispatch "state" from a controller that reports no delivery.
  std::string state;
  std::string note = "-";       // why a queued order was not sent ("gateway offline")
  bool delivery_known = false;  // the controller reported "delivery" (queued vs sent is known)
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

// GATEWAY STATE APPLIED_AT ACK_MS RULESET REASON (a queued row's note as its reason), then the
// dispatch -> last ack time once every gateway answered.
void printGatewayTable(std::ostream& out, const std::vector<GatewayRow>& rows);

// "edge-gw queued (gateway offline)", "core-gw pending (sent, no ack yet)", "inet-gw rejected
// (old_segment_gen)", "core-gw applied".
std::string describeGateway(const GatewayRow& row);
// describeGateway of the rows `pick` selects, joined by ", "; "" when none.
std::string describeGateways(const std::vector<GatewayRow>& rows, bool (*pick)(const GatewayRow&));

// What is true of an order, from its rows, in one line: "applied on every gateway (a, b)", or
// "applied on: a; not yet applied: b queued (gateway offline); failed on: c rejected (...)".
std::string orderFactsText(const std::vector<GatewayRow>& rows);

// What an order cuts, from an order or accepted answer ({"scope","segment","hosts",
// "link_down"}): the segment's name for a segment order (or an answer without "scope"),
// "host 10.20.0.5 in lgwan", "hosts 10.20.0.5, 10.20.0.6 in lgwan", "uplink", "uplink (links
// down)", "island". "-" when the answer names nothing.
std::string orderTargetText(const nlohmann::json& order);
// The same for an authz.
std::string authzTargetText(const Authz& authz);

// Whether any gateway of a status answer's "gateways" object reports a "ladder".
bool hasLadder(const nlohmann::json& gateways);
// GATEWAY SEGMENTS HOSTS UPLINK ISLAND NOT_ACKED: per gateway, the rungs its last ack says hold
// ("lgwan:full"; "lgwan 10.20.0.5,10.20.0.6 (+3 more)"; "CUT" / "CUT, LINKS DOWN"; "ISLAND")
// and the orders it has not acked ("isolate host lgwan").
void printLadderTable(std::ostream& out, const nlohmann::json& gateways);

}  // namespace shadan
