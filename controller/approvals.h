#pragma once

// Orders that wait for operator signatures: opening the approval (the order stored as
// awaiting_approval with the exact authz bytes to sign), adding verified signatures, and
// dispatching the order once the trust file's threshold is met with the requester among the
// signers; approvals that lapse are expired with their order.
//
// Contracts: as OrdersService (controller/orders_service.h), which owns one Approvals and is
// its only caller. Signatures are verified against the trust file over PAE(payloadType,
// payload) before they count; only distinct operator identities count.

#include <cstdint>
#include <string>

#include "common/orders.h"
#include "common/result.h"
#include "controller/delivery.h"
#include "controller/order_types.h"
#include "controller/orders_context.h"
#include "controller/store.h"

namespace shadan::controller {

// An authz and its exact serialised bytes (what is signed).
struct BuiltAuthz {
  Authz authz;
  std::string payload;
};

// The stored order for `built` (requested by its authz requested_by), in `state`, created and
// updated at `now` (Unix ms); no envelope yet (Delivery::recordDispatch adds it when the order is
// signed).
OrderRecord orderRecordOf(const BuiltAuthz& built, OrderState state, int64_t now);

class Approvals {
 public:
  // `context` and `delivery` must outlive the Approvals.
  Approvals(OrdersContext& context, Delivery& delivery) : ctx_(context), delivery_(delivery) {}

  // Inside the caller's store transaction: stores the order as awaiting approval and its
  // approval under `rule`, needing `needed` distinct operators.
  Result<OrderAccepted> open(BuiltAuthz built, const std::string& rule, int needed);
  // Adds one operator signature (`sig_base64` over PAE(payloadType, payload)) and dispatches
  // the order once the threshold is met. The caller has checked the role and swept.
  Result<ApprovalProgress> addSignature(const Caller& caller, const std::string& approval_id,
                                        const std::string& keyid, const std::string& sig_base64);
  // Expires pending approvals (and their orders) that lapsed by `now` (Unix ms).
  Status expireLapsed(int64_t now);

 private:
  OrdersContext& ctx_;
  Delivery& delivery_;
};

}  // namespace shadan::controller
