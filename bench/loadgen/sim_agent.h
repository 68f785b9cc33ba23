#pragma once

// One simulated gateway of the load generator: the agent's own orders session and channel code
// (ControllerLink: mutual TLS 1.3 WebSocket, hello, heartbeats, reconnect backoff; OrdersSession:
// dispatch -> AgentCore -> signed ack, the kept-ack outbox, audit shipping; AgentCore with the
// real verifier, planner and audit chain) over the simulated side effects of sim_dataplane.h.
// Nothing of the agent's logic is copied here: this file only wires it, as agents/daemon.cc
// does for a real gateway.
//
// Threading: constructed on any thread before its io_context runs; from start() on, everything
// runs on the io_context's one thread (start() and stop() are posted there by the caller).

// Boost 1.74's asio uses std::exchange without including <utility> (C++20, GCC 12).
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agents/agent_core.h"
#include "agents/controller_link.h"
#include "agents/orders_session.h"
#include "bench/loadgen/sim_dataplane.h"
#include "common/audit_log.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/policy.h"
#include "common/trust.h"

namespace shadan::loadgen {

// What the scenario learns from its agents; called on the agents' io threads (thread-safe).
class SimObserver {
 public:
  virtual ~SimObserver() = default;
  // `controller`: the port of the controller it is connected to (all are on 127.0.0.1).
  virtual void onConnected(size_t index, uint16_t controller) = 0;
  virtual void onDisconnected(size_t index) = 0;
  // After the agent handled a dispatch; the signed ack is sent or queued.
  virtual void onOutcome(size_t index, const agent::OrderOutcome& outcome) = 0;
};

// Where the controller is and how to reach it.
struct SimEndpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::vector<agent::ControllerAddress> more{};  // the other controllers, tried in turn
  std::string ca_file;
  std::string controller_pin;
};

struct SimAgentSetup {
  size_t index = 0;
  std::string id;         // gateway id, the client certificate's CN
  std::string cert_file;  // client certificate and key (ECDSA P-256, from the load generator's CA)
  std::string key_file;
  std::shared_ptr<const Ed25519Signer> key;  // the agent key: acks and audit checkpoints
};

class SimAgent {
 public:
  // `policy` is this gateway's policy (the fleet's segments, profiles and management, and its
  // own gateway entry); `trust` the fleet's trust file. Both are copied.
  SimAgent(boost::asio::io_context& io, const SimEndpoint& endpoint, SimAgentSetup setup,
           const Policy& policy, const Trust& trust, SimObserver& observer);
  ~SimAgent();
  SimAgent(const SimAgent&) = delete;
  SimAgent& operator=(const SimAgent&) = delete;

  // On the io thread: opens the audit log, loads the state, takes the trust file and starts
  // dialling the controller.
  Status start();
  // On the io thread: closes the connection and stops reconnecting.
  void stop();
  // On the io thread: drops the connection as a gateway that goes away would (the session sees
  // the loss), and dials again with a new link (churn).
  void disconnect();
  Status connect();

  const std::string& id() const { return setup_.id; }
  // On the io thread.
  bool connected() const { return link_ && link_->connected(); }
  size_t outboxSize() const { return session_ ? session_->outboxSize() : 0; }
  // On the io thread: the segments its desired state holds isolated (what it enforces, with or
  // without a controller).
  std::vector<std::string> isolatedSegments() const;

 private:
  void armTick();

  // What the session sends through: whichever link is current (connect() makes a new one).
  class Channel final : public agent::OrdersChannel {
   public:
    bool connected() const override { return link != nullptr && link->connected(); }
    Status send(const nlohmann::json& message) override;
    agent::ControllerLink* link = nullptr;
  };

  boost::asio::io_context& io_;
  SimEndpoint endpoint_;
  SimAgentSetup setup_;
  SimObserver& observer_;
  Policy policy_;
  Trust trust_;
  const Ed25519Signer& signer_;
  SystemClock clock_;
  SteadyMonotonicClock monotonic_;
  NullFirewall firewall_;
  NullRoutes routes_;
  NullConntrack conntrack_;
  MemoryStateStore store_;
  MemoryLogFileSystem files_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<agent::AgentCore> core_;
  Channel channel_;
  std::unique_ptr<agent::ControllerLink> link_;
  std::unique_ptr<agent::OrdersSession> session_;
  boost::asio::steady_timer tick_;
  bool stopped_ = false;
};

}  // namespace shadan::loadgen
