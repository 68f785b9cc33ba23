#include "agents/orders_session.h"

#include <iterator>
#include <set>
#include <utility>

#include "common/channel.h"
#include "common/logging.h"

namespace shadan::agent {

OrdersSession::OrdersSession(OrdersSessionDeps deps, OrdersSessionOptions options)
    : core_(deps.core),
      audit_log_(deps.audit_log),
      channel_(deps.channel),
      monotonic_(deps.monotonic),
      options_(std::move(options)),
      shipper_(deps.fs, deps.reader, std::move(deps.audit_path), options_.shipping),
      disconnected_since_(monotonic_.now()) {}

uint64_t OrdersSession::lastSeq() const {
  return static_cast<uint64_t>(core_.desired().replay.last_seq);
}

void OrdersSession::onConnected() {
  logger("agent")->info("event=controller_connected");
  connected_ = true;
  loss_handled_ = false;
  // Audit shipping waits for the controller's audit_resume (only enrolled agents get one).
  shipper_.reset();
  requeueKeptAcks();
  flush();
}

void OrdersSession::onDisconnected(const std::string& reason) {
  logger("agent")->warn("event=controller_disconnected reason=\"{}\"", reason);
  connected_ = false;
  disconnected_since_ = monotonic_.now();
}

OrderOutcome OrdersSession::onDispatch(const nlohmann::json& envelope) {
  OrderOutcome outcome = core_.handleDispatch(envelope);
  auto log = logger("agent");
  if (outcome.rejection) {
    log->warn("event=order_rejected seq={} reason={}", outcome.ack.seq, outcome.rejection->code());
  } else {
    log->info("event=order seq={} command_id={} result={}", outcome.ack.seq,
              outcome.ack.command_id.value_or("-"), ackResultName(outcome.ack.result));
  }
  outbox_.push_back(Outgoing{outcome.ack.seq, ackMessage(outcome.ack_envelope)});
  flush();
  // Kept after it is on its way: the write is not on the order's path.
  core_.rememberAck(outcome);
  return outcome;
}

// After a (re)connect the kept acks go out again, except those still waiting here: an ack
// handed to the channel just before a connection died may never have arrived, and one made
// before a restart existed only in memory. The controller ignores the ones it already has
// (and takes a late one for a dispatch it had given up as expired).
void OrdersSession::requeueKeptAcks() {
  std::set<int64_t> waiting;
  for (const Outgoing& item : outbox_) waiting.insert(item.seq);
  std::deque<Outgoing> kept;
  for (auto& [seq, envelope] : core_.recentAcks()) {
    if (waiting.contains(seq)) continue;
    kept.push_back(Outgoing{seq, ackMessage(std::move(envelope))});
  }
  // Older acks first, before the ones that were waiting.
  outbox_.insert(outbox_.begin(), std::make_move_iterator(kept.begin()),
                 std::make_move_iterator(kept.end()));
}

void OrdersSession::flush() {
  while (!outbox_.empty() && channel_.connected()) {
    if (!channel_.send(outbox_.front().message).ok()) return;
    outbox_.pop_front();
  }
  // Audit entries go after the acks (queued behind them on the same connection), one bounded
  // batch in flight at a time, so shipping never delays an ack by more than that.
  shipAudit();
}

void OrdersSession::shipAudit() {
  if (!channel_.connected()) return;
  auto message = shipper_.next(audit_log_.size());
  if (!message.ok()) {
    logger("agent")->error("event=audit_ship_failed error=\"{}\"", message.error().message);
    return;
  }
  if (!*message) return;
  if (Status sent = channel_.send(**message); !sent.ok()) {
    // Not connected any more (the next session resumes) or an oversized frame (a bug).
    logger("agent")->error("event=audit_ship_failed error=\"{}\"", sent.error().message);
  }
}

void OrdersSession::onAuditMessage(const nlohmann::json& message) {
  auto log = logger("agent");
  const std::string type = message.value("type", "");
  if (type == kAuditResumeType) {
    auto resume = parseAuditResume(message);  // the channel checked the shape already
    if (!resume.ok()) return;
    Status resumed = shipper_.onResume(*resume);
    if (!resumed.ok() && shipper_.halted()) {
      log->error("event=audit_resume_mismatch reason=\"{}\"", shipper_.haltReason());
      // Audited once per distinct mismatch, not on every reconnect.
      if (shipper_.haltReason() != last_ship_mismatch_) {
        last_ship_mismatch_ = shipper_.haltReason();
        core_.auditEvent("audit_ship_mismatch", "halted",
                         nlohmann::json{{"reason", shipper_.haltReason()},
                                        {"controller_next_seq", resume->next_seq},
                                        {"controller_prev_hash", resume->prev_hash}});
      }
      return;
    }
    if (!resumed.ok()) {
      log->error("event=audit_resume_failed error=\"{}\"", resumed.error().message);
      return;
    }
    log->info("event=audit_resume next_seq={} checkpoint_size={}", resume->next_seq,
              resume->checkpoint_size);
  } else if (type == kAuditAckType) {
    auto ack = parseAuditAck(message);
    if (!ack.ok()) return;
    if (Status acked = shipper_.onAck(*ack); !acked.ok()) {
      log->warn("event=audit_ack_unexpected error=\"{}\"", acked.error().message);
      return;
    }
  }
  shipAudit();
}

// Bad input from the network is audited even when it cannot be answered with an ack.
void OrdersSession::onMessageRejected(const std::string& reason) {
  logger("agent")->warn("event=controller_message_rejected reason=\"{}\"", reason);
  core_.auditEvent("controller_message_rejected", "rejected", nlohmann::json{{"reason", reason}});
}

bool OrdersSession::tick() {
  bool changed = false;
  checkControllerLoss(changed);
  shipAudit();
  return changed;
}

bool OrdersSession::auditShipped() const {
  const uint64_t size = audit_log_.size();
  return shipper_.ackedSeq() >= size && shipper_.ackedCheckpointSize() >= size;
}

// Policy `agent.on_controller_loss: revert`: drills end when the controller is gone longer than
// the grace period (real isolations always hold).
void OrdersSession::checkControllerLoss(bool& changed) {
  if (connected_ || loss_handled_) return;
  if (core_.policy().agent.on_controller_loss != ControllerLossMode::kRevert) return;
  if (monotonic_.now() - disconnected_since_ < options_.controller_loss_grace) return;
  loss_handled_ = true;
  auto reverted = core_.revertDrills("controller unreachable");
  auto log = logger("agent");
  if (!reverted.ok()) {
    log->error("event=revert_drills_failed error=\"{}\"", reverted.error().message);
    loss_handled_ = false;
  } else if (reverted->changed) {
    log->warn("event=drills_reverted reason=\"controller unreachable\" isolations_left={}",
              reverted->state.isolations.size());
    changed = true;
  }
}

}  // namespace shadan::agent
