#pragma once

// The commands of the API: isolate and restore requests checked against role, policy and
// trust, turned into an authz, and either signed on behalf of the caller and dispatched (an
// isolate the trust file lets the controller sign) or left for operator signatures
// (controller/approvals.h).
//
// Every rung of the ladder (controller/order_target.h resolves what an order cuts and where it
// goes): an isolate needs the `isolate_protected` rule when
// TrustThresholds::needsProtectedRule(scope, segment protected) says so (by default uplink and
// island always, host and segment in a protected segment) — detectors are refused those, as
// they always were for protected segments; otherwise the controller signs on behalf of the
// caller when the trust file lets it. Restores always wait for the `restore` rule. The
// generation of an order is the next one of generationKey(scope, segment).
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
#include "controller/order_target.h"
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

  // Every check isolate() and restore() make before they store anything, and what they would
  // then do: the preview (POST /v1/isolate/preview) is exactly the order, refused alike.
  Result<OrderPlan> planIsolate(const Caller& caller, const IsolateRequest& request) const;
  Result<OrderPlan> planRestore(const Caller& caller, const RestoreRequest& request) const;

 private:
  // Inside the caller's store transaction (it takes the rung's next generation).
  Result<BuiltAuthz> buildAuthz(const Caller& caller, OrderAction action, const OrderTarget& target,
                                const std::string& profile, const std::string& reason,
                                const std::optional<std::string>& ticket,
                                const std::optional<int64_t>& ttl_s, bool drill,
                                int64_t validity_s);
  // Inside the caller's store transaction: signs `built` on behalf of its requester (the trust
  // file allows it; the caller checked) and records its dispatches.
  Result<OrderAccepted> signOnBehalf(BuiltAuthz built);
  // The audit entry of a request the controller accepted.
  AuditEvent requestedEvent(const Caller& caller, const char* action, const OrderTarget& target,
                            const std::string& profile, const std::string& reason,
                            const std::optional<std::string>& ticket, bool drill,
                            const OrderAccepted& accepted);

  OrdersContext& ctx_;
  Approvals& approvals_;
  Delivery& delivery_;
};

}  // namespace shadan::controller
