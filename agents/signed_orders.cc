#include "agents/signed_orders.h"

#include <algorithm>

#include "agents/ladder.h"
#include "agents/link_holder.h"
#include "common/dsse.h"
#include "common/logging.h"
#include "common/sha256.h"

namespace shadan::agent {
namespace {

// What a restore authz lifts, as the ladder's request.
RestoreRequest restoreRequestOf(const Authz& authz) {
  RestoreRequest request;
  request.scope = authz.scope;
  if (!authz.segment.empty()) request.segment = authz.segment;
  request.hosts = authz.hosts;
  request.profile = authz.profile;
  return request;
}

// The reason code of a failed ack: the kernel refused, the gateway's disk is full (the order
// may be sent again once there is room), or the state store refused.
std::string ackReasonFor(const Error& error) {
  switch (error.code) {
    case ErrorCode::kKernel:
      return "apply_failed";
    case ErrorCode::kNoSpace:
      return "storage_full";
    default:
      return "refused";
  }
}

}  // namespace

std::optional<int64_t> appliedTtlS(const Authz& authz, const AgentOptions& options) {
  if (!authz.ttl_s || !authz.drill) return authz.ttl_s;
  return std::min(*authz.ttl_s, options.drill_max_ttl_s);
}

std::optional<std::string> ttlCapNote(const Authz& authz, const AgentOptions& options) {
  const std::optional<int64_t> applied = appliedTtlS(authz, options);
  if (!applied || applied == authz.ttl_s) return std::nullopt;
  return "ttl capped from " + std::to_string(*authz.ttl_s) + " s to " + std::to_string(*applied) +
         " s by agent.drill_max_ttl_s";
}

SignedOrders::SignedOrders(AgentCore& core) : core_(core) {}

Status SignedOrders::useTrust(Trust trust, const Signer& agent_key) {
  SHADAN_RETURN_IF_ERROR(acceptTrustUpdate(core_.desired_.trust_version, trust, core_.clock_));
  if (trust.version != core_.desired_.trust_version) {
    SHADAN_RETURN_IF_ERROR(core_.storeTrustVersion(trust.version));
  }
  trust_ = std::move(trust);
  agent_key_ = &agent_key;
  return okStatus();
}

AgentSelf SignedOrders::self() const { return AgentSelf{core_.gateway_id_, agent_key_->keyId()}; }

OrderVerification SignedOrders::checkEnvelope(std::string_view envelope_bytes) const {
  if (!ready()) {
    return OrderRejection{RejectReason::kTrustExpired,
                          "this agent has no trust file: signed orders cannot be verified"};
  }
  // The payload type says which verification applies; it is checked again, signed, inside.
  auto envelope = parseDsseEnvelope(envelope_bytes, "envelope", kDispatchClaimMaxBytes);
  if (envelope.ok() && envelope->payload_type == kAuthzPayloadType) {
    return verifyBreakglass(envelope_bytes, *trust_, core_.policy_, core_.clock_,
                            core_.desired_.replay.seen_command_ids, core_.gateway_id_);
  }
  OrderVerification verification = verifyDispatch(
      envelope_bytes, *trust_, self(), core_.desired_.replay, core_.policy_, core_.clock_);
  if (verification.ok()) {
    if (auto refusal = checkRelease(verification.order())) return *refusal;
  }
  return verification;
}

Result<ChangeResult> SignedOrders::applyVerified(const VerifiedOrder& order) {
  const Authz& authz = order.authz;
  const bool isolate = authz.action == OrderAction::kIsolate;
  Action action{isolate ? ActionKind::kIsolate : ActionKind::kRestore,
                Isolation{authz.segment, authz.profile, authz.scope}, authz.requested_by,
                authz.drill, &order};
  action.scope = authz.scope;
  action.hosts = authz.hosts;
  // The same checks as a local command, against this agent's policy and gateway: the verifier
  // has already refused hosts outside the named segment; this also refuses what the planner
  // could not express (an uplink on a gateway without one).
  std::vector<Isolation> wanted;
  if (isolate) {
    IsolateRequest request;
    request.scope = authz.scope;
    request.segment = authz.segment;
    request.hosts = authz.hosts;
    request.profile = authz.profile;
    request.link_down = authz.link_down;
    auto isolations = isolationsFor(core_.policy_, core_.gateway_id_, request);
    if (!isolations.ok()) return core_.rejected(action, isolations.error());
    wanted = std::move(isolations).value();
    action.isolations = wanted;
    if (authz.link_down) {
      Status safe = checkLinkDownSafe(core_.routes_, core_.policy_, core_.gateway_id_);
      if (!safe.ok()) return core_.rejected(action, safe.error());
    }
  }

  DesiredState next = core_.desired_;
  std::vector<Isolation> expired = core_.dropExpired(next);
  if (order.dispatch) next.replay.last_seq = order.dispatch->seq;
  // An id is remembered while its authz could still pass the freshness check (step 7 refuses
  // an expired authz before it looks at the id), plus a margin for a clock stepped back.
  const int64_t now_ms = toUnixMillis(core_.clock_.now());
  next.replay.seen_command_ids.forgetExpired(now_ms);
  next.replay.seen_command_ids.insert(authz.command_id, commandIdForgetAfterMs(authz));
  if (!order.breakglass) {
    next.replay.segment_gens[generationKey(authz.scope, authz.segment)] = authz.segment_gen;
  }

  bool changed_isolation = false;
  if (isolate) {
    ActiveIsolation fields;
    fields.since_unix_ms = now_ms;
    // A drill's ttl as capped by the policy: the deadline the audit entry and the ack name.
    if (auto ttl_s = appliedTtlS(authz, core_.policy_.agent)) {
      fields.expires_unix_ms = now_ms + *ttl_s * 1000;
    }
    fields.origin = "order:" + authz.command_id;
    fields.drill = authz.drill;
    fields.link_down = authz.link_down;
    fields.automatic = authz.automatic;
    changed_isolation = mergeIsolations(next, wanted, fields);
  } else {
    const RestoreRequest request = restoreRequestOf(authz);
    const auto before = next.isolations.size();
    std::erase_if(next.isolations, [&](const ActiveIsolation& active) {
      return restoreLifts(request, active.isolation);
    });
    changed_isolation = next.isolations.size() != before;
  }
  auto result = core_.commitAndApply(std::move(next), true, std::move(expired), action);
  if (result.ok()) result->changed = changed_isolation;
  return result;
}

std::optional<OrderRejection> SignedOrders::checkRelease(const VerifiedOrder& order) const {
  const Authz& authz = order.authz;
  if (authz.action != OrderAction::kRestore || !authz.automatic) return std::nullopt;
  const ActiveIsolation* kept =
      firstNotReleasable(core_.desired_, restoreRequestOf(authz), toUnixMillis(core_.clock_.now()));
  if (kept == nullptr) return std::nullopt;
  return OrderRejection{RejectReason::kReleaseNotAutomatic,
                        "release refused, nothing lifted: " + isolationLabel(kept->isolation) +
                            " is not automatic (confirmed or ordered by an operator); lifting it "
                            "takes a restore signed by operators"};
}

OrderOutcome SignedOrders::finishOrder(Ack ack, std::optional<OrderRejection> rejection,
                                       std::optional<ChangeResult> change) {
  ack.isolated = ackLabels(core_.desired_);
  if (change) {
    ack.ruleset_sha256 = change->report.after.sha256;
  } else if (auto status = core_.kernelStatus(); status.live) {
    ack.ruleset_sha256 = status.live->sha256;
  } else {
    ack.ruleset_sha256 = sha256Hex("");
  }
  if (ack.audit.entry_hash.empty()) {
    // No audit entry could be written for this order (the log refused): the all-zero hash says
    // so on the wire instead of pointing at an unrelated entry.
    ack.audit = AckAudit{0, std::string(64, '0')};
  }
  OrderOutcome outcome;
  if (agent_key_ == nullptr) {
    // A dispatch before useTrust(): there is no key to sign the rejection with, so it goes
    // unsigned (ack_envelope null), which the controller cannot take for an answer.
    logger("agent")->critical("event=ack_signing_failed error=\"no agent key yet\"");
  } else {
    const std::string payload = serializeAck(ack);
    const Signer* signers[] = {agent_key_};
    auto envelope = signDsse(kAckPayloadType, payload, signers);
    if (envelope.ok()) {
      outcome.ack_envelope = dsseEnvelopeToJson(*envelope);
    } else {
      logger("agent")->critical("event=ack_signing_failed error=\"{}\"", envelope.error().message);
    }
  }
  outcome.ack = std::move(ack);
  outcome.rejection = std::move(rejection);
  outcome.change = std::move(change);
  return outcome;
}

Ack SignedOrders::receivedAck() const {
  Ack ack;
  ack.agent_id = core_.gateway_id_;
  ack.received_at_ms = toUnixMillis(core_.clock_.now());
  return ack;
}

OrderOutcome SignedOrders::handleDispatch(const nlohmann::json& envelope) {
  Ack ack = receivedAck();
  if (!ready()) return refuseUntrusted(std::move(ack));
  return answer(std::move(ack), verifyDispatchJson(envelope, *trust_, self(), core_.desired_.replay,
                                                   core_.policy_, core_.clock_));
}

OrderOutcome SignedOrders::handleDispatch(std::string_view envelope_bytes) {
  Ack ack = receivedAck();
  if (!ready()) return refuseUntrusted(std::move(ack));
  return answer(std::move(ack), verifyDispatch(envelope_bytes, *trust_, self(),
                                               core_.desired_.replay, core_.policy_, core_.clock_));
}

OrderOutcome SignedOrders::refuseUntrusted(Ack ack) {
  OrderRejection rejection{RejectReason::kTrustExpired, "this agent has no trust file"};
  ack.result = AckResult::kRejected;
  ack.reason = rejection.code();
  return finishOrder(std::move(ack), rejection, std::nullopt);
}

OrderOutcome SignedOrders::answer(Ack ack, const OrderVerification& verification) {
  if (!verification.ok()) {
    const OrderRejection& rejection = verification.rejection();
    // What the (unverified) dispatch claimed, so the controller can match the ack; the ack's
    // own signature says "this agent rejected what claimed to be seq N".
    if (rejection.claimed_seq) ack.seq = *rejection.claimed_seq;
    AuditEvent entry = core_.baseEvent(
        "rejected", Action{ActionKind::kOrder, std::nullopt, "controller", rejection.drill});
    entry.outcome = "rejected";
    entry.reason = rejection.code() + ": " + rejection.message;
    if (ack.seq > 0) entry.seq = static_cast<uint64_t>(ack.seq);
    if (auto receipt = core_.audit(std::move(entry)); receipt.ok()) {
      ack.audit = AckAudit{static_cast<int64_t>(receipt->log_seq), receipt->entry_hash};
    }
    ack.result = AckResult::kRejected;
    ack.reason = rejection.code();
    return finishOrder(std::move(ack), rejection, std::nullopt);
  }

  const VerifiedOrder& order = verification.order();
  ack.seq = order.dispatch->seq;
  ack.command_id = order.authz.command_id;
  if (auto refusal = checkRelease(order)) {
    // Refused whole, before anything is stored: the seq and command id are not consumed, as for
    // any rejected dispatch.
    Action action{ActionKind::kRestore,
                  Isolation{order.authz.segment, order.authz.profile, order.authz.scope},
                  order.authz.requested_by, order.authz.drill, &order};
    action.scope = order.authz.scope;
    action.hosts = order.authz.hosts;
    AuditEvent entry = core_.baseEvent("rejected", action);
    entry.outcome = "rejected";
    entry.reason = refusal->code() + ": " + refusal->message;
    if (auto receipt = core_.audit(std::move(entry)); receipt.ok()) {
      ack.audit = AckAudit{static_cast<int64_t>(receipt->log_seq), receipt->entry_hash};
    }
    ack.result = AckResult::kRejected;
    ack.reason = refusal->code();
    return finishOrder(std::move(ack), std::move(refusal), std::nullopt);
  }
  core_.last_receipt_.reset();
  auto change = applyVerified(order);
  if (!change.ok()) {
    ack.result = AckResult::kFailed;
    ack.reason = ackReasonFor(change.error());
    // The entry that recorded the failure (or the refusal).
    if (const auto& receipt = core_.last_receipt_) {
      ack.audit = AckAudit{static_cast<int64_t>(receipt->log_seq), receipt->entry_hash};
    }
    return finishOrder(std::move(ack), std::nullopt, std::nullopt);
  }
  ack.result = change->changed ? AckResult::kApplied : AckResult::kAlreadyApplied;
  ack.applied_at_ms = toUnixMillis(core_.clock_.now());
  // An applied ack's reason is otherwise null: here it says the deadline is not the order's.
  ack.reason = ttlCapNote(order.authz, core_.policy_.agent);
  if (change->audit) {
    ack.audit = AckAudit{static_cast<int64_t>(change->audit->log_seq), change->audit->entry_hash};
  }
  return finishOrder(std::move(ack), std::nullopt, std::move(change).value());
}

void SignedOrders::rememberAck(const OrderOutcome& outcome) {
  if (outcome.rejection || outcome.ack.seq <= 0 || outcome.ack_envelope.is_null()) return;
  const int64_t keep_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(AgentCore::kKeepAcks).count();
  Status kept = core_.store_.rememberAck(outcome.ack.seq, outcome.ack_envelope.dump(),
                                         toUnixMillis(core_.clock_.now()), keep_ms);
  if (!kept.ok()) {
    logger("agent")->error("event=ack_not_kept seq={} error=\"{}\"", outcome.ack.seq,
                           kept.error().message);
  }
}

std::vector<std::pair<int64_t, nlohmann::json>> SignedOrders::recentAcks() {
  const auto since = core_.clock_.now() - AgentCore::kKeepAcks;
  auto stored = core_.store_.recentAcks(toUnixMillis(since), AgentCore::kResendAcks);
  if (!stored.ok()) {
    logger("agent")->error("event=acks_unreadable error=\"{}\"", stored.error().message);
    return {};
  }
  std::vector<std::pair<int64_t, nlohmann::json>> envelopes;
  for (const StoredAck& ack : *stored) {
    // Our own writing, but parsed without exceptions all the same.
    nlohmann::json envelope = nlohmann::json::parse(ack.envelope, nullptr, false);
    if (!envelope.is_discarded()) envelopes.emplace_back(ack.seq, std::move(envelope));
  }
  return envelopes;
}

Result<ChangeResult> SignedOrders::applyBreakglass(std::string_view authz_envelope_bytes) {
  if (!trust_) return makeError(ErrorCode::kInvalidArgument, "no trust file: cannot verify");
  OrderVerification verification =
      verifyBreakglass(authz_envelope_bytes, *trust_, core_.policy_, core_.clock_,
                       core_.desired_.replay.seen_command_ids, core_.gateway_id_);
  if (!verification.ok()) {
    const OrderRejection& rejection = verification.rejection();
    AuditEvent entry = core_.baseEvent(
        "rejected", Action{ActionKind::kBreakglass, std::nullopt, "local", rejection.drill});
    entry.outcome = "rejected";
    entry.reason = rejection.code() + ": " + rejection.message;
    (void)core_.audit(std::move(entry));
    return makeError(ErrorCode::kInvalidArgument,
                     "break-glass file refused (" + rejection.code() + "): " + rejection.message);
  }
  return applyVerified(verification.order());
}

// ---- AgentCore's order methods -------------------------------------------------------------
// Defined here, beside what they forward to, rather than in agent_core.cc.

Status AgentCore::useTrust(Trust trust, const Signer& agent_key) {
  return orders_->useTrust(std::move(trust), agent_key);
}

OrderOutcome AgentCore::handleDispatch(const nlohmann::json& envelope) {
  OrderOutcome outcome = orders_->handleDispatch(envelope);
  ++order_results_[ackResultName(outcome.ack.result)];
  return outcome;
}

OrderOutcome AgentCore::handleDispatch(std::string_view envelope_bytes) {
  OrderOutcome outcome = orders_->handleDispatch(envelope_bytes);
  ++order_results_[ackResultName(outcome.ack.result)];
  return outcome;
}

void AgentCore::rememberAck(const OrderOutcome& outcome) { orders_->rememberAck(outcome); }

std::vector<std::pair<int64_t, nlohmann::json>> AgentCore::recentAcks() {
  return orders_->recentAcks();
}

Result<ChangeResult> AgentCore::applyBreakglass(std::string_view authz_envelope_bytes) {
  return orders_->applyBreakglass(authz_envelope_bytes);
}

OrderVerification AgentCore::checkEnvelope(std::string_view envelope_bytes) const {
  return orders_->checkEnvelope(envelope_bytes);
}

}  // namespace shadan::agent
