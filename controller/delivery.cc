#include "controller/delivery.h"

#include <algorithm>

#include "common/logging.h"
#include "common/strict_json.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

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

}  // namespace

void Delivery::deliverToTargets(const std::vector<std::string>& targets) {
  for (const auto& target : targets) {
    if (auto status = deliverPending(target); !status.ok()) {
      logger("controller")
          ->warn("delivery failed agent_id={} error={}", target, status.error().message);
    }
  }
}

void Delivery::deliverOrder(const std::string& command_id,
                            const std::vector<std::string>& targets) {
  std::vector<std::string> behind;
  auto direct = [&]() -> Status {
    bool any = false;
    for (const auto& target : targets) {
      const bool ready = caught_up_.count(target) != 0 && ctx_.channel.connected(target);
      any = any || ready;
      if (!ready) behind.push_back(target);
    }
    if (!any) return okStatus();
    SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(command_id));
    if (!order.has_value()) return makeError(ErrorCode::kInternal, "order not stored");
    SHADAN_ASSIGN_OR_RETURN(auto dispatches, ctx_.store.dispatchesForOrder(command_id));
    for (auto& dispatch : dispatches) {
      if (dispatch.state != DispatchState::kPending || caught_up_.count(dispatch.agent_id) == 0 ||
          !ctx_.channel.connected(dispatch.agent_id)) {
        continue;
      }
      SHADAN_ASSIGN_OR_RETURN(auto agent, ctx_.store.getAgent(dispatch.agent_id));
      if (!agent.has_value() || agent->status != AgentStatus::kApproved) continue;
      const std::string agent_id = dispatch.agent_id;
      if (Status sent = deliver(std::move(dispatch), *agent, *order); !sent.ok()) {
        caught_up_.erase(agent_id);
        behind.push_back(agent_id);
      }
    }
    return okStatus();
  };
  if (Status status = direct(); !status.ok()) {
    logger("controller")
        ->warn("delivery failed command_id={} error={}", command_id, status.error().message);
    behind = targets;
  }
  deliverToTargets(behind);
}

Status Delivery::expireLapsed(int64_t now) {
  SHADAN_ASSIGN_OR_RETURN(auto pending, ctx_.store.allPendingDispatches());
  for (auto& dispatch : pending) {
    SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(dispatch.command_id));
    if (order.has_value() && now >= order->expires_at_ms) {
      SHADAN_RETURN_IF_ERROR(expireDispatch(dispatch, "authz expired without an ack"));
    }
  }
  return okStatus();
}

Status Delivery::recordDispatch(OrderRecord order, const DsseEnvelope& authz_envelope) {
  const int64_t now = ctx_.nowMs();
  order.authz_envelope = serializeDsseEnvelope(authz_envelope);
  order.state = OrderState::kDispatched;
  order.updated_ms = now;
  SHADAN_RETURN_IF_ERROR(ctx_.store.putOrder(order));
  for (const auto& target : order.targets) {
    DispatchRecord dispatch;
    dispatch.agent_id = target;
    dispatch.command_id = order.command_id;
    dispatch.created_ms = now;
    dispatch.updated_ms = now;
    SHADAN_RETURN_IF_ERROR(ctx_.store.putDispatch(dispatch));
  }
  SHADAN_ASSIGN_OR_RETURN(auto authz, parseAuthz(order.authz_payload));
  const std::string key = generationKey(order.scope, order.segment);
  SHADAN_ASSIGN_OR_RETURN(auto segments, ctx_.store.listSegments());
  SegmentRecord segment{key, authz.segment_gen, order.action == "isolate",
                        order.action == "isolate" ? order.profile : ""};
  for (const auto& existing : segments) {
    if (existing.segment == key) segment.gen = std::max(segment.gen, existing.gen);
  }
  return ctx_.store.putSegment(segment);
}

Status Delivery::deliverPending(const std::string& agent_id) {
  if (!ctx_.channel.connected(agent_id)) return okStatus();
  SHADAN_ASSIGN_OR_RETURN(auto agent, ctx_.store.getAgent(agent_id));
  if (!agent.has_value() || agent->status != AgentStatus::kApproved) return okStatus();
  SHADAN_ASSIGN_OR_RETURN(auto pending, ctx_.store.pendingDispatches(agent_id));
  const auto last_seq = last_seq_.find(agent_id);
  const std::set<std::string>& sent = sent_on_session_[agent_id];
  bool all_sent = true;
  for (auto& dispatch : pending) {
    // Already with the agent, before any store read: an agent that has many dispatches in
    // flight (an alert storm, a slow gateway) must not make each new order cost one read per
    // dispatch it still holds. Those that lapse there are expired by the sweep.
    if (sent.count(dispatch.command_id) != 0) continue;
    // The agent has already processed this seq (its ack was lost): sending it again would only
    // earn a replayed_seq rejection.
    if (dispatch.seq != 0 && last_seq != last_seq_.end() && dispatch.seq <= last_seq->second) {
      continue;
    }
    SHADAN_ASSIGN_OR_RETURN(auto order, ctx_.store.getOrder(dispatch.command_id));
    if (!order.has_value()) return makeError(ErrorCode::kInternal, "dispatch without its order");
    if (ctx_.nowMs() >= order->expires_at_ms) {
      SHADAN_RETURN_IF_ERROR(expireDispatch(dispatch, "authz expired before delivery"));
      continue;
    }
    const std::string command_id = dispatch.command_id;
    SHADAN_RETURN_IF_ERROR(deliver(std::move(dispatch), *agent, *order));
    all_sent = all_sent && sent.count(command_id) != 0;
  }
  // Every pending dispatch is with the agent now: later orders may go to it directly.
  if (all_sent) caught_up_.insert(agent_id);
  return okStatus();
}

Status Delivery::deliver(DispatchRecord dispatch, const AgentRecord& agent,
                         const OrderRecord& order) {
  const int64_t now = ctx_.nowMs();
  SHADAN_ASSIGN_OR_RETURN(auto authz_envelope,
                          parseDsseEnvelope(order.authz_envelope, "stored authz"));
  DsseEnvelope signed_envelope;
  SHADAN_RETURN_IF_ERROR_TX(ctx_.store.transaction([&]() -> Status {
    if (dispatch.seq == 0) {
      SHADAN_ASSIGN_OR_RETURN(auto seq, ctx_.store.nextSeq(agent.agent_id));
      dispatch.seq = seq;
    }
    Dispatch body;
    body.agent_id = agent.agent_id;
    body.agent_key = agent.keyid;
    body.seq = dispatch.seq;
    body.issued_at_ms = now;
    body.expires_at_ms =
        std::min(now + ctx_.options.timings.dispatch_validity_s * 1000, order.expires_at_ms);
    body.authz = authz_envelope;
    const Signer* signers[] = {&ctx_.controller_key};
    SHADAN_ASSIGN_OR_RETURN(auto envelope,
                            signDsse(kDispatchPayloadType, serializeDispatch(body), signers));
    signed_envelope = std::move(envelope);
    dispatch.envelope = serializeDsseEnvelope(signed_envelope);
    dispatch.envelope_expires_ms = body.expires_at_ms;
    dispatch.sent_ms = now;
    dispatch.updated_ms = now;
    return ctx_.store.putDispatch(dispatch);
  }));
  const Status sent_status = ctx_.channel.send(
      agent.agent_id,
      json{{"type", "dispatch"}, {"envelope", dsseEnvelopeToJson(signed_envelope)}});
  const bool sent = sent_status.ok();
  if (sent) sent_on_session_[agent.agent_id].insert(dispatch.command_id);
  if (!sent) caught_up_.erase(agent.agent_id);
  if (!sent) {
    logger("controller")
        ->warn("dispatch not queued agent_id={} seq={} error={}", agent.agent_id, dispatch.seq,
               sent_status.error().message);
  }
  logger("controller")
      ->info("dispatch agent_id={} seq={} command_id={} sent={}", agent.agent_id, dispatch.seq,
             dispatch.command_id, sent);
  return ctx_.audit(AuditEventBuilder("dispatch_sent")
                        .outcome(sent ? "sent" : "queued")
                        .controller(ctx_.controller_key.keyId())
                        .what(order.action, order.segment, order.profile)
                        .agent(agent.agent_id)
                        .command(dispatch.command_id)
                        .seq(dispatch.seq)
                        .markDrill(order.drill)
                        .build());
}

bool Delivery::isDrillOrder(const std::string& command_id) {
  auto order = ctx_.store.getOrder(command_id);
  return order.ok() && order->has_value() && (*order)->drill;
}

Status Delivery::expireDispatch(DispatchRecord dispatch, const std::string& why) {
  dispatch.state = DispatchState::kExpired;
  dispatch.updated_ms = ctx_.nowMs();
  SHADAN_RETURN_IF_ERROR(ctx_.store.putDispatch(dispatch));
  return ctx_.audit(AuditEventBuilder("dispatch_expired")
                        .outcome("expired")
                        .reason(why)
                        .agent(dispatch.agent_id)
                        .command(dispatch.command_id)
                        .seq(dispatch.seq)
                        .markDrill(isDrillOrder(dispatch.command_id))
                        .build());
}

std::optional<Ed25519PublicKey> Delivery::agentKeyFromTrust(const std::string& agent_id,
                                                            const std::string& keyid) const {
  const TrustKey* key = ctx_.trust.findKey(keyid);
  if (key == nullptr || !key->hasRole(TrustRole::kAgent) || key->identity != "agent:" + agent_id) {
    return std::nullopt;
  }
  return key->public_key;
}

void Delivery::onHello(const AgentHello& hello) {
  const int64_t now = ctx_.nowMs();
  auto log = logger("controller");
  last_seq_[hello.agent_id] = hello.last_seq;
  sent_on_session_.erase(hello.agent_id);
  caught_up_.erase(hello.agent_id);
  std::optional<Ed25519PublicKey> public_key;
  if (hello.public_key && ed25519KeyId(*hello.public_key) == hello.agent_key) {
    public_key = hello.public_key;
  } else {
    public_key = agentKeyFromTrust(hello.agent_id, hello.agent_key);
  }
  auto existing = ctx_.store.getAgent(hello.agent_id);
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
  if (auto status = ctx_.store.putAgent(agent); !status.ok()) {
    log->error("agent store failed agent_id={} error={}", hello.agent_id, status.error().message);
    return;
  }
  log->info("hello agent_id={} status={} last_seq={} version={}", hello.agent_id,
            agentStatusName(agent.status), hello.last_seq, hello.version);
  if (enrollment_event) {
    (void)ctx_.audit(AuditEventBuilder(*enrollment_event)
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

void Delivery::onDisconnect(const std::string& agent_id) {
  last_seq_.erase(agent_id);
  sent_on_session_.erase(agent_id);
  caught_up_.erase(agent_id);
  auto agent = ctx_.store.getAgent(agent_id);
  if (agent.ok() && agent->has_value()) {
    (*agent)->last_seen_ms = ctx_.nowMs();
    (void)ctx_.store.putAgent(**agent);
  }
  logger("controller")->info("agent disconnected agent_id={}", agent_id);
}

Status Delivery::onAck(const std::string& agent_id, const json& envelope_json) {
  auto refuse = [&](Error error) -> Status {
    (void)ctx_.audit(AuditEventBuilder("ack_refused")
                         .outcome("rejected")
                         .reason(error.message)
                         .agent(agent_id)
                         .build());
    logger("controller")->warn("ack refused agent_id={} error={}", agent_id, error.message);
    return error;
  };
  auto envelope = dsseEnvelopeFromJson(envelope_json, "ack", "/envelope");
  if (!envelope.ok()) return refuse(envelope.error());
  SHADAN_ASSIGN_OR_RETURN(auto agent, ctx_.store.getAgent(agent_id));
  if (!agent.has_value() || agent->status != AgentStatus::kApproved || !agent->public_key) {
    return refuse(forbidden("ack from agent " + agent_id + " which is not approved"));
  }
  AgentRecord record = std::move(*agent);
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
  SHADAN_ASSIGN_OR_RETURN(auto found, ctx_.store.dispatchBySeq(agent_id, ack->seq));
  if (!found.has_value() || ack->seq == 0) {
    return refuse(makeError(ErrorCode::kNotFound,
                            "ack for unknown seq " + std::to_string(ack->seq) + " of " + agent_id));
  }
  DispatchRecord dispatch = std::move(*found);
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
  const int64_t now = ctx_.nowMs();
  dispatch.state = stateOfAck(ack->result);
  dispatch.ack_json = envelope->payload;
  dispatch.updated_ms = now;
  record.last_seen_ms = now;
  record.last_state_json = json{
      {"isolated", ack->isolated},
      {"ruleset_sha256", ack->ruleset_sha256},
      {"acked_at",
       formatRfc3339(now)}}.dump();
  SHADAN_RETURN_IF_ERROR_TX(ctx_.store.transaction([&]() -> Status {
    SHADAN_RETURN_IF_ERROR(ctx_.store.putDispatch(dispatch));
    return ctx_.store.putAgent(record);
  }));
  return ctx_.audit(AuditEventBuilder("ack_received")
                        .outcome(ackResultName(ack->result))
                        .reason(ack->reason)
                        .agent(agent_id)
                        .command(dispatch.command_id)
                        .seq(ack->seq)
                        .markDrill(isDrillOrder(dispatch.command_id))
                        .detail(json{{"agent_log_seq", ack->audit.log_seq},
                                     {"agent_entry_hash", ack->audit.entry_hash}})
                        .build());
}

Status Delivery::approveAgent(const Caller& caller, const std::string& agent_id,
                              const std::string& reason) {
  if (caller.role != ApiRole::kOperator) {
    return forbidden("role " + std::string(apiRoleName(caller.role)) + " may not approve agents");
  }
  SHADAN_RETURN_IF_ERROR(checkReason(reason));
  SHADAN_ASSIGN_OR_RETURN(auto agent, ctx_.store.getAgent(agent_id));
  if (!agent.has_value()) {
    return makeError(ErrorCode::kNotFound, "no agent " + quoteForMessage(agent_id));
  }
  AgentRecord record = std::move(*agent);
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
  SHADAN_RETURN_IF_ERROR(ctx_.store.putAgent(record));
  SHADAN_RETURN_IF_ERROR(ctx_.audit(AuditEventBuilder("agent_approved")
                                        .outcome("ok")
                                        .requestedBy(caller.identity())
                                        .keyids({record.keyid})
                                        .why(reason, std::nullopt)
                                        .agent(agent_id)
                                        .build()));
  return deliverPending(agent_id);
}

}  // namespace shadan::controller
