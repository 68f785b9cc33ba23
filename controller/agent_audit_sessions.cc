#include "controller/agent_audit_sessions.h"

#include "common/audit_ship.h"
#include "common/logging.h"

namespace shadan::controller {

AgentAuditSessions::AgentAuditSessions(ControllerStore& store, AuditMirror& mirror, AgentHub& hub)
    : store_(store), mirror_(mirror), hub_(hub) {}

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
  sessions_[agent_id] = *(*agent)->public_key;
}

void AgentAuditSessions::onMessage(const std::string& agent_id, const nlohmann::json& message) {
  auto session = sessions_.find(agent_id);
  if (session == sessions_.end()) {
    logger("controller")->warn("agent={} event=audit_unsolicited note=\"ignored\"", agent_id);
    return;
  }
  Result<AuditAck> ack = makeError(ErrorCode::kInternal, "unknown audit message");
  if (message["type"] == kAuditEntriesType) {
    auto lines = parseAuditEntries(message);  // shape checked by the hub
    if (lines.ok()) ack = mirror_.storeEntries(agent_id, *lines);
  } else if (auto line = parseAuditCheckpointMessage(message); line.ok()) {
    ack = mirror_.storeCheckpoint(agent_id, *line, session->second);
  }
  if (!ack.ok()) {
    // An alarm was raised (and logged) by the mirror, or the disk failed: no ack, so the agent
    // waits; shipping resumes from the stored copy on its next session.
    logger("controller")
        ->error("agent={} event=audit_not_stored error=\"{}\"", agent_id, ack.error().message);
    sessions_.erase(session);
    return;
  }
  (void)hub_.send(agent_id, auditAckMessage(*ack));
}

}  // namespace shadan::controller
