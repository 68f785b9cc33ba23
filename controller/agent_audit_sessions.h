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
//   - With a `defer` function, messages that arrive together are stored together: each is
//     checked and written at once, and one sync (AuditMirror::syncDeferred) makes the whole
//     batch durable before any of its acks is sent. If that sync fails, no ack of the batch is
//     sent and the shipping sessions of its agents end, as for any refused message.
// Threading: one thread (the hub's core thread). The store, mirror and hub must outlive it; a
// flush it deferred that runs after it is gone does nothing (its batch was never acked, so the
// agents resume from the stored copy).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/ed25519.h"
#include "controller/agent_hub.h"
#include "controller/audit_mirror.h"
#include "controller/store.h"

namespace shadan::controller {

class AgentAuditSessions {
 public:
  // `defer(work)` runs `work` later on the same thread (after the messages already queued);
  // empty: every message is synced on its own.
  AgentAuditSessions(ControllerStore& store, AuditMirror& mirror, AgentHub& hub,
                     std::function<void(std::function<void()>)> defer = {});

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
  // Stores one message; the ack to send, or nullopt (refused: the session has ended).
  std::optional<AuditAck> store(const std::string& agent_id, const nlohmann::json& message,
                                MirrorSync sync);
  void flush();

  ControllerStore& store_;
  AuditMirror& mirror_;
  AgentHub& hub_;
  std::function<void(std::function<void()>)> defer_;
  // A shipping session: the enrolled key its checkpoints are checked with, and a number that
  // tells it from the agent's earlier and later sessions.
  struct Shipping {
    Ed25519PublicKey key;
    uint64_t number = 0;
  };
  struct Staged {
    std::string agent_id;
    uint64_t session = 0;  // Shipping::number
    AuditAck ack;
  };
  // Stored with MirrorSync::kDeferred, waiting for flush().
  std::vector<Staged> staged_;
  uint64_t sessions_started_ = 0;
  std::set<std::string> connected_;
  // Agents whose shipping has started.
  std::map<std::string, Shipping> sessions_;
  // Expires with this object: what defer_ holds checks it before touching `this`.
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
};

}  // namespace shadan::controller
