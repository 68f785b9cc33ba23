#include "controller/agent_audit_sessions.h"

#include "common/audit_ship.h"
#include "common/logging.h"

namespace shadan::controller {

AgentAuditSessions::AgentAuditSessions(ControllerStore& store, AuditMirror& mirror, AgentHub& hub,
                                       std::function<void(std::function<void()>)> defer)
    : store_(store), mirror_(mirror), hub_(hub), defer_(std::move(defer)) {}

void AgentAuditSessions::onHello(const std::string& agent_id) {
  connected_.insert(agent_id);
  sessions_.erase(agent_id);  // a new session resumes afresh
  start(agent_id);
}

void AgentAuditSessions::onDisconnect(const std::string& agent_id) {
  connected_.erase(agent_id);
  sessions_.erase(agent_id);
}

void AgentAuditSessions::startApproved() {
  for (const std::string& agent_id : connected_) start(agent_id);
}

void AgentAuditSessions::start(const std::string& agent_id) {
  if (sessions_.count(agent_id) != 0) return;
  auto agent = store_.getAgent(agent_id);
  if (!agent.ok() || !agent->has_value() || (*agent)->status != AgentStatus::kApproved ||
      !(*agent)->public_key) {
    return;
  }
  auto resume = mirror_.resumePoint(agent_id);
  if (!resume.ok()) {
    logger("controller")
        ->warn("agent={} event=audit_not_resumed error=\"{}\"", agent_id, resume.error().message);
    return;
  }
  if (Status sent = hub_.send(agent_id, auditResumeMessage(*resume)); !sent.ok()) return;
  sessions_[agent_id] = Shipping{*(*agent)->public_key, ++sessions_started_};
}

void AgentAuditSessions::onMessage(const std::string& agent_id, const nlohmann::json& message) {
  if (!defer_) {
    if (auto ack = store(agent_id, message, MirrorSync::kNow)) {
      (void)hub_.send(agent_id, auditAckMessage(*ack));
    }
    return;
  }
  auto ack = store(agent_id, message, MirrorSync::kDeferred);
  if (!ack) return;
  if (staged_.empty()) {
    defer_([this, alive = std::weak_ptr<const bool>(alive_)] {
      if (alive.lock()) flush();
    });
  }
  staged_.push_back(Staged{agent_id, sessions_.at(agent_id).number, *ack});
}

void AgentAuditSessions::flush() {
  auto staged = std::move(staged_);
  staged_.clear();
  if (Status synced = mirror_.syncDeferred(); !synced.ok()) {
    logger("controller")
        ->error("event=audit_not_stored agents={} error=\"{}\"", staged.size(),
                synced.error().message);
    for (const Staged& one : staged) {
      auto it = sessions_.find(one.agent_id);
      if (it != sessions_.end() && it->second.number == one.session) sessions_.erase(it);
    }
    return;
  }
  for (const Staged& one : staged) {
    // An agent whose session ended (or started again) since resumes from the stored copy.
    auto it = sessions_.find(one.agent_id);
    if (it != sessions_.end() && it->second.number == one.session) {
      (void)hub_.send(one.agent_id, auditAckMessage(one.ack));
    }
  }
}

std::optional<AuditAck> AgentAuditSessions::store(const std::string& agent_id,
                                                  const nlohmann::json& message, MirrorSync sync) {
  auto session = sessions_.find(agent_id);
  if (session == sessions_.end()) {
    logger("controller")->warn("agent={} event=audit_unsolicited note=\"ignored\"", agent_id);
    return std::nullopt;
  }
  Result<AuditAck> ack = makeError(ErrorCode::kInternal, "unknown audit message");
  if (message["type"] == kAuditEntriesType) {
    auto lines = parseAuditEntries(message);  // shape checked by the hub
    if (lines.ok()) ack = mirror_.storeEntries(agent_id, *lines, sync);
  } else if (auto line = parseAuditCheckpointMessage(message); line.ok()) {
    ack = mirror_.storeCheckpoint(agent_id, *line, session->second.key, sync);
  }
  if (!ack.ok()) {
    // An alarm was raised (and logged) by the mirror, or the disk failed: no ack, so the agent
    // waits; shipping resumes from the stored copy on its next session.
    logger("controller")
        ->error("agent={} event=audit_not_stored error=\"{}\"", agent_id, ack.error().message);
    sessions_.erase(session);
    return std::nullopt;
  }
  return *ack;
}

}  // namespace shadan::controller
