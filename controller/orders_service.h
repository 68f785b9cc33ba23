#pragma once

// The controller's order logic: API requests and agent messages in, signed orders, dispatches,
// approvals, store writes and audit entries out. No sockets and no threads: the API server and
// the agent hub call it, and tests drive it with a fake channel, a fake clock and a temp store.
//
// Contracts:
//   - Not thread-safe: call it from the controller's one io_context thread.
//   - Every state change is written to the store in one transaction and then audited (the audit
//     entry is durable before the caller answers the request).
//   - The controller signs an authz itself only as the trust file allows: an isolate of an
//     unprotected segment (or of hosts in one) "on behalf of" the caller
//     (isolate.controller_on_behalf). Restores, protected isolates and, by default, uplink and
//     island isolates (TrustThresholds::needsProtectedRule) wait for operator signatures
//     (distinct operator identities, each verified against the trust file over the exact PAE),
//     the requester among them, exactly as agents/orders/order_verifier.h will check them again
//     on every gateway.
//   - Dispatches are signed at delivery time (seq per agent, allocated on first delivery and
//     kept; the envelope re-signed with a fresh window when the old one lapsed), delivered in
//     creation order to connected, approved agents, kept pending otherwise, and marked expired
//     once their authz has expired.
//   - Errors map to API answers by code: kInvalidArgument/kParse 400, kPolicy 403 (refused by
//     role, trust or policy), kNotFound 404, kUnavailable 409 (not in a state that allows it),
//     anything else 500.
//
// A facade over the four parts of the work, each in its own file: order_commands.h (isolate,
// restore), approvals.h (operator signatures), delivery.h (dispatch fan-out, seq, acks,
// enrollment, hello and disconnect) and order_views.h (status and listings as JSON), sharing
// an OrdersContext (orders_context.h). The value types are in order_types.h.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/audit_sink.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/orders.h"
#include "common/policy.h"
#include "common/trust.h"
#include "controller/agent_hub.h"
#include "controller/approvals.h"
#include "controller/config.h"
#include "controller/delivery.h"
#include "controller/order_commands.h"
#include "controller/order_types.h"
#include "controller/order_views.h"
#include "controller/orders_context.h"
#include "controller/store.h"

namespace shadan::controller {

class OrdersService {
 public:
  // Everything passed by reference must outlive the service. `controller_key` signs dispatches
  // and on-behalf authz; its keyid must be a `controller` key of `trust`.
  OrdersService(const Policy& policy, const Trust& trust, const Signer& controller_key,
                ControllerStore& store, AgentHub& channel, AuditSink& audit, const Clock& clock,
                OrdersServiceOptions options);
  // The parts refer to each other and to the shared context: the service stays where it is.
  OrdersService(const OrdersService&) = delete;
  OrdersService& operator=(const OrdersService&) = delete;

  Result<OrderAccepted> isolate(const Caller& caller, const IsolateRequest& request);
  Result<OrderAccepted> restore(const Caller& caller, const RestoreRequest& request);
  // What isolate() / restore() would do with the same request, refused exactly alike; nothing
  // is stored, signed, sent or audited (OrderViews::preview).
  Result<nlohmann::json> previewIsolate(const Caller& caller, const IsolateRequest& request);
  Result<nlohmann::json> previewRestore(const Caller& caller, const RestoreRequest& request);

  // Pending approvals: [{"approval_id","order_id","payloadType","payload"(base64),"rule",
  // "needed","have","approvers","expires_at","action","scope","segment","profile",
  // "requested_by","reason"}].
  Result<nlohmann::json> pendingApprovals();
  // Adds one operator signature (`sig_base64` over PAE(payloadType, payload)) and dispatches
  // the order once the threshold is met.
  Result<ApprovalProgress> addApprovalSignature(const Caller& caller,
                                                const std::string& approval_id,
                                                const std::string& keyid,
                                                const std::string& sig_base64);

  Result<nlohmann::json> status();
  Result<nlohmann::json> order(const std::string& order_id);
  Result<nlohmann::json> agents();
  Status approveAgent(const Caller& caller, const std::string& agent_id, const std::string& reason);

  // From the agent hub.
  void onHello(const AgentHello& hello);
  // The DSSE ack envelope of an {"type":"ack"} message from the session of `agent_id`.
  // `verified_with`: see AgentHubCallbacks::on_ack (absent: the signature is checked here).
  Status onAck(const std::string& agent_id, const nlohmann::json& envelope,
               const std::optional<Ed25519PublicKey>& verified_with = std::nullopt);
  void onDisconnect(const std::string& agent_id);

  // Expires approvals and dispatches whose authz has lapsed. Called by a timer and before
  // status answers.
  Status sweep();
  // Several controllers on one store: delivers to this one's connected agents what another
  // controller created since the last call (Delivery::deliverCreatedElsewhere). By a timer.
  Status deliverCreatedElsewhere();

  // Seconds from sending a dispatch to storing its verified ack (Delivery::ackLatency).
  const Histogram& ackLatency() const { return delivery_.ackLatency(); }

 private:
  // Declared in construction order: each part refers only to those above it.
  OrdersContext context_;
  Delivery delivery_;
  Approvals approvals_;
  OrderCommands commands_;
  OrderViews views_;
};

}  // namespace shadan::controller
