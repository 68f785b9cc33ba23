#include "controller/order_commands.h"

#include <algorithm>
#include <vector>

namespace shadan::controller {
namespace {

using nlohmann::json;

constexpr int64_t kMaxTtlS = 366LL * 24 * 3600;

OrderAccepted acceptedFor(const OrderTarget& target, OrderAccepted accepted) {
  accepted.scope = target.scope;
  accepted.segment = target.segment;
  accepted.hosts = target.hosts;
  return accepted;
}

// The rung of an order in its audit detail; nothing for a segment order, whose entries keep
// the shape they had before the ladder.
void addScopeDetail(const OrderTarget& target, json& detail) {
  if (target.scope == IsolationScope::kSegment) return;
  detail["scope"] = isolationScopeName(target.scope);
  if (target.scope == IsolationScope::kHost) {
    json hosts = json::array();
    for (const IpPrefix& host : target.hosts) hosts.push_back(host.toString());
    detail["hosts"] = std::move(hosts);
  }
  if (target.link_down) detail["link_down"] = true;
}

}  // namespace

Result<BuiltAuthz> OrderCommands::buildAuthz(const Caller& caller, OrderAction action,
                                             const OrderTarget& target, const std::string& profile,
                                             const std::string& reason,
                                             const std::optional<std::string>& ticket,
                                             const std::optional<int64_t>& ttl_s, bool drill,
                                             int64_t validity_s) {
  SHADAN_ASSIGN_OR_RETURN(auto gen,
                          ctx_.store.nextSegmentGen(generationKey(target.scope, target.segment)));
  Authz authz;
  authz.command_id = ctx_.options.new_id();
  authz.action = action;
  authz.scope = target.scope;
  authz.segment = target.segment;
  authz.hosts = target.hosts;
  authz.link_down = target.link_down;
  authz.profile = profile;
  authz.segment_gen = gen;
  authz.targets = target.gateways;
  authz.targets_bordering =
      (target.scope == IsolationScope::kSegment || target.scope == IsolationScope::kHost) &&
      target.gateways.size() > ctx_.options.listed_targets_max;
  authz.ttl_s = ttl_s;
  authz.requested_by = ctx_.requesterOf(caller);
  authz.reason = reason;
  authz.ticket = ticket;
  authz.drill = drill;
  authz.issued_at_ms = ctx_.nowMs();
  authz.expires_at_ms = authz.issued_at_ms + validity_s * 1000;
  std::string payload = serializeAuthz(authz);
  return BuiltAuthz{std::move(authz), std::move(payload)};
}

Result<OrderAccepted> OrderCommands::signOnBehalf(BuiltAuthz built) {
  // The requester (ctx_.requesterOf): the agents want requested_by == on_behalf_of.
  built.authz.on_behalf_of = built.authz.requested_by;
  built.payload = serializeAuthz(built.authz);
  const Signer* signers[] = {&ctx_.controller_key};
  SHADAN_ASSIGN_OR_RETURN(auto envelope, signDsse(kAuthzPayloadType, built.payload, signers));
  // recordDispatch stores the envelope, the state and the update time.
  SHADAN_RETURN_IF_ERROR(delivery_.recordDispatch(
      orderRecordOf(built, OrderState::kDispatched, ctx_.nowMs()), envelope));
  return OrderAccepted{
      built.authz.command_id, "dispatched", built.authz.targets, std::nullopt, 0, 0};
}

AuditEvent OrderCommands::requestedEvent(const Caller& caller, const char* action,
                                         const OrderTarget& target, const std::string& profile,
                                         const std::string& reason,
                                         const std::optional<std::string>& ticket, bool drill,
                                         const OrderAccepted& accepted) {
  const bool isolate = std::string_view(action) == "isolate";
  json detail = {{"gateways", accepted.gateways}};
  if (!isolate && accepted.approval_id) detail["needed"] = accepted.needed;
  addScopeDetail(target, detail);
  AuditEventBuilder event("order_requested");
  event.outcome(accepted.state)
      .requestedBy(ctx_.requesterOf(caller))
      .what(action, target.segment, profile)
      .why(reason, ticket)
      .command(accepted.order_id)
      .detail(std::move(detail));
  // An isolate always says whether it is a drill (as it always did); a restore when it is one.
  if (isolate || drill) event.drill(drill);
  if (!accepted.approval_id) event.controller(ctx_.controller_key.keyId());
  return event.build();
}

Result<OrderPlan> OrderCommands::planIsolate(const Caller& caller,
                                             const IsolateRequest& request) const {
  if (caller.role != ApiRole::kOperator && caller.role != ApiRole::kDetector) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not isolate");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(request.reason));
  SHADAN_RETURN_IF_ERROR(checkTicket(request.ticket));
  OrderPlan plan;
  plan.action = OrderAction::kIsolate;
  plan.profile = request.profile;
  plan.ttl_s = request.ttl_s;
  SHADAN_ASSIGN_OR_RETURN(
      plan.target,
      resolveOrderTarget(ctx_.policy,
                         TargetRequest{OrderAction::kIsolate, request.scope, request.segment,
                                       request.hosts, request.gateways, request.link_down}));
  const OrderTarget& target = plan.target;
  if (ctx_.policy.findProfile(request.profile) == nullptr) {
    return makeError(ErrorCode::kNotFound, "profile: unknown profile " + request.profile);
  }
  if (request.ttl_s && (*request.ttl_s < 1 || *request.ttl_s > kMaxTtlS)) {
    return badRequest("ttl_s: must be between 1 and " + std::to_string(kMaxTtlS));
  }
  // An automatic response of a lab controller (its own detectors' alerts) is a drill too.
  plan.drill = request.drill || (request.automatic && ctx_.trust.isLab());
  // A drill ends on its own; the agents refuse it otherwise (drill_without_ttl).
  if (plan.drill && !request.ttl_s) {
    return badRequest("ttl_s: a drill isolate needs a ttl_s (drills end on their own)");
  }
  SHADAN_RETURN_IF_ERROR(ctx_.checkLabDrill(plan.drill));
  // An automatic isolate always ends by itself, and only the controller signs it (on behalf of
  // the detector): the agents refuse it otherwise.
  if (request.automatic && !request.ttl_s) {
    return badRequest("an automatic isolate needs a ttl_s");
  }
  // A scoped detector isolates only its segments, by an alert or by this API alike.
  if (caller.role == ApiRole::kDetector && caller.segments) {
    const auto& scope = *caller.segments;
    const bool any = std::find(scope.begin(), scope.end(), "*") != scope.end();
    const bool listed = std::find(scope.begin(), scope.end(), target.segment) != scope.end();
    if (target.segment.empty() || !(any || listed)) {
      return forbidden("token " + caller.name + " may not isolate " +
                       (target.segment.empty()
                            ? "the " + std::string(isolationScopeName(target.scope))
                            : "segment " + target.segment) +
                       " (its segments scope)");
    }
  }
  const TrustThresholds& t = ctx_.trust.thresholds;
  if (t.needsProtectedRule(target.scope, target.segment_protected)) {
    if (caller.role == ApiRole::kDetector) {
      return forbidden(target.segment_protected
                           ? "detectors may not isolate protected segment " + target.segment
                           : "detectors may not isolate the " +
                                 std::string(isolationScopeName(target.scope)) +
                                 ": the trust file asks isolate_protected approvals for it");
    }
    plan.rule = "isolate_protected";
    plan.needed = t.isolate_protected_operators;
  } else if (!t.isolate_controller_on_behalf) {
    if (caller.role == ApiRole::kDetector || request.automatic) {
      return forbidden("the trust file does not let the controller isolate on behalf of callers");
    }
    plan.rule = "isolate";
    plan.needed = t.isolate_operators;
  }
  if (!plan.rule.empty() && request.automatic) {
    return forbidden("an automatic isolate of the " +
                     std::string(isolationScopeName(target.scope)) + " " + target.segment +
                     " would need operator approvals (rule " + plan.rule + ")");
  }
  return plan;
}

Result<OrderAccepted> OrderCommands::isolate(const Caller& caller, const IsolateRequest& request) {
  SHADAN_ASSIGN_OR_RETURN(const OrderPlan plan, planIsolate(caller, request));
  const OrderTarget& target = plan.target;
  // The order and its order_requested entry are one: no order is stored (and later dispatched)
  // that the audit log does not show.
  Result<OrderAccepted> accepted = makeError(ErrorCode::kInternal, "not run");
  SHADAN_RETURN_IF_ERROR_TX(ctx_.auditedTransaction([&]() -> Result<AuditEvent> {
    SHADAN_ASSIGN_OR_RETURN(
        auto built, buildAuthz(caller, OrderAction::kIsolate, target, request.profile,
                               request.reason, request.ticket, request.ttl_s, plan.drill,
                               plan.rule.empty() ? ctx_.options.timings.authz_validity_s
                                                 : ctx_.options.timings.approval_validity_s));
    if (!plan.rule.empty()) {
      accepted = approvals_.open(std::move(built), plan.rule, plan.needed);
    } else {
      built.authz.automatic = request.automatic;
      accepted = signOnBehalf(std::move(built));
    }
    if (!accepted.ok()) return accepted.error();
    *accepted = acceptedFor(target, std::move(*accepted));
    return requestedEvent(caller, "isolate", target, request.profile, request.reason,
                          request.ticket, plan.drill, *accepted);
  }));
  delivery_.deliverOrder(accepted->order_id, accepted->gateways);
  return accepted;
}

Result<OrderPlan> OrderCommands::planRestore(const Caller& caller,
                                             const RestoreRequest& request) const {
  // A release of automatic isolations may come from the detector that caused them
  // (controller/alert_responder.h checks whose they are); every other restore is an operator's.
  const bool may =
      caller.role == ApiRole::kOperator || (request.automatic && caller.role == ApiRole::kDetector);
  if (!may) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not restore");
  }
  OrderPlan plan;
  plan.action = OrderAction::kRestore;
  plan.profile = request.profile;
  // Signed by the controller only where the trust file lets it; otherwise a release is an
  // ordinary restore, waiting for the `restore` rule's operators.
  plan.release = request.automatic && ctx_.trust.thresholds.release_controller_on_behalf;
  if (request.automatic && !plan.release && caller.role != ApiRole::kOperator) {
    return forbidden("the trust file does not let the controller sign releases on behalf");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(request.reason));
  SHADAN_RETURN_IF_ERROR(checkTicket(request.ticket));
  // A lab controller's release of its automatic isolations is a drill too.
  plan.drill = request.drill || (request.automatic && ctx_.trust.isLab());
  SHADAN_RETURN_IF_ERROR(ctx_.checkLabDrill(plan.drill));
  SHADAN_ASSIGN_OR_RETURN(
      plan.target,
      resolveOrderTarget(ctx_.policy,
                         TargetRequest{OrderAction::kRestore, request.scope, request.segment,
                                       request.hosts, request.gateways, false}));
  if (ctx_.policy.findProfile(request.profile) == nullptr) {
    return makeError(ErrorCode::kNotFound, "profile: unknown profile " + request.profile);
  }
  if (!plan.release) {
    plan.rule = "restore";
    plan.needed = ctx_.trust.thresholds.restore_operators;
  }
  return plan;
}

Result<OrderAccepted> OrderCommands::restore(const Caller& caller, const RestoreRequest& request) {
  SHADAN_ASSIGN_OR_RETURN(const OrderPlan plan, planRestore(caller, request));
  const OrderTarget& target = plan.target;
  Result<OrderAccepted> accepted = makeError(ErrorCode::kInternal, "not run");
  SHADAN_RETURN_IF_ERROR_TX(ctx_.auditedTransaction([&]() -> Result<AuditEvent> {
    SHADAN_ASSIGN_OR_RETURN(auto built,
                            buildAuthz(caller, OrderAction::kRestore, target, request.profile,
                                       request.reason, request.ticket, std::nullopt, plan.drill,
                                       plan.release ? ctx_.options.timings.authz_validity_s
                                                    : ctx_.options.timings.approval_validity_s));
    if (plan.release) {
      built.authz.automatic = true;
      accepted = signOnBehalf(std::move(built));
    } else {
      accepted = approvals_.open(std::move(built), plan.rule, plan.needed);
    }
    if (!accepted.ok()) return accepted.error();
    *accepted = acceptedFor(target, std::move(*accepted));
    return requestedEvent(caller, plan.release ? "release" : "restore", target, request.profile,
                          request.reason, request.ticket, plan.drill, *accepted);
  }));
  if (plan.release) delivery_.deliverOrder(accepted->order_id, accepted->gateways);
  return accepted;
}

}  // namespace shadan::controller
