#pragma once

// OrdersSession: the agent's half of the conversation with the controller, without a socket.
//
// The channel (agents/controller_link.h in the daemon; a fake in tests; a simulated agent in the
// load generator) tells the session what arrived and when the connection came and went; the
// session answers through the small OrdersChannel interface. What it does:
//   - dispatch -> AgentCore::handleDispatch (verify, persist, apply, audit) -> the signed ack,
//     sent at once or kept in an outbox until the channel is connected. Every dispatch gets an
//     ack, rejected ones included (PROTOCOL.md).
//   - Kept acks: after every (re)connect the acks AgentCore kept (AgentCore::recentAcks, the
//     newest 32 of the last day) go out again, oldest first, before the ones still waiting in
//     the outbox; the controller ignores the ones it already has. An ack handed to a connection
//     that died, or made before a restart, is not lost.
//   - Audit shipping (common/audit_ship.h): after a connect nothing is shipped until the
//     controller's "audit_resume"; then one bounded batch in flight at a time, behind the acks.
//   - Frames the channel refused are audited (controller_message_rejected).
//   - `on_controller_loss: revert` (POLICY.md): once the controller has been unreachable for
//     controller_loss_grace (monotonic time, from construction or the last disconnect), tick()
//     lifts the drill isolations, once per loss.
//
// Threading: not thread-safe; one thread (the daemon's io thread) calls everything. All
// borrowed objects must outlive the session. No kernel and no socket live in here: the core's
// backends and the channel are whatever the caller wires.

#include <chrono>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agents/agent_core.h"
#include "agents/orders_channel.h"
#include "common/audit_log.h"
#include "common/audit_ship.h"
#include "common/clock.h"
#include "common/result.h"

namespace shadan::agent {

struct OrdersSessionOptions {
  // How long the controller may be unreachable before `on_controller_loss: revert` lifts drills.
  std::chrono::milliseconds controller_loss_grace{std::chrono::minutes(5)};
  AuditShipperOptions shipping;
};

// Everything the session works through; all borrowed.
struct OrdersSessionDeps {
  AgentCore& core;
  AuditLog& audit_log;  // the agent's log (also the core's audit sink, or under it)
  LogFileSystem& fs;    // to read the log back for shipping
  AuditFileReader& reader;
  std::string audit_path;  // the log's base path (AuditLogOptions::path)
  OrdersChannel& channel;
  const MonotonicClock& monotonic;
};

class OrdersSession {
 public:
  OrdersSession(OrdersSessionDeps deps, OrdersSessionOptions options);
  OrdersSession(const OrdersSession&) = delete;
  OrdersSession& operator=(const OrdersSession&) = delete;

  // ---- channel events ----
  void onConnected();
  void onDisconnected(const std::string& reason);
  // The envelope object of a "dispatch" message, as the channel parsed it (strictly, once).
  // Returns the outcome (the ack is already sent or queued).
  OrderOutcome onDispatch(const nlohmann::json& envelope);
  // "audit_resume" / "audit_ack", shape already checked by the channel.
  void onAuditMessage(const nlohmann::json& message);
  // A frame the channel refused to interpret (it closes the connection right after).
  void onMessageRejected(const std::string& reason);

  // ---- periodic work (the daemon's poll timer) ----
  // Ships what is new in the audit log and checks the controller-loss grace. True when the
  // desired state changed (drills reverted): the caller re-arms its deadline timer.
  bool tick();
  // Ships what is new now (after a local command appended to the log, say).
  void shipAudit();

  // For hello: the last dispatch seq this agent accepted.
  uint64_t lastSeq() const;
  // Acks waiting for a connection.
  size_t outboxSize() const { return outbox_.size(); }
  // Every entry of the audit log and a checkpoint covering all of them are acknowledged by the
  // controller: what a clean stop waits for (bounded), so the controller's copy can be
  // verified against a checkpoint.
  bool auditShipped() const;
  const AuditShipper& shipper() const { return shipper_; }

 private:
  struct Outgoing {
    int64_t seq = 0;  // of the dispatch the ack answers
    nlohmann::json message;
  };
  void requeueKeptAcks();
  void flush();
  void checkControllerLoss(bool& changed);

  AgentCore& core_;
  AuditLog& audit_log_;
  OrdersChannel& channel_;
  const MonotonicClock& monotonic_;
  OrdersSessionOptions options_;
  AuditShipper shipper_;
  std::deque<Outgoing> outbox_;
  std::chrono::steady_clock::time_point disconnected_since_;
  bool connected_ = false;
  bool loss_handled_ = false;
  std::string last_ship_mismatch_;
};

}  // namespace shadan::agent
