#pragma once

// The read side of the order logic: status, one order, the agents and the pending approvals,
// as the JSON the HTTPS API answers. Reads the store and the channel's connection state and
// changes nothing; OrdersService sweeps lapsed approvals and dispatches first where an answer
// must not show them as still pending.
//
// Facts, not intent: what these answers call applied, isolated or open is what the gateways'
// verified acks say, never what was asked for.
//   - Per gateway of an order, "delivery": queued (stored, not sent: the gateway is offline,
//     never connected or not approved; "note" says which), pending (sent on the gateway's
//     current session, no ack yet), applied, already_applied, rejected, failed, expired (the
//     authz lapsed without an ack), awaiting_approval (not dispatched yet).
//   - Per order, "outcome" over its gateways: applied (every one), partial (some), pending
//     (none yet, some sent), queued (none yet, none sent), lapsed (an isolate with a ttl that
//     has passed everywhere it applied), expired, failed (none applied, none still waiting),
//     awaiting_approval; and "counts".
//   - Per segment in status, "state" from the segment's latest dispatched order (the newest,
//     hence the highest segment_gen, which is the one the agents hold): isolated (an isolate
//     every target applied), open (no order, or a restore every target applied), partial,
//     pending, queued, lapsed, failed, unknown (its last order is older than the orders
//     status reads). The older "isolated" boolean keeps its meaning: the latest dispatched
//     order is an isolate (requested, not confirmed). Only segment orders count here: host,
//     uplink and island orders show in the gateways' ladders.
//   - Per gateway in status, "ladder": the rungs of the escalation ladder its last verified ack
//     says hold, and the orders it has not acked (controller/gateway_ladder.h).
//   - Orders carry "scope" (and "hosts" for host orders, "link_down" for uplink isolates);
//     "segment" is null for uplink and island.

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "controller/order_types.h"
#include "controller/orders_context.h"
#include "controller/store.h"

namespace shadan::controller {

struct Sessions;  // where each gateway's session is (order_views.cc)

class OrderViews {
 public:
  // `context` must outlive the OrderViews.
  explicit OrderViews(OrdersContext& context) : ctx_(context) {}

  // {"segments","gateways","orders"}: every policy segment with its fact-based state, every
  // gateway, the recent orders.
  Result<nlohmann::json> status();
  // One order with its per-gateway dispatches, acks, delivery facts and approval.
  Result<nlohmann::json> order(const std::string& order_id);
  Result<nlohmann::json> agents();
  Result<nlohmann::json> pendingApprovals();
  // What an order would do before it is sent (POST /v1/isolate/preview, /v1/restore/preview):
  // {"action","scope","segment","hosts","profile","ttl_s","drill","signing","gateways","cuts",
  //  "keeps","notes"}. "gateways" are the targets with their link and enrollment as of now;
  // "keeps" the management flows (always) and the profile's allow list (isolates) that stay
  // open; "notes" what the operator should know before sending (a gateway offline, signatures
  // needed). Reads only the policy, the trust file, the store's agents and the channel.
  Result<nlohmann::json> preview(const OrderPlan& plan);

 private:
  Result<nlohmann::json> orderJson(const OrderRecord& order, bool with_acks,
                                   const std::vector<AgentRecord>& agents,
                                   const Sessions& sessions);

  OrdersContext& ctx_;
};

}  // namespace shadan::controller
