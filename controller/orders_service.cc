#include "controller/orders_service.h"

namespace shadan::controller {

OrdersService::OrdersService(const Policy& policy, const Trust& trust, const Signer& controller_key,
                             ControllerStore& store, AgentHub& channel, AuditSink& audit,
                             const Clock& clock, OrdersServiceOptions options)
    : context_(policy, trust, controller_key, store, channel, audit, clock, std::move(options)),
      delivery_(context_),
      approvals_(context_, delivery_),
      commands_(context_, approvals_, delivery_),
      views_(context_) {}

Result<OrderAccepted> OrdersService::isolate(const Caller& caller, const IsolateRequest& request) {
  return commands_.isolate(caller, request);
}

Result<OrderAccepted> OrdersService::restore(const Caller& caller, const RestoreRequest& request) {
  return commands_.restore(caller, request);
}

Result<nlohmann::json> OrdersService::previewIsolate(const Caller& caller,
                                                     const IsolateRequest& request) {
  SHADAN_ASSIGN_OR_RETURN(auto plan, commands_.planIsolate(caller, request));
  return views_.preview(plan);
}

Result<nlohmann::json> OrdersService::previewRestore(const Caller& caller,
                                                     const RestoreRequest& request) {
  SHADAN_ASSIGN_OR_RETURN(auto plan, commands_.planRestore(caller, request));
  return views_.preview(plan);
}

Result<nlohmann::json> OrdersService::pendingApprovals() {
  SHADAN_RETURN_IF_ERROR(sweep());
  return views_.pendingApprovals();
}

Result<ApprovalProgress> OrdersService::addApprovalSignature(const Caller& caller,
                                                             const std::string& approval_id,
                                                             const std::string& keyid,
                                                             const std::string& sig_base64) {
  // Refused callers are answered before the sweep writes anything.
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not approve");
  }
  // A lapsed approval must not collect signatures.
  SHADAN_RETURN_IF_ERROR(sweep());
  return approvals_.addSignature(caller, approval_id, keyid, sig_base64);
}

Result<nlohmann::json> OrdersService::status() {
  SHADAN_RETURN_IF_ERROR(sweep());
  return views_.status();
}

Result<nlohmann::json> OrdersService::order(const std::string& order_id) {
  SHADAN_RETURN_IF_ERROR(sweep());
  return views_.order(order_id);
}

Result<nlohmann::json> OrdersService::agents() { return views_.agents(); }

Status OrdersService::approveAgent(const Caller& caller, const std::string& agent_id,
                                   const std::string& reason) {
  return delivery_.approveAgent(caller, agent_id, reason);
}

void OrdersService::onHello(const AgentHello& hello) { delivery_.onHello(hello); }

Status OrdersService::onAck(const std::string& agent_id, const nlohmann::json& envelope,
                            const std::optional<Ed25519PublicKey>& verified_with) {
  return delivery_.onAck(agent_id, envelope, verified_with);
}

void OrdersService::onDisconnect(const std::string& agent_id) { delivery_.onDisconnect(agent_id); }

Status OrdersService::deliverCreatedElsewhere() { return delivery_.deliverCreatedElsewhere(); }

Status OrdersService::sweep() {
  // One instant for both: an approval and a dispatch lapsing together are treated alike.
  const int64_t now = context_.nowMs();
  SHADAN_RETURN_IF_ERROR(approvals_.expireLapsed(now));
  return delivery_.expireLapsed(now);
}

}  // namespace shadan::controller
