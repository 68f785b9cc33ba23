#pragma once

// The read side of the order logic: status, one order, the agents and the pending approvals,
// as the JSON the HTTPS API answers. Reads the store and the channel's connection state and
// changes nothing; OrdersService sweeps lapsed approvals and dispatches first where an answer
// must not show them as still pending.

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "controller/orders_context.h"
#include "controller/store.h"

namespace shadan::controller {

class OrderViews {
 public:
  // `context` must outlive the OrderViews.
  explicit OrderViews(OrdersContext& context) : ctx_(context) {}

  // {"segments","gateways","orders"}: every policy segment and gateway, the recent orders.
  Result<nlohmann::json> status();
  // One order with its per-gateway dispatches, acks and approval.
  Result<nlohmann::json> order(const std::string& order_id);
  Result<nlohmann::json> agents();
  Result<nlohmann::json> pendingApprovals();

 private:
  Result<nlohmann::json> orderJson(const OrderRecord& order, bool with_acks);

  OrdersContext& ctx_;
};

}  // namespace shadan::controller
