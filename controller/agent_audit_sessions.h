#pragma once

// AgentAuditSessions: the controller's side of audit shipping (common/audit_ship.h,
// docs/audit.md), per connected agent, without a socket: after an approved agent's hello (or
// its approval while it is connected) tell it where its shipped log resumes; store what it
// sends in the AuditMirror, which checks every chain link and checkpoint; answer each stored
// message with an audit_ack.
//
// Contracts:
//   - Pending (unapproved) agents and agents without an enrolled key ship nothing: no resume.
//   - An agent whose copy is broken (an alarm stands) gets no resume until an operator acts.
//   - A message that the mirror refuses (chain break, bad checkpoint, disk error) gets no ack
//     and ends the agent's shipping session: the agent waits, and resumes from the stored copy
//     on its next connection.
//   - Messages from an agent without a session are ignored (logged).
// Threading: one thread (the hub's io thread). The store, mirror and hub must outlive it.

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/ed25519.h"
#include "controller/agent_hub.h"
#include "controller/audit_mirror.h"
#include "controller/store.h"

namespace shadan::controller {

class AgentAuditSessions {
 public:
  AgentAuditSessions(ControllerStore& store, AuditMirror& mirror, AgentHub& hub);

  // A new session of an agent: any earlier shipping session is forgotten and, if the agent is
  // approved, a resume is sent.
  void onHello(const std::string& agent_id);
  void onDisconnect(const std::string& agent_id);
  // An "audit" or "audit_checkpoint" message (shape checked by the hub).
  void onMessage(const std::string& agent_id, const nlohmann::json& message);
  // Starts shipping for connected agents that were approved since their hello (a timer).
  void startApproved();

  bool shipping(const std::string& agent_id) const { return sessions_.count(agent_id) != 0; }

 private:
  void start(const std::string& agent_id);

  ControllerStore& store_;
  AuditMirror& mirror_;
  AgentHub& hub_;
  std::set<std::string> connected_;
  // Agents whose shipping has started, with the enrolled key their checkpoints are checked with.
  std::map<std::string, Ed25519PublicKey> sessions_;
};

}  // namespace shadan::controller
