#include "controller/approvals.h"

#include <algorithm>

#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan::controller {

using nlohmann::json;

OrderRecord orderRecordOf(const BuiltAuthz& built, OrderState state, int64_t now) {
  OrderRecord order;
  order.command_id = built.authz.command_id;
  order.action = orderActionName(built.authz.action);
  order.scope = built.authz.scope;
  order.segment = built.authz.segment;
  order.profile = built.authz.profile;
  order.requested_by = built.authz.requested_by;  // OrdersContext::requesterOf(caller)
  order.reason = built.authz.reason;
  order.ticket = built.authz.ticket;
  order.drill = built.authz.drill;
  order.state = state;
  order.authz_payload = built.payload;
  order.targets = built.authz.targets;
  order.expires_at_ms = built.authz.expires_at_ms;
  order.created_ms = now;
  order.updated_ms = now;
  return order;
}

Result<OrderAccepted> Approvals::open(BuiltAuthz built, const std::string& rule, int needed) {
  const int64_t now = ctx_.nowMs();
  const OrderRecord order = orderRecordOf(built, OrderState::kAwaitingApproval, now);
  SHADAN_RETURN_IF_ERROR(ctx_.store.putOrder(order));
  ApprovalRecord approval;
  approval.approval_id = order.command_id;
  approval.command_id = order.command_id;
  approval.payload_type = std::string(kAuthzPayloadType);
  approval.payload = built.payload;
  approval.rule = rule;
  approval.needed = needed;
  approval.created_ms = now;
  approval.expires_ms = built.authz.expires_at_ms;
  SHADAN_RETURN_IF_ERROR(ctx_.store.putApproval(approval));
  return OrderAccepted{
      order.command_id, "awaiting_approval", order.targets, order.command_id, needed, 0};
}

Result<ApprovalProgress> Approvals::addSignature(const Caller& caller,
                                                 const std::string& approval_id,
                                                 const std::string& keyid,
                                                 const std::string& sig_base64) {
  SHADAN_ASSIGN_OR_RETURN(auto found, ctx_.store.getApproval(approval_id));
  if (!found.has_value()) {
    return makeError(ErrorCode::kNotFound, "no approval " + quoteForMessage(approval_id));
  }
  ApprovalRecord approval = std::move(*found);
  if (approval.state != ApprovalState::kPending) {
    return conflict("approval " + approval_id + " is " + approvalStateName(approval.state));
  }
  auto sig = base64Decode(sig_base64);
  if (!sig.ok()) return badRequest("sig: not canonical base64");
  if (sig->size() != kEd25519SignatureBytes) return badRequest("sig: not 64 bytes");
  SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(approval.command_id));
  if (!order.has_value()) return makeError(ErrorCode::kInternal, "approval without its order");
  OrderRecord order_record = std::move(*order);
  const TrustKey* key = ctx_.trust.findKey(keyid);
  if (key == nullptr)
    return forbidden("keyid: key " + quoteForMessage(keyid) + " is not in the trust file");
  if (!key->signsAsOperator(order_record.drill)) {
    return forbidden(
        "keyid: key of " + key->identity + " is not an operator key" +
        (key->hasRole(TrustRole::kDrill) ? " (a drill key signs drill orders only)" : ""));
  }
  if (!ed25519Verify(key->public_key, dssePae(approval.payload_type, approval.payload), *sig)) {
    // The refusal is the answer; a failed audit append is logged by ctx_.audit().
    (void)ctx_.audit(AuditEventBuilder("approval_signature_refused")
                         .outcome("rejected")
                         .reason("signature does not verify")
                         .requestedBy(caller.identity())
                         .keyids({keyid})
                         .command(approval.command_id)
                         .markDrill(order_record.drill)
                         .build());
    return badRequest("sig: signature by " + key->identity +
                      " does not verify over the approval's payload");
  }
  const bool known = std::any_of(approval.signatures.begin(), approval.signatures.end(),
                                 [&](const DsseSignature& s) { return s.keyid == keyid; });
  if (!known) {
    if (approval.signatures.size() >= kDsseMaxSignatures) {
      return conflict("approval " + approval_id + " already holds the maximum of signatures");
    }
    approval.signatures.push_back(DsseSignature{keyid, *sig});
  }
  const std::vector<std::string> approvers =
      ctx_.operatorIdentities(approval.signatures, order_record.drill);
  const bool requester_signed =
      std::find(approvers.begin(), approvers.end(), order_record.requested_by) != approvers.end();
  const bool met = static_cast<int>(approvers.size()) >= approval.needed && requester_signed;
  ApprovalProgress progress{approval.approval_id,
                            approval.command_id,
                            met ? "complete" : "pending",
                            approval.needed,
                            static_cast<int>(approvers.size()),
                            approvers};

  std::vector<std::string> keyids;
  for (const auto& s : approval.signatures) keyids.push_back(s.keyid);
  // The signature (and, once met, the dispatches) and its audit entry are one: nothing is
  // stored, nor later delivered, that the audit log does not show.
  SHADAN_RETURN_IF_ERROR_TX(ctx_.auditedTransaction([&]() -> Result<AuditEvent> {
    if (met) approval.state = ApprovalState::kComplete;
    SHADAN_RETURN_IF_ERROR(ctx_.store.putApproval(approval));
    if (met) {
      DsseEnvelope envelope{approval.payload_type, approval.payload, approval.signatures};
      SHADAN_RETURN_IF_ERROR(delivery_.recordDispatch(order_record, envelope));
    }
    return AuditEventBuilder(met ? "order_approved" : "approval_signature_added")
        .outcome(progress.state)
        .requestedBy(order_record.requested_by)
        .approvers(approvers)
        .keyids(keyids)
        .what(order_record.action, order_record.segment, order_record.profile)
        .why(order_record.reason, order_record.ticket)
        .command(approval.command_id)
        .authzSha256(sha256Hex(approval.payload))
        .markDrill(order_record.drill)
        .detail(json{{"submitted_by", caller.identity()},
                     {"signer", key->identity},
                     {"needed", approval.needed},
                     {"requester_signed", requester_signed}})
        .build();
  }));
  if (met) delivery_.deliverOrder(order_record.command_id, order_record.targets);
  return progress;
}

Status Approvals::expireLapsed(int64_t now) {
  SHADAN_ASSIGN_OR_RETURN(auto approvals, ctx_.store.pendingApprovals());
  for (auto& approval : approvals) {
    if (now < approval.expires_ms) continue;
    approval.state = ApprovalState::kExpired;
    bool drill = false;
    SHADAN_RETURN_IF_ERROR_TX(ctx_.store.transaction([&]() -> Status {
      SHADAN_RETURN_IF_ERROR(ctx_.store.putApproval(approval));
      SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(approval.command_id));
      if (!order.has_value()) return okStatus();
      drill = order->drill;
      order->state = OrderState::kExpired;
      order->updated_ms = now;
      return ctx_.store.putOrder(*order);
    }));
    SHADAN_RETURN_IF_ERROR(ctx_.audit(AuditEventBuilder("approval_expired")
                                          .outcome("expired")
                                          .command(approval.command_id)
                                          .markDrill(drill)
                                          .build()));
  }
  return okStatus();
}

}  // namespace shadan::controller
