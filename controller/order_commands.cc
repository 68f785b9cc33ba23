#include "controller/order_commands.h"

#include <algorithm>
#include <vector>

namespace shadan::controller {
namespace {

using nlohmann::json;

constexpr int64_t kMaxTtlS = 366LL * 24 * 3600;

}  // namespace

Result<BuiltAuthz> OrderCommands::buildAuthz(const Caller& caller, OrderAction action,
                                             const std::string& segment, const std::string& profile,
                                             const std::string& reason,
                                             const std::optional<std::string>& ticket,
                                             const std::optional<int64_t>& ttl_s, bool drill,
                                             int64_t validity_s) {
  std::vector<std::string> targets;
  for (const auto& [id, gateway] : ctx_.policy.gateways) {
    if (std::find(gateway.borders.begin(), gateway.borders.end(), segment) !=
        gateway.borders.end()) {
      targets.push_back(id);
    }
  }
  if (targets.empty()) return badRequest("segment: no gateway borders segment " + segment);
  SHADAN_ASSIGN_OR_RETURN(auto gen, ctx_.store.nextSegmentGen(segment));
  Authz authz;
  authz.command_id = ctx_.options.new_id();
  authz.action = action;
  authz.segment = segment;
  authz.profile = profile;
  authz.segment_gen = gen;
  authz.targets = std::move(targets);
  authz.ttl_s = ttl_s;
  authz.requested_by = caller.identity();
  authz.reason = reason;
  authz.ticket = ticket;
  authz.drill = drill;
  authz.issued_at_ms = ctx_.nowMs();
  authz.expires_at_ms = authz.issued_at_ms + validity_s * 1000;
  std::string payload = serializeAuthz(authz);
  return BuiltAuthz{std::move(authz), std::move(payload)};
}

Result<OrderAccepted> OrderCommands::isolate(const Caller& caller, const IsolateRequest& request) {
  if (caller.role != ApiRole::kOperator && caller.role != ApiRole::kDetector) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not isolate");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(request.reason));
  const Segment* segment = ctx_.policy.findSegment(request.segment);
  if (segment == nullptr) {
    return makeError(ErrorCode::kNotFound, "segment: unknown segment " + request.segment);
  }
  if (ctx_.policy.findProfile(request.profile) == nullptr) {
    return makeError(ErrorCode::kNotFound, "profile: unknown profile " + request.profile);
  }
  if (request.ttl_s && (*request.ttl_s < 1 || *request.ttl_s > kMaxTtlS)) {
    return badRequest("ttl_s: must be between 1 and " + std::to_string(kMaxTtlS));
  }
  const TrustThresholds& t = ctx_.trust.thresholds;
  std::string rule;
  int needed = 0;
  if (segment->is_protected) {
    if (caller.role == ApiRole::kDetector) {
      return forbidden("detectors may not isolate protected segment " + request.segment);
    }
    rule = "isolate_protected";
    needed = t.isolate_protected_operators;
  } else if (!t.isolate_controller_on_behalf) {
    if (caller.role == ApiRole::kDetector) {
      return forbidden("the trust file does not let the controller isolate on behalf of callers");
    }
    rule = "isolate";
    needed = t.isolate_operators;
  }

  Result<OrderAccepted> accepted = makeError(ErrorCode::kInternal, "not run");
  SHADAN_RETURN_IF_ERROR_TX(ctx_.store.transaction([&]() -> Status {
    SHADAN_ASSIGN_OR_RETURN(
        auto built, buildAuthz(caller, OrderAction::kIsolate, request.segment, request.profile,
                               request.reason, request.ticket, request.ttl_s, request.drill,
                               rule.empty() ? ctx_.options.timings.authz_validity_s
                                            : ctx_.options.timings.approval_validity_s));
    if (!rule.empty()) {
      accepted = approvals_.open(caller, std::move(built), rule, needed);
      if (!accepted.ok()) return accepted.error();
      return okStatus();
    }
    built.authz.on_behalf_of = caller.identity();
    built.payload = serializeAuthz(built.authz);
    const Signer* signers[] = {&ctx_.controller_key};
    SHADAN_ASSIGN_OR_RETURN(auto envelope, signDsse(kAuthzPayloadType, built.payload, signers));
    OrderRecord order;
    order.command_id = built.authz.command_id;
    order.action = "isolate";
    order.segment = request.segment;
    order.profile = request.profile;
    order.requested_by = caller.identity();
    order.reason = request.reason;
    order.ticket = request.ticket;
    order.drill = request.drill;
    order.authz_payload = built.payload;
    order.targets = built.authz.targets;
    order.expires_at_ms = built.authz.expires_at_ms;
    order.created_ms = ctx_.nowMs();
    SHADAN_RETURN_IF_ERROR(delivery_.recordDispatch(std::move(order), envelope));
    accepted = OrderAccepted{
        built.authz.command_id, "dispatched", built.authz.targets, std::nullopt, 0, 0};
    return okStatus();
  }));
  if (!accepted.ok()) return accepted;

  AuditEventBuilder event("order_requested");
  event.outcome(accepted->state)
      .requestedBy(caller.identity())
      .what("isolate", request.segment, request.profile)
      .why(request.reason, request.ticket)
      .command(accepted->order_id)
      .drill(request.drill)
      .detail(json{{"gateways", accepted->gateways}});
  if (!accepted->approval_id) event.controller(ctx_.controller_key.keyId());
  SHADAN_RETURN_IF_ERROR(ctx_.audit(event.build()));
  delivery_.deliverToTargets(accepted->gateways);
  return accepted;
}

Result<OrderAccepted> OrderCommands::restore(const Caller& caller, const RestoreRequest& request) {
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not restore");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(request.reason));
  if (ctx_.policy.findSegment(request.segment) == nullptr) {
    return makeError(ErrorCode::kNotFound, "segment: unknown segment " + request.segment);
  }
  if (ctx_.policy.findProfile(request.profile) == nullptr) {
    return makeError(ErrorCode::kNotFound, "profile: unknown profile " + request.profile);
  }
  Result<OrderAccepted> accepted = makeError(ErrorCode::kInternal, "not run");
  SHADAN_RETURN_IF_ERROR_TX(ctx_.store.transaction([&]() -> Status {
    SHADAN_ASSIGN_OR_RETURN(
        auto built,
        buildAuthz(caller, OrderAction::kRestore, request.segment, request.profile, request.reason,
                   request.ticket, std::nullopt, false, ctx_.options.timings.approval_validity_s));
    accepted = approvals_.open(caller, std::move(built), "restore",
                               ctx_.trust.thresholds.restore_operators);
    if (!accepted.ok()) return accepted.error();
    return okStatus();
  }));
  if (!accepted.ok()) return accepted;
  SHADAN_RETURN_IF_ERROR(
      ctx_.audit(AuditEventBuilder("order_requested")
                     .outcome(accepted->state)
                     .requestedBy(caller.identity())
                     .what("restore", request.segment, request.profile)
                     .why(request.reason, request.ticket)
                     .command(accepted->order_id)
                     .detail(json{{"gateways", accepted->gateways}, {"needed", accepted->needed}})
                     .build()));
  return accepted;
}

}  // namespace shadan::controller
