#pragma once

// The commands of the API: isolate and restore requests checked against role, policy and
// trust, turned into an authz, and either signed on behalf of the caller and dispatched (an
// unprotected isolate the trust file lets the controller sign) or left for operator
// signatures (controller/approvals.h).
//
// Contracts: as OrdersService (controller/orders_service.h), which owns one OrderCommands and
// is its only caller.

#include <cstdint>
#include <optional>
#include <string>

#include "common/orders.h"
#include "common/result.h"
#include "controller/approvals.h"
#include "controller/delivery.h"
#include "controller/order_types.h"
#include "controller/orders_context.h"

namespace shadan::controller {

class OrderCommands {
 public:
  // Everything passed must outlive the OrderCommands.
  OrderCommands(OrdersContext& context, Approvals& approvals, Delivery& delivery)
      : ctx_(context), approvals_(approvals), delivery_(delivery) {}

  Result<OrderAccepted> isolate(const Caller& caller, const IsolateRequest& request);
  Result<OrderAccepted> restore(const Caller& caller, const RestoreRequest& request);

 private:
  // Inside the caller's store transaction (it takes the segment's next generation).
  Result<BuiltAuthz> buildAuthz(const Caller& caller, OrderAction action,
                                const std::string& segment, const std::string& profile,
                                const std::string& reason, const std::optional<std::string>& ticket,
                                const std::optional<int64_t>& ttl_s, bool drill,
                                int64_t validity_s);

  OrdersContext& ctx_;
  Approvals& approvals_;
  Delivery& delivery_;
};

}  // namespace shadan::controller
