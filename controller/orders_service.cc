#include "controller/orders_service.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>

#include "common/logging.h"
#include "common/sha256.h"
#include "common/strict_json.h"

namespace shadan {
namespace {

// SHADAN_RETURN_IF_ERROR around a transaction whose body uses it too (a distinct local name, so
// -Wshadow stays quiet).
#define SHADAN_RETURN_IF_ERROR_TX(expr)                                \
  do {                                                                 \
    Status transaction_status_ = (expr);                               \
    if (!transaction_status_.ok()) return transaction_status_.error(); \
  } while (0)

using nlohmann::json;

constexpr size_t kMaxReasonBytes = 512;
constexpr int64_t kMaxTtlS = 366LL * 24 * 3600;

Error forbidden(const std::string& message) { return makeError(ErrorCode::kPolicy, message); }
Error badRequest(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, message);
}
Error conflict(const std::string& message) { return makeError(ErrorCode::kUnavailable, message); }

Status checkReason(const std::string& reason) {
  if (reason.empty()) return badRequest("reason: must not be empty");
  if (reason.size() > kMaxReasonBytes) return badRequest("reason: longer than 512 bytes");
  return okStatus();
}

json timeOrNull(int64_t ms) { return ms > 0 ? json(formatRfc3339(ms)) : json(nullptr); }

DispatchState stateOfAck(AckResult result) {
  switch (result) {
    case AckResult::kApplied:
      return DispatchState::kApplied;
    case AckResult::kAlreadyApplied:
      return DispatchState::kAlreadyApplied;
    case AckResult::kRejected:
      return DispatchState::kRejected;
    case AckResult::kFailed:
      return DispatchState::kFailed;
  }
  return DispatchState::kFailed;
}

// Builds an AuditEvent field by field (designated initializers would have to name every
// member to keep -Wmissing-field-initializers quiet).
class Event {
 public:
  explicit Event(std::string name) { e_.event = std::move(name); }
  Event& outcome(std::string v) {
    e_.outcome = std::move(v);
    return *this;
  }
  Event& reason(std::optional<std::string> v) {
    e_.reason = std::move(v);
    return *this;
  }
  Event& requestedBy(std::string v) {
    who().requested_by = std::move(v);
    return *this;
  }
  Event& approvers(std::vector<std::string> v) {
    who().approvers = std::move(v);
    return *this;
  }
  Event& keyids(std::vector<std::string> v) {
    who().keyids = std::move(v);
    return *this;
  }
  Event& controller(std::string v) {
    who().controller = std::move(v);
    return *this;
  }
  Event& what(std::string action, std::string segment, std::string profile) {
    AuditWhat w;
    w.action = std::move(action);
    w.segment = std::move(segment);
    w.profile = std::move(profile);
    e_.what = std::move(w);
    return *this;
  }
  Event& why(std::string reason, std::optional<std::string> ticket) {
    AuditWhy w;
    w.reason = std::move(reason);
    w.ticket = std::move(ticket);
    e_.why = std::move(w);
    return *this;
  }
  Event& agent(std::string agent_id, std::optional<std::string> version = std::nullopt) {
    AuditWhere w;
    w.agent_id = std::move(agent_id);
    w.version = std::move(version);
    e_.where = std::move(w);
    return *this;
  }
  Event& command(std::string v) {
    e_.command_id = std::move(v);
    return *this;
  }
  Event& seq(int64_t v) {
    if (v > 0) e_.seq = static_cast<uint64_t>(v);
    return *this;
  }
  Event& authzSha256(std::string v) {
    e_.authz_sha256 = std::move(v);
    return *this;
  }
  Event& drill(bool v) {
    e_.drill = v;
    return *this;
  }
  Event& detail(json v) {
    e_.detail = std::move(v);
    return *this;
  }
  AuditEvent build() { return std::move(e_); }

 private:
  AuditWho& who() {
    if (!e_.who) e_.who = AuditWho{};
    return *e_.who;
  }
  AuditEvent e_;
};

}  // namespace

std::string randomUuid() {
  if (sodium_init() < 0) std::abort();  // a broken libsodium is a broken invariant
  uint8_t bytes[16];
  randombytes_buf(bytes, sizeof(bytes));
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);
  const std::string hex = hexEncode(bytes);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

std::string Caller::identity() const {
  switch (role) {
    case ApiRole::kOperator:
      return "op:" + name;
    case ApiRole::kDetector:
      return "detector:" + name;
    case ApiRole::kAuditor:
      return "auditor:" + name;
  }
  return name;
}

json OrderAccepted::toJson() const {
  json out = {{"order_id", order_id}, {"state", state}, {"gateways", gateways}};
  if (approval_id) {
    out["approval_id"] = *approval_id;
    out["needed"] = needed;
    out["have"] = have;
  }
  return out;
}

json ApprovalProgress::toJson() const {
  return {{"approval_id", approval_id}, {"order_id", order_id}, {"state", state},
          {"needed", needed},           {"have", have},         {"approvers", approvers}};
}

OrdersService::OrdersService(const Policy& policy, const Trust& trust, const Signer& controller_key,
                             ControllerStore& store, AgentHub& channel, AuditSink& audit,
                             const Clock& clock, OrdersServiceOptions options)
    : policy_(policy),
      trust_(trust),
      controller_key_(controller_key),
      store_(store),
      channel_(channel),
      audit_(audit),
      clock_(clock),
      options_(std::move(options)) {
  if (!options_.new_id) options_.new_id = randomUuid;
}

int64_t OrdersService::nowMs() const { return toUnixMillis(clock_.now()); }

Status OrdersService::audit(AuditEvent event) {
  auto receipt = audit_.append(event);
  if (!receipt.ok()) {
    logger("controller")
        ->error("audit append failed event={} error={}", event.event, receipt.error().message);
    return receipt.error().withContext("audit log");
  }
  return okStatus();
}

Result<OrdersService::Built> OrdersService::buildAuthz(
    const Caller& caller, OrderAction action, const std::string& segment,
    const std::string& profile, const std::string& reason, const std::optional<std::string>& ticket,
    const std::optional<int64_t>& ttl_s, bool drill, int64_t validity_s) {
  std::vector<std::string> targets;
  for (const auto& [id, gateway] : policy_.gateways) {
    if (std::find(gateway.borders.begin(), gateway.borders.end(), segment) !=
        gateway.borders.end()) {
      targets.push_back(id);
    }
  }
  if (targets.empty()) return badRequest("segment: no gateway borders segment " + segment);
  auto gen = store_.nextSegmentGen(segment);
  if (!gen.ok()) return gen.error();
  Authz authz;
  authz.command_id = options_.new_id();
  authz.action = action;
  authz.segment = segment;
  authz.profile = profile;
  authz.segment_gen = *gen;
  authz.targets = std::move(targets);
  authz.ttl_s = ttl_s;
  authz.requested_by = caller.identity();
  authz.reason = reason;
  authz.ticket = ticket;
  authz.drill = drill;
  authz.issued_at_ms = nowMs();
  authz.expires_at_ms = authz.issued_at_ms + validity_s * 1000;
  std::string payload = serializeAuthz(authz);
  return Built{std::move(authz), std::move(payload)};
}

Result<OrderAccepted> OrdersService::isolate(const Caller& caller, const IsolateRequest& request) {
  if (caller.role != ApiRole::kOperator && caller.role != ApiRole::kDetector) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not isolate");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(request.reason));
  const Segment* segment = policy_.findSegment(request.segment);
  if (segment == nullptr) {
    return makeError(ErrorCode::kNotFound, "segment: unknown segment " + request.segment);
  }
  if (policy_.findProfile(request.profile) == nullptr) {
    return makeError(ErrorCode::kNotFound, "profile: unknown profile " + request.profile);
  }
  if (request.ttl_s && (*request.ttl_s < 1 || *request.ttl_s > kMaxTtlS)) {
    return badRequest("ttl_s: must be between 1 and " + std::to_string(kMaxTtlS));
  }
  const TrustThresholds& t = trust_.thresholds;
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
  SHADAN_RETURN_IF_ERROR_TX(store_.transaction([&]() -> Status {
    auto built = buildAuthz(
        caller, OrderAction::kIsolate, request.segment, request.profile, request.reason,
        request.ticket, request.ttl_s, request.drill,
        rule.empty() ? options_.timings.authz_validity_s : options_.timings.approval_validity_s);
    if (!built.ok()) return built.error();
    if (!rule.empty()) {
      accepted = awaitApproval(caller, std::move(*built), rule, needed);
      if (!accepted.ok()) return accepted.error();
      return okStatus();
    }
    built->authz.on_behalf_of = caller.identity();
    built->payload = serializeAuthz(built->authz);
    const Signer* signers[] = {&controller_key_};
    auto envelope = signDsse(kAuthzPayloadType, built->payload, signers);
    if (!envelope.ok()) return envelope.error();
    OrderRecord order;
    order.command_id = built->authz.command_id;
    order.action = "isolate";
    order.segment = request.segment;
    order.profile = request.profile;
    order.requested_by = caller.identity();
    order.reason = request.reason;
    order.ticket = request.ticket;
    order.drill = request.drill;
    order.authz_payload = built->payload;
    order.targets = built->authz.targets;
    order.expires_at_ms = built->authz.expires_at_ms;
    order.created_ms = nowMs();
    SHADAN_RETURN_IF_ERROR(dispatchOrder(std::move(order), *envelope));
    accepted = OrderAccepted{
        built->authz.command_id, "dispatched", built->authz.targets, std::nullopt, 0, 0};
    return okStatus();
  }));
  if (!accepted.ok()) return accepted;

  Event event("order_requested");
  event.outcome(accepted->state)
      .requestedBy(caller.identity())
      .what("isolate", request.segment, request.profile)
      .why(request.reason, request.ticket)
      .command(accepted->order_id)
      .drill(request.drill)
      .detail(json{{"gateways", accepted->gateways}});
  if (!accepted->approval_id) event.controller(controller_key_.keyId());
  SHADAN_RETURN_IF_ERROR(audit(event.build()));
  for (const auto& target : accepted->gateways) {
    if (auto status = deliverPending(target); !status.ok()) {
      logger("controller")
          ->warn("delivery failed agent_id={} error={}", target, status.error().message);
    }
  }
  return accepted;
}

Result<OrderAccepted> OrdersService::restore(const Caller& caller, const RestoreRequest& request) {
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not restore");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(request.reason));
  if (policy_.findSegment(request.segment) == nullptr) {
    return makeError(ErrorCode::kNotFound, "segment: unknown segment " + request.segment);
  }
  if (policy_.findProfile(request.profile) == nullptr) {
    return makeError(ErrorCode::kNotFound, "profile: unknown profile " + request.profile);
  }
  Result<OrderAccepted> accepted = makeError(ErrorCode::kInternal, "not run");
  SHADAN_RETURN_IF_ERROR_TX(store_.transaction([&]() -> Status {
    auto built =
        buildAuthz(caller, OrderAction::kRestore, request.segment, request.profile, request.reason,
                   request.ticket, std::nullopt, false, options_.timings.approval_validity_s);
    if (!built.ok()) return built.error();
    accepted =
        awaitApproval(caller, std::move(*built), "restore", trust_.thresholds.restore_operators);
    if (!accepted.ok()) return accepted.error();
    return okStatus();
  }));
  if (!accepted.ok()) return accepted;
  SHADAN_RETURN_IF_ERROR(
      audit(Event("order_requested")
                .outcome(accepted->state)
                .requestedBy(caller.identity())
                .what("restore", request.segment, request.profile)
                .why(request.reason, request.ticket)
                .command(accepted->order_id)
                .detail(json{{"gateways", accepted->gateways}, {"needed", accepted->needed}})
                .build()));
  return accepted;
}

Result<OrderAccepted> OrdersService::awaitApproval(const Caller& caller, Built built,
                                                   const std::string& rule, int needed) {
  const int64_t now = nowMs();
  OrderRecord order;
  order.command_id = built.authz.command_id;
  order.action = orderActionName(built.authz.action);
  order.segment = built.authz.segment;
  order.profile = built.authz.profile;
  order.requested_by = caller.identity();
  order.reason = built.authz.reason;
  order.ticket = built.authz.ticket;
  order.drill = built.authz.drill;
  order.state = OrderState::kAwaitingApproval;
  order.authz_payload = built.payload;
  order.targets = built.authz.targets;
  order.expires_at_ms = built.authz.expires_at_ms;
  order.created_ms = now;
  order.updated_ms = now;
  SHADAN_RETURN_IF_ERROR(store_.putOrder(order));
  ApprovalRecord approval;
  approval.approval_id = order.command_id;
  approval.command_id = order.command_id;
  approval.payload_type = std::string(kAuthzPayloadType);
  approval.payload = built.payload;
  approval.rule = rule;
  approval.needed = needed;
  approval.created_ms = now;
  approval.expires_ms = built.authz.expires_at_ms;
  SHADAN_RETURN_IF_ERROR(store_.putApproval(approval));
  return OrderAccepted{
      order.command_id, "awaiting_approval", order.targets, order.command_id, needed, 0};
}

std::vector<std::string> OrdersService::operatorIdentities(
    const std::vector<DsseSignature>& signatures) const {
  std::vector<std::string> out;
  for (const auto& signature : signatures) {
    const TrustKey* key = trust_.findKey(signature.keyid);
    if (key == nullptr || !key->hasRole(TrustRole::kOperator)) continue;
    if (std::find(out.begin(), out.end(), key->identity) == out.end()) {
      out.push_back(key->identity);
    }
  }
  return out;
}

Result<ApprovalProgress> OrdersService::addApprovalSignature(const Caller& caller,
                                                             const std::string& approval_id,
                                                             const std::string& keyid,
                                                             const std::string& sig_base64) {
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not approve");
  }
  SHADAN_RETURN_IF_ERROR(sweep());
  auto found = store_.getApproval(approval_id);
  if (!found.ok()) return found.error();
  if (!found->has_value()) {
    return makeError(ErrorCode::kNotFound, "no approval " + quoteForMessage(approval_id));
  }
  ApprovalRecord approval = std::move(**found);
  if (approval.state != ApprovalState::kPending) {
    return conflict("approval " + approval_id + " is " + approvalStateName(approval.state));
  }
  auto sig = base64Decode(sig_base64);
  if (!sig.ok()) return badRequest("sig: not canonical base64");
  if (sig->size() != kEd25519SignatureBytes) return badRequest("sig: not 64 bytes");
  const TrustKey* key = trust_.findKey(keyid);
  if (key == nullptr)
    return forbidden("keyid: key " + quoteForMessage(keyid) + " is not in the trust file");
  if (!key->hasRole(TrustRole::kOperator)) {
    return forbidden("keyid: key of " + key->identity + " is not an operator key");
  }
  if (!ed25519Verify(key->public_key, dssePae(approval.payload_type, approval.payload), *sig)) {
    // The refusal is the answer; a failed audit append is logged by audit().
    (void)audit(Event("approval_signature_refused")
                    .outcome("rejected")
                    .reason("signature does not verify")
                    .requestedBy(caller.identity())
                    .keyids({keyid})
                    .command(approval.command_id)
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
  auto order = store_.getOrder(approval.command_id);
  if (!order.ok()) return order.error();
  if (!order->has_value()) return makeError(ErrorCode::kInternal, "approval without its order");
  OrderRecord order_record = std::move(**order);

  const std::vector<std::string> approvers = operatorIdentities(approval.signatures);
  const bool requester_signed =
      std::find(approvers.begin(), approvers.end(), order_record.requested_by) != approvers.end();
  const bool met = static_cast<int>(approvers.size()) >= approval.needed && requester_signed;
  ApprovalProgress progress{approval.approval_id,
                            approval.command_id,
                            met ? "complete" : "pending",
                            approval.needed,
                            static_cast<int>(approvers.size()),
                            approvers};

  SHADAN_RETURN_IF_ERROR_TX(store_.transaction([&]() -> Status {
    if (met) approval.state = ApprovalState::kComplete;
    SHADAN_RETURN_IF_ERROR(store_.putApproval(approval));
    if (!met) return okStatus();
    DsseEnvelope envelope{approval.payload_type, approval.payload, approval.signatures};
    return dispatchOrder(order_record, envelope);
  }));

  std::vector<std::string> keyids;
  for (const auto& s : approval.signatures) keyids.push_back(s.keyid);
  SHADAN_RETURN_IF_ERROR(
      audit(Event(met ? "order_approved" : "approval_signature_added")
                .outcome(progress.state)
                .requestedBy(order_record.requested_by)
                .approvers(approvers)
                .keyids(keyids)
                .what(order_record.action, order_record.segment, order_record.profile)
                .why(order_record.reason, order_record.ticket)
                .command(approval.command_id)
                .authzSha256(sha256Hex(approval.payload))
                .detail(json{{"submitted_by", caller.identity()},
                             {"signer", key->identity},
                             {"needed", approval.needed},
                             {"requester_signed", requester_signed}})
                .build()));
  if (met) {
    for (const auto& target : order_record.targets) {
      if (auto status = deliverPending(target); !status.ok()) {
        logger("controller")
            ->warn("delivery failed agent_id={} error={}", target, status.error().message);
      }
    }
  }
  return progress;
}

Status OrdersService::dispatchOrder(OrderRecord order, const DsseEnvelope& authz_envelope) {
  const int64_t now = nowMs();
  order.authz_envelope = serializeDsseEnvelope(authz_envelope);
  order.state = OrderState::kDispatched;
  order.updated_ms = now;
  SHADAN_RETURN_IF_ERROR(store_.putOrder(order));
  for (const auto& target : order.targets) {
    DispatchRecord dispatch;
    dispatch.agent_id = target;
    dispatch.command_id = order.command_id;
    dispatch.created_ms = now;
    dispatch.updated_ms = now;
    SHADAN_RETURN_IF_ERROR(store_.putDispatch(dispatch));
  }
  auto authz = parseAuthz(order.authz_payload);
  if (!authz.ok()) return authz.error();
  auto segments = store_.listSegments();
  if (!segments.ok()) return segments.error();
  SegmentRecord segment{order.segment, authz->segment_gen, order.action == "isolate",
                        order.action == "isolate" ? order.profile : ""};
  for (const auto& existing : *segments) {
    if (existing.segment == order.segment) segment.gen = std::max(segment.gen, existing.gen);
  }
  return store_.putSegment(segment);
}

Status OrdersService::deliverPending(const std::string& agent_id) {
  if (!channel_.connected(agent_id)) return okStatus();
  auto agent = store_.getAgent(agent_id);
  if (!agent.ok()) return agent.error();
  if (!agent->has_value() || (*agent)->status != AgentStatus::kApproved) return okStatus();
  auto pending = store_.pendingDispatches(agent_id);
  if (!pending.ok()) return pending.error();
  const auto last_seq = last_seq_.find(agent_id);
  for (auto& dispatch : *pending) {
    auto order = store_.getOrder(dispatch.command_id);
    if (!order.ok()) return order.error();
    if (!order->has_value()) return makeError(ErrorCode::kInternal, "dispatch without its order");
    if (nowMs() >= (*order)->expires_at_ms) {
      SHADAN_RETURN_IF_ERROR(expireDispatch(dispatch, "authz expired before delivery"));
      continue;
    }
    // The agent has already processed this seq (its ack was lost): sending it again would only
    // earn a replayed_seq rejection.
    if (dispatch.seq != 0 && last_seq != last_seq_.end() && dispatch.seq <= last_seq->second) {
      continue;
    }
    if (sent_on_session_[agent_id].count(dispatch.command_id) != 0) continue;
    SHADAN_RETURN_IF_ERROR(deliver(std::move(dispatch), **agent, **order));
  }
  return okStatus();
}

Status OrdersService::deliver(DispatchRecord dispatch, const AgentRecord& agent,
                              const OrderRecord& order) {
  const int64_t now = nowMs();
  auto authz_envelope = parseDsseEnvelope(order.authz_envelope, "stored authz");
  if (!authz_envelope.ok()) return authz_envelope.error();
  DsseEnvelope signed_envelope;
  SHADAN_RETURN_IF_ERROR_TX(store_.transaction([&]() -> Status {
    if (dispatch.seq == 0) {
      auto seq = store_.nextSeq(agent.agent_id);
      if (!seq.ok()) return seq.error();
      dispatch.seq = *seq;
    }
    Dispatch body;
    body.agent_id = agent.agent_id;
    body.agent_key = agent.keyid;
    body.seq = dispatch.seq;
    body.issued_at_ms = now;
    body.expires_at_ms =
        std::min(now + options_.timings.dispatch_validity_s * 1000, order.expires_at_ms);
    body.authz = *authz_envelope;
    const Signer* signers[] = {&controller_key_};
    auto envelope = signDsse(kDispatchPayloadType, serializeDispatch(body), signers);
    if (!envelope.ok()) return envelope.error();
    signed_envelope = std::move(*envelope);
    dispatch.envelope = serializeDsseEnvelope(signed_envelope);
    dispatch.envelope_expires_ms = body.expires_at_ms;
    dispatch.sent_ms = now;
    dispatch.updated_ms = now;
    return store_.putDispatch(dispatch);
  }));
  const Status sent_status =
      channel_.send(agent.agent_id,
                    json{{"type", "dispatch"}, {"envelope", dsseEnvelopeToJson(signed_envelope)}});
  const bool sent = sent_status.ok();
  if (sent) sent_on_session_[agent.agent_id].insert(dispatch.command_id);
  if (!sent) {
    logger("controller")
        ->warn("dispatch not queued agent_id={} seq={} error={}", agent.agent_id, dispatch.seq,
               sent_status.error().message);
  }
  logger("controller")
      ->info("dispatch agent_id={} seq={} command_id={} sent={}", agent.agent_id, dispatch.seq,
             dispatch.command_id, sent);
  return audit(Event("dispatch_sent")
                   .outcome(sent ? "sent" : "queued")
                   .controller(controller_key_.keyId())
                   .what(order.action, order.segment, order.profile)
                   .agent(agent.agent_id)
                   .command(dispatch.command_id)
                   .seq(dispatch.seq)
                   .build());
}

Status OrdersService::expireDispatch(DispatchRecord dispatch, const std::string& why) {
  dispatch.state = DispatchState::kExpired;
  dispatch.updated_ms = nowMs();
  SHADAN_RETURN_IF_ERROR(store_.putDispatch(dispatch));
  return audit(Event("dispatch_expired")
                   .outcome("expired")
                   .reason(why)
                   .agent(dispatch.agent_id)
                   .command(dispatch.command_id)
                   .seq(dispatch.seq)
                   .build());
}

Status OrdersService::sweep() {
  const int64_t now = nowMs();
  auto approvals = store_.pendingApprovals();
  if (!approvals.ok()) return approvals.error();
  for (auto& approval : *approvals) {
    if (now < approval.expires_ms) continue;
    approval.state = ApprovalState::kExpired;
    SHADAN_RETURN_IF_ERROR_TX(store_.transaction([&]() -> Status {
      SHADAN_RETURN_IF_ERROR(store_.putApproval(approval));
      auto order = store_.getOrder(approval.command_id);
      if (!order.ok()) return order.error();
      if (!order->has_value()) return okStatus();
      (*order)->state = OrderState::kExpired;
      (*order)->updated_ms = now;
      return store_.putOrder(**order);
    }));
    SHADAN_RETURN_IF_ERROR(
        audit(Event("approval_expired").outcome("expired").command(approval.command_id).build()));
  }
  auto pending = store_.allPendingDispatches();
  if (!pending.ok()) return pending.error();
  for (auto& dispatch : *pending) {
    auto order = store_.getOrder(dispatch.command_id);
    if (!order.ok()) return order.error();
    if (order->has_value() && now >= (*order)->expires_at_ms) {
      SHADAN_RETURN_IF_ERROR(expireDispatch(dispatch, "authz expired without an ack"));
    }
  }
  return okStatus();
}

std::optional<Ed25519PublicKey> OrdersService::agentKeyFromTrust(const std::string& agent_id,
                                                                 const std::string& keyid) const {
  const TrustKey* key = trust_.findKey(keyid);
  if (key == nullptr || !key->hasRole(TrustRole::kAgent) || key->identity != "agent:" + agent_id) {
    return std::nullopt;
  }
  return key->public_key;
}

void OrdersService::onHello(const AgentHello& hello) {
  const int64_t now = nowMs();
  auto log = logger("controller");
  last_seq_[hello.agent_id] = hello.last_seq;
  sent_on_session_.erase(hello.agent_id);
  std::optional<Ed25519PublicKey> public_key;
  if (hello.public_key && ed25519KeyId(*hello.public_key) == hello.agent_key) {
    public_key = hello.public_key;
  } else {
    public_key = agentKeyFromTrust(hello.agent_id, hello.agent_key);
  }
  auto existing = store_.getAgent(hello.agent_id);
  if (!existing.ok()) {
    log->error("agent lookup failed agent_id={} error={}", hello.agent_id,
               existing.error().message);
    return;
  }
  AgentRecord agent;
  std::optional<std::string> enrollment_event;
  if (!existing->has_value()) {
    agent = AgentRecord{
        hello.agent_id, hello.agent_key, public_key, AgentStatus::kPending, now, now, ""};
    enrollment_event = "agent_enrollment_pending";
  } else {
    agent = std::move(**existing);
    agent.last_seen_ms = now;
    if (agent.keyid != hello.agent_key) {
      // A new key (reinstall, or someone else): no trust on first use, an operator decides.
      agent.keyid = hello.agent_key;
      agent.public_key = public_key;
      agent.status = AgentStatus::kPending;
      enrollment_event = "agent_key_changed";
    } else if (!agent.public_key) {
      agent.public_key = public_key;
    }
  }
  if (auto status = store_.putAgent(agent); !status.ok()) {
    log->error("agent store failed agent_id={} error={}", hello.agent_id, status.error().message);
    return;
  }
  log->info("hello agent_id={} status={} last_seq={} version={}", hello.agent_id,
            agentStatusName(agent.status), hello.last_seq, hello.version);
  if (enrollment_event) {
    (void)audit(Event(*enrollment_event)
                    .outcome("pending")
                    .keyids({hello.agent_key})
                    .agent(hello.agent_id, hello.version)
                    .detail(json{{"key_in_trust_file", public_key.has_value()}})
                    .build());
    return;
  }
  if (agent.status == AgentStatus::kApproved) {
    if (auto status = deliverPending(hello.agent_id); !status.ok()) {
      log->warn("delivery failed agent_id={} error={}", hello.agent_id, status.error().message);
    }
  }
}

void OrdersService::onDisconnect(const std::string& agent_id) {
  last_seq_.erase(agent_id);
  sent_on_session_.erase(agent_id);
  auto agent = store_.getAgent(agent_id);
  if (agent.ok() && agent->has_value()) {
    (*agent)->last_seen_ms = nowMs();
    (void)store_.putAgent(**agent);
  }
  logger("controller")->info("agent disconnected agent_id={}", agent_id);
}

Status OrdersService::onAck(const std::string& agent_id, const json& envelope_json) {
  auto refuse = [&](Error error) -> Status {
    (void)audit(
        Event("ack_refused").outcome("rejected").reason(error.message).agent(agent_id).build());
    logger("controller")->warn("ack refused agent_id={} error={}", agent_id, error.message);
    return error;
  };
  auto envelope = dsseEnvelopeFromJson(envelope_json, "ack", "/envelope");
  if (!envelope.ok()) return refuse(envelope.error());
  auto agent = store_.getAgent(agent_id);
  if (!agent.ok()) return agent.error();
  if (!agent->has_value() || (*agent)->status != AgentStatus::kApproved || !(*agent)->public_key) {
    return refuse(forbidden("ack from agent " + agent_id + " which is not approved"));
  }
  AgentRecord record = std::move(**agent);
  const Ed25519PublicKey public_key = *record.public_key;
  const std::string keyid = record.keyid;
  auto verification = verifyDsse(*envelope, kAckPayloadType,
                                 [&](std::string_view id) -> std::optional<Ed25519PublicKey> {
                                   if (id == keyid) return public_key;
                                   return std::nullopt;
                                 });
  if (!verification.ok()) return refuse(verification.error());
  if (!verification->allValid()) {
    return refuse(forbidden("ack signature does not verify with the enrolled key of " + agent_id));
  }
  auto ack = parseAck(envelope->payload);
  if (!ack.ok()) return refuse(ack.error());
  if (ack->agent_id != agent_id) {
    return refuse(forbidden("ack names agent " + quoteForMessage(ack->agent_id) +
                            " on the session of " + agent_id));
  }
  auto found = store_.dispatchBySeq(agent_id, ack->seq);
  if (!found.ok()) return found.error();
  if (!found->has_value() || ack->seq == 0) {
    return refuse(makeError(ErrorCode::kNotFound,
                            "ack for unknown seq " + std::to_string(ack->seq) + " of " + agent_id));
  }
  DispatchRecord dispatch = std::move(**found);
  if (ack->command_id && *ack->command_id != dispatch.command_id) {
    return refuse(forbidden("ack seq " + std::to_string(ack->seq) + " names command " +
                            quoteForMessage(*ack->command_id) + ", dispatched was " +
                            dispatch.command_id));
  }
  if (dispatch.state != DispatchState::kPending && dispatch.state != DispatchState::kExpired) {
    // Expected: agents send their recent acks again after every reconnect (an ack lost with a
    // connection or a restart still arrives), so most of those are ones we already have.
    logger("controller")->debug("duplicate ack agent_id={} seq={}", agent_id, ack->seq);
    return okStatus();
  }
  const int64_t now = nowMs();
  dispatch.state = stateOfAck(ack->result);
  dispatch.ack_json = envelope->payload;
  dispatch.updated_ms = now;
  record.last_seen_ms = now;
  record.last_state_json = json{
      {"isolated", ack->isolated},
      {"ruleset_sha256", ack->ruleset_sha256},
      {"acked_at",
       formatRfc3339(now)}}.dump();
  SHADAN_RETURN_IF_ERROR_TX(store_.transaction([&]() -> Status {
    SHADAN_RETURN_IF_ERROR(store_.putDispatch(dispatch));
    return store_.putAgent(record);
  }));
  return audit(Event("ack_received")
                   .outcome(ackResultName(ack->result))
                   .reason(ack->reason)
                   .agent(agent_id)
                   .command(dispatch.command_id)
                   .seq(ack->seq)
                   .detail(json{{"agent_log_seq", ack->audit.log_seq},
                                {"agent_entry_hash", ack->audit.entry_hash}})
                   .build());
}

Result<json> OrdersService::orderJson(const OrderRecord& order, bool with_acks) {
  json gateways = json::object();
  auto dispatches = store_.dispatchesForOrder(order.command_id);
  if (!dispatches.ok()) return dispatches.error();
  for (const auto& d : *dispatches) {
    json entry = {{"state", dispatchStateName(d.state)},
                  {"seq", d.seq},
                  {"sent_at", timeOrNull(d.sent_ms)},
                  {"updated_at", timeOrNull(d.updated_ms)}};
    if (with_acks) {
      entry["ack"] = d.ack_json.empty() ? json(nullptr) : json::parse(d.ack_json, nullptr, false);
    }
    gateways[d.agent_id] = std::move(entry);
  }
  // Targets not dispatched yet (awaiting approval) show as waiting.
  for (const auto& target : order.targets) {
    if (!gateways.contains(target)) gateways[target] = {{"state", "awaiting_approval"}};
  }
  json out = {{"order_id", order.command_id},
              {"action", order.action},
              {"segment", order.segment},
              {"profile", order.profile},
              {"state", orderStateName(order.state)},
              {"requested_by", order.requested_by},
              {"reason", order.reason},
              {"ticket", order.ticket ? json(*order.ticket) : json(nullptr)},
              {"drill", order.drill},
              {"created_at", timeOrNull(order.created_ms)},
              {"expires_at", timeOrNull(order.expires_at_ms)},
              {"gateways", std::move(gateways)}};
  if (with_acks) {
    auto approval = store_.getApproval(order.command_id);
    if (!approval.ok()) return approval.error();
    if (approval->has_value()) {
      const auto approvers = operatorIdentities((*approval)->signatures);
      out["approval"] = {{"approval_id", (*approval)->approval_id},
                         {"state", approvalStateName((*approval)->state)},
                         {"needed", (*approval)->needed},
                         {"have", approvers.size()},
                         {"approvers", approvers}};
    }
  }
  return out;
}

Result<json> OrdersService::status() {
  SHADAN_RETURN_IF_ERROR(sweep());
  json segments = json::object();
  for (const auto& [name, segment] : policy_.segments) {
    segments[name] = {
        {"isolated", false}, {"profile", nullptr}, {"gen", 0}, {"protected", segment.is_protected}};
  }
  auto stored = store_.listSegments();
  if (!stored.ok()) return stored.error();
  for (const auto& s : *stored) {
    if (!segments.contains(s.segment)) continue;
    segments[s.segment]["isolated"] = s.isolated;
    segments[s.segment]["profile"] = s.isolated ? json(s.profile) : json(nullptr);
    segments[s.segment]["gen"] = s.gen;
  }
  json gateways = json::object();
  for (const auto& [id, gateway] : policy_.gateways) {
    gateways[id] = {{"connected", channel_.connected(id)},
                    {"last_seen", nullptr},
                    {"enrollment", "unknown"},
                    {"state", json::object()}};
  }
  auto agents = store_.listAgents();
  if (!agents.ok()) return agents.error();
  for (const auto& agent : *agents) {
    json& entry = gateways[agent.agent_id];
    entry["connected"] = channel_.connected(agent.agent_id);
    entry["last_seen"] = timeOrNull(agent.last_seen_ms);
    entry["enrollment"] = agentStatusName(agent.status);
    entry["state"] = agent.last_state_json.empty()
                         ? json::object()
                         : json::parse(agent.last_state_json, nullptr, false);
  }
  json orders = json::array();
  auto recent = store_.listOrders(options_.status_orders);
  if (!recent.ok()) return recent.error();
  for (const auto& order : *recent) {
    auto entry = orderJson(order, false);
    if (!entry.ok()) return entry.error();
    orders.push_back(std::move(*entry));
  }
  return json{{"segments", std::move(segments)},
              {"gateways", std::move(gateways)},
              {"orders", std::move(orders)}};
}

Result<json> OrdersService::order(const std::string& order_id) {
  SHADAN_RETURN_IF_ERROR(sweep());
  auto order = store_.getOrder(order_id);
  if (!order.ok()) return order.error();
  if (!order->has_value()) {
    return makeError(ErrorCode::kNotFound, "no order " + quoteForMessage(order_id));
  }
  return orderJson(**order, true);
}

Result<json> OrdersService::pendingApprovals() {
  SHADAN_RETURN_IF_ERROR(sweep());
  auto approvals = store_.pendingApprovals();
  if (!approvals.ok()) return approvals.error();
  json out = json::array();
  for (const auto& approval : *approvals) {
    auto order = store_.getOrder(approval.command_id);
    if (!order.ok()) return order.error();
    const auto approvers = operatorIdentities(approval.signatures);
    json entry = {{"approval_id", approval.approval_id},
                  {"order_id", approval.command_id},
                  {"payloadType", approval.payload_type},
                  {"payload", base64Encode(std::span<const uint8_t>(
                                  reinterpret_cast<const uint8_t*>(approval.payload.data()),
                                  approval.payload.size()))},
                  {"rule", approval.rule},
                  {"needed", approval.needed},
                  {"have", approvers.size()},
                  {"approvers", approvers},
                  {"expires_at", formatRfc3339(approval.expires_ms)}};
    if (order->has_value()) {
      entry["action"] = (*order)->action;
      entry["segment"] = (*order)->segment;
      entry["profile"] = (*order)->profile;
      entry["requested_by"] = (*order)->requested_by;
      entry["reason"] = (*order)->reason;
    }
    out.push_back(std::move(entry));
  }
  return json{{"approvals", std::move(out)}};
}

Result<json> OrdersService::agents() {
  auto agents = store_.listAgents();
  if (!agents.ok()) return agents.error();
  json out = json::array();
  for (const auto& agent : *agents) {
    out.push_back({{"agent_id", agent.agent_id},
                   {"keyid", agent.keyid},
                   {"status", agentStatusName(agent.status)},
                   {"key_known", agent.public_key.has_value()},
                   {"connected", channel_.connected(agent.agent_id)},
                   {"first_seen", timeOrNull(agent.first_seen_ms)},
                   {"last_seen", timeOrNull(agent.last_seen_ms)}});
  }
  return json{{"agents", std::move(out)}};
}

Status OrdersService::approveAgent(const Caller& caller, const std::string& agent_id,
                                   const std::string& reason) {
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not approve agents");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(reason));
  auto agent = store_.getAgent(agent_id);
  if (!agent.ok()) return agent.error();
  if (!agent->has_value()) {
    return makeError(ErrorCode::kNotFound, "no agent " + quoteForMessage(agent_id));
  }
  AgentRecord record = std::move(**agent);
  if (record.status == AgentStatus::kApproved)
    return conflict("agent " + agent_id + " is approved");
  if (!record.public_key) {
    record.public_key = agentKeyFromTrust(agent_id, record.keyid);
    if (!record.public_key) {
      return conflict("the trust file has no agent key " + record.keyid + " for agent:" + agent_id +
                      "; add it before approving");
    }
  }
  record.status = AgentStatus::kApproved;
  SHADAN_RETURN_IF_ERROR(store_.putAgent(record));
  SHADAN_RETURN_IF_ERROR(audit(Event("agent_approved")
                                   .outcome("ok")
                                   .requestedBy(caller.identity())
                                   .keyids({record.keyid})
                                   .why(reason, std::nullopt)
                                   .agent(agent_id)
                                   .build()));
  return deliverPending(agent_id);
}

}  // namespace shadan
