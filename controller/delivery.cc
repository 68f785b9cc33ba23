#include "controller/delivery.h"

#include <algorithm>
#include <utility>

#include "common/logging.h"
#include "common/strict_json.h"

namespace shadan::controller {
namespace {

using nlohmann::json;

// Trying again what a store failure left undone: after this, doubling, up to that.
constexpr int64_t kRetryFirstMs = 1000;
constexpr int64_t kRetryMostMs = 30'000;

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

// The dispatch message around an envelope already serialized (compact) for the store: the very
// bytes dispatchMessage(envelope).dump() gives (members in that order), without parsing,
// rebuilding and serializing the envelope once more per gateway.
std::string dispatchMessageText(const std::string& envelope_json) {
  return R"({"envelope":)" + envelope_json + R"(,"type":"dispatch"})";
}

}  // namespace

Result<std::vector<AgentRecord>> Delivery::deliverable(const std::vector<std::string>& agent_ids) {
  std::vector<std::string> connected;
  for (const auto& agent_id : agent_ids) {
    if (ctx_.channel.connected(agent_id)) connected.push_back(agent_id);
  }
  SHADAN_ASSIGN_OR_RETURN(auto records, ctx_.store.getAgents(connected));
  std::vector<AgentRecord> agents;
  for (auto& record : records) {
    if (record.has_value() && record->status == AgentStatus::kApproved) {
      agents.push_back(std::move(*record));
    }
  }
  return agents;
}

void Delivery::deliverToTargets(const std::vector<std::string>& targets) {
  auto agents = deliverable(targets);
  if (!agents.ok()) {
    size_t connected = 0;
    for (const auto& target : targets) {  // connected and not served: tried again
      if (!ctx_.channel.connected(target)) continue;
      behind_.insert(target);
      ++connected;
    }
    logger("controller")
        ->warn("delivery failed agents={} error={}", connected, agents.error().message);
    return;
  }
  if (Status status = deliverPendingOf(*agents); !status.ok()) {
    logger("controller")
        ->warn("delivery failed agents={} error={}", agents->size(), status.error().message);
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
    std::erase_if(dispatches, [&](const DispatchRecord& dispatch) {
      return dispatch.state != DispatchState::kPending ||
             caught_up_.count(dispatch.agent_id) == 0 || !ctx_.channel.connected(dispatch.agent_id);
    });
    std::vector<std::string> ids;
    ids.reserve(dispatches.size());
    for (const auto& dispatch : dispatches) ids.push_back(dispatch.agent_id);
    SHADAN_ASSIGN_OR_RETURN(auto records, ctx_.store.getAgents(ids));
    std::vector<AgentRecord> agents;
    agents.reserve(dispatches.size());  // Outgoing points into it: no reallocation
    std::vector<Outgoing> batch;
    for (size_t i = 0; i < dispatches.size(); ++i) {
      auto& agent = records[i];
      if (!agent.has_value() || agent->status != AgentStatus::kApproved) continue;
      agents.push_back(std::move(*agent));
      batch.push_back(Outgoing{std::move(dispatches[i]), &agents.back(), &*order});
    }
    const Status sent = deliverBatch(batch);
    for (const Outgoing& item : batch) {
      if (sent_on_session_[item.agent->agent_id].count(command_id) == 0) {
        caught_up_.erase(item.agent->agent_id);
        behind.push_back(item.agent->agent_id);
      }
    }
    return sent;
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
  OrderReader orders(ctx_.store);  // a fan-out leaves thousands of one order's dispatches pending
  for (auto& dispatch : pending) {
    SHADAN_ASSIGN_OR_RETURN(const OrderRecord* order, orders.get(dispatch.command_id));
    if (order != nullptr && now >= order->expires_at_ms) {
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

Status Delivery::deliverCreatedElsewhere() {
  SHADAN_ASSIGN_OR_RETURN(auto created, ctx_.store.pendingCreatedSince(created_cursor_));
  created_cursor_ = created.cursor;
  std::vector<std::string> targets;
  std::set<std::string> chosen;
  for (const auto& [agent_id, command_id] : created.dispatches) {
    if (!ctx_.channel.connected(agent_id)) continue;
    const auto sent = sent_on_session_.find(agent_id);
    if (sent != sent_on_session_.end() && sent->second.count(command_id) != 0) continue;
    if (!chosen.insert(agent_id).second) continue;
    // Not all of its pending dispatches are with it now: no order goes to it directly until
    // deliverPending has sent them in creation order.
    caught_up_.erase(agent_id);
    targets.push_back(agent_id);
  }
  if (!targets.empty()) deliverToTargets(targets);
  retryLeftUndone();
  // Said once while it fails: the look runs five times a second.
  if (Status kept = ctx_.store.keepPresence(); !kept.ok()) {
    if (!presence_failing_) {
      logger("controller")->warn("presence not kept alive error={}", kept.error().message);
    }
    presence_failing_ = true;
  } else {
    presence_failing_ = false;
  }
  return okStatus();
}

void Delivery::retryLeftUndone() {
  if (retry_acks_.empty() && behind_.empty()) return;
  const int64_t now = ctx_.nowMs();
  if (now < retry_at_ms_) return;
  if (!retry_acks_.empty()) {
    const std::vector<IncomingAck> again = std::exchange(retry_acks_, {});
    logger("controller")->info("acks checked again acks={}", again.size());
    (void)checkAcks(again);  // those that still cannot be stored come back to retry_acks_
  }
  if (!behind_.empty()) {
    const std::vector<std::string> again(behind_.begin(), behind_.end());
    behind_.clear();  // deliverPendingOf puts back those it still cannot serve
    logger("controller")->info("delivery retried agents={}", again.size());
    deliverToTargets(again);
  }
  // What fails again (a chunk etcd refuses as too large, say) is not sent five times a second:
  // the next try after 1 s, 2 s, ... 30 s, back to the next tick once all is done.
  if (retry_acks_.empty() && behind_.empty()) {
    retry_delay_ms_ = 0;
    retry_at_ms_ = 0;
  } else {
    retry_delay_ms_ = std::clamp<int64_t>(retry_delay_ms_ * 2, kRetryFirstMs, kRetryMostMs);
    retry_at_ms_ = now + retry_delay_ms_;
  }
}

Status Delivery::deliverPending(const std::string& agent_id) {
  SHADAN_ASSIGN_OR_RETURN(const auto agents, deliverable({agent_id}));
  return deliverPendingOf(agents);
}

Status Delivery::deliverPendingOf(const std::vector<AgentRecord>& agents) {
  std::vector<Outgoing> batch;
  OrderReader orders(ctx_.store);    // each order read once for the whole batch
  std::set<std::string> incomplete;  // agents not all of whose dispatches are sent
  Status result = okStatus();
  std::vector<std::string> ids;
  ids.reserve(agents.size());
  for (const AgentRecord& agent : agents) ids.push_back(agent.agent_id);
  // Every agent's pending list read together: on etcd a few round trips for the whole batch,
  // not two per agent (the look that delivers other controllers' orders serves hundreds).
  auto pending = ctx_.store.pendingDispatchesOf(ids);
  if (!pending.ok()) {
    logger("controller")
        ->warn("delivery failed agents={} error={}", agents.size(), pending.error().message);
    result = pending.error();
    incomplete.insert(ids.begin(), ids.end());
  }
  for (size_t i = 0; pending.ok() && i < agents.size(); ++i) {
    const AgentRecord& agent = agents[i];
    if (Status collected = collectPending(agent, std::move((*pending)[i]), batch, orders);
        !collected.ok()) {
      logger("controller")
          ->warn("delivery failed agent_id={} error={}", agent.agent_id, collected.error().message);
      incomplete.insert(agent.agent_id);
      if (result.ok()) result = collected;
    }
  }
  if (Status sent = deliverBatch(batch); !sent.ok() && result.ok()) result = sent;
  for (const Outgoing& item : batch) {
    const auto on_session = sent_on_session_.find(item.agent->agent_id);
    if (on_session == sent_on_session_.end() ||
        on_session->second.count(item.dispatch.command_id) == 0) {
      incomplete.insert(item.agent->agent_id);
    }
  }
  // Every pending dispatch is with these agents now: later orders may go to them directly.
  for (const AgentRecord& agent : agents) {
    if (incomplete.count(agent.agent_id) == 0) {
      caught_up_.insert(agent.agent_id);
      behind_.erase(agent.agent_id);
    } else if (ctx_.channel.connected(agent.agent_id)) {
      behind_.insert(agent.agent_id);
    }
  }
  return result;
}

Status Delivery::collectPending(const AgentRecord& agent, std::vector<DispatchRecord> pending,
                                std::vector<Outgoing>& batch, OrderReader& orders) {
  const auto last_seq = last_seq_.find(agent.agent_id);
  const std::set<std::string>& sent = sent_on_session_[agent.agent_id];
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
    SHADAN_ASSIGN_OR_RETURN(const OrderRecord* order, orders.get(dispatch.command_id));
    if (order == nullptr) return makeError(ErrorCode::kInternal, "dispatch without its order");
    if (ctx_.nowMs() >= order->expires_at_ms) {
      SHADAN_RETURN_IF_ERROR(expireDispatch(dispatch, "authz expired before delivery"));
      continue;
    }
    batch.push_back(Outgoing{std::move(dispatch), &agent, order});
  }
  return okStatus();
}

Status Delivery::deliverBatch(std::vector<Outgoing>& batch) {
  const int64_t now = ctx_.nowMs();
  std::map<std::string, DsseEnvelope> authz;  // each order's authz envelope, parsed once
  Status audited = okStatus();
  const size_t chunk = std::max<size_t>(1, ctx_.options.delivery_chunk);
  for (size_t begin = 0; begin < batch.size(); begin += chunk) {
    const size_t end = std::min(batch.size(), begin + chunk);
    SHADAN_RETURN_IF_ERROR_TX(ctx_.store.transaction([&]() -> Status {
      // The chunk's new seqs, read and counted on together.
      std::vector<std::string> unnumbered;
      for (size_t i = begin; i < end; ++i) {
        if (batch[i].dispatch.seq == 0) unnumbered.push_back(batch[i].agent->agent_id);
      }
      SHADAN_ASSIGN_OR_RETURN(const auto seqs, ctx_.store.nextSeqs(unnumbered));
      size_t next_seq = 0;
      for (size_t i = begin; i < end; ++i) {
        DispatchRecord& dispatch = batch[i].dispatch;
        const AgentRecord& agent = *batch[i].agent;
        const OrderRecord& order = *batch[i].order;
        auto parsed = authz.find(order.command_id);
        if (parsed == authz.end()) {
          SHADAN_ASSIGN_OR_RETURN(auto envelope,
                                  parseDsseEnvelope(order.authz_envelope, "stored authz"));
          parsed = authz.emplace(order.command_id, std::move(envelope)).first;
        }
        if (dispatch.seq == 0) dispatch.seq = seqs.at(next_seq++);
        Dispatch body;
        body.agent_id = agent.agent_id;
        body.agent_key = agent.keyid;
        body.seq = dispatch.seq;
        body.issued_at_ms = now;
        body.expires_at_ms =
            std::min(now + ctx_.options.timings.dispatch_validity_s * 1000, order.expires_at_ms);
        body.authz = parsed->second;
        const Signer* signers[] = {&ctx_.controller_key};
        SHADAN_ASSIGN_OR_RETURN(const DsseEnvelope signed_envelope,
                                signDsse(kDispatchPayloadType, serializeDispatch(body), signers));
        dispatch.envelope = serializeDsseEnvelope(signed_envelope);
        dispatch.envelope_expires_ms = body.expires_at_ms;
        dispatch.sent_ms = now;
        dispatch.updated_ms = now;
        SHADAN_RETURN_IF_ERROR(ctx_.store.putDispatch(dispatch));
      }
      return okStatus();
    }));
    for (size_t i = begin; i < end; ++i) {
      const DispatchRecord& dispatch = batch[i].dispatch;
      const AgentRecord& agent = *batch[i].agent;
      const OrderRecord& order = *batch[i].order;
      // Queued only: nothing reaches the network before the flush below, after the audit sync.
      const Status sent_status =
          ctx_.channel.sendText(agent.agent_id, dispatchMessageText(dispatch.envelope));
      const bool sent = sent_status.ok();
      if (sent) sent_on_session_[agent.agent_id].insert(dispatch.command_id);
      if (!sent) {
        caught_up_.erase(agent.agent_id);
        logger("controller")
            ->warn("dispatch not queued agent_id={} seq={} error={}", agent.agent_id, dispatch.seq,
                   sent_status.error().message);
      }
      logger("controller")
          ->info("dispatch agent_id={} seq={} command_id={} sent={}", agent.agent_id, dispatch.seq,
                 dispatch.command_id, sent);
      // One sync for the chunk: the last entry's covers the others.
      Status status = ctx_.audit(AuditEventBuilder("dispatch_sent")
                                     .outcome(sent ? "sent" : "queued")
                                     .controller(ctx_.controller_key.keyId())
                                     .what(order.action, order.segment, order.profile)
                                     .agent(agent.agent_id)
                                     .command(dispatch.command_id)
                                     .seq(dispatch.seq)
                                     .markDrill(order.drill)
                                     .build(),
                                 i + 1 == end);
      if (!status.ok() && audited.ok()) audited = status;
    }
    ctx_.channel.flush();
  }
  return audited;
}

bool Delivery::isDrillOrder(const std::string& command_id) {
  if (auto known = drill_orders_.find(command_id); known != drill_orders_.end()) {
    return known->second;
  }
  auto order = ctx_.store.getOrder(command_id);
  if (!order.ok() || !order->has_value()) return false;  // unknown now is not unknown forever
  // Bounded: orders older than the last thousand are read again when asked about.
  constexpr size_t kRemembered = 1024;
  if (drill_orders_.size() >= kRemembered) drill_orders_.clear();
  return drill_orders_[command_id] = (*order)->drill;
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
  bool changed = true;  // the stored record must be written now
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
    } else if (!agent.public_key && public_key) {
      agent.public_key = public_key;
    } else {
      changed = false;  // only last_seen moves: written with the other hellos of the moment
    }
  }
  if (changed) {
    if (auto status = ctx_.store.putAgent(agent); !status.ok()) {
      log->error("agent store failed agent_id={} error={}", hello.agent_id, status.error().message);
      return;
    }
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
  }
  // Batched with the moment's other hellos: last_seen, presence, and (approved) delivery.
  const bool first = seen_.empty();
  seen_[hello.agent_id] = {now, agent.status == AgentStatus::kApproved};
  if (first) ctx_.defer([this] { flushHellos(); });
}

void Delivery::onDisconnect(const std::string& agent_id) {
  last_seq_.erase(agent_id);
  behind_.erase(agent_id);
  sent_on_session_.erase(agent_id);
  caught_up_.erase(agent_id);
  const bool first = seen_.empty();
  seen_[agent_id] = {ctx_.nowMs(), false};
  if (first) ctx_.defer([this] { flushHellos(); });
  logger("controller")->info("agent disconnected agent_id={}", agent_id);
}

void Delivery::flushHellos() {
  std::map<std::string, std::pair<int64_t, bool>> seen;
  seen.swap(seen_);
  auto log = logger("controller");
  std::vector<AgentRecord> agents;
  agents.reserve(seen.size());  // collectPending keeps pointers into it
  const Status stored = ctx_.store.transaction([&]() -> Status {
    std::vector<std::string> ids;
    ids.reserve(seen.size());
    for (const auto& entry : seen) ids.push_back(entry.first);
    SHADAN_ASSIGN_OR_RETURN(auto records, ctx_.store.getAgents(ids));
    size_t index = 0;
    for (const auto& [agent_id, entry] : seen) {
      auto& agent = records[index++];
      if (!agent.has_value()) continue;
      agent->last_seen_ms = std::max(agent->last_seen_ms, entry.first);
      SHADAN_RETURN_IF_ERROR(ctx_.store.putAgent(*agent));
      if (entry.second && agent->status == AgentStatus::kApproved &&
          ctx_.channel.connected(agent_id)) {
        agents.push_back(std::move(*agent));
      }
    }
    return okStatus();
  });
  if (!stored.ok()) log->error("agents' last_seen not stored error={}", stored.error().message);
  // Which of them hold a session here now, for the status of every controller (store.h).
  std::vector<std::string> connected;
  std::vector<std::string> gone;
  for (const auto& entry : seen) {
    (ctx_.channel.connected(entry.first) ? connected : gone).push_back(entry.first);
  }
  if (Status noted = ctx_.store.notePresence(connected, gone); !noted.ok()) {
    log->warn("presence not recorded agents={} error={}", seen.size(), noted.error().message);
  }
  // The pending dispatches of every agent that said hello, signed and stored together.
  if (Status sent = deliverPendingOf(agents); !sent.ok()) {
    log->warn("delivery failed after hello agents={} error={}", agents.size(),
              sent.error().message);
  }
}

Status Delivery::onAck(const std::string& agent_id, const json& envelope_json,
                       const std::optional<Ed25519PublicKey>& verified_with) {
  IncomingAck incoming{agent_id, envelope_json, verified_with};
  if (!ctx_.options.defer) return checkAcks({std::move(incoming)}).front();
  incoming_acks_.push_back(std::move(incoming));
  if (incoming_acks_.size() == 1) {
    ctx_.defer([this] { (void)checkAcks(std::exchange(incoming_acks_, {})); });
  }
  return okStatus();
}

std::vector<Status> Delivery::checkAcks(const std::vector<IncomingAck>& acks) {
  std::vector<Status> out(acks.size(), okStatus());
  std::vector<std::optional<DsseEnvelope>> envelopes(acks.size());
  std::vector<std::optional<Result<Ack>>> payloads(acks.size());
  std::vector<ControllerStore::AckQuery> queries;
  std::vector<size_t> queried;  // index in `acks` of each query
  for (size_t i = 0; i < acks.size(); ++i) {
    auto envelope = dsseEnvelopeFromJson(acks[i].envelope, "ack", "/envelope");
    if (!envelope.ok()) {
      out[i] = refuseAck(acks[i].agent_id, envelope.error());
      continue;
    }
    // The seq and command the ack claims, taken before its signature is checked only to read
    // the agent and its dispatch together; nothing is decided on them until it verifies.
    payloads[i] = parseAck(envelope->payload);
    ControllerStore::AckQuery query{acks[i].agent_id, 0, std::nullopt};
    if (payloads[i]->ok()) {
      query.seq = (*payloads[i])->seq;
      query.command_id = (*payloads[i])->command_id;
    }
    envelopes[i] = std::move(*envelope);
    queries.push_back(std::move(query));
    queried.push_back(i);
  }
  auto subjects = ctx_.store.ackSubjects(queries);
  if (!subjects.ok()) {
    // Not refused, only not checked: the agent stays connected and will not send them again
    // by itself, so they are checked again at the next follow tick (or its next connection).
    logger("controller")
        ->warn("acks not checked acks={} error={}", queried.size(), subjects.error().message);
    for (const size_t i : queried) retry_acks_.push_back(acks[i]);
  }
  for (size_t q = 0; q < queried.size(); ++q) {
    const size_t i = queried[q];
    out[i] = subjects.ok()
                 ? checkAck(acks[i], *envelopes[i], *payloads[i], std::move((*subjects)[q]))
                 : Status(subjects.error());
  }
  if (!staged_acks_.empty()) flushAcks();
  return out;
}

Status Delivery::refuseAck(const std::string& agent_id, Error error) {
  (void)ctx_.audit(AuditEventBuilder("ack_refused")
                       .outcome("rejected")
                       .reason(error.message)
                       .agent(agent_id)
                       .build());
  logger("controller")->warn("ack refused agent_id={} error={}", agent_id, error.message);
  return error;
}

Status Delivery::checkAck(const IncomingAck& incoming, const DsseEnvelope& envelope,
                          const Result<Ack>& ack, ControllerStore::AckSubject subject) {
  const std::string& agent_id = incoming.agent_id;
  const std::optional<Ed25519PublicKey>& verified_with = incoming.verified_with;
  auto refuse = [&](Error error) -> Status { return refuseAck(agent_id, std::move(error)); };
  std::optional<AgentRecord>& agent = subject.agent;
  if (!agent.has_value() || agent->status != AgentStatus::kApproved || !agent->public_key) {
    return refuse(forbidden("ack from agent " + agent_id + " which is not approved"));
  }
  AgentRecord record = std::move(*agent);
  const Ed25519PublicKey public_key = *record.public_key;
  const std::string keyid = record.keyid;
  // The hub verified every signature with the key of the agent's hello: that is this check
  // exactly when it is the enrolled key under the enrolled keyid. Anything else, checked here.
  const bool verified_on_network = verified_with.has_value() && *verified_with == public_key &&
                                   ed25519KeyId(public_key) == keyid;
  if (!verified_on_network) {
    auto verification = verifyDsse(envelope, kAckPayloadType,
                                   [&](std::string_view id) -> std::optional<Ed25519PublicKey> {
                                     if (id == keyid) return public_key;
                                     return std::nullopt;
                                   });
    if (!verification.ok()) return refuse(verification.error());
    if (!verification->allValid()) {
      return refuse(
          forbidden("ack signature does not verify with the enrolled key of " + agent_id));
    }
  }
  if (!ack.ok()) return refuse(ack.error());
  if (ack->agent_id != agent_id) {
    return refuse(forbidden("ack names agent " + quoteForMessage(ack->agent_id) +
                            " on the session of " + agent_id));
  }
  std::optional<DispatchRecord>& found = subject.dispatch;
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
  if (!staged_seqs_.emplace(agent_id, ack->seq).second) return okStatus();  // staged already
  const int64_t now = ctx_.nowMs();
  dispatch.state = stateOfAck(ack->result);
  dispatch.ack_json = envelope.payload;
  dispatch.updated_ms = now;
  record.last_seen_ms = now;
  record.last_state_json = json{
      {"isolated", ack->isolated},
      {"ruleset_sha256", ack->ruleset_sha256},
      {"acked_at",
       formatRfc3339(now)}}.dump();
  AuditEvent audit = AuditEventBuilder("ack_received")
                         .outcome(ackResultName(ack->result))
                         .reason(ack->reason)
                         .agent(agent_id)
                         .command(dispatch.command_id)
                         .seq(ack->seq)
                         .markDrill(isDrillOrder(dispatch.command_id))
                         .detail(json{{"agent_log_seq", ack->audit.log_seq},
                                      {"agent_entry_hash", ack->audit.entry_hash}})
                         .build();
  staged_acks_.push_back(
      StagedAck{std::move(dispatch), std::move(record), std::move(audit), incoming});
  return okStatus();
}

void Delivery::flushAcks() {
  std::vector<StagedAck> acks;
  acks.swap(staged_acks_);
  staged_seqs_.clear();
  if (acks.empty()) return;
  // Several acks of one agent in a batch: its record from the last one (they came in order).
  std::map<std::string, const AgentRecord*> agents;
  for (const StagedAck& ack : acks) agents[ack.agent.agent_id] = &ack.agent;
  const Status stored = ctx_.store.transaction([&]() -> Status {
    for (const StagedAck& ack : acks) SHADAN_RETURN_IF_ERROR(ctx_.store.putDispatch(ack.dispatch));
    for (const auto& [agent_id, agent] : agents)
      SHADAN_RETURN_IF_ERROR(ctx_.store.putAgent(*agent));
    return okStatus();
  });
  if (!stored.ok()) {
    // The dispatches stay pending. The acks are checked again (from the store, as new) at the
    // next follow tick, on a store several controllers share; else, or should the agent go
    // first, its kept acks come again with its next connection. The sweep expires what never
    // comes (a late ack is still taken).
    logger("controller")
        ->error("acks not stored acks={} error={}", acks.size(), stored.error().message);
    for (StagedAck& ack : acks) retry_acks_.push_back(std::move(ack.incoming));
    return;
  }
  for (size_t i = 0; i < acks.size(); ++i) {
    const DispatchRecord& dispatch = acks[i].dispatch;
    if (dispatch.sent_ms > 0 && dispatch.updated_ms >= dispatch.sent_ms) {
      ack_latency_.observe(static_cast<double>(dispatch.updated_ms - dispatch.sent_ms) / 1000.0);
    }
    (void)ctx_.audit(std::move(acks[i].audit), i + 1 == acks.size());
  }
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
